//! `resourcesPolicy` (OpenKruise 1.9): a sidecar's resources computed at injection from the pod's
//! other containers (`pkg/webhook/pod/mutating/sidecarset_resources.go`).

use graft_api::apps::v1beta1::sidecarset::{SidecarContainer, SidecarSet};
use k8s_openapi::api::core::v1::Pod;

use super::SidecarSetError;

/// Sets `sidecar.resources` from its `resourcesPolicy`.
pub fn apply(
    _pod: &Pod,
    sidecar: &mut SidecarContainer,
    _matched: &[SidecarSet],
    sidecarset: &str,
) -> Result<(), SidecarSetError> {
    Err(SidecarSetError::ResourcesPolicy {
        sidecarset: sidecarset.to_string(),
        container: sidecar.container.name.clone(),
        message: "resourcesPolicy is not implemented by graft yet".into(),
    })
}
