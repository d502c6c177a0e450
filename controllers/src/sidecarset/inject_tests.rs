//! Table tests of [`inject`] against OpenKruise's pod-create webhook
//! (`pkg/webhook/pod/mutating/sidecarset.go`, `sidecarset_hotupgrade.go`,
//! `pkg/control/sidecarcontrol/util.go`, `history_control.go`; kruise-api.md §3.3).

use std::collections::BTreeMap;

use graft_api::apps::v1beta1::sidecarset::SidecarSet;
use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::{Container, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::{Value, json};

use super::{InjectInput, Injected, SidecarSetError, SidecarSetRevision, inject};

const NOW: &str = "2026-01-02T03:04:05Z";

fn pod(v: Value) -> Pod {
    let mut base = json!({
        "metadata": {"namespace": "ns", "name": "p", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "app", "image": "app:1"}]}
    });
    merge(&mut base, v);
    serde_json::from_value(base).unwrap()
}

/// Shallow-deep merge for fixtures: objects merge, everything else replaces.
fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                merge(b.entry(k).or_insert(Value::Null), v);
            }
        }
        (b, o) => *b = o,
    }
}

/// A stored SidecarSet: defaulted as kruise's webhook does, with hash annotations `h-<name>`.
fn ss(name: &str, spec: Value) -> SidecarSet {
    let mut spec_v = spec;
    if spec_v.get("selector").is_none() {
        spec_v["selector"] = json!({"matchLabels": {"app": "web"}});
    }
    let mut set: SidecarSet = serde_json::from_value(json!({
        "apiVersion": "apps.kruise.io/v1beta1", "kind": "SidecarSet",
        "metadata": {"name": name, "annotations": {
            "kruise.io/sidecarset-hash": format!("h-{name}"),
            "kruise.io/sidecarset-hash-without-image": format!("hw-{name}")
        }},
        "spec": spec_v,
        "status": {"latestRevision": format!("{name}-latest")}
    }))
    .unwrap();
    set.spec = set.spec.defaulted();
    set
}

fn with_revisions(set: SidecarSet, revisions: Vec<ControllerRevision>) -> SidecarSetRevision {
    SidecarSetRevision {
        sidecarset: set,
        revisions,
    }
}

fn run_with(
    p: &Pod,
    sets: Vec<SidecarSetRevision>,
    ns_labels: Value,
    draw: f64,
) -> Result<Injected, SidecarSetError> {
    let namespace_labels: BTreeMap<String, String> = serde_json::from_value(ns_labels).unwrap();
    let input = InjectInput {
        namespace_labels: &namespace_labels,
        sidecarsets: &sets,
        now: serde_json::from_value::<Time>(json!(NOW)).unwrap(),
    };
    let mut random = move || draw;
    inject(p, &input, &mut random)
}

fn run(p: &Pod, sets: Vec<SidecarSet>) -> Injected {
    let sets = sets
        .into_iter()
        .map(|s| with_revisions(s, vec![]))
        .collect();
    run_with(p, sets, json!({"kubernetes.io/metadata.name": "ns"}), 0.0).unwrap()
}

fn names(cs: &[Container]) -> Vec<&str> {
    cs.iter().map(|c| c.name.as_str()).collect()
}

fn containers(i: &Injected) -> Vec<&str> {
    names(&i.pod.spec.as_ref().unwrap().containers)
}

fn init_containers(i: &Injected) -> Vec<&str> {
    names(
        i.pod
            .spec
            .as_ref()
            .unwrap()
            .init_containers
            .as_deref()
            .unwrap_or_default(),
    )
}

fn container<'a>(i: &'a Injected, name: &str) -> &'a Container {
    let spec = i.pod.spec.as_ref().unwrap();
    spec.containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no container {name}"))
}

fn env(c: &Container) -> Value {
    serde_json::to_value(c.env.clone().unwrap_or_default()).unwrap()
}

fn annotation<'a>(i: &'a Injected, key: &str) -> Option<&'a str> {
    i.pod
        .metadata
        .annotations
        .as_ref()?
        .get(key)
        .map(String::as_str)
}

fn log_sidecar() -> Value {
    json!({"containers": [{"name": "log", "image": "log:1"}]})
}

#[test]
fn namespace_selector_and_pod_selector_decide_matching() {
    let web = json!({"matchLabels": {"app": "web"}});
    for (case, spec, ns_labels, injected) in [
        (
            "selector matches",
            json!({"selector": web}),
            json!({}),
            true,
        ),
        (
            "selector does not match",
            json!({"selector": {"matchLabels": {"app": "db"}}}),
            json!({}),
            false,
        ),
        (
            "expression selector",
            json!({"selector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["web", "x"]}]}}),
            json!({}),
            true,
        ),
        (
            "an empty selector matches nothing",
            json!({"selector": {"matchLabels": {}}}),
            json!({}),
            false,
        ),
        (
            "namespace selector matches",
            json!({"namespaceSelector": {"matchLabels": {"team": "a"}}}),
            json!({"team": "a"}),
            true,
        ),
        (
            "namespace selector does not match",
            json!({"namespaceSelector": {"matchLabels": {"team": "a"}}}),
            json!({"team": "b"}),
            false,
        ),
        (
            "namespace by name (v1alpha1 namespace)",
            json!({"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "other"}}}),
            json!({"kubernetes.io/metadata.name": "ns"}),
            false,
        ),
    ] {
        let mut spec_v = log_sidecar();
        merge(&mut spec_v, spec);
        let set = with_revisions(ss("log", spec_v), vec![]);
        let out = run_with(&pod(json!({})), vec![set], ns_labels, 0.0).unwrap();
        assert_eq!(out.sidecarsets.len() == 1, injected, "{case}");
        assert_eq!(containers(&out).contains(&"log"), injected, "{case}");
    }
}

#[test]
fn inactive_pods_and_paused_injection_are_left_alone() {
    let p = pod(json!({}));
    let paused = ss(
        "log",
        json!({"containers": [{"name": "log", "image": "l"}], "injectionStrategy": {"paused": true}}),
    );
    let out = run(&p, vec![paused]);
    assert_eq!(out.pod, p, "injectionStrategy.paused");
    assert!(out.sidecarsets.is_empty());
    for inactive in [
        pod(json!({"status": {"phase": "Succeeded"}})),
        pod(json!({"status": {"phase": "Failed"}})),
        pod(json!({"metadata": {"deletionTimestamp": NOW}})),
    ] {
        let out = run(&inactive, vec![ss("log", log_sidecar())]);
        assert_eq!(out.pod, inactive);
    }
}

#[test]
fn pod_inject_policy_places_sidecars_before_or_after_the_app_containers() {
    let p = pod(
        json!({"spec": {"containers": [{"name": "app", "image": "a"}, {"name": "app2", "image": "a"}]}}),
    );
    let set = ss(
        "mesh",
        json!({"containers": [
            {"name": "b1", "image": "x", "podInjectPolicy": "BeforeAppContainer"},
            {"name": "a1", "image": "x", "podInjectPolicy": "AfterAppContainer"},
            {"name": "b2", "image": "x"},
            {"name": "a2", "image": "x", "podInjectPolicy": "AfterAppContainer"}
        ]}),
    );
    let out = run(&p, vec![set]);
    // Default is BeforeAppContainer; each group keeps the SidecarSet's order (no sorting by name).
    assert_eq!(containers(&out), ["b1", "b2", "app", "app2", "a1", "a2"]);
}

#[test]
fn a_pod_container_of_the_same_name_is_replaced_where_it_stands() {
    let p = pod(json!({"spec": {"containers": [
        {"name": "app", "image": "a"}, {"name": "log", "image": "user-log"}, {"name": "z", "image": "z"}
    ]}}));
    let out = run(&p, vec![ss("log", log_sidecar())]);
    assert_eq!(containers(&out), ["app", "log", "z"]);
    assert_eq!(container(&out, "log").image.as_deref(), Some("log:1"));
}

#[test]
fn init_containers_are_sorted_by_name_after_the_pods_own() {
    let p = pod(json!({"spec": {"initContainers": [{"name": "pod-init", "image": "i"}]}}));
    let a = ss(
        "a",
        json!({"containers": [],
               "initContainers": [{"name": "z-init", "image": "z"}, {"name": "b-native", "image": "n", "restartPolicy": "Always"}],
               "updateStrategy": {"type": "NotUpdate"}}),
    );
    let b = ss(
        "b",
        json!({"containers": [], "initContainers": [{"name": "m-init", "image": "m"}]}),
    );
    let out = run(&p, vec![b, a]);
    assert_eq!(
        init_containers(&out),
        ["pod-init", "b-native", "m-init", "z-init"]
    );
    // Only native sidecars go to sidecarList, with every container.
    let hashes: Value =
        serde_json::from_str(annotation(&out, "kruise.io/sidecarset-hash").unwrap()).unwrap();
    assert_eq!(hashes["a"]["sidecarList"], json!(["b-native"]));
    assert_eq!(hashes["b"]["sidecarList"], json!([]));
    // The default podInjectPolicy of init containers is AfterAppContainer; the pod's own init
    // container of the same name is replaced in place.
    let p = pod(
        json!({"spec": {"initContainers": [{"name": "m-init", "image": "mine"}, {"name": "x", "image": "x"}]}}),
    );
    let b = ss(
        "b",
        json!({"containers": [], "initContainers": [{"name": "m-init", "image": "m"}]}),
    );
    let out = run(&p, vec![b]);
    assert_eq!(init_containers(&out), ["m-init", "x"]);
    assert_eq!(container(&out, "m-init").image.as_deref(), Some("m"));
}

#[test]
fn is_injected_follows_the_sidecars_env_and_precedes_transferred_env() {
    let p = pod(json!({"spec": {"containers": [{"name": "app", "image": "a",
        "env": [{"name": "NODE", "value": "n1"}, {"name": "ZONE", "value": "z1"}, {"name": "OWN", "value": "app"}]}]}}));
    let set = ss(
        "log",
        json!({"containers": [{"name": "log", "image": "l",
            "env": [{"name": "OWN", "value": "sidecar"}],
            "transferEnv": [{"sourceContainerName": "app", "envNames": ["ZONE", "NODE", "OWN", "MISSING"]}]}]}),
    );
    let out = run(&p, vec![set]);
    assert_eq!(
        env(container(&out, "log")),
        json!([
            {"name": "OWN", "value": "sidecar"},
            {"name": "IS_INJECTED", "value": "true"},
            // envNames are visited sorted; an env the sidecar already has is not overwritten.
            {"name": "NODE", "value": "n1"},
            {"name": "ZONE", "value": "z1"}
        ])
    );
    assert!(super::inject::is_injected_container(container(&out, "log")));
    assert!(!super::inject::is_injected_container(container(
        &out, "app"
    )));
}

#[test]
fn transfer_env_source_container_name_from_label_or_annotation() {
    let p = pod(json!({
        "metadata": {"labels": {"app": "web", "src": "main"}, "annotations": {"src-a": "main"}},
        "spec": {"containers": [
            {"name": "app", "image": "a", "env": [{"name": "E", "value": "from-app"}]},
            {"name": "main", "image": "m", "env": [{"name": "E", "value": "from-main"}, {"name": "F", "value": "f"}]}
        ]}
    }));
    for (case, from, want) in [
        (
            "label",
            json!({"fieldRef": {"fieldPath": "metadata.labels['src']"}}),
            json!("from-main"),
        ),
        (
            "annotation",
            json!({"fieldRef": {"fieldPath": "metadata.annotations['src-a']"}}),
            json!("from-main"),
        ),
        (
            "missing label: no container, no env",
            json!({"fieldRef": {"fieldPath": "metadata.labels['none']"}}),
            Value::Null,
        ),
        (
            "unsupported path is skipped",
            json!({"fieldRef": {"fieldPath": "metadata.name"}}),
            Value::Null,
        ),
    ] {
        let set = ss(
            "log",
            json!({"containers": [{"name": "log", "image": "l",
                "transferEnv": [{"sourceContainerName": "app", "sourceContainerNameFrom": from, "envName": "E"}]}]}),
        );
        let out = run(&p, vec![set]);
        let e = env(container(&out, "log"));
        let got = e
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == "E")
            .map(|v| v["value"].clone());
        assert_eq!(got.unwrap_or(Value::Null), want, "{case}");
    }
}

#[test]
fn share_volume_policy_copies_app_mounts_and_their_subpath_env() {
    let p = pod(json!({"spec": {
        "containers": [
            {"name": "app", "image": "a",
             "env": [{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}, {"name": "OTHER", "value": "o"}],
             "volumeMounts": [
                {"name": "data", "mountPath": "/data", "subPathExpr": "logs/$(POD)"},
                {"name": "conf", "mountPath": "/etc/log"}
             ]},
            {"name": "old-sidecar", "image": "s", "env": [{"name": "IS_INJECTED", "value": "true"}],
             "volumeMounts": [{"name": "skip", "mountPath": "/skip"}]}
        ],
        "volumes": [{"name": "data", "emptyDir": {}}]
    }}));
    let set = ss(
        "log",
        json!({"containers": [{"name": "log", "image": "l", "shareVolumePolicy": {"type": "enabled"},
                "volumeMounts": [{"name": "own", "mountPath": "/etc/log"}]}],
               "volumes": [{"name": "own", "emptyDir": {}}]}),
    );
    let out = run(&p, vec![set]);
    let log = container(&out, "log");
    let mounts: Vec<(&str, &str)> = log
        .volume_mounts
        .iter()
        .flatten()
        .map(|m| (m.name.as_str(), m.mount_path.as_str()))
        .collect();
    // The sidecar's own mount keeps /etc/log; injected containers' mounts are not shared.
    assert_eq!(mounts, [("own", "/etc/log"), ("data", "/data")]);
    assert_eq!(
        env(log),
        json!([{"name": "IS_INJECTED", "value": "true"},
               {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}])
    );
    let disabled = ss(
        "log",
        json!({"containers": [{"name": "log", "image": "l"}]}),
    );
    let out = run(&p, vec![disabled]);
    assert!(
        container(&out, "log").volume_mounts.is_none(),
        "disabled by default"
    );
}

#[test]
fn share_volume_device_policy_copies_app_devices() {
    let p = pod(json!({"spec": {"containers": [
        {"name": "app", "image": "a", "volumeDevices": [{"name": "blk", "devicePath": "/dev/xvda"}, {"name": "b2", "devicePath": "/dev/used"}]}
    ]}}));
    let set = ss(
        "log",
        json!({"containers": [{"name": "log", "image": "l", "shareVolumeDevicePolicy": {"type": "enabled"},
            "volumeMounts": [{"name": "v", "mountPath": "/dev/used"}]}], "volumes": [{"name": "v", "emptyDir": {}}]}),
    );
    let out = run(&p, vec![set]);
    let devices: Vec<&str> = container(&out, "log")
        .volume_devices
        .iter()
        .flatten()
        .map(|d| d.device_path.as_str())
        .collect();
    assert_eq!(devices, ["/dev/xvda"], "a path already mounted is skipped");
    let off = ss(
        "log",
        json!({"containers": [{"name": "log", "image": "l", "shareVolumeDevicePolicy": {"type": "disabled"}}]}),
    );
    assert!(
        container(&run(&p, vec![off]), "log")
            .volume_devices
            .is_none()
    );
}

#[test]
fn only_referenced_volumes_are_added_and_the_pods_own_win() {
    let p = pod(json!({"spec": {"volumes": [{"name": "shared", "hostPath": {"path": "/pod"}}]}}));
    let set = ss(
        "log",
        json!({"containers": [{"name": "log", "image": "l",
                "volumeMounts": [{"name": "shared", "mountPath": "/s"}, {"name": "logs", "mountPath": "/l"}, {"name": "undeclared", "mountPath": "/u"}],
                "volumeDevices": [{"name": "dev", "devicePath": "/dev/d"}]}],
               "volumes": [{"name": "logs", "emptyDir": {}}, {"name": "shared", "emptyDir": {}},
                           {"name": "dev", "emptyDir": {}}, {"name": "unused", "emptyDir": {}}]}),
    );
    let out = run(&p, vec![set]);
    let volumes = serde_json::to_value(&out.pod.spec.as_ref().unwrap().volumes).unwrap();
    assert_eq!(
        volumes,
        json!([{"name": "shared", "hostPath": {"path": "/pod"}}, {"name": "logs", "emptyDir": {}}, {"name": "dev", "emptyDir": {}}])
    );
}

#[test]
fn image_pull_secrets_are_merged_without_duplicates() {
    let p = pod(json!({"spec": {"imagePullSecrets": [{"name": "pod"}, {"name": "both"}]}}));
    let a = ss(
        "a",
        json!({"containers": [{"name": "a", "image": "a"}], "imagePullSecrets": [{"name": "both"}, {"name": "sa"}]}),
    );
    let b = ss(
        "b",
        json!({"containers": [{"name": "b", "image": "b"}], "imagePullSecrets": [{"name": "sa"}, {"name": "sb"}]}),
    );
    let out = run(&p, vec![b, a]);
    let secrets: Vec<&str> = out
        .pod
        .spec
        .as_ref()
        .unwrap()
        .image_pull_secrets
        .iter()
        .flatten()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(secrets, ["pod", "both", "sa", "sb"]);
}

#[test]
fn patch_pod_metadata_policies() {
    let p = pod(
        json!({"metadata": {"annotations": {"keep": "old", "json": r#"{"a":1,"b":{"c":2}}"#}}}),
    );
    for (case, patch, key, want) in [
        (
            "Retain keeps an existing value",
            json!({"annotations": {"keep": "new"}}),
            "keep",
            "old",
        ),
        (
            "Retain adds a missing key",
            json!({"annotations": {"fresh": "v"}}),
            "fresh",
            "v",
        ),
        (
            "Overwrite replaces",
            json!({"annotations": {"keep": "new"}, "patchPolicy": "Overwrite"}),
            "keep",
            "new",
        ),
        (
            "MergePatchJson merges",
            json!({"annotations": {"json": r#"{"b":{"d":3},"a":null}"#}, "patchPolicy": "MergePatchJson"}),
            "json",
            r#"{"b":{"c":2,"d":3}}"#,
        ),
        (
            "MergePatchJson sets a missing key to the patch as written",
            json!({"annotations": {"absent": r#"{ "x": null }"#}, "patchPolicy": "MergePatchJson"}),
            "absent",
            r#"{ "x": null }"#,
        ),
    ] {
        let set = ss(
            "log",
            json!({"containers": [{"name": "log", "image": "l"}], "patchPodMetadata": [patch]}),
        );
        let out = run(&p, vec![set]);
        assert_eq!(annotation(&out, key), Some(want), "{case}");
    }
    let bad = ss(
        "log",
        json!({"containers": [{"name": "log", "image": "l"}],
               "patchPodMetadata": [{"annotations": {"keep": "{}"}, "patchPolicy": "MergePatchJson"}]}),
    );
    let set = with_revisions(bad, vec![]);
    let err = run_with(&p, vec![set], json!({}), 0.0).unwrap_err();
    assert!(
        matches!(&err, SidecarSetError::PatchPodMetadata { annotation, message, .. }
            if annotation == "keep" && message == "Invalid JSON Document"),
        "{err}"
    );
}

#[test]
fn resources_policy_is_computed_from_the_app_containers() {
    let p = pod(json!({"spec": {"containers": [
        {"name": "app", "image": "a", "resources": {"limits": {"cpu": "2", "memory": "4Gi"}, "requests": {"cpu": "1", "memory": "2Gi"}}}
    ]}}));
    let set = ss(
        "mesh",
        json!({"containers": [{"name": "envoy", "image": "e", "resourcesPolicy": {
            "targetContainersMode": "sum", "targetContainersNameRegex": ".*",
            "resourcesExpr": {"limits": {"cpu": "cpu*20%", "memory": "200Mi"},
                              "requests": {"cpu": "max(cpu*10%, 50m)", "memory": "memory / 4"}}}}]}),
    );
    let out = run(&p, vec![set]);
    assert_eq!(
        serde_json::to_value(&container(&out, "envoy").resources).unwrap(),
        json!({"limits": {"cpu": "400m", "memory": "200Mi"}, "requests": {"cpu": "100m", "memory": "512Mi"}})
    );
    let unmatched = ss(
        "mesh",
        json!({"containers": [{"name": "envoy", "image": "e", "resourcesPolicy": {
            "targetContainersMode": "max", "targetContainersNameRegex": "^db$", "resourcesExpr": {}}}]}),
    );
    let err = run_with(&p, vec![with_revisions(unmatched, vec![])], json!({}), 0.0).unwrap_err();
    assert!(
        matches!(err, SidecarSetError::ResourcesPolicy { .. }),
        "{err}"
    );
}

fn revision(
    name: &str,
    number: i64,
    custom_version: Option<&str>,
    image: &str,
) -> ControllerRevision {
    let mut labels = json!({"kruise.io/sidecarset-name": "log"});
    if let Some(cv) = custom_version {
        labels["apps.kruise.io/sidecarset-custom-version"] = json!(cv);
    }
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "kruise-system", "labels": labels,
                     "annotations": {"kruise.io/sidecarset-hash": format!("h-{name}"),
                                     "kruise.io/sidecarset-hash-without-image": format!("hw-{name}")}},
        "revision": number,
        "data": {"spec": {"$patch": "replace", "containers": [{"name": "log", "image": image}]}}
    }))
    .unwrap()
}

fn history() -> Vec<ControllerRevision> {
    vec![
        revision("log-r1", 1, Some("v1"), "log:old1"),
        revision("log-r3", 3, Some("v1"), "log:old3"),
        revision("log-r2", 2, Some("v2"), "log:old2"),
    ]
}

/// The image of `log` and the revision the pod records, for one injection.
fn injected_revision(
    strategy: Value,
    update: Value,
    labels: Value,
    draw: f64,
) -> Result<(String, String), SidecarSetError> {
    let set = ss(
        "log",
        json!({"containers": [{"name": "log", "image": "log:latest"}],
                               "injectionStrategy": strategy, "updateStrategy": update}),
    );
    let p = pod(json!({"metadata": {"labels": labels}}));
    let out = run_with(&p, vec![with_revisions(set, history())], json!({}), draw)?;
    let hashes: Value =
        serde_json::from_str(annotation(&out, "kruise.io/sidecarset-hash").unwrap()).unwrap();
    Ok((
        container(&out, "log").image.clone().unwrap(),
        hashes["log"]["controllerRevision"]
            .as_str()
            .unwrap()
            .to_string(),
    ))
}

#[test]
fn injection_strategy_revision_selects_latest_or_history() {
    let latest = ("log:latest".to_string(), "log-latest".to_string());
    let r1 = ("log:old1".to_string(), "log-r1".to_string());
    let r3 = ("log:old3".to_string(), "log-r3".to_string());
    let canary = json!({"app": "web", "canary": "yes"});
    let by_name = json!({"revision": {"revisionName": "log-r1"}});
    let partial = json!({"revision": {"revisionName": "log-r1", "policy": "Partial"}});
    for (case, strategy, update, labels, draw, want) in [
        (
            "no revision: latest",
            json!({}),
            json!({}),
            json!({}),
            0.0,
            &latest,
        ),
        (
            "revisionName, Always",
            by_name.clone(),
            json!({}),
            json!({}),
            0.0,
            &r1,
        ),
        (
            "customVersion: newest revision with it",
            json!({"revision": {"customVersion": "v1"}}),
            json!({}),
            json!({}),
            0.0,
            &r3,
        ),
        (
            "updateStrategy.paused injects history",
            json!({"revision": {"revisionName": "log-r1", "policy": "Partial"}}),
            json!({"paused": true, "partition": "0%"}),
            json!({}),
            0.99,
            &r1,
        ),
        (
            "Partial, pod outside the update selector",
            partial.clone(),
            json!({"selector": {"matchLabels": {"canary": "yes"}}}),
            json!({"app": "web"}),
            0.99,
            &r1,
        ),
        (
            "Partial, selected pod, int partition",
            partial.clone(),
            json!({"selector": {"matchLabels": {"canary": "yes"}}}),
            canary.clone(),
            0.0,
            &latest,
        ),
        (
            "Partial, draw within the partition",
            partial.clone(),
            json!({"partition": "30%"}),
            json!({}),
            0.3,
            &r1,
        ),
        (
            "Partial, draw above the partition",
            partial.clone(),
            json!({"partition": "30%"}),
            json!({}),
            0.31,
            &latest,
        ),
    ] {
        let mut l = json!({"app": "web"});
        merge(&mut l, labels);
        let got =
            injected_revision(strategy, update, l, draw).unwrap_or_else(|e| panic!("{case}: {e}"));
        assert_eq!(&got, want, "{case}");
    }
    for (case, strategy, update) in [
        (
            "unknown revisionName",
            json!({"revision": {"revisionName": "nope"}}),
            json!({}),
        ),
        (
            "unknown customVersion",
            json!({"revision": {"customVersion": "v9"}}),
            json!({}),
        ),
        (
            "bad partition",
            json!({"revision": {"revisionName": "log-r1", "policy": "Partial"}}),
            json!({"partition": "x%"}),
        ),
        (
            "partition with spaces",
            json!({"revision": {"revisionName": "log-r1", "policy": "Partial"}}),
            json!({"partition": " 30%"}),
        ),
    ] {
        let err = injected_revision(strategy, update, json!({"app": "web"}), 0.0).unwrap_err();
        assert!(
            matches!(
                err,
                SidecarSetError::Revision { .. } | SidecarSetError::Partition { .. }
            ),
            "{case}: {err}"
        );
    }
}

#[test]
fn hot_upgrade_sidecar_becomes_two_twins_with_version_env_and_annotations() {
    let p = pod(
        json!({"metadata": {"annotations": {"kruise.io/sidecarset-working-hotupgrade-container": r#"{"other":"other-2"}"#}}}),
    );
    let set = ss(
        "mesh",
        json!({"containers": [{"name": "envoy", "image": "envoy:1",
            "upgradeStrategy": {"upgradeType": "HotUpgrade", "hotUpgradeEmptyImage": "empty:1"}}]}),
    );
    let out = run(&p, vec![set]);
    assert_eq!(containers(&out), ["envoy-1", "envoy-2", "app"]);
    assert_eq!(container(&out, "envoy-1").image.as_deref(), Some("envoy:1"));
    assert_eq!(container(&out, "envoy-2").image.as_deref(), Some("empty:1"));
    for twin in ["envoy-1", "envoy-2"] {
        assert_eq!(
            env(container(&out, twin)),
            json!([
                {"name": "IS_INJECTED", "value": "true"},
                {"name": "SIDECARSET_VERSION", "valueFrom": {"fieldRef": {"fieldPath": format!("metadata.annotations['version.sidecarset.kruise.io/{twin}']")}}},
                {"name": "SIDECARSET_VERSION_ALT", "valueFrom": {"fieldRef": {"fieldPath": format!("metadata.annotations['versionalt.sidecarset.kruise.io/{twin}']")}}}
            ]),
            "{twin}"
        );
    }
    for (key, want) in [
        ("version.sidecarset.kruise.io/envoy-1", "1"),
        ("versionalt.sidecarset.kruise.io/envoy-1", "0"),
        ("version.sidecarset.kruise.io/envoy-2", "0"),
        ("versionalt.sidecarset.kruise.io/envoy-2", "1"),
        (
            "kruise.io/sidecarset-working-hotupgrade-container",
            r#"{"envoy":"envoy-1","other":"other-2"}"#,
        ),
    ] {
        assert_eq!(annotation(&out, key), Some(want), "{key}");
    }
    // sidecarList names the SidecarSet's container, not the twins.
    let hashes: Value =
        serde_json::from_str(annotation(&out, "kruise.io/sidecarset-hash").unwrap()).unwrap();
    assert_eq!(hashes["mesh"]["sidecarList"], json!(["envoy"]));
}

#[test]
fn hash_and_list_annotations_have_kruises_exact_json() {
    let set = ss(
        "log",
        json!({"containers": [{"name": "b", "image": "b"}, {"name": "a", "image": "a"}]}),
    );
    let out = run(&pod(json!({})), vec![set]);
    assert_eq!(
        annotation(&out, "kruise.io/sidecarset-hash"),
        Some(
            r#"{"log":{"updateTimestamp":"2026-01-02T03:04:05Z","hash":"h-log","sidecarSetName":"log","sidecarList":["a","b"],"controllerRevision":"log-latest"}}"#
        )
    );
    assert_eq!(
        annotation(&out, "kruise.io/sidecarset-hash-without-image"),
        Some(
            r#"{"log":{"updateTimestamp":"2026-01-02T03:04:05Z","hash":"hw-log","sidecarSetName":"log","sidecarList":["a","b"]}}"#
        )
    );
    assert_eq!(
        annotation(&out, "kruise.io/sidecarset-injected-list"),
        Some("log")
    );
    assert_eq!(out.sidecarsets, ["log"]);
}

#[test]
fn a_pod_with_kruise_written_annotations_is_parsed_and_extended() {
    // Annotations as OpenKruise writes them (the current shape, and the old name→hash map).
    let p = pod(json!({"metadata": {"annotations": {
        "kruise.io/sidecarset-hash": r#"{"zz-old":{"updateTimestamp":"2025-05-06T07:08:09Z","hash":"5c9f7z","sidecarSetName":"zz-old","sidecarList":["x"],"controllerRevision":"zz-old-6d8b9"}}"#,
        "kruise.io/sidecarset-hash-without-image": r#"{"zz-old":"legacyhash"}"#,
        "kruise.io/sidecarset-injected-list": "zz-old"
    }}}));
    let out = run(&p, vec![ss("log", log_sidecar())]);
    assert_eq!(
        annotation(&out, "kruise.io/sidecarset-hash"),
        Some(concat!(
            r#"{"log":{"updateTimestamp":"2026-01-02T03:04:05Z","hash":"h-log","sidecarSetName":"log","sidecarList":["log"],"controllerRevision":"log-latest"},"#,
            r#""zz-old":{"updateTimestamp":"2025-05-06T07:08:09Z","hash":"5c9f7z","sidecarSetName":"zz-old","sidecarList":["x"],"controllerRevision":"zz-old-6d8b9"}}"#
        ))
    );
    let without: Value =
        serde_json::from_str(annotation(&out, "kruise.io/sidecarset-hash-without-image").unwrap())
            .unwrap();
    assert_eq!(without["zz-old"]["hash"], json!("legacyhash"));
    assert_eq!(without["zz-old"]["sidecarSetName"], json!("zz-old"));
    assert_eq!(
        annotation(&out, "kruise.io/sidecarset-injected-list"),
        Some("log,zz-old")
    );

    let broken = pod(json!({"metadata": {"annotations": {"kruise.io/sidecarset-hash": "[1]"}}}));
    let err = run_with(
        &broken,
        vec![with_revisions(ss("log", log_sidecar()), vec![])],
        json!({}),
        0.0,
    )
    .unwrap_err();
    assert!(
        matches!(err, SidecarSetError::PodAnnotation { .. }),
        "{err}"
    );
}

#[test]
fn a_canary_sidecarset_replaces_its_base() {
    let base = ss("log", log_sidecar());
    let mut canary = ss(
        "log-canary",
        json!({"containers": [{"name": "log", "image": "log:canary"}]}),
    );
    let a = canary
        .metadata
        .annotations
        .get_or_insert_with(Default::default);
    a.insert("apps.kruise.io/sidecarset-canary".into(), "true".into());
    a.insert("apps.kruise.io/sidecarset-base".into(), "log".into());
    let out = run(&pod(json!({})), vec![base, canary]);
    assert_eq!(out.sidecarsets, ["log-canary"]);
    assert_eq!(container(&out, "log").image.as_deref(), Some("log:canary"));
}
