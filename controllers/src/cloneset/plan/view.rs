//! The snapshot as the rules read it: the defaulted spec, and for every active pod the derived
//! facts (revision, lifecycle state, ready, available, to-delete) that OpenKruise recomputes in
//! many places. Computing them once keeps the rule modules short and consistent.

use std::time::Duration;

use graft_api::apps::common::{Lifecycle, LifecycleHook, LifecycleState};
use graft_api::apps::v1alpha1::cloneset::{CloneSetSpec, CloneSetUpdateStrategyType};
use graft_api::labels;
use k8s_openapi::jiff::Timestamp;

use super::{PodInfo, PodPhase, Snapshot};

/// One active pod with the facts the rules use.
#[derive(Clone, Debug)]
pub(crate) struct View<'a> {
    /// The pod as given.
    pub pod: &'a PodInfo,
    /// At the update revision (`EqualToRevisionHash`).
    pub updated: bool,
    /// The lifecycle label value ("" when absent).
    pub state: &'a str,
    /// Specified-delete label or listed in `podsToDelete`.
    pub to_delete: bool,
    /// Running, `Ready` and `InPlaceUpdateReady` not False (`IsPodUpdateReady(pod, 0)`):
    /// `status.readyReplicas`.
    pub update_ready: bool,
    /// `update_ready` for minReadySeconds and lifecycle empty/Normal (`IsPodAvailable`).
    pub available: bool,
    /// `available` with minReadySeconds 0 (`isPodReady`): what update and delete limits count.
    pub ready_now: bool,
}

impl View<'_> {
    /// The parsed lifecycle state, if any.
    pub fn lifecycle(&self) -> Option<LifecycleState> {
        LifecycleState::parse(self.state)
    }

    /// Name of the pod.
    pub fn name(&self) -> &str {
        &self.pod.name
    }

    /// Counted as updated when scaling: at the update revision, or waiting in `PreparingUpdate`
    /// to be updated (`PreparingUpdateAsUpdate`, kruise's `revision.IsPodUpdate`), so a scale-in
    /// does not take the pods about to be updated for old ones.
    pub fn updated_for_scale(&self) -> bool {
        self.updated || self.state == labels::LIFECYCLE_STATE_PREPARING_UPDATE
    }
}

/// Revision names are equal when the full names or the short hashes (last `-` segment) are
/// (`EqualToRevisionHash`, which also covers the `CloneSetShortHash` label form).
pub(crate) fn same_revision(pod_revision: Option<&str>, revision: &str) -> bool {
    let Some(pod_revision) = pod_revision else {
        return false;
    };
    pod_revision == revision || short_hash(pod_revision) == short_hash(revision)
}

/// The part after the last `-` of a revision name (`GetShortHash`).
pub(crate) fn short_hash(revision: &str) -> &str {
    revision.rsplit('-').next().unwrap_or(revision)
}

/// A pod is active when it is not terminating and not finished (`IsPodActive`).
pub(crate) fn is_active(p: &PodInfo) -> bool {
    p.deletion_timestamp.is_none() && !matches!(p.phase, PodPhase::Succeeded | PodPhase::Failed)
}

/// The snapshot with the defaulted spec and the views of the active pods.
pub(crate) struct Ctx<'a> {
    /// The snapshot as given.
    pub snap: &'a Snapshot,
    /// The spec with OpenKruise's defaults.
    pub spec: CloneSetSpec,
    /// `spec.replicas`.
    pub replicas: i32,
    /// `spec.minReadySeconds`.
    pub min_ready_seconds: i32,
    /// Active pods, in snapshot order.
    pub pods: Vec<View<'a>>,
}

impl<'a> Ctx<'a> {
    /// Builds the views.
    pub fn new(snap: &'a Snapshot) -> Self {
        let spec = snap.cloneset.spec.defaulted();
        let replicas = spec.replicas();
        let min_ready_seconds = spec.min_ready_seconds.unwrap_or(0).max(0);
        let pods_to_delete: Vec<&str> = spec
            .scale_strategy
            .as_ref()
            .and_then(|s| s.pods_to_delete.as_ref())
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect();
        let pods = snap
            .pods
            .iter()
            .filter(|p| is_active(p))
            .map(|pod| {
                let state = pod
                    .labels
                    .get(labels::LIFECYCLE_STATE)
                    .map(String::as_str)
                    .unwrap_or("");
                let update_ready = update_ready(pod);
                let lifecycle_ok = state.is_empty() || state == labels::LIFECYCLE_STATE_NORMAL;
                View {
                    pod,
                    updated: same_revision(
                        pod.labels
                            .get(labels::CONTROLLER_REVISION_HASH)
                            .map(String::as_str),
                        &snap.update_revision,
                    ),
                    state,
                    to_delete: pod.labels.contains_key(labels::SPECIFIED_DELETE)
                        || pods_to_delete.contains(&pod.name.as_str()),
                    update_ready,
                    available: lifecycle_ok
                        && update_ready
                        && ready_long_enough(pod, min_ready_seconds, snap.now),
                    ready_now: lifecycle_ok && update_ready,
                }
            })
            .collect();
        Ctx {
            snap,
            spec,
            replicas,
            min_ready_seconds,
            pods,
        }
    }

    /// `updateStrategy.type` (defaulted).
    pub fn strategy(&self) -> CloneSetUpdateStrategyType {
        self.spec
            .update_strategy
            .as_ref()
            .and_then(|u| u.type_)
            .unwrap_or_default()
    }

    /// `updateStrategy.paused`.
    pub fn paused(&self) -> bool {
        self.spec
            .update_strategy
            .as_ref()
            .and_then(|u| u.paused)
            .unwrap_or(false)
    }

    /// `spec.lifecycle`.
    pub fn lifecycle(&self) -> Option<&Lifecycle> {
        self.spec.lifecycle.as_ref()
    }

    /// The preDelete hook.
    pub fn pre_delete(&self) -> Option<&LifecycleHook> {
        self.lifecycle().and_then(|l| l.pre_delete.as_ref())
    }

    /// The inPlaceUpdate hook.
    pub fn in_place_hook(&self) -> Option<&LifecycleHook> {
        self.lifecycle().and_then(|l| l.in_place_update.as_ref())
    }

    /// The preNormal hook.
    pub fn pre_normal(&self) -> Option<&LifecycleHook> {
        self.lifecycle().and_then(|l| l.pre_normal.as_ref())
    }

    /// Two revisions are live, so a raised partition may roll updated pods back
    /// (`CloneSetPartitionRollback`, on as in OpenKruise with every gate on).
    pub fn rollback_allowed(&self) -> bool {
        self.snap.current_revision != self.snap.update_revision
    }

    /// PreparingDelete pods are not counted as replicas when scaling (CloneSet label or the
    /// manager flag).
    pub fn exclude_preparing_delete(&self) -> bool {
        self.snap.scaling_exclude_preparing_delete
            || self
                .snap
                .cloneset
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(labels::CLONESET_SCALING_EXCLUDE_PREPARING_DELETE))
                .is_some_and(|v| v == "true")
    }
}

/// `hook` is set and the pod has any of its labels/finalizers (`IsPodHooked`).
pub(crate) fn hooked(hook: Option<&LifecycleHook>, pod: &PodInfo) -> bool {
    hook.is_some_and(|h| h.is_hooked(&pod.labels, &pod.finalizers))
}

/// `hook` is set and the pod has all of its labels/finalizers (`IsPodAllHooked`; a missing hook
/// is not "all hooked", as in OpenKruise).
pub(crate) fn all_hooked(hook: Option<&LifecycleHook>, pod: &PodInfo) -> bool {
    hook.is_some_and(|h| h.is_all_hooked(&pod.labels, &pod.finalizers))
}

/// Whether `markPodNotReady` is set on the hook.
pub(crate) fn marks_not_ready(hook: Option<&LifecycleHook>) -> bool {
    hook.and_then(|h| h.mark_pod_not_ready).unwrap_or(false)
}

fn update_ready(p: &PodInfo) -> bool {
    p.phase == PodPhase::Running && p.ready && p.in_place_update_ready != Some(false)
}

/// Kubernetes `IsPodAvailable`: ready, and the `Ready` transition is more than minReadySeconds ago.
fn ready_long_enough(p: &PodInfo, min_ready_seconds: i32, now: Timestamp) -> bool {
    if min_ready_seconds == 0 {
        return true;
    }
    let Some(since) = p.ready_since else {
        return false;
    };
    let min = Duration::from_secs(u64::try_from(min_ready_seconds).unwrap_or(0));
    match since.checked_add(min) {
        Ok(t) => t < now,
        Err(_) => false,
    }
}
