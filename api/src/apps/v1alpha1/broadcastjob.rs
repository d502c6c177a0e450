//! BroadcastJob (`apps.kruise.io/v1alpha1`): one pod per eligible node (kruise-api.md §5).

use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::apps::common::{CompletionPolicy, CompletionPolicyType, validate_pod_template};
use crate::field::{FieldError, FieldErrors};
use crate::intstr;

/// Desired state of a BroadcastJob.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "apps.kruise.io",
    version = "v1alpha1",
    kind = "BroadcastJob",
    namespaced,
    shortname = "bcj",
    status = "BroadcastJobStatus",
    derive = "PartialEq",
    doc = "BroadcastJob runs a pod to completion on every eligible node.",
    printcolumn(
        name = "Desired",
        type_ = "integer",
        json_path = ".status.desired",
        description = "The desired number of pods."
    ),
    printcolumn(
        name = "Active",
        type_ = "integer",
        json_path = ".status.active",
        description = "The number of actively running pods."
    ),
    printcolumn(
        name = "Succeeded",
        type_ = "integer",
        json_path = ".status.succeeded",
        description = "The number of pods which reached phase Succeeded."
    ),
    printcolumn(
        name = "Failed",
        type_ = "integer",
        json_path = ".status.failed",
        description = "The number of pods which reached phase Failed."
    ),
    printcolumn(
        name = "AGE",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct BroadcastJobSpec {
    /// Pods running at once: a number or percent of desired nodes (default unlimited).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-validations" = [{
        "rule": "type(self) == int ? self >= 0 : self.matches('^(100|[1-9]?[0-9])%$')",
        "message": "must be a non-negative integer or a percentage from 0% to 100%"
    }]))]
    pub parallelism: Option<IntOrString>,
    /// Template of the pods (opaque in the CRD schema).
    #[schemars(schema_with = "crate::schema::opaque_object")]
    pub template: PodTemplateSpec,
    /// When the job completes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = {}))]
    pub completion_policy: Option<CompletionPolicy>,
    /// Stop creating pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused: Option<bool>,
    /// What to do when pods fail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = {}))]
    pub failure_policy: Option<FailurePolicy>,
}

/// BroadcastJob `failurePolicy`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FailurePolicy {
    /// `FailFast` (default), `Continue` or `Pause`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "FailFast"))]
    pub type_: Option<FailurePolicyType>,
    /// Restarts (summed over containers) after which a pod counts as failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub restart_limit: Option<i32>,
}

/// BroadcastJob `failurePolicy.type`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum FailurePolicyType {
    /// Fail the job at the first failed pod (default).
    #[default]
    FailFast,
    /// Ignore failed pods.
    Continue,
    /// Pause the job (`spec.paused = true`).
    Pause,
}

/// Observed state of a BroadcastJob.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct BroadcastJobStatus {
    /// `Complete` / `Failed` conditions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<JobCondition>>,
    /// When the job started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Time>,
    /// When the job completed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<Time>,
    /// Running pods.
    pub active: i32,
    /// Succeeded pods.
    pub succeeded: i32,
    /// Failed pods.
    pub failed: i32,
    /// Eligible nodes.
    pub desired: i32,
    /// `running`, `paused`, `completed` or `failed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<BroadcastJobPhase>,
}

/// BroadcastJob phase (lowercase on the wire).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum BroadcastJobPhase {
    /// Pods are running.
    Running,
    /// Paused by the user or by `failurePolicy: Pause`.
    Paused,
    /// Every desired node finished.
    Completed,
    /// The job failed.
    Failed,
}

/// A job condition (`Complete`, `Failed`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobCondition {
    /// `Complete` or `Failed`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// Last time the condition was probed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_probe_time: Option<Time>,
    /// Last time the status changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Time>,
    /// Machine-readable reason (e.g. `DeadlineExceeded`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Human-readable message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl BroadcastJobSpec {
    /// A copy with OpenKruise's defaults (`SetDefaultsBroadcastJob`): parallelism MaxInt32,
    /// completionPolicy Always, failurePolicy FailFast.
    pub fn defaulted(&self) -> Self {
        let mut s = self.clone();
        s.parallelism.get_or_insert(IntOrString::Int(i32::MAX));
        s.completion_policy
            .get_or_insert_with(Default::default)
            .type_
            .get_or_insert(CompletionPolicyType::Always);
        s.failure_policy
            .get_or_insert_with(Default::default)
            .type_
            .get_or_insert(FailurePolicyType::FailFast);
        s
    }

    /// Checks the spec: template (restartPolicy `Never` or `OnFailure`), parallelism, policies.
    pub fn validate(&self) -> FieldErrors {
        let mut errs = validate_pod_template(
            &self.template,
            None,
            &["Never", "OnFailure"],
            "spec.template",
        );
        if self
            .template
            .spec
            .as_ref()
            .is_some_and(|s| s.restart_policy.is_none())
        {
            errs.push(FieldError::required(
                "spec.template.spec.restartPolicy",
                "must be Never or OnFailure",
            ));
        }
        if let Some(p) = &self.parallelism {
            errs.extend(intstr::validate_int_or_percent(p, "spec.parallelism"));
        }
        if let Some(c) = &self.completion_policy {
            errs.extend(c.validate("spec.completionPolicy"));
        }
        if let Some(r) = self.failure_policy.as_ref().and_then(|f| f.restart_limit)
            && r < 0
        {
            errs.push(FieldError::invalid(
                "spec.failurePolicy.restartLimit",
                r,
                "must be greater than or equal to 0",
            ));
        }
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use serde_json::json;

    fn spec(extra: serde_json::Value) -> BroadcastJobSpec {
        let mut v = json!({"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}});
        if let (Some(m), Some(e)) = (v.as_object_mut(), extra.as_object()) {
            m.extend(e.clone());
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn defaults_are_pinned() {
        let v = serde_json::to_value(spec(json!({})).defaulted()).unwrap();
        assert_eq!(v["parallelism"], json!(2147483647));
        assert_eq!(v["completionPolicy"], json!({"type": "Always"}));
        assert_eq!(v["failurePolicy"], json!({"type": "FailFast"}));
        assert!(spec(json!({})).validate().is_empty());
    }

    #[test]
    fn validation_table() {
        let cases = [
            (
                json!({"completionPolicy": {"type": "Never", "ttlSecondsAfterFinished": 10}}),
                "spec.completionPolicy.ttlSecondsAfterFinished",
            ),
            (
                json!({"completionPolicy": {"type": "Never", "activeDeadlineSeconds": 10}}),
                "spec.completionPolicy.activeDeadlineSeconds",
            ),
            (json!({"parallelism": "3"}), "spec.parallelism"),
            (
                json!({"template": {"spec": {"restartPolicy": "Always", "containers": [{"name": "c", "image": "i"}]}}}),
                "spec.template.spec.restartPolicy",
            ),
            (
                json!({"failurePolicy": {"restartLimit": -1}}),
                "spec.failurePolicy.restartLimit",
            ),
        ];
        for (patch, field) in cases {
            let errs = spec(patch.clone()).validate();
            assert!(errs.has_field(field), "{patch}: {errs}");
        }
    }
}
