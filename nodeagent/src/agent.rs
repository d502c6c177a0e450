//! The agent loop: starts the tasks that run on one node (image puller, ContainerRecreateRequest
//! executor) and keeps them running until shutdown or until one of them fails.

use futures::future::BoxFuture;

use crate::cri::CriClient;

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

/// Errors that stop the agent.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// Startup input is unusable.
    #[error("invalid node agent configuration: {0}")]
    Config(String),
    /// A task of the agent ended with an error.
    #[error("node agent task {task} failed: {reason}")]
    Task {
        /// Which task.
        task: &'static str,
        /// Why.
        reason: String,
    },
}

/// One long-running task of the agent.
pub type AgentTask = BoxFuture<'static, Result<(), AgentError>>;

/// Runs the node agent until a task fails or `shutdown` resolves.
pub async fn run(
    client: kube::Client,
    cri: CriClient,
    opts: Options,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), AgentError> {
    if opts.node_name.is_empty() {
        return Err(AgentError::Config(
            "node name is empty: set NODE_NAME (or --node-name)".to_string(),
        ));
    }
    tracing::info!(node = %opts.node_name, cri = %cri.endpoint(), "node agent running");
    let tasks = tasks(client, cri, opts);
    run_tasks(tasks, shutdown).await
}

/// The agent's tasks. Each gets its own clients; each runs until shutdown.
fn tasks(client: kube::Client, cri: CriClient, opts: Options) -> Vec<AgentTask> {
    let mut tasks: Vec<AgentTask> = Vec::new();
    // Pre-pulls for this node's NodeImage; not when `opts.only_crr`.
    if !opts.only_crr {
        tasks.push(Box::pin(crate::imagepull::run(
            client.clone(),
            cri.clone(),
            opts.clone(),
        )));
    }
    let crr = crate::crr::Options {
        node_name: opts.node_name.clone(),
        namespace: opts.crr_namespace.clone(),
        workers: 32,
    };
    tasks.push(Box::pin(async move {
        crate::crr::run(client, cri, crr).await;
        Err(AgentError::Task {
            task: "containerrecreaterequest",
            reason: "the watch of ContainerRecreateRequests ended".to_string(),
        })
    }));
    tasks
}

async fn run_tasks(
    tasks: Vec<AgentTask>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), AgentError> {
    if tasks.is_empty() {
        shutdown.await;
        return Ok(());
    }
    tokio::select! {
        (result, _, _) = futures::future::select_all(tasks) => result,
        () = shutdown => Ok(()),
    }
}
