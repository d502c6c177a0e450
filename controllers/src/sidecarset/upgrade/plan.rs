//! The upgrade planner: kruise `UpdateSidecarSet` (`sidecarset_processor.go`) without a client.

use std::collections::BTreeMap;
use std::time::Duration;

use graft_api::apps::v1beta1::sidecarset::{
    SidecarSet, SidecarSetStatus, SidecarSetUpdateStrategyType,
};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;

use super::edit::{PodEdit, upgradable_condition};
use super::facts::{PodFacts, container, pod_facts};
use super::hot::{needs_reset, reset_idle_twins, upgrade_twin};
use super::status::{calculate_status, status_changed};
use super::strategy::next_upgrade_pods;
use crate::events::EventType;
use crate::inplace::{MetadataChanges, PodChange};
use crate::sidecarset::inject::patch_pod_metadata;

/// How long to wait while an earlier pod update is not in the cache yet (kruise: 1s).
pub const EXPECTATIONS_REQUEUE: Duration = Duration::from_secs(1);

/// Everything the planner looks at, gathered by the executor.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    /// The SidecarSet as stored (defaulted by the API server schema). Its `kruise.io/sidecarset-hash`
    /// and `-without-image` annotations, `metadata.resourceVersion` (hot-upgrade versions),
    /// `metadata.generation` and `status` are read.
    pub sidecarset: SidecarSet,
    /// Candidate pods: those the selector selects (any namespace); the planner filters them.
    pub pods: Vec<Pod>,
    /// Labels of each namespace by name, for `namespaceSelector` (needed only when it is set).
    pub namespaces: BTreeMap<String, BTreeMap<String, String>>,
    /// Name of the latest ControllerRevision (registered by the executor before planning).
    pub latest_revision: String,
    /// `status.collisionCount` as it stands after registering that revision.
    pub collision_count: i32,
    /// `namespace/name` of pods this controller changed whose change the cache does not show
    /// yet (the update and resourceVersion expectations). While any is left the planner writes
    /// the status and waits.
    pub unobserved_pods: Vec<String>,
    /// The clock (annotation timestamps, condition transition times).
    pub now: Timestamp,
}

/// What one reconcile does.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// The status to write.
    pub status: SidecarSetStatus,
    /// Whether `status` differs from the stored one as kruise's `inconsistentStatus` sees it;
    /// write only when true.
    pub status_changed: bool,
    /// Pod changes, in order; each pod's changes are sent in order, stopping at its first error.
    pub actions: Vec<PodAction>,
    /// Events on the SidecarSet (`NotUpgradablePods`).
    pub events: Vec<PlannedEvent>,
    /// Reconcile again after this long.
    pub requeue_after: Option<Duration>,
    /// How far the rollout went this round, or why it stopped.
    pub outcome: Outcome,
    /// `namespace/name` of the matched pods that cannot be upgraded in place (something besides
    /// images changed).
    pub not_upgradable: Vec<String>,
    /// The facts of every matched pod, in snapshot order (for the dashboard and logs).
    pub facts: Vec<PodFacts>,
}

/// Where the reconcile stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// An earlier pod update is not in the cache yet.
    WaitingForCache,
    /// `updateStrategy.type: NotUpdate`.
    NotUpdate,
    /// `updateStrategy.paused: true`.
    Paused,
    /// Old hot-upgrade twins are being reset; upgrades continue next round.
    ResettingHotUpgrade,
    /// Every matched pod has the latest sidecars.
    AllUpdated,
    /// An upgrade round was planned.
    Upgrading {
        /// Pods upgraded in this round.
        upgrading: usize,
        /// Pods left for later rounds (partition, maxUnavailable, in flight).
        waiting: usize,
        /// Pods left alone because a workload's in-place update is under way on them.
        in_place_updating: usize,
    },
}

/// Changes to one pod.
#[derive(Clone, Debug, PartialEq)]
pub struct PodAction {
    /// Pod namespace.
    pub namespace: String,
    /// Pod name.
    pub name: String,
    /// What the changes do.
    pub kind: PodActionKind,
    /// What to send, in order: a [`PodChange::Patch`] (strategic merge, with the observed
    /// `resourceVersion`: on 409 drop the rest and reconcile again) and/or a
    /// [`PodChange::Conditions`] for the `SidecarSetUpgradable` condition.
    pub changes: Vec<PodChange>,
    /// Event on the pod when every change succeeded.
    pub success_event: Option<PlannedEvent>,
    /// Event on the pod when a change failed; append `: <error>` to the message.
    pub failure_event: Option<PlannedEvent>,
}

/// What a [`PodAction`] does.
#[derive(Clone, Debug, PartialEq)]
pub enum PodActionKind {
    /// Upgrade sidecars: new images, hash, in-place state, hot-upgrade annotations,
    /// `patchPodMetadata`, then `SidecarSetUpgradable` true. Record an update expectation for
    /// the pod once sent.
    Upgrade {
        /// The images that change.
        containers: Vec<ContainerUpgrade>,
        /// All annotation changes in the patch.
        annotations: MetadataChanges,
    },
    /// Reset old hot-upgrade twins to `hotUpgradeEmptyImage`. Record a resourceVersion
    /// expectation for the pod once sent.
    ResetHotUpgrade {
        /// The twins reset.
        containers: Vec<String>,
    },
    /// Set `SidecarSetUpgradable` to false for this SidecarSet.
    MarkNotUpgradable,
}

/// One container image change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerUpgrade {
    /// The sidecar's name in the SidecarSet (`X`).
    pub sidecar: String,
    /// The pod container that gets the image (`X`, or the twin `X-1`/`X-2`).
    pub container: String,
    /// Its image before.
    pub from_image: String,
    /// The new image.
    pub to_image: String,
    /// A hot upgrade: `container` becomes the working twin.
    pub hot: bool,
}

/// An Event to publish.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedEvent {
    /// `Normal` or `Warning`.
    pub type_: EventType,
    /// kruise's reason.
    pub reason: String,
    /// kruise's message.
    pub message: String,
}

fn event(type_: EventType, reason: &str, message: String) -> PlannedEvent {
    PlannedEvent {
        type_,
        reason: reason.to_string(),
        message,
    }
}

/// The message of the `NotUpgradablePods` event, as kruise writes it.
pub fn not_upgradable_message(count: usize) -> String {
    format!(
        "SidecarSet in-place update detected {count} not upgradable pod(s) in this round, will skip them."
    )
}

/// Plans one reconcile (kruise `UpdateSidecarSet` after the revision is registered):
/// 1. matched pods and the status;
/// 2. wait while [`Snapshot::unobserved_pods`] is not empty;
/// 3. stop on `NotUpdate` or `paused`;
/// 4. if old hot-upgrade twins are due for the reset, reset them and stop;
/// 5. stop when every matched pod is updated;
/// 6. mark not-upgradable pods, upgrade the next pods ([`next_upgrade_pods`]).
///
/// Pods in a workload's in-place update are neither reset nor upgraded.
pub fn plan(snap: &Snapshot) -> Plan {
    let set = &snap.sidecarset;
    let set_name = set.metadata.name.clone().unwrap_or_default();
    let mut pods: Vec<&Pod> = Vec::new();
    let mut facts: Vec<PodFacts> = Vec::new();
    for pod in &snap.pods {
        let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
        let f = pod_facts(set, pod, snap.namespaces.get(ns));
        if f.matched {
            pods.push(pod);
            facts.push(f);
        }
    }
    let status = calculate_status(set, &facts, &snap.latest_revision, snap.collision_count);
    let mut plan = Plan {
        status_changed: status_changed(set.status.as_ref(), &status),
        status,
        actions: Vec::new(),
        events: Vec::new(),
        requeue_after: None,
        outcome: Outcome::AllUpdated,
        not_upgradable: Vec::new(),
        facts: facts.clone(),
    };
    if !snap.unobserved_pods.is_empty() {
        plan.requeue_after = Some(EXPECTATIONS_REQUEUE);
        plan.outcome = Outcome::WaitingForCache;
        return plan;
    }
    let strategy = set.spec.update_strategy.clone().unwrap_or_default();
    if strategy.type_.unwrap_or_default() == SidecarSetUpdateStrategyType::NotUpdate {
        plan.outcome = Outcome::NotUpdate;
        return plan;
    }
    if strategy.paused.unwrap_or(false) {
        plan.outcome = Outcome::Paused;
        return plan;
    }

    if set.spec.containers().iter().any(|s| s.is_hot_upgrade()) {
        for (pod, f) in pods.iter().zip(&facts) {
            if f.in_place_updating || !needs_reset(set, pod) {
                continue;
            }
            let mut edit = PodEdit::new(pod);
            let containers = reset_idle_twins(set, &mut edit, snap.now);
            plan.actions.push(PodAction {
                namespace: namespace(pod),
                name: pod.metadata.name.clone().unwrap_or_default(),
                kind: PodActionKind::ResetHotUpgrade { containers },
                changes: vec![PodChange::Patch(edit.patch())],
                success_event: Some(event(
                    EventType::Normal,
                    "ResetContainerSucceed",
                    "reset sidecar container image empty successfully".into(),
                )),
                failure_event: Some(event(
                    EventType::Warning,
                    "ResetContainerFailed",
                    "reset sidecar container image empty failed".into(),
                )),
            });
        }
        if !plan.actions.is_empty() {
            plan.outcome = Outcome::ResettingHotUpgrade;
            return plan;
        }
    }

    if plan.status.updated_pods >= plan.status.matched_pods {
        return plan;
    }

    let next = next_upgrade_pods(set, &pods, &facts);
    for &i in &next.not_upgradable {
        plan.not_upgradable.push(facts[i].key.clone());
        if let Some(c) = upgradable_condition(pods[i], &set_name, false, snap.now) {
            plan.actions.push(PodAction {
                namespace: namespace(pods[i]),
                name: pods[i].metadata.name.clone().unwrap_or_default(),
                kind: PodActionKind::MarkNotUpgradable,
                changes: vec![PodChange::Conditions(vec![c])],
                success_event: None,
                failure_event: None,
            });
        }
    }
    if !next.not_upgradable.is_empty() {
        plan.events.push(event(
            EventType::Normal,
            "NotUpgradablePods",
            not_upgradable_message(next.not_upgradable.len()),
        ));
    }
    for &i in &next.upgrade {
        match upgrade_pod(snap, pods[i]) {
            Ok(action) => plan.actions.push(action),
            Err(message) => plan.events.push(event(
                EventType::Warning,
                "UpgradeSidecarFailed",
                format!("pod {}: {message}", facts[i].key),
            )),
        }
    }
    plan.outcome = Outcome::Upgrading {
        upgrading: next.upgrade.len(),
        waiting: next.waiting.len(),
        in_place_updating: next.in_place_updating.len(),
    };
    plan
}

/// kruise `updatePodSidecarAndHash` for one pod: the images (cold: the container itself; hot:
/// the twin [`super::hot::twin_to_upgrade`] picks), hot-upgrade annotations, the hash entry, the
/// in-place state of the changed containers, `patchPodMetadata`, then `SidecarSetUpgradable=True`.
fn upgrade_pod(snap: &Snapshot, pod: &Pod) -> Result<PodAction, String> {
    let set = &snap.sidecarset;
    let set_name = set.metadata.name.clone().unwrap_or_default();
    let mut edit = PodEdit::new(pod);
    let mut containers = Vec::new();
    for s in set.spec.containers() {
        let to_image = s.container.image.clone().unwrap_or_default();
        let (name, hot) = if s.is_hot_upgrade() {
            match upgrade_twin(set, &mut edit, s) {
                Some(n) => (n, true),
                None => continue,
            }
        } else {
            match edit.image(s.name()) {
                Some(image) if image != to_image => {
                    edit.images.insert(s.name().to_string(), to_image.clone());
                    (s.name().to_string(), false)
                }
                _ => continue,
            }
        };
        let from_image = container(pod, &name)
            .and_then(|c| c.image.clone())
            .unwrap_or_default();
        containers.push(ContainerUpgrade {
            sidecar: s.name().to_string(),
            container: name,
            from_image,
            to_image,
            hot,
        });
    }
    edit.update_hash(set, &snap.latest_revision, snap.now);
    let changed: Vec<String> = containers.iter().map(|c| c.container.clone()).collect();
    edit.record_update_state(set, &changed, snap.now);
    patch_pod_metadata(&mut edit.annotations, set).map_err(|e| e.to_string())?;
    let (annotations, _) = edit.changes();
    let mut changes = vec![PodChange::Patch(edit.patch())];
    if let Some(c) = upgradable_condition(pod, &set_name, true, snap.now) {
        changes.push(PodChange::Conditions(vec![c]));
    }
    Ok(PodAction {
        namespace: namespace(pod),
        name: pod.metadata.name.clone().unwrap_or_default(),
        kind: PodActionKind::Upgrade {
            containers,
            annotations,
        },
        changes,
        success_event: None,
        failure_event: None,
    })
}

fn namespace(pod: &Pod) -> String {
    pod.metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".to_string())
}
