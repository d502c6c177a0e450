//! SidecarSet (`apps.kruise.io/v1beta1`, cluster-scoped, the storage version as in OpenKruise
//! 1.9): sidecar containers injected into matching pods and upgraded in place (kruise-api.md §3).
//!
//! This is graft's internal model of a SidecarSet; `apps.kruise.io/v1alpha1` objects are converted
//! to it ([`crate::apps::v1alpha1::sidecarset`]). Field names are OpenKruise's. The container
//! types are shared by both versions (they are identical upstream).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, LocalObjectReference, ObjectFieldSelector, Pod, Probe, ResourceRequirements, Volume,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::apps::common::{UpdatePriorityStrategy, UpdateScatterTerm};
use crate::field::{FieldError, FieldErrors};
use crate::{intstr, labels};

/// Default `updateStrategy.maxUnavailable`.
pub const DEFAULT_MAX_UNAVAILABLE: i32 = 1;
/// Default `revisionHistoryLimit`.
pub const DEFAULT_REVISION_HISTORY_LIMIT: i32 = 10;
/// Longest SidecarSet name.
pub const NAME_MAX_LEN: usize = 63;
/// Standard namespace label the v1alpha1 `namespace` field converts to.
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// Desired state of a SidecarSet.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "apps.kruise.io",
    version = "v1beta1",
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
    #[schemars(schema_with = "selector_schema")]
    pub selector: Option<LabelSelector>,
    /// Only inject into namespaces with these labels; unset means all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "selector_schema")]
    pub namespace_selector: Option<LabelSelector>,
    /// v1alpha1's `namespace`, as an object written at v1alpha1 keeps it in storage (the CRD
    /// converts with strategy `None`; [`crate::crds::sidecarset`] declares the field in this
    /// version's schema). Read through [`SidecarSet::converted`], which turns it into
    /// `namespaceSelector` as OpenKruise's conversion does; never written by graft.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(skip)]
    pub namespace: Option<String>,
    /// Init containers to inject (full core Container plus sidecar options; opaque in the schema).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "sidecar_container_list")]
    pub init_containers: Option<Vec<SidecarContainer>>,
    /// Containers to inject (full core Container plus sidecar options; opaque in the schema).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "sidecar_container_list")]
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
    /// Custom version of this SidecarSet (v1alpha1: label `apps.kruise.io/sidecarset-custom-version`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_version: Option<String>,
}

/// The CEL rules on a SidecarSet spec (both versions), with OpenKruise's webhook messages.
pub(crate) fn spec_rules() -> serde_json::Value {
    serde_json::json!([
        {
            "rule": "has(self.selector)",
            "message": "no selector defined for SidecarSet",
            "fieldPath": ".selector",
            "reason": "FieldValueRequired"
        },
        {
            "rule": "(has(self.containers) && size(self.containers) > 0) || (has(self.initContainers) && size(self.initContainers) > 0)",
            "message": "no initContainer or container defined for SidecarSet",
            "reason": "FieldValueRequired"
        },
        {
            "rule": "!has(self.initContainers) || !has(self.updateStrategy) || !has(self.updateStrategy.type) || self.updateStrategy.type != 'RollingUpdate' || !self.initContainers.exists(c, has(c.restartPolicy) && c.restartPolicy == 'Always')",
            "message": "The initContainer in-place upgrade is not currently supported.",
            "fieldPath": ".updateStrategy",
            "reason": "FieldValueRequired"
        },
        {
            "rule": "!has(self.containers) || self.containers.all(c, !has(c.podInjectPolicy) || c.podInjectPolicy in ['BeforeAppContainer', 'AfterAppContainer'])",
            "message": "unsupported pod inject policy",
            "fieldPath": ".containers"
        },
        {
            "rule": "!has(self.containers) || self.containers.all(c, !has(c.shareVolumePolicy) || !has(c.shareVolumePolicy.type) || c.shareVolumePolicy.type in ['enabled', 'disabled'])",
            "message": "unsupported share volume policy",
            "fieldPath": ".containers"
        },
        {
            "rule": "(has(self.containers) ? self.containers : []).all(c, !has(c.upgradeStrategy) || !has(c.upgradeStrategy.upgradeType) || c.upgradeStrategy.upgradeType != 'HotUpgrade' || (has(c.upgradeStrategy.hotUpgradeEmptyImage) && c.upgradeStrategy.hotUpgradeEmptyImage != ''))",
            "message": "HotUpgrade needs upgradeStrategy.hotUpgradeEmptyImage",
            "fieldPath": ".containers"
        },
        {
            "rule": "(has(self.containers) ? self.containers : []).all(c, !has(c.resourcesPolicy) || !has(c.resources) || ((!has(c.resources.limits) || size(c.resources.limits) == 0) && (!has(c.resources.requests) || size(c.resources.requests) == 0))) && (has(self.initContainers) ? self.initContainers : []).all(c, !has(c.resourcesPolicy) || !has(c.resources) || ((!has(c.resources.limits) || size(c.resources.limits) == 0) && (!has(c.resources.requests) || size(c.resources.requests) == 0)))",
            "message": "resourcesPolicy and resources cannot be configured together",
            "fieldPath": ".containers"
        },
        {
            "rule": "(has(self.initContainers) ? self.initContainers : []).all(c, !has(c.resourcesPolicy) || (has(c.restartPolicy) && c.restartPolicy == 'Always'))",
            "message": "resourcesPolicy is only supported for containers with RestartPolicy Always",
            "fieldPath": ".initContainers"
        },
        {
            "rule": "!has(self.patchPodMetadata) || self.patchPodMetadata.all(p, has(p.annotations) && size(p.annotations) > 0)",
            "message": "no annotations defined for SidecarSet",
            "fieldPath": ".patchPodMetadata",
            "reason": "FieldValueRequired"
        }
    ])
}

pub(crate) fn selector_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let mut s = g.subschema_for::<LabelSelector>();
    s.insert(
        "x-kubernetes-validations".into(),
        serde_json::json!([{
            "rule": "(has(self.matchLabels) && size(self.matchLabels) > 0) || (has(self.matchExpressions) && size(self.matchExpressions) > 0)",
            "message": "empty selector is not valid for sidecarset."
        }]),
    );
    s
}

/// A container list kept opaque (`x-kubernetes-preserve-unknown-fields`) but with the few fields
/// the CEL rules read declared, so the API server can check them. Keyed by name (as a pod's
/// containers are), so the API server refuses a duplicated name itself: a CEL rule comparing every
/// pair exceeds its cost budget. `maxItems: 256` is graft's bound (OpenKruise has none): without
/// one the linear rules over the list already exceed the budget.
pub(crate) fn sidecar_container_list(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "array",
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["name"],
        "maxItems": 256,
        "items": {
            "type": "object",
            "x-kubernetes-preserve-unknown-fields": true,
            "required": ["name"],
            "properties": {
                "name": {"type": "string"},
                "restartPolicy": {"type": "string"},
                "podInjectPolicy": {"type": "string"},
                "shareVolumePolicy": {
                    "type": "object",
                    "x-kubernetes-preserve-unknown-fields": true,
                    "properties": {"type": {"type": "string"}}
                },
                "upgradeStrategy": {
                    "type": "object",
                    "x-kubernetes-preserve-unknown-fields": true,
                    "properties": {
                        "upgradeType": {"type": "string", "enum": ["ColdUpgrade", "HotUpgrade"]},
                        "hotUpgradeEmptyImage": {"type": "string"}
                    }
                },
                "resources": {
                    "type": "object",
                    "x-kubernetes-preserve-unknown-fields": true,
                    "properties": {
                        "limits": {"type": "object", "additionalProperties": {"x-kubernetes-int-or-string": true}},
                        "requests": {"type": "object", "additionalProperties": {"x-kubernetes-int-or-string": true}}
                    }
                },
                "resourcesPolicy": {
                    "type": "object",
                    "x-kubernetes-preserve-unknown-fields": true,
                    "required": ["targetContainersMode", "resourcesExpr"],
                    "properties": {
                        "targetContainersMode": {"type": "string", "enum": ["sum", "max"]},
                        "targetContainersNameRegex": {"type": "string", "default": ".*"},
                        "resourcesExpr": {
                            "type": "object",
                            "x-kubernetes-preserve-unknown-fields": true
                        }
                    }
                }
            }
        }
    })
}

/// A sidecar: a full core Container plus injection and upgrade options.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SidecarContainer {
    /// The container itself.
    #[serde(flatten)]
    pub container: Container,
    /// `BeforeAppContainer` (default for containers) or `AfterAppContainer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_inject_policy: Option<PodInjectPolicy>,
    /// Cold or hot upgrade.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade_strategy: Option<SidecarContainerUpgradeStrategy>,
    /// Share the app containers' volume mounts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share_volume_policy: Option<ShareVolumePolicy>,
    /// Share the app containers' volume devices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share_volume_device_policy: Option<ShareVolumePolicy>,
    /// Env vars copied from app containers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer_env: Option<Vec<TransferEnvVar>>,
    /// Sidecar resources computed from the app containers (exclusive with `resources`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources_policy: Option<ResourcesPolicy>,
}

impl SidecarContainer {
    /// The container name.
    pub fn name(&self) -> &str {
        &self.container.name
    }

    /// Whether this is a Kubernetes native sidecar (an init container with `restartPolicy: Always`).
    pub fn is_native_sidecar(&self) -> bool {
        self.container.restart_policy.as_deref() == Some("Always")
    }

    /// Whether the container is upgraded with a hot-upgrade twin.
    pub fn is_hot_upgrade(&self) -> bool {
        self.upgrade_strategy.as_ref().and_then(|u| u.upgrade_type)
            == Some(SidecarContainerUpgradeType::HotUpgrade)
    }

    /// `upgradeStrategy.hotUpgradeEmptyImage`, empty when unset.
    pub fn hot_upgrade_empty_image(&self) -> &str {
        self.upgrade_strategy
            .as_ref()
            .and_then(|u| u.hot_upgrade_empty_image.as_deref())
            .unwrap_or_default()
    }

    /// Whether `shareVolumePolicy.type` is `enabled`.
    pub fn shares_volume_mounts(&self) -> bool {
        self.share_volume_policy.as_ref().and_then(|p| p.type_)
            == Some(ShareVolumePolicyType::Enabled)
    }

    /// Whether `shareVolumeDevicePolicy.type` is `enabled`.
    pub fn shares_volume_devices(&self) -> bool {
        self.share_volume_device_policy
            .as_ref()
            .and_then(|p| p.type_)
            == Some(ShareVolumePolicyType::Enabled)
    }
}

/// Where a sidecar goes among the pod's containers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PodInjectPolicy {
    /// Before the app containers.
    BeforeAppContainer,
    /// After the app containers.
    AfterAppContainer,
}

/// A sidecar's upgrade strategy.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SidecarContainerUpgradeStrategy {
    /// `ColdUpgrade` (default) or `HotUpgrade`; immutable per container name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade_type: Option<SidecarContainerUpgradeType>,
    /// Image of the idle twin for `HotUpgrade`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hot_upgrade_empty_image: Option<String>,
}

/// Upgrade type of a sidecar.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SidecarContainerUpgradeType {
    /// Restart the container with the new image.
    #[default]
    ColdUpgrade,
    /// Start the new version in an idle twin, then reset the old one.
    HotUpgrade,
}

/// `shareVolumePolicy` / `shareVolumeDevicePolicy`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ShareVolumePolicy {
    /// `enabled` or `disabled` (default).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub type_: Option<ShareVolumePolicyType>,
}

/// Whether volumes are shared.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ShareVolumePolicyType {
    /// Copy the app containers' mounts.
    Enabled,
    /// Don't (default).
    #[default]
    Disabled,
}

/// An env var copied from an app container.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransferEnvVar {
    /// Source container name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_container_name: Option<String>,
    /// Source container name taken from a pod label/annotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_container_name_from: Option<SourceContainerNameSource>,
    /// One env var name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_name: Option<String>,
    /// Several env var names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_names: Option<Vec<String>>,
}

/// Where the source container name comes from.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceContainerNameSource {
    /// A pod field (`metadata.labels['x']`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field_ref: Option<ObjectFieldSelector>,
}

/// Sidecar resources computed from app containers (OpenKruise 1.9).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourcesPolicy {
    /// `sum` or `max` over the target containers.
    pub target_containers_mode: String,
    /// Regex of target container names (default `.*`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_containers_name_regex: Option<String>,
    /// Expressions for limits and requests.
    pub resources_expr: ResourcesExpr,
}

/// `resourcesExpr`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourcesExpr {
    /// Limit expressions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<ResourceExprs>,
    /// Request expressions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<ResourceExprs>,
}

/// cpu and memory expressions.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ResourceExprs {
    /// CPU expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
    /// Memory expression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
}

/// SidecarSet `updateStrategy`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "!has(self.type) || self.type != 'RollingUpdate' || !has(self.selector) || !has(self.partition) || (type(self.partition) == int ? self.partition == 0 : false)",
    "message": "Partition and Selector cannot be used together",
    "fieldPath": ".partition"
}]))]
pub struct SidecarSetUpdateStrategy {
    /// `RollingUpdate` (default) or `NotUpdate`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "RollingUpdate"))]
    pub type_: Option<SidecarSetUpdateStrategyType>,
    /// Stop upgrading existing pods (injection goes on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused: Option<bool>,
    /// Only upgrade matching pods; not with a non-zero partition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "selector_schema")]
    pub selector: Option<LabelSelector>,
    /// Number or percent of matched pods left on the old version (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = 0, "x-kubernetes-validations" = [{
        "rule": "type(self) == int ? self >= 0 : self.matches('^(100|[1-9]?[0-9])%$')",
        "message": "must be a non-negative integer or a percentage from 0% to 100%"
    }]))]
    pub partition: Option<IntOrString>,
    /// Pods upgraded at once (default 1; percent rounds up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = 1, "x-kubernetes-validations" = [{
        "rule": "type(self) == int ? self >= 0 : self.matches('^(100|[1-9]?[0-9])%$')",
        "message": "must be a non-negative integer or a percentage from 0% to 100%"
    }]))]
    pub max_unavailable: Option<IntOrString>,
    /// Upgrade order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_strategy: Option<UpdatePriorityStrategy>,
    /// Spread terms (`value: "*"` allowed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scatter_strategy: Option<Vec<UpdateScatterTerm>>,
}

/// SidecarSet `updateStrategy.type`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum SidecarSetUpdateStrategyType {
    /// Upgrade existing pods (default).
    #[default]
    RollingUpdate,
    /// Never upgrade existing pods.
    NotUpdate,
}

/// SidecarSet `injectionStrategy`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SidecarSetInjectionStrategy {
    /// Stop injecting into new pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused: Option<bool>,
    /// Inject a historic revision instead of the latest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<SidecarSetInjectRevision>,
}

/// A historic revision to inject.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "has(self.customVersion) || has(self.revisionName)",
    "message": "revisionName and customVersion cannot be empty simultaneously"
}]))]
pub struct SidecarSetInjectRevision {
    /// Revision labelled with this custom version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_version: Option<String>,
    /// ControllerRevision name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision_name: Option<String>,
    /// `Always` (default) or `Partial`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "Always"))]
    pub policy: Option<SidecarSetInjectRevisionPolicy>,
}

/// Which pods get the historic revision.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum SidecarSetInjectRevisionPolicy {
    /// All new pods.
    #[default]
    Always,
    /// Depending on updateStrategy selector/partition.
    Partial,
}

/// Annotations patched into injected pods.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SidecarSetPatchPodMetadata {
    /// Annotations to patch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// `Retain` (default), `Overwrite` or `MergePatchJson`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "Retain"))]
    pub patch_policy: Option<PatchPolicy>,
}

/// How patched annotations merge with existing ones.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum PatchPolicy {
    /// Keep existing values.
    #[default]
    Retain,
    /// Replace existing values.
    Overwrite,
    /// JSON-merge into the existing value.
    MergePatchJson,
}

/// Observed state of a SidecarSet.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct SidecarSetStatus {
    /// Generation the status was computed for.
    pub observed_generation: i64,
    /// Active pods matched and injected.
    pub matched_pods: i32,
    /// Pods whose sidecars match the latest hash.
    pub updated_pods: i32,
    /// Pods consistent, running and ready.
    pub ready_pods: i32,
    /// Updated pods that are ready.
    pub updated_ready_pods: i32,
    /// Latest ControllerRevision name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latest_revision: Option<String>,
    /// Hash collisions when naming revisions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub collision_count: Option<i32>,
}

impl SidecarSetSpec {
    /// A copy with OpenKruise's mutating-webhook defaults filled in (`SetDefaultsSidecarSetV1beta1`):
    /// update strategy, sidecar options, container defaults as Kubernetes sets them, volume
    /// defaults, history limit, patch policy and inject revision policy.
    pub fn defaulted(&self) -> Self {
        let mut s = self.clone();
        let us = s.update_strategy.get_or_insert_with(Default::default);
        us.type_
            .get_or_insert(SidecarSetUpdateStrategyType::RollingUpdate);
        us.max_unavailable
            .get_or_insert(IntOrString::Int(DEFAULT_MAX_UNAVAILABLE));
        us.partition.get_or_insert(IntOrString::Int(0));
        for c in s.init_containers.iter_mut().flatten() {
            default_sidecar(c, PodInjectPolicy::AfterAppContainer);
        }
        for c in s.containers.iter_mut().flatten() {
            default_sidecar(c, PodInjectPolicy::BeforeAppContainer);
        }
        for v in s.volumes.iter_mut().flatten() {
            default_volume(v);
        }
        s.revision_history_limit
            .get_or_insert(DEFAULT_REVISION_HISTORY_LIMIT);
        for p in s.patch_pod_metadata.iter_mut().flatten() {
            p.patch_policy.get_or_insert(PatchPolicy::Retain);
        }
        if let Some(r) = s
            .injection_strategy
            .as_mut()
            .and_then(|i| i.revision.as_mut())
        {
            r.policy
                .get_or_insert(SidecarSetInjectRevisionPolicy::Always);
        }
        s
    }

    /// `containers`, empty when unset.
    pub fn containers(&self) -> &[SidecarContainer] {
        self.containers.as_deref().unwrap_or_default()
    }

    /// `initContainers`, empty when unset.
    pub fn init_containers(&self) -> &[SidecarContainer] {
        self.init_containers.as_deref().unwrap_or_default()
    }

    /// `volumes`, empty when unset.
    pub fn volumes(&self) -> &[Volume] {
        self.volumes.as_deref().unwrap_or_default()
    }

    /// `updateStrategy.type`, `RollingUpdate` when unset.
    pub fn update_strategy_type(&self) -> SidecarSetUpdateStrategyType {
        self.update_strategy
            .as_ref()
            .and_then(|u| u.type_)
            .unwrap_or_default()
    }

    /// Checks the spec as OpenKruise's validating webhook does (`validateSidecarSetSpec`), without
    /// the checks that need other objects (see the admission server for those). Messages are
    /// kruise's.
    pub fn validate(&self) -> FieldErrors {
        let mut errs = FieldErrors::default();
        let rolling = self.update_strategy_type() == SidecarSetUpdateStrategyType::RollingUpdate;
        if rolling && self.init_containers().iter().any(|c| c.is_native_sidecar()) {
            errs.push(FieldError::required(
                "spec.updateStrategy",
                "The initContainer in-place upgrade is not currently supported.",
            ));
        }
        match &self.selector {
            None => errs.push(FieldError::required(
                "spec.selector",
                "no selector defined for SidecarSet",
            )),
            Some(s) => errs.extend(validate_selector(s, "spec.selector")),
        }
        if let Some(s) = &self.namespace_selector {
            errs.extend(validate_selector(s, "spec.namespaceSelector"));
        }
        if let Some(r) = self
            .injection_strategy
            .as_ref()
            .and_then(|i| i.revision.as_ref())
            && r.custom_version.is_none()
            && r.revision_name.is_none()
        {
            errs.push(FieldError::invalid(
                "revision",
                "{}",
                "revisionName and customVersion cannot be empty simultaneously",
            ));
        }
        errs.extend(self.validate_update_strategy());
        if self.containers().is_empty() && self.init_containers().is_empty() {
            errs.push(FieldError::required(
                "spec",
                "no initContainer or container defined for SidecarSet",
            ));
        }
        errs.extend(self.validate_containers());
        let mut keys = std::collections::BTreeSet::new();
        for p in self.patch_pod_metadata.iter().flatten() {
            let annotations = p.annotations.clone().unwrap_or_default();
            if annotations.is_empty() {
                errs.push(FieldError::required(
                    "spec.patchPodMetadata",
                    "no annotations defined for SidecarSet",
                ));
            }
            for k in annotations.keys() {
                if !keys.insert(k.clone()) {
                    errs.push(FieldError::required(
                        "spec.patchPodMetadata",
                        &format!("patch annotation[{k}] already exist"),
                    ));
                }
            }
        }
        if let Some(l) = self.revision_history_limit
            && l < 0
        {
            errs.push(FieldError::invalid(
                "spec.revisionHistoryLimit",
                l,
                "must be greater than or equal to 0",
            ));
        }
        errs
    }

    fn validate_update_strategy(&self) -> FieldErrors {
        let mut errs = FieldErrors::default();
        let us = self.update_strategy.clone().unwrap_or_default();
        if us.type_.unwrap_or_default() != SidecarSetUpdateStrategyType::RollingUpdate {
            return errs;
        }
        let partition_set = match &us.partition {
            None | Some(IntOrString::Int(0)) => false,
            Some(_) => true,
        };
        if partition_set && us.selector.is_some() {
            errs.push(FieldError::invalid(
                "updateStrategy",
                "{}",
                "Partition and Selector cannot be used together",
            ));
        }
        if let Some(s) = &us.selector {
            errs.extend(validate_selector(s, "spec.updateStrategy.selector"));
        }
        for (name, v) in [
            ("partition", &us.partition),
            ("maxUnavailable", &us.max_unavailable),
        ] {
            if let Some(v) = v {
                errs.extend(intstr::validate_int_or_percent(
                    v,
                    &format!("spec.updateStrategy.{name}"),
                ));
            }
        }
        if let Some(p) = &us.priority_strategy {
            errs.extend(p.validate("spec.updateStrategy.priorityStrategy"));
        }
        for (i, t) in us.scatter_strategy.iter().flatten().enumerate() {
            if t.key.is_empty() || t.value.is_empty() {
                errs.push(FieldError::required(
                    "spec.updateStrategy.scatterStrategy",
                    &format!("key and value of term {i} cannot be empty"),
                ));
            }
        }
        errs
    }

    fn validate_containers(&self) -> FieldErrors {
        let mut errs = FieldErrors::default();
        for (i, c) in self.init_containers().iter().enumerate() {
            let field = format!("spec.initContainers[{i}]");
            if let Some(p) = &c.resources_policy {
                if !c.is_native_sidecar() {
                    errs.push(FieldError::invalid(
                        &format!("{field}.resourcesPolicy"),
                        &p.target_containers_mode,
                        "resourcesPolicy is only supported for containers with RestartPolicy Always",
                    ));
                }
                errs.extend(validate_resources_policy(
                    c,
                    &format!("{field}.resourcesPolicy"),
                ));
            }
        }
        for (i, c) in self.containers().iter().enumerate() {
            let field = format!("spec.containers[{i}]");
            for t in c.transfer_env.iter().flatten() {
                if let Some(fr) = t
                    .source_container_name_from
                    .as_ref()
                    .and_then(|s| s.field_ref.as_ref())
                {
                    errs.extend(validate_name_field_ref(
                        fr,
                        &format!("{field}.transferEnv.fieldRef"),
                    ));
                }
            }
            if c.resources_policy.is_some() {
                errs.extend(validate_resources_policy(
                    c,
                    &format!("{field}.resourcesPolicy"),
                ));
            }
            if c.is_hot_upgrade() && c.hot_upgrade_empty_image().is_empty() {
                errs.push(FieldError::required(
                    &format!("{field}.upgradeStrategy.hotUpgradeEmptyImage"),
                    "HotUpgrade needs hotUpgradeEmptyImage",
                ));
            }
        }
        for (list, field) in [
            (self.init_containers(), "spec.initContainers"),
            (self.containers(), "spec.containers"),
        ] {
            let plain: Vec<Container> = list.iter().map(|c| c.container.clone()).collect();
            errs.extend(crate::apps::common::validate_containers(
                &plain, field, false,
            ));
        }
        errs
    }
}

fn validate_selector(selector: &LabelSelector, field: &str) -> FieldErrors {
    let mut errs = FieldErrors::default();
    if crate::selector::is_empty(selector) {
        errs.push(FieldError::invalid(
            field,
            "{}",
            "empty selector is not valid for sidecarset.",
        ));
    }
    errs
}

fn validate_name_field_ref(fr: &ObjectFieldSelector, field: &str) -> FieldErrors {
    let mut errs = FieldErrors::default();
    if fr.api_version.as_deref().is_none_or(str::is_empty) {
        errs.push(FieldError::required(&format!("{field}.apiVersion"), ""));
        return errs;
    }
    if fr.field_path.is_empty() {
        errs.push(FieldError::required(&format!("{field}.fieldPath"), ""));
        return errs;
    }
    match split_subscripted_path(&fr.field_path) {
        Some((path, _)) if path == "metadata.annotations" || path == "metadata.labels" => {}
        Some((path, _)) => errs.push(FieldError::invalid(
            field,
            path,
            "does not support subscript",
        )),
        None => errs.push(FieldError::invalid(
            &format!("{field}.fieldPath"),
            &fr.field_path,
            &format!(
                "error converting fieldPath: field label not supported: {}",
                fr.field_path
            ),
        )),
    }
    errs
}

/// Splits `metadata.labels['key']` into (`metadata.labels`, `key`), as Kubernetes'
/// `fieldpath.SplitMaybeSubscriptedPath` does.
pub fn split_subscripted_path(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_suffix("']")?;
    let (p, key) = rest.split_once("['")?;
    Some((p, key))
}

fn validate_resources_policy(c: &SidecarContainer, field: &str) -> FieldErrors {
    let mut errs = FieldErrors::default();
    let Some(policy) = &c.resources_policy else {
        return errs;
    };
    let r = c.container.resources.clone().unwrap_or_default();
    if r.limits.is_some_and(|l| !l.is_empty()) || r.requests.is_some_and(|l| !l.is_empty()) {
        errs.push(FieldError::invalid(
            field,
            &policy.target_containers_mode,
            "resourcesPolicy and resources cannot be configured together",
        ));
        return errs;
    }
    if !matches!(policy.target_containers_mode.as_str(), "sum" | "max") {
        errs.push(FieldError::not_supported(
            &format!("{field}.targetContainersMode"),
            &policy.target_containers_mode,
            &["sum", "max"],
        ));
    }
    if policy
        .target_containers_name_regex
        .as_deref()
        .is_some_and(str::is_empty)
    {
        errs.push(FieldError::required(
            &format!("{field}.targetContainersNameRegex"),
            "invalid empty regex",
        ));
    }
    let e = &policy.resources_expr;
    if e.limits.is_none() && e.requests.is_none() {
        errs.push(FieldError::invalid(
            &format!("{field}.resourcesExpr"),
            "{}",
            "at least one of limits or requests must be configured",
        ));
    }
    errs
}

/// Checks a SidecarSet name as OpenKruise does: `^[a-zA-Z0-9\-]+$`, at most 63 characters.
pub fn validate_name(name: &str) -> FieldErrors {
    let mut errs = FieldErrors::default();
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        errs.push(FieldError::invalid(
            "metadata.name",
            name,
            "sidecarset name must consist of alphanumeric characters or '-' (e.g. 'example-com', regex used for validation is '^[a-zA-Z0-9\\-]+$')",
        ));
    }
    if name.len() > NAME_MAX_LEN {
        errs.push(FieldError::invalid(
            "metadata.name",
            name,
            "must be no more than 63 characters",
        ));
    }
    errs
}

impl SidecarSet {
    /// Whether this is a canary SidecarSet, and the base it replaces
    /// (`apps.kruise.io/sidecarset-canary: "true"` with a non-empty `apps.kruise.io/sidecarset-base`).
    pub fn canary_base(&self) -> Option<&str> {
        let a = self.metadata.annotations.as_ref()?;
        let base = a.get(labels::SIDECARSET_BASE).map(String::as_str)?;
        (a.get(labels::SIDECARSET_CANARY).map(String::as_str) == Some("true") && !base.is_empty())
            .then_some(base)
    }

    /// The SidecarSet annotation `kruise.io/sidecarset-hash`, empty when unset.
    pub fn hash(&self) -> &str {
        self.annotation(labels::SIDECARSET_HASH)
    }

    /// The SidecarSet annotation `kruise.io/sidecarset-hash-without-image`, empty when unset.
    pub fn hash_without_image(&self) -> &str {
        self.annotation(labels::SIDECARSET_HASH_WITHOUT_IMAGE)
    }

    fn annotation(&self, key: &str) -> &str {
        self.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(key))
            .map(String::as_str)
            .unwrap_or_default()
    }

    /// Checks the object as OpenKruise's validating webhook does without other objects: the name,
    /// a canary that names itself as base or rolls out, and the spec.
    pub fn validate(&self) -> FieldErrors {
        let mut errs = validate_name(self.metadata.name.as_deref().unwrap_or_default());
        if let Some(base) = self.canary_base() {
            if Some(base) == self.metadata.name.as_deref() {
                errs.push(FieldError::invalid(
                    "metadata",
                    "{}",
                    "base sidecarSet cannot be itself",
                ));
            }
            if self.spec.update_strategy_type() != SidecarSetUpdateStrategyType::NotUpdate {
                errs.push(FieldError::invalid(
                    "metadata",
                    "{}",
                    "RollingUpdate is not supported for canary sidecarSet",
                ));
            }
        }
        errs.extend(self.spec.validate());
        errs
    }
}

/// The label a pod opts out of graft's admission webhooks with (`graft.dev/admission: disabled`).
pub const ADMISSION_OPT_OUT_LABEL: &str = "graft.dev/admission";

/// Whether `pod` should carry the sidecars of the SidecarSet whose metadata is `set` and does
/// not: a live pod (not deleting, not finished) created after the SidecarSet, without its name in
/// `kruise.io/sidecarset-injected-list`, and not opted out of graft's admission. OpenKruise would
/// have refused to create such a pod; graft's webhook fails open, so a pod created while it did
/// not answer starts without the sidecars. Whether the SidecarSet selects the pod (selector and
/// namespaceSelector) is the caller's check.
pub fn missed_injection(set: &ObjectMeta, pod: &Pod) -> bool {
    let finished = matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    );
    if pod.metadata.deletion_timestamp.is_some() || finished {
        return false;
    }
    let after_set = match (&set.creation_timestamp, &pod.metadata.creation_timestamp) {
        (Some(s), Some(p)) => p.0 > s.0,
        _ => false,
    };
    let name = set.name.as_deref().unwrap_or_default();
    let injected = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(labels::SIDECARSET_INJECTED_LIST))
        .is_some_and(|v| v.split(',').any(|n| n == name));
    let opted_out = pod
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(ADMISSION_OPT_OUT_LABEL))
        .is_some_and(|v| v == "disabled");
    after_set && !injected && !opted_out
}

fn default_sidecar(c: &mut SidecarContainer, policy: PodInjectPolicy) {
    c.pod_inject_policy.get_or_insert(policy);
    c.upgrade_strategy
        .get_or_insert_with(Default::default)
        .upgrade_type
        .get_or_insert(SidecarContainerUpgradeType::ColdUpgrade);
    c.share_volume_policy
        .get_or_insert_with(Default::default)
        .type_
        .get_or_insert(ShareVolumePolicyType::Disabled);
    default_container(&mut c.container);
    for t in c.transfer_env.iter_mut().flatten() {
        if let Some(fr) = t
            .source_container_name_from
            .as_mut()
            .and_then(|s| s.field_ref.as_mut())
        {
            default_field_ref(fr);
        }
    }
}

fn set_if_empty(field: &mut Option<String>, value: &str) {
    if field.as_deref().is_none_or(str::is_empty) {
        *field = Some(value.to_string());
    }
}

fn default_field_ref(fr: &mut ObjectFieldSelector) {
    set_if_empty(&mut fr.api_version, "v1");
}

/// Kubernetes' `SetDefaults_Container` plus the parts kruise applies to a sidecar
/// (`setDefaultContainer`): pull policy from the tag, termination message, port protocol, env
/// field refs, resource lists rounded up to milli units, liveness/readiness probe and HTTP
/// handler defaults.
pub fn default_container(c: &mut Container) {
    if c.image_pull_policy.as_deref().is_none_or(str::is_empty) {
        let policy = if image_tag_is_latest(c.image.as_deref().unwrap_or_default()) {
            "Always"
        } else {
            "IfNotPresent"
        };
        c.image_pull_policy = Some(policy.into());
    }
    set_if_empty(&mut c.termination_message_path, "/dev/termination-log");
    set_if_empty(&mut c.termination_message_policy, "File");
    for p in c.ports.iter_mut().flatten() {
        set_if_empty(&mut p.protocol, "TCP");
    }
    for e in c.env.iter_mut().flatten() {
        if let Some(fr) = e.value_from.as_mut().and_then(|v| v.field_ref.as_mut()) {
            default_field_ref(fr);
        }
    }
    if let Some(r) = c.resources.as_mut() {
        round_up_resources(r);
    }
    for probe in [c.liveness_probe.as_mut(), c.readiness_probe.as_mut()]
        .into_iter()
        .flatten()
    {
        default_probe(probe);
    }
    if let Some(l) = c.lifecycle.as_mut() {
        for h in [l.post_start.as_mut(), l.pre_stop.as_mut()]
            .into_iter()
            .flatten()
        {
            if let Some(get) = h.http_get.as_mut() {
                set_if_empty(&mut get.path, "/");
                set_if_empty(&mut get.scheme, "HTTP");
            }
        }
    }
}

fn default_probe(p: &mut Probe) {
    for (field, value) in [
        (&mut p.timeout_seconds, 1),
        (&mut p.period_seconds, 10),
        (&mut p.success_threshold, 1),
        (&mut p.failure_threshold, 3),
    ] {
        if field.unwrap_or(0) == 0 {
            *field = Some(value);
        }
    }
    if let Some(get) = p.http_get.as_mut() {
        set_if_empty(&mut get.path, "/");
        set_if_empty(&mut get.scheme, "HTTP");
    }
}

fn round_up_resources(r: &mut ResourceRequirements) {
    for list in [r.limits.as_mut(), r.requests.as_mut()]
        .into_iter()
        .flatten()
    {
        for q in list.values_mut() {
            *q = Quantity(crate::quantity::round_up_milli(&q.0));
        }
    }
}

/// Kubernetes' `SetDefaults_Volume` and the source defaults kruise applies (`SetDefaultPodVolumes`).
pub fn default_volume(v: &mut Volume) {
    let mut plain = v.clone();
    plain.name = String::new();
    if plain == Volume::default() {
        v.empty_dir = Some(Default::default());
    }
    if let Some(h) = v.host_path.as_mut() {
        h.type_.get_or_insert_with(String::new);
    }
    if let Some(s) = v.secret.as_mut() {
        s.default_mode.get_or_insert(0o644);
    }
    if let Some(s) = v.config_map.as_mut() {
        s.default_mode.get_or_insert(0o644);
    }
    if let Some(d) = v.downward_api.as_mut() {
        d.default_mode.get_or_insert(0o644);
        for item in d.items.iter_mut().flatten() {
            if let Some(fr) = item.field_ref.as_mut() {
                default_field_ref(fr);
            }
        }
    }
    if let Some(p) = v.projected.as_mut() {
        p.default_mode.get_or_insert(0o644);
        for s in p.sources.iter_mut().flatten() {
            for item in s
                .downward_api
                .iter_mut()
                .flat_map(|d| d.items.iter_mut().flatten())
            {
                if let Some(fr) = item.field_ref.as_mut() {
                    default_field_ref(fr);
                }
            }
            if let Some(t) = s.service_account_token.as_mut() {
                t.expiration_seconds.get_or_insert(3600);
            }
        }
    }
}

/// Kubernetes' rule for the default pull policy: no tag and no digest means `latest`.
pub fn image_tag_is_latest(image: &str) -> bool {
    if image.is_empty() {
        return false;
    }
    let (name, has_digest) = match image.split_once('@') {
        Some((n, _)) => (n, true),
        None => (image, false),
    };
    let last = name.rsplit('/').next().unwrap_or(name);
    match last.split_once(':') {
        Some((_, tag)) => tag == "latest",
        None => !has_digest,
    }
}
