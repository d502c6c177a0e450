//! `apps.kruise.io` kinds and the types they share (OpenKruise `apis/apps/pub`).

pub mod common;
pub mod sidecarset_conversion;
pub mod statefulset_conversion;
pub mod v1alpha1;
pub mod v1beta1;
pub mod validation;
