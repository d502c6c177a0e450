//! CloneSet (`apps.kruise.io/v1alpha1`): stateless pods with in-place updates and partition
//! canaries (kruise-api.md §2).

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::apps::common::{
    InPlaceUpdateStrategy, Lifecycle, UpdatePriorityStrategy, UpdateScatterTerm,
    validate_pod_template, validate_scatter, validate_selector_not_empty,
};
use crate::field::{FieldError, FieldErrors};
use crate::intstr;

/// Default `updateStrategy.maxUnavailable`.
pub const DEFAULT_MAX_UNAVAILABLE: &str = "20%";
/// Default `revisionHistoryLimit`.
pub const DEFAULT_REVISION_HISTORY_LIMIT: i32 = 10;
/// Default `replicas`.
pub const DEFAULT_REPLICAS: i32 = 1;

/// Desired state of a CloneSet.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "apps.kruise.io",
    version = "v1alpha1",
    kind = "CloneSet",
    namespaced,
    shortname = "clone",
    status = "CloneSetStatus",
    derive = "PartialEq",
    doc = "CloneSet manages stateless pods with in-place updates and partitioned rollouts.",
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
        name = "UPDATED",
        type_ = "integer",
        json_path = ".status.updatedReplicas",
        description = "The number of pods updated."
    ),
    printcolumn(
        name = "UPDATED_READY",
        type_ = "integer",
        json_path = ".status.updatedReadyReplicas",
        description = "The number of pods updated and ready."
    ),
    printcolumn(
        name = "UPDATED_AVAILABLE",
        type_ = "integer",
        json_path = ".status.updatedAvailableReplicas",
        description = "The number of pods updated and available."
    ),
    printcolumn(
        name = "READY",
        type_ = "integer",
        json_path = ".status.readyReplicas",
        description = "The number of pods ready."
    ),
    printcolumn(
        name = "TOTAL",
        type_ = "integer",
        json_path = ".status.replicas",
        description = "The number of currently all pods."
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
        description = "The containers of currently cloneset."
    ),
    printcolumn(
        name = "IMAGES",
        type_ = "string",
        json_path = ".spec.template.spec.containers[*].image",
        priority = 1,
        description = "The images of currently cloneset."
    ),
    printcolumn(
        name = "SELECTOR",
        type_ = "string",
        json_path = ".status.labelSelector",
        priority = 1,
        description = "The selector of currently cloneset."
    )
)]
#[serde(rename_all = "camelCase")]
pub struct CloneSetSpec {
    /// Desired number of pods (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0), extend("default" = 1))]
    pub replicas: Option<i32>,
    /// Label query over pods; required, non-empty, immutable, must match the template labels.
    #[schemars(extend("x-kubernetes-validations" = [{
        "rule": "(has(self.matchLabels) && size(self.matchLabels) > 0) || (has(self.matchExpressions) && size(self.matchExpressions) > 0)",
        "message": "empty selector is not valid for CloneSet"
    }]))]
    pub selector: LabelSelector,
    /// Template of the pods (opaque in the CRD schema; validated by graft).
    #[schemars(schema_with = "crate::schema::opaque_object")]
    pub template: PodTemplateSpec,
    /// PVC templates; each pod gets one PVC per template, named `<vct>-<cloneset>-<instance-id>`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::apps::common::volume_claim_templates::serialize"
    )]
    #[schemars(schema_with = "crate::schema::opaque_object_list")]
    pub volume_claim_templates: Option<Vec<PersistentVolumeClaim>>,
    /// Scaling options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_strategy: Option<CloneSetScaleStrategy>,
    /// Update options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = {}))]
    pub update_strategy: Option<CloneSetUpdateStrategy>,
    /// Old ControllerRevisions to keep (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0), extend("default" = 10))]
    pub revision_history_limit: Option<i32>,
    /// Seconds a new pod must be ready before it counts as available.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub min_ready_seconds: Option<i32>,
    /// Lifecycle hooks of the pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<Lifecycle>,
    /// Seconds before a stalled rollout gets `Progressing=False`; unset means no condition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub progress_deadline_seconds: Option<i32>,
}

/// CloneSet `scaleStrategy`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CloneSetScaleStrategy {
    /// Names of pods to delete (the controller truncates names of pods already gone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pods_to_delete: Option<Vec<String>>,
    /// Limits scale-up: no new pods while this many are unavailable (percent rounds up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-validations" = [{
        "rule": "type(self) == int ? self >= 0 : self.matches('^(100|[1-9]?[0-9])%$')",
        "message": "must be a non-negative integer or a percentage from 0% to 100%"
    }]))]
    pub max_unavailable: Option<IntOrString>,
    /// true: delete PVCs of pods that are gone instead of reusing them.
    #[serde(
        rename = "disablePVCReuse",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub disable_pvc_reuse: Option<bool>,
}

/// CloneSet `updateStrategy`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "!has(self.maxSurge) || !has(self.type) || self.type != 'InPlaceOnly' || (type(self.maxSurge) == int ? self.maxSurge == 0 : self.maxSurge == '0%')",
    "message": "maxSurge must be 0 when type is InPlaceOnly",
    "fieldPath": ".maxSurge"
}]))]
pub struct CloneSetUpdateStrategy {
    /// `ReCreate` (default), `InPlaceIfPossible`, `InPlaceOnly` or `OnDelete`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "ReCreate"))]
    pub type_: Option<CloneSetUpdateStrategyType>,
    /// Number or percent of pods kept at old revisions (default 0; percent rounds up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = 0, "x-kubernetes-validations" = [{
        "rule": "type(self) == int ? self >= 0 : self.matches('^(100|[1-9]?[0-9])%$')",
        "message": "must be a non-negative integer or a percentage from 0% to 100%"
    }]))]
    pub partition: Option<IntOrString>,
    /// Pods that may be unavailable during the update (default "20%"; percent rounds up, down
    /// when maxSurge > 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "20%", "x-kubernetes-validations" = [{
        "rule": "type(self) == int ? self >= 0 : self.matches('^(100|[1-9]?[0-9])%$')",
        "message": "must be a non-negative integer or a percentage from 0% to 100%"
    }]))]
    pub max_unavailable: Option<IntOrString>,
    /// Extra pods created during the update (default 0; percent rounds up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = 0, "x-kubernetes-validations" = [{
        "rule": "type(self) == int ? self >= 0 : self.matches('^(100|[1-9]?[0-9])%$')",
        "message": "must be a non-negative integer or a percentage from 0% to 100%"
    }]))]
    pub max_surge: Option<IntOrString>,
    /// Stop updating pods (scaling goes on; effective maxSurge becomes 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused: Option<bool>,
    /// Order of pod updates by weight or label order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority_strategy: Option<UpdatePriorityStrategy>,
    /// Label pairs whose pods are spread across update batches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scatter_strategy: Option<Vec<UpdateScatterTerm>>,
    /// In-place update options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_place_update_strategy: Option<InPlaceUpdateStrategy>,
}

/// CloneSet `updateStrategy.type`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum CloneSetUpdateStrategyType {
    /// Recreate pods (default).
    #[default]
    ReCreate,
    /// In place when possible, else recreate.
    InPlaceIfPossible,
    /// Only in place; other template changes are rejected.
    InPlaceOnly,
    /// Only pods deleted by the user are updated (v1beta1 semantics; the v1.9.0 v1alpha1 webhook
    /// rejected it).
    OnDelete,
}

/// Observed state of a CloneSet. Counters are always written (Argo CD's health check reads them).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct CloneSetStatus {
    /// Generation the status was computed for.
    pub observed_generation: i64,
    /// All active pods owned by the CloneSet.
    pub replicas: i32,
    /// Pods that are ready.
    pub ready_replicas: i32,
    /// Pods that are available (ready for minReadySeconds and lifecycle Normal).
    pub available_replicas: i32,
    /// Pods at the update revision.
    pub updated_replicas: i32,
    /// Updated pods that are ready.
    pub updated_ready_replicas: i32,
    /// Updated pods that are available.
    pub updated_available_replicas: i32,
    /// Pods that should be updated: replicas − partition.
    pub expected_updated_replicas: i32,
    /// Revision pods are updated to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update_revision: Option<String>,
    /// Revision of the pods before the update.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_revision: Option<String>,
    /// Hash collisions when naming revisions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub collision_count: Option<i32>,
    /// The selector as a string, for the scale subresource.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<String>,
    /// Conditions: `FailedScale`, `FailedUpdate`, `Progressing`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<CloneSetCondition>>,
}

/// A CloneSet condition.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CloneSetCondition {
    /// `FailedScale`, `FailedUpdate` or `Progressing`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// Last time the condition was updated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_update_time: Option<Time>,
    /// Last time the status changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Time>,
    /// Machine-readable reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Human-readable message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The update limits in effect for a given replica count (`calculateDiffsWithExpectation`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UpdateLimits {
    /// Pods kept at old revisions.
    pub partition: i32,
    /// Extra pods allowed (0 while paused).
    pub max_surge: i32,
    /// Pods allowed to be unavailable.
    pub max_unavailable: i32,
}

impl CloneSetSpec {
    /// `updateStrategy.inPlaceUpdateStrategy.gracePeriodSeconds`: how long an in-place update
    /// waits between marking a pod not ready and changing it (0 when unset).
    pub fn in_place_grace_seconds(&self) -> i32 {
        self.update_strategy
            .as_ref()
            .and_then(|u| u.in_place_update_strategy.as_ref())
            .and_then(|s| s.grace_period_seconds)
            .unwrap_or(0)
    }

    /// A copy with OpenKruise's defaults filled in (`SetDefaultsCloneSet`, pod-template defaults
    /// excepted, as with the `TemplateNoDefaults` gate).
    pub fn defaulted(&self) -> Self {
        let mut s = self.clone();
        s.replicas.get_or_insert(DEFAULT_REPLICAS);
        s.revision_history_limit
            .get_or_insert(DEFAULT_REVISION_HISTORY_LIMIT);
        let us = s.update_strategy.get_or_insert_with(Default::default);
        let ty = *us.type_.get_or_insert(CloneSetUpdateStrategyType::ReCreate);
        if matches!(
            ty,
            CloneSetUpdateStrategyType::InPlaceIfPossible | CloneSetUpdateStrategyType::InPlaceOnly
        ) {
            us.in_place_update_strategy
                .get_or_insert_with(Default::default);
        }
        us.partition.get_or_insert(IntOrString::Int(0));
        us.max_unavailable
            .get_or_insert_with(|| IntOrString::String(DEFAULT_MAX_UNAVAILABLE.to_string()));
        us.max_surge.get_or_insert(IntOrString::Int(0));
        s
    }

    /// Replicas with the default applied.
    pub fn replicas(&self) -> i32 {
        self.replicas.unwrap_or(DEFAULT_REPLICAS)
    }

    /// The update limits for the current replica count: partition (percent rounds up, "99%"
    /// keeps one pod to update), maxSurge (rounds up, 0 when paused) and maxUnavailable
    /// (rounds up, or down when maxSurge > 0).
    pub fn update_limits(&self) -> Result<UpdateLimits, String> {
        let d = self.defaulted();
        let replicas = d.replicas();
        let us = d.update_strategy.unwrap_or_default();
        let partition = intstr::partition_replicas(us.partition.as_ref(), replicas)?;
        let mut max_surge = match &us.max_surge {
            Some(v) => intstr::scaled_value(v, replicas, true)?,
            None => 0,
        };
        if us.paused == Some(true) {
            max_surge = 0;
        }
        let default_mu = IntOrString::String(DEFAULT_MAX_UNAVAILABLE.to_string());
        let max_unavailable = intstr::scaled_value(
            us.max_unavailable.as_ref().unwrap_or(&default_mu),
            replicas,
            max_surge == 0,
        )?;
        Ok(UpdateLimits {
            partition,
            max_surge,
            max_unavailable,
        })
    }

    /// The controller's check of a stored spec before it reconciles one (`spec.`-rooted field
    /// paths; missing fields read as their defaults): kruise's rules that keep the rollout
    /// arithmetic sound plus graft's own (lifecycle, percent ranges). The admission webhook
    /// refuses with kruise's exact rules and words instead: [`CloneSetSpec::validate_defaulted`].
    pub fn validate(&self) -> FieldErrors {
        let mut errs = FieldErrors::default();
        let replicas = self.replicas();
        if replicas < 0 {
            errs.push(FieldError::invalid(
                "spec.replicas",
                replicas,
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
        for (name, v) in [
            ("spec.revisionHistoryLimit", self.revision_history_limit),
            ("spec.minReadySeconds", self.min_ready_seconds),
        ] {
            if let Some(v) = v
                && v < 0
            {
                errs.push(FieldError::invalid(
                    name,
                    v,
                    "must be greater than or equal to 0",
                ));
            }
        }
        if let Some(pd) = self.progress_deadline_seconds
            && pd != i32::MAX
            && pd <= self.min_ready_seconds.unwrap_or(0)
        {
            errs.push(FieldError::invalid(
                "spec.progressDeadlineSeconds",
                pd,
                "must be greater than minReadySeconds",
            ));
        }
        if let Some(ss) = &self.scale_strategy {
            if let Some(mu) = &ss.max_unavailable {
                errs.extend(intstr::validate_int_or_percent(
                    mu,
                    "spec.scaleStrategy.maxUnavailable",
                ));
            }
            for (i, p) in ss.pods_to_delete.iter().flatten().enumerate() {
                let prev = &ss.pods_to_delete.as_deref().unwrap_or_default()[..i];
                if prev.contains(p) {
                    errs.push(FieldError::duplicate(
                        &format!("spec.scaleStrategy.podsToDelete[{i}]"),
                        p,
                    ));
                }
            }
        }
        if let Some(l) = &self.lifecycle {
            errs.extend(l.validate("spec.lifecycle"));
        }
        let us = self.update_strategy.clone().unwrap_or_default();
        let f = "spec.updateStrategy";
        for (name, v) in [
            ("partition", &us.partition),
            ("maxUnavailable", &us.max_unavailable),
            ("maxSurge", &us.max_surge),
        ] {
            if let Some(v) = v {
                errs.extend(intstr::validate_int_or_percent(v, &format!("{f}.{name}")));
            }
        }
        if errs.iter().all(|e| !e.field.starts_with(f)) {
            let surge = us
                .max_surge
                .as_ref()
                .map(|v| intstr::scaled_value(v, replicas, true))
                .transpose()
                .unwrap_or_default()
                .unwrap_or(0);
            let default_mu = IntOrString::String(DEFAULT_MAX_UNAVAILABLE.to_string());
            let unavailable = intstr::scaled_value(
                us.max_unavailable.as_ref().unwrap_or(&default_mu),
                replicas,
                true,
            )
            .unwrap_or(0);
            if us.type_ == Some(CloneSetUpdateStrategyType::InPlaceOnly) && surge > 0 {
                errs.push(FieldError::invalid(
                    &format!("{f}.maxSurge"),
                    us.max_surge
                        .as_ref()
                        .map(intstr::display)
                        .unwrap_or_default(),
                    crate::apps::v1alpha1::cloneset_validation::NO_SURGE_IN_PLACE_ONLY,
                ));
            }
            if replicas > 0 && unavailable < 1 && surge < 1 {
                errs.push(FieldError::invalid(
                    &format!("{f}.maxUnavailable"),
                    us.max_unavailable
                        .as_ref()
                        .map(intstr::display)
                        .unwrap_or_default(),
                    crate::apps::v1alpha1::cloneset_validation::BOTH_LESS_THAN_ONE,
                ));
            }
        }
        if let Some(p) = &us.priority_strategy {
            errs.extend(p.validate(&format!("{f}.priorityStrategy")));
        }
        if let Some(s) = &us.scatter_strategy {
            errs.extend(validate_scatter(s, &format!("{f}.scatterStrategy")));
        }
        if let Some(g) = us
            .in_place_update_strategy
            .as_ref()
            .and_then(|s| s.grace_period_seconds)
            && g < 0
        {
            errs.push(FieldError::invalid(
                &format!("{f}.inPlaceUpdateStrategy.gracePeriodSeconds"),
                g,
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

    fn spec(v: serde_json::Value) -> CloneSetSpec {
        let base = json!({
            "selector": {"matchLabels": {"app": "demo"}},
            "template": {
                "metadata": {"labels": {"app": "demo"}},
                "spec": {"containers": [{"name": "main", "image": "nginx:1.27"}]}
            }
        });
        let mut merged = base;
        if let (Some(m), Some(extra)) = (merged.as_object_mut(), v.as_object()) {
            for (k, val) in extra {
                m.insert(k.clone(), val.clone());
            }
        }
        serde_json::from_value(merged).unwrap()
    }

    #[test]
    fn defaults_are_pinned() {
        let d = spec(json!({})).defaulted();
        let v = serde_json::to_value(&d).unwrap();
        assert_eq!(v["replicas"], json!(1));
        assert_eq!(v["revisionHistoryLimit"], json!(10));
        assert_eq!(
            v["updateStrategy"],
            json!({"type": "ReCreate", "partition": 0, "maxUnavailable": "20%", "maxSurge": 0})
        );
        let inplace = spec(json!({"updateStrategy": {"type": "InPlaceIfPossible"}})).defaulted();
        assert_eq!(
            serde_json::to_value(&inplace).unwrap()["updateStrategy"]["inPlaceUpdateStrategy"],
            json!({})
        );
        assert!(
            spec(json!({})).validate().is_empty(),
            "{}",
            spec(json!({})).validate()
        );
    }

    #[test]
    fn partition_99_percent_of_4_updates_one() {
        let s = spec(json!({"replicas": 4, "updateStrategy": {"partition": "99%"}}));
        let l = s.update_limits().unwrap();
        assert_eq!(l.partition, 3);
        assert_eq!(4 - l.partition, 1);
    }

    #[test]
    fn max_unavailable_rounding_depends_on_surge() {
        let s = spec(json!({"replicas": 3}));
        assert_eq!(
            s.update_limits().unwrap().max_unavailable,
            1,
            "20% of 3 rounds up"
        );
        let s = spec(json!({"replicas": 3, "updateStrategy": {"maxSurge": "50%"}}));
        let l = s.update_limits().unwrap();
        assert_eq!(l.max_surge, 2, "50% of 3 rounds up");
        assert_eq!(
            l.max_unavailable, 0,
            "20% of 3 rounds down when maxSurge > 0"
        );
        let s = spec(json!({"replicas": 3, "updateStrategy": {"maxSurge": 1, "paused": true}}));
        assert_eq!(
            s.update_limits().unwrap().max_surge,
            0,
            "paused forces maxSurge 0"
        );
    }

    #[test]
    fn validation_table() {
        let cases: &[(serde_json::Value, &str)] = &[
            (
                json!({"updateStrategy": {"type": "InPlaceOnly", "maxSurge": 1}}),
                "spec.updateStrategy.maxSurge",
            ),
            (
                json!({"updateStrategy": {"type": "InPlaceOnly", "maxSurge": "10%"}}),
                "spec.updateStrategy.maxSurge",
            ),
            (
                json!({"updateStrategy": {"maxUnavailable": "1"}}),
                "spec.updateStrategy.maxUnavailable",
            ),
            (
                json!({"updateStrategy": {"maxSurge": "1"}}),
                "spec.updateStrategy.maxSurge",
            ),
            (
                json!({"updateStrategy": {"maxUnavailable": "120%"}}),
                "spec.updateStrategy.maxUnavailable",
            ),
            (
                json!({"updateStrategy": {"partition": "101%"}}),
                "spec.updateStrategy.partition",
            ),
            (
                json!({"updateStrategy": {"partition": -1}}),
                "spec.updateStrategy.partition",
            ),
            (
                json!({"updateStrategy": {"maxUnavailable": 0}}),
                "spec.updateStrategy.maxUnavailable",
            ),
            (json!({"replicas": -1}), "spec.replicas"),
            (json!({"selector": {}}), "spec.selector"),
            (
                json!({"selector": {"matchLabels": {"app": "other"}}}),
                "spec.template.metadata.labels",
            ),
            (
                json!({"scaleStrategy": {"maxUnavailable": "abc"}}),
                "spec.scaleStrategy.maxUnavailable",
            ),
            (
                json!({"scaleStrategy": {"podsToDelete": ["a", "a"]}}),
                "spec.scaleStrategy.podsToDelete[1]",
            ),
            (
                json!({"progressDeadlineSeconds": 5, "minReadySeconds": 10}),
                "spec.progressDeadlineSeconds",
            ),
            (
                json!({"lifecycle": {"preNormal": {"markPodNotReady": true}}}),
                "spec.lifecycle.preNormal.markPodNotReady",
            ),
            (
                json!({"template": {"metadata": {"labels": {"app": "demo"}}, "spec": {"restartPolicy": "Never", "containers": [{"name": "m", "image": "i"}]}}}),
                "spec.template.spec.restartPolicy",
            ),
        ];
        for (patch, field) in cases {
            let errs = spec(patch.clone()).validate();
            assert!(
                errs.has_field(field),
                "{patch} should fail at {field}, got {errs}"
            );
        }
        // Allowed combinations.
        for ok in [
            json!({"updateStrategy": {"maxUnavailable": 0, "maxSurge": 1}}),
            json!({"updateStrategy": {"type": "InPlaceOnly", "maxSurge": 0}}),
            json!({"updateStrategy": {"type": "InPlaceIfPossible", "maxSurge": "50%", "partition": "99%"}}),
            json!({"replicas": 0, "updateStrategy": {"maxUnavailable": 0}}),
            json!({"progressDeadlineSeconds": 2147483647, "minReadySeconds": 10}),
        ] {
            let errs = spec(ok.clone()).validate();
            assert!(errs.is_empty(), "{ok} should pass, got {errs}");
        }
    }
}
