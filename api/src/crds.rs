//! The CustomResourceDefinitions graft serves, generated from the types, and their files under
//! `deploy/crds/`.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceConversion, CustomResourceDefinition, JSONSchemaProps,
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

/// File name of a CRD under `deploy/crds/`: `<group>_<plural>.yaml`, e.g. `apps.kruise.io_clonesets.yaml`.
pub fn file_name(crd: &CustomResourceDefinition) -> String {
    format!("{}_{}.yaml", crd.spec.group, crd.spec.names.plural)
}

/// The CRD as YAML, as committed under `deploy/crds/`.
pub fn to_yaml(crd: &CustomResourceDefinition) -> Result<String, Error> {
    crate::manifest::to_yaml(crd)
}
