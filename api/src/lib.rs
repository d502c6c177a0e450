//! graft-api: the custom resource types graft serves and reads, with their defaults, validation
//! and the well-known pod labels and annotations that form the OpenKruise wire contract.
//!
//! Kinds (each field-compatible with OpenKruise, see `shared/reference/kruise-api.md`):
//! - `apps.kruise.io/v1alpha1`: [`apps::v1alpha1::CloneSet`], [`apps::v1alpha1::SidecarSet`],
//!   [`apps::v1alpha1::ImagePullJob`], [`apps::v1alpha1::NodeImage`],
//!   [`apps::v1alpha1::ContainerRecreateRequest`]
//! - `apps.kruise.io/v1beta1` (storage; v1alpha1 served too): [`apps::v1beta1::StatefulSet`]
//!   (Advanced StatefulSet), [`apps::v1beta1::SidecarSet`](apps::v1beta1::sidecarset::SidecarSet),
//!   [`apps::v1beta1::BroadcastJob`], [`apps::v1beta1::AdvancedCronJob`]
//! - `policy.kruise.io/v1beta1` (storage; v1alpha1 served too):
//!   [`policy::v1beta1::PodUnavailableBudget`] ([`policy::v1alpha1::PodUnavailableBudget`])
//! - `graft.dev/v1alpha1`: [`graft::GitSync`]
//!
//! This crate does no I/O and has no API client.

// kube-derive takes repeated `printcolumn(...)`/`shortname` attributes, which clippy misreads as
// duplicates.
#![allow(clippy::duplicated_attributes)]
#![warn(missing_docs)]

pub mod annotations;
pub mod apps;
pub mod commit;
pub mod conversion;
pub mod crds;
pub mod error;
pub mod field;
pub mod gojson;
pub mod graft;
pub mod intstr;
pub mod labels;
pub mod manifest;
pub mod names;
pub mod policy;
pub mod quantity;
mod schema;
pub mod selector;
pub mod workload;

pub use error::Error;
pub use field::{FieldError, FieldErrorKind, FieldErrors};
