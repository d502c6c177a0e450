//! Types shared by several `apps.kruise.io` kinds: lifecycle hooks, update priority and
//! scatter, in-place update strategy, job completion policy (OpenKruise `apis/apps/pub`).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::field::{FieldError, FieldErrors};
use crate::labels;

/// Lifecycle hooks of a workload's pods (`spec.lifecycle`, kruise-api.md §1.3).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Lifecycle {
    /// Hook run before a pod is deleted (state `PreparingDelete`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_delete: Option<LifecycleHook>,
    /// Hook run before a pod is updated in place (state `PreparingUpdate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_place_update: Option<LifecycleHook>,
    /// Hook a new pod must satisfy before it becomes `Normal`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_normal: Option<LifecycleHook>,
}

/// A lifecycle hook: labels and/or finalizers that mark a pod as "hooked".
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LifecycleHook {
    /// Labels (exact values) that mark the pod as hooked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels_handler: Option<BTreeMap<String, String>>,
    /// Finalizers that mark the pod as hooked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finalizers_handler: Option<Vec<String>>,
    /// Mark the pod not ready (KruisePodReady=False) while in the hook's preparing state.
    /// Only for preDelete and inPlaceUpdate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mark_pod_not_ready: Option<bool>,
}

impl LifecycleHook {
    /// True if the pod has any of the hook's labels (exact value) or finalizers.
    pub fn is_hooked(&self, labels: &BTreeMap<String, String>, finalizers: &[String]) -> bool {
        self.labels_handler
            .iter()
            .flatten()
            .any(|(k, v)| labels.get(k) == Some(v))
            || self
                .finalizers_handler
                .iter()
                .flatten()
                .any(|f| finalizers.contains(f))
    }

    /// True if the pod has all of the hook's labels and finalizers.
    pub fn is_all_hooked(&self, labels: &BTreeMap<String, String>, finalizers: &[String]) -> bool {
        self.labels_handler
            .iter()
            .flatten()
            .all(|(k, v)| labels.get(k) == Some(v))
            && self
                .finalizers_handler
                .iter()
                .flatten()
                .all(|f| finalizers.contains(f))
    }
}

impl Lifecycle {
    /// Checks the hooks (`markPodNotReady` is not allowed on preNormal).
    pub fn validate(&self, field: &str) -> FieldErrors {
        let mut errs = FieldErrors::default();
        if let Some(h) = &self.pre_normal
            && h.mark_pod_not_ready == Some(true)
        {
            errs.push(FieldError::forbidden(
                &format!("{field}.preNormal.markPodNotReady"),
                "markPodNotReady is only supported for preDelete and inPlaceUpdate",
            ));
        }
        errs
    }
}

/// Lifecycle state of a pod (label `lifecycle.apps.kruise.io/state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum LifecycleState {
    /// New pod, waiting for preNormal.
    PreparingNormal,
    /// In service.
    Normal,
    /// Waiting for the inPlaceUpdate hook.
    PreparingUpdate,
    /// In-place update applied, not finished.
    Updating,
    /// Updated, waiting to be all-hooked again.
    Updated,
    /// Waiting for the preDelete hook.
    PreparingDelete,
}

impl LifecycleState {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PreparingNormal => labels::LIFECYCLE_STATE_PREPARING_NORMAL,
            Self::Normal => labels::LIFECYCLE_STATE_NORMAL,
            Self::PreparingUpdate => labels::LIFECYCLE_STATE_PREPARING_UPDATE,
            Self::Updating => labels::LIFECYCLE_STATE_UPDATING,
            Self::Updated => labels::LIFECYCLE_STATE_UPDATED,
            Self::PreparingDelete => labels::LIFECYCLE_STATE_PREPARING_DELETE,
        }
    }

    /// Parses a label value; unknown values give `None`.
    pub fn parse(value: &str) -> Option<Self> {
        [
            Self::PreparingNormal,
            Self::Normal,
            Self::PreparingUpdate,
            Self::Updating,
            Self::Updated,
            Self::PreparingDelete,
        ]
        .into_iter()
        .find(|s| s.as_str() == value)
    }
}

/// Update priority (`priorityStrategy`): weight terms or order terms, not both.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdatePriorityStrategy {
    /// Sum the weights of matching terms; higher first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_priority: Option<Vec<UpdatePriorityWeightTerm>>,
    /// Sort by the last integer in the value of the first present key; higher first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_priority: Option<Vec<UpdatePriorityOrderTerm>>,
}

/// A weighted selector term.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdatePriorityWeightTerm {
    /// Weight 0..100.
    #[schemars(range(min = 0, max = 100))]
    pub weight: i32,
    /// Pods this term matches.
    pub match_selector: LabelSelector,
}

/// An ordered label key.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UpdatePriorityOrderTerm {
    /// Label key whose value's last integer orders pods.
    pub ordered_key: String,
}

impl UpdatePriorityStrategy {
    /// Checks weights are in 0..=100 and that only one kind of term is used.
    pub fn validate(&self, field: &str) -> FieldErrors {
        let mut errs = FieldErrors::default();
        if self.weight_priority.is_some() && self.order_priority.is_some() {
            errs.push(FieldError::forbidden(
                field,
                "only one of weightPriority and orderPriority can be set",
            ));
        }
        for (i, t) in self.weight_priority.iter().flatten().enumerate() {
            if !(0..=100).contains(&t.weight) {
                errs.push(FieldError::invalid(
                    &format!("{field}.weightPriority[{i}].weight"),
                    t.weight,
                    "must be in 0..100",
                ));
            }
        }
        for (i, t) in self.order_priority.iter().flatten().enumerate() {
            if t.ordered_key.is_empty() {
                errs.push(FieldError::required(
                    &format!("{field}.orderPriority[{i}].orderedKey"),
                    "",
                ));
            }
        }
        errs
    }
}

/// A label pair whose pods are spread across update batches (`scatterStrategy[]`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct UpdateScatterTerm {
    /// Label key.
    pub key: String,
    /// Label value (`"*"` allowed for SidecarSet: every observed value).
    pub value: String,
}

/// Checks scatter terms: key required, no duplicate pairs.
pub fn validate_scatter(terms: &[UpdateScatterTerm], field: &str) -> FieldErrors {
    let mut errs = FieldErrors::default();
    for (i, t) in terms.iter().enumerate() {
        if t.key.is_empty() {
            errs.push(FieldError::required(&format!("{field}[{i}].key"), ""));
        }
        if terms[..i].contains(t) {
            errs.push(FieldError::duplicate(
                &format!("{field}[{i}]"),
                format!("{}={}", t.key, t.value),
            ));
        }
    }
    errs
}

/// In-place update options (`inPlaceUpdateStrategy`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct InPlaceUpdateStrategy {
    /// Seconds between marking the pod not ready and patching its images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub grace_period_seconds: Option<i32>,
}

/// How a job completes (BroadcastJob, ImagePullJob `completionPolicy`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CompletionPolicy {
    /// `Always` (default): the job completes; `Never`: it keeps running.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    // A plain string in the schema (no enum, as in OpenKruise's CRD): the API server skips CEL
    // rules once the schema refused a value, so an enum would hide the ImagePullJob's "unknown
    // type of completionPolicy" message.
    #[schemars(with = "Option<String>")]
    #[schemars(extend("default" = "Always"))]
    pub type_: Option<CompletionPolicyType>,
    /// Seconds after start before the job is failed; only with `Always`. OpenKruise's schema
    /// and webhooks set no minimum (an ImagePullJob only needs it ≥ its pull timeout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_deadline_seconds: Option<i64>,
    /// Seconds after completion before the job is deleted; only with `Always`. No minimum in
    /// OpenKruise either.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds_after_finished: Option<i32>,
}

/// `completionPolicy.type`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum CompletionPolicyType {
    /// The job completes when every target is done.
    #[default]
    Always,
    /// The job never completes.
    Never,
}

impl CompletionPolicy {
    /// Checks that deadline and TTL are only set for `Always`, as OpenKruise's BroadcastJob
    /// webhook does (its words; no minimum on either value).
    pub fn validate(&self, field: &str) -> FieldErrors {
        let mut errs = FieldErrors::default();
        if self.type_ == Some(CompletionPolicyType::Never) {
            if let Some(t) = self.ttl_seconds_after_finished {
                errs.push(FieldError::invalid(
                    &format!("{field}.ttlSecondsAfterFinished"),
                    t,
                    "ttlSecondsAfterFinished can just work with Always CompletionPolicyType",
                ));
            }
            if let Some(d) = self.active_deadline_seconds {
                errs.push(FieldError::invalid(
                    &format!("{field}.activeDeadlineSeconds"),
                    d,
                    "activeDeadlineSeconds can just work with Always CompletionPolicyType",
                ));
            }
        }
        errs
    }
}

/// Update policy of a pod: recreate or in place (CloneSet `updateStrategy.type`,
/// Advanced StatefulSet `podUpdatePolicy`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum PodUpdatePolicy {
    /// Delete and create the pod.
    #[default]
    ReCreate,
    /// Update in place when only images/metadata changed, else recreate.
    InPlaceIfPossible,
    /// Only in-place updates; other changes are rejected.
    InPlaceOnly,
}

/// Checks a label selector is non-empty (OpenKruise requires it for workloads).
pub fn validate_selector_not_empty(selector: &LabelSelector, field: &str) -> FieldErrors {
    let mut errs = FieldErrors::default();
    if crate::selector::is_empty(selector) {
        errs.push(FieldError::invalid(
            field,
            "{}",
            "empty selector is not valid",
        ));
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn hooked_and_all_hooked() {
        let hook = LifecycleHook {
            labels_handler: Some(m(&[("a", "true"), ("b", "true")])),
            finalizers_handler: Some(vec!["f".into()]),
            mark_pod_not_ready: None,
        };
        assert!(hook.is_hooked(&m(&[("a", "true")]), &[]));
        assert!(!hook.is_hooked(&m(&[("a", "false")]), &[]));
        assert!(hook.is_hooked(&m(&[]), &["f".into()]));
        assert!(!hook.is_all_hooked(&m(&[("a", "true")]), &["f".into()]));
        assert!(hook.is_all_hooked(&m(&[("a", "true"), ("b", "true")]), &["f".into()]));
    }

    #[test]
    fn lifecycle_state_names() {
        assert_eq!(LifecycleState::PreparingNormal.as_str(), "PreparingNormal");
        assert_eq!(
            LifecycleState::parse("PreparingDelete"),
            Some(LifecycleState::PreparingDelete)
        );
        assert_eq!(LifecycleState::parse("Deleting"), None);
    }

    #[test]
    fn priority_both_kinds_rejected() {
        let p = UpdatePriorityStrategy {
            weight_priority: Some(vec![UpdatePriorityWeightTerm {
                weight: 101,
                match_selector: LabelSelector::default(),
            }]),
            order_priority: Some(vec![UpdatePriorityOrderTerm {
                ordered_key: "k".into(),
            }]),
        };
        let errs = p.validate("spec.updateStrategy.priorityStrategy");
        assert!(errs.has_field("spec.updateStrategy.priorityStrategy"));
        assert!(errs.has_field("spec.updateStrategy.priorityStrategy.weightPriority[0].weight"));
    }

    #[test]
    fn scatter_duplicates_and_empty_key() {
        let t = |k: &str, v: &str| UpdateScatterTerm {
            key: k.into(),
            value: v.into(),
        };
        let errs = validate_scatter(&[t("a", "1"), t("a", "1"), t("", "2")], "s");
        assert!(errs.has_field("s[1]"));
        assert!(errs.has_field("s[2].key"));
    }
}

/// Checks a workload pod template: labels match `selector`, at least one container, container
/// names unique and images set, `restartPolicy` (if set) in `restart_policies`, and no
/// `activeDeadlineSeconds`. `field` is the template path, e.g. `spec.template`.
pub fn validate_pod_template(
    template: &k8s_openapi::api::core::v1::PodTemplateSpec,
    selector: Option<&LabelSelector>,
    restart_policies: &[&str],
    field: &str,
) -> FieldErrors {
    let mut errs = FieldErrors::default();
    if let Some(sel) = selector {
        let labels = template
            .metadata
            .as_ref()
            .and_then(|m| m.labels.clone())
            .unwrap_or_default();
        if !crate::selector::matches(sel, &labels) {
            errs.push(FieldError::invalid(
                &format!("{field}.metadata.labels"),
                format!("{labels:?}"),
                "`selector` does not match template `labels`",
            ));
        }
    }
    let Some(spec) = &template.spec else {
        errs.push(FieldError::required(&format!("{field}.spec"), ""));
        return errs;
    };
    errs.extend(validate_containers(
        &spec.containers,
        &format!("{field}.spec.containers"),
        true,
    ));
    if let Some(init) = &spec.init_containers {
        errs.extend(validate_containers(
            init,
            &format!("{field}.spec.initContainers"),
            false,
        ));
    }
    if let Some(rp) = &spec.restart_policy
        && !restart_policies.contains(&rp.as_str())
    {
        errs.push(FieldError::not_supported(
            &format!("{field}.spec.restartPolicy"),
            rp,
            restart_policies,
        ));
    }
    if spec.active_deadline_seconds.is_some() {
        errs.push(FieldError::forbidden(
            &format!("{field}.spec.activeDeadlineSeconds"),
            "activeDeadlineSeconds in a workload template is not supported",
        ));
    }
    errs
}

/// Checks containers: non-empty list (if `required`), names set and unique, images set.
pub fn validate_containers(
    containers: &[k8s_openapi::api::core::v1::Container],
    field: &str,
    required: bool,
) -> FieldErrors {
    let mut errs = FieldErrors::default();
    if required && containers.is_empty() {
        errs.push(FieldError::required(
            field,
            "at least one container is required",
        ));
    }
    for (i, c) in containers.iter().enumerate() {
        if c.name.is_empty() {
            errs.push(FieldError::required(&format!("{field}[{i}].name"), ""));
        } else if containers[..i].iter().any(|o| o.name == c.name) {
            errs.push(FieldError::duplicate(
                &format!("{field}[{i}].name"),
                &c.name,
            ));
        }
        if c.image.as_deref().is_none_or(str::is_empty) {
            errs.push(FieldError::required(&format!("{field}[{i}].image"), ""));
        }
    }
    errs
}

/// Serde for `volumeClaimTemplates`: k8s-openapi writes `apiVersion`/`kind` into every
/// PersistentVolumeClaim, which a user's template does not have; leave them out.
pub(crate) mod volume_claim_templates {
    use k8s_openapi::api::core::v1::PersistentVolumeClaim;
    use serde::{Serialize, Serializer};

    /// Serializes the templates without `apiVersion` and `kind`.
    pub fn serialize<S: Serializer>(
        v: &Option<Vec<PersistentVolumeClaim>>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let Some(list) = v else {
            return s.serialize_none();
        };
        let mut out = Vec::with_capacity(list.len());
        for pvc in list {
            let mut value = serde_json::to_value(pvc).map_err(serde::ser::Error::custom)?;
            if let Some(m) = value.as_object_mut() {
                m.remove("apiVersion");
                m.remove("kind");
            }
            out.push(value);
        }
        out.serialize(s)
    }
}
