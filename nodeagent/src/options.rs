//! What the node agent needs to know about where it runs: read by the agent loop and by each of
//! its tasks, so it lives below both.

/// What the agent needs to know about where it runs.
#[derive(Clone, Debug)]
pub struct Options {
    /// The Node this agent serves (NODE_NAME).
    pub node_name: String,
    /// Most image pulls at once on this node (0 = unlimited).
    pub max_concurrent_pulls: usize,
    /// Namespace where the ImagePullJob controller copies pull secrets for the agent to read.
    pub pull_secrets_namespace: String,
    /// Recreate containers only for ContainerRecreateRequests in this namespace (`None`: all).
    /// For tests, where several agents share the one node.
    pub crr_namespace: Option<String>,
    /// Run only the ContainerRecreateRequest executor (no image puller). For tests, where several
    /// agents share the one node and must not all pull for its one NodeImage.
    pub only_crr: bool,
}
