//! The pure CloneSet planner: what the executor gathered ([`Observed`]) in, a [`Plan`] of
//! actions out.
//!
//! [`decide()`] is the entry point: it refuses invalid CloneSets ([`admit`]), claims pods
//! ([`claim`]: adopt, release, ignore), settles the revision history, then runs [`plan`] on a
//! [`Snapshot`] of the claimed pods.
//!
//! [`plan`] is OpenKruise's `syncCloneSet` + `calculateStatus` (kruise-api.md §2.4, §2.5)
//! without a client: no I/O, no async, no clock of its own, no randomness. Everything the rules need is in
//! the snapshot (the defaulted CloneSet, its pods with their conditions and lifecycle state, the
//! revision names, whether each pod can be moved in place, pre-generated instance ids, `now`), and
//! everything the executor must do is in the plan, so tests compare whole plans with `assert_eq!`.
//!
//! One reconcile either scales or updates, never both (OpenKruise: "the controller is designed not
//! to do scale and update in once reconcile"); the status is computed every time.

mod decide;
pub mod diff;
pub mod predownload;
mod scale;
mod sort;
pub mod status;
mod update;
mod view;

#[cfg(test)]
mod decide_tests;
#[cfg(test)]
mod tests;

pub use crate::predownload::PreDownload;
pub use decide::{
    Claim, Observed, ObservedPod, Refusal, admit, claim, decide, revision_annotations,
};

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use graft_api::apps::common::LifecycleState;
use graft_api::apps::v1alpha1::{CloneSet, CloneSetStatus};
use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use k8s_openapi::jiff::Timestamp;

/// Everything the planner looks at, gathered by the executor from its caches.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    /// The CloneSet as read (the planner applies `defaulted()` itself, so either form works).
    /// `metadata.name`, `metadata.generation`, `spec` and the old `status` are used.
    pub cloneset: CloneSet,
    /// The pods owned by the CloneSet (after [`decide()`]'s adoption/release). Inactive pods
    /// (terminating, `Succeeded`, `Failed`) may be included: they are ignored except for
    /// `podsToDelete` truncation, exactly like OpenKruise filters them out.
    pub pods: Vec<PodInfo>,
    /// Full name of the update revision (`<cloneset>-<hash>`), the value new pods get in
    /// `controller-revision-hash`.
    pub update_revision: String,
    /// Full name of the current revision: `status.currentRevision` if that revision still exists,
    /// else the update revision.
    pub current_revision: String,
    /// `status.collisionCount` as computed while minting the update revision.
    pub collision_count: Option<i32>,
    /// The selector rendered as a string (`app=demo,tier in (web)`), written to
    /// `status.labelSelector` for the scale subresource.
    pub label_selector: String,
    /// Instance ids (label `apps.kruise.io/cloneset-instance-id`) of the PVCs owned by the
    /// CloneSet. Ids without an active pod are reused by new pods first, or removed when
    /// `scaleStrategy.disablePVCReuse` is true.
    pub pvc_instance_ids: Vec<String>,
    /// Pre-generated random instance ids (5 lowercase alphanumerics), consumed in order when
    /// no orphan PVC id is left. Provide at least `replicas + maxSurge` of them; ids already in
    /// use by a pod or PVC are skipped. If the list runs out, fewer pods are created and the plan
    /// requeues.
    pub fresh_instance_ids: Vec<String>,
    /// The manager flag `--cloneset-scaling-exclude-preparing-delete` (the CloneSet label of the
    /// same meaning is read by the planner itself).
    pub scaling_exclude_preparing_delete: bool,
    /// The clock, for minReadySeconds, grace periods and the progress deadline.
    pub now: Timestamp,
}

/// One pod as the rules see it. The executor fills it from the `Pod` object (plus, for
/// [`PodInfo::in_place`], the answer of the in-place engine).
#[derive(Clone, Debug, PartialEq)]
pub struct PodInfo {
    /// Pod name.
    pub name: String,
    /// Pod labels (revision, instance id, lifecycle state, specified-delete, priority/scatter
    /// and lifecycle-hook labels are all read from here).
    pub labels: BTreeMap<String, String>,
    /// Pod finalizers (lifecycle hooks may be finalizers).
    pub finalizers: Vec<String>,
    /// `status.phase`.
    pub phase: PodPhase,
    /// `spec.nodeName`, if scheduled.
    pub node_name: Option<String>,
    /// The `Ready` condition is `True`.
    pub ready: bool,
    /// `lastTransitionTime` of the `Ready` condition (for minReadySeconds and scale-in order).
    pub ready_since: Option<Timestamp>,
    /// The `InPlaceUpdateReady` condition: `None` if absent, else whether it is `True`.
    pub in_place_update_ready: Option<bool>,
    /// `metadata.deletionTimestamp`.
    pub deletion_timestamp: Option<Timestamp>,
    /// `metadata.creationTimestamp`.
    pub creation_timestamp: Option<Timestamp>,
    /// Annotation `controller.kubernetes.io/pod-deletion-cost` (0 if absent or invalid).
    pub deletion_cost: i32,
    /// The highest restart count among the pod's containers.
    pub restart_count: i32,
    /// Why the pod cannot become ready, when the kubelet says so (a container that cannot pull
    /// its image, or that crash-loops); `None` while it is merely starting. Named in
    /// [`Plan::waiting`] when such pods hold up the rollout.
    pub failure: Option<String>,
    /// In-place update facts computed by the executor with the in-place engine.
    pub in_place: InPlaceFacts,
}

/// `status.phase` of a pod.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum PodPhase {
    /// Not running yet (scheduling, pulling, init containers).
    #[default]
    Pending,
    /// Phase unknown (node lost).
    Unknown,
    /// Running.
    Running,
    /// Terminated successfully (inactive).
    Succeeded,
    /// Terminated with failure (inactive).
    Failed,
}

/// What the in-place engine says about a pod. The planner does not look at templates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InPlaceFacts {
    /// Whether the pod can move from its own revision to the update revision in place
    /// (`CanUpdateInPlace` of its revision's template vs. the update revision's template), or why
    /// not; for a pod at the update revision, whether it can go back to the current revision in
    /// place (partition rollback). Only consulted for `InPlaceIfPossible` / `InPlaceOnly`.
    pub possible: Result<(), String>,
    /// The pod has the `apps.kruise.io/inplace-update-grace` annotation: its update is parked
    /// during `gracePeriodSeconds` and must not be started again.
    pub in_grace: bool,
    /// The last in-place update of the pod has completed (`CheckUpdateCompleted` is OK): drives
    /// lifecycle `Updating` → `Normal`/`Updated`.
    pub completed: bool,
    /// Whether the engine's `Refresh` has work to do on this pod (finish the grace period, start
    /// the next container batch, set `InPlaceUpdateReady` back to `True`).
    pub refresh: Refresh,
    /// A SidecarSet's in-place upgrade of the pod is still being applied
    /// ([`crate::sidecarset::upgrade::facts::any_sidecar_upgrade_in_flight`]): the CloneSet does
    /// not start its own update of the pod, and counts it as unavailable, so one pod never has two
    /// in-place updates at once and neither workload's maxUnavailable is exceeded.
    pub sidecar_upgrading: bool,
}

impl Default for InPlaceFacts {
    fn default() -> Self {
        Self {
            possible: Ok(()),
            in_grace: false,
            completed: true,
            refresh: Refresh::Idle,
            sidecar_upgrading: false,
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
    /// Something to patch later (grace period running): the planner requeues after this.
    After(Duration),
}

/// What to do, as data. The executor carries the actions out in order and decides nothing.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    /// Pod and PVC operations, in order. Consecutive [`Action::CreatePod`]s form one slow-start
    /// group (the executor sends them in batches of 1, 2, 4, … and stops at the first error).
    pub actions: Vec<Action>,
    /// The status to write (counters, revisions, selector, conditions).
    pub status: CloneSetStatus,
    /// Whether `status` differs from the CloneSet's current status in a way OpenKruise writes
    /// (`inconsistentStatus`); write only when true.
    pub status_changed: bool,
    /// Events that do not belong to a single action (e.g. `ScaleUpLimited`). Per-action events are
    /// given by [`Action::success_event`] / [`Action::failure_event`].
    pub events: Vec<PlannedEvent>,
    /// New `spec.scaleStrategy.podsToDelete` when names of pods that no longer exist must be
    /// dropped (`truncatePodsToDelete`); `None` when nothing changes.
    pub pods_to_delete: Option<Vec<String>>,
    /// Reconcile again after this long even without a watch event (minReadySeconds, grace
    /// periods, progress deadline, out of instance ids).
    pub requeue_after: Option<Duration>,
    /// Why the rollout is not moving, in words the dashboard shows; `None` when it is moving or
    /// done.
    pub waiting: Option<String>,
    /// What this reconcile did: scale, update, or nothing.
    pub phase: Phase,
    /// Old ControllerRevisions to delete (`truncateHistory`: at most `revisionHistoryLimit`
    /// besides the live ones). Set by [`decide()`].
    pub delete_revisions: Vec<String>,
    /// ImagePullJobs to create or delete for the image pre-download of an in-place update, and
    /// the label to put on the update revision. Set by [`decide()`].
    pub pre_download: PreDownload,
}

/// Which half of the reconcile acted (scale and update are never both done at once).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Phase {
    /// No pod operation.
    #[default]
    Idle,
    /// Scale actions were planned; updates are skipped this round.
    Scale,
    /// Lifecycle refreshes or pod updates were planned.
    Update,
}

/// One pod, PVC or revision operation.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Adopt an orphan pod: write `owner_references` (its own plus the CloneSet's controller
    /// reference), with the pod's uid as precondition so a recreated namesake is not adopted.
    AdoptPod {
        /// Pod name.
        name: String,
        /// The uid the pod had when observed.
        uid: Option<String>,
        /// The owner references to write.
        owner_references: Vec<OwnerReference>,
    },
    /// Release an owned pod that no longer matches the selector: write `owner_references`
    /// (its own without the CloneSet's), with the pod's uid as precondition.
    ReleasePod {
        /// Pod name.
        name: String,
        /// The uid the pod had when observed.
        uid: Option<String>,
        /// The owner references to write.
        owner_references: Vec<OwnerReference>,
    },
    /// Create the update revision. If the name is taken by a revision that was not observed
    /// (AlreadyExists), write `status.collisionCount = collision_count_on_conflict` instead and
    /// reconcile again at once, without the rest of the plan.
    CreateRevision {
        /// The revision to create.
        revision: Box<ControllerRevision>,
        /// The collision count to write if the name is taken.
        collision_count_on_conflict: i32,
    },
    /// Rollback to an earlier template: set `.revision` of the named revision (moving it to the
    /// top of the history).
    BumpRevision {
        /// Revision name.
        name: String,
        /// Its new `.revision`.
        revision: i64,
        /// The volumeClaimTemplates hash annotation to write with it, when the revision's differs
        /// from the CloneSet's.
        vct_hash: Option<String>,
    },
    /// Give a pod with the `KruisePodReady` readiness gate its first `KruisePodReady=True`
    /// condition: pods start in service.
    InitKruisePodReady {
        /// Pod name.
        name: String,
    },
    /// Create pod `<cloneset>-<instance_id>` from the template of `revision` (a full revision name:
    /// the update or the current revision), with owner reference, template labels,
    /// `controller-revision-hash=<revision>`, `pod-template-hash=<short hash>`,
    /// `apps.kruise.io/cloneset-instance-id`, lifecycle state `PreparingNormal`, the
    /// `InPlaceUpdateReady` readiness gate and volumes for its PVCs; create the PVCs from
    /// `volumeClaimTemplates` first unless they exist (`reuse_pvcs`).
    CreatePod {
        /// Instance id (also the PVC id).
        instance_id: String,
        /// Full revision name whose template to use.
        revision: String,
        /// The PVCs for this instance id already exist (reused from a deleted pod).
        reuse_pvcs: bool,
    },
    /// Delete the pod and the PVCs labelled with its instance id.
    DeletePod {
        /// Pod name.
        name: String,
        /// Its instance id, whose PVCs go too (`None`: no PVCs to delete).
        instance_id: Option<String>,
    },
    /// Set the lifecycle state label (and timestamp annotation). With `mark_pod_not_ready` the
    /// executor also sets `KruisePodReady=False` when entering `PreparingDelete` /
    /// `PreparingUpdate`, and back to `True` otherwise. Entering `PreparingUpdate` from `Updated`
    /// re-applies the inPlaceUpdate hook's labels/finalizers (`UpdatePodLifecycleWithHandler`).
    SetLifecycleState {
        /// Pod name.
        name: String,
        /// New state.
        state: LifecycleState,
        /// The relevant hook asks for `markPodNotReady`.
        mark_pod_not_ready: bool,
    },
    /// Label the pod `apps.kruise.io/specified-delete=true` (the ReCreate update mechanism); a
    /// later scale step deletes it and creates a replacement at the update revision.
    MarkSpecifiedDelete {
        /// Pod name.
        name: String,
        /// Full name of the revision the replacement will get (for the Event).
        revision: String,
    },
    /// Update the pod in place to `revision` with the in-place engine (`Update` with lifecycle
    /// `Updating`): InPlaceUpdateReady=False, patch images/metadata (or park them for
    /// `gracePeriodSeconds`), write `apps.kruise.io/inplace-update-state`.
    UpdateInPlace {
        /// Pod name.
        name: String,
        /// Full name of the target revision.
        revision: String,
    },
    /// Run the in-place engine's `Refresh` on the pod (finish the grace period, next container
    /// batch, `InPlaceUpdateReady=True` once complete).
    RefreshInPlace {
        /// Pod name.
        name: String,
    },
    /// Back-fill the `pod-template-hash` label (pods created before OpenKruise v1.1 lack it).
    SetPodTemplateHash {
        /// Pod name.
        name: String,
        /// The short revision hash.
        hash: String,
    },
    /// Delete the PVCs of an instance id that has no active pod (`disablePVCReuse: true`).
    RemovePvcs {
        /// Instance id whose PVCs to delete.
        instance_id: String,
    },
}

/// An Event on the CloneSet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedEvent {
    /// `Normal` or `Warning`.
    pub type_: EventType,
    /// OpenKruise's reason string (`SuccessfulCreate`, `ScaleUpLimited`, …).
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
        reason: reason.to_string(),
        message,
    }
}

impl Action {
    /// The Event to record when the executor carried the action out (OpenKruise's wording), if
    /// OpenKruise records one. `cloneset` is the CloneSet name (pod names are derived from it).
    pub fn success_event(&self, cloneset: &str) -> Option<PlannedEvent> {
        match self {
            Self::CreatePod { instance_id, .. } => Some(event(
                EventType::Normal,
                "SuccessfulCreate",
                format!("succeed to create pod {cloneset}-{instance_id}"),
            )),
            Self::DeletePod { name, .. } => Some(event(
                EventType::Normal,
                "SuccessfulDelete",
                format!("succeed to delete pod {name}"),
            )),
            Self::UpdateInPlace { name, revision } => Some(event(
                EventType::Normal,
                "SuccessfulUpdatePodInPlace",
                format!("successfully update pod {name} in-place(revision {revision})"),
            )),
            Self::MarkSpecifiedDelete { name, revision } => Some(event(
                EventType::Normal,
                "SuccessfulUpdatePodReCreate",
                format!(
                    "successfully patch pod {name} specified-delete for update(revision {revision})"
                ),
            )),
            Self::SetLifecycleState { .. }
            | Self::SetPodTemplateHash { .. }
            | Self::RefreshInPlace { .. }
            | Self::RemovePvcs { .. }
            | Self::AdoptPod { .. }
            | Self::ReleasePod { .. }
            | Self::CreateRevision { .. }
            | Self::BumpRevision { .. }
            | Self::InitKruisePodReady { .. } => None,
        }
    }

    /// The Warning Event to record when the action failed with `error`, if OpenKruise records one.
    pub fn failure_event(&self, cloneset: &str, error: &str) -> Option<PlannedEvent> {
        match self {
            Self::CreatePod { instance_id, .. } => Some(event(
                EventType::Warning,
                "FailedCreate",
                format!("failed to create pod: {error}, pod: {cloneset}-{instance_id}"),
            )),
            Self::DeletePod { name, .. } => Some(event(
                EventType::Warning,
                "FailedDelete",
                format!("failed to delete pod {name}: {error}"),
            )),
            Self::UpdateInPlace { name, revision } => Some(event(
                EventType::Warning,
                "FailedUpdatePodInPlace",
                format!("failed to update pod {name} in-place(revision {revision}): {error}"),
            )),
            Self::MarkSpecifiedDelete { name, revision } => Some(event(
                EventType::Warning,
                "FailedUpdatePodReCreate",
                format!(
                    "failed to patch pod specified-delete {name} for update(revision {revision}): {error}"
                ),
            )),
            Self::SetLifecycleState { .. }
            | Self::SetPodTemplateHash { .. }
            | Self::RefreshInPlace { .. }
            | Self::RemovePvcs { .. }
            | Self::AdoptPod { .. }
            | Self::ReleasePod { .. }
            | Self::CreateRevision { .. }
            | Self::BumpRevision { .. }
            | Self::InitKruisePodReady { .. } => None,
        }
    }
}

impl Action {
    /// The pod an action is about (`<cloneset>-<instance id>` for creates and PVC removals; empty
    /// for revision writes): the executor runs each pod's actions in plan order and different
    /// pods' actions at once.
    pub fn pod_name(&self, cloneset: &str) -> String {
        match self {
            Self::CreatePod { instance_id, .. } | Self::RemovePvcs { instance_id } => {
                format!("{cloneset}-{instance_id}")
            }
            Self::AdoptPod { name, .. }
            | Self::ReleasePod { name, .. }
            | Self::InitKruisePodReady { name, .. }
            | Self::DeletePod { name, .. }
            | Self::SetLifecycleState { name, .. }
            | Self::MarkSpecifiedDelete { name, .. }
            | Self::UpdateInPlace { name, .. }
            | Self::RefreshInPlace { name }
            | Self::SetPodTemplateHash { name, .. } => name.clone(),
            Self::CreateRevision { .. } | Self::BumpRevision { .. } => String::new(),
        }
    }

    /// True for the actions that settle ownership and history before any pod is touched
    /// (claims, revision writes, first `KruisePodReady` conditions): the executor stops the
    /// reconcile when one of them does not go through, since the rest of the plan counted on it.
    pub fn is_setup(&self) -> bool {
        matches!(
            self,
            Self::AdoptPod { .. }
                | Self::ReleasePod { .. }
                | Self::CreateRevision { .. }
                | Self::BumpRevision { .. }
                | Self::InitKruisePodReady { .. }
        )
    }
}

/// The metadata an in-place update to `revision` writes at once with the revision label (never
/// parked with the images during a grace period).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InPlaceStamp {
    /// Labels to set.
    pub labels: BTreeMap<String, String>,
    /// Annotations to set.
    pub annotations: BTreeMap<String, String>,
}

/// What [`Action::UpdateInPlace`] stamps on the pod besides the engine's changes: the short
/// revision hash as `pod-template-hash`, lifecycle state `Updating` and its timestamp.
pub fn in_place_stamp(revision: &str, now: Timestamp) -> InPlaceStamp {
    use graft_api::labels;
    InPlaceStamp {
        labels: BTreeMap::from([
            (
                labels::POD_TEMPLATE_HASH.to_string(),
                view::short_hash(revision).to_string(),
            ),
            (
                labels::LIFECYCLE_STATE.to_string(),
                labels::LIFECYCLE_STATE_UPDATING.to_string(),
            ),
        ]),
        annotations: BTreeMap::from([(labels::LIFECYCLE_TIMESTAMP.to_string(), now.to_string())]),
    }
}

/// The lifecycle hook a pod entering `state` waits for while held out of service (the key of
/// its `KruisePodReady` not-ready reason), or `None` when entering `state` puts it back in.
pub fn not_ready_hook(state: LifecycleState) -> Option<&'static str> {
    match state {
        LifecycleState::PreparingDelete => Some("preDeleteHook"),
        LifecycleState::PreparingUpdate => Some("preUpdateHook"),
        _ => None,
    }
}

/// Plans one reconcile of a CloneSet. Pure: the same snapshot always gives the same plan.
///
/// Order of work (`doReconcile`/`syncCloneSet`): orphan PVC cleanup, then the scale half; only
/// if it planned nothing, the update half; then the status, `podsToDelete` truncation and the
/// requeue time.
pub fn plan(snapshot: &Snapshot) -> Plan {
    let ctx = view::Ctx::new(snapshot);
    let mut plan = Plan::default();

    // Instance ids of PVCs without an active pod: reused by new pods, or removed when PVC reuse
    // is disabled.
    let active_ids: BTreeSet<&str> = ctx
        .pods
        .iter()
        .filter_map(|p| {
            p.pod
                .labels
                .get(graft_api::labels::CLONESET_INSTANCE_ID)
                .map(String::as_str)
        })
        .collect();
    let orphan_ids: BTreeSet<&str> = snapshot
        .pvc_instance_ids
        .iter()
        .map(String::as_str)
        .filter(|id| !id.is_empty() && !active_ids.contains(id))
        .collect();
    let disable_reuse = ctx
        .spec
        .scale_strategy
        .as_ref()
        .and_then(|s| s.disable_pvc_reuse)
        .unwrap_or(false);
    let reusable: Vec<String> = if disable_reuse {
        plan.actions
            .extend(orphan_ids.iter().map(|id| Action::RemovePvcs {
                instance_id: (*id).to_string(),
            }));
        Vec::new()
    } else {
        orphan_ids.iter().map(|id| (*id).to_string()).collect()
    };

    let scaled = scale::scale(&ctx, &reusable);
    plan.events = scaled.events;
    let mut requeue: Option<Duration> = None;
    let mut bump = |d: Duration| requeue = Some(requeue.map_or(d, |r| r.min(d)));
    if scaled.out_of_ids {
        bump(Duration::from_secs(1));
    }
    let mut update_error = None;
    if scaled.actions.is_empty() {
        let updated = update::update(&ctx);
        plan.phase = if updated.actions.is_empty() {
            Phase::Idle
        } else {
            Phase::Update
        };
        plan.actions.extend(updated.actions);
        plan.waiting = scaled.waiting.or(updated.waiting);
        if let Some(d) = updated.requeue_after {
            bump(d);
        }
        update_error = updated.error;
    } else {
        plan.phase = Phase::Scale;
        plan.actions.extend(scaled.actions);
        plan.waiting = scaled.waiting;
    }

    let (status, progress_requeue) = status::calculate(&ctx, update_error.as_deref());
    if let Some(d) = progress_requeue {
        bump(d);
    }
    // Pods becoming available after minReadySeconds produce no event: look again then.
    if ctx.min_ready_seconds > 0 && status.available_replicas != status.ready_replicas {
        bump(Duration::from_secs(
            u64::try_from(ctx.min_ready_seconds).unwrap_or(0),
        ));
    }
    if plan.waiting.is_none()
        && plan.actions.is_empty()
        && status.updated_available_replicas < status.expected_updated_replicas.min(status.replicas)
    {
        plan.waiting = Some(format!(
            "waiting for updated pods to become available: {} of {}",
            status.updated_available_replicas, status.expected_updated_replicas
        ));
    }
    let mut status = status;
    let blocked = status.updated_available_replicas
        < status.expected_updated_replicas.min(status.replicas)
        && snapshot
            .pods
            .iter()
            .any(|p| p.failure.is_some() && p.deletion_timestamp.is_none());
    if blocked {
        status::set_condition(
            &mut status,
            status::CONDITION_ROLLOUT_BLOCKED,
            "True",
            Some("PodsFailing"),
            plan.waiting
                .as_deref()
                .unwrap_or("pods of the rollout are failing"),
            snapshot.now,
        );
    } else if let Some(conditions) = status.conditions.as_mut() {
        conditions.retain(|c| c.type_ != status::CONDITION_ROLLOUT_BLOCKED);
        if conditions.is_empty() {
            status.conditions = None;
        }
    }
    let old = snapshot.cloneset.status.clone().unwrap_or_default();
    plan.status_changed = status != old;
    plan.status = status;
    plan.pods_to_delete = truncate_pods_to_delete(&ctx);
    plan.requeue_after = requeue;
    plan
}

/// `truncatePodsToDelete`: drop names of pods that are no longer active.
fn truncate_pods_to_delete(ctx: &view::Ctx<'_>) -> Option<Vec<String>> {
    let list = ctx
        .spec
        .scale_strategy
        .as_ref()
        .and_then(|s| s.pods_to_delete.as_ref())?;
    let kept: Vec<String> = list
        .iter()
        .filter(|n| ctx.pods.iter().any(|p| p.name() == n.as_str()))
        .cloned()
        .collect();
    (kept.len() != list.len()).then_some(kept)
}
