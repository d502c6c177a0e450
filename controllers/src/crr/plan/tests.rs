//! Table-style tests of the manager's CRR rules (kruise's webhook checks and manager controller).

use std::collections::BTreeMap;
use std::time::Duration;

use graft_api::apps::v1alpha1::containerrecreaterequest::ContainerRecreateRequestPhase as Phase;
use graft_api::labels;
use pretty_assertions::assert_eq;
use serde_json::json;

use super::*;

const T0: &str = "2026-01-01T00:00:00Z";

fn ts(offset_secs: i64) -> Timestamp {
    let t0: Timestamp = T0.parse().unwrap();
    t0.checked_add(SignedDuration::from_secs(offset_secs))
        .unwrap()
}

fn rfc(offset_secs: i64) -> String {
    ts(offset_secs).strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A CRR created at T0 for pod `web`, containers as given, from YAML-ish JSON.
fn crr(containers: &[&str]) -> ContainerRecreateRequest {
    serde_json::from_value(json!({
        "apiVersion": "apps.kruise.io/v1alpha1",
        "kind": "ContainerRecreateRequest",
        "metadata": {"name": "r1", "namespace": "ns", "uid": "crr-uid", "creationTimestamp": T0},
        "spec": {
            "podName": "web",
            "containers": containers.iter().map(|c| json!({"name": c})).collect::<Vec<_>>()
        }
    }))
    .unwrap()
}

/// The same CRR after graft filled it from [`pod`].
fn initialized_crr(containers: &[&str]) -> ContainerRecreateRequest {
    let mut c = crr(containers);
    c.metadata.labels = Some(BTreeMap::from([
        (labels::CRR_NODE_NAME.to_string(), "node-a".to_string()),
        (labels::CRR_POD_UID.to_string(), "pod-uid".to_string()),
        (labels::CRR_ACTIVE.to_string(), "true".to_string()),
    ]));
    for ct in &mut c.spec.containers {
        ct.status_context = Some(ContainerRecreateRequestContainerContext {
            container_id: format!("containerd://{}-1", ct.name),
            restart_count: 0,
        });
    }
    c
}

fn with_phase(mut c: ContainerRecreateRequest, phase: Phase) -> ContainerRecreateRequest {
    c.status.get_or_insert_with(Default::default).phase = Some(phase);
    c
}

fn with_annotation(mut c: ContainerRecreateRequest, k: &str, v: &str) -> ContainerRecreateRequest {
    c.metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert(k.to_string(), v.to_string());
    c
}

/// Pod `web` (uid `pod-uid`) on `node-a`: `app` has an exec preStop, `sidecar` an httpGet
/// preStop and a port; both running since T0-100s.
fn pod() -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "ns", "uid": "pod-uid"},
        "spec": {
            "nodeName": "node-a",
            "terminationGracePeriodSeconds": 20,
            "containers": [
                {"name": "app", "image": "app:v1", "ports": [{"containerPort": 8080}],
                 "lifecycle": {"preStop": {"exec": {"command": ["sh", "-c", "echo bye"]}}}},
                {"name": "sidecar", "image": "sidecar:v1", "ports": [{"containerPort": 9090}],
                 "lifecycle": {"preStop": {"httpGet": {"path": "/quit", "port": 9090}}}},
                {"name": "plain", "image": "app:v1", "ports": [{"containerPort": 7070}]}
            ]
        },
        "status": {
            "phase": "Running",
            "containerStatuses": [
                {"name": "app", "ready": true, "restartCount": 0, "image": "app:v1", "imageID": "",
                 "containerID": "containerd://app-1", "state": {"running": {"startedAt": rfc(-100)}}},
                {"name": "sidecar", "ready": true, "restartCount": 0, "image": "sidecar:v1", "imageID": "",
                 "containerID": "containerd://sidecar-1", "state": {"running": {"startedAt": rfc(-100)}}},
                {"name": "plain", "ready": true, "restartCount": 3, "image": "app:v1", "imageID": "",
                 "containerID": "containerd://plain-4", "state": {"running": {"startedAt": rfc(-100)}}}
            ]
        }
    }))
    .unwrap()
}

fn plan_at(c: &ContainerRecreateRequest, p: Option<&Pod>, at: i64) -> Plan {
    plan(&Snapshot {
        crr: c,
        pod: p,
        now: ts(at),
    })
}

fn completes_with(p: &Plan) -> Option<String> {
    p.actions.iter().find_map(|a| match a {
        Action::Complete { message } => Some(message.clone()),
        _ => None,
    })
}

#[test]
fn a_new_request_is_filled_from_its_pod_and_labelled_with_node_and_pod_uid() {
    let c = crr(&["app", "sidecar", "plain"]);
    let p = plan_at(&c, Some(&pod()), 1);
    let Some(Action::Initialize {
        labels: l,
        containers,
        termination_grace_period_seconds,
        failure_policy,
    }) = p.actions.first()
    else {
        panic!("expected Initialize, got {:?}", p.actions);
    };
    assert_eq!(
        l,
        &BTreeMap::from([
            (labels::CRR_NODE_NAME.to_string(), "node-a".to_string()),
            (labels::CRR_POD_UID.to_string(), "pod-uid".to_string()),
            (labels::CRR_ACTIVE.to_string(), "true".to_string()),
        ])
    );
    assert_eq!(
        serde_json::to_value(containers).unwrap(),
        json!([
            {"name": "app",
             "preStop": {"exec": {"command": ["sh", "-c", "echo bye"]}},
             "statusContext": {"containerID": "containerd://app-1", "restartCount": 0}},
            // Ports only travel with an httpGet handler (the agent resolves named ports).
            {"name": "sidecar",
             "preStop": {"httpGet": {"path": "/quit", "port": 9090}},
             "ports": [{"containerPort": 9090}],
             "statusContext": {"containerID": "containerd://sidecar-1", "restartCount": 0}},
            {"name": "plain",
             "statusContext": {"containerID": "containerd://plain-4", "restartCount": 3}}
        ])
    );
    // The pod's grace period becomes the default; failurePolicy defaults to Fail.
    assert_eq!(*termination_grace_period_seconds, Some(20));
    assert_eq!(*failure_policy, ContainerRecreateRequestFailurePolicy::Fail);
    assert_eq!(p.events[0].reason, "Initialized");
    assert_eq!(p.actions.len(), 1);
    // The agent must answer within a minute.
    assert_eq!(p.requeue_after, Some(RESPONSE_TIMEOUT));
}

#[test]
fn the_users_grace_period_wins_over_the_pods() {
    let mut c = crr(&["app"]);
    c.spec.strategy = Some(
        serde_json::from_value(
            json!({"terminationGracePeriodSeconds": 2, "failurePolicy": "Ignore"}),
        )
        .unwrap(),
    );
    let p = plan_at(&c, Some(&pod()), 1);
    assert!(matches!(
        p.actions[0],
        Action::Initialize {
            termination_grace_period_seconds: Some(2),
            failure_policy: ContainerRecreateRequestFailurePolicy::Ignore,
            ..
        }
    ));
}

#[test]
fn a_pod_stopped_by_the_sidecar_terminator_still_takes_requests() {
    let mut p = pod();
    let st = p.status.as_mut().unwrap();
    st.phase = Some("Succeeded".into());
    st.conditions = Some(vec![k8s_openapi::api::core::v1::PodCondition {
        type_: "SidecarTerminated".into(),
        status: "True".into(),
        ..Default::default()
    }]);
    let plan = plan_at(&crr(&["app"]), Some(&p), 1);
    assert!(
        matches!(plan.actions[0], Action::Initialize { .. }),
        "{:?}",
        plan.actions
    );
}

#[test]
fn requests_the_webhook_would_reject_complete_at_once_with_the_reason() {
    let unscheduled = {
        let mut p = pod();
        p.spec.as_mut().unwrap().node_name = None;
        p
    };
    let finished = {
        let mut p = pod();
        p.status.as_mut().unwrap().phase = Some("Succeeded".into());
        p
    };
    let not_started = {
        let mut p = pod();
        p.status
            .as_mut()
            .unwrap()
            .container_statuses
            .as_mut()
            .unwrap()[0]
            .container_id = None;
        p
    };
    let preset = {
        let mut c = crr(&["app"]);
        c.spec.containers[0].status_context = Some(Default::default());
        c
    };
    let duplicate = crr(&["app", "app"]);
    let no_status = {
        let mut p = pod();
        p.status.as_mut().unwrap().container_statuses = Some(vec![]);
        p
    };
    let deleting = {
        let mut p = pod();
        p.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH));
        p
    };
    let short_deadline = {
        let mut c = crr(&["app"]);
        c.spec.active_deadline_seconds = Some(2);
        c
    };
    let cases: Vec<(&str, ContainerRecreateRequest, Option<Pod>, &str)> = vec![
        (
            "missing pod",
            crr(&["app"]),
            None,
            "rejected: no found Pod named web",
        ),
        (
            "missing container",
            crr(&["app", "nope"]),
            Some(pod()),
            "rejected: container nope not found in Pod",
        ),
        (
            "unscheduled pod",
            crr(&["app"]),
            Some(unscheduled),
            "rejected: not allowed to recreate containers in a pending Pod",
        ),
        (
            "finished pod",
            crr(&["app"]),
            Some(finished),
            "rejected: not allowed to recreate containers in an inactive Pod",
        ),
        (
            "container not started",
            crr(&["app"]),
            Some(not_started),
            "rejected: no containerID in app containerStatus, maybe the container has not been initialized",
        ),
        (
            "read-only fields set",
            preset,
            Some(pod()),
            "rejected: preStop, ports, statusContext in container are ready-only fields",
        ),
        (
            "duplicate container",
            duplicate,
            Some(pod()),
            "rejected: can not recreate app multi times",
        ),
        (
            "container without status",
            crr(&["app"]),
            Some(no_status),
            "rejected: not found app containerStatus in Pod Status",
        ),
        (
            "deleting pod",
            crr(&["app"]),
            Some(deleting),
            "rejected: not allowed to recreate containers in an inactive Pod",
        ),
        (
            "deadline below 3s, checked before the pod",
            short_deadline,
            None,
            "rejected: activeDeadlineSeconds can not be less than 3s",
        ),
    ];
    for (name, c, p, want) in cases {
        let plan = plan_at(&c, p.as_ref(), 1);
        assert_eq!(
            plan.actions,
            vec![Action::Complete {
                message: want.to_string()
            }],
            "{name}"
        );
        assert_eq!(plan.events[0].reason, "Rejected", "{name}");
        assert_eq!(plan.events[0].type_, EventType::Warning, "{name}");
    }
}

#[test]
fn a_request_completes_when_its_pod_is_gone() {
    let c = with_phase(initialized_crr(&["app"]), Phase::Recreating);
    let replaced = {
        let mut p = pod();
        p.metadata.uid = Some("other-uid".into());
        p
    };
    let deleting = {
        let mut p = pod();
        p.metadata.deletion_timestamp = Some(Time(ts(0)));
        p
    };
    for (name, p) in [
        ("missing", None),
        ("replaced", Some(replaced)),
        ("deleting", Some(deleting)),
    ] {
        let plan = plan_at(&c, p.as_ref(), 5);
        assert_eq!(
            completes_with(&plan).as_deref(),
            Some(MSG_POD_GONE),
            "{name}"
        );
        assert_eq!(plan.events[0].reason, "PodGone");
    }
}

#[test]
fn a_request_no_agent_answers_completes_after_a_minute() {
    let c = initialized_crr(&["app"]);
    let waiting = plan_at(&c, Some(&pod()), 20);
    assert_eq!(waiting.actions, vec![]);
    assert_eq!(waiting.requeue_after, Some(Duration::from_secs(40)));
    let late = plan_at(&c, Some(&pod()), 60);
    assert_eq!(completes_with(&late).as_deref(), Some(MSG_AGENT_TIMEOUT));
    // Pending (set by an agent that serialises requests of one pod) is an answer.
    let pending = with_phase(initialized_crr(&["app"]), Phase::Pending);
    assert_eq!(plan_at(&pending, Some(&pod()), 600).actions, vec![]);
}

#[test]
fn a_request_past_its_active_deadline_completes() {
    let mut c = with_phase(initialized_crr(&["app"]), Phase::Pending);
    c.spec.active_deadline_seconds = Some(30);
    let before = plan_at(&c, Some(&pod()), 10);
    assert_eq!(before.actions, vec![]);
    assert_eq!(before.requeue_after, Some(Duration::from_secs(20)));
    let after = plan_at(&c, Some(&pod()), 30);
    assert_eq!(completes_with(&after).as_deref(), Some(MSG_DEADLINE));
    assert_eq!(after.events[0].reason, "DeadlineExceeded");
}

#[test]
fn while_recreating_containers_started_after_the_request_are_snapshotted() {
    let c = with_phase(initialized_crr(&["app", "sidecar"]), Phase::Recreating);
    let mut p = pod();
    {
        let st = &mut p
            .status
            .as_mut()
            .unwrap()
            .container_statuses
            .as_mut()
            .unwrap()[0];
        st.container_id = Some("containerd://app-2".into());
        st.restart_count = 1;
        st.ready = false;
        st.state = Some(serde_json::from_value(json!({"running": {"startedAt": rfc(4)}})).unwrap());
    }
    let plan = plan_at(&c, Some(&p), 5);
    let want =
        r#"[{"name":"app","ready":false,"restartCount":1,"containerID":"containerd://app-2"}]"#;
    assert_eq!(
        plan.actions,
        vec![Action::SyncContainerStatuses {
            value: want.to_string()
        }]
    );
    assert_eq!(plan.requeue_after, Some(SYNC_INTERVAL));
    // Unchanged snapshot: nothing to write, still polled.
    let c = with_annotation(c, labels::CRR_SYNC_CONTAINER_STATUSES, want);
    let again = plan_at(&c, Some(&p), 6);
    assert_eq!(again.actions, vec![]);
    assert_eq!(again.requeue_after, Some(SYNC_INTERVAL));
    assert_eq!(
        parse_sync_container_statuses(&c)[0].container_id,
        "containerd://app-2"
    );
}

fn with_unready_grace(c: ContainerRecreateRequest) -> ContainerRecreateRequest {
    let mut c = c;
    c.spec.strategy =
        Some(serde_json::from_value(json!({"unreadyGracePeriodSeconds": 5})).unwrap());
    c
}

fn gated(mut p: Pod, condition_message: Option<&str>) -> Pod {
    p.spec.as_mut().unwrap().readiness_gates = Some(vec![
        serde_json::from_value(json!({"conditionType": "KruisePodReady"})).unwrap(),
    ]);
    if let Some(m) = condition_message {
        p.status.as_mut().unwrap().conditions = Some(vec![
            serde_json::from_value(json!({"type": "KruisePodReady", "status": if m == "[]" {"True"} else {"False"}, "message": m})).unwrap(),
        ]);
    }
    p
}

#[test]
fn unready_grace_marks_a_gated_pod_not_ready_then_records_the_time() {
    let c = with_phase(
        with_unready_grace(initialized_crr(&["app"])),
        Phase::Recreating,
    );
    let c = with_annotation(c, labels::CRR_SYNC_CONTAINER_STATUSES, "[]");
    let p = gated(
        pod(),
        Some(r#"[{"userAgent":"Lifecycle","key":"preUpdateHook"}]"#),
    );
    let plan = plan_at(&c, Some(&p), 2);
    assert_eq!(plan.actions.len(), 3, "{:?}", plan.actions);
    assert_eq!(plan.actions[0], Action::AddFinalizer);
    let Action::SetPodConditions { conditions } = &plan.actions[1] else {
        panic!("expected SetPodConditions: {:?}", plan.actions)
    };
    assert_eq!(conditions[0].type_, "KruisePodReady");
    assert_eq!(conditions[0].status, "False");
    // The lifecycle's reason stays; ours is added.
    assert_eq!(
        conditions[0].message.as_deref(),
        Some(
            r#"[{"userAgent":"Lifecycle","key":"preUpdateHook"},{"userAgent":"ContainerRecreateRequest","key":"ns/r1"}]"#
        )
    );
    assert_eq!(
        (conditions[1].type_.as_str(), conditions[1].status.as_str()),
        ("Ready", "False")
    );
    assert_eq!(plan.actions[2], Action::MarkUnreadyAcquired { at: rfc(2) });

    // Without the readiness gate kruise only records the time; the agent still waits.
    let plain = plan_at(&c, Some(&pod()), 2);
    assert_eq!(
        plain.actions,
        vec![Action::MarkUnreadyAcquired { at: rfc(2) }]
    );

    // Acquired once: not again.
    let acquired = with_annotation(c, labels::CRR_UNREADY_ACQUIRED, &rfc(2));
    assert_eq!(plan_at(&acquired, Some(&p), 3).actions, vec![]);
}

#[test]
fn a_completed_request_releases_the_pod_is_deactivated_and_deleted_after_its_ttl() {
    let mut c = with_phase(
        with_unready_grace(initialized_crr(&["app"])),
        Phase::Completed,
    );
    c.status.as_mut().unwrap().completion_time = Some(Time(ts(10)));
    c.spec.ttl_seconds_after_finished = Some(30);
    c.metadata.finalizers = Some(vec![labels::CRR_UNREADY_ACQUIRED.to_string()]);
    let p = gated(
        pod(),
        Some(r#"[{"userAgent":"ContainerRecreateRequest","key":"ns/r1"}]"#),
    );
    let plan = plan_at(&c, Some(&p), 15);
    let Action::SetPodConditions { conditions } = &plan.actions[0] else {
        panic!("expected SetPodConditions: {:?}", plan.actions)
    };
    assert_eq!(conditions.len(), 1);
    assert_eq!(conditions[0].status, "True");
    assert_eq!(conditions[0].message.as_deref(), Some("[]"));
    assert_eq!(
        &plan.actions[1..],
        &[Action::RemoveFinalizer, Action::Deactivate]
    );
    assert_eq!(plan.requeue_after, Some(Duration::from_secs(25)));

    // Released and deactivated: only the TTL is left.
    c.metadata.finalizers = None;
    c.metadata
        .labels
        .as_mut()
        .unwrap()
        .remove(labels::CRR_ACTIVE);
    let waiting = plan_at(&c, Some(&p), 39);
    assert_eq!(waiting.actions, vec![]);
    assert_eq!(waiting.requeue_after, Some(Duration::from_secs(1)));
    let due = plan_at(&c, Some(&p), 40);
    assert_eq!(due.actions, vec![Action::Delete]);
    assert_eq!(due.events[0].reason, "Deleted");

    // No TTL: kept forever.
    c.spec.ttl_seconds_after_finished = None;
    assert_eq!(plan_at(&c, Some(&p), 4000), Plan::default());
}

#[test]
fn a_rejected_request_is_not_initialized_again() {
    let mut c = crr(&["app"]);
    c.status = Some(serde_json::from_value(json!({"phase": "Completed", "completionTime": T0, "message": "rejected: no found Pod named web"})).unwrap());
    assert_eq!(plan_at(&c, Some(&pod()), 5), Plan::default());
}

#[test]
fn not_ready_reasons_of_others_are_kept_and_removing_an_absent_reason_does_nothing() {
    let p = gated(
        pod(),
        Some(r#"[{"userAgent":"ContainerRecreateRequest","key":"ns/other"}]"#),
    );
    let removed = not_ready_conditions(&p, "ns/r1", false, ts(0));
    assert_eq!(removed, None);
    let added = not_ready_conditions(&p, "ns/r1", true, ts(0)).unwrap();
    assert_eq!(
        added[0].message.as_deref(),
        Some(
            r#"[{"userAgent":"ContainerRecreateRequest","key":"ns/other"},{"userAgent":"ContainerRecreateRequest","key":"ns/r1"}]"#
        )
    );
    let p2 = gated(pod(), added[0].message.as_deref());
    let released = not_ready_conditions(&p2, "ns/r1", false, ts(0)).unwrap();
    // Another request still holds the pod not ready.
    assert_eq!(released[0].status, "False");
    assert_eq!(
        released[0].message.as_deref(),
        Some(r#"[{"userAgent":"ContainerRecreateRequest","key":"ns/other"}]"#)
    );
}
