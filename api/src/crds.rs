//! The CustomResourceDefinitions graft serves, generated from the types, and their files under
//! `deploy/crds/`.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
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
        SidecarSet::crd(),
        StatefulSet::crd(),
        BroadcastJob::crd(),
        ImagePullJob::crd(),
        NodeImage::crd(),
        ContainerRecreateRequest::crd(),
        PodUnavailableBudget::crd(),
        GitSync::crd(),
    ]
}

/// File name of a CRD under `deploy/crds/`: `<group>_<plural>.yaml`, e.g. `apps.kruise.io_clonesets.yaml`.
pub fn file_name(crd: &CustomResourceDefinition) -> String {
    format!("{}_{}.yaml", crd.spec.group, crd.spec.names.plural)
}

/// The CRD as YAML, as committed under `deploy/crds/`.
pub fn to_yaml(crd: &CustomResourceDefinition) -> Result<String, Error> {
    crate::manifest::to_yaml(crd)
}
