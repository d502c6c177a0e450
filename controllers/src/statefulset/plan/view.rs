//! The snapshot as the rules read it: the defaulted spec, the ordinal range, the replica slots
//! (a pod, a pod to create, or a reserved ordinal) and the condemned pods, each pod with the
//! facts kruise recomputes in many places (`isHealthy`, `isRunningAndAvailable`, revision).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use graft_api::apps::common::{LifecycleHook, PodUpdatePolicy, UpdatePriorityStrategy};
use graft_api::apps::v1beta1::statefulset::{
    PodManagementPolicy, RollingUpdateStatefulSetStrategy, StatefulSetSpec,
    StatefulSetUpdateStrategyType, VolumeClaimUpdateStrategyType,
};
use graft_api::{intstr, labels};
use k8s_openapi::jiff::Timestamp;

use super::{Action, PodInfo, PodPhase, Snapshot};
use crate::podorder::OrderFacts;
use crate::revision::revision_label_matches;
use crate::statefulset::claims::{ClaimInfo, RetentionPolicy};
use crate::statefulset::identity::claim_names;
use crate::statefulset::ordinals::{OrdinalRange, ordinal_of, pod_name};

/// One existing pod with the facts the rules use.
#[derive(Clone, Debug)]
pub(crate) struct View<'a> {
    /// The pod as given.
    pub pod: &'a PodInfo,
    /// Its ordinal.
    pub ordinal: i64,
    /// `controller-revision-hash` equals the update revision (kruise compares the full name).
    pub updated: bool,
    /// `controller-revision-hash` equals the current revision.
    pub current: bool,
    /// At the update revision by full name or short hash (`revision.IsPodUpdate`, which the
    /// unordered update order uses).
    pub updated_by_hash: bool,
    /// The lifecycle label value ("" when absent).
    pub state: &'a str,
    /// Running and `Ready` (`isRunningAndReady`).
    pub running_ready: bool,
    /// Lifecycle empty/Normal, running and ready, not terminating (`isHealthy`).
    pub healthy: bool,
    /// Lifecycle empty/Normal, running and ready for minReadySeconds (`isRunningAndAvailable`).
    pub available: bool,
    /// Ready but not yet for minReadySeconds: available after this long.
    pub available_in: Option<Duration>,
    /// Carries the `apps.kruise.io/specified-delete` label (any value).
    pub specified_delete: bool,
}

impl View<'_> {
    /// Pod name.
    pub fn name(&self) -> &str {
        &self.pod.name
    }

    /// Phase `Failed` or `Succeeded`: kruise recreates such pods.
    pub fn finished(&self) -> bool {
        matches!(self.pod.phase, PodPhase::Failed | PodPhase::Succeeded)
    }
}

/// One replica ordinal (reserved ordinals have no slot).
#[derive(Clone, Debug)]
pub(crate) enum Slot<'a> {
    /// No pod yet: create one at `revision`.
    Missing {
        /// The ordinal.
        ordinal: i64,
        /// Full revision name the new pod gets (`isCurrentRevisionNeeded`).
        revision: String,
    },
    /// The pod at this ordinal.
    Pod(View<'a>),
}

impl Slot<'_> {
    /// The ordinal.
    pub fn ordinal(&self) -> i64 {
        match self {
            Slot::Missing { ordinal, .. } => *ordinal,
            Slot::Pod(v) => v.ordinal,
        }
    }
}

/// Continue with the next step, or stop the plan here (`OrderedReady` blocking).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flow {
    /// Go on.
    Continue,
    /// Stop: nothing after this step runs.
    Exit,
}

/// The plan being built.
#[derive(Debug, Default)]
pub(crate) struct Out {
    /// Actions in order.
    pub actions: Vec<Action>,
    /// Earliest requeue.
    pub requeue_after: Option<Duration>,
    /// The first reason for waiting.
    pub waiting: Option<String>,
    /// The update error, if any.
    pub error: Option<String>,
    /// Events not tied to an action.
    pub events: Vec<super::PlannedEvent>,
    /// Pods whose in-place/lifecycle refresh was already planned.
    pub refreshed: BTreeSet<String>,
    /// A lifecycle transition was planned (the update half then waits for the next plan).
    pub lifecycle_changed: bool,
}

impl Out {
    /// Requeue after `d` at the latest.
    pub fn requeue(&mut self, d: Duration) {
        self.requeue_after = Some(self.requeue_after.map_or(d, |r| r.min(d)));
    }

    /// Record why the set waits, unless an earlier reason is recorded.
    pub fn wait(&mut self, why: impl FnOnce() -> String) {
        if self.waiting.is_none() {
            self.waiting = Some(why());
        }
    }
}

/// The snapshot with the defaulted spec, the slots and the condemned pods.
pub(crate) struct Ctx<'a> {
    /// The snapshot as given.
    pub snap: &'a Snapshot,
    /// The spec with kruise's defaults.
    pub spec: StatefulSetSpec,
    /// `metadata.name`.
    pub name: String,
    /// `spec.replicas`.
    pub replicas: i32,
    /// `rollingUpdate.minReadySeconds`.
    pub min_ready_seconds: i32,
    /// `OrderedReady` (kruise's `monotonic`).
    pub monotonic: bool,
    /// `persistentVolumeClaimRetentionPolicy`.
    pub retention: RetentionPolicy,
    /// One slot per replica ordinal, ascending.
    pub slots: Vec<Slot<'a>>,
    /// Pods outside the replica range or at reserved ordinals, highest ordinal first.
    pub condemned: Vec<View<'a>>,
}

impl<'a> Ctx<'a> {
    /// Builds the slots and views.
    pub fn new(snap: &'a Snapshot) -> Self {
        let spec = snap.set.spec.defaulted();
        let name = snap.set.metadata.name.clone().unwrap_or_default();
        let replicas = spec.replicas.unwrap_or(1).max(0);
        let range = OrdinalRange::of(&spec);
        let rolling = rolling_update(&spec).cloned().unwrap_or_default();
        let min_ready_seconds = rolling.min_ready_seconds.unwrap_or(0).max(0);
        let monotonic = spec.pod_management_policy != Some(PodManagementPolicy::Parallel);
        let retention = RetentionPolicy::of(&spec);

        let mut by_ordinal: BTreeMap<i64, View<'a>> = BTreeMap::new();
        let mut condemned = Vec::new();
        for pod in &snap.pods {
            let Some(ordinal) = ordinal_of(&name, &pod.name).filter(|o| *o >= 0) else {
                continue;
            };
            let v = view(snap, pod, ordinal, min_ready_seconds);
            if range.is_replica(ordinal) {
                by_ordinal.insert(ordinal, v);
            } else {
                condemned.push(v);
            }
        }
        condemned.sort_by_key(|v| std::cmp::Reverse(v.ordinal));

        let rolling_type = spec
            .update_strategy
            .as_ref()
            .and_then(|u| u.type_)
            .unwrap_or_default()
            == StatefulSetUpdateStrategyType::RollingUpdate;
        let partition = i64::from(rolling.partition.unwrap_or(0));
        let unordered = rolling.unordered_update.is_some();
        // Not-updated pods among the replicas, for the unordered partition: the existing ones,
        // plus the new ones given the current revision so far.
        let existing_not_updated = by_ordinal.values().filter(|v| !v.updated_by_hash).count();
        let new_at_current = !revision_label_matches(&snap.current_revision, &snap.update_revision);
        let mut new_not_updated = 0usize;
        let mut slots: Vec<Slot<'a>> = Vec::new();
        for (index, ordinal) in range.replica_ordinals().enumerate() {
            let slot = match by_ordinal.remove(&ordinal) {
                Some(v) => Slot::Pod(v),
                None => {
                    // isCurrentRevisionNeeded: a new pod stays at the current revision while
                    // the partition keeps its ordinal there (ordered: the first `partition`
                    // replica ordinals; unordered: while fewer pods than `partition` are not
                    // updated).
                    let kept = if unordered {
                        existing_not_updated + new_not_updated
                    } else {
                        index
                    };
                    let current =
                        rolling_type && i64::try_from(kept).unwrap_or(i64::MAX) < partition;
                    if current && new_at_current {
                        new_not_updated += 1;
                    }
                    Slot::Missing {
                        ordinal,
                        revision: if current {
                            snap.current_revision.clone()
                        } else {
                            snap.update_revision.clone()
                        },
                    }
                }
            };
            slots.push(slot);
        }
        Ctx {
            snap,
            spec,
            name,
            replicas,
            min_ready_seconds,
            monotonic,
            retention,
            slots,
            condemned,
        }
    }

    /// The existing replica pods, ascending.
    pub fn replica_pods(&self) -> impl Iterator<Item = &View<'a>> {
        self.slots.iter().filter_map(|s| match s {
            Slot::Pod(v) => Some(v),
            _ => None,
        })
    }

    /// All member pods: replicas ascending, then condemned descending.
    pub fn all_pods(&self) -> impl Iterator<Item = &View<'a>> {
        self.replica_pods().chain(self.condemned.iter())
    }

    /// `updateStrategy.rollingUpdate` (always set for `RollingUpdate` after defaulting).
    pub fn rolling(&self) -> Option<&RollingUpdateStatefulSetStrategy> {
        rolling_update(&self.spec)
    }

    /// `updateStrategy.type` is `RollingUpdate` (not `OnDelete`).
    pub fn rolling_update(&self) -> bool {
        self.spec
            .update_strategy
            .as_ref()
            .and_then(|u| u.type_)
            .unwrap_or_default()
            == StatefulSetUpdateStrategyType::RollingUpdate
    }

    /// `volumeClaimUpdateStrategy.type` is `OnPodRollingUpdate`: PVCs are expanded as their pod's
    /// turn in the rolling update comes.
    pub fn resizes_claims(&self) -> bool {
        self.spec
            .volume_claim_update_strategy
            .as_ref()
            .and_then(|s| s.type_)
            == Some(VolumeClaimUpdateStrategyType::OnPodRollingUpdate)
    }

    /// `rollingUpdate.partition` (0 when absent).
    pub fn partition(&self) -> i32 {
        self.rolling().and_then(|r| r.partition).unwrap_or(0)
    }

    /// `rollingUpdate.paused`.
    pub fn paused(&self) -> bool {
        self.rolling().and_then(|r| r.paused).unwrap_or(false)
    }

    /// `rollingUpdate.podUpdatePolicy` (default ReCreate).
    pub fn pod_update_policy(&self) -> PodUpdatePolicy {
        self.rolling()
            .and_then(|r| r.pod_update_policy)
            .unwrap_or_default()
    }

    /// `rollingUpdate.unorderedUpdate` is set, and its priority strategy.
    pub fn unordered(&self) -> Option<Option<&UpdatePriorityStrategy>> {
        self.rolling()
            .and_then(|r| r.unordered_update.as_ref())
            .map(|u| u.priority_strategy.as_ref())
    }

    /// Pods updated at once: `rollingUpdate.maxUnavailable` of the replicas, percentages rounded
    /// down, at least 1; always 1 with `OrderedReady` (the webhook allows nothing else there).
    pub fn max_unavailable(&self) -> usize {
        if self.monotonic {
            return 1;
        }
        let mu = self.rolling().and_then(|r| r.max_unavailable.as_ref());
        let v = mu
            .and_then(|mu| intstr::scaled_value(mu, self.replicas, false).ok())
            .unwrap_or(1);
        usize::try_from(v.max(1)).unwrap_or(1)
    }

    /// `scaleStrategy.maxUnavailable` of the replicas (rounded down, at least 1), only with
    /// `Parallel` (the webhook rejects it otherwise): how many pods may be unavailable while
    /// scaling up.
    pub fn scale_max_unavailable(&self) -> Option<i32> {
        if self.monotonic {
            return None;
        }
        let mu = self
            .spec
            .scale_strategy
            .as_ref()?
            .max_unavailable
            .as_ref()?;
        let v = intstr::scaled_value(mu, self.replicas, false).unwrap_or(1);
        Some(v.max(1))
    }

    /// The preDelete hook.
    pub fn pre_delete(&self) -> Option<&LifecycleHook> {
        self.spec.lifecycle.as_ref()?.pre_delete.as_ref()
    }

    /// The inPlaceUpdate hook.
    pub fn in_place_hook(&self) -> Option<&LifecycleHook> {
        self.spec.lifecycle.as_ref()?.in_place_update.as_ref()
    }

    /// The preNormal hook.
    pub fn pre_normal(&self) -> Option<&LifecycleHook> {
        self.spec.lifecycle.as_ref()?.pre_normal.as_ref()
    }

    /// `spec.lifecycle` is set at all.
    pub fn has_lifecycle(&self) -> bool {
        self.spec.lifecycle.is_some()
    }

    /// The set's PVCs of the pod at `ordinal` that exist: (template name, claim).
    pub fn claims_of(&self, ordinal: i64) -> Vec<(String, &'a ClaimInfo)> {
        let set = &self.snap.set;
        claim_names(set, ordinal)
            .into_iter()
            .filter_map(|(vct, claim)| {
                self.snap
                    .claims
                    .iter()
                    .find(|c| c.name == claim)
                    .map(|c| (vct, c))
            })
            .collect()
    }

    /// The PVC names of the pod at `ordinal` that do not exist yet.
    pub fn missing_claims(&self, ordinal: i64) -> Vec<String> {
        claim_names(&self.snap.set, ordinal)
            .into_iter()
            .map(|(_, claim)| claim)
            .filter(|claim| !self.snap.claims.iter().any(|c| &c.name == claim))
            .collect()
    }

    /// Name of the pod at `ordinal`.
    pub fn pod_name(&self, ordinal: i64) -> String {
        pod_name(&self.name, ordinal)
    }
}

fn rolling_update(spec: &StatefulSetSpec) -> Option<&RollingUpdateStatefulSetStrategy> {
    spec.update_strategy.as_ref()?.rolling_update.as_ref()
}

fn view<'a>(snap: &Snapshot, pod: &'a PodInfo, ordinal: i64, min_ready_seconds: i32) -> View<'a> {
    let state = pod
        .labels
        .get(labels::LIFECYCLE_STATE)
        .map(String::as_str)
        .unwrap_or("");
    let revision = pod
        .labels
        .get(labels::CONTROLLER_REVISION_HASH)
        .map(String::as_str)
        .unwrap_or("");
    let lifecycle_ok = state.is_empty() || state == labels::LIFECYCLE_STATE_NORMAL;
    let running_ready = pod.phase == PodPhase::Running && pod.ready;
    let (available, available_in) = if !lifecycle_ok || !running_ready {
        (false, None)
    } else {
        ready_for(pod, min_ready_seconds, snap.now)
    };
    View {
        pod,
        ordinal,
        updated: revision == snap.update_revision,
        current: revision == snap.current_revision,
        updated_by_hash: !revision.is_empty()
            && revision_label_matches(revision, &snap.update_revision),
        state,
        running_ready,
        healthy: lifecycle_ok && running_ready && !pod.terminating,
        available,
        available_in,
        specified_delete: pod.labels.contains_key(labels::SPECIFIED_DELETE),
    }
}

/// The minReadySeconds half of `isRunningAndAvailable` for a running, ready pod: available, or
/// how long until it is (a `Ready` condition without a transition time waits the whole period).
fn ready_for(pod: &PodInfo, min_ready_seconds: i32, now: Timestamp) -> (bool, Option<Duration>) {
    if min_ready_seconds == 0 {
        return (true, None);
    }
    let min = Duration::from_secs(u64::try_from(min_ready_seconds).unwrap_or(0));
    let Some(since) = pod.ready_since else {
        return (false, Some(min));
    };
    let Ok(at) = since.checked_add(min) else {
        return (false, Some(min));
    };
    if at <= now {
        (true, None)
    } else {
        let left = Duration::try_from(now.duration_until(at)).unwrap_or(min);
        (false, Some(left))
    }
}

/// `hook` is set and the pod has any of its labels/finalizers (`IsPodHooked`).
pub(crate) fn hooked(hook: Option<&LifecycleHook>, pod: &PodInfo) -> bool {
    hook.is_some_and(|h| h.is_hooked(&pod.labels, &pod.finalizers))
}

/// `hook` is set and the pod has all of its labels/finalizers (`IsPodAllHooked`; a missing hook
/// is not "all hooked").
pub(crate) fn all_hooked(hook: Option<&LifecycleHook>, pod: &PodInfo) -> bool {
    hook.is_some_and(|h| h.is_all_hooked(&pod.labels, &pod.finalizers))
}

/// Whether `markPodNotReady` is set on the hook.
pub(crate) fn marks_not_ready(hook: Option<&LifecycleHook>) -> bool {
    hook.and_then(|h| h.mark_pod_not_ready).unwrap_or(false)
}

/// A replica slot as the shared update order reads it: a pod to be created is pending,
/// unscheduled, not ready and has no labels yet.
pub(crate) enum OrderSlot<'s, 'a> {
    /// An existing pod.
    Pod(&'s View<'a>),
    /// A pod not created yet.
    None,
}

static NO_LABELS: BTreeMap<String, String> = BTreeMap::new();

impl OrderFacts for OrderSlot<'_, '_> {
    fn node_name(&self) -> &str {
        match self {
            Self::Pod(v) => v.pod.node_name.as_deref().unwrap_or(""),
            Self::None => "",
        }
    }
    fn phase_rank(&self) -> u8 {
        match self {
            Self::Pod(v) => match v.pod.phase {
                PodPhase::Unknown => 1,
                PodPhase::Running => 2,
                _ => 0,
            },
            Self::None => 0,
        }
    }
    fn ready(&self) -> bool {
        matches!(self, Self::Pod(v) if v.pod.ready)
    }
    fn ready_since(&self) -> Option<Timestamp> {
        match self {
            Self::Pod(v) if v.pod.ready => v.pod.ready_since,
            _ => None,
        }
    }
    fn restart_count(&self) -> i32 {
        match self {
            Self::Pod(v) => v.pod.restart_count,
            Self::None => 0,
        }
    }
    fn created(&self) -> Option<Timestamp> {
        match self {
            Self::Pod(v) => v.pod.creation_timestamp,
            Self::None => None,
        }
    }
    fn labels(&self) -> &BTreeMap<String, String> {
        match self {
            Self::Pod(v) => &v.pod.labels,
            Self::None => &NO_LABELS,
        }
    }
}
