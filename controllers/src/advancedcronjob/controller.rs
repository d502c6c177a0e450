//! The AdvancedCronJob executor: read the runs from the shared caches, run the pure
//! [`plan`](super::plan::plan), carry the plan out.

use std::sync::Arc;
use std::time::{Duration, Instant};

use graft_api::apps::v1beta1::BroadcastJob;
use graft_api::apps::v1beta1::advancedcronjob::{AdvancedCronJob, TemplateKind};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action as Requeue;
use kube::{Api, ResourceExt};
use serde_json::json;

use super::plan::{self, DeleteReason, NewRun, Run, Skipped, Snapshot};
use crate::context::Context;
use crate::expectations::{CacheView, Expected};

const CONTROLLER: &str = "advancedcronjob";
const RECONCILE_TIMEOUT: Duration = Duration::from_secs(30);
const MANAGER: &str = "graft";
/// How soon to look again while our own writes are not in the caches yet.
const EXPECTATION_RECHECK: Duration = Duration::from_millis(500);

/// Errors of one reconcile; each names the cron job and the step.
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

fn api_err(key: &str, step: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
    let key = key.to_string();
    let step = step.into();
    move |source| Error::Api { key, step, source }
}

fn key_of(cron: &AdvancedCronJob) -> String {
    format!(
        "{}/{}",
        cron.namespace().unwrap_or_default(),
        cron.name_any()
    )
}

/// Requeue with backoff after an error.
pub fn error_policy(cron: Arc<AdvancedCronJob>, err: &Error, ctx: Arc<Context>) -> Requeue {
    tracing::warn!(advancedcronjob = %key_of(&cron), error = %err, "reconcile failed");
    ctx.metrics.reconciled(CONTROLLER, false, Duration::ZERO);
    Requeue::requeue(Duration::from_secs(2))
}

/// One reconcile of an AdvancedCronJob; requeues at its next scheduled time.
pub async fn reconcile(cron: Arc<AdvancedCronJob>, ctx: Arc<Context>) -> Result<Requeue, Error> {
    let started = Instant::now();
    let key = key_of(&cron);
    let result =
        match tokio::time::timeout(RECONCILE_TIMEOUT, reconcile_inner(&cron, &ctx, &key)).await {
            Ok(r) => r,
            Err(_) => Err(Error::Timeout {
                key: key.clone(),
                after: RECONCILE_TIMEOUT,
            }),
        };
    if result.is_err() {
        // kruise retries a failed reconcile in full.
        gate::forget(&key);
    }
    if result.is_ok() {
        ctx.metrics.reconciled(CONTROLLER, true, started.elapsed());
    }
    result
}

/// The runs' names as the caches show them, for the expectations.
struct Seen(Vec<(String, bool, String)>);

impl CacheView for Seen {
    fn lookup(&self, name: &str) -> Option<(bool, String)> {
        self.0
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, d, rv)| (*d, rv.clone()))
    }
}

fn seen(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> (String, bool, String) {
    (
        meta.name.clone().unwrap_or_default(),
        meta.deletion_timestamp.is_some(),
        meta.resource_version.clone().unwrap_or_default(),
    )
}

async fn reconcile_inner(
    cron: &AdvancedCronJob,
    ctx: &Context,
    key: &str,
) -> Result<Requeue, Error> {
    let owner_key = format!("AdvancedCronJob:{key}");
    if cron.metadata.deletion_timestamp.is_some() {
        ctx.expectations.forget(&owner_key);
        gate::forget(key);
        return Ok(Requeue::await_change());
    }
    let ns = cron.namespace().unwrap_or_default();
    let name = cron.name_any();
    // kruise: a Job template runs Jobs; every other template BroadcastJobs.
    let kind = match cron.spec.template_kind() {
        Some(TemplateKind::Job) => TemplateKind::Job,
        _ => TemplateKind::BroadcastJob,
    };
    let in_ns = |m: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta| {
        m.namespace.as_deref() == Some(ns.as_str()) && plan::owned_by(m, &name, kind)
    };
    let (runs, cache): (Vec<Run>, Seen) = if kind == TemplateKind::Job {
        let jobs: Vec<Arc<Job>> = ctx
            .jobs
            .state()
            .into_iter()
            .filter(|j| in_ns(&j.metadata))
            .collect();
        (
            jobs.iter().map(|j| Run::from_job(j)).collect(),
            Seen(jobs.iter().map(|j| seen(&j.metadata)).collect()),
        )
    } else {
        let jobs: Vec<Arc<BroadcastJob>> = ctx
            .broadcast_jobs
            .state()
            .into_iter()
            .filter(|j| in_ns(&j.metadata))
            .collect();
        (
            jobs.iter().map(|j| Run::from_broadcast_job(j)).collect(),
            Seen(jobs.iter().map(|j| seen(&j.metadata)).collect()),
        )
    };
    if !ctx.expectations.satisfied(&owner_key, &cache) {
        return Ok(Requeue::requeue(EXPECTATION_RECHECK));
    }
    if kind == TemplateKind::Job
        && let Some(wait) = gate::woken_only_by_a_job(key, cron.resource_version().as_deref())
    {
        return Ok(wait.map_or_else(Requeue::await_change, Requeue::requeue));
    }
    let planned_at = Instant::now();

    let plan = plan::plan(&Snapshot {
        cron,
        runs: &runs,
        now: Timestamp::now(),
    });
    let crons: Api<AdvancedCronJob> = Api::namespaced(ctx.client.clone(), &ns);
    if plan.status_changed {
        let s = &plan.status;
        let patch = json!({"status": {
            "type": s.type_,
            "active": s.active,
            "lastScheduleTime": s.last_schedule_time,
        }});
        let pp = PatchParams {
            field_manager: Some(MANAGER.to_string()),
            ..Default::default()
        };
        crons
            .patch_status(&name, &pp, &Patch::Merge(&patch))
            .await
            .map_err(api_err(key, "updating the status"))?;
    }

    let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), &ns);
    let broadcast_jobs: Api<BroadcastJob> = Api::namespaced(ctx.client.clone(), &ns);
    for (run, reason) in &plan.delete {
        let expected = Expected::Deleted(run.clone());
        ctx.expectations.expect(&owner_key, expected.clone());
        let dp = DeleteParams::background();
        let res = if kind == TemplateKind::Job {
            jobs.delete(run, &dp).await.map(|_| ())
        } else {
            broadcast_jobs.delete(run, &dp).await.map(|_| ())
        };
        match res {
            Ok(()) => tracing::info!(advancedcronjob = %key, run = %run, ?reason, "deleted run"),
            Err(kube::Error::Api(e)) if e.code == 404 => {
                ctx.expectations.withdraw(&owner_key, &expected);
            }
            Err(e) => {
                ctx.expectations.withdraw(&owner_key, &expected);
                // History cleanup is best effort, as kruise's; a run to replace must go first.
                if *reason == DeleteReason::Replaced {
                    return Err(api_err(key, format!("deleting active run {run}"))(e));
                }
                tracing::warn!(advancedcronjob = %key, run = %run, error = %e, "deleting an old run");
            }
        }
    }

    match &plan.skipped {
        Some(Skipped::UnparsableSchedule(m)) => {
            tracing::warn!(advancedcronjob = %key, "{m}");
        }
        Some(s) => tracing::debug!(advancedcronjob = %key, skipped = ?s, "no run started"),
        None => {}
    }
    if plan.missed > plan::MAX_MISSED {
        tracing::warn!(
            advancedcronjob = %key,
            missed = plan.missed,
            "too many missed start times; running the most recent. Set or decrease .spec.startingDeadlineSeconds or check clock skew"
        );
    }
    if let Some(new) = &plan.create {
        let run = new.metadata().name.clone().unwrap_or_default();
        let expected = Expected::Created(run.clone());
        ctx.expectations.expect(&owner_key, expected.clone());
        let pp = PostParams {
            field_manager: Some(MANAGER.to_string()),
            ..Default::default()
        };
        let res = match new {
            NewRun::Job(j) => jobs.create(&pp, j).await.map(|_| ()),
            NewRun::BroadcastJob(b) => broadcast_jobs.create(&pp, b).await.map(|_| ()),
        };
        match res {
            Ok(()) => tracing::info!(advancedcronjob = %key, run = %run, "created run"),
            // Created by an earlier reconcile whose write the cache has not shown yet.
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(e) => {
                ctx.expectations.withdraw(&owner_key, &expected);
                return Err(api_err(key, format!("creating run {run}"))(e));
            }
        }
    }
    if kind == TemplateKind::Job {
        gate::acted(
            key,
            cron.resource_version(),
            plan.requeue_after.map(|d| planned_at + d),
        );
    }
    Ok(match plan.requeue_after {
        Some(after) => Requeue::requeue(after.max(Duration::from_millis(100))),
        None => Requeue::await_change(),
    })
}

/// kruise 1.9 registers its Job watch with BroadcastJob as the owner type, so a Job's changes
/// never wake an AdvancedCronJob with a `jobTemplate`: it reconciles when the cron job changes
/// (its own status writes included), at the next scheduled time and on retries. graft's runtime
/// wakes it on its Jobs too; this gate turns those wake-ups back into no-ops, so what users see
/// is kruise's: a run that `Forbid` blocked is skipped, not started late when the active one
/// finishes, and the status follows the Jobs at the scheduled times. (BroadcastJob events do
/// wake kruise's controller, and graft's.)
mod gate {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    use std::time::{Duration, Instant};

    /// Per cron job: the resourceVersion it had when graft last acted, and when it is due next.
    type Seen = HashMap<String, (Option<String>, Option<Instant>)>;

    fn seen() -> &'static Mutex<Seen> {
        static SEEN: OnceLock<Mutex<Seen>> = OnceLock::new();
        SEEN.get_or_init(Mutex::default)
    }

    /// `Some(wait)` when nothing kruise reacts to happened since graft last acted on `key`
    /// (same resourceVersion, not due yet): wait that long (`None`: for a change).
    pub(super) fn woken_only_by_a_job(
        key: &str,
        resource_version: Option<&str>,
    ) -> Option<Option<Duration>> {
        let map = seen().lock().ok()?;
        let (rv, due) = map.get(key)?;
        if rv.as_deref() != resource_version {
            return None;
        }
        match due {
            None => Some(None),
            Some(due) => {
                let now = Instant::now();
                (now < *due).then(|| Some(*due - now))
            }
        }
    }

    /// graft acted on `key` at `resource_version`; it is due again at `due`.
    pub(super) fn acted(key: &str, resource_version: Option<String>, due: Option<Instant>) {
        if let Ok(mut map) = seen().lock() {
            map.insert(key.to_string(), (resource_version, due));
        }
    }

    /// The next reconcile of `key` acts whatever woke it.
    pub(super) fn forget(key: &str) {
        if let Ok(mut map) = seen().lock() {
            map.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::gate;
    use std::time::{Duration, Instant};

    #[test]
    fn a_job_event_alone_does_not_make_a_job_template_cron_job_act() {
        let key = "ns/gate-test";
        assert_eq!(
            gate::woken_only_by_a_job(key, Some("1")),
            None,
            "never acted"
        );
        let due = Instant::now() + Duration::from_secs(30);
        gate::acted(key, Some("1".into()), Some(due));
        let wait = gate::woken_only_by_a_job(key, Some("1")).flatten();
        assert!(
            wait.is_some_and(|w| w <= Duration::from_secs(30)),
            "{wait:?}"
        );
        assert_eq!(
            gate::woken_only_by_a_job(key, Some("2")),
            None,
            "a change of the cron job (its own status write too) acts"
        );
        gate::acted(key, Some("1".into()), Some(Instant::now()));
        assert_eq!(gate::woken_only_by_a_job(key, Some("1")), None, "due: acts");
        gate::acted(key, Some("1".into()), None);
        assert_eq!(
            gate::woken_only_by_a_job(key, Some("1")),
            Some(None),
            "paused: waits for a change"
        );
        gate::forget(key);
        assert_eq!(
            gate::woken_only_by_a_job(key, Some("1")),
            None,
            "a retry acts"
        );
    }
}
