//! Runs the controllers against a cluster: one watch per shared cache (pods, revisions, PVCs,
//! NodeImages, ImagePullJobs, Nodes, BroadcastJobs and Jobs) in the one [`Context`] every
//! controller takes, the triggers those watches feed, one kube-runtime `Controller` per kind, and
//! a small HTTP server with `/healthz`, `/readyz` and `/metrics`. This is the only module that
//! knows every controller; the controllers know the context, the shared engines and the API
//! types.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use graft_api::apps::v1alpha1::{CloneSet, ContainerRecreateRequest, ImagePullJob, NodeImage};
use graft_api::apps::v1beta1::sidecarset::SidecarSet;
use graft_api::apps::v1beta1::{AdvancedCronJob, BroadcastJob, StatefulSet};
use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Namespace, Node, PersistentVolumeClaim, Pod};
use kube::runtime::reflector::{self, ObjectRef};
use kube::runtime::{Controller, WatchStreamExt, watcher};
use kube::{Api, Client};
use tokio::sync::Notify;

use crate::advancedcronjob::controller as advancedcronjob;
use crate::broadcastjob::controller as broadcastjob;
use crate::cloneset::controller as cloneset;
use crate::context::Context;
use crate::crr::controller as crr;
use crate::expectations::Expectations;
use crate::imagepull::controller as imagepull;
use crate::metrics::Metrics;
use crate::nodeimage::controller as nodeimage;
use crate::statefulset::controller as statefulset;

/// Concurrent Advanced StatefulSet reconciles (kruise's default for its controllers).
const STATEFULSET_WORKERS: u16 = 3;
/// Concurrent BroadcastJob and AdvancedCronJob reconciles (kruise's `--broadcastjob-workers`
/// and `--advancedcronjob-workers` defaults).
const JOB_WORKERS: u16 = 3;

/// Options of `graft controllers`.
#[derive(Clone, Debug)]
pub struct Options {
    /// Where `/healthz`, `/readyz` and `/metrics` are served.
    pub metrics_addr: SocketAddr,
    /// Concurrent CloneSet reconciles (kruise's `--cloneset-workers`, default 3).
    pub cloneset_workers: u16,
    /// How long an unobserved expectation blocks a CloneSet (kruise's `--expectation-timeout`).
    pub expectation_timeout: Duration,
    /// Identity in Events (`reportingInstance`), e.g. the pod name.
    pub instance: String,
    /// Watch and act in this namespace only (`None`: all namespaces).
    pub namespace: Option<String>,
    /// Run the cluster-wide NodeImage manager (one per cluster; off for namespaced test runs).
    /// With it, this process also watches Nodes, and ImagePullJobs in every namespace.
    pub nodeimage_manager: bool,
    /// How long a Node must be Ready before it gets a NodeImage.
    pub nodeimage_creation_delay: Duration,
    /// How long the node agent has to report on a new NodeImage tag before it is marked failed.
    pub nodeimage_response_timeout: Duration,
    /// Namespace ImagePullJob pull secrets are copied into for the node agents.
    pub pull_secrets_namespace: String,
    /// PreparingDelete pods do not count as replicas when a CloneSet scales (kruise's
    /// `--cloneset-scaling-exclude-preparing-delete`; a CloneSet can ask for it with the label
    /// `apps.kruise.io/cloneset-scaling-exclude-preparing-delete: "true"`).
    pub cloneset_scaling_exclude_preparing_delete: bool,
}

/// Errors that stop the controllers.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The metrics/health server could not listen.
    #[error("serving health and metrics on {addr}: {source}")]
    Serve {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
}

/// Run every controller until the process is stopped.
pub async fn run(client: Client, opts: Options) -> Result<(), Error> {
    let metrics = Metrics::default();
    let namespace = opts.namespace.clone();
    // One watch per kind and process, each feeding a cache in the context and the triggers of
    // the controllers that care. A reflector updates its cache before it passes an event on, so
    // a reconcile triggered by a change always sees that change. (Two separate watches — `owns()`
    // plus a cache — raced: a reconcile could run before the cache had the event that triggered
    // it, and then nothing triggered it again; kube-runtime 5's shared `owns_shared_stream`
    // stopped delivering.)
    let (pod_store, pod_writer) = reflector::store::<Pod>();
    let (revision_store, revision_writer) = reflector::store::<ControllerRevision>();
    let (claim_store, claim_writer) = reflector::store::<PersistentVolumeClaim>();
    let (node_image_store, node_image_writer) = reflector::store::<NodeImage>();
    let (job_store, job_writer) = reflector::store::<ImagePullJob>();
    let (node_store, node_writer) = reflector::store::<Node>();
    let (broadcast_job_store, broadcast_job_writer) = reflector::store::<BroadcastJob>();
    let (batch_job_store, batch_job_writer) = reflector::store::<Job>();
    let (sidecarset_store, sidecarset_writer) = reflector::store::<SidecarSet>();
    let (namespace_store, namespace_writer) = reflector::store::<Namespace>();
    // SidecarSets (cluster-scoped) and Namespaces: what injecting a new pod reads.
    // Pods wake the SidecarSets whose selector matches them.
    let (sidecarset_tx, sidecarset_rx) =
        futures::channel::mpsc::unbounded::<ObjectRef<SidecarSet>>();
    let sidecarset_reflector = reflect(
        Api::all(client.clone()),
        sidecarset_writer,
        |_: &SidecarSet| {},
    );
    let namespace_reflector = reflect(
        Api::all(client.clone()),
        namespace_writer,
        |_: &Namespace| {},
    );
    // Wakes the NodeImage manager: Nodes, NodeImages and ImagePullJobs changed.
    let manager_wake = Arc::new(Notify::new());

    // Pods wake the CloneSet that controls them and the ContainerRecreateRequests that name them
    // (looked up below in the CRR controller's own cache).
    let (cloneset_tx, cloneset_rx) = futures::channel::mpsc::unbounded::<ObjectRef<CloneSet>>();
    let (crr_pod_tx, crr_pod_rx) = futures::channel::mpsc::unbounded::<ObjectRef<Pod>>();
    let (statefulset_tx, statefulset_rx) =
        futures::channel::mpsc::unbounded::<ObjectRef<StatefulSet>>();
    // BroadcastJobs are woken by their pods and their own changes, all of them by any Node's
    // (a new, retainted or unschedulable node changes who gets a pod); AdvancedCronJobs by the
    // Jobs and BroadcastJobs they created.
    let (broadcast_job_tx, broadcast_job_rx) =
        futures::channel::mpsc::unbounded::<ObjectRef<BroadcastJob>>();
    let (cron_tx, cron_rx) = futures::channel::mpsc::unbounded::<ObjectRef<AdvancedCronJob>>();
    let sets_for_pods = sidecarset_store.clone();
    let broadcast_job_tx_pods = broadcast_job_tx.clone();
    let pod_reflector = reflect(
        scoped(&client, namespace.as_deref()),
        pod_writer,
        move |pod: &Pod| {
            if let Some(owner) = cloneset_owner(pod) {
                let _ = cloneset_tx.unbounded_send(owner);
            }
            if let Some(owner) = statefulset_owner(pod) {
                let _ = statefulset_tx.unbounded_send(owner);
            }
            if let Some(owner) = controller_owner(&pod.metadata, "BroadcastJob") {
                let _ = broadcast_job_tx_pods.unbounded_send(owner);
            }
            let pod_labels = pod.metadata.labels.clone().unwrap_or_default();
            for set in sets_for_pods.state() {
                if set
                    .spec
                    .selector
                    .as_ref()
                    .is_some_and(|s| graft_api::selector::matches(s, &pod_labels))
                {
                    let _ = sidecarset_tx.unbounded_send(ObjectRef::from_obj(set.as_ref()));
                }
            }
            let _ = crr_pod_tx.unbounded_send(ObjectRef::from_obj(pod));
        },
    );

    // Revisions wake nothing: their owners write them and read them back on their next
    // reconcile (a revision missing from the cache then is found again on create).
    let revision_reflector = reflect(
        scoped(&client, namespace.as_deref()),
        revision_writer,
        |_: &ControllerRevision| {},
    );

    // PVCs wake the Advanced StatefulSets whose selector matches them (their PVCs carry the
    // selector's labels); looked up below in the StatefulSet controller's own cache.
    let (claim_tx, claim_rx) =
        futures::channel::mpsc::unbounded::<(String, std::collections::BTreeMap<String, String>)>();
    let claim_reflector = reflect(
        scoped(&client, namespace.as_deref()),
        claim_writer,
        move |pvc: &PersistentVolumeClaim| {
            let ns = pvc.metadata.namespace.clone().unwrap_or_default();
            let labels = pvc.metadata.labels.clone().unwrap_or_default();
            let _ = claim_tx.unbounded_send((ns, labels));
        },
    );

    // NodeImages wake the ImagePullJobs that own their tags, and the manager.
    let (job_tx, job_rx) = futures::channel::mpsc::unbounded::<ObjectRef<ImagePullJob>>();
    let node_image_reflector = {
        let job_tx = job_tx.clone();
        let wake = manager_wake.clone();
        let scope = namespace.clone();
        reflect(
            Api::all(client.clone()),
            node_image_writer,
            move |ni: &NodeImage| {
                for job in imagepull::owner_jobs(ni, scope.as_deref()) {
                    let _ = job_tx.unbounded_send(job);
                }
                wake.notify_one();
            },
        )
    };

    // ImagePullJobs wake themselves (those of `namespace`) and the manager. The manager collects
    // the tags of jobs that are gone in every namespace, so with it the cache covers them all (a
    // namespaced cache would make every other namespace's jobs look gone).
    let job_reflector = {
        let wake = manager_wake.clone();
        let scope = namespace.clone();
        let api: Api<ImagePullJob> = if opts.nodeimage_manager {
            Api::all(client.clone())
        } else {
            scoped(&client, namespace.as_deref())
        };
        reflect(api, job_writer, move |job: &ImagePullJob| {
            let job_ref = ObjectRef::from_obj(job);
            if scope.is_none() || job_ref.namespace == scope {
                let _ = job_tx.unbounded_send(job_ref);
            }
            wake.notify_one();
        })
    };

    // Nodes wake the NodeImage manager and every BroadcastJob.
    let node_reflector = {
        let wake = manager_wake.clone();
        let jobs = broadcast_job_store.clone();
        let tx = broadcast_job_tx.clone();
        reflect(Api::all(client.clone()), node_writer, move |_: &Node| {
            wake.notify_one();
            for job in jobs.state() {
                let _ = tx.unbounded_send(ObjectRef::from_obj(job.as_ref()));
            }
        })
    };

    // BroadcastJobs wake themselves and the AdvancedCronJob that created them.
    let broadcast_job_reflector = {
        let cron_tx = cron_tx.clone();
        reflect(
            scoped(&client, namespace.as_deref()),
            broadcast_job_writer,
            move |job: &BroadcastJob| {
                let _ = broadcast_job_tx.unbounded_send(ObjectRef::from_obj(job));
                if let Some(owner) = controller_owner(&job.metadata, "AdvancedCronJob") {
                    let _ = cron_tx.unbounded_send(owner);
                }
            },
        )
    };
    // Jobs wake the AdvancedCronJob that created them.
    let batch_job_reflector = reflect(
        scoped(&client, namespace.as_deref()),
        batch_job_writer,
        move |job: &Job| {
            if let Some(owner) = controller_owner(&job.metadata, "AdvancedCronJob") {
                let _ = cron_tx.unbounded_send(owner);
            }
        },
    );

    let ctx = Arc::new(Context {
        client: client.clone(),
        pods: pod_store,
        revisions: revision_store,
        claims: claim_store,
        node_images: node_image_store,
        nodes: node_store,
        broadcast_jobs: broadcast_job_store,
        jobs: batch_job_store,
        image_pull_jobs: job_store,
        sidecarsets: crate::sidecarset::SidecarSetSource {
            sidecarsets: sidecarset_store,
            namespaces: namespace_store,
            client: client.clone(),
            // Graft's own namespace (kruise keeps them in kruise-system); a graft acting in one
            // namespace keeps them there, where it has rights.
            revision_namespace: namespace
                .clone()
                .unwrap_or_else(|| opts.pull_secrets_namespace.clone()),
        },
        namespace: namespace.clone(),
        pull_secrets_namespace: opts.pull_secrets_namespace.clone(),
        cloneset_scaling_exclude_preparing_delete: opts.cloneset_scaling_exclude_preparing_delete,
        expectations: Expectations::new(opts.expectation_timeout),
        metrics: metrics.clone(),
        recorder: crate::events::Recorder::new(client.clone(), "graft-controllers", &opts.instance),
        rollout_waiting: Default::default(),
    });

    let clonesets: Api<CloneSet> = scoped(&client, namespace.as_deref());
    let cloneset_controller = Controller::new(clonesets, watcher::Config::default().any_semantic())
        .with_config(
            kube::runtime::controller::Config::default().concurrency(opts.cloneset_workers),
        )
        .reconcile_on(cloneset_rx)
        .shutdown_on_signal()
        .run(cloneset::reconcile, cloneset::error_policy, ctx.clone())
        .for_each(|res| {
            if let Err(e) = res {
                tracing::debug!(error = %e, "cloneset reconcile");
            }
            futures::future::ready(())
        });

    let statefulsets: Api<StatefulSet> = scoped(&client, namespace.as_deref());
    let statefulset_controller =
        Controller::new(statefulsets, watcher::Config::default().any_semantic());
    let set_store = statefulset_controller.store();
    let claim_triggers = claim_rx.flat_map(move |(ns, labels)| {
        let refs: Vec<ObjectRef<StatefulSet>> = set_store
            .state()
            .iter()
            .filter(|s| s.metadata.namespace.as_deref() == Some(ns.as_str()))
            .filter(|s| {
                !graft_api::selector::is_empty(&s.spec.selector)
                    && graft_api::selector::matches(&s.spec.selector, &labels)
            })
            .map(|s| ObjectRef::from_obj(s.as_ref()))
            .collect();
        futures::stream::iter(refs)
    });
    let statefulset_controller = statefulset_controller
        .with_config(kube::runtime::controller::Config::default().concurrency(STATEFULSET_WORKERS))
        .reconcile_on(futures::stream::select(statefulset_rx, claim_triggers))
        .shutdown_on_signal()
        .run(
            statefulset::reconcile,
            statefulset::error_policy,
            ctx.clone(),
        )
        .for_each(|res| {
            if let Err(e) = res {
                tracing::debug!(error = %e, "statefulset reconcile");
            }
            futures::future::ready(())
        });

    let sidecarsets: Api<SidecarSet> = Api::all(client.clone());
    let sidecarset_controller =
        Controller::new(sidecarsets, watcher::Config::default().any_semantic())
            .reconcile_on(sidecarset_rx)
            .shutdown_on_signal()
            .run(
                crate::sidecarset::controller::reconcile,
                crate::sidecarset::controller::error_policy,
                ctx.clone(),
            )
            .for_each(|res| {
                if let Err(e) = res {
                    tracing::debug!(error = %e, "sidecarset reconcile");
                }
                futures::future::ready(())
            });

    let crrs: Api<ContainerRecreateRequest> = scoped(&client, namespace.as_deref());
    let crr_controller = Controller::new(crrs, watcher::Config::default().any_semantic());
    let crr_store = crr_controller.store();
    let crr_triggers = crr_pod_rx.flat_map(move |pod| {
        let refs: Vec<ObjectRef<ContainerRecreateRequest>> = crr_store
            .state()
            .iter()
            .filter(|r| r.metadata.namespace == pod.namespace && r.spec.pod_name == pod.name)
            .map(|r| ObjectRef::from_obj(r.as_ref()))
            .collect();
        futures::stream::iter(refs)
    });
    let crr_controller = crr_controller
        .reconcile_on(crr_triggers)
        .shutdown_on_signal()
        .run(crr::reconcile, crr::error_policy, ctx.clone())
        .for_each(|res| {
            if let Err(e) = res {
                tracing::debug!(error = %e, "containerrecreaterequest reconcile");
            }
            futures::future::ready(())
        });

    // The jobs come from the shared cache; the controller only schedules their reconciles.
    let imagepull_controller = Controller::for_stream(
        futures::stream::pending::<Result<ImagePullJob, watcher::Error>>(),
        ctx.image_pull_jobs.clone(),
    )
    .reconcile_on(job_rx)
    .shutdown_on_signal()
    .run(imagepull::reconcile, imagepull::error_policy, ctx.clone())
    .for_each(|res| {
        if let Err(e) = res {
            tracing::debug!(error = %e, "imagepulljob reconcile");
        }
        futures::future::ready(())
    });

    // BroadcastJobs come from the shared cache, like ImagePullJobs.
    let broadcast_job_controller = Controller::for_stream(
        futures::stream::pending::<Result<BroadcastJob, watcher::Error>>(),
        ctx.broadcast_jobs.clone(),
    )
    .with_config(kube::runtime::controller::Config::default().concurrency(JOB_WORKERS))
    .reconcile_on(broadcast_job_rx)
    .shutdown_on_signal()
    .run(
        broadcastjob::reconcile,
        broadcastjob::error_policy,
        ctx.clone(),
    )
    .for_each(|res| {
        if let Err(e) = res {
            tracing::debug!(error = %e, "broadcastjob reconcile");
        }
        futures::future::ready(())
    });

    let crons: Api<AdvancedCronJob> = scoped(&client, namespace.as_deref());
    let cron_controller = Controller::new(crons, watcher::Config::default().any_semantic())
        .with_config(kube::runtime::controller::Config::default().concurrency(JOB_WORKERS))
        .reconcile_on(cron_rx)
        .shutdown_on_signal()
        .run(
            advancedcronjob::reconcile,
            advancedcronjob::error_policy,
            ctx.clone(),
        )
        .for_each(|res| {
            if let Err(e) = res {
                tracing::debug!(error = %e, "advancedcronjob reconcile");
            }
            futures::future::ready(())
        });

    let nodeimage_manager = {
        let ctx = ctx.clone();
        let manager = nodeimage::Options {
            creation_delay: opts.nodeimage_creation_delay,
            response_timeout: opts.nodeimage_response_timeout,
        };
        let enabled = opts.nodeimage_manager;
        async move {
            if enabled {
                nodeimage::run(ctx, manager, manager_wake).await;
            } else {
                futures::future::pending::<()>().await;
            }
        }
    };

    // No controller starts before every cache has listed: a reconcile planning from an empty
    // cache would act on a world that looks empty.
    let controllers = {
        let ctx = ctx.clone();
        async move {
            tracing::info!("waiting for the caches to list");
            if ctx.wait_until_ready().await.is_err() {
                tracing::warn!("a cache's watch ended before it listed");
                return;
            }
            tracing::info!("caches listed: starting the controllers");
            tokio::select! {
                _ = imagepull_controller => tracing::info!("imagepulljob controller stopped"),
                _ = nodeimage_manager => tracing::warn!("NodeImage manager stopped"),
                _ = cloneset_controller => tracing::info!("cloneset controller stopped"),
                _ = statefulset_controller => tracing::info!("statefulset controller stopped"),
                _ = crr_controller => tracing::info!("containerrecreaterequest controller stopped"),
                _ = sidecarset_controller => tracing::info!("sidecarset controller stopped"),
                _ = broadcast_job_controller => tracing::info!("broadcastjob controller stopped"),
                _ = cron_controller => tracing::info!("advancedcronjob controller stopped"),
            }
        }
    };

    let server = serve(opts.metrics_addr, metrics.clone(), ctx.clone());
    tokio::select! {
        _ = controllers => {},
        _ = pod_reflector => tracing::warn!("pod watch ended"),
        _ = revision_reflector => tracing::warn!("ControllerRevision watch ended"),
        _ = claim_reflector => tracing::warn!("PersistentVolumeClaim watch ended"),
        _ = node_image_reflector => tracing::warn!("NodeImage watch ended"),
        _ = job_reflector => tracing::warn!("ImagePullJob watch ended"),
        _ = node_reflector => tracing::warn!("Node watch ended"),
        _ = broadcast_job_reflector => tracing::warn!("BroadcastJob watch ended"),
        _ = batch_job_reflector => tracing::warn!("Job watch ended"),
        _ = sidecarset_reflector => tracing::warn!("SidecarSet watch ended"),
        _ = namespace_reflector => tracing::warn!("Namespace watch ended"),
        res = server => res?,
    }
    Ok(())
}

/// Runs one watch into a cache, calling `on_change` with every object it shows changed (after
/// the cache has it). Ends only if the watch stream does (it retries with backoff).
fn reflect<K>(
    api: Api<K>,
    writer: reflector::store::Writer<K>,
    mut on_change: impl FnMut(&K),
) -> impl std::future::Future<Output = ()>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
{
    watcher(api, watcher::Config::default().any_semantic())
        .default_backoff()
        // No controller reads managedFields; dropped, they were a third of a cached pod.
        .modify(|obj| obj.meta_mut().managed_fields = None)
        .reflect(writer)
        .touched_objects()
        .for_each(move |obj| {
            match obj {
                Ok(obj) => on_change(&obj),
                Err(e) => tracing::debug!(error = %e, "watch"),
            }
            futures::future::ready(())
        })
}

/// The `apps.kruise.io` object of `kind` that controls an object, if any.
fn controller_owner<K>(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    kind: &str,
) -> Option<ObjectRef<K>>
where
    K: kube::Resource<DynamicType = ()>,
{
    let ns = meta.namespace.as_deref()?;
    meta.owner_references
        .iter()
        .flatten()
        .find(|o| {
            o.controller == Some(true)
                && o.kind == kind
                && o.api_version.starts_with("apps.kruise.io/")
        })
        .map(|o| ObjectRef::new(&o.name).within(ns))
}

/// The CloneSet that controls a pod, if any.
fn cloneset_owner(pod: &Pod) -> Option<ObjectRef<CloneSet>> {
    let ns = pod.metadata.namespace.as_deref()?;
    pod.metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| {
            o.controller == Some(true)
                && o.kind == "CloneSet"
                && o.api_version.starts_with("apps.kruise.io/")
        })
        .map(|o| ObjectRef::new(&o.name).within(ns))
}

/// The Advanced StatefulSet that controls a pod or, for a pod without a controller, the one its
/// name `<set>-<ordinal>` says may adopt it (a set of that name may not exist: then nothing runs).
fn statefulset_owner(pod: &Pod) -> Option<ObjectRef<StatefulSet>> {
    let ns = pod.metadata.namespace.as_deref()?;
    let controller = pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true));
    match controller {
        Some(o) if o.kind == "StatefulSet" && o.api_version.starts_with("apps.kruise.io/") => {
            Some(ObjectRef::new(&o.name).within(ns))
        }
        Some(_) => None,
        None => {
            let name = pod.metadata.name.as_deref()?;
            let (parent, ordinal) = crate::statefulset::ordinals::parse_pod_name(name)?;
            ordinal.map(|_| ObjectRef::new(parent).within(ns))
        }
    }
}

fn scoped<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    <K as kube::Resource>::DynamicType: Default,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

async fn serve(addr: SocketAddr, metrics: Metrics, ctx: Arc<Context>) -> Result<(), Error> {
    use axum::http::StatusCode;
    use axum::routing::get;
    let app = axum::Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get({
                let ctx = ctx.clone();
                move || {
                    let ctx = ctx.clone();
                    async move {
                        // Ready once every shared cache holds its first full list.
                        let unsynced = ctx.unsynced().await;
                        if unsynced.is_empty() {
                            (StatusCode::OK, "ok".to_string())
                        } else {
                            (
                                StatusCode::SERVICE_UNAVAILABLE,
                                format!("{} cache not synced", unsynced.join(", ")),
                            )
                        }
                    }
                }
            }),
        )
        .route(
            "/metrics",
            get(move || {
                let metrics = metrics.clone();
                metrics.cached_pods.set(ctx.pods.len() as i64);
                async move {
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        metrics.encode(),
                    )
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Serve { addr, source })?;
    tracing::info!(%addr, "serving /healthz, /readyz, /metrics");
    axum::serve(listener, app)
        .await
        .map_err(|source| Error::Serve { addr, source })
}
