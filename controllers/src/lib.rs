//! graft's OpenKruise-compatible workload controllers.
//!
//! Each controller is a pure planner (a snapshot of the world in, a plan of actions out) plus a
//! thin executor that talks to the API server (DESIGN.md, "Decide purely, act separately").
//! Shared pieces live in their own modules so Advanced StatefulSet and SidecarSet can reuse them:
//! [`inplace`] (the in-place update engine), [`revision`] (ControllerRevisions),
//! [`expectations`] (not acting twice on a stale cache) and [`pullsecrets`].
//!
//! Every controller takes the one [`context::Context`]: the client, the shared caches (pods,
//! nodes, NodeImages, ImagePullJobs — each watched once per process), the Event recorder and the
//! metrics. [`runtime`] builds it, runs the watches and the triggers they feed, and starts the
//! controllers; it is the only module that knows them all. A controller module imports the
//! context, the shared modules and `graft-api`, never another controller nor the runtime.

pub mod advancedcronjob;
pub mod broadcastjob;
pub mod cloneset;
pub mod context;
pub mod crr;
pub mod events;
pub mod expectations;
pub mod imagepull;
pub mod inplace;
pub mod metrics;
pub mod nodeimage;
pub mod podorder;
pub mod podready;
pub mod podunavailablebudget;
pub mod predownload;
pub mod pubguard;
pub mod pullsecrets;
pub mod revision;
pub mod runtime;
pub mod sidecarset;
pub mod statefulset;
