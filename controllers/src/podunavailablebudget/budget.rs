//! The status arithmetic of a PodUnavailableBudget (kruise's `syncPodUnavailableBudget`), pure:
//! the budget (with the status maps the webhook wrote), its pods, the total, the clock in; the
//! status to write, when to look again and the pods to warn about out.
//!
//! - `desiredAvailable` = total − maxUnavailable (percent of total rounded up, at least 0), or
//!   minAvailable (percent rounded up); maxUnavailable wins.
//! - an entry of `disruptedPods` lives 20 s after it was recorded, one of `unavailablePods`
//!   10 s; an entry whose pod is gone or inactive goes at once. An expired disruption of a pod
//!   that still exists gets the pod a `NotDeleted` warning.
//! - `currentAvailable` counts the active pods not in either map that are running, Ready, carry
//!   no `unavailable-pod.kruise.io/*` label and whose containers run what their spec says.
//! - `unavailableAllowed` = max(0, current − desired).
//!
//! `ignoredPodSelector` and `pub.kruise.io/no-protect` change nothing here: in kruise they only
//! let the webhook wave a pod through; such pods still count in the status.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use graft_api::labels;
use graft_api::policy::v1beta1::{PodUnavailableBudget, PodUnavailableBudgetStatus};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{OwnerReference, Time};
use k8s_openapi::jiff::{SignedDuration, Timestamp};

/// How long a recorded deletion or eviction counts before the pod must be gone (kruise's
/// `DeletionTimeout`).
pub const DELETION_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a recorded in-place update counts before the pod's own readiness decides again
/// (kruise's `UpdatedDelayCheckTime`).
pub const UPDATED_DELAY_CHECK: Duration = Duration::from_secs(10);

/// What one status computation reads.
pub struct Snapshot<'a> {
    /// The budget, freshest known version (its status maps hold the webhook's records).
    pub budget: &'a PodUnavailableBudget,
    /// The budget's pods (inactive ones are skipped here).
    pub pods: &'a [&'a Pod],
    /// Pods the budget counts: the workload's replicas or `protectTotalReplicas`.
    pub total_replicas: i32,
    /// Now.
    pub now: Timestamp,
}

/// The outcome: the status, whether it differs from the one the budget has, when to look again.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// The status to write.
    pub status: PodUnavailableBudgetStatus,
    /// The budget's status differs from [`Plan::status`] (write it).
    pub changed: bool,
    /// The next time a recorded entry expires, from now.
    pub recheck_after: Option<Duration>,
    /// Pods whose recorded deletion expired while they still exist (Event `NotDeleted`).
    pub not_deleted: Vec<String>,
}

/// kruise's `IsPodActive`: not Succeeded, not Failed, not being deleted.
pub fn is_active(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    !matches!(phase, Some("Succeeded" | "Failed")) && pod.metadata.deletion_timestamp.is_none()
}

/// kruise's `IsPodReady` for budgets: running, Ready, not being deleted, and no
/// `unavailable-pod.kruise.io/*` label.
pub fn is_ready(pod: &Pod) -> bool {
    let status = pod.status.as_ref();
    let running = status.and_then(|s| s.phase.as_deref()) == Some("Running");
    let ready = status
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    let unavailable_label = pod.metadata.labels.as_ref().is_some_and(|l| {
        l.keys()
            .any(|k| k.starts_with(labels::UNAVAILABLE_POD_LABEL_PREFIX))
    });
    running && ready && pod.metadata.deletion_timestamp.is_none() && !unavailable_label
}

/// kruise's `IsPodStateConsistent`: when every container image is a digest, each container
/// runs that digest; otherwise the pod's recorded in-place update (if any) has completed.
pub fn is_consistent(pod: &Pod) -> bool {
    let Some(spec) = pod.spec.as_ref() else {
        return true;
    };
    let statuses = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_deref())
        .unwrap_or_default();
    let mut all_digest = true;
    for c in &spec.containers {
        let Some(image) = c.image.as_deref() else {
            all_digest = false;
            continue;
        };
        let Some((_, digest)) = image.split_once('@') else {
            all_digest = false;
            continue;
        };
        let runs_it = statuses
            .iter()
            .find(|s| s.name == c.name)
            .is_some_and(|s| s.image_id.ends_with(digest));
        if !runs_it {
            return false;
        }
    }
    all_digest || crate::inplace::is_update_completed(pod).unwrap_or(false)
}

/// A pod that counts as available for a budget.
pub fn is_available(pod: &Pod) -> bool {
    is_active(pod) && is_ready(pod) && is_consistent(pod)
}

fn expiry(at: &Time, ttl: Duration) -> Timestamp {
    let ttl = SignedDuration::try_from(ttl).unwrap_or(SignedDuration::MAX);
    at.0.checked_add(ttl).unwrap_or(Timestamp::MAX)
}

fn until(later: Timestamp, now: Timestamp) -> Duration {
    Duration::try_from(later.duration_since(now)).unwrap_or_default()
}

fn non_empty(m: BTreeMap<String, Time>) -> Option<BTreeMap<String, Time>> {
    (!m.is_empty()).then_some(m)
}

fn same_map(a: &Option<BTreeMap<String, Time>>, b: &Option<BTreeMap<String, Time>>) -> bool {
    a.as_ref().filter(|m| !m.is_empty()) == b.as_ref().filter(|m| !m.is_empty())
}

/// The status of the budget in `s`, or why `desiredAvailable` cannot be computed.
pub fn plan(s: &Snapshot) -> Result<Plan, String> {
    let desired = s.budget.spec.desired_available(s.total_replicas)?;
    let old = s.budget.status.clone().unwrap_or_default();
    let recorded_disrupted = old.disrupted_pods.clone().unwrap_or_default();
    let recorded_unavailable = old.unavailable_pods.clone().unwrap_or_default();

    let mut disrupted = BTreeMap::new();
    let mut unavailable = BTreeMap::new();
    let mut not_deleted = Vec::new();
    let mut recheck: Option<Timestamp> = None;
    let keep_until = |at: Timestamp, recheck: &mut Option<Timestamp>| {
        if recheck.is_none_or(|r| at < r) {
            *recheck = Some(at);
        }
    };
    for pod in s.pods.iter().filter(|p| is_active(p)) {
        let name = pod.metadata.name.clone().unwrap_or_default();
        if let Some(at) = recorded_disrupted.get(&name) {
            let due = expiry(at, DELETION_TIMEOUT);
            if due < s.now {
                not_deleted.push(name.clone());
            } else {
                disrupted.insert(name.clone(), at.clone());
                keep_until(due, &mut recheck);
            }
        }
        if let Some(at) = recorded_unavailable.get(&name) {
            let due = expiry(at, UPDATED_DELAY_CHECK);
            if due >= s.now {
                unavailable.insert(name.clone(), at.clone());
                keep_until(due, &mut recheck);
            }
        }
    }

    let recorded: BTreeSet<&String> = disrupted.keys().chain(unavailable.keys()).collect();
    let current = s
        .pods
        .iter()
        .filter(|p| !recorded.contains(&p.metadata.name.clone().unwrap_or_default()))
        .filter(|p| is_available(p))
        .count();
    let current = i32::try_from(current).unwrap_or(i32::MAX);

    let status = PodUnavailableBudgetStatus {
        observed_generation: s.budget.metadata.generation.unwrap_or_default(),
        disrupted_pods: non_empty(disrupted),
        unavailable_pods: non_empty(unavailable),
        unavailable_allowed: (current - desired).max(0),
        current_available: current,
        desired_available: desired,
        total_replicas: s.total_replicas,
    };
    let changed = old.observed_generation != status.observed_generation
        || old.unavailable_allowed != status.unavailable_allowed
        || old.current_available != status.current_available
        || old.desired_available != status.desired_available
        || old.total_replicas != status.total_replicas
        || !same_map(&old.disrupted_pods, &status.disrupted_pods)
        || !same_map(&old.unavailable_pods, &status.unavailable_pods)
        || s.budget.status.is_none();
    Ok(Plan {
        status,
        changed,
        // A little past the expiry: an entry is dropped once it is strictly older.
        recheck_after: recheck.map(|r| until(r, s.now) + Duration::from_millis(500)),
        not_deleted,
    })
}

/// The active pods of a selector budget: same namespace, matched by a non-empty selector
/// (kruise lists pods by `spec.selector`; an empty or missing one selects none).
pub fn selected_pods<'a>(budget: &PodUnavailableBudget, pods: &'a [&'a Pod]) -> Vec<&'a Pod> {
    let Some(selector) = budget.spec.selector.as_ref() else {
        return Vec::new();
    };
    if graft_api::selector::is_empty(selector) {
        return Vec::new();
    }
    pods.iter()
        .copied()
        .filter(|p| p.metadata.namespace == budget.metadata.namespace)
        .filter(|p| graft_api::selector::matches_labels(selector, p.metadata.labels.as_ref()))
        .filter(|p| is_active(p))
        .collect()
}

/// The active pods of `namespace` that have one of `uids` among their owners (kruise's
/// owner-UID index).
pub fn owned_pods<'a>(namespace: &str, uids: &[String], pods: &'a [&'a Pod]) -> Vec<&'a Pod> {
    pods.iter()
        .copied()
        .filter(|p| p.metadata.namespace.as_deref() == Some(namespace))
        .filter(|p| {
            p.metadata
                .owner_references
                .iter()
                .flatten()
                .any(|o| uids.contains(&o.uid))
        })
        .filter(|p| is_active(p))
        .collect()
}

/// The distinct controllers of `pods`, first seen first (their replicas add up to a selector
/// budget's total, kruise's `GetExpectedScaleForPods`).
pub fn controllers_of(pods: &[&Pod]) -> Vec<OwnerReference> {
    let mut seen = BTreeSet::new();
    pods.iter()
        .filter_map(|p| {
            p.metadata
                .owner_references
                .iter()
                .flatten()
                .find(|o| o.controller == Some(true))
        })
        .filter(|o| seen.insert(o.uid.clone()))
        .cloned()
        .collect()
}

/// How a `targetRef` finds its pods and replicas (kruise's `GetPodsForRef`, by kind).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetKind {
    /// A ReplicaSet: its replicas, the pods it owns.
    ReplicaSet,
    /// A Deployment: its replicas, the pods of its ReplicaSets.
    Deployment,
    /// StatefulSet (apps or Advanced), CloneSet, ReplicationController: `spec.replicas`, the
    /// pods it owns.
    Direct,
    /// Any other workload: replicas from its scale subresource, the pods it owns or else the
    /// pods its selector matches.
    Custom,
}

impl TargetKind {
    /// The way to read a target of this kind (kruise switches on the kind alone).
    pub fn of(kind: &str) -> Self {
        match kind {
            "ReplicaSet" => Self::ReplicaSet,
            "Deployment" => Self::Deployment,
            "StatefulSet" | "CloneSet" | "ReplicationController" => Self::Direct,
            _ => Self::Custom,
        }
    }
}

/// The total a budget counts: `protectTotalReplicas` when set, else the workloads' replicas.
pub fn total_replicas(budget: &PodUnavailableBudget, workload_replicas: i32) -> i32 {
    budget
        .spec
        .protect_total_replicas
        .unwrap_or(workload_replicas)
}

#[cfg(test)]
mod tests;
