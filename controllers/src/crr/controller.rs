//! The CRR executor: read the request's pod, run the pure [`plan`], carry the plan out.

use std::sync::Arc;
use std::time::{Duration, Instant};

use graft_api::apps::v1alpha1::ContainerRecreateRequest;
use graft_api::labels;
use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::runtime::controller::Action as Requeue;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Resource, ResourceExt};
use serde_json::json;

use super::plan::{self, Action, EventType, PlannedEvent, Snapshot};
use crate::context::Context;

const CONTROLLER: &str = "containerrecreaterequest";
const RECONCILE_TIMEOUT: Duration = Duration::from_secs(30);
const MANAGER: &str = "graft";

/// Errors of one reconcile; each names the request and the step.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An API call failed.
    #[error("{key}: {step}: {source}")]
    Api {
        /// `namespace/name` of the request.
        key: String,
        /// What was being done.
        step: String,
        /// The cause.
        #[source]
        source: kube::Error,
    },
    /// The reconcile did not finish in time.
    #[error("{key}: reconcile did not finish within {after:?}")]
    Timeout {
        /// `namespace/name` of the request.
        key: String,
        /// The limit.
        after: Duration,
    },
}

fn pp() -> PatchParams {
    PatchParams {
        field_manager: Some(MANAGER.to_string()),
        ..Default::default()
    }
}

fn api_err(key: &str, step: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
    let key = key.to_string();
    let step = step.into();
    move |source| Error::Api { key, step, source }
}

fn key_of(crr: &ContainerRecreateRequest) -> String {
    plan::reason_key(crr)
}

/// Requeue with backoff after an error.
pub fn error_policy(crr: Arc<ContainerRecreateRequest>, err: &Error, ctx: Arc<Context>) -> Requeue {
    tracing::warn!(crr = %key_of(&crr), error = %err, "reconcile failed");
    ctx.metrics.reconciled(CONTROLLER, false, Duration::ZERO);
    Requeue::requeue(Duration::from_secs(2))
}

/// One reconcile of a ContainerRecreateRequest.
pub async fn reconcile(
    crr: Arc<ContainerRecreateRequest>,
    ctx: Arc<Context>,
) -> Result<Requeue, Error> {
    let started = Instant::now();
    let key = key_of(&crr);
    let result =
        match tokio::time::timeout(RECONCILE_TIMEOUT, reconcile_inner(&crr, &ctx, &key)).await {
            Ok(r) => r,
            Err(_) => Err(Error::Timeout {
                key: key.clone(),
                after: RECONCILE_TIMEOUT,
            }),
        };
    if result.is_ok() {
        ctx.metrics.reconciled(CONTROLLER, true, started.elapsed());
    }
    result
}

async fn reconcile_inner(
    crr: &ContainerRecreateRequest,
    ctx: &Context,
    key: &str,
) -> Result<Requeue, Error> {
    let ns = crr.namespace().unwrap_or_default();
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    // Filling a new request decides from the pod, so read it fresh (the cache may lag behind a
    // pod that just started); afterwards the shared cache is enough.
    let pod: Option<Pod> = if plan::initialized(crr) {
        let synced = tokio::time::timeout(Duration::from_millis(100), ctx.pods.wait_until_ready());
        if !matches!(synced.await, Ok(Ok(()))) {
            return Ok(Requeue::requeue(Duration::from_millis(500)));
        }
        ctx.pods
            .get(&ObjectRef::<Pod>::new(&crr.spec.pod_name).within(&ns))
            .map(|p| (*p).clone())
    } else {
        pods.get_opt(&crr.spec.pod_name)
            .await
            .map_err(api_err(key, format!("reading pod {}", crr.spec.pod_name)))?
    };
    let now = Timestamp::now();
    let plan = plan::plan(&Snapshot {
        crr,
        pod: pod.as_ref(),
        now,
    });
    if !plan.actions.is_empty() {
        tracing::debug!(crr = %key, actions = ?plan.actions, "plan");
    }
    let api: Api<ContainerRecreateRequest> = Api::namespaced(ctx.client.clone(), &ns);
    let name = crr.name_any();
    for action in &plan.actions {
        execute(action, crr, &api, &pods, key, &name, now).await?;
    }
    for event in &plan.events {
        publish(ctx, crr, event).await;
    }
    Ok(match plan.requeue_after {
        Some(after) => Requeue::requeue(after.max(Duration::from_millis(200))),
        None => Requeue::await_change(),
    })
}

async fn execute(
    action: &Action,
    crr: &ContainerRecreateRequest,
    api: &Api<ContainerRecreateRequest>,
    pods: &Api<Pod>,
    key: &str,
    name: &str,
    now: Timestamp,
) -> Result<(), Error> {
    let rv = crr.resource_version();
    match action {
        Action::Initialize {
            labels,
            containers,
            termination_grace_period_seconds,
            failure_policy,
        } => {
            // resourceVersion makes this a compare-and-swap: a stale cache fails, never
            // overwrites.
            let mut strategy = json!({ "failurePolicy": failure_policy });
            if let Some(g) = termination_grace_period_seconds {
                strategy["terminationGracePeriodSeconds"] = json!(g);
            }
            let patch = json!({
                "metadata": {"resourceVersion": rv, "labels": labels},
                "spec": {"containers": containers, "strategy": strategy},
            });
            api.patch(name, &pp(), &Patch::Merge(&patch))
                .await
                .map_err(api_err(key, "filling the request from its pod"))?;
        }
        Action::Complete { message } => {
            let patch = json!({"status": {
                "phase": "Completed",
                "completionTime": Time(now),
                "message": message,
            }});
            api.patch_status(name, &pp(), &Patch::Merge(&patch))
                .await
                .map_err(api_err(key, "completing"))?;
        }
        Action::SyncContainerStatuses { value } => {
            let patch =
                json!({"metadata": {"annotations": {labels::CRR_SYNC_CONTAINER_STATUSES: value}}});
            api.patch(name, &pp(), &Patch::Merge(&patch))
                .await
                .map_err(api_err(key, "writing the container status snapshot"))?;
        }
        Action::AddFinalizer | Action::RemoveFinalizer => {
            let mut finalizers: Vec<String> = crr.finalizers().to_vec();
            finalizers.retain(|f| f != labels::CRR_UNREADY_ACQUIRED);
            if matches!(action, Action::AddFinalizer) {
                finalizers.push(labels::CRR_UNREADY_ACQUIRED.to_string());
            }
            let patch = json!({"metadata": {"resourceVersion": rv, "finalizers": finalizers}});
            api.patch(name, &pp(), &Patch::Merge(&patch))
                .await
                .map_err(api_err(key, "updating the unready-acquired finalizer"))?;
        }
        Action::SetPodConditions { conditions } => {
            let patch = json!({"status": {"conditions": conditions}});
            pods.patch_status(&crr.spec.pod_name, &pp(), &Patch::Strategic(&patch))
                .await
                .map_err(api_err(
                    key,
                    format!("setting KruisePodReady of pod {}", crr.spec.pod_name),
                ))?;
        }
        Action::MarkUnreadyAcquired { at } => {
            let patch = json!({"metadata": {"annotations": {labels::CRR_UNREADY_ACQUIRED: at}}});
            api.patch(name, &pp(), &Patch::Merge(&patch))
                .await
                .map_err(api_err(key, "recording the unready grace start"))?;
        }
        Action::Deactivate => {
            let patch = json!({"metadata": {"labels": {labels::CRR_ACTIVE: null}}});
            api.patch(name, &pp(), &Patch::Merge(&patch))
                .await
                .map_err(api_err(key, "removing the active label"))?;
        }
        Action::Delete => match api.delete(name, &DeleteParams::background()).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(api_err(key, "deleting after ttlSecondsAfterFinished")(e)),
        },
    }
    Ok(())
}

async fn publish(ctx: &Context, crr: &ContainerRecreateRequest, event: &PlannedEvent) {
    let reference = ObjectReference {
        api_version: Some(ContainerRecreateRequest::api_version(&()).to_string()),
        kind: Some(ContainerRecreateRequest::kind(&()).to_string()),
        name: crr.metadata.name.clone(),
        namespace: crr.metadata.namespace.clone(),
        uid: crr.metadata.uid.clone(),
        resource_version: crr.metadata.resource_version.clone(),
        ..Default::default()
    };
    let type_ = match event.type_ {
        EventType::Normal => crate::events::EventType::Normal,
        EventType::Warning => crate::events::EventType::Warning,
    };
    if let Err(e) = ctx
        .recorder
        .publish(type_, event.reason, &event.message, &reference)
        .await
    {
        tracing::debug!(crr = %key_of(crr), error = %e, "publishing an event");
    }
}
