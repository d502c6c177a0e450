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
};
use crate::intstr;

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
        json_path = ".metadata.creationTimestamp",
        description = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC."
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
    #[schemars(extend("default" = 10))]
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
        "rule": "type(self) == int ? self >= 1 : self.matches('^0*[1-9][0-9]*%$')",
        "message": "must be an integer of at least 1 or a percentage of at least 1%"
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
    /// Seconds an updated pod must be ready before the next one (default 0, at most 300).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 300), extend("default" = 0))]
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
        "rule": "type(self) == int ? self >= 1 : self.matches('^0*[1-9][0-9]*%$')",
        "message": "must be an integer of at least 1 or a percentage of at least 1%"
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
    #[schemars(extend("default" = "OnDelete"))]
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
    /// A copy with OpenKruise's defaults (`SetDefaultsStatefulSet`), as the mutating webhook
    /// writes them: podManagementPolicy OrderedReady; updateStrategy RollingUpdate and, for
    /// RollingUpdate, partition 0, maxUnavailable 1, podUpdatePolicy ReCreate, minReadySeconds
    /// 0; PVC retention Retain/Retain (gate `StatefulSetAutoDeletePVC`); volumeClaimUpdateStrategy
    /// OnDelete (gate `StatefulSetAutoResizePVCGate`); replicas 1; revisionHistoryLimit 10.
    ///
    /// graft behaves as OpenKruise with every gate on, so the pod template and PVC templates get
    /// no Kubernetes defaults (gate `TemplateNoDefaults`) and the two PVC gates apply.
    pub fn defaulted(&self) -> Self {
        let mut s = self.clone();
        s.pod_management_policy
            .get_or_insert(PodManagementPolicy::OrderedReady);
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
            ru.min_ready_seconds.get_or_insert(0);
        }
        let p = s
            .persistent_volume_claim_retention_policy
            .get_or_insert_with(Default::default);
        p.when_deleted
            .get_or_insert(PersistentVolumeClaimRetentionPolicyType::Retain);
        p.when_scaled
            .get_or_insert(PersistentVolumeClaimRetentionPolicyType::Retain);
        s.volume_claim_update_strategy
            .get_or_insert_with(Default::default)
            .type_
            .get_or_insert(VolumeClaimUpdateStrategyType::OnDelete);
        s.replicas.get_or_insert(1);
        s.revision_history_limit.get_or_insert(10);
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
        // (rule, spec fields, the defaulted spec's fields besides selector/serviceName/template)
        let all_defaults = json!({
            "replicas": 1, "podManagementPolicy": "OrderedReady", "revisionHistoryLimit": 10,
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate":
                {"partition": 0, "maxUnavailable": 1, "podUpdatePolicy": "ReCreate", "minReadySeconds": 0}},
            "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"},
            "volumeClaimUpdateStrategy": {"type": "OnDelete"}
        });
        let cases: Vec<(&str, serde_json::Value, serde_json::Value)> = vec![
            (
                "a bare spec gets every default",
                json!({}),
                all_defaults.clone(),
            ),
            (
                "OnDelete gets no rollingUpdate",
                json!({"updateStrategy": {"type": "OnDelete"}}),
                {
                    let mut w = all_defaults.clone();
                    w["updateStrategy"] = json!({"type": "OnDelete"});
                    w
                },
            ),
            (
                "in place gets no inPlaceUpdateStrategy (kruise adds it only for CloneSet)",
                json!({"updateStrategy": {"rollingUpdate": {"podUpdatePolicy": "InPlaceIfPossible"}}}),
                {
                    let mut w = all_defaults.clone();
                    w["updateStrategy"]["rollingUpdate"]["podUpdatePolicy"] =
                        json!("InPlaceIfPossible");
                    w
                },
            ),
            (
                "values the user set are kept",
                json!({"replicas": 0, "podManagementPolicy": "Parallel", "revisionHistoryLimit": 2,
                    "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 3,
                        "maxUnavailable": "50%", "podUpdatePolicy": "InPlaceOnly", "minReadySeconds": 9}},
                    "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Delete"},
                    "volumeClaimUpdateStrategy": {"type": "OnPodRollingUpdate"}}),
                json!({"replicas": 0, "podManagementPolicy": "Parallel", "revisionHistoryLimit": 2,
                    "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 3,
                        "maxUnavailable": "50%", "podUpdatePolicy": "InPlaceOnly", "minReadySeconds": 9}},
                    "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Delete", "whenScaled": "Retain"},
                    "volumeClaimUpdateStrategy": {"type": "OnPodRollingUpdate"}}),
            ),
        ];
        for (rule, extra, want) in cases {
            let s = spec(extra);
            let mut got = serde_json::to_value(s.defaulted()).unwrap();
            let m = got.as_object_mut().unwrap();
            for k in ["selector", "serviceName", "template"] {
                m.remove(k);
            }
            assert_eq!(got, want, "{rule}");
            // defaulting twice changes nothing
            assert_eq!(s.defaulted().defaulted(), s.defaulted(), "{rule}");
        }
        assert!(spec(json!({})).validate().is_empty());
    }

    #[test]
    fn reserve_ordinals_skip() {
        let s = spec(json!({"replicas": 3, "reserveOrdinals": [1]}));
        assert_eq!(s.pod_ordinals().unwrap(), vec![0, 2, 3]);
        let s = spec(json!({"replicas": 3, "reserveOrdinals": [0, "2-4"]}));
        assert_eq!(s.pod_ordinals().unwrap(), vec![1, 5, 6]);
        let s = spec(json!({"replicas": 2, "reserveOrdinals": ["4-2"]}));
        assert!(s.validate().has_field("spec"));
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
}
