//! `apps.kruise.io/v1beta1` kinds.

pub mod sidecarset;
pub mod statefulset;
pub mod statefulset_validation;

pub use statefulset::{StatefulSet, StatefulSetSpec, StatefulSetStatus};
