//! Advanced StatefulSet (`apps.kruise.io/v1beta1`, kind `StatefulSet`): ordered pods with
//! in-place updates, reserved ordinals and parallel updates (kruise-api.md §4).

use k8s_openapi::api::apps::v1::StatefulSetCondition;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::apps::common::{
    InPlaceUpdateStrategy, Lifecycle, PodUpdatePolicy, UpdatePriorityStrategy,
    validate_pod_template, validate_selector_not_empty,
};
use crate::field::{FieldError, FieldErrors};
use crate::intstr;
use crate::labels;

/// Largest `rollingUpdate.minReadySeconds`.
pub const MAX_MIN_READY_SECONDS: i32 = 300;

/// Desired state of an Advanced StatefulSet.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "apps.kruise.io",
    version = "v1beta1",
    kind = "StatefulSet",
    namespaced,
    shortname = "sts",
    shortname = "asts",
    status = "StatefulSetStatus",
    derive = "PartialEq",
    doc = "Advanced StatefulSet: a StatefulSet with in-place updates, reserved ordinals and parallel updates.",
    scale(
        spec_replicas_path = ".spec.replicas",
        status_replicas_path = ".status.replicas",
        label_selector_path = ".status.labelSelector"
    ),
    printcolumn(
        name = "DESIRED",
        type_ = "integer",
        json_path = ".spec.replicas",
        description = "The desired number of pods."
    ),
    printcolumn(
        name = "CURRENT",
        type_ = "integer",
        json_path = ".status.replicas",
        description = "The number of currently all pods."
    ),
    printcolumn(
        name = "UPDATED",
        type_ = "integer",
        json_path = ".status.updatedReplicas",
        description = "The number of pods updated."
    ),
    printcolumn(
        name = "READY",
        type_ = "integer",
        json_path = ".status.readyReplicas",
        description = "The number of pods ready."
    ),
    printcolumn(
        name = "AGE",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    ),
    printcolumn(
        name = "CONTAINERS",
        type_ = "string",
        json_path = ".spec.template.spec.containers[*].name",
        priority = 1,
        description = "The containers of currently advanced statefulset."
    ),
    printcolumn(
        name = "IMAGES",
        type_ = "string",
        json_path = ".spec.template.spec.containers[*].image",
        priority = 1,
        description = "The images of currently advanced statefulset."
    )
)]
#[serde(rename_all = "camelCase")]
pub struct StatefulSetSpec {
    /// Desired number of pods (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0), extend("default" = 1))]
    pub replicas: Option<i32>,
    /// Label query over pods; must match the template labels.
    pub selector: LabelSelector,
    /// Template of the pods (opaque in the CRD schema).
    #[schemars(schema_with = "crate::schema::opaque_object")]
    pub template: PodTemplateSpec,
    /// PVC templates, one PVC per pod each (`<vct>-<sts>-<ordinal>`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::apps::common::volume_claim_templates::serialize"
    )]
    #[schemars(schema_with = "crate::schema::opaque_object_list")]
    pub volume_claim_templates: Option<Vec<PersistentVolumeClaim>>,
    /// Headless service giving the pods their DNS names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
    /// `OrderedReady` (default) or `Parallel`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "OrderedReady"))]
    pub pod_management_policy: Option<PodManagementPolicy>,
    /// How pods are updated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = {}))]
    pub update_strategy: Option<StatefulSetUpdateStrategy>,
    /// Old ControllerRevisions to keep (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0), extend("default" = 10))]
    pub revision_history_limit: Option<i32>,
    /// Ordinals to skip: integers or ranges like `"3-5"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reserve_ordinals: Option<Vec<IntOrString>>,
    /// Lifecycle hooks of the pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<Lifecycle>,
    /// Scaling options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_strategy: Option<StatefulSetScaleStrategy>,
    /// What happens to PVCs when the set is deleted or scaled down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persistent_volume_claim_retention_policy: Option<PersistentVolumeClaimRetentionPolicy>,
    /// First ordinal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ordinals: Option<StatefulSetOrdinals>,
    /// How PVC template changes reach existing PVCs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume_claim_update_strategy: Option<VolumeClaimUpdateStrategy>,
}

/// `podManagementPolicy`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum PodManagementPolicy {
    /// One pod at a time, in order (default).
    #[default]
    OrderedReady,
    /// All at once.
    Parallel,
}

/// `updateStrategy`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatefulSetUpdateStrategy {
    /// `RollingUpdate` (default) or `OnDelete`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "RollingUpdate"))]
    pub type_: Option<StatefulSetUpdateStrategyType>,
    /// Rolling update options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rolling_update: Option<RollingUpdateStatefulSetStrategy>,
}

/// `updateStrategy.type`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum StatefulSetUpdateStrategyType {
    /// Update pods automatically (default).
    #[default]
    RollingUpdate,
    /// Update pods when the user deletes them.
    OnDelete,
}

/// `updateStrategy.rollingUpdate`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RollingUpdateStatefulSetStrategy {
    /// Pods kept at the old revision (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0), extend("default" = 0))]
    pub partition: Option<i32>,
    /// Pods updated at once (default 1; percent rounds down; at least 1; other than 1 only with
    /// `Parallel`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = 1, "x-kubernetes-validations" = [{
        "rule": "type(self) == int ? self >= 1 : self.matches('^(100|[1-9][0-9]?)%$')",
        "message": "must be an integer of at least 1 or a percentage from 1% to 100%"
    }]))]
    pub max_unavailable: Option<IntOrString>,
    /// `ReCreate` (default), `InPlaceIfPossible` or `InPlaceOnly` (in-place needs the
    /// `InPlaceUpdateReady` readiness gate in the template).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "ReCreate"))]
    pub pod_update_policy: Option<PodUpdatePolicy>,
    /// Stop updating.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused: Option<bool>,
    /// Update in priority order instead of by ordinal (only with `Parallel`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unordered_update: Option<UnorderedUpdateStrategy>,
    /// In-place update options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_place_update_strategy: Option<InPlaceUpdateStrategy>,
    /// Seconds an updated pod must be ready before the next one (0..300).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 300))]
    pub min_ready_seconds: Option<i32>,
}

/// `rollingUpdate.unorderedUpdate`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UnorderedUpdateStrategy {
    /// Update order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_strategy: Option<UpdatePriorityStrategy>,
}

/// `scaleStrategy`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatefulSetScaleStrategy {
    /// Limits parallel scale-up while pods are unavailable (only with `Parallel`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-validations" = [{
        "rule": "type(self) == int ? self >= 1 : self.matches('^(100|[1-9][0-9]?)%$')",
        "message": "must be an integer of at least 1 or a percentage from 1% to 100%"
    }]))]
    pub max_unavailable: Option<IntOrString>,
}

/// `persistentVolumeClaimRetentionPolicy`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PersistentVolumeClaimRetentionPolicy {
    /// On set deletion: `Retain` (default) or `Delete`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "Retain"))]
    pub when_deleted: Option<PersistentVolumeClaimRetentionPolicyType>,
    /// On scale-down: `Retain` (default) or `Delete`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "Retain"))]
    pub when_scaled: Option<PersistentVolumeClaimRetentionPolicyType>,
}

/// PVC retention.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum PersistentVolumeClaimRetentionPolicyType {
    /// Keep PVCs (default).
    #[default]
    Retain,
    /// Delete PVCs.
    Delete,
}

/// `ordinals`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StatefulSetOrdinals {
    /// First ordinal (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub start: Option<i32>,
}

/// `volumeClaimUpdateStrategy`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct VolumeClaimUpdateStrategy {
    /// `OnPodRollingUpdate` or `OnDelete` (default).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub type_: Option<VolumeClaimUpdateStrategyType>,
}

/// PVC update strategy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum VolumeClaimUpdateStrategyType {
    /// Expand PVCs as pods are rolled.
    OnPodRollingUpdate,
    /// Leave existing PVCs (default).
    #[default]
    OnDelete,
}

/// Observed state of an Advanced StatefulSet.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct StatefulSetStatus {
    /// Generation the status was computed for.
    pub observed_generation: i64,
    /// Pods created.
    pub replicas: i32,
    /// Pods ready.
    pub ready_replicas: i32,
    /// Pods available.
    pub available_replicas: i32,
    /// Pods at the current revision.
    pub current_replicas: i32,
    /// Pods at the update revision.
    pub updated_replicas: i32,
    /// Updated pods that are ready.
    pub updated_ready_replicas: i32,
    /// Updated pods that are available.
    pub updated_available_replicas: i32,
    /// Revision of the pods before the update.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_revision: Option<String>,
    /// Revision pods are updated to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update_revision: Option<String>,
    /// Hash collisions when naming revisions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub collision_count: Option<i32>,
    /// apps/v1 StatefulSet conditions (plus `FailedCreatePod`, `FailedUpdatePod`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<StatefulSetCondition>>,
    /// The selector as a string, for the scale subresource.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<String>,
    /// PVC template compatibility per template.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume_claims: Option<Vec<VolumeClaimStatus>>,
}

/// Status of one PVC template.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct VolumeClaimStatus {
    /// PVC template name.
    pub volume_claim_name: String,
    /// Replicas whose PVCs match the template.
    pub compatible_replicas: i32,
    /// Of those, ready ones.
    pub compatible_ready_replicas: i32,
}

impl StatefulSetSpec {
    /// A copy with OpenKruise's defaults (`SetDefaultsStatefulSet`): replicas 1, OrderedReady,
    /// revisionHistoryLimit 10, RollingUpdate with partition 0, maxUnavailable 1 and
    /// podUpdatePolicy ReCreate, PVC retention Retain/Retain.
    pub fn defaulted(&self) -> Self {
        let mut s = self.clone();
        s.replicas.get_or_insert(1);
        s.pod_management_policy
            .get_or_insert(PodManagementPolicy::OrderedReady);
        s.revision_history_limit.get_or_insert(10);
        let us = s.update_strategy.get_or_insert_with(Default::default);
        let ty = *us
            .type_
            .get_or_insert(StatefulSetUpdateStrategyType::RollingUpdate);
        if ty == StatefulSetUpdateStrategyType::RollingUpdate {
            let ru = us.rolling_update.get_or_insert_with(Default::default);
            ru.partition.get_or_insert(0);
            ru.max_unavailable.get_or_insert(IntOrString::Int(1));
            ru.pod_update_policy
                .get_or_insert(PodUpdatePolicy::ReCreate);
            if ru.pod_update_policy != Some(PodUpdatePolicy::ReCreate) {
                ru.in_place_update_strategy
                    .get_or_insert_with(Default::default);
            }
        }
        let p = s
            .persistent_volume_claim_retention_policy
            .get_or_insert_with(Default::default);
        p.when_deleted
            .get_or_insert(PersistentVolumeClaimRetentionPolicyType::Retain);
        p.when_scaled
            .get_or_insert(PersistentVolumeClaimRetentionPolicyType::Retain);
        s
    }

    /// Pods updated at once for `replicas`: maxUnavailable with percentages rounded down, at
    /// least 1.
    pub fn max_unavailable(&self) -> Result<i32, String> {
        let d = self.defaulted();
        let replicas = d.replicas.unwrap_or(1);
        let mu = d
            .update_strategy
            .and_then(|u| u.rolling_update)
            .and_then(|r| r.max_unavailable)
            .unwrap_or(IntOrString::Int(1));
        Ok(intstr::scaled_value(&mu, replicas, false)?.max(1))
    }

    /// The ordinals pods get: `replicas` ordinals from `ordinals.start`, skipping reserved ones
    /// (reserve 1 with replicas 3 gives 0, 2, 3).
    pub fn pod_ordinals(&self) -> Result<Vec<i32>, String> {
        let reserved = self.reserved_ordinals()?;
        let replicas = self.replicas.unwrap_or(1).max(0);
        let mut out = Vec::with_capacity(usize::try_from(replicas).unwrap_or(0));
        let mut i = self.ordinals.as_ref().and_then(|o| o.start).unwrap_or(0);
        while out.len() < usize::try_from(replicas).unwrap_or(0) {
            if !reserved.contains(&i) {
                out.push(i);
            }
            i = i.checked_add(1).ok_or("ordinal overflow")?;
        }
        Ok(out)
    }

    /// The reserved ordinals, with ranges like `"3-5"` expanded, sorted and deduplicated.
    pub fn reserved_ordinals(&self) -> Result<Vec<i32>, String> {
        let mut out = Vec::new();
        for v in self.reserve_ordinals.iter().flatten() {
            match v {
                IntOrString::Int(i) if *i >= 0 => out.push(*i),
                IntOrString::Int(i) => return Err(format!("reserved ordinal {i} is negative")),
                IntOrString::String(s) => {
                    let (a, b) = s
                        .split_once('-')
                        .ok_or_else(|| format!("{s:?} is not a range like \"3-5\""))?;
                    let (a, b): (i32, i32) = (
                        a.trim()
                            .parse()
                            .map_err(|_| format!("{s:?} is not a range like \"3-5\""))?,
                        b.trim()
                            .parse()
                            .map_err(|_| format!("{s:?} is not a range like \"3-5\""))?,
                    );
                    if a < 0 || b < a || b - a > 100_000 {
                        return Err(format!("{s:?} is not a valid range"));
                    }
                    out.extend(a..=b);
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        Ok(out)
    }

    /// Checks the spec as OpenKruise's validating webhook does.
    pub fn validate(&self) -> FieldErrors {
        let mut errs = FieldErrors::default();
        if let Some(r) = self.replicas
            && r < 0
        {
            errs.push(FieldError::invalid(
                "spec.replicas",
                r,
                "must be greater than or equal to 0",
            ));
        }
        errs.extend(validate_selector_not_empty(&self.selector, "spec.selector"));
        errs.extend(validate_pod_template(
            &self.template,
            Some(&self.selector),
            &["Always"],
            "spec.template",
        ));
        if let Err(e) = self.reserved_ordinals() {
            errs.push(FieldError::invalid(
                "spec.reserveOrdinals",
                format!("{:?}", self.reserve_ordinals),
                &e,
            ));
        }
        if let Some(l) = &self.lifecycle {
            errs.extend(l.validate("spec.lifecycle"));
        }
        let parallel = self.pod_management_policy == Some(PodManagementPolicy::Parallel);
        if let Some(mu) = self
            .scale_strategy
            .as_ref()
            .and_then(|s| s.max_unavailable.as_ref())
        {
            errs.extend(validate_at_least_one(
                mu,
                "spec.scaleStrategy.maxUnavailable",
            ));
            if !parallel {
                errs.push(FieldError::forbidden(
                    "spec.scaleStrategy.maxUnavailable",
                    "scaleStrategy.maxUnavailable can only work with Parallel podManagementPolicy",
                ));
            }
        }
        let Some(ru) = self
            .update_strategy
            .as_ref()
            .and_then(|u| u.rolling_update.as_ref())
        else {
            return errs;
        };
        let f = "spec.updateStrategy.rollingUpdate";
        if self.update_strategy.as_ref().and_then(|u| u.type_)
            == Some(StatefulSetUpdateStrategyType::OnDelete)
        {
            errs.push(FieldError::forbidden(
                f,
                "only allowed for updateStrategy type RollingUpdate",
            ));
        }
        if let Some(p) = ru.partition
            && p < 0
        {
            errs.push(FieldError::invalid(
                &format!("{f}.partition"),
                p,
                "must be greater than or equal to 0",
            ));
        }
        if let Some(mu) = &ru.max_unavailable {
            errs.extend(validate_at_least_one(mu, &format!("{f}.maxUnavailable")));
            if !parallel && mu != &IntOrString::Int(1) {
                errs.push(FieldError::forbidden(
                    &format!("{f}.maxUnavailable"),
                    "maxUnavailable other than 1 can only work with Parallel podManagementPolicy",
                ));
            }
        }
        if ru.unordered_update.is_some() && !parallel {
            errs.push(FieldError::forbidden(
                &format!("{f}.unorderedUpdate"),
                "unorderedUpdate can only work with Parallel podManagementPolicy",
            ));
        }
        if let Some(p) = ru
            .unordered_update
            .as_ref()
            .and_then(|u| u.priority_strategy.as_ref())
        {
            errs.extend(p.validate(&format!("{f}.unorderedUpdate.priorityStrategy")));
        }
        if let Some(m) = ru.min_ready_seconds
            && !(0..=MAX_MIN_READY_SECONDS).contains(&m)
        {
            errs.push(FieldError::invalid(
                &format!("{f}.minReadySeconds"),
                m,
                "must be in 0..300",
            ));
        }
        if matches!(
            ru.pod_update_policy,
            Some(PodUpdatePolicy::InPlaceIfPossible | PodUpdatePolicy::InPlaceOnly)
        ) {
            let has_gate = self
                .template
                .spec
                .as_ref()
                .and_then(|s| s.readiness_gates.as_ref())
                .is_some_and(|g| {
                    g.iter()
                        .any(|g| g.condition_type == labels::INPLACE_UPDATE_READY)
                });
            if !has_gate {
                errs.push(FieldError::invalid(
                    &format!("{f}.podUpdatePolicy"),
                    format!("{:?}", ru.pod_update_policy.unwrap_or_default()),
                    "in-place update needs readinessGate InPlaceUpdateReady in template.spec.readinessGates",
                ));
            }
        }
        errs
    }
}

fn validate_at_least_one(v: &IntOrString, field: &str) -> FieldErrors {
    let mut errs = intstr::validate_int_or_percent(v, field);
    if errs.is_empty() {
        match intstr::parse(v) {
            Ok(intstr::IntOrPercent::Int(i)) if i < 1 => {
                errs.push(FieldError::invalid(field, i, "must be at least 1"))
            }
            Ok(intstr::IntOrPercent::Percent(0)) => {
                errs.push(FieldError::invalid(field, "0%", "must be at least 1%"))
            }
            _ => {}
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use serde_json::json;

    fn spec(extra: serde_json::Value) -> StatefulSetSpec {
        let mut v = json!({
            "selector": {"matchLabels": {"app": "db"}},
            "serviceName": "db",
            "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "db", "image": "redis:7"}]}}
        });
        if let (Some(m), Some(e)) = (v.as_object_mut(), extra.as_object()) {
            m.extend(e.clone());
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn defaults_are_pinned() {
        let v = serde_json::to_value(spec(json!({})).defaulted()).unwrap();
        assert_eq!(v["replicas"], json!(1));
        assert_eq!(v["podManagementPolicy"], json!("OrderedReady"));
        assert_eq!(v["revisionHistoryLimit"], json!(10));
        assert_eq!(
            v["updateStrategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0, "maxUnavailable": 1, "podUpdatePolicy": "ReCreate"}})
        );
        assert_eq!(
            v["persistentVolumeClaimRetentionPolicy"],
            json!({"whenDeleted": "Retain", "whenScaled": "Retain"})
        );
        assert!(spec(json!({})).validate().is_empty());
    }

    #[test]
    fn reserve_ordinals_skip() {
        let s = spec(json!({"replicas": 3, "reserveOrdinals": [1]}));
        assert_eq!(s.pod_ordinals().unwrap(), vec![0, 2, 3]);
        let s = spec(json!({"replicas": 3, "reserveOrdinals": [0, "2-4"]}));
        assert_eq!(s.pod_ordinals().unwrap(), vec![1, 5, 6]);
        let s = spec(json!({"replicas": 2, "reserveOrdinals": ["4-2"]}));
        assert!(s.validate().has_field("spec.reserveOrdinals"));
    }

    #[test]
    fn max_unavailable_rounds_down_and_is_at_least_one() {
        let s = spec(json!({"replicas": 3, "podManagementPolicy": "Parallel",
            "updateStrategy": {"rollingUpdate": {"maxUnavailable": "20%"}}}));
        assert_eq!(s.max_unavailable().unwrap(), 1);
        let s = spec(json!({"replicas": 10, "podManagementPolicy": "Parallel",
            "updateStrategy": {"rollingUpdate": {"maxUnavailable": "25%"}}}));
        assert_eq!(s.max_unavailable().unwrap(), 2);
    }

    #[test]
    fn validation_table() {
        let cases = [
            (
                json!({"updateStrategy": {"rollingUpdate": {"maxUnavailable": 2}}}),
                "spec.updateStrategy.rollingUpdate.maxUnavailable",
            ),
            (
                json!({"podManagementPolicy": "Parallel", "updateStrategy": {"rollingUpdate": {"maxUnavailable": 0}}}),
                "spec.updateStrategy.rollingUpdate.maxUnavailable",
            ),
            (
                json!({"podManagementPolicy": "Parallel", "updateStrategy": {"rollingUpdate": {"maxUnavailable": "1"}}}),
                "spec.updateStrategy.rollingUpdate.maxUnavailable",
            ),
            (
                json!({"updateStrategy": {"rollingUpdate": {"podUpdatePolicy": "InPlaceIfPossible"}}}),
                "spec.updateStrategy.rollingUpdate.podUpdatePolicy",
            ),
            (
                json!({"updateStrategy": {"rollingUpdate": {"minReadySeconds": 301}}}),
                "spec.updateStrategy.rollingUpdate.minReadySeconds",
            ),
            (
                json!({"updateStrategy": {"rollingUpdate": {"unorderedUpdate": {}}}}),
                "spec.updateStrategy.rollingUpdate.unorderedUpdate",
            ),
            (
                json!({"scaleStrategy": {"maxUnavailable": 2}}),
                "spec.scaleStrategy.maxUnavailable",
            ),
        ];
        for (patch, field) in cases {
            let errs = spec(patch.clone()).validate();
            assert!(errs.has_field(field), "{patch}: {errs}");
        }
        let ok = spec(json!({
            "podManagementPolicy": "Parallel",
            "updateStrategy": {"rollingUpdate": {"maxUnavailable": "50%", "podUpdatePolicy": "InPlaceIfPossible"}},
            "template": {"metadata": {"labels": {"app": "db"}}, "spec": {
                "readinessGates": [{"conditionType": "InPlaceUpdateReady"}],
                "containers": [{"name": "db", "image": "redis:7"}]}}
        }));
        assert!(ok.validate().is_empty(), "{}", ok.validate());
    }
}
