//! The CustomResourceDefinitions graft serves, generated from the types, and their files under
//! `deploy/crds/`.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceConversion, CustomResourceDefinition, JSONSchemaProps, ServiceReference,
    WebhookClientConfig, WebhookConversion,
};
use kube::CustomResourceExt;

use crate::Error;
use crate::apps::v1alpha1::{
    CloneSet, ContainerRecreateRequest, ImagePullJob, NodeImage, SidecarSet,
};
use crate::apps::v1beta1::StatefulSet;
use crate::apps::v1beta1::{AdvancedCronJob, BroadcastJob};
use crate::graft::GitSync;
use crate::policy::v1alpha1::PodUnavailableBudget;

/// Every CRD graft serves, in a stable order.
pub fn all() -> Vec<CustomResourceDefinition> {
    vec![
        CloneSet::crd(),
        sidecarset(),
        statefulset(),
        broadcastjob(),
        advancedcronjob(),
        ImagePullJob::crd(),
        NodeImage::crd(),
        ContainerRecreateRequest::crd(),
        podunavailablebudget(),
        GitSync::crd(),
    ]
}

/// Path of graft's conversion webhook on the admission server.
pub const CONVERSION_PATH: &str = "/convert";
/// Service a CRD converted by webhook sends ConversionReviews to: the chart's admission Service
/// for release `graft` (`<fullname>-admission`); graft's admission server rewrites the client
/// config with its real endpoint and CA when it starts.
pub const CONVERSION_SERVICE: &str = "graft-admission";
/// Namespace of [`CONVERSION_SERVICE`] (the plain manifests' namespace).
pub const CONVERSION_SERVICE_NAMESPACE: &str = "graft-system";
/// Port of [`CONVERSION_SERVICE`].
pub const CONVERSION_SERVICE_PORT: i32 = 443;

/// SidecarSet serves `v1alpha1` and `v1beta1`, `v1beta1` stored, as OpenKruise 1.9.
///
/// OpenKruise converts between them with a conversion webhook. graft's admission server does not
/// answer conversion reviews yet, so the CRD says `conversion: None` (the API server only rewrites
/// `apiVersion`), and each version's schema also declares the other version's one extra field
/// (`spec.namespace` in v1beta1, `spec.customVersion` in v1alpha1) so that nothing is pruned on
/// the way through storage. graft reads every SidecarSet through
/// [`crate::apps::v1alpha1::sidecarset::from_any_version`], which applies kruise's conversion
/// rules to whatever the object carries; a `Webhook` strategy replaces this once `/convert` is
/// served, with no change to stored objects.
pub fn sidecarset() -> CustomResourceDefinition {
    let mut crd = crate::apps::v1beta1::sidecarset::SidecarSet::crd();
    let alpha = SidecarSet::crd();
    crd.spec
        .versions
        .extend(alpha.spec.versions.into_iter().map(|mut v| {
            v.storage = false;
            v
        }));
    for v in &mut crd.spec.versions {
        let (field, description) = if v.name == "v1beta1" {
            (
                "namespace",
                "v1alpha1 field, kept while the CRD converts with strategy None: graft reads it as namespaceSelector on kubernetes.io/metadata.name, as OpenKruise's conversion does.",
            )
        } else {
            (
                "customVersion",
                "v1beta1 field, kept while the CRD converts with strategy None: the custom version (v1alpha1 label apps.kruise.io/sidecarset-custom-version).",
            )
        };
        if let Some(spec) = v
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut())
            .and_then(|s| s.properties.as_mut())
            .and_then(|p| p.get_mut("spec"))
            .and_then(|s| s.properties.as_mut())
        {
            spec.insert(
                field.to_string(),
                JSONSchemaProps {
                    type_: Some("string".into()),
                    description: Some(description.into()),
                    ..Default::default()
                },
            );
        }
    }
    crd.spec.conversion = Some(CustomResourceConversion {
        strategy: "None".into(),
        webhook: None,
    });
    crd
}

/// Advanced StatefulSet serves `v1alpha1` and `v1beta1`, `v1beta1` stored, as OpenKruise 1.9:
/// the same short names (`sts`, `asts`), printer columns, status and scale subresources in both.
///
/// OpenKruise converts with its webhook; graft says `conversion: None` so that no read of either
/// version depends on graft running. Unlike SidecarSet nothing has to be declared twice: the
/// v1alpha1 schema is exactly the v1beta1 one minus the fields v1beta1 added, and kruise's
/// conversion is field for field apart from dropping those
/// ([`crate::apps::statefulset_conversion`]). With strategy `None` and structural schemas the
/// API server rewrites `apiVersion` and prunes what the requested version's schema lacks, so a
/// v1beta1 object read, patched or replaced at v1alpha1 loses `reserveOrdinals`, `lifecycle`,
/// `scaleStrategy`, `persistentVolumeClaimRetentionPolicy`, `ordinals`,
/// `volumeClaimUpdateStrategy` and the status fields `updatedReadyReplicas`,
/// `updatedAvailableReplicas`, `volumeClaims`, just as kruise's `ConvertFrom` loses them, and a
/// v1alpha1 object is stored as v1beta1 unchanged, as kruise's `ConvertTo` stores it. graft reads
/// StatefulSets at v1beta1 only.
pub fn statefulset() -> CustomResourceDefinition {
    let mut crd = StatefulSet::crd();
    let alpha = crate::apps::v1alpha1::StatefulSet::crd();
    crd.spec
        .versions
        .extend(alpha.spec.versions.into_iter().map(|mut v| {
            v.storage = false;
            v
        }));
    crd.spec.conversion = Some(CustomResourceConversion {
        strategy: "None".into(),
        webhook: None,
    });
    crd
}

/// BroadcastJob serves `v1alpha1` and `v1beta1`, `v1beta1` stored, as OpenKruise 1.9. The two
/// versions are the same type upstream (kruise's conversion copies every field), so v1alpha1 is
/// v1beta1's schema under the older name and `conversion: None` (the API server only rewrites
/// `apiVersion`) loses nothing and needs nothing of graft at read time.
pub fn broadcastjob() -> CustomResourceDefinition {
    same_schema_alpha(BroadcastJob::crd())
}

/// AdvancedCronJob serves `v1alpha1` and `v1beta1`, `v1beta1` stored, as OpenKruise 1.9. Upstream
/// v1alpha1 lacks only `template.imageListPullJobTemplate`; both versions here carry v1beta1's
/// schema, so with `conversion: None` nothing is pruned on the way through either version.
pub fn advancedcronjob() -> CustomResourceDefinition {
    same_schema_alpha(AdvancedCronJob::crd())
}

/// PodUnavailableBudget serves `v1alpha1` and `v1beta1`, `v1beta1` stored, as OpenKruise's
/// master (the same short name `pub` and printer columns in both).
///
/// OpenKruise converts with its webhook; graft says `conversion: None`, as for SidecarSet: the
/// v1alpha1 schema also declares v1beta1's `protectOperations`, `protectTotalReplicas` and
/// `ignoredPodSelector`, so that nothing is pruned when an object is read or written at either
/// version, and graft reads every PUB at v1beta1 through
/// [`crate::policy::v1beta1::effective`], which promotes the v1alpha1 annotations
/// (`kruise.io/pub-protect-operations`, `pub.kruise.io/protect-total-replicas`) as kruise's
/// `ConvertTo` does.
pub fn podunavailablebudget() -> CustomResourceDefinition {
    let mut crd = crate::policy::v1beta1::PodUnavailableBudget::crd();
    let beta_only: Vec<(String, JSONSchemaProps)> = spec_properties(&mut crd.spec.versions[0])
        .map(|p| {
            [
                "protectOperations",
                "protectTotalReplicas",
                "ignoredPodSelector",
            ]
            .iter()
            .filter_map(|f| p.get(*f).map(|s| (f.to_string(), s.clone())))
            .collect()
        })
        .unwrap_or_default();
    // v1alpha1 stays the storage version: OpenKruise 1.9 has only v1alpha1, and a CRD that ever
    // stored v1beta1 could not be replaced by kruise's (storedVersions must stay served).
    crd.spec.versions[0].storage = false;
    let alpha = PodUnavailableBudget::crd();
    crd.spec
        .versions
        .extend(alpha.spec.versions.into_iter().map(|mut v| {
            v.storage = true;
            if let Some(p) = spec_properties(&mut v) {
                for (field, schema) in &beta_only {
                    let mut schema = schema.clone();
                    schema.description = Some(format!(
                        "v1beta1 field, kept while the CRD converts with strategy None. {}",
                        schema.description.unwrap_or_default()
                    ));
                    p.insert(field.clone(), schema);
                }
            }
            v
        }));
    // The storage version first, as in every graft CRD.
    crd.spec.versions.reverse();
    crd.spec.conversion = Some(CustomResourceConversion {
        strategy: "None".into(),
        webhook: None,
    });
    crd
}

/// The properties of `spec` in one version's schema.
fn spec_properties(
    v: &mut k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinitionVersion,
) -> Option<&mut std::collections::BTreeMap<String, JSONSchemaProps>> {
    v.schema
        .as_mut()
        .and_then(|s| s.open_api_v3_schema.as_mut())
        .and_then(|s| s.properties.as_mut())
        .and_then(|p| p.get_mut("spec"))
        .and_then(|s| s.properties.as_mut())
}

/// `crd` (one v1beta1 version, stored) plus a served, unstored v1alpha1 copy of it, converted
/// with strategy `None`.
fn same_schema_alpha(mut crd: CustomResourceDefinition) -> CustomResourceDefinition {
    let mut alpha = crd.spec.versions[0].clone();
    alpha.name = "v1alpha1".into();
    alpha.storage = false;
    crd.spec.versions.push(alpha);
    crd.spec.conversion = Some(CustomResourceConversion {
        strategy: "None".into(),
        webhook: None,
    });
    crd
}

/// `spec.conversion` for a CRD converted by graft's webhook: strategy `Webhook`,
/// ConversionReview v1, the admission Service at [`CONVERSION_PATH`], no `caBundle` (graft's
/// admission server patches it in). No CRD uses it today: a conversion webhook sits in the
/// request path of every read at the other version, so graft converts with strategy `None` and
/// reads through kruise's rules instead (see [`sidecarset`]).
pub fn webhook_conversion() -> CustomResourceConversion {
    CustomResourceConversion {
        strategy: "Webhook".into(),
        webhook: Some(WebhookConversion {
            client_config: Some(WebhookClientConfig {
                ca_bundle: None,
                service: Some(ServiceReference {
                    name: CONVERSION_SERVICE.into(),
                    namespace: CONVERSION_SERVICE_NAMESPACE.into(),
                    path: Some(CONVERSION_PATH.into()),
                    port: Some(CONVERSION_SERVICE_PORT),
                }),
                url: None,
            }),
            conversion_review_versions: vec!["v1".into()],
        }),
    }
}

/// The CRDs whose versions are converted by graft's conversion webhook (none today).
pub fn webhook_converted() -> Vec<CustomResourceDefinition> {
    all()
        .into_iter()
        .filter(|c| {
            c.spec
                .conversion
                .as_ref()
                .is_some_and(|c| c.strategy == "Webhook")
        })
        .collect()
}

/// File name of a CRD under `deploy/crds/`: `<group>_<plural>.yaml`, e.g. `apps.kruise.io_clonesets.yaml`.
pub fn file_name(crd: &CustomResourceDefinition) -> String {
    format!("{}_{}.yaml", crd.spec.group, crd.spec.names.plural)
}

/// The CRD as YAML, as committed under `deploy/crds/`.
pub fn to_yaml(crd: &CustomResourceDefinition) -> Result<String, Error> {
    crate::manifest::to_yaml(crd)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apps::statefulset_conversion::{
        V1BETA1_ONLY_SPEC_FIELDS, V1BETA1_ONLY_STATUS_FIELDS,
    };
    use pretty_assertions::assert_eq;
    use serde_json::{Value, json};
    use std::collections::BTreeSet;

    /// kruise's `config/crd/bases/apps.kruise.io_statefulsets.yaml`: the same columns in both
    /// versions.
    fn kruise_columns() -> Value {
        json!([
            {"description": "The desired number of pods.", "jsonPath": ".spec.replicas", "name": "DESIRED", "type": "integer"},
            {"description": "The number of currently all pods.", "jsonPath": ".status.replicas", "name": "CURRENT", "type": "integer"},
            {"description": "The number of pods updated.", "jsonPath": ".status.updatedReplicas", "name": "UPDATED", "type": "integer"},
            {"description": "The number of pods ready.", "jsonPath": ".status.readyReplicas", "name": "READY", "type": "integer"},
            {"description": "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.",
             "jsonPath": ".metadata.creationTimestamp", "name": "AGE", "type": "date"},
            {"description": "The containers of currently advanced statefulset.", "jsonPath": ".spec.template.spec.containers[*].name", "name": "CONTAINERS", "priority": 1, "type": "string"},
            {"description": "The images of currently advanced statefulset.", "jsonPath": ".spec.template.spec.containers[*].image", "name": "IMAGES", "priority": 1, "type": "string"}
        ])
    }

    fn properties(v: &Value, part: &str) -> BTreeSet<String> {
        v["schema"]["openAPIV3Schema"]["properties"][part]["properties"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect()
    }

    #[test]
    fn podunavailablebudget_serves_both_versions_and_prunes_nothing() {
        let crd = serde_json::to_value(podunavailablebudget()).unwrap();
        assert_eq!(crd["spec"]["conversion"], json!({"strategy": "None"}));
        assert_eq!(crd["spec"]["names"]["shortNames"], json!(["pub"]));
        let versions = crd["spec"]["versions"].as_array().unwrap();
        let flags: Vec<(Value, Value)> = versions
            .iter()
            .map(|v| (v["name"].clone(), v["storage"].clone()))
            .collect();
        assert_eq!(
            flags,
            vec![
                (json!("v1alpha1"), json!(true)),
                (json!("v1beta1"), json!(false))
            ]
        );
        let (alpha, beta) = (&versions[0], &versions[1]);
        assert_eq!(properties(beta, "spec"), properties(alpha, "spec"));
        assert_eq!(properties(beta, "status"), properties(alpha, "status"));
        for f in [
            "protectOperations",
            "protectTotalReplicas",
            "ignoredPodSelector",
        ] {
            assert!(properties(beta, "spec").contains(f), "{f}");
        }
        let columns = |v: &Value| {
            v["additionalPrinterColumns"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| (c["name"].clone(), c["jsonPath"].clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(columns(beta), columns(alpha));
        assert_eq!(
            columns(beta),
            vec![
                (json!("Allowed"), json!(".status.unavailableAllowed")),
                (json!("Current"), json!(".status.currentAvailable")),
                (json!("Desired"), json!(".status.desiredAvailable")),
                (json!("Total"), json!(".status.totalReplicas")),
            ]
        );
        let ops = &beta["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["protectOperations"];
        assert_eq!(
            ops["items"]["enum"],
            json!(["DELETE", "EVICT", "UPDATE", "RESIZE"])
        );
    }

    #[test]
    fn statefulset_serves_both_versions_like_kruise() {
        let crd = serde_json::to_value(statefulset()).unwrap();
        assert_eq!(crd["spec"]["conversion"], json!({"strategy": "None"}));
        assert_eq!(crd["spec"]["names"]["shortNames"], json!(["sts", "asts"]));
        assert_eq!(crd["spec"]["scope"], json!("Namespaced"));
        let versions = crd["spec"]["versions"].as_array().unwrap();
        let flags: Vec<(Value, Value, Value)> = versions
            .iter()
            .map(|v| (v["name"].clone(), v["served"].clone(), v["storage"].clone()))
            .collect();
        assert_eq!(
            flags,
            vec![
                (json!("v1beta1"), json!(true), json!(true)),
                (json!("v1alpha1"), json!(true), json!(false))
            ]
        );
        for v in versions {
            assert_eq!(
                v["additionalPrinterColumns"],
                kruise_columns(),
                "{}",
                v["name"]
            );
            assert_eq!(
                v["subresources"],
                json!({"status": {}, "scale": {"specReplicasPath": ".spec.replicas",
                    "statusReplicasPath": ".status.replicas", "labelSelectorPath": ".status.labelSelector"}}),
                "{}",
                v["name"]
            );
        }
        // With strategy None the API server prunes by the requested version's schema: the
        // v1alpha1 schema must lack exactly the fields kruise's ConvertFrom drops.
        let (beta, alpha) = (&versions[0], &versions[1]);
        for (part, only) in [
            ("spec", V1BETA1_ONLY_SPEC_FIELDS),
            ("status", V1BETA1_ONLY_STATUS_FIELDS),
        ] {
            let dropped: BTreeSet<String> = properties(beta, part)
                .difference(&properties(alpha, part))
                .cloned()
                .collect();
            let want: BTreeSet<String> = only.iter().map(|s| s.to_string()).collect();
            assert_eq!(dropped, want, "{part}");
            assert!(properties(alpha, part).is_subset(&properties(beta, part)));
        }
        // Every shared field has the same schema in both versions.
        for part in ["spec", "status"] {
            for f in properties(alpha, part) {
                let p = |v: &Value| {
                    v["schema"]["openAPIV3Schema"]["properties"][part]["properties"][&f].clone()
                };
                assert_eq!(p(alpha), p(beta), "{part}.{f}");
            }
        }
    }
}
