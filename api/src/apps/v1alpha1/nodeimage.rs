//! NodeImage (`apps.kruise.io/v1alpha1`, cluster-scoped, one per Node with the Node's name):
//! images the node agent should pull and their pull status (kruise-api.md §6.2).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::imagepulljob::{ImagePullPolicy, SandboxConfig};
use crate::field::{FieldError, FieldErrors};

/// Most images one NodeImage may list.
pub const MAX_IMAGES: usize = 256;

/// Desired images of a node.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "apps.kruise.io",
    version = "v1alpha1",
    kind = "NodeImage",
    status = "NodeImageStatus",
    derive = "PartialEq",
    doc = "NodeImage lists the images the node agent pulls on one node (same name as the Node).",
    printcolumn(
        name = "DESIRED",
        type_ = "integer",
        json_path = ".status.desired",
        description = "Number of all images on this node"
    ),
    printcolumn(
        name = "PULLING",
        type_ = "integer",
        json_path = ".status.pulling",
        description = "Number of image pull task active"
    ),
    printcolumn(
        name = "SUCCEED",
        type_ = "integer",
        json_path = ".status.succeeded",
        description = "Number of image pull task succeeded"
    ),
    printcolumn(
        name = "FAILED",
        type_ = "integer",
        json_path = ".status.failed",
        description = "Number of image pull tasks failed"
    ),
    printcolumn(
        name = "AGE",
        type_ = "date",
        json_path = ".metadata.creationTimestamp",
        description = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC."
    )
)]
#[serde(rename_all = "camelCase")]
pub struct NodeImageSpec {
    /// Image name (without tag) to what to pull. OpenKruise's webhook rules are checked by the API
    /// server (table: [`NodeImageSpec::validate`]), in its words but without the image and tag
    /// names: the API server refuses any messageExpression here as over its cost budget (even
    /// `string(size(self))`). `maxProperties` and the tags' `maxItems` are graft's bounds that let
    /// it afford the rules themselves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend(
        "maxProperties" = 1024,
        "x-kubernetes-validations" = [
            {
                "rule": "size(self) <= 256",
                "message": "spec images length can not be more than 256"
            },
            {
                "rule": "self.all(n, size(n) > 0)",
                "message": "image name can not be empty"
            },
            {
                "rule": "self.all(n, self[n].tags.all(t, size(t.tag) > 0))",
                "message": "tag for image can not be empty"
            },
            {
                "rule": "self.all(n, self[n].tags.all(t, !has(t.version) || t.version >= 0))",
                "message": "version for image tag can not be less than 0"
            },
            {
                "rule": "self.all(n, self[n].tags.all(t, has(t.pullPolicy) && has(t.pullPolicy.ttlSecondsAfterFinished)))",
                "message": "pullPolicy.ttlSecondsAfterFinished for image tag must set"
            }
        ]
    ))]
    pub images: Option<BTreeMap<String, ImageSpec>>,
}

/// One image and its tags.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageSpec {
    /// Secrets (synced into the agent's namespace) used to pull.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_secrets: Option<Vec<ReferenceObject>>,
    /// Tags to pull (graft's bound: 64 per image). A list keyed by tag, so the API server refuses
    /// a duplicated tag itself (kruise's webhook: "duplicated tag"), which costs it nothing.
    #[schemars(length(max = 64))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["tag"]))]
    pub tags: Vec<ImageTagSpec>,
    /// Labels and annotations of the CRI pull sandbox.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox_config: Option<SandboxConfig>,
}

/// A reference to a secret.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ReferenceObject {
    /// Namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `batch` for the copies an ImagePullJob made (kruise 1.9): they go with the image entry,
    /// while references without a mode are older ones the NodeImage manager checks one by one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
}

/// One tag to pull.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageTagSpec {
    /// Tag or digest.
    pub tag: String,
    /// When the tag was added.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Time>,
    /// Pull timeout, retries and TTL (defaulted to `{}`, so timeout and backoff get theirs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = {}))]
    pub pull_policy: Option<ImageTagPullPolicy>,
    /// ImagePullJobs that want this tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_references: Option<Vec<ObjectReference>>,
    /// Bumped to start a new pull round.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    /// `IfNotPresent` or `Always`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<ImagePullPolicy>,
}

/// Pull policy of one tag.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageTagPullPolicy {
    /// Seconds per attempt (default 600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = 600))]
    pub timeout_seconds: Option<i32>,
    /// Retries (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = 3))]
    pub backoff_limit: Option<i32>,
    /// Seconds after completion before the tag is removed (required by the webhook).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds_after_finished: Option<i32>,
    /// Deadline for the whole pull.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_deadline_seconds: Option<i64>,
}

/// Pull status of a node.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct NodeImageStatus {
    /// Tags wanted.
    pub desired: i32,
    /// Tags pulled.
    pub succeeded: i32,
    /// Tags failed.
    pub failed: i32,
    /// Tags pulling.
    pub pulling: i32,
    /// Tags waiting.
    pub waiting: i32,
    /// Image name to status per tag.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_statuses: Option<BTreeMap<String, ImageStatus>>,
    /// Result of the first sync after the node came up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_sync_status: Option<SyncStatus>,
}

/// Status of one image.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ImageStatus {
    /// Per-tag status.
    pub tags: Vec<ImageTagStatus>,
}

/// Status of one tag.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageTagStatus {
    /// Tag or digest.
    pub tag: String,
    /// `Waiting`, `Pulling`, `Succeeded` or `Failed`.
    pub phase: ImagePullPhase,
    /// Progress 0..100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<i32>,
    /// When pulling started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    /// When pulling ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<Time>,
    /// The spec version this status is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    /// `<name>@<id>` of the pulled image.
    #[serde(rename = "imageID", default, skip_serializing_if = "Option::is_none")]
    pub image_id: Option<String>,
    /// Error or progress message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Phase of a tag pull.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ImagePullPhase {
    /// Not started.
    #[default]
    Waiting,
    /// In progress.
    Pulling,
    /// Done.
    Succeeded,
    /// Failed.
    Failed,
}

/// First sync of a NodeImage.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncStatus {
    /// When it synced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_at: Option<Time>,
    /// Result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// OpenKruise's NodeImage webhook messages (`pkg/webhook/nodeimage/validating`), word for word.
pub mod messages {
    /// An empty image name (map key).
    pub const IMAGE_NAME_EMPTY: &str = "image name can not be empty";
    /// More than 256 images.
    pub fn too_many_images(n: usize) -> String {
        format!("spec images length {n} can not be more than 256")
    }
    /// An empty tag.
    pub fn tag_empty(image: &str) -> String {
        format!("tag for image {image} can not be empty")
    }
    /// A tag listed twice for one image.
    pub fn duplicated_tag(tag: &str, image: &str) -> String {
        format!("duplicated tag {tag} for image {image}")
    }
    /// A negative version.
    pub fn negative_version(image: &str, tag: &str) -> String {
        format!("version for {image}/{tag} can not be less than 0")
    }
    /// No `pullPolicy.ttlSecondsAfterFinished`.
    pub fn ttl_missing(image: &str, tag: &str) -> String {
        format!("pullPolicy.ttlSecondsAfterFinished for {image}/{tag} must set")
    }
}

impl NodeImageSpec {
    /// A copy with the webhook's defaults (`SetDefaultsNodeImage`): every tag gets a
    /// `pullPolicy` with timeout 600 s and backoff 3, and the tags of each image are sorted by
    /// tag, as OpenKruise's mutating webhook stores them. (It also sets a missing `createdAt` to
    /// the time of the write, which graft's writers always set themselves.)
    pub fn defaulted(&self) -> Self {
        let mut s = self.clone();
        for image in s.images.iter_mut().flat_map(|m| m.values_mut()) {
            for tag in &mut image.tags {
                let p = tag.pull_policy.get_or_insert_with(Default::default);
                p.timeout_seconds.get_or_insert(600);
                p.backoff_limit.get_or_insert(3);
            }
            sort_tags(&mut image.tags);
        }
        s
    }

    /// Checks the spec as OpenKruise's validating webhook does (after its defaults), with its
    /// messages; the CRD's CEL rules on `spec.images` check the same:
    ///
    /// | rule | message |
    /// |---|---|
    /// | more than 256 images | `spec images length N can not be more than 256` |
    /// | empty image name | [`messages::IMAGE_NAME_EMPTY`] |
    /// | empty tag | `tag for image N can not be empty` |
    /// | a tag twice | `duplicated tag T for image N` |
    /// | negative version | `version for N/T can not be less than 0` |
    /// | no pullPolicy.ttlSecondsAfterFinished | `pullPolicy.ttlSecondsAfterFinished for N/T must set` |
    ///
    /// OpenKruise also requires `createdAt`, which its mutating webhook always fills first (so
    /// the rule never refuses anything); the API server cannot default a time, so graft leaves
    /// it optional.
    pub fn validate(&self) -> FieldErrors {
        let mut errs = FieldErrors::default();
        let images = self.images.clone().unwrap_or_default();
        if images.len() > MAX_IMAGES {
            errs.push(FieldError::invalid(
                "spec.images",
                images.len(),
                &messages::too_many_images(images.len()),
            ));
        }
        for (name, image) in &images {
            if name.is_empty() {
                errs.push(FieldError::invalid(
                    "spec.images",
                    name,
                    messages::IMAGE_NAME_EMPTY,
                ));
            }
            for (i, t) in image.tags.iter().enumerate() {
                let f = format!("spec.images[{name}].tags[{i}]");
                if t.tag.is_empty() {
                    errs.push(FieldError::invalid(
                        &format!("{f}.tag"),
                        &t.tag,
                        &messages::tag_empty(name),
                    ));
                } else if image.tags[..i].iter().any(|o| o.tag == t.tag) {
                    errs.push(FieldError::invalid(
                        &format!("{f}.tag"),
                        &t.tag,
                        &messages::duplicated_tag(&t.tag, name),
                    ));
                }
                if t.version.is_some_and(|v| v < 0) {
                    errs.push(FieldError::invalid(
                        &format!("{f}.version"),
                        t.version.unwrap_or_default(),
                        &messages::negative_version(name, &t.tag),
                    ));
                }
                if t.pull_policy
                    .as_ref()
                    .and_then(|p| p.ttl_seconds_after_finished)
                    .is_none()
                {
                    errs.push(FieldError::required(
                        &format!("{f}.pullPolicy.ttlSecondsAfterFinished"),
                        &messages::ttl_missing(name, &t.tag),
                    ));
                }
            }
        }
        errs
    }
}

/// Sorts an image's tag entries by tag, as OpenKruise's NodeImage webhook does on every write
/// (`SortSpecImageTags`).
pub fn sort_tags(tags: &mut [ImageTagSpec]) {
    tags.sort_by(|a, b| a.tag.cmp(&b.tag));
}

/// Sorts an image's tag statuses by tag (`SortStatusImageTags`).
pub fn sort_tag_statuses(tags: &mut [ImageTagStatus]) {
    tags.sort_by(|a, b| a.tag.cmp(&b.tag));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_sort_tags_and_fill_every_pull_policy() {
        let s: NodeImageSpec = serde_json::from_value(json!({"images": {"nginx": {"tags": [
            {"tag": "2", "pullPolicy": {"ttlSecondsAfterFinished": 300}},
            {"tag": "1"}
        ]}}}))
        .unwrap();
        let d = serde_json::to_value(s.defaulted()).unwrap();
        assert_eq!(
            d["images"]["nginx"]["tags"],
            json!([
                {"tag": "1", "pullPolicy": {"timeoutSeconds": 600, "backoffLimit": 3}},
                {"tag": "2", "pullPolicy": {"timeoutSeconds": 600, "backoffLimit": 3, "ttlSecondsAfterFinished": 300}}
            ])
        );
    }

    /// One row per OpenKruise 1.9 NodeImage webhook rule: (rule, spec, exact message or `None`).
    #[test]
    fn validation_table() {
        let ttl = json!({"ttlSecondsAfterFinished": 300});
        let many: serde_json::Map<String, serde_json::Value> = (0..257)
            .map(|i| (format!("img{i}"), json!({"tags": []})))
            .collect();
        let cases: Vec<(&str, serde_json::Value, Option<String>)> = vec![
            (
                "a tag with a TTL is accepted",
                json!({"images": {"a": {"tags": [{"tag": "1", "pullPolicy": ttl}]}}}),
                None,
            ),
            (
                "257 images are refused",
                json!({"images": many}),
                Some(messages::too_many_images(257)),
            ),
            (
                "an empty image name is refused",
                json!({"images": {"": {"tags": []}}}),
                Some(messages::IMAGE_NAME_EMPTY.to_string()),
            ),
            (
                "an empty tag is refused",
                json!({"images": {"a": {"tags": [{"tag": "", "pullPolicy": ttl}]}}}),
                Some(messages::tag_empty("a")),
            ),
            (
                "a tag twice is refused",
                json!({"images": {"a": {"tags": [{"tag": "1", "pullPolicy": ttl}, {"tag": "1", "pullPolicy": ttl}]}}}),
                Some(messages::duplicated_tag("1", "a")),
            ),
            (
                "a negative version is refused",
                json!({"images": {"a": {"tags": [{"tag": "1", "version": -1, "pullPolicy": ttl}]}}}),
                Some(messages::negative_version("a", "1")),
            ),
            (
                "a tag without TTL is refused",
                json!({"images": {"a": {"tags": [{"tag": "1"}]}}}),
                Some(messages::ttl_missing("a", "1")),
            ),
        ];
        for (rule, v, want) in cases {
            let errs = serde_json::from_value::<NodeImageSpec>(v.clone())
                .unwrap()
                .defaulted()
                .validate();
            match want {
                None => assert!(errs.is_empty(), "{rule}: {errs}"),
                Some(m) => assert!(
                    errs.iter().any(|e| e.detail == m),
                    "{rule}: want {m}, got {errs}"
                ),
            }
        }
    }

    #[test]
    fn defaults_and_validation() {
        let s: NodeImageSpec = serde_json::from_value(json!({"images": {"nginx": {"tags": [
            {"tag": "1.27", "pullPolicy": {"ttlSecondsAfterFinished": 300}},
            {"tag": "1.27"}
        ]}}}))
        .unwrap();
        let d = serde_json::to_value(s.defaulted()).unwrap();
        assert_eq!(
            d["images"]["nginx"]["tags"][0]["pullPolicy"],
            json!({"timeoutSeconds": 600, "backoffLimit": 3, "ttlSecondsAfterFinished": 300})
        );
        let errs = s.validate();
        assert!(errs.has_field("spec.images[nginx].tags[1].tag"));
        assert!(errs.has_field("spec.images[nginx].tags[1].pullPolicy.ttlSecondsAfterFinished"));
    }
}
