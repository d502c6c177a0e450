//! Conversion of custom resources between the versions a CRD serves, for the conversion webhook
//! (`apiextensions.k8s.io/v1` ConversionReview): one JSON object in, the same object in the
//! desired version out. Each kind with more than one served version registers its converter in
//! [`convert`]; the CRDs that need the webhook are those in [`crate::crds::all`] whose conversion
//! strategy is `Webhook`.

use serde_json::Value;

/// Why an object could not be converted. The API server shows the message to the client, so it
/// names the object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConversionError {
    /// No converter for this kind (or group).
    #[error("cannot convert {api_version} {kind} {key}: graft has no conversion for this kind")]
    UnknownKind {
        /// `apiVersion` of the object.
        api_version: String,
        /// `kind` of the object.
        kind: String,
        /// Name (`namespace/name` when namespaced).
        key: String,
    },
    /// The object's version or the desired one is not a version of the kind.
    #[error("cannot convert {kind} {key}: unsupported version {version:?}")]
    UnsupportedVersion {
        /// `kind` of the object.
        kind: String,
        /// Name (`namespace/name` when namespaced).
        key: String,
        /// The version that is not served for the kind.
        version: String,
    },
    /// The object does not have the shape of its kind.
    #[error("cannot convert {kind} {key}: {reason}")]
    Invalid {
        /// `kind` of the object.
        kind: String,
        /// Name (`namespace/name` when namespaced).
        key: String,
        /// What is wrong.
        reason: String,
    },
}

/// Converts `obj` to `desired_api_version` (`group/version`), choosing the converter by the
/// object's group and kind.
pub fn convert(obj: Value, desired_api_version: &str) -> Result<Value, ConversionError> {
    let api_version = obj
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or_default();
    match (group, kind) {
        ("apps.kruise.io", "SidecarSet") => {
            crate::apps::sidecarset_conversion::convert(obj, desired_api_version)
        }
        ("apps.kruise.io", "StatefulSet") => {
            crate::apps::statefulset_conversion::convert(obj, desired_api_version)
        }
        _ => Err(ConversionError::UnknownKind {
            api_version: api_version.to_string(),
            kind: kind.to_string(),
            key: object_key(&obj),
        }),
    }
}

/// `namespace/name` of a JSON object, or `name` when it has no namespace.
pub fn object_key(obj: &Value) -> String {
    metadata_key(obj.get("metadata"))
}

/// `namespace/name` read from an object's `metadata`, or `name` when it has no namespace.
pub(crate) fn metadata_key(meta: Option<&Value>) -> String {
    let get = |f: &str| {
        meta.and_then(|m| m.get(f))
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    match (get("namespace"), get("name")) {
        ("", name) => name.to_string(),
        (ns, name) => format!("{ns}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use serde_json::json;

    #[test]
    fn unknown_kinds_and_versions_name_the_object() {
        let e = convert(
            json!({"apiVersion": "apps.kruise.io/v1alpha1", "kind": "CloneSet",
                "metadata": {"name": "web", "namespace": "prod"}}),
            "apps.kruise.io/v1beta1",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot convert apps.kruise.io/v1alpha1 CloneSet prod/web: graft has no conversion for this kind"
        );
        let e = convert(
            json!({"apiVersion": "apps.kruise.io/v1alpha1", "kind": "SidecarSet",
                "metadata": {"name": "log"}}),
            "apps.kruise.io/v2",
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot convert SidecarSet log: unsupported version \"apps.kruise.io/v2\""
        );
        let e = convert(
            json!({"apiVersion": "apps.kruise.io/v9", "kind": "SidecarSet",
                "metadata": {"name": "log"}}),
            "apps.kruise.io/v1beta1",
        )
        .unwrap_err();
        assert!(
            matches!(e, ConversionError::UnsupportedVersion { ref version, .. } if version == "apps.kruise.io/v9")
        );
    }

    #[test]
    fn sidecarsets_are_dispatched() {
        let out = convert(
            json!({"apiVersion": "apps.kruise.io/v1alpha1", "kind": "SidecarSet",
                "metadata": {"name": "log"}, "spec": {"namespace": "prod"}}),
            "apps.kruise.io/v1beta1",
        )
        .unwrap();
        assert_eq!(
            out,
            json!({"apiVersion": "apps.kruise.io/v1beta1", "kind": "SidecarSet",
                "metadata": {"name": "log"},
                "spec": {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "prod"}}}})
        );
    }
}
