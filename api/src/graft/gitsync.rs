//! GitSync (`graft.dev/v1alpha1`): keep the cluster equal to a path of a Git repository, and
//! record for every commit how far its rollout got.

use std::time::Duration;

use k8s_openapi::api::core::v1::LocalObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::field::{FieldError, FieldErrors};

/// Default `spec.interval`.
pub const DEFAULT_INTERVAL: &str = "1m";
/// Default `spec.path`.
pub const DEFAULT_PATH: &str = ".";
/// Default `spec.prePull.timeoutSeconds`.
pub const DEFAULT_PRE_PULL_TIMEOUT_SECONDS: i32 = 600;
/// Default `spec.prePull.parallelism`.
pub const DEFAULT_PRE_PULL_PARALLELISM: i32 = 1;
/// Most entries kept in `status.history` (newest first).
pub const MAX_HISTORY: usize = 20;
/// Shortest accepted `spec.interval`.
pub const MIN_INTERVAL: Duration = Duration::from_secs(5);
/// Condition type set when the last commit is applied and healthy.
pub const CONDITION_READY: &str = "Ready";
/// Annotation on a GitSync: apply a rewritten history (a force-push) whose tip starts with
/// this commit SHA. Without it, a tip that is not a descendant of the last applied commit is
/// refused and the last applied commit stays.
pub const ACCEPT_REWRITE_ANNOTATION: &str = "graft.dev/accept-rewrite";

/// Desired state of a GitSync.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "graft.dev",
    version = "v1alpha1",
    kind = "GitSync",
    namespaced,
    shortname = "gs",
    status = "GitSyncStatus",
    derive = "PartialEq",
    doc = "GitSync keeps the cluster equal to a path of a Git repository and records every commit's rollout.",
    printcolumn(name = "URL", type_ = "string", json_path = ".spec.url"),
    printcolumn(
        name = "Ref",
        type_ = "string",
        json_path = ".spec.ref.branch",
        description = "Branch followed (empty for a tag, commit or the remote's default branch)."
    ),
    printcolumn(
        name = "Commit",
        type_ = "string",
        json_path = ".status.lastAppliedCommit"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct GitSyncSpec {
    /// Repository URL: `https://`, `http://`, `ssh://`, `git@host:path` or `file://`.
    #[schemars(length(min = 1, max = 2048))]
    pub url: String,
    /// Branch, tag or commit to follow; unset means the remote's default branch.
    #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
    pub git_ref: Option<GitRef>,
    /// Directory of the repository holding the manifests (default `.`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024), extend("default" = "."))]
    pub path: Option<String>,
    /// How often to poll, as a Go duration such as `30s`, `1m`, `1h30m` (default `1m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32), extend("default" = "1m", "x-kubernetes-validations" = [{
        "rule": "self.matches('^([0-9]+(\\\\.[0-9]+)?(ms|s|m|h))+$')",
        "message": "interval must be a duration such as 30s, 1m or 1h30m"
    }]))]
    pub interval: Option<String>,
    /// Delete objects that were applied from an earlier commit and are gone from Git.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = false))]
    pub prune: Option<bool>,
    /// Stop syncing (the last applied commit keeps running).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = false))]
    pub suspend: Option<bool>,
    /// Secret with Git credentials (`username`/`password`, or `identity`/`known_hosts` for SSH).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<LocalObjectReference>,
    /// Pull the new images of a commit on the nodes before (or while) rolling it out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = {}))]
    pub pre_pull: Option<PrePull>,
}

/// What to follow in the repository: one of branch, tag or commit.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "(has(self.branch) ? 1 : 0) + (has(self.tag) ? 1 : 0) + (has(self.commit) ? 1 : 0) <= 1",
    "message": "set only one of branch, tag and commit"
}]))]
pub struct GitRef {
    /// Branch name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 255))]
    pub branch: Option<String>,
    /// Tag name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 255))]
    pub tag: Option<String>,
    /// Full commit SHA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub commit: Option<String>,
}

/// Pre-pull policy of a GitSync.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrePull {
    /// `Off`, `Parallel` (pull while applying) or `BeforeRollout` (default: apply once pulled
    /// or timed out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "BeforeRollout"))]
    pub mode: Option<PrePullMode>,
    /// Seconds to wait for the pulls (default 600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1), extend("default" = 600))]
    pub timeout_seconds: Option<i32>,
    /// Nodes pulling at once per image (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1), extend("default" = 1))]
    pub parallelism: Option<i32>,
}

/// `prePull.mode`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum PrePullMode {
    /// No pre-pull.
    Off,
    /// Pull while the commit is applied.
    Parallel,
    /// Pull first, then apply (default).
    #[default]
    BeforeRollout,
}

/// Observed state of a GitSync.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct GitSyncStatus {
    /// Generation the status was computed for.
    pub observed_generation: i64,
    /// `Ready` and others.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 16))]
    pub conditions: Option<Vec<Condition>>,
    /// Last commit applied successfully.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_applied_commit: Option<String>,
    /// Last commit graft tried to apply.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_attempted_commit: Option<String>,
    /// Objects applied from the last applied commit (used for pruning).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inventory: Option<Vec<InventoryEntry>>,
    /// Commits seen, newest first, at most 20.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 20))]
    pub history: Option<Vec<CommitRecord>>,
}

/// An applied object.
#[derive(
    Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
pub struct InventoryEntry {
    /// API group (empty for the core group).
    #[serde(default)]
    pub group: String,
    /// API version.
    pub version: String,
    /// Kind.
    pub kind: String,
    /// Namespace (unset for cluster-scoped objects).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
}

/// What happened to one commit.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommitRecord {
    /// Commit SHA.
    pub sha: String,
    /// First line of the commit message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Commit author (`Name <email>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// Commit time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<Time>,
    /// Current phase.
    pub phase: CommitPhase,
    /// When each phase was entered.
    #[serde(default)]
    pub phase_times: PhaseTimes,
    /// Machine-readable reason of the phase (e.g. `ValidationFailed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    // A plain string in the CRD, as it always was: a reason added later must not make older
    // status readers (or the schema) reject the object.
    #[schemars(with = "Option<String>")]
    pub reason: Option<CommitReason>,
    /// Human-readable detail of the phase (file, document and cause for failures).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
    /// Workloads the commit changed and their rollout progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 256))]
    pub workloads: Option<Vec<WorkloadProgress>>,
}

/// Phase of a commit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum CommitPhase {
    /// Seen in the repository.
    #[default]
    Detected,
    /// Rendered and accepted by a dry-run.
    Validated,
    /// New images are being pulled on the nodes.
    PrePulling,
    /// Objects are being applied.
    Applying,
    /// Workloads are rolling out.
    RollingOut,
    /// Every changed workload is updated and available.
    Healthy,
    /// Something failed; the last good commit keeps running.
    Failed,
    /// A newer commit arrived before this one finished.
    Superseded,
}

impl CommitPhase {
    /// True for phases a commit never leaves.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Healthy | Self::Failed | Self::Superseded)
    }
}

/// Why a commit is where it is (`status.history[].reason`), and the reasons of the `Ready`
/// condition. Serialized as the variant name, the strings the status always carried.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CommitReason {
    /// The manifests do not render, or the API server's dry-run refused an object; also a
    /// fetched commit whose path is missing or has a file over the size limit.
    ValidationFailed,
    /// The repository could not be fetched or read.
    FetchFailed,
    /// The API server refused a write part way through the apply.
    ApplyFailed,
    /// The new tip does not descend from the last applied commit (a force-push), refused until
    /// the accept-rewrite annotation names it.
    HistoryRewritten,
    /// The BeforeRollout pre-pull did not finish in `prePull.timeoutSeconds`; applied anyway.
    PrePullTimedOut,
    /// No ImagePullJob controller answered; applied without the pre-pull.
    PrePullSkipped,
    /// The pre-pull jobs could not be read; applied anyway.
    PrePullUnknown,
    /// `Ready`: the credentials Secret could not be read or used.
    CredentialsFailed,
    /// `Ready`: the last commit failed (its history entry says why).
    SyncFailed,
    /// `Ready`: the commit is applied.
    Succeeded,
    /// A reason this version of graft does not know (written by a newer one): read as this, so
    /// one such entry never makes the whole GitSync unreadable to the watches.
    #[serde(other)]
    Unknown,
}

impl CommitReason {
    /// The reason as written in the status (`ValidationFailed`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ValidationFailed => "ValidationFailed",
            Self::FetchFailed => "FetchFailed",
            Self::ApplyFailed => "ApplyFailed",
            Self::HistoryRewritten => "HistoryRewritten",
            Self::PrePullTimedOut => "PrePullTimedOut",
            Self::PrePullSkipped => "PrePullSkipped",
            Self::PrePullUnknown => "PrePullUnknown",
            Self::CredentialsFailed => "CredentialsFailed",
            Self::SyncFailed => "SyncFailed",
            Self::Succeeded => "Succeeded",
            Self::Unknown => "Unknown",
        }
    }
}

impl std::fmt::Display for CommitReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Reads as its status string, so `record.reason.as_deref()` is the text a user sees.
impl std::ops::Deref for CommitReason {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

/// Reasons of the Events the GitSync controller publishes about a GitSync (and, for
/// [`Self::DriftCorrected`], about the object whose drift it reverted).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventReason {
    /// The commit failed for this reason (validation, fetch, apply, history rewrite,
    /// credentials).
    Failed(CommitReason),
    /// Pre-pull jobs were created for the commit's new images.
    PrePulling,
    /// The pre-pull jobs could not be created; the commit applies without them.
    PrePullFailed,
    /// The BeforeRollout hold ended (done, timed out, skipped or unknown).
    PrePulled,
    /// A new commit was applied.
    CommitApplied,
    /// Edits made outside Git were reverted.
    DriftCorrected,
    /// Objects that left the repository were deleted.
    Pruned,
    /// An object that left the repository could not be deleted.
    PruneFailed,
    /// Jobs whose definition changed were deleted and created again.
    Replaced,
    /// Every workload the commit changed is updated and available.
    RolloutHealthy,
    /// A workload the commit changed is degraded.
    RolloutFailed,
}

impl EventReason {
    /// The Event's `reason` field.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Failed(r) => r.as_str(),
            Self::PrePulling => "PrePulling",
            Self::PrePullFailed => "PrePullFailed",
            Self::PrePulled => "PrePulled",
            Self::CommitApplied => "CommitApplied",
            Self::DriftCorrected => "DriftCorrected",
            Self::Pruned => "Pruned",
            Self::PruneFailed => "PruneFailed",
            Self::Replaced => "Replaced",
            Self::RolloutHealthy => "RolloutHealthy",
            Self::RolloutFailed => "RolloutFailed",
        }
    }
}

impl std::fmt::Display for EventReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// When each phase was entered.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PhaseTimes {
    /// Detected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detected: Option<Time>,
    /// Validated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validated: Option<Time>,
    /// PrePulling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_pulling: Option<Time>,
    /// Applying.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applying: Option<Time>,
    /// RollingOut.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rolling_out: Option<Time>,
    /// Healthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy: Option<Time>,
    /// Failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<Time>,
    /// Superseded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub superseded: Option<Time>,
}

impl PhaseTimes {
    /// The slot of `phase`.
    pub fn slot_mut(&mut self, phase: CommitPhase) -> &mut Option<Time> {
        match phase {
            CommitPhase::Detected => &mut self.detected,
            CommitPhase::Validated => &mut self.validated,
            CommitPhase::PrePulling => &mut self.pre_pulling,
            CommitPhase::Applying => &mut self.applying,
            CommitPhase::RollingOut => &mut self.rolling_out,
            CommitPhase::Healthy => &mut self.healthy,
            CommitPhase::Failed => &mut self.failed,
            CommitPhase::Superseded => &mut self.superseded,
        }
    }
}

/// Rollout progress of one workload changed by a commit.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadProgress {
    /// API group.
    #[serde(default)]
    pub group: String,
    /// Kind.
    pub kind: String,
    /// Namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
    /// Desired replicas.
    #[serde(default)]
    pub replicas: i32,
    /// Replicas at the new revision.
    #[serde(default)]
    pub updated: i32,
    /// Ready replicas.
    #[serde(default)]
    pub ready: i32,
    /// Available replicas.
    #[serde(default)]
    pub available: i32,
    /// Jobs (BroadcastJob: one pod per node): pods that failed. Absent for the other kinds.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub failed: i32,
}

fn is_zero(v: &i32) -> bool {
    *v == 0
}

impl GitSyncStatus {
    /// Records a newly detected commit at the head of the history: entries of unfinished
    /// commits become `Superseded`, the list is cut to [`MAX_HISTORY`]. A commit already at the
    /// head is left as it is.
    pub fn record_commit(&mut self, mut record: CommitRecord, now: &Time) {
        let history = self.history.get_or_insert_with(Vec::new);
        if history.first().is_some_and(|h| h.sha == record.sha) {
            return;
        }
        for h in history.iter_mut().filter(|h| !h.phase.is_final()) {
            h.phase = CommitPhase::Superseded;
            *h.phase_times.slot_mut(CommitPhase::Superseded) = Some(now.clone());
        }
        let slot = record.phase_times.slot_mut(record.phase);
        if slot.is_none() {
            *slot = Some(now.clone());
        }
        history.retain(|h| h.sha != record.sha);
        history.insert(0, record);
        history.truncate(MAX_HISTORY);
    }

    /// The history entry of commit `sha`, if it is in the history.
    pub fn commit(&self, sha: &str) -> Option<&CommitRecord> {
        self.history.iter().flatten().find(|h| h.sha == sha)
    }

    /// The history entry of commit `sha`, to change it.
    pub fn commit_mut(&mut self, sha: &str) -> Option<&mut CommitRecord> {
        self.history.iter_mut().flatten().find(|h| h.sha == sha)
    }

    /// Moves the commit `sha` to `phase` at `now`; false if the commit is not in the history.
    pub fn set_phase(&mut self, sha: &str, phase: CommitPhase, now: &Time) -> bool {
        let Some(h) = self.commit_mut(sha) else {
            return false;
        };
        h.phase = phase;
        *h.phase_times.slot_mut(phase) = Some(now.clone());
        true
    }
}

impl GitSyncSpec {
    /// A copy with the defaults: path `.`, interval `1m`, prune and suspend false, pre-pull
    /// `BeforeRollout` with 600 s timeout and parallelism 1.
    pub fn defaulted(&self) -> Self {
        let mut s = self.clone();
        s.path.get_or_insert_with(|| DEFAULT_PATH.to_string());
        s.interval
            .get_or_insert_with(|| DEFAULT_INTERVAL.to_string());
        s.prune.get_or_insert(false);
        s.suspend.get_or_insert(false);
        let p = s.pre_pull.get_or_insert_with(Default::default);
        p.mode.get_or_insert(PrePullMode::BeforeRollout);
        p.timeout_seconds
            .get_or_insert(DEFAULT_PRE_PULL_TIMEOUT_SECONDS);
        p.parallelism.get_or_insert(DEFAULT_PRE_PULL_PARALLELISM);
        s
    }

    /// The poll interval (default 1m).
    pub fn interval(&self) -> Result<Duration, String> {
        parse_duration(self.interval.as_deref().unwrap_or(DEFAULT_INTERVAL))
    }

    /// Checks url, ref, path, interval and pre-pull settings.
    pub fn validate(&self) -> FieldErrors {
        let mut errs = FieldErrors::default();
        let url = self.url.trim();
        let scheme_ok = ["https://", "http://", "ssh://", "file://"]
            .iter()
            .any(|p| url.starts_with(p))
            || (url.contains('@') && url.contains(':') && !url.contains("://"));
        if url.is_empty() {
            errs.push(FieldError::required("spec.url", ""));
        } else if !scheme_ok {
            errs.push(FieldError::invalid(
                "spec.url",
                url,
                "must start with https://, http://, ssh://, file:// or be user@host:path",
            ));
        }
        if let Some(r) = &self.git_ref {
            let set = [&r.branch, &r.tag, &r.commit]
                .iter()
                .filter(|v| v.is_some())
                .count();
            if set > 1 {
                errs.push(FieldError::invalid(
                    "spec.ref",
                    "multiple",
                    "set only one of branch, tag and commit",
                ));
            }
            if let Some(c) = &r.commit
                && !(c.len() >= 7 && c.len() <= 64 && c.bytes().all(|b| b.is_ascii_hexdigit()))
            {
                errs.push(FieldError::invalid(
                    "spec.ref.commit",
                    c,
                    "must be a hexadecimal commit SHA",
                ));
            }
        }
        if let Some(p) = &self.path
            && (p.starts_with('/') || p.split('/').any(|s| s == ".."))
        {
            errs.push(FieldError::invalid(
                "spec.path",
                p,
                "must be relative and stay inside the repository",
            ));
        }
        match self.interval() {
            Err(e) => errs.push(FieldError::invalid(
                "spec.interval",
                self.interval.as_deref().unwrap_or_default(),
                &e,
            )),
            Ok(d) if d < MIN_INTERVAL => errs.push(FieldError::invalid(
                "spec.interval",
                self.interval.as_deref().unwrap_or_default(),
                "must be at least 5s",
            )),
            Ok(_) => {}
        }
        if let Some(p) = &self.pre_pull {
            if let Some(t) = p.timeout_seconds
                && t < 1
            {
                errs.push(FieldError::invalid(
                    "spec.prePull.timeoutSeconds",
                    t,
                    "must be at least 1",
                ));
            }
            if let Some(n) = p.parallelism
                && n < 1
            {
                errs.push(FieldError::invalid(
                    "spec.prePull.parallelism",
                    n,
                    "must be at least 1",
                ));
            }
        }
        errs
    }
}

/// Parses a Go-style duration made of `<number><unit>` parts with units `h`, `m`, `s`, `ms`
/// (e.g. `1h30m`, `1.5s`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("{s:?} is not a duration such as 30s, 1m or 1h30m");
    if s.is_empty() {
        return Err(bad());
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        if num_len == 0 {
            return Err(bad());
        }
        let value: f64 = rest[..num_len].parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let (unit, len) = if rest.starts_with("ms") {
            (0.001, 2)
        } else if rest.starts_with('h') {
            (3600.0, 1)
        } else if rest.starts_with('m') {
            (60.0, 1)
        } else if rest.starts_with('s') {
            (1.0, 1)
        } else {
            return Err(bad());
        };
        total += value * unit;
        rest = &rest[len..];
    }
    if !total.is_finite() || total > 1e9 {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use serde_json::json;

    fn t(s: &str) -> Time {
        serde_json::from_value(json!(s)).unwrap()
    }

    #[test]
    fn defaults_are_pinned() {
        let s: GitSyncSpec =
            serde_json::from_value(json!({"url": "https://git.example/repo.git"})).unwrap();
        assert_eq!(
            serde_json::to_value(s.defaulted()).unwrap(),
            json!({
                "url": "https://git.example/repo.git",
                "path": ".",
                "interval": "1m",
                "prune": false,
                "suspend": false,
                "prePull": {"mode": "BeforeRollout", "timeoutSeconds": 600, "parallelism": 1}
            })
        );
        assert_eq!(s.interval().unwrap(), Duration::from_secs(60));
        assert!(s.validate().is_empty());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        for bad in ["", "1", "m", "1d", "-1s", "1m1"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn validation_table() {
        let cases = [
            (json!({"url": ""}), "spec.url"),
            (json!({"url": "ftp://x"}), "spec.url"),
            (
                json!({"url": "git@github.com:o/r.git", "ref": {"branch": "main", "tag": "v1"}}),
                "spec.ref",
            ),
            (
                json!({"url": "https://x/r", "ref": {"commit": "zzz"}}),
                "spec.ref.commit",
            ),
            (json!({"url": "https://x/r", "path": "../etc"}), "spec.path"),
            (
                json!({"url": "https://x/r", "interval": "1s"}),
                "spec.interval",
            ),
            (
                json!({"url": "https://x/r", "interval": "often"}),
                "spec.interval",
            ),
            (
                json!({"url": "https://x/r", "prePull": {"parallelism": 0}}),
                "spec.prePull.parallelism",
            ),
        ];
        for (v, field) in cases {
            let s: GitSyncSpec = serde_json::from_value(v.clone()).unwrap();
            assert!(s.validate().has_field(field), "{v}: {}", s.validate());
        }
    }

    #[test]
    fn reasons_serialize_as_the_status_strings() {
        let all = [
            CommitReason::ValidationFailed,
            CommitReason::FetchFailed,
            CommitReason::ApplyFailed,
            CommitReason::HistoryRewritten,
            CommitReason::PrePullTimedOut,
            CommitReason::PrePullSkipped,
            CommitReason::PrePullUnknown,
            CommitReason::CredentialsFailed,
            CommitReason::SyncFailed,
            CommitReason::Succeeded,
        ];
        for r in all {
            assert_eq!(serde_json::to_value(r).unwrap(), json!(r.as_str()));
            let back: CommitReason = serde_json::from_value(json!(r.as_str())).unwrap();
            assert_eq!(back, r);
            assert_eq!(EventReason::Failed(r).as_str(), &*r);
        }
        let record: CommitRecord = serde_json::from_value(
            json!({"sha": "a", "phase": "Failed", "reason": "HistoryRewritten"}),
        )
        .unwrap();
        assert_eq!(record.reason.as_deref(), Some("HistoryRewritten"));
        assert_eq!(EventReason::DriftCorrected.to_string(), "DriftCorrected");
        // A newer graft's reason does not make the record (and so the GitSync) unreadable.
        let record: CommitRecord = serde_json::from_value(
            json!({"sha": "a", "phase": "Failed", "reason": "SomethingNew"}),
        )
        .unwrap();
        assert_eq!(record.reason, Some(CommitReason::Unknown));
    }

    #[test]
    fn the_crd_keeps_the_reason_a_plain_string() {
        let schema = serde_json::to_value(schemars::schema_for!(CommitRecord)).unwrap();
        assert_eq!(
            schema["properties"]["reason"]["type"],
            json!(["string", "null"])
        );
    }

    #[test]
    fn history_is_bounded_newest_first_and_supersedes() {
        let mut st = GitSyncStatus::default();
        let now = t("2026-01-01T00:00:00Z");
        st.record_commit(
            CommitRecord {
                sha: "a".into(),
                ..Default::default()
            },
            &now,
        );
        assert!(st.set_phase("a", CommitPhase::RollingOut, &now));
        st.record_commit(
            CommitRecord {
                sha: "b".into(),
                ..Default::default()
            },
            &now,
        );
        let h = st.history.clone().unwrap();
        assert_eq!(h[0].sha, "b");
        assert_eq!(h[0].phase_times.detected, Some(now.clone()));
        assert_eq!(h[1].phase, CommitPhase::Superseded);
        for i in 0..30 {
            st.record_commit(
                CommitRecord {
                    sha: format!("c{i}"),
                    ..Default::default()
                },
                &now,
            );
        }
        assert!(!st.set_phase("missing", CommitPhase::Failed, &now));
        let h = st.history.unwrap();
        assert_eq!(h.len(), MAX_HISTORY);
        assert_eq!(h[0].sha, "c29");
    }
}
