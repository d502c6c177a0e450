//! Table tests of the in-place features OpenKruise has with its gates on (kruise-api.md §2.6):
//! env from metadata (`InPlaceUpdateEnvFromMetadata`), resources (`InPlaceWorkloadVerticalScaling`)
//! and container launch priority. Each feature: what `calculate` finds in place, what `begin`
//! patches, and when `progress` says it is done.

use std::collections::BTreeMap;

use graft_api::annotations::{
    RuntimeContainerHashes, RuntimeContainerMeta, RuntimeContainerMetaSet,
    expected_env_from_metadata_hash, to_annotation,
};
use graft_api::labels;
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::jiff::Timestamp;
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::*;

const T0: &str = "2026-01-02T03:04:05Z";

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn template(v: Value) -> PodTemplateSpec {
    serde_json::from_value(v).unwrap()
}

fn env_ref(name: &str, path: &str) -> Value {
    json!({"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}})
}

/// A template whose `app` container reads label `version` and annotation `config`, and whose
/// `side` container has Burstable resources.
fn base() -> Value {
    json!({
        "metadata": {"labels": {"app": "demo", "version": "1"}, "annotations": {"config": "a", "note": "x"}},
        "spec": {"containers": [
            {"name": "app", "image": "app:1", "env": [
                env_ref("VERSION", "metadata.labels['version']"),
                env_ref("CONFIG", "metadata.annotations['config']")
            ]},
            {"name": "side", "image": "side:1", "resources": {
                "requests": {"cpu": "100m", "memory": "64Mi"},
                "limits": {"cpu": "200m", "memory": "128Mi"}
            }}
        ]}
    })
}

fn quantities(pairs: &[(&str, &str)]) -> Option<BTreeMap<String, Quantity>> {
    Some(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), Quantity(v.to_string())))
            .collect(),
    )
}

fn ref_labels(pairs: &[(&str, &str)]) -> ObjectMeta {
    ObjectMeta {
        labels: Some(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ),
        ..Default::default()
    }
}

#[test]
fn calculate_env_from_metadata_and_resources_table() {
    struct Case {
        name: &'static str,
        edit: fn(&mut Value),
        /// Err: the field that forbids it.
        want: Result<Want, &'static str>,
    }
    #[derive(Debug, Default)]
    struct Want {
        metadata: MetadataChanges,
        ref_metadata: BTreeMap<String, ObjectMeta>,
        resources: BTreeMap<String, ResourceRequirements>,
    }
    let cases = [
        Case {
            name: "a label the env reads: the container is restarted with it, not a plain patch",
            edit: |v| v["metadata"]["labels"]["version"] = json!("2"),
            want: Ok(Want {
                ref_metadata: BTreeMap::from([("app".into(), ref_labels(&[("version", "2")]))]),
                ..Default::default()
            }),
        },
        Case {
            name: "an annotation the env reads, next to one nobody reads",
            edit: |v| {
                v["metadata"]["annotations"]["config"] = json!("b");
                v["metadata"]["annotations"]["note"] = json!("y");
            },
            want: Ok(Want {
                metadata: MetadataChanges {
                    annotations: BTreeMap::from([("note".into(), Some("y".into()))]),
                    ..Default::default()
                },
                ref_metadata: BTreeMap::from([(
                    "app".into(),
                    ObjectMeta {
                        annotations: Some(BTreeMap::from([("config".into(), "b".into())])),
                        ..Default::default()
                    },
                )]),
                ..Default::default()
            }),
        },
        Case {
            name: "a label the env reads is removed: a plain patch (kruise only follows add/replace)",
            edit: |v| {
                v["metadata"]["labels"]
                    .as_object_mut()
                    .unwrap()
                    .remove("version");
            },
            want: Ok(Want {
                metadata: MetadataChanges {
                    labels: BTreeMap::from([("version".into(), None)]),
                    ..Default::default()
                },
                ..Default::default()
            }),
        },
        Case {
            name: "cpu and memory quantities replaced",
            edit: |v| {
                v["spec"]["containers"][1]["resources"]["limits"]["cpu"] = json!("300m");
                v["spec"]["containers"][1]["resources"]["requests"]["memory"] = json!("96Mi");
            },
            want: Ok(Want {
                resources: BTreeMap::from([(
                    "side".into(),
                    ResourceRequirements {
                        limits: quantities(&[("cpu", "300m")]),
                        requests: quantities(&[("memory", "96Mi")]),
                        ..Default::default()
                    },
                )]),
                ..Default::default()
            }),
        },
        Case {
            name: "the same quantity written another way is no change",
            edit: |v| v["spec"]["containers"][1]["resources"]["limits"]["cpu"] = json!("0.2"),
            want: Ok(Want::default()),
        },
        Case {
            name: "a resource added",
            edit: |v| {
                v["spec"]["containers"][1]["resources"]["limits"]["ephemeral-storage"] =
                    json!("1Gi")
            },
            want: Err("spec.containers[1].resources.limits.ephemeral-storage"),
        },
        Case {
            name: "a resource removed",
            edit: |v| {
                v["spec"]["containers"][1]["resources"]["limits"]
                    .as_object_mut()
                    .unwrap()
                    .remove("cpu");
            },
            want: Err("spec.containers[1].resources.limits.cpu"),
        },
        Case {
            name: "resources where there were none",
            edit: |v| v["spec"]["containers"][0]["resources"] = json!({"limits": {"cpu": "1"}}),
            want: Err("spec.containers[0].resources.limits"),
        },
    ];
    for c in cases {
        let mut new = base();
        (c.edit)(&mut new);
        let got = calculate(&template(base()), &template(new), "demo-v2", 0);
        match (got, c.want) {
            (Ok(spec), Ok(want)) => {
                assert_eq!(spec.metadata, want.metadata, "{}", c.name);
                assert_eq!(spec.container_ref_metadata, want.ref_metadata, "{}", c.name);
                assert_eq!(
                    spec.update_env_from_metadata,
                    !want.ref_metadata.is_empty(),
                    "{}",
                    c.name
                );
                assert_eq!(spec.container_resources, want.resources, "{}", c.name);
                assert!(spec.container_images.is_empty(), "{}", c.name);
            }
            (Err(e), Err(field)) => assert_eq!(e.field, field, "{}", c.name),
            (got, want) => panic!("{}: got {got:?}, want {want:?}", c.name),
        }
    }
}

#[test]
fn qos_change_through_resources_alone_is_refused() {
    // Both containers Guaranteed; raising one limit only makes the pod Burstable.
    let guaranteed = json!({"metadata": {"labels": {"app": "demo"}}, "spec": {"containers": [
        {"name": "app", "image": "app:1", "resources": {
            "requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}}}
    ]}});
    let mut burstable = guaranteed.clone();
    burstable["spec"]["containers"][0]["resources"]["limits"]["cpu"] = json!("2");
    let err = calculate(&template(guaranteed.clone()), &template(burstable), "r", 0).unwrap_err();
    assert_eq!(err.field, "spec.containers[].resources");
    assert!(err.reason.contains("Guaranteed"), "{err}");
    let mut both = guaranteed.clone();
    both["spec"]["containers"][0]["resources"]["limits"]["cpu"] = json!("2");
    both["spec"]["containers"][0]["resources"]["requests"]["cpu"] = json!("2");
    assert!(calculate(&template(guaranteed), &template(both), "r", 0).is_ok());
}

/// A running, ready pod at revision v1 made from [`base`], with the readiness gate.
fn pod() -> Pod {
    let t = base();
    serde_json::from_value(json!({
        "metadata": {
            "name": "demo-abcde", "namespace": "ns",
            "labels": {"app": "demo", "version": "1", "controller-revision-hash": "demo-v1"},
            "annotations": {"config": "a", "note": "x"}
        },
        "spec": {
            "readinessGates": [{"conditionType": "InPlaceUpdateReady"}],
            "containers": t["spec"]["containers"]
        },
        "status": {
            "phase": "Running",
            "conditions": [
                {"type": "InPlaceUpdateReady", "status": "True"},
                {"type": "ContainersReady", "status": "True"},
                {"type": "Ready", "status": "True"}
            ],
            "containerStatuses": [
                {"name": "app", "image": "docker.io/library/app:1", "imageID": "app@sha256:1",
                 "containerID": "containerd://app-1", "ready": true, "restartCount": 0, "state": {"running": {}},
                 "resources": {}},
                {"name": "side", "image": "docker.io/library/side:1", "imageID": "side@sha256:1",
                 "containerID": "containerd://side-1", "ready": true, "restartCount": 0, "state": {"running": {}},
                 "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "200m", "memory": "128Mi"}}}
            ]
        }
    }))
    .unwrap()
}

/// Applies a change as the API server would (metadata maps, containers by name: image and
/// resources; conditions by type).
fn apply(pod: &mut Pod, change: &PodChange) {
    match change {
        PodChange::Conditions(conds) => {
            let list = pod
                .status
                .get_or_insert_with(Default::default)
                .conditions
                .get_or_insert_with(Vec::new);
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
                for (k, v) in p["metadata"][key].as_object().into_iter().flatten() {
                    let t = target.get_or_insert_with(BTreeMap::new);
                    match v.as_str() {
                        Some(s) => t.insert(k.clone(), s.to_string()),
                        None => t.remove(k),
                    };
                }
            }
            for c in p["spec"]["containers"].as_array().into_iter().flatten() {
                let spec = pod.spec.as_mut().unwrap();
                let target = spec
                    .containers
                    .iter_mut()
                    .find(|x| Some(x.name.as_str()) == c["name"].as_str())
                    .unwrap();
                if let Some(image) = c["image"].as_str() {
                    target.image = Some(image.into());
                }
                if let Some(r) = c["resources"].as_object() {
                    let res = target.resources.get_or_insert_with(Default::default);
                    for (key, list) in
                        [("limits", &mut res.limits), ("requests", &mut res.requests)]
                    {
                        for (k, q) in r.get(key).and_then(Value::as_object).into_iter().flatten() {
                            list.get_or_insert_with(BTreeMap::new)
                                .insert(k.clone(), Quantity(q.as_str().unwrap().into()));
                        }
                    }
                }
            }
        }
    }
}

fn state_json(pod: &Pod) -> Value {
    serde_json::from_str(&pod.metadata.annotations.as_ref().unwrap()[labels::INPLACE_UPDATE_STATE])
        .unwrap()
}

fn status_mut<'a>(
    pod: &'a mut Pod,
    name: &str,
) -> &'a mut k8s_openapi::api::core::v1::ContainerStatus {
    pod.status
        .as_mut()
        .unwrap()
        .container_statuses
        .as_mut()
        .unwrap()
        .iter_mut()
        .find(|c| c.name == name)
        .unwrap()
}

/// The node agent's report for `pod` as it runs now: every container's ID from the status and
/// the env hash each would show, given the label value `app` saw when it started.
fn report_meta(pod: &mut Pod, app_saw: &str) {
    let mut seen = pod.metadata.labels.clone().unwrap();
    seen.insert("version".into(), app_saw.into());
    let annotations = pod.metadata.annotations.clone().unwrap();
    let containers = pod.spec.as_ref().unwrap().containers.clone();
    let set = RuntimeContainerMetaSet {
        containers: containers
            .iter()
            .map(|c| {
                let cs = status_mut(pod, &c.name).clone();
                RuntimeContainerMeta {
                    name: c.name.clone(),
                    container_id: cs.container_id.unwrap_or_default(),
                    restart_count: cs.restart_count,
                    hashes: RuntimeContainerHashes {
                        plain_hash: 1,
                        extracted_env_from_metadata_hash: expected_env_from_metadata_hash(
                            c,
                            &seen,
                            &annotations,
                        ),
                        ..Default::default()
                    },
                }
            })
            .collect(),
    };
    pod.metadata.annotations.as_mut().unwrap().insert(
        labels::RUNTIME_CONTAINERS_META.into(),
        to_annotation(&set).unwrap(),
    );
}

fn env_spec() -> InPlaceUpdateSpec {
    let mut new = base();
    new["metadata"]["labels"]["version"] = json!("2");
    calculate(&template(base()), &template(new), "demo-v2", 0).unwrap()
}

#[test]
fn env_from_metadata_begin_patches_the_label_and_waits_for_the_node_agents_restart() {
    let mut p = pod();
    let changes = begin(&p, &env_spec(), t(T0)).unwrap();
    assert_eq!(changes.len(), 2, "condition, then the patch: {changes:?}");
    assert!(matches!(&changes[0], PodChange::Conditions(c) if c[0].status == "False"));
    let PodChange::Patch(patch) = &changes[1] else {
        panic!("{changes:?}")
    };
    assert_eq!(patch["metadata"]["labels"]["version"], json!("2"));
    assert!(patch.get("spec").is_none(), "no image changes: {patch}");
    for c in &changes {
        apply(&mut p, c);
    }
    let state = state_json(&p);
    assert_eq!(state["updateEnvFromMetadata"], json!(true));
    assert_eq!(
        state["containerBatchesRecord"][0]["containers"],
        json!(["app"])
    );
    assert!(
        state
            .get("lastContainerStatuses")
            .is_none_or(|v| v == &json!({}))
    );

    // The step table: what the node shows → what progress says.
    // 1. no report from the node agent yet;
    let got = progress(&p, t(T0)).unwrap();
    assert!(
        matches!(&got, Progress::InProgress { waiting_for } if waiting_for.contains("runtime-container-meta not found")),
        "{got:?}"
    );
    // 2. the agent reports the old container, which still sees version=1;
    report_meta(&mut p, "1");
    let got = progress(&p, t(T0)).unwrap();
    assert!(
        matches!(&got, Progress::InProgress { waiting_for } if waiting_for.contains("container app")),
        "{got:?}"
    );
    assert!(is_in_place_updating(&p));
    // 3. app restarted (new container ID) and the agent read version=2 from it.
    let cs = status_mut(&mut p, "app");
    cs.container_id = Some("containerd://app-2".into());
    cs.restart_count = 1;
    report_meta(&mut p, "2");
    let Progress::Completed(changes) = progress(&p, t(T0)).unwrap() else {
        panic!("expected completion")
    };
    assert!(matches!(&changes[0], PodChange::Conditions(c) if c[0].status == "True"));
    // 4. a report about the old container is not enough even with the right hash.
    let mut stale = p.clone();
    status_mut(&mut stale, "app").container_id = Some("containerd://app-3".into());
    assert!(matches!(
        progress(&stale, t(T0)).unwrap(),
        Progress::InProgress { .. }
    ));
}

#[test]
fn env_from_metadata_is_parked_with_the_grace_period_and_applied_after_it() {
    let mut p = pod();
    let mut spec = env_spec();
    spec.grace_period_seconds = 5;
    for c in begin(&p, &spec, t(T0)).unwrap() {
        apply(&mut p, &c);
    }
    assert_eq!(
        p.metadata.labels.as_ref().unwrap()["version"],
        "1",
        "parked"
    );
    let grace: Value = serde_json::from_str(
        &p.metadata.annotations.as_ref().unwrap()[labels::INPLACE_UPDATE_GRACE],
    )
    .unwrap();
    assert_eq!(
        grace["containerRefMetadata"]["app"]["labels"],
        json!({"version": "2"})
    );
    assert_eq!(grace["updateEnvFromMetadata"], json!(true));
    let Progress::Apply(changes) = progress(&p, t("2026-01-02T03:04:10Z")).unwrap() else {
        panic!("grace over")
    };
    for c in &changes {
        apply(&mut p, c);
    }
    assert_eq!(p.metadata.labels.as_ref().unwrap()["version"], "2");
}

fn resources_spec(edit: fn(&mut Value)) -> InPlaceUpdateSpec {
    let mut new = base();
    edit(&mut new);
    calculate(&template(base()), &template(new), "demo-v2", 0).unwrap()
}

fn set_status_resources(pod: &mut Pod, name: &str, cpu_limit: &str) {
    let r = status_mut(pod, name).resources.as_mut().unwrap();
    r.limits
        .get_or_insert_with(BTreeMap::new)
        .insert("cpu".into(), Quantity(cpu_limit.into()));
}

#[test]
fn a_resize_goes_through_the_resize_subresource_without_draining_and_ends_when_the_kubelet_reports_it()
 {
    let mut p = pod();
    let spec = resources_spec(|v| {
        v["spec"]["containers"][1]["resources"]["limits"]["cpu"] = json!("300m")
    });
    let changes = begin(&p, &spec, t(T0)).unwrap();
    assert_eq!(
        changes.len(),
        2,
        "resize then patch, no condition: {changes:?}"
    );
    assert_eq!(
        changes[0],
        PodChange::Resize(
            json!({"spec": {"containers": [{"name": "side", "resources": {"limits": {"cpu": "300m"}}}]}})
        )
    );
    let PodChange::Patch(patch) = &changes[1] else {
        panic!("{changes:?}")
    };
    assert!(
        patch.get("spec").is_none(),
        "resources only through resize: {patch}"
    );
    for c in &changes {
        apply(&mut p, c);
    }
    let state = state_json(&p);
    assert_eq!(state["updateResources"], json!(true));
    assert!(state.get("updateImages").is_none());

    // Step table: the kubelet's report → progress.
    let got = progress(&p, t(T0)).unwrap();
    assert!(
        matches!(&got, Progress::InProgress { waiting_for } if waiting_for.contains("container side resources not changed")),
        "{got:?}"
    );
    // Infeasible: OpenKruise waits (no recreate); the reason shows.
    let mut refused = p.clone();
    refused
        .status
        .as_mut()
        .unwrap()
        .conditions
        .as_mut()
        .unwrap()
        .push(k8s_openapi::api::core::v1::PodCondition {
            type_: "PodResizePending".into(),
            status: "True".into(),
            reason: Some("Infeasible".into()),
            message: Some("Node didn't have enough capacity".into()),
            ..Default::default()
        });
    assert!(is_resize_infeasible(&refused));
    let got = progress(&refused, t(T0)).unwrap();
    assert!(
        matches!(&got, Progress::InProgress { waiting_for } if waiting_for.contains("Infeasible")),
        "{got:?}"
    );
    // The kubelet reports the new limit (written another way): done, and the gate was never
    // flipped, so there is nothing left to send.
    set_status_resources(&mut p, "side", "0.3");
    assert_eq!(progress(&p, t(T0)).unwrap(), Progress::NotUpdating);
    assert!(is_update_completed(&p).unwrap());
    assert!(!is_in_place_updating(&p));
    // Begin again on the resized pod (a retry after a lost write): nothing left to resize.
    let again = begin(&p, &spec, t(T0)).unwrap();
    assert!(
        again.iter().all(|c| !matches!(c, PodChange::Resize(_))),
        "{again:?}"
    );
}

#[test]
fn a_resize_that_restarts_the_container_drains_first() {
    let mut p = pod();
    p.spec.as_mut().unwrap().containers[1].resize_policy =
        Some(vec![k8s_openapi::api::core::v1::ContainerResizePolicy {
            resource_name: "memory".into(),
            restart_policy: "RestartContainer".into(),
        }]);
    let cpu = resources_spec(|v| {
        v["spec"]["containers"][1]["resources"]["limits"]["cpu"] = json!("300m")
    });
    let memory = resources_spec(|v| {
        v["spec"]["containers"][1]["resources"]["limits"]["memory"] = json!("256Mi")
    });
    let first = |p: &Pod, s: &InPlaceUpdateSpec| begin(p, s, t(T0)).unwrap().remove(0);
    assert!(
        matches!(first(&p, &cpu), PodChange::Resize(_)),
        "cpu restarts nothing"
    );
    assert!(
        matches!(first(&p, &memory), PodChange::Conditions(_)),
        "memory restarts the container"
    );
    // An image change with the resize drains too.
    let mut both = memory.clone();
    both.container_images.insert("app".into(), "app:2".into());
    p.spec.as_mut().unwrap().containers[1].resize_policy = None;
    assert!(matches!(first(&p, &both), PodChange::Conditions(_)));
}

/// A pod whose two containers carry launch priorities the way the pod itself says.
fn priority_pod(app_env: Option<&str>, side_env: Option<&str>) -> Pod {
    let mut p = pod();
    for (i, v) in [app_env, side_env].into_iter().enumerate() {
        if let Some(v) = v {
            let c = &mut p.spec.as_mut().unwrap().containers[i];
            c.env.get_or_insert_with(Vec::new).push(
                serde_json::from_value(json!({"name": "KRUISE_CONTAINER_PRIORITY", "value": v}))
                    .unwrap(),
            );
        }
    }
    p
}

#[test]
fn container_priorities_table() {
    let barrier = |key: &str| json!({"name": "KRUISE_CONTAINER_BARRIER", "valueFrom": {"configMapKeyRef": {"name": "p-barrier", "key": key}}});
    let mut injected = pod();
    for (i, key) in ["p_1", "p_5"].iter().enumerate() {
        injected.spec.as_mut().unwrap().containers[i]
            .env
            .get_or_insert_with(Vec::new)
            .push(serde_json::from_value(barrier(key)).unwrap());
    }
    let mut ordered = pod();
    ordered
        .metadata
        .annotations
        .as_mut()
        .unwrap()
        .insert(labels::CONTAINER_LAUNCH_PRIORITY.into(), "Ordered".into());
    let cases: [(&str, Pod, Vec<Option<i32>>); 6] = [
        ("none", pod(), vec![None, None]),
        (
            "env on one container",
            priority_pod(Some("10"), None),
            vec![Some(10), Some(0)],
        ),
        (
            "all equal is no priority",
            priority_pod(Some("3"), Some("3")),
            vec![None, None],
        ),
        (
            "not a number",
            priority_pod(Some("x"), Some("1")),
            vec![None, None],
        ),
        ("Ordered: first highest", ordered, vec![Some(0), Some(-1)]),
        (
            "kruise's injected barrier wins",
            injected,
            vec![Some(1), Some(5)],
        ),
    ];
    for (name, p, want) in cases {
        assert_eq!(container_priorities(&p), want, "{name}");
    }
}

#[test]
fn launch_priority_updates_the_higher_container_first_and_the_next_once_it_is_ready() {
    let mut p = priority_pod(None, Some("10"));
    let spec = InPlaceUpdateSpec {
        revision: "demo-v2".into(),
        container_images: BTreeMap::from([
            ("app".into(), "app:2".into()),
            ("side".into(), "side:2".into()),
        ]),
        ..Default::default()
    };
    let changes = begin(&p, &spec, t(T0)).unwrap();
    let PodChange::Patch(patch) = changes.last().unwrap() else {
        panic!("{changes:?}")
    };
    assert_eq!(
        patch["spec"]["containers"],
        json!([{"name": "side", "image": "side:2"}]),
        "side (priority 10) first, app (0) waits"
    );
    for c in &changes {
        apply(&mut p, c);
    }
    let state = state_json(&p);
    assert_eq!(state["nextContainerImages"], json!({"app": "app:2"}));
    assert_eq!(
        state["preCheckBeforeNext"],
        json!({"containersRequiredReady": ["side"]})
    );
    assert!(is_in_place_updating(&p));
    assert!(!is_update_completed(&p).unwrap());

    // side restarts with the new image but is not ready yet: app waits.
    let cs = status_mut(&mut p, "side");
    cs.image = "docker.io/library/side:2".into();
    cs.image_id = "side@sha256:2".into();
    cs.ready = false;
    let got = progress(&p, t(T0)).unwrap();
    assert!(
        matches!(&got, Progress::InProgress { waiting_for } if waiting_for == "waiting container side to be ready"),
        "{got:?}"
    );
    // side ready: the next batch patches app.
    status_mut(&mut p, "side").ready = true;
    let Progress::Apply(changes) = progress(&p, t("2026-01-02T03:04:09Z")).unwrap() else {
        panic!("next batch")
    };
    let PodChange::Patch(patch) = changes.last().unwrap() else {
        panic!("{changes:?}")
    };
    assert_eq!(
        patch["spec"]["containers"],
        json!([{"name": "app", "image": "app:2"}])
    );
    for c in &changes {
        apply(&mut p, c);
    }
    let state = state_json(&p);
    assert!(state.get("nextContainerImages").is_none(), "{state}");
    assert!(state.get("preCheckBeforeNext").is_none(), "{state}");
    assert_eq!(
        state["containerBatchesRecord"],
        json!([
            {"timestamp": T0, "containers": ["side"]},
            {"timestamp": "2026-01-02T03:04:09Z", "containers": ["app"]}
        ])
    );
    assert_eq!(
        state["lastContainerStatuses"],
        json!({"side": {"imageID": "side@sha256:1"}, "app": {"imageID": "app@sha256:1"}})
    );
    // app not restarted yet → in progress; restarted → completed.
    assert!(matches!(
        progress(&p, t(T0)).unwrap(),
        Progress::InProgress { .. }
    ));
    let cs = status_mut(&mut p, "app");
    cs.image = "docker.io/library/app:2".into();
    cs.image_id = "app@sha256:2".into();
    assert!(matches!(
        progress(&p, t(T0)).unwrap(),
        Progress::Completed(_)
    ));
}

#[test]
fn containers_reading_the_same_changed_label_update_together_whatever_their_priority() {
    let mut p = priority_pod(Some("1"), Some("10"));
    p.spec.as_mut().unwrap().containers[1]
        .env
        .get_or_insert_with(Vec::new)
        .push(serde_json::from_value(env_ref("V", "metadata.labels['version']")).unwrap());
    let spec = InPlaceUpdateSpec {
        revision: "demo-v2".into(),
        container_ref_metadata: BTreeMap::from([
            ("app".into(), ref_labels(&[("version", "2")])),
            ("side".into(), ref_labels(&[("version", "2")])),
        ]),
        update_env_from_metadata: true,
        ..Default::default()
    };
    let changes = begin(&p, &spec, t(T0)).unwrap();
    for c in &changes {
        apply(&mut p, c);
    }
    let state = state_json(&p);
    assert_eq!(
        state["containerBatchesRecord"][0]["containers"],
        json!(["app", "side"])
    );
    assert!(state.get("nextContainerRefMetadata").is_none(), "{state}");
}
