//! One AdvancedCronJob reconcile as a pure function: the cron job, the runs it created and the
//! clock in, a [`Plan`] out (OpenKruise `advancedcronjob_job_controller.go` and
//! `advancedcronjob_broadcastjob_controller.go`).
//!
//! As kruise: the status is rebuilt from the runs (`lastScheduleTime` is the newest
//! `apps.kruise.io/scheduled-at` among them, `active` the unfinished ones), the oldest finished
//! runs beyond the history limits are deleted, and unless paused the most recent scheduled time
//! that has come and not been run yet (at most one: no catch-up burst after a restart) starts a
//! run named `<cron job>-<unix seconds of the scheduled time>`, unless it is past
//! `startingDeadlineSeconds` or `Forbid` sees an active run; `Replace` deletes the active runs
//! first. kruise publishes no Events for any of this, and neither does graft; [`Plan::skipped`]
//! says why nothing started, for the logs.
//!
//! One deliberate difference: with more than 100 missed times kruise gives up until the object
//! changes; graft does what Kubernetes' CronJob controller does and runs the most recent one.

use std::collections::BTreeMap;
use std::time::Duration;

use graft_api::apps::v1beta1::advancedcronjob::{
    AdvancedCronJob, AdvancedCronJobStatus, ConcurrencyPolicy, TemplateKind, cron,
};
use graft_api::apps::v1beta1::broadcastjob::{BroadcastJob, BroadcastJobSpec};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use k8s_openapi::jiff::Timestamp;

/// Annotation on each run: its scheduled time, RFC 3339 (kruise's `scheduledTimeAnnotation`).
pub const SCHEDULED_AT: &str = "apps.kruise.io/scheduled-at";
/// Beyond this many missed times Kubernetes warns "too many missed start times".
pub const MAX_MISSED: usize = 100;
/// graft stops counting missed times here (a clock decades off) and waits for a change.
const MISSED_SEARCH_LIMIT: usize = 1_000_000;

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finished {
    /// Condition `Complete` is True.
    Complete,
    /// Condition `Failed` is True.
    Failed,
}

/// What the planner needs of one run (a Job or a BroadcastJob).
#[derive(Clone, Debug, PartialEq)]
pub struct Run {
    /// Its reference, for `status.active` (kind, apiVersion, namespace, name, uid,
    /// resourceVersion).
    pub reference: ObjectReference,
    /// Its `scheduled-at` annotation, when present and parsable.
    pub scheduled_at: Option<Timestamp>,
    /// `status.startTime` (history limits delete the oldest first).
    pub start_time: Option<Timestamp>,
    /// Whether (and how) it finished.
    pub finished: Option<Finished>,
}

impl Run {
    /// A batch/v1 Job run: finished by its `Complete` or `Failed` condition being True.
    pub fn from_job(job: &Job) -> Run {
        let status = job.status.as_ref();
        let finished = status
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| {
                cs.iter()
                    .find(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
            })
            .map(|c| {
                if c.type_ == "Complete" {
                    Finished::Complete
                } else {
                    Finished::Failed
                }
            });
        Run {
            reference: reference(&job.metadata, "batch/v1", "Job"),
            scheduled_at: scheduled_at(&job.metadata),
            start_time: status.and_then(|s| s.start_time.as_ref()).map(|t| t.0),
            finished,
        }
    }

    /// A BroadcastJob run: finished as kruise's `isJobFinished` sees it (condition `Complete` or
    /// `Failed` True).
    pub fn from_broadcast_job(job: &BroadcastJob) -> Run {
        let status = job.status.as_ref();
        let finished = status
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| {
                cs.iter()
                    .find(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
            })
            .map(|c| {
                if c.type_ == "Complete" {
                    Finished::Complete
                } else {
                    Finished::Failed
                }
            });
        Run {
            reference: reference(&job.metadata, "apps.kruise.io/v1beta1", "BroadcastJob"),
            scheduled_at: scheduled_at(&job.metadata),
            start_time: status.and_then(|s| s.start_time.as_ref()).map(|t| t.0),
            finished,
        }
    }

    fn name(&self) -> &str {
        self.reference.name.as_deref().unwrap_or_default()
    }
}

fn reference(meta: &ObjectMeta, api_version: &str, kind: &str) -> ObjectReference {
    ObjectReference {
        api_version: Some(api_version.to_string()),
        kind: Some(kind.to_string()),
        name: meta.name.clone(),
        namespace: meta.namespace.clone(),
        uid: meta.uid.clone(),
        resource_version: meta.resource_version.clone(),
        ..Default::default()
    }
}

fn scheduled_at(meta: &ObjectMeta) -> Option<Timestamp> {
    meta.annotations
        .as_ref()?
        .get(SCHEDULED_AT)?
        .parse::<Timestamp>()
        .ok()
}

/// Whether `meta`'s controller is the AdvancedCronJob `cron_name` as kruise's field index reads
/// it (by name, in the namespace): for Jobs an owner at `apps.kruise.io/v1alpha1` or `v1beta1`,
/// for BroadcastJobs at `v1beta1` only.
pub fn owned_by(meta: &ObjectMeta, cron_name: &str, kind: TemplateKind) -> bool {
    meta.owner_references.iter().flatten().any(|o| {
        o.controller == Some(true)
            && o.kind == "AdvancedCronJob"
            && o.name == cron_name
            && match kind {
                TemplateKind::Job => {
                    o.api_version == "apps.kruise.io/v1beta1"
                        || o.api_version == "apps.kruise.io/v1alpha1"
                }
                _ => o.api_version == "apps.kruise.io/v1beta1",
            }
    })
}

/// What the planner looks at.
#[derive(Clone, Debug)]
pub struct Snapshot<'a> {
    /// The cron job.
    pub cron: &'a AdvancedCronJob,
    /// Its runs of the template's kind, from the caches.
    pub runs: &'a [Run],
    /// The clock.
    pub now: Timestamp,
}

/// A run to create.
#[derive(Clone, Debug, PartialEq)]
pub enum NewRun {
    /// A batch/v1 Job.
    Job(Box<Job>),
    /// A BroadcastJob.
    BroadcastJob(Box<BroadcastJob>),
}

impl NewRun {
    /// The new run's metadata.
    pub fn metadata(&self) -> &ObjectMeta {
        match self {
            NewRun::Job(j) => &j.metadata,
            NewRun::BroadcastJob(b) => &b.metadata,
        }
    }
}

/// Why a run is deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeleteReason {
    /// Beyond `failedJobsHistoryLimit`.
    FailedHistory,
    /// Beyond `successfulJobsHistoryLimit`.
    SuccessfulHistory,
    /// `concurrencyPolicy: Replace`, for the new run.
    Replaced,
}

/// Why no run starts now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Skipped {
    /// `spec.paused`.
    Paused,
    /// The schedule does not parse (the object has to change).
    UnparsableSchedule(String),
    /// No template graft can run (ImageListPullJob, or none).
    NoTemplate,
    /// No scheduled time has come since the last run.
    NotDue,
    /// The most recent missed time is older than `startingDeadlineSeconds`.
    MissedDeadline(Timestamp),
    /// `Forbid` and runs still active.
    Forbidden {
        /// The time not run.
        scheduled: Timestamp,
        /// How many runs are active.
        active: usize,
    },
    /// The clock is so far past the last run that graft stopped counting.
    TooFarBehind,
}

/// What to do, in this order: write the status (when it changed), delete the runs beyond the
/// history limits (best effort), then delete the [`DeleteReason::Replaced`] ones and create the
/// new run (failures are retried).
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// The whole new status.
    pub status: AdvancedCronJobStatus,
    /// Whether it differs from the stored one.
    pub status_changed: bool,
    /// Runs to delete (by name) and why.
    pub delete: Vec<(String, DeleteReason)>,
    /// The run to create.
    pub create: Option<NewRun>,
    /// Why nothing is created (`None` when something is).
    pub skipped: Option<Skipped>,
    /// More than [`MAX_MISSED`] scheduled times were missed (Kubernetes' "too many missed start
    /// times"); the most recent runs anyway.
    pub missed: usize,
    /// When to look again: the next scheduled time (`None`: only on a change).
    pub requeue_after: Option<Duration>,
}

/// Plans one reconcile.
pub fn plan(snap: &Snapshot) -> Plan {
    let cron = snap.cron;
    let spec = cron.spec.defaulted();
    let kind = spec.template_kind();
    // kruise: a Job template, else an ImageListPullJob one, else a BroadcastJob.
    let status_kind = match kind {
        Some(TemplateKind::Job) => TemplateKind::Job,
        _ if spec.template.image_list_pull_job_template.is_some() => TemplateKind::ImageListPullJob,
        _ => TemplateKind::BroadcastJob,
    };
    let mut runs: Vec<&Run> = snap.runs.iter().collect();
    runs.sort_by(|a, b| a.name().cmp(b.name()));
    let active: Vec<&Run> = runs
        .iter()
        .copied()
        .filter(|r| r.finished.is_none())
        .collect();
    let last_schedule = runs.iter().filter_map(|r| r.scheduled_at).max();
    let status = AdvancedCronJobStatus {
        type_: Some(status_kind),
        active: (!active.is_empty()).then(|| active.iter().map(|r| r.reference.clone()).collect()),
        last_schedule_time: last_schedule.map(Time),
    };
    let status_changed = cron.status.as_ref() != Some(&status);
    let mut plan = Plan {
        status,
        status_changed,
        delete: Vec::new(),
        create: None,
        skipped: None,
        missed: 0,
        requeue_after: None,
    };

    for (finished, limit, reason) in [
        (
            Finished::Failed,
            spec.failed_jobs_history_limit,
            DeleteReason::FailedHistory,
        ),
        (
            Finished::Complete,
            spec.successful_jobs_history_limit,
            DeleteReason::SuccessfulHistory,
        ),
    ] {
        let Some(limit) = limit else { continue };
        let mut done: Vec<&Run> = runs
            .iter()
            .copied()
            .filter(|r| r.finished == Some(finished))
            .collect();
        // Oldest start first, runs that never started before all others.
        done.sort_by(|a, b| a.start_time.cmp(&b.start_time).then(a.name().cmp(b.name())));
        let excess = done
            .len()
            .saturating_sub(usize::try_from(limit).unwrap_or(0));
        for r in done.into_iter().take(excess) {
            plan.delete.push((r.name().to_string(), reason));
        }
    }

    if spec.paused == Some(true) {
        plan.skipped = Some(Skipped::Paused);
        return plan;
    }
    if !matches!(kind, Some(TemplateKind::Job | TemplateKind::BroadcastJob)) {
        plan.skipped = Some(Skipped::NoTemplate);
        return plan;
    }
    let formatted = cron::format_schedule(&spec.schedule, spec.time_zone.as_deref());
    let schedule = match cron::parse_standard(&formatted) {
        Ok(s) => s,
        Err(e) => {
            plan.skipped = Some(Skipped::UnparsableSchedule(format!(
                "unparsable schedule {:?}: {e}",
                spec.schedule
            )));
            return plan;
        }
    };

    let now = snap.now;
    let mut earliest = last_schedule
        .or_else(|| cron.metadata.creation_timestamp.as_ref().map(|t| t.0))
        .unwrap_or(now);
    if let Some(sds) = spec.starting_deadline_seconds
        && let Ok(deadline) = now.checked_sub(k8s_openapi::jiff::SignedDuration::from_secs(sds))
        && deadline > earliest
    {
        earliest = deadline;
    }
    let next = schedule.next(now);
    plan.requeue_after = next.and_then(|n| n.duration_since(now).try_into().ok());

    let mut missed_at = None;
    if earliest <= now {
        let mut t = schedule.next(earliest);
        while let Some(at) = t.filter(|at| *at <= now) {
            missed_at = Some(at);
            plan.missed += 1;
            if plan.missed > MISSED_SEARCH_LIMIT {
                plan.skipped = Some(Skipped::TooFarBehind);
                plan.requeue_after = None;
                return plan;
            }
            t = schedule.next(at);
        }
    }
    let Some(scheduled) = missed_at else {
        plan.skipped = Some(Skipped::NotDue);
        return plan;
    };
    if let Some(sds) = spec.starting_deadline_seconds
        && scheduled
            .checked_add(k8s_openapi::jiff::SignedDuration::from_secs(sds))
            .is_ok_and(|late| late < now)
    {
        plan.skipped = Some(Skipped::MissedDeadline(scheduled));
        return plan;
    }
    let policy = spec.concurrency_policy.unwrap_or_default();
    if policy == ConcurrencyPolicy::Forbid && !active.is_empty() {
        plan.skipped = Some(Skipped::Forbidden {
            scheduled,
            active: active.len(),
        });
        return plan;
    }
    if policy == ConcurrencyPolicy::Replace {
        for r in &active {
            plan.delete
                .push((r.name().to_string(), DeleteReason::Replaced));
        }
    }
    plan.create = new_run(cron, scheduled);
    if plan.create.is_none() {
        plan.skipped = Some(Skipped::NoTemplate);
    }
    plan
}

/// The name of the run for `scheduled` (kruise: `<name>-<unix seconds>`).
pub fn run_name(cron_name: &str, scheduled: Timestamp) -> String {
    format!("{cron_name}-{}", scheduled.as_second())
}

/// The run kruise builds from the template for `scheduled`: the template's labels and
/// annotations, the `scheduled-at` annotation, the cron job as controller owner, its spec.
pub fn new_run(cron: &AdvancedCronJob, scheduled: Timestamp) -> Option<NewRun> {
    let name = cron.metadata.name.clone().unwrap_or_default();
    let owner = OwnerReference {
        api_version: "apps.kruise.io/v1beta1".into(),
        kind: "AdvancedCronJob".into(),
        name: name.clone(),
        uid: cron.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    };
    let meta = |template: Option<&ObjectMeta>| {
        let labels: BTreeMap<String, String> =
            template.and_then(|m| m.labels.clone()).unwrap_or_default();
        let mut annotations: BTreeMap<String, String> = template
            .and_then(|m| m.annotations.clone())
            .unwrap_or_default();
        annotations.insert(
            SCHEDULED_AT.to_string(),
            scheduled.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        );
        ObjectMeta {
            name: Some(run_name(&name, scheduled)),
            namespace: cron.metadata.namespace.clone(),
            labels: (!labels.is_empty()).then_some(labels),
            annotations: Some(annotations),
            owner_references: Some(vec![owner.clone()]),
            ..Default::default()
        }
    };
    let t = &cron.spec.template;
    if let Some(j) = &t.job_template {
        return Some(NewRun::Job(Box::new(Job {
            metadata: meta(j.metadata.as_ref()),
            spec: j.spec.clone(),
            status: None,
        })));
    }
    if t.image_list_pull_job_template.is_some() {
        return None;
    }
    let b = t.broadcast_job_template.as_ref()?;
    Some(NewRun::BroadcastJob(Box::new(BroadcastJob {
        metadata: meta(b.metadata.as_ref()),
        spec: BroadcastJobSpec::clone(&b.spec),
        status: None,
    })))
}

#[cfg(test)]
mod tests;
