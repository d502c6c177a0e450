//! graft's OpenKruise-compatible workload controllers.
//!
//! Each controller is a pure planner (a snapshot of the world in, a [`cloneset::plan::Plan`] of
//! actions out) plus a thin executor that talks to the API server (DESIGN.md, "Decide purely, act
//! separately"). Shared pieces live in their own modules so Advanced StatefulSet and SidecarSet can
//! reuse them: [`inplace`] (the in-place update engine) and [`revision`] (ControllerRevisions).

pub mod cloneset;
pub mod inplace;
pub mod revision;
