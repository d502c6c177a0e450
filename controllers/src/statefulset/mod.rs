//! The Advanced StatefulSet (`apps.kruise.io/v1beta1` StatefulSet) controller (kruise-api.md
//! §4), a pipeline `gather → prepare, plan (pure) → execute → status` that [`controller`] runs.
//! The pure parts: the planner in [`plan`] (a [`plan::Snapshot`] in, a [`plan::Plan`] out),
//! ownership and revisions in [`prepare`], the ordinal arithmetic in [`ordinals`], the pods and
//! PVCs it creates in [`identity`], the PVC retention rules in [`claims`], and [`facts`], which
//! turns observed objects into the planner's facts with the shared in-place engine; image
//! pre-download for in-place updates is the shared [`crate::predownload`] with its checks in
//! `predownload`.

pub mod claims;
pub mod controller;
mod execute;
pub mod facts;
mod gather;
pub mod identity;
pub mod ordinals;
pub mod plan;
mod predownload;
pub mod prepare;
mod status;
