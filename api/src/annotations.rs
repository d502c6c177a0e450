//! Typed JSON carried in pod annotations and condition messages (the OpenKruise pod contract).
//! Field names and shapes match `apis/apps/pub/*.go`; tests pin the exact JSON.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Container, ResourceRequirements};
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

/// Env names never counted in the env-from-metadata hash (SidecarSet writes them itself).
const ENV_FROM_METADATA_EXCLUDED: [&str; 2] = ["SIDECARSET_VERSION", "SIDECARSET_VERSION_ALT"];

/// Splits a downward-API field path with a subscript, `metadata.labels['k']` into
/// `("metadata.labels", "k")` (Kubernetes' `fieldpath.SplitMaybeSubscriptedPath`).
pub fn split_subscripted_path(field_path: &str) -> Option<(&str, &str)> {
    let s = field_path.strip_suffix("']")?;
    let (path, key) = s.split_once("['")?;
    (!path.is_empty()).then_some((path, key))
}

/// The env vars of `container` that read a pod label or annotation through `valueFrom.fieldRef`
/// (name, path, key), as OpenKruise counts them (`pkg/util/containermeta`): a literal `value`
/// wins over `valueFrom`, and the SidecarSet version vars are left out.
pub fn env_from_metadata(container: &Container) -> Vec<(&str, &str, &str)> {
    container
        .env
        .iter()
        .flatten()
        .filter(|e| e.value.as_deref().is_none_or(str::is_empty))
        .filter(|e| !ENV_FROM_METADATA_EXCLUDED.contains(&e.name.as_str()))
        .filter_map(|e| {
            let field = e.value_from.as_ref()?.field_ref.as_ref()?;
            let (path, key) = split_subscripted_path(&field.field_path)?;
            matches!(path, "metadata.labels" | "metadata.annotations").then_some((
                e.name.as_str(),
                path,
                key,
            ))
        })
        .collect()
}

/// Whether an env var of `container` reads `path` (`metadata.labels` / `metadata.annotations`)
/// at `key` (OpenKruise's `IsContainerReferenceToMeta`).
pub fn container_reads_metadata(container: &Container, path: &str, key: &str) -> bool {
    env_from_metadata(container)
        .iter()
        .any(|(_, p, k)| *p == path && *k == key)
}

/// The `extractedEnvFromMetadataHash` a container should report when its env reflects the pod's
/// current `labels` and `annotations` (OpenKruise's `GetExpectHash`).
pub fn expected_env_from_metadata_hash(
    container: &Container,
    labels: &BTreeMap<String, String>,
    annotations: &BTreeMap<String, String>,
) -> u64 {
    let envs = env_from_metadata(container)
        .into_iter()
        .map(|(name, path, key)| {
            let source = if path == "metadata.labels" {
                labels
            } else {
                annotations
            };
            (name, source.get(key).map_or("", String::as_str))
        })
        .collect();
    hash_envs(envs)
}

/// The `extractedEnvFromMetadataHash` of a running container whose environment (the output of
/// `env` in it) is `env` (OpenKruise's `GetCurrentHash`; a missing var counts as empty).
pub fn current_env_from_metadata_hash(
    container: &Container,
    env: &BTreeMap<String, String>,
) -> u64 {
    let envs = env_from_metadata(container)
        .into_iter()
        .map(|(name, _, _)| (name, env.get(name).map_or("", String::as_str)))
        .collect();
    hash_envs(envs)
}

/// Kruise's `hashEnvs`: FNV-1a (32 bit) over spew's `%#v` of the Go JSON of `[]EnvVar{name,value}`
/// sorted by name (stable), so graft's hashes equal kruise-daemon's.
fn hash_envs(mut envs: Vec<(&str, &str)>) -> u64 {
    envs.sort_by(|a, b| a.0.cmp(b.0));
    let json = if envs.is_empty() {
        "null".to_string()
    } else {
        let items: Vec<String> = envs
            .iter()
            .map(|(n, v)| {
                if v.is_empty() {
                    format!("{{\"name\":{}}}", crate::gojson::string(n))
                } else {
                    format!(
                        "{{\"name\":{},\"value\":{}}}",
                        crate::gojson::string(n),
                        crate::gojson::string(v)
                    )
                }
            })
            .collect();
        format!("[{}]", items.join(","))
    };
    let bytes: Vec<String> = json.bytes().map(|b| b.to_string()).collect();
    let printed = format!("([]uint8)[{}]", bytes.join(" "));
    let mut hash: u32 = 0x811c_9dc5;
    for b in printed.bytes() {
        hash ^= u32::from(b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    u64::from(hash)
}

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

    // Printed by /tmp/envhash-go (Go 1.2x, go-spew v1.1.1) — see the test below.
    const GO_HASH_NULL: u64 = 86995377;
    const GO_HASH_TWO: u64 = 1968499136;
    const GO_HASH_EMPTY: u64 = 1915705921;

    fn container(env: serde_json::Value) -> Container {
        serde_json::from_value(json!({"name": "app", "env": env})).unwrap()
    }

    #[test]
    fn env_from_metadata_reads_subscripted_label_and_annotation_paths_only() {
        assert_eq!(
            split_subscripted_path("metadata.labels['a.b/c']"),
            Some(("metadata.labels", "a.b/c"))
        );
        assert_eq!(split_subscripted_path("metadata.name"), None);
        assert_eq!(split_subscripted_path("['x']"), None);
        let c = container(json!([
            {"name": "L", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['l']"}}},
            {"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "metadata.annotations['a']"}}},
            {"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "SIDECARSET_VERSION", "valueFrom": {"fieldRef": {"fieldPath": "metadata.annotations['v']"}}},
            {"name": "LIT", "value": "x", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['lit']"}}}
        ]));
        assert_eq!(
            env_from_metadata(&c),
            vec![
                ("L", "metadata.labels", "l"),
                ("A", "metadata.annotations", "a")
            ]
        );
        assert!(container_reads_metadata(&c, "metadata.labels", "l"));
        assert!(!container_reads_metadata(&c, "metadata.labels", "a"));
        assert!(!container_reads_metadata(&c, "metadata.annotations", "v"));
    }

    #[test]
    fn env_from_metadata_hashes_equal_kruise_daemons() {
        // Values computed with Go's encoding/json, go-spew and hash/fnv exactly as
        // kruise's pkg/util/containermeta hashEnvs does.
        let none = container(json!([]));
        assert_eq!(hash_envs(Vec::new()), GO_HASH_NULL);
        assert_eq!(
            expected_env_from_metadata_hash(&none, &BTreeMap::new(), &BTreeMap::new()),
            GO_HASH_NULL
        );
        assert_eq!(
            hash_envs(vec![("VERSION", "2"), ("CONFIG", "a<b&c")]),
            GO_HASH_TWO
        );
        assert_eq!(hash_envs(vec![("EMPTY", "")]), GO_HASH_EMPTY);
        // What the pod says and what the container shows agree when the env is current.
        let c = container(json!([
            {"name": "VERSION", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['version']"}}},
            {"name": "CONFIG", "valueFrom": {"fieldRef": {"fieldPath": "metadata.annotations['config']"}}}
        ]));
        let labels = BTreeMap::from([("version".to_string(), "2".to_string())]);
        let annotations = BTreeMap::from([("config".to_string(), "a<b&c".to_string())]);
        let expected = expected_env_from_metadata_hash(&c, &labels, &annotations);
        assert_eq!(expected, GO_HASH_TWO);
        let seen = BTreeMap::from([
            ("VERSION".to_string(), "2".to_string()),
            ("CONFIG".to_string(), "a<b&c".to_string()),
            ("PATH".to_string(), "/bin".to_string()),
        ]);
        assert_eq!(current_env_from_metadata_hash(&c, &seen), expected);
        let stale = BTreeMap::from([("VERSION".to_string(), "1".to_string())]);
        assert_ne!(current_env_from_metadata_hash(&c, &stale), expected);
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
