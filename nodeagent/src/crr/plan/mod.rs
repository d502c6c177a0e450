//! What the node agent does next for one pod's ContainerRecreateRequests, as a pure function:
//! the pod's active requests, the pod, its containers as the runtime lists them, and the clock
//! in; status writes and at most one container kill out (kruise-api.md §7, kruise-daemon's
//! `containerrecreate` controller).
//!
//! Requests for one pod run one at a time, oldest first; the others wait in `Pending` with a
//! message naming the one they wait for. Each container of the running request goes
//! `Pending` → `Recreating` (killed, or found exited) → `Succeeded` (a new container runs, is
//! ready and has run `minStartedSeconds`) or `Failed` (the kill failed).

use std::time::Duration;

use crate::events::PodRef;
use graft_api::apps::v1alpha1::ContainerRecreateRequest;
use graft_api::apps::v1alpha1::containerrecreaterequest::{
    ContainerRecreateRequestContainerRecreateState as State, ContainerRecreateRequestFailurePolicy,
    ContainerRecreateRequestPhase as Phase,
};
use graft_api::labels;
use k8s_openapi::api::core::v1::{ContainerPort, LifecycleHandler, Pod};
use k8s_openapi::jiff::{SignedDuration, Timestamp};

/// kubelet's default `terminationGracePeriodSeconds`.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(30);
/// How often a request that waits for something outside the agent's watch is looked at again.
pub const POLL: Duration = Duration::from_secs(1);
/// The state message of a container the runtime does not list (kruise's exact text).
pub const MSG_NOT_FOUND_ON_NODE: &str = "not found container on Node";

/// Where a runtime container is (CRI `ContainerState`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuntimeState {
    /// Created, not started.
    Created,
    /// Running.
    Running,
    /// Exited.
    Exited,
    /// Unknown.
    Unknown,
}

/// One container of the pod as the runtime lists it.
#[derive(Clone, Debug, PartialEq)]
pub struct RuntimeContainer {
    /// Container name in the pod spec (CRI metadata name).
    pub name: String,
    /// Runtime ID without the `containerd://` prefix.
    pub id: String,
    /// Restart attempt (CRI metadata attempt).
    pub attempt: u32,
    /// State.
    pub state: RuntimeState,
    /// Creation time, nanoseconds since the epoch.
    pub created_at: i64,
}

/// What the planner looks at: one pod's active requests on this node.
#[derive(Clone, Debug)]
pub struct Snapshot<'a> {
    /// The pod's active requests (any order).
    pub requests: Vec<&'a ContainerRecreateRequest>,
    /// The pod, if it exists.
    pub pod: Option<&'a Pod>,
    /// The pod's containers as listed by the runtime (every attempt).
    pub runtime: Vec<RuntimeContainer>,
    /// The clock.
    pub now: Timestamp,
}

/// How to stop one container.
#[derive(Clone, Debug, PartialEq)]
pub struct Kill {
    /// Container name.
    pub container: String,
    /// Runtime ID (no prefix).
    pub container_id: String,
    /// preStop handler to run first.
    pub pre_stop: Option<LifecycleHandler>,
    /// The container's ports (to resolve a named httpGet port).
    pub ports: Vec<ContainerPort>,
    /// The pod IP (the default host of an httpGet handler).
    pub pod_ip: Option<String>,
    /// Grace period shared by the preStop handler and the stop.
    pub grace: Duration,
    /// Per-container states to write once the container is stopped.
    pub states_after: Vec<State>,
    /// The pod, for the `Killing` / `FailedPreStopHook` Events about its container.
    pub pod: PodRef,
    /// The `Killing` Event's message (kruise-daemon's words; the bare container ID in it is
    /// replaced by the container name, as the kubelet's recorder does).
    pub message: String,
}

/// One status write or action, on the request named `request`.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// Status `phase` (and `message`, cleared when `None`).
    SetPhase {
        /// Request name.
        request: String,
        /// New phase.
        phase: Phase,
        /// New message.
        message: Option<String>,
    },
    /// Status `containerRecreateStates`.
    SetStates {
        /// Request name.
        request: String,
        /// The states.
        states: Vec<State>,
    },
    /// Run the preStop handler, stop the container, then write [`Kill::states_after`]; on
    /// failure, run [`after_kill_failure`].
    Kill {
        /// Request name.
        request: String,
        /// What to kill.
        kill: Box<Kill>,
    },
    /// Status phase `Completed`, `completionTime` now, `message`.
    Complete {
        /// Request name.
        request: String,
        /// Why (empty when all containers finished as planned).
        message: String,
    },
}

/// The steps for one pod and when to look again.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    /// Steps, in order.
    pub steps: Vec<Step>,
    /// Look again after this long (`None`: when a request changes).
    pub requeue_after: Option<Duration>,
}

/// The message on a request that waits for `running` to finish.
pub fn waiting_message(running: &str) -> String {
    format!(
        "waiting for ContainerRecreateRequest {running} of the same pod to finish (requests for one pod run one at a time, oldest first)"
    )
}

fn finished(r: &ContainerRecreateRequest) -> bool {
    r.metadata.deletion_timestamp.is_some()
        || r.status
            .as_ref()
            .is_some_and(|s| s.completion_time.is_some() || s.phase == Some(Phase::Completed))
}

fn phase_of(r: &ContainerRecreateRequest) -> Option<Phase> {
    r.status.as_ref().and_then(|s| s.phase)
}

/// kruise's order: Recreating before Pending before new, then oldest first (then by name).
fn order_key(r: &ContainerRecreateRequest) -> (u8, Option<Timestamp>, String) {
    let weight = match phase_of(r) {
        Some(Phase::Recreating) => 0,
        Some(Phase::Pending) => 1,
        _ => 2,
    };
    (
        weight,
        r.metadata.creation_timestamp.as_ref().map(|t| t.0),
        r.metadata.name.clone().unwrap_or_default(),
    )
}

/// Decide the next steps for one pod.
pub fn plan(s: &Snapshot) -> Plan {
    let mut plan = Plan::default();
    let mut active: Vec<&ContainerRecreateRequest> = s
        .requests
        .iter()
        .copied()
        .filter(|r| !finished(r))
        .collect();
    active.sort_by_key(|r| order_key(r));
    let Some((picked, waiting)) = active.split_first() else {
        return plan;
    };
    let picked_name = picked.metadata.name.clone().unwrap_or_default();
    let wait_msg = waiting_message(&picked_name);
    for r in waiting {
        let st = r.status.clone().unwrap_or_default();
        if st.phase != Some(Phase::Pending) || st.message.as_deref() != Some(wait_msg.as_str()) {
            plan.steps.push(Step::SetPhase {
                request: r.metadata.name.clone().unwrap_or_default(),
                phase: Phase::Pending,
                message: Some(wait_msg.clone()),
            });
        }
    }
    let request = picked_name;
    let status = picked.status.clone().unwrap_or_default();
    if status.phase != Some(Phase::Recreating) {
        plan.steps.push(Step::SetPhase {
            request,
            phase: Phase::Recreating,
            message: None,
        });
        return plan;
    }

    let strategy = picked.spec.strategy.clone().unwrap_or_default();
    if let Some(grace) = strategy.unready_grace_period_seconds {
        let acquired = picked
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(labels::CRR_UNREADY_ACQUIRED))
            .filter(|v| !v.is_empty());
        let Some(acquired) = acquired else {
            // The manager marks the pod not ready first and records when.
            plan.requeue_after = Some(POLL);
            return plan;
        };
        let Ok(at) = acquired.parse::<Timestamp>() else {
            plan.steps.push(Step::Complete {
                request,
                message: format!(
                    "failed to parse unready time {acquired} (annotation {})",
                    labels::CRR_UNREADY_ACQUIRED
                ),
            });
            return plan;
        };
        let left = left_until(at, grace, s.now);
        if !left.is_zero() {
            plan.requeue_after = Some(left + Duration::from_millis(100));
            return plan;
        }
    }

    let states = current_states(picked, s);
    if Some(&states) != status.container_recreate_states.as_ref() {
        plan.steps.push(Step::SetStates { request, states });
        return plan;
    }

    let fail_fast = strategy.failure_policy != Some(ContainerRecreateRequestFailurePolicy::Ignore);
    let ordered = strategy.ordered_recreate.unwrap_or(false);
    let mut next = states.clone();
    let mut completed = 0;
    for i in 0..next.len() {
        match next[i].phase {
            Phase::Succeeded => {
                completed += 1;
                continue;
            }
            Phase::Failed => {
                completed += 1;
                if !fail_fast {
                    continue;
                }
                plan.steps.push(Step::Complete {
                    request,
                    message: failed_message(&next[i]),
                });
                return plan;
            }
            Phase::Recreating => {
                next[i].is_killed = Some(true);
                if ordered {
                    break;
                }
                continue;
            }
            Phase::Pending | Phase::Completed => {}
        }
        let name = next[i].name.clone();
        let Some(current) = latest(&s.runtime, &name) else {
            break;
        };
        let spec = picked.spec.containers.iter().find(|c| c.name == name);
        next[i].is_killed = Some(true);
        next[i].phase = Phase::Recreating;
        next[i].message = None;
        plan.steps.push(Step::Kill {
            request,
            kill: Box::new(Kill {
                container_id: current.id.clone(),
                pre_stop: spec.and_then(|c| c.pre_stop.clone()),
                ports: spec.and_then(|c| c.ports.clone()).unwrap_or_default(),
                pod_ip: s
                    .pod
                    .and_then(|p| p.status.as_ref())
                    .and_then(|st| st.pod_ip.clone()),
                grace: strategy
                    .termination_grace_period_seconds
                    .map_or(DEFAULT_GRACE, |g| Duration::from_secs(g.max(0) as u64)),
                states_after: next,
                pod: PodRef {
                    namespace: picked.metadata.namespace.clone().unwrap_or_default(),
                    name: picked.spec.pod_name.clone(),
                    uid: picked
                        .metadata
                        .labels
                        .as_ref()
                        .and_then(|l| l.get(labels::CRR_POD_UID))
                        .cloned()
                        .unwrap_or_default(),
                },
                message: format!(
                    "Stopping container {name} by ContainerRecreateRequest {}",
                    picked.metadata.name.as_deref().unwrap_or_default()
                ),
                container: name,
            }),
        });
        return plan;
    }
    if next != states {
        plan.steps.push(Step::SetStates {
            request,
            states: next,
        });
        return plan;
    }
    if completed == states.len() {
        plan.steps.push(Step::Complete {
            request,
            message: String::new(),
        });
        return plan;
    }
    // A new container is not counted before it has run minStartedSeconds; pod events (readiness,
    // restarts) re-trigger the rest, but look again regardless.
    let min_started = strategy.min_started_seconds.unwrap_or(0).max(0) as u64;
    plan.requeue_after = Some(Duration::from_secs(min_started.max(1)));
    plan
}

/// The states to write when killing `container` failed with `error`, and whether the request
/// completes (failurePolicy `Fail`).
pub fn after_kill_failure(
    request: &ContainerRecreateRequest,
    kill: &Kill,
    error: &str,
) -> Vec<Step> {
    let name = request.metadata.name.clone().unwrap_or_default();
    let mut states = kill.states_after.clone();
    let mut failed = None;
    for st in &mut states {
        if st.name == kill.container {
            st.phase = Phase::Failed;
            st.is_killed = None;
            st.message = Some(format!("kill container error: {error}"));
            failed = Some(st.clone());
        }
    }
    let mut steps = vec![Step::SetStates {
        request: name.clone(),
        states,
    }];
    let fail_fast = request
        .spec
        .strategy
        .as_ref()
        .and_then(|s| s.failure_policy)
        != Some(ContainerRecreateRequestFailurePolicy::Ignore);
    if fail_fast && let Some(f) = failed {
        steps.push(Step::Complete {
            request: name,
            message: failed_message(&f),
        });
    }
    steps
}

fn failed_message(st: &State) -> String {
    format!(
        "container {} failed: {}",
        st.name,
        st.message.as_deref().unwrap_or("unknown error")
    )
}

fn left_until(start: Timestamp, seconds: i64, now: Timestamp) -> Duration {
    let end = start
        .saturating_add(SignedDuration::from_secs(seconds))
        .unwrap_or(start);
    let left = end.duration_since(now);
    if left.is_negative() {
        Duration::ZERO
    } else {
        left.unsigned_abs()
    }
}

/// The newest runtime container of `name` (highest attempt, then newest).
fn latest<'a>(runtime: &'a [RuntimeContainer], name: &str) -> Option<&'a RuntimeContainer> {
    runtime
        .iter()
        .filter(|c| c.name == name)
        .max_by_key(|c| (c.attempt, c.created_at))
}

fn strip_runtime(id: &str) -> &str {
    id.split_once("://").map_or(id, |(_, bare)| bare)
}

/// kruise's per-container state, recomputed from the runtime and the pod status each time.
fn current_states(r: &ContainerRecreateRequest, s: &Snapshot) -> Vec<State> {
    let strategy = r.spec.strategy.clone().unwrap_or_default();
    let min_started = i64::from(strategy.min_started_seconds.unwrap_or(0).max(0));
    let force = strategy.force_recreate.unwrap_or(false);
    let previous = r
        .status
        .as_ref()
        .and_then(|st| st.container_recreate_states.clone())
        .unwrap_or_default();
    let pod_statuses = s
        .pod
        .and_then(|p| p.status.as_ref())
        .and_then(|st| st.container_statuses.clone())
        .unwrap_or_default();
    r.spec
        .containers
        .iter()
        .map(|c| {
            let prev = previous.iter().find(|p| p.name == c.name);
            if let Some(p) = prev
                && matches!(p.phase, Phase::Succeeded | Phase::Failed)
            {
                return p.clone();
            }
            let was_killed = prev.and_then(|p| p.is_killed).filter(|k| *k);
            let state = |phase: Phase, message: Option<&str>, is_killed: Option<bool>| State {
                name: c.name.clone(),
                phase,
                message: message.map(str::to_string),
                is_killed,
            };
            let Some(rc) = latest(&s.runtime, &c.name) else {
                return state(Phase::Pending, Some(MSG_NOT_FOUND_ON_NODE), was_killed);
            };
            if rc.state == RuntimeState::Exited {
                // Stopped: the kubelet starts the next one.
                return state(Phase::Recreating, None, was_killed);
            }
            if force && was_killed.is_none() {
                return state(Phase::Pending, None, None);
            }
            let ctx = c.status_context.clone().unwrap_or_default();
            let pod_status = pod_statuses.iter().find(|p| p.name == c.name);
            let recreated = rc.id != strip_runtime(&ctx.container_id)
                || pod_status.is_some_and(|p| {
                    p.restart_count > ctx.restart_count
                        || p.container_id
                            .as_deref()
                            .is_some_and(|id| id != ctx.container_id)
                });
            if !recreated {
                return state(Phase::Pending, None, was_killed);
            }
            // Done once the pod status shows the new container running, ready, for long enough.
            let done = pod_status.is_some_and(|p| {
                let started = p
                    .state
                    .as_ref()
                    .and_then(|st| st.running.as_ref())
                    .and_then(|run| run.started_at.as_ref())
                    .map(|t| t.0);
                p.ready
                    && p.container_id.as_deref().map(strip_runtime) == Some(rc.id.as_str())
                    && started.is_some_and(|t| left_until(t, min_started, s.now).is_zero())
            });
            state(
                if done {
                    Phase::Succeeded
                } else {
                    Phase::Recreating
                },
                None,
                was_killed,
            )
        })
        .collect()
}

#[cfg(test)]
mod tests;
