//! The GitSync controller: keeps each GitSync's repository path applied and records, for every
//! commit, what happened to it (detected → validated → pre-pulling → applying → rolling out →
//! healthy / failed / superseded) in `status.history`.
//!
//! [`plan`] decides (pure, table-tested); the controller gathers what it needs and executes
//! what it decided. Every step is an async task on the runtime: dropping the controller's
//! future (shutdown, leader loss) stops a sync where it stands.

mod controller;
pub mod plan;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use graft_api::graft::gitsync::GitSync;
use kube::runtime::controller::Action as Requeue;
use kube::runtime::reflector::ObjectRef as KubeRef;
use kube::runtime::{Controller, watcher};
use kube::{Api, Client, ResourceExt};

use crate::run::Engine;
use crate::webhook::receiver;
use controller::Ctx;
pub(crate) use controller::read_auth;

/// Errors of one GitSync reconcile that are retried (sync failures are written to the status).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading the current status failed.
    #[error("{key}: reading status: {source}")]
    ReadStatus {
        /// `namespace/name` of the GitSync.
        key: String,
        /// The cause.
        source: kube::Error,
    },
    /// Writing the status failed.
    #[error("{key}: writing status: {source}")]
    Status {
        /// `namespace/name` of the GitSync.
        key: String,
        /// The cause.
        source: kube::Error,
    },
}

/// The push webhook endpoint of the GitSync controller.
#[derive(Clone, Debug)]
pub struct WebhookOptions {
    /// Where to listen (`POST /hook`).
    pub addr: std::net::SocketAddr,
    /// The shared secret of the signatures (GitHub/Gitea/Forgejo/generic HMAC, GitLab token).
    pub secret: Vec<u8>,
}

/// Run the GitSync controller (all namespaces, or one) until the process stops (SIGINT or
/// SIGTERM); with `webhook`, a verified push syncs the GitSyncs that follow the pushed
/// repository and ref at once.
pub async fn run(
    client: Client,
    cache_dir: std::path::PathBuf,
    namespace: Option<String>,
    webhook: Option<WebhookOptions>,
) -> Result<(), std::io::Error> {
    run_until(
        client,
        cache_dir,
        namespace,
        webhook,
        std::future::pending(),
    )
    .await
}

/// [`run`] until `shutdown` completes (leader loss, shutdown): a sync in progress is cancelled
/// where it stands — the next leader resumes from the status, level-triggered.
pub async fn run_until(
    client: Client,
    cache_dir: std::path::PathBuf,
    namespace: Option<String>,
    webhook: Option<WebhookOptions>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), std::io::Error> {
    let api: Api<GitSync> = match &namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let instance = std::env::var("POD_NAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "graft".into());
    let ctx = Arc::new(Ctx {
        engine: Engine::new(client.clone(), cache_dir),
        recorder: graft_events::Recorder::new(client.clone(), "graft-sync", &instance),
        client,
    });
    let controller = Controller::new(api, watcher::Config::default().any_semantic());
    let store = controller.store();
    let (tx, rx) = futures::channel::mpsc::unbounded::<KubeRef<GitSync>>();
    let controller = controller
        .reconcile_on(rx)
        .shutdown_on_signal()
        .run(controller::reconcile, error_policy, ctx)
        .for_each(|r| {
            if let Err(e) = r {
                tracing::debug!(error = %e, "gitsync reconcile");
            }
            futures::future::ready(())
        });
    let watch = crate::watch::watch_local_repos(store.clone(), tx.clone());
    let hooks = async move {
        let Some(opts) = webhook else {
            drop(tx);
            return futures::future::pending().await;
        };
        let listener = tokio::net::TcpListener::bind(opts.addr).await?;
        tracing::info!(addr = %opts.addr, "push webhooks on POST /hook");
        let trigger = receiver::Trigger::Queue { store, tx };
        let app = receiver::router_with(trigger, Arc::new(opts.secret));
        axum::serve(listener, app).await
    };
    tokio::select! {
        _ = controller => Ok(()),
        _ = watch => Ok(()),
        r = hooks => r,
        _ = shutdown => {
            tracing::info!("GitSync controller stopped");
            Ok(())
        }
    }
}

fn error_policy(gs: Arc<GitSync>, err: &Error, _ctx: Arc<Ctx>) -> Requeue {
    tracing::warn!(gitsync = %gs.name_any(), error = %err, "reconcile failed");
    Requeue::requeue(Duration::from_secs(5))
}
