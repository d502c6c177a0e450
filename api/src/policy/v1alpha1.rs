//! PodUnavailableBudget (`policy.kruise.io/v1alpha1`): limits voluntary disruption of pods,
//! including in-place updates (kruise-api.md §8). Deletion protection values are in
//! [`DeletionProtection`].

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::field::{FieldError, FieldErrors};
use crate::intstr;
use crate::labels;

/// Desired state of a PodUnavailableBudget.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "policy.kruise.io",
    version = "v1alpha1",
    kind = "PodUnavailableBudget",
    namespaced,
    shortname = "pub",
    status = "PodUnavailableBudgetStatus",
    derive = "PartialEq",
    doc = "PodUnavailableBudget limits how many selected pods may be unavailable through deletion, eviction or in-place update.",
    printcolumn(
        name = "Allowed",
        type_ = "integer",
        json_path = ".status.unavailableAllowed",
        description = "UnavailableAllowed number of pod unavailable that are currently allowed."
    ),
    printcolumn(
        name = "Current",
        type_ = "integer",
        json_path = ".status.currentAvailable",
        description = "CurrentAvailable current number of healthy pods."
    ),
    printcolumn(
        name = "Desired",
        type_ = "integer",
        json_path = ".status.desiredAvailable",
        description = "DesiredAvailable minimum desired number of available pods."
    ),
    printcolumn(
        name = "Total",
        type_ = "integer",
        json_path = ".status.totalReplicas",
        description = "TotalReplicas total number of pods counted by this budget."
    )
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": "has(self.selector) || has(self.targetRef)", "message": "one of selector and targetRef is required"},
    {"rule": "has(self.maxUnavailable) || has(self.minAvailable)", "message": "one of maxUnavailable and minAvailable is required"}
]))]
pub struct PodUnavailableBudgetSpec {
    /// Pods protected (ignored when targetRef is set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
    /// Workload whose pods are protected (same namespace; wins over selector).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_ref: Option<TargetReference>,
    /// Pods that may be unavailable (wins over minAvailable; percent rounds up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-validations" = [{
        "rule": "type(self) == int ? self >= 0 : self.matches('^(100|[1-9]?[0-9])%$')",
        "message": "must be a non-negative integer or a percentage from 0% to 100%"
    }]))]
    pub max_unavailable: Option<IntOrString>,
    /// Pods that must stay available (percent of total, rounds up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-validations" = [{
        "rule": "type(self) == int ? self >= 0 : self.matches('^(100|[1-9]?[0-9])%$')",
        "message": "must be a non-negative integer or a percentage from 0% to 100%"
    }]))]
    pub min_available: Option<IntOrString>,
}

/// A workload reference.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TargetReference {
    /// API version of the workload, e.g. `apps.kruise.io/v1alpha1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Kind of the workload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Name of the workload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Observed state of a PodUnavailableBudget.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct PodUnavailableBudgetStatus {
    /// Generation the status was computed for.
    pub observed_generation: i64,
    /// Pods deleted or evicted but not yet observed gone, with the time of the decision.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disrupted_pods: Option<BTreeMap<String, Time>>,
    /// Pods updated in place and not yet available again, with the time of the decision.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unavailable_pods: Option<BTreeMap<String, Time>>,
    /// Disruptions allowed now: currentAvailable − desiredAvailable.
    pub unavailable_allowed: i32,
    /// Available pods not in the maps.
    pub current_available: i32,
    /// Pods that must stay available.
    pub desired_available: i32,
    /// Pods counted by the budget.
    pub total_replicas: i32,
}

/// Protected operations (annotation `kruise.io/pub-protect-operations`; v1beta1
/// `spec.protectOperations`, where they are spelled `DELETE`, `EVICT`, `UPDATE`, `RESIZE`).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "UPPERCASE")]
pub enum ProtectOperation {
    /// Pod deletion.
    Delete,
    /// Pod eviction.
    Evict,
    /// Pod spec update (in-place update).
    Update,
    /// Pod resize.
    Resize,
}

impl PodUnavailableBudget {
    /// Operations this budget protects: the annotation's comma list, or `DELETE,UPDATE,EVICT`.
    pub fn protect_operations(&self) -> Result<Vec<ProtectOperation>, FieldError> {
        let key = labels::PUB_PROTECT_OPERATIONS;
        let Some(raw) = self.metadata.annotations.as_ref().and_then(|a| a.get(key)) else {
            return Ok(vec![
                ProtectOperation::Delete,
                ProtectOperation::Evict,
                ProtectOperation::Update,
            ]);
        };
        let mut ops = Vec::new();
        for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            ops.push(match part {
                "DELETE" => ProtectOperation::Delete,
                "EVICT" => ProtectOperation::Evict,
                "UPDATE" => ProtectOperation::Update,
                "RESIZE" => ProtectOperation::Resize,
                other => {
                    return Err(FieldError::not_supported(
                        &format!("metadata.annotations[{key}]"),
                        other,
                        &["DELETE", "EVICT", "UPDATE", "RESIZE"],
                    ));
                }
            });
        }
        ops.sort();
        ops.dedup();
        Ok(ops)
    }
}

impl PodUnavailableBudgetSpec {
    /// Pods that must stay available out of `total`: total − maxUnavailable (percent rounds up)
    /// or minAvailable (percent rounds up); maxUnavailable wins.
    pub fn desired_available(&self, total: i32) -> Result<i32, String> {
        if let Some(mu) = &self.max_unavailable {
            return Ok((total - intstr::scaled_value(mu, total, true)?).max(0));
        }
        match &self.min_available {
            Some(ma) => Ok(intstr::scaled_value(ma, total, true)?.max(0)),
            None => Ok(0),
        }
    }

    /// Checks selector/targetRef and maxUnavailable/minAvailable.
    pub fn validate(&self) -> FieldErrors {
        let mut errs = FieldErrors::default();
        match (&self.selector, &self.target_ref) {
            (None, None) => errs.push(FieldError::required(
                "spec.selector",
                "one of selector and targetRef is required",
            )),
            (Some(_), Some(_)) => errs.push(FieldError::forbidden(
                "spec.targetRef",
                "selector and targetRef are mutually exclusive",
            )),
            _ => {}
        }
        if let Some(t) = &self.target_ref {
            for (f, v) in [
                ("apiVersion", &t.api_version),
                ("kind", &t.kind),
                ("name", &t.name),
            ] {
                if v.as_deref().is_none_or(str::is_empty) {
                    errs.push(FieldError::required(&format!("spec.targetRef.{f}"), ""));
                }
            }
        }
        match (&self.max_unavailable, &self.min_available) {
            (None, None) => errs.push(FieldError::required(
                "spec.maxUnavailable",
                "one of maxUnavailable and minAvailable is required",
            )),
            (Some(_), Some(_)) => errs.push(FieldError::forbidden(
                "spec.minAvailable",
                "maxUnavailable and minAvailable are mutually exclusive",
            )),
            _ => {}
        }
        for (f, v) in [
            ("maxUnavailable", &self.max_unavailable),
            ("minAvailable", &self.min_available),
        ] {
            if let Some(v) = v {
                errs.extend(intstr::validate_int_or_percent(v, &format!("spec.{f}")));
            }
        }
        errs
    }
}

/// Values of the `policy.kruise.io/delete-protection` label (kruise-api.md §9).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeletionProtection {
    /// Deletion is always denied.
    Always,
    /// Deletion is denied while dependents exist.
    Cascading,
}

impl DeletionProtection {
    /// Reads the label from an object's labels; unknown values give `None`.
    pub fn from_labels(labels: &BTreeMap<String, String>) -> Option<Self> {
        match labels.get(labels::DELETE_PROTECTION).map(String::as_str) {
            Some(labels::DELETE_PROTECTION_ALWAYS) => Some(Self::Always),
            Some(labels::DELETE_PROTECTION_CASCADING) => Some(Self::Cascading),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(v: serde_json::Value) -> PodUnavailableBudgetSpec {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn desired_available_rounding() {
        assert_eq!(
            spec(json!({"maxUnavailable": "25%"})).desired_available(10),
            Ok(7)
        );
        assert_eq!(
            spec(json!({"minAvailable": "25%"})).desired_available(10),
            Ok(3)
        );
        assert_eq!(
            spec(json!({"maxUnavailable": 1, "minAvailable": 9})).desired_available(10),
            Ok(9)
        );
    }

    #[test]
    fn validation_table() {
        assert!(
            spec(json!({"selector": {"matchLabels": {"a": "b"}}, "maxUnavailable": 1}))
                .validate()
                .is_empty()
        );
        assert!(
            spec(json!({"maxUnavailable": 1}))
                .validate()
                .has_field("spec.selector")
        );
        assert!(
            spec(json!({"selector": {}}))
                .validate()
                .has_field("spec.maxUnavailable")
        );
        assert!(
            spec(json!({"targetRef": {"kind": "CloneSet", "name": "x"}, "minAvailable": "50%"}))
                .validate()
                .has_field("spec.targetRef.apiVersion")
        );
        assert!(
            spec(json!({"selector": {}, "maxUnavailable": "150%"}))
                .validate()
                .has_field("spec.maxUnavailable")
        );
    }

    #[test]
    fn protect_operations_default_and_annotation() {
        let mut p =
            PodUnavailableBudget::new("p", spec(json!({"selector": {}, "maxUnavailable": 1})));
        assert_eq!(
            p.protect_operations().unwrap(),
            vec![
                ProtectOperation::Delete,
                ProtectOperation::Evict,
                ProtectOperation::Update
            ]
        );
        p.metadata.annotations = Some(BTreeMap::from([(
            labels::PUB_PROTECT_OPERATIONS.to_string(),
            "DELETE, RESIZE".to_string(),
        )]));
        assert_eq!(
            p.protect_operations().unwrap(),
            vec![ProtectOperation::Delete, ProtectOperation::Resize]
        );
        p.metadata.annotations = Some(BTreeMap::from([(
            labels::PUB_PROTECT_OPERATIONS.to_string(),
            "KILL".to_string(),
        )]));
        assert!(p.protect_operations().is_err());
    }

    #[test]
    fn deletion_protection_label() {
        let l = BTreeMap::from([(
            labels::DELETE_PROTECTION.to_string(),
            "Cascading".to_string(),
        )]);
        assert_eq!(
            DeletionProtection::from_labels(&l),
            Some(DeletionProtection::Cascading)
        );
        assert_eq!(DeletionProtection::from_labels(&BTreeMap::new()), None);
    }
}
