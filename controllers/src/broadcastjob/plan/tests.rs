//! Table tests of the BroadcastJob rules (kruise's `broadcastjob_controller.go`,
//! `checkNodeFitness`, `filterPods`).

use k8s_openapi::api::core::v1::{Node, Pod};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::*;
use crate::broadcastjob::fitness::{self, Misfit};

const T0: &str = "2026-01-01T00:00:00Z";

fn ts(offset_secs: i64) -> Timestamp {
    let t0: Timestamp = T0.parse().unwrap();
    t0.checked_add(SignedDuration::from_secs(offset_secs))
        .unwrap()
}

/// Job `bcj` (uid `uid-1`) in `ns` with these spec fields over a busybox template.
fn job(extra: Value) -> BroadcastJob {
    let mut spec = json!({"template": {"spec": {"restartPolicy": "Never",
        "containers": [{"name": "c", "image": "busybox"}]}}});
    merge(&mut spec, &extra);
    serde_json::from_value(json!({
        "apiVersion": "apps.kruise.io/v1beta1", "kind": "BroadcastJob",
        "metadata": {"name": "bcj", "namespace": "ns", "uid": "uid-1", "creationTimestamp": T0},
        "spec": spec
    }))
    .unwrap()
}

fn merge(target: &mut Value, extra: &Value) {
    if let (Some(t), Some(e)) = (target.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            match t.get_mut(k) {
                Some(existing) if existing.is_object() && v.is_object() => merge(existing, v),
                _ => {
                    t.insert(k.clone(), v.clone());
                }
            }
        }
    }
}

fn with_status(mut j: BroadcastJob, status: Value) -> BroadcastJob {
    j.status = Some(serde_json::from_value(status).unwrap());
    j
}

/// A Ready node with room for pods; `extra` merges into it.
fn node(name: &str, extra: Value) -> Node {
    let mut n = json!({"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"}}});
    merge(&mut n, &extra);
    serde_json::from_value(n).unwrap()
}

/// A pod of the job on `node` in `phase`.
fn pod(name: &str, node: &str, phase: &str) -> Pod {
    let j = job(json!({}));
    let mut p = new_pod(&j, node);
    p.metadata.name = Some(name.to_string());
    p.spec.as_mut().unwrap().node_name = Some(node.to_string());
    p.status = Some(serde_json::from_value(json!({"phase": phase})).unwrap());
    p
}

fn run(j: &BroadcastJob, pods: &[Pod], nodes: &[Node], now: i64) -> Plan {
    plan(&Snapshot {
        job: j,
        pods: pods.iter().collect(),
        nodes: nodes.iter().collect(),
        now: ts(now),
    })
}

fn spec_with(extra: Value) -> k8s_openapi::api::core::v1::PodSpec {
    let mut s = json!({"containers": [{"name": "c", "image": "i"}], "nodeName": "n1"});
    merge(&mut s, &extra);
    serde_json::from_value(s).unwrap()
}

fn reasons(events: &[PlannedEvent]) -> Vec<&str> {
    events.iter().map(|e| e.reason).collect()
}

#[test]
fn node_eligibility_table() {
    // (rule, pod spec fields, node fields, fits)
    let cases: Vec<(&str, Value, Value, bool)> = vec![
        ("a plain node fits", json!({}), json!({}), true),
        (
            "nodeName of another node",
            json!({"nodeName": "n2"}),
            json!({}),
            false,
        ),
        (
            "NoSchedule taint without toleration",
            json!({}),
            json!({"spec": {"taints": [{"key": "k", "value": "v", "effect": "NoSchedule"}]}}),
            false,
        ),
        (
            "NoExecute taint without toleration",
            json!({}),
            json!({"spec": {"taints": [{"key": "k", "effect": "NoExecute"}]}}),
            false,
        ),
        (
            "PreferNoSchedule is ignored",
            json!({}),
            json!({"spec": {"taints": [{"key": "k", "effect": "PreferNoSchedule"}]}}),
            true,
        ),
        (
            "Equal toleration with the value",
            json!({"tolerations": [{"key": "k", "operator": "Equal", "value": "v", "effect": "NoSchedule"}]}),
            json!({"spec": {"taints": [{"key": "k", "value": "v", "effect": "NoSchedule"}]}}),
            true,
        ),
        (
            "Equal toleration with another value",
            json!({"tolerations": [{"key": "k", "operator": "Equal", "value": "w"}]}),
            json!({"spec": {"taints": [{"key": "k", "value": "v", "effect": "NoSchedule"}]}}),
            false,
        ),
        (
            "default operator is Equal",
            json!({"tolerations": [{"key": "k", "value": "v"}]}),
            json!({"spec": {"taints": [{"key": "k", "value": "v", "effect": "NoExecute"}]}}),
            true,
        ),
        (
            "Exists toleration of the key, any effect",
            json!({"tolerations": [{"key": "k", "operator": "Exists"}]}),
            json!({"spec": {"taints": [{"key": "k", "value": "v", "effect": "NoExecute"}]}}),
            true,
        ),
        (
            "toleration of another effect",
            json!({"tolerations": [{"key": "k", "operator": "Exists", "effect": "NoExecute"}]}),
            json!({"spec": {"taints": [{"key": "k", "effect": "NoSchedule"}]}}),
            false,
        ),
        (
            "empty key with Exists tolerates everything",
            json!({"tolerations": [{"operator": "Exists"}]}),
            json!({"spec": {"taints": [{"key": "a", "effect": "NoSchedule"}, {"key": "b", "effect": "NoExecute"}]}}),
            true,
        ),
        (
            "one of two taints untolerated",
            json!({"tolerations": [{"key": "a", "operator": "Exists"}]}),
            json!({"spec": {"taints": [{"key": "a", "effect": "NoSchedule"}, {"key": "b", "effect": "NoSchedule"}]}}),
            false,
        ),
        (
            "unschedulable node",
            json!({}),
            json!({"spec": {"unschedulable": true}}),
            false,
        ),
        (
            "unschedulable node, tolerated",
            json!({"tolerations": [{"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}]}),
            json!({"spec": {"unschedulable": true}}),
            true,
        ),
        (
            "nodeSelector matches",
            json!({"nodeSelector": {"disk": "ssd"}}),
            json!({"metadata": {"labels": {"disk": "ssd"}}}),
            true,
        ),
        (
            "nodeSelector does not match",
            json!({"nodeSelector": {"disk": "ssd"}}),
            json!({"metadata": {"labels": {"disk": "hdd"}}}),
            false,
        ),
        (
            "nodeSelector, label missing",
            json!({"nodeSelector": {"disk": "ssd"}}),
            json!({}),
            false,
        ),
        (
            "no allocatable pods",
            json!({}),
            json!({"status": {"allocatable": {"pods": "0"}}}),
            false,
        ),
        (
            "requests above allocatable cpu",
            json!({"containers": [{"name": "c", "image": "i", "resources": {"requests": {"cpu": "5"}}}]}),
            json!({}),
            false,
        ),
        (
            "requests within allocatable",
            json!({"containers": [{"name": "c", "image": "i", "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}}]}),
            json!({}),
            true,
        ),
    ];
    for (rule, spec, n, fits) in cases {
        let got = fitness::check(&spec_with(spec), &node("n1", n));
        assert_eq!(got.is_ok(), fits, "{rule}: {got:?}");
    }
}

#[test]
fn node_affinity_operators_table() {
    let affinity = |exprs: Value, fields: Value| {
        json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
            {"nodeSelectorTerms": [{"matchExpressions": exprs, "matchFields": fields}]}}}})
    };
    let labels = json!({"metadata": {"labels": {"zone": "a", "gpu": "4"}}});
    // (rule, matchExpressions, matchFields, fits)
    let cases: Vec<(&str, Value, Value, bool)> = vec![
        (
            "In",
            json!([{"key": "zone", "operator": "In", "values": ["a", "b"]}]),
            json!([]),
            true,
        ),
        (
            "In, other value",
            json!([{"key": "zone", "operator": "In", "values": ["b"]}]),
            json!([]),
            false,
        ),
        (
            "NotIn",
            json!([{"key": "zone", "operator": "NotIn", "values": ["b"]}]),
            json!([]),
            true,
        ),
        (
            "NotIn, same value",
            json!([{"key": "zone", "operator": "NotIn", "values": ["a"]}]),
            json!([]),
            false,
        ),
        (
            "NotIn, label missing",
            json!([{"key": "rack", "operator": "NotIn", "values": ["a"]}]),
            json!([]),
            true,
        ),
        (
            "Exists",
            json!([{"key": "zone", "operator": "Exists"}]),
            json!([]),
            true,
        ),
        (
            "Exists, missing",
            json!([{"key": "rack", "operator": "Exists"}]),
            json!([]),
            false,
        ),
        (
            "DoesNotExist",
            json!([{"key": "rack", "operator": "DoesNotExist"}]),
            json!([]),
            true,
        ),
        (
            "DoesNotExist, present",
            json!([{"key": "zone", "operator": "DoesNotExist"}]),
            json!([]),
            false,
        ),
        (
            "Gt",
            json!([{"key": "gpu", "operator": "Gt", "values": ["3"]}]),
            json!([]),
            true,
        ),
        (
            "Gt, equal",
            json!([{"key": "gpu", "operator": "Gt", "values": ["4"]}]),
            json!([]),
            false,
        ),
        (
            "Lt",
            json!([{"key": "gpu", "operator": "Lt", "values": ["5"]}]),
            json!([]),
            true,
        ),
        (
            "Lt, not a number",
            json!([{"key": "zone", "operator": "Lt", "values": ["5"]}]),
            json!([]),
            false,
        ),
        (
            "matchFields name In",
            json!([]),
            json!([{"key": "metadata.name", "operator": "In", "values": ["n1"]}]),
            true,
        ),
        (
            "matchFields name In other",
            json!([]),
            json!([{"key": "metadata.name", "operator": "In", "values": ["n2"]}]),
            false,
        ),
        (
            "matchFields name NotIn",
            json!([]),
            json!([{"key": "metadata.name", "operator": "NotIn", "values": ["n2"]}]),
            true,
        ),
        ("empty term matches nothing", json!([]), json!([]), false),
        (
            "all requirements of a term must hold",
            json!([{"key": "zone", "operator": "In", "values": ["a"]}]),
            json!([{"key": "metadata.name", "operator": "In", "values": ["n2"]}]),
            false,
        ),
    ];
    for (rule, exprs, fields, fits) in cases {
        let got = fitness::check(
            &spec_with(affinity(exprs, fields)),
            &node("n1", labels.clone()),
        );
        assert_eq!(got.is_ok(), fits, "{rule}: {got:?}");
    }
    // Terms are ORed.
    let two_terms = json!({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
        {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["x"]}]},
            {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]}}}});
    assert!(fitness::check(&spec_with(two_terms), &node("n1", labels)).is_ok());
}

#[test]
fn an_untolerated_taint_is_named_as_the_scheduler_names_it() {
    let got = fitness::check(
        &spec_with(json!({})),
        &node(
            "n1",
            json!({"spec": {"taints": [{"key": "k", "value": "v", "effect": "NoSchedule"}]}}),
        ),
    );
    let Err(m @ Misfit::Taint { .. }) = got else {
        panic!("{got:?}")
    };
    assert_eq!(
        m.to_string(),
        "node(s) had taint {k: v}, that the pod didn't tolerate"
    );
}

#[test]
fn first_reconcile_creates_one_pinned_pod_per_eligible_node_and_starts() {
    let j = job(json!({"template": {"metadata": {"labels": {"app": "x"}},
        "spec": {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
            {"nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1", "n2"]}]}]}}}}}}));
    let nodes = [
        node("n1", json!({})),
        node("n2", json!({})),
        node("n3", json!({})),
        node(
            "tainted",
            json!({"spec": {"taints": [{"key": "k", "effect": "NoSchedule"}]}}),
        ),
    ];
    let p = run(&j, &[], &nodes, 0);
    assert_eq!(p.created_nodes(), vec!["n1", "n2"]);
    let pod = &p.creations[0][0].pod;
    assert_eq!(pod.metadata.generate_name.as_deref(), Some("bcj-"));
    let l = pod.metadata.labels.clone().unwrap();
    assert_eq!(l["broadcastjob-name"], "bcj");
    assert_eq!(l["broadcastjob-controller-uid"], "uid-1");
    assert_eq!(l["app"], "x");
    let owner = &pod.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        serde_json::to_value(owner).unwrap(),
        json!({"apiVersion": "apps.kruise.io/v1beta1", "kind": "BroadcastJob", "name": "bcj",
               "uid": "uid-1", "controller": true, "blockOwnerDeletion": true})
    );
    // The user's nodeName term is replaced by the one pinning the pod to its node.
    assert_eq!(
        serde_json::to_value(&pod.spec.as_ref().unwrap().affinity).unwrap(),
        json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms":
            [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}]}}})
    );
    assert_eq!(pod.spec.as_ref().unwrap().node_name, None);
    assert_eq!(assigned_node(pod), "n1");
    let st = p.status.unwrap();
    assert_eq!(
        (st.desired, st.active, st.succeeded, st.failed),
        (2, 2, 0, 0)
    );
    assert_eq!(st.phase, Some(BroadcastJobPhase::Running));
    assert_eq!(st.start_time, Some(Time(ts(0))));
}

#[test]
fn parallelism_and_slow_start_table() {
    let nodes: Vec<Node> = (0..10)
        .map(|i| node(&format!("n{i:02}"), json!({})))
        .collect();
    // (parallelism, running pods, expected batch sizes)
    let cases: Vec<(Value, usize, Vec<usize>)> = vec![
        (json!(null), 0, vec![1, 2, 4, 3]),
        (json!(3), 0, vec![1, 2]),
        (json!(3), 2, vec![1]),
        (json!(3), 3, vec![]),
        (json!("50%"), 0, vec![1, 2, 2]),
        (json!("25%"), 0, vec![1, 2]), // 2.5 rounds up to 3
        (json!("0%"), 0, vec![]),
        (json!(0), 0, vec![]),
    ];
    for (par, running, want) in cases {
        let j = if par.is_null() {
            job(json!({}))
        } else {
            job(json!({"parallelism": par}))
        };
        let pods: Vec<Pod> = (0..running)
            .map(|i| pod(&format!("p{i}"), &format!("n{i:02}"), "Running"))
            .collect();
        let p = run(&j, &pods, &nodes, 0);
        let sizes: Vec<usize> = p.creations.iter().map(Vec::len).collect();
        assert_eq!(sizes, want, "parallelism {par}, {running} running");
        assert_eq!(
            p.status.unwrap().active,
            i32::try_from(running + want.iter().sum::<usize>()).unwrap()
        );
    }
    assert_eq!(
        parallelism(Some(&IntOrString::String("10%".into())), 5),
        Some(1)
    );
    assert_eq!(parallelism(Some(&IntOrString::String("x".into())), 5), None);
}

#[test]
fn too_many_active_pods_is_reported_and_nothing_created() {
    let nodes: Vec<Node> = (0..3).map(|i| node(&format!("n{i}"), json!({}))).collect();
    let pods = [pod("a", "n0", "Running"), pod("b", "n1", "Running")];
    let p = run(&job(json!({"parallelism": 1})), &pods, &nodes, 0);
    assert!(p.creations.is_empty());
    assert_eq!(reasons(&p.events_before), vec!["TooManyActivePods"]);
}

#[test]
fn always_completes_when_every_desired_node_has_a_finished_pod() {
    let nodes = [node("n1", json!({})), node("n2", json!({}))];
    let j = with_status(
        job(json!({})),
        json!({"startTime": T0, "phase": "running", "active": 2, "desired": 2}),
    );
    let running = run(
        &j,
        &[pod("a", "n1", "Succeeded"), pod("b", "n2", "Running")],
        &nodes,
        5,
    );
    assert_eq!(
        running.status.as_ref().unwrap().phase,
        Some(BroadcastJobPhase::Running)
    );
    assert!(running.events_after.is_empty());

    let p = run(
        &j,
        &[pod("a", "n1", "Succeeded"), pod("b", "n2", "Succeeded")],
        &nodes,
        5,
    );
    let st = p.status.unwrap();
    assert_eq!(
        (st.desired, st.active, st.succeeded, st.failed),
        (2, 0, 2, 0)
    );
    assert_eq!(st.phase, Some(BroadcastJobPhase::Completed));
    assert_eq!(st.completion_time, Some(Time(ts(5))));
    let c = &st.conditions.unwrap()[0];
    assert_eq!(
        (
            c.type_.as_str(),
            c.status.as_str(),
            c.reason.as_deref(),
            c.message.as_deref()
        ),
        (
            "Complete",
            "True",
            Some("Complete"),
            Some("Job completed, 2 pods succeeded, 0 pods failed")
        )
    );
    assert_eq!(c.last_probe_time, Some(Time(ts(5))));
    assert_eq!(c.last_transition_time, Some(Time(ts(5))));
    assert_eq!(
        p.events_after,
        vec![PlannedEvent::normal(
            "JobComplete",
            "Job ns/bcj is completed, 2 pods succeeded, 0 pods failed"
        )]
    );
    assert_eq!(p.requeue_after, None, "no TTL, nothing to wait for");
}

#[test]
fn no_eligible_node_is_not_complete() {
    let j = job(json!({}));
    let p = run(
        &j,
        &[],
        &[node("t", json!({"spec": {"unschedulable": true}}))],
        0,
    );
    let st = p.status.unwrap();
    assert_eq!(
        (st.desired, st.phase),
        (0, Some(BroadcastJobPhase::Running))
    );
}

#[test]
fn ttl_after_finished_requeues_then_deletes_the_job() {
    let nodes = [node("n1", json!({}))];
    let j = with_status(
        job(json!({"completionPolicy": {"ttlSecondsAfterFinished": 30}})),
        json!({"startTime": T0, "phase": "running", "active": 1, "desired": 1}),
    );
    let p = run(&j, &[pod("a", "n1", "Succeeded")], &nodes, 10);
    assert_eq!(
        p.requeue_after,
        Some(Duration::from_secs(31)),
        "ttl + 1 s, as kruise"
    );
    let done = with_status(j, serde_json::to_value(p.status.unwrap()).unwrap());
    let early = run(&done, &[], &nodes, 20);
    assert_eq!(
        (early.delete_job, early.requeue_after),
        (false, Some(Duration::from_secs(20)))
    );
    assert_eq!(early.status, None, "a finished job's status is left alone");
    assert!(early.creations.is_empty());
    assert!(run(&done, &[], &nodes, 40).delete_job);
    // Without a TTL a finished job is never deleted.
    let mut keep = done.clone();
    keep.spec.completion_policy = None;
    assert!(!run(&keep, &[], &nodes, 4000).delete_job);
}

#[test]
fn active_deadline_fails_the_job_and_deletes_active_pods() {
    let nodes = [node("n1", json!({})), node("n2", json!({}))];
    let fresh = job(json!({"completionPolicy": {"activeDeadlineSeconds": 60}}));
    assert_eq!(
        run(&fresh, &[], &nodes, 0).requeue_after,
        Some(Duration::from_secs(60))
    );
    let j = with_status(
        fresh,
        json!({"startTime": T0, "phase": "running", "active": 2, "desired": 2}),
    );
    let before = run(
        &j,
        &[pod("a", "n1", "Succeeded"), pod("b", "n2", "Running")],
        &nodes,
        45,
    );
    assert_eq!(
        before.requeue_after,
        Some(Duration::from_secs(15)),
        "requeued at the deadline"
    );
    assert!(before.deletions.is_empty());

    let p = run(
        &j,
        &[pod("a", "n1", "Succeeded"), pod("b", "n2", "Running")],
        &nodes,
        60,
    );
    assert_eq!(p.deletions, vec!["b".to_string()]);
    let st = p.status.unwrap();
    assert_eq!((st.active, st.succeeded, st.failed), (0, 1, 1));
    assert_eq!(st.phase, Some(BroadcastJobPhase::Failed));
    let c = &st.conditions.unwrap()[0];
    assert_eq!(
        (c.type_.as_str(), c.reason.as_deref(), c.message.as_deref()),
        (
            "Failed",
            Some("Failed"),
            Some("Job ns/bcj was active longer than specified deadline")
        )
    );
    assert_eq!(
        p.events_after,
        vec![PlannedEvent::warning(
            "DeadlineExceeded",
            "Job ns/bcj was active longer than specified deadline: 1 pods succeeded, 1 pods failed"
        )]
    );
    assert!(p.creations.is_empty());
}

#[test]
fn never_mode_does_not_complete_and_gives_a_new_node_a_pod() {
    let j = with_status(
        job(json!({"completionPolicy": {"type": "Never"}})),
        json!({"startTime": T0, "phase": "running", "succeeded": 1, "desired": 1}),
    );
    let one = run(
        &j,
        &[pod("a", "n1", "Succeeded")],
        &[node("n1", json!({}))],
        5,
    );
    assert_eq!(one.status, None, "nothing changed: no write");
    assert!(one.creations.is_empty());
    let two = run(
        &j,
        &[pod("a", "n1", "Succeeded")],
        &[node("n1", json!({})), node("n2", json!({}))],
        5,
    );
    assert_eq!(two.created_nodes(), vec!["n2"]);
    let st = two.status.unwrap();
    assert_eq!(
        (st.desired, st.active, st.phase),
        (2, 1, Some(BroadcastJobPhase::Running))
    );
    // Even with a condition a Never job is not finished.
    assert!(!is_finished(&with_status(
        job(json!({"completionPolicy": {"type": "Never"}})),
        json!({"conditions": [{"type": "Complete", "status": "True"}]})
    )));
}

#[test]
fn failure_policy_table() {
    let nodes = [
        node("n1", json!({})),
        node("n2", json!({})),
        node("n3", json!({})),
    ];
    let pods = [pod("a", "n1", "Failed"), pod("b", "n2", "Running")];
    let status =
        json!({"startTime": T0, "phase": "running", "active": 1, "failed": 1, "desired": 3});

    // FailFast (the default): the job fails, active pods are deleted, two events as kruise.
    let p = run(
        &with_status(job(json!({})), status.clone()),
        &pods,
        &nodes,
        5,
    );
    assert_eq!(p.deletions, vec!["b".to_string()]);
    assert!(p.creations.is_empty());
    let st = p.status.unwrap();
    assert_eq!(
        (st.phase, st.active, st.failed),
        (Some(BroadcastJobPhase::Failed), 0, 2)
    );
    let c = &st.conditions.unwrap()[0];
    assert_eq!(
        (c.type_.as_str(), c.message.as_deref()),
        ("Failed", Some(FAIL_FAST_MESSAGE))
    );
    assert_eq!(
        p.events_before,
        vec![PlannedEvent::warning(
            FAIL_FAST_REASON,
            format!("{FAIL_FAST_MESSAGE}: 0 pods succeeded, 1 pods failed")
        )]
    );
    assert_eq!(
        p.events_after,
        vec![PlannedEvent::warning(
            FAIL_FAST_REASON,
            format!("{FAIL_FAST_MESSAGE}: 0 pods succeeded, 2 pods failed")
        )]
    );

    // Pause: spec.paused is set, phase paused, nothing else.
    let p = run(
        &with_status(
            job(json!({"failurePolicy": {"type": "Pause"}})),
            status.clone(),
        ),
        &pods,
        &nodes,
        5,
    );
    assert!(p.set_paused);
    assert!(p.deletions.is_empty() && p.creations.is_empty());
    assert_eq!(p.status.unwrap().phase, Some(BroadcastJobPhase::Paused));
    assert_eq!(
        p.events_before,
        vec![PlannedEvent::warning(
            "Paused",
            "job is paused, due to failed pod"
        )]
    );

    // Continue: goes on creating.
    let p = run(
        &with_status(job(json!({"failurePolicy": {"type": "Continue"}})), status),
        &pods,
        &nodes,
        5,
    );
    assert_eq!(p.created_nodes(), vec!["n3"]);
    assert!(!p.set_paused && p.deletions.is_empty());
    assert_eq!(p.status.unwrap().phase, Some(BroadcastJobPhase::Running));
}

#[test]
fn restart_limit_sums_restarts_of_on_failure_pods() {
    let restarted = |policy: &str, restarts: &[i32], init: i32| {
        let mut p = pod("a", "n1", "Running");
        p.spec.as_mut().unwrap().restart_policy = Some(policy.to_string());
        p.status = Some(
            serde_json::from_value(json!({"phase": "Running",
                "initContainerStatuses": [{"name": "i", "image": "i", "imageID": "", "ready": true, "restartCount": init}],
                "containerStatuses": restarts.iter().enumerate().map(|(n, r)| json!({"name": format!("c{n}"), "image": "i", "imageID": "", "ready": true, "restartCount": r})).collect::<Vec<_>>()}))
            .unwrap(),
        );
        p
    };
    // (policy, container restarts, init restarts, limit, failed)
    let cases = [
        ("OnFailure", vec![1, 1], 0, 2, false),
        ("OnFailure", vec![1, 1], 1, 2, true),
        ("OnFailure", vec![3], 0, 2, true),
        ("OnFailure", vec![0], 0, 0, false),
        ("Never", vec![9], 0, 0, false),
    ];
    for (policy, restarts, init, limit, want) in cases {
        let p = restarted(policy, &restarts, init);
        assert_eq!(
            exceeded_restart_limit(limit, &p),
            want,
            "{policy} {restarts:?}+{init} > {limit}"
        );
        let (active, failed, _) = filter_pods(limit, &[&p]);
        assert_eq!(
            (active.len(), failed.len()),
            (usize::from(!want), usize::from(want))
        );
    }
}

#[test]
fn paused_creates_nothing_and_resuming_continues() {
    let nodes = [node("n1", json!({}))];
    let p = run(&job(json!({"paused": true})), &[], &nodes, 0);
    assert!(p.creations.is_empty());
    let st = p.status.unwrap();
    assert_eq!((st.phase, st.desired), (Some(BroadcastJobPhase::Paused), 1));

    let resumed = run(
        &with_status(
            job(json!({})),
            json!({"startTime": T0, "phase": "paused", "desired": 1}),
        ),
        &[],
        &nodes,
        5,
    );
    assert_eq!(resumed.created_nodes(), vec!["n1"]);
    assert_eq!(
        resumed.events_before,
        vec![PlannedEvent::normal("Continue", "continue to process job")]
    );
}

#[test]
fn a_pod_on_a_node_it_no_longer_fits_is_deleted() {
    let tainted = node(
        "n1",
        json!({"spec": {"taints": [{"key": "k", "effect": "NoExecute"}]}}),
    );
    let j = with_status(
        job(json!({})),
        json!({"startTime": T0, "phase": "running", "active": 1, "desired": 1}),
    );
    let p = run(
        &j,
        &[pod("a", "n1", "Running")],
        &[tainted, node("n2", json!({}))],
        5,
    );
    assert_eq!(p.deletions, vec!["a".to_string()]);
    assert_eq!(p.created_nodes(), vec!["n2"]);
    let st = p.status.unwrap();
    // kruise counts a pod deleted this way as failed.
    assert_eq!((st.desired, st.active, st.failed), (1, 1, 1));
}

#[test]
fn a_failed_job_only_updates_its_counters() {
    let j = with_status(
        job(json!({"completionPolicy": {"type": "Never"}})),
        json!({"startTime": T0, "phase": "failed", "failed": 1, "desired": 1}),
    );
    let p = run(
        &j,
        &[pod("a", "n1", "Failed")],
        &[node("n1", json!({})), node("n2", json!({}))],
        5,
    );
    assert!(p.creations.is_empty() && p.deletions.is_empty());
    assert_eq!(p.status.unwrap().desired, 2);
}

#[test]
fn pods_being_deleted_count_nowhere_and_their_node_waits() {
    let mut going = pod("a", "n1", "Running");
    going.metadata.deletion_timestamp = Some(Time(ts(0)));
    let j = with_status(job(json!({})), json!({"startTime": T0, "phase": "running"}));
    let p = run(&j, &[going], &[node("n1", json!({}))], 5);
    assert!(
        p.creations.is_empty(),
        "no second pod while the first terminates"
    );
    let st = p.status.unwrap();
    assert_eq!((st.desired, st.active, st.failed), (1, 0, 0));
}

#[test]
fn two_pods_on_one_node_are_reported() {
    let j = with_status(job(json!({})), json!({"startTime": T0, "phase": "running"}));
    let p = run(
        &j,
        &[pod("a", "n1", "Running"), pod("b", "n1", "Running")],
        &[node("n1", json!({}))],
        5,
    );
    assert_eq!(
        p.events_before,
        vec![PlannedEvent::warning(
            "DuplicatePodCreatedOnSameNode",
            "Duplicated pod b found on same node n1"
        )]
    );
    assert!(p.creations.is_empty());
    let st = p.status.unwrap();
    assert_eq!((st.desired, st.active), (1, 2));
}

#[test]
fn init_containers_and_overhead_count_in_the_requests() {
    let n = node(
        "n1",
        json!({"status": {"allocatable": {"cpu": "1", "memory": "1Gi", "pods": "10"}}}),
    );
    let init = json!({"initContainers": [{"name": "i", "image": "i", "resources": {"requests": {"cpu": "1500m"}}}]});
    assert!(matches!(
        fitness::check(&spec_with(init), &n),
        Err(Misfit::Insufficient(_))
    ));
    let overhead = json!({"overhead": {"memory": "2Gi"}});
    assert!(fitness::check(&spec_with(overhead), &n).is_err());
    let limits_only =
        json!({"containers": [{"name": "c", "image": "i", "resources": {"limits": {"cpu": "2"}}}]});
    assert!(fitness::check(&spec_with(limits_only), &n).is_err());
}
