use graft_api::labels;
use pretty_assertions::assert_eq;
use serde_json::Value;

use super::fixtures::*;
use super::hot::{needs_reset, twin_to_upgrade};
use super::{ContainerUpgrade, Outcome, PodActionKind};
use crate::inplace::PodChange;

fn patch(p: &super::Plan) -> Value {
    match &p.actions[0].changes[0] {
        PodChange::Patch(v) => v.clone(),
        other => panic!("not a patch: {other:?}"),
    }
}

#[test]
fn twin_choice_prefers_the_empty_then_the_unready_then_the_idle_twin() {
    let s = set().hot("log:v2").build();
    let sidecar = &s.spec.containers()[0];
    let cases = [
        (
            "log-1 holds the empty image",
            pod("a").twins("log-2", "empty:1", "log:v1"),
            "log-1",
        ),
        (
            "log-2 holds the empty image",
            pod("a").twins("log-1", "log:v1", "empty:1"),
            "log-2",
        ),
        (
            "log-2 not ready",
            pod("a")
                .twins("log-1", "log:v0", "log:v1")
                .status_of("log-2", "log:v1", "id-2", false),
            "log-2",
        ),
        (
            "log-1 not ready",
            pod("a")
                .twins("log-2", "log:v0", "log:v1")
                .status_of("log-1", "log:v0", "id-1", false),
            "log-1",
        ),
        (
            "both ready, log-1 works",
            pod("a").twins("log-1", "log:v0", "log:v1"),
            "log-2",
        ),
        (
            "both ready, log-2 works",
            pod("a").twins("log-2", "log:v0", "log:v1"),
            "log-1",
        ),
        (
            "no working annotation: log-2 counts as working",
            pod("a")
                .twins("log-1", "log:v0", "log:v1")
                .remove_annotation(labels::SIDECARSET_WORKING_HOTUPGRADE_CONTAINER),
            "log-1",
        ),
    ];
    for (name, p, want) in cases {
        let (chosen, other) = twin_to_upgrade(&s, &p.build(), sidecar);
        assert_eq!(chosen, want, "{name}");
        assert_ne!(chosen, other, "{name}");
    }
}

#[test]
fn hot_upgrade_fills_the_idle_twin_and_makes_it_the_working_one() {
    let s = set().hot("log:v2").build();
    let p = run(
        s,
        vec![
            pod("a")
                .twins("log-1", "log:v1", "empty:1")
                .annotation("version.sidecarset.kruise.io/log-1", "57")
                .build(),
        ],
    );
    let PodActionKind::Upgrade { containers, .. } = &p.actions[0].kind else {
        panic!("{:?}", p.actions)
    };
    assert_eq!(
        containers,
        &vec![ContainerUpgrade {
            sidecar: "log".into(),
            container: "log-2".into(),
            from_image: "empty:1".into(),
            to_image: "log:v2".into(),
            hot: true,
        }]
    );
    let patch = patch(&p);
    assert_eq!(
        patch["spec"]["containers"],
        serde_json::json!([{"name": "log-2", "image": "log:v2"}])
    );
    let ann = &patch["metadata"]["annotations"];
    assert_eq!(
        ann[labels::SIDECARSET_WORKING_HOTUPGRADE_CONTAINER],
        r#"{"log":"log-2"}"#
    );
    // New twin: version = SidecarSet resourceVersion, alt = the old twin's version.
    assert_eq!(ann["version.sidecarset.kruise.io/log-2"], "100");
    assert_eq!(ann["versionalt.sidecarset.kruise.io/log-2"], "57");
    assert_eq!(ann["versionalt.sidecarset.kruise.io/log-1"], "100");
    assert!(
        ann.get("version.sidecarset.kruise.io/log-1").is_none(),
        "old twin's version unchanged"
    );
    let state: Value = serde_json::from_str(
        ann[labels::SIDECARSET_INPLACE_UPDATE_STATE]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        state["log"]["lastContainerStatuses"],
        serde_json::json!({"log-2": {"imageID": "docker.io/library/empty:1-id"}})
    );
}

/// After the upgrade: hash h2, `log-2` works at v2, `log-1` still runs v1.
fn after_upgrade(kubelet_done: bool) -> super::fixtures::PodB {
    let id2 = if kubelet_done {
        "docker.io/library/log@sha256:v2"
    } else {
        "docker.io/library/empty:1-id"
    };
    pod("a")
        .twins("log-2", "log:v1", "log:v2")
        .annotation(labels::SIDECARSET_HASH, &hash_json("h2"))
        .annotation("version.sidecarset.kruise.io/log-2", "100")
        .annotation(
            labels::SIDECARSET_INPLACE_UPDATE_STATE,
            r#"{"log":{"revision":"h2","updateTimestamp":"2026-01-01T00:00:00Z","lastContainerStatuses":{"log-2":{"imageID":"docker.io/library/empty:1-id"}}}}"#,
        )
        .status_of("log-2", if kubelet_done { "log:v2" } else { "empty:1" }, id2, kubelet_done)
}

#[test]
fn old_twin_is_reset_once_the_new_one_is_consistent_and_ready() {
    let s = set().hot("log:v2").build();
    let ready = after_upgrade(true).build();
    assert!(needs_reset(&s, &ready));
    let p = run(
        s.clone(),
        vec![ready, pod("b").twins("log-1", "log:v1", "empty:1").build()],
    );
    assert_eq!(p.outcome, Outcome::ResettingHotUpgrade);
    assert_eq!(p.actions.len(), 1, "the reset round upgrades nothing else");
    assert_eq!(
        p.actions[0].kind,
        PodActionKind::ResetHotUpgrade {
            containers: vec!["log-1".into()]
        }
    );
    assert_eq!(
        p.actions[0].success_event.as_ref().unwrap().reason,
        "ResetContainerSucceed"
    );
    assert_eq!(
        p.actions[0].failure_event.as_ref().unwrap().reason,
        "ResetContainerFailed"
    );
    let patch = patch(&p);
    assert_eq!(
        patch["spec"]["containers"],
        serde_json::json!([{"name": "log-1", "image": "empty:1"}])
    );
    let ann = &patch["metadata"]["annotations"];
    assert_eq!(ann["version.sidecarset.kruise.io/log-1"], "0");
    assert_eq!(ann["versionalt.sidecarset.kruise.io/log-2"], "0");
    assert!(
        ann.get(labels::SIDECARSET_HASH).is_none(),
        "a reset does not touch the hash"
    );
    let state: Value = serde_json::from_str(
        ann[labels::SIDECARSET_INPLACE_UPDATE_STATE]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        state["log"]["lastContainerStatuses"]["log-1"]["imageID"],
        "docker.io/library/log:v1-id"
    );
    assert_eq!(
        state["log"]["lastContainerStatuses"]["log-2"]["imageID"],
        "docker.io/library/empty:1-id"
    );
}

#[test]
fn old_twin_stays_while_the_new_one_starts() {
    let s = set().hot("log:v2").build();
    let starting = after_upgrade(false).build();
    assert!(!needs_reset(&s, &starting));
    let p = run(s.clone(), vec![starting]);
    assert!(p.actions.is_empty());
    assert_eq!(p.outcome, Outcome::AllUpdated);
    // Not ready for the status until the old twin holds the empty image again.
    assert_eq!((p.status.updated_pods, p.status.ready_pods), (1, 0));
    // Done: nothing to reset.
    let done = pod("a").twins("log-2", "empty:1", "log:v2").build();
    assert!(!needs_reset(&s, &done));
}

#[test]
fn reset_skips_pods_in_a_workload_in_place_update() {
    let s = set().hot("log:v2").build();
    let p = run(
        s,
        vec![after_upgrade(true).workload_in_place_update().build()],
    );
    assert!(p.actions.is_empty(), "{:?}", p.actions);
}
