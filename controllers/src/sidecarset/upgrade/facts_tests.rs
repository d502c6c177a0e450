use std::collections::{BTreeMap, BTreeSet};

use graft_api::labels;
use pretty_assertions::assert_eq;

use super::facts::{is_state_consistent, pod_facts, pod_hash};
use super::fixtures::*;

#[test]
fn matched_needs_selector_namespace_activity_injection_and_containers() {
    let team = BTreeMap::from([("team".to_string(), "a".to_string())]);
    let cases = [
        ("plain", set().build(), pod("a").build(), None, true),
        (
            "other labels",
            set().build(),
            pod("a").label("app", "db").build(),
            None,
            false,
        ),
        (
            "succeeded",
            set().build(),
            pod("a").phase("Succeeded").build(),
            None,
            false,
        ),
        (
            "terminating",
            set().build(),
            pod("a").terminating().build(),
            None,
            false,
        ),
        (
            "not in injected list",
            set().build(),
            pod("a")
                .annotation(labels::SIDECARSET_INJECTED_LIST, "other,log2")
                .build(),
            None,
            false,
        ),
        (
            "in a longer injected list",
            set().build(),
            pod("a")
                .annotation(labels::SIDECARSET_INJECTED_LIST, "other,log")
                .build(),
            None,
            true,
        ),
        (
            "sidecar removed",
            set().build(),
            pod("a").remove_container("log").build(),
            None,
            false,
        ),
        (
            "namespace selector matches",
            set().namespace_selector("team", "a").build(),
            pod("a").build(),
            Some(&team),
            true,
        ),
        (
            "namespace unknown",
            set().namespace_selector("team", "a").build(),
            pod("a").build(),
            None,
            false,
        ),
        (
            "namespace selector does not match",
            set().namespace_selector("team", "b").build(),
            pod("a").build(),
            Some(&team),
            false,
        ),
        (
            "hot twins without working annotation",
            set().hot("log:v2").build(),
            pod("a")
                .twins("log-1", "log:v1", "empty:1")
                .remove_annotation(labels::SIDECARSET_WORKING_HOTUPGRADE_CONTAINER)
                .build(),
            None,
            false,
        ),
        (
            "hot twins",
            set().hot("log:v2").build(),
            pod("a").twins("log-1", "log:v1", "empty:1").build(),
            None,
            true,
        ),
    ];
    for (name, s, p, ns, want) in cases {
        assert_eq!(pod_facts(&s, &p, ns).matched, want, "{name}");
    }
}

#[test]
fn updated_follows_the_hash_and_upgradable_the_hash_without_image() {
    let s = set().build();
    let old = pod_facts(&s, &pod("a").build(), None);
    assert!(!old.updated);
    assert!(old.upgradable);
    let new = pod_facts(&s, &pod("a").updated().build(), None);
    assert!(new.updated);
    let changed_env = pod_facts(&s, &pod("a").without_image("w0").build(), None);
    assert!(!changed_env.upgradable, "only images may differ");
    // The legacy annotation format {"log":"h2"} still reads.
    let legacy = pod("a")
        .annotation(labels::SIDECARSET_HASH, r#"{"log":"h2","other":"x"}"#)
        .build();
    assert_eq!(pod_hash(&legacy, labels::SIDECARSET_HASH, "log"), "h2");
    assert!(pod_facts(&s, &legacy, None).updated);
    // Another SidecarSet's entry is not ours.
    let other = pod("a")
        .annotation(
            labels::SIDECARSET_HASH,
            r#"{"other":{"hash":"h2","sidecarSetName":"other","sidecarList":null}}"#,
        )
        .build();
    assert!(!pod_facts(&s, &other, None).updated);
}

#[test]
fn consistency_by_recorded_image_id_and_by_digest() {
    let s = set().build();
    // Spec moved to v2, kubelet still reports the recorded imageID: inconsistent, and a ready
    // sidecar that is inconsistent is an upgrade in flight.
    let upgrading = pod("a").upgrading().build();
    let f = pod_facts(&s, &upgrading, None);
    assert!(!f.consistent);
    assert!(f.sidecar_upgrade_in_flight);
    // The kubelet restarted it: a new imageID.
    let done = pod("a")
        .upgrading()
        .status_of("log", "log:v2", "docker.io/library/log@sha256:v2", true)
        .build();
    assert!(pod_facts(&s, &done, None).consistent);
    // Status already shows the spec image (same imageID under a new tag).
    let retagged = pod("a")
        .upgrading()
        .status_of(
            "log",
            "docker.io/library/log:v2",
            "docker.io/library/log@sha256:v1",
            true,
        )
        .build();
    assert!(pod_facts(&s, &retagged, None).consistent);
    // Digest images compare with the imageID, repository normalised, tag ignored.
    let digest = pod("a")
        .image("log", "log:v2@sha256:v2")
        .status_of(
            "log",
            "x",
            "docker-pullable://docker.io/library/log@sha256:v2",
            true,
        )
        .build();
    assert!(is_state_consistent(&s, &digest, &BTreeSet::new()));
    let stale_digest = pod("a")
        .image("log", "log@sha256:v2")
        .status_of("log", "x", "docker.io/library/log@sha256:v1", true)
        .build();
    assert!(!is_state_consistent(&s, &stale_digest, &BTreeSet::new()));
    // A container without status is never consistent.
    let missing = pod("a").build();
    let mut missing = missing;
    missing
        .status
        .as_mut()
        .unwrap()
        .container_statuses
        .as_mut()
        .unwrap()
        .pop();
    assert!(!pod_facts(&s, &missing, None).consistent);
}

#[test]
fn ready_needs_running_ready_and_empty_idle_twins() {
    assert!(pod_facts(&set().build(), &pod("a").build(), None).ready);
    assert!(!pod_facts(&set().build(), &pod("a").not_ready().build(), None).ready);
    assert!(!pod_facts(&set().build(), &pod("a").phase("Pending").build(), None).ready);
    let hot = set().hot("log:v2").build();
    assert!(
        pod_facts(
            &hot,
            &pod("a").twins("log-1", "log:v1", "empty:1").build(),
            None
        )
        .ready
    );
    // The idle twin still runs the old version: not ready for the SidecarSet.
    assert!(
        !pod_facts(
            &hot,
            &pod("a").twins("log-2", "log:v1", "log:v2").build(),
            None
        )
        .ready
    );
}

#[test]
fn workload_in_place_update_and_update_selector_are_seen() {
    let s = set().update_selector("canary", "true").build();
    let f = pod_facts(&s, &pod("a").workload_in_place_update().build(), None);
    assert!(f.in_place_updating);
    assert!(!f.selected);
    let g = pod_facts(&s, &pod("a").label("canary", "true").build(), None);
    assert!(!g.in_place_updating);
    assert!(g.selected);
}

#[test]
fn a_sidecar_upgrade_is_in_flight_until_the_recorded_image_id_changes() {
    use super::facts::any_sidecar_upgrade_in_flight as in_flight;
    let cases = [
        ("never upgraded", pod("a").build(), false),
        (
            "patched, kubelet not done",
            pod("a").upgrading().build(),
            true,
        ),
        (
            "restarted on the new image",
            pod("a")
                .upgrading()
                .status_of("log", "log:v2", "docker.io/library/log@sha256:v2", true)
                .build(),
            false,
        ),
        (
            "image id unchanged but the status reports the spec image",
            pod("a")
                .upgrading()
                .status_of("log", "log:v2", "docker.io/library/log@sha256:v1", true)
                .build(),
            false,
        ),
        (
            "unreadable state",
            pod("a")
                .annotation(labels::SIDECARSET_INPLACE_UPDATE_STATE, "{not json")
                .build(),
            true,
        ),
        (
            "a workload's in-place update is not a sidecar upgrade",
            pod("a").workload_in_place_update().build(),
            false,
        ),
    ];
    for (name, p, want) in cases {
        assert_eq!(in_flight(&p), want, "{name}");
    }
}
