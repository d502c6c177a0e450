//! SidecarSet (`apps.kruise.io/v1alpha1`, cluster-scoped): the version most OpenKruise YAML is
//! written in, served next to the v1beta1 storage version (kruise-api.md §0, §3).
//!
//! graft works on the v1beta1 model ([`crate::apps::v1beta1::sidecarset`]); this module is the
//! spoke: its own spec (with `namespace`, without `customVersion`). The conversion both ways, as
//! `apis/apps/v1alpha1/sidecarset_conversion.go` does it, is in
//! [`crate::apps::sidecarset_conversion`]. Every other type is shared.

use k8s_openapi::api::core::v1::{LocalObjectReference, Volume};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::apps::v1beta1::sidecarset as beta;
pub use crate::apps::v1beta1::sidecarset::{
    DEFAULT_MAX_UNAVAILABLE, DEFAULT_REVISION_HISTORY_LIMIT, NAMESPACE_NAME_LABEL, PatchPolicy,
    PodInjectPolicy, ResourceExprs, ResourcesExpr, ResourcesPolicy, ShareVolumePolicy,
    ShareVolumePolicyType, SidecarContainer, SidecarContainerUpgradeStrategy,
    SidecarContainerUpgradeType, SidecarSetInjectRevision, SidecarSetInjectRevisionPolicy,
    SidecarSetInjectionStrategy, SidecarSetPatchPodMetadata, SidecarSetStatus,
    SidecarSetUpdateStrategy, SidecarSetUpdateStrategyType, SourceContainerNameSource,
    TransferEnvVar, validate_name,
};
use crate::field::FieldErrors;

/// Desired state of a SidecarSet.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "apps.kruise.io",
    version = "v1alpha1",
    kind = "SidecarSet",
    status = "SidecarSetStatus",
    derive = "PartialEq",
    doc = "SidecarSet injects sidecar containers into matching pods and upgrades them in place.",
    printcolumn(
        name = "MATCHED",
        type_ = "integer",
        json_path = ".status.matchedPods",
        description = "The number of pods matched."
    ),
    printcolumn(
        name = "UPDATED",
        type_ = "integer",
        json_path = ".status.updatedPods",
        description = "The number of pods matched and updated."
    ),
    printcolumn(
        name = "READY",
        type_ = "integer",
        json_path = ".status.readyPods",
        description = "The number of pods matched and ready."
    ),
    printcolumn(
        name = "AGE",
        type_ = "date",
        json_path = ".metadata.creationTimestamp",
        description = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC."
    )
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = crate::apps::v1beta1::sidecarset::spec_rules()))]
pub struct SidecarSetSpec {
    /// Pods to inject into; required and non-empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::apps::v1beta1::sidecarset::selector_schema")]
    pub selector: Option<LabelSelector>,
    /// Only inject into pods of this namespace (v1alpha1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Only inject into namespaces with these labels; unset means all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::apps::v1beta1::sidecarset::selector_schema")]
    pub namespace_selector: Option<LabelSelector>,
    /// Init containers to inject (full core Container plus sidecar options; opaque in the schema).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::apps::v1beta1::sidecarset::sidecar_container_list")]
    pub init_containers: Option<Vec<SidecarContainer>>,
    /// Containers to inject (full core Container plus sidecar options; opaque in the schema).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::apps::v1beta1::sidecarset::sidecar_container_list")]
    pub containers: Option<Vec<SidecarContainer>>,
    /// Volumes added to pods when an injected container mounts them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::opaque_object_list")]
    pub volumes: Option<Vec<Volume>>,
    /// How existing pods' sidecars are upgraded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = {}))]
    pub update_strategy: Option<SidecarSetUpdateStrategy>,
    /// How new pods are injected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub injection_strategy: Option<SidecarSetInjectionStrategy>,
    /// Pull secrets added to new pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_secrets: Option<Vec<LocalObjectReference>>,
    /// Old ControllerRevisions to keep (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = 10))]
    pub revision_history_limit: Option<i32>,
    /// Annotations patched into injected pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch_pod_metadata: Option<Vec<SidecarSetPatchPodMetadata>>,
}

impl SidecarSetSpec {
    /// A copy with OpenKruise's defaults filled in (`SetDefaultsSidecarSet`; the same rules as v1beta1).
    pub fn defaulted(&self) -> Self {
        let mut out = self.clone();
        let converted = crate::apps::sidecarset_conversion::spec_to_v1beta1(self, None).defaulted();
        out.update_strategy = converted.update_strategy;
        out.init_containers = converted.init_containers;
        out.containers = converted.containers;
        out.volumes = converted.volumes;
        out.revision_history_limit = converted.revision_history_limit;
        out.patch_pod_metadata = converted.patch_pod_metadata;
        out.injection_strategy = converted.injection_strategy;
        out
    }

    /// Checks the spec as OpenKruise's validating webhook does (it validates the v1beta1 form).
    pub fn validate(&self) -> FieldErrors {
        crate::apps::sidecarset_conversion::spec_to_v1beta1(self, None).validate()
    }
}

/// Reads a SidecarSet as the API server returns it, in either version, into the v1beta1 model.
///
/// With the CRD's `Webhook` conversion the API server already returns the version asked for; this
/// also accepts an object that carries the other version's fields (as graft's earlier CRD with
/// `conversion: None` stored them: `spec.namespace`, the custom-version label) and converts them
/// as the conversion webhook does (`namespace` wins, an explicit `spec.customVersion` wins over
/// the label).
pub fn from_any_version(value: serde_json::Value) -> Result<beta::SidecarSet, crate::Error> {
    let decode = |e: serde_json::Error| crate::Error::Decode {
        path: "SidecarSet".into(),
        message: e.to_string(),
    };
    let custom_version = value
        .pointer("/spec/customVersion")
        .and_then(serde_json::Value::as_str)
        .filter(|v| !v.is_empty())
        .map(str::to_string);
    let alpha: SidecarSet = serde_json::from_value(value).map_err(decode)?;
    let mut beta = beta::SidecarSet::from(alpha);
    if custom_version.is_some() {
        beta.spec.custom_version = custom_version;
    }
    Ok(beta)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use serde_json::json;
    use std::collections::BTreeMap;

    fn alpha(v: serde_json::Value) -> SidecarSet {
        serde_json::from_value(v).unwrap()
    }

    fn full_spec() -> serde_json::Value {
        json!({
            "selector": {"matchLabels": {"app": "web"}},
            "initContainers": [{"name": "init", "image": "busybox", "restartPolicy": "Always",
                "podInjectPolicy": "AfterAppContainer"}],
            "containers": [{
                "name": "log", "image": "fluent:1", "podInjectPolicy": "AfterAppContainer",
                "upgradeStrategy": {"upgradeType": "HotUpgrade", "hotUpgradeEmptyImage": "empty:1"},
                "shareVolumePolicy": {"type": "enabled"},
                "shareVolumeDevicePolicy": {"type": "disabled"},
                "transferEnv": [{"sourceContainerName": "app", "envName": "TZ"},
                    {"sourceContainerNameFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.labels['main']"}},
                     "envNames": ["A", "B"]}],
                "resourcesPolicy": {"targetContainersMode": "sum", "targetContainersNameRegex": "^app$",
                    "resourcesExpr": {"limits": {"cpu": "cpu*50%"}, "requests": {"memory": "max(memory*50%, 50Mi)"}}}
            }],
            "volumes": [{"name": "logs", "emptyDir": {}}],
            "updateStrategy": {"type": "RollingUpdate", "paused": true, "partition": "20%", "maxUnavailable": 2,
                "priorityStrategy": {"weightPriority": [{"weight": 50, "matchSelector": {"matchLabels": {"a": "b"}}}]},
                "scatterStrategy": [{"key": "zone", "value": "*"}]},
            "injectionStrategy": {"paused": true, "revision": {"customVersion": "v1", "revisionName": "log-abc", "policy": "Partial"}},
            "imagePullSecrets": [{"name": "reg"}],
            "revisionHistoryLimit": 5,
            "patchPodMetadata": [{"annotations": {"a": "b"}, "patchPolicy": "MergePatchJson"}]
        })
    }

    #[test]
    fn v1alpha1_to_v1beta1_maps_namespace_and_custom_version() {
        let mut spec = full_spec();
        spec["namespace"] = json!("prod");
        spec["namespaceSelector"] = json!({"matchLabels": {"team": "x"}});
        let a = alpha(json!({
            "apiVersion": "apps.kruise.io/v1alpha1", "kind": "SidecarSet",
            "metadata": {"name": "log", "labels": {"apps.kruise.io/sidecarset-custom-version": "v2", "k": "v"}},
            "spec": spec,
            "status": {"observedGeneration": 3, "matchedPods": 4, "updatedPods": 2, "readyPods": 3,
                "updatedReadyPods": 1, "latestRevision": "log-abc", "collisionCount": 1}
        }));
        let b = beta::SidecarSet::from(a.clone());
        let v = serde_json::to_value(&b).unwrap();
        assert_eq!(v["apiVersion"], json!("apps.kruise.io/v1beta1"));
        // namespace wins over namespaceSelector
        assert_eq!(
            v["spec"]["namespaceSelector"],
            json!({"matchLabels": {"kubernetes.io/metadata.name": "prod"}})
        );
        assert_eq!(v["spec"]["customVersion"], json!("v2"));
        assert_eq!(v["metadata"]["labels"], json!({"k": "v"}));
        assert_eq!(v["status"], serde_json::to_value(&a.status).unwrap());
        // every other field is carried unchanged
        let mut want = full_spec();
        want["namespaceSelector"] = v["spec"]["namespaceSelector"].clone();
        want["customVersion"] = json!("v2");
        assert_eq!(v["spec"], want);
    }

    #[test]
    fn round_trips() {
        // v1beta1 → v1alpha1 → v1beta1 is the identity.
        let mut spec = full_spec();
        spec["namespaceSelector"] = json!({"matchLabels": {"kubernetes.io/metadata.name": "prod"}});
        spec["customVersion"] = json!("v3");
        let b: beta::SidecarSet = serde_json::from_value(json!({
            "apiVersion": "apps.kruise.io/v1beta1", "kind": "SidecarSet",
            "metadata": {"name": "log", "annotations": {"x": "y"}},
            "spec": spec, "status": {"matchedPods": 1, "updatedPods": 1, "readyPods": 1}
        }))
        .unwrap();
        let a = SidecarSet::from(b.clone());
        let av = serde_json::to_value(&a).unwrap();
        assert_eq!(
            av["metadata"]["labels"],
            json!({"apps.kruise.io/sidecarset-custom-version": "v3"})
        );
        assert!(av["spec"].get("customVersion").is_none());
        assert_eq!(beta::SidecarSet::from(a), b);

        // v1alpha1 → v1beta1 → v1alpha1 keeps everything; `namespace` comes back as the
        // equivalent namespaceSelector (kruise's ConvertFrom does not restore it).
        let mut spec = full_spec();
        spec["namespace"] = json!("prod");
        let a = alpha(json!({
            "apiVersion": "apps.kruise.io/v1alpha1", "kind": "SidecarSet",
            "metadata": {"name": "log", "labels": {"apps.kruise.io/sidecarset-custom-version": "v1"}},
            "spec": spec
        }));
        let back = SidecarSet::from(beta::SidecarSet::from(a.clone()));
        let mut want = a.clone();
        want.spec.namespace = None;
        want.spec.namespace_selector = Some(LabelSelector {
            match_labels: Some(BTreeMap::from([(
                NAMESPACE_NAME_LABEL.to_string(),
                "prod".to_string(),
            )])),
            match_expressions: None,
        });
        assert_eq!(back, want);
        // without `namespace` the round trip is the identity
        let a = alpha(
            json!({"apiVersion": "apps.kruise.io/v1alpha1", "kind": "SidecarSet",
            "metadata": {"name": "log"}, "spec": full_spec()}),
        );
        assert_eq!(SidecarSet::from(beta::SidecarSet::from(a.clone())), a);
    }

    #[test]
    fn stored_objects_of_either_version_read_into_the_model() {
        let stored = json!({
            "apiVersion": "apps.kruise.io/v1beta1", "kind": "SidecarSet",
            "metadata": {"name": "log", "labels": {"apps.kruise.io/sidecarset-custom-version": "old"}},
            "spec": {"namespace": "prod", "selector": {"matchLabels": {"a": "b"}},
                "containers": [{"name": "c", "image": "i"}], "customVersion": "new"}
        });
        let b = from_any_version(stored).unwrap();
        assert_eq!(b.spec.custom_version.as_deref(), Some("new"));
        assert_eq!(
            b.spec.namespace_selector.unwrap().match_labels.unwrap()[NAMESPACE_NAME_LABEL],
            "prod"
        );
        assert!(b.metadata.labels.is_none());
        assert!(from_any_version(json!({"spec": {"containers": "x"}})).is_err());
    }

    #[test]
    fn defaults_are_pinned() {
        let s: SidecarSetSpec = serde_json::from_value(json!({
            "selector": {"matchLabels": {"app": "web"}},
            "namespace": "prod",
            "containers": [{"name": "log", "image": "busybox"}],
            "initContainers": [{"name": "init", "image": "busybox:1.0"}]
        }))
        .unwrap();
        let d = s.defaulted();
        let v = serde_json::to_value(&d).unwrap();
        assert_eq!(v["namespace"], json!("prod"));
        assert_eq!(
            v["updateStrategy"],
            json!({"type": "RollingUpdate", "partition": 0, "maxUnavailable": 1})
        );
        assert_eq!(v["revisionHistoryLimit"], json!(10));
        assert_eq!(
            v["containers"][0],
            json!({"name": "log", "image": "busybox", "imagePullPolicy": "Always",
                "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
                "podInjectPolicy": "BeforeAppContainer", "upgradeStrategy": {"upgradeType": "ColdUpgrade"},
                "shareVolumePolicy": {"type": "disabled"}})
        );
        assert_eq!(
            v["initContainers"][0]["podInjectPolicy"],
            json!("AfterAppContainer")
        );
        assert_eq!(
            v["initContainers"][0]["imagePullPolicy"],
            json!("IfNotPresent")
        );
        assert!(d.validate().is_empty(), "{}", d.validate());
    }
}
