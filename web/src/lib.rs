//! graft's dashboard: for every GitSync, where each commit is in its rollout, live.
//!
//! - [`cache`]: one watch per kind for the whole process (GitSyncs, the workloads graft manages,
//!   pods, events, ImagePullJobs, NodeImages), with a change counter that the SSE stream follows:
//!   a thousand browsers cost the API server nothing more than one.
//! - [`snapshot`]: the watched objects at one instant, the input of every page.
//! - [`view`]: pure functions from a snapshot to the data of each page (the JSON API returns
//!   these as they are; the HTML pages render them with askama templates).
//! - [`workload`], [`waiting`], [`pods`]: reading a workload's progress and why it waits.
//! - [`diff`]: the rendered manifests of a commit against the previous one (the objects come from
//!   a [`diff::DiffSource`]: the sync's, wired in by the binary).
//! - [`server`]: the axum router: pages, JSON, SSE, static assets, bearer-token check.
#![warn(missing_docs)]

pub mod cache;
pub mod diff;
pub mod fixtures;
pub mod format;
pub mod pods;
pub mod server;
pub mod snapshot;
pub mod view;
pub mod waiting;
pub mod workload;

pub use server::{Options, router, serve};
pub use snapshot::Snapshot;
