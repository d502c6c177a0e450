//! `graft run`: the manager process of an installation, wiring only.
//!
//! Every replica serves the front port: the dashboard, the push webhook receiver
//! (`graft_sync::webhook::receiver`, which stamps the GitSyncs a push concerns so the leader's
//! watch syncs them: a webhook reaching a standby is not lost), `/healthz` and `/readyz`.
//! Only the replica holding the Lease (`graft_lease`) runs the controllers, the
//! GitSync controller and, when asked, the in-process node agent.
//!
//! A leader that loses the Lease stops its work — the controllers, the GitSync controller (a sync
//! in progress is cancelled where it stands: every step of it is an async task that stops when
//! dropped) and the in-process node agent — and becomes a standby again, in the same process: no
//! exit, no restart. A new term starts the work from clean caches. On SIGTERM the leader
//! releases the Lease before exiting so the standby takes over at once; a leader that dies
//! without releasing is replaced once the Lease expires (`lease_duration_seconds`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use anyhow::Context;

/// What the in-process node agent needs (`--with-nodeagent`).
pub struct NodeAgent {
    /// CRI socket, or `None` to probe the usual ones.
    pub cri_socket: Option<String>,
    /// The agent's options.
    pub opts: graft_nodeagent::agent::Options,
}

/// Options of `graft run`.
pub struct Options {
    /// Front port: dashboard, `/hook`, `/healthz`, `/readyz` (every replica).
    pub addr: SocketAddr,
    /// The controllers (their `metrics_addr` serves `/metrics` on the leader only).
    pub controllers: graft_controllers::runtime::Options,
    /// The sync's bare Git caches.
    pub cache_dir: PathBuf,
    /// Shared secret of push webhooks; `None`: no `/hook`.
    pub webhook_secret: Option<Vec<u8>>,
    /// Serve the dashboard on the front port.
    pub dashboard: bool,
    /// Bearer token of the dashboard.
    pub dashboard_token: Option<String>,
    /// Leader election; `None`: this process always leads (a single replica).
    pub leader: Option<graft_lease::Options>,
    /// Run a node agent for this node in-process (single-node installs).
    pub nodeagent: Option<NodeAgent>,
    /// graft's admission server, served by every replica (leader or not).
    pub admission: Option<graft_admission::Options>,
}

const STARTING: u8 = 0;
const STANDBY: u8 = 1;
const LEADER: u8 = 2;

/// Runs the manager until SIGTERM/ctrl-c (Ok) or until its front server fails (Err). Without
/// leader election it leads at once and for good.
pub async fn run(client: kube::Client, opts: Options) -> anyhow::Result<()> {
    let role = Arc::new(AtomicU8::new(STARTING));
    let front = front(&client, &opts, role.clone()).await?;
    let listener = tokio::net::TcpListener::bind(opts.addr)
        .await
        .with_context(|| format!("listening on {}", opts.addr))?;
    tracing::info!(addr = %opts.addr, dashboard = opts.dashboard, webhooks = opts.webhook_secret.is_some(), "serving /healthz, /readyz");
    let admission = admission_server(client.clone(), opts.admission.clone());
    let server = async move {
        tokio::select! {
            r = axum::serve(listener, front) => r,
            r = admission => r.map_err(std::io::Error::other),
        }
    };
    tokio::pin!(server);
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);

    let elector = match &opts.leader {
        None => None,
        Some(lo) => Some(
            graft_lease::Elector::new(client.clone(), lo)
                .await
                .context("setting up leader election")?,
        ),
    };
    loop {
        if let (Some(elector), Some(lo)) = (&elector, &opts.leader) {
            role.store(STANDBY, Ordering::Release);
            tracing::info!(lease = %format!("{}/{}", lo.namespace, lo.lease_name), identity = %lo.identity, "standby: waiting for the lease");
            tokio::select! {
                _ = elector.acquire() => {}
                r = &mut server => return r.context("front server stopped"),
                _ = &mut shutdown => { tracing::info!("shutting down (standby)"); return Ok(()); }
            }
        }
        role.store(LEADER, Ordering::Release);
        tracing::info!("leading: starting the controllers and the GitSync controller");
        let term = lead(&client, &opts, elector.as_ref(), &mut server, &mut shutdown).await;
        match term {
            Term::LostLease => {
                tracing::warn!("lost the leader lease: work stopped, back to standby");
            }
            Term::Ended(outcome) => {
                if let Some(e) = &elector {
                    e.release().await;
                }
                if outcome.is_ok() {
                    tracing::info!("shutting down (leader): lease released");
                }
                return outcome;
            }
        }
    }
}

/// How a term as leader ended.
enum Term {
    /// Another replica holds the Lease now (or it may, after failed renewals).
    LostLease,
    /// Shutdown (Ok) or a failure of the work or the front server (Err).
    Ended(anyhow::Result<()>),
}

/// One term as leader: the leader's work until the Lease is lost, the process is told to stop,
/// or the work or the front server fails. Dropping the work on return stops all of it.
async fn lead<S, D>(
    client: &kube::Client,
    opts: &Options,
    elector: Option<&graft_lease::Elector>,
    server: &mut std::pin::Pin<&mut S>,
    shutdown: &mut std::pin::Pin<&mut D>,
) -> Term
where
    S: std::future::Future<Output = std::io::Result<()>>,
    D: std::future::Future<Output = ()>,
{
    let work = leader_work(client.clone(), opts);
    let lost = async {
        match elector {
            Some(e) => e.hold().await,
            None => futures::future::pending().await,
        }
    };
    tokio::select! {
        biased;
        _ = shutdown.as_mut() => Term::Ended(Ok(())),
        _ = lost => Term::LostLease,
        // The controllers stop by themselves on SIGTERM too (kube-runtime's shutdown_on_signal),
        // and may see it first: stopping without an error is a shutdown.
        r = work => Term::Ended(r),
        r = server.as_mut() => Term::Ended(Err(r.err().map(anyhow::Error::from).unwrap_or_else(|| anyhow::anyhow!("front server stopped")))),
    }
}

/// The routes of the front port.
async fn front(
    client: &kube::Client,
    opts: &Options,
    role: Arc<AtomicU8>,
) -> anyhow::Result<axum::Router> {
    use axum::http::StatusCode;
    use axum::routing::get;
    let namespace = opts.controllers.namespace.clone();
    let mut app = axum::Router::new().route(
        "/readyz",
        get(move || {
            let role = role.clone();
            async move {
                match role.load(Ordering::Acquire) {
                    LEADER => (StatusCode::OK, "ok: leader\n"),
                    STANDBY => (StatusCode::OK, "ok: standby\n"),
                    _ => (StatusCode::SERVICE_UNAVAILABLE, "starting\n"),
                }
            }
        }),
    );
    if let Some(secret) = &opts.webhook_secret {
        app = app.merge(graft_sync::webhook::receiver::router(
            client.clone(),
            namespace.clone(),
            Arc::new(secret.clone()),
        ));
    }
    if opts.dashboard {
        let cache =
            graft_web::cache::Cache::start(client.clone(), namespace, Duration::from_secs(15))
                .await;
        // Every replica shows diffs: a standby, whose sync never ran, fetches the commits it is
        // asked about into a cache of its own (the sync's cache is only read).
        let diffs = dashboard_diffs(
            opts.cache_dir.clone(),
            Some((opts.cache_dir.join("dashboard"), client.clone())),
        );
        // The dashboard's router brings `/healthz`.
        app = app.merge(graft_web::router(
            Arc::new(cache),
            opts.dashboard_token.clone(),
            Some(diffs),
        ));
    } else {
        app = app.route("/healthz", get(|| async { "ok\n" }));
    }
    Ok(app)
}

/// What only the leader runs; returns when one of them stops.
async fn leader_work(client: kube::Client, opts: &Options) -> anyhow::Result<()> {
    let controllers = graft_controllers::runtime::run(client.clone(), opts.controllers.clone());
    let sync = graft_sync::gitsync::run(
        client.clone(),
        opts.cache_dir.clone(),
        opts.controllers.namespace.clone(),
        None,
    );
    let agent = async {
        match &opts.nodeagent {
            None => futures::future::pending::<anyhow::Result<()>>().await,
            Some(na) => {
                let cri = graft_nodeagent::cri::CriClient::detect(
                    na.cri_socket.as_deref(),
                    graft_nodeagent::cri::Timeouts::default(),
                )
                .await
                .context("in-process node agent: connecting to the container runtime")?;
                graft_nodeagent::agent::run(
                    client.clone(),
                    cri,
                    na.opts.clone(),
                    futures::future::pending::<()>(),
                )
                .await
                .context("in-process node agent")
            }
        }
    };
    tokio::select! {
        r = controllers => r.context("controllers"),
        r = sync => r.context("GitSync controller"),
        r = agent => r,
    }
}

/// The admission server when configured; without it, a future that never ends.
pub async fn admission_server(
    client: kube::Client,
    opts: Option<graft_admission::Options>,
) -> anyhow::Result<()> {
    match opts {
        Some(o) => graft_admission::run(client, o)
            .await
            .map_err(anyhow::Error::from),
        None => futures::future::pending().await,
    }
}

/// SIGTERM (the kubelet) or ctrl-c.
async fn shutdown_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => futures::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = term => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// The dashboard's manifest diffs, from the sync's Git cache under `sync_cache` (only read);
/// with `fetch`, commits that cache lacks are fetched into the given directory, with the
/// GitSync's credentials read through the client.
pub fn dashboard_diffs(
    sync_cache: PathBuf,
    fetch: Option<(PathBuf, kube::Client)>,
) -> Arc<dyn graft_web::diff::DiffSource> {
    let mut source = graft_sync::diff::ManifestSource::read_only(sync_cache);
    if let Some((own_cache, client)) = fetch {
        source = source.with_fetch(own_cache, client);
    }
    Arc::new(SyncDiffs(source))
}

/// The sync's rendered commits handed to the dashboard in its own types.
struct SyncDiffs(graft_sync::diff::ManifestSource);

impl graft_web::diff::DiffSource for SyncDiffs {
    fn manifests<'a>(
        &'a self,
        gitsync: &'a graft_api::graft::gitsync::GitSync,
        from: Option<&'a str>,
        to: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<graft_web::diff::CommitManifests, String>> {
        use graft_web::diff::{CommitManifests, RenderedObject};
        let objects = |v: Vec<graft_sync::render::RenderedObject>| -> Vec<RenderedObject> {
            v.into_iter()
                .map(|o| RenderedObject {
                    id: o.reference.id().to_string(),
                    file: o.location.file,
                    object: o.object,
                })
                .collect()
        };
        Box::pin(async move {
            let pair = self.0.commits(gitsync, from, to).await?;
            Ok(CommitManifests {
                from: pair.from,
                old: objects(pair.old),
                new: objects(pair.new),
                note: pair.note,
            })
        })
    }
}
