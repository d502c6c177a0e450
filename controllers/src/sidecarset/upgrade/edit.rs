//! Building the pod changes of an upgrade: new sidecar images and the annotations kruise writes
//! with them (`updatePodSidecarContainer`, `UpdatePodSidecarSetHash`,
//! `UpdatePodAnnotationsInUpgrade`, `updatePodSidecarSetUpgradableCondition`).

use std::collections::{BTreeMap, BTreeSet};

use graft_api::annotations::{
    InPlaceUpdateContainerStatus, InPlaceUpdateState, SidecarSetUpgradeSpec,
};
use graft_api::apps::v1beta1::sidecarset::SidecarSet;
use graft_api::{gojson, labels};
use k8s_openapi::api::core::v1::{Pod, PodCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use serde_json::{Map, Value, json};

use super::facts::{self, container, container_status, read_hashes, read_update_states};
use crate::inplace::{MetadataChanges, pod_condition};

/// Reason of `SidecarSetUpgradable=True`.
pub const REASON_ALL_UPGRADABLE: &str = "AllSidecarsetUpgradable";
/// Reason of `SidecarSetUpgradable=False`.
pub const REASON_UPDATE_IMMUTABLE_FIELD: &str = "UpdateImmutableField";

/// A working copy of the parts of a pod an upgrade changes.
pub(crate) struct PodEdit<'a> {
    pub pod: &'a Pod,
    pub annotations: BTreeMap<String, String>,
    /// Container name to its new image.
    pub images: BTreeMap<String, String>,
}

impl<'a> PodEdit<'a> {
    pub fn new(pod: &'a Pod) -> Self {
        Self {
            pod,
            annotations: facts::annotations(pod),
            images: BTreeMap::new(),
        }
    }

    /// The image of container `name` with the edits so far.
    pub fn image(&self, name: &str) -> Option<String> {
        self.images
            .get(name)
            .cloned()
            .or_else(|| container(self.pod, name).map(|c| c.image.clone().unwrap_or_default()))
    }

    pub fn annotation(&self, key: &str) -> String {
        self.annotations.get(key).cloned().unwrap_or_default()
    }

    pub fn set_annotation(&mut self, key: String, value: String) {
        self.annotations.insert(key, value);
    }

    /// kruise `UpdatePodAnnotationsInUpgrade`: in `kruise.io/sidecarset-inplace-update-state`,
    /// the entry of this SidecarSet (created with the SidecarSet hash and `now` when missing, else
    /// kept) records the current status `imageID` of each changed container. An unreadable
    /// annotation is started afresh, as kruise does.
    pub fn record_update_state(&mut self, set: &SidecarSet, changed: &[String], now: Timestamp) {
        let set_name = set.metadata.name.clone().unwrap_or_default();
        let raw = self.annotation(labels::SIDECARSET_INPLACE_UPDATE_STATE);
        let mut states = if raw.is_empty() {
            BTreeMap::new()
        } else {
            read_update_states(&raw).unwrap_or_default()
        };
        let state = states
            .entry(set_name)
            .or_insert_with(|| InPlaceUpdateState {
                revision: set.hash().to_string(),
                update_timestamp: Some(Time(now)),
                ..Default::default()
            });
        for name in changed {
            let image_id = container_status(self.pod, name)
                .map(|s| s.image_id.clone())
                .unwrap_or_default();
            state.last_container_statuses.insert(
                name.clone(),
                InPlaceUpdateContainerStatus {
                    image_id,
                    resources: None,
                },
            );
        }
        self.set_annotation(
            labels::SIDECARSET_INPLACE_UPDATE_STATE.to_string(),
            state_json(&states),
        );
    }

    /// kruise `UpdatePodSidecarSetHash`: the `kruise.io/sidecarset-hash` entry of this SidecarSet
    /// becomes `{updateTimestamp: now, hash, sidecarSetName, sidecarList, controllerRevision}`.
    /// A legacy (`name → hash`) annotation is converted, and so is a legacy
    /// `kruise.io/sidecarset-hash-without-image`.
    pub fn update_hash(&mut self, set: &SidecarSet, latest_revision: &str, now: Timestamp) {
        let set_name = set.metadata.name.clone().unwrap_or_default();
        let raw = self.annotation(labels::SIDECARSET_HASH);
        let parsed = read_hashes(&raw);
        // kruise converts the legacy formats whenever the annotation does not read as the new one.
        let not_new_format = !matches!(parsed, Some((_, false)));
        let (mut hashes, legacy) = parsed.unwrap_or_default();
        let convert = |hashes: &mut BTreeMap<String, SidecarSetUpgradeSpec>| {
            for spec in hashes.values_mut() {
                spec.update_timestamp = Some(Time(now));
                spec.sidecar_set_name.clone_from(&set_name);
            }
        };
        if legacy {
            convert(&mut hashes);
        }
        if not_new_format {
            let raw = self.annotation(labels::SIDECARSET_HASH_WITHOUT_IMAGE);
            if let Some((mut without, true)) = read_hashes(&raw) {
                convert(&mut without);
                self.set_annotation(
                    labels::SIDECARSET_HASH_WITHOUT_IMAGE.to_string(),
                    state_json(&without),
                );
            }
        }
        hashes.insert(
            set_name.clone(),
            SidecarSetUpgradeSpec {
                update_timestamp: Some(Time(now)),
                sidecar_set_hash: set.hash().to_string(),
                sidecar_set_name: set_name,
                sidecar_list: sidecar_list(set),
                sidecar_set_controller_revision: latest_revision.to_string(),
            },
        );
        self.set_annotation(labels::SIDECARSET_HASH.to_string(), state_json(&hashes));
    }

    /// The changes against the observed pod: annotations that changed and the new images.
    pub fn changes(&self) -> (MetadataChanges, BTreeMap<String, String>) {
        let old = facts::annotations(self.pod);
        let mut meta = MetadataChanges::default();
        for (k, v) in &self.annotations {
            if old.get(k) != Some(v) {
                meta.annotations.insert(k.clone(), Some(v.clone()));
            }
        }
        (meta, self.images.clone())
    }

    /// One strategic merge patch: `metadata.resourceVersion` of the observed pod (so a pod that
    /// changed since is refused with 409 and planned again, as kruise's GET+UPDATE retries), the
    /// changed annotations, and `spec.containers[]` entries `{name, image}`.
    pub fn patch(&self) -> Value {
        let (meta, images) = self.changes();
        let mut patch = meta.to_patch();
        if let Some(rv) = &self.pod.metadata.resource_version
            && let Some(m) = patch.get_mut("metadata").and_then(Value::as_object_mut)
        {
            m.insert("resourceVersion".into(), Value::String(rv.clone()));
        }
        if !images.is_empty() {
            let containers: Vec<Value> = images
                .iter()
                .map(|(name, image)| json!({"name": name, "image": image}))
                .collect();
            patch["spec"] = json!({ "containers": containers });
        }
        patch
    }
}

/// The names kruise lists in `sidecarList` (`listSidecarNameInSidecarSet`): native-sidecar init
/// containers and containers, sorted.
fn sidecar_list(set: &SidecarSet) -> Vec<String> {
    let names: BTreeSet<String> = set
        .spec
        .init_containers()
        .iter()
        .filter(|c| c.is_native_sidecar())
        .chain(set.spec.containers())
        .map(|c| c.name().to_string())
        .collect();
    names.into_iter().collect()
}

/// Compact JSON with struct fields in declaration order, which is the order of kruise's Go structs.
fn state_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// The `SidecarSetUpgradable` pod condition after marking this SidecarSet upgradable or not
/// (kruise `updatePodSidecarSetUpgradableCondition`), or `None` when the pod already has it. The
/// message is a JSON map SidecarSet name → bool; the status is True (`AllSidecarsetUpgradable`)
/// only when no SidecarSet in it is false, else False (`UpdateImmutableField`). The transition
/// time moves only when the status does. An unreadable message is replaced.
pub fn upgradable_condition(
    pod: &Pod,
    set_name: &str,
    upgradable: bool,
    now: Timestamp,
) -> Option<PodCondition> {
    let old = pod_condition(pod, labels::SIDECARSET_UPGRADABLE);
    let mut kv: Map<String, Value> = old
        .and_then(|c| c.message.as_deref())
        .filter(|m| !m.is_empty())
        .and_then(|m| serde_json::from_str(m).ok())
        .unwrap_or_default();
    kv.insert(set_name.to_string(), Value::Bool(upgradable));
    let all = !kv.values().any(|v| *v == Value::Bool(false));
    let status = if all { "True" } else { "False" };
    let mut cond = old.cloned().unwrap_or_else(|| PodCondition {
        type_: labels::SIDECARSET_UPGRADABLE.to_string(),
        ..Default::default()
    });
    cond.status = status.to_string();
    cond.reason = Some(
        if all {
            REASON_ALL_UPGRADABLE
        } else {
            REASON_UPDATE_IMMUTABLE_FIELD
        }
        .to_string(),
    );
    cond.message = Some(gojson::to_go_json(&Value::Object(kv)));
    cond.last_transition_time = match old {
        Some(o) if o.status == status => o.last_transition_time.clone(),
        _ => Some(Time(now)),
    };
    (old != Some(&cond)).then_some(cond)
}
