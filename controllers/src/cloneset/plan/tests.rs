//! Table tests of the planner, written like the rules they check (kruise-api.md §2.2–2.5, §1.3–1.5).

use std::collections::BTreeMap;
use std::time::Duration;

use graft_api::apps::common::LifecycleState;
use graft_api::apps::v1alpha1::CloneSet;
use graft_api::labels;
use k8s_openapi::jiff::Timestamp;
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::diff::{self, Diffs};
use super::view::Ctx;
use super::*;

const V1: &str = "demo-v1";
const V2: &str = "demo-v2";

fn now() -> Timestamp {
    Timestamp::from_second(1_800_000_000).unwrap()
}

fn cloneset(spec: Value) -> CloneSet {
    let mut base = json!({
        "apiVersion": "apps.kruise.io/v1alpha1",
        "kind": "CloneSet",
        "metadata": {"name": "demo", "namespace": "ns", "generation": 2},
        "spec": {
            "selector": {"matchLabels": {"app": "demo"}},
            "template": {
                "metadata": {"labels": {"app": "demo"}},
                "spec": {"containers": [{"name": "main", "image": "nginx:1"}]}
            }
        }
    });
    for (k, v) in spec.as_object().unwrap() {
        base["spec"][k] = v.clone();
    }
    serde_json::from_value(base).unwrap()
}

/// Builder for a pod: `pod("a").ready().rev(V2)`. Defaults: scheduled, Running, not ready, at V1,
/// lifecycle Normal.
#[derive(Clone)]
struct P(PodInfo);

fn pod(name: &str) -> P {
    let mut labels = BTreeMap::new();
    labels.insert(labels::CONTROLLER_REVISION_HASH.to_string(), V1.to_string());
    labels.insert(labels::POD_TEMPLATE_HASH.to_string(), "v1".to_string());
    labels.insert(labels::CLONESET_INSTANCE_ID.to_string(), name.to_string());
    labels.insert(labels::LIFECYCLE_STATE.to_string(), "Normal".to_string());
    P(PodInfo {
        name: name.to_string(),
        labels,
        finalizers: vec![],
        phase: PodPhase::Running,
        node_name: Some("node-1".into()),
        ready: false,
        ready_since: None,
        in_place_update_ready: Some(true),
        deletion_timestamp: None,
        creation_timestamp: Some(Timestamp::from_second(1_700_000_000).unwrap()),
        deletion_cost: 0,
        restart_count: 0,
        failure: None,
        in_place: InPlaceFacts::default(),
    })
}

impl P {
    fn ready(mut self) -> Self {
        self.0.ready = true;
        self.0.ready_since = Some(Timestamp::from_second(1_700_000_100).unwrap());
        self
    }
    fn ready_since(mut self, secs_ago: i64) -> Self {
        self.0.ready = true;
        self.0.ready_since = Some(Timestamp::from_second(1_800_000_000 - secs_ago).unwrap());
        self
    }
    fn rev(mut self, rev: &str) -> Self {
        self.0
            .labels
            .insert(labels::CONTROLLER_REVISION_HASH.into(), rev.into());
        self.0.labels.insert(
            labels::POD_TEMPLATE_HASH.into(),
            rev.rsplit('-').next().unwrap().into(),
        );
        self
    }
    fn state(mut self, s: &str) -> Self {
        self.0
            .labels
            .insert(labels::LIFECYCLE_STATE.into(), s.into());
        self
    }
    fn label(mut self, k: &str, v: &str) -> Self {
        self.0.labels.insert(k.into(), v.into());
        self
    }
    fn unscheduled(mut self) -> Self {
        self.0.node_name = None;
        self.0.phase = PodPhase::Pending;
        self
    }
    fn node(mut self, n: &str) -> Self {
        self.0.node_name = Some(n.into());
        self
    }
    fn cost(mut self, c: i32) -> Self {
        self.0.deletion_cost = c;
        self
    }
    fn failing(mut self, why: &str) -> Self {
        self.0.failure = Some(why.into());
        self
    }
    fn not_in_place(mut self, why: &str) -> Self {
        self.0.in_place.possible = Err(why.into());
        self
    }
    fn in_place(mut self, f: impl FnOnce(&mut InPlaceFacts)) -> Self {
        f(&mut self.0.in_place);
        self
    }
}

fn snap(spec: Value, pods: &[P]) -> Snapshot {
    Snapshot {
        cloneset: cloneset(spec),
        pods: pods.iter().map(|p| p.0.clone()).collect(),
        update_revision: V2.into(),
        current_revision: V1.into(),
        collision_count: None,
        label_selector: "app=demo".into(),
        pvc_instance_ids: vec![],
        fresh_instance_ids: ["id01", "id02", "id03", "id04", "id05", "id06"]
            .map(String::from)
            .to_vec(),
        scaling_exclude_preparing_delete: false,
        now: now(),
    }
}

fn diffs(spec: Value, pods: &[P]) -> Diffs {
    diffs_counting(spec, pods, diff::Counting::Update)
}

fn diffs_counting(spec: Value, pods: &[P], counting: diff::Counting) -> Diffs {
    let s = snap(spec, pods);
    let ctx = Ctx::new(&s);
    diff::calculate(
        ctx.replicas,
        diff::limits(&ctx.spec),
        &ctx.pods,
        ctx.exclude_preparing_delete(),
        counting,
        ctx.rollback_allowed(),
    )
}

fn n(prefix: &str, count: usize, make: impl Fn(P) -> P) -> Vec<P> {
    (0..count)
        .map(|i| make(pod(&format!("{prefix}{i}"))))
        .collect()
}

fn create(id: &str, rev: &str) -> Action {
    Action::CreatePod {
        instance_id: id.into(),
        revision: rev.into(),
        reuse_pvcs: false,
    }
}

fn delete(name: &str) -> Action {
    Action::DeletePod {
        name: name.into(),
        instance_id: Some(name.into()),
    }
}

fn recreate(name: &str) -> Action {
    Action::MarkSpecifiedDelete {
        name: name.into(),
        revision: V2.into(),
    }
}

fn lifecycle(name: &str, state: LifecycleState) -> Action {
    Action::SetLifecycleState {
        name: name.into(),
        state,
        mark_pod_not_ready: false,
    }
}

// ---- calculateDiffsWithExpectation ------------------------------------------------------------

#[test]
fn diff_arithmetic_table() {
    let old_ready = |p: P| p.ready();
    let new_ready = |p: P| p.ready().rev(V2);
    let cases: Vec<(&str, Value, Vec<P>, Diffs)> = vec![
        (
            "empty set scales up to replicas",
            json!({"replicas": 5}),
            vec![],
            Diffs {
                scale_up: 5,
                scale_up_limit: 5,
                ..Diffs::default()
            },
        ),
        (
            "scale down 5 -> 2; ready deletions limited by maxUnavailable + surplus",
            json!({"replicas": 2}),
            n("p", 5, new_ready),
            Diffs {
                scale_down: 3,
                // 20% of 2 rounds up to 1, plus 3 surplus pods.
                delete_ready_limit: 4,
                ..Diffs::default()
            },
        ),
        (
            "update all 5 old pods, 20% of 5 = 1 unavailable",
            json!({"replicas": 5}),
            n("p", 5, old_ready),
            Diffs {
                update: 5,
                update_max_unavailable: 1,
                ..Diffs::default()
            },
        ),
        (
            "partition 99% of 4 keeps 3, updates 1",
            json!({"replicas": 4, "updateStrategy": {"partition": "99%"}}),
            n("p", 4, old_ready),
            Diffs {
                update: 1,
                update_max_unavailable: 1,
                ..Diffs::default()
            },
        ),
        (
            "partition 3 of 5 with 2 updated: nothing left to update",
            json!({"replicas": 5, "updateStrategy": {"partition": 3}}),
            [n("o", 3, old_ready), n("n", 2, new_ready)].concat(),
            Diffs::default(),
        ),
        (
            "raising the partition rolls updated pods back (two revisions: partition rollback)",
            json!({"replicas": 4, "updateStrategy": {"partition": 3}}),
            n("n", 4, new_ready),
            Diffs {
                update: -3,
                update_max_unavailable: 1,
                ..Diffs::default()
            },
        ),
        (
            "maxSurge 1 of 3: one surge pod at the new revision, maxUnavailable rounds down to 0",
            json!({"replicas": 3, "updateStrategy": {"maxSurge": 1}}),
            n("o", 3, old_ready),
            Diffs {
                scale_up: 1,
                scale_up_limit: 1,
                use_surge: 1,
                update: 3,
                update_max_unavailable: 0,
                ..Diffs::default()
            },
        ),
        (
            "maxSurge with a pod specified for deletion: surge to replace it",
            json!({"replicas": 3, "updateStrategy": {"maxSurge": 1}}),
            vec![
                pod("a")
                    .ready()
                    .rev(V2)
                    .label(labels::SPECIFIED_DELETE, "true"),
                pod("b").ready().rev(V2),
                pod("c").ready().rev(V2),
            ],
            Diffs {
                scale_up: 1,
                scale_up_limit: 1,
                use_surge: 1,
                delete_ready_limit: 0,
                ..Diffs::default()
            },
        ),
        (
            "paused forces maxSurge to 0",
            json!({"replicas": 3, "updateStrategy": {"maxSurge": 1, "paused": true}}),
            n("o", 3, old_ready),
            Diffs {
                update: 3,
                update_max_unavailable: 1,
                ..Diffs::default()
            },
        ),
        (
            "scaleStrategy.maxUnavailable limits scale-up while pods are unavailable",
            json!({"replicas": 5, "scaleStrategy": {"maxUnavailable": 1}}),
            n("n", 2, |p| p.rev(V2)),
            Diffs {
                scale_up: 3,
                scale_up_limit: 0,
                ..Diffs::default()
            },
        ),
        (
            "partition needs old-revision pods on scale-up",
            json!({"replicas": 4, "updateStrategy": {"partition": 2}}),
            n("n", 2, new_ready),
            Diffs {
                scale_up: 2,
                scale_up_old_revision: 2,
                scale_up_limit: 2,
                ..Diffs::default()
            },
        ),
        (
            "scale in prefers old-revision pods beyond the partition",
            json!({"replicas": 2, "updateStrategy": {"partition": 1}}),
            [n("o", 2, old_ready), n("n", 2, new_ready)].concat(),
            Diffs {
                scale_down: 2,
                scale_down_old_revision: 1,
                delete_ready_limit: 3,
                // Unclamped (two revisions): kruise's arithmetic with partition rollback on.
                update: 1,
                update_max_unavailable: 3,
                ..Diffs::default()
            },
        ),
    ];
    for (what, spec, pods, want) in cases {
        assert_eq!(diffs(spec, &pods), want, "{what}");
    }
}

#[test]
fn limits_rounding() {
    let l = |spec: Value| diff::limits(&cloneset(spec).spec.defaulted());
    assert_eq!(
        l(json!({"replicas": 4, "updateStrategy": {"partition": "99%"}})).partition,
        3
    );
    assert_eq!(
        l(json!({"replicas": 4, "updateStrategy": {"partition": "100%"}})).partition,
        4
    );
    assert_eq!(
        l(json!({"replicas": 5, "updateStrategy": {"partition": "50%"}})).partition,
        3
    );
    assert_eq!(
        l(json!({"replicas": 3})).max_unavailable,
        1,
        "20% of 3 rounds up"
    );
    let surge = l(json!({"replicas": 3, "updateStrategy": {"maxSurge": "50%"}}));
    assert_eq!(
        (surge.max_surge, surge.max_unavailable),
        (2, 0),
        "rounds down with surge"
    );
    assert_eq!(l(json!({"replicas": 10})).scale_max_unavailable, i32::MAX);
    assert_eq!(
        l(json!({"replicas": 10, "scaleStrategy": {"maxUnavailable": "15%"}}))
            .scale_max_unavailable,
        2
    );
}

// ---- scale -------------------------------------------------------------------------------------

#[test]
fn scale_0_to_5_to_2_to_5() {
    let p = plan(&snap(json!({"replicas": 5}), &[]));
    assert_eq!(p.phase, Phase::Scale);
    assert_eq!(
        p.actions,
        ["id01", "id02", "id03", "id04", "id05"]
            .map(|id| create(id, V2))
            .to_vec()
    );

    // 5 -> 2: three pods go, the not-ready and unscheduled ones first.
    let pods = vec![
        pod("a").ready().rev(V2),
        pod("b").rev(V2),
        pod("c").ready().rev(V2),
        pod("d").unscheduled().rev(V2),
        pod("e").ready().rev(V2).cost(-5),
    ];
    let p = plan(&snap(json!({"replicas": 2}), &pods));
    assert_eq!(p.actions, vec![delete("d"), delete("b"), delete("e")]);

    // 2 -> 5 with the PVCs of deleted pods still there: their ids come back first.
    let mut s = snap(
        json!({"replicas": 5}),
        &[pod("a").ready().rev(V2), pod("c").ready().rev(V2)],
    );
    s.pvc_instance_ids = ["a", "c", "d", "b"].map(String::from).to_vec();
    let p = plan(&s);
    let reuse = |id: &str| Action::CreatePod {
        instance_id: id.into(),
        revision: V2.into(),
        reuse_pvcs: true,
    };
    assert_eq!(p.actions, vec![reuse("b"), reuse("d"), create("id01", V2)]);
}

#[test]
fn disabled_pvc_reuse_removes_orphan_pvcs() {
    let mut s = snap(
        json!({"replicas": 1, "scaleStrategy": {"disablePVCReuse": true}}),
        &[],
    );
    s.pvc_instance_ids = vec!["old".into()];
    let p = plan(&s);
    assert_eq!(
        p.actions,
        vec![
            Action::RemovePvcs {
                instance_id: "old".into()
            },
            create("id01", V2)
        ]
    );
}

#[test]
fn fresh_ids_already_in_use_are_skipped_and_running_out_requeues() {
    let mut s = snap(json!({"replicas": 3}), &[pod("id01").ready().rev(V2)]);
    s.fresh_instance_ids = vec!["id01".into(), "id02".into()];
    let p = plan(&s);
    assert_eq!(p.actions, vec![create("id02", V2)]);
    assert_eq!(p.requeue_after, Some(Duration::from_secs(1)));
}

#[test]
fn pods_to_delete_and_truncation() {
    let pods = n("p", 3, |p| p.ready().rev(V2));
    let spec = json!({"replicas": 3, "scaleStrategy": {"podsToDelete": ["p1", "gone"]}});
    let p = plan(&snap(spec.clone(), &pods));
    assert_eq!(p.actions, vec![delete("p1")]);
    assert_eq!(p.pods_to_delete, Some(vec!["p1".to_string()]));

    // Once p1 is gone the list becomes empty; its replacement is created.
    let p = plan(&snap(spec, &[pods[0].clone(), pods[2].clone()]));
    assert_eq!(p.actions, vec![create("id01", V2)]);
    assert_eq!(p.pods_to_delete, Some(vec![]));
}

#[test]
fn specified_delete_label_of_ready_pods_waits_for_the_budget() {
    // maxUnavailable 20% of 5 = 1: with one pod already unavailable no ready pod may go.
    let mut pods = n("p", 4, |p| {
        p.ready().rev(V2).label(labels::SPECIFIED_DELETE, "true")
    });
    pods.push(pod("x").rev(V2));
    let p = plan(&snap(json!({"replicas": 5}), &pods));
    assert_eq!(p.actions, vec![]);
    assert!(p.waiting.unwrap().contains("maxUnavailable"));
}

#[test]
fn scale_in_takes_old_revision_pods_first() {
    let pods = vec![
        pod("new-notready").rev(V2),
        pod("old-ready-1").ready(),
        pod("old-ready-2").ready_since(10),
        pod("old-ready-3").ready(),
    ];
    let p = plan(&snap(json!({"replicas": 2}), &pods));
    // Two of the three old pods go (not the not-ready new one), the more recently ready first.
    assert_eq!(
        p.actions,
        vec![delete("old-ready-2"), delete("old-ready-1")]
    );
    // When every old pod goes, they are not sorted at all (OpenKruise skips the sort).
    let p = plan(&snap(json!({"replicas": 1}), &pods[..3]));
    assert_eq!(
        p.actions,
        vec![delete("old-ready-1"), delete("old-ready-2")]
    );
}

#[test]
fn scale_in_order_same_node_rank_and_deletion_cost() {
    let pods = vec![
        pod("a").ready().rev(V2).node("n1"),
        pod("b").ready().rev(V2).node("n2"),
        pod("c").ready().rev(V2).node("n1"),
        pod("d").ready().rev(V2).node("n3").cost(-1),
    ];
    let p = plan(&snap(json!({"replicas": 2}), &pods));
    // Lowest cost first, then the pod sharing node n1.
    assert_eq!(p.actions, vec![delete("d"), delete("a")]);
}

#[test]
fn scale_up_limited_by_scale_strategy_max_unavailable() {
    let pods = n("p", 2, |p| p.rev(V2));
    let p = plan(&snap(
        json!({"replicas": 5, "scaleStrategy": {"maxUnavailable": 2}}),
        &pods,
    ));
    assert_eq!(p.actions, vec![]);
    assert_eq!(
        p.events,
        vec![PlannedEvent {
            type_: EventType::Warning,
            reason: "ScaleUpLimited".into(),
            message: "scaleUp is limited because of scaleStrategy.maxUnavailable, limit: 0".into(),
        }]
    );
    assert!(p.waiting.unwrap().contains("scaleStrategy.maxUnavailable"));
}

#[test]
fn scale_and_update_never_together() {
    // 3 old pods, replicas 4: this round only creates the missing pod.
    let pods = n("o", 3, |p| p.ready());
    let p = plan(&snap(json!({"replicas": 4}), &pods));
    assert_eq!(p.phase, Phase::Scale);
    assert_eq!(p.actions, vec![create("id01", V2)]);
    // Next round (all 4 there): only updates.
    let mut pods = pods;
    pods.push(pod("id01").ready().rev(V2));
    let p = plan(&snap(json!({"replicas": 4}), &pods));
    assert_eq!(p.phase, Phase::Update);
    assert_eq!(p.actions, vec![recreate("o0")]);
}

#[test]
fn partition_creates_old_revision_pods_on_scale_up() {
    let pods = n("n", 2, |p| p.ready().rev(V2));
    let p = plan(&snap(
        json!({"replicas": 4, "updateStrategy": {"partition": 3}}),
        &pods,
    ));
    assert_eq!(p.actions, vec![create("id01", V1), create("id02", V1)]);
}

// ---- update ------------------------------------------------------------------------------------

#[test]
fn max_unavailable_1_vs_2() {
    let pods = n("p", 5, |p| p.ready());
    for (mu, want) in [
        (1, vec![recreate("p0")]),
        (2, vec![recreate("p0"), recreate("p1")]),
    ] {
        let p = plan(&snap(
            json!({"replicas": 5, "updateStrategy": {"maxUnavailable": mu}}),
            &pods,
        ));
        assert_eq!(p.actions, want, "maxUnavailable {mu}");
    }
    // With one pod already unavailable and maxUnavailable 1 nothing more is touched.
    let mut pods = pods;
    pods[4] = pod("p4").rev(V2);
    let p = plan(&snap(
        json!({"replicas": 5, "updateStrategy": {"maxUnavailable": 1}}),
        &pods,
    ));
    assert_eq!(p.actions, vec![]);
    assert!(p.waiting.unwrap().starts_with("maxUnavailable reached"));
}

#[test]
fn a_rollout_held_by_failing_pods_names_them_and_why() {
    // p4 was updated and cannot pull its new image: the budget is spent, the rest waits.
    let mut pods = n("p", 4, |p| p.ready());
    pods.push(
        pod("p4")
            .rev(V2)
            .failing("container app cannot pull image app:bad"),
    );
    let spec = json!({"replicas": 5, "updateStrategy": {"maxUnavailable": 1}});
    let p = plan(&snap(spec.clone(), &pods));
    assert_eq!(p.actions, vec![]);
    assert_eq!(
        p.waiting.as_deref(),
        Some(
            "maxUnavailable reached: 1 pod(s) unavailable, maxUnavailable 1; \
             pod p4: container app cannot pull image app:bad"
        )
    );
    // The status says it too, in graft's RolloutBlocked condition.
    let blocked = p
        .status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "RolloutBlocked")
        .expect("RolloutBlocked condition");
    assert_eq!(
        (blocked.status.as_str(), blocked.reason.as_deref()),
        ("True", Some("PodsFailing"))
    );
    assert!(
        blocked
            .message
            .as_deref()
            .is_some_and(|m| m.contains("pod p4: container app cannot pull image"))
    );
    // A pod that is merely starting is not named; more than 3 failing pods are counted.
    pods[4] = pod("p4").rev(V2);
    let p = plan(&snap(spec, &pods));
    assert!(
        p.status
            .conditions
            .iter()
            .flatten()
            .all(|c| c.type_ != "RolloutBlocked"),
        "no RolloutBlocked condition without failing pods"
    );
    assert_eq!(
        p.waiting.as_deref(),
        Some("maxUnavailable reached: 1 pod(s) unavailable, maxUnavailable 1")
    );
    let pods = [
        n("o", 2, |p| p.ready()),
        n("f", 5, |p| p.rev(V2).failing("crash-looping")),
    ]
    .concat();
    let p = plan(&snap(
        json!({"replicas": 7, "updateStrategy": {"maxUnavailable": 5}}),
        &pods,
    ));
    assert_eq!(
        p.waiting.as_deref(),
        Some(
            "maxUnavailable reached: 5 pod(s) unavailable, maxUnavailable 5; \
             pod f0: crash-looping; pod f1: crash-looping; pod f2: crash-looping; \
             and 2 more failing pod(s)"
        )
    );
}

#[test]
fn updating_an_unavailable_old_pod_costs_no_budget() {
    let pods = vec![pod("sick"), pod("a").ready(), pod("b").ready()];
    let p = plan(&snap(
        json!({"replicas": 3, "updateStrategy": {"maxUnavailable": 1}}),
        &pods,
    ));
    // The not-ready pod first (ActivePods order); it is already unavailable, so nothing else fits.
    assert_eq!(p.actions, vec![recreate("sick")]);
}

#[test]
fn partition_rounding_99_percent_of_4_updates_one() {
    let pods = n("p", 4, |p| p.ready());
    let p = plan(&snap(
        json!({"replicas": 4, "updateStrategy": {"partition": "99%", "maxUnavailable": 4}}),
        &pods,
    ));
    assert_eq!(p.actions, vec![recreate("p0")]);
    assert_eq!(p.status.expected_updated_replicas, 1);
}

#[test]
fn partition_reached_says_so() {
    let pods = [n("o", 3, |p| p.ready()), n("n", 2, |p| p.ready().rev(V2))].concat();
    let p = plan(&snap(
        json!({"replicas": 5, "updateStrategy": {"partition": 3}}),
        &pods,
    ));
    assert_eq!(p.actions, vec![]);
    assert!(p.waiting.unwrap().starts_with("partition reached"));
}

#[test]
fn a_raised_partition_rolls_updated_pods_back_to_the_current_revision() {
    // Partition 2 → 4 of 5 with 3 pods updated: two must go back to V1 (CloneSetPartitionRollback).
    let pods = [n("o", 2, |p| p.ready()), n("n", 3, |p| p.ready().rev(V2))].concat();
    let spec = json!({"replicas": 5, "updateStrategy": {
        "type": "InPlaceIfPossible", "partition": 4, "maxUnavailable": 2}});
    assert_eq!(diffs(spec.clone(), &pods).update, -2);
    let p = plan(&snap(spec.clone(), &pods));
    assert_eq!(
        p.actions,
        vec![
            Action::UpdateInPlace {
                name: "n0".into(),
                revision: V1.into()
            },
            Action::UpdateInPlace {
                name: "n1".into(),
                revision: V1.into()
            },
        ]
    );
    // Not in place back: recreated at the current revision, within maxUnavailable 1.
    let pods = [
        n("o", 2, |p| p.ready()),
        n("n", 3, |p| p.ready().rev(V2).not_in_place("image only? no")),
    ]
    .concat();
    let spec = json!({"replicas": 5, "updateStrategy": {"partition": 4, "maxUnavailable": 1}});
    let p = plan(&snap(spec, &pods));
    assert_eq!(
        p.actions,
        vec![Action::MarkSpecifiedDelete {
            name: "n0".into(),
            revision: V1.into()
        }]
    );
}

#[test]
fn one_revision_never_rolls_back() {
    // current == update: the diffs are clamped, nothing moves whatever the partition says.
    let pods = n("n", 3, |p| p.ready().rev(V2));
    let mut s = snap(
        json!({"replicas": 3, "updateStrategy": {"partition": 3}}),
        &pods,
    );
    s.current_revision = V2.into();
    let p = plan(&s);
    assert_eq!(p.actions, vec![]);
}

#[test]
fn max_surge_1_creates_then_recreates() {
    let spec = json!({"replicas": 3, "updateStrategy": {"maxSurge": 1, "maxUnavailable": 0}});
    let pods = n("o", 3, |p| p.ready());
    let p = plan(&snap(spec.clone(), &pods));
    assert_eq!(p.actions, vec![create("id01", V2)]);
    // The surge pod is ready: one old pod may now be replaced.
    let mut pods = pods;
    pods.push(pod("id01").ready().rev(V2));
    let p = plan(&snap(spec, &pods));
    assert_eq!(p.actions, vec![recreate("o0")]);
}

#[test]
fn paused_stops_updates_but_not_scaling() {
    let spec = json!({"replicas": 3, "updateStrategy": {"paused": true}});
    let p = plan(&snap(spec.clone(), &n("o", 3, |p| p.ready())));
    assert_eq!(p.actions, vec![]);
    assert!(p.waiting.unwrap().contains("paused"));
    let p = plan(&snap(spec, &n("o", 2, |p| p.ready())));
    assert_eq!(p.actions, vec![create("id01", V2)]);
}

#[test]
fn in_place_if_possible_falls_back_to_recreate() {
    let pods = vec![
        pod("a").ready(),
        pod("b").ready().not_in_place("env changed"),
    ];
    let p = plan(&snap(
        json!({"replicas": 2, "updateStrategy": {"type": "InPlaceIfPossible", "maxUnavailable": 2}}),
        &pods,
    ));
    assert_eq!(
        p.actions,
        vec![
            Action::UpdateInPlace {
                name: "a".into(),
                revision: V2.into()
            },
            recreate("b")
        ]
    );
}

#[test]
fn in_place_only_failure_sets_failed_update_and_touches_nothing() {
    let pods = n("p", 2, |p| p.ready().not_in_place("env changed"));
    let p = plan(&snap(
        json!({"replicas": 2, "updateStrategy": {"type": "InPlaceOnly"}}),
        &pods,
    ));
    assert_eq!(p.actions, vec![]);
    let cond = p
        .status
        .conditions
        .as_ref()
        .and_then(|c| c.iter().find(|c| c.type_ == "FailedUpdate"))
        .expect("FailedUpdate condition");
    assert_eq!(cond.status, "True");
    assert!(cond.message.as_deref().unwrap().contains("InPlaceOnly"));
    assert!(p.status_changed);
}

#[test]
fn in_grace_and_preparing_delete_pods_are_not_updated() {
    let pods = vec![
        pod("grace").ready().in_place(|f| f.in_grace = true),
        pod("deleting")
            .ready()
            .state("PreparingDelete")
            .label("hold", "true"),
        pod("ok").ready(),
    ];
    let p = plan(&snap(
        json!({"replicas": 3, "updateStrategy": {"maxUnavailable": 3},
            "lifecycle": {"preDelete": {"labelsHandler": {"hold": "true"}, "markPodNotReady": true}}}),
        &pods,
    ));
    assert_eq!(p.actions, vec![recreate("ok")]);
}

#[test]
fn a_pod_in_a_sidecar_upgrade_waits_and_counts_as_unavailable() {
    let in_place = |name: &str| Action::UpdateInPlace {
        name: name.into(),
        revision: V2.into(),
    };
    let spec = |mu: i32| json!({"replicas": 3, "updateStrategy": {"type": "InPlaceIfPossible", "maxUnavailable": mu}});
    let busy = |p: P| p.in_place(|f| f.sidecar_upgrading = true);
    // Still ready, but its sidecar is being upgraded: it keeps its turn, and with
    // maxUnavailable 1 it is the one unavailable pod, so nothing else starts.
    let pods = vec![busy(pod("a").ready()), pod("b").ready(), pod("c").ready()];
    let p = plan(&snap(spec(1), &pods));
    assert_eq!(p.actions, vec![]);
    assert!(
        p.waiting
            .as_deref()
            .unwrap_or_default()
            .starts_with("maxUnavailable reached: 1"),
        "{:?}",
        p.waiting
    );
    // maxUnavailable 2: one more pod is updated, never the busy one.
    let p = plan(&snap(spec(2), &pods));
    assert_eq!(p.actions, vec![in_place("b")]);
    // Every pod left to update is busy: the rollout says what it waits for.
    let pods = vec![
        busy(pod("a").ready()),
        pod("b").ready().rev(V2),
        pod("c").ready().rev(V2),
    ];
    let p = plan(&snap(spec(3), &pods));
    assert_eq!(p.actions, vec![]);
    assert_eq!(
        p.waiting.as_deref(),
        Some("waiting for the SidecarSet upgrade of pod(s) a to finish")
    );
}

#[test]
fn priority_weight_and_order() {
    let pods = vec![
        pod("low").ready().label("tier", "batch"),
        pod("high").ready().label("tier", "web"),
    ];
    let spec = json!({"replicas": 2, "updateStrategy": {"maxUnavailable": 1, "priorityStrategy": {
        "weightPriority": [{"weight": 50, "matchSelector": {"matchLabels": {"tier": "web"}}}]}}});
    assert_eq!(plan(&snap(spec, &pods)).actions, vec![recreate("high")]);

    let pods = vec![
        pod("g1").ready().label("group", "g-1"),
        pod("g10").ready().label("group", "g-10"),
        pod("g2").ready().label("group", "g-2"),
    ];
    let spec = json!({"replicas": 3, "updateStrategy": {"maxUnavailable": 3, "priorityStrategy": {
        "orderPriority": [{"orderedKey": "group"}]}}});
    assert_eq!(
        plan(&snap(spec, &pods)).actions,
        vec![recreate("g10"), recreate("g2"), recreate("g1")]
    );
}

#[test]
fn scatter_spreads_matching_pods() {
    let pods = vec![
        pod("a1").ready().label("zone", "a"),
        pod("a2").ready().label("zone", "a"),
        pod("a3").ready().label("zone", "a"),
        pod("b1").ready().label("zone", "b"),
        pod("b2").ready().label("zone", "b"),
        pod("b3").ready().label("zone", "b"),
    ];
    let spec = json!({"replicas": 6, "updateStrategy": {"maxUnavailable": 6,
        "scatterStrategy": [{"key": "zone", "value": "a"}]}});
    let names: Vec<String> = plan(&snap(spec, &pods))
        .actions
        .into_iter()
        .map(|a| match a {
            Action::MarkSpecifiedDelete { name, .. } => name,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    // scatterSort: the last matching pod goes to the end, the others are spread in groups
    // sized by the matched/unmatched density (1 "a" per 2 "b").
    assert_eq!(names, ["a1", "b1", "b2", "a2", "b3", "a3"]);
}

// ---- lifecycle ---------------------------------------------------------------------------------

#[test]
fn lifecycle_transitions_table() {
    let hooks = json!({
        "preDelete": {"labelsHandler": {"hold-delete": "true"}},
        "inPlaceUpdate": {"labelsHandler": {"hold-update": "true"}},
        "preNormal": {"labelsHandler": {"ready-to-serve": "true"}}
    });
    let cases: Vec<(&str, Value, P, Vec<Action>)> = vec![
        (
            "scheduled PreparingNormal pod without preNormal hook becomes Normal",
            json!({"replicas": 1}),
            pod("p").rev(V2).state("PreparingNormal"),
            vec![lifecycle("p", LifecycleState::Normal)],
        ),
        (
            "unscheduled PreparingNormal pod waits (#1485)",
            json!({"replicas": 1}),
            pod("p").rev(V2).state("PreparingNormal").unscheduled(),
            vec![],
        ),
        (
            "preNormal hook: Normal only when all hooked",
            json!({"replicas": 1, "lifecycle": hooks}),
            pod("p")
                .rev(V2)
                .state("PreparingNormal")
                .label("ready-to-serve", "true"),
            vec![lifecycle("p", LifecycleState::Normal)],
        ),
        (
            "Updating pod whose update completed goes to Updated when the hook is not back",
            json!({"replicas": 1, "lifecycle": hooks}),
            pod("p").rev(V2).state("Updating"),
            vec![lifecycle("p", LifecycleState::Updated)],
        ),
        (
            "Updating pod whose update completed goes to Normal without lifecycle",
            json!({"replicas": 1}),
            pod("p").rev(V2).state("Updating"),
            vec![lifecycle("p", LifecycleState::Normal)],
        ),
        (
            "Updating pod still restarting stays",
            json!({"replicas": 1}),
            pod("p")
                .rev(V2)
                .state("Updating")
                .in_place(|f| f.completed = false),
            vec![],
        ),
        (
            "Updated pod goes Normal once all hooked again",
            json!({"replicas": 1, "lifecycle": hooks}),
            pod("p")
                .ready()
                .rev(V2)
                .state("Updated")
                .label("hold-update", "true"),
            vec![lifecycle("p", LifecycleState::Normal)],
        ),
        (
            "hooked pod goes to PreparingUpdate before an in-place update",
            json!({"replicas": 1, "lifecycle": hooks, "updateStrategy": {"type": "InPlaceIfPossible"}}),
            pod("p").ready().label("hold-update", "true"),
            vec![lifecycle("p", LifecycleState::PreparingUpdate)],
        ),
        (
            "PreparingUpdate pod released by its hook is updated in place",
            json!({"replicas": 1, "lifecycle": hooks, "updateStrategy": {"type": "InPlaceIfPossible"}}),
            pod("p").ready().state("PreparingUpdate"),
            vec![Action::UpdateInPlace {
                name: "p".into(),
                revision: V2.into(),
            }],
        ),
        (
            "PreparingUpdate pod at the update revision (rollback) goes back without update",
            json!({"replicas": 1}),
            pod("p").ready().rev(V2).state("PreparingUpdate"),
            vec![lifecycle("p", LifecycleState::Normal)],
        ),
        (
            "scale-in of a preDelete-hooked pod marks it PreparingDelete",
            json!({"replicas": 0, "lifecycle": hooks}),
            pod("p").ready().rev(V2).label("hold-delete", "true"),
            vec![lifecycle("p", LifecycleState::PreparingDelete)],
        ),
        (
            "PreparingDelete pod still hooked waits",
            json!({"replicas": 0, "lifecycle": hooks}),
            pod("p")
                .rev(V2)
                .state("PreparingDelete")
                .label("hold-delete", "true"),
            vec![],
        ),
        (
            "PreparingDelete pod released by its hook is deleted",
            json!({"replicas": 0, "lifecycle": hooks}),
            pod("p").rev(V2).state("PreparingDelete"),
            vec![delete("p")],
        ),
        (
            "PreparingDelete pod is taken back when replicas went up again",
            json!({"replicas": 1, "lifecycle": hooks}),
            pod("p")
                .rev(V2)
                .state("PreparingDelete")
                .label("hold-delete", "true"),
            vec![lifecycle("p", LifecycleState::PreparingNormal)],
        ),
        (
            "... but not when a hook marks pods not ready",
            json!({"replicas": 1, "lifecycle": {"preDelete": {"labelsHandler": {"hold-delete": "true"}, "markPodNotReady": true}}}),
            pod("p")
                .rev(V2)
                .state("PreparingDelete")
                .label("hold-delete", "true"),
            // Not taken back; it still counts as a replica, so nothing is created either.
            vec![],
        ),
    ];
    for (what, spec, p, want) in cases {
        assert_eq!(plan(&snap(spec, &[p])).actions, want, "{what}");
    }
}

#[test]
fn refresh_due_and_later() {
    let pods = vec![
        pod("a")
            .ready()
            .rev(V2)
            .in_place(|f| f.refresh = Refresh::Due),
        pod("b")
            .ready()
            .rev(V2)
            .in_place(|f| f.refresh = Refresh::After(Duration::from_secs(7))),
    ];
    let p = plan(&snap(json!({"replicas": 2}), &pods));
    assert_eq!(p.actions, vec![Action::RefreshInPlace { name: "a".into() }]);
    assert_eq!(p.requeue_after, Some(Duration::from_secs(7)));
}

#[test]
fn missing_pod_template_hash_is_back_filled_first() {
    let mut a = pod("a").ready();
    a.0.labels.remove(labels::POD_TEMPLATE_HASH);
    let p = plan(&snap(json!({"replicas": 1}), &[a]));
    assert_eq!(
        p.actions,
        vec![Action::SetPodTemplateHash {
            name: "a".into(),
            hash: "v1".into()
        }]
    );
}

// ---- status ------------------------------------------------------------------------------------

#[test]
fn status_counters() {
    let pods = vec![
        pod("old-ready").ready(),
        pod("new-ready").ready().rev(V2),
        pod("new-young").ready_since(3).rev(V2),
        pod("new-notready").rev(V2),
        pod("new-preparing")
            .ready()
            .rev(V2)
            .state("PreparingNormal")
            .unscheduled(),
        pod("new-inplace")
            .ready()
            .rev(V2)
            .state("Updating")
            .in_place(|f| f.completed = false),
    ];
    let mut pods = pods;
    pods[5].0.in_place_update_ready = Some(false);
    let mut gone = pod("gone").ready().rev(V2);
    gone.0.deletion_timestamp = Some(now());
    pods.push(gone);
    let p = plan(&snap(
        json!({"replicas": 6, "minReadySeconds": 10, "updateStrategy": {"paused": true}}),
        &pods,
    ));
    let s = &p.status;
    assert_eq!(
        (
            s.replicas,
            s.ready_replicas,
            s.available_replicas,
            s.updated_replicas,
            s.updated_ready_replicas,
            s.updated_available_replicas,
            s.expected_updated_replicas
        ),
        // Ready: Running + Ready + InPlaceUpdateReady; the Pending pod is not ready.
        // Available: also 10s and lifecycle Normal.
        (6, 3, 2, 5, 2, 1, 6)
    );
    assert_eq!(s.current_revision.as_deref(), Some(V1));
    assert_eq!(s.update_revision.as_deref(), Some(V2));
    assert_eq!(s.label_selector.as_deref(), Some("app=demo"));
    assert_eq!(s.observed_generation, 2);
    assert_eq!(
        p.requeue_after,
        Some(Duration::from_secs(10)),
        "minReadySeconds"
    );
}

#[test]
fn current_revision_follows_once_all_pods_updated_even_if_not_ready() {
    let p = plan(&snap(json!({"replicas": 2}), &n("n", 2, |p| p.rev(V2))));
    assert_eq!(p.status.current_revision.as_deref(), Some(V2));
    let p = plan(&snap(json!({"replicas": 3}), &n("n", 2, |p| p.rev(V2))));
    assert_eq!(p.status.current_revision.as_deref(), Some(V1));
}

#[test]
fn status_changed_only_when_different() {
    let pods = n("n", 2, |p| p.ready().rev(V2));
    let first = plan(&snap(json!({"replicas": 2}), &pods));
    assert!(first.status_changed);
    let mut s = snap(json!({"replicas": 2}), &pods);
    s.cloneset.status = Some(first.status.clone());
    let second = plan(&s);
    assert!(!second.status_changed);
    assert_eq!(second.status, first.status);
}

#[test]
fn progressing_condition() {
    let spec = json!({"replicas": 2, "progressDeadlineSeconds": 60});
    let cond = |p: &Plan| {
        let c = p
            .status
            .conditions
            .as_ref()
            .and_then(|c| c.iter().find(|c| c.type_ == "Progressing"))
            .cloned()
            .unwrap();
        (c.status, c.reason.unwrap())
    };
    let done = plan(&snap(spec.clone(), &n("n", 2, |p| p.ready().rev(V2))));
    assert_eq!(cond(&done), ("True".into(), "CloneSetAvailable".into()));

    let rolling = plan(&snap(spec.clone(), &n("o", 2, |p| p.ready())));
    assert_eq!(cond(&rolling), ("True".into(), "CloneSetUpdated".into()));
    assert_eq!(rolling.requeue_after, Some(Duration::from_secs(61)));

    // 61 seconds later, still not done: deadline exceeded.
    let mut s = snap(spec.clone(), &n("o", 2, |p| p.ready()));
    s.cloneset.status = Some(rolling.status.clone());
    s.now = Timestamp::from_second(1_800_000_061).unwrap();
    let late = plan(&s);
    assert_eq!(
        cond(&late),
        ("False".into(), "ProgressDeadlineExceeded".into())
    );

    let partition = plan(&snap(
        json!({"replicas": 2, "progressDeadlineSeconds": 60, "updateStrategy": {"partition": 1}}),
        &[pod("o").ready(), pod("n").ready().rev(V2)],
    ));
    assert_eq!(
        cond(&partition),
        ("True".into(), "ProgressPartitionAvailable".into())
    );

    let paused = plan(&snap(
        json!({"replicas": 2, "progressDeadlineSeconds": 60, "updateStrategy": {"paused": true}}),
        &n("o", 2, |p| p.ready()),
    ));
    assert_eq!(cond(&paused), ("True".into(), "CloneSetPaused".into()));
}

#[test]
fn action_events_use_openkruise_wording() {
    let e = create("abcde", V2).success_event("demo").unwrap();
    assert_eq!(
        (e.reason.as_str(), e.message.as_str()),
        ("SuccessfulCreate", "succeed to create pod demo-abcde")
    );
    let e = recreate("demo-x").success_event("demo").unwrap();
    assert_eq!(e.reason, "SuccessfulUpdatePodReCreate");
    assert_eq!(
        e.message,
        "successfully patch pod demo-x specified-delete for update(revision demo-v2)"
    );
    let e = delete("demo-x").failure_event("demo", "boom").unwrap();
    assert_eq!(
        (e.type_, e.reason.as_str()),
        (EventType::Warning, "FailedDelete")
    );
}

#[test]
fn plan_is_deterministic() {
    let pods = n("p", 5, |p| p.ready());
    let s = snap(
        json!({"replicas": 3, "updateStrategy": {"maxSurge": 1}}),
        &pods,
    );
    assert_eq!(plan(&s), plan(&s));
}

// ---- PreparingUpdateAsUpdate, exclude PreparingDelete from scaling ---------------------------

#[test]
fn preparing_update_pods_count_as_updated_when_scaling_only() {
    // replicas 4, partition 2: two pods at V2, one at V1 waiting in PreparingUpdate, two at V1.
    let spec = json!({"replicas": 4, "updateStrategy": {"partition": 2}});
    let pods = vec![
        pod("new-1").ready().rev(V2),
        pod("new-2").ready().rev(V2),
        pod("preparing").ready().state("PreparingUpdate"),
        pod("old-1").ready(),
        pod("old-2").ready(),
    ];
    let scale = diffs_counting(spec.clone(), &pods, diff::Counting::Scale);
    assert_eq!(
        (scale.scale_down, scale.scale_down_old_revision),
        (1, 0),
        "for scaling the preparing pod is an updated pod: the two old pods are the partition"
    );
    let update = diffs_counting(spec.clone(), &pods, diff::Counting::Update);
    assert_eq!(
        (update.scale_down, update.scale_down_old_revision),
        (1, 1),
        "for updating it is still an old pod"
    );
    // So scale-in takes its victim among the updated pods (the unavailable preparing pod first),
    // not from the two old pods the partition keeps.
    assert_eq!(plan(&snap(spec, &pods)).actions, vec![delete("preparing")]);
}

#[test]
fn preparing_update_pods_are_still_updated_by_the_update_half() {
    let spec = json!({"replicas": 3, "updateStrategy": {"type": "InPlaceIfPossible"}});
    let pods = vec![
        pod("a").ready().rev(V2),
        pod("b").ready().rev(V2),
        pod("c").ready().state("PreparingUpdate"),
    ];
    assert_eq!(diffs(spec.clone(), &pods).update, 1);
    assert_eq!(
        plan(&snap(spec, &pods)).actions,
        vec![Action::UpdateInPlace {
            name: "c".into(),
            revision: V2.into()
        }]
    );
}

#[test]
fn exclude_preparing_delete_creates_the_replacement_at_once() {
    // Pod "a" was specified for deletion and waits in PreparingDelete for its preDelete hook.
    let spec =
        json!({"replicas": 3, "lifecycle": {"preDelete": {"labelsHandler": {"hold": "true"}}}});
    let pods = vec![
        pod("a")
            .ready()
            .rev(V2)
            .state("PreparingDelete")
            .label("hold", "true")
            .label(labels::SPECIFIED_DELETE, "true"),
        pod("b").ready().rev(V2).label("hold", "true"),
        pod("c").ready().rev(V2).label("hold", "true"),
    ];
    // Counted as a replica: nothing is created while the hook holds the pod.
    let counted = plan(&snap(spec.clone(), &pods));
    assert_eq!(counted.actions, vec![]);
    assert!(
        counted
            .waiting
            .unwrap_or_default()
            .contains("preDelete hook"),
        "says what it waits for"
    );
    let d = diffs_counting(spec.clone(), &pods, diff::Counting::Scale);
    assert_eq!(d.scale_up, 0);

    // Excluded, by the CloneSet's label or by the manager flag: the replacement comes now.
    let mut labelled = snap(spec.clone(), &pods);
    labelled.cloneset.metadata.labels = Some(BTreeMap::from([(
        labels::CLONESET_SCALING_EXCLUDE_PREPARING_DELETE.to_string(),
        "true".to_string(),
    )]));
    assert_eq!(plan(&labelled).actions, vec![create("id01", V2)]);
    let mut flagged = snap(spec.clone(), &pods);
    flagged.scaling_exclude_preparing_delete = true;
    assert_eq!(plan(&flagged).actions, vec![create("id01", V2)]);
    // Only "true" turns it on.
    let mut other = snap(spec, &pods);
    other.cloneset.metadata.labels = Some(BTreeMap::from([(
        labels::CLONESET_SCALING_EXCLUDE_PREPARING_DELETE.to_string(),
        "yes".to_string(),
    )]));
    assert_eq!(plan(&other).actions, vec![]);
}

#[test]
fn exclude_preparing_delete_scale_math_table() {
    // (pods: normal V2, PreparingDelete V2, PreparingDelete V1) → (scale_up, scale_up_old) for
    // replicas 4, partition 1, counted / excluded.
    let cases = [
        ((3, 1, 0), (0, 0), (1, 1)),
        ((2, 1, 1), (0, 0), (2, 1)),
        ((4, 1, 0), (0, 0), (0, 0)),
    ];
    for ((normal, pd_new, pd_old), counted, excluded) in cases {
        let mut pods = n("n", normal, |p| p.ready().rev(V2));
        pods.extend(n("pn", pd_new, |p| {
            p.ready().rev(V2).state("PreparingDelete")
        }));
        pods.extend(n("po", pd_old, |p| p.ready().state("PreparingDelete")));
        let spec = json!({"replicas": 4, "updateStrategy": {"partition": 1}});
        let mut s = snap(spec, &pods);
        let ctx = Ctx::new(&s);
        let run = |ctx: &Ctx<'_>, exclude: bool| {
            let d = diff::calculate(
                ctx.replicas,
                diff::limits(&ctx.spec),
                &ctx.pods,
                exclude,
                diff::Counting::Scale,
                ctx.rollback_allowed(),
            );
            (d.scale_up, d.scale_up_old_revision)
        };
        assert_eq!(
            run(&ctx, false),
            counted,
            "{normal}/{pd_new}/{pd_old} counted"
        );
        assert_eq!(
            run(&ctx, true),
            excluded,
            "{normal}/{pd_new}/{pd_old} excluded"
        );
        s.scaling_exclude_preparing_delete = true;
        assert!(Ctx::new(&s).exclude_preparing_delete());
    }
}
