//! The in-place update engine shared by CloneSet, Advanced StatefulSet and SidecarSet
//! (kruise-api.md §2.6, §1.1-1.2).
//!
//! Pure functions over pods and templates; they return [`PodChange`]s for an executor to send:
//! 1. [`calculate`] decides whether moving a pod from one template to another can be done in place
//!    (container images, template labels/annotations, env read from a changed label/annotation
//!    (`InPlaceUpdateEnvFromMetadata`), and cpu/memory requests/limits
//!    (`InPlaceWorkloadVerticalScaling`) may differ) and returns the [`InPlaceUpdateSpec`], or
//!    [`NotInPlace`] naming the field that forbids it.
//! 2. [`begin`] starts the update on one pod: `InPlaceUpdateReady=False` first (traffic drains),
//!    then one patch that writes the revision label, the `apps.kruise.io/inplace-update-state`
//!    annotation and either the new images (grace 0) or the parked update
//!    (`apps.kruise.io/inplace-update-grace`).
//!    Containers are updated in batches by launch priority ([`container_priorities`]); resources
//!    go through the pod's `resize` subresource ([`PodChange::Resize`]).
//! 3. [`progress`] is called for every pod on every reconcile: it applies a parked update once the
//!    grace period is over, starts the next priority batch once the previous one is ready,
//!    detects completion (`imageID`, `status.resources`, the env hashes the node agent reports in
//!    `apps.kruise.io/runtime-containers-meta`), and sets
//!    `InPlaceUpdateReady=True` (also on new pods, which are created with the readiness gate but
//!    without the condition).
//!
//! The pod annotations are the ones kruise-manager writes and reads, so graft can take over a
//! rollout kruise started and the other way round.

mod calculate;
mod image;
mod priority;
mod resources;
mod update;

use std::collections::BTreeMap;

use graft_api::annotations::{InPlaceUpdateGrace, InPlaceUpdateState};
use graft_api::labels;
use k8s_openapi::api::core::v1::{
    Pod, PodCondition, PodReadinessGate, PodSpec, ResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use serde_json::{Map, Value, json};

pub use calculate::{calculate, calculate_from_revisions};
pub use image::same_image;
pub use priority::container_priorities;
pub use resources::{is_resize_infeasible, resize_condition};
pub use update::{begin, is_update_completed, progress};

/// Label and annotation changes of an in-place update: `Some(value)` sets, `None` removes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MetadataChanges {
    /// Labels to set (`Some`) or remove (`None`).
    pub labels: BTreeMap<String, Option<String>>,
    /// Annotations to set (`Some`) or remove (`None`).
    pub annotations: BTreeMap<String, Option<String>>,
}

impl MetadataChanges {
    /// True when nothing changes.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.annotations.is_empty()
    }

    /// The changes as a (strategic or JSON) merge patch of a pod: `{"metadata":{"labels":{"k":"v",
    /// "gone":null},"annotations":{…}}}` — the shape of kruise's `metaDataPatch`.
    pub fn to_patch(&self) -> Value {
        let mut meta = Map::new();
        for (key, changes) in [("labels", &self.labels), ("annotations", &self.annotations)] {
            if !changes.is_empty() {
                let map: Map<String, Value> = changes
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone().map_or(Value::Null, Value::String)))
                    .collect();
                meta.insert(key.into(), Value::Object(map));
            }
        }
        json!({ "metadata": meta })
    }

    /// Reads changes back from a metadata merge patch (the inverse of [`MetadataChanges::to_patch`];
    /// also reads kruise's `metaDataPatch`). Other keys are ignored.
    pub fn from_patch(patch: &Value) -> Self {
        let read = |key: &str| -> BTreeMap<String, Option<String>> {
            patch
                .get("metadata")
                .and_then(|m| m.get(key))
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().map(str::to_string)))
                        .collect()
                })
                .unwrap_or_default()
        };
        MetadataChanges {
            labels: read("labels"),
            annotations: read("annotations"),
        }
    }
}

/// What an in-place update changes on a pod (kruise's `UpdateSpec`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct InPlaceUpdateSpec {
    /// Revision name written to the pod's `controller-revision-hash` label and to the state.
    pub revision: String,
    /// Container name to its new image.
    pub container_images: BTreeMap<String, String>,
    /// Template label/annotation changes (parked with the images during the grace period), less
    /// the ones in `container_ref_metadata`.
    pub metadata: MetadataChanges,
    /// Env from metadata: container name to the changed labels/annotations its env reads. They
    /// are written to the pod with that container's batch, and the node agent restarts it
    /// (kruise's `containerRefMetadata`).
    pub container_ref_metadata: BTreeMap<String, ObjectMeta>,
    /// Container name to its changed cpu/memory quantities (only those), applied through the pod's
    /// `resize` subresource (kruise's `containerResources`).
    pub container_resources: BTreeMap<String, ResourceRequirements>,
    /// An env var reads a changed label/annotation (kruise's `updateEnvFromMetadata`).
    pub update_env_from_metadata: bool,
    /// `inPlaceUpdateStrategy.gracePeriodSeconds`: time between `InPlaceUpdateReady=False` and
    /// patching the images.
    pub grace_period_seconds: i32,
    /// Labels/annotations written at once together with the revision label, never parked: the
    /// caller puts `pod-template-hash` (CloneSet) and the lifecycle state/timestamp here.
    pub immediate: MetadataChanges,
}

/// Why an update cannot be done in place: the first template field that differs in a way only a
/// recreate can apply.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct NotInPlace {
    /// Path of the field, e.g. `spec.containers[0].env` or `spec.initContainers[0].image`.
    pub field: String,
    /// What changed, in words.
    pub reason: String,
}

/// Errors reading the in-place annotations of a pod.
#[derive(Debug, thiserror::Error)]
pub enum InPlaceError {
    /// An in-place annotation on the pod is not valid JSON of its type.
    #[error("pod {pod}: annotation {key}: {message}")]
    BadAnnotation {
        /// `namespace/name` of the pod.
        pod: String,
        /// The annotation key.
        key: String,
        /// What went wrong.
        message: String,
    },
    /// The pod has a parked update but no state annotation.
    #[error("pod {pod}: has {grace} but no {state}", grace = labels::INPLACE_UPDATE_GRACE, state = labels::INPLACE_UPDATE_STATE)]
    GraceWithoutState {
        /// `namespace/name` of the pod.
        pod: String,
    },
    /// A value could not be turned into JSON.
    #[error("encode {what}: {message}")]
    Encode {
        /// What was being encoded.
        what: &'static str,
        /// What serde reported.
        message: String,
    },
}

/// A change the executor sends to the API server, in order; stop at the first error and let the
/// next reconcile start again from the observed pod.
#[derive(Clone, Debug, PartialEq)]
pub enum PodChange {
    /// Add or replace these pod conditions (matched by `type`) through the `pods/status`
    /// subresource; [`PodChange::status_patch`] builds the strategic merge patch body.
    Conditions(Vec<PodCondition>),
    /// A strategic merge patch (`application/strategic-merge-patch+json`) of the pod: metadata
    /// maps merge key by key (`null` removes), `spec.containers` entries merge by `name`.
    Patch(Value),
    /// A strategic merge patch of the pod's `resize` subresource (`PATCH pods/<name>/resize`):
    /// `spec.containers[].resources` by container name. Sent before the [`PodChange::Patch`] that
    /// records the update, as kruise does.
    Resize(Value),
}

impl PodChange {
    /// The body for `PATCH pods/<name>/status` (strategic merge; conditions merge by `type`).
    pub fn status_patch(conditions: &[PodCondition]) -> Value {
        json!({ "status": { "conditions": conditions } })
    }
}

/// Where an in-place update of a pod stands, and what to send next.
#[derive(Clone, Debug, PartialEq)]
pub enum Progress {
    /// No update in progress and nothing to do.
    NotUpdating,
    /// The update is parked; call again after `remaining` (rounded up to whole seconds).
    WaitingGrace {
        /// Time left until the images may be patched.
        remaining: std::time::Duration,
    },
    /// Send these changes (grace period over: patch the images; or a stale parked update to drop).
    Apply(Vec<PodChange>),
    /// The kubelet has not finished yet; `waiting_for` says what is missing.
    InProgress {
        /// Human-readable reason, e.g. `container main imageID not changed`.
        waiting_for: String,
    },
    /// The update is complete (or the pod is new); send these changes (`InPlaceUpdateReady=True`).
    Completed(Vec<PodChange>),
}

/// The `InPlaceUpdateReady` readiness gate every CloneSet pod is created with.
pub fn readiness_gate() -> PodReadinessGate {
    PodReadinessGate {
        condition_type: labels::INPLACE_UPDATE_READY.to_string(),
    }
}

/// Adds the `InPlaceUpdateReady` readiness gate to a new pod's spec unless it is there already.
pub fn inject_readiness_gate(spec: &mut PodSpec) {
    let gates = spec.readiness_gates.get_or_insert_with(Vec::new);
    if !gates
        .iter()
        .any(|g| g.condition_type == labels::INPLACE_UPDATE_READY)
    {
        gates.push(readiness_gate());
    }
}

/// Whether the pod has the `InPlaceUpdateReady` readiness gate.
pub fn has_readiness_gate(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.readiness_gates.as_ref())
        .is_some_and(|gates| {
            gates
                .iter()
                .any(|g| g.condition_type == labels::INPLACE_UPDATE_READY)
        })
}

/// The `InPlaceUpdateReady=True` condition (what a new pod gets on its first reconcile, and an
/// updated pod once its containers run the new images).
pub fn ready_condition(now: Timestamp) -> PodCondition {
    PodCondition {
        type_: labels::INPLACE_UPDATE_READY.to_string(),
        status: "True".to_string(),
        last_transition_time: Some(Time(now)),
        ..Default::default()
    }
}

/// The `InPlaceUpdateReady=False` condition set when an update starts (reason
/// `StartInPlaceUpdate`).
pub fn not_ready_condition(now: Timestamp) -> PodCondition {
    PodCondition {
        type_: labels::INPLACE_UPDATE_READY.to_string(),
        status: "False".to_string(),
        reason: Some(labels::INPLACE_UPDATE_READY_REASON_START.to_string()),
        last_transition_time: Some(Time(now)),
        ..Default::default()
    }
}

/// A pod condition by type.
pub fn pod_condition<'a>(pod: &'a Pod, type_: &str) -> Option<&'a PodCondition> {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == type_))
}

/// Whether the in-place engine lets the pod count as ready: its `InPlaceUpdateReady` condition is
/// absent or True (kruise's ready check: Running + Ready + this). Use it with the pod's own
/// `Ready` condition when counting ready/available pods.
pub fn is_ready_for_in_place(pod: &Pod) -> bool {
    pod_condition(pod, labels::INPLACE_UPDATE_READY).is_none_or(|c| c.status == "True")
}

/// Whether the pod has an update parked in its grace period (kruise skips these when choosing
/// pods to update).
pub fn is_in_grace(pod: &Pod) -> bool {
    annotation(pod, labels::INPLACE_UPDATE_GRACE)
        .or_else(|| annotation(pod, labels::INPLACE_UPDATE_GRACE_LEGACY))
        .is_some_and(|v| !v.is_empty())
}

/// Whether an in-place update of the pod is under way: parked in grace, `InPlaceUpdateReady` is
/// False, or the recorded update has not completed. An unreadable state annotation counts as
/// updating (never count such a pod as done).
pub fn is_in_place_updating(pod: &Pod) -> bool {
    if is_in_grace(pod) {
        return true;
    }
    if pod_condition(pod, labels::INPLACE_UPDATE_READY).is_some_and(|c| c.status == "False") {
        return true;
    }
    match update_state(pod) {
        Ok(Some(state)) => update::check_completed(pod, &state).is_err(),
        Ok(None) => false,
        Err(_) => true,
    }
}

/// The pod's `apps.kruise.io/inplace-update-state` (or its legacy key), if any.
pub fn update_state(pod: &Pod) -> Result<Option<InPlaceUpdateState>, InPlaceError> {
    read_annotation(
        pod,
        labels::INPLACE_UPDATE_STATE,
        labels::INPLACE_UPDATE_STATE_LEGACY,
    )
}

/// The pod's parked update `apps.kruise.io/inplace-update-grace` (or its legacy key), if any.
pub fn update_grace(pod: &Pod) -> Result<Option<InPlaceUpdateGrace>, InPlaceError> {
    read_annotation(
        pod,
        labels::INPLACE_UPDATE_GRACE,
        labels::INPLACE_UPDATE_GRACE_LEGACY,
    )
}

fn read_annotation<T: serde::de::DeserializeOwned>(
    pod: &Pod,
    key: &str,
    legacy: &str,
) -> Result<Option<T>, InPlaceError> {
    let (key, raw) = match annotation(pod, key) {
        Some(v) if !v.is_empty() => (key, v),
        _ => match annotation(pod, legacy) {
            Some(v) if !v.is_empty() => (legacy, v),
            _ => return Ok(None),
        },
    };
    let bad = |message: String| InPlaceError::BadAnnotation {
        pod: pod_key(pod),
        key: key.to_string(),
        message,
    };
    let mut value: Value = serde_json::from_str(raw).map_err(|e| bad(e.to_string()))?;
    // Go writes nil maps and slices as `null` (e.g. `"lastContainerStatuses":null` after a
    // metadata-only update); treat them as absent.
    if let Value::Object(map) = &mut value {
        map.retain(|_, v| !v.is_null());
    }
    serde_json::from_value(value)
        .map(Some)
        .map_err(|e| bad(e.to_string()))
}

fn annotation<'a>(pod: &'a Pod, key: &str) -> Option<&'a str> {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .map(String::as_str)
}

fn pod_key(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.name.as_deref().unwrap_or_default()
    )
}

#[cfg(test)]
mod feature_tests;
#[cfg(test)]
mod tests;
