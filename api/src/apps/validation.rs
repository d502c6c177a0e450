//! Validation rules OpenKruise's workload webhooks share (Advanced StatefulSet, CloneSet), in
//! their words: the selector and the pod template's metadata as `validateSpecSelector` /
//! `ValidatePodTemplateSpec` check them, the pod-specific annotations, the template diff the
//! `InPlaceOnly` rules read, and `UpdatePriorityStrategy.FieldsValidation`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde_json::Value;

use crate::apps::common::UpdatePriorityStrategy;
use crate::field::{FieldError, FieldErrors};
use crate::names;

/// Kubernetes' `ValidateNonnegativeField` message.
pub const NONNEGATIVE: &str = "must be greater than or equal to 0";

/// kruise's selector checks of a workload (`kind` as its message names it, e.g. `cloneset`):
/// the syntax (`ValidateLabelSelector`), emptiness, and whether it converts to a selector
/// (`LabelSelectorAsSelector`, whose failure kruise reports with an empty detail). The template
/// is only checked when it converts ([`validate_template_metadata`]).
pub fn validate_workload_selector(selector: &LabelSelector, kind: &str) -> FieldErrors {
    let mut errs = crate::selector::validate(selector, "spec.selector");
    if crate::selector::is_empty(selector) {
        errs.push(FieldError::invalid(
            "spec.selector",
            json_text(selector),
            &format!("empty selector is invalid for {kind}"),
        ));
    }
    if !crate::selector::converts(selector) {
        errs.push(FieldError::invalid(
            "spec.selector",
            json_text(selector),
            "",
        ));
    }
    errs
}

/// What kruise and `ValidatePodTemplateSpec` check of a workload template's metadata: a
/// non-empty selector matches its labels, label and annotation syntax (reported on
/// `spec.template.labels` and `spec.template.annotations`, without `metadata`, as upstream
/// names them), and the pod-specific annotations.
pub fn validate_template_metadata(
    selector: &LabelSelector,
    template: &PodTemplateSpec,
) -> FieldErrors {
    let mut errs = FieldErrors::default();
    let meta = template.metadata.as_ref();
    let labels = meta.and_then(|m| m.labels.clone()).unwrap_or_default();
    if !crate::selector::is_empty(selector) && !crate::selector::matches(selector, &labels) {
        errs.push(FieldError::invalid(
            "spec.template.metadata.labels",
            json_text(&labels),
            "`selector` does not match template `labels`",
        ));
    }
    errs.extend(names::validate_labels(&labels, "spec.template.labels"));
    let annotations = meta.and_then(|m| m.annotations.clone()).unwrap_or_default();
    errs.extend(names::validate_annotations(
        &annotations,
        "spec.template.annotations",
    ));
    errs.extend(validate_pod_specific_annotations(
        &annotations,
        template.spec.as_ref(),
        "spec.template.annotations",
    ));
    errs
}

/// The core of Kubernetes' `ValidatePodSpec` on a workload template's pod spec (`spec.template.spec`),
/// after kruise's `SetDefaultPodSpec`: volume names (DNS-1123 labels, unique, `extra_volumes`
/// appended as kruise mocks a volume per PVC template), at least one container, container and
/// init container names (DNS-1123 labels, unique across both lists), images required, and a
/// known `restartPolicy`. The rest of `ValidatePodSpec` is left to the API server's pod checks.
pub fn validate_pod_spec_core(spec: Option<&PodSpec>, extra_volumes: &[String]) -> FieldErrors {
    let f = "spec.template.spec";
    let mut errs = FieldErrors::default();
    let default = PodSpec::default();
    let spec = spec.unwrap_or(&default);
    let volumes = spec
        .volumes
        .iter()
        .flatten()
        .map(|v| v.name.as_str())
        .chain(extra_volumes.iter().map(String::as_str));
    let mut seen: Vec<&str> = Vec::new();
    for (i, name) in volumes.enumerate() {
        let field = format!("{f}.volumes[{i}].name");
        errs.extend(validate_dns_label_name(name, &field));
        if !name.is_empty() && seen.contains(&name) {
            errs.push(FieldError::duplicate(&field, name));
        }
        seen.push(name);
    }
    if spec.containers.is_empty() {
        errs.push(FieldError::required(&format!("{f}.containers"), ""));
    }
    let mut names: Vec<&str> = Vec::new();
    for (list, containers) in [
        ("containers", spec.containers.as_slice()),
        (
            "initContainers",
            spec.init_containers.as_deref().unwrap_or_default(),
        ),
    ] {
        for (i, c) in containers.iter().enumerate() {
            let field = format!("{f}.{list}[{i}]");
            errs.extend(validate_dns_label_name(&c.name, &format!("{field}.name")));
            if !c.name.is_empty() && names.contains(&c.name.as_str()) {
                errs.push(FieldError::duplicate(&format!("{field}.name"), &c.name));
            }
            names.push(&c.name);
            if c.image.as_deref().is_none_or(str::is_empty) {
                errs.push(FieldError::required(&format!("{field}.image"), ""));
            }
        }
    }
    let policy = spec.restart_policy.as_deref().unwrap_or("Always");
    let known = ["Always", "OnFailure", "Never"];
    if !policy.is_empty() && !known.contains(&policy) {
        errs.push(FieldError::not_supported(
            &format!("{f}.restartPolicy"),
            policy,
            &known,
        ));
    }
    errs
}

/// `ValidateDNS1123Label` on a name: required, then each of `IsDNS1123Label`'s messages.
fn validate_dns_label_name(name: &str, field: &str) -> FieldErrors {
    let mut errs = FieldErrors::default();
    if name.is_empty() {
        errs.push(FieldError::required(field, ""));
        return errs;
    }
    for m in names::is_dns1123_label(name) {
        errs.push(FieldError::invalid(field, name, &m));
    }
    errs
}

/// The JSON-patch operations (op, path) from the old template's pod spec to the new one's, as
/// kruise's `InPlaceOnly` checks compute them (`jsonpatch.CreatePatch` of the two specs).
pub fn template_spec_patch(
    old: &PodTemplateSpec,
    new: &PodTemplateSpec,
) -> Vec<(&'static str, String)> {
    let to_json = |t: &PodTemplateSpec| serde_json::to_value(&t.spec).unwrap_or(Value::Null);
    let mut ops = Vec::new();
    diff(&to_json(old), &to_json(new), String::new(), &mut ops);
    ops
}

/// Pod annotation: a mirror pod (needs `spec.nodeName`).
const MIRROR_POD: &str = "kubernetes.io/config.mirror";
/// Pod annotation: the pod's seccomp profile (deprecated).
const SECCOMP_POD: &str = "seccomp.security.alpha.kubernetes.io/pod";
/// Pod annotation prefix: a container's seccomp profile (deprecated).
const SECCOMP_CONTAINER_PREFIX: &str = "container.seccomp.security.alpha.kubernetes.io/";
/// Pod annotation prefix: a container's AppArmor profile (deprecated).
const APPARMOR_CONTAINER_PREFIX: &str = "container.apparmor.security.beta.kubernetes.io/";

/// Kubernetes' `ValidatePodSpecificAnnotations` with the options kruise's webhooks pass
/// (`AllowInvalidPodDeletionCost`: the deletion cost is not checked): a mirror-pod annotation
/// needs `spec.nodeName`, the seccomp and AppArmor annotations must name a valid profile (and,
/// for AppArmor, a container of the pod). `field` is the annotations' path.
pub fn validate_pod_specific_annotations(
    annotations: &BTreeMap<String, String>,
    spec: Option<&PodSpec>,
    field: &str,
) -> FieldErrors {
    let mut errs = FieldErrors::default();
    if let Some(v) = annotations.get(MIRROR_POD)
        && spec
            .and_then(|s| s.node_name.as_deref())
            .is_none_or(str::is_empty)
    {
        errs.push(FieldError::invalid(
            &format!("{field}[{MIRROR_POD}]"),
            v,
            "must set spec.nodeName if mirror pod annotation is set",
        ));
    }
    if let Some(p) = annotations.get(SECCOMP_POD) {
        errs.extend(validate_seccomp_profile(
            p,
            &format!("{field}.{SECCOMP_POD}"),
        ));
    }
    for (k, p) in annotations {
        if k.starts_with(SECCOMP_CONTAINER_PREFIX) {
            errs.extend(validate_seccomp_profile(p, &format!("{field}.{k}")));
        }
    }
    for (k, p) in annotations {
        let Some(container) = k.strip_prefix(APPARMOR_CONTAINER_PREFIX) else {
            continue;
        };
        let f = format!("{field}[{k}]");
        let has_container = spec.is_some_and(|s| {
            s.containers.iter().any(|c| c.name == container)
                || s.init_containers
                    .iter()
                    .flatten()
                    .any(|c| c.name == container)
                || s.ephemeral_containers
                    .iter()
                    .flatten()
                    .any(|c| c.name == container)
        });
        if !has_container {
            errs.push(FieldError::invalid(&f, container, "container not found"));
        }
        if !(p.is_empty()
            || p == "runtime/default"
            || p == "unconfined"
            || p.starts_with("localhost/"))
        {
            errs.push(FieldError::invalid(
                &f,
                p,
                &format!("invalid AppArmor profile name: {p:?}"),
            ));
        }
    }
    errs
}

/// Kubernetes' `ValidateSeccompProfile` on an annotation's value: `runtime/default`,
/// `docker/default`, `unconfined` or `localhost/<relative path without ..>`.
fn validate_seccomp_profile(p: &str, field: &str) -> FieldErrors {
    let mut errs = FieldErrors::default();
    if matches!(p, "runtime/default" | "docker/default" | "unconfined") {
        return errs;
    }
    let Some(path) = p.strip_prefix("localhost/") else {
        errs.push(FieldError::invalid(
            field,
            p,
            "must be a valid seccomp profile",
        ));
        return errs;
    };
    if path.starts_with('/') {
        errs.push(FieldError::invalid(field, path, "must be a relative path"));
    }
    if path.split('/').any(|part| part == "..") {
        errs.push(FieldError::invalid(field, path, "must not contain '..'"));
    }
    errs
}

/// kruise's `UpdatePriorityStrategy.FieldsValidation`, its first error.
pub(crate) fn priority_fields_error(p: &UpdatePriorityStrategy) -> Option<String> {
    let weights = p.weight_priority.as_deref().unwrap_or_default();
    let orders = p.order_priority.as_deref().unwrap_or_default();
    if !weights.is_empty() && !orders.is_empty() {
        return Some("only one of weightPriority and orderPriority can be used".into());
    }
    for w in weights {
        if !(0..=100).contains(&w.weight) {
            return Some("weight must be valid number in the range 1-100".into());
        }
        if crate::selector::is_empty(&w.match_selector) {
            return Some("selector can not be empty".into());
        }
        if !crate::selector::converts(&w.match_selector) {
            return Some("invalid selector".into());
        }
    }
    if orders.iter().any(|o| o.ordered_key.is_empty()) {
        return Some("order key can not be empty".into());
    }
    None
}

/// The JSON-patch operations (op, path) turning `a` into `b`, in the shape of the patch library
/// kruise uses: objects key by key, lists of scalars as a whole at their first difference, other
/// lists element by element plus adds/removes for the extra elements.
fn diff(a: &Value, b: &Value, path: String, ops: &mut Vec<(&'static str, String)>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, bv) in y {
                let p = format!("{path}/{}", k.replace('~', "~0").replace('/', "~1"));
                match x.get(k) {
                    None => ops.push(("add", p)),
                    Some(av) => diff(av, bv, p, ops),
                }
            }
            for k in x.keys().filter(|k| !y.contains_key(*k)) {
                ops.push((
                    "remove",
                    format!("{path}/{}", k.replace('~', "~0").replace('/', "~1")),
                ));
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            let simple = |l: &[Value]| l.iter().all(|v| !v.is_object() && !v.is_array());
            if simple(x) && simple(y) {
                if x != y {
                    let i = x.iter().zip(y).take_while(|(p, q)| p == q).count();
                    let op = match (i < x.len(), i < y.len()) {
                        (true, true) => "replace",
                        (false, true) => "add",
                        _ => "remove",
                    };
                    ops.push((op, format!("{path}/{i}")));
                }
                return;
            }
            let n = x.len().min(y.len());
            for i in (n..x.len()).rev() {
                ops.push(("remove", format!("{path}/{i}")));
            }
            for i in n..y.len() {
                ops.push(("add", format!("{path}/{i}")));
            }
            for i in 0..n {
                diff(&x[i], &y[i], format!("{path}/{i}"), ops);
            }
        }
        _ if a != b => ops.push(("replace", path)),
        _ => {}
    }
}

/// Equal as Go's `apiequality.Semantic.DeepEqual` sees it: an empty list, map or string is
/// the same as an absent one.
pub(crate) fn semantic_eq<T: serde::Serialize>(a: &T, b: &T) -> bool {
    fn prune(v: Value) -> Option<Value> {
        match v {
            Value::Null => None,
            Value::String(s) if s.is_empty() => None,
            Value::Array(l) if l.is_empty() => None,
            Value::Object(m) => {
                let m: serde_json::Map<String, Value> = m
                    .into_iter()
                    .filter_map(|(k, v)| prune(v).map(|v| (k, v)))
                    .collect();
                (!m.is_empty()).then_some(Value::Object(m))
            }
            v => Some(v),
        }
    }
    let j = |v: &T| serde_json::to_value(v).ok().and_then(prune);
    j(a) == j(b)
}

/// A value as JSON text, for an error's value.
pub(crate) fn json_text<T: serde::Serialize + ?Sized>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}
