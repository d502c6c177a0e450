//! The CloneSet controller on the real cluster: each test runs its own `graft controllers` for its
//! own namespace, records every pod state while things happen, and checks the invariants
//! (maxUnavailable, partition) over the whole history, not only at the end.
#![cfg(feature = "cluster-tests")]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use graft_api::apps::v1alpha1::CloneSet;
use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use support::{
    GraftControllers, PodState, PodWatcher, TestNamespace, client, image, install_crds, wait_for,
};

const MINUTE: Duration = Duration::from_secs(60);

fn cloneset(name: &str, replicas: i32, tag: &str, strategy: Value) -> CloneSet {
    serde_json::from_value(json!({
        "apiVersion": "apps.kruise.io/v1alpha1", "kind": "CloneSet",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "terminationGracePeriodSeconds": 3,
                    "containers": [
                        {"name": "app", "image": image(&format!("app:{tag}")), "imagePullPolicy": "IfNotPresent",
                         "readinessProbe": {"httpGet": {"path": "/readyz", "port": 8080}, "periodSeconds": 1}},
                        {"name": "sidecar", "image": image("sidecar:v1"), "imagePullPolicy": "IfNotPresent"}
                    ]
                }
            },
            "updateStrategy": strategy
        }
    }))
    .expect("valid CloneSet literal")
}

struct Env {
    ns: TestNamespace,
    clonesets: Api<CloneSet>,
    pods: Api<Pod>,
    _controllers: GraftControllers,
    client: kube::Client,
}

async fn env(prefix: &str) -> Env {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, prefix).await;
    let controllers = GraftControllers::start(&ns.name);
    Env {
        clonesets: ns.api(),
        pods: ns.api(),
        ns,
        _controllers: controllers,
        client,
    }
}

fn status_is(cs: &CloneSet, want: i32) -> bool {
    let s = cs.status.clone().unwrap_or_default();
    s.observed_generation == cs.metadata.generation.unwrap_or(-1)
        && s.replicas == want
        && s.ready_replicas == want
        && s.available_replicas == want
        && s.updated_replicas == want
        && s.updated_ready_replicas == want
        && s.updated_available_replicas == want
}

async fn settled(e: &Env, name: &str, replicas: i32) -> CloneSet {
    wait_cs(
        e,
        name,
        &format!("every status counter at {replicas} for the current generation"),
        2 * MINUTE,
        |cs| status_is(cs, replicas),
    )
    .await
}

/// [`wait_for`] on the CloneSet; on timeout the failure also shows every pod's conditions and
/// containers, and where the controller's log is.
async fn wait_cs(
    e: &Env,
    name: &str,
    expected: &str,
    timeout: Duration,
    cond: impl Fn(&CloneSet) -> bool,
) -> CloneSet {
    match tokio::time::timeout(
        timeout,
        wait_for(&e.clonesets, name, expected, timeout + MINUTE, cond),
    )
    .await
    {
        Ok(cs) => cs,
        Err(_) => {
            let cs = e.clonesets.get(name).await.ok().and_then(|c| c.status);
            let pods = e
                .pods
                .list(&ListParams::default())
                .await
                .map(|l| l.items)
                .unwrap_or_default();
            let lines: Vec<String> = pods
                .iter()
                .map(|p| {
                    let st = p.status.clone().unwrap_or_default();
                    format!(
                        "{} deleting={} conditions={:?} containers={:?}",
                        p.metadata.name.clone().unwrap_or_default(),
                        p.metadata.deletion_timestamp.is_some(),
                        st.conditions
                            .unwrap_or_default()
                            .iter()
                            .map(|c| format!("{}={}", c.type_, c.status))
                            .collect::<Vec<_>>(),
                        st.container_statuses
                            .unwrap_or_default()
                            .iter()
                            .map(|c| format!(
                                "{} {} restarts={} ready={}",
                                c.name, c.image, c.restart_count, c.ready
                            ))
                            .collect::<Vec<_>>()
                    )
                })
                .collect();
            panic!(
                "timed out after {timeout:?} waiting for CloneSet {name}: expected {expected}\nstatus: {cs:?}\npods:\n{}\ncontroller log: {}",
                lines.join("\n"),
                e._controllers.log.display()
            )
        }
    }
}

async fn live_pods(e: &Env, name: &str) -> Vec<Pod> {
    e.pods
        .list(&ListParams::default().labels(&format!("app={name}")))
        .await
        .expect("list pods")
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect()
}

async fn patch_spec(e: &Env, name: &str, spec: Value) {
    e.clonesets
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(&json!({ "spec": spec })),
        )
        .await
        .expect("patch CloneSet");
}

fn container<'a>(
    p: &'a Pod,
    name: &str,
) -> Option<&'a k8s_openapi::api::core::v1::ContainerStatus> {
    p.status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .iter()
        .find(|c| c.name == name)
}

/// Replays a recorded history and returns the most pods that were unavailable at any one time
/// (`replicas` minus the pods that are Ready and not terminating, as the CloneSet counts it), and
/// the lowest number of pods that still ran the image `old` at any time.
fn worst_case(history: &[PodState], replicas: usize, old_image: &str) -> (usize, usize) {
    let mut current: BTreeMap<String, PodState> = BTreeMap::new();
    let (mut worst_unavailable, mut fewest_old) = (0usize, usize::MAX);
    // The watch starts with the pods listed one by one: judge only once all of them were seen.
    let mut listed = false;
    for s in history {
        if s.deleted {
            current.remove(&s.uid);
        } else {
            current.insert(s.uid.clone(), s.clone());
        }
        listed |= current.len() >= replicas;
        if !listed {
            continue;
        }
        let available = current.values().filter(|p| p.ready && !p.deleting).count();
        let unavailable = replicas.saturating_sub(available);
        worst_unavailable = worst_unavailable.max(unavailable);
        let old = current
            .values()
            .filter(|p| {
                !p.deleting
                    && p.containers
                        .iter()
                        .any(|c| c.0 == "app" && c.1.ends_with(old_image))
            })
            .count();
        fewest_old = fewest_old.min(old);
    }
    (worst_unavailable, fewest_old)
}

/// One line per recorded pod state, for failure messages.
fn timeline(history: &[PodState]) -> String {
    history
        .iter()
        .map(|s| {
            format!(
                "{:>7.2}s {} ready={} deleting={} deleted={} images={:?}",
                s.at.as_secs_f64(),
                s.name,
                s.ready,
                s.deleting,
                s.deleted,
                s.containers
                    .iter()
                    .map(|c| c.1.rsplit('/').next().unwrap_or_default())
                    .collect::<Vec<_>>()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn scale_up_down_up_and_pods_to_delete() {
    let e = env("cs-scale").await;
    e.clonesets
        .create(&PostParams::default(), &cloneset("web", 0, "v1", json!({})))
        .await
        .expect("create");
    settled(&e, "web", 0).await;
    patch_spec(&e, "web", json!({"replicas": 5})).await;
    settled(&e, "web", 5).await;
    let pods = live_pods(&e, "web").await;
    assert_eq!(pods.len(), 5);
    for p in &pods {
        let name = p.metadata.name.clone().unwrap_or_default();
        let l = p.metadata.labels.clone().unwrap_or_default();
        let id = l
            .get("apps.kruise.io/cloneset-instance-id")
            .cloned()
            .unwrap_or_default();
        assert_eq!(
            name,
            format!("web-{id}"),
            "pod name is <cloneset>-<instance id>"
        );
        assert!(
            l.get("controller-revision-hash")
                .is_some_and(|h| h.starts_with("web-"))
        );
        assert!(l.contains_key("pod-template-hash"));
        assert_eq!(
            l.get("lifecycle.apps.kruise.io/state").map(String::as_str),
            Some("Normal")
        );
    }
    patch_spec(&e, "web", json!({"replicas": 2})).await;
    settled(&e, "web", 2).await;
    assert_eq!(live_pods(&e, "web").await.len(), 2);
    patch_spec(&e, "web", json!({"replicas": 5})).await;
    settled(&e, "web", 5).await;

    // podsToDelete: that pod goes, a replacement comes, the name is dropped from the list.
    let victim = live_pods(&e, "web").await[0]
        .metadata
        .name
        .clone()
        .unwrap_or_default();
    patch_spec(
        &e,
        "web",
        json!({"scaleStrategy": {"podsToDelete": [victim]}}),
    )
    .await;
    let cs = wait_cs(
        &e,
        "web",
        "the victim gone, 5 pods ready and podsToDelete emptied",
        2 * MINUTE,
        |cs| {
            status_is(cs, 5)
                && cs
                    .spec
                    .scale_strategy
                    .as_ref()
                    .and_then(|s| s.pods_to_delete.as_ref())
                    .is_none_or(|l| l.is_empty())
        },
    )
    .await;
    let names: BTreeSet<String> = live_pods(&e, "web")
        .await
        .iter()
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    assert!(
        !names.contains(&victim),
        "{victim} still there: {names:?} ({:?})",
        cs.status
    );
}

#[tokio::test]
async fn in_place_update_keeps_pods_and_restarts_only_the_changed_container() {
    let e = env("cs-inplace").await;
    e.clonesets
        .create(
            &PostParams::default(),
            &cloneset(
                "web",
                5,
                "v1",
                json!({"type": "InPlaceIfPossible", "maxUnavailable": 1}),
            ),
        )
        .await
        .expect("create");
    settled(&e, "web", 5).await;
    let before: BTreeMap<String, (String, String)> = live_pods(&e, "web")
        .await
        .iter()
        .map(|p| {
            (
                p.metadata.uid.clone().unwrap_or_default(),
                (
                    p.status
                        .as_ref()
                        .and_then(|s| s.pod_ip.clone())
                        .unwrap_or_default(),
                    p.spec
                        .as_ref()
                        .and_then(|s| s.node_name.clone())
                        .unwrap_or_default(),
                ),
            )
        })
        .collect();
    let watcher = PodWatcher::start(&e.client, &e.ns.name, "app=web");
    tokio::time::sleep(Duration::from_millis(500)).await;
    patch_spec(&e, "web", containers_with(&image("app:v2"))).await;
    let cs = wait_cs(
        &e,
        "web",
        "all 5 pods updated, ready and available",
        3 * MINUTE,
        |cs| {
            let s = cs.status.clone().unwrap_or_default();
            status_is(cs, 5)
                && s.update_revision == s.current_revision
                && s.update_revision.is_some()
        },
    )
    .await;
    let status = cs.status.clone().unwrap_or_default();
    assert_eq!(status.update_revision, status.current_revision);
    let after = live_pods(&e, "web").await;
    assert_eq!(after.len(), 5);
    let v2 = support::image_digest("app:v2");
    for p in &after {
        let uid = p.metadata.uid.clone().unwrap_or_default();
        let (ip, node) = before
            .get(&uid)
            .unwrap_or_else(|| panic!("pod {uid} is new: not updated in place"));
        assert_eq!(
            p.status.as_ref().and_then(|s| s.pod_ip.as_ref()),
            Some(ip),
            "same IP"
        );
        assert_eq!(
            p.spec.as_ref().and_then(|s| s.node_name.as_ref()),
            Some(node),
            "same node"
        );
        let app = container(p, "app").expect("app status");
        assert!(app.image_id.contains(&v2), "app runs v2: {}", app.image_id);
        assert_eq!(app.restart_count, 1, "app restarted once");
        assert_eq!(
            container(p, "sidecar").map(|c| c.restart_count),
            Some(0),
            "sidecar untouched"
        );
        let state = p
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("apps.kruise.io/inplace-update-state"))
            .expect("in-place update state annotation");
        let state: Value = serde_json::from_str(state).expect("state is JSON");
        assert_eq!(state["revision"], json!(status.update_revision));
    }
    let (worst, _) = worst_case(&watcher.history(), 5, "app:v1");
    assert_eq!(
        worst, 1,
        "maxUnavailable 1: one pod updating at a time, never more (observed {worst})"
    );
}

#[tokio::test]
async fn recreate_update_replaces_pods_and_partition_holds_old_ones() {
    let e = env("cs-recreate").await;
    e.clonesets
        .create(
            &PostParams::default(),
            &cloneset(
                "web",
                5,
                "v1",
                json!({"type": "ReCreate", "partition": 3, "maxUnavailable": 2}),
            ),
        )
        .await
        .expect("create");
    settled(&e, "web", 5).await;
    let old_uids: BTreeSet<String> = live_pods(&e, "web")
        .await
        .iter()
        .filter_map(|p| p.metadata.uid.clone())
        .collect();
    let watcher = PodWatcher::start(&e.client, &e.ns.name, "app=web");
    tokio::time::sleep(Duration::from_millis(500)).await;
    patch_spec(
        &e,
        "web",
        json!({"template": {"metadata": {"labels": {"app": "web", "v": "2"}}, "spec": {"containers": [
            {"name": "app", "image": image("app:v3"), "imagePullPolicy": "IfNotPresent",
             "readinessProbe": {"httpGet": {"path": "/readyz", "port": 8080}, "periodSeconds": 1}},
            {"name": "sidecar", "image": image("sidecar:v1"), "imagePullPolicy": "IfNotPresent"}
        ]}}}),
    )
    .await;
    let cs = wait_cs(
        &e,
        "web",
        "2 of 5 updated (partition 3), all available",
        3 * MINUTE,
        |cs| {
            let s = cs.status.clone().unwrap_or_default();
            s.updated_replicas == 2
                && s.updated_available_replicas == 2
                && s.available_replicas == 5
                && s.expected_updated_replicas == 2
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let pods = live_pods(&e, "web").await;
    let v3: Vec<_> = pods
        .iter()
        .filter(|p| container(p, "app").is_some_and(|c| c.image.ends_with("app:v3")))
        .collect();
    assert_eq!(
        v3.len(),
        2,
        "partition 3 of 5 leaves 3 old pods: {:?}",
        cs.status
    );
    for p in &v3 {
        assert!(
            !old_uids.contains(p.metadata.uid.as_deref().unwrap_or_default()),
            "ReCreate makes new pods"
        );
    }
    let (worst, fewest_old) = worst_case(&watcher.history(), 5, "app:v1");
    assert!(
        worst <= 2,
        "maxUnavailable 2 was violated: {worst}\n{}",
        timeline(&watcher.history())
    );
    assert!(
        fewest_old >= 3,
        "partition 3 was violated: only {fewest_old} old pods at one point"
    );

    patch_spec(&e, "web", json!({"updateStrategy": {"partition": 0}})).await;
    settled(&e, "web", 5).await;
    let (worst, _) = worst_case(&watcher.history(), 5, "app:v1");
    assert!(worst <= 2, "maxUnavailable 2 was violated: {worst}");
    assert!(
        live_pods(&e, "web")
            .await
            .iter()
            .all(|p| container(p, "app").is_some_and(|c| c.image.ends_with("app:v3")))
    );
}

#[tokio::test]
async fn in_place_only_with_a_non_image_change_fails_and_touches_no_pod() {
    let e = env("cs-inplaceonly").await;
    e.clonesets
        .create(
            &PostParams::default(),
            &cloneset("web", 2, "v1", json!({"type": "InPlaceOnly"})),
        )
        .await
        .expect("create");
    settled(&e, "web", 2).await;
    let before: Vec<(String, String)> = live_pods(&e, "web")
        .await
        .iter()
        .map(|p| {
            (
                p.metadata.uid.clone().unwrap_or_default(),
                p.metadata.resource_version.clone().unwrap_or_default(),
            )
        })
        .collect();
    patch_spec(
        &e,
        "web",
        json!({"template": {"spec": {"containers": [
            {"name": "app", "image": image("app:v1"), "imagePullPolicy": "IfNotPresent", "env": [{"name": "X", "value": "1"}],
             "readinessProbe": {"httpGet": {"path": "/readyz", "port": 8080}, "periodSeconds": 1}},
            {"name": "sidecar", "image": image("sidecar:v1"), "imagePullPolicy": "IfNotPresent"}
        ]}}}),
    )
    .await;
    let cs = wait_cs(&e, "web", "a FailedUpdate condition", MINUTE, |cs| {
        cs.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| {
                c.iter()
                    .any(|c| c.type_ == "FailedUpdate" && c.status == "True")
            })
    })
    .await;
    let msg = cs
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_ == "FailedUpdate")
        .and_then(|c| c.message)
        .unwrap_or_default();
    assert!(msg.contains("env"), "the condition names the change: {msg}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after: Vec<(String, String)> = live_pods(&e, "web")
        .await
        .iter()
        .map(|p| {
            (
                p.metadata.uid.clone().unwrap_or_default(),
                p.metadata.resource_version.clone().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        before.iter().map(|p| &p.0).collect::<BTreeSet<_>>(),
        after.iter().map(|p| &p.0).collect::<BTreeSet<_>>(),
        "no pod replaced"
    );
}

#[tokio::test]
async fn a_metadata_only_change_updates_labels_without_any_restart() {
    let e = env("cs-meta").await;
    e.clonesets
        .create(
            &PostParams::default(),
            &cloneset("web", 2, "v1", json!({"type": "InPlaceIfPossible"})),
        )
        .await
        .expect("create");
    settled(&e, "web", 2).await;
    patch_spec(
        &e,
        "web",
        json!({"template": {"metadata": {"labels": {"app": "web", "team": "blue"}}}}),
    )
    .await;
    wait_cs(
        &e,
        "web",
        "both pods at the new revision",
        2 * MINUTE,
        |cs| status_is(cs, 2),
    )
    .await;
    let pods = live_pods(&e, "web").await;
    for p in &pods {
        assert_eq!(
            p.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("team"))
                .map(String::as_str),
            Some("blue")
        );
        assert_eq!(
            container(p, "app").map(|c| c.restart_count),
            Some(0),
            "no restart"
        );
        assert_eq!(
            container(p, "sidecar").map(|c| c.restart_count),
            Some(0),
            "no restart"
        );
    }
}

#[tokio::test]
async fn kubectl_scale_works_through_the_scale_subresource_and_revisions_survive_a_restart() {
    let mut e = env("cs-kscale").await;
    e.clonesets
        .create(&PostParams::default(), &cloneset("web", 1, "v1", json!({})))
        .await
        .expect("create");
    settled(&e, "web", 1).await;
    let kubectl = std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .map(|d| std::path::Path::new(d).join("kubectl"))
        .find(|p| p.exists())
        .expect("kubectl on PATH (deploy/local/cluster env puts it there)");
    let out = std::process::Command::new(kubectl)
        .args(["-n", &e.ns.name, "scale", "clone/web", "--replicas=3"])
        .output()
        .expect("run kubectl scale");
    assert!(
        out.status.success(),
        "kubectl scale: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cs = settled(&e, "web", 3).await;
    assert!(
        cs.status
            .as_ref()
            .and_then(|s| s.label_selector.clone())
            .is_some_and(|s| s.contains("app=web"))
    );

    // A restarted controller finds the same revision: no new revision, no rollout.
    let revisions: Api<ControllerRevision> = e.ns.api();
    let before = revisions
        .list(&ListParams::default())
        .await
        .expect("list")
        .items
        .len();
    e._controllers.kill();
    e._controllers = GraftControllers::start(&e.ns.name);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let after = revisions
        .list(&ListParams::default())
        .await
        .expect("list")
        .items
        .len();
    assert_eq!(before, after, "a restart minted a new revision");
    settled(&e, "web", 3).await;
}

/// The template's containers with the app container at `app_image` (a full image name).
fn containers_with(app_image: &str) -> Value {
    json!({"template": {"spec": {"containers": [
        {"name": "app", "image": app_image, "imagePullPolicy": "IfNotPresent",
         "readinessProbe": {"httpGet": {"path": "/readyz", "port": 8080}, "periodSeconds": 1}},
        {"name": "sidecar", "image": image("sidecar:v1"), "imagePullPolicy": "IfNotPresent"}
    ]}}})
}

/// The most active (not terminating) pods that existed at any one time in a recorded history.
fn most_active_pods(history: &[PodState]) -> usize {
    let mut current: BTreeMap<String, bool> = BTreeMap::new();
    let mut most = 0;
    for s in history {
        if s.deleted {
            current.remove(&s.uid);
        } else {
            current.insert(s.uid.clone(), s.deleting);
        }
        most = most.max(current.values().filter(|deleting| !**deleting).count());
    }
    most
}

/// Per live pod: (uid, image of the app container in the pod spec).
async fn pod_images(e: &Env, name: &str) -> BTreeMap<String, String> {
    live_pods(e, name)
        .await
        .iter()
        .map(|p| {
            let image = p
                .spec
                .as_ref()
                .and_then(|s| s.containers.iter().find(|c| c.name == "app"))
                .and_then(|c| c.image.clone())
                .unwrap_or_default();
            (p.metadata.uid.clone().unwrap_or_default(), image)
        })
        .collect()
}

async fn revision_count(e: &Env) -> usize {
    let revisions: Api<ControllerRevision> = e.ns.api();
    revisions
        .list(&ListParams::default())
        .await
        .expect("list controller revisions")
        .items
        .len()
}

/// `(reason, message)` of every Event about the CloneSet `name`.
async fn cloneset_events(e: &Env, name: &str) -> Vec<(String, String)> {
    let events: Api<k8s_openapi::api::core::v1::Event> = e.ns.api();
    events
        .list(&ListParams::default())
        .await
        .expect("list events")
        .items
        .into_iter()
        .filter(|ev| {
            ev.involved_object.kind.as_deref() == Some("CloneSet")
                && ev.involved_object.name.as_deref() == Some(name)
        })
        .map(|ev| {
            (
                ev.reason.unwrap_or_default(),
                ev.message.unwrap_or_default(),
            )
        })
        .collect()
}

#[tokio::test]
async fn max_surge_1_recreate_adds_one_pod_and_keeps_all_available() {
    let e = env("cs-surge").await;
    e.clonesets
        .create(
            &PostParams::default(),
            &cloneset(
                "web",
                5,
                "v1",
                json!({"type": "ReCreate", "maxSurge": 1, "maxUnavailable": 0}),
            ),
        )
        .await
        .expect("create");
    settled(&e, "web", 5).await;
    let old_uids: BTreeSet<String> = pod_images(&e, "web").await.into_keys().collect();
    let watcher = PodWatcher::start(&e.client, &e.ns.name, "app=web");
    tokio::time::sleep(Duration::from_millis(500)).await;
    patch_spec(&e, "web", containers_with(&image("app:v2"))).await;
    wait_cs(
        &e,
        "web",
        "all 5 pods replaced by v2 pods, ready and available",
        4 * MINUTE,
        |cs| {
            let s = cs.status.clone().unwrap_or_default();
            status_is(cs, 5) && s.update_revision == s.current_revision
        },
    )
    .await;
    let after = pod_images(&e, "web").await;
    assert_eq!(after.len(), 5, "5 pods in the end: {after:?}");
    for (uid, img) in &after {
        assert!(!old_uids.contains(uid), "ReCreate replaces every pod");
        assert!(img.ends_with("app:v2"), "{uid} runs {img}");
    }
    let history = watcher.history();
    let most = most_active_pods(&history);
    assert_eq!(
        most,
        6,
        "maxSurge 1: at most and at some point 6 pods\n{}",
        timeline(&history)
    );
    let (worst, _) = worst_case(&history, 5, "app:v1");
    assert_eq!(
        worst,
        0,
        "maxUnavailable 0 with maxSurge 1: never fewer than 5 available pods\n{}",
        timeline(&history)
    );
}

#[tokio::test]
async fn paused_update_changes_no_pod_scaling_still_works_and_unpausing_rolls_out() {
    let e = env("cs-paused").await;
    e.clonesets
        .create(
            &PostParams::default(),
            &cloneset(
                "web",
                3,
                "v1",
                json!({"type": "InPlaceIfPossible", "maxUnavailable": 1}),
            ),
        )
        .await
        .expect("create");
    settled(&e, "web", 3).await;
    let before = pod_images(&e, "web").await;
    let watcher = PodWatcher::start(&e.client, &e.ns.name, "app=web");
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut paused_update = containers_with(&image("app:v2"));
    paused_update["updateStrategy"] = json!({"paused": true});
    patch_spec(&e, "web", paused_update).await;
    wait_cs(
        &e,
        "web",
        "the new generation observed with a new update revision",
        MINUTE,
        |cs| {
            let s = cs.status.clone().unwrap_or_default();
            s.observed_generation == cs.metadata.generation.unwrap_or(-1)
                && s.update_revision != s.current_revision
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        pod_images(&e, "web").await,
        before,
        "paused: no pod replaced or patched"
    );
    let cs = e.clonesets.get("web").await.expect("get");
    assert_eq!(cs.status.unwrap_or_default().updated_replicas, 0);

    // Scaling goes on while paused; the existing pods stay as they are.
    patch_spec(&e, "web", json!({"replicas": 4})).await;
    wait_cs(&e, "web", "4 pods ready while paused", 2 * MINUTE, |cs| {
        let s = cs.status.clone().unwrap_or_default();
        s.observed_generation == cs.metadata.generation.unwrap_or(-1)
            && s.replicas == 4
            && s.available_replicas == 4
    })
    .await;
    let scaled = pod_images(&e, "web").await;
    assert_eq!(scaled.len(), 4, "scaled to 4 while paused: {scaled:?}");
    for (uid, img) in &before {
        assert_eq!(scaled.get(uid), Some(img), "old pod {uid} untouched");
    }
    let history = watcher.history();
    assert!(
        history
            .iter()
            .filter(|s| before.contains_key(&s.uid))
            .all(|s| s.containers.iter().all(|c| c.3 == 0) && !s.deleting),
        "paused: no old pod restarted or deleted\n{}",
        timeline(&history)
    );

    patch_spec(&e, "web", json!({"updateStrategy": {"paused": false}})).await;
    wait_cs(
        &e,
        "web",
        "all 4 pods at v2 after un-pausing",
        3 * MINUTE,
        |cs| {
            let s = cs.status.clone().unwrap_or_default();
            status_is(cs, 4) && s.update_revision == s.current_revision
        },
    )
    .await;
    let after = pod_images(&e, "web").await;
    assert!(
        after.values().all(|i| i.ends_with("app:v2")),
        "un-paused: every pod at v2: {after:?}"
    );
    for uid in before.keys() {
        assert!(after.contains_key(uid), "pod {uid} updated in place");
    }
    let (worst, _) = worst_case(&watcher.history(), 4, "app:v1");
    assert!(worst <= 1, "maxUnavailable 1 was violated: {worst}");
}

#[tokio::test]
async fn max_unavailable_2_updates_two_pods_at_a_time() {
    let e = env("cs-mu2").await;
    e.clonesets
        .create(
            &PostParams::default(),
            &cloneset(
                "web",
                5,
                "v1",
                json!({"type": "InPlaceIfPossible", "maxUnavailable": 2}),
            ),
        )
        .await
        .expect("create");
    settled(&e, "web", 5).await;
    let before: BTreeSet<String> = pod_images(&e, "web").await.into_keys().collect();
    let watcher = PodWatcher::start(&e.client, &e.ns.name, "app=web");
    tokio::time::sleep(Duration::from_millis(500)).await;
    patch_spec(&e, "web", containers_with(&image("app:v2"))).await;
    wait_cs(&e, "web", "all 5 pods updated in place", 3 * MINUTE, |cs| {
        let s = cs.status.clone().unwrap_or_default();
        status_is(cs, 5) && s.update_revision == s.current_revision
    })
    .await;
    let after = pod_images(&e, "web").await;
    assert_eq!(after.keys().cloned().collect::<BTreeSet<_>>(), before);
    let history = watcher.history();
    let (worst, _) = worst_case(&history, 5, "app:v1");
    assert_eq!(
        worst,
        2,
        "maxUnavailable 2: two pods updating at the same time, never more\n{}",
        timeline(&history)
    );
}

#[tokio::test]
async fn an_image_that_cannot_be_pulled_stops_the_rollout_at_max_unavailable() {
    let e = env("cs-badimage").await;
    e.clonesets
        .create(
            &PostParams::default(),
            &cloneset(
                "web",
                5,
                "v1",
                json!({"type": "InPlaceIfPossible", "maxUnavailable": 1}),
            ),
        )
        .await
        .expect("create");
    settled(&e, "web", 5).await;
    let watcher = PodWatcher::start(&e.client, &e.ns.name, "app=web");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let bad = image("app:does-not-exist");
    patch_spec(&e, "web", containers_with(&bad)).await;
    wait_cs(
        &e,
        "web",
        "one pod updated, 4 available",
        2 * MINUTE,
        |cs| {
            let s = cs.status.clone().unwrap_or_default();
            s.observed_generation == cs.metadata.generation.unwrap_or(-1)
                && s.updated_replicas == 1
                && s.available_replicas == 4
        },
    )
    .await;
    // For 15 s: the same 5 pods, one with the bad image, the other 4 still at v1 and available.
    // (The kubelet keeps reporting the old image in the stuck pod's status, so look at the specs.)
    let first = pod_images(&e, "web").await;
    for second in 0..15 {
        let images = pod_images(&e, "web").await;
        assert_eq!(
            images.keys().collect::<Vec<_>>(),
            first.keys().collect::<Vec<_>>(),
            "after {second} s: no pod added or removed"
        );
        let stuck = images.values().filter(|i| **i == bad).count();
        let v1 = images.values().filter(|i| i.ends_with("app:v1")).count();
        assert_eq!(
            (stuck, v1),
            (1, 4),
            "after {second} s: the rollout stopped after one pod: {images:?}"
        );
        let cs = e.clonesets.get("web").await.expect("get");
        let s = cs.status.clone().unwrap_or_default();
        assert_eq!(
            (s.updated_replicas, s.available_replicas, s.ready_replicas),
            (1, 4, 4),
            "after {second} s: {s:?}"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let history = watcher.history();
    let (worst, _) = worst_case(&history, 5, "app:v1");
    assert_eq!(
        worst,
        1,
        "exactly one pod unavailable at worst\n{}",
        timeline(&history)
    );
    let stuck_pod = live_pods(&e, "web")
        .await
        .into_iter()
        .find(|p| {
            p.spec.as_ref().is_some_and(|s| {
                s.containers
                    .iter()
                    .any(|c| c.image.as_deref() == Some(&bad))
            })
        })
        .and_then(|p| p.metadata.name)
        .expect("the stuck pod");
    // The CloneSet's Events say why the rollout waits: which pod, and that its image cannot be
    // pulled.
    let events = cloneset_events(&e, "web").await;
    assert!(
        events
            .iter()
            .any(|(reason, message)| reason == "RolloutWaiting"
                && message.contains("maxUnavailable")
                && message.contains(&stuck_pod)
                && message.contains("cannot pull")),
        "an Event names the stuck pod and the image pull failure: {events:?}"
    );
    // And so does the status, in graft's RolloutBlocked condition.
    let blocked = e
        .clonesets
        .get("web")
        .await
        .expect("get CloneSet")
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_ == "RolloutBlocked");
    assert!(
        blocked
            .as_ref()
            .is_some_and(|c| c.status == "True"
                && c.message.as_deref().is_some_and(|m| m.contains(&stuck_pod))),
        "the status names the stuck pod: {blocked:?}"
    );

    // Fixing the image lets the rollout finish, the stuck pod included.
    patch_spec(&e, "web", containers_with(&image("app:v2"))).await;
    wait_cs(
        &e,
        "web",
        "all 5 pods at v2 after the fix",
        3 * MINUTE,
        |cs| {
            let s = cs.status.clone().unwrap_or_default();
            status_is(cs, 5) && s.update_revision == s.current_revision
        },
    )
    .await;
    let (worst, _) = worst_case(&watcher.history(), 5, "app:v1");
    assert_eq!(worst, 1, "maxUnavailable 1 held after the fix too");
    let conditions = e
        .clonesets
        .get("web")
        .await
        .expect("get")
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default();
    assert!(
        conditions.iter().all(|c| c.type_ != "RolloutBlocked"),
        "RolloutBlocked is gone: {conditions:?}"
    );
}

#[tokio::test]
async fn graft_killed_mid_rollout_resumes_without_violation_or_new_revision() {
    let mut e = env("cs-crash").await;
    e.clonesets
        .create(
            &PostParams::default(),
            &cloneset(
                "web",
                5,
                "v1",
                json!({"type": "InPlaceIfPossible", "maxUnavailable": 1}),
            ),
        )
        .await
        .expect("create");
    settled(&e, "web", 5).await;
    let before: BTreeSet<String> = pod_images(&e, "web").await.into_keys().collect();
    let watcher = PodWatcher::start(&e.client, &e.ns.name, "app=web");
    tokio::time::sleep(Duration::from_millis(500)).await;
    patch_spec(&e, "web", containers_with(&image("app:v2"))).await;
    // Kill it twice: once as the first pod starts updating, once in the middle of the rollout.
    for updated in [1, 3] {
        wait_cs(
            &e,
            "web",
            &format!("{updated} pod(s) at the update revision"),
            3 * MINUTE,
            |cs| {
                let s = cs.status.clone().unwrap_or_default();
                s.observed_generation == cs.metadata.generation.unwrap_or(-1)
                    && s.update_revision != s.current_revision
                    && s.updated_replicas >= updated
            },
        )
        .await;
        let revisions = revision_count(&e).await;
        e._controllers.kill();
        tokio::time::sleep(Duration::from_secs(2)).await;
        e._controllers = GraftControllers::start(&e.ns.name);
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(
            revision_count(&e).await,
            revisions,
            "the restarted controller minted a new revision"
        );
    }
    wait_cs(
        &e,
        "web",
        "all 5 pods at v2 after the restarts",
        3 * MINUTE,
        |cs| {
            let s = cs.status.clone().unwrap_or_default();
            status_is(cs, 5) && s.update_revision == s.current_revision
        },
    )
    .await;
    assert_eq!(revision_count(&e).await, 2, "one revision per template");
    let after = pod_images(&e, "web").await;
    assert_eq!(
        after.keys().cloned().collect::<BTreeSet<_>>(),
        before,
        "every pod updated in place"
    );
    assert!(after.values().all(|i| i.ends_with("app:v2")), "{after:?}");
    let history = watcher.history();
    let (worst, _) = worst_case(&history, 5, "app:v1");
    assert!(
        worst <= 1,
        "maxUnavailable 1 was violated across the restarts: {worst}\n{}",
        timeline(&history)
    );
    for p in live_pods(&e, "web").await {
        assert_eq!(
            container(&p, "app").map(|c| c.restart_count),
            Some(1),
            "{}: the app container restarted exactly once (no double update)",
            p.metadata.name.unwrap_or_default()
        );
    }
}

#[tokio::test]
async fn a_pre_delete_hook_with_mark_pod_not_ready_holds_the_pod_out_of_service_until_released() {
    let e = env("cs-hook").await;
    let mut cs = cloneset("web", 2, "v1", json!({}));
    cs.spec
        .template
        .metadata
        .get_or_insert_with(Default::default)
        .labels = Some(BTreeMap::from([
        ("app".into(), "web".into()),
        ("hold".into(), "true".into()),
    ]));
    cs.spec.lifecycle = serde_json::from_value(json!({
        "preDelete": {"labelsHandler": {"hold": "true"}, "markPodNotReady": true}
    }))
    .expect("lifecycle literal");
    e.clonesets
        .create(&PostParams::default(), &cs)
        .await
        .expect("create");
    settled(&e, "web", 2).await;
    for p in live_pods(&e, "web").await {
        let gates = p
            .spec
            .as_ref()
            .and_then(|s| s.readiness_gates.clone())
            .unwrap_or_default();
        assert!(
            gates.iter().any(|g| g.condition_type == "KruisePodReady"),
            "KruisePodReady gate injected"
        );
    }

    patch_spec(&e, "web", json!({"replicas": 1})).await;
    let held = support::eventually(
        "a pod in PreparingDelete, out of service",
        MINUTE,
        || async {
            for p in live_pods(&e, "web").await {
                let state = p
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get("lifecycle.apps.kruise.io/state").cloned());
                let cond = |t: &str| {
                    p.status
                        .as_ref()
                        .and_then(|s| s.conditions.as_ref())
                        .and_then(|c| c.iter().find(|c| c.type_ == t).map(|c| c.status.clone()))
                };
                if state.as_deref() == Some("PreparingDelete")
                    && cond("KruisePodReady").as_deref() == Some("False")
                    && cond("Ready").as_deref() == Some("False")
                {
                    return Ok(p.metadata.name.clone().unwrap_or_default());
                }
            }
            Err("no pod in PreparingDelete with KruisePodReady=False and Ready=False".to_string())
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let still = e
        .pods
        .get(&held)
        .await
        .expect("the hooked pod still exists");
    assert!(
        still.metadata.deletion_timestamp.is_none(),
        "the hooked pod must not be deleted yet"
    );

    // The user's controller releases the hook: the pod goes.
    e.pods
        .patch(
            &held,
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"labels": {"hold": null}}})),
        )
        .await
        .expect("release the hook");
    support::eventually("the released pod to be deleted", MINUTE, || async {
        match e.pods.get_opt(&held).await {
            Ok(None) => Ok(()),
            Ok(Some(p)) if p.metadata.deletion_timestamp.is_some() => Ok(()),
            other => Err(format!("{:?}", other.map(|p| p.map(|p| p.metadata.labels)))),
        }
    })
    .await;
    settled(&e, "web", 1).await;
}

#[tokio::test]
async fn volume_claim_templates_give_each_instance_its_pvc_and_a_replacement_reuses_it() {
    use k8s_openapi::api::core::v1::PersistentVolumeClaim;
    let e = env("cs-pvc").await;
    let mut cs = cloneset("web", 2, "v1", json!({}));
    cs.spec.volume_claim_templates = serde_json::from_value(json!([{
        "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "16Mi"}}}
    }]))
    .expect("vct literal");
    e.clonesets
        .create(&PostParams::default(), &cs)
        .await
        .expect("create");
    settled(&e, "web", 2).await;
    let pvcs: Api<PersistentVolumeClaim> = e.ns.api();
    let pods = live_pods(&e, "web").await;
    for p in &pods {
        let id = p
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("apps.kruise.io/cloneset-instance-id").cloned())
            .unwrap_or_default();
        let pvc = pvcs
            .get(&format!("data-web-{id}"))
            .await
            .expect("a PVC per instance id");
        assert_eq!(pvc.status.and_then(|s| s.phase).as_deref(), Some("Bound"));
        let claim = p
            .spec
            .as_ref()
            .and_then(|s| s.volumes.as_ref())
            .and_then(|v| v.iter().find(|v| v.name == "data"))
            .and_then(|v| v.persistent_volume_claim.as_ref())
            .map(|c| c.claim_name.clone());
        assert_eq!(
            claim,
            Some(format!("data-web-{id}")),
            "the pod mounts its own PVC"
        );
    }

    // A pod deleted by someone else: its replacement takes over the same instance id and PVC.
    let gone = &pods[0];
    let gone_id = gone
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get("apps.kruise.io/cloneset-instance-id").cloned())
        .unwrap_or_default();
    e.pods
        .delete(
            gone.metadata.name.as_deref().unwrap_or_default(),
            &Default::default(),
        )
        .await
        .expect("delete a pod");
    let replacement = support::eventually(
        "a new pod reusing the orphan PVC's instance id",
        2 * MINUTE,
        || async {
            live_pods(&e, "web")
                .await
                .into_iter()
                .find(|p| {
                    p.metadata.uid != gone.metadata.uid && p.metadata.name == gone.metadata.name
                })
                .ok_or_else(|| "no replacement with the same name yet".to_string())
        },
    )
    .await;
    assert_eq!(
        replacement
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("apps.kruise.io/cloneset-instance-id").cloned()),
        Some(gone_id.clone())
    );
    settled(&e, "web", 2).await;

    // Scale-in by the controller deletes the pod's PVC with it.
    patch_spec(&e, "web", json!({"replicas": 1})).await;
    settled(&e, "web", 1).await;
    support::eventually("one PVC left", MINUTE, || async {
        let n = pvcs
            .list(&ListParams::default())
            .await
            .map(|l| {
                l.items
                    .iter()
                    .filter(|p| p.metadata.deletion_timestamp.is_none())
                    .count()
            })
            .unwrap_or(usize::MAX);
        if n == 1 {
            Ok(())
        } else {
            Err(format!("{n} PVCs"))
        }
    })
    .await;
}

#[tokio::test]
async fn an_orphan_pod_matching_the_selector_is_adopted() {
    let e = env("cs-adopt").await;
    let orphan: Pod = serde_json::from_value(json!({
        "metadata": {"name": "stray", "labels": {"app": "web"}},
        "spec": {"terminationGracePeriodSeconds": 3,
                 "containers": [{"name": "app", "image": image("app:v1"), "imagePullPolicy": "IfNotPresent"}]}
    }))
    .expect("pod literal");
    e.pods
        .create(&PostParams::default(), &orphan)
        .await
        .expect("create orphan");
    e.clonesets
        .create(&PostParams::default(), &cloneset("web", 2, "v1", json!({})))
        .await
        .expect("create");
    let owned = support::eventually("the orphan owned by the CloneSet", MINUTE, || async {
        let p = e.pods.get("stray").await.map_err(|e| e.to_string())?;
        p.metadata
            .owner_references
            .unwrap_or_default()
            .into_iter()
            .find(|o| o.kind == "CloneSet" && o.name == "web" && o.controller == Some(true))
            .ok_or_else(|| "not adopted yet".to_string())
    })
    .await;
    assert_eq!(owned.name, "web");
    let cs = wait_cs(
        &e,
        "web",
        "2 replicas counted, the orphan among them",
        MINUTE,
        |cs| cs.status.as_ref().is_some_and(|s| s.replicas == 2),
    )
    .await;
    assert_eq!(
        live_pods(&e, "web").await.len(),
        2,
        "only one pod was created next to the adopted one: {:?}",
        cs.status
    );
}

// ---- in-place features OpenKruise has with its gates on (kruise-api.md §2.6) -------------------

/// A CloneSet whose pods carry label `version` (read by the `app` container's env `VERSION`),
/// with the given `app` resources and env, and a `sidecar` with `sidecar_env`.
fn feature_cloneset(
    name: &str,
    replicas: i32,
    app_env: Value,
    resources: Value,
    sidecar_env: Value,
) -> CloneSet {
    serde_json::from_value(json!({
        "apiVersion": "apps.kruise.io/v1alpha1", "kind": "CloneSet",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name, "version": "1"}},
                "spec": feature_pod_spec(&image("app:v1"), &image("sidecar:v1"), app_env, resources, sidecar_env)
            },
            "updateStrategy": {"type": "InPlaceIfPossible", "maxUnavailable": 1}
        }
    }))
    .expect("valid CloneSet literal")
}

fn feature_pod_spec(
    app: &str,
    sidecar: &str,
    app_env: Value,
    resources: Value,
    sidecar_env: Value,
) -> Value {
    json!({
        "terminationGracePeriodSeconds": 3,
        "containers": [
            {"name": "app", "image": app, "imagePullPolicy": "IfNotPresent", "env": app_env,
             "resources": resources,
             "readinessProbe": {"httpGet": {"path": "/readyz", "port": 8080}, "periodSeconds": 1}},
            {"name": "sidecar", "image": sidecar, "imagePullPolicy": "IfNotPresent", "env": sidecar_env}
        ]
    })
}

fn version_env() -> Value {
    json!([{"name": "VERSION", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['version']"}}}])
}

/// Each live pod's UID → (IP, restart count per container).
async fn pod_identities(e: &Env, name: &str) -> BTreeMap<String, (String, BTreeMap<String, i32>)> {
    live_pods(e, name)
        .await
        .iter()
        .map(|p| {
            let st = p.status.clone().unwrap_or_default();
            let restarts = st
                .container_statuses
                .unwrap_or_default()
                .into_iter()
                .map(|c| (c.name, c.restart_count))
                .collect();
            (
                p.metadata.uid.clone().unwrap_or_default(),
                (st.pod_ip.unwrap_or_default(), restarts),
            )
        })
        .collect()
}

/// Waits until the update has reached every pod and the CloneSet counts them all ready.
async fn rolled_out(e: &Env, name: &str, replicas: i32, what: &str) -> CloneSet {
    wait_cs(e, name, what, 3 * MINUTE, |cs| {
        let s = cs.status.clone().unwrap_or_default();
        status_is(cs, replicas)
            && s.update_revision.is_some()
            && s.update_revision == s.current_revision
    })
    .await
}

fn annotation_json(p: &Pod, key: &str) -> Value {
    let raw = p
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .unwrap_or_else(|| panic!("pod {:?} has no {key}", p.metadata.name));
    serde_json::from_str(raw).unwrap_or_else(|e| panic!("{key} is not JSON: {e}"))
}

#[tokio::test]
async fn env_from_a_changed_label_restarts_only_the_container_that_reads_it() {
    let e = env("cs-envmeta").await;
    let _agent = support::GraftNodeAgent::start_for_crr(&e.ns.name);
    e.clonesets
        .create(
            &PostParams::default(),
            &feature_cloneset("web", 2, version_env(), json!({}), json!([])),
        )
        .await
        .expect("create");
    settled(&e, "web", 2).await;
    let before = pod_identities(&e, "web").await;
    let watcher = PodWatcher::start(&e.client, &e.ns.name, "app=web");
    tokio::time::sleep(Duration::from_millis(500)).await;
    patch_spec(
        &e,
        "web",
        json!({"template": {"metadata": {"labels": {"app": "web", "version": "2"}}}}),
    )
    .await;
    rolled_out(&e, "web", 2, "both pods at version=2, ready").await;
    let after = live_pods(&e, "web").await;
    assert_eq!(after.len(), 2);
    for p in &after {
        let uid = p.metadata.uid.clone().unwrap_or_default();
        let (ip, _) = before
            .get(&uid)
            .unwrap_or_else(|| panic!("pod {uid} is new: not updated in place"));
        assert_eq!(
            p.status.as_ref().and_then(|s| s.pod_ip.as_ref()),
            Some(ip),
            "same IP"
        );
        assert_eq!(
            p.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("version"))
                .map(String::as_str),
            Some("2")
        );
        assert_eq!(
            container(p, "app").map(|c| c.restart_count),
            Some(1),
            "app restarted once"
        );
        assert_eq!(
            container(p, "sidecar").map(|c| c.restart_count),
            Some(0),
            "sidecar untouched"
        );
        let state = annotation_json(p, "apps.kruise.io/inplace-update-state");
        assert_eq!(state["updateEnvFromMetadata"], json!(true), "{state}");
        // The node agent reports the restarted container with the env of the new label.
        let meta = annotation_json(p, "apps.kruise.io/runtime-containers-meta");
        let app_meta = meta["containers"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["name"] == "app"))
            .unwrap_or_else(|| panic!("no app in {meta}"));
        assert_eq!(
            app_meta["containerID"].as_str(),
            container(p, "app").and_then(|c| c.container_id.as_deref()),
            "{meta}"
        );
        let spec_app = &p.spec.as_ref().expect("spec").containers[0];
        let labels = p.metadata.labels.clone().unwrap_or_default();
        let annotations = p.metadata.annotations.clone().unwrap_or_default();
        assert_eq!(
            app_meta["hashes"]["extractedEnvFromMetadataHash"].as_u64(),
            Some(graft_api::annotations::expected_env_from_metadata_hash(
                spec_app,
                &labels,
                &annotations
            )),
            "the app container runs with VERSION=2: {meta}"
        );
    }
    // While it happened: no pod was replaced, the sidecar never restarted, one pod at a time.
    let history = watcher.history();
    for s in &history {
        assert!(
            !s.deleted && !s.deleting,
            "a pod was deleted:\n{}",
            timeline(&history)
        );
        assert!(
            before.contains_key(&s.uid),
            "a new pod appeared:\n{}",
            timeline(&history)
        );
        let sidecar = s.containers.iter().find(|c| c.0 == "sidecar").map(|c| c.3);
        assert!(
            sidecar.is_none_or(|r| r == 0),
            "sidecar restarted:\n{}",
            timeline(&history)
        );
    }
    let (worst, _) = worst_case(&history, 2, "app:v1");
    assert!(worst <= 1, "maxUnavailable 1 (observed {worst})");
}

#[tokio::test]
async fn a_cpu_and_memory_resize_is_in_place_and_keeps_uid_and_restart_count() {
    let e = env("cs-resize").await;
    let small = json!({"requests": {"cpu": "50m", "memory": "32Mi"}, "limits": {"cpu": "100m", "memory": "64Mi"}});
    let big = json!({"requests": {"cpu": "60m", "memory": "48Mi"}, "limits": {"cpu": "150m", "memory": "96Mi"}});
    e.clonesets
        .create(
            &PostParams::default(),
            &feature_cloneset("web", 2, json!([]), small, json!([])),
        )
        .await
        .expect("create");
    settled(&e, "web", 2).await;
    let before = pod_identities(&e, "web").await;
    let watcher = PodWatcher::start(&e.client, &e.ns.name, "app=web");
    tokio::time::sleep(Duration::from_millis(500)).await;
    patch_spec(
        &e,
        "web",
        json!({"template": {"spec": feature_pod_spec(&image("app:v1"), &image("sidecar:v1"), json!([]), big.clone(), json!([]))}}),
    )
    .await;
    rolled_out(&e, "web", 2, "both pods resized, ready").await;
    let after = live_pods(&e, "web").await;
    assert_eq!(after.len(), 2);
    let want: k8s_openapi::api::core::v1::ResourceRequirements =
        serde_json::from_value(big).expect("resources");
    for p in &after {
        let uid = p.metadata.uid.clone().unwrap_or_default();
        let (ip, _) = before
            .get(&uid)
            .unwrap_or_else(|| panic!("pod {uid} is new: not resized in place"));
        assert_eq!(
            p.status.as_ref().and_then(|s| s.pod_ip.as_ref()),
            Some(ip),
            "same IP"
        );
        let app = container(p, "app").expect("app status");
        assert_eq!(app.restart_count, 0, "app not restarted");
        assert_eq!(container(p, "sidecar").map(|c| c.restart_count), Some(0));
        assert_eq!(
            p.spec.as_ref().map(|s| s.containers[0].resources.clone()),
            Some(Some(want.clone())),
            "the pod spec has the new resources"
        );
        assert_eq!(
            app.resources
                .as_ref()
                .map(|r| (r.limits.clone(), r.requests.clone())),
            Some((want.limits.clone(), want.requests.clone())),
            "the kubelet reports them applied"
        );
        let state = annotation_json(p, "apps.kruise.io/inplace-update-state");
        assert_eq!(state["updateResources"], json!(true), "{state}");
    }
    // While it happened: no pod replaced, no container restarted, and no pod taken out of service
    // (a resize that restarts nothing does not drain, as OpenKruise does).
    let history = watcher.history();
    for s in &history {
        assert!(
            !s.deleted && !s.deleting,
            "a pod was deleted:\n{}",
            timeline(&history)
        );
        assert!(
            before.contains_key(&s.uid),
            "a new pod appeared:\n{}",
            timeline(&history)
        );
        assert!(
            s.containers.iter().all(|c| c.3 == 0),
            "a container restarted:\n{}",
            timeline(&history)
        );
    }
    let (worst, _) = worst_case(&history, 2, "app:v1");
    assert_eq!(
        worst,
        0,
        "no pod left service during the resize:\n{}",
        timeline(&history)
    );
}

#[tokio::test]
async fn launch_priority_orders_the_in_place_restarts() {
    let e = env("cs-priority").await;
    let high = json!([{"name": "KRUISE_CONTAINER_PRIORITY", "value": "10"}]);
    e.clonesets
        .create(
            &PostParams::default(),
            &feature_cloneset("web", 2, json!([]), json!({}), high.clone()),
        )
        .await
        .expect("create");
    settled(&e, "web", 2).await;
    let before = pod_identities(&e, "web").await;
    let watcher = PodWatcher::start(&e.client, &e.ns.name, "app=web");
    tokio::time::sleep(Duration::from_millis(500)).await;
    patch_spec(
        &e,
        "web",
        json!({"template": {"spec": feature_pod_spec(&image("app:v2"), &image("sidecar:v2"), json!([]), json!({}), high)}}),
    )
    .await;
    rolled_out(&e, "web", 2, "both containers of both pods at v2, ready").await;
    let after = live_pods(&e, "web").await;
    for p in &after {
        let uid = p.metadata.uid.clone().unwrap_or_default();
        assert!(
            before.contains_key(&uid),
            "pod {uid} is new: not updated in place"
        );
        assert_eq!(container(p, "app").map(|c| c.restart_count), Some(1));
        assert_eq!(container(p, "sidecar").map(|c| c.restart_count), Some(1));
        let state = annotation_json(p, "apps.kruise.io/inplace-update-state");
        let batches: Vec<Value> = state["containerBatchesRecord"]
            .as_array()
            .unwrap_or_else(|| panic!("no batches in {state}"))
            .iter()
            .map(|b| b["containers"].clone())
            .collect();
        assert_eq!(batches, vec![json!(["sidecar"]), json!(["app"])], "{state}");
    }
    // While it happened, per pod: the sidecar (priority 10) ran v2 before the app did, and the app
    // never ran v2 while the sidecar still ran v1.
    let history = watcher.history();
    let runs = |s: &PodState, c: &str, tag: &str| {
        s.containers
            .iter()
            .any(|x| x.0 == c && x.1.ends_with(&format!("{c}:{tag}")))
    };
    for uid in before.keys() {
        let states: Vec<PodState> = history.iter().filter(|s| &s.uid == uid).cloned().collect();
        for s in &states {
            assert!(
                !(runs(s, "app", "v2") && runs(s, "sidecar", "v1")),
                "app restarted before the sidecar:\n{}",
                timeline(&history)
            );
        }
        assert!(
            states
                .iter()
                .any(|s| runs(s, "sidecar", "v2") && runs(s, "app", "v1")),
            "the sidecar was never updated alone first:\n{}",
            timeline(&history)
        );
    }
}

#[tokio::test]
async fn an_infeasible_resize_waits_in_place_and_a_feasible_one_then_completes() {
    // OpenKruise v1.9 (test/e2e/apps/v1alpha1/inplace_vpa.go): a resize the node refuses leaves
    // the pod as it is (PodResizePending, reason Infeasible), no recreate; the next template
    // change resizes it in place.
    let e = env("cs-infeasible").await;
    let small = json!({"requests": {"cpu": "50m", "memory": "32Mi"}, "limits": {"cpu": "100m", "memory": "64Mi"}});
    let huge = json!({"requests": {"cpu": "500", "memory": "32Mi"}, "limits": {"cpu": "1000", "memory": "64Mi"}});
    let fine = json!({"requests": {"cpu": "70m", "memory": "32Mi"}, "limits": {"cpu": "140m", "memory": "64Mi"}});
    e.clonesets
        .create(
            &PostParams::default(),
            &feature_cloneset("web", 1, json!([]), small, json!([])),
        )
        .await
        .expect("create");
    settled(&e, "web", 1).await;
    let before = pod_identities(&e, "web").await;
    let watcher = PodWatcher::start(&e.client, &e.ns.name, "app=web");
    let spec_with = |r: &Value| json!({"template": {"spec": feature_pod_spec(&image("app:v1"), &image("sidecar:v1"), json!([]), r.clone(), json!([]))}});
    patch_spec(&e, "web", spec_with(&huge)).await;
    let refused = support::eventually("the kubelet to refuse the resize", 2 * MINUTE, || async {
        let pods = live_pods(&e, "web").await;
        pods.into_iter()
            .find(|p| {
                p.status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|cs| {
                        cs.iter().any(|c| {
                            c.type_ == "PodResizePending"
                                && c.status == "True"
                                && c.reason.as_deref() == Some("Infeasible")
                        })
                    })
            })
            .ok_or_else(|| "no pod with PodResizePending=Infeasible yet".to_string())
    })
    .await;
    assert!(
        before.contains_key(&refused.metadata.uid.clone().unwrap_or_default()),
        "the refused pod is the original one"
    );
    // It stays: a few seconds later nothing was recreated.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        pod_identities(&e, "web").await.keys().collect::<Vec<_>>(),
        before.keys().collect::<Vec<_>>(),
        "no pod recreated for an infeasible resize"
    );
    patch_spec(&e, "web", spec_with(&fine)).await;
    rolled_out(&e, "web", 1, "the pod resized to the feasible resources").await;
    let after = live_pods(&e, "web").await;
    assert_eq!(after.len(), 1);
    let p = &after[0];
    assert!(
        before.contains_key(&p.metadata.uid.clone().unwrap_or_default()),
        "same pod"
    );
    let want: k8s_openapi::api::core::v1::ResourceRequirements =
        serde_json::from_value(fine).expect("resources");
    assert_eq!(
        container(p, "app")
            .and_then(|c| c.resources.as_ref())
            .map(|r| r.limits.clone()),
        Some(want.limits.clone()),
        "the kubelet applied the feasible resources"
    );
    let history = watcher.history();
    for s in &history {
        assert!(
            !s.deleted && !s.deleting,
            "a pod was deleted:\n{}",
            timeline(&history)
        );
        assert!(
            s.containers.iter().all(|c| c.3 == 0),
            "a container restarted:\n{}",
            timeline(&history)
        );
    }
}

// ---- issue 13: pre-download, exclude PreparingDelete, volumeClaimTemplates recreate -----------

fn label_of(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    key: &str,
) -> Option<String> {
    meta.labels.as_ref().and_then(|l| l.get(key).cloned())
}

async fn revision_named(e: &Env, name: &str) -> ControllerRevision {
    e.ns.api::<ControllerRevision>()
        .get(name)
        .await
        .unwrap_or_else(|err| panic!("revision {name}: {err}"))
}

#[tokio::test]
async fn pre_download_creates_the_image_pull_job_openkruise_would_for_the_pods_not_yet_updated() {
    use graft_api::apps::v1alpha1::ImagePullJob;
    let e = env("cs-predl").await;
    // More than 3 replicas and a partition: kruise pre-downloads for such a rollout.
    e.clonesets
        .create(
            &PostParams::default(),
            &cloneset(
                "web",
                4,
                "v1",
                json!({"type": "InPlaceIfPossible", "partition": 2, "maxUnavailable": 1}),
            ),
        )
        .await
        .expect("create");
    let v1 = settled(&e, "web", 4).await;
    let current = v1
        .status
        .and_then(|s| s.update_revision)
        .expect("an update revision");
    patch_spec(&e, "web", containers_with(&image("app:v2"))).await;
    let cs = wait_cs(
        &e,
        "web",
        "2 of 4 pods updated (partition 2), all available",
        3 * MINUTE,
        |cs| {
            let s = cs.status.clone().unwrap_or_default();
            s.observed_generation == cs.metadata.generation.unwrap_or(-1)
                && s.updated_replicas == 2
                && s.updated_available_replicas == 2
                && s.available_replicas == 4
        },
    )
    .await;
    let update = cs
        .status
        .clone()
        .and_then(|s| s.update_revision)
        .expect("update revision");
    assert_ne!(update, current);
    let hash = update.rsplit('-').next().unwrap_or_default().to_string();

    let jobs: Api<ImagePullJob> = e.ns.api();
    let listed = jobs
        .list(&ListParams::default())
        .await
        .expect("list jobs")
        .items;
    let names: Vec<String> = listed
        .iter()
        .map(|j| j.metadata.name.clone().unwrap_or_default())
        .collect();
    assert_eq!(
        names,
        vec![format!("{update}-app")],
        "one job, for the changed container only, named <updateRevision>-<container>"
    );
    let job = &listed[0];
    let owner = job
        .metadata
        .owner_references
        .as_ref()
        .and_then(|o| o.first())
        .expect("an owner reference");
    assert_eq!(
        (
            owner.kind.as_str(),
            owner.name.as_str(),
            owner.controller,
            owner.uid.as_str()
        ),
        (
            "CloneSet",
            "web",
            Some(true),
            cs.metadata.uid.as_deref().unwrap_or_default()
        )
    );
    assert_eq!(
        label_of(&job.metadata, "controller.kubernetes.io/hash"),
        Some(hash.clone())
    );
    assert_eq!(label_of(&job.metadata, "app"), Some("web".into()));
    let spec = serde_json::to_value(&job.spec).expect("job spec as JSON");
    assert_eq!(spec["image"], json!(image("app:v2")));
    assert_eq!(
        spec["podSelector"],
        json!({"matchLabels": {"app": "web"}, "matchExpressions": [
            {"key": "controller-revision-hash", "operator": "NotIn", "values": [update, hash]}
        ]})
    );
    assert_eq!(spec["parallelism"], json!(1));
    assert_eq!(
        spec["pullPolicy"],
        json!({"timeoutSeconds": 300, "backoffLimit": 1})
    );
    assert_eq!(
        spec["completionPolicy"],
        json!({"type": "Always", "ttlSecondsAfterFinished": 600})
    );
    // The selector picks exactly the pods the partition keeps at the old revision: their nodes
    // are the ones that pull.
    let selected: BTreeSet<String> = e
        .pods
        .list(&ListParams::default().labels(&format!(
            "app=web,controller-revision-hash notin ({update},{hash})"
        )))
        .await
        .expect("list pods")
        .items
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .map(|p| {
            format!(
                "{}@{}",
                p.metadata.name.clone().unwrap_or_default(),
                p.spec
                    .as_ref()
                    .and_then(|s| s.node_name.clone())
                    .unwrap_or_default()
            )
        })
        .collect();
    let old: BTreeSet<String> = live_pods(&e, "web")
        .await
        .iter()
        .filter(|p| {
            label_of(&p.metadata, "controller-revision-hash").as_deref() == Some(current.as_str())
        })
        .map(|p| {
            format!(
                "{}@{}",
                p.metadata.name.clone().unwrap_or_default(),
                support::node_name()
            )
        })
        .collect();
    assert_eq!(
        selected, old,
        "the job's pods are the 2 not-yet-updated ones"
    );
    assert_eq!(old.len(), 2);
    assert_eq!(
        label_of(
            &revision_named(&e, &update).await.metadata,
            "apps.kruise.io/pre-predownload-created"
        ),
        Some("true".into()),
        "the update revision is marked, so the jobs are made once"
    );
    let events = cloneset_events(&e, "web").await;
    assert!(
        events
            .iter()
            .any(|(reason, message)| reason == "CreatedImagePullJob"
                && message
                    == &format!(
                        "created ImagePullJob {update}-app for image: {}",
                        image("app:v2")
                    )),
        "kruise's event: {events:?}"
    );

    // The rollout finishes: the revisions converge and the job goes.
    patch_spec(&e, "web", json!({"updateStrategy": {"partition": 0}})).await;
    wait_cs(&e, "web", "all 4 pods updated", 3 * MINUTE, |cs| {
        let s = cs.status.clone().unwrap_or_default();
        status_is(cs, 4) && s.current_revision == s.update_revision
    })
    .await;
    support::eventually("the pre-download job deleted", MINUTE, || async {
        let left: Vec<String> = jobs
            .list(&ListParams::default())
            .await
            .map(|l| {
                l.items
                    .iter()
                    .filter(|j| j.metadata.deletion_timestamp.is_none())
                    .filter_map(|j| j.metadata.name.clone())
                    .collect()
            })
            .unwrap_or_else(|err| vec![err.to_string()]);
        if left.is_empty() {
            Ok(())
        } else {
            Err(format!("jobs left: {left:?}"))
        }
    })
    .await;

    // A ReCreate rollout needs no pre-download: the revision is marked ignored, no job is made.
    patch_spec(
        &e,
        "web",
        json!({"updateStrategy": {"type": "ReCreate", "partition": 2}}),
    )
    .await;
    patch_spec(&e, "web", containers_with(&image("app:v3"))).await;
    let cs = wait_cs(&e, "web", "a new update revision", MINUTE, |cs| {
        cs.status
            .as_ref()
            .and_then(|s| s.update_revision.as_deref())
            != Some(update.as_str())
    })
    .await;
    let v3 = cs
        .status
        .and_then(|s| s.update_revision)
        .unwrap_or_default();
    support::eventually("the ReCreate revision marked ignored", MINUTE, || async {
        let r = revision_named(&e, &v3).await;
        match label_of(&r.metadata, "apps.kruise.io/image-predownload-ignored") {
            Some(v) if v == "true" => Ok(()),
            other => Err(format!("labels {:?} ({other:?})", r.metadata.labels)),
        }
    })
    .await;
    let listed = jobs
        .list(&ListParams::default())
        .await
        .expect("list jobs")
        .items;
    assert!(
        listed.is_empty(),
        "no job for a ReCreate rollout: {:?}",
        listed
            .iter()
            .map(|j| j.metadata.name.clone())
            .collect::<Vec<_>>()
    );
}

/// The pods of `name` as (name, lifecycle state), not terminating.
async fn pod_states(e: &Env, name: &str) -> Vec<(String, String)> {
    live_pods(e, name)
        .await
        .iter()
        .map(|p| {
            (
                p.metadata.name.clone().unwrap_or_default(),
                label_of(&p.metadata, "lifecycle.apps.kruise.io/state").unwrap_or_default(),
            )
        })
        .collect()
}

#[tokio::test]
async fn excluding_preparing_delete_pods_from_scaling_creates_the_replacement_while_the_hook_holds()
{
    let e = env("cs-exclpd").await;
    let make = |name: &str, exclude: bool| {
        let mut cs = cloneset(name, 2, "v1", json!({}));
        cs.spec
            .template
            .metadata
            .get_or_insert_with(Default::default)
            .labels = Some(BTreeMap::from([
            ("app".into(), name.into()),
            ("hold".into(), "true".into()),
        ]));
        cs.spec.lifecycle = serde_json::from_value(json!({
            "preDelete": {"labelsHandler": {"hold": "true"}}
        }))
        .expect("lifecycle literal");
        if exclude {
            cs.metadata.labels = Some(BTreeMap::from([(
                "apps.kruise.io/cloneset-scaling-exclude-preparing-delete".into(),
                "true".into(),
            )]));
        }
        cs
    };
    for (name, exclude) in [("excl", true), ("incl", false)] {
        e.clonesets
            .create(&PostParams::default(), &make(name, exclude))
            .await
            .expect("create");
    }
    settled(&e, "excl", 2).await;
    settled(&e, "incl", 2).await;

    // One pod of each is specified for deletion; the preDelete hook holds it in PreparingDelete.
    let mut held = BTreeMap::new();
    for name in ["excl", "incl"] {
        let victim = live_pods(&e, name).await[0]
            .metadata
            .name
            .clone()
            .unwrap_or_default();
        patch_spec(
            &e,
            name,
            json!({"scaleStrategy": {"podsToDelete": [victim]}}),
        )
        .await;
        held.insert(name, victim);
    }
    for name in ["excl", "incl"] {
        let victim = held[name].clone();
        support::eventually(
            "the specified pod held in PreparingDelete",
            MINUTE,
            || async {
                let states = pod_states(&e, name).await;
                if states
                    .iter()
                    .any(|(n, s)| n == &victim && s == "PreparingDelete")
                {
                    Ok(())
                } else {
                    Err(format!("{name}: {states:?}"))
                }
            },
        )
        .await;
    }
    // Excluded from the count: a replacement is created although the held pod is still there.
    support::eventually("excl: 2 pods besides the held one", MINUTE, || async {
        let states = pod_states(&e, "excl").await;
        let others = states.iter().filter(|(n, _)| n != &held["excl"]).count();
        if others == 2 && states.len() == 3 {
            Ok(())
        } else {
            Err(format!("{states:?}"))
        }
    })
    .await;
    // Counted: the CloneSet without the label waits for the hook (as OpenKruise by default).
    tokio::time::sleep(Duration::from_secs(5)).await;
    let states = pod_states(&e, "incl").await;
    assert_eq!(
        states.len(),
        2,
        "incl: the held pod still counts as a replica, no replacement yet: {states:?}"
    );
    // Releasing the hooks lets the held pods go; both end with 2 pods.
    for name in ["excl", "incl"] {
        e.pods
            .patch(
                &held[name],
                &PatchParams::default(),
                &Patch::Merge(&json!({"metadata": {"labels": {"hold": null}}})),
            )
            .await
            .expect("release the hook");
    }
    settled(&e, "excl", 2).await;
    settled(&e, "incl", 2).await;
    for name in ["excl", "incl"] {
        let names: Vec<String> = pod_states(&e, name)
            .await
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert!(
            !names.contains(&held[name]),
            "{name}: the released pod is gone: {names:?}"
        );
    }
}

fn vct(size: &str) -> Value {
    json!([{
        "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}}
    }])
}

async fn pvc_sizes(e: &Env) -> BTreeMap<String, String> {
    use k8s_openapi::api::core::v1::PersistentVolumeClaim;
    e.ns.api::<PersistentVolumeClaim>()
        .list(&ListParams::default())
        .await
        .expect("list PVCs")
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .map(|p| {
            let size = p
                .spec
                .and_then(|s| s.resources)
                .and_then(|r| r.requests)
                .and_then(|r| r.get("storage").map(|q| q.0.clone()))
                .unwrap_or_default();
            (p.metadata.name.unwrap_or_default(), size)
        })
        .collect()
}

#[tokio::test]
async fn a_volume_claim_template_change_recreates_the_pods_an_image_change_alone_does_not() {
    let e = env("cs-vct").await;
    let mut cs = cloneset(
        "web",
        2,
        "v1",
        json!({"type": "InPlaceIfPossible", "maxUnavailable": 1}),
    );
    cs.spec.volume_claim_templates = serde_json::from_value(vct("16Mi")).expect("vct literal");
    e.clonesets
        .create(&PostParams::default(), &cs)
        .await
        .expect("create");
    let first = settled(&e, "web", 2).await;
    let r1 = first
        .status
        .and_then(|s| s.update_revision)
        .expect("revision");
    let hash_of = |r: &ControllerRevision| {
        r.metadata.annotations.as_ref().and_then(|a| {
            a.get("kruise.io/cloneset-volumeclaimtemplate-hash")
                .cloned()
        })
    };
    let h1 = hash_of(&revision_named(&e, &r1).await).expect("the revision carries the VCT hash");
    assert!(h1.parse::<u32>().is_ok(), "a decimal FNV hash: {h1}");
    let uids = |pods: &[Pod]| -> BTreeSet<String> {
        pods.iter().filter_map(|p| p.metadata.uid.clone()).collect()
    };
    let before = uids(&live_pods(&e, "web").await);

    // New image and bigger volumes: the pods are recreated (in place would keep the old PVCs).
    let mut spec = containers_with(&image("app:v2"));
    spec["volumeClaimTemplates"] = vct("32Mi");
    patch_spec(&e, "web", spec).await;
    let second = wait_cs(
        &e,
        "web",
        "both pods at the new revision",
        3 * MINUTE,
        |cs| {
            let s = cs.status.clone().unwrap_or_default();
            status_is(cs, 2)
                && s.update_revision != Some(r1.clone())
                && s.current_revision == s.update_revision
        },
    )
    .await;
    let r2 = second
        .status
        .and_then(|s| s.update_revision)
        .unwrap_or_default();
    let h2 = hash_of(&revision_named(&e, &r2).await).expect("hash on the new revision");
    assert_ne!(h1, h2, "the hash follows the templates");
    let recreated = live_pods(&e, "web").await;
    assert!(
        uids(&recreated).is_disjoint(&before),
        "every pod was recreated, none updated in place"
    );
    for p in &recreated {
        let app = container(p, "app").expect("app status");
        assert_eq!(app.restart_count, 0, "a new pod, not a restarted container");
    }
    support::eventually("every PVC at 32Mi", MINUTE, || async {
        let sizes = pvc_sizes(&e).await;
        if sizes.len() == 2 && sizes.values().all(|s| s == "32Mi") {
            Ok(())
        } else {
            Err(format!("{sizes:?}"))
        }
    })
    .await;

    // Back to v1 with the same volumes: a rollback to r1, whose hash becomes today's, in place.
    let before = uids(&recreated);
    patch_spec(&e, "web", containers_with(&image("app:v1"))).await;
    wait_cs(
        &e,
        "web",
        "both pods back at the first revision",
        3 * MINUTE,
        |cs| {
            let s = cs.status.clone().unwrap_or_default();
            status_is(cs, 2)
                && s.update_revision == Some(r1.clone())
                && s.current_revision == s.update_revision
        },
    )
    .await;
    assert_eq!(
        hash_of(&revision_named(&e, &r1).await),
        Some(h2),
        "the rollback carried the hash over"
    );
    let after = live_pods(&e, "web").await;
    assert_eq!(uids(&after), before, "same pods: updated in place");
    for p in &after {
        assert_eq!(
            container(p, "app").map(|c| c.restart_count),
            Some(1),
            "app restarted in place"
        );
    }
}

#[tokio::test]
async fn raising_the_partition_rolls_updated_pods_back_in_place() {
    let e = env("cs-rollback").await;
    e.clonesets
        .create(
            &PostParams::default(),
            &cloneset(
                "web",
                4,
                "v1",
                json!({"type": "InPlaceIfPossible", "maxUnavailable": 1}),
            ),
        )
        .await
        .expect("create");
    let first = settled(&e, "web", 4).await;
    let r1 = first
        .status
        .and_then(|s| s.update_revision)
        .expect("revision");
    let uids: BTreeSet<String> = live_pods(&e, "web")
        .await
        .iter()
        .filter_map(|p| p.metadata.uid.clone())
        .collect();

    // v2 for all but one pod (partition 1), then the partition goes up to 3: two of the three
    // updated pods go back to v1, in place (CloneSetPartitionRollback, as OpenKruise with every
    // gate on).
    let mut spec = containers_with(&image("app:v2"));
    spec["updateStrategy"] =
        json!({"type": "InPlaceIfPossible", "maxUnavailable": 1, "partition": 1});
    patch_spec(&e, "web", spec).await;
    wait_cs(&e, "web", "3 of 4 at v2", 3 * MINUTE, |cs| {
        let s = cs.status.clone().unwrap_or_default();
        s.updated_ready_replicas == 3 && s.ready_replicas == 4
    })
    .await;
    let watcher = PodWatcher::start(&e.client, &e.ns.name, "app=web");
    tokio::time::sleep(Duration::from_millis(500)).await;
    patch_spec(
        &e,
        "web",
        json!({"updateStrategy": {"type": "InPlaceIfPossible", "maxUnavailable": 1, "partition": 3}}),
    )
    .await;
    let cs = wait_cs(&e, "web", "1 of 4 at v2, 3 back at v1", 3 * MINUTE, |cs| {
        let s = cs.status.clone().unwrap_or_default();
        s.updated_replicas == 1 && s.updated_ready_replicas == 1 && s.ready_replicas == 4
    })
    .await;
    let history = watcher.history();
    let s = cs.status.unwrap_or_default();
    assert_eq!(s.current_revision, Some(r1.clone()), "current stays v1");
    let images = pod_images(&e, "web").await;
    let v1 = images.values().filter(|i| i.ends_with("app:v1")).count();
    assert_eq!(v1, 3, "three pods back on v1: {images:?}");
    let pods = live_pods(&e, "web").await;
    let now: BTreeSet<String> = pods.iter().filter_map(|p| p.metadata.uid.clone()).collect();
    assert_eq!(
        now, uids,
        "the same pods: rolled back in place, none recreated"
    );
    // The pod partition 1 kept never restarted, the one still on v2 restarted once, the two that
    // went to v2 and back twice.
    let mut restarts: Vec<i32> = pods
        .iter()
        .map(|p| container(p, "app").map_or(-1, |c| c.restart_count))
        .collect();
    restarts.sort_unstable();
    assert_eq!(restarts, vec![0, 1, 2, 2], "app restarts per pod");
    let (worst_unavailable, _) = worst_case(&history, 4, "app:v2");
    assert!(
        worst_unavailable <= 1,
        "maxUnavailable 1 held during the rollback: {}\n{}",
        worst_unavailable,
        timeline(&history)
    );
}
