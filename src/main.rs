//! The `graft` binary: command-line wiring only; every decision lives in the library crates.

mod run;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

/// The Kubernetes API version graft is built against (the `k8s-openapi` feature chosen in Cargo.toml).
const KUBERNETES_API: &str = "1.34";

/// graft: a GitOps-native reconciler with OpenKruise-compatible workload controllers.
#[derive(Parser, Debug)]
#[command(name = "graft", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print the CustomResourceDefinitions of every kind graft serves, or write one file per CRD.
    Crds {
        /// Write `<group>_<plural>.yaml` files into this directory instead of printing to stdout.
        #[arg(long, env = "GRAFT_CRDS_OUT_DIR")]
        out_dir: Option<PathBuf>,
    },
    /// Run the workload controllers (CloneSet, ContainerRecreateRequest) against the cluster in the
    /// kubeconfig.
    Controllers(ControllersArgs),
    /// Keep the cluster equal to Git: every GitSync object (default), or with `--repo` one
    /// repository path without a GitSync object.
    Sync(Box<SyncArgs>),
    /// Run the node agent on this node: pre-pull images for its NodeImage (and restart containers
    /// for ContainerRecreateRequests) through the container runtime's CRI socket.
    Nodeagent(NodeagentArgs),
    /// Serve the dashboard: per-commit rollout progress of every GitSync, live (read-only).
    Web(WebArgs),
    /// Run the manager of an installation: the controllers, the GitSync controller (with push
    /// webhooks) and the dashboard in one process, with leader election among replicas.
    Run(Box<RunArgs>),
    /// Print graft's version and the Kubernetes API version it is built against.
    Version,
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    #[command(flatten)]
    controllers: ControllersArgs,
    /// Address of the dashboard, `POST /hook`, `/healthz` and `/readyz` (served by every
    /// replica; `/metrics` is on --metrics-addr, leader only).
    #[arg(long, env = "GRAFT_ADDR", default_value = "127.0.0.1:8090")]
    addr: std::net::SocketAddr,
    /// Where the sync's bare Git caches are kept.
    #[arg(long, env = "GRAFT_GIT_CACHE", default_value = "/var/cache/graft/git")]
    cache_dir: PathBuf,
    /// Shared secret of push webhooks (HMAC key, or GitLab token); without it, no `/hook`.
    #[arg(long, env = "GRAFT_WEBHOOK_SECRET", hide_env_values = true)]
    webhook_secret: Option<String>,
    /// Do not serve the dashboard.
    #[arg(long, env = "GRAFT_NO_DASHBOARD")]
    no_dashboard: bool,
    /// Bearer token of the dashboard (browsers: open /?token=<token> once). Never logged.
    #[arg(long, env = "GRAFT_WEB_TOKEN", hide_env_values = true)]
    dashboard_token: Option<String>,
    /// Lead without a Lease (only for a single replica).
    #[arg(long, env = "GRAFT_NO_LEADER_ELECTION")]
    no_leader_election: bool,
    /// Name of the leader election Lease.
    #[arg(long, env = "GRAFT_LEASE_NAME", default_value = "graft-manager")]
    lease_name: String,
    /// Namespace of the Lease (the manager's own namespace).
    #[arg(long, env = "POD_NAMESPACE", default_value = "graft-system")]
    lease_namespace: String,
    /// This replica's name in the Lease's holder identity (`<name>_<process tag>`; default: the
    /// pod name, else the host name).
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
    /// Seconds the Lease stays valid after a renewal: how long a standby waits for a leader
    /// that died without releasing it.
    #[arg(long, env = "GRAFT_LEASE_DURATION_SECONDS", default_value_t = 15)]
    lease_duration_seconds: u64,
    /// Seconds before expiry at which the leader renews the Lease.
    #[arg(long, env = "GRAFT_LEASE_GRACE_SECONDS", default_value_t = 5)]
    lease_grace_seconds: u64,
    /// Also run the node agent in this process (single-node installs; the leader only).
    #[arg(long, env = "GRAFT_WITH_NODEAGENT")]
    with_nodeagent: bool,
    /// With --with-nodeagent: the node this process runs on.
    #[arg(long, env = "NODE_NAME", required_if_eq("with_nodeagent", "true"))]
    node_name: Option<String>,
    /// With --with-nodeagent: CRI socket (default: probe the usual ones).
    #[arg(long, env = "GRAFT_NODEAGENT_CRI_SOCKET")]
    cri_socket: Option<String>,
    /// With --with-nodeagent: most image pulls at once on this node (0 = unlimited).
    #[arg(long, env = "GRAFT_MAX_CONCURRENT_PULLS", default_value_t = 2)]
    max_concurrent_pulls: usize,
    /// With --with-nodeagent: run only its ContainerRecreateRequest executor, no image puller
    /// (tests, where several agents share one node).
    #[arg(long, env = "GRAFT_NODEAGENT_ONLY_CRR")]
    nodeagent_only_crr: bool,
}

#[derive(clap::Args, Debug)]
struct NodeagentArgs {
    /// CRI socket (`unix:///path` or `/path`). Default: probe $GRAFT_CRI_SOCKET, then
    /// containerd's and CRI-O's usual sockets.
    #[arg(long, env = "GRAFT_NODEAGENT_CRI_SOCKET")]
    cri_socket: Option<String>,
    /// The Node this agent serves (from the downward API's spec.nodeName).
    #[arg(long, env = "NODE_NAME")]
    node_name: String,
    /// Most image pulls at once on this node (0 = unlimited).
    #[arg(long, env = "GRAFT_MAX_CONCURRENT_PULLS", default_value_t = 2)]
    max_concurrent_pulls: usize,
    /// Namespace the ImagePullJob controller copies pull secrets into (the agent reads only there).
    #[arg(
        long,
        env = "GRAFT_PULL_SECRETS_NAMESPACE",
        default_value = "graft-system"
    )]
    pull_secrets_namespace: String,
    /// Recreate containers only for ContainerRecreateRequests in this namespace (default: all).
    /// For tests, where several agents share one node.
    #[arg(long, env = "GRAFT_CRR_NAMESPACE")]
    crr_namespace: Option<String>,
    /// Run only the ContainerRecreateRequest executor, no image puller. For tests, where several
    /// agents share one node.
    #[arg(long, env = "GRAFT_NODEAGENT_ONLY_CRR")]
    only_crr: bool,
    /// Log format: `text` or `json`.
    #[arg(long, env = "GRAFT_LOG_FORMAT", default_value = "text")]
    log_format: String,
}

#[derive(clap::Args, Debug)]
struct SyncArgs {
    /// Repository URL (file://, a local path, git://, https://, ssh://) to sync without a
    /// GitSync object. Without it, graft runs the GitSync controller.
    #[arg(long, env = "GRAFT_REPO")]
    repo: Option<String>,
    /// With the GitSync controller: serve push webhooks (`POST /hook`) on this address.
    #[arg(long, env = "GRAFT_WEBHOOK_ADDR")]
    webhook_addr: Option<std::net::SocketAddr>,
    /// The webhooks' shared secret (HMAC key, or GitLab token). Never logged.
    #[arg(long, env = "GRAFT_WEBHOOK_SECRET", hide_env_values = true)]
    webhook_secret: Option<String>,
    /// With the GitSync controller: only GitSyncs of this namespace (default: all).
    #[arg(long, env = "GRAFT_WATCH_NAMESPACE")]
    watch_namespace: Option<String>,
    /// Branch to follow (default: the remote's default branch).
    #[arg(long, env = "GRAFT_BRANCH", conflicts_with_all = ["tag", "commit"])]
    branch: Option<String>,
    /// Tag to follow.
    #[arg(long, env = "GRAFT_TAG", conflicts_with = "commit")]
    tag: Option<String>,
    /// Exact commit to apply.
    #[arg(long, env = "GRAFT_COMMIT")]
    commit: Option<String>,
    /// Directory of the repository holding the manifests.
    #[arg(long, env = "GRAFT_PATH", default_value = ".")]
    path: String,
    /// Name of this sync (owner label `<namespace>.<name>`, state ConfigMap `graft-sync-<name>`).
    #[arg(long, env = "GRAFT_SYNC_NAME", default_value = "default")]
    name: String,
    /// Namespace for the state and for namespaced objects that name none.
    #[arg(long, env = "GRAFT_SYNC_NAMESPACE", default_value = "default")]
    namespace: String,
    /// Delete objects that left the repository (only ones this sync created).
    #[arg(long, env = "GRAFT_PRUNE")]
    prune: bool,
    /// How often to fetch and correct drift, e.g. 30s, 1m, 1h.
    #[arg(long, env = "GRAFT_INTERVAL", default_value = "1m")]
    interval: String,
    /// Apply a rewritten history (force-push) whose new tip starts with this commit SHA.
    #[arg(long, env = "GRAFT_ACCEPT_REWRITE")]
    accept_rewrite: Option<String>,
    /// Sync once and exit (non-zero, with the reason, when nothing could be applied).
    #[arg(long)]
    once: bool,
    /// Where the bare Git caches are kept.
    #[arg(long, env = "GRAFT_GIT_CACHE", default_value = "/var/cache/graft/git")]
    cache_dir: std::path::PathBuf,
    /// Log format: `text` or `json`.
    #[arg(long, env = "GRAFT_LOG_FORMAT", default_value = "text")]
    log_format: String,
}

#[derive(clap::Args, Debug)]
struct WebArgs {
    /// Where to listen. The default serves this machine only; pass e.g. 0.0.0.0:8080 to open it.
    #[arg(long, env = "GRAFT_WEB_ADDR", default_value = "127.0.0.1:8080")]
    addr: std::net::SocketAddr,
    /// Bearer token every request must carry (browsers: open /?token=<token> once). Never logged.
    #[arg(long, env = "GRAFT_WEB_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Show (and watch) only this namespace (default: all namespaces).
    #[arg(long, env = "GRAFT_WEB_NAMESPACE")]
    namespace: Option<String>,
    /// The Git cache of `graft sync`, read (never written) for the manifest diffs of commits.
    #[arg(long, env = "GRAFT_GIT_CACHE", default_value = "/var/cache/graft/git")]
    git_cache: PathBuf,
    /// Log format: `text` or `json`.
    #[arg(long, env = "GRAFT_LOG_FORMAT", default_value = "text")]
    log_format: String,
}

#[derive(clap::Args, Debug)]
struct ControllersArgs {
    /// Address of the `/healthz`, `/readyz` and `/metrics` endpoints.
    #[arg(long, env = "GRAFT_METRICS_ADDR", default_value = "127.0.0.1:8080")]
    metrics_addr: std::net::SocketAddr,
    /// Concurrent CloneSet reconciles.
    #[arg(long, env = "GRAFT_CLONESET_WORKERS", default_value_t = 3)]
    cloneset_workers: u16,
    /// Seconds an unobserved create/delete/patch keeps a CloneSet from being planned again.
    #[arg(long, env = "GRAFT_EXPECTATION_TIMEOUT_SECONDS", default_value_t = 300)]
    expectation_timeout_seconds: u64,
    /// Watch and act in this namespace only (default: all namespaces).
    #[arg(long, env = "GRAFT_NAMESPACE", alias = "watch-namespace")]
    namespace: Option<String>,
    /// Run the cluster-wide NodeImage manager (default: on without --namespace, off with it).
    #[arg(long, env = "GRAFT_NODEIMAGE_MANAGER")]
    nodeimage_manager: Option<bool>,
    /// Seconds a Node must be Ready before it gets a NodeImage.
    #[arg(
        long,
        env = "GRAFT_NODEIMAGE_CREATION_DELAY_SECONDS",
        default_value_t = 30
    )]
    nodeimage_creation_delay_seconds: u64,
    /// Seconds the node agent has to report on a new NodeImage tag before it is marked failed.
    #[arg(
        long,
        env = "GRAFT_NODEIMAGE_RESPONSE_TIMEOUT_SECONDS",
        default_value_t = 600
    )]
    nodeimage_response_timeout_seconds: u64,
    /// Namespace ImagePullJob pull secrets are copied into (the node agents read only there).
    #[arg(
        long,
        env = "GRAFT_PULL_SECRETS_NAMESPACE",
        default_value = "graft-system"
    )]
    pull_secrets_namespace: String,
    /// CloneSet scaling does not count pods in PreparingDelete as replicas (OpenKruise's flag).
    #[arg(long, env = "GRAFT_CLONESET_SCALING_EXCLUDE_PREPARING_DELETE")]
    cloneset_scaling_exclude_preparing_delete: bool,
    /// Log format: `text` or `json`.
    #[arg(long, env = "GRAFT_LOG_FORMAT", default_value = "text")]
    log_format: String,
    #[command(flatten)]
    admission: AdmissionArgs,
}

/// graft's admission server (fail-open webhooks: CRR and CloneSet creation-time fields).
#[derive(clap::Args, Debug)]
struct AdmissionArgs {
    /// Serve the admission webhooks (TLS) on this address; without it, no admission server.
    #[arg(long, env = "GRAFT_ADMISSION_ADDR")]
    admission_addr: Option<std::net::SocketAddr>,
    /// Base URL the API server reaches the admission server at, e.g. `https://10.88.0.1:9443`
    /// (graft outside the cluster). The certificate names its host.
    #[arg(
        long,
        env = "GRAFT_ADMISSION_URL",
        conflicts_with = "admission_service"
    )]
    admission_url: Option<String>,
    /// Service in front of graft's pods, in --admission-namespace (in-cluster installs).
    #[arg(long, env = "GRAFT_ADMISSION_SERVICE")]
    admission_service: Option<String>,
    /// Port of --admission-service.
    #[arg(long, env = "GRAFT_ADMISSION_SERVICE_PORT", default_value_t = 443)]
    admission_service_port: i32,
    /// graft's own namespace: the certificate Secret lives there, and it is never admitted.
    #[arg(long, env = "POD_NAMESPACE", default_value = "graft-system")]
    admission_namespace: String,
    /// Name of the certificate Secret.
    #[arg(long, env = "GRAFT_ADMISSION_SECRET", default_value = graft_admission::DEFAULT_SECRET_NAME)]
    admission_secret: String,
    /// Name of the Mutating- and ValidatingWebhookConfiguration graft writes (the
    /// deletion-protection policy is `<name>-deletion-protection`).
    #[arg(long, env = "GRAFT_ADMISSION_CONFIG_NAME", default_value = graft_admission::DEFAULT_CONFIG_NAME)]
    admission_config_name: String,
    /// Deletion protection (`policy.kruise.io/delete-protection: Always | Cascading`): on by
    /// default; `false` removes graft's policy and webhooks for it.
    #[arg(long, env = "GRAFT_DELETION_PROTECTION", default_value_t = true, action = clap::ArgAction::Set)]
    deletion_protection: bool,
}

/// The admission server's options, `None` without --admission-addr.
fn admission_options(
    args: &AdmissionArgs,
    watch_namespace: Option<String>,
) -> anyhow::Result<Option<graft_admission::Options>> {
    let Some(addr) = args.admission_addr else {
        return Ok(None);
    };
    let endpoint = match (&args.admission_url, &args.admission_service) {
        (Some(url), _) => graft_admission::Endpoint::Url(url.clone()),
        (None, Some(name)) => graft_admission::Endpoint::Service {
            name: name.clone(),
            namespace: args.admission_namespace.clone(),
            port: args.admission_service_port,
        },
        (None, None) => {
            anyhow::bail!("--admission-addr needs --admission-url or --admission-service")
        }
    };
    let mut opts = graft_admission::Options::new(addr, endpoint, args.admission_namespace.clone());
    opts.secret_name = args.admission_secret.clone();
    opts.config_name = args.admission_config_name.clone();
    opts.watch_namespace = watch_namespace;
    opts.deletion_protection = args.deletion_protection;
    Ok(Some(opts))
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Crds { out_dir } => crds(out_dir),
        Command::Controllers(args) => controllers(args),
        Command::Sync(args) => sync(*args),
        Command::Nodeagent(args) => nodeagent(args),
        Command::Web(args) => web(args),
        Command::Run(args) => run_manager(*args),
        Command::Version => {
            println!("graft {}", env!("CARGO_PKG_VERSION"));
            println!("kubernetes api {KUBERNETES_API}");
            Ok(())
        }
    }
}

fn init_tracing(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Runs `work` to its end on a multi-threaded async runtime: the one place a subcommand's
/// runtime is built.
fn block_on<T>(work: impl std::future::Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(work)
}

/// The API client from KUBECONFIG or the in-cluster config.
async fn cluster_client() -> anyhow::Result<kube::Client> {
    kube::Client::try_default()
        .await
        .context("connecting to the cluster (KUBECONFIG or in-cluster config)")
}

fn controllers(args: ControllersArgs) -> anyhow::Result<()> {
    init_tracing(&args.log_format);
    let admission = admission_options(&args.admission, args.namespace.clone())?;
    block_on(async {
        let client = cluster_client().await?;
        let opts = controllers_options(args);
        let admission = run::admission_server(client.clone(), admission);
        tokio::select! {
            r = graft_controllers::runtime::run(client.clone(), opts) => r.context("running the controllers"),
            r = admission => r.context("admission server"),
        }
    })
}

fn controllers_options(args: ControllersArgs) -> graft_controllers::runtime::Options {
    graft_controllers::runtime::Options {
        metrics_addr: args.metrics_addr,
        cloneset_workers: args.cloneset_workers,
        expectation_timeout: std::time::Duration::from_secs(args.expectation_timeout_seconds),
        instance: std::env::var("POD_NAME")
            .or_else(|_| std::env::var("HOSTNAME"))
            .unwrap_or_else(|_| "graft".to_string()),
        nodeimage_manager: args.nodeimage_manager.unwrap_or(args.namespace.is_none()),
        namespace: args.namespace,
        nodeimage_creation_delay: std::time::Duration::from_secs(
            args.nodeimage_creation_delay_seconds,
        ),
        nodeimage_response_timeout: std::time::Duration::from_secs(
            args.nodeimage_response_timeout_seconds,
        ),
        pull_secrets_namespace: args.pull_secrets_namespace,
        cloneset_scaling_exclude_preparing_delete: args.cloneset_scaling_exclude_preparing_delete,
    }
}

fn run_manager(args: RunArgs) -> anyhow::Result<()> {
    init_tracing(&args.controllers.log_format);
    // One identity per process, not per pod: a leader's container that crashes and restarts
    // in the same pod must not take the Lease back as if it had never left (it has lost its
    // caches and may be half-started); it waits for the Lease like any standby.
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let identity = format!(
        "{}_{:x}",
        args.identity
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_else(|| "graft".to_string()),
        started ^ u128::from(std::process::id())
    );
    let leader = (!args.no_leader_election).then_some(graft_lease::Options {
        lease_name: args.lease_name,
        namespace: args.lease_namespace,
        identity,
        duration_seconds: args.lease_duration_seconds,
        grace_seconds: args.lease_grace_seconds,
    });
    let admission = admission_options(
        &args.controllers.admission,
        args.controllers.namespace.clone(),
    )?;
    let pull_secrets_namespace = args.controllers.pull_secrets_namespace.clone();
    let crr_namespace = args.controllers.namespace.clone();
    let nodeagent = match (args.with_nodeagent, args.node_name) {
        (false, _) => None,
        (true, None) => anyhow::bail!("--with-nodeagent needs --node-name (or NODE_NAME)"),
        (true, Some(node_name)) => Some(run::NodeAgent {
            cri_socket: args.cri_socket,
            opts: graft_nodeagent::agent::Options {
                node_name,
                max_concurrent_pulls: args.max_concurrent_pulls,
                pull_secrets_namespace,
                crr_namespace,
                only_crr: args.nodeagent_only_crr,
            },
        }),
    };
    let opts = run::Options {
        addr: args.addr,
        controllers: controllers_options(args.controllers),
        cache_dir: args.cache_dir,
        webhook_secret: args
            .webhook_secret
            .filter(|s| !s.is_empty())
            .map(String::into_bytes),
        dashboard: !args.no_dashboard,
        dashboard_token: args.dashboard_token.filter(|t| !t.is_empty()),
        leader,
        nodeagent,
        admission,
    };
    block_on(async move {
        let client = cluster_client().await?;
        run::run(client, opts).await
    })
}

fn nodeagent(args: NodeagentArgs) -> anyhow::Result<()> {
    init_tracing(&args.log_format);
    block_on(async move {
        let cri = graft_nodeagent::cri::CriClient::detect(
            args.cri_socket.as_deref(),
            graft_nodeagent::cri::Timeouts::default(),
        )
        .await
        .context("connecting to the container runtime")?;
        let version = cri
            .version()
            .await
            .context("asking the runtime its version")?;
        tracing::info!(
            endpoint = %cri.endpoint(),
            runtime = %version.runtime_name,
            runtime_version = %version.runtime_version,
            cri_api = %version.runtime_api_version,
            "connected to the container runtime"
        );
        let client = cluster_client().await?;
        let opts = graft_nodeagent::agent::Options {
            node_name: args.node_name,
            max_concurrent_pulls: args.max_concurrent_pulls,
            pull_secrets_namespace: args.pull_secrets_namespace,
            crr_namespace: args.crr_namespace,
            only_crr: args.only_crr,
        };
        let shutdown = async {
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("shutting down");
        };
        graft_nodeagent::agent::run(client, cri, opts, shutdown)
            .await
            .context("running the node agent")
    })
}

fn sync(args: SyncArgs) -> anyhow::Result<()> {
    use graft_sync::git::Reference;
    init_tracing(&args.log_format);
    let interval = graft_api::graft::gitsync::parse_duration(&args.interval)
        .map_err(|e| anyhow::anyhow!("--interval: {e}"))?;
    let reference = match (args.branch, args.tag, args.commit) {
        (Some(b), _, _) => Reference::Branch(b),
        (_, Some(t), _) => Reference::Tag(t),
        (_, _, Some(c)) => Reference::Commit(c.to_ascii_lowercase()),
        _ => Reference::DefaultBranch,
    };
    let Some(repo) = args.repo else {
        return block_on(async move {
            let client = cluster_client().await?;
            let webhook = match (args.webhook_addr, args.webhook_secret) {
                (Some(addr), Some(secret)) => Some(graft_sync::gitsync::WebhookOptions {
                    addr,
                    secret: secret.into_bytes(),
                }),
                (Some(_), None) => anyhow::bail!("--webhook-addr needs --webhook-secret"),
                _ => None,
            };
            graft_sync::gitsync::run(client, args.cache_dir, args.watch_namespace, webhook)
                .await
                .context("serving push webhooks")
        });
    };
    let source = graft_sync::run::Source {
        url: repo,
        reference,
        path: args.path,
        prune: args.prune,
        owner: graft_sync::plan::Owner {
            namespace: args.namespace,
            name: args.name,
        },
        auth: Default::default(),
    };
    block_on(async move {
        let client = cluster_client().await?;
        let syncer = graft_sync::run::Syncer::new(client, args.cache_dir, source)
            .accept_rewrite(args.accept_rewrite);
        if !args.once {
            let stop = async {
                let _ = tokio::signal::ctrl_c().await;
            };
            syncer.run_until(interval, stop).await;
            return Ok(());
        }
        let o = syncer.sync_once().await.context("sync failed")?;
        o.log();
        println!(
            "synced {}: {} created, {} configured, {} unchanged, {} pruned; {} API requests, {} writes",
            o.commit, o.created, o.configured, o.unchanged, o.pruned, o.requests, o.writes
        );
        for d in &o.drift {
            println!("drift corrected: {d}");
        }
        Ok(())
    })
}

fn web(args: WebArgs) -> anyhow::Result<()> {
    init_tracing(&args.log_format);
    block_on(async move {
        let client = cluster_client().await?;
        let opts = graft_web::Options {
            addr: args.addr,
            token: args.token.filter(|t| !t.is_empty()),
            namespace: args.namespace,
            // `graft web` reads the sync's cache and fetches nothing (it may not read Secrets).
            diffs: Some(run::dashboard_diffs(args.git_cache, None)),
        };
        graft_web::serve(client, opts)
            .await
            .with_context(|| format!("serving the dashboard on {}", args.addr))
    })
}

fn crds(out_dir: Option<PathBuf>) -> anyhow::Result<()> {
    let crds = graft_api::crds::all();
    match out_dir {
        Some(dir) => {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            for crd in &crds {
                let path = dir.join(graft_api::crds::file_name(crd));
                let yaml = graft_api::crds::to_yaml(crd)
                    .with_context(|| format!("serializing CRD {:?}", crd.metadata.name))?;
                std::fs::write(&path, yaml)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
        }
        None => {
            let mut out = String::new();
            for crd in &crds {
                out.push_str("---\n");
                out.push_str(
                    &graft_api::crds::to_yaml(crd)
                        .with_context(|| format!("serializing CRD {:?}", crd.metadata.name))?,
                );
            }
            print!("{out}");
        }
    }
    Ok(())
}
