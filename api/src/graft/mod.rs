//! `graft.dev` kinds: graft's own API.

pub mod gitsync;

pub use gitsync::{GitSync, GitSyncSpec, GitSyncStatus};
