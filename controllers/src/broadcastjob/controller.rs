//! The BroadcastJob executor: gather the job's pods and the nodes from the shared caches, run
//! the pure [`plan`], carry the plan out (kruise's `ReconcileBroadcastJob`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::join_all;
use graft_api::apps::v1beta1::BroadcastJob;
use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action as Requeue;
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Resource, ResourceExt};
use serde_json::json;

use super::plan::{self, EventType, PlannedEvent, Snapshot};
use crate::context::Context;
use crate::expectations::{CacheView, Expected};

const CONTROLLER: &str = "broadcastjob";
const MANAGER: &str = "graft";
const RECONCILE_TIMEOUT: Duration = Duration::from_secs(60);
/// How soon to look again while our own writes are not in the cache yet (their watch events
/// wake the job sooner).
const EXPECTATION_RECHECK: Duration = Duration::from_secs(5);

/// Errors of one reconcile; each names the job and the step.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An API call failed.
    #[error("{key}: {step}: {source}")]
    Api {
        /// `namespace/name`.
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
        /// `namespace/name`.
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

/// Expectations owner key of a job (kind-qualified, see [`crate::expectations`]).
fn owner_key(job: &BroadcastJob) -> String {
    format!("BroadcastJob:{}", plan::job_key(job))
}

/// Requeue with backoff after an error.
pub fn error_policy(job: Arc<BroadcastJob>, err: &Error, ctx: Arc<Context>) -> Requeue {
    tracing::warn!(job = %plan::job_key(&job), error = %err, "reconcile failed");
    ctx.metrics.reconciled(CONTROLLER, false, Duration::ZERO);
    Requeue::requeue(Duration::from_secs(2))
}

/// One reconcile of a BroadcastJob.
pub async fn reconcile(job: Arc<BroadcastJob>, ctx: Arc<Context>) -> Result<Requeue, Error> {
    let started = Instant::now();
    let key = plan::job_key(&job);
    let result =
        match tokio::time::timeout(RECONCILE_TIMEOUT, reconcile_inner(&job, &ctx, &key)).await {
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

/// The shared pod cache of one namespace as a [`CacheView`].
struct PodsView<'a> {
    namespace: &'a str,
    ctx: &'a Context,
}

impl CacheView for PodsView<'_> {
    fn lookup(&self, name: &str) -> Option<(bool, String)> {
        let pod = self
            .ctx
            .pods
            .get(&ObjectRef::<Pod>::new(name).within(self.namespace))?;
        Some((
            pod.metadata.deletion_timestamp.is_some(),
            pod.metadata.resource_version.clone().unwrap_or_default(),
        ))
    }
}

/// The job's pods in the cache: labelled with its uid and name, controlled by it.
fn pods_of(job: &BroadcastJob, all: &[Arc<Pod>]) -> Vec<Arc<Pod>> {
    let ns = job.metadata.namespace.as_deref();
    let uid = job.metadata.uid.as_deref().unwrap_or_default();
    let want = plan::pod_labels(job);
    all.iter()
        .filter(|p| p.metadata.namespace.as_deref() == ns)
        .filter(|p| {
            let l = p.metadata.labels.as_ref();
            want.iter()
                .all(|(k, v)| l.and_then(|l| l.get(k)) == Some(v))
        })
        .filter(|p| {
            p.metadata
                .owner_references
                .iter()
                .flatten()
                .any(|o| o.controller == Some(true) && o.kind == "BroadcastJob" && o.uid == uid)
        })
        .cloned()
        .collect()
}

async fn reconcile_inner(job: &BroadcastJob, ctx: &Context, key: &str) -> Result<Requeue, Error> {
    let ns = job.namespace().unwrap_or_default();
    let owner = owner_key(job);
    let view = PodsView {
        namespace: &ns,
        ctx,
    };
    if !ctx.expectations.satisfied(&owner, &view) {
        tracing::debug!(job = %key, "waiting for our pod writes to reach the cache");
        return Ok(Requeue::requeue(EXPECTATION_RECHECK));
    }
    let all_pods = ctx.pods.state();
    let pods = pods_of(job, &all_pods);
    let nodes = ctx.nodes.state();
    let now = Timestamp::now();
    let plan = plan::plan(&Snapshot {
        job,
        pods: pods.iter().map(Arc::as_ref).collect(),
        nodes: nodes.iter().map(Arc::as_ref).collect(),
        now,
    });
    tracing::debug!(job = %key, deletions = ?plan.deletions, creations = ?plan.created_nodes(),
        status = ?plan.status, delete_job = plan.delete_job, "plan");

    let jobs: Api<BroadcastJob> = Api::namespaced(ctx.client.clone(), &ns);
    let pods_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let name = job.name_any();

    if plan.delete_job {
        tracing::info!(job = %key, "deleting BroadcastJob after ttlSecondsAfterFinished");
        match jobs.delete(&name, &DeleteParams::background()).await {
            Ok(_) => ctx.expectations.forget(&owner),
            Err(kube::Error::Api(e)) if e.code == 404 => ctx.expectations.forget(&owner),
            Err(e) => return Err(api_err(key, "deleting after ttlSecondsAfterFinished")(e)),
        }
        return Ok(Requeue::await_change());
    }

    for event in &plan.events_before {
        publish(ctx, job, event).await;
    }

    // Writes that fail are taken out of the status counters, as kruise's are.
    let mut first_error: Option<Error> = None;
    let (mut active_fix, mut failed_fix) = (0i32, 0i32);
    let deletions = plan.deletions.iter().map(|pod| {
        let (pods_api, owner) = (&pods_api, &owner);
        async move {
            ctx.expectations
                .expect(owner, Expected::Deleted(pod.clone()));
            let r = pods_api.delete(pod, &DeleteParams::default()).await;
            (pod, r)
        }
    });
    for (pod, r) in join_all(deletions).await {
        let gone = matches!(&r, Err(kube::Error::Api(e)) if e.code == 404);
        match r {
            Ok(_) => {
                ctx.metrics.pod_action(CONTROLLER, "delete");
                let ev = PlannedEvent {
                    type_: EventType::Normal,
                    reason: "SuccessfulDelete",
                    message: format!("Delete pod: {pod}"),
                };
                publish(ctx, job, &ev).await;
            }
            Err(_) if gone => {}
            Err(e) => {
                ctx.expectations
                    .withdraw(&owner, &Expected::Deleted(pod.clone()));
                failed_fix -= 1;
                active_fix += 1;
                first_error.get_or_insert_with(|| api_err(key, format!("deleting pod {pod}"))(e));
            }
        }
    }

    let mut skipped = false;
    for batch in &plan.creations {
        if skipped {
            active_fix -= count(batch.len());
            continue;
        }
        let creates = batch.iter().map(|new| {
            let pods_api = &pods_api;
            async move {
                let pod = match ctx.sidecarsets.inject(&new.pod).await {
                    Ok(injected) => injected.pod,
                    Err(e) => {
                        tracing::warn!(job = %key, node = %new.node, error = %e, "injecting sidecars");
                        new.pod.clone()
                    }
                };
                (new, pods_api.create(&PostParams::default(), &pod).await)
            }
        });
        let mut batch_failed = false;
        for (new, r) in join_all(creates).await {
            match r {
                Ok(created) => {
                    let pod_name = created.name_any();
                    ctx.expectations
                        .expect(&owner, Expected::Created(pod_name.clone()));
                    ctx.metrics.pod_action(CONTROLLER, "create");
                    tracing::info!(job = %key, pod = %pod_name, node = %new.node, "created pod");
                    let ev = PlannedEvent {
                        type_: EventType::Normal,
                        reason: "SuccessfulCreate",
                        message: format!("Created pod: {pod_name}"),
                    };
                    publish(ctx, job, &ev).await;
                }
                Err(e) => {
                    batch_failed = true;
                    active_fix -= 1;
                    let ev = PlannedEvent {
                        type_: EventType::Warning,
                        reason: "FailedCreate",
                        message: format!("Error creating: {e}"),
                    };
                    publish(ctx, job, &ev).await;
                    first_error.get_or_insert_with(|| {
                        api_err(key, format!("creating a pod on node {}", new.node))(e)
                    });
                }
            }
        }
        // The rest waits for the next reconcile, which starts slow again.
        skipped = batch_failed;
    }

    if plan.set_paused {
        let patch = json!({"spec": {"paused": true}});
        jobs.patch(&name, &pp(), &Patch::Merge(&patch))
            .await
            .map_err(api_err(key, "pausing after a failed pod"))?;
    }

    if let Some(mut status) = plan.status.clone() {
        status.active += active_fix;
        status.failed += failed_fix;
        if job.status.as_ref() != Some(&status) {
            let patch = json!({ "status": status });
            jobs.patch_status(&name, &pp(), &Patch::Merge(&patch))
                .await
                .map_err(api_err(key, "writing the status"))?;
        }
    }

    for event in &plan.events_after {
        publish(ctx, job, event).await;
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    Ok(match plan.requeue_after {
        Some(after) => Requeue::requeue(after.max(Duration::from_millis(200))),
        None => Requeue::await_change(),
    })
}

fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

async fn publish(ctx: &Context, job: &BroadcastJob, event: &PlannedEvent) {
    let reference = ObjectReference {
        api_version: Some(BroadcastJob::api_version(&()).to_string()),
        kind: Some(BroadcastJob::kind(&()).to_string()),
        name: job.metadata.name.clone(),
        namespace: job.metadata.namespace.clone(),
        uid: job.metadata.uid.clone(),
        resource_version: job.metadata.resource_version.clone(),
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
        tracing::debug!(job = %plan::job_key(job), error = %e, "publishing an event");
    }
}
