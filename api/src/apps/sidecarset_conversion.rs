//! SidecarSet conversion between `apps.kruise.io/v1alpha1` and `apps.kruise.io/v1beta1` (the hub
//! and storage version), with OpenKruise's rules (`apis/apps/v1alpha1/sidecarset_conversion.go`):
//!
//! - v1alpha1 → v1beta1: a non-empty `spec.namespace` becomes `spec.namespaceSelector` with
//!   `matchLabels: {kubernetes.io/metadata.name: <namespace>}` and wins over a namespaceSelector the
//!   object also has; the label `apps.kruise.io/sidecarset-custom-version` moves to
//!   `spec.customVersion` (the label is removed; an empty label value gives no customVersion).
//! - v1beta1 → v1alpha1: `spec.namespaceSelector` is kept as it is (never turned back into
//!   `namespace`); a non-empty `spec.customVersion` becomes the custom-version label, overwriting
//!   one already there.
//! - Every other field (containers, volumes, strategies, status, the rest of the metadata) is
//!   carried unchanged; kruise stashes nothing in annotations for this kind.
//!
//! So v1beta1 → v1alpha1 → v1beta1 is the identity, and v1alpha1 → v1beta1 → v1alpha1 is too except
//! where kruise itself loses information: `namespace` comes back as the equivalent
//! namespaceSelector, a namespaceSelector next to a `namespace` is dropped, and an empty
//! custom-version label is dropped.
//!
//! The typed functions serve graft's own code; [`convert`] works on the JSON objects of a
//! ConversionReview and changes only the fields above, so fields graft's types do not know (inside
//! the opaque containers, for instance) go through untouched.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use serde_json::{Map, Value};

use crate::apps::v1alpha1::sidecarset as alpha;
use crate::apps::v1beta1::sidecarset as beta;
use crate::apps::v1beta1::sidecarset::NAMESPACE_NAME_LABEL;
use crate::conversion::{ConversionError, metadata_key, object_key};
use crate::labels::SIDECARSET_CUSTOM_VERSION;

/// `apiVersion` of a v1alpha1 SidecarSet.
pub const V1ALPHA1: &str = "apps.kruise.io/v1alpha1";
/// `apiVersion` of a v1beta1 SidecarSet (the storage version).
pub const V1BETA1: &str = "apps.kruise.io/v1beta1";

/// v1alpha1 → v1beta1 (kruise's `ConvertTo`).
pub fn to_v1beta1(s: alpha::SidecarSet) -> beta::SidecarSet {
    let mut metadata = s.metadata;
    let custom_version = metadata
        .labels
        .as_mut()
        .and_then(|l| l.remove(SIDECARSET_CUSTOM_VERSION));
    drop_empty_labels(&mut metadata);
    beta::SidecarSet {
        metadata,
        spec: spec_to_v1beta1(&s.spec, custom_version),
        status: s.status,
    }
}

/// v1beta1 → v1alpha1 (kruise's `ConvertFrom`).
pub fn to_v1alpha1(s: beta::SidecarSet) -> alpha::SidecarSet {
    let mut metadata = s.metadata;
    let b = s.spec;
    if let Some(v) = b.custom_version.filter(|v| !v.is_empty()) {
        metadata
            .labels
            .get_or_insert_with(Default::default)
            .insert(SIDECARSET_CUSTOM_VERSION.to_string(), v);
    }
    alpha::SidecarSet {
        metadata,
        spec: alpha::SidecarSetSpec {
            selector: b.selector,
            // Only set on an object stored by a v1alpha1 client under `conversion: None`.
            namespace: b.namespace.filter(|_| b.namespace_selector.is_none()),
            namespace_selector: b.namespace_selector,
            init_containers: b.init_containers,
            containers: b.containers,
            volumes: b.volumes,
            update_strategy: b.update_strategy,
            injection_strategy: b.injection_strategy,
            image_pull_secrets: b.image_pull_secrets,
            revision_history_limit: b.revision_history_limit,
            patch_pod_metadata: b.patch_pod_metadata,
        },
        status: s.status,
    }
}

/// The v1beta1 spec of a v1alpha1 spec; `custom_version` is the value of the custom-version label.
pub fn spec_to_v1beta1(
    s: &alpha::SidecarSetSpec,
    custom_version: Option<String>,
) -> beta::SidecarSetSpec {
    let namespace_selector = match s.namespace.as_deref() {
        Some(ns) if !ns.is_empty() => Some(namespace_selector(ns)),
        _ => s.namespace_selector.clone(),
    };
    beta::SidecarSetSpec {
        selector: s.selector.clone(),
        namespace_selector,
        namespace: None,
        init_containers: s.init_containers.clone(),
        containers: s.containers.clone(),
        volumes: s.volumes.clone(),
        update_strategy: s.update_strategy.clone(),
        injection_strategy: s.injection_strategy.clone(),
        image_pull_secrets: s.image_pull_secrets.clone(),
        revision_history_limit: s.revision_history_limit,
        patch_pod_metadata: s.patch_pod_metadata.clone(),
        custom_version: custom_version.filter(|v| !v.is_empty()),
    }
}

/// The namespaceSelector that selects exactly the namespace `ns`.
pub fn namespace_selector(ns: &str) -> LabelSelector {
    LabelSelector {
        match_labels: Some(BTreeMap::from([(
            NAMESPACE_NAME_LABEL.to_string(),
            ns.to_string(),
        )])),
        match_expressions: None,
    }
}

fn drop_empty_labels(m: &mut ObjectMeta) {
    if m.labels.as_ref().is_some_and(BTreeMap::is_empty) {
        m.labels = None;
    }
}

impl From<alpha::SidecarSet> for beta::SidecarSet {
    /// See [`to_v1beta1`].
    fn from(s: alpha::SidecarSet) -> Self {
        to_v1beta1(s)
    }
}

impl From<beta::SidecarSet> for alpha::SidecarSet {
    /// See [`to_v1alpha1`].
    fn from(s: beta::SidecarSet) -> Self {
        to_v1alpha1(s)
    }
}

/// Converts one SidecarSet object (JSON, as in a ConversionReview) to `desired_api_version`.
/// An object already in that version is returned unchanged.
pub fn convert(mut obj: Value, desired_api_version: &str) -> Result<Value, ConversionError> {
    let from = obj
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let unsupported = |obj: &Value, version: &str| ConversionError::UnsupportedVersion {
        kind: "SidecarSet".into(),
        key: object_key(obj),
        version: version.to_string(),
    };
    for v in [from.as_str(), desired_api_version] {
        if v != V1ALPHA1 && v != V1BETA1 {
            return Err(unsupported(&obj, v));
        }
    }
    if from == desired_api_version {
        return Ok(obj);
    }
    let root = obj
        .as_object_mut()
        .ok_or_else(|| ConversionError::Invalid {
            kind: "SidecarSet".into(),
            key: String::new(),
            reason: "not a JSON object".into(),
        })?;
    if desired_api_version == V1BETA1 {
        json_to_v1beta1(root)?;
    } else {
        json_to_v1alpha1(root)?;
    }
    root.insert("apiVersion".into(), desired_api_version.into());
    Ok(obj)
}

/// `spec`, created when missing; an error when it is not an object.
fn spec_of(root: &mut Map<String, Value>) -> Result<&mut Map<String, Value>, ConversionError> {
    let key = metadata_key(root.get("metadata"));
    let spec = root
        .entry("spec")
        .or_insert_with(|| Value::Object(Map::new()));
    if spec.is_null() {
        *spec = Value::Object(Map::new());
    }
    spec.as_object_mut()
        .ok_or_else(|| ConversionError::Invalid {
            kind: "SidecarSet".into(),
            key,
            reason: "spec is not an object".into(),
        })
}

/// A string field that may be absent or `null` (Go reads both as `""`).
fn string_field(
    v: Option<Value>,
    field: &str,
    key: &str,
) -> Result<Option<String>, ConversionError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(ConversionError::Invalid {
            kind: "SidecarSet".into(),
            key: key.to_string(),
            reason: format!("{field} is not a string: {other}"),
        }),
    }
}

fn json_to_v1beta1(root: &mut Map<String, Value>) -> Result<(), ConversionError> {
    let key = metadata_key(root.get("metadata"));
    let mut label = None;
    if let Some(meta) = root.get_mut("metadata").and_then(Value::as_object_mut)
        && let Some(labels) = meta.get_mut("labels").and_then(Value::as_object_mut)
    {
        label = labels.remove(SIDECARSET_CUSTOM_VERSION);
        if labels.is_empty() {
            // Go's omitempty: an emptied label map is not written.
            meta.remove("labels");
        }
    }
    let custom_version = string_field(label, "the custom-version label", &key)?;
    let spec = spec_of(root)?;
    // v1alpha1 has no customVersion field: anything there is not part of the object.
    spec.remove("customVersion");
    let namespace = string_field(spec.remove("namespace"), "spec.namespace", &key)?;
    if let Some(ns) = namespace.filter(|ns| !ns.is_empty()) {
        let selector = serde_json::to_value(namespace_selector(&ns)).map_err(|e| {
            ConversionError::Invalid {
                kind: "SidecarSet".into(),
                key: key.clone(),
                reason: e.to_string(),
            }
        })?;
        spec.insert("namespaceSelector".into(), selector);
    }
    if let Some(v) = custom_version.filter(|v| !v.is_empty()) {
        spec.insert("customVersion".into(), v.into());
    }
    Ok(())
}

fn json_to_v1alpha1(root: &mut Map<String, Value>) -> Result<(), ConversionError> {
    let key = metadata_key(root.get("metadata"));
    let spec = spec_of(root)?;
    // v1beta1 has no namespace field: anything there is not part of the object.
    spec.remove("namespace");
    let custom_version = string_field(spec.remove("customVersion"), "spec.customVersion", &key)?;
    let Some(v) = custom_version.filter(|v| !v.is_empty()) else {
        return Ok(());
    };
    let metadata = root
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    let labels = metadata
        .as_object_mut()
        .map(|m| {
            m.entry("labels")
                .or_insert_with(|| Value::Object(Map::new()))
        })
        .and_then(|l| {
            if l.is_null() {
                *l = Value::Object(Map::new());
            }
            l.as_object_mut()
        })
        .ok_or_else(|| ConversionError::Invalid {
            kind: "SidecarSet".into(),
            key: key.clone(),
            reason: "metadata.labels is not an object".into(),
        })?;
    labels.insert(SIDECARSET_CUSTOM_VERSION.into(), v.into());
    Ok(())
}

#[cfg(test)]
#[path = "sidecarset_conversion_tests.rs"]
mod tests;

impl beta::SidecarSet {
    /// The SidecarSet as OpenKruise's conversion would have stored it: an object written at
    /// v1alpha1 (the CRD converts with strategy `None`, so it keeps its v1alpha1 fields) gets its
    /// `namespace` as `namespaceSelector` and its custom-version label as `customVersion` (an
    /// explicit `customVersion` wins, `namespace` wins over a selector).
    pub fn converted(&self) -> beta::SidecarSet {
        let mut out = self.clone();
        if let Some(ns) = out.spec.namespace.take().filter(|ns| !ns.is_empty()) {
            out.spec.namespace_selector = Some(namespace_selector(&ns));
        }
        if out
            .spec
            .custom_version
            .as_deref()
            .unwrap_or_default()
            .is_empty()
        {
            let label = out
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(SIDECARSET_CUSTOM_VERSION))
                .filter(|v| !v.is_empty())
                .cloned();
            out.spec.custom_version = label;
        }
        out
    }
}
