//! Validation of a CloneSet as OpenKruise v1.9's validating webhook does it
//! (`pkg/webhook/cloneset/validating/validation.go` and its handler): the same rules, field
//! paths and messages, on the object after the mutating webhook's defaults
//! ([`CloneSetSpec::defaulted`]), which always runs first.
//!
//! - [`CloneSet::validate_defaulted`] / [`CloneSetSpec::validate_defaulted`]: CREATE
//!   (`validateCloneSet` / `validateCloneSetSpec`).
//! - [`CloneSet::validate_update`]: UPDATE (`validateCloneSetUpdate`): only `selector` is
//!   immutable (every other spec field is in kruise's mutable list, `volumeClaimTemplates`
//!   included); with `InPlaceOnly`, only container images of the template may change; then the
//!   CREATE rules.
//!
//! Left to others:
//! - `ValidateObjectMeta(.., NameIsDNSSubdomain, ..)` and `ValidateObjectMetaUpdate` are the API
//!   server's own checks of every custom resource: the same rules, in the same words.
//! - `podsToDelete` names new to the list must be pods of this CloneSet that are not
//!   terminating: kruise reads each pod; these functions read nothing (only the duplicates rule
//!   is here).
//! - Values an enum field cannot hold (an `updateStrategy.type` of `"Foo"`) never decode: the CRD
//!   schema lists the allowed values and the API server refuses the others.

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::cloneset::{
    CloneSet, CloneSetScaleStrategy, CloneSetSpec, CloneSetUpdateStrategy,
    CloneSetUpdateStrategyType,
};
use crate::apps::common::UpdateScatterTerm;
use crate::apps::validation::{
    NONNEGATIVE, json_text, priority_fields_error, semantic_eq, template_spec_patch,
    validate_pod_spec_core, validate_template_metadata, validate_workload_selector,
};
use crate::field::{FieldError, FieldErrors};
use crate::intstr;

/// The message of a forbidden spec change on UPDATE (kruise's words, quotes and all).
pub const FORBIDDEN_UPDATE: &str = "updates to cloneset spec for fields other than 'replicas', 'template', 'lifecycle', 'scaleStrategy', 'updateStrategy', 'minReadySeconds', 'progressDeadlineSeconds', 'volumeClaimTemplates' and 'revisionHistoryLimit' are forbidden";

/// kruise's refusal of a zero-width rollout.
pub const BOTH_LESS_THAN_ONE: &str = "maxUnavailable and maxSurge should not both be less than 1";

/// kruise's refusal of a surge with in-place-only updates.
pub const NO_SURGE_IN_PLACE_ONLY: &str = "can not use maxSurge with strategy type InPlaceOnly";

impl CloneSetSpec {
    /// kruise's `validateCloneSetSpec` on the spec as it is (give it [`CloneSetSpec::defaulted`]):
    /// replicas, selector, template, restart policy, scale and update strategies, progress
    /// deadline, in kruise's order.
    pub fn validate_defaulted(&self) -> FieldErrors {
        let mut errs = FieldErrors::default();
        let replicas = self.replicas();
        if replicas < 0 {
            errs.push(FieldError::invalid("spec.replicas", replicas, NONNEGATIVE));
        }
        errs.extend(validate_workload_selector(&self.selector, "cloneset"));
        if crate::selector::converts(&self.selector) {
            errs.extend(validate_template_metadata(&self.selector, &self.template));
            // kruise adds a volume per PVC template before `ValidatePodTemplateSpec`.
            let claims: Vec<String> = self
                .volume_claim_templates
                .iter()
                .flatten()
                .map(|c| c.metadata.name.clone().unwrap_or_default())
                .collect();
            errs.extend(validate_pod_spec_core(self.template.spec.as_ref(), &claims));
            if self.template.spec.as_ref().is_some_and(|s| {
                s.ephemeral_containers
                    .as_ref()
                    .is_some_and(|e| !e.is_empty())
            }) {
                errs.push(FieldError::forbidden(
                    "spec.template.spec.ephemeralContainers",
                    "ephemeral containers not allowed in pod template",
                ));
            }
        }
        let pod = self.template.spec.as_ref();
        if let Some(rp) = pod.and_then(|s| s.restart_policy.as_deref())
            && !rp.is_empty()
            && rp != "Always"
        {
            errs.push(FieldError::not_supported(
                "spec.template.spec.restartPolicy",
                rp,
                &["Always"],
            ));
        }
        if pod.is_some_and(|s| s.active_deadline_seconds.is_some()) {
            errs.push(FieldError::forbidden(
                "spec.template.spec.activeDeadlineSeconds",
                "activeDeadlineSeconds in cloneset is not Supported",
            ));
        }
        if let Some(ss) = &self.scale_strategy {
            errs.extend(validate_scale_strategy(ss));
        }
        let us = self.update_strategy.clone().unwrap_or_default();
        errs.extend(validate_update_strategy(&us, replicas));
        if let Some(pd) = self.progress_deadline_seconds {
            let f = "spec.progressDeadlineSeconds";
            if pd < 0 {
                errs.push(FieldError::invalid(f, pd, NONNEGATIVE));
            }
            if pd != i32::MAX && pd <= self.min_ready_seconds.unwrap_or(0) {
                errs.push(FieldError::invalid(
                    f,
                    pd,
                    "must be greater than minReadySeconds",
                ));
            }
        }
        errs
    }
}

impl CloneSet {
    /// kruise's `validateCloneSet` (CREATE) on the object with the mutating webhook's defaults:
    /// [`CloneSetSpec::validate_defaulted`] (the metadata rules are the API server's own).
    pub fn validate_defaulted(&self) -> FieldErrors {
        self.spec.validate_defaulted()
    }

    /// kruise's `validateCloneSetUpdate` (`self` is the new object, both defaulted): a changed
    /// selector is forbidden, with `InPlaceOnly` a template change other than a container image
    /// is forbidden, then every CREATE rule ([`CloneSet::validate_defaulted`]).
    pub fn validate_update(&self, old: &CloneSet) -> FieldErrors {
        let mut errs = FieldErrors::default();
        if !semantic_eq(&self.spec.selector, &old.spec.selector) {
            errs.push(FieldError::forbidden("spec", FORBIDDEN_UPDATE));
        }
        let in_place_only = self.spec.update_strategy.as_ref().and_then(|u| u.type_)
            == Some(CloneSetUpdateStrategyType::InPlaceOnly);
        if in_place_only
            && let Some((op, path)) = template_spec_patch(&old.spec.template, &self.spec.template)
                .into_iter()
                .find(|(op, path)| *op != "replace" || !is_container_image(path))
        {
            errs.push(FieldError::forbidden(
                "spec",
                &format!(
                    "only allowed to update images in spec for InPlaceOnly, but found {op} {path}"
                ),
            ));
        }
        errs.extend(self.validate_defaulted());
        errs
    }
}

/// kruise's `validateScaleStrategy`, without the pod reads: no name twice in `podsToDelete`.
fn validate_scale_strategy(ss: &CloneSetScaleStrategy) -> FieldErrors {
    let mut errs = FieldErrors::default();
    let list = ss.pods_to_delete.as_deref().unwrap_or_default();
    // Go's `CheckDuplicate`: every repeat, as often as it repeats.
    let dups: Vec<&str> = list
        .iter()
        .enumerate()
        .filter(|(i, p)| list[..*i].contains(p))
        .map(|(_, p)| p.as_str())
        .collect();
    if !dups.is_empty() {
        errs.push(FieldError::invalid(
            "spec.scaleStrategy.podsToDelete",
            json_text(list),
            &format!("duplicated items [{}]", dups.join(" ")),
        ));
    }
    errs
}

/// kruise's `validateUpdateStrategy` with the (defaulted) replica count.
fn validate_update_strategy(us: &CloneSetUpdateStrategy, replicas: i32) -> FieldErrors {
    let f = "spec.updateStrategy";
    let mut errs = FieldErrors::default();
    match us.type_ {
        Some(
            CloneSetUpdateStrategyType::ReCreate
            | CloneSetUpdateStrategyType::InPlaceIfPossible
            | CloneSetUpdateStrategyType::InPlaceOnly,
        ) => {}
        other => errs.push(FieldError::invalid(
            &format!("{f}.type"),
            other.map(|t| format!("{t:?}")).unwrap_or_default(),
            "must be 'ReCreate', InPlaceIfPossible or 'InPlaceOnly'",
        )),
    }
    let partition = match scaled(us.partition.as_ref(), replicas) {
        Ok(p) => p,
        Err(e) => {
            errs.push(FieldError::invalid(
                &format!("{f}.partition"),
                shown(us.partition.as_ref()),
                &format!("failed GetScaledValueFromIntOrPercent for partition: {e}"),
            ));
            0
        }
    };
    if partition < 0 {
        errs.push(FieldError::invalid(
            &format!("{f}.partition"),
            partition,
            NONNEGATIVE,
        ));
    }
    if let Some(e) = us
        .priority_strategy
        .as_ref()
        .and_then(priority_fields_error)
    {
        errs.push(FieldError::required(&format!("{f}.priorityStrategy"), &e));
    }
    if let Some(e) = us
        .scatter_strategy
        .as_deref()
        .and_then(scatter_fields_error)
    {
        errs.push(FieldError::required(&format!("{f}.scatterStrategy"), &e));
    }
    let mut max_unavailable = 0;
    if us.max_unavailable.is_some() {
        match scaled(us.max_unavailable.as_ref(), replicas) {
            Ok(v) => max_unavailable = v,
            Err(e) => errs.push(FieldError::invalid(
                &format!("{f}.maxUnavailable"),
                shown(us.max_unavailable.as_ref()),
                &format!("failed GetScaledValueFromIntOrPercent for maxUnavailable: {e}"),
            )),
        }
    }
    let mut max_surge = 0;
    if us.max_surge.is_some() {
        match scaled(us.max_surge.as_ref(), replicas) {
            Ok(v) => max_surge = v,
            Err(e) => errs.push(FieldError::invalid(
                &format!("{f}.maxSurge"),
                shown(us.max_surge.as_ref()),
                &format!("failed GetScaledValueFromIntOrPercent for maxSurge: {e}"),
            )),
        }
        if us.type_ == Some(CloneSetUpdateStrategyType::InPlaceOnly) && max_surge > 0 {
            errs.push(FieldError::invalid(
                &format!("{f}.maxSurge"),
                shown(us.max_surge.as_ref()),
                NO_SURGE_IN_PLACE_ONLY,
            ));
        }
    }
    if replicas > 0 && max_unavailable < 1 && max_surge < 1 {
        errs.push(FieldError::invalid(
            &format!("{f}.maxUnavailable"),
            shown(us.max_unavailable.as_ref()),
            BOTH_LESS_THAN_ONE,
        ));
    }
    errs
}

/// kruise's `UpdateScatterStrategy.FieldsValidation`, its first error.
fn scatter_fields_error(terms: &[UpdateScatterTerm]) -> Option<String> {
    for (i, t) in terms.iter().enumerate() {
        if t.key.is_empty() {
            return Some("key should not be empty".into());
        }
        if terms[..i]
            .iter()
            .any(|o| o.key == t.key && o.value == t.value)
        {
            return Some(format!("duplicated key={} value={}", t.key, t.value));
        }
    }
    None
}

/// kruise's `GetScaledValueFromIntOrPercent(v, replicas, true)`: an integer as it is, a
/// percent of `replicas` rounded up (Go's `ParseFloat`, so `"1.5%"` is a percent); a string
/// without `%` is an error.
fn scaled(v: Option<&IntOrString>, replicas: i32) -> Result<i64, String> {
    match v {
        None => Err("nil value for IntOrString".into()),
        Some(IntOrString::Int(i)) => Ok(i64::from(*i)),
        Some(IntOrString::String(s)) => {
            let Some(number) = s.strip_suffix('%') else {
                return Err("invalid type: string is not a percentage".into());
            };
            let p = parse_float(number)?;
            // Go converts the float to `int` as it is (saturating here).
            Ok((p * f64::from(replicas) / 100.0).ceil() as i64)
        }
    }
}

/// Go's `strconv.ParseFloat(s, 64)` for the decimal forms, with its error messages.
fn parse_float(s: &str) -> Result<f64, String> {
    let syntax = || format!("strconv.ParseFloat: parsing {s:?}: invalid syntax");
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let word = body.to_ascii_lowercase();
    if matches!(word.as_str(), "inf" | "infinity" | "nan") {
        return s.parse::<f64>().map_err(|_| syntax());
    }
    if !body
        .bytes()
        .all(|c| c.is_ascii_digit() || b".eE+-".contains(&c))
    {
        return Err(syntax());
    }
    let v = s.parse::<f64>().map_err(|_| syntax())?;
    if v.is_infinite() {
        return Err(format!(
            "strconv.ParseFloat: parsing {s:?}: value out of range"
        ));
    }
    Ok(v)
}

/// An IntOrString as Go's `(*IntOrString).String()` shows it (`<nil>` when unset).
fn shown(v: Option<&IntOrString>) -> String {
    v.map_or_else(|| "<nil>".into(), intstr::display)
}

/// kruise's CloneSet in-place pattern, anchored: `^/containers/([0-9]+)/image$`.
fn is_container_image(path: &str) -> bool {
    path.strip_prefix("/containers/")
        .and_then(|rest| rest.strip_suffix("/image"))
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()))
}

#[cfg(test)]
#[path = "cloneset_validation_tests.rs"]
mod tests;
