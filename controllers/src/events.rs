//! Kubernetes Events: the shared recorder of the `graft-events` crate (also used by the sync
//! and the node agent).

pub use graft_events::*;
