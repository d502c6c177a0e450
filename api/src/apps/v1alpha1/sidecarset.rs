//! SidecarSet (`apps.kruise.io/v1alpha1`, cluster-scoped): sidecar containers injected into
//! matching pods and upgraded in place (kruise-api.md §3).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, LocalObjectReference, ObjectFieldSelector, Volume};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::apps::common::{
    UpdatePriorityStrategy, UpdateScatterTerm, validate_containers, validate_selector_not_empty,
};
use crate::field::{FieldError, FieldErrors};
use crate::intstr;

/// Default `updateStrategy.maxUnavailable`.
pub const DEFAULT_MAX_UNAVAILABLE: i32 = 1;
/// Default `revisionHistoryLimit`.
pub const DEFAULT_REVISION_HISTORY_LIMIT: i32 = 10;

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
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "(has(self.containers) && size(self.containers) > 0) || (has(self.initContainers) && size(self.initContainers) > 0)",
    "message": "at least one of containers and initContainers is required"
}]))]
pub struct SidecarSetSpec {
    /// Pods to inject into; required and non-empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
    /// Only inject into pods of this namespace (v1alpha1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Only inject into namespaces with these labels; unset means all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace_selector: Option<LabelSelector>,
    /// Init containers to inject (full core Container plus sidecar options; opaque in the schema).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::opaque_object_list")]
    pub init_containers: Option<Vec<SidecarContainer>>,
    /// Containers to inject (full core Container plus sidecar options; opaque in the schema).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::opaque_object_list")]
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
    #[schemars(range(min = 1), extend("default" = 10))]
    pub revision_history_limit: Option<i32>,
    /// Annotations patched into injected pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch_pod_metadata: Option<Vec<SidecarSetPatchPodMetadata>>,
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
    pub selector: Option<LabelSelector>,
    /// Number or percent of matched pods left on the old version (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-validations" = [{
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
    "message": "one of customVersion and revisionName is required"
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
    /// A copy with OpenKruise's defaults filled in (`SetDefaultsSidecarSet`).
    pub fn defaulted(&self) -> Self {
        let mut s = self.clone();
        let us = s.update_strategy.get_or_insert_with(Default::default);
        us.type_
            .get_or_insert(SidecarSetUpdateStrategyType::RollingUpdate);
        us.partition.get_or_insert(IntOrString::Int(0));
        us.max_unavailable
            .get_or_insert(IntOrString::Int(DEFAULT_MAX_UNAVAILABLE));
        s.revision_history_limit
            .get_or_insert(DEFAULT_REVISION_HISTORY_LIMIT);
        for c in s.containers.iter_mut().flatten() {
            c.pod_inject_policy
                .get_or_insert(PodInjectPolicy::BeforeAppContainer);
            default_sidecar(c);
        }
        for c in s.init_containers.iter_mut().flatten() {
            c.pod_inject_policy
                .get_or_insert(PodInjectPolicy::AfterAppContainer);
            default_sidecar(c);
        }
        if let Some(r) = s
            .injection_strategy
            .as_mut()
            .and_then(|i| i.revision.as_mut())
        {
            r.policy
                .get_or_insert(SidecarSetInjectRevisionPolicy::Always);
        }
        for p in s.patch_pod_metadata.iter_mut().flatten() {
            p.patch_policy.get_or_insert(PatchPolicy::Retain);
        }
        s
    }

    /// Checks the spec as OpenKruise's validating webhook does (without cross-SidecarSet checks).
    pub fn validate(&self) -> FieldErrors {
        let mut errs = FieldErrors::default();
        match &self.selector {
            None => errs.push(FieldError::required(
                "spec.selector",
                "no selector defined for SidecarSet",
            )),
            Some(s) => errs.extend(validate_selector_not_empty(s, "spec.selector")),
        }
        let containers = self.containers.as_deref().unwrap_or_default();
        let init = self.init_containers.as_deref().unwrap_or_default();
        if containers.is_empty() && init.is_empty() {
            errs.push(FieldError::required(
                "spec.containers",
                "at least one of containers and initContainers is required",
            ));
        }
        for (list, field) in [
            (containers, "spec.containers"),
            (init, "spec.initContainers"),
        ] {
            let plain: Vec<Container> = list.iter().map(|c| c.container.clone()).collect();
            errs.extend(validate_containers(&plain, field, false));
            for (i, c) in list.iter().enumerate() {
                let hot = c.upgrade_strategy.as_ref();
                if hot.and_then(|u| u.upgrade_type) == Some(SidecarContainerUpgradeType::HotUpgrade)
                    && hot
                        .and_then(|u| u.hot_upgrade_empty_image.as_deref())
                        .is_none_or(str::is_empty)
                {
                    errs.push(FieldError::required(
                        &format!("{field}[{i}].upgradeStrategy.hotUpgradeEmptyImage"),
                        "HotUpgrade needs hotUpgradeEmptyImage",
                    ));
                }
                if c.resources_policy.is_some() && c.container.resources.is_some() {
                    errs.push(FieldError::forbidden(
                        &format!("{field}[{i}].resourcesPolicy"),
                        "resourcesPolicy and resources are mutually exclusive",
                    ));
                }
            }
        }
        let us = self.update_strategy.clone().unwrap_or_default();
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
        let partition_nonzero = match &us.partition {
            Some(IntOrString::Int(0)) | None => false,
            Some(IntOrString::String(s)) => s != "0%",
            Some(IntOrString::Int(_)) => true,
        };
        if us.selector.is_some() && partition_nonzero {
            errs.push(FieldError::forbidden(
                "spec.updateStrategy.selector",
                "selector and a non-zero partition cannot be used together",
            ));
        }
        if let Some(p) = &us.priority_strategy {
            errs.extend(p.validate("spec.updateStrategy.priorityStrategy"));
        }
        for (i, t) in us.scatter_strategy.iter().flatten().enumerate() {
            if t.key.is_empty() {
                errs.push(FieldError::required(
                    &format!("spec.updateStrategy.scatterStrategy[{i}].key"),
                    "",
                ));
            }
        }
        if let Some(r) = self
            .injection_strategy
            .as_ref()
            .and_then(|i| i.revision.as_ref())
            && r.custom_version.is_none()
            && r.revision_name.is_none()
        {
            errs.push(FieldError::required(
                "spec.injectionStrategy.revision",
                "one of customVersion and revisionName is required",
            ));
        }
        if let Some(l) = self.revision_history_limit
            && l < 1
        {
            errs.push(FieldError::invalid(
                "spec.revisionHistoryLimit",
                l,
                "must be at least 1",
            ));
        }
        errs
    }
}

fn default_sidecar(c: &mut SidecarContainer) {
    let u = c.upgrade_strategy.get_or_insert_with(Default::default);
    u.upgrade_type
        .get_or_insert(SidecarContainerUpgradeType::ColdUpgrade);
    c.share_volume_policy
        .get_or_insert_with(Default::default)
        .type_
        .get_or_insert(ShareVolumePolicyType::Disabled);
}

/// Checks a SidecarSet name: `^[a-zA-Z0-9-]+$`, at most 63 characters.
pub fn validate_name(name: &str) -> FieldErrors {
    let mut errs = FieldErrors::default();
    if name.is_empty()
        || name.len() > 63
        || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        errs.push(FieldError::invalid(
            "metadata.name",
            name,
            "must match ^[a-zA-Z0-9\\-]+$ and be at most 63 characters",
        ));
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use serde_json::json;

    fn spec(v: serde_json::Value) -> SidecarSetSpec {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn defaults_are_pinned() {
        let s = spec(json!({
            "selector": {"matchLabels": {"app": "web"}},
            "containers": [{"name": "log", "image": "busybox"}],
            "initContainers": [{"name": "init", "image": "busybox"}]
        }))
        .defaulted();
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(
            v["updateStrategy"],
            json!({"type": "RollingUpdate", "partition": 0, "maxUnavailable": 1})
        );
        assert_eq!(v["revisionHistoryLimit"], json!(10));
        assert_eq!(
            v["containers"][0]["podInjectPolicy"],
            json!("BeforeAppContainer")
        );
        assert_eq!(
            v["initContainers"][0]["podInjectPolicy"],
            json!("AfterAppContainer")
        );
        assert_eq!(
            v["containers"][0]["upgradeStrategy"],
            json!({"upgradeType": "ColdUpgrade"})
        );
        assert_eq!(
            v["containers"][0]["shareVolumePolicy"],
            json!({"type": "disabled"})
        );
        assert!(s.validate().is_empty(), "{}", s.validate());
    }

    #[test]
    fn validation_table() {
        let base = json!({"selector": {"matchLabels": {"app": "web"}}, "containers": [{"name": "log", "image": "b"}]});
        let with = |k: &str, v: serde_json::Value| {
            let mut b = base.clone();
            b[k] = v;
            spec(b)
        };
        let cases = [
            (with("selector", json!({})), "spec.selector"),
            (with("containers", json!([])), "spec.containers"),
            (
                with(
                    "updateStrategy",
                    json!({"partition": 1, "selector": {"matchLabels": {"a": "b"}}}),
                ),
                "spec.updateStrategy.selector",
            ),
            (
                with("updateStrategy", json!({"maxUnavailable": "5"})),
                "spec.updateStrategy.maxUnavailable",
            ),
            (
                with(
                    "containers",
                    json!([{"name": "x", "image": "i", "upgradeStrategy": {"upgradeType": "HotUpgrade"}}]),
                ),
                "spec.containers[0].upgradeStrategy.hotUpgradeEmptyImage",
            ),
            (
                with(
                    "injectionStrategy",
                    json!({"revision": {"policy": "Partial"}}),
                ),
                "spec.injectionStrategy.revision",
            ),
        ];
        for (s, field) in cases {
            assert!(
                s.validate().has_field(field),
                "expected error at {field}: {}",
                s.validate()
            );
        }
        assert!(validate_name("log-agent").is_empty());
        assert!(validate_name("log_agent").has_field("metadata.name"));
    }
}
