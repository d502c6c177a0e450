//! The pure Advanced StatefulSet planner: a [`Snapshot`] of what the executor gathered in, a
//! [`Plan`] of actions out.
//!
//! [`plan`] is kruise's `updateStatefulSet` + `rollingUpdateStatefulsetPods` +
//! `updateStatefulSetStatus` (`pkg/controller/statefulset/stateful_set_control.go`) without a
//! client: no I/O, no async, no clock of its own. The pods are split into replicas (one slot
//! per ordinal of the replica range, [`crate::statefulset::ordinals`]) and condemned pods; then,
//! in kruise's order:
//! 1. the replicas, in ascending ordinal order ([`scale`]): recreate failed/succeeded pods, create
//!    missing ones at the revision the partition gives them, create missing PVCs of pending pods,
//!    refresh in-place/lifecycle state, wait for availability (`OrderedReady`; with
//!    `scaleStrategy.maxUnavailable`, `Parallel` stops at the budget), repair identity/storage
//!    and PVC owners;
//! 2. PVC owners of the condemned pods, then the condemned pods from the highest ordinal
//!    (`OrderedReady`: one at a time, only while all others are healthy);
//! 3. unless `OnDelete`, the rolling update ([`update`]): lifecycle refresh, `paused`,
//!    specified deletions, then the pods to update in descending ordinal order (or
//!    `unorderedUpdate` priority order) within the partition and `maxUnavailable`, in place or by
//!    recreation;
//! 4. the status ([`status`]), with the revision roll-forward of `completeRollingUpdate`.
//!
//! `OrderedReady` stops at the first step that acts or waits; `Parallel` does everything that is
//! allowed in one plan, as kruise does (`runForAllWithBreak`).

mod scale;
pub mod status;
mod update;
mod view;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::time::Duration;

use graft_api::apps::common::LifecycleState;
use graft_api::apps::v1beta1::{StatefulSet, StatefulSetStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use k8s_openapi::jiff::Timestamp;

pub use super::claims::ClaimInfo;

/// Everything the planner looks at, gathered by the executor from its caches.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    /// The StatefulSet as read (the planner applies `defaulted()` itself). `metadata.name`,
    /// `uid`, `generation`, `deletionTimestamp`, `spec` and the old `status` are used.
    pub set: StatefulSet,
    /// The pods owned by the set, terminating and finished ones included (kruise sees them all).
    /// Pods whose name is not `<set>-<ordinal>` are ignored.
    pub pods: Vec<PodInfo>,
    /// The PVCs named like claims of the set's ordinals (`<vct>-<set>-<ordinal>`) that exist.
    pub claims: Vec<ClaimInfo>,
    /// Full name of the update revision (`<set>-<hash>`), the `controller-revision-hash` of new
    /// pods.
    pub update_revision: String,
    /// Full name of the current revision: `status.currentRevision` if that revision still
    /// exists, else the update revision.
    pub current_revision: String,
    /// `status.collisionCount` as computed while minting the update revision.
    pub collision_count: Option<i32>,
    /// The selector rendered as a string, written to `status.labelSelector`.
    pub label_selector: String,
    /// With `volumeClaimUpdateStrategy: OnPodRollingUpdate`, the storage classes of the PVCs
    /// that need expanding: `allowVolumeExpansion`, or `None` when the class could not be read.
    /// Other classes are not listed.
    pub storage_classes: BTreeMap<String, Option<bool>>,
    /// The clock, for minReadySeconds.
    pub now: Timestamp,
}

/// One pod as the rules see it; [`crate::statefulset::facts::pod_info`] fills it from a `Pod`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PodInfo {
    /// Pod name (`<set>-<ordinal>`).
    pub name: String,
    /// `metadata.uid` (PVC owner references name it).
    pub uid: Option<String>,
    /// Pod labels (revision, lifecycle state, specified-delete, priority and hook labels).
    pub labels: BTreeMap<String, String>,
    /// Pod finalizers (lifecycle hooks may be finalizers).
    pub finalizers: Vec<String>,
    /// `status.phase`.
    pub phase: PodPhase,
    /// `spec.nodeName`, if scheduled (update priority order ties).
    pub node_name: Option<String>,
    /// The highest restart count among its containers (update priority order ties).
    pub restart_count: i32,
    /// `metadata.creationTimestamp` (update priority order ties).
    pub creation_timestamp: Option<Timestamp>,
    /// The `Ready` condition is `True`.
    pub ready: bool,
    /// `lastTransitionTime` of the `Ready` condition (minReadySeconds).
    pub ready_since: Option<Timestamp>,
    /// `metadata.deletionTimestamp` is set.
    pub terminating: bool,
    /// kruise `identityMatches` ([`crate::statefulset::identity::identity_matches`]).
    pub identity_matches: bool,
    /// kruise `storageMatches` ([`crate::statefulset::identity::storage_matches`]).
    pub storage_matches: bool,
    /// What the in-place engine says about the pod.
    pub in_place: InPlaceFacts,
}

/// `status.phase` of a pod.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PodPhase {
    /// Not running yet.
    #[default]
    Pending,
    /// Phase unknown (node lost).
    Unknown,
    /// Running.
    Running,
    /// Terminated successfully: recreated.
    Succeeded,
    /// Terminated with failure: recreated.
    Failed,
}

/// What the in-place engine says about a pod. The planner does not look at templates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InPlaceFacts {
    /// Whether the pod can move from its revision to the update revision in place
    /// (`CanUpdateInPlace`: [`crate::inplace::calculate`] of the two templates), or why not.
    /// Only consulted for `InPlaceIfPossible` / `InPlaceOnly`.
    pub possible: Result<(), String>,
    /// The pod's last in-place update has completed (`CheckPodUpdateCompleted` is OK; true for a
    /// pod never updated in place). An incomplete pod counts as unavailable and drives lifecycle
    /// `Updating` → `Updated`/`Normal` once done.
    pub completed: bool,
    /// Whether the engine's `Refresh` has work to do on the pod.
    pub refresh: Refresh,
}

impl Default for InPlaceFacts {
    fn default() -> Self {
        Self {
            possible: Ok(()),
            completed: true,
            refresh: Refresh::Idle,
        }
    }
}

/// The in-place engine's `Refresh` verdict for a pod.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Refresh {
    /// Nothing to do.
    #[default]
    Idle,
    /// Something to patch now: the planner emits [`Action::RefreshInPlace`].
    Due,
    /// Something to patch later (grace period): the planner requeues after this.
    After(Duration),
}

/// What to do, as data. The executor carries the actions out in order and decides nothing.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    /// Pod and PVC operations, in order. Under `OrderedReady` at most one pod is created or
    /// deleted per plan; under `Parallel` consecutive creations may be sent at once (kruise uses
    /// slow-start batches for condemned pods).
    pub actions: Vec<Action>,
    /// The status to write.
    pub status: StatefulSetStatus,
    /// Whether `status` differs from the set's status in a field kruise compares
    /// (`inconsistentStatus`); write only when true. Conditions are not compared: the executor
    /// that adds `FailedCreatePod`/`FailedUpdatePod` ([`status::set_condition`]) writes anyway.
    pub status_changed: bool,
    /// Reconcile again after this long even without a watch event (minReadySeconds, in-place
    /// grace periods).
    pub requeue_after: Option<Duration>,
    /// Why the set is not progressing, in words the dashboard shows; `None` when it is moving or
    /// done.
    pub waiting: Option<String>,
    /// An update that cannot go on (InPlaceOnly and a change that is not in-place-able, a pod in
    /// a lifecycle state that forbids an in-place update): kruise returns it as the reconcile
    /// error; the executor records a Warning Event and retries with backoff.
    pub error: Option<String>,
    /// Events kruise records on every reconcile that meets the case, not tied to an action
    /// (`FailedUpdatePVC`).
    pub events: Vec<PlannedEvent>,
}

/// One pod or PVC operation.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Create the pod at `ordinal` from the template of `revision` with
    /// [`crate::statefulset::identity::new_pod`], after creating its PVCs that do not exist yet
    /// ([`crate::statefulset::identity::new_claims`]; a PVC that is being deleted fails the
    /// creation). Then, once created, its PVCs' owners as in
    /// [`crate::statefulset::claims::updated_owners`] (kruise does it in `CreateStatefulPod`; the
    /// next plan does it otherwise).
    CreatePod {
        /// Ordinal of the pod.
        ordinal: i64,
        /// Pod name `<set>-<ordinal>`.
        name: String,
        /// Full revision name whose template to use.
        revision: String,
    },
    /// Create the PVCs of a pending pod that do not exist (`createMissingPersistentVolumeClaims`).
    CreateClaims {
        /// Pod name.
        pod: String,
        /// Ordinal of the pod.
        ordinal: i64,
        /// The PVC names to create (from [`crate::statefulset::identity::new_claims`]).
        claims: Vec<String>,
    },
    /// Delete the pod (`DeleteStatefulPod`).
    DeletePod {
        /// Pod name.
        name: String,
        /// The uid observed, as a delete precondition.
        uid: Option<String>,
    },
    /// Set the lifecycle state label and timestamp annotation; with `mark_pod_not_ready` also
    /// `KruisePodReady=False` when entering `PreparingDelete`/`PreparingUpdate` (True
    /// otherwise). Entering `PreparingUpdate` from `Updated` re-applies the inPlaceUpdate hook's
    /// labels/finalizers (`UpdatePodLifecycleWithHandler`).
    SetLifecycleState {
        /// Pod name.
        name: String,
        /// New state.
        state: LifecycleState,
        /// The relevant hook asks for `markPodNotReady`.
        mark_pod_not_ready: bool,
    },
    /// Update the pod in place to `revision` with the in-place engine
    /// ([`crate::inplace::begin`]); with `set_updating` also set lifecycle `Updating` (kruise
    /// does so only for pods that already have a lifecycle state).
    UpdateInPlace {
        /// Pod name.
        name: String,
        /// Full name of the update revision.
        revision: String,
        /// Write lifecycle state `Updating` with the update.
        set_updating: bool,
    },
    /// Run the in-place engine's refresh on the pod ([`crate::inplace::progress`]).
    RefreshInPlace {
        /// Pod name.
        name: String,
    },
    /// The pod's identity or storage does not match its ordinal: apply
    /// [`crate::statefulset::identity::repair`], create its missing PVCs, and update the pod
    /// (`UpdateStatefulPod`).
    RepairPod {
        /// Pod name.
        name: String,
        /// Ordinal of the pod.
        ordinal: i64,
    },
    /// Expand a PVC to its template's size (`volumeClaimUpdateStrategy: OnPodRollingUpdate`,
    /// kruise `TryPatchPVC`): `spec.resources` becomes the template's and the annotation
    /// `apps.kruise.io/owned-by-asts` names the set, with the observed resourceVersion as a
    /// precondition.
    ResizeClaim {
        /// PVC name.
        claim: String,
        /// The pod whose turn in the rolling update it is.
        pod: String,
        /// Name of the volumeClaimTemplate the PVC comes from.
        template: String,
    },
    /// Write the owner references of a PVC (retention policy), with its observed owner
    /// references as a precondition of the update.
    SetClaimOwners {
        /// PVC name.
        claim: String,
        /// The owner references to write.
        owner_references: Vec<OwnerReference>,
    },
}

/// An Event on the StatefulSet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedEvent {
    /// `Normal` or `Warning`.
    pub type_: EventType,
    /// kruise's reason string.
    pub reason: String,
    /// Human-readable message.
    pub message: String,
}

/// Kubernetes Event type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    /// `Normal`.
    Normal,
    /// `Warning`.
    Warning,
}

impl EventType {
    /// The API string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Normal => "Normal",
            Self::Warning => "Warning",
        }
    }
}

fn event(type_: EventType, reason: &str, message: String) -> PlannedEvent {
    PlannedEvent {
        type_,
        reason: reason.into(),
        message,
    }
}

impl Action {
    /// The pod the action is about (for PVC owner writes: the PVC). The executor runs one pod's
    /// actions in plan order.
    pub fn target(&self) -> &str {
        match self {
            Self::CreatePod { name, .. }
            | Self::DeletePod { name, .. }
            | Self::SetLifecycleState { name, .. }
            | Self::UpdateInPlace { name, .. }
            | Self::RefreshInPlace { name }
            | Self::RepairPod { name, .. } => name,
            Self::CreateClaims { pod, .. } | Self::ResizeClaim { pod, .. } => pod,
            Self::SetClaimOwners { claim, .. } => claim,
        }
    }

    /// The Event to record when the action went through, in kruise's wording
    /// (`recordPodEvent`, `SuccessfulUpdatePodInPlace`). `set` is the set name.
    pub fn success_event(&self, set: &str) -> Option<PlannedEvent> {
        let pod = |verb: &str, reason: &str, name: &str| {
            Some(event(
                EventType::Normal,
                reason,
                format!("{verb} Pod {name} in StatefulSet {set} successful"),
            ))
        };
        match self {
            Self::CreatePod { name, .. } => pod("create", "SuccessfulCreate", name),
            Self::DeletePod { name, .. } => pod("delete", "SuccessfulDelete", name),
            Self::RepairPod { name, .. } => pod("update", "SuccessfulUpdate", name),
            Self::UpdateInPlace { name, revision, .. } => Some(event(
                EventType::Normal,
                "SuccessfulUpdatePodInPlace",
                format!("successfully update pod {name} in-place(revision {revision})"),
            )),
            Self::ResizeClaim { claim, pod, .. } => Some(event(
                EventType::Normal,
                "SuccessfulResize",
                format!("resize Claim {claim} Pod {pod} in StatefulSet {set} success"),
            )),
            Self::CreateClaims { .. }
            | Self::SetLifecycleState { .. }
            | Self::RefreshInPlace { .. }
            | Self::SetClaimOwners { .. } => None,
        }
    }

    /// The Warning Event to record when the action failed with `error`.
    pub fn failure_event(&self, set: &str, error: &str) -> Option<PlannedEvent> {
        let pod = |verb: &str, reason: &str, name: &str| {
            Some(event(
                EventType::Warning,
                reason,
                format!("{verb} Pod {name} in StatefulSet {set} failed error: {error}"),
            ))
        };
        match self {
            Self::CreatePod { name, .. } => pod("create", "FailedCreate", name),
            Self::DeletePod { name, .. } => pod("delete", "FailedDelete", name),
            Self::RepairPod { name, .. } => pod("update", "FailedUpdate", name),
            Self::UpdateInPlace { name, revision, .. } => Some(event(
                EventType::Warning,
                "FailedUpdatePodInPlace",
                format!("failed to update pod {name} in-place(revision {revision}): {error}"),
            )),
            Self::ResizeClaim { claim, pod, .. } => Some(event(
                EventType::Warning,
                "FailedResize",
                format!(
                    "resize Claim {claim} for Pod {pod} in StatefulSet {set} failed error: {error}"
                ),
            )),
            Self::CreateClaims { .. }
            | Self::SetLifecycleState { .. }
            | Self::RefreshInPlace { .. }
            | Self::SetClaimOwners { .. } => None,
        }
    }

    /// The status condition kruise sets when the action fails (`FailedCreatePod` /
    /// `FailedUpdatePod`, with the message to use), if any.
    pub fn failure_condition(&self, error: &str) -> Option<(&'static str, String)> {
        match self {
            Self::CreatePod { .. } => Some((
                status::CONDITION_FAILED_CREATE_POD,
                format!("StatefulPodControl failed to create Pod error: {error}"),
            )),
            Self::RepairPod { .. } => Some((
                status::CONDITION_FAILED_UPDATE_POD,
                format!("StatefulPodControl failed to update Pod error: {error}"),
            )),
            _ => None,
        }
    }
}

/// Plans one reconcile of an Advanced StatefulSet. Pure: the same snapshot always gives the same
/// plan.
pub fn plan(snapshot: &Snapshot) -> Plan {
    let ctx = view::Ctx::new(snapshot);
    let mut out = view::Out::default();
    let mut status = status::initial(&ctx);

    // A set being deleted only gets its status (kruise: "don't do anything other than updating
    // status"); the garbage collector removes its pods.
    let deleting = snapshot.set.metadata.deletion_timestamp.is_some();
    if !deleting && scale::scale(&ctx, &mut out) == view::Flow::Continue && ctx.rolling_update() {
        update::update(&ctx, &mut out, &mut status);
    }
    status::complete_rolling_update(&ctx, &mut status);
    let old = snapshot.set.status.clone().unwrap_or_default();
    Plan {
        actions: out.actions,
        status_changed: status::inconsistent(&old, &status),
        status,
        requeue_after: out.requeue_after,
        waiting: out.waiting,
        error: out.error,
        events: out.events,
    }
}
