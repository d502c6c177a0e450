//! The CustomResourceDefinitions graft serves, generated from the types, and their files under
//! `deploy/crds/`.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceConversion, CustomResourceDefinition, JSONSchemaProps, ServiceReference,
    WebhookClientConfig, WebhookConversion,
};
use kube::CustomResourceExt;

use crate::Error;
use crate::apps::v1alpha1::{
    BroadcastJob, CloneSet, ContainerRecreateRequest, ImagePullJob, NodeImage, SidecarSet,
};
use crate::apps::v1beta1::StatefulSet;
use crate::graft::GitSync;
use crate::policy::v1alpha1::PodUnavailableBudget;

/// Every CRD graft serves, in a stable order.
pub fn all() -> Vec<CustomResourceDefinition> {
    vec![
        CloneSet::crd(),
        sidecarset(),
        StatefulSet::crd(),
        BroadcastJob::crd(),
        ImagePullJob::crd(),
        NodeImage::crd(),
        ContainerRecreateRequest::crd(),
        PodUnavailableBudget::crd(),
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
