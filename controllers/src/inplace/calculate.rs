//! What is in-place-able (kruise's `defaultCalculateInPlaceUpdateSpec` with
//! `InPlaceUpdateEnvFromMetadata` and `InPlaceWorkloadVerticalScaling` on): after normalising both
//! templates, only `spec.containers[i].image` (same container, both set),
//! `metadata.labels`/`metadata.annotations`, and existing cpu/memory quantities in
//! `spec.containers[i].resources` (same QoS class) may differ.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use serde_json::{Map, Value};

use graft_api::annotations::container_reads_metadata;
use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::resources::{diff as diff_resources, qos_class};
use super::{InPlaceUpdateSpec, MetadataChanges, NotInPlace};
use crate::revision::{normalize_pod_template, template_from_revision};

const ONLY: &str = "only container images, cpu/memory resources and template labels/annotations \
                    can change in place";

/// Decides whether pods can move from `old` to `new` in place; on success the spec targets
/// `new_revision` with the given grace period. Both templates are normalised first, so a
/// kruise-defaulted template and the same template from Git do not differ.
///
/// A label/annotation change that a container's env reads through `valueFrom.fieldRef`
/// (`metadata.labels['k']`) goes to [`InPlaceUpdateSpec::container_ref_metadata`]: the node agent
/// restarts that container once the pod carries the new value, as kruise-daemon does.
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
    let (old_template, new_template) = (old, new);
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
    let mut container_resources = BTreeMap::new();
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
                let name = oc.get("name").and_then(Value::as_str).unwrap_or_default();
                match (ckey.as_str(), oc.get(ckey), nc.get(ckey)) {
                    ("image", Some(Value::String(o)), Some(Value::String(n))) => {
                        if o != n {
                            container_images.insert(name.to_string(), n.clone());
                        }
                    }
                    ("resources", x, y) => match diff_resources(x, y, &path) {
                        Ok(Some(changed)) => {
                            // Normalising rewrote quantities; write them as the template does.
                            let typed = new_template
                                .spec
                                .as_ref()
                                .and_then(|s| s.containers.get(i))
                                .and_then(|c| c.resources.clone())
                                .unwrap_or_default();
                            container_resources
                                .insert(name.to_string(), as_written(changed, &typed));
                        }
                        Ok(None) => {}
                        Err(field) => {
                            return Err(NotInPlace {
                                reason: format!(
                                    "{field} changed; only existing cpu/memory requests and \
                                     limits can be resized in place"
                                ),
                                field,
                            });
                        }
                    },
                    (_, x, y) => {
                        if let Some(field) = first_difference(x, y, path) {
                            return Err(changed(field));
                        }
                    }
                }
            }
        }
    }

    // Env from metadata (`InPlaceUpdateEnvFromMetadata`): a label/annotation added or replaced
    // key by key (kruise looks only at per-key JSON-patch ops, so not at a whole map that appears)
    // that a container's env reads is written with that container's batch and the node agent
    // restarts the container; it leaves the plain metadata patch.
    let mut container_ref_metadata: BTreeMap<String, ObjectMeta> = BTreeMap::new();
    for (kind, path) in [
        ("labels", "metadata.labels"),
        ("annotations", "metadata.annotations"),
    ] {
        let per_key = old_meta.get(kind).is_some_and(Value::is_object)
            && new_meta.get(kind).is_some_and(Value::is_object);
        if !per_key {
            continue;
        }
        let changes = if kind == "labels" {
            &mut metadata.labels
        } else {
            &mut metadata.annotations
        };
        let keys: Vec<(String, String)> = changes
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), v.clone()?)))
            .collect();
        for (key, value) in keys {
            let mut read = false;
            for c in new_template.spec.iter().flat_map(|s| &s.containers) {
                if !container_reads_metadata(c, path, &key) {
                    continue;
                }
                read = true;
                let meta = container_ref_metadata.entry(c.name.clone()).or_default();
                let map = if kind == "labels" {
                    meta.labels.get_or_insert_with(BTreeMap::new)
                } else {
                    meta.annotations.get_or_insert_with(BTreeMap::new)
                };
                map.insert(key.clone(), value.clone());
            }
            if read {
                changes.remove(&key);
            }
        }
    }

    // Resources may change in place only while the pod keeps its QoS class.
    if !container_resources.is_empty() {
        let spec_of = |t: &PodTemplateSpec| t.spec.clone().unwrap_or_default();
        let (a, b) = (
            qos_class(&spec_of(old_template)),
            qos_class(&spec_of(new_template)),
        );
        if a != b {
            return Err(NotInPlace {
                field: "spec.containers[].resources".into(),
                reason: format!("the pod's QoS class would change ({a:?} → {b:?}); {ONLY}"),
            });
        }
    }

    Ok(InPlaceUpdateSpec {
        revision: new_revision.to_string(),
        container_images,
        metadata,
        update_env_from_metadata: !container_ref_metadata.is_empty(),
        container_ref_metadata,
        container_resources,
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

/// The quantities of `changed` as `template` writes them.
fn as_written(
    mut changed: ResourceRequirements,
    template: &ResourceRequirements,
) -> ResourceRequirements {
    for (list, source) in [
        (&mut changed.limits, &template.limits),
        (&mut changed.requests, &template.requests),
    ] {
        for (name, q) in list.iter_mut().flatten() {
            if let Some(t) = source.as_ref().and_then(|s| s.get(name)) {
                *q = t.clone();
            }
        }
    }
    changed
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
