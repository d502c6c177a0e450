//! The agent loop: starts the tasks that run on one node (image puller, ContainerRecreateRequest
//! executor, container meta) and keeps them running until shutdown or until one of them fails. It depends on the
//! tasks ([`crate::imagepull`], [`crate::crr`]), never the reverse: what they share with it lives
//! in [`crate::options`] and [`crate::error`].

use futures::FutureExt;
use futures::future::BoxFuture;

use crate::cri::CriClient;
pub use crate::error::AgentError;
pub use crate::options::Options;

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
    // Container meta and env-from-metadata restarts (kruise-daemon's containermeta).
    tasks.push(Box::pin(
        crate::containermeta::run(
            client.clone(),
            cri.clone(),
            opts.node_name.clone(),
            opts.crr_namespace.clone(),
        )
        .then(|()| async {
            Err(AgentError::Task {
                task: "containermeta",
                reason: "the watch of this node's pods ended".to_string(),
            })
        }),
    ));
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
