//! NodeImage manager: one NodeImage per Ready Node with the Node's labels, deleted with the Node;
//! tags garbage-collected after their TTL or when their ImagePullJobs are gone; tags the node agent
//! never answered marked failed (kruise-api.md §6.2). [`plan`] decides, [`controller`] acts.

pub mod controller;
pub mod plan;
