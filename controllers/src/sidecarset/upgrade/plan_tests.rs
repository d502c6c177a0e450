use graft_api::labels;
use k8s_openapi::api::core::v1::PodCondition;
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::fixtures::*;
use super::{ContainerUpgrade, Outcome, PodActionKind, not_upgradable_message};
use crate::events::EventType;
use crate::inplace::PodChange;

fn patch_of(p: &super::Plan, pod: &str) -> Value {
    let a = p
        .actions
        .iter()
        .find(|a| a.name == pod)
        .expect("action for pod");
    a.changes
        .iter()
        .find_map(|c| match c {
            PodChange::Patch(v) => Some(v.clone()),
            _ => None,
        })
        .expect("a patch")
}

fn conditions_of(p: &super::Plan, pod: &str) -> Vec<PodCondition> {
    p.actions
        .iter()
        .filter(|a| a.name == pod)
        .flat_map(|a| &a.changes)
        .filter_map(|c| match c {
            PodChange::Conditions(cs) => Some(cs.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

#[test]
fn partition_keeps_pods_on_the_old_sidecar() {
    // (partition, matched pods, upgraded in this round with a large maxUnavailable)
    let cases = [
        (int(0), 4, 4),
        (int(1), 4, 3),
        (int(4), 4, 0),
        (int(9), 4, 0),
        (pct("50%"), 4, 2),
        // 30% of 4 = 1.2, rounded up to 2 kept.
        (pct("30%"), 4, 2),
        // 99% of 4 rounds up to all, reduced to 3 kept: one pod still moves.
        (pct("99%"), 4, 1),
        (pct("100%"), 4, 0),
        (pct("0%"), 4, 4),
    ];
    for (partition, n, want) in cases {
        let s = set()
            .partition(partition.clone())
            .max_unavailable(Some(int(100)))
            .build();
        let p = run(s, pods(n));
        assert_eq!(upgraded(&p).len(), want, "partition {partition:?}");
    }
}

#[test]
fn partition_counts_already_updated_pods() {
    // 4 matched, 2 updated, partition 2: the 2 waiting pods are the partition, nothing moves.
    let s = set()
        .partition(int(2))
        .max_unavailable(Some(int(10)))
        .build();
    let mut ps = pods(2);
    ps.push(pod("u1").updated().build());
    ps.push(pod("u2").updated().build());
    assert_eq!(upgraded(&run(s, ps)), Vec::<String>::new());
}

#[test]
fn update_selector_limits_the_rollout() {
    let s = set()
        .update_selector("canary", "true")
        .max_unavailable(Some(int(10)))
        .build();
    let p = run(
        s,
        vec![
            pod("a").build(),
            pod("b").label("canary", "true").build(),
            pod("c").label("canary", "false").build(),
        ],
    );
    assert_eq!(upgraded(&p), vec!["b"]);
}

#[test]
fn max_unavailable_bounds_each_round() {
    // (maxUnavailable, pods ready and waiting, extra pods, upgraded)
    let updated_unready = || pod("busy").updated().not_ready().build();
    let cases: Vec<(Option<_>, usize, Vec<_>, usize)> = vec![
        (None, 5, vec![], 1),
        (Some(int(2)), 5, vec![], 2),
        (Some(int(0)), 5, vec![], 0),
        // 25% of 5 = 1.25, rounded up: 2.
        (Some(pct("25%")), 5, vec![], 2),
        // 25% of 6 (the updated-unready pod is matched) = 1.5 → 2, one already used.
        (Some(pct("25%")), 5, vec![updated_unready()], 1),
        // An updated pod that is not ready uses the budget.
        (Some(int(1)), 5, vec![updated_unready()], 0),
        // A numeric string is refused (as kruise 1.9): budget 0.
        (Some(pct("3")), 5, vec![], 0),
    ];
    for (max, n, extra, want) in cases {
        let label = format!("{max:?} with {} extra", extra.len());
        let s = set().max_unavailable(max).build();
        let mut ps = pods(n);
        ps.extend(extra);
        assert_eq!(upgraded(&run(s, ps)).len(), want, "{label}");
    }
}

#[test]
fn pods_already_unready_upgrade_without_using_the_budget() {
    let s = set().max_unavailable(Some(int(1))).build();
    let p = run(
        s,
        vec![
            pod("r1").build(),
            pod("u1").not_ready().build(),
            pod("r2").build(),
            pod("u2").not_ready().build(),
        ],
    );
    // ActivePods order puts not-ready pods first; they are free, then one ready pod.
    assert_eq!(upgraded(&p), vec!["u1", "u2", "r1"]);
    assert_eq!(
        p.outcome,
        Outcome::Upgrading {
            upgrading: 3,
            waiting: 1,
            in_place_updating: 0
        }
    );
}

#[test]
fn pod_in_a_workload_in_place_update_is_left_alone_and_counts_as_unavailable() {
    let s = set().max_unavailable(Some(int(1))).build();
    let p = run(
        s.clone(),
        vec![
            pod("cloneset-updating")
                .workload_in_place_update()
                .not_ready()
                .build(),
            pod("b").build(),
        ],
    );
    // The CloneSet's pod is not touched, and it fills the budget of 1: nothing else moves.
    assert!(p.actions.is_empty(), "{:?}", p.actions);
    assert_eq!(
        p.outcome,
        Outcome::Upgrading {
            upgrading: 0,
            waiting: 1,
            in_place_updating: 1
        }
    );
    let wider = set().max_unavailable(Some(int(2))).build();
    let p = run(
        wider,
        vec![
            pod("cloneset-updating").workload_in_place_update().build(),
            pod("b").build(),
        ],
    );
    assert_eq!(upgraded(&p), vec!["b"]);
}

#[test]
fn pods_with_a_sidecar_upgrade_in_flight_wait() {
    // Not updated (hash h1) but the sidecar is still being restarted from an earlier round.
    let in_flight = pod("a")
        .image("log", "log:v1.5")
        .annotation(
            labels::SIDECARSET_INPLACE_UPDATE_STATE,
            r#"{"log":{"revision":"h1","updateTimestamp":"2026-01-01T00:00:00Z","lastContainerStatuses":{"log":{"imageID":"docker.io/library/log@sha256:v1"}}}}"#,
        )
        .build();
    let p = run(set().build(), vec![in_flight, pod("b").build()]);
    assert_eq!(upgraded(&p), vec!["b"]);
}

#[test]
fn not_upgradable_pods_get_the_condition_and_one_event() {
    let p = run(
        set().build(),
        vec![
            pod("env-changed").without_image("w0").build(),
            pod("env-changed-2").without_image("w0").build(),
            pod("ok").build(),
        ],
    );
    assert_eq!(
        p.not_upgradable,
        vec!["default/env-changed", "default/env-changed-2"]
    );
    assert_eq!(upgraded(&p), vec!["ok"]);
    assert_eq!(p.events.len(), 1);
    assert_eq!(p.events[0].type_, EventType::Normal);
    assert_eq!(p.events[0].reason, "NotUpgradablePods");
    assert_eq!(
        p.events[0].message,
        "SidecarSet in-place update detected 2 not upgradable pod(s) in this round, will skip them."
    );
    assert_eq!(p.events[0].message, not_upgradable_message(2));
    let action = p.actions.iter().find(|a| a.name == "env-changed").unwrap();
    assert_eq!(action.kind, PodActionKind::MarkNotUpgradable);
    let c = &conditions_of(&p, "env-changed")[0];
    assert_eq!(c.type_, "SidecarSetUpgradable");
    assert_eq!(c.status, "False");
    assert_eq!(c.reason.as_deref(), Some("UpdateImmutableField"));
    assert_eq!(c.message.as_deref(), Some(r#"{"log":false}"#));
}

#[test]
fn not_upgradable_condition_is_not_rewritten_and_merges_other_sidecarsets() {
    let cond = |status: &str, message: &str| {
        json!([{"type": "SidecarSetUpgradable", "status": status, "message": message,
                "reason": "UpdateImmutableField", "lastTransitionTime": "2026-01-01T00:00:00Z"},
               {"type": "Ready", "status": "True"}])
    };
    let mut already = pod("a").without_image("w0");
    already.0["status"]["conditions"] = cond("False", r#"{"log":false}"#);
    let p = run(set().build(), vec![already.build()]);
    assert_eq!(p.not_upgradable, vec!["default/a"]);
    assert!(
        p.actions.is_empty(),
        "unchanged condition is not patched again"
    );
    assert_eq!(p.events.len(), 1);

    // Upgrading a pod another SidecarSet marked not upgradable keeps the condition False.
    let mut other = pod("b");
    other.0["status"]["conditions"] = cond("False", r#"{"other":false}"#);
    let p = run(set().build(), vec![other.build()]);
    let c = &conditions_of(&p, "b")[0];
    assert_eq!(c.status, "False");
    assert_eq!(c.message.as_deref(), Some(r#"{"log":true,"other":false}"#));
    assert_eq!(
        c.last_transition_time.as_ref().map(|t| t.0.to_string()),
        Some("2026-01-01T00:00:00Z".into()),
        "status unchanged, transition time kept"
    );
}

#[test]
fn paused_and_not_update_write_status_only() {
    for (name, s) in [
        ("paused", set().paused().build()),
        ("NotUpdate", set().not_update().build()),
    ] {
        let p = run(
            s,
            vec![pod("a").build(), pod("b").without_image("w0").build()],
        );
        assert!(p.actions.is_empty(), "{name}");
        assert!(p.events.is_empty(), "{name}");
        assert_eq!(p.status.matched_pods, 2, "{name}");
        assert_eq!(
            p.outcome,
            if name == "paused" {
                Outcome::Paused
            } else {
                Outcome::NotUpdate
            }
        );
    }
}

#[test]
fn waits_while_earlier_updates_are_not_in_the_cache() {
    let mut snap = snapshot(set().build(), pods(2));
    snap.unobserved_pods = vec!["default/p0".into()];
    let p = super::plan(&snap);
    assert!(p.actions.is_empty());
    assert_eq!(p.outcome, Outcome::WaitingForCache);
    assert_eq!(p.requeue_after, Some(super::EXPECTATIONS_REQUEUE));
    assert_eq!(p.status.matched_pods, 2);
}

#[test]
fn all_updated_stops() {
    let p = run(set().build(), vec![pod("a").updated().build()]);
    assert!(p.actions.is_empty());
    assert_eq!(p.outcome, Outcome::AllUpdated);
}

#[test]
fn cold_upgrade_patches_image_hash_state_and_condition() {
    let s = set().patch_pod_metadata("team/owner", "ops").build();
    let p = run(s, vec![pod("a").build()]);
    let action = &p.actions[0];
    let PodActionKind::Upgrade { containers, .. } = &action.kind else {
        panic!("not an upgrade: {:?}", action.kind)
    };
    assert_eq!(
        containers,
        &vec![ContainerUpgrade {
            sidecar: "log".into(),
            container: "log".into(),
            from_image: "log:v1".into(),
            to_image: "log:v2".into(),
            hot: false,
        }]
    );
    let patch = patch_of(&p, "a");
    let ann = &patch["metadata"]["annotations"];
    assert_eq!(patch["metadata"]["resourceVersion"], "7");
    assert_eq!(
        patch["spec"],
        json!({"containers": [{"name": "log", "image": "log:v2"}]})
    );
    assert_eq!(
        ann[labels::SIDECARSET_HASH].as_str().unwrap(),
        format!(
            r#"{{"log":{{"updateTimestamp":"{NOW}","hash":"h2","sidecarSetName":"log","sidecarList":["log"],"controllerRevision":"log-abc"}}}}"#
        )
    );
    assert_eq!(
        ann[labels::SIDECARSET_INPLACE_UPDATE_STATE]
            .as_str()
            .unwrap(),
        format!(
            r#"{{"log":{{"revision":"h2","updateTimestamp":"{NOW}","lastContainerStatuses":{{"log":{{"imageID":"docker.io/library/log@sha256:v1"}}}}}}}}"#
        )
    );
    assert_eq!(ann["team/owner"], "ops");
    // Unchanged annotations are not in the patch.
    assert!(ann.get(labels::SIDECARSET_INJECTED_LIST).is_none());
    let c = &conditions_of(&p, "a")[0];
    assert_eq!(
        (c.status.as_str(), c.reason.as_deref(), c.message.as_deref()),
        (
            "True",
            Some("AllSidecarsetUpgradable"),
            Some(r#"{"log":true}"#)
        )
    );
    // The patch goes first, the condition after it (kruise's order).
    assert!(matches!(action.changes[0], PodChange::Patch(_)));
    assert!(matches!(action.changes[1], PodChange::Conditions(_)));
}

#[test]
fn upgrade_keeps_other_sidecarsets_entries_and_converts_legacy_hashes() {
    let p = run(
        set().build(),
        vec![
            pod("a")
                .annotation(labels::SIDECARSET_HASH, r#"{"log":"h1","other":"x1"}"#)
                .annotation(
                    labels::SIDECARSET_HASH_WITHOUT_IMAGE,
                    r#"{"log":"w1","other":"y1"}"#,
                )
                .build(),
        ],
    );
    let ann = &patch_of(&p, "a")["metadata"]["annotations"];
    let hashes: Value =
        serde_json::from_str(ann[labels::SIDECARSET_HASH].as_str().unwrap()).unwrap();
    assert_eq!(hashes["log"]["hash"], "h2");
    assert_eq!(hashes["other"]["hash"], "x1");
    let without: Value =
        serde_json::from_str(ann[labels::SIDECARSET_HASH_WITHOUT_IMAGE].as_str().unwrap()).unwrap();
    assert_eq!(without["other"]["hash"], "y1");
    assert_eq!(without["log"]["updateTimestamp"], NOW);
}

#[test]
fn weight_priority_orders_the_rollout() {
    let s = set()
        .strategy_field(
            "priorityStrategy",
            json!({"weightPriority": [{"weight": 50, "matchSelector": {"matchLabels": {"tier": "low"}}}]}),
        )
        .build();
    let p = run(
        s,
        vec![pod("high").build(), pod("low").label("tier", "low").build()],
    );
    assert_eq!(upgraded(&p), vec!["low"]);
}

#[test]
fn scatter_star_spreads_the_order_over_label_values() {
    let s = set().strategy_field("scatterStrategy", json!([{"key": "zone", "value": "*"}]));
    let s = s.max_unavailable(Some(int(100))).build();
    let zones = ["a", "a", "a", "b", "b", "b"];
    let ps: Vec<_> = zones
        .iter()
        .enumerate()
        .map(|(i, z)| pod(&format!("p{i}")).label("zone", z).build())
        .collect();
    let p = run(s, ps.clone());
    let by_name = |n: &str| {
        ps.iter()
            .find(|p| p.metadata.name.as_deref() == Some(n))
            .unwrap()
    };
    let order: Vec<String> = upgraded(&p)
        .iter()
        .map(|n| by_name(n).metadata.labels.as_ref().unwrap()["zone"].clone())
        .collect();
    // Without scatter the order would be a,a,a,b,b,b (pod order); with it zones alternate.
    assert_ne!(order, vec!["a", "a", "a", "b", "b", "b"]);
    assert_eq!(order.len(), 6);
    assert!(
        order.windows(3).all(|w| !(w[0] == w[1] && w[1] == w[2])),
        "zones spread: {order:?}"
    );
}

#[test]
fn active_pods_order_comes_first() {
    // Unscheduled before scheduled, newer before older.
    let mut unscheduled = pod("unscheduled").phase("Pending").not_ready();
    unscheduled.0["spec"]
        .as_object_mut()
        .unwrap()
        .remove("nodeName");
    let s = set().max_unavailable(Some(int(1))).build();
    let p = run(
        s,
        vec![
            pod("old").created("2025-01-01T00:00:00Z").build(),
            pod("new").created("2026-03-01T00:00:00Z").build(),
            unscheduled.build(),
        ],
    );
    assert_eq!(upgraded(&p), vec!["unscheduled", "new"]);
}

#[test]
fn a_pod_not_ready_after_a_workload_update_uses_the_budget() {
    // The CloneSet's update of `app` is done (new imageID) but its readiness probe has not
    // passed yet: upgrading its sidecar costs nothing more, but no ready pod may go down now.
    let just_updated = || {
        pod("just-updated")
            .workload_in_place_update()
            .status_of("app", "app:v2", "docker.io/library/app@sha256:a2", false)
            .not_ready()
            .build()
    };
    let s = set().max_unavailable(Some(int(1))).build();
    let p = run(s, vec![just_updated(), pod("b").build()]);
    assert_eq!(upgraded(&p), vec!["just-updated"]);
    // Without the workload's update state (kruise's own case) the ready pod goes too.
    let s = set().max_unavailable(Some(int(1))).build();
    let p = run(s, vec![pod("u").not_ready().build(), pod("b").build()]);
    assert_eq!(upgraded(&p), vec!["u", "b"]);
}
