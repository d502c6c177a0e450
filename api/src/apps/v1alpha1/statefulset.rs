//! Advanced StatefulSet (`apps.kruise.io/v1alpha1`, kind `StatefulSet`): the older version,
//! still served next to the v1beta1 storage version (kruise-api.md §0, §4).
//!
//! graft works on the v1beta1 model ([`crate::apps::v1beta1::statefulset`]); this module is the
//! spoke. Its spec and status are v1beta1's without the fields v1beta1 added (`reserveOrdinals`,
//! `lifecycle`, `scaleStrategy`, `persistentVolumeClaimRetentionPolicy`, `ordinals`,
//! `volumeClaimUpdateStrategy`; status `updatedReadyReplicas`, `updatedAvailableReplicas`,
//! `volumeClaims`), as in kruise's `apis/apps/v1alpha1/statefulset_types.go`. The strategy types
//! are field for field the same upstream and are shared. The conversion both ways is in
//! [`crate::apps::statefulset_conversion`].

use k8s_openapi::api::apps::v1::StatefulSetCondition;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use crate::apps::v1beta1::statefulset::{
    MAX_MIN_READY_SECONDS, PodManagementPolicy, RollingUpdateStatefulSetStrategy,
    StatefulSetUpdateStrategy, StatefulSetUpdateStrategyType, UnorderedUpdateStrategy,
};
use crate::field::FieldErrors;

/// Desired state of an Advanced StatefulSet (v1alpha1).
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "apps.kruise.io",
    version = "v1alpha1",
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
}

/// Observed state of an Advanced StatefulSet (v1alpha1).
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
}

impl StatefulSetSpec {
    /// A copy with OpenKruise's defaults: kruise defaults the v1beta1 form
    /// (`SetDefaultsStatefulSet`) and converts back, so the v1beta1-only defaults
    /// (PVC retention, volumeClaimUpdateStrategy) do not appear here.
    pub fn defaulted(&self) -> Self {
        crate::apps::statefulset_conversion::spec_to_v1alpha1(
            crate::apps::statefulset_conversion::spec_to_v1beta1(self.clone()).defaulted(),
        )
    }

    /// Checks the spec as OpenKruise's validating webhook does (it validates the v1beta1 form,
    /// after the mutating webhook's defaults).
    pub fn validate(&self) -> FieldErrors {
        crate::apps::statefulset_conversion::spec_to_v1beta1(self.clone()).validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use serde_json::json;

    fn keys(v: &serde_json::Value) -> Vec<String> {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    }

    #[test]
    fn field_names_are_kruises_v1alpha1() {
        let spec: StatefulSetSpec = serde_json::from_value(json!({
            "replicas": 3, "selector": {"matchLabels": {"app": "db"}},
            "template": {"metadata": {"labels": {"app": "db"}}},
            "volumeClaimTemplates": [{"metadata": {"name": "data"}}],
            "serviceName": "db", "podManagementPolicy": "Parallel",
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {
                "partition": 1, "maxUnavailable": "50%", "podUpdatePolicy": "InPlaceIfPossible",
                "paused": true, "unorderedUpdate": {"priorityStrategy": {"orderPriority": [{"orderedKey": "k"}]}},
                "inPlaceUpdateStrategy": {"gracePeriodSeconds": 5}, "minReadySeconds": 3}},
            "revisionHistoryLimit": 4
        }))
        .unwrap();
        let v = serde_json::to_value(&spec).unwrap();
        assert_eq!(
            keys(&v),
            [
                "podManagementPolicy",
                "replicas",
                "revisionHistoryLimit",
                "selector",
                "serviceName",
                "template",
                "updateStrategy",
                "volumeClaimTemplates"
            ]
        );
        assert_eq!(
            keys(&v["updateStrategy"]["rollingUpdate"]),
            [
                "inPlaceUpdateStrategy",
                "maxUnavailable",
                "minReadySeconds",
                "partition",
                "paused",
                "podUpdatePolicy",
                "unorderedUpdate"
            ]
        );
        let status = serde_json::to_value(StatefulSetStatus::default()).unwrap();
        assert_eq!(
            keys(&status),
            [
                "availableReplicas",
                "currentReplicas",
                "observedGeneration",
                "readyReplicas",
                "replicas",
                "updatedReplicas"
            ]
        );
    }

    #[test]
    fn defaults_are_the_v1beta1_ones_without_the_v1beta1_fields() {
        let spec: StatefulSetSpec = serde_json::from_value(json!({
            "selector": {"matchLabels": {"app": "db"}},
            "template": {"metadata": {"labels": {"app": "db"}}}
        }))
        .unwrap();
        let v = serde_json::to_value(spec.defaulted()).unwrap();
        assert_eq!(
            v,
            json!({
                "replicas": 1, "selector": {"matchLabels": {"app": "db"}},
                "template": {"metadata": {"labels": {"app": "db"}}},
                "podManagementPolicy": "OrderedReady", "revisionHistoryLimit": 10,
                "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {
                    "partition": 0, "maxUnavailable": 1, "podUpdatePolicy": "ReCreate", "minReadySeconds": 0}}
            })
        );
        assert!(spec.validate().is_empty(), "{}", spec.validate());
    }
}
