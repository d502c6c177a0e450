//! Table tests of the budget arithmetic, after kruise's `pub_controller_test.go`.

use super::*;
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

fn now() -> Timestamp {
    "2026-12-04T12:00:00Z".parse().unwrap()
}

fn ago(secs: i64) -> Time {
    Time(now() - SignedDuration::from_secs(secs))
}

/// A pod builder: `pod("a").ready()`.
struct P(Value);

fn pod(name: &str) -> P {
    P(json!({
        "metadata": {"name": name, "namespace": "ns", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "main", "image": "nginx:1"}]},
        "status": {"phase": "Pending"}
    }))
}

impl P {
    fn ready(mut self) -> Self {
        self.0["status"] = json!({"phase": "Running",
            "conditions": [{"type": "Ready", "status": "True"}]});
        self
    }
    fn phase(mut self, phase: &str) -> Self {
        self.0["status"]["phase"] = json!(phase);
        self
    }
    fn deleting(mut self) -> Self {
        self.0["metadata"]["deletionTimestamp"] = json!("2026-12-04T11:59:00Z");
        self
    }
    fn label(mut self, k: &str, v: &str) -> Self {
        self.0["metadata"]["labels"][k] = json!(v);
        self
    }
    fn annotation(mut self, k: &str, v: &str) -> Self {
        self.0["metadata"]["annotations"][k] = json!(v);
        self
    }
    fn owner(mut self, kind: &str, name: &str, uid: &str) -> Self {
        self.0["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": kind,
            "name": name, "uid": uid, "controller": true}]);
        self
    }
    fn build(self) -> Pod {
        serde_json::from_value(self.0).unwrap()
    }
}

fn budget(spec: Value, status: Option<Value>) -> PodUnavailableBudget {
    let mut v =
        json!({"metadata": {"name": "pub", "namespace": "ns", "generation": 2}, "spec": spec});
    if let Some(s) = status {
        v["status"] = s;
    }
    serde_json::from_value(v).unwrap()
}

fn run(b: &PodUnavailableBudget, pods: &[Pod], total: i32) -> Plan {
    let refs: Vec<&Pod> = pods.iter().collect();
    plan(&Snapshot {
        budget: b,
        pods: &refs,
        total_replicas: total,
        now: now(),
    })
    .unwrap()
}

fn counts(p: &Plan) -> (i32, i32, i32, i32) {
    (
        p.status.total_replicas,
        p.status.desired_available,
        p.status.current_available,
        p.status.unavailable_allowed,
    )
}

fn ready_pods(n: usize) -> Vec<Pod> {
    (0..n)
        .map(|i| pod(&format!("p{i}")).ready().build())
        .collect()
}

#[test]
fn desired_available_rounding_table() {
    // (spec, total, desired): kruise rounds percentages up for both fields.
    let table = [
        (json!({"maxUnavailable": 1}), 4, 3),
        (json!({"maxUnavailable": "25%"}), 10, 7),
        (json!({"maxUnavailable": "30%"}), 5, 3),
        (json!({"maxUnavailable": "100%"}), 5, 0),
        (json!({"maxUnavailable": 9}), 5, 0),
        (json!({"minAvailable": "25%"}), 10, 3),
        (json!({"minAvailable": "50%"}), 5, 3),
        (json!({"minAvailable": 7}), 5, 7),
        (json!({"maxUnavailable": 1, "minAvailable": 9}), 10, 9),
        (json!({"maxUnavailable": "10%"}), 0, 0),
    ];
    for (spec, total, want) in table {
        let mut spec = spec;
        spec["selector"] = json!({"matchLabels": {"app": "web"}});
        let b = budget(spec.clone(), None);
        assert_eq!(
            run(&b, &[], total).status.desired_available,
            want,
            "{spec} of {total}"
        );
    }
}

#[test]
fn four_ready_pods_max_unavailable_one() {
    let b = budget(
        json!({"selector": {"matchLabels": {"app": "web"}}, "maxUnavailable": 1}),
        None,
    );
    let p = run(&b, &ready_pods(4), 4);
    assert_eq!(counts(&p), (4, 3, 4, 1));
    assert_eq!(p.status.observed_generation, 2);
    assert!(p.changed);
    assert_eq!(p.recheck_after, None);
    // Written once, nothing changes on the next pass.
    let b2 = budget(
        json!({"selector": {"matchLabels": {"app": "web"}}, "maxUnavailable": 1}),
        Some(serde_json::to_value(&p.status).unwrap()),
    );
    assert!(!run(&b2, &ready_pods(4), 4).changed);
}

#[test]
fn which_pods_count_as_available() {
    // (pod, counts)
    let table = [
        (pod("ready").ready().build(), true),
        (pod("pending").build(), false),
        (pod("running-unready").phase("Running").build(), false),
        (pod("deleting").ready().deleting().build(), false),
        (pod("succeeded").ready().phase("Succeeded").build(), false),
        (
            pod("unavailable-label")
                .ready()
                .label("unavailable-pod.kruise.io/drain", "true")
                .build(),
            false,
        ),
        // An in-place update recorded but not run yet: the container still runs the old image.
        (
            pod("inplace")
                .ready()
                .annotation(
                    "apps.kruise.io/inplace-update-state",
                    r#"{"revision":"v2","updateTimestamp":"2026-12-04T11:59:00Z","lastContainerStatuses":{"main":{"imageID":"docker.io/nginx@sha256:old"}}}"#,
                )
                .build(),
            false,
        ),
        // Bypassing protection does not leave the count (kruise counts them).
        (pod("no-protect").ready().annotation("pub.kruise.io/no-protect", "true").build(), true),
    ];
    for (p, want) in table {
        assert_eq!(is_available(&p), want, "{:?}", p.metadata.name);
    }
}

#[test]
fn digest_images_must_be_the_running_ones() {
    let mut p = pod("d").ready().build();
    p.spec.as_mut().unwrap().containers[0].image = Some("nginx@sha256:abc".into());
    assert!(!is_consistent(&p));
    p.status.as_mut().unwrap().container_statuses = Some(vec![
        serde_json::from_value(json!({
        "name": "main", "image": "nginx", "imageID": "docker.io/library/nginx@sha256:abc",
        "ready": true, "restartCount": 0}))
        .unwrap(),
    ]);
    assert!(is_consistent(&p));
}

#[test]
fn recorded_pods_count_as_unavailable_until_they_expire() {
    let spec = json!({"selector": {"matchLabels": {"app": "web"}}, "maxUnavailable": 1});
    // (disrupted ages, unavailable ages, kept disrupted, kept unavailable, current, not deleted)
    type Row = (
        &'static [(&'static str, i64)],
        &'static [(&'static str, i64)],
        &'static [&'static str],
        &'static [&'static str],
        i32,
        &'static [&'static str],
    );
    let table: [Row; 6] = [
        (&[("p0", 5)], &[], &["p0"], &[], 3, &[]),
        (&[("p0", 20)], &[], &["p0"], &[], 3, &[]),
        (&[("p0", 21)], &[], &[], &[], 4, &["p0"]),
        (&[], &[("p1", 9)], &[], &["p1"], 3, &[]),
        (&[], &[("p1", 11)], &[], &[], 4, &[]),
        // Pods that are gone lose their entries at once.
        (&[("gone", 1)], &[("gone-too", 1)], &[], &[], 4, &[]),
    ];
    for (disrupted, unavailable, keep_d, keep_u, current, warned) in table {
        let map = |m: &[(&str, i64)]| -> Value {
            m.iter()
                .map(|(n, a)| (n.to_string(), serde_json::to_value(ago(*a)).unwrap()))
                .collect::<serde_json::Map<_, _>>()
                .into()
        };
        let b = budget(
            spec.clone(),
            Some(
                json!({"disruptedPods": map(disrupted), "unavailablePods": map(unavailable),
                "unavailableAllowed": 0, "currentAvailable": 3, "desiredAvailable": 3, "totalReplicas": 4}),
            ),
        );
        let p = run(&b, &ready_pods(4), 4);
        let keys = |m: &Option<BTreeMap<String, Time>>| -> Vec<String> {
            m.iter().flat_map(|m| m.keys().cloned()).collect()
        };
        assert_eq!(
            keys(&p.status.disrupted_pods),
            keep_d.to_vec(),
            "{disrupted:?}"
        );
        assert_eq!(
            keys(&p.status.unavailable_pods),
            keep_u.to_vec(),
            "{unavailable:?}"
        );
        assert_eq!(
            p.status.current_available, current,
            "{disrupted:?} {unavailable:?}"
        );
        assert_eq!(p.status.unavailable_allowed, (current - 3).max(0));
        assert_eq!(p.not_deleted, warned.to_vec());
    }
}

#[test]
fn requeue_at_the_next_expiry() {
    let b = budget(
        json!({"selector": {"matchLabels": {"app": "web"}}, "maxUnavailable": 1}),
        Some(
            json!({"disruptedPods": {"p0": ago(5)}, "unavailablePods": {"p1": ago(8)},
            "unavailableAllowed": 0, "currentAvailable": 2, "desiredAvailable": 3, "totalReplicas": 4}),
        ),
    );
    let p = run(&b, &ready_pods(4), 4);
    // p1 expires first: 10 s after it was recorded 8 s ago (plus the margin).
    assert_eq!(p.recheck_after, Some(Duration::from_millis(2500)));
    assert_eq!(counts(&p), (4, 3, 2, 0));
}

#[test]
fn inactive_pods_are_dropped_at_once_and_not_counted() {
    let b = budget(
        json!({"selector": {"matchLabels": {"app": "web"}}, "maxUnavailable": 1}),
        Some(
            json!({"disruptedPods": {"p0": ago(1)}, "unavailablePods": {"p1": ago(1)},
            "unavailableAllowed": 0, "currentAvailable": 2, "desiredAvailable": 3, "totalReplicas": 4}),
        ),
    );
    let pods = vec![
        pod("p0").ready().deleting().build(),
        pod("p1").ready().phase("Failed").build(),
        pod("p2").ready().build(),
        pod("p3").ready().build(),
    ];
    let p = run(&b, &pods, 4);
    assert_eq!(p.status.disrupted_pods, None);
    assert_eq!(p.status.unavailable_pods, None);
    assert_eq!(counts(&p), (4, 3, 2, 0));
    assert!(p.not_deleted.is_empty());
}

#[test]
fn selector_budgets_select_active_pods_of_their_namespace() {
    let b = budget(
        json!({"selector": {"matchLabels": {"app": "web"}}, "maxUnavailable": 1}),
        None,
    );
    let mut other_ns = pod("x").ready().build();
    other_ns.metadata.namespace = Some("elsewhere".into());
    let pods = [
        pod("a").ready().build(),
        pod("b").label("app", "db").ready().build(),
        pod("c").ready().deleting().build(),
        other_ns,
    ];
    let refs: Vec<&Pod> = pods.iter().collect();
    let names: Vec<_> = selected_pods(&b, &refs)
        .iter()
        .map(|p| p.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(names, vec!["a".to_string()]);
    // An empty selector selects nothing (kruise's `labelSelector.Empty()` guard).
    let empty = budget(json!({"selector": {}, "maxUnavailable": 1}), None);
    assert!(selected_pods(&empty, &refs).is_empty());
}

#[test]
fn ignored_pods_still_count() {
    let b = budget(
        json!({"selector": {"matchLabels": {"app": "web"}}, "maxUnavailable": 1,
               "ignoredPodSelector": {"matchLabels": {"canary": "true"}}}),
        None,
    );
    let mut pods = ready_pods(3);
    pods.push(pod("canary").label("canary", "true").ready().build());
    assert!(b.ignores_pod(pods[3].metadata.labels.as_ref().unwrap()));
    assert_eq!(counts(&run(&b, &pods, 4)), (4, 3, 4, 1));
}

#[test]
fn target_kinds_and_owned_pods() {
    // (kind, how its pods and replicas are found)
    let table = [
        ("CloneSet", TargetKind::Direct),
        ("StatefulSet", TargetKind::Direct),
        ("ReplicationController", TargetKind::Direct),
        ("Deployment", TargetKind::Deployment),
        ("ReplicaSet", TargetKind::ReplicaSet),
        ("Rollout", TargetKind::Custom),
        ("GameServerSet", TargetKind::Custom),
    ];
    for (kind, want) in table {
        assert_eq!(TargetKind::of(kind), want, "{kind}");
    }
    let pods = [
        pod("a").ready().owner("ReplicaSet", "web-1", "rs1").build(),
        pod("b").ready().owner("ReplicaSet", "web-2", "rs2").build(),
        pod("c").ready().owner("ReplicaSet", "other", "rs3").build(),
        pod("d")
            .ready()
            .owner("ReplicaSet", "web-1", "rs1")
            .deleting()
            .build(),
    ];
    let refs: Vec<&Pod> = pods.iter().collect();
    let owned: Vec<_> = owned_pods("ns", &["rs1".into(), "rs2".into()], &refs)
        .iter()
        .map(|p| p.metadata.name.clone().unwrap())
        .collect();
    assert_eq!(owned, vec!["a".to_string(), "b".to_string()]);
    let controllers: Vec<_> = controllers_of(&refs).into_iter().map(|o| o.uid).collect();
    assert_eq!(controllers, vec!["rs1", "rs2", "rs3"]);
}

#[test]
fn protect_total_replicas_overrides_the_workload() {
    let b = budget(
        json!({"selector": {"matchLabels": {"app": "web"}}, "maxUnavailable": "50%",
        "protectTotalReplicas": 6}),
        None,
    );
    assert_eq!(total_replicas(&b, 4), 6);
    assert_eq!(
        counts(&run(&b, &ready_pods(4), total_replicas(&b, 4))),
        (6, 3, 4, 1)
    );
    let plain = budget(
        json!({"selector": {"matchLabels": {"app": "web"}}, "maxUnavailable": 1}),
        None,
    );
    assert_eq!(total_replicas(&plain, 4), 4);
}
