//! ContainerRecreateRequest executor, the node side of kruise-api.md §7.
//!
//! Watches the requests of its own node that are still active (label selector
//! `crr.apps.kruise.io/node-name=<node>,crr.apps.kruise.io/active=true`, as kruise-daemon), and
//! for each pod runs the pure [`plan`] over the pod's requests, the pod and its containers as the
//! runtime lists them. Requests for one pod run one at a time: every reconcile of any of a pod's
//! requests takes the pod's lock and syncs the whole pod.
//!
//! `namespace` limits the agent to one namespace. A node runs one agent, so this is for tests
//! (several agents on the one test node, each for its test's namespace) and for trying graft on a
//! node that kruise-daemon also serves.

pub mod kill;
pub mod plan;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use graft_api::apps::v1alpha1::ContainerRecreateRequest;
use graft_api::labels;
use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action as Requeue;
use kube::runtime::reflector::Store;
use kube::runtime::{Controller, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::json;

use crate::cri::CriClient;
use crate::events::Recorder;
use plan::{Snapshot, Step};

/// Where the executor runs.
#[derive(Clone, Debug)]
pub struct Options {
    /// This node (label `crr.apps.kruise.io/node-name`).
    pub node_name: String,
    /// Only requests in this namespace (`None`: all).
    pub namespace: Option<String>,
    /// Pods recreating at once.
    pub workers: u16,
}

/// A reconcile that failed; retried with a short backoff.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An API call failed.
    #[error("{key}: {step}: {source}")]
    Api {
        /// `namespace/pod` of the request.
        key: String,
        /// What was being done.
        step: String,
        /// The cause.
        #[source]
        source: kube::Error,
    },
    /// A CRI call failed.
    #[error("{key}: {source}")]
    Cri {
        /// `namespace/pod`.
        key: String,
        /// The cause.
        #[source]
        source: crate::cri::CriError,
    },
}

struct Ctx {
    client: Client,
    cri: CriClient,
    node: String,
    recorder: Recorder,
    store: Store<ContainerRecreateRequest>,
    /// One lock per pod (`namespace/pod`): its requests run one at a time.
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Ctx {
    fn lock_for(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self
            .locks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Forget locks nobody holds or waits for.
        locks.retain(|_, l| Arc::strong_count(l) > 1);
        locks.entry(key.to_string()).or_default().clone()
    }
}

/// The label selector for the requests of `node` that are still active.
pub fn selector(node: &str) -> String {
    format!(
        "{}={node},{}=true",
        labels::CRR_NODE_NAME,
        labels::CRR_ACTIVE
    )
}

/// Runs the executor until the watch ends.
pub async fn run(client: Client, cri: CriClient, opts: Options) {
    let api: Api<ContainerRecreateRequest> = match &opts.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let config = watcher::Config::default()
        .labels(&selector(&opts.node_name))
        .any_semantic();
    let controller = Controller::new(api, config)
        .with_config(kube::runtime::controller::Config::default().concurrency(opts.workers));
    let ctx = Arc::new(Ctx {
        recorder: Recorder::new(client.clone(), opts.node_name.clone()),
        node: opts.node_name.clone(),
        client,
        cri,
        store: controller.store(),
        locks: Mutex::new(HashMap::new()),
    });
    tracing::info!(node = %opts.node_name, namespace = ?opts.namespace, "ContainerRecreateRequest executor running");
    controller
        .run(reconcile, error_policy, ctx)
        .for_each(|res| {
            if let Err(e) = res {
                tracing::debug!(error = %e, "containerrecreaterequest reconcile");
            }
            futures::future::ready(())
        })
        .await;
}

fn error_policy(_crr: Arc<ContainerRecreateRequest>, err: &Error, _ctx: Arc<Ctx>) -> Requeue {
    tracing::warn!(error = %err, "recreate request sync failed");
    Requeue::requeue(Duration::from_secs(2))
}

fn pp() -> PatchParams {
    PatchParams {
        field_manager: Some("graft-nodeagent".to_string()),
        ..Default::default()
    }
}

async fn reconcile(crr: Arc<ContainerRecreateRequest>, ctx: Arc<Ctx>) -> Result<Requeue, Error> {
    let ns = crr.namespace().unwrap_or_default();
    let pod_name = crr.spec.pod_name.clone();
    let key = format!("{ns}/{pod_name}");
    let lock = ctx.lock_for(&key);
    let _held = lock.lock().await;
    sync_pod(&ctx, &ns, &pod_name, &key).await
}

/// One pass over one pod's requests.
async fn sync_pod(ctx: &Ctx, ns: &str, pod_name: &str, key: &str) -> Result<Requeue, Error> {
    let api: Api<ContainerRecreateRequest> = Api::namespaced(ctx.client.clone(), ns);
    // The cache says which requests exist; their state is read fresh so a status this agent just
    // wrote is never planned over again.
    let mut requests = Vec::new();
    for cached in ctx.store.state() {
        if cached.metadata.namespace.as_deref() == Some(ns) && cached.spec.pod_name == pod_name {
            let name = cached.name_any();
            if let Some(fresh) = api.get_opt(&name).await.map_err(|source| Error::Api {
                key: key.to_string(),
                step: format!("reading ContainerRecreateRequest {name}"),
                source,
            })? && fresh
                .metadata
                .labels
                .as_ref()
                .is_some_and(|l| l.get(labels::CRR_NODE_NAME) == Some(&ctx.node))
            {
                requests.push(fresh);
            }
        }
    }
    if requests.is_empty() {
        return Ok(Requeue::await_change());
    }
    let pod_uid = requests[0]
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(labels::CRR_POD_UID))
        .cloned()
        .unwrap_or_default();
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    // A pod of another UID is not this request's pod (the manager completes the request).
    let pod = pods
        .get_opt(pod_name)
        .await
        .map_err(|source| Error::Api {
            key: key.to_string(),
            step: format!("reading pod {pod_name}"),
            source,
        })?
        .filter(|p| p.metadata.uid.as_deref() == Some(pod_uid.as_str()));
    let runtime = kill::runtime_containers(&ctx.cri, &pod_uid)
        .await
        .map_err(|source| Error::Cri {
            key: key.to_string(),
            source,
        })?;
    let plan = plan::plan(&Snapshot {
        requests: requests.iter().collect(),
        pod: pod.as_ref(),
        runtime,
        now: Timestamp::now(),
    });
    if !plan.steps.is_empty() {
        tracing::debug!(pod = %key, steps = ?plan.steps, "plan");
    }
    let wrote = !plan.steps.is_empty();
    for step in plan.steps {
        let by_name = |name: &str| requests.iter().find(|r| r.name_any() == name);
        match step {
            Step::Kill { request, kill } => {
                let Some(r) = by_name(&request) else { continue };
                // kruise-daemon's Events (`Killing`, `FailedPreStopHook`) go on the pod's
                // container; graft adds its own on the request.
                let steps = match kill::kill(&ctx.cri, &kill, Some(&ctx.recorder)).await {
                    Ok(report) => {
                        publish(ctx, r, "Normal", "ContainerStopped", &format!(
                            "stopped container {} of pod {pod_name}{} (grace {}s); the kubelet recreates it",
                            kill.container,
                            if report.pre_stop_ran { " after its preStop hook" } else { "" },
                            report.stop_grace.as_secs()
                        ))
                        .await;
                        vec![Step::SetStates {
                            request: request.clone(),
                            states: kill.states_after.clone(),
                        }]
                    }
                    Err(e) => {
                        publish(
                            ctx,
                            r,
                            "Warning",
                            "FailedStopContainer",
                            &format!(
                                "stopping container {} of pod {pod_name}: {e}",
                                kill.container
                            ),
                        )
                        .await;
                        plan::after_kill_failure(r, &kill, &e.to_string())
                    }
                };
                for s in steps {
                    write(ctx, &api, key, by_name, s).await?;
                }
            }
            other => write(ctx, &api, key, by_name, other).await?,
        }
    }
    // Writes come back as watch events; poll as well while waiting for the kubelet (the agent
    // does not watch pods).
    Ok(match (wrote, plan.requeue_after) {
        (true, _) => Requeue::requeue(Duration::from_millis(500)),
        (false, Some(after)) => Requeue::requeue(after),
        (false, None) => Requeue::requeue(Duration::from_secs(30)),
    })
}

async fn write<'a>(
    ctx: &Ctx,
    api: &Api<ContainerRecreateRequest>,
    key: &str,
    by_name: impl Fn(&str) -> Option<&'a ContainerRecreateRequest>,
    step: Step,
) -> Result<(), Error> {
    let (name, body, step_name) = match &step {
        Step::SetPhase {
            request,
            phase,
            message,
        } => (
            request.clone(),
            json!({"status": {"phase": phase, "message": message}}),
            format!("setting phase {phase:?}"),
        ),
        Step::SetStates { request, states } => (
            request.clone(),
            json!({"status": {"containerRecreateStates": states}}),
            "writing container states".to_string(),
        ),
        Step::Complete { request, message } => (
            request.clone(),
            json!({"status": {
                "phase": "Completed",
                "completionTime": Time(Timestamp::now()),
                "message": if message.is_empty() { None } else { Some(message) },
            }}),
            "completing".to_string(),
        ),
        Step::Kill { .. } => return Ok(()),
    };
    api.patch_status(&name, &pp(), &Patch::Merge(&body))
        .await
        .map_err(|source| Error::Api {
            key: key.to_string(),
            step: format!("{step_name} of ContainerRecreateRequest {name}"),
            source,
        })?;
    if let Some(r) = by_name(&name) {
        match &step {
            Step::SetPhase {
                phase: graft_api::apps::v1alpha1::containerrecreaterequest::ContainerRecreateRequestPhase::Recreating,
                ..
            } => publish(ctx, r, "Normal", "Recreating", "recreating containers").await,
            Step::SetPhase {
                message: Some(m), ..
            } => publish(ctx, r, "Normal", "Waiting", m).await,
            Step::Complete { message, .. } if message.is_empty() => {
                publish(ctx, r, "Normal", "Completed", "all containers recreated").await
            }
            Step::Complete { message, .. } => publish(ctx, r, "Warning", "Completed", message).await,
            _ => {}
        }
    }
    Ok(())
}

/// Publishes an `events.k8s.io/v1` Event about a request (best effort).
async fn publish(ctx: &Ctx, crr: &ContainerRecreateRequest, type_: &str, reason: &str, note: &str) {
    let regarding = ObjectReference {
        api_version: Some(ContainerRecreateRequest::api_version(&()).to_string()),
        kind: Some(ContainerRecreateRequest::kind(&()).to_string()),
        name: crr.metadata.name.clone(),
        namespace: crr.metadata.namespace.clone(),
        uid: crr.metadata.uid.clone(),
        ..Default::default()
    };
    ctx.recorder.publish(regarding, type_, reason, note).await;
}
