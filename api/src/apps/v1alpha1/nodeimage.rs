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
        description = "Number of all images on this node."
    ),
    printcolumn(
        name = "PULLING",
        type_ = "integer",
        json_path = ".status.pulling",
        description = "Number of image pulling."
    ),
    printcolumn(
        name = "SUCCEED",
        type_ = "integer",
        json_path = ".status.succeeded",
        description = "Number of image pull succeed."
    ),
    printcolumn(
        name = "FAILED",
        type_ = "integer",
        json_path = ".status.failed",
        description = "Number of image pull failed."
    ),
    printcolumn(
        name = "AGE",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct NodeImageSpec {
    /// Image name (without tag) to what to pull.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("maxProperties" = 256))]
    pub images: Option<BTreeMap<String, ImageSpec>>,
}

/// One image and its tags.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImageSpec {
    /// Secrets (synced into the agent's namespace) used to pull.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_secrets: Option<Vec<ReferenceObject>>,
    /// Tags to pull.
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
    /// Pull timeout, retries and TTL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
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

impl NodeImageSpec {
    /// A copy with the webhook's defaults: pullPolicy timeout 600 s and backoff 3 per tag.
    pub fn defaulted(&self) -> Self {
        let mut s = self.clone();
        for image in s.images.iter_mut().flat_map(|m| m.values_mut()) {
            for tag in &mut image.tags {
                let p = tag.pull_policy.get_or_insert_with(Default::default);
                p.timeout_seconds.get_or_insert(600);
                p.backoff_limit.get_or_insert(3);
            }
        }
        s
    }

    /// Checks at most 256 images, non-empty unique tags, and a TTL on every tag.
    pub fn validate(&self) -> FieldErrors {
        let mut errs = FieldErrors::default();
        let images = self.images.clone().unwrap_or_default();
        if images.len() > MAX_IMAGES {
            errs.push(FieldError::invalid(
                "spec.images",
                images.len(),
                "at most 256 images",
            ));
        }
        for (name, image) in &images {
            for (i, t) in image.tags.iter().enumerate() {
                let f = format!("spec.images[{name}].tags[{i}]");
                if t.tag.is_empty() {
                    errs.push(FieldError::required(&format!("{f}.tag"), ""));
                } else if image.tags[..i].iter().any(|o| o.tag == t.tag) {
                    errs.push(FieldError::duplicate(&format!("{f}.tag"), &t.tag));
                }
                if t.pull_policy
                    .as_ref()
                    .and_then(|p| p.ttl_seconds_after_finished)
                    .is_none()
                {
                    errs.push(FieldError::required(
                        &format!("{f}.pullPolicy.ttlSecondsAfterFinished"),
                        "",
                    ));
                }
            }
        }
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
