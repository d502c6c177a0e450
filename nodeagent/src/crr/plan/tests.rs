//! The agent's CRR rules as tables: one request at a time per pod, per-container phases, kills,
//! failure policy, ordered and forced recreation, minStartedSeconds, unready grace.

use std::collections::BTreeMap;
use std::time::Duration;

use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::*;

const T0: &str = "2026-01-01T00:00:00Z";

fn ts(offset: i64) -> Timestamp {
    let t0: Timestamp = T0.parse().unwrap();
    t0.checked_add(SignedDuration::from_secs(offset)).unwrap()
}

fn rfc(offset: i64) -> String {
    ts(offset).strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// An initialized request `name` created at `created` (seconds after T0) for pod `web`.
fn request(
    name: &str,
    created: i64,
    containers: &[&str],
    strategy: Value,
) -> ContainerRecreateRequest {
    serde_json::from_value(json!({
        "apiVersion": "apps.kruise.io/v1alpha1",
        "kind": "ContainerRecreateRequest",
        "metadata": {"name": name, "namespace": "ns", "creationTimestamp": rfc(created),
                     "labels": {"crr.apps.kruise.io/node-name": "node-a", "crr.apps.kruise.io/pod-uid": "pod-uid",
                                "crr.apps.kruise.io/active": "true"}},
        "spec": {
            "podName": "web",
            "containers": containers.iter().map(|c| json!({
                "name": c,
                "preStop": {"exec": {"command": ["sh", "-c", format!("echo {c}")]}},
                "statusContext": {"containerID": format!("containerd://{c}-1"), "restartCount": 0}
            })).collect::<Vec<_>>(),
            "strategy": strategy
        }
    }))
    .unwrap()
}

fn with_status(mut r: ContainerRecreateRequest, status: Value) -> ContainerRecreateRequest {
    r.status = Some(serde_json::from_value(status).unwrap());
    r
}

fn recreating(r: ContainerRecreateRequest, states: Value) -> ContainerRecreateRequest {
    with_status(
        r,
        json!({"phase": "Recreating", "containerRecreateStates": states}),
    )
}

fn running(name: &str, attempt: u32) -> RuntimeContainer {
    RuntimeContainer {
        name: name.into(),
        id: format!("{name}-{}", attempt + 1),
        attempt,
        state: RuntimeState::Running,
        created_at: i64::from(attempt),
    }
}

fn exited(name: &str, attempt: u32) -> RuntimeContainer {
    RuntimeContainer {
        state: RuntimeState::Exited,
        ..running(name, attempt)
    }
}

/// Pod `web` whose status shows, per container, (attempt, ready, started offset).
fn pod(containers: &[(&str, u32, bool, i64)]) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "ns", "uid": "pod-uid"},
        "spec": {"containers": containers.iter().map(|(n, ..)| json!({"name": n, "image": "x"})).collect::<Vec<_>>()},
        "status": {
            "podIP": "10.0.0.7",
            "containerStatuses": containers.iter().map(|(n, attempt, ready, started)| json!({
                "name": n, "ready": ready, "restartCount": attempt, "image": "x", "imageID": "",
                "containerID": format!("containerd://{n}-{}", attempt + 1),
                "state": {"running": {"startedAt": rfc(*started)}}
            })).collect::<Vec<_>>()
        }
    }))
    .unwrap()
}

fn plan_for(
    requests: &[&ContainerRecreateRequest],
    p: &Pod,
    runtime: Vec<RuntimeContainer>,
    at: i64,
) -> Plan {
    plan(&Snapshot {
        requests: requests.to_vec(),
        pod: Some(p),
        runtime,
        now: ts(at),
    })
}

fn states(v: Value) -> Vec<State> {
    serde_json::from_value(v).unwrap()
}

#[test]
fn requests_for_one_pod_run_one_at_a_time_oldest_first_and_the_others_say_why_they_wait() {
    let old = request("old", 0, &["app"], json!({}));
    let new = request("new", 1, &["sidecar"], json!({}));
    let p = pod(&[("app", 0, true, -50), ("sidecar", 0, true, -50)]);
    let rt = vec![running("app", 0), running("sidecar", 0)];
    let plan = plan_for(&[&new, &old], &p, rt.clone(), 2);
    assert_eq!(
        plan.steps,
        vec![
            Step::SetPhase {
                request: "new".into(),
                phase: Phase::Pending,
                message: Some(waiting_message("old")),
            },
            Step::SetPhase {
                request: "old".into(),
                phase: Phase::Recreating,
                message: None,
            },
        ]
    );
    // A request already recreating keeps its turn over an older one that waits.
    let newer_running = recreating(request("b", 5, &["app"], json!({})), json!([]));
    let older_pending = with_status(
        request("a", 0, &["app"], json!({})),
        json!({"phase": "Pending"}),
    );
    let plan = plan_for(&[&older_pending, &newer_running], &p, rt.clone(), 6);
    assert_eq!(
        plan.steps[0],
        Step::SetPhase {
            request: "a".into(),
            phase: Phase::Pending,
            message: Some(waiting_message("b")),
        }
    );
    // Finished requests do not hold the pod.
    let done = with_status(
        request("done", 0, &["app"], json!({})),
        json!({"phase": "Completed", "completionTime": rfc(1)}),
    );
    let plan = plan_for(&[&done, &new], &p, rt, 3);
    assert_eq!(
        plan.steps,
        vec![Step::SetPhase {
            request: "new".into(),
            phase: Phase::Recreating,
            message: None
        }]
    );
}

#[test]
fn a_recreating_request_records_states_then_kills_with_its_prestop_and_grace() {
    let r = recreating(
        request(
            "r",
            0,
            &["app", "sidecar"],
            json!({"terminationGracePeriodSeconds": 7}),
        ),
        json!(null),
    );
    let p = pod(&[("app", 0, true, -50), ("sidecar", 0, true, -50)]);
    let rt = vec![running("app", 0), running("sidecar", 0)];
    let first = plan_for(&[&r], &p, rt.clone(), 1);
    assert_eq!(
        first.steps,
        vec![Step::SetStates {
            request: "r".into(),
            states: states(
                json!([{"name": "app", "phase": "Pending"}, {"name": "sidecar", "phase": "Pending"}])
            ),
        }]
    );
    let r = recreating(
        r,
        json!([{"name": "app", "phase": "Pending"}, {"name": "sidecar", "phase": "Pending"}]),
    );
    let second = plan_for(&[&r], &p, rt, 1);
    let [Step::Kill { request, kill }] = second.steps.as_slice() else {
        panic!("expected one kill: {:?}", second.steps)
    };
    assert_eq!(request, "r");
    assert_eq!(kill.container, "app");
    assert_eq!(kill.container_id, "app-1");
    assert_eq!(kill.grace, Duration::from_secs(7));
    assert_eq!(kill.pod_ip.as_deref(), Some("10.0.0.7"));
    assert_eq!(
        serde_json::to_value(&kill.pre_stop).unwrap(),
        json!({"exec": {"command": ["sh", "-c", "echo app"]}})
    );
    assert_eq!(
        kill.states_after,
        states(
            json!([{"name": "app", "phase": "Recreating", "isKilled": true}, {"name": "sidecar", "phase": "Pending"}])
        )
    );
}

#[test]
fn without_ordered_recreate_the_next_container_is_killed_while_the_first_restarts() {
    let after_first = json!([{"name": "app", "phase": "Recreating", "isKilled": true}, {"name": "sidecar", "phase": "Pending"}]);
    let p = pod(&[("app", 0, true, -50), ("sidecar", 0, true, -50)]);
    let rt = vec![exited("app", 0), running("sidecar", 0)];
    let unordered = recreating(
        request("r", 0, &["app", "sidecar"], json!({})),
        after_first.clone(),
    );
    let plan = plan_for(&[&unordered], &p, rt.clone(), 2);
    assert!(
        matches!(&plan.steps[..], [Step::Kill { kill, .. }] if kill.container == "sidecar"),
        "{:?}",
        plan.steps
    );
    let ordered = recreating(
        request(
            "r",
            0,
            &["app", "sidecar"],
            json!({"orderedRecreate": true}),
        ),
        after_first,
    );
    let plan = plan_for(&[&ordered], &p, rt, 2);
    assert_eq!(plan.steps, vec![], "ordered: the sidecar waits for the app");
    assert!(plan.requeue_after.is_some());
}

#[test]
fn a_container_succeeds_once_its_new_instance_is_ready_and_has_run_min_started_seconds() {
    let r = recreating(
        request("r", 0, &["app"], json!({"minStartedSeconds": 5})),
        json!([{"name": "app", "phase": "Recreating", "isKilled": true}]),
    );
    let rt = vec![exited("app", 0), running("app", 1)];
    // The pod status still shows the old container: not done.
    let stale = pod(&[("app", 0, true, -50)]);
    assert_eq!(plan_for(&[&r], &stale, rt.clone(), 3).steps, vec![]);
    // New container, ready, but started 2 s ago.
    let young = pod(&[("app", 1, true, 1)]);
    let plan = plan_for(&[&r], &young, rt.clone(), 3);
    assert_eq!(plan.steps, vec![]);
    assert_eq!(plan.requeue_after, Some(Duration::from_secs(5)));
    // Not ready yet.
    let unready = pod(&[("app", 1, false, -10)]);
    assert_eq!(plan_for(&[&r], &unready, rt.clone(), 3).steps, vec![]);
    // Ready for 6 s: Succeeded, then the request completes.
    let plan = plan_for(&[&r], &young, rt.clone(), 7);
    let done = states(json!([{"name": "app", "phase": "Succeeded", "isKilled": true}]));
    assert_eq!(
        plan.steps,
        vec![Step::SetStates {
            request: "r".into(),
            states: done.clone()
        }]
    );
    let r = recreating(r, serde_json::to_value(&done).unwrap());
    assert_eq!(
        plan_for(&[&r], &young, rt, 8).steps,
        vec![Step::Complete {
            request: "r".into(),
            message: String::new()
        }]
    );
}

#[test]
fn a_failed_container_completes_the_request_unless_failures_are_ignored() {
    let failed = json!([{"name": "app", "phase": "Failed", "message": "kill container error: boom"}, {"name": "sidecar", "phase": "Pending"}]);
    let p = pod(&[("app", 0, true, -50), ("sidecar", 0, true, -50)]);
    let rt = vec![running("app", 0), running("sidecar", 0)];
    let fail = recreating(
        request(
            "r",
            0,
            &["app", "sidecar"],
            json!({"failurePolicy": "Fail"}),
        ),
        failed.clone(),
    );
    assert_eq!(
        plan_for(&[&fail], &p, rt.clone(), 1).steps,
        vec![Step::Complete {
            request: "r".into(),
            message: "container app failed: kill container error: boom".into()
        }]
    );
    let ignore = recreating(
        request(
            "r",
            0,
            &["app", "sidecar"],
            json!({"failurePolicy": "Ignore"}),
        ),
        failed,
    );
    let plan = plan_for(&[&ignore], &p, rt, 1);
    assert!(
        matches!(&plan.steps[..], [Step::Kill { kill, .. }] if kill.container == "sidecar"),
        "{:?}",
        plan.steps
    );
}

#[test]
fn a_failed_kill_marks_the_container_failed_and_completes_under_fail() {
    let r = recreating(
        request("r", 0, &["app"], json!({"failurePolicy": "Fail"})),
        json!([{"name": "app", "phase": "Pending"}]),
    );
    let p = pod(&[("app", 0, true, -50)]);
    let plan = plan_for(&[&r], &p, vec![running("app", 0)], 1);
    let Step::Kill { kill, .. } = &plan.steps[0] else {
        panic!("{:?}", plan.steps)
    };
    let steps = after_kill_failure(&r, kill, "rpc error: NotFound");
    assert_eq!(
        steps,
        vec![
            Step::SetStates {
                request: "r".into(),
                states: states(
                    json!([{"name": "app", "phase": "Failed", "message": "kill container error: rpc error: NotFound"}])
                ),
            },
            Step::Complete {
                request: "r".into(),
                message: "container app failed: kill container error: rpc error: NotFound".into()
            },
        ]
    );
    let ignore = recreating(
        request("r", 0, &["app"], json!({"failurePolicy": "Ignore"})),
        json!([]),
    );
    assert_eq!(after_kill_failure(&ignore, kill, "x").len(), 1);
}

#[test]
fn force_recreate_kills_a_container_that_already_restarted_by_itself() {
    let p = pod(&[("app", 1, true, -50)]);
    let rt = vec![exited("app", 0), running("app", 1)];
    let plain = recreating(request("r", 0, &["app"], json!({})), json!(null));
    // Without force, a container restarted since the request counts as recreated.
    assert_eq!(
        plan_for(&[&plain], &p, rt.clone(), 1).steps,
        vec![Step::SetStates {
            request: "r".into(),
            states: states(json!([{"name": "app", "phase": "Succeeded"}]))
        }]
    );
    let forced = recreating(
        request("r", 0, &["app"], json!({"forceRecreate": true})),
        json!([{"name": "app", "phase": "Pending"}]),
    );
    let plan = plan_for(&[&forced], &p, rt, 1);
    assert!(
        matches!(&plan.steps[..], [Step::Kill { kill, .. }] if kill.container_id == "app-2"),
        "{:?}",
        plan.steps
    );
}

#[test]
fn a_container_the_runtime_does_not_list_waits_with_kruises_message() {
    let r = recreating(request("r", 0, &["app"], json!({})), json!(null));
    let p = pod(&[("app", 0, true, -50)]);
    let plan = plan_for(&[&r], &p, vec![], 1);
    assert_eq!(
        plan.steps,
        vec![Step::SetStates {
            request: "r".into(),
            states: states(
                json!([{"name": "app", "phase": "Pending", "message": MSG_NOT_FOUND_ON_NODE}])
            )
        }]
    );
    let r = recreating(
        r,
        json!([{"name": "app", "phase": "Pending", "message": MSG_NOT_FOUND_ON_NODE}]),
    );
    assert_eq!(plan_for(&[&r], &p, vec![], 1).steps, vec![]);
}

#[test]
fn unready_grace_waits_for_the_manager_then_for_the_grace_period() {
    let base = request("r", 0, &["app"], json!({"unreadyGracePeriodSeconds": 5}));
    let p = pod(&[("app", 0, true, -50)]);
    let rt = vec![running("app", 0)];
    let r = recreating(base.clone(), json!([{"name": "app", "phase": "Pending"}]));
    let plan = plan_for(&[&r], &p, rt.clone(), 1);
    assert_eq!(plan.steps, vec![]);
    assert_eq!(plan.requeue_after, Some(POLL));
    let mut acquired = r.clone();
    acquired.metadata.annotations = Some(BTreeMap::from([(
        labels::CRR_UNREADY_ACQUIRED.to_string(),
        rfc(2),
    )]));
    let plan = plan_for(&[&acquired], &p, rt.clone(), 4);
    assert_eq!(plan.steps, vec![]);
    assert_eq!(plan.requeue_after, Some(Duration::from_millis(3100)));
    let plan = plan_for(&[&acquired], &p, rt, 7);
    assert!(
        matches!(&plan.steps[..], [Step::Kill { .. }]),
        "{:?}",
        plan.steps
    );
    let mut bad = r;
    bad.metadata.annotations = Some(BTreeMap::from([(
        labels::CRR_UNREADY_ACQUIRED.to_string(),
        "yesterday".to_string(),
    )]));
    assert!(matches!(
        &plan_for(&[&bad], &p, vec![], 7).steps[..],
        [Step::Complete { message, .. }] if message.contains("failed to parse unready time yesterday")
    ));
}
