//! The GitSync's commit state machine, rule by rule. Each test drives the planner the way the
//! controller does, with a [`World`] standing in for the API server and Git, one reconcile at a
//! time, feeding each reconcile's status into the next.

use std::ops::ControlFlow;

use graft_api::graft::gitsync::{CommitPhase, CommitReason, GitSync, GitSyncSpec};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use pretty_assertions::assert_eq;

use super::*;
use crate::apply::ObjectOutcome;
use crate::plan::{PlannedObject, Stage, Wave};
use crate::render::Location;

const A: &str = "aaaaaaa1111111111111111111111111111111111";
const B: &str = "bbbbbbb2222222222222222222222222222222222";
const C: &str = "ccccccc3333333333333333333333333333333333";

fn t(secs: i64) -> Time {
    let start: Timestamp = "2026-01-01T00:00:00Z".parse().expect("a timestamp");
    Time(start + SignedDuration::from_secs(secs))
}

fn gitsync(yaml: &str) -> GitSync {
    let spec: GitSyncSpec = serde_saphyr::from_str(yaml).expect("spec fixture");
    let mut gs = GitSync::new("app", spec);
    gs.metadata.namespace = Some("ns".into());
    gs.metadata.generation = Some(1);
    gs
}

fn info(sha: &str) -> CommitInfo {
    CommitInfo {
        sha: sha.into(),
        summary: format!("commit {}", &sha[..1]),
        message: String::new(),
        author_name: "Dev".into(),
        author_email: "dev@example.org".into(),
        time: 1_700_000_000,
    }
}

fn cloneset(name: &str) -> ObjectRef {
    ObjectRef {
        group: "apps.kruise.io".into(),
        version: "v1alpha1".into(),
        kind: "CloneSet".into(),
        namespace: Some("ns".into()),
        name: name.into(),
    }
}

fn configmap(name: &str) -> ObjectRef {
    ObjectRef {
        group: String::new(),
        version: "v1".into(),
        kind: "ConfigMap".into(),
        namespace: Some("ns".into()),
        name: name.into(),
    }
}

/// Ways a step fails (a [`SyncError`] is not `Clone`; the world makes a fresh one each time).
#[derive(Clone, Copy, Debug)]
enum Fail {
    Unreachable,
    Rewritten,
    PathMissing,
    Invalid,
    ApplyRefused,
    GitTask,
}

fn error(f: Fail, commit: &str) -> SyncError {
    let unusable = |source| SyncError::Unusable {
        commit: commit.into(),
        info: Box::new(info(commit)),
        source,
    };
    match f {
        Fail::Unreachable => SyncError::Source(crate::Error::Connect {
            url: "https://git.example/app".into(),
            message: "connection refused".into(),
        }),
        Fail::Rewritten => unusable(crate::Error::HistoryRewritten {
            last_applied: A.into(),
            new: commit.into(),
        }),
        Fail::PathMissing => unusable(crate::Error::PathNotFound {
            sha: commit.into(),
            path: "deploy".into(),
        }),
        Fail::Invalid => SyncError::Invalid {
            commit: commit.into(),
            message: "app.yaml document 0: missing kind".into(),
        },
        Fail::ApplyRefused => SyncError::Apply {
            commit: commit.into(),
            source: crate::apply::Error::Apply {
                stage: Stage::Workloads,
                errors: Vec::new(),
                applied: ApplyReport::default(),
            },
        },
        Fail::GitTask => SyncError::Task("the Git task panicked".into()),
    }
}

/// What the API server and Git answer in one reconcile.
#[derive(Clone, Debug)]
struct World {
    credentials: Result<(), String>,
    /// The tip and whether it can be used.
    tip: String,
    fetch: Option<Fail>,
    prepare: Option<Fail>,
    /// The objects of the commit.
    objects: Vec<ObjectRef>,
    pre_pulls: Result<usize, String>,
    progress: Result<Progress, String>,
    apply: Option<Fail>,
    /// What the apply did to each object (default: created).
    actions: Vec<Action>,
    reverted: Vec<String>,
    pruned: Vec<String>,
    prune_failures: Vec<String>,
    /// The health of each watched workload.
    health: Health,
    /// Later sync waves were held back: the apply reported only the first object.
    held: Option<String>,
}

fn world(tip: &str) -> World {
    World {
        credentials: Ok(()),
        tip: tip.into(),
        fetch: None,
        prepare: None,
        objects: vec![cloneset("web"), configmap("conf")],
        pre_pulls: Ok(0),
        progress: Ok(Progress::default()),
        apply: None,
        actions: Vec::new(),
        reverted: Vec::new(),
        pruned: Vec::new(),
        prune_failures: Vec::new(),
        health: Health::progressing("1 of 2 pods updated"),
        held: None,
    }
}

impl World {
    fn with(mut self, f: impl FnOnce(&mut World)) -> World {
        f(&mut self);
        self
    }

    fn healthy(self) -> World {
        self.with(|w| w.health = Health::healthy("all pods updated"))
    }

    fn plan(&self) -> ApplyPlan {
        let objects = self
            .objects
            .iter()
            .map(|r| PlannedObject {
                reference: r.clone(),
                object: serde_json::json!({}),
                location: Location::default(),
            })
            .collect();
        ApplyPlan {
            waves: vec![Wave {
                sync_wave: 0,
                stage: Stage::Workloads,
                objects,
            }],
        }
    }

    fn applied(&self) -> (Outcome, ApplyReport, Vec<InventoryEntry>) {
        let objects: Vec<ObjectOutcome> = self
            .objects
            .iter()
            .enumerate()
            .take(if self.held.is_some() { 1 } else { usize::MAX })
            .map(|(i, r)| {
                let action = self.actions.get(i).copied().unwrap_or(Action::Created);
                ObjectOutcome {
                    reference: r.clone(),
                    location: Location::default(),
                    action,
                    reverted: if action == Action::Configured {
                        self.reverted.clone()
                    } else {
                        Vec::new()
                    },
                    replaced: false,
                }
            })
            .collect();
        let count = |a: Action| objects.iter().filter(|o| o.action == a).count();
        let outcome = Outcome {
            commit: self.tip.clone(),
            created: count(Action::Created),
            configured: count(Action::Configured),
            unchanged: count(Action::Unchanged),
            pruned: self.pruned.len(),
            pruned_objects: self.pruned.clone(),
            prune_failures: self.prune_failures.clone(),
            held: self.held.clone(),
            ..Default::default()
        };
        let inventory = self.plan().inventory();
        let report = ApplyReport {
            objects,
            ..Default::default()
        };
        (outcome, report, inventory)
    }
}

/// The I/O steps a reconcile took.
#[derive(Debug, Default, PartialEq, Eq)]
struct Calls {
    started_pre_pulls: bool,
    read_pre_pulls: bool,
    applied: bool,
}

/// One reconcile of `gs` at `now`, the controller's steps in the controller's order.
fn reconcile(gs: &GitSync, now: Time, w: &World) -> (Done, Calls) {
    let mut calls = Calls::default();
    let done = steps(gs, now, w, &mut calls);
    (done, calls)
}

fn steps(gs: &GitSync, now: Time, w: &World, calls: &mut Calls) -> Done {
    macro_rules! step {
        ($e:expr) => {
            match $e {
                ControlFlow::Continue(look) => look,
                ControlFlow::Break(done) => return done,
            }
        };
    }
    let look = step!(begin(gs, now));
    if let Err(m) = &w.credentials {
        return look.credentials_failed(m);
    }
    if let Some(f) = w.fetch {
        return look.fetch_failed(&error(f, &w.tip));
    }
    let look = step!(look.after_fetch(&info(&w.tip)));
    if let Some(f) = w.prepare {
        return look.prepare_failed(&error(f, &w.tip));
    }
    let plan = w.plan();
    let mut look = look.after_prepare(&plan);
    if look.starts_pre_pulls().is_some() {
        calls.started_pre_pulls = true;
        look = look.pre_pulls_started(w.pre_pulls.clone());
    }
    if look.holds_for_pre_pull() {
        calls.read_pre_pulls = true;
        look = step!(look.after_pre_pull(w.progress.clone()));
    }
    let _inventory = look.applying();
    calls.applied = true;
    if let Some(f) = w.apply {
        return look.apply_failed(&error(f, &w.tip));
    }
    let (outcome, report, inventory) = w.applied();
    let look = look.after_apply(&plan, outcome, &report, inventory);
    let looked: Vec<(Health, Option<WorkloadProgress>)> = look
        .workloads()
        .iter()
        .map(|r| {
            let progress = WorkloadProgress {
                group: r.group.clone(),
                kind: r.kind.clone(),
                namespace: r.namespace.clone(),
                name: r.name.clone(),
                replicas: 2,
                ..Default::default()
            };
            (w.health.clone(), Some(progress))
        })
        .collect();
    look.after_rollout(&looked)
}

/// A GitSync through several reconciles.
struct Run {
    gs: GitSync,
    done: Done,
    calls: Calls,
}

impl Run {
    fn new(spec: &str) -> Run {
        Run {
            gs: gitsync(spec),
            done: Done {
                status: None,
                events: Vec::new(),
                drift: Vec::new(),
                commit: String::new(),
                clean_pre_pulls: None,
                wake: Wake::AwaitChange,
            },
            calls: Calls::default(),
        }
    }

    /// Reconciles at `now` (seconds) in `w`; the status it writes is the next one's.
    fn at(mut self, now: i64, w: &World) -> Run {
        let (done, calls) = reconcile(&self.gs, t(now), w);
        if let Some(s) = &done.status {
            self.gs.status = Some(s.clone());
        }
        self.done = done;
        self.calls = calls;
        self
    }

    fn annotate(mut self, key: &str, value: &str) -> Run {
        self.gs
            .metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert(key.into(), value.into());
        self
    }

    fn status(&self) -> GitSyncStatus {
        self.gs.status.clone().unwrap_or_default()
    }

    fn phase(&self, sha: &str) -> Option<CommitPhase> {
        self.status().commit(sha).map(|h| h.phase)
    }

    fn reason(&self, sha: &str) -> Option<CommitReason> {
        self.status().commit(sha).and_then(|h| h.reason)
    }

    fn events(&self) -> Vec<(EventType, &str)> {
        self.done
            .events
            .iter()
            .map(|e| (e.type_, e.reason.as_str()))
            .collect()
    }

    fn ready(&self) -> (String, String) {
        let c = self
            .status()
            .conditions
            .unwrap_or_default()
            .into_iter()
            .find(|c| c.type_ == "Ready")
            .expect("a Ready condition");
        (c.status, c.reason)
    }
}

const OFF: &str = "url: https://git.example/app\nprePull: {mode: Off}\n";
const BEFORE: &str = "url: https://git.example/app\nprePull: {timeoutSeconds: 120}\n";
const PARALLEL: &str = "url: https://git.example/app\nprePull: {mode: Parallel}\n";

#[test]
fn a_new_commit_is_detected_validated_applied_and_rolls_out_until_healthy() {
    let r = Run::new(OFF).at(0, &world(A));
    let h = r.status().commit(A).cloned().expect("a history entry");
    assert_eq!(h.phase, CommitPhase::RollingOut);
    for (phase, time) in [
        ("detected", &h.phase_times.detected),
        ("validated", &h.phase_times.validated),
        ("applying", &h.phase_times.applying),
        ("rolling out", &h.phase_times.rolling_out),
    ] {
        assert_eq!(time, &Some(t(0)), "{phase}");
    }
    assert_eq!(h.phase_times.pre_pulling, None, "pre-pull is off");
    assert_eq!(
        h.workloads.map(|w| w.len()),
        Some(1),
        "the CloneSet, not the ConfigMap"
    );
    assert_eq!(r.events(), vec![(Normal, "CommitApplied")]);
    assert_eq!(r.status().last_applied_commit.as_deref(), Some(A));
    assert_eq!(r.ready(), ("True".into(), "Succeeded".into()));
    assert_eq!(
        r.done.wake,
        Wake::After(ROLLOUT_POLL),
        "looked at again soon"
    );

    let r = r.at(2, &world(A).healthy());
    assert_eq!(r.phase(A), Some(CommitPhase::Healthy));
    assert_eq!(r.events(), vec![(Normal, "RolloutHealthy")]);
    assert_eq!(
        r.done.wake,
        Wake::After(Duration::from_secs(60)),
        "then at the interval"
    );
    let clean = r.done.clean_pre_pulls.clone().expect("a clean-up");
    assert!(clean.current_final, "a final commit's pre-pull jobs go");

    let r = r.at(62, &world(A).healthy());
    assert_eq!(r.phase(A), Some(CommitPhase::Healthy), "Healthy is final");
    assert_eq!(r.events(), vec![], "nothing new to say");
}

#[test]
fn the_phases_of_a_rollout_follow_the_workloads_health() {
    // (rule, health of the changed workload, phase after the first look, event)
    let cases = [
        (
            "all updated and available: Healthy",
            Health::healthy("ok"),
            CommitPhase::Healthy,
            Some("RolloutHealthy"),
        ),
        (
            "still updating: RollingOut",
            Health::progressing("1/2"),
            CommitPhase::RollingOut,
            None,
        ),
        (
            "paused at a partition: RollingOut",
            Health::suspended("partition"),
            CommitPhase::RollingOut,
            None,
        ),
        (
            "degraded: Failed",
            Health::degraded("crash loop"),
            CommitPhase::Failed,
            Some("RolloutFailed"),
        ),
    ];
    for (rule, health, phase, event) in cases {
        let r = Run::new(OFF).at(0, &world(A).with(|w| w.health = health.clone()));
        assert_eq!(r.phase(A), Some(phase), "{rule}");
        let mut want = vec![(Normal, "CommitApplied")];
        if let Some(e) = event {
            let type_ = if phase == CommitPhase::Failed {
                Warning
            } else {
                Normal
            };
            want.push((type_, e));
        }
        assert_eq!(r.events(), want, "{rule}");
        assert_eq!(
            r.status().commit(A).and_then(|h| h.status_message.clone()),
            Some(health.message.clone()),
            "{rule}: the history says why"
        );
    }
}

#[test]
fn a_commit_without_workloads_is_healthy_at_once() {
    let r = Run::new(OFF).at(0, &world(A).with(|w| w.objects = vec![configmap("conf")]));
    assert_eq!(r.phase(A), Some(CommitPhase::Healthy));
    assert_eq!(
        r.events(),
        vec![(Normal, "CommitApplied"), (Normal, "RolloutHealthy")]
    );
}

#[test]
fn a_newer_commit_supersedes_an_unfinished_one() {
    let r = Run::new(OFF).at(0, &world(A)).at(2, &world(B));
    assert_eq!(r.phase(A), Some(CommitPhase::Superseded));
    assert_eq!(
        r.status()
            .commit(A)
            .and_then(|h| h.phase_times.superseded.clone()),
        Some(t(2))
    );
    assert_eq!(r.phase(B), Some(CommitPhase::RollingOut));
    assert_eq!(
        r.status().history.map(|h| h[0].sha.clone()),
        Some(B.to_string()),
        "newest first"
    );
    // A finished commit stays as it ended.
    let r = Run::new(OFF).at(0, &world(A).healthy()).at(2, &world(B));
    assert_eq!(r.phase(A), Some(CommitPhase::Healthy));
}

#[test]
fn a_force_push_is_refused_until_the_annotation_accepts_it() {
    let rewritten = world(B).with(|w| w.fetch = Some(Fail::Rewritten));
    let r = Run::new(OFF).at(0, &world(A).healthy()).at(60, &rewritten);
    assert_eq!(r.phase(B), Some(CommitPhase::Failed));
    assert_eq!(r.reason(B), Some(CommitReason::HistoryRewritten));
    assert_eq!(r.events(), vec![(Warning, "HistoryRewritten")]);
    assert_eq!(
        r.status().last_applied_commit.as_deref(),
        Some(A),
        "the last good commit stays"
    );
    assert_eq!(r.ready(), ("False".into(), "SyncFailed".into()));
    assert!(!r.calls.applied);

    let r = r.at(120, &rewritten);
    assert_eq!(
        r.events(),
        vec![],
        "refused once, not announced at every look"
    );
    assert_eq!(r.reason(B), Some(CommitReason::HistoryRewritten));

    // With the annotation the fetch accepts the tip: the commit starts over as if new.
    let r = r
        .annotate(
            graft_api::graft::gitsync::ACCEPT_REWRITE_ANNOTATION,
            &B[..7],
        )
        .at(180, &world(B));
    assert_eq!(r.phase(B), Some(CommitPhase::RollingOut));
    assert_eq!(r.reason(B), None);
    let h = r.status().commit(B).cloned().expect("B");
    assert_eq!(h.phase_times.failed, None, "the refusal is forgotten");
    assert_eq!(h.phase_times.applying, Some(t(180)));
    assert_eq!(r.events(), vec![(Normal, "CommitApplied")]);
    assert_eq!(r.status().last_applied_commit.as_deref(), Some(B));
}

#[test]
fn the_accept_rewrite_annotation_reaches_the_fetch() {
    let gs = Run::new(OFF)
        .annotate(
            graft_api::graft::gitsync::ACCEPT_REWRITE_ANNOTATION,
            "bbbbbbb",
        )
        .gs;
    let ControlFlow::Continue(look) = begin(&gs, t(0)) else {
        panic!("not suspended")
    };
    assert_eq!(look.accept_rewrite(), Some("bbbbbbb"));
    assert_eq!(look.last_applied(), None);
}

#[test]
fn a_failing_commit_leaves_the_last_good_one_running() {
    // (rule, the world of the bad commit, reason, whether the apply was tried)
    let cases = [
        (
            "manifests that do not render or pass the dry-run",
            world(B).with(|w| w.prepare = Some(Fail::Invalid)),
            CommitReason::ValidationFailed,
            false,
        ),
        (
            "a write refused part way",
            world(B).with(|w| w.apply = Some(Fail::ApplyRefused)),
            CommitReason::ApplyFailed,
            true,
        ),
    ];
    for (rule, bad, reason, applied) in cases {
        let r = Run::new(OFF).at(0, &world(A).healthy()).at(60, &bad);
        assert_eq!(r.phase(B), Some(CommitPhase::Failed), "{rule}");
        assert_eq!(r.reason(B), Some(reason), "{rule}");
        assert_eq!(r.events(), vec![(Warning, reason.as_str())], "{rule}");
        assert_eq!(r.calls.applied, applied, "{rule}");
        assert_eq!(
            r.status().last_applied_commit.as_deref(),
            Some(A),
            "{rule}: lastAppliedCommit untouched"
        );
        assert_eq!(r.phase(A), Some(CommitPhase::Healthy), "{rule}");
        assert_eq!(r.ready(), ("False".into(), "SyncFailed".into()), "{rule}");
        assert!(
            r.status()
                .commit(B)
                .and_then(|h| h.status_message.clone())
                .is_some_and(|m| m.contains(B)),
            "{rule}: the history says why"
        );
        // Looked at again: still failed, nothing applied, no new Event.
        let again = r.at(120, &world(B).healthy());
        assert_eq!(again.phase(B), Some(CommitPhase::Failed), "{rule}");
        assert_eq!(again.events(), vec![], "{rule}");
        assert!(
            !again.calls.applied,
            "{rule}: a failed commit is not applied again"
        );
        assert_eq!(
            again.done.wake,
            Wake::After(Duration::from_secs(60)),
            "{rule}"
        );
    }
}

#[test]
fn an_unusable_commit_gets_its_own_failed_entry_once() {
    for (rule, fail) in [
        ("missing path", Fail::PathMissing),
        ("force-push", Fail::Rewritten),
    ] {
        let bad = world(B).with(|w| w.fetch = Some(fail));
        let r = Run::new(OFF)
            .at(0, &world(A).healthy())
            .at(60, &bad)
            .at(120, &bad);
        let entries: Vec<_> = r
            .status()
            .history
            .unwrap_or_default()
            .into_iter()
            .filter(|h| h.sha == B)
            .collect();
        assert_eq!(entries.len(), 1, "{rule}");
        assert_eq!(entries[0].phase, CommitPhase::Failed, "{rule}");
        assert_eq!(
            entries[0].message.as_deref(),
            Some("commit b"),
            "{rule}: with its message"
        );
        assert_eq!(
            r.status().last_attempted_commit.as_deref(),
            Some(B),
            "{rule}"
        );
        assert_eq!(r.status().last_applied_commit.as_deref(), Some(A), "{rule}");
    }
    let r = Run::new(OFF).at(0, &world(B).with(|w| w.fetch = Some(Fail::PathMissing)));
    assert_eq!(
        r.reason(B),
        Some(CommitReason::ValidationFailed),
        "a missing path reads as invalid"
    );
}

#[test]
fn credentials_and_fetch_failures_only_set_ready_false() {
    // (rule, world, Ready reason, wait)
    let cases = [
        (
            "unreadable credentials",
            world(A).with(|w| w.credentials = Err("Secret ns/git: not found".into())),
            "CredentialsFailed",
            Duration::from_secs(60),
        ),
        (
            "unreachable remote: retried within 30s",
            world(A).with(|w| w.fetch = Some(Fail::Unreachable)),
            "FetchFailed",
            RETRY_AFTER_FAILURE,
        ),
    ];
    for (rule, w, reason, wake) in cases {
        let r = Run::new(OFF).at(0, &w);
        assert_eq!(r.ready(), ("False".into(), reason.into()), "{rule}");
        assert_eq!(r.events(), vec![(Warning, reason)], "{rule}");
        assert_eq!(r.status().history, None, "{rule}: no commit recorded");
        assert_eq!(r.done.wake, Wake::After(wake), "{rule}");
    }
    // An interval shorter than 30s is kept.
    let r = Run::new("url: https://git.example/app\ninterval: 10s\n")
        .at(0, &world(A).with(|w| w.fetch = Some(Fail::Unreachable)));
    assert_eq!(r.done.wake, Wake::After(Duration::from_secs(10)));
}

#[test]
fn the_ready_condition_keeps_its_transition_time_while_its_status_holds() {
    let r = Run::new(OFF)
        .at(0, &world(A))
        .at(2, &world(A))
        .at(4, &world(B).with(|w| w.prepare = Some(Fail::Invalid)));
    let ready = |r: &Run| {
        r.status()
            .conditions
            .unwrap_or_default()
            .into_iter()
            .find(|c| c.type_ == "Ready")
            .map(|c| (c.status, c.last_transition_time))
    };
    assert_eq!(ready(&r), Some(("False".into(), t(4))));
    let r = r.at(6, &world(C)).at(8, &world(C));
    assert_eq!(
        ready(&r),
        Some(("True".into(), t(6))),
        "True since the first success after the failure"
    );
}

#[test]
fn a_suspended_gitsync_is_left_alone() {
    let r = Run::new("url: https://git.example/app\nsuspend: true\n").at(0, &world(A));
    assert_eq!(r.done.status, None, "no status write");
    assert_eq!(r.done.wake, Wake::AwaitChange);
    assert_eq!(r.calls, Calls::default());
}

#[test]
fn before_rollout_holds_the_apply_until_the_images_are_pulled() {
    let jobs = |finished: usize, answered: usize| Progress {
        jobs: 1,
        finished,
        answered,
        desired: 1,
        succeeded: finished as i64,
        ..Default::default()
    };
    let w = world(A).with(|w| {
        w.pre_pulls = Ok(1);
        w.progress = Ok(jobs(0, 1));
    });
    let r = Run::new(BEFORE).at(0, &w);
    assert_eq!(r.phase(A), Some(CommitPhase::PrePulling));
    assert!(!r.calls.applied, "held");
    assert_eq!(r.events(), vec![(Normal, "PrePulling")]);
    assert_eq!(r.done.wake, Wake::After(ROLLOUT_POLL));
    assert_eq!(
        r.done.clean_pre_pulls.as_ref().map(|c| c.current_final),
        Some(false),
        "older commits' jobs go, not this one's"
    );
    assert_eq!(r.status().last_applied_commit, None);

    let r = r.at(10, &w);
    assert!(!r.calls.started_pre_pulls, "the jobs are created once");
    assert!(!r.calls.applied, "still held");
    assert!(
        r.status()
            .commit(A)
            .and_then(|h| h.status_message.clone())
            .is_some_and(|m| m.starts_with("pre-pulling: 0/1"))
    );

    // (rule, progress at 40s, reason kept in the history, event type)
    let cases = [
        ("done: applied", Ok(jobs(1, 1)), None, Normal),
        (
            "no controller answered in 30s: skipped",
            Ok(jobs(0, 0)),
            Some(CommitReason::PrePullSkipped),
            Warning,
        ),
        (
            "unreadable: applied anyway",
            Err("forbidden".to_string()),
            Some(CommitReason::PrePullUnknown),
            Warning,
        ),
    ];
    for (rule, progress, reason, type_) in cases {
        let after = Run {
            gs: r.gs.clone(),
            done: r.done.clone(),
            calls: Calls::default(),
        }
        .at(40, &w.clone().with(|w| w.progress = progress.clone()));
        assert!(after.calls.applied, "{rule}");
        assert_eq!(after.phase(A), Some(CommitPhase::RollingOut), "{rule}");
        assert_eq!(after.reason(A), reason, "{rule}");
        assert_eq!(
            after.events(),
            vec![(type_, "PrePulled"), (Normal, "CommitApplied")],
            "{rule}"
        );
        assert_eq!(
            after
                .status()
                .commit(A)
                .and_then(|h| h.phase_times.applying.clone()),
            Some(t(40)),
            "{rule}"
        );
    }
    // A controller that answered but is slow: held until the timeout, then applied.
    let r = r.at(100, &w);
    assert!(!r.calls.applied, "answered: held past 30s");
    let r = r.at(120, &w);
    assert!(r.calls.applied);
    assert_eq!(r.reason(A), Some(CommitReason::PrePullTimedOut));
    assert_eq!(
        r.events(),
        vec![(Warning, "PrePulled"), (Normal, "CommitApplied")]
    );
}

#[test]
fn pre_pull_modes() {
    // (rule, spec, jobs created, whether the pre-pull was started, phase after the first look)
    let cases = [
        (
            "Off: no pre-pull",
            OFF,
            Ok(1),
            false,
            CommitPhase::RollingOut,
        ),
        (
            "Parallel: applied while pulling",
            PARALLEL,
            Ok(1),
            true,
            CommitPhase::RollingOut,
        ),
        (
            "no new image: applied at once",
            BEFORE,
            Ok(0),
            true,
            CommitPhase::RollingOut,
        ),
        (
            "jobs not created: applied without them",
            BEFORE,
            Err("forbidden".into()),
            true,
            CommitPhase::RollingOut,
        ),
    ];
    for (rule, spec, created, started, phase) in cases {
        let w = world(A).with(|w| w.pre_pulls = created.clone());
        let r = Run::new(spec).at(0, &w);
        assert_eq!(r.calls.started_pre_pulls, started, "{rule}");
        assert!(r.calls.applied, "{rule}");
        assert!(!r.calls.read_pre_pulls, "{rule}: no hold");
        assert_eq!(r.phase(A), Some(phase), "{rule}");
    }
    let r = Run::new(PARALLEL).at(0, &world(A).with(|w| w.pre_pulls = Ok(2)));
    assert_eq!(
        r.events(),
        vec![(Normal, "PrePulling"), (Normal, "CommitApplied")]
    );
    assert_eq!(
        r.status()
            .commit(A)
            .and_then(|h| h.phase_times.pre_pulling.clone()),
        Some(t(0))
    );
    let r = Run::new(BEFORE).at(0, &world(A).with(|w| w.pre_pulls = Err("forbidden".into())));
    assert_eq!(
        r.events(),
        vec![(Warning, "PrePullFailed"), (Normal, "CommitApplied")]
    );
    // A commit looked at again is not pre-pulled again.
    let r = Run::new(PARALLEL)
        .at(0, &world(A).with(|w| w.pre_pulls = Ok(2)))
        .at(2, &world(A));
    assert!(!r.calls.started_pre_pulls);
}

#[test]
fn a_later_apply_of_the_same_commit_reports_drift_it_reverted() {
    let r = Run::new(OFF).at(0, &world(A).healthy());
    let drifted = world(A).healthy().with(|w| {
        w.actions = vec![Action::Configured, Action::Unchanged];
        w.reverted = vec!["kubectl-edit".into()];
    });
    let r = r.at(60, &drifted);
    assert_eq!(r.events(), vec![(Normal, "DriftCorrected")]);
    let note = &r.done.events[0].note;
    assert!(note.contains("ns/web (changed by kubectl-edit)"), "{note}");
    assert_eq!(r.done.drift.len(), 1, "an Event on the reverted object too");
    assert_eq!(r.done.commit, A);
    // Nothing drifted: nothing to say.
    let r = r.at(
        120,
        &world(A)
            .healthy()
            .with(|w| w.actions = vec![Action::Unchanged; 2]),
    );
    assert_eq!(r.events(), vec![]);
    assert!(r.done.drift.is_empty());
}

#[test]
fn later_looks_follow_the_workloads_the_first_apply_changed() {
    let first = world(A).with(|w| w.actions = vec![Action::Unchanged, Action::Created]);
    let r = Run::new(OFF).at(0, &first);
    assert_eq!(
        r.phase(A),
        Some(CommitPhase::Healthy),
        "the CloneSet was unchanged: nothing to wait for"
    );
    let r = Run::new(OFF).at(0, &world(A)).at(
        2,
        &world(A).with(|w| w.actions = vec![Action::Unchanged; 2]),
    );
    assert_eq!(
        r.phase(A),
        Some(CommitPhase::RollingOut),
        "still waiting for the CloneSet the commit changed"
    );
    assert_eq!(
        r.status()
            .commit(A)
            .and_then(|h| h.workloads.clone())
            .map(|w| w.len()),
        Some(1)
    );
}

fn broadcastjob(name: &str) -> ObjectRef {
    ObjectRef {
        group: "apps.kruise.io".into(),
        version: "v1beta1".into(),
        kind: "BroadcastJob".into(),
        namespace: Some("ns".into()),
        name: name.into(),
    }
}

#[test]
fn a_commit_held_at_a_sync_wave_is_not_healthy_until_the_later_waves_ran() {
    let objects = vec![cloneset("web"), broadcastjob("check")];
    let held = world(A).with(|w| {
        w.objects = objects.clone();
        w.health = Health::healthy("all pods updated");
        w.held = Some("sync wave 1 waits for wave 0: CloneSet ns/web is Progressing".into());
    });
    let r = Run::new(OFF).at(0, &held);
    assert_eq!(
        r.phase(A),
        Some(CommitPhase::RollingOut),
        "the wave-1 job has not run: the commit cannot be Healthy"
    );
    let message = r.status().commit(A).and_then(|h| h.status_message.clone());
    assert_eq!(
        message.as_deref(),
        Some("sync wave 1 waits for wave 0: CloneSet ns/web is Progressing")
    );
    // The next look applies wave 1: the job is created and watched with the CloneSet.
    let all = world(A).with(|w| {
        w.objects = objects.clone();
        w.actions = vec![Action::Unchanged, Action::Created];
        w.health = Health::progressing("0 of 1 pods succeeded");
    });
    let r = r.at(2, &all);
    assert_eq!(r.phase(A), Some(CommitPhase::RollingOut));
    let watched: Vec<String> = r
        .status()
        .commit(A)
        .and_then(|h| h.workloads.clone())
        .unwrap_or_default()
        .iter()
        .map(|w| w.kind.clone())
        .collect();
    assert_eq!(watched, vec!["CloneSet", "BroadcastJob"]);
    let done = all.with(|w| {
        w.actions = vec![Action::Unchanged; 2];
        w.health = Health::healthy("1 of 1 pods succeeded");
    });
    assert_eq!(r.at(4, &done).phase(A), Some(CommitPhase::Healthy));
}

#[test]
fn replaced_jobs_are_announced() {
    let w = world(B).with(|w| {
        w.objects = vec![broadcastjob("check")];
    });
    let mut r = Run::new(OFF).at(0, &world(A));
    // The world builds outcomes without replacements; this one reports one.
    let (mut outcome, report, inventory) = w.applied();
    outcome.replaced = vec!["BroadcastJob.apps.kruise.io ns/check".into()];
    let gs = r.gs.clone();
    let look = match begin(&gs, t(2)) {
        ControlFlow::Continue(l) => l,
        ControlFlow::Break(_) => panic!("begin stopped"),
    };
    let look = match look.after_fetch(&info(B)) {
        ControlFlow::Continue(l) => l,
        ControlFlow::Break(_) => panic!("fetch stopped"),
    };
    let plan = w.plan();
    let mut look = look.after_prepare(&plan);
    let _ = look.applying();
    let look = look.after_apply(&plan, outcome, &report, inventory);
    r.done = look.after_rollout(&[]);
    let replaced: Vec<&str> = r
        .done
        .events
        .iter()
        .filter(|e| e.reason.as_str() == "Replaced")
        .map(|e| e.note.as_str())
        .collect();
    assert_eq!(replaced.len(), 1, "{:?}", r.done.events);
    assert!(
        replaced[0].contains("BroadcastJob.apps.kruise.io ns/check"),
        "{}",
        replaced[0]
    );
}

#[test]
fn prune_results_are_announced() {
    let w = world(B).with(|w| {
        w.pruned = vec!["ConfigMap ns/old".into()];
        w.prune_failures = vec!["Secret ns/keep: forbidden".into()];
    });
    let r = Run::new(OFF).at(0, &world(A)).at(2, &w);
    assert_eq!(
        r.events(),
        vec![
            (Normal, "CommitApplied"),
            (Normal, "Pruned"),
            (Warning, "PruneFailed")
        ]
    );
    assert!(r.done.events[1].note.contains(
        "Pruned 1 object(s) that left the repository at commit bbbbbbb: ConfigMap ns/old"
    ));
    assert_eq!(r.done.events[2].note, "Secret ns/keep: forbidden");
    assert_eq!(
        r.ready(),
        ("True".into(), "Succeeded".into()),
        "a prune failure does not fail the sync"
    );
    assert!(
        r.status().conditions.unwrap_or_default()[0]
            .message
            .ends_with("1 pruned")
    );
}

#[test]
fn every_sync_error_has_its_history_reason() {
    let cases = [
        (Fail::Unreachable, CommitReason::FetchFailed),
        (Fail::Rewritten, CommitReason::HistoryRewritten),
        (Fail::PathMissing, CommitReason::ValidationFailed),
        (Fail::Invalid, CommitReason::ValidationFailed),
        (Fail::ApplyRefused, CommitReason::ApplyFailed),
        (Fail::GitTask, CommitReason::ApplyFailed),
    ];
    for (fail, reason) in cases {
        assert_eq!(reason_of(&error(fail, A)), reason, "{fail:?}");
    }
}

#[test]
fn pre_pull_jobs_are_looked_for_in_the_namespaces_of_the_gitsync_and_its_objects() {
    let w = world(A).with(|w| {
        w.objects.push(ObjectRef {
            namespace: Some("other".into()),
            ..cloneset("api")
        });
        w.pre_pulls = Ok(1);
        w.progress = Ok(Progress {
            jobs: 1,
            answered: 1,
            ..Default::default()
        });
    });
    let r = Run::new(BEFORE).at(0, &w);
    let clean = r.done.clean_pre_pulls.expect("a clean-up");
    assert_eq!(
        clean.namespaces.into_iter().collect::<Vec<_>>(),
        vec!["ns".to_string(), "other".to_string()]
    );
    assert_eq!(clean.commit, A);
}
