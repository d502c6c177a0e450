//! In-place resource changes (OpenKruise's `InPlaceWorkloadVerticalScaling`,
//! `inplace_update_vertical.go`): only the `cpu` and `memory` requests/limits a template already
//! sets may change in place, the pod's QoS class must stay the same, the change goes through the
//! pod's `resize` subresource, and it is done once every container's `status.resources` equals
//! its spec.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Pod, PodSpec, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use serde_json::{Map, Value, json};

/// The resources Kubernetes can resize in place (kruise's `allowedResizeResourceKey`).
pub(super) const RESIZABLE: [&str; 2] = ["cpu", "memory"];

/// A quantity in nano-units (`1` is 1e9, `500m` is 5e8, `1Ki` is 1024e9), or None when it does not
/// parse. Enough for comparing what the API server and the kubelet report.
pub(super) fn nanos(q: &str) -> Option<i128> {
    let q = q.trim();
    let split = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(q.len());
    let (number, suffix) = q.split_at(split);
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    let negative = int.starts_with('-');
    let int = int.trim_start_matches(['+', '-']);
    if (int.is_empty() && frac.is_empty()) || frac.len() > 9 {
        return None;
    }
    let whole: i128 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let frac_nanos: i128 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}").parse().ok()?
    };
    let base = whole * 1_000_000_000 + frac_nanos;
    let (mul, div): (i128, i128) = match suffix {
        "" => (1, 1),
        "n" => (1, 1_000_000_000),
        "u" => (1, 1_000_000),
        "m" => (1, 1_000),
        "k" => (1_000, 1),
        "M" => (1_000_000, 1),
        "G" => (1_000_000_000, 1),
        "T" => (1_000_000_000_000, 1),
        "P" => (1_000_000_000_000_000, 1),
        "E" => (1_000_000_000_000_000_000, 1),
        "Ki" => (1 << 10, 1),
        "Mi" => (1 << 20, 1),
        "Gi" => (1 << 30, 1),
        "Ti" => (1 << 40, 1),
        "Pi" => (1 << 50, 1),
        "Ei" => (1 << 60, 1),
        s if s.starts_with(['e', 'E']) => {
            let exp: u32 = s[1..].parse().ok()?;
            (10i128.checked_pow(exp)?, 1)
        }
        _ => return None,
    };
    let v = base.checked_mul(mul)? / div;
    Some(if negative { -v } else { v })
}

fn same_quantity(a: &Quantity, b: &Quantity) -> bool {
    match (nanos(&a.0), nanos(&b.0)) {
        (Some(x), Some(y)) => x == y,
        _ => a.0 == b.0,
    }
}

/// Whether two resource lists hold the same quantities (absent and empty are the same).
pub(super) fn same_list(
    a: Option<&BTreeMap<String, Quantity>>,
    b: Option<&BTreeMap<String, Quantity>>,
) -> bool {
    let empty = BTreeMap::new();
    let (a, b) = (a.unwrap_or(&empty), b.unwrap_or(&empty));
    a.len() == b.len()
        && a.iter()
            .all(|(k, q)| b.get(k).is_some_and(|r| same_quantity(q, r)))
}

/// Compares a container's `resources` in two normalised templates (JSON). `Ok(None)`: no change;
/// `Ok(Some(changed))`: only existing cpu/memory quantities were replaced, `changed` holds their
/// new values; `Err(path)`: a change only a recreate can apply (a resource added or removed,
/// another resource, `claims`).
pub(super) fn diff(
    old: Option<&Value>,
    new: Option<&Value>,
    path: &str,
) -> Result<Option<ResourceRequirements>, String> {
    let empty = Map::new();
    let old = old.and_then(Value::as_object).unwrap_or(&empty);
    let new = new.and_then(Value::as_object).unwrap_or(&empty);
    let mut changed = ResourceRequirements::default();
    let keys: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    for key in keys {
        let (a, b) = (old.get(key), new.get(key));
        if a == b {
            continue;
        }
        let (Some(Value::Object(a)), Some(Value::Object(b)), "limits" | "requests") =
            (a, b, key.as_str())
        else {
            return Err(format!("{path}.{key}"));
        };
        let names: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
        for name in names {
            let field = format!("{path}.{key}.{name}");
            match (a.get(name), b.get(name)) {
                (x, y) if x == y => {}
                (Some(x), Some(Value::String(y))) if RESIZABLE.contains(&name.as_str()) => {
                    let same = x.as_str().is_some_and(|x| {
                        same_quantity(&Quantity(x.to_string()), &Quantity(y.clone()))
                    });
                    if !same {
                        let list = if key == "limits" {
                            changed.limits.get_or_insert_with(BTreeMap::new)
                        } else {
                            changed.requests.get_or_insert_with(BTreeMap::new)
                        };
                        list.insert(name.clone(), Quantity(y.clone()));
                    }
                }
                _ => return Err(field),
            }
        }
    }
    Ok((changed.limits.is_some() || changed.requests.is_some()).then_some(changed))
}

/// A pod's QoS class (Kubernetes' `GetPodQOS` over cpu and memory).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Qos {
    Guaranteed,
    Burstable,
    BestEffort,
}

pub(super) fn qos_class(spec: &PodSpec) -> Qos {
    let mut requests: BTreeMap<&str, i128> = BTreeMap::new();
    let mut limits: BTreeMap<&str, i128> = BTreeMap::new();
    let mut guaranteed = true;
    let all = spec
        .init_containers
        .iter()
        .flatten()
        .chain(&spec.containers);
    for c in all {
        let r = c.resources.as_ref();
        for (name, q) in r.and_then(|r| r.requests.as_ref()).into_iter().flatten() {
            if let (Some(key), Some(v)) = (RESIZABLE.iter().find(|k| **k == name), nanos(&q.0))
                && v > 0
            {
                *requests.entry(key).or_default() += v;
            }
        }
        let mut found = 0;
        for (name, q) in r.and_then(|r| r.limits.as_ref()).into_iter().flatten() {
            if let (Some(key), Some(v)) = (RESIZABLE.iter().find(|k| **k == name), nanos(&q.0))
                && v > 0
            {
                found += 1;
                *limits.entry(key).or_default() += v;
            }
        }
        if found < RESIZABLE.len() {
            guaranteed = false;
        }
    }
    if requests.is_empty() && limits.is_empty() {
        return Qos::BestEffort;
    }
    if guaranteed && requests.iter().any(|(k, v)| limits.get(k) != Some(v)) {
        guaranteed = false;
    }
    if guaranteed && requests.len() == limits.len() {
        Qos::Guaranteed
    } else {
        Qos::Burstable
    }
}

/// The body for `PATCH pods/<name>/resize` (strategic merge): for each container in `expected`,
/// the cpu/memory quantities that differ from the pod's spec (kruise's `GenerateResourcePatch`).
/// None when the pod already has them all.
pub(super) fn resize_patch(
    pod: &Pod,
    expected: &BTreeMap<String, ResourceRequirements>,
) -> Option<Value> {
    let mut containers = Vec::new();
    for c in pod.spec.iter().flat_map(|s| &s.containers) {
        let Some(want) = expected.get(&c.name) else {
            continue;
        };
        let current = c.resources.clone().unwrap_or_default();
        let mut out = Map::new();
        for (key, want, have) in [
            ("limits", &want.limits, &current.limits),
            ("requests", &want.requests, &current.requests),
        ] {
            let mut list = Map::new();
            for (name, q) in want.iter().flatten() {
                if !RESIZABLE.contains(&name.as_str()) {
                    continue;
                }
                let same = have
                    .as_ref()
                    .and_then(|h| h.get(name))
                    .is_some_and(|h| same_quantity(h, q));
                if !same {
                    list.insert(name.clone(), Value::String(q.0.clone()));
                }
            }
            if !list.is_empty() {
                out.insert(key.into(), Value::Object(list));
            }
        }
        if !out.is_empty() {
            containers.push(json!({"name": c.name, "resources": out}));
        }
    }
    (!containers.is_empty()).then(|| json!({"spec": {"containers": containers}}))
}

/// kruise's `IsUpdateCompleted` for resources: every container reports a status, and its
/// `status.resources` equals its spec. `Err` says what is missing (and why the kubelet waits, from
/// the pod's `PodResizePending` / `PodResizeInProgress` conditions).
pub(super) fn check_resized(pod: &Pod) -> Result<(), String> {
    let containers: BTreeMap<&str, &Container> = pod
        .spec
        .iter()
        .flat_map(|s| &s.containers)
        .map(|c| (c.name.as_str(), c))
        .collect();
    let statuses: Vec<_> = pod
        .status
        .iter()
        .flat_map(|s| s.container_statuses.iter().flatten())
        .collect();
    if statuses.len() != containers.len() {
        return Err("some container status is not reported".into());
    }
    for cs in statuses {
        let Some(spec) = containers.get(cs.name.as_str()) else {
            return Err(format!("container {} has no spec", cs.name));
        };
        let (want, have) = (spec.resources.as_ref(), cs.resources.as_ref());
        let done = have.is_some()
            && same_list(
                want.and_then(|r| r.limits.as_ref()),
                have.and_then(|r| r.limits.as_ref()),
            )
            && same_list(
                want.and_then(|r| r.requests.as_ref()),
                have.and_then(|r| r.requests.as_ref()),
            );
        if !done {
            let why = resize_condition(pod)
                .map(|w| format!(" ({w})"))
                .unwrap_or_default();
            return Err(format!("container {} resources not changed{why}", cs.name));
        }
    }
    Ok(())
}

/// The kubelet's word on a resize under way: `PodResizePending` (reason `Deferred` or
/// `Infeasible`) or `PodResizeInProgress`, with its message.
pub fn resize_condition(pod: &Pod) -> Option<String> {
    ["PodResizePending", "PodResizeInProgress"]
        .iter()
        .find_map(|t| super::pod_condition(pod, t).filter(|c| c.status == "True"))
        .map(|c| {
            format!(
                "{} {}: {}",
                c.type_,
                c.reason.as_deref().unwrap_or_default(),
                c.message.as_deref().unwrap_or_default()
            )
        })
}

/// Whether the kubelet refused the resize for good (`PodResizePending` with reason `Infeasible`:
/// the node can never fit it). OpenKruise leaves such a pod as it is until the template changes
/// again; so does graft (this is for status and events).
pub fn is_resize_infeasible(pod: &Pod) -> bool {
    super::pod_condition(pod, "PodResizePending")
        .is_some_and(|c| c.status == "True" && c.reason.as_deref() == Some("Infeasible"))
}

/// Whether a resources-only update needs the pod out of service: only when a changed resource of
/// a container has `resizePolicy` `RestartContainer` (kruise's `defaultCheckPodNeedsBeUnready`).
pub(super) fn resize_restarts(pod: &Pod, changed: &BTreeMap<String, ResourceRequirements>) -> bool {
    pod.spec.iter().flat_map(|s| &s.containers).any(|c| {
        let Some(r) = changed.get(&c.name) else {
            return false;
        };
        let touches = |name: &str| {
            r.limits.as_ref().is_some_and(|l| l.contains_key(name))
                || r.requests.as_ref().is_some_and(|l| l.contains_key(name))
        };
        c.resize_policy
            .iter()
            .flatten()
            .any(|p| p.restart_policy == "RestartContainer" && touches(p.resource_name.as_str()))
    })
}
