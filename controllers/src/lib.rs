//! graft's OpenKruise-compatible workload controllers.
//!
//! Each controller is a pure planner (a snapshot of the world in, a plan of actions out) plus a
//! thin executor that talks to the API server (DESIGN.md, "Decide purely, act separately").
//! Shared pieces live in their own modules so Advanced StatefulSet and SidecarSet can reuse them:
//! [`inplace`] (the in-place update engine), [`revision`] (ControllerRevisions) and
//! [`expectations`] (not acting twice on a stale cache).

pub mod cloneset;
pub mod context;
pub mod crr;
pub mod events;
pub mod expectations;
pub mod imagepull;
pub mod inplace;
pub mod metrics;
pub mod nodeimage;
pub mod revision;
pub mod runtime;
