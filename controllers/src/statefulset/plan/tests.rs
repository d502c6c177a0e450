//! Table tests of the Advanced StatefulSet planner, ported from the rules of kruise's
//! `stateful_set_control.go` (and its `stateful_set_control_test.go` scenarios).

use std::collections::BTreeMap;
use std::time::Duration;

use graft_api::apps::common::LifecycleState;
use graft_api::apps::v1beta1::StatefulSet;
use graft_api::labels;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use k8s_openapi::jiff::Timestamp;
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::*;
use crate::statefulset::claims;

const CUR: &str = "web-r1";
const UPD: &str = "web-r2";

fn now() -> Timestamp {
    "2026-01-01T00:10:00Z".parse().unwrap()
}

fn at(s: &str) -> Timestamp {
    s.parse().unwrap()
}

/// A set `web` with `replicas` and `spec` merged into a minimal spec.
fn set(replicas: i32, spec: Value) -> StatefulSet {
    let mut v = json!({
        "apiVersion": "apps.kruise.io/v1beta1",
        "kind": "StatefulSet",
        "metadata": {"name": "web", "namespace": "ns", "uid": "set-uid", "generation": 2},
        "spec": {
            "replicas": replicas,
            "serviceName": "web",
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "nginx:2"}]}}
        }
    });
    if let (Some(m), Some(e)) = (v["spec"].as_object_mut(), spec.as_object()) {
        for (k, val) in e {
            m.insert(k.clone(), val.clone());
        }
    }
    serde_json::from_value(v).unwrap()
}

fn parallel(replicas: i32, rolling: Value) -> StatefulSet {
    set(
        replicas,
        json!({"podManagementPolicy": "Parallel",
            "updateStrategy": {"rollingUpdate": rolling}}),
    )
}

/// A running, ready pod at the current revision.
fn pod(ordinal: i64) -> PodInfo {
    PodInfo {
        name: format!("web-{ordinal}"),
        uid: Some(format!("uid-{ordinal}")),
        labels: [
            (
                labels::CONTROLLER_REVISION_HASH.to_string(),
                CUR.to_string(),
            ),
            (
                labels::STATEFULSET_POD_NAME.to_string(),
                format!("web-{ordinal}"),
            ),
        ]
        .into(),
        phase: PodPhase::Running,
        node_name: Some("node".into()),
        ready: true,
        ready_since: Some(at("2026-01-01T00:00:00Z")),
        identity_matches: true,
        storage_matches: true,
        ..PodInfo::default()
    }
}

trait PodExt {
    fn rev(self, r: &str) -> Self;
    fn pending(self) -> Self;
    fn not_ready(self) -> Self;
    fn terminating(self) -> Self;
    fn phase(self, p: PodPhase) -> Self;
    fn label(self, k: &str, v: &str) -> Self;
    fn state(self, s: &str) -> Self;
    fn ready_since(self, t: &str) -> Self;
    fn not_in_place(self) -> Self;
    fn finalizer(self, f: &str) -> Self;
}

impl PodExt for PodInfo {
    fn rev(self, r: &str) -> Self {
        self.label(labels::CONTROLLER_REVISION_HASH, r)
    }
    fn pending(mut self) -> Self {
        self.phase = PodPhase::Pending;
        self.ready = false;
        self.ready_since = None;
        self
    }
    fn not_ready(mut self) -> Self {
        self.ready = false;
        self.ready_since = None;
        self
    }
    fn terminating(mut self) -> Self {
        self.terminating = true;
        self
    }
    fn phase(mut self, p: PodPhase) -> Self {
        self.phase = p;
        self
    }
    fn label(mut self, k: &str, v: &str) -> Self {
        self.labels.insert(k.into(), v.into());
        self
    }
    fn state(self, s: &str) -> Self {
        self.label(labels::LIFECYCLE_STATE, s)
    }
    fn ready_since(mut self, t: &str) -> Self {
        self.ready_since = Some(at(t));
        self
    }
    fn not_in_place(mut self) -> Self {
        self.in_place.possible = Err("spec.containers[0].env changed".into());
        self
    }
    fn finalizer(mut self, f: &str) -> Self {
        self.finalizers.push(f.into());
        self
    }
}

fn snap(set: StatefulSet, pods: Vec<PodInfo>) -> Snapshot {
    Snapshot {
        set,
        pods,
        claims: Vec::new(),
        update_revision: UPD.into(),
        current_revision: CUR.into(),
        collision_count: None,
        label_selector: "app=web".into(),
        storage_classes: BTreeMap::new(),
        now: now(),
    }
}

/// A snapshot without an update in progress (current = update revision).
fn steady(set: StatefulSet, pods: Vec<PodInfo>) -> Snapshot {
    let mut s = snap(set, pods);
    s.update_revision = CUR.into();
    s
}

fn pods(ordinals: &[i64]) -> Vec<PodInfo> {
    ordinals.iter().map(|o| pod(*o)).collect()
}

fn create(ordinal: i64, revision: &str) -> Action {
    Action::CreatePod {
        ordinal,
        name: format!("web-{ordinal}"),
        revision: revision.into(),
    }
}

fn delete(ordinal: i64) -> Action {
    Action::DeletePod {
        name: format!("web-{ordinal}"),
        uid: Some(format!("uid-{ordinal}")),
    }
}

fn lifecycle(ordinal: i64, state: LifecycleState) -> Action {
    Action::SetLifecycleState {
        name: format!("web-{ordinal}"),
        state,
        mark_pod_not_ready: false,
    }
}

fn in_place(ordinal: i64, set_updating: bool) -> Action {
    Action::UpdateInPlace {
        name: format!("web-{ordinal}"),
        revision: UPD.into(),
        set_updating,
    }
}

/// Runs a table of (name, snapshot, expected actions).
fn check(cases: Vec<(&str, Snapshot, Vec<Action>)>) {
    for (name, s, want) in cases {
        let p = plan(&s);
        assert_eq!(p.actions, want, "{name} (waiting: {:?})", p.waiting);
    }
}

#[test]
fn ordered_ready_scale_up_creates_one_pod_at_a_time() {
    let s = || set(3, json!({}));
    check(vec![
        (
            "0→3: the lowest ordinal first",
            steady(s(), vec![]),
            vec![create(0, CUR)],
        ),
        (
            "web-0 pending: wait",
            steady(s(), vec![pod(0).pending()]),
            vec![],
        ),
        (
            "web-0 running but not ready: wait",
            steady(s(), vec![pod(0).not_ready()]),
            vec![],
        ),
        (
            "web-0 ready: web-1",
            steady(s(), pods(&[0])),
            vec![create(1, CUR)],
        ),
        (
            "0 and 1 ready: web-2",
            steady(s(), pods(&[0, 1])),
            vec![create(2, CUR)],
        ),
        ("all there", steady(s(), pods(&[0, 1, 2])), vec![]),
        (
            "a missing lower ordinal is created first",
            steady(s(), pods(&[0, 2])),
            vec![create(1, CUR)],
        ),
        (
            "stop at the first unhealthy pod",
            steady(s(), vec![pod(0).not_ready(), pod(1)]),
            vec![],
        ),
    ]);
    let p = plan(&steady(s(), vec![pod(0).pending()]));
    assert_eq!(
        p.waiting.as_deref(),
        Some("waiting for pod web-0 to be running and ready")
    );
}

#[test]
fn ordered_ready_waits_for_min_ready_seconds() {
    let s = set(
        3,
        json!({"updateStrategy": {"rollingUpdate": {"minReadySeconds": 30}}}),
    );
    // Ready 10 s ago: 20 s to go.
    let p = plan(&steady(
        s.clone(),
        vec![pod(0).ready_since("2026-01-01T00:09:50Z")],
    ));
    assert_eq!(p.actions, vec![]);
    assert_eq!(p.requeue_after, Some(Duration::from_secs(20)));
    // Ready 30 s ago: available.
    let p = plan(&steady(s, vec![pod(0).ready_since("2026-01-01T00:09:30Z")]));
    assert_eq!(p.actions, vec![create(1, CUR)]);
}

#[test]
fn reserved_and_start_ordinals() {
    let reserve = |replicas| set(replicas, json!({"reserveOrdinals": [1]}));
    check(vec![
        (
            "reserve [1]: web-0 first",
            steady(reserve(3), vec![]),
            vec![create(0, CUR)],
        ),
        (
            "then web-2",
            steady(reserve(3), pods(&[0])),
            vec![create(2, CUR)],
        ),
        (
            "then web-3",
            steady(reserve(3), pods(&[0, 2])),
            vec![create(3, CUR)],
        ),
        (
            "done at 0, 2, 3",
            steady(reserve(3), pods(&[0, 2, 3])),
            vec![],
        ),
        (
            "a pod at a newly reserved ordinal is condemned after the new one is up",
            steady(reserve(3), pods(&[0, 1, 2])),
            vec![create(3, CUR)],
        ),
        (
            "then it is deleted",
            steady(reserve(3), pods(&[0, 1, 2, 3])),
            vec![delete(1)],
        ),
        (
            "ranges",
            steady(set(2, json!({"reserveOrdinals": ["0-2"]})), pods(&[3])),
            vec![create(4, CUR)],
        ),
        (
            "ordinals.start",
            steady(set(2, json!({"ordinals": {"start": 5}})), pods(&[5])),
            vec![create(6, CUR)],
        ),
        (
            "pods below ordinals.start are condemned",
            steady(set(1, json!({"ordinals": {"start": 1}})), pods(&[0, 1])),
            vec![delete(0)],
        ),
    ]);
}

#[test]
fn parallel_scale_up_creates_all_missing_pods() {
    let s = || set(3, json!({"podManagementPolicy": "Parallel"}));
    check(vec![
        (
            "0→3 at once",
            steady(s(), vec![]),
            vec![create(0, CUR), create(1, CUR), create(2, CUR)],
        ),
        (
            "not blocked by an unready pod",
            steady(s(), vec![pod(0).pending()]),
            vec![create(1, CUR), create(2, CUR)],
        ),
    ]);
}

#[test]
fn scale_max_unavailable_limits_parallel_scale_up() {
    // kruise TestScaleUpWithMaxUnavailable: 5 replicas, scaleStrategy.maxUnavailable 2.
    let s = || {
        set(
            5,
            json!({"podManagementPolicy": "Parallel", "scaleStrategy": {"maxUnavailable": 2}}),
        )
    };
    check(vec![
        (
            "two at first",
            steady(s(), vec![]),
            vec![create(0, CUR), create(1, CUR)],
        ),
        (
            "both pending: nothing more",
            steady(s(), vec![pod(0).pending(), pod(1).pending()]),
            vec![],
        ),
        (
            "web-1 ready: one more",
            steady(s(), vec![pod(0).pending(), pod(1)]),
            vec![create(2, CUR)],
        ),
        (
            "all ready: two more",
            steady(s(), pods(&[0, 1, 2])),
            vec![create(3, CUR), create(4, CUR)],
        ),
        (
            "percent rounds down (40% of 5 = 2)",
            steady(
                set(
                    5,
                    json!({"podManagementPolicy": "Parallel",
                        "scaleStrategy": {"maxUnavailable": "40%"}}),
                ),
                vec![],
            ),
            vec![create(0, CUR), create(1, CUR)],
        ),
    ]);
}

#[test]
fn scale_in_removes_the_highest_ordinal_first() {
    check(vec![
        (
            "OrderedReady 3→1: web-2 only",
            steady(set(1, json!({})), pods(&[0, 1, 2])),
            vec![delete(2)],
        ),
        (
            "web-2 terminating: wait for it",
            steady(
                set(1, json!({})),
                vec![pod(0), pod(1), pod(2).terminating()],
            ),
            vec![],
        ),
        (
            "then web-1",
            steady(set(1, json!({})), pods(&[0, 1])),
            vec![delete(1)],
        ),
        (
            "an unready replica blocks scale-in",
            steady(set(1, json!({})), vec![pod(0).not_ready(), pod(1), pod(2)]),
            vec![],
        ),
        (
            "an unready condemned pod other than the lowest unhealthy blocks",
            steady(
                set(1, json!({})),
                vec![pod(0), pod(1).not_ready(), pod(2).not_ready()],
            ),
            vec![],
        ),
        (
            "the lowest unhealthy pod may go even though unhealthy",
            steady(set(1, json!({})), vec![pod(0), pod(1).not_ready()]),
            vec![delete(1)],
        ),
        (
            "Parallel: all condemned at once",
            steady(
                set(1, json!({"podManagementPolicy": "Parallel"})),
                vec![pod(0), pod(1).not_ready(), pod(2)],
            ),
            vec![delete(2), delete(1)],
        ),
        (
            "to zero",
            steady(set(0, json!({})), pods(&[0, 1])),
            vec![delete(1)],
        ),
    ]);
}

#[test]
fn finished_pods_are_recreated() {
    check(vec![
        (
            "failed: deleted, then recreated at the same ordinal",
            steady(
                set(3, json!({})),
                vec![pod(0), pod(1).phase(PodPhase::Failed), pod(2)],
            ),
            vec![delete(1)],
        ),
        (
            "succeeded too",
            steady(
                set(3, json!({})),
                vec![pod(0).phase(PodPhase::Succeeded), pod(1), pod(2)],
            ),
            vec![delete(0)],
        ),
        (
            "the recreation",
            steady(set(3, json!({})), vec![pod(0), pod(2)]),
            vec![create(1, CUR)],
        ),
        (
            "Parallel: failed ones deleted, the rest goes on",
            steady(
                set(3, json!({"podManagementPolicy": "Parallel"})),
                vec![pod(0).phase(PodPhase::Failed), pod(2)],
            ),
            vec![delete(0), create(1, CUR)],
        ),
        (
            "scaleStrategy.maxUnavailable 1 still deletes the failed pod, then stops",
            steady(
                set(
                    3,
                    json!({"podManagementPolicy": "Parallel", "scaleStrategy": {"maxUnavailable": 1}}),
                ),
                vec![pod(0).phase(PodPhase::Failed), pod(2)],
            ),
            vec![delete(0)],
        ),
    ]);
}

#[test]
fn specified_delete_recreates_at_the_same_ordinal() {
    let del = |o| pod(o).label(labels::SPECIFIED_DELETE, "true");
    check(vec![
        (
            "deleted even within the partition",
            steady(
                set(
                    3,
                    json!({"updateStrategy": {"rollingUpdate": {"partition": 3}}}),
                ),
                vec![pod(0), del(1), pod(2)],
            ),
            vec![delete(1)],
        ),
        (
            "Parallel: within maxUnavailable, highest first",
            steady(
                parallel(4, json!({"maxUnavailable": 1})),
                vec![pod(0), del(1), pod(2), del(3)],
            ),
            vec![delete(3)],
        ),
        (
            "an unavailable pod may always go",
            steady(
                parallel(4, json!({"maxUnavailable": 1})),
                vec![pod(0), del(1).not_ready(), pod(2), del(3)],
            ),
            vec![delete(1)],
        ),
    ]);
}

#[test]
fn pre_delete_hook_holds_the_pod() {
    let hooked = || {
        set(
            1,
            json!({"lifecycle": {"preDelete": {"labelsHandler": {"hold": "true"}}}}),
        )
    };
    let held = |o| pod(o).label("hold", "true");
    check(vec![
        (
            "hooked: PreparingDelete instead of delete",
            steady(hooked(), vec![pod(0), held(1)]),
            vec![lifecycle(1, LifecycleState::PreparingDelete)],
        ),
        (
            "waiting in PreparingDelete",
            steady(
                hooked(),
                vec![
                    pod(0),
                    held(1).state(labels::LIFECYCLE_STATE_PREPARING_DELETE),
                ],
            ),
            vec![],
        ),
        (
            "released: deleted",
            steady(
                hooked(),
                vec![
                    pod(0),
                    pod(1).state(labels::LIFECYCLE_STATE_PREPARING_DELETE),
                ],
            ),
            vec![delete(1)],
        ),
        (
            "not hooked: deleted directly",
            steady(hooked(), pods(&[0, 1])),
            vec![delete(1)],
        ),
    ]);
    let p = plan(&steady(
        hooked(),
        vec![
            pod(0),
            held(1).state(labels::LIFECYCLE_STATE_PREPARING_DELETE),
        ],
    ));
    assert_eq!(
        p.waiting.as_deref(),
        Some("waiting for the preDelete hook to release pod web-1")
    );
    // markPodNotReady is passed on.
    let s = set(
        1,
        json!({"lifecycle": {"preDelete": {"labelsHandler": {"hold": "true"}, "markPodNotReady": true}}}),
    );
    assert_eq!(
        plan(&steady(s, vec![pod(0), held(1)])).actions,
        vec![Action::SetLifecycleState {
            name: "web-1".into(),
            state: LifecycleState::PreparingDelete,
            mark_pod_not_ready: true,
        }]
    );
}

#[test]
fn partition_keeps_the_first_ordinals() {
    // 1.8 rule: partition = number of pods kept at the current revision.
    check(vec![
        (
            "partition 3 of 6, Parallel maxUnavailable 6: ordinals 5, 4, 3",
            snap(
                parallel(6, json!({"partition": 3, "maxUnavailable": 6})),
                pods(&[0, 1, 2, 3, 4, 5]),
            ),
            vec![delete(5), delete(4), delete(3)],
        ),
        (
            "partition 3 of 6, OrderedReady: web-5 first",
            snap(
                set(
                    6,
                    json!({"updateStrategy": {"rollingUpdate": {"partition": 3}}}),
                ),
                pods(&[0, 1, 2, 3, 4, 5]),
            ),
            vec![delete(5)],
        ),
        (
            "OrderedReady: web-5 updated and ready → web-4",
            snap(
                set(
                    6,
                    json!({"updateStrategy": {"rollingUpdate": {"partition": 3}}}),
                ),
                vec![pod(0), pod(1), pod(2), pod(3), pod(4), pod(5).rev(UPD)],
            ),
            vec![delete(4)],
        ),
        (
            "OrderedReady: 3, 4, 5 updated: partition reached",
            snap(
                set(
                    6,
                    json!({"updateStrategy": {"rollingUpdate": {"partition": 3}}}),
                ),
                vec![
                    pod(0),
                    pod(1),
                    pod(2),
                    pod(3).rev(UPD),
                    pod(4).rev(UPD),
                    pod(5).rev(UPD),
                ],
            ),
            vec![],
        ),
        (
            "reserved ordinals are skipped: reserve [1], 4 replicas (0, 2, 3, 4), partition 2",
            snap(
                set(
                    4,
                    json!({"podManagementPolicy": "Parallel", "reserveOrdinals": [1],
                        "updateStrategy": {"rollingUpdate": {"partition": 2, "maxUnavailable": 4}}}),
                ),
                pods(&[0, 2, 3, 4]),
            ),
            vec![delete(4), delete(3)],
        ),
        (
            "partition ≥ replicas: nothing",
            snap(
                parallel(3, json!({"partition": 5, "maxUnavailable": 3})),
                pods(&[0, 1, 2]),
            ),
            vec![],
        ),
        (
            "a recreated pod within the partition gets the current revision",
            snap(
                set(
                    3,
                    json!({"updateStrategy": {"rollingUpdate": {"partition": 2}}}),
                ),
                vec![pod(0), pod(2).rev(UPD)],
            ),
            vec![create(1, CUR)],
        ),
        (
            "one above it gets the update revision",
            snap(
                set(
                    3,
                    json!({"updateStrategy": {"rollingUpdate": {"partition": 2}}}),
                ),
                vec![pod(0), pod(1)],
            ),
            vec![create(2, UPD)],
        ),
    ]);
    let p = plan(&snap(
        set(
            6,
            json!({"updateStrategy": {"rollingUpdate": {"partition": 3}}}),
        ),
        vec![
            pod(0),
            pod(1),
            pod(2),
            pod(3).rev(UPD),
            pod(4).rev(UPD),
            pod(5).rev(UPD),
        ],
    ));
    assert_eq!(
        p.waiting.as_deref(),
        Some("partition reached: 3 pod(s) kept at the current revision (partition 3)")
    );
}

#[test]
fn max_unavailable_on_parallel() {
    check(vec![
        (
            "maxUnavailable 2: two at once, highest first",
            snap(
                parallel(5, json!({"maxUnavailable": 2})),
                pods(&[0, 1, 2, 3, 4]),
            ),
            vec![delete(4), delete(3)],
        ),
        (
            "one updated pod not ready yet uses one of the two",
            snap(
                parallel(5, json!({"maxUnavailable": 2})),
                vec![pod(0), pod(1), pod(2), pod(3), pod(4).rev(UPD).pending()],
            ),
            vec![delete(3)],
        ),
        (
            "a pod to recreate counts as unavailable",
            snap(
                parallel(5, json!({"maxUnavailable": 2})),
                pods(&[0, 1, 2, 3]),
            ),
            vec![create(4, UPD), delete(3)],
        ),
        (
            "an unavailable old pod is updated without using the budget",
            snap(
                parallel(5, json!({"maxUnavailable": 2})),
                vec![pod(0), pod(1), pod(2), pod(3), pod(4).not_ready()],
            ),
            vec![delete(4), delete(3)],
        ),
        (
            "the first blocked pod stops the walk (kruise returns there)",
            snap(
                parallel(5, json!({"maxUnavailable": 2})),
                vec![pod(0), pod(1), pod(2).not_ready(), pod(3), pod(4)],
            ),
            vec![delete(4)],
        ),
        (
            "50% of 5 rounds down to 2",
            snap(
                parallel(5, json!({"maxUnavailable": "50%"})),
                pods(&[0, 1, 2, 3, 4]),
            ),
            vec![delete(4), delete(3)],
        ),
        (
            "10% of 5 is at least 1",
            snap(
                parallel(5, json!({"maxUnavailable": "10%"})),
                pods(&[0, 1, 2, 3, 4]),
            ),
            vec![delete(4)],
        ),
        (
            "OrderedReady is always 1",
            snap(
                set(
                    5,
                    json!({"updateStrategy": {"rollingUpdate": {"maxUnavailable": 3}}}),
                ),
                pods(&[0, 1, 2, 3, 4]),
            ),
            vec![delete(4)],
        ),
    ]);
}

#[test]
fn min_ready_seconds_counts_fresh_pods_unavailable_in_updates() {
    let s = parallel(3, json!({"maxUnavailable": 1, "minReadySeconds": 60}));
    let p = plan(&snap(
        s,
        vec![
            pod(0),
            pod(1),
            pod(2).rev(UPD).ready_since("2026-01-01T00:09:30Z"),
        ],
    ));
    assert_eq!(p.actions, vec![]);
    assert_eq!(p.requeue_after, Some(Duration::from_secs(30)));
    assert_eq!(p.status.available_replicas, 2);
    assert_eq!(p.status.ready_replicas, 3);
}

#[test]
fn unordered_update_follows_the_priority_strategy() {
    let weight = |rolling: Value| {
        let mut r = json!({"maxUnavailable": 1, "unorderedUpdate": {"priorityStrategy": {
        "weightPriority": [
            {"weight": 50, "matchSelector": {"matchLabels": {"tier": "canary"}}},
            {"weight": 10, "matchSelector": {"matchLabels": {"zone": "a"}}}
        ]}}});
        if let (Some(m), Some(e)) = (r.as_object_mut(), rolling.as_object()) {
            m.extend(e.clone());
        }
        parallel(4, r)
    };
    let order = |rolling: Value| {
        let mut r = json!({"maxUnavailable": 1, "unorderedUpdate": {"priorityStrategy": {
            "orderPriority": [{"orderedKey": "rank"}]}}});
        if let (Some(m), Some(e)) = (r.as_object_mut(), rolling.as_object()) {
            m.extend(e.clone());
        }
        parallel(4, r)
    };
    check(vec![
        (
            "weights: the canary first",
            snap(
                weight(json!({})),
                vec![
                    pod(0),
                    pod(1).label("tier", "canary"),
                    pod(2).label("zone", "a"),
                    pod(3),
                ],
            ),
            vec![delete(1)],
        ),
        (
            "weights: then zone a",
            snap(
                weight(json!({})),
                vec![pod(0), pod(1).rev(UPD), pod(2).label("zone", "a"), pod(3)],
            ),
            vec![delete(2)],
        ),
        (
            "equal weights keep descending ordinal order",
            snap(weight(json!({})), pods(&[0, 1, 2, 3])),
            vec![delete(3)],
        ),
        (
            "order priority: the highest number in the value first",
            snap(
                order(json!({})),
                vec![
                    pod(0).label("rank", "r-1"),
                    pod(1).label("rank", "r-7"),
                    pod(2).label("rank", "r-3"),
                    pod(3).label("rank", "r-2"),
                ],
            ),
            vec![delete(1)],
        ),
        (
            "partition counts pods kept not updated: 2 of 4, one updated → one more",
            snap(
                weight(json!({"partition": 2, "maxUnavailable": 4})),
                vec![
                    pod(0).rev(UPD),
                    pod(1),
                    pod(2).label("tier", "canary"),
                    pod(3),
                ],
            ),
            vec![delete(2)],
        ),
    ]);
}

#[test]
fn pod_update_policies() {
    let policy = |p: &str| parallel(2, json!({"podUpdatePolicy": p, "maxUnavailable": 2}));
    let normal = |o| pod(o).state(labels::LIFECYCLE_STATE_NORMAL);
    check(vec![
        (
            "ReCreate deletes",
            snap(policy("ReCreate"), vec![normal(0), normal(1)]),
            vec![delete(1), delete(0)],
        ),
        (
            "InPlaceIfPossible: in place, lifecycle Updating for pods with a state",
            snap(policy("InPlaceIfPossible"), vec![normal(0), pod(1)]),
            vec![in_place(1, false), in_place(0, true)],
        ),
        (
            "InPlaceIfPossible: recreate what cannot be done in place",
            snap(
                policy("InPlaceIfPossible"),
                vec![normal(0), normal(1).not_in_place()],
            ),
            vec![delete(1), in_place(0, true)],
        ),
        (
            "InPlaceOnly: a pod that cannot be updated in place stops the update",
            snap(
                policy("InPlaceOnly"),
                vec![normal(0), normal(1).not_in_place()],
            ),
            vec![],
        ),
        (
            "a pod in PreparingDelete cannot be updated in place",
            snap(
                policy("InPlaceIfPossible"),
                vec![
                    normal(0),
                    pod(1).state(labels::LIFECYCLE_STATE_PREPARING_DELETE),
                ],
            ),
            vec![],
        ),
    ]);
    let p = plan(&snap(
        policy("InPlaceOnly"),
        vec![normal(0), normal(1).not_in_place()],
    ));
    assert_eq!(
        p.error.as_deref(),
        Some("find strategy is InPlaceOnly but Pod web-1 can not update in-place")
    );
}

#[test]
fn in_place_update_hook() {
    let hooked = || {
        parallel(
            1,
            json!({"podUpdatePolicy": "InPlaceIfPossible", "maxUnavailable": 1}),
        )
    };
    let with_hook = || {
        let mut s = hooked();
        s.spec.lifecycle = Some(
            serde_json::from_value(json!({"inPlaceUpdate": {"labelsHandler": {"gate": "on"}}}))
                .unwrap(),
        );
        s
    };
    check(vec![
        (
            "no hook: update in place",
            snap(hooked(), vec![pod(0).state(labels::LIFECYCLE_STATE_NORMAL)]),
            vec![in_place(0, true)],
        ),
        (
            "hooked: PreparingUpdate first",
            snap(
                with_hook(),
                vec![
                    pod(0)
                        .state(labels::LIFECYCLE_STATE_NORMAL)
                        .label("gate", "on"),
                ],
            ),
            vec![lifecycle(0, LifecycleState::PreparingUpdate)],
        ),
        (
            "PreparingUpdate and still hooked: wait",
            snap(
                with_hook(),
                vec![
                    pod(0)
                        .state(labels::LIFECYCLE_STATE_PREPARING_UPDATE)
                        .label("gate", "on"),
                ],
            ),
            vec![],
        ),
        (
            "released: update in place",
            snap(
                with_hook(),
                vec![pod(0).state(labels::LIFECYCLE_STATE_PREPARING_UPDATE)],
            ),
            vec![in_place(0, true)],
        ),
        (
            "Updated at an old revision: back to PreparingUpdate",
            snap(
                with_hook(),
                vec![pod(0).state(labels::LIFECYCLE_STATE_UPDATED)],
            ),
            vec![lifecycle(0, LifecycleState::PreparingUpdate)],
        ),
    ]);
}

#[test]
fn lifecycle_refresh() {
    let s = || parallel(1, json!({"podUpdatePolicy": "InPlaceIfPossible"}));
    let mut updating = pod(0).rev(UPD).state(labels::LIFECYCLE_STATE_UPDATING);
    updating.in_place.completed = false;
    let mut done = updating.clone();
    done.in_place.completed = true;
    done.in_place.refresh = Refresh::Due;
    check(vec![
        (
            "PreparingNormal → Normal without a preNormal hook",
            steady(
                s(),
                vec![pod(0).state(labels::LIFECYCLE_STATE_PREPARING_NORMAL)],
            ),
            vec![lifecycle(0, LifecycleState::Normal)],
        ),
        (
            "Updating while the update runs: nothing",
            snap(s(), vec![updating]),
            vec![],
        ),
        (
            "Updating, complete: refresh and Normal",
            snap(s(), vec![done]),
            vec![
                Action::RefreshInPlace {
                    name: "web-0".into(),
                },
                lifecycle(0, LifecycleState::Normal),
            ],
        ),
        (
            "PreparingUpdate at the update revision (rolled back): Normal",
            snap(
                s(),
                vec![
                    pod(0)
                        .rev(UPD)
                        .state(labels::LIFECYCLE_STATE_PREPARING_UPDATE),
                ],
            ),
            vec![lifecycle(0, LifecycleState::Normal)],
        ),
    ]);
    // OrderedReady: a PreparingNormal pod is refreshed and blocks the next creation.
    let p = plan(&steady(
        set(2, json!({})),
        vec![pod(0).state(labels::LIFECYCLE_STATE_PREPARING_NORMAL)],
    ));
    assert_eq!(p.actions, vec![lifecycle(0, LifecycleState::Normal)]);
}

#[test]
fn paused_and_on_delete() {
    let p = plan(&snap(
        set(
            2,
            json!({"updateStrategy": {"rollingUpdate": {"paused": true}}}),
        ),
        pods(&[0, 1]),
    ));
    assert_eq!(p.actions, vec![]);
    assert_eq!(
        p.waiting.as_deref(),
        Some("updates paused (updateStrategy.rollingUpdate.paused: true)")
    );
    // Paused still scales.
    let p = plan(&snap(
        set(
            3,
            json!({"updateStrategy": {"rollingUpdate": {"paused": true}}}),
        ),
        pods(&[0, 1]),
    ));
    assert_eq!(p.actions, vec![create(2, UPD)]);

    let on_delete = || set(3, json!({"updateStrategy": {"type": "OnDelete"}}));
    check(vec![
        (
            "OnDelete never updates",
            snap(on_delete(), pods(&[0, 1, 2])),
            vec![],
        ),
        (
            "a deleted pod comes back at the update revision",
            snap(on_delete(), pods(&[0, 2])),
            vec![create(1, UPD)],
        ),
    ]);
}

#[test]
fn set_being_deleted_only_gets_status() {
    let mut s = set(3, json!({}));
    s.metadata.deletion_timestamp =
        Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now()));
    let p = plan(&snap(s, pods(&[0])));
    assert_eq!(p.actions, vec![]);
    assert_eq!(p.status.replicas, 1);
}

fn claim(name: &str, owners: &[(&str, &str)]) -> ClaimInfo {
    ClaimInfo {
        name: name.into(),
        owner_references: owners
            .iter()
            .map(|(n, u)| OwnerReference {
                name: (*n).into(),
                uid: (*u).into(),
                ..Default::default()
            })
            .collect(),
        deleting: false,
        compatible: true,
        ready: true,
        resize: claims::Resize {
            same_shape: true,
            ..Default::default()
        },
    }
}

fn vct_set(replicas: i32, policy: Value, extra: Value) -> StatefulSet {
    let mut spec = json!({
        "volumeClaimTemplates": [{"metadata": {"name": "data"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}],
        "persistentVolumeClaimRetentionPolicy": policy
    });
    if let (Some(m), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
        m.extend(e.clone());
    }
    set(replicas, spec)
}

fn pod_ref(o: i64) -> OwnerReference {
    OwnerReference {
        api_version: "v1".into(),
        kind: "Pod".into(),
        name: format!("web-{o}"),
        uid: format!("uid-{o}"),
        ..Default::default()
    }
}

fn set_ref() -> OwnerReference {
    OwnerReference {
        api_version: "apps.kruise.io/v1beta1".into(),
        kind: "StatefulSet".into(),
        name: "web".into(),
        uid: "set-uid".into(),
        ..Default::default()
    }
}

#[test]
fn pvc_retention_in_plans() {
    let when_scaled_delete = json!({"whenScaled": "Delete", "whenDeleted": "Retain"});
    let mut s = steady(
        vct_set(1, when_scaled_delete.clone(), json!({})),
        pods(&[0, 1]),
    );
    s.claims = vec![claim("data-web-0", &[]), claim("data-web-1", &[])];
    check(vec![(
        "whenScaled Delete: the condemned pod owns its PVC, then goes",
        s,
        vec![
            Action::SetClaimOwners {
                claim: "data-web-1".into(),
                owner_references: vec![pod_ref(1)],
            },
            delete(1),
        ],
    )]);

    let mut s = steady(
        vct_set(
            2,
            json!({"whenScaled": "Retain", "whenDeleted": "Delete"}),
            json!({}),
        ),
        pods(&[0, 1]),
    );
    s.claims = vec![
        claim("data-web-0", &[("web", "set-uid")]),
        claim("data-web-1", &[("web-1", "uid-1")]),
    ];
    check(vec![(
        "whenDeleted Delete: the replicas' PVCs are owned by the set, not the pod",
        s,
        vec![Action::SetClaimOwners {
            claim: "data-web-1".into(),
            owner_references: vec![set_ref()],
        }],
    )]);

    let mut s = steady(vct_set(2, json!({}), json!({})), pods(&[0, 1]));
    s.claims = vec![
        claim("data-web-0", &[("web", "set-uid")]),
        claim("data-web-1", &[]),
    ];
    check(vec![(
        "Retain/Retain: owner references removed",
        s,
        vec![Action::SetClaimOwners {
            claim: "data-web-0".into(),
            owner_references: vec![],
        }],
    )]);

    // A PVC still owned by a former web-1 blocks its recreation until it is gone.
    let mut s = steady(vct_set(2, when_scaled_delete, json!({})), pods(&[0]));
    s.claims = vec![
        claim("data-web-0", &[]),
        claim("data-web-1", &[("web-1", "old-uid")]),
    ];
    s.claims[0].owner_references = vec![];
    let p = plan(&s);
    assert_eq!(p.actions, vec![]);
    assert_eq!(
        p.waiting.as_deref(),
        Some("waiting for PVC data-web-1 of a former pod web-1 to be deleted")
    );
}

#[test]
fn claims_and_identity_repairs() {
    let mut s = steady(vct_set(1, json!({}), json!({})), vec![pod(0).pending()]);
    s.claims = vec![];
    check(vec![(
        "a pending pod gets its missing PVCs",
        s,
        vec![Action::CreateClaims {
            pod: "web-0".into(),
            ordinal: 0,
            claims: vec!["data-web-0".into()],
        }],
    )]);
    let mut broken = pod(0);
    broken.identity_matches = false;
    check(vec![(
        "a pod whose identity does not match is repaired",
        steady(set(1, json!({})), vec![broken]),
        vec![Action::RepairPod {
            name: "web-0".into(),
            ordinal: 0,
        }],
    )]);
}

#[test]
fn status_counts() {
    let s = parallel(4, json!({"partition": 4, "minReadySeconds": 60}));
    let p = plan(&snap(
        s,
        vec![
            pod(0),                                     // current, available
            pod(1).ready_since("2026-01-01T00:09:30Z"), // current, ready only
            pod(2).rev(UPD),                            // updated, available
            pod(3).rev(UPD).not_ready(),                // updated, not ready
            pod(5).rev(UPD).terminating(), // condemned, terminating: counted, not as updated
        ],
    ));
    let st = &p.status;
    let got = (
        st.replicas,
        st.ready_replicas,
        st.available_replicas,
        st.current_replicas,
        st.updated_replicas,
        st.updated_ready_replicas,
        st.updated_available_replicas,
    );
    assert_eq!(got, (5, 4, 3, 2, 2, 2, 2));
    assert_eq!(st.observed_generation, 2);
    assert_eq!(st.current_revision.as_deref(), Some(CUR));
    assert_eq!(st.update_revision.as_deref(), Some(UPD));
    assert_eq!(st.label_selector.as_deref(), Some("app=web"));
    assert_eq!(st.collision_count, Some(0));
    assert!(p.status_changed);

    // All updated and ready: the update revision becomes the current one.
    let p = plan(&snap(
        set(2, json!({})),
        vec![pod(0).rev(UPD), pod(1).rev(UPD)],
    ));
    assert_eq!(p.status.current_revision.as_deref(), Some(UPD));
    assert_eq!(p.status.current_replicas, 2);
    // Not while one is not ready.
    let p = plan(&snap(
        set(2, json!({})),
        vec![pod(0).rev(UPD), pod(1).rev(UPD).not_ready()],
    ));
    assert_eq!(p.status.current_revision.as_deref(), Some(CUR));
    // OnDelete never rolls forward.
    let p = plan(&snap(
        set(1, json!({"updateStrategy": {"type": "OnDelete"}})),
        vec![pod(0).rev(UPD)],
    ));
    assert_eq!(p.status.current_revision.as_deref(), Some(CUR));

    // An unchanged status is not written again.
    let mut s = steady(set(1, json!({})), pods(&[0]));
    let first = plan(&s);
    s.set.status = Some(first.status.clone());
    assert!(!plan(&s).status_changed);
}

#[test]
fn status_counts_deletions_planned_by_the_update() {
    // kruise decrements currentReplicas for pods it deletes for the update.
    let p = plan(&snap(
        parallel(3, json!({"maxUnavailable": 2})),
        pods(&[0, 1, 2]),
    ));
    assert_eq!(p.actions, vec![delete(2), delete(1)]);
    assert_eq!(p.status.current_replicas, 1);
}

#[test]
fn volume_claim_status() {
    let mut s = steady(vct_set(3, json!({}), json!({})), pods(&[0, 1, 2]));
    s.claims = vec![
        claim("data-web-0", &[]),
        claim("data-web-1", &[]),
        claim("data-web-9", &[]),
    ];
    s.claims[1].ready = false;
    let p = plan(&s);
    let vc = p.status.volume_claims.unwrap();
    assert_eq!(vc.len(), 1);
    assert_eq!(
        (
            vc[0].volume_claim_name.as_str(),
            vc[0].compatible_replicas,
            vc[0].compatible_ready_replicas
        ),
        ("data", 2, 1)
    );
}

#[test]
fn events_and_conditions_for_actions() {
    let a = create(0, UPD);
    assert_eq!(
        a.success_event("web").map(|e| (e.reason, e.message)),
        Some((
            "SuccessfulCreate".into(),
            "create Pod web-0 in StatefulSet web successful".into()
        ))
    );
    assert_eq!(
        a.failure_condition("boom"),
        Some((
            status::CONDITION_FAILED_CREATE_POD,
            "StatefulPodControl failed to create Pod error: boom".into()
        ))
    );
    let mut st = StatefulSetStatus::default();
    status::set_condition(&mut st, "FailedCreatePod", "True", None, "x", now());
    status::set_condition(&mut st, "FailedCreatePod", "True", None, "y", now());
    assert_eq!(st.conditions.as_ref().map(Vec::len), Some(1));
    assert_eq!(
        st.conditions.unwrap()[0].message.as_deref(),
        Some("x"),
        "same status and reason: unchanged"
    );
}

#[test]
fn kruise_rolling_update_with_max_unavailable() {
    // kruise TestStatefulSetControlRollingUpdateWithMaxUnavailable: Parallel, 6 replicas,
    // partition 3, maxUnavailable 2.
    let s = || parallel(6, json!({"partition": 3, "maxUnavailable": 2}));
    let upd = |o| pod(o).rev(UPD);
    check(vec![
        (
            "first pods 5 and 4",
            snap(s(), pods(&[0, 1, 2, 3, 4, 5])),
            vec![delete(5), delete(4)],
        ),
        (
            "they are recreated at the update revision; 3 waits",
            snap(s(), pods(&[0, 1, 2, 3])),
            vec![create(4, UPD), create(5, UPD)],
        ),
        (
            "4 ready, 5 not yet: 3 goes",
            snap(
                s(),
                vec![pod(0), pod(1), pod(2), pod(3), upd(4), upd(5).not_ready()],
            ),
            vec![delete(3)],
        ),
        (
            "3, 4, 5 updated: nothing more",
            snap(s(), vec![pod(0), pod(1), pod(2), upd(3), upd(4), upd(5)]),
            vec![],
        ),
    ]);
}

#[test]
fn kruise_rolling_update_blocked_by_max_unavailable() {
    // kruise TestStatefulSetControlRollingUpdateBlockByMaxUnavailable: a terminating pod uses
    // the budget.
    let s = || parallel(6, json!({"partition": 3, "maxUnavailable": 2}));
    check(vec![
        (
            "pod 0 terminating: only pod 5",
            snap(
                s(),
                vec![pod(0).terminating(), pod(1), pod(2), pod(3), pod(4), pod(5)],
            ),
            vec![delete(5)],
        ),
        (
            "pods 0 and 2 terminating: nothing",
            snap(
                s(),
                vec![
                    pod(0).terminating(),
                    pod(1),
                    pod(2).terminating(),
                    pod(3),
                    pod(4),
                    pod(5).rev(UPD),
                ],
            ),
            vec![],
        ),
    ]);
}

#[test]
fn kruise_rolling_update_with_specified_delete() {
    // kruise TestStatefulSetControlRollingUpdateWithSpecifiedDelete: partition 3,
    // maxUnavailable 3, InPlaceIfPossible; a specified deletion uses the budget too.
    let s = || {
        parallel(
            6,
            json!({"partition": 3, "maxUnavailable": 3, "podUpdatePolicy": "InPlaceIfPossible"}),
        )
    };
    let del = |o| pod(o).label(labels::SPECIFIED_DELETE, "true");
    let upd = |o| pod(o).rev(UPD);
    check(vec![
        (
            "pod 0 deleted, 5 and 4 in place",
            snap(s(), vec![del(0), pod(1), pod(2), pod(3), pod(4), pod(5)]),
            vec![delete(0), in_place(5, false), in_place(4, false)],
        ),
        (
            "1, 2, 5 specified: deleted, highest first, up to the budget; 3 waits",
            snap(
                s(),
                vec![
                    del(0),
                    del(1),
                    del(2),
                    pod(3),
                    upd(4),
                    upd(5).label(labels::SPECIFIED_DELETE, "true"),
                ],
            ),
            vec![delete(5), delete(2), delete(1)],
        ),
        (
            "3 specified: deleted (recreated at the update revision next), not updated in place",
            snap(s(), vec![pod(0), pod(1), pod(2), del(3), upd(4), upd(5)]),
            vec![delete(3)],
        ),
        (
            "and recreated at the update revision, outside the partition",
            snap(s(), vec![pod(0), pod(1), pod(2), upd(4), upd(5)]),
            vec![create(3, UPD)],
        ),
    ]);
}

#[test]
fn kruise_update_with_lifecycle_hook() {
    // kruise TestUpdateWithLifecycleHook, one pod each.
    let spec = |lifecycle: Value, policy: &str| {
        set(
            1,
            json!({"podManagementPolicy": "Parallel", "lifecycle": lifecycle,
                "updateStrategy": {"rollingUpdate": {"maxUnavailable": 1, "podUpdatePolicy": policy}}}),
        )
    };
    let pre_normal = json!({"preNormal": {"labelsHandler": {"preNormalHooked": "true"}}});
    let preparing = |p: PodInfo| p.state(labels::LIFECYCLE_STATE_PREPARING_NORMAL);
    check(vec![
        (
            "create: PreparingNormal → Normal without hook",
            steady(
                set(1, json!({})),
                vec![preparing(pod(0).rev(CUR).not_ready())],
            ),
            vec![lifecycle(0, LifecycleState::Normal)],
        ),
        (
            "create: stays PreparingNormal while preNormal does not hook",
            steady(
                spec(pre_normal.clone(), "ReCreate"),
                vec![preparing(pod(0).not_ready())],
            ),
            vec![],
        ),
        (
            "create: stays PreparingNormal while preNormal is not all hooked",
            steady(
                spec(
                    json!({"preNormal": {"labelsHandler": {"preNormalHooked": "true"},
                        "finalizersHandler": ["slb"]}}),
                    "ReCreate",
                ),
                vec![preparing(
                    pod(0).not_ready().label("preNormalHooked", "true"),
                )],
            ),
            vec![],
        ),
        (
            "create: PreparingNormal → Normal once preNormal hooks",
            steady(
                spec(pre_normal.clone(), "ReCreate"),
                vec![preparing(
                    pod(0).not_ready().label("preNormalHooked", "true"),
                )],
            ),
            vec![lifecycle(0, LifecycleState::Normal)],
        ),
        (
            "recreate update: a PreparingNormal pod without preDelete hook is deleted",
            snap(
                spec(
                    json!({"preNormal": {"labelsHandler": {"preNormalHooked": "true"}},
                        "preDelete": {"labelsHandler": {"preNormalHooked": "true"}}}),
                    "ReCreate",
                ),
                vec![preparing(pod(0))],
            ),
            vec![delete(0)],
        ),
        (
            "recreate update: with the preDelete hook → PreparingDelete",
            snap(
                spec(
                    json!({"preNormal": {"labelsHandler": {"preNormalHooked": "true"}},
                        "preDelete": {"labelsHandler": {"preDeleteHooked": "true"}}}),
                    "ReCreate",
                ),
                vec![preparing(pod(0).label("preDeleteHooked", "true"))],
            ),
            vec![lifecycle(0, LifecycleState::PreparingDelete)],
        ),
        (
            "in-place update: PreparingNormal → Updating when preNormal and inPlaceUpdate do not hook",
            snap(
                spec(
                    json!({"preNormal": {"finalizersHandler": ["slb.com/online"]}}),
                    "InPlaceIfPossible",
                ),
                vec![preparing(pod(0))],
            ),
            vec![in_place(0, true)],
        ),
        (
            "in-place update: PreparingNormal → Normal first when preNormal hooks",
            snap(
                spec(
                    json!({"preNormal": {"finalizersHandler": ["slb/online"]},
                        "inPlaceUpdate": {"finalizersHandler": ["slb/online"]}}),
                    "InPlaceIfPossible",
                ),
                vec![preparing(pod(0).finalizer("slb/online"))],
            ),
            vec![lifecycle(0, LifecycleState::Normal)],
        ),
        (
            "in-place update: PreparingUpdate → Updating once inPlaceUpdate does not hook",
            snap(
                spec(
                    json!({"inPlaceUpdate": {"finalizersHandler": ["slb/online"]}}),
                    "InPlaceIfPossible",
                ),
                vec![pod(0).state(labels::LIFECYCLE_STATE_PREPARING_UPDATE)],
            ),
            vec![in_place(0, true)],
        ),
        (
            "in-place update: Updated → Normal once inPlaceUpdate is all hooked",
            snap(
                spec(
                    json!({"inPlaceUpdate": {"finalizersHandler": ["slb/online"]}}),
                    "InPlaceIfPossible",
                ),
                vec![
                    pod(0)
                        .state(labels::LIFECYCLE_STATE_UPDATED)
                        .finalizer("slb/online"),
                ],
            ),
            vec![lifecycle(0, LifecycleState::Normal)],
        ),
        (
            "in-place update: Normal → PreparingUpdate when inPlaceUpdate hooks",
            snap(
                spec(
                    json!({"inPlaceUpdate": {"finalizersHandler": ["slb/online"]}}),
                    "InPlaceIfPossible",
                ),
                vec![
                    pod(0)
                        .state(labels::LIFECYCLE_STATE_NORMAL)
                        .finalizer("slb/online"),
                ],
            ),
            vec![lifecycle(0, LifecycleState::PreparingUpdate)],
        ),
    ]);
}

#[test]
fn kruise_lifecycle_hook_rollout() {
    // kruise TestStatefulSetControlLifecycleHook: the template carries the hook label; partition
    // 2 of 3, InPlaceIfPossible.
    let s = || {
        let mut s = parallel(
            3,
            json!({"partition": 2, "podUpdatePolicy": "InPlaceIfPossible"}),
        );
        s.spec.lifecycle = Some(
            serde_json::from_value(
                json!({"inPlaceUpdate": {"labelsHandler": {"unready-block": "true"}}}),
            )
            .unwrap(),
        );
        s
    };
    let p = |o: i64| {
        pod(o)
            .state(labels::LIFECYCLE_STATE_NORMAL)
            .label("unready-block", "true")
    };
    let mut updating = pod(2)
        .rev(UPD)
        .state(labels::LIFECYCLE_STATE_UPDATING)
        .label("unready-block", "false");
    updating.in_place.completed = true;
    check(vec![
        (
            "pod 2 prepares",
            snap(s(), vec![p(0), p(1), p(2)]),
            vec![lifecycle(2, LifecycleState::PreparingUpdate)],
        ),
        (
            "unhooked: updated in place",
            snap(
                s(),
                vec![
                    p(0),
                    p(1),
                    p(2).state(labels::LIFECYCLE_STATE_PREPARING_UPDATE)
                        .label("unready-block", "false"),
                ],
            ),
            vec![in_place(2, true)],
        ),
        (
            "complete: Updated",
            snap(s(), vec![p(0), p(1), updating]),
            vec![lifecycle(2, LifecycleState::Updated)],
        ),
        (
            "hooked again: Normal",
            snap(
                s(),
                vec![
                    p(0),
                    p(1),
                    p(2).rev(UPD).state(labels::LIFECYCLE_STATE_UPDATED),
                ],
            ),
            vec![lifecycle(2, LifecycleState::Normal)],
        ),
        (
            "pod 1 is not prepared (partition)",
            snap(s(), vec![p(0), p(1), p(2).rev(UPD)]),
            vec![],
        ),
    ]);
}

/// A 3-pod Parallel, in-place set with `volumeClaimUpdateStrategy: OnPodRollingUpdate`, its
/// claims `data-web-<o>` as `claim` makes them (class `fast`, which allows expansion).
fn resizing(
    max_unavailable: i32,
    pods: Vec<PodInfo>,
    claim: impl Fn(i64) -> ClaimInfo,
) -> Snapshot {
    let set = vct_set(
        3,
        json!({}),
        json!({"podManagementPolicy": "Parallel",
            "volumeClaimUpdateStrategy": {"type": "OnPodRollingUpdate"},
            "updateStrategy": {"rollingUpdate": {"maxUnavailable": max_unavailable,
                "podUpdatePolicy": "InPlaceIfPossible"}}}),
    );
    let mut s = snap(set, pods);
    s.claims = (0..3).map(claim).collect();
    s.storage_classes = BTreeMap::from([("fast".to_string(), Some(true))]);
    s
}

/// A claim of pod `o` that is smaller than its template (request and capacity 1Gi, template
/// 2Gi): kruise `IsPVCNeedExpand`.
fn small(o: i64) -> ClaimInfo {
    let mut c = claim(&format!("data-web-{o}"), &[]);
    c.compatible = false;
    c.ready = true;
    c.resize = claims::Resize {
        same_shape: true,
        needs_expand: true,
        file_system_pending: false,
        storage_class: Some("fast".into()),
    };
    c
}

/// A claim whose request was raised to the template's but whose capacity has not followed.
fn growing(o: i64) -> ClaimInfo {
    let mut c = small(o);
    c.compatible = true;
    c.ready = false;
    c.resize.needs_expand = false;
    c
}

fn resize(o: i64) -> Action {
    Action::ResizeClaim {
        claim: format!("data-web-{o}"),
        pod: format!("web-{o}"),
        template: "data".into(),
    }
}

#[test]
fn on_pod_rolling_update_expands_claims_before_their_pods_update() {
    let updated = |o| pod(o).rev(UPD);
    check(vec![
        (
            "only the claims grew: the highest ordinal's PVC first, within maxUnavailable 1",
            resizing(1, vec![updated(0), updated(1), updated(2)], small),
            vec![resize(2)],
        ),
        (
            "maxUnavailable 2: two PVCs at once",
            resizing(2, vec![updated(0), updated(1), updated(2)], small),
            vec![resize(2), resize(1)],
        ),
        (
            "a PVC still growing makes its pod unavailable: nothing else moves",
            resizing(1, vec![updated(0), updated(1), updated(2)], |o| {
                if o == 2 { growing(o) } else { small(o) }
            }),
            vec![],
        ),
        (
            "template and claims changed: the PVC is patched, the pod waits for it",
            resizing(1, pods(&[0, 1, 2]), small),
            vec![resize(2)],
        ),
        (
            "the PVC is done (file system growth pending counts): the pod is updated in place, \
             and counts unavailable until the capacity follows",
            resizing(1, pods(&[0, 1, 2]), |o| {
                if o == 2 {
                    let mut c = growing(o);
                    c.resize.file_system_pending = true;
                    c
                } else {
                    small(o)
                }
            }),
            vec![in_place(2, false)],
        ),
    ]);

    // OnDelete (the default): claims are left alone.
    let mut s = resizing(1, pods(&[0, 1, 2]), small);
    s.set.spec.volume_claim_update_strategy = None;
    assert_eq!(plan(&s).actions, vec![in_place(2, false)]);
}

#[test]
fn on_pod_rolling_update_refuses_what_it_cannot_expand() {
    let mut s = resizing(1, pods(&[0, 1, 2]), small);
    s.storage_classes = BTreeMap::from([("fast".to_string(), Some(false))]);
    let p = plan(&s);
    assert_eq!(p.actions, vec![]);
    assert_eq!(
        p.error.as_deref(),
        Some("storage class fast for web-2 does not support volume expansion")
    );

    s.storage_classes.clear();
    assert_eq!(
        plan(&s).error.as_deref(),
        Some("could not get sc fast for web-2 when checking PVC spec")
    );

    let p = plan(&resizing(1, pods(&[0, 1, 2]), |o| {
        let mut c = small(o);
        c.resize.same_shape = false;
        c
    }));
    assert_eq!(p.actions, vec![]);
    assert_eq!(
        p.error.as_deref(),
        Some(
            "can not patch pvc data-web-2: contains diff other than spec resource, wait pvc to be deleted"
        )
    );
    assert_eq!(
        p.events,
        vec![PlannedEvent {
            type_: EventType::Warning,
            reason: "FailedUpdatePVC".into(),
            message: "failed to update pvc data-web-2: contains diff other than spec resource, wait pvc to be deleted".into(),
        }]
    );
}
