//! Advanced StatefulSet conversion between `apps.kruise.io/v1alpha1` and `apps.kruise.io/v1beta1`
//! (the hub and storage version), with OpenKruise's rules
//! (`apis/apps/v1alpha1/statefulset_conversion.go`):
//!
//! - v1alpha1 → v1beta1 (`ConvertTo`): metadata, every spec field and every status field are
//!   carried as they are; the v1beta1-only fields stay unset.
//! - v1beta1 → v1alpha1 (`ConvertFrom`): the same fields are carried; the v1beta1-only ones
//!   ([`V1BETA1_ONLY_SPEC_FIELDS`], [`V1BETA1_ONLY_STATUS_FIELDS`]) are dropped. Nothing is
//!   stashed in annotations, so they are lost for good.
//!
//! So v1alpha1 → v1beta1 → v1alpha1 is the identity, and v1beta1 → v1alpha1 → v1beta1 keeps
//! everything but those fields.
//!
//! This is exactly what the API server itself does for this CRD, which converts with strategy
//! `None` (see [`crate::crds::statefulset`]): it rewrites `apiVersion` and prunes, with the
//! structural schema of the version asked for, every field that version does not declare. The
//! v1alpha1 schema is the v1beta1 one minus the fields above, so pruning drops exactly them.
//!
//! The typed functions serve graft's own code (the admission webhook validates and defaults the
//! v1beta1 form of either version); [`convert`] works on the JSON objects of a ConversionReview and
//! touches only the fields above, so fields inside the opaque pod and PVC templates go through
//! untouched.

use serde_json::{Map, Value};

use crate::apps::v1alpha1::statefulset as alpha;
use crate::apps::v1beta1::statefulset as beta;
use crate::conversion::{ConversionError, object_key};

/// `apiVersion` of a v1alpha1 StatefulSet.
pub const V1ALPHA1: &str = "apps.kruise.io/v1alpha1";
/// `apiVersion` of a v1beta1 StatefulSet (the storage version).
pub const V1BETA1: &str = "apps.kruise.io/v1beta1";

/// Spec fields only v1beta1 has (dropped on the way to v1alpha1).
pub const V1BETA1_ONLY_SPEC_FIELDS: &[&str] = &[
    "reserveOrdinals",
    "lifecycle",
    "scaleStrategy",
    "persistentVolumeClaimRetentionPolicy",
    "ordinals",
    "volumeClaimUpdateStrategy",
];
/// Status fields only v1beta1 has (dropped on the way to v1alpha1).
pub const V1BETA1_ONLY_STATUS_FIELDS: &[&str] = &[
    "updatedReadyReplicas",
    "updatedAvailableReplicas",
    "volumeClaims",
];

/// v1alpha1 → v1beta1 (kruise's `ConvertTo`).
pub fn to_v1beta1(s: alpha::StatefulSet) -> beta::StatefulSet {
    beta::StatefulSet {
        metadata: s.metadata,
        spec: spec_to_v1beta1(s.spec),
        status: s.status.map(status_to_v1beta1),
    }
}

/// v1beta1 → v1alpha1 (kruise's `ConvertFrom`); drops the v1beta1-only fields.
pub fn to_v1alpha1(s: beta::StatefulSet) -> alpha::StatefulSet {
    alpha::StatefulSet {
        metadata: s.metadata,
        spec: spec_to_v1alpha1(s.spec),
        status: s.status.map(status_to_v1alpha1),
    }
}

/// The v1beta1 spec of a v1alpha1 spec.
pub fn spec_to_v1beta1(s: alpha::StatefulSetSpec) -> beta::StatefulSetSpec {
    beta::StatefulSetSpec {
        replicas: s.replicas,
        selector: s.selector,
        template: s.template,
        volume_claim_templates: s.volume_claim_templates,
        service_name: s.service_name,
        pod_management_policy: s.pod_management_policy,
        update_strategy: s.update_strategy,
        revision_history_limit: s.revision_history_limit,
        reserve_ordinals: None,
        lifecycle: None,
        scale_strategy: None,
        persistent_volume_claim_retention_policy: None,
        ordinals: None,
        volume_claim_update_strategy: None,
    }
}

/// The v1alpha1 spec of a v1beta1 spec (the v1beta1-only fields are dropped).
pub fn spec_to_v1alpha1(s: beta::StatefulSetSpec) -> alpha::StatefulSetSpec {
    alpha::StatefulSetSpec {
        replicas: s.replicas,
        selector: s.selector,
        template: s.template,
        volume_claim_templates: s.volume_claim_templates,
        service_name: s.service_name,
        pod_management_policy: s.pod_management_policy,
        update_strategy: s.update_strategy,
        revision_history_limit: s.revision_history_limit,
    }
}

/// The v1beta1 status of a v1alpha1 status (the v1beta1-only counters are 0).
pub fn status_to_v1beta1(s: alpha::StatefulSetStatus) -> beta::StatefulSetStatus {
    beta::StatefulSetStatus {
        observed_generation: s.observed_generation,
        replicas: s.replicas,
        ready_replicas: s.ready_replicas,
        available_replicas: s.available_replicas,
        current_replicas: s.current_replicas,
        updated_replicas: s.updated_replicas,
        updated_ready_replicas: 0,
        updated_available_replicas: 0,
        current_revision: s.current_revision,
        update_revision: s.update_revision,
        collision_count: s.collision_count,
        conditions: s.conditions,
        label_selector: s.label_selector,
        volume_claims: None,
    }
}

/// The v1alpha1 status of a v1beta1 status (the v1beta1-only fields are dropped).
pub fn status_to_v1alpha1(s: beta::StatefulSetStatus) -> alpha::StatefulSetStatus {
    alpha::StatefulSetStatus {
        observed_generation: s.observed_generation,
        replicas: s.replicas,
        ready_replicas: s.ready_replicas,
        available_replicas: s.available_replicas,
        current_replicas: s.current_replicas,
        updated_replicas: s.updated_replicas,
        current_revision: s.current_revision,
        update_revision: s.update_revision,
        collision_count: s.collision_count,
        conditions: s.conditions,
        label_selector: s.label_selector,
    }
}

impl From<alpha::StatefulSet> for beta::StatefulSet {
    /// See [`to_v1beta1`].
    fn from(s: alpha::StatefulSet) -> Self {
        to_v1beta1(s)
    }
}

impl From<beta::StatefulSet> for alpha::StatefulSet {
    /// See [`to_v1alpha1`].
    fn from(s: beta::StatefulSet) -> Self {
        to_v1alpha1(s)
    }
}

/// Converts one StatefulSet object (JSON, as in a ConversionReview) to `desired_api_version`.
/// An object already in that version is returned unchanged.
///
/// Both directions drop the v1beta1-only fields: on the way to v1alpha1 because that version
/// has no place for them, on the way to v1beta1 because a v1alpha1 object cannot carry them
/// (kruise's typed `ConvertTo` never reads them).
pub fn convert(mut obj: Value, desired_api_version: &str) -> Result<Value, ConversionError> {
    let from = obj
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    for v in [from.as_str(), desired_api_version] {
        if v != V1ALPHA1 && v != V1BETA1 {
            return Err(ConversionError::UnsupportedVersion {
                kind: "StatefulSet".into(),
                key: object_key(&obj),
                version: v.to_string(),
            });
        }
    }
    if from == desired_api_version {
        return Ok(obj);
    }
    let key = object_key(&obj);
    let root = obj
        .as_object_mut()
        .ok_or_else(|| ConversionError::Invalid {
            kind: "StatefulSet".into(),
            key: key.clone(),
            reason: "not a JSON object".into(),
        })?;
    remove_fields(root, "spec", V1BETA1_ONLY_SPEC_FIELDS, &key)?;
    remove_fields(root, "status", V1BETA1_ONLY_STATUS_FIELDS, &key)?;
    root.insert("apiVersion".into(), desired_api_version.into());
    Ok(obj)
}

/// Removes `fields` from `root[part]` (absent or `null` parts are left alone).
fn remove_fields(
    root: &mut Map<String, Value>,
    part: &str,
    fields: &[&str],
    key: &str,
) -> Result<(), ConversionError> {
    match root.get_mut(part) {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Object(m)) => {
            for f in fields {
                m.remove(*f);
            }
            Ok(())
        }
        Some(_) => Err(ConversionError::Invalid {
            kind: "StatefulSet".into(),
            key: key.to_string(),
            reason: format!("{part} is not an object"),
        }),
    }
}

#[cfg(test)]
#[path = "statefulset_conversion_tests.rs"]
mod tests;
