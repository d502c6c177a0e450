//! The GitSync's commit state machine, pure: what a reconcile does to the status, which Events
//! it publishes and when it looks again, decided from what the controller gathered.
//!
//! A reconcile is a chain of I/O steps (read the credentials, fetch, prepare, start or read the
//! pre-pulls, apply, read the workloads). Between two of them the controller hands the result
//! of the last one to a step of [`Look`], which either goes on (a [`Look`] for the next step) or
//! ends the reconcile with a [`Done`]: the status to write, the Events, the pre-pull jobs to
//! clean and when to look again. Nothing here talks to the API server or reads the clock.
//!
//! ```text
//! new commit ──▶ Detected ──▶ Validated ──▶ [PrePulling ──hold──▶] Applying ──▶ RollingOut ──▶ Healthy
//!                    │            │                                   │             └────────▶ Failed
//!                    └────────────┴──(unusable / invalid / apply failed)┴──────────────────▶ Failed
//! a newer commit: every unfinished entry ──▶ Superseded
//! ```

use std::collections::BTreeSet;
use std::ops::ControlFlow;
use std::time::Duration;

use graft_api::commit::short_sha;
use graft_api::graft::gitsync::{
    ACCEPT_REWRITE_ANNOTATION, CONDITION_READY, CommitPhase, CommitReason, EventReason, GitSync,
    GitSyncStatus, InventoryEntry, PrePullMode, WorkloadProgress,
};
use graft_api::workload::WorkloadKind;
use graft_events::EventType::{self, Normal, Warning};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::apply::{Action, ApplyReport};
use crate::git::CommitInfo;
use crate::health::{Health, HealthStatus};
use crate::object::ObjectRef;
use crate::plan::{ApplyPlan, Owner};
use crate::prepull::{self, Progress};
use crate::run::{Drift, Outcome, SyncError};

#[cfg(test)]
mod tests;

/// How long a BeforeRollout hold waits for an ImagePullJob controller to pick up the jobs at
/// all before applying without the pre-pull (a cluster with no node agent or manager).
pub const NO_PRE_PULL_CONTROLLER: Duration = Duration::from_secs(30);

/// How often a commit's rollout (or pre-pull hold) is looked at while it is not finished.
pub const ROLLOUT_POLL: Duration = Duration::from_secs(2);

/// Longest wait after a failed fetch or apply (shorter than the interval, which can be hours).
pub const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(30);

/// The poll interval when `spec.interval` cannot be read.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);

/// An Event about the GitSync.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// `Normal` or `Warning`.
    pub type_: EventType,
    /// Why.
    pub reason: EventReason,
    /// What happened, for people.
    pub note: String,
}

/// When to reconcile the GitSync again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wake {
    /// Only when the object changes (suspended, or deleted).
    AwaitChange,
    /// After this long (or earlier, on a change).
    After(Duration),
}

/// Delete the GitSync's pre-pull jobs of older commits, and of `commit` once it is final.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CleanPrePulls {
    /// The commit being synced.
    pub commit: String,
    /// Its jobs go too.
    pub current_final: bool,
    /// Namespaces the jobs can be in.
    pub namespaces: BTreeSet<String>,
}

/// The end of a reconcile: what the controller writes and publishes, in this order (Events,
/// drift Events on the reverted objects, the status, the pre-pull clean-up).
#[derive(Clone, Debug, PartialEq)]
pub struct Done {
    /// The status to write (`None`: write nothing).
    pub status: Option<GitSyncStatus>,
    /// Events about the GitSync.
    pub events: Vec<Event>,
    /// Objects whose drift from `commit` was reverted: an Event on each.
    pub drift: Vec<Drift>,
    /// The commit the reconcile looked at (empty before a fetch).
    pub commit: String,
    /// Pre-pull jobs to delete.
    pub clean_pre_pulls: Option<CleanPrePulls>,
    /// When to look again.
    pub wake: Wake,
}

/// A step's result: go on with the next I/O step, or stop with a [`Done`].
pub type Step = ControlFlow<Done, Look>;

/// A GitSync's settings, read once per reconcile.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Settings {
    interval: Duration,
    mode: PrePullMode,
    pre_pull: prepull::Settings,
    accept_rewrite: Option<String>,
}

/// A reconcile under way: the status being built and the Events so far.
#[derive(Clone, Debug, PartialEq)]
pub struct Look {
    /// The status as this reconcile has made it so far.
    pub status: GitSyncStatus,
    events: Vec<Event>,
    drift: Vec<Drift>,
    settings: Settings,
    owner: Owner,
    now: Time,
    commit: String,
    summary: String,
    /// The commit is applied for the first time in this reconcile (new, accepted after a
    /// rewrite, or at the end of its pre-pull hold).
    first_apply: bool,
    job_namespaces: BTreeSet<String>,
    outcome: Outcome,
    workloads: Vec<ObjectRef>,
}

/// Starts a reconcile of `gs` (read fresh) at `now`: nothing to do while it is suspended.
pub fn begin(gs: &GitSync, now: Time) -> Step {
    let spec = gs.spec.defaulted();
    if spec.suspend == Some(true) {
        return ControlFlow::Break(Done {
            status: None,
            events: Vec::new(),
            drift: Vec::new(),
            commit: String::new(),
            clean_pre_pulls: None,
            wake: Wake::AwaitChange,
        });
    }
    let pre_pull = spec.pre_pull.clone().unwrap_or_default();
    let mut status = gs.status.clone().unwrap_or_default();
    status.observed_generation = gs.metadata.generation.unwrap_or(0);
    let accept_rewrite = gs
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(ACCEPT_REWRITE_ANNOTATION))
        .cloned();
    ControlFlow::Continue(Look {
        status,
        events: Vec::new(),
        drift: Vec::new(),
        settings: Settings {
            interval: spec.interval().unwrap_or(DEFAULT_INTERVAL),
            mode: pre_pull.mode.unwrap_or_default(),
            pre_pull: prepull::Settings {
                parallelism: pre_pull.parallelism.unwrap_or(1),
                timeout_seconds: pre_pull.timeout_seconds.unwrap_or(600),
            },
            accept_rewrite,
        },
        owner: Owner {
            namespace: gs.metadata.namespace.clone().unwrap_or_default(),
            name: gs.metadata.name.clone().unwrap_or_default(),
        },
        now,
        commit: String::new(),
        summary: String::new(),
        first_apply: false,
        job_namespaces: BTreeSet::new(),
        outcome: Outcome::default(),
        workloads: Vec::new(),
    })
}

/// The history reason of a failed sync step.
pub fn reason_of(e: &SyncError) -> CommitReason {
    match e {
        SyncError::Invalid { .. } => CommitReason::ValidationFailed,
        SyncError::Unusable {
            source: crate::Error::HistoryRewritten { .. },
            ..
        } => CommitReason::HistoryRewritten,
        SyncError::Unusable { .. } => CommitReason::ValidationFailed,
        SyncError::Source(_) => CommitReason::FetchFailed,
        _ => CommitReason::ApplyFailed,
    }
}

impl Look {
    /// The commit to fetch relative to (a tip that does not descend from it is a rewrite).
    pub fn last_applied(&self) -> Option<&str> {
        self.status.last_applied_commit.as_deref()
    }

    /// The accept-rewrite annotation: a rewritten tip starting with it is applied.
    pub fn accept_rewrite(&self) -> Option<&str> {
        self.settings.accept_rewrite.as_deref()
    }

    /// The credentials Secret could not be read: `Ready=False`, look again after the interval.
    pub fn credentials_failed(mut self, message: &str) -> Done {
        self.warn(
            EventReason::Failed(CommitReason::CredentialsFailed),
            message,
        );
        self.set_ready(false, CommitReason::CredentialsFailed, message);
        let wake = self.settings.interval;
        self.done(wake)
    }

    /// The fetch failed. A fetched commit that cannot be used (a rewrite, a missing path, a
    /// file over the size limit) gets its own failed history entry, with one Event the first
    /// time; anything else is `Ready=False` with `FetchFailed`, tried again within 30 s.
    pub fn fetch_failed(mut self, e: &SyncError) -> Done {
        let SyncError::Unusable { commit, info, .. } = e else {
            let message = e.to_string();
            self.warn(EventReason::Failed(CommitReason::FetchFailed), &message);
            self.set_ready(false, CommitReason::FetchFailed, &message);
            let wake = self.settings.interval.min(RETRY_AFTER_FAILURE);
            return self.done(wake);
        };
        self.commit = commit.clone();
        let first_time = self.status.last_attempted_commit.as_deref() != Some(commit.as_str());
        if first_time {
            self.status.record_commit(info.record(), &self.now);
            self.status.last_attempted_commit = Some(commit.clone());
        }
        let reason = self.fail(e);
        if first_time {
            self.warn(EventReason::Failed(reason), &e.to_string());
        }
        let wake = self.settings.interval;
        self.done(wake)
    }

    /// The commit was fetched: a new one is recorded `Detected` (superseding unfinished ones);
    /// one refused as a rewrite that fetches now was accepted and starts over. A commit that
    /// failed and is not the last applied one stays failed until a new commit arrives.
    pub fn after_fetch(mut self, info: &CommitInfo) -> Step {
        self.commit = info.sha.clone();
        self.summary = info.summary.clone();
        let commit = self.commit.clone();
        let new_commit = self.status.last_attempted_commit.as_deref() != Some(commit.as_str());
        if new_commit {
            self.status.record_commit(info.record(), &self.now);
            self.status.last_attempted_commit = Some(commit.clone());
        }
        let mut accepted_rewrite = false;
        if let Some(h) = self.status.commit_mut(&commit)
            && !new_commit
            && h.phase == CommitPhase::Failed
            && h.reason == Some(CommitReason::HistoryRewritten)
        {
            h.reason = None;
            h.status_message = None;
            h.phase = CommitPhase::Detected;
            *h.phase_times.slot_mut(CommitPhase::Failed) = None;
            accepted_rewrite = true;
        }
        self.first_apply = new_commit || accepted_rewrite;
        let phase = self.status.commit(&commit).map(|h| h.phase);
        if phase == Some(CommitPhase::Failed) && self.last_applied() != Some(commit.as_str()) {
            let wake = self.settings.interval;
            return ControlFlow::Break(self.done(wake));
        }
        ControlFlow::Continue(self)
    }

    /// Rendering, planning or the dry-run failed: the commit is `Failed` (nothing applied,
    /// the last good commit keeps running).
    pub fn prepare_failed(mut self, e: &SyncError) -> Done {
        let reason = self.fail(e);
        self.warn(EventReason::Failed(reason), &e.to_string());
        let wake = self.settings.interval;
        self.done(wake)
    }

    /// The commit rendered and passed the dry-run: a new one is `Validated`.
    pub fn after_prepare(mut self, plan: &ApplyPlan) -> Look {
        if self.first_apply {
            self.set_phase(CommitPhase::Validated);
        }
        self.job_namespaces = job_namespaces(&self.owner, &self.status);
        self.job_namespaces
            .extend(plan.objects().filter_map(|o| o.reference.namespace.clone()));
        self
    }

    /// Whether to create pre-pull jobs for the commit's new images, and how they run: for a
    /// new commit, unless `prePull.mode` is `Off`.
    pub fn starts_pre_pulls(&self) -> Option<prepull::Settings> {
        (self.first_apply && self.settings.mode != PrePullMode::Off)
            .then_some(self.settings.pre_pull)
    }

    /// The pre-pull jobs were created (how many) or could not be (why: the commit applies
    /// without them).
    pub fn pre_pulls_started(mut self, started: Result<usize, String>) -> Look {
        match started {
            Ok(0) => {}
            Ok(n) => {
                self.set_phase(CommitPhase::PrePulling);
                let note = format!(
                    "Pre-pulling {n} new image(s) of commit {} ({:?})",
                    short_sha(&self.commit),
                    self.settings.mode
                );
                self.set_message(&note);
                self.normal(EventReason::PrePulling, &note);
            }
            Err(e) => {
                let note = format!("pre-pull not started, applying without it: {e}");
                self.set_message(&note);
                self.warn(EventReason::PrePullFailed, &note);
            }
        }
        self
    }

    /// Namespaces the GitSync's pre-pull jobs can be in (its own, its objects').
    pub fn pre_pull_namespaces(&self) -> &BTreeSet<String> {
        &self.job_namespaces
    }

    /// Whether the commit is held until its images are pulled (BeforeRollout, pre-pulling):
    /// then the controller reads the jobs' progress for [`Look::after_pre_pull`].
    pub fn holds_for_pre_pull(&self) -> bool {
        self.phase() == Some(CommitPhase::PrePulling)
            && self.settings.mode == PrePullMode::BeforeRollout
    }

    /// How far the pre-pull jobs are (or why they could not be read): the hold goes on (look
    /// again soon) or ends — done, timed out, skipped when no ImagePullJob controller answered
    /// in 30 s, or unknown — and the commit applies.
    pub fn after_pre_pull(mut self, progress: Result<Progress, String>) -> Step {
        let started = self
            .status
            .commit(&self.commit)
            .and_then(|h| h.phase_times.pre_pulling.as_ref())
            .map_or(self.now.0, |t| t.0);
        let waited = self.now.0.duration_since(started).as_secs_f64().max(0.0);
        let timeout = f64::from(self.settings.pre_pull.timeout_seconds);
        let (reason, note) = match progress {
            Ok(p) if p.done() => (None, format!("pre-pull done: {p}")),
            Ok(p) if waited >= timeout => (
                Some(CommitReason::PrePullTimedOut),
                format!("pre-pull timed out after {waited:.0}s ({p}); applying anyway"),
            ),
            Ok(p) if p.answered == 0 && waited >= NO_PRE_PULL_CONTROLLER.as_secs_f64() => (
                Some(CommitReason::PrePullSkipped),
                format!(
                    "no ImagePullJob controller answered in {waited:.0}s; applying without pre-pull"
                ),
            ),
            Ok(p) => {
                self.set_message(&format!("pre-pulling: {p}"));
                let clean = self.clean(false);
                let mut done = self.done(ROLLOUT_POLL);
                done.clean_pre_pulls = Some(clean);
                return ControlFlow::Break(done);
            }
            Err(e) => (
                Some(CommitReason::PrePullUnknown),
                format!("pre-pull status unreadable ({e}); applying anyway"),
            ),
        };
        if let Some(h) = self.status.commit_mut(&self.commit) {
            h.reason = reason;
        }
        self.set_message(&note);
        if reason.is_some() {
            self.warn(EventReason::PrePulled, &note);
        } else {
            self.normal(EventReason::PrePulled, &note);
        }
        ControlFlow::Continue(self)
    }

    /// Before the apply: a commit applied for the first time (new, or at the end of its
    /// pre-pull) is `Applying`. Returns the inventory the apply prunes against.
    pub fn applying(&mut self) -> Vec<InventoryEntry> {
        self.first_apply = self.first_apply || self.phase() == Some(CommitPhase::PrePulling);
        if self.first_apply {
            self.set_phase(CommitPhase::Applying);
        }
        self.status.inventory.clone().unwrap_or_default()
    }

    /// The apply failed part way: the commit is `Failed`, tried again within 30 s.
    pub fn apply_failed(mut self, e: &SyncError) -> Done {
        let reason = self.fail(e);
        self.warn(EventReason::Failed(reason), &e.to_string());
        let wake = self.settings.interval.min(RETRY_AFTER_FAILURE);
        self.done(wake)
    }

    /// The commit is applied: it becomes the last applied commit with its inventory. A first
    /// apply is announced (`CommitApplied`); a later one that had to write reverted drift
    /// (`DriftCorrected`, on the GitSync and on each object). Pruned objects and prune
    /// failures are reported. Picks the workloads whose rollout the commit waits for: those the
    /// first apply created or changed, then the same ones on every later look.
    pub fn after_apply(
        mut self,
        plan: &ApplyPlan,
        outcome: Outcome,
        report: &ApplyReport,
        inventory: Vec<InventoryEntry>,
    ) -> Look {
        self.status.inventory = Some(inventory);
        self.status.last_applied_commit = Some(self.commit.clone());
        let short = short_sha(&self.commit).to_string();
        if self.first_apply {
            let note = format!(
                "Applied commit {short} ({:?}): {} created, {} configured, {} unchanged",
                self.summary, outcome.created, outcome.configured, outcome.unchanged
            );
            self.normal(EventReason::CommitApplied, &note);
        } else {
            let drift = crate::run::drift(report);
            if !drift.is_empty() {
                let list: Vec<String> = drift.iter().map(ToString::to_string).collect();
                let note = format!(
                    "Reverted drift from commit {short} on {} object(s): {}",
                    list.len(),
                    list.join("; ")
                );
                self.normal(EventReason::DriftCorrected, &note);
                self.drift = drift;
            }
        }
        if !outcome.pruned_objects.is_empty() {
            let note = format!(
                "Pruned {} object(s) that left the repository at commit {short}: {}",
                outcome.pruned_objects.len(),
                outcome.pruned_objects.join("; ")
            );
            self.normal(EventReason::Pruned, &note);
        }
        for f in &outcome.prune_failures {
            self.warn(EventReason::PruneFailed, f);
        }
        if !outcome.replaced.is_empty() {
            let note = format!(
                "Replaced {} job(s) whose definition changed at commit {short} (deleted and \
                 created again; opt out with graft.dev/replace-on-change: \"false\"): {}",
                outcome.replaced.len(),
                outcome.replaced.join("; ")
            );
            self.normal(EventReason::Replaced, &note);
        }
        self.workloads = self.watched_workloads(plan, report);
        self.outcome = outcome;
        self
    }

    /// The workloads to read the health and progress of, for [`Look::after_rollout`].
    pub fn workloads(&self) -> &[ObjectRef] {
        &self.workloads
    }

    /// The healths and progress of [`Look::workloads`], in order: the commit is `RollingOut`
    /// until every one is healthy (`Healthy`) or one is degraded (`Failed`); `Ready=True`.
    /// Looks again soon while it rolls out, after the interval once it is final.
    pub fn after_rollout(mut self, looked: &[(Health, Option<WorkloadProgress>)]) -> Done {
        let mut overall = Health::worst(looked.iter().map(|(h, _)| h));
        // Later sync waves are still to be applied: not Healthy yet, whatever the applied
        // workloads say (a degraded one still fails the commit).
        if let Some(held) = &self.outcome.held
            && overall.status != HealthStatus::Degraded
        {
            overall = Health::progressing(held.clone());
        }
        let progress: Vec<WorkloadProgress> =
            looked.iter().filter_map(|(_, p)| p.clone()).collect();
        let current = self.phase();
        let first_apply = self.first_apply;
        if let Some(h) = self.status.commit_mut(&self.commit) {
            if !progress.is_empty() || first_apply {
                h.workloads = Some(progress);
            }
            h.status_message = Some(overall.message.clone());
        }
        let finished = matches!(current, Some(CommitPhase::Healthy | CommitPhase::Failed));
        if !finished {
            let next = match overall.status {
                HealthStatus::Healthy => CommitPhase::Healthy,
                HealthStatus::Degraded => CommitPhase::Failed,
                _ => CommitPhase::RollingOut,
            };
            if current != Some(next) {
                self.set_phase(next);
                let short = short_sha(&self.commit).to_string();
                match next {
                    CommitPhase::Healthy => self.normal(
                        EventReason::RolloutHealthy,
                        &format!("Commit {short} is healthy: {}", overall.message),
                    ),
                    CommitPhase::Failed => self.warn(
                        EventReason::RolloutFailed,
                        &format!("Commit {short} failed: {}", overall.message),
                    ),
                    _ => {}
                }
            }
        }
        let o = &self.outcome;
        let message = format!(
            "Applied revision {}: {} created, {} configured, {} unchanged, {} pruned",
            self.commit, o.created, o.configured, o.unchanged, o.pruned
        );
        self.set_ready(true, CommitReason::Succeeded, &message);
        let current_final = self.phase().is_some_and(CommitPhase::is_final);
        let wake = if current_final {
            self.settings.interval
        } else {
            ROLLOUT_POLL
        };
        let clean = self.clean(current_final);
        let mut done = self.done(wake);
        done.clean_pre_pulls = Some(clean);
        done
    }

    fn watched_workloads(&self, plan: &ApplyPlan, report: &ApplyReport) -> Vec<ObjectRef> {
        if self.first_apply {
            return report
                .objects
                .iter()
                .filter(|o| o.action != Action::Unchanged)
                .map(|o| o.reference.clone())
                .filter(|r| WorkloadKind::is_rollout(&r.group, &r.kind))
                .collect();
        }
        // Later looks: the commit's record names them, the plan gives their versions; and the
        // workloads this apply created (a later sync wave's, applied once the earlier ones were
        // healthy).
        let recorded = self
            .status
            .commit(&self.commit)
            .and_then(|h| h.workloads.as_deref())
            .unwrap_or_default();
        let created: Vec<&ObjectRef> = report
            .objects
            .iter()
            .filter(|o| o.action == Action::Created)
            .map(|o| &o.reference)
            .filter(|r| WorkloadKind::is_rollout(&r.group, &r.kind))
            .collect();
        plan.objects()
            .map(|o| o.reference.clone())
            .filter(|r| {
                created.iter().any(|c| c.id() == r.id())
                    || recorded.iter().any(|w| {
                        w.kind == r.kind
                            && w.group == r.group
                            && w.name == r.name
                            && w.namespace == r.namespace
                    })
            })
            .collect()
    }

    fn phase(&self) -> Option<CommitPhase> {
        self.status.commit(&self.commit).map(|h| h.phase)
    }

    fn set_phase(&mut self, phase: CommitPhase) {
        self.status.set_phase(&self.commit, phase, &self.now);
    }

    fn set_message(&mut self, message: &str) {
        if let Some(h) = self.status.commit_mut(&self.commit) {
            h.status_message = Some(message.chars().take(1000).collect());
        }
    }

    /// Marks the commit failed with `e` and `Ready=False` (`SyncFailed`); returns the reason.
    fn fail(&mut self, e: &SyncError) -> CommitReason {
        self.set_phase(CommitPhase::Failed);
        let reason = reason_of(e);
        if let Some(h) = self.status.commit_mut(&self.commit) {
            h.reason = Some(reason);
            h.status_message = Some(e.to_string());
        }
        self.set_ready(false, CommitReason::SyncFailed, &e.to_string());
        reason
    }

    fn set_ready(&mut self, ok: bool, reason: CommitReason, message: &str) {
        let now = self.now.clone();
        let generation = self.status.observed_generation;
        let conditions = self.status.conditions.get_or_insert_with(Vec::new);
        let s = if ok { "True" } else { "False" };
        let transition = conditions
            .iter()
            .find(|c| c.type_ == CONDITION_READY && c.status == s)
            .map_or(now, |c| c.last_transition_time.clone());
        conditions.retain(|c| c.type_ != CONDITION_READY);
        conditions.push(Condition {
            type_: CONDITION_READY.into(),
            status: s.into(),
            reason: reason.as_str().into(),
            message: message.chars().take(4000).collect(),
            last_transition_time: transition,
            observed_generation: Some(generation),
        });
    }

    fn normal(&mut self, reason: EventReason, note: &str) {
        self.event(Normal, reason, note);
    }

    fn warn(&mut self, reason: EventReason, note: &str) {
        self.event(Warning, reason, note);
    }

    fn event(&mut self, type_: EventType, reason: EventReason, note: &str) {
        self.events.push(Event {
            type_,
            reason,
            note: note.to_string(),
        });
    }

    fn clean(&self, current_final: bool) -> CleanPrePulls {
        let mut namespaces = self.job_namespaces.clone();
        namespaces.extend(job_namespaces(&self.owner, &self.status));
        CleanPrePulls {
            commit: self.commit.clone(),
            current_final,
            namespaces,
        }
    }

    fn done(self, wake: Duration) -> Done {
        Done {
            status: Some(self.status),
            events: self.events,
            drift: self.drift,
            commit: self.commit,
            clean_pre_pulls: None,
            wake: Wake::After(wake),
        }
    }
}

/// Where a GitSync's pre-pull jobs can be: its own namespace and those of its objects.
pub fn job_namespaces(owner: &Owner, status: &GitSyncStatus) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = status
        .inventory
        .iter()
        .flatten()
        .filter_map(|e| e.namespace.clone())
        .collect();
    out.insert(owner.namespace.clone());
    out
}
