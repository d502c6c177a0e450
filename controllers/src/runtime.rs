//! Runs the controllers against a cluster: one shared pod cache, one kube-runtime `Controller`
//! per kind, and a small HTTP server with `/healthz`, `/readyz` and `/metrics`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use graft_api::apps::v1alpha1::{CloneSet, ContainerRecreateRequest};
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{Controller, WatchStreamExt, watcher};
use kube::{Api, Client};

use crate::cloneset::controller as cloneset;
use crate::crr::controller as crr;
use crate::context::Context;
use crate::expectations::Expectations;
use crate::metrics::Metrics;

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
    pub nodeimage_manager: bool,
    /// How long a Node must be Ready before it gets a NodeImage.
    pub nodeimage_creation_delay: Duration,
    /// How long the node agent has to report on a new NodeImage tag before it is marked failed.
    pub nodeimage_response_timeout: Duration,
    /// Namespace ImagePullJob pull secrets are copied into for the node agents.
    pub pull_secrets_namespace: String,
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
    // One pod watch feeds both the cache the executor reads and the CloneSet triggers. The
    // reflector updates the cache before it passes an event on, so a reconcile triggered by a pod
    // change always sees that change. (Two separate watches — `owns()` plus a cache — raced: a
    // reconcile could run before the cache had the event that triggered it, and then nothing
    // triggered it again; kube-runtime 5's shared `owns_shared_stream` stopped delivering.)
    let (pod_store, pod_writer) = reflector::store::<Pod>();
    let pods_api: Api<Pod> = scoped(&client, opts.namespace.as_deref());
    let (trigger_tx, trigger_rx) = futures::channel::mpsc::unbounded::<ObjectRef<CloneSet>>();
    // Pods also wake the ContainerRecreateRequests that name them (looked up below in the CRR
    // controller's own cache).
    let (crr_pod_tx, crr_pod_rx) = futures::channel::mpsc::unbounded::<ObjectRef<Pod>>();
    let pod_reflector = watcher(pods_api, watcher::Config::default().any_semantic())
        .default_backoff()
        .reflect(pod_writer)
        .touched_objects()
        .for_each(move |pod| {
            if let Ok(pod) = pod {
                if let Some(owner) = cloneset_owner(&pod) {
                    let _ = trigger_tx.unbounded_send(owner);
                }
                let _ = crr_pod_tx.unbounded_send(ObjectRef::from_obj(&pod));
            }
            futures::future::ready(())
        });

    let ctx = Arc::new(Context {
        client: client.clone(),
        pods: pod_store.clone(),
        expectations: Expectations::new(opts.expectation_timeout),
        metrics: metrics.clone(),
        recorder: crate::events::Recorder::new(client.clone(), "graft-controllers", &opts.instance),
        rollout_waiting: Default::default(),
    });

    let clonesets: Api<CloneSet> = scoped(&client, opts.namespace.as_deref());
    let controller = Controller::new(clonesets, watcher::Config::default().any_semantic())
        .with_config(
            kube::runtime::controller::Config::default().concurrency(opts.cloneset_workers),
        );
    let controller = controller.reconcile_on(trigger_rx);
    let cloneset_controller = controller
        .shutdown_on_signal()
        .run(cloneset::reconcile, cloneset::error_policy, ctx.clone())
        .for_each(|res| {
            if let Err(e) = res {
                tracing::debug!(error = %e, "cloneset reconcile");
            }
            futures::future::ready(())
        });

    let crrs: Api<ContainerRecreateRequest> = scoped(&client, opts.namespace.as_deref());
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

    let imagepull_controller = crate::imagepull::controller::run(
        client.clone(),
        opts.namespace.clone(),
        Arc::new(crate::imagepull::controller::Context {
            client: client.clone(),
            recorder: crate::events::Recorder::new(
                client.clone(),
                "graft-controllers",
                &opts.instance,
            ),
            pull_secrets_namespace: opts.pull_secrets_namespace.clone(),
        }),
    );
    let nodeimage_manager = async {
        if opts.nodeimage_manager {
            crate::nodeimage::controller::run(
                client.clone(),
                crate::nodeimage::controller::Options {
                    creation_delay: opts.nodeimage_creation_delay,
                    response_timeout: opts.nodeimage_response_timeout,
                    pull_secrets_namespace: opts.pull_secrets_namespace.clone(),
                },
            )
            .await;
        } else {
            futures::future::pending::<()>().await;
        }
    };

    let server = serve(opts.metrics_addr, metrics.clone(), pod_store.clone());
    tokio::select! {
        _ = imagepull_controller => tracing::info!("imagepulljob controller stopped"),
        _ = nodeimage_manager => tracing::warn!("NodeImage manager stopped"),
        _ = pod_reflector => tracing::warn!("pod watch ended"),
        _ = cloneset_controller => tracing::info!("cloneset controller stopped"),
        _ = crr_controller => tracing::info!("containerrecreaterequest controller stopped"),
        res = server => res?,
    }
    Ok(())
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

async fn serve(addr: SocketAddr, metrics: Metrics, pods: Store<Pod>) -> Result<(), Error> {
    use axum::http::StatusCode;
    use axum::routing::get;
    let app = axum::Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(move || {
                let pods = pods.clone();
                async move {
                    // Ready once the shared pod cache holds its first full list.
                    match tokio::time::timeout(Duration::from_millis(50), pods.wait_until_ready())
                        .await
                    {
                        Ok(Ok(())) => (StatusCode::OK, "ok"),
                        _ => (StatusCode::SERVICE_UNAVAILABLE, "pod cache not synced"),
                    }
                }
            }),
        )
        .route(
            "/metrics",
            get(move || {
                let metrics = metrics.clone();
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
