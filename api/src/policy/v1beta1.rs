//! PodUnavailableBudget `policy.kruise.io/v1beta1`, the stored version (kruise-api.md §0, §8):
//! v1alpha1 plus three typed fields that replace v1alpha1 annotations: `protectOperations`
//! (annotation `kruise.io/pub-protect-operations`), `protectTotalReplicas` (annotation
//! `pub.kruise.io/protect-total-replicas`) and `ignoredPodSelector` (new; pods it selects are
//! never protected, like pods annotated `pub.kruise.io/no-protect: "true"`).
//!
//! The mapping between the versions is kruise's `podunavailablebudget_conversion.go`:
//! [`from_v1alpha1`] promotes the annotations into the fields, [`to_v1alpha1`] writes the fields
//! back as annotations and drops `ignoredPodSelector`. The CRD converts with strategy `None`
//! ([`crate::crds::podunavailablebudget`]), so an object created at v1alpha1 is stored with its
//! annotations only; graft reads every PUB through [`effective`], which applies the same
//! promotion to whatever the object carries.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::v1alpha1 as alpha;
pub use super::v1alpha1::{PodUnavailableBudgetStatus, ProtectOperation, TargetReference};
use crate::field::{FieldError, FieldErrors};
use crate::labels;

/// Desired state of a PodUnavailableBudget (v1beta1).
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "policy.kruise.io",
    version = "v1beta1",
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
        description = "UnavailableAllowed number of pod unavailable that are currently allowed"
    ),
    printcolumn(
        name = "Current",
        type_ = "integer",
        json_path = ".status.currentAvailable",
        description = "CurrentAvailable current number of available pods"
    ),
    printcolumn(
        name = "Desired",
        type_ = "integer",
        json_path = ".status.desiredAvailable",
        description = "DesiredAvailable minimum desired number of available pods"
    ),
    printcolumn(
        name = "Total",
        type_ = "integer",
        json_path = ".status.totalReplicas",
        description = "TotalReplicas total number of pods counted by this budget"
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
    /// Voluntary disruptions this budget protects; empty: DELETE, UPDATE and EVICT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protect_operations: Option<Vec<ProtectOperation>>,
    /// Replicas to count instead of the workload's, for pods without a workload or workloads
    /// without a scale subresource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub protect_total_replicas: Option<i32>,
    /// Pods that always bypass the budget's protection (they still count in its status).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignored_pod_selector: Option<LabelSelector>,
}

/// The operations protected when neither `spec.protectOperations` nor the v1alpha1 annotation
/// names any.
pub const DEFAULT_PROTECT_OPERATIONS: [ProtectOperation; 3] = [
    ProtectOperation::Delete,
    ProtectOperation::Update,
    ProtectOperation::Evict,
];

impl PodUnavailableBudgetSpec {
    /// The fields v1alpha1 has too.
    fn alpha_fields(&self) -> alpha::PodUnavailableBudgetSpec {
        alpha::PodUnavailableBudgetSpec {
            selector: self.selector.clone(),
            target_ref: self.target_ref.clone(),
            max_unavailable: self.max_unavailable.clone(),
            min_available: self.min_available.clone(),
        }
    }

    /// Pods that must stay available out of `total`: total − maxUnavailable (percent rounds up)
    /// or minAvailable (percent rounds up); maxUnavailable wins.
    pub fn desired_available(&self, total: i32) -> Result<i32, String> {
        self.alpha_fields().desired_available(total)
    }

    /// v1alpha1's checks plus `protectTotalReplicas >= 1` and a convertible
    /// `ignoredPodSelector`.
    pub fn validate(&self) -> FieldErrors {
        let mut errs = self.alpha_fields().validate();
        if let Some(n) = self.protect_total_replicas
            && n < 1
        {
            errs.push(FieldError::invalid(
                "spec.protectTotalReplicas",
                n,
                "must be greater than or equal to 1",
            ));
        }
        if let Some(s) = &self.ignored_pod_selector {
            errs.extend(crate::selector::validate(s, "spec.ignoredPodSelector"));
        }
        errs
    }
}

impl PodUnavailableBudget {
    /// Operations this budget protects: `spec.protectOperations`, else the v1alpha1 annotation,
    /// else [`DEFAULT_PROTECT_OPERATIONS`] (kruise's `getPubProtectOperations`).
    pub fn protect_operations(&self) -> Result<Vec<ProtectOperation>, FieldError> {
        if let Some(ops) = self
            .spec
            .protect_operations
            .as_ref()
            .filter(|o| !o.is_empty())
        {
            return Ok(ops.clone());
        }
        let from_annotation =
            annotation(&self.metadata.annotations, labels::PUB_PROTECT_OPERATIONS)
                .map(parse_operations)
                .transpose()?
                .unwrap_or_default();
        if from_annotation.is_empty() {
            return Ok(DEFAULT_PROTECT_OPERATIONS.to_vec());
        }
        Ok(from_annotation)
    }

    /// Whether `ignoredPodSelector` selects a pod with these labels (an empty selector selects
    /// nothing here, as in kruise).
    pub fn ignores_pod(&self, pod_labels: &BTreeMap<String, String>) -> bool {
        self.spec.ignored_pod_selector.as_ref().is_some_and(|s| {
            !crate::selector::is_empty(s) && crate::selector::matches(s, pod_labels)
        })
    }
}

fn annotation<'a>(annotations: &'a Option<BTreeMap<String, String>>, key: &str) -> Option<&'a str> {
    annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .map(String::as_str)
        .filter(|v| !v.is_empty())
}

/// Parses the v1alpha1 annotation value `DELETE,EVICT` in its written order (blank items are
/// skipped; an unknown one is an error, as in kruise's conversion).
pub fn parse_operations(raw: &str) -> Result<Vec<ProtectOperation>, FieldError> {
    raw.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|part| match part {
            "DELETE" => Ok(ProtectOperation::Delete),
            "EVICT" => Ok(ProtectOperation::Evict),
            "UPDATE" => Ok(ProtectOperation::Update),
            "RESIZE" => Ok(ProtectOperation::Resize),
            other => Err(FieldError::not_supported(
                &format!("metadata.annotations[{}]", labels::PUB_PROTECT_OPERATIONS),
                other,
                &["DELETE", "EVICT", "UPDATE", "RESIZE"],
            )),
        })
        .collect()
}

/// The annotation value of `ops`: `DELETE,EVICT`.
pub fn join_operations(ops: &[ProtectOperation]) -> String {
    ops.iter()
        .map(|o| match o {
            ProtectOperation::Delete => "DELETE",
            ProtectOperation::Evict => "EVICT",
            ProtectOperation::Update => "UPDATE",
            ProtectOperation::Resize => "RESIZE",
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Parses the v1alpha1 annotation `pub.kruise.io/protect-total-replicas` (a base-10 int32).
pub fn parse_total_replicas(raw: &str) -> Result<i32, FieldError> {
    raw.parse::<i32>().map_err(|e| {
        FieldError::invalid(
            &format!(
                "metadata.annotations[{}]",
                labels::PUB_PROTECT_TOTAL_REPLICAS
            ),
            raw,
            &e.to_string(),
        )
    })
}

/// v1alpha1 → v1beta1 (kruise's `ConvertTo`): metadata (annotations included) and the common
/// fields as they are; the annotations fill `protectOperations` and `protectTotalReplicas`.
pub fn from_v1alpha1(
    src: &alpha::PodUnavailableBudget,
) -> Result<PodUnavailableBudget, FieldError> {
    let annotations = &src.metadata.annotations;
    let protect_operations = annotation(annotations, labels::PUB_PROTECT_OPERATIONS)
        .map(parse_operations)
        .transpose()?
        .filter(|o| !o.is_empty());
    let protect_total_replicas = annotation(annotations, labels::PUB_PROTECT_TOTAL_REPLICAS)
        .map(parse_total_replicas)
        .transpose()?;
    Ok(PodUnavailableBudget {
        metadata: src.metadata.clone(),
        spec: PodUnavailableBudgetSpec {
            selector: src.spec.selector.clone(),
            target_ref: src.spec.target_ref.clone(),
            max_unavailable: src.spec.max_unavailable.clone(),
            min_available: src.spec.min_available.clone(),
            protect_operations,
            protect_total_replicas,
            ignored_pod_selector: None,
        },
        status: src.status.clone(),
    })
}

/// v1beta1 → v1alpha1 (kruise's `ConvertFrom`): the fields become the annotations (an unset
/// field removes its annotation); `ignoredPodSelector` has no v1alpha1 form and is dropped.
pub fn to_v1alpha1(src: &PodUnavailableBudget) -> alpha::PodUnavailableBudget {
    let mut metadata = src.metadata.clone();
    let mut annotations = metadata.annotations.take().unwrap_or_default();
    match src
        .spec
        .protect_operations
        .as_deref()
        .filter(|o| !o.is_empty())
    {
        Some(ops) => {
            annotations.insert(labels::PUB_PROTECT_OPERATIONS.into(), join_operations(ops));
        }
        None => {
            annotations.remove(labels::PUB_PROTECT_OPERATIONS);
        }
    }
    match src.spec.protect_total_replicas {
        Some(n) => {
            annotations.insert(labels::PUB_PROTECT_TOTAL_REPLICAS.into(), n.to_string());
        }
        None => {
            annotations.remove(labels::PUB_PROTECT_TOTAL_REPLICAS);
        }
    }
    metadata.annotations = (!annotations.is_empty()).then_some(annotations);
    alpha::PodUnavailableBudget {
        metadata,
        spec: src.spec.alpha_fields(),
        status: src.status.clone(),
    }
}

/// The budget as kruise would see it after converting to v1beta1: where a field is unset, its
/// v1alpha1 annotation fills it (a set field wins). With strategy `None` a PUB created at
/// v1alpha1 reaches graft with annotations only; this is how graft reads every PUB.
pub fn effective(src: &PodUnavailableBudget) -> Result<PodUnavailableBudget, FieldError> {
    let mut out = src.clone();
    let annotations = &src.metadata.annotations;
    if out
        .spec
        .protect_operations
        .as_ref()
        .is_none_or(Vec::is_empty)
    {
        out.spec.protect_operations = annotation(annotations, labels::PUB_PROTECT_OPERATIONS)
            .map(parse_operations)
            .transpose()?
            .filter(|o| !o.is_empty());
    }
    if out.spec.protect_total_replicas.is_none() {
        out.spec.protect_total_replicas =
            annotation(annotations, labels::PUB_PROTECT_TOTAL_REPLICAS)
                .map(parse_total_replicas)
                .transpose()?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use serde_json::json;

    fn alpha_pub(v: serde_json::Value) -> alpha::PodUnavailableBudget {
        serde_json::from_value(v).unwrap()
    }

    fn beta_pub(v: serde_json::Value) -> PodUnavailableBudget {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn annotations_become_fields_and_back() {
        let a = alpha_pub(json!({
            "apiVersion": "policy.kruise.io/v1alpha1", "kind": "PodUnavailableBudget",
            "metadata": {"name": "p", "namespace": "ns", "annotations": {
                "kruise.io/pub-protect-operations": "DELETE, EVICT,",
                "pub.kruise.io/protect-total-replicas": "7",
                "other": "kept"}},
            "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "d"},
                     "maxUnavailable": "25%"},
            "status": {"unavailableAllowed": 1, "currentAvailable": 7, "desiredAvailable": 6, "totalReplicas": 7}
        }));
        let b = from_v1alpha1(&a).unwrap();
        assert_eq!(
            b.spec.protect_operations,
            Some(vec![ProtectOperation::Delete, ProtectOperation::Evict])
        );
        assert_eq!(b.spec.protect_total_replicas, Some(7));
        assert_eq!(b.spec.ignored_pod_selector, None);
        assert_eq!(b.status, a.status);
        // Kruise keeps the annotations in the v1beta1 object's metadata.
        assert_eq!(b.metadata, a.metadata);

        let back = to_v1alpha1(&b);
        let ann = back.metadata.annotations.clone().unwrap();
        assert_eq!(ann["kruise.io/pub-protect-operations"], "DELETE,EVICT");
        assert_eq!(ann["pub.kruise.io/protect-total-replicas"], "7");
        assert_eq!(ann["other"], "kept");
        assert_eq!(back.spec, a.spec);
    }

    #[test]
    fn unset_fields_remove_their_annotations_and_ignored_selector_is_dropped() {
        let b = beta_pub(json!({
            "apiVersion": "policy.kruise.io/v1beta1", "kind": "PodUnavailableBudget",
            "metadata": {"name": "p", "annotations": {
                "kruise.io/pub-protect-operations": "DELETE",
                "pub.kruise.io/protect-total-replicas": "3"}},
            "spec": {"selector": {"matchLabels": {"app": "a"}}, "minAvailable": 2,
                     "ignoredPodSelector": {"matchLabels": {"canary": "true"}}}
        }));
        let a = to_v1alpha1(&b);
        assert_eq!(a.metadata.annotations, None);
        assert_eq!(
            serde_json::to_value(&a.spec).unwrap(),
            json!({"selector": {"matchLabels": {"app": "a"}}, "minAvailable": 2})
        );
    }

    #[test]
    fn bad_annotations_fail_the_conversion() {
        for (key, value) in [
            ("kruise.io/pub-protect-operations", "DELETE,KILL"),
            ("pub.kruise.io/protect-total-replicas", "many"),
            ("pub.kruise.io/protect-total-replicas", "99999999999"),
        ] {
            let a = alpha_pub(json!({
                "metadata": {"name": "p", "annotations": {key: value}},
                "spec": {"selector": {}, "maxUnavailable": 1}
            }));
            assert!(from_v1alpha1(&a).is_err(), "{key}={value}");
        }
    }

    #[test]
    fn effective_fills_unset_fields_from_annotations_and_fields_win() {
        let b = beta_pub(json!({
            "metadata": {"name": "p", "annotations": {
                "kruise.io/pub-protect-operations": "EVICT",
                "pub.kruise.io/protect-total-replicas": "5"}},
            "spec": {"selector": {}, "maxUnavailable": 1, "protectTotalReplicas": 9}
        }));
        let e = effective(&b).unwrap();
        assert_eq!(
            e.spec.protect_operations,
            Some(vec![ProtectOperation::Evict])
        );
        assert_eq!(e.spec.protect_total_replicas, Some(9));
        assert_eq!(
            e.protect_operations().unwrap(),
            vec![ProtectOperation::Evict]
        );
        let plain = beta_pub(
            json!({"metadata": {"name": "p"}, "spec": {"selector": {}, "maxUnavailable": 1}}),
        );
        assert_eq!(effective(&plain).unwrap(), plain);
        assert_eq!(
            plain.protect_operations().unwrap(),
            DEFAULT_PROTECT_OPERATIONS.to_vec()
        );
    }

    #[test]
    fn protect_operations_serialize_in_kruise_spelling() {
        let b = beta_pub(json!({"metadata": {"name": "p"},
            "spec": {"selector": {}, "maxUnavailable": 1, "protectOperations": ["DELETE", "RESIZE"]}}));
        assert_eq!(
            serde_json::to_value(&b.spec).unwrap()["protectOperations"],
            json!(["DELETE", "RESIZE"])
        );
    }

    #[test]
    fn ignored_pod_selector_and_validation() {
        let b = beta_pub(json!({"metadata": {"name": "p"},
            "spec": {"selector": {}, "maxUnavailable": 1,
                     "ignoredPodSelector": {"matchLabels": {"canary": "true"}}}}));
        assert!(b.ignores_pod(&BTreeMap::from([("canary".into(), "true".into())])));
        assert!(!b.ignores_pod(&BTreeMap::new()));
        assert!(b.spec.validate().is_empty());
        let bad = beta_pub(json!({"metadata": {"name": "p"},
            "spec": {"selector": {}, "maxUnavailable": 1, "protectTotalReplicas": 0}}));
        assert!(bad.spec.validate().has_field("spec.protectTotalReplicas"));
        assert_eq!(bad.spec.desired_available(10), Ok(9));
    }
}
