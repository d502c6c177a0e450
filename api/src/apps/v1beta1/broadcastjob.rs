//! BroadcastJob (`apps.kruise.io/v1beta1`, the storage version): one pod per eligible node
//! (kruise-api.md §5).
//!
//! OpenKruise's v1alpha1 BroadcastJob is field for field this one (its conversion copies every
//! field), so graft serves v1alpha1 with this schema ([`crate::crds::broadcastjob`]) and reads
//! every BroadcastJob at v1beta1.

use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::apps::common::{CompletionPolicy, CompletionPolicyType, validate_pod_template};
use crate::field::{FieldError, FieldErrors};
use crate::{intstr, labels, names};

/// Desired state of a BroadcastJob.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "apps.kruise.io",
    version = "v1beta1",
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

/// kruise's refusal of a template restartPolicy other than `Never` or `OnFailure`.
pub const RESTART_POLICY_MESSAGE: &str = "pod restartPolicy can only be Never or OnFailure";
/// kruise's refusal of a name with other characters than alphanumerics and `-`.
pub const NAME_MESSAGE: &str = "BroadcastJob name must consist of alphanumeric characters or '-' (e.g. 'example-com', regex used for validation is '^[a-zA-Z0-9\\-]+$')";
/// Longest BroadcastJob name kruise accepts.
pub const NAME_MAX_LEN: usize = 63;

/// kruise's `validateBroadcastJobName` on `generateName` and `name`: alphanumerics and `-`
/// only, at most 63 characters. Names that are not even DNS subdomains are left to the API
/// server's own check (its message is what the user reads with kruise too).
pub fn validate_name(meta: &ObjectMeta) -> FieldErrors {
    let mut errs = FieldErrors::default();
    for (field, value) in [
        ("metadata.generateName", meta.generate_name.as_deref()),
        ("metadata.name", meta.name.as_deref()),
    ] {
        let Some(value) = value.filter(|v| !v.is_empty()) else {
            continue;
        };
        if !names::is_dns1123_subdomain(&names::mask_trailing_dash(value)).is_empty() {
            continue;
        }
        if !value
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-')
        {
            errs.push(FieldError::invalid(field, value, NAME_MESSAGE));
        }
        if value.len() > NAME_MAX_LEN {
            errs.push(FieldError::invalid(
                field,
                value,
                &format!("must be no more than {NAME_MAX_LEN} characters"),
            ));
        }
    }
    errs
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

    /// Checks the spec as kruise's `validateBroadcastJobSpec` does, with its messages: deadline
    /// and TTL only for `Always`, the template's restartPolicy `Never` or `OnFailure`, no preset
    /// `broadcastjob-name`/`broadcastjob-controller-uid` labels, the template itself
    /// (containers, label and annotation syntax; `activeDeadlineSeconds` is allowed in a job's
    /// template); then graft's own checks of parallelism and restartLimit.
    pub fn validate(&self) -> FieldErrors {
        let mut errs = FieldErrors::default();
        if let Some(c) = &self.completion_policy {
            errs.extend(c.validate("spec.completionPolicy"));
        }
        let restart_policy = self
            .template
            .spec
            .as_ref()
            .and_then(|s| s.restart_policy.as_deref());
        if !matches!(restart_policy, Some("Never" | "OnFailure")) {
            errs.push(FieldError::invalid(
                "spec.template.spec.restartPolicy",
                restart_policy.unwrap_or_default(),
                RESTART_POLICY_MESSAGE,
            ));
        }
        let meta = self.template.metadata.as_ref();
        let template_labels = meta.and_then(|m| m.labels.clone()).unwrap_or_default();
        let preset = |k: &str| template_labels.get(k).is_some_and(|v| !v.is_empty());
        if preset(labels::BROADCASTJOB_NAME) || preset(labels::BROADCASTJOB_CONTROLLER_UID) {
            errs.push(FieldError::invalid(
                "spec.template.metadata.labels",
                serde_json::to_string(&template_labels).unwrap_or_default(),
                &format!(
                    "\"{}\" and \"{}\" are not allowed to preset in pod labels",
                    labels::BROADCASTJOB_NAME,
                    labels::BROADCASTJOB_CONTROLLER_UID
                ),
            ));
        }
        errs.extend(names::validate_labels(
            &template_labels,
            "spec.template.labels",
        ));
        let annotations = meta.and_then(|m| m.annotations.clone()).unwrap_or_default();
        errs.extend(names::validate_annotations(
            &annotations,
            "spec.template.annotations",
        ));
        let template = validate_pod_template(
            &self.template,
            None,
            &["Always", "OnFailure", "Never"],
            "spec.template",
        );
        errs.extend(
            template
                .into_iter()
                .filter(|e| e.field != "spec.template.spec.activeDeadlineSeconds"),
        );
        if restart_policy.is_none_or(str::is_empty) {
            // Kubernetes' own template check, after kruise's.
            errs.push(FieldError::required("spec.template.spec.restartPolicy", ""));
        }
        if let Some(p) = &self.parallelism {
            errs.extend(intstr::validate_int_or_percent(p, "spec.parallelism"));
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

    /// (rule, spec fields, kruise's message)
    #[test]
    fn kruise_messages_table() {
        let cases = [
            (
                "restartPolicy Always",
                json!({"template": {"spec": {"restartPolicy": "Always", "containers": [{"name": "c", "image": "i"}]}}}),
                "spec.template.spec.restartPolicy: Invalid value: \"Always\": pod restartPolicy can only be Never or OnFailure",
            ),
            (
                "restartPolicy unset",
                json!({"template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}}),
                "spec.template.spec.restartPolicy: Invalid value: \"\": pod restartPolicy can only be Never or OnFailure",
            ),
            (
                "preset job label",
                json!({"template": {"metadata": {"labels": {"broadcastjob-name": "x"}},
                    "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "i"}]}}}),
                "spec.template.metadata.labels: Invalid value: \"{\\\"broadcastjob-name\\\":\\\"x\\\"}\": \"broadcastjob-name\" and \"broadcastjob-controller-uid\" are not allowed to preset in pod labels",
            ),
            (
                "ttl with Never",
                json!({"completionPolicy": {"type": "Never", "ttlSecondsAfterFinished": 10}}),
                "spec.completionPolicy.ttlSecondsAfterFinished: Invalid value: \"10\": ttlSecondsAfterFinished can just work with Always CompletionPolicyType",
            ),
        ];
        for (rule, patch, want) in cases {
            let errs = spec(patch).validate();
            let got: Vec<String> = errs.iter().map(ToString::to_string).collect();
            assert_eq!(
                got.first().map(String::as_str),
                Some(want),
                "{rule}: {got:?}"
            );
        }
    }

    #[test]
    fn a_job_template_may_set_active_deadline_seconds() {
        let s = spec(
            json!({"template": {"spec": {"restartPolicy": "OnFailure", "activeDeadlineSeconds": 5,
            "containers": [{"name": "c", "image": "i"}]}}}),
        );
        assert!(s.validate().is_empty(), "{}", s.validate());
    }

    #[test]
    fn names_table() {
        let meta = |name: &str, generate: &str| ObjectMeta {
            name: Some(name.to_string()).filter(|n| !n.is_empty()),
            generate_name: Some(generate.to_string()).filter(|n| !n.is_empty()),
            ..Default::default()
        };
        assert!(validate_name(&meta("job-1", "")).is_empty());
        assert!(validate_name(&meta("", "job-")).is_empty());
        let dotted = validate_name(&meta("a.b", ""));
        assert_eq!(
            dotted.iter().map(ToString::to_string).collect::<Vec<_>>(),
            vec![format!(
                "metadata.name: Invalid value: \"a.b\": {NAME_MESSAGE}"
            )]
        );
        let long = "a".repeat(64);
        assert!(validate_name(&meta(&long, "")).has_field("metadata.name"));
        assert!(validate_name(&meta("", "x.y-")).has_field("metadata.generateName"));
        // Not a DNS subdomain at all: the API server's own message, not kruise's.
        assert!(validate_name(&meta("UPPER", "")).is_empty());
    }
}
