//! `resourcesPolicy` (OpenKruise 1.9): a sidecar's resources computed at injection from the pod's
//! other containers (`pkg/webhook/pod/mutating/sidecarset_resources.go`).
//!
//! The target containers are the pod's containers and native-sidecar init containers whose names
//! match `targetContainersNameRegex`, minus every container a matched SidecarSet injects. Their
//! limits and requests are summed or maxed; a limit exists only when every target has one
//! (otherwise the sidecar's limit stays unlimited), a missing request counts as zero. Each
//! expression then turns the aggregate into the sidecar's value ([`expr`]).

mod expr;
mod quantity;

use std::collections::{BTreeMap, BTreeSet};

use graft_api::apps::v1beta1::sidecarset::{SidecarContainer, SidecarSet};
use k8s_openapi::api::core::v1::{Container, Pod, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity as K8sQuantity;
use regex::Regex;

use super::SidecarSetError;
use expr::{Value, Variable};
use quantity::Quantity;

const CPU: &str = "cpu";
const MEMORY: &str = "memory";

/// Sets `sidecar.resources` from its `resourcesPolicy` (no policy: unchanged). `matched` are the
/// SidecarSets being injected into the pod; `sidecarset` names the one `sidecar` belongs to.
pub fn apply(
    pod: &Pod,
    sidecar: &mut SidecarContainer,
    matched: &[SidecarSet],
    sidecarset: &str,
) -> Result<(), SidecarSetError> {
    let Some(policy) = sidecar.resources_policy.clone() else {
        return Ok(());
    };
    let fail = |message: String| SidecarSetError::ResourcesPolicy {
        sidecarset: sidecarset.to_string(),
        container: sidecar.container.name.clone(),
        message,
    };
    let regex = policy.target_containers_name_regex.unwrap_or_default();
    let targets = target_containers(pod, &regex, matched)
        .map_err(|e| fail(format!("failed to get target containers: {e}")))?;
    if targets.is_empty() {
        return Err(fail(format!(
            "no containers match the regex pattern {regex:?}"
        )));
    }
    let aggregate = Aggregate::of(&targets, &policy.target_containers_mode).map_err(&fail)?;
    let exprs = &policy.resources_expr;
    let mut limits = BTreeMap::new();
    if let Some(l) = &exprs.limits {
        for (name, label, expr) in [(CPU, "CPU", &l.cpu), (MEMORY, "memory", &l.memory)] {
            let expr = expr.as_deref().unwrap_or_default();
            // An unlimited aggregate limit leaves the sidecar's limit unset.
            let Some(agg) = aggregate.limit(name).filter(|_| !expr.is_empty()) else {
                continue;
            };
            let q = evaluate(expr, agg)
                .map_err(|e| fail(format!("failed to evaluate {label} limits expression: {e}")))?;
            limits.insert(name.to_string(), K8sQuantity(q.to_string()));
        }
    }
    let mut requests = BTreeMap::new();
    if let Some(r) = &exprs.requests {
        for (name, label, expr) in [(CPU, "CPU", &r.cpu), (MEMORY, "memory", &r.memory)] {
            let expr = expr.as_deref().unwrap_or_default();
            if expr.is_empty() {
                continue;
            }
            let q = evaluate(expr, aggregate.request(name)).map_err(|e| {
                fail(format!(
                    "failed to evaluate {label} requests expression: {e}"
                ))
            })?;
            requests.insert(name.to_string(), K8sQuantity(q.to_string()));
        }
    }
    sidecar.container.resources = Some(ResourceRequirements {
        limits: (!limits.is_empty()).then_some(limits),
        requests: (!requests.is_empty()).then_some(requests),
        claims: None,
    });
    Ok(())
}

/// `getTargetContainers`: native-sidecar init containers, then containers, whose names match
/// `regex` (unanchored) and that no matched SidecarSet injects.
fn target_containers<'p>(
    pod: &'p Pod,
    regex: &str,
    matched: &[SidecarSet],
) -> Result<Vec<&'p Container>, String> {
    let pattern = Regex::new(regex).map_err(|e| format!("invalid regex pattern {regex:?}: {e}"))?;
    let injected: BTreeSet<&str> = matched
        .iter()
        .flat_map(|s| s.spec.init_containers().iter().chain(s.spec.containers()))
        .map(|c| c.name())
        .collect();
    let Some(spec) = pod.spec.as_ref() else {
        return Ok(Vec::new());
    };
    let native_sidecars = spec
        .init_containers
        .iter()
        .flatten()
        .filter(|c| c.restart_policy.as_deref() == Some("Always"));
    Ok(native_sidecars
        .chain(spec.containers.iter())
        .filter(|c| !injected.contains(c.name.as_str()) && pattern.is_match(&c.name))
        .collect())
}

/// The targets' cpu and memory, summed or maxed. `None` for a limit means unlimited; a missing
/// request is zero.
#[derive(Debug, Default)]
struct Aggregate {
    limits: BTreeMap<&'static str, Quantity>,
    requests: BTreeMap<&'static str, Quantity>,
}

impl Aggregate {
    /// `aggregateResources`; a mode other than `sum`/`max` aggregates nothing, as in kruise.
    fn of(targets: &[&Container], mode: &str) -> Result<Self, String> {
        let sum = match mode {
            "sum" => true,
            "max" => false,
            _ => return Ok(Self::default()),
        };
        let mut out = Self::default();
        for name in [CPU, MEMORY] {
            let limits = targets
                .iter()
                .map(|c| quantity_of(c, name, |r| r.limits.as_ref()))
                .collect::<Result<Option<Vec<Quantity>>, String>>()?;
            if let Some(limit) = limits.and_then(|l| combine(&l, sum)) {
                out.limits.insert(name, limit);
            }
            let requests = targets
                .iter()
                .filter_map(|c| quantity_of(c, name, |r| r.requests.as_ref()).transpose())
                .collect::<Result<Vec<Quantity>, String>>()?;
            if let Some(request) = combine(&requests, sum).filter(|q| !q.is_zero()) {
                out.requests.insert(name, request);
            }
        }
        Ok(out)
    }

    fn limit(&self, name: &str) -> Option<Quantity> {
        self.limits.get(name).copied()
    }

    fn request(&self, name: &str) -> Quantity {
        self.requests
            .get(name)
            .copied()
            .unwrap_or_else(Quantity::zero)
    }
}

/// One resource of a container from its limits or requests; `Ok(None)` when it has none.
fn quantity_of(
    c: &Container,
    name: &str,
    list: impl Fn(&ResourceRequirements) -> Option<&BTreeMap<String, K8sQuantity>>,
) -> Result<Option<Quantity>, String> {
    let Some(raw) = c
        .resources
        .as_ref()
        .and_then(list)
        .and_then(|l| l.get(name))
    else {
        return Ok(None);
    };
    Quantity::parse(&raw.0)
        .map(Some)
        .map_err(|e| format!("container {} {name} {:?}: {e}", c.name, raw.0))
}

/// The sum (starting from zero) or the maximum (the first of equals) of `values`.
fn combine(values: &[Quantity], sum: bool) -> Option<Quantity> {
    if sum {
        let mut total = Quantity::zero();
        values.iter().for_each(|q| total.add(q));
        return Some(total);
    }
    let mut max: Option<Quantity> = None;
    for q in values {
        if max.is_none_or(|m| q.cmp_value(&m).is_gt()) {
            max = Some(*q);
        }
    }
    max
}

/// `evaluateResourceExpression`: the expression reads `memory` if it names it as a word, else
/// `cpu`; a plain-number result is millicores for `cpu` and whole units for `memory`.
fn evaluate(expr: &str, aggregate: Quantity) -> Result<Quantity, String> {
    let name = if names_word(expr, MEMORY) {
        MEMORY
    } else {
        CPU
    };
    let variable = Variable {
        name,
        value: aggregate,
    };
    let value = expr::evaluate(expr, &variable)
        .map_err(|e| format!("failed to parse expression {expr:?}: {e}"))?;
    Ok(match value {
        Value::Quantity(q) => q,
        Value::Number(n) if name == CPU => Quantity::from_milli(expr::go_int64(n * 1000.0)),
        Value::Number(n) => Quantity::from_units(expr::go_int64(n)),
    })
}

/// Whether `word` occurs in `text` between ASCII word boundaries (Go's `\bword\b`).
fn names_word(text: &str, word: &str) -> bool {
    let is_word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = text.as_bytes();
    text.match_indices(word).any(|(i, _)| {
        let before = i.checked_sub(1).map(|j| bytes[j]);
        let after = bytes.get(i + word.len()).copied();
        !before.is_some_and(is_word) && !after.is_some_and(is_word)
    })
}
