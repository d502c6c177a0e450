//! The volumeClaimTemplates hash of a CloneSet revision (OpenKruise's
//! `RecreatePodWhenChangeVCTInCloneSetGate`, `pkg/util/volumeclaimtemplate`): every revision
//! carries the hash of the CloneSet's `volumeClaimTemplates` in an annotation, and a pod whose
//! revision has another hash than the update revision is recreated instead of updated in place,
//! so that its PVCs match the templates again.
//!
//! The hash is kruise-manager's, byte for byte: the templates reduced to their name and spec,
//! sorted by name, written as Go's `json.Marshal` writes `[]v1.PersistentVolumeClaim` (struct
//! field order, `creationTimestamp: null`, `status: {}`), that JSON printed by Kubernetes'
//! `DeepHashObject` (spew `%#v` of a `[]uint8`) and hashed with FNV-1a 32. Unit tests pin
//! kruise's own expected values.

use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, PersistentVolumeClaimSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde_json::Value;
use std::collections::BTreeMap;

use graft_api::gojson::to_go_json;

/// Revision annotation holding the hash of the CloneSet's `volumeClaimTemplates` (`""` when it
/// has none).
pub const VCT_HASH_ANNOTATION: &str = "kruise.io/cloneset-volumeclaimtemplate-hash";

/// The annotation value for `templates`: the decimal hash, or `""` without templates
/// (`PatchVCTemplateHash`).
pub fn hash_annotation(templates: Option<&[PersistentVolumeClaim]>) -> String {
    match templates {
        Some(t) if !t.is_empty() => templates_hash(t).to_string(),
        _ => String::new(),
    }
}

/// kruise's `getExpectHash` of the templates.
pub fn templates_hash(templates: &[PersistentVolumeClaim]) -> u32 {
    let mut named: Vec<(&str, Option<&PersistentVolumeClaimSpec>)> = templates
        .iter()
        .map(|t| (t.metadata.name.as_deref().unwrap_or(""), t.spec.as_ref()))
        .collect();
    // Go's sort.SliceStable by name.
    named.sort_by(|a, b| a.0.cmp(b.0));
    let json = if named.is_empty() {
        // A nil Go slice.
        "null".to_string()
    } else {
        let items: Vec<String> = named
            .iter()
            .map(|(name, spec)| pvc_json(name, *spec))
            .collect();
        format!("[{}]", items.join(","))
    };
    fnv1a_32(spew_bytes(json.as_bytes()).as_bytes())
}

/// `CanVCTemplateInplaceUpdate`: true unless both revisions carry the annotation and the hashes
/// differ (a revision written before the annotation existed never forces a recreate).
pub fn can_update_in_place(old: &ControllerRevision, new: &ControllerRevision) -> bool {
    match (hash_of(old), hash_of(new)) {
        (Some(o), Some(n)) => o == n,
        _ => true,
    }
}

/// The annotation of a revision, if present.
pub fn hash_of(revision: &ControllerRevision) -> Option<&str> {
    revision
        .metadata
        .annotations
        .as_ref()?
        .get(VCT_HASH_ANNOTATION)
        .map(String::as_str)
}

/// Kubernetes' `DeepHashObject` prints its argument with spew's `%#v`; for the JSON bytes that is
/// the type, then every byte in decimal.
fn spew_bytes(bytes: &[u8]) -> String {
    let body: Vec<String> = bytes.iter().map(u8::to_string).collect();
    format!("([]uint8)[{}]", body.join(" "))
}

/// Go's `hash/fnv.New32a`.
fn fnv1a_32(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5_u32, |hash, b| {
        (hash ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

/// A Go struct written field by field in declaration order, fields with `omitempty` left out
/// when empty.
struct GoObject(Vec<String>);

impl GoObject {
    fn new() -> Self {
        Self(Vec::new())
    }
    fn raw(&mut self, key: &str, json: String) {
        self.0
            .push(format!("{}:{json}", to_go_json(&Value::String(key.into()))));
    }
    fn string(&mut self, key: &str, v: Option<&str>, omit_empty: bool) {
        match v {
            Some(s) if !(omit_empty && s.is_empty()) => {
                self.raw(key, to_go_json(&Value::String(s.into())))
            }
            None if !omit_empty => self.raw(key, "null".into()),
            Some(_) | None => {}
        }
    }
    fn finish(self) -> String {
        format!("{{{}}}", self.0.join(","))
    }
}

fn pvc_json(name: &str, spec: Option<&PersistentVolumeClaimSpec>) -> String {
    let mut meta = GoObject::new();
    meta.string("name", Some(name), true);
    meta.raw("creationTimestamp", "null".into());
    let mut pvc = GoObject::new();
    pvc.raw("metadata", meta.finish());
    pvc.raw("spec", spec_json(spec.cloned().unwrap_or_default()));
    pvc.raw("status", "{}".into());
    pvc.finish()
}

fn string_list(v: &[String]) -> String {
    to_go_json(&Value::Array(
        v.iter().map(|s| Value::String(s.clone())).collect(),
    ))
}

fn spec_json(spec: PersistentVolumeClaimSpec) -> String {
    let mut o = GoObject::new();
    if let Some(modes) = spec.access_modes.filter(|m| !m.is_empty()) {
        o.raw("accessModes", string_list(&modes));
    }
    if let Some(sel) = spec.selector {
        o.raw("selector", selector_json(&sel));
    }
    let mut res = GoObject::new();
    let resources = spec.resources.unwrap_or_default();
    if let Some(l) = resources.limits.filter(|l| !l.is_empty()) {
        res.raw("limits", quantities_json(&l));
    }
    if let Some(r) = resources.requests.filter(|r| !r.is_empty()) {
        res.raw("requests", quantities_json(&r));
    }
    o.raw("resources", res.finish());
    o.string("volumeName", spec.volume_name.as_deref(), true);
    if let Some(s) = spec.storage_class_name {
        o.raw("storageClassName", to_go_json(&Value::String(s)));
    }
    if let Some(m) = spec.volume_mode {
        o.raw("volumeMode", to_go_json(&Value::String(m)));
    }
    if let Some(ds) = spec.data_source {
        let mut r = GoObject::new();
        r.string("apiGroup", ds.api_group.as_deref(), false);
        r.string("kind", Some(&ds.kind), false);
        r.string("name", Some(&ds.name), false);
        o.raw("dataSource", r.finish());
    }
    if let Some(ds) = spec.data_source_ref {
        let mut r = GoObject::new();
        r.string("apiGroup", ds.api_group.as_deref(), false);
        r.string("kind", Some(&ds.kind), false);
        r.string("name", Some(&ds.name), false);
        if let Some(ns) = ds.namespace.filter(|n| !n.is_empty()) {
            r.raw("namespace", to_go_json(&Value::String(ns)));
        }
        o.raw("dataSourceRef", r.finish());
    }
    if let Some(v) = spec.volume_attributes_class_name {
        o.raw("volumeAttributesClassName", to_go_json(&Value::String(v)));
    }
    o.finish()
}

fn selector_json(sel: &LabelSelector) -> String {
    let mut o = GoObject::new();
    if let Some(ml) = sel.match_labels.as_ref().filter(|m| !m.is_empty()) {
        let map: serde_json::Map<String, Value> = ml
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        o.raw("matchLabels", to_go_json(&Value::Object(map)));
    }
    if let Some(me) = sel.match_expressions.as_ref().filter(|m| !m.is_empty()) {
        let items: Vec<String> = me
            .iter()
            .map(|r| {
                let mut e = GoObject::new();
                e.string("key", Some(&r.key), false);
                e.string("operator", Some(&r.operator), false);
                if let Some(v) = r.values.as_ref().filter(|v| !v.is_empty()) {
                    e.raw("values", string_list(v));
                }
                e.finish()
            })
            .collect();
        o.raw("matchExpressions", format!("[{}]", items.join(",")));
    }
    o.finish()
}

fn quantities_json(map: &BTreeMap<String, Quantity>) -> String {
    let m: serde_json::Map<String, Value> = map
        .iter()
        .map(|(k, q)| (k.clone(), Value::String(go_quantity(&q.0))))
        .collect();
    to_go_json(&Value::Object(m))
}

/// A quantity as Go's `resource.Quantity` writes it back (`"1024Mi"` → `"1Gi"`, `"1000M"` →
/// `"1G"`): integral values in their largest exact unit of the suffix family the user wrote.
/// Anything else (fractions, exponents) is kept as written.
fn go_quantity(q: &str) -> String {
    const BINARY: [(&str, u32); 6] = [
        ("Ki", 1),
        ("Mi", 2),
        ("Gi", 3),
        ("Ti", 4),
        ("Pi", 5),
        ("Ei", 6),
    ];
    const DECIMAL: [(&str, u32); 7] = [
        ("", 0),
        ("k", 1),
        ("M", 2),
        ("G", 3),
        ("T", 4),
        ("P", 5),
        ("E", 6),
    ];
    let q = q.trim();
    let digits_end = q
        .char_indices()
        .find(|(i, c)| !(c.is_ascii_digit() || (*i == 0 && *c == '+')))
        .map_or(q.len(), |(i, _)| i);
    let (number, suffix) = q.split_at(digits_end);
    let Ok(n) = number.trim_start_matches('+').parse::<u128>() else {
        return q.to_string();
    };
    let (base, family): (u128, &[(&str, u32)]) =
        if let Some((_, p)) = BINARY.iter().find(|(s, _)| *s == suffix) {
            let Some(v) = 1024u128.checked_pow(*p).and_then(|m| n.checked_mul(m)) else {
                return q.to_string();
            };
            // Go writes binary values below 1024 in decimal form.
            if v < 1024 {
                return v.to_string();
            }
            return largest_unit(v, 1024, &BINARY);
        } else if let Some((_, p)) = DECIMAL.iter().find(|(s, _)| *s == suffix) {
            let Some(v) = 1000u128.checked_pow(*p).and_then(|m| n.checked_mul(m)) else {
                return q.to_string();
            };
            (v, &DECIMAL)
        } else {
            return q.to_string();
        };
    largest_unit(base, 1000, family)
}

fn largest_unit(value: u128, step: u128, family: &[(&str, u32)]) -> String {
    if value == 0 {
        return "0".into();
    }
    let mut best = (value, "");
    for (suffix, power) in family {
        let Some(unit) = step.checked_pow(*power) else {
            break;
        };
        if unit > 0 && value.is_multiple_of(unit) {
            best = (value / unit, suffix);
        }
    }
    format!("{}{}", best.0, best.1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use serde_json::json;

    fn pvc(name: &str, request: &str, limit: &str) -> PersistentVolumeClaim {
        serde_json::from_value(json!({
            "metadata": {"name": name},
            "spec": {
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": request}, "limits": {"storage": limit}}
            }
        }))
        .unwrap()
    }

    /// The values of kruise's own `Test_vctHasher_GetExpectHash`.
    #[test]
    fn hashes_are_kruise_managers() {
        assert_eq!(templates_hash(&[]), 86_995_377);
        assert_eq!(templates_hash(&[pvc("pvc-1", "1Gi", "2Gi")]), 1_129_974_074);
        assert_eq!(
            templates_hash(&[pvc("pvc-1", "1Gi", "2Gi"), pvc("pvc-2", "2Gi", "4Gi")]),
            510_584_408
        );
        // Sorted by name first, so the order in the CloneSet does not matter.
        assert_eq!(
            templates_hash(&[pvc("pvc-2", "2Gi", "4Gi"), pvc("pvc-1", "1Gi", "2Gi")]),
            510_584_408
        );
        // Quantities are compared as Go writes them back.
        assert_eq!(
            templates_hash(&[pvc("pvc-1", "1024Mi", "2Gi")]),
            1_129_974_074
        );
    }

    #[test]
    fn only_name_and_spec_count() {
        let mut a = pvc("data", "1Gi", "1Gi");
        let base = templates_hash(std::slice::from_ref(&a));
        a.metadata.labels = Some(BTreeMap::from([("x".into(), "y".into())]));
        a.metadata.annotations = Some(BTreeMap::from([("x".into(), "y".into())]));
        assert_eq!(templates_hash(std::slice::from_ref(&a)), base);
        let bigger = pvc("data", "2Gi", "2Gi");
        assert_ne!(templates_hash(&[bigger]), base);
    }

    #[test]
    fn go_json_of_a_full_spec_follows_struct_order() {
        let spec: PersistentVolumeClaimSpec = serde_json::from_value(json!({
            "volumeMode": "Filesystem",
            "storageClassName": "fast",
            "resources": {"requests": {"storage": "1Gi"}},
            "selector": {"matchExpressions": [{"key": "k", "operator": "In", "values": ["a"]}], "matchLabels": {"b": "1"}},
            "accessModes": ["ReadWriteOnce"],
            "dataSource": {"kind": "VolumeSnapshot", "name": "snap"}
        }))
        .unwrap();
        assert_eq!(
            spec_json(spec),
            r#"{"accessModes":["ReadWriteOnce"],"selector":{"matchLabels":{"b":"1"},"matchExpressions":[{"key":"k","operator":"In","values":["a"]}]},"resources":{"requests":{"storage":"1Gi"}},"storageClassName":"fast","volumeMode":"Filesystem","dataSource":{"apiGroup":null,"kind":"VolumeSnapshot","name":"snap"}}"#
        );
    }

    #[test]
    fn go_quantities() {
        for (written, go) in [
            ("1Gi", "1Gi"),
            ("1024Mi", "1Gi"),
            ("1536Mi", "1536Mi"),
            ("1000M", "1G"),
            ("1500M", "1500M"),
            ("2000", "2k"),
            ("512Ki", "512Ki"),
            ("0", "0"),
            ("1.5Gi", "1.5Gi"),
        ] {
            assert_eq!(go_quantity(written), go, "{written}");
        }
    }

    fn revision(hash: Option<&str>) -> ControllerRevision {
        ControllerRevision {
            metadata: ObjectMeta {
                annotations: hash.map(|h| BTreeMap::from([(VCT_HASH_ANNOTATION.into(), h.into())])),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn in_place_unless_both_hashes_exist_and_differ() {
        let cases = [
            (Some("1"), Some("1"), true),
            (Some("1"), Some("2"), false),
            (Some(""), Some("2"), false),
            (Some(""), Some(""), true),
            (None, Some("2"), true),
            (Some("1"), None, true),
            (None, None, true),
        ];
        for (old, new, want) in cases {
            assert_eq!(
                can_update_in_place(&revision(old), &revision(new)),
                want,
                "{old:?} -> {new:?}"
            );
        }
    }

    #[test]
    fn annotation_is_empty_without_templates() {
        assert_eq!(hash_annotation(None), "");
        assert_eq!(hash_annotation(Some(&[])), "");
        assert_eq!(
            hash_annotation(Some(&[pvc("pvc-1", "1Gi", "2Gi")])),
            "1129974074"
        );
    }
}
