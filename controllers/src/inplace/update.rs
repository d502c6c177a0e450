//! Starting and driving an in-place update on one pod (kruise's `realControl.Update`,
//! `finishGracePeriod`, `Refresh` and `defaultCheckContainersInPlaceUpdateCompleted`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use graft_api::annotations::{
    InPlaceUpdateContainerBatch, InPlaceUpdateContainerStatus, InPlaceUpdateGrace,
    InPlaceUpdateState,
};
use graft_api::labels;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Pod, PodCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use serde_json::{Map, Value, json};

use super::{
    InPlaceError, InPlaceUpdateSpec, MetadataChanges, PodChange, Progress, has_readiness_gate,
    not_ready_condition, pod_condition, pod_key, ready_condition, same_image, update_grace,
    update_state,
};

/// Starts an in-place update of `pod` to `spec`. Returns, in order:
/// 1. if the pod has the `InPlaceUpdateReady` gate and the condition is not False yet:
///    [`PodChange::Conditions`] with `InPlaceUpdateReady=False` (reason `StartInPlaceUpdate`) and,
///    when the pod is Ready now, `Ready=False` (reason `ReadinessGatesNotReady`, as kruise forces it
///    so traffic drains at once);
/// 2. one [`PodChange::Patch`] writing `controller-revision-hash`, `spec.immediate`, the
///    `apps.kruise.io/inplace-update-state` annotation and, with grace 0, the new images and template
///    metadata; with grace > 0 the images and metadata are parked in
///    `apps.kruise.io/inplace-update-grace` and [`progress`] applies them later.
///
/// Metadata-only changes follow the same path (kruise flips the condition for them too); no
/// container restarts, and [`progress`] completes them on the next reconcile.
pub fn begin(
    pod: &Pod,
    spec: &InPlaceUpdateSpec,
    now: Timestamp,
) -> Result<Vec<PodChange>, InPlaceError> {
    let mut changes = Vec::new();
    if has_readiness_gate(pod)
        && pod_condition(pod, labels::INPLACE_UPDATE_READY).is_none_or(|c| c.status != "False")
    {
        let mut conditions = vec![not_ready_condition(now)];
        let is_true = |t: &str| pod_condition(pod, t).is_some_and(|c| c.status == "True");
        if is_true("Ready") && is_true("ContainersReady") {
            conditions.push(PodCondition {
                type_: "Ready".into(),
                status: "False".into(),
                reason: Some("ReadinessGatesNotReady".into()),
                message: Some(format!(
                    "the status of pod readiness gate \"{}\" is not \"True\", but False",
                    labels::INPLACE_UPDATE_READY
                )),
                last_transition_time: Some(Time(now)),
                ..Default::default()
            });
        }
        changes.push(PodChange::Conditions(conditions));
    }

    let mut state = InPlaceUpdateState {
        revision: spec.revision.clone(),
        update_timestamp: Some(Time(now)),
        update_images: !spec.container_images.is_empty(),
        ..Default::default()
    };
    let mut patch = PodPatch::default();
    patch.set_label(labels::CONTROLLER_REVISION_HASH, Some(&spec.revision));
    patch.merge(&spec.immediate);
    patch.set_annotation(labels::INPLACE_UPDATE_STATE_LEGACY, None);
    if spec.grace_period_seconds <= 0 {
        apply_spec(
            pod,
            &spec.container_images,
            &spec.metadata,
            &mut state,
            &mut patch,
            now,
        );
        patch.merge(&spec.immediate);
        patch.set_annotation(labels::INPLACE_UPDATE_GRACE, None);
        patch.set_annotation(labels::INPLACE_UPDATE_GRACE_LEGACY, None);
    } else {
        let grace = InPlaceUpdateGrace {
            revision: spec.revision.clone(),
            container_images: (!spec.container_images.is_empty())
                .then(|| spec.container_images.clone()),
            meta_data_patch: (!spec.metadata.is_empty())
                .then(|| ByteString(spec.metadata.to_patch().to_string().into_bytes())),
            grace_seconds: spec.grace_period_seconds,
            ..Default::default()
        };
        patch.set_annotation(
            labels::INPLACE_UPDATE_GRACE,
            Some(&encode("grace", &grace)?),
        );
    }
    patch.set_annotation(
        labels::INPLACE_UPDATE_STATE,
        Some(&encode("state", &state)?),
    );
    changes.push(PodChange::Patch(patch.into_value()));
    Ok(changes)
}

/// Drives an update in progress; call it for every pod on every reconcile (also pods that are not
/// updating: new pods get `InPlaceUpdateReady=True` here).
///
/// - parked update whose revision is no longer the pod's label → [`Progress::Apply`] dropping it;
/// - parked update within its grace period → [`Progress::WaitingGrace`];
/// - grace period over → [`Progress::Apply`] with the image/metadata patch and the refreshed state;
/// - containers not yet running the new images → [`Progress::InProgress`];
/// - complete (or no update recorded) but the pod's gate condition is not True →
///   [`Progress::Completed`] with `InPlaceUpdateReady=True`; otherwise [`Progress::NotUpdating`].
pub fn progress(pod: &Pod, now: Timestamp) -> Result<Progress, InPlaceError> {
    if let Some(grace) = update_grace(pod)? {
        let mut patch = PodPatch::default();
        patch.set_annotation(labels::INPLACE_UPDATE_GRACE, None);
        patch.set_annotation(labels::INPLACE_UPDATE_GRACE_LEGACY, None);
        let pod_revision = pod
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(labels::CONTROLLER_REVISION_HASH));
        if pod_revision != Some(&grace.revision) {
            // The pod was moved to another revision meanwhile: drop the parked update and let
            // the planner start over.
            return Ok(Progress::Apply(vec![PodChange::Patch(patch.into_value())]));
        }
        let mut state = update_state(pod)?
            .ok_or_else(|| InPlaceError::GraceWithoutState { pod: pod_key(pod) })?;
        let started = state.update_timestamp.as_ref().map_or(now, |t| t.0);
        let elapsed = now.as_nanosecond() - started.as_nanosecond();
        let grace_nanos = i128::from(grace.grace_seconds) * 1_000_000_000;
        if elapsed < grace_nanos {
            let left = u128::try_from(grace_nanos - elapsed).unwrap_or(0);
            let secs = left.div_ceil(1_000_000_000);
            return Ok(Progress::WaitingGrace {
                remaining: Duration::from_secs(u64::try_from(secs).unwrap_or(u64::MAX)),
            });
        }
        let metadata = grace
            .meta_data_patch
            .as_ref()
            .and_then(|b| serde_json::from_slice::<Value>(&b.0).ok())
            .map(|p| MetadataChanges::from_patch(&p))
            .unwrap_or_default();
        let images = grace.container_images.clone().unwrap_or_default();
        apply_spec(pod, &images, &metadata, &mut state, &mut patch, now);
        patch.set_annotation(
            labels::INPLACE_UPDATE_STATE,
            Some(&encode("state", &state)?),
        );
        return Ok(Progress::Apply(vec![PodChange::Patch(patch.into_value())]));
    }

    if let Some(state) = update_state(pod)?
        && let Err(waiting_for) = check_completed(pod, &state)
    {
        return Ok(Progress::InProgress { waiting_for });
    }
    if has_readiness_gate(pod)
        && pod_condition(pod, labels::INPLACE_UPDATE_READY).is_none_or(|c| c.status != "True")
    {
        return Ok(Progress::Completed(vec![PodChange::Conditions(vec![
            ready_condition(now),
        ])]));
    }
    Ok(Progress::NotUpdating)
}

/// Whether the pod's recorded in-place update (if any) has completed: no parked update and every
/// updated container runs its new image. `Err` says what is still missing.
pub fn is_update_completed(pod: &Pod) -> Result<bool, InPlaceError> {
    if update_grace(pod)?.is_some() {
        return Ok(false);
    }
    Ok(match update_state(pod)? {
        Some(state) => check_completed(pod, &state).is_ok(),
        None => true,
    })
}

/// kruise's completion check, falling back to `imageID` (graft does not compute kubelet container
/// hashes, so `runtime-containers-meta` is not used): every container recorded in
/// `lastContainerStatuses` must appear in the pod status with an `imageID` different from the
/// recorded one — or, when the new tag has the same digest, with the same `imageID` but the status
/// `image` equal to the spec image.
pub(super) fn check_completed(pod: &Pod, state: &InPlaceUpdateState) -> Result<(), String> {
    if super::is_in_grace(pod) {
        return Err("still in grace period of in-place update".into());
    }
    if state
        .next_container_images
        .as_ref()
        .is_some_and(|m| !m.is_empty())
        || state
            .next_container_ref_metadata
            .as_ref()
            .is_some_and(|m| !m.is_empty())
        || state
            .next_container_resources
            .as_ref()
            .is_some_and(|m| !m.is_empty())
    {
        return Err("containers left to update in next batches".into());
    }
    let spec_images: BTreeMap<&str, &str> = pod
        .spec
        .iter()
        .flat_map(|s| &s.containers)
        .map(|c| (c.name.as_str(), c.image.as_deref().unwrap_or_default()))
        .collect();
    let mut pending: BTreeSet<&str> = state
        .last_container_statuses
        .keys()
        .map(String::as_str)
        .collect();
    let statuses = pod
        .status
        .iter()
        .flat_map(|s| s.container_statuses.iter().flatten());
    for cs in statuses {
        let Some(old) = state.last_container_statuses.get(&cs.name) else {
            continue;
        };
        if cs.image_id.is_empty() {
            return Err(format!("container {} has no imageID yet", cs.name));
        }
        if old.image_id == cs.image_id {
            let spec_image = spec_images
                .get(cs.name.as_str())
                .copied()
                .unwrap_or_default();
            if !same_image(spec_image, &cs.image) {
                return Err(format!("container {} imageID not changed", cs.name));
            }
        }
        pending.remove(cs.name.as_str());
    }
    if !pending.is_empty() {
        let names: Vec<&str> = pending.into_iter().collect();
        return Err(format!("no status for containers {}", names.join(", ")));
    }
    Ok(())
}

/// Patches images and metadata now and records what the containers ran before
/// (kruise's `defaultPatchUpdateSpecToPod`, without launch-priority batches).
fn apply_spec(
    pod: &Pod,
    images: &BTreeMap<String, String>,
    metadata: &MetadataChanges,
    state: &mut InPlaceUpdateState,
    patch: &mut PodPatch,
    now: Timestamp,
) {
    patch.merge(metadata);
    let mut updated = Vec::new();
    for c in pod.spec.iter().flat_map(|s| &s.containers) {
        if let Some(image) = images.get(&c.name) {
            patch
                .containers
                .push(json!({ "name": c.name, "image": image }));
            updated.push(c.name.clone());
        }
    }
    let statuses = pod
        .status
        .iter()
        .flat_map(|s| s.container_statuses.iter().flatten());
    for cs in statuses {
        if updated.contains(&cs.name) {
            state.last_container_statuses.insert(
                cs.name.clone(),
                InPlaceUpdateContainerStatus {
                    image_id: cs.image_id.clone(),
                    resources: None,
                },
            );
        }
    }
    updated.sort();
    state.next_container_images = None;
    state.pre_check_before_next = None;
    state
        .container_batches_record
        .get_or_insert_with(Vec::new)
        .push(InPlaceUpdateContainerBatch {
            timestamp: Time(now),
            containers: updated,
        });
}

fn encode<T: serde::Serialize>(what: &'static str, value: &T) -> Result<String, InPlaceError> {
    serde_json::to_string(value).map_err(|e| InPlaceError::Encode {
        what,
        message: e.to_string(),
    })
}

/// Builder of the strategic merge patch sent to the pod.
#[derive(Default)]
struct PodPatch {
    labels: Map<String, Value>,
    annotations: Map<String, Value>,
    containers: Vec<Value>,
}

impl PodPatch {
    fn set_label(&mut self, key: &str, value: Option<&str>) {
        self.labels
            .insert(key.into(), value.map_or(Value::Null, Value::from));
    }

    fn set_annotation(&mut self, key: &str, value: Option<&str>) {
        self.annotations
            .insert(key.into(), value.map_or(Value::Null, Value::from));
    }

    fn merge(&mut self, changes: &MetadataChanges) {
        for (k, v) in &changes.labels {
            self.set_label(k, v.as_deref());
        }
        for (k, v) in &changes.annotations {
            self.set_annotation(k, v.as_deref());
        }
    }

    fn into_value(self) -> Value {
        let mut metadata = Map::new();
        if !self.labels.is_empty() {
            metadata.insert("labels".into(), Value::Object(self.labels));
        }
        if !self.annotations.is_empty() {
            metadata.insert("annotations".into(), Value::Object(self.annotations));
        }
        let mut patch = Map::new();
        patch.insert("metadata".into(), Value::Object(metadata));
        if !self.containers.is_empty() {
            patch.insert("spec".into(), json!({ "containers": self.containers }));
        }
        Value::Object(patch)
    }
}
