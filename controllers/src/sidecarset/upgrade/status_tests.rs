use graft_api::apps::v1beta1::sidecarset::SidecarSetStatus;
use pretty_assertions::assert_eq;

use super::fixtures::*;
use super::status::status_changed;

#[test]
fn status_counts_matched_updated_ready_and_updated_ready_pods() {
    let p = run(
        set().paused().build(),
        vec![
            pod("old-ready").build(),
            pod("old-unready").not_ready().build(),
            pod("new-ready").updated().build(),
            pod("new-unready").updated().not_ready().build(),
            // Updated in spec, kubelet not done: not consistent, so not ready for the status.
            pod("new-inconsistent").upgrading().build(),
            pod("not-matched").label("app", "db").updated().build(),
            pod("gone").updated().terminating().build(),
        ],
    );
    assert_eq!(
        p.status,
        SidecarSetStatus {
            observed_generation: 3,
            matched_pods: 5,
            updated_pods: 3,
            ready_pods: 2,
            updated_ready_pods: 1,
            latest_revision: Some("log-abc".into()),
            collision_count: Some(0),
        }
    );
    assert!(p.status_changed);
}

#[test]
fn hot_upgrade_pod_with_a_busy_idle_twin_is_not_ready() {
    let s = set().hot("log:v2").paused().build();
    let p = run(
        s,
        vec![
            pod("idle-empty")
                .twins("log-1", "log:v1", "empty:1")
                .build(),
            pod("idle-busy").twins("log-2", "log:v1", "log:v2").build(),
        ],
    );
    assert_eq!((p.status.matched_pods, p.status.ready_pods), (2, 1));
}

#[test]
fn status_is_written_only_when_kruise_would() {
    let same = SidecarSetStatus {
        observed_generation: 3,
        matched_pods: 1,
        updated_pods: 0,
        ready_pods: 1,
        updated_ready_pods: 0,
        latest_revision: Some("log-abc".into()),
        collision_count: Some(0),
    };
    let p = run(set().status(same.clone()).build(), vec![pod("a").build()]);
    assert_eq!(p.status, same);
    assert!(!p.status_changed);
    assert!(status_changed(None, &same));
    let older = SidecarSetStatus {
        observed_generation: 2,
        ..same.clone()
    };
    assert!(status_changed(Some(&older), &same));
    let newer = SidecarSetStatus {
        observed_generation: 4,
        ..same.clone()
    };
    assert!(
        !status_changed(Some(&newer), &same),
        "a newer observed generation stays"
    );
    let other_rev = SidecarSetStatus {
        latest_revision: Some("log-old".into()),
        ..same.clone()
    };
    assert!(status_changed(Some(&other_rev), &same));
    let collided = SidecarSetStatus {
        collision_count: None,
        ..same.clone()
    };
    assert!(status_changed(Some(&collided), &same));
}
