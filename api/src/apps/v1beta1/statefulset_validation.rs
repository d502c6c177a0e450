//! Validation of an Advanced StatefulSet, as OpenKruise's validating webhook does it
//! (`pkg/webhook/statefulset/validating/statefulset_validation.go` and its handler): the same
//! rules, field paths and messages, on the v1beta1 form of either version after the mutating
//! webhook's defaults.
//!
//! - [`StatefulSet::validate`] / [`StatefulSet::validate_defaulted`]: CREATE and UPDATE
//!   (`validateStatefulSet`): the name ([`validate_name`]) and the spec.
//! - [`StatefulSetSpec::validate`] / [`StatefulSetSpec::validate_defaulted`]: the spec alone
//!   (`validateStatefulSetSpec`), the selector's and the template's label and annotation syntax
//!   included (apimachinery's rules, [`crate::names`]).
//! - [`StatefulSet::validate_update`]: what may change (`ValidateStatefulSetUpdate`): only
//!   `replicas`, `ordinals`, `template`, `reserveOrdinals`, `lifecycle`, `revisionHistoryLimit`,
//!   `persistentVolumeClaimRetentionPolicy`, `volumeClaimTemplates`, `volumeClaimUpdateStrategy`,
//!   `scaleStrategy` and `updateStrategy`; so `selector`, `serviceName` and
//!   `podManagementPolicy` are immutable.
//! - [`validate_template_in_place_only`]: with `InPlaceOnly`, only container images may change.
//! - [`validate_volume_claim_template_update`]: with `volumeClaimUpdateStrategy`
//!   `OnPodRollingUpdate`, PVC templates may only grow, on storage classes that allow it.
//!
//! Values an enum field cannot hold (a `podManagementPolicy` of `"Foo"`) never reach these
//! functions: the CRD schema lists the allowed values and the API server refuses the others.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::statefulset::{
    MAX_MIN_READY_SECONDS, PodManagementPolicy, StatefulSet, StatefulSetSpec,
    StatefulSetUpdateStrategyType, VolumeClaimUpdateStrategyType,
};
use crate::apps::common::PodUpdatePolicy;
use crate::apps::validation::{
    NONNEGATIVE, json_text, priority_fields_error, semantic_eq, template_spec_patch,
    validate_template_metadata, validate_workload_selector,
};
use crate::field::{FieldError, FieldErrors};
use crate::{intstr, labels, names};

/// The message of a forbidden spec change on UPDATE (kruise's words, quotes and all).
pub const FORBIDDEN_UPDATE: &str = "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'reserveOrdinals', 'lifecycle', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy', `volumeClaimTemplates`, `VolumeClaimUpdateStrategy` and 'updateStrategy' are forbidden";

/// Kubernetes' `IsValidPercent` message (the double space is upstream's `RegexError`).
pub const PERCENT_MSG: &str = "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')";

impl StatefulSetSpec {
    /// Checks the spec as OpenKruise's validating webhook does: on the spec with the mutating
    /// webhook's defaults ([`StatefulSetSpec::defaulted`]), which always runs first.
    pub fn validate(&self) -> FieldErrors {
        self.defaulted().validate_defaulted()
    }

    /// kruise's `validateStatefulSetSpec` on the spec as it is: a missing
    /// `podManagementPolicy`, `updateStrategy.type`, `rollingUpdate.podUpdatePolicy` or
    /// `rollingUpdate.maxUnavailable` is reported as required.
    pub fn validate_defaulted(&self) -> FieldErrors {
        let mut errs = FieldErrors::default();
        if self.pod_management_policy.is_none() {
            errs.push(FieldError::required("spec.podManagementPolicy", ""));
        }
        errs.extend(validate_reserve_ordinals(self.reserve_ordinals.as_deref()));
        if let Some(mu) = self
            .scale_strategy
            .as_ref()
            .and_then(|s| s.max_unavailable.as_ref())
        {
            errs.extend(self.validate_max_unavailable(mu, "spec.scaleStrategy.maxUnavailable"));
        }
        errs.extend(self.validate_update_strategy());
        // PVC retention values are enums: the schema refuses anything but Retain and Delete.
        if let Some(r) = self.replicas
            && r < 0
        {
            errs.push(FieldError::invalid("spec.replicas", r, NONNEGATIVE));
        }
        // kruise's `validateSpecSelector`; `ValidatePodTemplateSpecForStatefulSet` only when the
        // selector converts.
        errs.extend(validate_workload_selector(&self.selector, "statefulset"));
        if crate::selector::converts(&self.selector) {
            errs.extend(validate_template_metadata(&self.selector, &self.template));
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
                "activeDeadlineSeconds in StatefulSet is not Supported",
            ));
        }
        errs
    }

    fn validate_update_strategy(&self) -> FieldErrors {
        let mut errs = FieldErrors::default();
        let Some(us) = self.update_strategy.as_ref().filter(|u| u.type_.is_some()) else {
            errs.push(FieldError::required("spec.updateStrategy", ""));
            return errs;
        };
        let f = "spec.updateStrategy.rollingUpdate";
        let Some(ru) = &us.rolling_update else {
            return errs;
        };
        if us.type_ == Some(StatefulSetUpdateStrategyType::OnDelete) {
            errs.push(FieldError::invalid(
                f,
                json_text(ru),
                "only allowed for updateStrategy 'RollingUpdate'",
            ));
            return errs;
        }
        if let Some(p) = ru.partition
            && p < 0
        {
            errs.push(FieldError::invalid(
                &format!("{f}.partition"),
                p,
                NONNEGATIVE,
            ));
        }
        if let Some(m) = ru.min_ready_seconds {
            if m < 0 {
                errs.push(FieldError::invalid(
                    &format!("{f}.minReadySeconds"),
                    m,
                    NONNEGATIVE,
                ));
            }
            if m > MAX_MIN_READY_SECONDS {
                errs.push(FieldError::invalid(
                    &format!("{f}.minReadySeconds"),
                    m,
                    "must be no more than 300 seconds",
                ));
            }
        }
        match &ru.max_unavailable {
            None => errs.push(FieldError::required(&format!("{f}.maxUnavailable"), "")),
            Some(mu) => {
                errs.extend(self.validate_max_unavailable(mu, &format!("{f}.maxUnavailable")))
            }
        }
        match ru.pod_update_policy {
            None => errs.push(FieldError::required(&format!("{f}.podUpdatePolicy"), "")),
            Some(PodUpdatePolicy::ReCreate) => {}
            Some(policy) => {
                let gates = self
                    .template
                    .spec
                    .as_ref()
                    .and_then(|s| s.readiness_gates.as_ref());
                if !gates.is_some_and(|g| {
                    g.iter()
                        .any(|g| g.condition_type == labels::INPLACE_UPDATE_READY)
                }) {
                    errs.push(FieldError::invalid(
                        "spec.template.spec.readinessGates",
                        json_text(&gates),
                        &format!(
                            "must contains {} when podUpdatePolicy is {policy:?}",
                            labels::INPLACE_UPDATE_READY
                        ),
                    ));
                }
            }
        }
        if let Some(uu) = &ru.unordered_update {
            if self.pod_management_policy != Some(PodManagementPolicy::Parallel) {
                errs.push(FieldError::required(
                    &format!("{f}.unorderedUpdate"),
                    "unorderedUpdate can only work with Parallel PodManagementPolicyType",
                ));
            }
            if let Some(e) = uu
                .priority_strategy
                .as_ref()
                .and_then(priority_fields_error)
            {
                errs.push(FieldError::required(
                    &format!("{f}.unorderedUpdate.priorityStrategy"),
                    &e,
                ));
            }
        }
        errs
    }

    /// kruise's `validateMaxUnavailableField`: a non-negative int or a percent, at least 1 of
    /// one replica (rounded up), and exactly `1` unless the pods are managed in `Parallel`.
    fn validate_max_unavailable(&self, mu: &IntOrString, field: &str) -> FieldErrors {
        let mut errs = FieldErrors::default();
        let shown = intstr::display(mu);
        match mu {
            IntOrString::String(s) if !is_percent(s) => {
                errs.push(FieldError::invalid(field, &shown, PERCENT_MSG))
            }
            IntOrString::Int(i) if *i < 0 => errs.push(FieldError::invalid(field, i, NONNEGATIVE)),
            _ => {}
        }
        match value_of_one(mu) {
            Err(e) => errs.push(FieldError::invalid(
                field,
                &shown,
                &format!("getValueFromIntOrPercent error: {e}"),
            )),
            Ok(v) if v < 1 => errs.push(FieldError::invalid(
                field,
                &shown,
                "should not be less than 1",
            )),
            Ok(_) => {}
        }
        if self.pod_management_policy != Some(PodManagementPolicy::Parallel)
            && *mu != IntOrString::Int(1)
        {
            errs.push(FieldError::invalid(
                field,
                &shown,
                "can only work with Parallel PodManagementPolicyType",
            ));
        }
        errs
    }
}

impl StatefulSet {
    /// kruise's `validateStatefulSet`, run on CREATE and UPDATE: the name rules of
    /// `ValidateObjectMeta` ([`validate_name`]), then [`StatefulSetSpec::validate`] (on the
    /// spec with the mutating webhook's defaults).
    pub fn validate(&self) -> FieldErrors {
        let mut errs = validate_name(&self.metadata);
        errs.extend(self.spec.validate());
        errs
    }

    /// [`StatefulSet::validate`] on the spec as it is ([`StatefulSetSpec::validate_defaulted`]).
    pub fn validate_defaulted(&self) -> FieldErrors {
        let mut errs = validate_name(&self.metadata);
        errs.extend(self.spec.validate_defaulted());
        errs
    }

    /// kruise's `ValidateStatefulSetUpdate` (`self` is the new object, both defaulted): a
    /// change to any spec field but the mutable ones is forbidden; `replicas` must not be
    /// negative. The metadata rules are the API server's own.
    pub fn validate_update(&self, old: &StatefulSet) -> FieldErrors {
        let mut errs = FieldErrors::default();
        let (new, old) = (&self.spec, &old.spec);
        let immutable_changed = !semantic_eq(&new.selector, &old.selector)
            || new.service_name.as_deref().unwrap_or_default()
                != old.service_name.as_deref().unwrap_or_default()
            || new.pod_management_policy != old.pod_management_policy;
        if immutable_changed {
            errs.push(FieldError::forbidden("spec", FORBIDDEN_UPDATE));
        }
        if let Some(r) = new.replicas
            && r < 0
        {
            errs.push(FieldError::invalid("spec.replicas", r, NONNEGATIVE));
        }
        errs
    }
}

/// kruise's `ValidateObjectMeta(.., ValidateStatefulSetName, ..)`, the part of it that can
/// refuse an object the API server accepts: `generateName` (its trailing dash masked) and
/// `name` must be DNS-1123 labels (at most 63 characters, no dots), where the API server only
/// asks for DNS-1123 subdomains.
///
/// The rest of `ValidateObjectMeta` (a subdomain name, the name or generateName being required,
/// namespace, labels, annotations, owner references, finalizers) is the API server's own check
/// of every custom resource, made right after mutating webhooks and before validating ones: a
/// name that is not even a subdomain is left to it, so that the user reads the API server's
/// message, as with kruise, whose validating webhook never sees such an object. graft's
/// webhook is a mutating one, so on CREATE a generated name is not there yet: only
/// `generateName` is checked then.
pub fn validate_name(meta: &ObjectMeta) -> FieldErrors {
    let mut errs = FieldErrors::default();
    for (field, value, prefix) in [
        ("metadata.generateName", meta.generate_name.as_deref(), true),
        ("metadata.name", meta.name.as_deref(), false),
    ] {
        let Some(value) = value.filter(|v| !v.is_empty()) else {
            continue;
        };
        let checked = if prefix {
            names::mask_trailing_dash(value)
        } else {
            value.to_string()
        };
        if !names::is_dns1123_subdomain(&checked).is_empty() {
            continue;
        }
        for m in names::is_dns1123_label(&checked) {
            errs.push(FieldError::invalid(field, value, &m));
        }
    }
    errs
}

/// kruise's `validateTemplateInPlaceOnly`: between the old and the new template's pod spec only
/// `replace` operations on a path containing `/containers/<n>/image` are allowed (the pattern is
/// not anchored, as upstream's). The error names the first other operation, as `"<op> <path>"`.
pub fn validate_template_in_place_only(
    old: &PodTemplateSpec,
    new: &PodTemplateSpec,
) -> Result<(), String> {
    match template_spec_patch(old, new)
        .into_iter()
        .find(|(op, path)| *op != "replace" || !is_container_image_path(path))
    {
        Some((op, path)) => Err(format!("{op} {path}")),
        None => Ok(()),
    }
}

/// The message kruise refuses an [`validate_template_in_place_only`] failure with.
pub fn in_place_only_message(detail: &str) -> String {
    format!(
        "invalid template modified with InPlaceOnly strategy: {detail}, currently only image update is allowed for InPlaceOnly"
    )
}

/// A StorageClass as [`validate_volume_claim_template_update`] needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StorageClassLookup {
    /// Found; `allow_volume_expansion` as the class says (unset allows).
    Found {
        /// The class name.
        name: String,
        /// `allowVolumeExpansion`.
        allow_volume_expansion: Option<bool>,
    },
    /// No class of that name (or, for the default class, none is marked default).
    Missing,
    /// The API could not be asked.
    Failed,
}

/// kruise's `ValidateVolumeClaimTemplateUpdate` (with its gate `StatefulSetAutoResizePVCGate`
/// on): with `volumeClaimUpdateStrategy.type: OnPodRollingUpdate` templates can be neither added
/// nor removed nor renamed, and may only change their storage size, on a class that does not
/// forbid expansion. `storage_class(None)` looks up the default class. The first problem is
/// reported.
pub fn validate_volume_claim_template_update(
    new: &StatefulSetSpec,
    old: &StatefulSetSpec,
    storage_class: &dyn Fn(Option<&str>) -> StorageClassLookup,
) -> FieldErrors {
    let mut errs = FieldErrors::default();
    if new
        .volume_claim_update_strategy
        .as_ref()
        .and_then(|s| s.type_)
        != Some(VolumeClaimUpdateStrategyType::OnPodRollingUpdate)
    {
        return errs;
    }
    let (new_t, old_t) = (
        new.volume_claim_templates.as_deref().unwrap_or_default(),
        old.volume_claim_templates.as_deref().unwrap_or_default(),
    );
    if new_t.len() != old_t.len() {
        errs.push(FieldError::invalid(
            "spec.volumeClaimTemplates",
            json_text(&new_t),
            "volumeClaimTemplate can not be added or deleted when OnRollingUpdate",
        ));
        return errs;
    }
    let name = |c: &PersistentVolumeClaim| c.metadata.name.clone().unwrap_or_default();
    let by_name: BTreeMap<String, &PersistentVolumeClaim> =
        old_t.iter().map(|c| (name(c), c)).collect();
    for t in new_t {
        let f = format!("spec.volumeClaimTemplates[{}]", name(t));
        let Some(old) = by_name.get(&name(t)) else {
            errs.push(FieldError::forbidden(
                &format!("{f}.name"),
                "volumeClaimTemplate name can not be modified",
            ));
            return errs;
        };
        if !compatible_without_size(old, t) {
            errs.push(FieldError::invalid(
                &f,
                json_text(t),
                "volumeClaimTemplate can not be modified when OnRollingUpdate",
            ));
            return errs;
        }
        if !storage_changed(old, t) {
            continue;
        }
        let class = t
            .spec
            .as_ref()
            .and_then(|s| s.storage_class_name.as_deref());
        let sc_field = format!("{f}.spec.storageClassName");
        let (sc_name, allow) = match (class, storage_class(class)) {
            (
                _,
                StorageClassLookup::Found {
                    name,
                    allow_volume_expansion,
                },
            ) => (name, allow_volume_expansion),
            // No default class: nothing to check against.
            (None, StorageClassLookup::Missing) => continue,
            (None, StorageClassLookup::Failed) => {
                errs.push(FieldError::invalid(
                    &sc_field,
                    "nil",
                    "can not list storage class",
                ));
                return errs;
            }
            (Some(c), _) => {
                errs.push(FieldError::invalid(&sc_field, c, "can not get sc"));
                return errs;
            }
        };
        if allow == Some(false) {
            errs.push(FieldError::forbidden(
                &format!("{f}.spec.resources.requests.storage"),
                &format!("storage class {sc_name} does not support volume expansion"),
            ));
            return errs;
        }
    }
    errs
}

/// kruise's `validateReserveOrdinals`: integers not negative, strings ranges like `"3-5"`. Its
/// errors name the field `spec` and show the whole list.
pub fn validate_reserve_ordinals(reserve: Option<&[IntOrString]>) -> FieldErrors {
    let mut errs = FieldErrors::default();
    let Some(list) = reserve else {
        return errs;
    };
    let shown = json_text(&list);
    for (i, elem) in list.iter().enumerate() {
        match elem {
            IntOrString::String(s) => {
                if !is_range(s) {
                    errs.push(FieldError::invalid(
                        "spec",
                        &shown,
                        &format!("{i} th reserve ordinal is not a valid range: {s}"),
                    ));
                }
                if let Err(e) = parse_range(s) {
                    errs.push(FieldError::invalid(
                        "spec",
                        &shown,
                        &format!("{i} th reserve ordinal is invalid: {s}, err = {e}"),
                    ));
                }
            }
            IntOrString::Int(v) if *v < 0 => errs.push(FieldError::invalid(
                "spec",
                &shown,
                &format!("{i} th reserve ordinal is negative: {v}"),
            )),
            IntOrString::Int(_) => {}
        }
    }
    errs
}

/// `^\d+-\d+$`.
fn is_range(s: &str) -> bool {
    s.split_once('-').is_some_and(|(a, b)| {
        [a, b]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()))
    })
}

/// kruise's `ParseRange`: `"<start>-<end>"` with `start <= end`, Go's messages.
fn parse_range(s: &str) -> Result<(i64, i64), String> {
    let parts: Vec<&str> = s.split('-').collect();
    let [a, b] = parts.as_slice() else {
        return Err(format!("invalid range {s}"));
    };
    let (start, end) = (atoi(a)?, atoi(b)?);
    if start > end {
        return Err(format!("invalid range {s}"));
    }
    Ok((start, end))
}

/// Go's `strconv.Atoi` (64-bit `int`), with its error messages.
fn atoi(s: &str) -> Result<i64, String> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return Err(format!("strconv.Atoi: parsing {s:?}: invalid syntax"));
    }
    s.parse::<i64>()
        .map_err(|_| format!("strconv.Atoi: parsing {s:?}: value out of range"))
}

/// `^[0-9]+%$`.
fn is_percent(s: &str) -> bool {
    s.strip_suffix('%')
        .is_some_and(|d| !d.is_empty() && d.bytes().all(|c| c.is_ascii_digit()))
}

/// Go's `GetValueFromIntOrPercent(v, 1, true)`: numeric strings are read as numbers, percents of
/// one replica round up.
fn value_of_one(v: &IntOrString) -> Result<i64, String> {
    match v {
        IntOrString::Int(i) => Ok(i64::from(*i)),
        IntOrString::String(s) => {
            let (digits, percent) = match s.strip_suffix('%') {
                Some(d) => (d, true),
                None => (s.as_str(), false),
            };
            let n = atoi(digits)
                .map_err(|e| format!("invalid value for IntOrString: invalid value {s:?}: {e}"))?;
            Ok(if percent { (n + 99).div_euclid(100) } else { n })
        }
    }
}

/// kruise's `IsClaimCompatibleWithoutSize`: same storage class when both name one, same access
/// modes in the same order.
fn compatible_without_size(old: &PersistentVolumeClaim, new: &PersistentVolumeClaim) -> bool {
    let (o, n) = (
        old.spec.clone().unwrap_or_default(),
        new.spec.clone().unwrap_or_default(),
    );
    if let (Some(a), Some(b)) = (&n.storage_class_name, &o.storage_class_name)
        && a != b
    {
        return false;
    }
    o.access_modes.unwrap_or_default() == n.access_modes.unwrap_or_default()
}

/// kruise's `isPVCResize`: the storage request or limit differs (absent is zero).
fn storage_changed(old: &PersistentVolumeClaim, new: &PersistentVolumeClaim) -> bool {
    let storage = |c: &PersistentVolumeClaim, limits: bool| {
        let r = c.spec.as_ref().and_then(|s| s.resources.as_ref());
        let list = if limits {
            r.and_then(|r| r.limits.as_ref())
        } else {
            r.and_then(|r| r.requests.as_ref())
        };
        list.and_then(|l| l.get("storage"))
            .and_then(|q| crate::quantity::parse(&q.0))
            .map_or(0, |p| p.nanos)
    };
    storage(old, false) != storage(new, false) || storage(old, true) != storage(new, true)
}

/// Whether a JSON-patch path contains `/containers/<digits>/image` (kruise's unanchored
/// `/containers/([0-9]+)/image`).
fn is_container_image_path(path: &str) -> bool {
    path.match_indices("/containers/").any(|(i, m)| {
        let rest = &path[i + m.len()..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        digits > 0 && rest[digits..].starts_with("/image")
    })
}

#[cfg(test)]
#[path = "statefulset_validation_tests.rs"]
mod tests;
