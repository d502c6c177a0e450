//! `policy.kruise.io` kinds.

pub mod v1alpha1;
pub mod v1beta1;
