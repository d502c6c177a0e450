//! The BroadcastJob controller (kruise-api.md §5): one pod per eligible node, run to
//! completion. [`fitness`] decides which nodes are eligible, [`plan`] is the pure reconcile,
//! [`controller`] runs it against the cluster.

pub mod controller;
pub mod fitness;
pub mod plan;
