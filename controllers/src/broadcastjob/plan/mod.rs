//! The BroadcastJob reconcile as a pure function: the job, its pods, the nodes and the clock in,
//! a [`Plan`] out (kruise-api.md §5; kruise's `ReconcileBroadcastJob.Reconcile`).
//!
//! The rules, in kruise's order:
//! - a finished job (`Always`, a `Complete` or `Failed` condition) is only deleted once
//!   `ttlSecondsAfterFinished` has passed since `completionTime`;
//! - `startTime` is set on the first reconcile, the phase starts `running`;
//! - every node the job's pod fits ([`super::fitness`]) is desired; a pod on a node it no longer
//!   fits is deleted; a desired node without a pod gets one, at most `parallelism − active` at a
//!   time, created in slow-start batches (1, 2, 4, ...);
//! - failed pods (phase Failed, or OnFailure pods whose containers restarted more than
//!   `restartLimit` times in total): `Pause` sets `spec.paused`, `FailFast` fails the job,
//!   `Continue` goes on; `activeDeadlineSeconds` past `startTime` fails an `Always` job too; a
//!   failed job's active pods are deleted;
//! - an `Always` job completes when every desired node has a finished pod; `Never` never does.

use std::collections::BTreeMap;
use std::time::Duration;

use graft_api::apps::common::CompletionPolicyType;
use graft_api::apps::v1beta1::BroadcastJob;
use graft_api::apps::v1beta1::broadcastjob::{
    BroadcastJobPhase, BroadcastJobStatus, FailurePolicyType, JobCondition,
};
use graft_api::labels;
use k8s_openapi::api::core::v1::{
    Affinity, Node, NodeAffinity, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, Pod,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use super::fitness;

#[cfg(test)]
mod tests;

/// kruise's `SlowStartInitialBatchSize`: the first creation batch.
pub const SLOW_START_INITIAL_BATCH: usize = 1;
/// Reason and message of the FailFast failure (kruise's exact words).
pub const FAIL_FAST_REASON: &str = "failed pod is found";
/// Message of the FailFast failure.
pub const FAIL_FAST_MESSAGE: &str =
    "failure policy is FailurePolicyTypeFailFast and failed pod is found";
/// Event reason of a failure by `activeDeadlineSeconds`.
pub const DEADLINE_REASON: &str = "DeadlineExceeded";
/// Field selector key of a node's name in node affinity.
pub const NODE_NAME_FIELD: &str = "metadata.name";

/// What the planner looks at.
#[derive(Clone, Debug)]
pub struct Snapshot<'a> {
    /// The job.
    pub job: &'a BroadcastJob,
    /// Its pods: labelled with its uid and controlled by it.
    pub pods: Vec<&'a Pod>,
    /// Every node of the cluster.
    pub nodes: Vec<&'a Node>,
    /// The clock.
    pub now: Timestamp,
}

/// `Normal` or `Warning`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    /// `Normal`.
    Normal,
    /// `Warning`.
    Warning,
}

/// An Event about the job.
#[derive(Clone, Debug, PartialEq)]
pub struct PlannedEvent {
    /// `Normal` or `Warning`.
    pub type_: EventType,
    /// kruise's reason, e.g. `JobComplete`.
    pub reason: &'static str,
    /// kruise's message.
    pub message: String,
}

impl PlannedEvent {
    fn normal(reason: &'static str, message: impl Into<String>) -> Self {
        PlannedEvent {
            type_: EventType::Normal,
            reason,
            message: message.into(),
        }
    }
    fn warning(reason: &'static str, message: impl Into<String>) -> Self {
        PlannedEvent {
            type_: EventType::Warning,
            reason,
            message: message.into(),
        }
    }
}

/// A pod to create for a node.
#[derive(Clone, Debug, PartialEq)]
pub struct NewPod {
    /// The node it is for.
    pub node: String,
    /// The pod (generateName `<job>-`).
    pub pod: Pod,
}

/// What to do, in order: events before, delete the job or pods, create pods batch by batch,
/// set `spec.paused`, write the status, events after.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    /// Delete the job (`ttlSecondsAfterFinished` passed).
    pub delete_job: bool,
    /// Events published before any write.
    pub events_before: Vec<PlannedEvent>,
    /// Pods to delete (by name), each with a `SuccessfulDelete` Event.
    pub deletions: Vec<String>,
    /// Pods to create, in slow-start batches: a batch with a failure stops the rest.
    pub creations: Vec<Vec<NewPod>>,
    /// Set `spec.paused: true` (failurePolicy `Pause`).
    pub set_paused: bool,
    /// The status as it should be once every write succeeded; written when it differs.
    pub status: Option<BroadcastJobStatus>,
    /// Events published after the writes.
    pub events_after: Vec<PlannedEvent>,
    /// Look again after this long (`None`: when something changes).
    pub requeue_after: Option<Duration>,
}

impl Plan {
    fn requeue(&mut self, after: Duration) {
        self.requeue_after = Some(self.requeue_after.map_or(after, |d| d.min(after)));
    }

    /// Every pod to create, batches flattened.
    pub fn created_nodes(&self) -> Vec<&str> {
        self.creations
            .iter()
            .flatten()
            .map(|p| p.node.as_str())
            .collect()
    }
}

/// `namespace/name` of the job.
pub fn job_key(job: &BroadcastJob) -> String {
    format!(
        "{}/{}",
        job.metadata.namespace.as_deref().unwrap_or_default(),
        job.metadata.name.as_deref().unwrap_or_default()
    )
}

/// The job's completion policy type (default `Always`).
fn completion_type(job: &BroadcastJob) -> CompletionPolicyType {
    job.spec
        .completion_policy
        .as_ref()
        .and_then(|c| c.type_)
        .unwrap_or_default()
}

/// kruise's `IsJobFinished`: an `Always` job with a true `Complete` or `Failed` condition.
pub fn is_finished(job: &BroadcastJob) -> bool {
    if completion_type(job) == CompletionPolicyType::Never {
        return false;
    }
    job.status
        .iter()
        .flat_map(|s| s.conditions.iter().flatten())
        .any(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
}

/// The node a pod is for: `spec.nodeName`, else the `metadata.name In [node]` field
/// requirement of its required node affinity (kruise's `getAssignedNode`).
pub fn assigned_node(pod: &Pod) -> String {
    let Some(spec) = &pod.spec else {
        return String::new();
    };
    if let Some(n) = spec.node_name.as_deref().filter(|n| !n.is_empty()) {
        return n.to_string();
    }
    spec.affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|na| {
            na.required_during_scheduling_ignored_during_execution
                .as_ref()
        })
        .into_iter()
        .flat_map(|s| s.node_selector_terms.iter())
        .flat_map(|t| t.match_fields.iter().flatten())
        .find_map(|r| match r.values.as_deref() {
            Some([one]) if r.key == NODE_NAME_FIELD && r.operator == "In" => Some(one.clone()),
            _ => None,
        })
        .unwrap_or_default()
}

fn phase_of(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or_default()
}

/// kruise's `IsPodActive`: not Succeeded, not Failed, not being deleted.
fn is_active(pod: &Pod) -> bool {
    !matches!(phase_of(pod), "Succeeded" | "Failed") && pod.metadata.deletion_timestamp.is_none()
}

/// kruise's `isPodFailed`: an OnFailure pod whose (init) containers restarted more than
/// `restart_limit` times in total.
pub fn exceeded_restart_limit(restart_limit: i32, pod: &Pod) -> bool {
    let on_failure =
        pod.spec.as_ref().and_then(|s| s.restart_policy.as_deref()) == Some("OnFailure");
    if !on_failure {
        return false;
    }
    let status = pod.status.as_ref();
    let restarts: i64 = status
        .into_iter()
        .flat_map(|s| {
            s.init_container_statuses
                .iter()
                .flatten()
                .chain(s.container_statuses.iter().flatten())
        })
        .map(|c| i64::from(c.restart_count))
        .sum();
    restarts > i64::from(restart_limit)
}

/// Pods sorted by kruise's `filterPods`: (active, failed, succeeded). Pods being deleted that
/// have not finished count in none.
pub fn filter_pods<'a>(
    restart_limit: i32,
    pods: &[&'a Pod],
) -> (Vec<&'a Pod>, Vec<&'a Pod>, Vec<&'a Pod>) {
    let (mut active, mut failed, mut succeeded) = (Vec::new(), Vec::new(), Vec::new());
    for p in pods {
        match phase_of(p) {
            "Succeeded" => succeeded.push(*p),
            "Failed" => failed.push(*p),
            _ if p.metadata.deletion_timestamp.is_none() => {
                if exceeded_restart_limit(restart_limit, p) {
                    failed.push(*p);
                } else {
                    active.push(*p);
                }
            }
            _ => {}
        }
    }
    (active, failed, succeeded)
}

/// `parallelism` as a number of pods for `desired` nodes: an int, or a percent rounded up
/// (kruise's `GetValueFromIntOrPercent(.., roundUp=true)`); unset is MaxInt32. `None` for a
/// value that does not parse.
pub fn parallelism(value: Option<&IntOrString>, desired: i32) -> Option<i32> {
    match value {
        None => Some(i32::MAX),
        Some(IntOrString::Int(i)) => Some(*i),
        Some(IntOrString::String(s)) => {
            let p: i64 = s.strip_suffix('%')?.parse().ok()?;
            let v = (p * i64::from(desired) + 99).div_euclid(100);
            i32::try_from(v).ok()
        }
    }
}

/// The pod spec kruise checks a node against before the job has a pod there: the template's,
/// with `nodeName` set to the node (kruise's `NewMockPod`).
fn mock_spec(job: &BroadcastJob, node: &str) -> k8s_openapi::api::core::v1::PodSpec {
    let mut spec = job.spec.template.spec.clone().unwrap_or_default();
    spec.node_name = Some(node.to_string());
    spec
}

/// Whether a new pod of `job` would fit `node`.
pub fn job_fits_node(job: &BroadcastJob, node: &Node) -> bool {
    let name = node.metadata.name.as_deref().unwrap_or_default();
    fitness::check(&mock_spec(job, name), node).is_ok()
}

/// The job's labels on its pods: `broadcastjob-name` and `broadcastjob-controller-uid`.
pub fn pod_labels(job: &BroadcastJob) -> BTreeMap<String, String> {
    BTreeMap::from([
        (
            labels::BROADCASTJOB_NAME.to_string(),
            job.metadata.name.clone().unwrap_or_default(),
        ),
        (
            labels::BROADCASTJOB_CONTROLLER_UID.to_string(),
            job.metadata.uid.clone().unwrap_or_default(),
        ),
    ])
}

/// The controller reference on the job's pods (kruise's `controllerKind`, v1beta1).
pub fn owner_reference(job: &BroadcastJob) -> OwnerReference {
    OwnerReference {
        api_version: "apps.kruise.io/v1beta1".to_string(),
        kind: "BroadcastJob".to_string(),
        name: job.metadata.name.clone().unwrap_or_default(),
        uid: job.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// Kubernetes' `ReplaceDaemonSetPodNodeNameNodeAffinity`: the required node affinity becomes
/// one term `metadata.name In [node]` (replacing any terms there were); preferred terms and
/// pod (anti-)affinity stay.
pub fn pin_to_node(affinity: Option<Affinity>, node: &str) -> Affinity {
    let selector = NodeSelector {
        node_selector_terms: vec![NodeSelectorTerm {
            match_fields: Some(vec![NodeSelectorRequirement {
                key: NODE_NAME_FIELD.to_string(),
                operator: "In".to_string(),
                values: Some(vec![node.to_string()]),
            }]),
            ..Default::default()
        }],
    };
    let mut affinity = affinity.unwrap_or_default();
    let node_affinity = affinity
        .node_affinity
        .get_or_insert_with(NodeAffinity::default);
    node_affinity.required_during_scheduling_ignored_during_execution = Some(selector);
    affinity
}

/// The pod kruise's `createPod` makes for `node`: the template's labels (plus the job's),
/// annotations, finalizers and spec, `generateName: <job>-`, the controller reference, pinned
/// to the node by required node affinity for the default scheduler to bind.
pub fn new_pod(job: &BroadcastJob, node: &str) -> Pod {
    let template = &job.spec.template;
    let tmeta = template.metadata.clone().unwrap_or_default();
    let mut pod_labels_all = tmeta.labels.clone().unwrap_or_default();
    pod_labels_all.extend(pod_labels(job));
    let name = job.metadata.name.clone().unwrap_or_default();
    let mut spec = template.spec.clone().unwrap_or_default();
    spec.affinity = Some(pin_to_node(spec.affinity.take(), node));
    Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!("{name}-")),
            namespace: job.metadata.namespace.clone(),
            labels: Some(pod_labels_all),
            annotations: tmeta.annotations.clone(),
            finalizers: tmeta.finalizers.clone(),
            owner_references: Some(vec![owner_reference(job)]),
            ..Default::default()
        },
        spec: Some(spec),
        status: None,
    }
}

fn condition(type_: &str, message: String, now: Timestamp) -> JobCondition {
    JobCondition {
        type_: type_.to_string(),
        status: "True".to_string(),
        last_probe_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
        // kruise's `newCondition(type, string(type), message)`: the reason is the type.
        reason: Some(type_.to_string()),
        message: Some(message),
    }
}

fn seconds(s: i64) -> Duration {
    Duration::from_secs(u64::try_from(s).unwrap_or(0))
}

/// Time from `since` to `now`, zero if `now` is earlier.
fn elapsed(since: Timestamp, now: Timestamp) -> SignedDuration {
    now.duration_since(since)
}

/// Marks the status finished (kruise's `finishJob`): the condition, `completionTime`, and the
/// TTL requeue (one second past it, as kruise).
fn finish(
    job: &BroadcastJob,
    status: &mut BroadcastJobStatus,
    plan: &mut Plan,
    type_: &str,
    message: String,
    now: Timestamp,
) {
    status
        .conditions
        .get_or_insert_with(Vec::new)
        .push(condition(type_, message, now));
    status.completion_time = Some(Time(now));
    if let Some(ttl) = job
        .spec
        .completion_policy
        .as_ref()
        .and_then(|c| c.ttl_seconds_after_finished)
    {
        plan.requeue(seconds(i64::from(ttl) + 1));
    }
}

/// Decide one reconcile of a BroadcastJob.
pub fn plan(s: &Snapshot) -> Plan {
    let job = s.job;
    let now = s.now;
    let spec = job.spec.defaulted();
    let mut plan = Plan::default();
    let completion = spec.completion_policy.clone().unwrap_or_default();
    let ns = job.metadata.namespace.clone().unwrap_or_default();
    let name = job.metadata.name.clone().unwrap_or_default();

    if is_finished(job) {
        let completed_at = job
            .status
            .as_ref()
            .and_then(|st| st.completion_time.as_ref());
        if let (Some(ttl), Some(at)) = (completion.ttl_seconds_after_finished, completed_at) {
            let left = SignedDuration::from_secs(i64::from(ttl)) - elapsed(at.0, now);
            if left <= SignedDuration::ZERO {
                plan.delete_job = true;
            } else {
                plan.requeue(Duration::try_from(left).unwrap_or(Duration::ZERO));
            }
        }
        return plan;
    }

    let mut status = job.status.clone().unwrap_or_default();
    let always = completion.type_.unwrap_or_default() == CompletionPolicyType::Always;
    let start = match &status.start_time {
        Some(t) => t.0,
        None => {
            status.start_time = Some(Time(now));
            now
        }
    };
    // kruise requeues for the deadline only when it sets startTime (#1409); graft also when
    // it reconciles later, so the deadline holds after a restart.
    let deadline = completion.active_deadline_seconds.filter(|_| always);
    if let Some(d) = deadline {
        let left = SignedDuration::from_secs(d) - elapsed(start, now);
        if left > SignedDuration::ZERO {
            plan.requeue(Duration::try_from(left).unwrap_or(Duration::ZERO));
        }
    }
    if status.phase.is_none() {
        status.phase = Some(BroadcastJobPhase::Running);
    }

    // Node → pod; duplicates are reported, the last (by name) kept.
    let mut pods = s.pods.clone();
    pods.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let mut by_node: BTreeMap<String, &Pod> = BTreeMap::new();
    for p in &pods {
        let node = assigned_node(p);
        if by_node.contains_key(&node) {
            plan.events_before.push(PlannedEvent::warning(
                "DuplicatePodCreatedOnSameNode",
                format!(
                    "Duplicated pod {} found on same node {node}",
                    p.metadata.name.as_deref().unwrap_or_default()
                ),
            ));
        }
        by_node.insert(node, p);
    }

    let failure = spec.failure_policy.clone().unwrap_or_default();
    let restart_limit = failure.restart_limit.unwrap_or(0);
    let (active_pods, failed_pods, succeeded_pods) = filter_pods(restart_limit, &pods);
    let mut active = count(active_pods.len());
    let mut failed = count(failed_pods.len());
    let succeeded = count(succeeded_pods.len());

    // desired: node → its pod (None: none yet); rest: nodes to create a pod on.
    let mut nodes = s.nodes.clone();
    nodes.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let mut desired_nodes: BTreeMap<String, Option<&Pod>> = BTreeMap::new();
    let mut rest: Vec<String> = Vec::new();
    let mut to_delete: Vec<&Pod> = Vec::new();
    for node in &nodes {
        let node_name = node.metadata.name.clone().unwrap_or_default();
        match by_node.get(&node_name) {
            Some(pod) => {
                let pod_spec = pod.spec.clone().unwrap_or_default();
                let fits = fitness::check(&pod_spec, node);
                if let Err(why) = &fits
                    && pod.metadata.deletion_timestamp.is_none()
                {
                    tracing::debug!(job = %job_key(job), node = %node_name, reason = %why, "pod no longer fits its node");
                    to_delete.push(pod);
                    continue;
                }
                desired_nodes.insert(node_name, Some(*pod));
            }
            None => {
                if job_fits_node(job, node) {
                    rest.push(node_name.clone());
                    desired_nodes.insert(node_name, None);
                }
            }
        }
    }
    let desired = count(desired_nodes.len());
    status.active = active;
    status.failed = failed;
    status.succeeded = succeeded;
    status.desired = desired;

    let paused = spec.paused.unwrap_or(false);
    let phase = status.phase;
    if phase == Some(BroadcastJobPhase::Failed) {
        return with_status(plan, job, status);
    }
    if paused
        && matches!(
            phase,
            Some(BroadcastJobPhase::Running | BroadcastJobPhase::Paused)
        )
    {
        status.phase = Some(BroadcastJobPhase::Paused);
        return with_status(plan, job, status);
    }
    if !paused && phase == Some(BroadcastJobPhase::Paused) {
        status.phase = Some(BroadcastJobPhase::Running);
        plan.events_before
            .push(PlannedEvent::normal("Continue", "continue to process job"));
    }

    let mut failure_reason: Option<(&'static str, String)> = None;
    if failed > 0 {
        match failure.type_.unwrap_or_default() {
            FailurePolicyType::Pause => {
                plan.events_before.push(PlannedEvent::warning(
                    "Paused",
                    "job is paused, due to failed pod",
                ));
                plan.set_paused = true;
                status.phase = Some(BroadcastJobPhase::Paused);
                return with_status(plan, job, status);
            }
            FailurePolicyType::FailFast => {
                plan.events_before.push(PlannedEvent::warning(
                    FAIL_FAST_REASON,
                    format!(
                        "{FAIL_FAST_MESSAGE}: {succeeded} pods succeeded, {failed} pods failed"
                    ),
                ));
                failure_reason = Some((FAIL_FAST_REASON, FAIL_FAST_MESSAGE.to_string()));
            }
            FailurePolicyType::Continue => {}
        }
    }
    if failure_reason.is_none()
        && let Some(d) = deadline
        && elapsed(start, now) >= SignedDuration::from_secs(d)
    {
        failure_reason = Some((
            DEADLINE_REASON,
            format!("Job {ns}/{name} was active longer than specified deadline"),
        ));
    }

    if let Some((reason, message)) = failure_reason {
        for p in &active_pods {
            plan.deletions
                .push(p.metadata.name.clone().unwrap_or_default());
            failed += 1;
            active -= 1;
        }
        status.phase = Some(BroadcastJobPhase::Failed);
        finish(job, &mut status, &mut plan, "Failed", message.clone(), now);
        plan.events_after.push(PlannedEvent::warning(
            reason,
            format!("{message}: {succeeded} pods succeeded, {failed} pods failed"),
        ));
    } else {
        for p in &to_delete {
            plan.deletions
                .push(p.metadata.name.clone().unwrap_or_default());
            failed += 1;
            active -= 1;
        }
        if job.metadata.deletion_timestamp.is_none() && !rest.is_empty() {
            match parallelism(spec.parallelism.as_ref(), desired) {
                Some(limit) if active > limit => {
                    plan.events_before.push(PlannedEvent::warning(
                        "TooManyActivePods",
                        "Number of active pods exceed parallelism limit",
                    ));
                }
                Some(limit) if active < limit => {
                    let room = usize::try_from(limit - active).unwrap_or(0);
                    let mut todo: Vec<NewPod> = rest
                        .iter()
                        .take(room)
                        .map(|n| NewPod {
                            node: n.clone(),
                            pod: new_pod(job, n),
                        })
                        .collect();
                    active += count(todo.len());
                    let mut batch = SLOW_START_INITIAL_BATCH;
                    while !todo.is_empty() {
                        let n = batch.min(todo.len());
                        plan.creations.push(todo.drain(..n).collect());
                        batch *= 2;
                    }
                }
                Some(_) => {}
                None => {
                    tracing::warn!(job = %job_key(job), "parallelism is neither an int nor a percent");
                }
            }
        }
        let complete = always
            && !desired_nodes.is_empty()
            && desired_nodes
                .values()
                .all(|p| p.is_some_and(|p| !is_active(p)));
        if complete {
            status.phase = Some(BroadcastJobPhase::Completed);
            finish(
                job,
                &mut status,
                &mut plan,
                "Complete",
                format!("Job completed, {succeeded} pods succeeded, {failed} pods failed"),
                now,
            );
            plan.events_after.push(PlannedEvent::normal(
                "JobComplete",
                format!(
                    "Job {ns}/{name} is completed, {succeeded} pods succeeded, {failed} pods failed"
                ),
            ));
        }
    }
    status.failed = failed;
    status.active = active;
    with_status(plan, job, status)
}

fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// The plan with the status to write, when it differs from the job's.
fn with_status(mut plan: Plan, job: &BroadcastJob, status: BroadcastJobStatus) -> Plan {
    if job.status.as_ref() != Some(&status) {
        plan.status = Some(status);
    }
    plan
}
