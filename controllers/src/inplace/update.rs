//! Starting and driving an in-place update on one pod (kruise's `realControl.Update`,
//! `finishGracePeriod`, `Refresh` with `updateNextBatch`, `defaultPatchUpdateSpecToPod` and
//! `defaultCheckContainersInPlaceUpdateCompleted`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use graft_api::annotations::{
    InPlaceUpdateContainerBatch, InPlaceUpdateContainerStatus, InPlaceUpdateGrace,
    InPlaceUpdatePreCheckBeforeNext, InPlaceUpdateState, RuntimeContainerMetaSet,
    expected_env_from_metadata_hash, parse_annotation,
};
use graft_api::labels;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Container, Pod, PodCondition, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use serde_json::{Map, Value, json};

use super::{
    InPlaceError, InPlaceUpdateSpec, MetadataChanges, PodChange, Progress, container_priorities,
    has_readiness_gate, not_ready_condition, pod_condition, pod_key, ready_condition, resources,
    same_image, update_grace, update_state,
};

/// Starts an in-place update of `pod` to `spec`. Returns, in order:
/// 1. if the pod has the `InPlaceUpdateReady` gate, the condition is not False yet, and the
///    change is not a resize that restarts nothing:
///    [`PodChange::Conditions`] with `InPlaceUpdateReady=False` (reason `StartInPlaceUpdate`) and,
///    when the pod is Ready now, `Ready=False` (reason `ReadinessGatesNotReady`, as kruise forces it
///    so traffic drains at once);
/// 2. with grace 0 and changed resources, a [`PodChange::Resize`] for the first batch;
/// 3. one [`PodChange::Patch`] writing `controller-revision-hash`, `spec.immediate`, the
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
    if needs_unready(pod, spec)
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
        update_env_from_metadata: spec.update_env_from_metadata,
        update_resources: !spec.container_resources.is_empty(),
        ..Default::default()
    };
    let mut resize = None;
    let mut patch = PodPatch::default();
    patch.set_label(labels::CONTROLLER_REVISION_HASH, Some(&spec.revision));
    patch.merge(&spec.immediate);
    patch.set_annotation(labels::INPLACE_UPDATE_STATE_LEGACY, None);
    if spec.grace_period_seconds <= 0 {
        resize = apply_spec(pod, &Batch::of_spec(spec), &mut state, &mut patch, now);
        patch.merge(&spec.immediate);
        patch.set_annotation(labels::INPLACE_UPDATE_GRACE, None);
        patch.set_annotation(labels::INPLACE_UPDATE_GRACE_LEGACY, None);
    } else {
        let grace = InPlaceUpdateGrace {
            revision: spec.revision.clone(),
            container_images: (!spec.container_images.is_empty())
                .then(|| spec.container_images.clone()),
            container_ref_metadata: (!spec.container_ref_metadata.is_empty())
                .then(|| spec.container_ref_metadata.clone()),
            container_resources: (!spec.container_resources.is_empty())
                .then(|| spec.container_resources.clone()),
            meta_data_patch: (!spec.metadata.is_empty())
                .then(|| ByteString(spec.metadata.to_patch().to_string().into_bytes())),
            update_env_from_metadata: spec.update_env_from_metadata,
            grace_seconds: spec.grace_period_seconds,
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
    changes.extend(resize.map(PodChange::Resize));
    changes.push(PodChange::Patch(patch.into_value()));
    Ok(changes)
}

/// Whether the update takes the pod out of service first (kruise's
/// `defaultCheckPodNeedsBeUnready`): always with the readiness gate, except a resources-only
/// change that restarts no container.
fn needs_unready(pod: &Pod, spec: &InPlaceUpdateSpec) -> bool {
    let vertical_only = !spec.container_resources.is_empty()
        && spec.container_images.is_empty()
        && !spec.update_env_from_metadata;
    has_readiness_gate(pod)
        && (!vertical_only || resources::resize_restarts(pod, &spec.container_resources))
}

/// Drives an update in progress; call it for every pod on every reconcile (also pods that are not
/// updating: new pods get `InPlaceUpdateReady=True` here).
///
/// - parked update whose revision is no longer the pod's label → [`Progress::Apply`] dropping it;
/// - parked update within its grace period → [`Progress::WaitingGrace`];
/// - grace period over → [`Progress::Apply`] with the first batch (resize, image/metadata patch and
///   the refreshed state);
/// - containers of the batch not done yet (images, resources, env restarts) →
///   [`Progress::InProgress`];
/// - a next launch-priority batch whose predecessors are not ready → [`Progress::InProgress`];
///   ready → [`Progress::Apply`] with that batch;
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
        let batch = Batch {
            images: grace.container_images.clone().unwrap_or_default(),
            ref_metadata: grace.container_ref_metadata.clone().unwrap_or_default(),
            resources: grace.container_resources.clone().unwrap_or_default(),
            metadata,
        };
        return apply_batch(pod, &batch, &mut state, patch, now);
    }

    if let Some(mut state) = update_state(pod)? {
        if let Err(waiting_for) = check_containers(pod, &state) {
            if gate_may_open_early(pod, &state) {
                return Ok(Progress::Apply(vec![PodChange::Conditions(vec![
                    ready_condition(now),
                ])]));
            }
            return Ok(Progress::InProgress { waiting_for });
        }
        if has_next_batch(&state) {
            // Launch priority: the next containers start once the ones updated are ready.
            if let Err(waiting_for) = pre_check_before_next(pod, &state) {
                return Ok(Progress::InProgress { waiting_for });
            }
            let batch = Batch {
                images: state.next_container_images.clone().unwrap_or_default(),
                ref_metadata: state
                    .next_container_ref_metadata
                    .clone()
                    .unwrap_or_default(),
                resources: state.next_container_resources.clone().unwrap_or_default(),
                metadata: MetadataChanges::default(),
            };
            return apply_batch(pod, &batch, &mut state, PodPatch::default(), now);
        }
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

/// Whether `InPlaceUpdateReady` may go back to True before the restarted containers run, as soon
/// as the kubelet has taken the new spec (`status.observedGeneration` reached the generation of
/// the image patch). This is where graft deliberately differs from OpenKruise, which waits for the
/// new containers: measured on the local cluster (bench/kubelet-gate.py), the kubelet reads a
/// readiness gate only from its own cached status, so a gate set True after the new container's
/// probe has passed waits for the next pod sync and PLEG relist (~1.8 s per pod), while a gate set
/// True during the restart is already cached when the probe passes and the pod turns Ready at once.
/// Nothing is served early: the kubelet computes Ready only after the restart, from the new
/// container's probe, and graft still records the update as completed only once the new image
/// runs. Only for image changes in one batch: not for env-from-metadata restarts (the node agent
/// restarts those, the spec does not change), resizes, launch-priority batches or grace periods.
fn gate_may_open_early(pod: &Pod, state: &InPlaceUpdateState) -> bool {
    let kubelet_took_spec = match (
        pod.metadata.generation,
        pod.status.as_ref().and_then(|s| s.observed_generation),
    ) {
        (Some(generation), Some(observed)) => observed >= generation,
        _ => false,
    };
    has_readiness_gate(pod)
        && pod_condition(pod, labels::INPLACE_UPDATE_READY).is_some_and(|c| c.status == "False")
        && state.update_images
        && !state.update_env_from_metadata
        && !state.update_resources
        && !has_next_batch(state)
        && !super::is_in_grace(pod)
        && kubelet_took_spec
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

/// kruise's `DefaultCheckInPlaceUpdateCompleted`: no parked update, no batch left, and
/// [`check_containers`]. `Err` says what is still missing.
pub(super) fn check_completed(pod: &Pod, state: &InPlaceUpdateState) -> Result<(), String> {
    if super::is_in_grace(pod) {
        return Err("still in grace period of in-place update".into());
    }
    if has_next_batch(state) {
        return Err("containers left to update in next batches".into());
    }
    check_containers(pod, state)
}

fn has_next_batch(state: &InPlaceUpdateState) -> bool {
    state
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
}

/// kruise's `doPreCheckBeforeNext`: the containers of the previous batch are ready.
fn pre_check_before_next(pod: &Pod, state: &InPlaceUpdateState) -> Result<(), String> {
    let required = state
        .pre_check_before_next
        .as_ref()
        .and_then(|p| p.containers_required_ready.as_ref());
    for name in required.into_iter().flatten() {
        let status = pod
            .status
            .iter()
            .flat_map(|s| s.container_statuses.iter().flatten())
            .find(|c| &c.name == name);
        match status {
            None => return Err(format!("not found container {name} in pod status")),
            Some(c) if !c.ready => return Err(format!("waiting container {name} to be ready")),
            Some(_) => {}
        }
    }
    Ok(())
}

/// kruise's `defaultCheckContainersInPlaceUpdateCompleted` for the containers updated so far:
/// - env from metadata: the node agent's `runtime-containers-meta` shows every container running
///   (same containerID as the pod status) with the env hash of the pod's current labels and
///   annotations;
/// - resources: every container's `status.resources` equals its spec;
/// - images: every container recorded in `lastContainerStatuses` appears in the pod status with
///   an `imageID` different from the recorded one — or, when the new tag has the same digest,
///   the same `imageID` but the status `image` equal to the spec image. (graft does not compute
///   kubelet container hashes, so the `plainHash` shortcut is not taken.)
pub(super) fn check_containers(pod: &Pod, state: &InPlaceUpdateState) -> Result<(), String> {
    if state.update_env_from_metadata {
        check_env_hashes(pod)?;
    }
    if state.update_resources {
        resources::check_resized(pod)?;
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

/// kruise's `checkAllContainersHashConsistent` with the env-from-metadata hash.
fn check_env_hashes(pod: &Pod) -> Result<(), String> {
    let raw = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(labels::RUNTIME_CONTAINERS_META));
    let Some(raw) = raw else {
        return Err(
            "waiting for all containers hash consistent, but runtime-container-meta not found"
                .into(),
        );
    };
    let meta: RuntimeContainerMetaSet =
        parse_annotation(labels::RUNTIME_CONTAINERS_META, raw).map_err(|e| e.to_string())?;
    let empty = BTreeMap::new();
    let pod_labels = pod.metadata.labels.as_ref().unwrap_or(&empty);
    let pod_annotations = pod.metadata.annotations.as_ref().unwrap_or(&empty);
    for c in pod.spec.iter().flat_map(|s| &s.containers) {
        let status = pod
            .status
            .iter()
            .flat_map(|s| s.container_statuses.iter().flatten())
            .find(|s| s.name == c.name)
            .ok_or_else(|| format!("no status for container {}", c.name))?;
        let reported = meta
            .containers
            .iter()
            .rfind(|m| m.name == c.name)
            .ok_or_else(|| format!("container {} not in runtime-containers-meta", c.name))?;
        if Some(&reported.container_id) != status.container_id.as_ref() {
            return Err(format!(
                "container {} in runtime-containers-meta is not the running one yet",
                c.name
            ));
        }
        let want = expected_env_from_metadata_hash(c, pod_labels, pod_annotations);
        if reported.hashes.extracted_env_from_metadata_hash != want {
            return Err(format!(
                "waiting for container {} to restart with the env from metadata",
                c.name
            ));
        }
    }
    Ok(())
}

/// What one batch of an in-place update writes (kruise's `UpdateSpec` as `PatchSpecToPod` reads
/// it).
struct Batch {
    images: BTreeMap<String, String>,
    ref_metadata: BTreeMap<String, ObjectMeta>,
    resources: BTreeMap<String, ResourceRequirements>,
    metadata: MetadataChanges,
}

impl Batch {
    fn of_spec(spec: &InPlaceUpdateSpec) -> Batch {
        Batch {
            images: spec.container_images.clone(),
            ref_metadata: spec.container_ref_metadata.clone(),
            resources: spec.container_resources.clone(),
            metadata: spec.metadata.clone(),
        }
    }
}

/// The changes that start `batch`: its resize first (if any), then one patch with the batch
/// and the new `apps.kruise.io/inplace-update-state`.
fn apply_batch(
    pod: &Pod,
    batch: &Batch,
    state: &mut InPlaceUpdateState,
    mut patch: PodPatch,
    now: Timestamp,
) -> Result<Progress, InPlaceError> {
    let resize = apply_spec(pod, batch, state, &mut patch, now);
    patch.set_annotation(labels::INPLACE_UPDATE_STATE, Some(&encode("state", state)?));
    let mut changes: Vec<PodChange> = resize.map(PodChange::Resize).into_iter().collect();
    changes.push(PodChange::Patch(patch.into_value()));
    Ok(Progress::Apply(changes))
}

/// Writes one batch into `patch` and `state` (kruise's `defaultPatchUpdateSpecToPod`): the
/// template metadata at once; of the changed containers, those without a launch priority and
/// those with the highest one now (plus any container sharing a changed label/annotation with
/// them), the rest into the state's `next*` fields with `preCheckBeforeNext`. Records what the
/// updated containers ran before. Returns the `resize` body for this batch's resources, if any.
fn apply_spec(
    pod: &Pod,
    batch: &Batch,
    state: &mut InPlaceUpdateState,
    patch: &mut PodPatch,
    now: Timestamp,
) -> Option<Value> {
    patch.merge(&batch.metadata);
    let containers: &[Container] = pod.spec.as_ref().map_or(&[], |s| &s.containers);
    let priorities = container_priorities(pod);
    let mut to_update: BTreeSet<String> = BTreeSet::new();
    let mut highest: Option<(i32, Vec<String>)> = None;
    for (c, priority) in containers.iter().zip(priorities) {
        let changed = batch.images.contains_key(&c.name)
            || batch.ref_metadata.contains_key(&c.name)
            || batch.resources.contains_key(&c.name);
        if !changed {
            continue;
        }
        let Some(p) = priority else {
            to_update.insert(c.name.clone());
            continue;
        };
        match highest.as_ref().map(|(h, _)| *h) {
            Some(h) if p == h => {
                if let Some((_, names)) = highest.as_mut() {
                    names.push(c.name.clone());
                }
            }
            Some(h) if p < h => {}
            _ => highest = Some((p, vec![c.name.clone()])),
        }
    }
    to_update.extend(highest.into_iter().flat_map(|(_, names)| names));
    add_metadata_sharing(&mut to_update, &batch.ref_metadata);

    let mut next_images = BTreeMap::new();
    let mut updated_images = BTreeSet::new();
    for c in containers {
        let Some(image) = batch.images.get(&c.name) else {
            continue;
        };
        if to_update.contains(&c.name) {
            patch
                .containers
                .push(json!({ "name": c.name, "image": image }));
            updated_images.insert(c.name.clone());
        } else {
            next_images.insert(c.name.clone(), image.clone());
        }
    }
    let statuses = pod
        .status
        .iter()
        .flat_map(|s| s.container_statuses.iter().flatten());
    for cs in statuses {
        if updated_images.contains(&cs.name) {
            state
                .last_container_statuses
                .entry(cs.name.clone())
                .or_insert_with(|| InPlaceUpdateContainerStatus {
                    image_id: cs.image_id.clone(),
                    resources: None,
                });
        }
    }

    let mut expected = BTreeMap::new();
    let mut next_resources = BTreeMap::new();
    for (name, r) in &batch.resources {
        if to_update.contains(name) {
            expected.insert(name.clone(), r.clone());
        } else {
            next_resources.insert(name.clone(), r.clone());
        }
    }

    let mut next_metadata = BTreeMap::new();
    for (name, meta) in &batch.ref_metadata {
        if to_update.contains(name) {
            for (k, v) in meta.labels.iter().flatten() {
                patch.set_label(k, Some(v));
            }
            for (k, v) in meta.annotations.iter().flatten() {
                patch.set_annotation(k, Some(v));
            }
        } else {
            next_metadata.insert(name.clone(), meta.clone());
        }
    }

    let non_empty = |empty: bool| !empty;
    state.next_container_images = non_empty(next_images.is_empty()).then_some(next_images);
    state.next_container_resources = non_empty(next_resources.is_empty()).then_some(next_resources);
    state.next_container_ref_metadata =
        non_empty(next_metadata.is_empty()).then_some(next_metadata);
    let updated: Vec<String> = to_update.into_iter().collect();
    state.pre_check_before_next = has_next_batch(state).then(|| InPlaceUpdatePreCheckBeforeNext {
        containers_required_ready: Some(updated.clone()),
    });
    state
        .container_batches_record
        .get_or_insert_with(Vec::new)
        .push(InPlaceUpdateContainerBatch {
            timestamp: Time(now),
            containers: updated,
        });
    resources::resize_patch(pod, &expected)
}

/// kruise's `addMetadataSharedContainersToUpdate`: a container whose env reads a label or
/// annotation that a container of this batch changes joins the batch (the pod has one value).
fn add_metadata_sharing(
    to_update: &mut BTreeSet<String>,
    ref_metadata: &BTreeMap<String, ObjectMeta>,
) {
    loop {
        let (mut labels, mut annotations) = (BTreeSet::new(), BTreeSet::new());
        for name in to_update.iter() {
            if let Some(meta) = ref_metadata.get(name) {
                labels.extend(meta.labels.iter().flatten().map(|(k, _)| k.clone()));
                annotations.extend(meta.annotations.iter().flatten().map(|(k, _)| k.clone()));
            }
        }
        let joining: Vec<String> = ref_metadata
            .iter()
            .filter(|(name, _)| !to_update.contains(*name))
            .filter(|(_, meta)| {
                meta.labels
                    .iter()
                    .flatten()
                    .any(|(k, _)| labels.contains(k))
                    || meta
                        .annotations
                        .iter()
                        .flatten()
                        .any(|(k, _)| annotations.contains(k))
            })
            .map(|(name, _)| name.clone())
            .collect();
        if joining.is_empty() {
            return;
        }
        to_update.extend(joining);
    }
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
