//! The pure ImagePullJob planner: the job, the NodeImages and the clock in; the tags to write into
//! NodeImages, the job status, events and whether to delete the job out (kruise-api.md §6.1).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use graft_api::apps::common::CompletionPolicyType;
use graft_api::apps::v1alpha1::imagepulljob::{
    DEFAULT_BACKOFF_LIMIT, DEFAULT_TIMEOUT_SECONDS, ImagePullJobNodeSelector, ImagePullJobSpec,
    ImagePullJobStatus, ImagePullPolicy, normalize_image,
};
use graft_api::apps::v1alpha1::nodeimage::{ImagePullPhase, ImageTagPullPolicy};
use graft_api::field::{FieldError, FieldErrors};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, Time};
use k8s_openapi::jiff::{SignedDuration, Timestamp};

/// Extra seconds a finished tag stays on a node after the job's own TTL (kruise's
/// `--default-ttlseconds-for-always-nodeimage`).
pub const NODE_TTL_GRACE_SECONDS: i32 = 300;
/// TTL of a `Never` job's tag on a node: it is pulled again about daily.
pub const NEVER_TTL_SECONDS: i32 = 24 * 3600;
/// How often a running job is looked at again.
pub const RESYNC_RUNNING: Duration = Duration::from_secs(5);

/// Splits an image into the NodeImage key (name) and tag: `reg:5000/app:v1` is (`reg:5000/app`,
/// `v1`), `app@sha256:..` is (`app`, `sha256:..`), `app` is (`app`, `latest`).
///
/// Names are normalised as OpenKruise does (`NormalizeImageRefToNameTag`): `docker.io/library/nginx`
/// is `nginx`, and a tag next to a digest is dropped. An image that is no valid reference (the
/// job is refused before planning) is split as written.
pub fn split_image(image: &str) -> (String, String) {
    if let Ok(n) = normalize_image(image) {
        return (n.name, n.tag);
    }
    if let Some((name, digest)) = image.split_once('@') {
        return (name.to_string(), digest.to_string());
    }
    let last_slash = image.rfind('/').map_or(0, |i| i + 1);
    match image[last_slash..].rfind(':') {
        Some(c) => (
            image[..last_slash + c].to_string(),
            image[last_slash + c + 1..].to_string(),
        ),
        None => (image.to_string(), "latest".to_string()),
    }
}

/// The job as the planner needs it.
#[derive(Clone, Debug, PartialEq)]
pub struct Job {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// UID (owner of the tags it writes).
    pub uid: String,
    /// Spec with defaults applied.
    pub spec: ImagePullJobSpec,
    /// Current status.
    pub status: ImagePullJobStatus,
}

/// This job's image tag as one NodeImage has it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeTag {
    /// NodeImage (= Node) name.
    pub node: String,
    /// NodeImage labels (= Node labels).
    pub labels: BTreeMap<String, String>,
    /// The tag is in the spec: its version and whether this job is among its owners.
    pub spec: Option<(i64, bool)>,
    /// The tag's status: phase, version and message.
    pub status: Option<(ImagePullPhase, i64, Option<String>)>,
}

/// Everything the planner looks at.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    /// The job.
    pub job: Job,
    /// Every NodeImage.
    pub nodes: Vec<NodeTag>,
    /// With `podSelector`: the nodes running matching active pods.
    pub pod_nodes: Option<BTreeSet<String>>,
    /// Pull secrets as copied for the agent (namespace, name).
    pub synced_secrets: Vec<(String, String)>,
    /// The clock.
    pub now: Timestamp,
}

/// What to write into one NodeImage for this job.
#[derive(Clone, Debug, PartialEq)]
pub struct TagWrite {
    /// NodeImage name.
    pub node: String,
    /// Image name (key in `spec.images`).
    pub image: String,
    /// Tag.
    pub tag: String,
    /// New version (a new round), or `None` to only add this job as an owner.
    pub version: Option<i64>,
    /// Pull policy for the node.
    pub pull_policy: ImageTagPullPolicy,
    /// Image pull policy.
    pub image_pull_policy: ImagePullPolicy,
}

/// An Event to publish on the job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedEvent {
    /// `Normal` or `Warning`.
    pub warning: bool,
    /// Reason.
    pub reason: String,
    /// Message.
    pub note: String,
}

/// The planner's output.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// Tags to write into NodeImages.
    pub writes: Vec<TagWrite>,
    /// The job's new status.
    pub status: ImagePullJobStatus,
    /// The job's TTL has passed: delete it.
    pub delete_job: bool,
    /// Events.
    pub events: Vec<PlannedEvent>,
    /// When to look again.
    pub requeue_after: Option<Duration>,
}

fn completion_type(spec: &ImagePullJobSpec) -> CompletionPolicyType {
    spec.completion_policy
        .as_ref()
        .and_then(|c| c.type_)
        .unwrap_or_default()
}

/// The pull policy written into NodeImages (kruise's TTL rules, without the random spread).
pub fn node_pull_policy(spec: &ImagePullJobSpec) -> ImageTagPullPolicy {
    let pp = spec.pull_policy.clone().unwrap_or_default();
    let timeout = pp.timeout_seconds.unwrap_or(DEFAULT_TIMEOUT_SECONDS);
    let backoff = pp.backoff_limit.unwrap_or(DEFAULT_BACKOFF_LIMIT);
    let cp = spec.completion_policy.clone().unwrap_or_default();
    let (ttl, deadline) = match completion_type(spec) {
        CompletionPolicyType::Never => (NEVER_TTL_SECONDS, Some(i64::from(timeout.max(1800)))),
        CompletionPolicyType::Always => {
            let base = match (cp.ttl_seconds_after_finished, cp.active_deadline_seconds) {
                (Some(t), _) => t,
                (None, Some(d)) => i32::try_from(d).unwrap_or(i32::MAX),
                (None, None) => timeout.saturating_mul(backoff.saturating_add(1)),
            };
            (
                base.saturating_add(NODE_TTL_GRACE_SECONDS),
                cp.active_deadline_seconds,
            )
        }
    };
    ImageTagPullPolicy {
        timeout_seconds: Some(timeout),
        backoff_limit: Some(backoff),
        ttl_seconds_after_finished: Some(ttl),
        active_deadline_seconds: deadline,
    }
}

/// The job's node selector as a label selector (without `names`).
fn node_label_selector(sel: &ImagePullJobNodeSelector) -> LabelSelector {
    LabelSelector {
        match_labels: sel.match_labels.clone(),
        match_expressions: sel.match_expressions.clone(),
    }
}

/// The job's selectors the API server would refuse (an unknown operator, values where none
/// belong): reported on the job as invalid input, like [`ImagePullJobSpec::validate`]'s errors.
pub fn selector_errors(spec: &ImagePullJobSpec) -> FieldErrors {
    let mut errs = FieldErrors::default();
    let selectors = [
        (
            "spec.selector",
            spec.selector.as_ref().map(node_label_selector),
        ),
        ("spec.podSelector", spec.pod_selector.clone()),
    ];
    for (field, sel) in selectors {
        if let Some(Err(e)) = sel.as_ref().map(graft_api::selector::to_query) {
            errs.push(FieldError::invalid(
                &format!("{field}.matchExpressions"),
                &e.key,
                &e.reason,
            ));
        }
    }
    errs
}

/// Whether `node` is a target of the job.
fn targeted(snapshot: &Snapshot, node: &NodeTag) -> bool {
    let spec = &snapshot.job.spec;
    if let Some(pod_nodes) = &snapshot.pod_nodes {
        return pod_nodes.contains(&node.node);
    }
    match &spec.selector {
        None => true,
        // kruise: `names != nil` picks by name, so `names: []` targets no node.
        Some(sel) => match sel.names.as_ref() {
            Some(names) => names.contains(&node.node),
            None => graft_api::selector::matches(&node_label_selector(sel), &node.labels),
        },
    }
}

/// The status message kruise shows.
pub fn message(status: &ImagePullJobStatus) -> String {
    if status.completion_time.is_some() {
        return "job has completed".to_string();
    }
    if status.desired == 0 {
        return "job is running, no progress".to_string();
    }
    format!(
        "job is running, progress {:.1}%",
        100.0 * f64::from(status.succeeded + status.failed) / f64::from(status.desired)
    )
}

fn secs(n: i64) -> SignedDuration {
    SignedDuration::from_secs(n)
}

/// Plans one reconcile of an ImagePullJob.
pub fn plan(s: &Snapshot) -> Plan {
    let job = &s.job;
    let spec = &job.spec;
    let old = &job.status;
    let (image, tag) = split_image(&spec.image);
    let mut status = ImagePullJobStatus {
        start_time: old.start_time.clone().or(Some(Time(s.now))),
        completion_time: old.completion_time.clone(),
        ..Default::default()
    };
    let mut plan = Plan {
        writes: vec![],
        status: ImagePullJobStatus::default(),
        delete_job: false,
        events: vec![],
        requeue_after: None,
    };
    let cp = spec.completion_policy.clone().unwrap_or_default();
    let always = completion_type(spec) == CompletionPolicyType::Always;

    // Count the targets.
    let mut failed_nodes = Vec::new();
    let mut not_synced: Vec<&NodeTag> = Vec::new();
    let mut active = 0;
    for node in s.nodes.iter().filter(|n| targeted(s, n)) {
        status.desired += 1;
        match node.spec {
            Some((version, true)) => match &node.status {
                Some((ImagePullPhase::Succeeded, v, _)) if *v == version => status.succeeded += 1,
                Some((ImagePullPhase::Failed, v, _)) if *v == version => {
                    status.failed += 1;
                    failed_nodes.push(node.node.clone());
                }
                _ => active += 1,
            },
            _ => not_synced.push(node),
        }
    }
    status.active = active;
    failed_nodes.sort();
    status.failed_nodes = (!failed_nodes.is_empty()).then_some(failed_nodes.clone());

    // Events for nodes that failed since the last status.
    let before: BTreeSet<&String> = old.failed_nodes.iter().flatten().collect();
    for n in failed_nodes.iter().filter(|n| !before.contains(n)) {
        let msg = s
            .nodes
            .iter()
            .find(|x| &x.node == n)
            .and_then(|x| x.status.as_ref())
            .and_then(|(_, _, m)| m.clone())
            .unwrap_or_default();
        plan.events.push(PlannedEvent {
            warning: true,
            reason: "PullImageFailed".into(),
            note: format!("Failed to pull image {} on node {n}: {msg}", spec.image),
        });
    }

    // Completion (Always only).
    let mut completed_now = false;
    if always && status.completion_time.is_none() {
        let started = status.start_time.as_ref().map_or(s.now, |t| t.0);
        // kruise: the deadline only ends a job that still has nodes to do; the ones pulling and
        // the ones not started count as failed and are listed after the failed ones.
        if let Some(ad) = cp.active_deadline_seconds
            && status.desired != status.succeeded + status.failed
            && started + secs(ad) <= s.now
        {
            status.completion_time = Some(Time(s.now));
            status.failed = status.desired - status.succeeded;
            status.active = 0;
            let mut pulling: Vec<String> = s
                .nodes
                .iter()
                .filter(|n| targeted(s, n))
                .filter(|n| matches!(n.spec, Some((_, true))))
                .filter(|n| !failed_nodes.contains(&n.node))
                .filter(|n| {
                    !matches!((n.spec, &n.status), (Some((v, _)), Some((ImagePullPhase::Succeeded, sv, _))) if sv == &v)
                })
                .map(|n| n.node.clone())
                .collect();
            pulling.sort();
            let mut unsynced: Vec<String> = not_synced.iter().map(|n| n.node.clone()).collect();
            unsynced.sort();
            let all: Vec<String> = failed_nodes
                .iter()
                .cloned()
                .chain(pulling)
                .chain(unsynced)
                .collect();
            status.failed_nodes = (!all.is_empty()).then_some(all);
            status.message = Some("job exceeds activeDeadlineSeconds".into());
            plan.events.push(PlannedEvent {
                warning: true,
                reason: "DeadlineExceeded".into(),
                note: format!(
                    "Job {}/{} exceeds activeDeadlineSeconds {ad}",
                    job.namespace, job.name
                ),
            });
            completed_now = true;
        } else if status.desired == status.succeeded + status.failed {
            // kruise completes a job with no target node at once, too.
            status.completion_time = Some(Time(s.now));
            plan.events.push(PlannedEvent {
                warning: status.failed > 0,
                reason: "Completed".into(),
                note: format!(
                    "Image {} pulled on {} of {} nodes ({} failed)",
                    spec.image, status.succeeded, status.desired, status.failed
                ),
            });
            completed_now = true;
        }
    }
    if status.message.is_none() {
        status.message = if status.completion_time.is_some() && !completed_now {
            old.message.clone().or_else(|| Some(message(&status)))
        } else {
            Some(message(&status))
        };
    }
    if let Some(done) = status.completion_time.clone() {
        // A finished job keeps its last counters; only TTL matters now.
        if !completed_now {
            status.desired = old.desired;
            status.active = old.active;
            status.succeeded = old.succeeded;
            status.failed = old.failed;
            status.failed_nodes = old.failed_nodes.clone();
            plan.events.clear();
        }
        if let Some(ttl) = cp.ttl_seconds_after_finished {
            let expires = done.0 + secs(i64::from(ttl));
            if expires <= s.now {
                plan.delete_job = true;
            } else {
                let wait = expires.duration_since(s.now).as_secs().max(1);
                plan.requeue_after = Some(Duration::from_secs(u64::try_from(wait).unwrap_or(1)));
            }
        }
        plan.status = status;
        return plan;
    }

    // Write the tag into up to `parallelism - active` NodeImages that do not have it yet.
    // An integer, or a string holding one (OpenKruise accepts `"5"`); unset means 1.
    let parallelism = spec.parallelism_value().unwrap_or(1);
    let room = usize::try_from(parallelism - i64::from(active)).unwrap_or(0);
    let pull_policy = node_pull_policy(spec);
    let image_pull_policy = spec.image_pull_policy.clone().unwrap_or_default();
    for node in not_synced.into_iter().take(room) {
        let version = match (node.spec, &node.status) {
            // Another job's tag: join it; start a new round only when it is finished and this job
            // asks to pull always.
            (Some((v, false)), Some((phase, sv, _))) if *sv == v => {
                let finished = matches!(phase, ImagePullPhase::Succeeded | ImagePullPhase::Failed);
                (finished
                    && (image_pull_policy == ImagePullPolicy::Always
                        || *phase == ImagePullPhase::Failed))
                    .then_some(v + 1)
            }
            (Some(_), _) => None,
            (None, Some((_, sv, _))) => Some(sv + 1),
            (None, None) => Some(0),
        };
        plan.writes.push(TagWrite {
            node: node.node.clone(),
            image: image.clone(),
            tag: tag.clone(),
            version,
            pull_policy: pull_policy.clone(),
            image_pull_policy: image_pull_policy.clone(),
        });
    }
    plan.requeue_after = Some(RESYNC_RUNNING);
    plan.status = status;
    plan
}

#[cfg(test)]
mod tests;
