//! ImagePullJob (`apps.kruise.io/v1alpha1`): pull an image on a set of nodes ahead of time
//! (kruise-api.md §6.1).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, LabelSelectorRequirement, Time,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::apps::common::{CompletionPolicy, CompletionPolicyType};
use crate::field::{FieldError, FieldErrors};

/// Default `pullPolicy.timeoutSeconds`.
pub const DEFAULT_TIMEOUT_SECONDS: i32 = 600;
/// Default `pullPolicy.backoffLimit`.
pub const DEFAULT_BACKOFF_LIMIT: i32 = 3;

/// Desired state of an ImagePullJob.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "apps.kruise.io",
    version = "v1alpha1",
    kind = "ImagePullJob",
    namespaced,
    status = "ImagePullJobStatus",
    derive = "PartialEq",
    doc = "ImagePullJob pulls an image on selected nodes through their NodeImage.",
    printcolumn(
        name = "TOTAL",
        type_ = "integer",
        json_path = ".status.desired",
        description = "Number of all nodes matched by this job."
    ),
    printcolumn(
        name = "ACTIVE",
        type_ = "integer",
        json_path = ".status.active",
        description = "Number of image pulling nodes."
    ),
    printcolumn(
        name = "SUCCEED",
        type_ = "integer",
        json_path = ".status.succeeded",
        description = "Number of image pull succeeded nodes."
    ),
    printcolumn(
        name = "FAILED",
        type_ = "integer",
        json_path = ".status.failed",
        description = "Number of image pull failed nodes."
    ),
    printcolumn(
        name = "AGE",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    ),
    printcolumn(
        name = "MESSAGE",
        type_ = "string",
        json_path = ".status.message",
        description = "Summary of status when job is failed."
    )
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "!(has(self.selector) && has(self.podSelector))",
    "message": "selector and podSelector can not be set together"
}]))]
pub struct ImagePullJobSpec {
    /// Image to pull, e.g. `nginx:1.27` or `repo@sha256:...`.
    #[schemars(length(min = 1))]
    pub image: String,
    /// Secret names in the job's namespace used to pull.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_secrets: Option<Vec<String>>,
    /// Nodes by name or by NodeImage (= Node) labels; exclusive with `podSelector`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<ImagePullJobNodeSelector>,
    /// Nodes of the pods in the namespace matching this selector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_selector: Option<LabelSelector>,
    /// Nodes pulling at once (default 1; integers only; 0 pauses).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = 1, "x-kubernetes-validations" = [{
        "rule": "type(self) == int && self >= 0",
        "message": "parallelism must be a non-negative integer"
    }]))]
    pub parallelism: Option<IntOrString>,
    /// Timeout and retries per node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = {}))]
    pub pull_policy: Option<PullPolicy>,
    /// When the job completes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = {}))]
    pub completion_policy: Option<CompletionPolicy>,
    /// Labels and annotations of the CRI pull sandbox.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox_config: Option<SandboxConfig>,
    /// `IfNotPresent` (default) or `Always`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "IfNotPresent"))]
    pub image_pull_policy: Option<ImagePullPolicy>,
}

/// Node selection of an ImagePullJob: `names`, or a label selector, not both.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImagePullJobNodeSelector {
    /// Node names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub names: Option<Vec<String>>,
    /// Node labels that must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_labels: Option<BTreeMap<String, String>>,
    /// Node label requirements.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_expressions: Option<Vec<LabelSelectorRequirement>>,
}

/// Per-node pull timeout and retries.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PullPolicy {
    /// Seconds per attempt (default 600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1), extend("default" = 600))]
    pub timeout_seconds: Option<i32>,
    /// Retries (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0), extend("default" = 3))]
    pub backoff_limit: Option<i32>,
}

/// Labels and annotations of the CRI pull sandbox.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SandboxConfig {
    /// Sandbox labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// Sandbox annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

/// Pull policy of an image on a node.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ImagePullPolicy {
    /// Skip the pull when the image is present (default).
    #[default]
    IfNotPresent,
    /// Always pull.
    Always,
}

/// Observed state of an ImagePullJob. There is no `completed` counter.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct ImagePullJobStatus {
    /// When the job started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    /// When the job completed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<Time>,
    /// Matching NodeImages.
    pub desired: i32,
    /// Nodes pulling.
    pub active: i32,
    /// Nodes done.
    pub succeeded: i32,
    /// Nodes failed.
    pub failed: i32,
    /// Progress summary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Names of failed nodes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_nodes: Option<Vec<String>>,
}

impl ImagePullJobSpec {
    /// A copy with OpenKruise's defaults: parallelism 1, timeout 600 s, backoff 3, completion
    /// `Always`, pull policy `IfNotPresent`.
    pub fn defaulted(&self) -> Self {
        let mut s = self.clone();
        s.parallelism.get_or_insert(IntOrString::Int(1));
        let p = s.pull_policy.get_or_insert_with(Default::default);
        p.timeout_seconds.get_or_insert(DEFAULT_TIMEOUT_SECONDS);
        p.backoff_limit.get_or_insert(DEFAULT_BACKOFF_LIMIT);
        s.completion_policy
            .get_or_insert_with(Default::default)
            .type_
            .get_or_insert(CompletionPolicyType::Always);
        s.image_pull_policy
            .get_or_insert(ImagePullPolicy::IfNotPresent);
        s
    }

    /// Checks the spec as OpenKruise's validating webhook does.
    pub fn validate(&self) -> FieldErrors {
        let mut errs = FieldErrors::default();
        if self.image.trim().is_empty() {
            errs.push(FieldError::required("spec.image", ""));
        } else if self.image.contains(char::is_whitespace) {
            errs.push(FieldError::invalid(
                "spec.image",
                &self.image,
                "image must not contain spaces",
            ));
        }
        if self.selector.is_some() && self.pod_selector.is_some() {
            errs.push(FieldError::forbidden(
                "spec.podSelector",
                "selector and podSelector can not be set together",
            ));
        }
        if let Some(sel) = &self.selector
            && sel.names.as_ref().is_some_and(|n| !n.is_empty())
            && (sel.match_labels.is_some() || sel.match_expressions.is_some())
        {
            errs.push(FieldError::forbidden(
                "spec.selector",
                "names and a label selector can not be set together",
            ));
        }
        match &self.parallelism {
            Some(IntOrString::String(s)) => errs.push(FieldError::invalid(
                "spec.parallelism",
                s,
                "parallelism must be an integer",
            )),
            Some(IntOrString::Int(i)) if *i < 0 => errs.push(FieldError::invalid(
                "spec.parallelism",
                i,
                "must be greater than or equal to 0",
            )),
            _ => {}
        }
        let d = self.defaulted();
        let pp = d.pull_policy.unwrap_or_default();
        let timeout = pp.timeout_seconds.unwrap_or(DEFAULT_TIMEOUT_SECONDS);
        if timeout <= 0 {
            errs.push(FieldError::invalid(
                "spec.pullPolicy.timeoutSeconds",
                timeout,
                "must be greater than 0",
            ));
        }
        if let Some(b) = pp.backoff_limit
            && b < 0
        {
            errs.push(FieldError::invalid(
                "spec.pullPolicy.backoffLimit",
                b,
                "must be greater than or equal to 0",
            ));
        }
        if let Some(c) = &self.completion_policy {
            errs.extend(c.validate("spec.completionPolicy"));
            if let Some(ad) = c.active_deadline_seconds
                && ad <= i64::from(timeout)
            {
                errs.push(FieldError::invalid(
                    "spec.completionPolicy.activeDeadlineSeconds",
                    ad,
                    "activeDeadlineSeconds must be greater than pullPolicy.timeoutSeconds",
                ));
            }
        }
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use serde_json::json;

    fn spec(v: serde_json::Value) -> ImagePullJobSpec {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn defaults_are_pinned() {
        let v = serde_json::to_value(spec(json!({"image": "nginx:1.27"})).defaulted()).unwrap();
        assert_eq!(
            v,
            json!({
                "image": "nginx:1.27",
                "parallelism": 1,
                "pullPolicy": {"timeoutSeconds": 600, "backoffLimit": 3},
                "completionPolicy": {"type": "Always"},
                "imagePullPolicy": "IfNotPresent"
            })
        );
    }

    #[test]
    fn validation_table() {
        let cases = [
            (json!({"image": ""}), "spec.image"),
            (
                json!({"image": "a", "selector": {"names": ["n"]}, "podSelector": {"matchLabels": {"a": "b"}}}),
                "spec.podSelector",
            ),
            (
                json!({"image": "a", "selector": {"names": ["n"], "matchLabels": {"a": "b"}}}),
                "spec.selector",
            ),
            (
                json!({"image": "a", "parallelism": "50%"}),
                "spec.parallelism",
            ),
            (
                json!({"image": "a", "completionPolicy": {"activeDeadlineSeconds": 600}}),
                "spec.completionPolicy.activeDeadlineSeconds",
            ),
            (
                json!({"image": "a", "completionPolicy": {"type": "Never", "ttlSecondsAfterFinished": 5}}),
                "spec.completionPolicy.ttlSecondsAfterFinished",
            ),
        ];
        for (v, field) in cases {
            let errs = spec(v.clone()).validate();
            assert!(errs.has_field(field), "{v}: {errs}");
        }
        assert!(
            spec(json!({"image": "a", "completionPolicy": {"activeDeadlineSeconds": 1200}}))
                .validate()
                .is_empty()
        );
    }
}
