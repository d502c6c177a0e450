//! The manager side of ContainerRecreateRequest as a pure function: the request, its pod and the
//! clock in, a [`Plan`] out (kruise-api.md §7; kruise's CRR webhook and manager controller).
//!
//! graft has no mutating webhook for CRRs, so the first reconcile does what kruise's webhook does
//! at create time: it fills each container's preStop, ports and status context from the pod and
//! labels the request with the pod's node and UID (and `active=true`). A request that the webhook
//! would have rejected is completed at once with a message that starts with `rejected:`.

use std::collections::BTreeMap;
use std::time::Duration;

use graft_api::annotations::{PodNotReadyReason, PodNotReadyReasons};
use graft_api::apps::v1alpha1::ContainerRecreateRequest;
use graft_api::apps::v1alpha1::containerrecreaterequest::ContainerRecreateRequestPhase;
use graft_api::apps::v1alpha1::containerrecreaterequest::messages;
use graft_api::apps::v1alpha1::containerrecreaterequest::{
    ContainerRecreateRequestContainer, ContainerRecreateRequestContainerContext,
    ContainerRecreateRequestFailurePolicy, ContainerRecreateRequestSyncContainerStatus,
};
use graft_api::labels;
use k8s_openapi::api::core::v1::{Pod, PodCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

/// How long the manager waits for a node agent to pick a request up (kruise: 1 minute).
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(60);
/// How often the container status snapshot is refreshed while recreating (kruise: 3 s).
pub const SYNC_INTERVAL: Duration = Duration::from_secs(3);
/// `userAgent` of the request's "not ready" reason in the pod's `KruisePodReady` condition.
pub const NOT_READY_USER_AGENT: &str = "ContainerRecreateRequest";

/// Message when the pod was deleted or replaced (kruise's exact text).
pub const MSG_POD_GONE: &str = "pod has gone";
/// Message when no node agent set a phase within [`RESPONSE_TIMEOUT`] (kruise's exact text).
pub const MSG_AGENT_TIMEOUT: &str = "daemon has not responded for a long time";
/// Message when `activeDeadlineSeconds` passed (kruise's exact text).
pub const MSG_DEADLINE: &str = "recreating has exceeded the activeDeadlineSeconds";

/// What the planner looks at.
#[derive(Clone, Debug)]
pub struct Snapshot<'a> {
    /// The request.
    pub crr: &'a ContainerRecreateRequest,
    /// The pod named by `spec.podName` in the request's namespace, if it exists.
    pub pod: Option<&'a Pod>,
    /// The clock.
    pub now: Timestamp,
}

/// One write to the API server.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Fill the request from its pod (kruise's webhook work): labels node name, pod UID and
    /// `active=true`; each container's preStop/ports/statusContext; the strategy's defaults.
    Initialize {
        /// Labels to add.
        labels: BTreeMap<String, String>,
        /// The whole `spec.containers` list, filled.
        containers: Vec<ContainerRecreateRequestContainer>,
        /// `spec.strategy.terminationGracePeriodSeconds` (the pod's when the user set none).
        termination_grace_period_seconds: Option<i64>,
        /// `spec.strategy.failurePolicy` (default `Fail`).
        failure_policy: ContainerRecreateRequestFailurePolicy,
    },
    /// Status: phase `Completed`, `completionTime` now, this message.
    Complete {
        /// Why.
        message: String,
    },
    /// Annotation `crr.apps.kruise.io/sync-container-statuses` := this JSON.
    SyncContainerStatuses {
        /// The JSON list of [`ContainerRecreateRequestSyncContainerStatus`].
        value: String,
    },
    /// Add the finalizer `crr.apps.kruise.io/unready-acquired` to the request.
    AddFinalizer,
    /// Patch these conditions into the pod's status (the `KruisePodReady` not-ready reasons).
    SetPodConditions {
        /// Conditions, merged by type.
        conditions: Vec<PodCondition>,
    },
    /// Annotation `crr.apps.kruise.io/unready-acquired` := this RFC 3339 time (the agent waits
    /// `unreadyGracePeriodSeconds` from it).
    MarkUnreadyAcquired {
        /// RFC 3339 time.
        at: String,
    },
    /// Remove the finalizer `crr.apps.kruise.io/unready-acquired`.
    RemoveFinalizer,
    /// Remove the label `crr.apps.kruise.io/active` so node agents stop watching the request.
    Deactivate,
    /// Delete the request (`ttlSecondsAfterFinished` passed).
    Delete,
}

/// `Normal` or `Warning`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    /// `Normal`.
    Normal,
    /// `Warning`.
    Warning,
}

/// An Event about the request.
#[derive(Clone, Debug, PartialEq)]
pub struct PlannedEvent {
    /// `Normal` or `Warning`.
    pub type_: EventType,
    /// Short reason, e.g. `Rejected`.
    pub reason: &'static str,
    /// Human-readable note.
    pub message: String,
}

/// What to do, in order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    /// Writes, in order.
    pub actions: Vec<Action>,
    /// Events to publish.
    pub events: Vec<PlannedEvent>,
    /// Look again after this long (`None`: when something changes).
    pub requeue_after: Option<Duration>,
}

impl Plan {
    fn requeue(&mut self, after: Duration) {
        self.requeue_after = Some(self.requeue_after.map_or(after, |d| d.min(after)));
    }
}

/// Decide the next writes for one request.
pub fn plan(s: &Snapshot) -> Plan {
    let crr = s.crr;
    let mut plan = Plan::default();
    let status = crr.status.clone().unwrap_or_default();
    let crr_labels = crr.metadata.labels.clone().unwrap_or_default();
    let finished = status.completion_time.is_some()
        || status.phase == Some(ContainerRecreateRequestPhase::Completed);

    if crr.metadata.deletion_timestamp.is_some() || finished {
        if has_finalizer(crr) {
            if let Some(pod) = s.pod.filter(|p| alive(p) && has_kruise_ready_gate(p))
                && let Some(conditions) = not_ready_conditions(pod, &reason_key(crr), false, s.now)
            {
                plan.actions.push(Action::SetPodConditions { conditions });
            }
            plan.actions.push(Action::RemoveFinalizer);
        }
        if crr.metadata.deletion_timestamp.is_some() {
            return plan;
        }
        if crr_labels.contains_key(labels::CRR_ACTIVE) {
            plan.actions.push(Action::Deactivate);
        }
        if let (Some(ttl), Some(done)) = (
            crr.spec.ttl_seconds_after_finished,
            status.completion_time.as_ref(),
        ) {
            let left = left_until(done.0, i64::from(ttl), s.now);
            if left.is_zero() {
                plan.actions.push(Action::Delete);
                plan.events.push(PlannedEvent {
                    type_: EventType::Normal,
                    reason: "Deleted",
                    message: format!("deleted {ttl}s after it finished (ttlSecondsAfterFinished)"),
                });
            } else {
                plan.requeue(left);
            }
        }
        return plan;
    }

    if !initialized(crr) {
        return match initialize(s) {
            Ok(action) => {
                plan.events.push(PlannedEvent {
                    type_: EventType::Normal,
                    reason: "Initialized",
                    message: format!(
                        "pod {} on node {}: recreating {}",
                        crr.spec.pod_name,
                        s.pod
                            .and_then(|p| p.spec.as_ref())
                            .and_then(|sp| sp.node_name.as_deref())
                            .unwrap_or_default(),
                        crr.spec
                            .containers
                            .iter()
                            .map(|c| c.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                });
                plan.actions.push(action);
                plan.requeue(RESPONSE_TIMEOUT);
                plan
            }
            Err(why) => {
                let message = format!("rejected: {why}");
                plan.events.push(PlannedEvent {
                    type_: EventType::Warning,
                    reason: "Rejected",
                    message: message.clone(),
                });
                plan.actions.push(Action::Complete { message });
                plan
            }
        };
    }

    let pod_uid = crr_labels.get(labels::CRR_POD_UID);
    let Some(pod) = s
        .pod
        .filter(|p| p.metadata.deletion_timestamp.is_none() && p.metadata.uid.as_ref() == pod_uid)
    else {
        return complete(plan, "PodGone", MSG_POD_GONE);
    };

    let created = crr
        .metadata
        .creation_timestamp
        .as_ref()
        .map_or(s.now, |t| t.0);
    if status.phase.is_none() {
        let left = left_until(created, RESPONSE_TIMEOUT.as_secs() as i64, s.now);
        if left.is_zero() {
            return complete(plan, "AgentNotResponding", MSG_AGENT_TIMEOUT);
        }
        plan.requeue(left);
    }
    if let Some(deadline) = crr.spec.active_deadline_seconds {
        let left = left_until(created, deadline, s.now);
        if left.is_zero() {
            return complete(plan, "DeadlineExceeded", MSG_DEADLINE);
        }
        plan.requeue(left);
    }
    if status.phase != Some(ContainerRecreateRequestPhase::Recreating) {
        return plan;
    }

    let snapshot = sync_container_statuses(crr, pod);
    let annotations = crr.metadata.annotations.clone().unwrap_or_default();
    if annotations
        .get(labels::CRR_SYNC_CONTAINER_STATUSES)
        .map(String::as_str)
        != Some(snapshot.as_str())
    {
        plan.actions
            .push(Action::SyncContainerStatuses { value: snapshot });
    }
    // Pod events may lag (e.g. during postStart): look again soon while recreating.
    plan.requeue(SYNC_INTERVAL);

    let wants_unready = crr
        .spec
        .strategy
        .as_ref()
        .and_then(|st| st.unready_grace_period_seconds)
        .is_some();
    if wants_unready
        && annotations
            .get(labels::CRR_UNREADY_ACQUIRED)
            .is_none_or(|v| v.is_empty())
    {
        // Finalizer first, then the pod condition, then the annotation the agent waits for: a
        // crash in between leaves nothing the release path cannot undo.
        if has_kruise_ready_gate(pod) {
            if !has_finalizer(crr) {
                plan.actions.push(Action::AddFinalizer);
            }
            if let Some(conditions) = not_ready_conditions(pod, &reason_key(crr), true, s.now) {
                plan.actions.push(Action::SetPodConditions { conditions });
            }
        }
        plan.actions.push(Action::MarkUnreadyAcquired {
            at: s.now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        });
        plan.events.push(PlannedEvent {
            type_: EventType::Normal,
            reason: "PodNotReady",
            message: if has_kruise_ready_gate(pod) {
                format!("pod {} marked not ready before recreating", crr.spec.pod_name)
            } else {
                format!(
                    "pod {} has no {} readiness gate: not marked not ready, only waiting unreadyGracePeriodSeconds",
                    crr.spec.pod_name,
                    labels::KRUISE_POD_READY
                )
            },
        });
    }
    plan
}

fn complete(mut plan: Plan, reason: &'static str, message: &str) -> Plan {
    plan.actions.push(Action::Complete {
        message: message.to_string(),
    });
    plan.events.push(PlannedEvent {
        type_: EventType::Warning,
        reason,
        message: message.to_string(),
    });
    plan
}

/// Time left until `start + seconds`, zero when passed.
fn left_until(start: Timestamp, seconds: i64, now: Timestamp) -> Duration {
    let end = start
        .saturating_add(SignedDuration::from_secs(seconds))
        .unwrap_or(start);
    let left = end.duration_since(now);
    if left.is_negative() || left.is_zero() {
        Duration::ZERO
    } else {
        left.unsigned_abs()
    }
}

/// The request was filled from its pod (by graft, or by kruise's webhook).
pub fn initialized(crr: &ContainerRecreateRequest) -> bool {
    let labels = crr.metadata.labels.clone().unwrap_or_default();
    labels.contains_key(labels::CRR_POD_UID)
        && labels.contains_key(labels::CRR_NODE_NAME)
        && crr
            .spec
            .containers
            .iter()
            .all(|c| c.status_context.is_some())
}

/// kruise's webhook checks and fill, in kruise's order and with its messages (the first failed
/// check wins, as in the webhook); `Err` says why the request cannot run.
fn initialize(s: &Snapshot) -> Result<Action, String> {
    let crr = s.crr;
    // Per-container checks (duplicates) come after the pod lookup in kruise.
    if let Some(e) = crr
        .spec
        .validate()
        .iter()
        .find(|e| !e.field.starts_with("spec.containers["))
    {
        return Err(e.detail.clone());
    }
    let pod_name = &crr.spec.pod_name;
    let Some(pod) = s.pod else {
        return Err(format!("no found Pod named {pod_name}"));
    };
    let phase = pod.status.as_ref().and_then(|st| st.phase.as_deref());
    let active =
        pod.metadata.deletion_timestamp.is_none() && !matches!(phase, Some("Succeeded" | "Failed"));
    let spec = pod.spec.clone().unwrap_or_default();
    let node = spec.node_name.clone().filter(|n| !n.is_empty());
    if !active && !terminated_by_sidecar_terminator(pod) {
        return Err("not allowed to recreate containers in an inactive Pod".into());
    }
    let Some(node) = node else {
        return Err("not allowed to recreate containers in a pending Pod".into());
    };
    let statuses = pod
        .status
        .as_ref()
        .and_then(|st| st.container_statuses.clone())
        .unwrap_or_default();
    let mut containers = Vec::with_capacity(crr.spec.containers.len());
    for (i, c) in crr.spec.containers.iter().enumerate() {
        if crr.spec.containers[..i].iter().any(|o| o.name == c.name) {
            return Err(messages::duplicate_container(&c.name));
        }
        if c.pre_stop.is_some() || c.ports.is_some() || c.status_context.is_some() {
            return Err(messages::READ_ONLY_FIELDS.into());
        }
        let Some(pc) = spec.containers.iter().find(|pc| pc.name == c.name) else {
            return Err(format!("container {} not found in Pod", c.name));
        };
        let Some(cs) = statuses.iter().find(|cs| cs.name == c.name) else {
            return Err(format!(
                "not found {} containerStatus in Pod Status",
                c.name
            ));
        };
        let container_id = cs.container_id.clone().unwrap_or_default();
        if container_id.is_empty() {
            return Err(format!(
                "no containerID in {} containerStatus, maybe the container has not been initialized",
                c.name
            ));
        }
        let pre_stop = pc.lifecycle.as_ref().and_then(|l| l.pre_stop.clone());
        let ports = if pre_stop.as_ref().is_some_and(|p| p.http_get.is_some()) {
            pc.ports.clone()
        } else {
            None
        };
        containers.push(ContainerRecreateRequestContainer {
            name: c.name.clone(),
            pre_stop,
            ports,
            status_context: Some(ContainerRecreateRequestContainerContext {
                container_id,
                restart_count: cs.restart_count,
            }),
        });
    }
    let strategy = crr.spec.strategy.clone().unwrap_or_default();
    Ok(Action::Initialize {
        labels: BTreeMap::from([
            (labels::CRR_NODE_NAME.to_string(), node),
            (
                labels::CRR_POD_UID.to_string(),
                pod.metadata.uid.clone().unwrap_or_default(),
            ),
            (labels::CRR_ACTIVE.to_string(), "true".to_string()),
        ]),
        containers,
        termination_grace_period_seconds: strategy
            .termination_grace_period_seconds
            .or(spec.termination_grace_period_seconds),
        failure_policy: strategy.failure_policy.unwrap_or_default(),
    })
}

/// The pod carries condition `SidecarTerminated` (kruise's SidecarTerminator stopped its main
/// containers): kruise's webhook lets CRRs through for such inactive pods, to kill sidecars.
fn terminated_by_sidecar_terminator(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|st| st.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "SidecarTerminated"))
}

/// kruise's snapshot: the requested containers that run and started after the request was made.
fn sync_container_statuses(crr: &ContainerRecreateRequest, pod: &Pod) -> String {
    let created = crr.metadata.creation_timestamp.as_ref().map(|t| t.0);
    let statuses = pod
        .status
        .as_ref()
        .and_then(|st| st.container_statuses.as_ref());
    let list: Vec<ContainerRecreateRequestSyncContainerStatus> = crr
        .spec
        .containers
        .iter()
        .filter_map(|c| statuses?.iter().find(|cs| cs.name == c.name))
        .filter(|cs| {
            let started = cs
                .state
                .as_ref()
                .and_then(|st| st.running.as_ref())
                .and_then(|r| r.started_at.as_ref())
                .map(|t| t.0);
            match (started, created) {
                (Some(started), Some(created)) => started >= created,
                (Some(_), None) => true,
                (None, _) => false,
            }
        })
        .map(|cs| ContainerRecreateRequestSyncContainerStatus {
            name: cs.name.clone(),
            ready: cs.ready,
            restart_count: cs.restart_count,
            container_id: cs.container_id.clone().unwrap_or_default(),
        })
        .collect();
    serde_json::to_string(&list).unwrap_or_else(|_| "[]".to_string())
}

/// Parses the annotation `crr.apps.kruise.io/sync-container-statuses` (absent or bad: empty).
pub fn parse_sync_container_statuses(
    crr: &ContainerRecreateRequest,
) -> Vec<ContainerRecreateRequestSyncContainerStatus> {
    crr.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(labels::CRR_SYNC_CONTAINER_STATUSES))
        .and_then(|v| serde_json::from_str(v).ok())
        .unwrap_or_default()
}

fn has_finalizer(crr: &ContainerRecreateRequest) -> bool {
    crr.metadata
        .finalizers
        .iter()
        .flatten()
        .any(|f| f == labels::CRR_UNREADY_ACQUIRED)
}

fn alive(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
}

/// `<namespace>/<name>`: the request's key among the pod's not-ready reasons.
pub fn reason_key(crr: &ContainerRecreateRequest) -> String {
    format!(
        "{}/{}",
        crr.metadata.namespace.as_deref().unwrap_or_default(),
        crr.metadata.name.as_deref().unwrap_or_default()
    )
}

/// Whether the pod has the `KruisePodReady` readiness gate (only then is it marked not ready).
pub fn has_kruise_ready_gate(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.readiness_gates.as_ref())
        .is_some_and(|g| {
            g.iter()
                .any(|g| g.condition_type == labels::KRUISE_POD_READY)
        })
}

/// The pod conditions that add (or remove) this request's reason in `KruisePodReady`, keeping
/// other writers' reasons; `None` when nothing changes. Adding also sets `Ready=False`, as kruise
/// does, so the pod leaves its Services at once rather than at the kubelet's next status sync.
pub fn not_ready_conditions(
    pod: &Pod,
    key: &str,
    add: bool,
    now: Timestamp,
) -> Option<Vec<PodCondition>> {
    let current = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == labels::KRUISE_POD_READY));
    let mut reasons: PodNotReadyReasons = current
        .and_then(|c| c.message.as_deref())
        .filter(|m| !m.is_empty())
        .and_then(|m| serde_json::from_str(m).ok())
        .unwrap_or_default();
    let present = reasons
        .iter()
        .any(|r| r.user_agent == NOT_READY_USER_AGENT && r.key == key);
    if add {
        if present && current.is_some_and(|c| c.status == "False") {
            return None;
        }
        if !present {
            reasons.push(PodNotReadyReason {
                user_agent: NOT_READY_USER_AGENT.to_string(),
                key: key.to_string(),
            });
        }
    } else {
        if !present {
            return None;
        }
        reasons.retain(|r| !(r.user_agent == NOT_READY_USER_AGENT && r.key == key));
    }
    let status = if reasons.is_empty() { "True" } else { "False" };
    let mut conditions = vec![PodCondition {
        type_: labels::KRUISE_POD_READY.to_string(),
        status: status.to_string(),
        message: Some(serde_json::to_string(&reasons).unwrap_or_else(|_| "[]".into())),
        last_transition_time: Some(Time(now)),
        ..Default::default()
    }];
    if add {
        conditions.push(PodCondition {
            type_: "Ready".to_string(),
            status: "False".to_string(),
            reason: Some("ReadinessGatesNotReady".to_string()),
            last_transition_time: Some(Time(now)),
            ..Default::default()
        });
    }
    Some(conditions)
}

#[cfg(test)]
mod tests;
