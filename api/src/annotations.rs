//! Typed JSON carried in pod annotations and condition messages (the OpenKruise pod contract).
//! Field names and shapes match `apis/apps/pub/*.go`; tests pin the exact JSON.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use serde::{Deserialize, Serialize};

use crate::Error;

/// Annotation `apps.kruise.io/inplace-update-state`: what an in-place update changed and the
/// container statuses before it, used to detect completion.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InPlaceUpdateState {
    /// Revision name the pod is being updated to.
    pub revision: String,
    /// When the in-place update was applied.
    pub update_timestamp: Option<Time>,
    /// Container name to its status before the update.
    #[serde(default)]
    pub last_container_statuses: BTreeMap<String, InPlaceUpdateContainerStatus>,
    /// Env taken from labels/annotations changed; the node agent restarts the containers.
    #[serde(default, skip_serializing_if = "is_false")]
    pub update_env_from_metadata: bool,
    /// Container resources changed.
    #[serde(default, skip_serializing_if = "is_false")]
    pub update_resources: bool,
    /// Container images changed.
    #[serde(default, skip_serializing_if = "is_false")]
    pub update_images: bool,
    /// Images of the next batch (container launch priorities).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_container_images: Option<BTreeMap<String, String>>,
    /// Metadata the next batch's env refers to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_container_ref_metadata: Option<BTreeMap<String, ObjectMeta>>,
    /// Resources of the next batch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_container_resources: Option<BTreeMap<String, ResourceRequirements>>,
    /// Containers that must be ready before the next batch starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_check_before_next: Option<InPlaceUpdatePreCheckBeforeNext>,
    /// Batches applied so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_batches_record: Option<Vec<InPlaceUpdateContainerBatch>>,
}

/// A container's status recorded before an in-place update.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct InPlaceUpdateContainerStatus {
    /// The container's `imageID` before the update.
    #[serde(rename = "imageID", default, skip_serializing_if = "String::is_empty")]
    pub image_id: String,
    /// The container's resources before the update.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
}

/// Gate between container batches.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InPlaceUpdatePreCheckBeforeNext {
    /// Containers that must be ready first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub containers_required_ready: Option<Vec<String>>,
}

/// One batch of an in-place update.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InPlaceUpdateContainerBatch {
    /// When the batch was applied.
    pub timestamp: Time,
    /// Containers updated in the batch.
    pub containers: Vec<String>,
}

/// Annotation `apps.kruise.io/inplace-update-grace`: an update parked during
/// `gracePeriodSeconds` (Go `UpdateSpec`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InPlaceUpdateGrace {
    /// Target revision name.
    pub revision: String,
    /// Container name to new image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_images: Option<BTreeMap<String, String>>,
    /// Container name to the metadata its env refers to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_ref_metadata: Option<BTreeMap<String, ObjectMeta>>,
    /// Container name to new resources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_resources: Option<BTreeMap<String, ResourceRequirements>>,
    /// Strategic merge patch of pod metadata (Go `[]byte`, so base64 in JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta_data_patch: Option<ByteString>,
    /// Env from metadata changed.
    #[serde(default, skip_serializing_if = "is_false")]
    pub update_env_from_metadata: bool,
    /// Grace period in seconds.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub grace_seconds: i32,
}

/// Annotation `apps.kruise.io/runtime-containers-meta`, written by the node agent.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RuntimeContainerMetaSet {
    /// One entry per running container.
    pub containers: Vec<RuntimeContainerMeta>,
}

/// What the node agent saw of one container.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeContainerMeta {
    /// Container name.
    pub name: String,
    /// Runtime container id (`containerd://...`).
    #[serde(rename = "containerID")]
    pub container_id: String,
    /// Restart count.
    pub restart_count: i32,
    /// Hashes of the running container.
    pub hashes: RuntimeContainerHashes,
}

/// Hashes the node agent reports per container.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeContainerHashes {
    /// Kubelet's hash of the container spec.
    pub plain_hash: u64,
    /// Kubelet's hash without resources (newer kubelets).
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub plain_hash_without_resources: u64,
    /// Hash of the env values taken from pod metadata, as seen in the container.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub extracted_env_from_metadata_hash: u64,
}

/// One entry of the pod annotations `kruise.io/sidecarset-hash` / `-without-image`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SidecarSetUpgradeSpec {
    /// When the sidecars were injected or last upgraded.
    pub update_timestamp: Option<Time>,
    /// The SidecarSet hash the pod's sidecars match.
    #[serde(rename = "hash")]
    pub sidecar_set_hash: String,
    /// Name of the SidecarSet.
    pub sidecar_set_name: String,
    /// Names of the sidecar containers.
    #[serde(default)]
    pub sidecar_list: Vec<String>,
    /// ControllerRevision the sidecars came from.
    #[serde(
        rename = "controllerRevision",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub sidecar_set_controller_revision: String,
}

/// The pod annotations `kruise.io/sidecarset-hash` / `-without-image`: SidecarSet name to entry.
pub type SidecarSetHashes = BTreeMap<String, SidecarSetUpgradeSpec>;

#[derive(Deserialize)]
#[serde(untagged)]
enum SidecarSetHashEntry {
    Full(SidecarSetUpgradeSpec),
    Legacy(String),
}

/// Parses a SidecarSet hash annotation, accepting the old format (`{"name":"hash"}`) too.
pub fn parse_sidecarset_hashes(annotation: &str) -> Result<SidecarSetHashes, Error> {
    let raw: BTreeMap<String, SidecarSetHashEntry> =
        serde_json::from_str(annotation).map_err(|e| Error::Decode {
            path: crate::labels::SIDECARSET_HASH.to_string(),
            message: e.to_string(),
        })?;
    Ok(raw
        .into_iter()
        .map(|(name, entry)| {
            let spec = match entry {
                SidecarSetHashEntry::Full(s) => s,
                SidecarSetHashEntry::Legacy(hash) => SidecarSetUpgradeSpec {
                    sidecar_set_hash: hash,
                    sidecar_set_name: name.clone(),
                    ..Default::default()
                },
            };
            (name, spec)
        })
        .collect())
}

/// One "not ready" reason in the `KruisePodReady` condition message (a JSON list of these).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodNotReadyReason {
    /// Who set it: `Lifecycle` or `ContainerRecreateRequest`.
    pub user_agent: String,
    /// Key such as `preDeleteHook`, `preUpdateHook` or `<ns>/<crr-name>`.
    pub key: String,
}

/// The message of the `KruisePodReady` condition.
pub type PodNotReadyReasons = Vec<PodNotReadyReason>;

fn is_false(b: &bool) -> bool {
    !*b
}
fn is_zero(i: &i32) -> bool {
    *i == 0
}
fn is_zero_u64(i: &u64) -> bool {
    *i == 0
}

/// Reads a typed annotation from a JSON string, naming the annotation key in the error.
pub fn parse_annotation<T: serde::de::DeserializeOwned>(
    key: &str,
    value: &str,
) -> Result<T, Error> {
    serde_json::from_str(value).map_err(|e| Error::Decode {
        path: key.to_string(),
        message: e.to_string(),
    })
}

/// Writes a typed annotation as compact JSON.
pub fn to_annotation<T: Serialize>(value: &T) -> Result<String, Error> {
    serde_json::to_string(value).map_err(|e| Error::Serialize(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use serde_json::json;

    fn time(s: &str) -> Time {
        serde_json::from_value(json!(s)).unwrap()
    }

    #[test]
    fn inplace_update_state_json_shape_is_pinned() {
        let state = InPlaceUpdateState {
            revision: "demo-7b5c9".into(),
            update_timestamp: Some(time("2026-01-02T03:04:05Z")),
            last_container_statuses: BTreeMap::from([(
                "main".to_string(),
                InPlaceUpdateContainerStatus {
                    image_id: "docker.io/library/nginx@sha256:aa".into(),
                    resources: None,
                },
            )]),
            update_images: true,
            pre_check_before_next: Some(InPlaceUpdatePreCheckBeforeNext {
                containers_required_ready: Some(vec!["main".into()]),
            }),
            next_container_images: Some(BTreeMap::from([("side".into(), "busybox:2".into())])),
            container_batches_record: Some(vec![InPlaceUpdateContainerBatch {
                timestamp: time("2026-01-02T03:04:05Z"),
                containers: vec!["main".into()],
            }]),
            ..Default::default()
        };
        let v = serde_json::to_value(&state).unwrap();
        assert_eq!(
            v,
            json!({
                "revision": "demo-7b5c9",
                "updateTimestamp": "2026-01-02T03:04:05Z",
                "lastContainerStatuses": {"main": {"imageID": "docker.io/library/nginx@sha256:aa"}},
                "updateImages": true,
                "nextContainerImages": {"side": "busybox:2"},
                "preCheckBeforeNext": {"containersRequiredReady": ["main"]},
                "containerBatchesRecord": [{"timestamp": "2026-01-02T03:04:05Z", "containers": ["main"]}]
            })
        );
        // A state written by OpenKruise reads back.
        let upstream = r#"{"revision":"demo-1","updateTimestamp":"2026-01-02T03:04:05Z","lastContainerStatuses":{"main":{"imageID":"x@sha256:1"}},"updateEnvFromMetadata":true}"#;
        let parsed: InPlaceUpdateState =
            parse_annotation(crate::labels::INPLACE_UPDATE_STATE, upstream).unwrap();
        assert!(parsed.update_env_from_metadata);
        assert_eq!(
            parsed.last_container_statuses["main"].image_id,
            "x@sha256:1"
        );
    }

    #[test]
    fn inplace_update_grace_json_shape_is_pinned() {
        let g = InPlaceUpdateGrace {
            revision: "r2".into(),
            container_images: Some(BTreeMap::from([("main".into(), "nginx:2".into())])),
            meta_data_patch: Some(ByteString(br#"{"metadata":{}}"#.to_vec())),
            grace_seconds: 10,
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&g).unwrap(),
            json!({
                "revision": "r2",
                "containerImages": {"main": "nginx:2"},
                "metaDataPatch": "eyJtZXRhZGF0YSI6e319",
                "graceSeconds": 10
            })
        );
    }

    #[test]
    fn runtime_containers_meta_shape_is_pinned() {
        let raw = r#"{"containers":[{"name":"main","containerID":"containerd://abc","restartCount":2,"hashes":{"plainHash":123,"extractedEnvFromMetadataHash":456}}]}"#;
        let m: RuntimeContainerMetaSet =
            parse_annotation(crate::labels::RUNTIME_CONTAINERS_META, raw).unwrap();
        assert_eq!(m.containers[0].container_id, "containerd://abc");
        assert_eq!(m.containers[0].hashes.extracted_env_from_metadata_hash, 456);
        assert_eq!(to_annotation(&m).unwrap(), raw);
    }

    #[test]
    fn sidecarset_hash_shape_is_pinned_and_legacy_is_read() {
        let mut hashes = SidecarSetHashes::new();
        hashes.insert(
            "log".into(),
            SidecarSetUpgradeSpec {
                update_timestamp: Some(time("2026-01-02T03:04:05Z")),
                sidecar_set_hash: "h1".into(),
                sidecar_set_name: "log".into(),
                sidecar_list: vec!["fluent".into()],
                sidecar_set_controller_revision: "log-abc".into(),
            },
        );
        assert_eq!(
            serde_json::to_value(&hashes).unwrap(),
            json!({"log": {
                "updateTimestamp": "2026-01-02T03:04:05Z",
                "hash": "h1",
                "sidecarSetName": "log",
                "sidecarList": ["fluent"],
                "controllerRevision": "log-abc"
            }})
        );
        let legacy = parse_sidecarset_hashes(r#"{"log":"h0"}"#).unwrap();
        assert_eq!(legacy["log"].sidecar_set_hash, "h0");
        assert_eq!(legacy["log"].sidecar_set_name, "log");
        let full = parse_sidecarset_hashes(&to_annotation(&hashes).unwrap()).unwrap();
        assert_eq!(full, hashes);
        assert!(parse_sidecarset_hashes("not json").is_err());
    }

    #[test]
    fn pod_not_ready_reasons_shape_is_pinned() {
        let r = vec![PodNotReadyReason {
            user_agent: "Lifecycle".into(),
            key: "preDeleteHook".into(),
        }];
        assert_eq!(
            to_annotation(&r).unwrap(),
            r#"[{"userAgent":"Lifecycle","key":"preDeleteHook"}]"#
        );
    }
}
