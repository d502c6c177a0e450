//! What is in-place-able (kruise's `defaultCalculateInPlaceUpdateSpec`): after normalising both
//! templates, only `spec.containers[i].image` (same container, both set) and
//! `metadata.labels`/`metadata.annotations` may differ.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use serde_json::{Map, Value};

use super::{InPlaceUpdateSpec, MetadataChanges, NotInPlace};
use crate::revision::{normalize_pod_template, template_from_revision};

const ONLY: &str = "only container images and template labels/annotations can change in place";

/// Decides whether pods can move from `old` to `new` in place; on success the spec targets
/// `new_revision` with the given grace period. Both templates are normalised first, so a
/// kruise-defaulted template and the same template from Git do not differ.
///
/// A label/annotation change that a container's env reads through
/// `valueFrom.fieldRef` (`metadata.labels['k']`) is not in place: kruise restarts such containers
/// through its daemon, graft recreates the pod instead.
pub fn calculate(
    old: &PodTemplateSpec,
    new: &PodTemplateSpec,
    new_revision: &str,
    grace_period_seconds: i32,
) -> Result<InPlaceUpdateSpec, NotInPlace> {
    let encode = |t: &PodTemplateSpec| {
        serde_json::to_value(t).map_err(|e| NotInPlace {
            field: "template".into(),
            reason: format!("cannot encode: {e}"),
        })
    };
    let old = normalize_pod_template(&encode(old)?);
    let new = normalize_pod_template(&encode(new)?);
    let empty = Map::new();
    let obj = |v: &Value, key: &str| v.get(key).and_then(Value::as_object).cloned();

    // metadata: labels and annotations may change; anything else may not.
    let old_meta = obj(&old, "metadata").unwrap_or_default();
    let new_meta = obj(&new, "metadata").unwrap_or_default();
    let mut metadata = MetadataChanges::default();
    for key in union(&old_meta, &new_meta) {
        let (a, b) = (old_meta.get(key), new_meta.get(key));
        match key.as_str() {
            "labels" => metadata.labels = string_map_diff(a, b),
            "annotations" => metadata.annotations = string_map_diff(a, b),
            _ if a != b => {
                return Err(NotInPlace {
                    field: format!("metadata.{key}"),
                    reason: format!("template metadata.{key} changed; {ONLY}"),
                });
            }
            _ => {}
        }
    }

    // spec: only containers[i].image.
    let old_spec = obj(&old, "spec").unwrap_or_default();
    let new_spec = obj(&new, "spec").unwrap_or_default();
    let mut container_images = BTreeMap::new();
    for key in union(&old_spec, &new_spec) {
        let (a, b) = (old_spec.get(key), new_spec.get(key));
        if key != "containers" {
            if let Some(field) = first_difference(a, b, format!("spec.{key}")) {
                return Err(changed(field));
            }
            continue;
        }
        let none = Vec::new();
        let a = a.and_then(Value::as_array).unwrap_or(&none);
        let b = b.and_then(Value::as_array).unwrap_or(&none);
        if a.len() != b.len() {
            return Err(NotInPlace {
                field: "spec.containers".into(),
                reason: format!(
                    "containers added or removed ({} → {}); {ONLY}",
                    a.len(),
                    b.len()
                ),
            });
        }
        for (i, (oc, nc)) in a.iter().zip(b).enumerate() {
            let oc = oc.as_object().unwrap_or(&empty);
            let nc = nc.as_object().unwrap_or(&empty);
            for ckey in union(oc, nc) {
                let path = format!("spec.containers[{i}].{ckey}");
                match (ckey.as_str(), oc.get(ckey), nc.get(ckey)) {
                    ("image", Some(Value::String(o)), Some(Value::String(n))) => {
                        if o != n {
                            let name = oc.get("name").and_then(Value::as_str).unwrap_or_default();
                            container_images.insert(name.to_string(), n.clone());
                        }
                    }
                    (_, x, y) => {
                        if let Some(field) = first_difference(x, y, path) {
                            return Err(changed(field));
                        }
                    }
                }
            }
        }
    }

    // Env read from changed metadata would keep its old value without a container restart.
    let containers = new_spec
        .get("containers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for (kind, changes) in [
        ("labels", &metadata.labels),
        ("annotations", &metadata.annotations),
    ] {
        for key in changes.keys() {
            let path = format!("metadata.{kind}['{key}']");
            for (i, c) in containers.iter().enumerate() {
                let envs = c.get("env").and_then(Value::as_array).cloned();
                for (j, env) in envs.unwrap_or_default().iter().enumerate() {
                    let field_path = env
                        .pointer("/valueFrom/fieldRef/fieldPath")
                        .and_then(Value::as_str);
                    if field_path == Some(path.as_str()) {
                        return Err(NotInPlace {
                            field: format!("spec.containers[{i}].env[{j}]"),
                            reason: format!(
                                "env reads {path}, which changed; graft recreates the pod so the \
                                 container sees the new value"
                            ),
                        });
                    }
                }
            }
        }
    }

    Ok(InPlaceUpdateSpec {
        revision: new_revision.to_string(),
        container_images,
        metadata,
        grace_period_seconds,
        immediate: MetadataChanges::default(),
    })
}

/// [`calculate`] between the templates stored in two ControllerRevisions, targeting `new`'s name.
pub fn calculate_from_revisions(
    old: &ControllerRevision,
    new: &ControllerRevision,
    grace_period_seconds: i32,
) -> Result<InPlaceUpdateSpec, NotInPlace> {
    let read = |r: &ControllerRevision| {
        template_from_revision(r).map_err(|e| NotInPlace {
            field: "template".into(),
            reason: e.to_string(),
        })
    };
    let name = new.metadata.name.as_deref().unwrap_or_default();
    calculate(&read(old)?, &read(new)?, name, grace_period_seconds)
}

fn changed(field: String) -> NotInPlace {
    NotInPlace {
        reason: format!("{field} changed; {ONLY}"),
        field,
    }
}

fn union<'a>(a: &'a Map<String, Value>, b: &'a Map<String, Value>) -> BTreeSet<&'a String> {
    a.keys().chain(b.keys()).collect()
}

fn string_map_diff(old: Option<&Value>, new: Option<&Value>) -> BTreeMap<String, Option<String>> {
    let empty = Map::new();
    let old = old.and_then(Value::as_object).unwrap_or(&empty);
    let new = new.and_then(Value::as_object).unwrap_or(&empty);
    let mut out = BTreeMap::new();
    for key in union(old, new) {
        match (old.get(key), new.get(key)) {
            (a, Some(b)) if a != Some(b) => {
                out.insert(
                    key.clone(),
                    Some(b.as_str().unwrap_or_default().to_string()),
                );
            }
            (Some(_), None) => {
                out.insert(key.clone(), None);
            }
            _ => {}
        }
    }
    out
}

/// The path of the first place where `a` and `b` differ, or None when equal.
fn first_difference(a: Option<&Value>, b: Option<&Value>, path: String) -> Option<String> {
    match (a, b) {
        (None, None) => None,
        (Some(Value::Object(x)), Some(Value::Object(y))) => union(x, y)
            .into_iter()
            .find_map(|k| first_difference(x.get(k), y.get(k), format!("{path}.{k}"))),
        (Some(Value::Array(x)), Some(Value::Array(y))) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (p, q))| first_difference(Some(p), Some(q), format!("{path}[{i}]"))),
        (x, y) if x == y => None,
        _ => Some(path),
    }
}
