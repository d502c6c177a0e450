//! Table tests of the in-place engine (kruise-api.md §2.6).

use std::collections::BTreeMap;
use std::time::Duration;

use graft_api::labels;
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::jiff::Timestamp;
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::*;

fn template(v: Value) -> PodTemplateSpec {
    serde_json::from_value(v).unwrap()
}

fn base() -> Value {
    json!({
        "metadata": {"labels": {"app": "demo"}, "annotations": {"note": "a"}},
        "spec": {
            "initContainers": [{"name": "init", "image": "busybox:1"}],
            "containers": [
                {"name": "main", "image": "nginx:1", "env": [{"name": "A", "value": "1"}]},
                {"name": "side", "image": "busybox:1"}
            ]
        }
    })
}

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

const T0: &str = "2026-01-02T03:04:05Z";

/// Expected images and metadata changes, or the field that forbids an in-place update.
type Want = Result<(&'static [(&'static str, &'static str)], MetadataChanges), &'static str>;

#[test]
fn in_place_ability_table() {
    struct Case {
        name: &'static str,
        edit: fn(&mut Value),
        want: Want,
    }
    let labels_only = MetadataChanges {
        labels: BTreeMap::from([
            ("app".into(), Some("demo2".into())),
            ("new".into(), Some("x".into())),
        ]),
        ..Default::default()
    };
    let annotations_only = MetadataChanges {
        annotations: BTreeMap::from([("note".into(), None)]),
        ..Default::default()
    };
    let cases = [
        Case {
            name: "nothing",
            edit: |_| {},
            want: Ok((&[], MetadataChanges::default())),
        },
        Case {
            name: "image change",
            edit: |v| v["spec"]["containers"][0]["image"] = json!("nginx:2"),
            want: Ok((&[("main", "nginx:2")], MetadataChanges::default())),
        },
        Case {
            name: "two images",
            edit: |v| {
                v["spec"]["containers"][0]["image"] = json!("nginx:2");
                v["spec"]["containers"][1]["image"] = json!("busybox:2");
            },
            want: Ok((
                &[("main", "nginx:2"), ("side", "busybox:2")],
                MetadataChanges::default(),
            )),
        },
        Case {
            name: "env change",
            edit: |v| v["spec"]["containers"][0]["env"][0]["value"] = json!("2"),
            want: Err("spec.containers[0].env[0].value"),
        },
        Case {
            name: "image and env change",
            edit: |v| {
                v["spec"]["containers"][0]["image"] = json!("nginx:2");
                v["spec"]["containers"][0]["env"][0]["value"] = json!("2");
            },
            want: Err("spec.containers[0].env[0].value"),
        },
        Case {
            name: "added container",
            edit: |v| {
                v["spec"]["containers"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"name": "x", "image": "x"}))
            },
            want: Err("spec.containers"),
        },
        Case {
            name: "initContainer image",
            edit: |v| v["spec"]["initContainers"][0]["image"] = json!("busybox:2"),
            want: Err("spec.initContainers[0].image"),
        },
        Case {
            name: "labels only",
            edit: |v| {
                v["metadata"]["labels"]["app"] = json!("demo2");
                v["metadata"]["labels"]["new"] = json!("x");
            },
            want: Ok((&[], labels_only.clone())),
        },
        Case {
            name: "annotations only (removal)",
            edit: |v| {
                v["metadata"].as_object_mut().unwrap().remove("annotations");
            },
            want: Ok((&[], annotations_only.clone())),
        },
        Case {
            name: "explicit defaults are no change",
            edit: |v| {
                v["spec"]["containers"][0]["imagePullPolicy"] = json!("Always");
                v["spec"]["terminationGracePeriodSeconds"] = json!(30);
            },
            want: Ok((&[], MetadataChanges::default())),
        },
        Case {
            name: "resources added are not in place",
            edit: |v| v["spec"]["containers"][1]["resources"] = json!({"limits": {"cpu": "1"}}),
            want: Err("spec.containers[1].resources.limits"),
        },
        Case {
            name: "pod-level field",
            edit: |v| v["spec"]["nodeSelector"] = json!({"zone": "a"}),
            want: Err("spec.nodeSelector"),
        },
    ];
    for c in cases {
        let old = template(base());
        let mut new = base();
        (c.edit)(&mut new);
        let got = calculate(&old, &template(new), "demo-v2", 3);
        match (got, c.want) {
            (Ok(spec), Ok((images, metadata))) => {
                let want_images: BTreeMap<String, String> = images
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
                assert_eq!(spec.container_images, want_images, "{}", c.name);
                assert_eq!(spec.metadata, metadata, "{}", c.name);
                assert_eq!(spec.revision, "demo-v2");
                assert_eq!(spec.grace_period_seconds, 3);
            }
            (Err(e), Err(field)) => {
                assert_eq!(e.field, field, "{}", c.name);
                assert!(e.to_string().contains(field), "{}", c.name);
            }
            (got, want) => panic!("{}: got {got:?}, want {want:?}", c.name),
        }
    }
}

/// A running, ready pod at revision v1 with the readiness gate.
fn pod() -> Pod {
    serde_json::from_value(json!({
        "metadata": {
            "name": "demo-abcde", "namespace": "ns",
            "labels": {"app": "demo", "controller-revision-hash": "demo-v1"},
            "annotations": {"note": "a"}
        },
        "spec": {
            "readinessGates": [{"conditionType": "InPlaceUpdateReady"}],
            "containers": [{"name": "main", "image": "nginx:1"}, {"name": "side", "image": "busybox:1"}]
        },
        "status": {
            "phase": "Running",
            "conditions": [
                {"type": "InPlaceUpdateReady", "status": "True"},
                {"type": "ContainersReady", "status": "True"},
                {"type": "Ready", "status": "True"}
            ],
            "containerStatuses": [
                {"name": "main", "image": "docker.io/library/nginx:1", "imageID": "docker.io/library/nginx@sha256:111",
                 "ready": true, "restartCount": 0, "state": {"running": {}}},
                {"name": "side", "image": "docker.io/library/busybox:1", "imageID": "docker.io/library/busybox@sha256:bbb",
                 "ready": true, "restartCount": 0, "state": {"running": {}}}
            ]
        }
    }))
    .unwrap()
}

fn spec(grace: i32) -> InPlaceUpdateSpec {
    InPlaceUpdateSpec {
        revision: "demo-v2".into(),
        container_images: BTreeMap::from([("main".into(), "nginx:2".into())]),
        metadata: MetadataChanges {
            labels: BTreeMap::from([("tier".into(), Some("web".into()))]),
            ..Default::default()
        },
        grace_period_seconds: grace,
        immediate: MetadataChanges {
            labels: BTreeMap::from([("pod-template-hash".into(), Some("v2".into()))]),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// Applies a strategic merge patch of the shape [`begin`] produces (metadata maps, containers by
/// name) to a pod, like the API server would.
fn apply(pod: &mut Pod, change: &PodChange) {
    match change {
        PodChange::Conditions(conds) => {
            let status = pod.status.get_or_insert_with(Default::default);
            let list = status.conditions.get_or_insert_with(Vec::new);
            for c in conds {
                list.retain(|x| x.type_ != c.type_);
                list.push(c.clone());
            }
        }
        PodChange::Patch(p) | PodChange::Resize(p) => {
            for (key, target) in [
                ("labels", &mut pod.metadata.labels),
                ("annotations", &mut pod.metadata.annotations),
            ] {
                if let Some(m) = p["metadata"][key].as_object() {
                    let t = target.get_or_insert_with(BTreeMap::new);
                    for (k, v) in m {
                        match v.as_str() {
                            Some(s) => t.insert(k.clone(), s.to_string()),
                            None => t.remove(k),
                        };
                    }
                }
            }
            for c in p["spec"]["containers"].as_array().into_iter().flatten() {
                let spec = pod.spec.as_mut().unwrap();
                let target = spec
                    .containers
                    .iter_mut()
                    .find(|x| Some(x.name.as_str()) == c["name"].as_str())
                    .unwrap();
                target.image = c["image"].as_str().map(str::to_string);
            }
        }
    }
}

fn state_json(pod: &Pod) -> Value {
    serde_json::from_str(&pod.metadata.annotations.as_ref().unwrap()[labels::INPLACE_UPDATE_STATE])
        .unwrap()
}

fn set_status(pod: &mut Pod, name: &str, image: &str, image_id: &str) {
    let cs = pod
        .status
        .as_mut()
        .unwrap()
        .container_statuses
        .as_mut()
        .unwrap();
    let c = cs.iter_mut().find(|c| c.name == name).unwrap();
    c.image = image.into();
    c.image_id = image_id.into();
}

#[test]
fn begin_with_grace_zero_patches_at_once() {
    let p = pod();
    let changes = begin(&p, &spec(0), t(T0)).unwrap();
    assert_eq!(changes.len(), 2);
    let PodChange::Conditions(conds) = &changes[0] else {
        panic!("{changes:?}")
    };
    assert_eq!(
        serde_json::to_value(conds).unwrap(),
        json!([
            {"type": "InPlaceUpdateReady", "status": "False", "reason": "StartInPlaceUpdate", "lastTransitionTime": T0},
            {"type": "Ready", "status": "False", "reason": "ReadinessGatesNotReady", "lastTransitionTime": T0,
             "message": "the status of pod readiness gate \"InPlaceUpdateReady\" is not \"True\", but False"}
        ])
    );
    let PodChange::Patch(patch) = &changes[1] else {
        panic!("{changes:?}")
    };
    let state = patch["metadata"]["annotations"][labels::INPLACE_UPDATE_STATE]
        .as_str()
        .unwrap();
    // The exact annotation text kruise-manager writes (Go field order).
    assert_eq!(
        state,
        r#"{"revision":"demo-v2","updateTimestamp":"2026-01-02T03:04:05Z","lastContainerStatuses":{"main":{"imageID":"docker.io/library/nginx@sha256:111"}},"updateImages":true,"containerBatchesRecord":[{"timestamp":"2026-01-02T03:04:05Z","containers":["main"]}]}"#
    );
    let mut without_state = patch.clone();
    without_state["metadata"]["annotations"]
        .as_object_mut()
        .unwrap()
        .remove(labels::INPLACE_UPDATE_STATE);
    assert_eq!(
        without_state,
        json!({
            "metadata": {
                "labels": {"controller-revision-hash": "demo-v2", "pod-template-hash": "v2", "tier": "web"},
                "annotations": {
                    "inplace-update-state": null,
                    "apps.kruise.io/inplace-update-grace": null,
                    "inplace-update-grace": null
                }
            },
            "spec": {"containers": [{"name": "main", "image": "nginx:2"}]}
        })
    );
}

#[test]
fn begin_with_grace_parks_the_update() {
    let p = pod();
    let changes = begin(&p, &spec(10), t(T0)).unwrap();
    assert!(matches!(&changes[0], PodChange::Conditions(c) if c[0].status == "False"));
    let PodChange::Patch(patch) = &changes[1] else {
        panic!("{changes:?}")
    };
    assert_eq!(patch.get("spec"), None, "no image patched during grace");
    let a = &patch["metadata"]["annotations"];
    assert_eq!(
        a[labels::INPLACE_UPDATE_STATE].as_str().unwrap(),
        r#"{"revision":"demo-v2","updateTimestamp":"2026-01-02T03:04:05Z","lastContainerStatuses":{},"updateImages":true}"#
    );
    let grace: Value =
        serde_json::from_str(a[labels::INPLACE_UPDATE_GRACE].as_str().unwrap()).unwrap();
    assert_eq!(
        grace,
        json!({
            "revision": "demo-v2",
            "containerImages": {"main": "nginx:2"},
            // base64 of {"metadata":{"labels":{"tier":"web"}}}
            "metaDataPatch": "eyJtZXRhZGF0YSI6eyJsYWJlbHMiOnsidGllciI6IndlYiJ9fX0=",
            "graceSeconds": 10
        })
    );
    assert_eq!(
        patch["metadata"]["labels"],
        json!({"controller-revision-hash": "demo-v2", "pod-template-hash": "v2"}),
        "template labels wait for the grace period, revision labels do not"
    );
}

#[test]
fn begin_without_gate_sets_no_condition() {
    let mut p = pod();
    p.spec.as_mut().unwrap().readiness_gates = None;
    let changes = begin(&p, &spec(0), t(T0)).unwrap();
    assert_eq!(changes.len(), 1);
    assert!(matches!(changes[0], PodChange::Patch(_)));
}

#[test]
fn progress_table() {
    // Each case: how to get the pod into shape (from a pod that began with `grace`), the time of
    // the call, and the expected outcome.
    struct Case {
        name: &'static str,
        grace: i32,
        after: fn(&mut Pod),
        now: &'static str,
        want: fn(&Progress) -> bool,
    }
    let cases = [
        Case {
            name: "grace not over",
            grace: 10,
            after: |_| {},
            now: "2026-01-02T03:04:09.500Z",
            want: |p| {
                *p == Progress::WaitingGrace {
                    remaining: Duration::from_secs(6),
                }
            },
        },
        Case {
            name: "grace over applies images, metadata and records imageIDs",
            grace: 10,
            after: |_| {},
            now: "2026-01-02T03:04:15Z",
            want: |p| match p {
                Progress::Apply(changes) => {
                    let PodChange::Patch(patch) = &changes[0] else {
                        return false;
                    };
                    let state: Value = serde_json::from_str(
                        patch["metadata"]["annotations"][labels::INPLACE_UPDATE_STATE]
                            .as_str()
                            .unwrap(),
                    )
                    .unwrap();
                    changes.len() == 1
                        && patch["spec"]["containers"]
                            == json!([{"name": "main", "image": "nginx:2"}])
                        && patch["metadata"]["labels"]["tier"] == "web"
                        && patch["metadata"]["annotations"][labels::INPLACE_UPDATE_GRACE].is_null()
                        && state["updateTimestamp"] == T0
                        && state["lastContainerStatuses"]
                            == json!({"main": {"imageID": "docker.io/library/nginx@sha256:111"}})
                        && state["containerBatchesRecord"]
                            == json!([{"timestamp": "2026-01-02T03:04:15Z", "containers": ["main"]}])
                }
                _ => false,
            },
        },
        Case {
            name: "revision moved during grace drops the parked update",
            grace: 10,
            after: |p| {
                p.metadata
                    .labels
                    .as_mut()
                    .unwrap()
                    .insert(labels::CONTROLLER_REVISION_HASH.into(), "demo-v3".into());
            },
            now: "2026-01-02T03:04:06Z",
            want: |p| matches!(p, Progress::Apply(c) if matches!(&c[0], PodChange::Patch(v) if v["metadata"]["annotations"][labels::INPLACE_UPDATE_GRACE].is_null() && v.get("spec").is_none())),
        },
        Case {
            name: "kubelet not done: imageID unchanged, old image",
            grace: 0,
            after: |_| {},
            now: "2026-01-02T03:04:06Z",
            want: |p| {
                *p == Progress::InProgress {
                    waiting_for: "container main imageID not changed".into(),
                }
            },
        },
        Case {
            name: "imageID changed → Completed with InPlaceUpdateReady=True",
            grace: 0,
            after: |p| {
                set_status(
                    p,
                    "main",
                    "docker.io/library/nginx:2",
                    "docker.io/library/nginx@sha256:222",
                )
            },
            now: "2026-01-02T03:04:20Z",
            want: |p| match p {
                Progress::Completed(c) => {
                    matches!(&c[..], [PodChange::Conditions(conds)] if conds.len() == 1 && conds[0].type_ == "InPlaceUpdateReady" && conds[0].status == "True")
                }
                _ => false,
            },
        },
        Case {
            name: "new tag with the same digest: imageID equal but status image is the new spec image",
            grace: 0,
            after: |p| {
                set_status(
                    p,
                    "main",
                    "docker.io/library/nginx:2",
                    "docker.io/library/nginx@sha256:111",
                )
            },
            now: "2026-01-02T03:04:20Z",
            want: |p| matches!(p, Progress::Completed(_)),
        },
        Case {
            name: "container restarting: old instance still reported",
            grace: 0,
            after: |p| {
                let cs = &mut p
                    .status
                    .as_mut()
                    .unwrap()
                    .container_statuses
                    .as_mut()
                    .unwrap()[0];
                cs.state =
                    serde_json::from_value(json!({"waiting": {"reason": "ContainerCreating"}}))
                        .unwrap();
                cs.ready = false;
            },
            now: "2026-01-02T03:04:20Z",
            want: |p| matches!(p, Progress::InProgress { .. }),
        },
        Case {
            name: "kubelet took the new spec, old container still reported: the gate opens early",
            grace: 0,
            after: |p| {
                p.metadata.generation = Some(2);
                p.status.as_mut().unwrap().observed_generation = Some(2);
            },
            now: "2026-01-02T03:04:20Z",
            want: |p| {
                matches!(p, Progress::Apply(c) if matches!(&c[..], [PodChange::Conditions(cs)]
                    if cs[0].type_ == labels::INPLACE_UPDATE_READY && cs[0].status == "True"))
            },
        },
        Case {
            name: "kubelet has not taken the new spec yet: the gate stays False",
            grace: 0,
            after: |p| {
                p.metadata.generation = Some(2);
                p.status.as_mut().unwrap().observed_generation = Some(1);
            },
            now: "2026-01-02T03:04:20Z",
            want: |p| matches!(p, Progress::InProgress { .. }),
        },
        Case {
            name: "container restarting: no imageID yet",
            grace: 0,
            after: |p| set_status(p, "main", "nginx:2", ""),
            now: "2026-01-02T03:04:20Z",
            want: |p| {
                *p == Progress::InProgress {
                    waiting_for: "container main has no imageID yet".into(),
                }
            },
        },
        Case {
            name: "crash-looping on the new image still completes (readiness tells the rest)",
            grace: 0,
            after: |p| {
                set_status(
                    p,
                    "main",
                    "docker.io/library/nginx:2",
                    "docker.io/library/nginx@sha256:222",
                );
                let cs = &mut p
                    .status
                    .as_mut()
                    .unwrap()
                    .container_statuses
                    .as_mut()
                    .unwrap()[0];
                cs.state =
                    serde_json::from_value(json!({"waiting": {"reason": "CrashLoopBackOff"}}))
                        .unwrap();
                cs.restart_count = 3;
            },
            now: "2026-01-02T03:04:20Z",
            want: |p| matches!(p, Progress::Completed(_)),
        },
        Case {
            name: "status of an updated container missing",
            grace: 0,
            after: |p| {
                p.status
                    .as_mut()
                    .unwrap()
                    .container_statuses
                    .as_mut()
                    .unwrap()
                    .remove(0);
            },
            now: "2026-01-02T03:04:20Z",
            want: |p| {
                *p == Progress::InProgress {
                    waiting_for: "no status for containers main".into(),
                }
            },
        },
    ];
    for c in cases {
        let mut p = pod();
        for change in begin(&p, &spec(c.grace), t(T0)).unwrap() {
            apply(&mut p, &change);
        }
        (c.after)(&mut p);
        let got = progress(&p, t(c.now)).unwrap();
        assert!((c.want)(&got), "{}: got {got:?}", c.name);
    }
}

#[test]
fn full_cycle_with_grace_ends_ready() {
    let mut p = pod();
    for change in begin(&p, &spec(5), t(T0)).unwrap() {
        apply(&mut p, &change);
    }
    assert!(is_in_place_updating(&p) && is_in_grace(&p) && !is_ready_for_in_place(&p));
    let Progress::Apply(changes) = progress(&p, t("2026-01-02T03:04:10Z")).unwrap() else {
        panic!()
    };
    for change in &changes {
        apply(&mut p, change);
    }
    assert!(!is_in_grace(&p) && is_in_place_updating(&p));
    assert_eq!(
        p.spec.as_ref().unwrap().containers[0].image.as_deref(),
        Some("nginx:2")
    );
    assert_eq!(p.metadata.labels.as_ref().unwrap()["tier"], "web");
    assert_eq!(is_update_completed(&p).unwrap(), false);
    set_status(
        &mut p,
        "main",
        "docker.io/library/nginx:2",
        "docker.io/library/nginx@sha256:222",
    );
    assert_eq!(is_update_completed(&p).unwrap(), true);
    let Progress::Completed(changes) = progress(&p, t("2026-01-02T03:04:20Z")).unwrap() else {
        panic!()
    };
    for change in &changes {
        apply(&mut p, change);
    }
    assert!(!is_in_place_updating(&p) && is_ready_for_in_place(&p));
    assert_eq!(
        progress(&p, t("2026-01-02T03:05:00Z")).unwrap(),
        Progress::NotUpdating
    );
    assert_eq!(state_json(&p)["revision"], "demo-v2");
}

#[test]
fn metadata_only_update_restarts_nothing() {
    let mut p = pod();
    let old = template(base());
    let mut new = base();
    new["metadata"]["labels"]["tier"] = json!("web");
    let s = calculate(&old, &template(new), "demo-v2", 0).unwrap();
    assert!(s.container_images.is_empty());
    for change in begin(&p, &s, t(T0)).unwrap() {
        assert!(
            !matches!(&change, PodChange::Patch(v) if v.get("spec").is_some()),
            "no container is touched"
        );
        apply(&mut p, &change);
    }
    assert_eq!(
        state_json(&p),
        json!({"revision": "demo-v2", "updateTimestamp": T0, "lastContainerStatuses": {},
               "containerBatchesRecord": [{"timestamp": T0, "containers": []}]})
    );
    // Nothing to wait for: the next reconcile flips the condition back.
    assert!(matches!(
        progress(&p, t(T0)).unwrap(),
        Progress::Completed(_)
    ));
}

#[test]
fn new_pods_get_the_gate_and_the_condition() {
    let mut spec = k8s_openapi::api::core::v1::PodSpec::default();
    inject_readiness_gate(&mut spec);
    inject_readiness_gate(&mut spec);
    assert_eq!(spec.readiness_gates, Some(vec![readiness_gate()]));
    let mut p = pod();
    p.status.as_mut().unwrap().conditions = None;
    assert!(is_ready_for_in_place(&p));
    assert_eq!(
        progress(&p, t(T0)).unwrap(),
        Progress::Completed(vec![PodChange::Conditions(vec![ready_condition(t(T0))])])
    );
    assert_eq!(
        PodChange::status_patch(&[ready_condition(t(T0))]),
        json!({"status": {"conditions": [{"type": "InPlaceUpdateReady", "status": "True", "lastTransitionTime": T0}]}})
    );
}

#[test]
fn reads_state_written_by_kruise() {
    let mut p = pod();
    // Written by kruise-manager for a metadata-only update: Go writes nil maps as null.
    p.metadata.annotations.as_mut().unwrap().insert(
        labels::INPLACE_UPDATE_STATE_LEGACY.into(),
        r#"{"revision":"demo-v2","updateTimestamp":"2026-01-02T03:04:05Z","lastContainerStatuses":null,"containerBatchesRecord":[{"timestamp":"2026-01-02T03:04:05Z","containers":[]}]}"#.into(),
    );
    assert_eq!(update_state(&p).unwrap().unwrap().revision, "demo-v2");
    assert!(is_update_completed(&p).unwrap());
    p.metadata
        .annotations
        .as_mut()
        .unwrap()
        .insert(labels::INPLACE_UPDATE_STATE.into(), "{not json".into());
    assert!(matches!(
        progress(&p, t(T0)),
        Err(InPlaceError::BadAnnotation { .. })
    ));
    assert!(is_in_place_updating(&p));
}
