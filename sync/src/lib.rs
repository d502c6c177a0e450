//! graft-sync: keep the cluster equal to a path of a Git repository.
//!
//! This crate holds the parts of the sync that need no cluster, each a pure step the sync loop
//! (the executor) chains together:
//!
//! 1. [`git`]: fetch a branch, tag or commit into a bare cache repository (skipping the fetch
//!    when the remote tip is unchanged) and read the manifests from the commit tree.
//! 2. [`render`]: turn the files of a commit into Kubernetes objects, reporting every error of
//!    the commit with its file, document and line.
//! 3. [`plan`]: order the objects into apply waves, label them with their owner, and compute
//!    the inventory and what to prune.
//! 4. [`health`]: the health of a live object, with correct rules for the OpenKruise kinds.
//! 5. [`webhook`]: verify push webhook signatures and read the repository and ref they name;
//!    [`webhook::receiver`] is the one `POST /hook` of `graft run` and `graft sync`.
//! 6. [`gitsync::plan`]: the commit state machine of a GitSync (detected → validated →
//!    pre-pulling → applying → rolling out → healthy / failed / superseded), pure.
//!
//! Around them, the executors: [`gitsync`] (the GitSync controller, gather → plan → execute)
//! and [`run`] (`graft sync --repo`, [`run::Syncer::run_until`]), both on the async runtime and
//! stopped by dropping them or by their shutdown future.
#![warn(missing_docs)]

pub mod apply;
pub mod diff;
pub mod error;
pub mod git;
pub mod gitsync;
pub mod health;
pub mod object;
pub mod plan;
pub mod prepull;
pub mod render;
pub mod run;
pub mod watch;
pub mod webhook;

pub use error::Error;
pub use object::{ObjectId, ObjectRef};
