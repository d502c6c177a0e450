//! The CloneSet reconcile as a pipeline: gather what the caches and the API server hold
//! (`gather.rs`), [`decide`](plan::decide) the whole plan purely, execute its actions
//! (`execute.rs`), write the status and Events (`status.rs`). Only this file sequences the
//! steps; none of them but the planner decides anything.

use std::sync::Arc;
use std::time::{Duration, Instant};

use graft_api::apps::v1alpha1::CloneSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{PatchParams, PostParams};
use kube::runtime::controller::Action as Requeue;

use super::execute::{Executor, Setup};
use super::gather::gather;
use super::plan::{self, EventType, Plan, PlannedEvent};
use super::status;
use crate::context::Context;
use crate::expectations::PodView;
use crate::revision;

/// The controller's name in metrics.
pub(super) const CONTROLLER: &str = "cloneset";
/// Longest a single reconcile may take before it is abandoned and retried.
const RECONCILE_TIMEOUT: Duration = Duration::from_secs(60);
/// Field manager for graft's writes to objects it owns (pods, PVCs, revisions, status).
const MANAGER: &str = "graft";

/// Errors of one reconcile; each names the CloneSet and the step.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An API call failed.
    #[error("{key}: {step}: {source}")]
    Api {
        /// `namespace/name` of the CloneSet.
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
        /// `namespace/name` of the CloneSet.
        key: String,
        /// The limit.
        after: Duration,
    },
    /// The in-place engine could not read a pod's state.
    #[error("{key}: in-place update: {message}")]
    InPlace {
        /// `namespace/name` of the CloneSet.
        key: String,
        /// The cause.
        message: String,
    },
    /// A matching SidecarSet could not be injected into a new pod (kruise's webhook would
    /// refuse the pod): the pod is not created.
    #[error("{key}: injecting the SidecarSets into pod {pod}: {message}")]
    Inject {
        /// `namespace/name` of the CloneSet.
        key: String,
        /// The pod that was to be created.
        pod: String,
        /// The cause.
        message: String,
    },
    /// A revision could not be built or read.
    #[error("{key}: {source}")]
    Revision {
        /// `namespace/name` of the CloneSet.
        key: String,
        /// The cause.
        #[source]
        source: revision::RevisionError,
    },
}

/// Patch parameters for graft's writes.
pub(super) fn pp() -> PatchParams {
    PatchParams {
        field_manager: Some(MANAGER.to_string()),
        ..Default::default()
    }
}

/// Create parameters for graft's writes.
pub(super) fn post() -> PostParams {
    PostParams {
        field_manager: Some(MANAGER.to_string()),
        ..Default::default()
    }
}

/// Wraps an API error with the CloneSet and the step.
pub(super) fn api_err(key: &str, step: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
    let key = key.to_string();
    let step = step.into();
    move |source| Error::Api { key, step, source }
}

/// Requeue with backoff after an error; the error is logged and counted by the caller.
pub fn error_policy(cs: Arc<CloneSet>, err: &Error, ctx: Arc<Context>) -> Requeue {
    tracing::warn!(cloneset = %key_of(&cs), error = %err, "reconcile failed");
    ctx.metrics.reconciled(CONTROLLER, false, Duration::ZERO);
    Requeue::requeue(Duration::from_secs(5))
}

fn key_of(cs: &CloneSet) -> String {
    format!(
        "{}/{}",
        cs.metadata.namespace.as_deref().unwrap_or_default(),
        cs.metadata.name.as_deref().unwrap_or_default()
    )
}

/// The shared pod cache as [`PodView`] for expectations.
struct StoreView<'a> {
    namespace: &'a str,
    ctx: &'a Context,
}

impl PodView for StoreView<'_> {
    fn lookup(&self, name: &str) -> Option<(bool, String)> {
        let pod = self
            .ctx
            .pods
            .get(&kube::runtime::reflector::ObjectRef::<Pod>::new(name).within(self.namespace))?;
        Some((
            pod.metadata.deletion_timestamp.is_some(),
            pod.metadata.resource_version.clone().unwrap_or_default(),
        ))
    }
}

/// One reconcile of a CloneSet.
pub async fn reconcile(cs: Arc<CloneSet>, ctx: Arc<Context>) -> Result<Requeue, Error> {
    let started = Instant::now();
    let key = key_of(&cs);
    // A reconcile that hangs (an API call that never answers) must not hold this CloneSet forever:
    // kube-runtime runs one reconcile per object at a time.
    let result =
        match tokio::time::timeout(RECONCILE_TIMEOUT, reconcile_inner(&cs, &ctx, &key)).await {
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

async fn reconcile_inner(cs: &CloneSet, ctx: &Context, key: &str) -> Result<Requeue, Error> {
    if cs.metadata.deletion_timestamp.is_some() {
        // Pods, PVCs and revisions go with it through their owner references.
        ctx.expectations.forget(key);
        ctx.waiting_changed(key, None);
        return Ok(Requeue::await_change());
    }
    // Refused before anything is read: an invalid selector must list nothing.
    let label_selector = match plan::admit(cs) {
        Ok(s) => s,
        Err(refusal) => return Ok(refuse(ctx, cs, key, &refusal).await),
    };
    if let Some(wait) = cache_not_ready(ctx, cs, key).await {
        return Ok(wait);
    }
    let t0 = Instant::now();
    let gathered = gather(ctx, cs, key, &label_selector).await?;
    let t_gather = t0.elapsed();
    let plan = match plan::decide(&gathered.observed) {
        Ok(p) => p,
        Err(refusal) => return Ok(refuse(ctx, cs, key, &refusal).await),
    };
    let update_revision = plan.status.update_revision.clone().unwrap_or_default();
    let executor = Executor::new(ctx, key, &gathered, &update_revision);
    if let Setup::Again(after) = executor.setup(&plan.actions).await? {
        return Ok(Requeue::requeue(after));
    }
    executor.pre_download(&plan.pre_download).await;
    status::announce_waiting(ctx, cs, key, &plan).await;
    let t_ops = Instant::now();
    executor.pod_operations(&plan.actions).await;
    let t_ops = t_ops.elapsed();
    let t_status = Instant::now();
    status::write(ctx, cs, key, &plan).await?;
    // Where a reconcile's time goes (bench/rollout.sh's per-pod table measures the sum).
    tracing::debug!(cloneset = %key, actions = plan.actions.len(), gather = ?t_gather, pods = ?t_ops, status = ?t_status.elapsed(), total = ?t0.elapsed(), "reconciled");
    Ok(requeue(&plan))
}

/// Invalid input is reported once and waits for the object to change (STYLE.md).
async fn refuse(ctx: &Context, cs: &CloneSet, key: &str, refusal: &plan::Refusal) -> Requeue {
    let ev = PlannedEvent {
        type_: EventType::Warning,
        reason: "InvalidSpec".into(),
        message: refusal.message.clone(),
    };
    status::publish(ctx, cs, &ev).await;
    tracing::warn!(cloneset = %key, message = %refusal.message, "invalid spec");
    Requeue::await_change()
}

/// `Some(requeue)` while the shared pod cache cannot be trusted yet for this CloneSet.
async fn cache_not_ready(ctx: &Context, cs: &CloneSet, key: &str) -> Option<Requeue> {
    // A fresh process must not plan before the shared pod cache has listed the pods: it would
    // see none, create every pod again, then delete the surplus (found by killing graft
    // mid-rollout). Expectations cannot catch this; they start empty after a restart.
    let synced = tokio::time::timeout(Duration::from_millis(100), async {
        ctx.pods.wait_until_ready().await?;
        ctx.revisions.wait_until_ready().await
    });
    if !matches!(synced.await, Ok(Ok(()))) {
        tracing::debug!(cloneset = %key, "waiting for the pod and revision caches to sync");
        return Some(Requeue::requeue(Duration::from_millis(500)));
    }
    let view = StoreView {
        namespace: cs.metadata.namespace.as_deref().unwrap_or_default(),
        ctx,
    };
    if !ctx.expectations.satisfied(key, &view) {
        tracing::debug!(cloneset = %key, "waiting for the cache to show our last writes");
        return Some(Requeue::requeue(Duration::from_millis(500)));
    }
    None
}

/// Watch events drive progress; while a rollout is not settled, also look again every few
/// seconds so a missed event can only delay it, never stall it.
fn requeue(plan: &Plan) -> Requeue {
    match plan.requeue_after {
        Some(d) => Requeue::requeue(d.min(Duration::from_secs(300))),
        None if !plan.actions.is_empty() => Requeue::requeue(Duration::from_secs(1)),
        None if plan.waiting.is_some() => Requeue::requeue(Duration::from_secs(3)),
        None => Requeue::requeue(Duration::from_secs(300)),
    }
}
