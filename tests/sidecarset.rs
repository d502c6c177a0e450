//! SidecarSet injection on the real cluster. A CloneSet's pods get their sidecars from graft's
//! CloneSet controller itself (no webhook configuration exists in that test); a Deployment's pods
//! get them through graft's pod webhook; with graft killed and its webhook configuration left in
//! place, a pod is still created at once, without the sidecar, and once graft is back each such
//! pod gets a `SidecarNotInjected` Event; the SidecarSet annotation
//! `graft.dev/recreate-not-injected: "true"` has the ones a controller owns recreated, injected.
//! A sidecar image change upgrades 6 CloneSet pods in place within partition and maxUnavailable;
//! a hot upgrade switches the twins while the sidecar's port answers every 100 ms probe; a
//! SidecarSet and a CloneSet rolling out on the same pods never update one pod twice at once and
//! keep both maxUnavailable limits.
//!
//! SidecarSets are cluster-scoped: each test's SidecarSet selects its own namespace only
//! (`namespaceSelector`), so it never touches another test's pods, and is deleted at the end.
#![cfg(feature = "cluster-tests")]

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use graft_api::apps::v1alpha1::CloneSet;
use graft_api::apps::v1beta1::sidecarset::SidecarSet;
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{DeleteParams, ListParams, PostParams};
use serde_json::{Value, json};
use support::{GraftControllers, TestNamespace, client, image, install_crds, wait_for};

const MINUTE: Duration = Duration::from_secs(60);

/// A SidecarSet named after the namespace, injecting a `log` sidecar into `app=<app>` pods of
/// that namespace only.
fn sidecarset(ns: &str, app: &str) -> SidecarSet {
    serde_json::from_value(json!({
        "apiVersion": "apps.kruise.io/v1beta1", "kind": "SidecarSet",
        "metadata": {"name": format!("{ns}-log")},
        "spec": {
            "selector": {"matchLabels": {"app": app}},
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}},
            "containers": [{"name": "log", "image": image("sidecar:v1"),
                            "imagePullPolicy": "IfNotPresent",
                            "env": [{"name": "ROLE", "value": "log"}]}]
        }
    }))
    .expect("valid SidecarSet literal")
}

/// The cluster-scoped SidecarSet of a test, deleted by [`Cleanup::delete`] at its end. One left
/// behind by a failed test selects only that test's namespace, which is gone with it.
struct Cleanup(Api<SidecarSet>, String);

impl Cleanup {
    async fn delete(self) {
        let _ = self.0.delete(&self.1, &DeleteParams::default()).await;
    }
}

async fn create_sidecarset(client: &kube::Client, ns: &str, app: &str) -> Cleanup {
    let api: Api<SidecarSet> = Api::all(client.clone());
    let set = sidecarset(ns, app);
    let name = set.metadata.name.clone().unwrap_or_default();
    api.create(&PostParams::default(), &set)
        .await
        .unwrap_or_else(|e| panic!("creating SidecarSet {name}: {e}"));
    Cleanup(api, name)
}

fn container_names(p: &Pod) -> Vec<String> {
    p.spec
        .iter()
        .flat_map(|s| s.containers.iter().map(|c| c.name.clone()))
        .collect()
}

fn annotation(p: &Pod, key: &str) -> Option<String> {
    p.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key).cloned())
}

/// The pod carries the `log` sidecar as OpenKruise's webhook writes it.
fn assert_injected(p: &Pod, set: &str) {
    let name = p.metadata.name.clone().unwrap_or_default();
    assert_eq!(
        container_names(p),
        vec!["log".to_string(), "app".to_string()],
        "{name}: the sidecar before the app container (podInjectPolicy BeforeAppContainer, the default)"
    );
    let log = p
        .spec
        .as_ref()
        .and_then(|s| s.containers.iter().find(|c| c.name == "log"))
        .expect("log container");
    let env: Vec<(String, Option<String>)> = log
        .env
        .iter()
        .flatten()
        .map(|e| (e.name.clone(), e.value.clone()))
        .collect();
    assert!(
        env.contains(&("IS_INJECTED".to_string(), Some("true".to_string()))),
        "{name}: IS_INJECTED=true: {env:?}"
    );
    let hash: Value = serde_json::from_str(
        &annotation(p, "kruise.io/sidecarset-hash").expect("sidecarset-hash annotation"),
    )
    .expect("sidecarset-hash is JSON");
    assert_eq!(hash[set]["sidecarSetName"], json!(set), "{name}: {hash}");
    assert_eq!(hash[set]["sidecarList"], json!(["log"]), "{name}: {hash}");
    assert!(hash[set]["hash"].as_str().is_some_and(|h| !h.is_empty()));
    assert!(
        annotation(p, "kruise.io/sidecarset-hash-without-image").is_some(),
        "{name}: hash-without-image"
    );
    assert_eq!(
        annotation(p, "kruise.io/sidecarset-injected-list").as_deref(),
        Some(set),
        "{name}: injected list"
    );
}

async fn ready_pods(pods: &Api<Pod>, selector: &str, n: usize) -> Vec<Pod> {
    support::eventually(
        &format!("{n} ready pods {selector}"),
        2 * MINUTE,
        || async {
            let list = pods
                .list(&ListParams::default().labels(selector))
                .await
                .map_err(|e| e.to_string())?;
            let ready: Vec<Pod> = list
                .items
                .into_iter()
                .filter(|p| {
                    p.status.as_ref().is_some_and(|s| {
                        s.conditions
                            .iter()
                            .flatten()
                            .any(|c| c.type_ == "Ready" && c.status == "True")
                    })
                })
                .collect();
            if ready.len() == n {
                Ok(ready)
            } else {
                Err(format!("{} ready", ready.len()))
            }
        },
    )
    .await
}

#[tokio::test]
async fn a_cloneset_pod_gets_its_sidecar_from_the_controller_without_any_webhook() {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "sidecar-cs").await;
    let set_guard = create_sidecarset(&client, &ns.name, "web").await;
    let _graft = GraftControllers::start(&ns.name);
    // No pod webhook applies to this namespace (other tests' configurations are narrowed to their
    // own namespaces; none is written without --admission-addr).
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let ns_labels = namespaces
        .get(&ns.name)
        .await
        .expect("the test namespace")
        .metadata
        .labels
        .unwrap_or_default();
    let configs: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    let pod_hooks: Vec<String> = configs
        .list(&ListParams::default())
        .await
        .expect("list webhook configurations")
        .items
        .iter()
        .flat_map(|c| c.webhooks.iter().flatten())
        .filter(|w| {
            w.namespace_selector
                .as_ref()
                .is_none_or(|sel| graft_api::selector::matches(sel, &ns_labels))
        })
        .filter(|w| {
            w.rules.iter().flatten().any(|r| {
                r.resources
                    .iter()
                    .flatten()
                    .any(|res| res == "pods" || res == "*")
            })
        })
        .map(|w| w.name.clone())
        .collect();
    assert!(
        pod_hooks.is_empty(),
        "no pod webhook applies to this namespace, so only the controller can inject: {pod_hooks:?}"
    );

    let cs: CloneSet = serde_json::from_value(json!({
        "apiVersion": "apps.kruise.io/v1alpha1", "kind": "CloneSet",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                         "spec": {"containers": [{"name": "app", "image": image("app:v1"),
                                                  "imagePullPolicy": "IfNotPresent"}]}},
            "updateStrategy": {"type": "InPlaceIfPossible"}
        }
    }))
    .expect("valid CloneSet literal");
    let clonesets: Api<CloneSet> = ns.api();
    clonesets
        .create(&PostParams::default(), &cs)
        .await
        .expect("create CloneSet");
    let pods: Api<Pod> = ns.api();
    let ready = ready_pods(&pods, "app=web", 2).await;
    let set = format!("{}-log", ns.name);
    for p in &ready {
        assert_injected(p, &set);
    }
    set_guard.delete().await;
}

#[tokio::test]
async fn a_deployment_pod_is_injected_by_the_webhook_and_with_graft_down_is_created_at_once_then_reported_and_recreated_on_request()
 {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "sidecar-hook").await;
    let set_guard = create_sidecarset(&client, &ns.name, "api").await;
    let port = support::free_host_port();
    let config_name = support::admission_config_name(&ns.name);
    let mut graft = GraftControllers::start_admitting(&ns.name, port, "hook");
    let configs: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    let config = wait_for(
        &configs,
        &config_name,
        "graft's webhook configuration with a caBundle",
        MINUTE,
        |c| {
            c.webhooks.as_ref().is_some_and(|w| !w.is_empty())
                && c.webhooks.iter().flatten().all(|w| {
                    w.client_config
                        .ca_bundle
                        .as_ref()
                        .is_some_and(|b| !b.0.is_empty())
                })
        },
    )
    .await;
    let pod_hook = config
        .webhooks
        .iter()
        .flatten()
        .find(|w| w.name == "mpod.graft.dev")
        .expect("the pod webhook");
    assert_eq!(pod_hook.failure_policy.as_deref(), Some("Ignore"));
    let pods: Api<Pod> = ns.api();
    let bare = |name: &str| -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {"app": "api"}},
            "spec": {"containers": [{"name": "app", "image": image("app:v1"),
                                     "imagePullPolicy": "IfNotPresent"}]}
        }))
        .expect("valid pod literal")
    };
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    // The API server calls the webhook once graft's server answers with the new CA.
    support::eventually("a dry-run pod create injected", MINUTE, || async {
        let got = pods
            .create(&dry, &bare("probe"))
            .await
            .map_err(|e| e.to_string())?;
        if container_names(&got).contains(&"log".to_string()) {
            Ok(())
        } else {
            Err(format!("containers {:?}", container_names(&got)))
        }
    })
    .await;

    // OpenKruise's validation at apply time: a second SidecarSet injecting a container of the
    // same name into the same pods is refused, with its message.
    let sets: Api<SidecarSet> = Api::all(client.clone());
    let mut clash = sidecarset(&ns.name, "api");
    clash.metadata.name = Some(format!("{}-clash", ns.name));
    let err = sets
        .create(&PostParams::default(), &clash)
        .await
        .expect_err("an overlapping SidecarSet with the same container is refused");
    eprintln!("refused: {err}");
    assert!(
        err.to_string().contains("is invalid") && err.to_string().contains("log"),
        "a message naming the container: {err}"
    );

    let deploy: Deployment = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "api"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "api"}},
            "template": {"metadata": {"labels": {"app": "api"}},
                         "spec": {"containers": [{"name": "app", "image": image("app:v1"),
                                                  "imagePullPolicy": "IfNotPresent"}]}}
        }
    }))
    .expect("valid Deployment literal");
    let deployments: Api<Deployment> = ns.api();
    deployments
        .create(&PostParams::default(), &deploy)
        .await
        .expect("create Deployment");
    let ready = ready_pods(&pods, "app=api", 1).await;
    assert_injected(&ready[0], &format!("{}-log", ns.name));

    // For the figures: a pod create through the webhook (graft up, injected).
    let started = Instant::now();
    let up = pods
        .create(&PostParams::default(), &bare("while-up"))
        .await
        .expect("creating a pod with graft up");
    eprintln!(
        "pod create with graft up (injected by the webhook): {:?}",
        started.elapsed()
    );
    assert!(container_names(&up).contains(&"log".to_string()));

    // graft dies with its configuration in place: a pod is created at once, without the sidecar.
    graft.kill();
    let started = Instant::now();
    let created = pods
        .create(&PostParams::default(), &bare("while-down"))
        .await
        .unwrap_or_else(|e| panic!("creating a pod with graft down must work: {e}"));
    let latency = started.elapsed();
    eprintln!("pod create with graft down: {latency:?}");
    assert!(
        latency < Duration::from_secs(2),
        "no webhook timeout wait (3 s) with graft down: {latency:?}"
    );
    assert_eq!(
        container_names(&created),
        vec!["app".to_string()],
        "admitted without the sidecar"
    );
    // A Deployment pod created while graft is down lacks the sidecar too.
    deployments
        .patch(
            "api",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&json!({"spec": {"replicas": 2}})),
        )
        .await
        .expect("scale the Deployment");
    let both = ready_pods(&pods, "app=api,pod-template-hash", 2).await;
    let missed: Vec<String> = both
        .iter()
        .filter(|p| !container_names(p).contains(&"log".to_string()))
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    assert_eq!(missed.len(), 1, "the new Deployment pod has no sidecar");

    // graft back: each such pod is reported on the pod itself.
    let _back = GraftControllers::start_admitting(&ns.name, port, "back");
    let events: Api<k8s_openapi::api::core::v1::Event> = ns.api();
    support::eventually(
        "a SidecarNotInjected Event on both pods",
        MINUTE,
        || async {
            let named: Vec<String> = events
                .list(&ListParams::default())
                .await
                .map_err(|e| e.to_string())?
                .items
                .into_iter()
                .filter(|e| e.reason.as_deref() == Some("SidecarNotInjected"))
                .filter_map(|e| e.involved_object.name)
                .collect();
            if named.contains(&"while-down".to_string()) && named.contains(&missed[0]) {
                Ok(())
            } else {
                Err(format!("events on {named:?}"))
            }
        },
    )
    .await;

    // The documented switch: the Deployment's pod is recreated with its sidecar; the bare pod,
    // which nothing would recreate, stays.
    sets.patch(
        &format!("{}-log", ns.name),
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(
            &json!({"metadata": {"annotations": {"graft.dev/recreate-not-injected": "true"}}}),
        ),
    )
    .await
    .expect("turn the switch on");
    support::eventually(
        "both Deployment pods with the sidecar",
        2 * MINUTE,
        || async {
            let list = pods
                .list(&ListParams::default().labels("app=api,pod-template-hash"))
                .await
                .map_err(|e| e.to_string())?;
            let live: Vec<&Pod> = list
                .items
                .iter()
                .filter(|p| p.metadata.deletion_timestamp.is_none())
                .collect();
            let injected = live
                .iter()
                .filter(|p| container_names(p).contains(&"log".to_string()))
                .count();
            if live.len() == 2 && injected == 2 {
                Ok(())
            } else {
                Err(format!("{} live, {injected} injected", live.len()))
            }
        },
    )
    .await;
    let bare_pod = pods.get("while-down").await.expect("the bare pod is kept");
    assert!(bare_pod.metadata.deletion_timestamp.is_none());
    set_guard.delete().await;
}

#[tokio::test]
async fn a_sidecar_image_change_upgrades_in_place_within_partition_and_max_unavailable() {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "sidecar-up").await;
    let mut set = sidecarset(&ns.name, "web");
    set.spec.update_strategy = serde_json::from_value(
        json!({"type": "RollingUpdate", "maxUnavailable": 2, "partition": 2}),
    )
    .expect("strategy literal");
    let sets: Api<SidecarSet> = Api::all(client.clone());
    let set_name = set.metadata.name.clone().unwrap_or_default();
    sets.create(&PostParams::default(), &set)
        .await
        .expect("create SidecarSet");
    let guard = Cleanup(sets.clone(), set_name.clone());
    let _graft = GraftControllers::start(&ns.name);
    let cs: CloneSet = serde_json::from_value(json!({
        "apiVersion": "apps.kruise.io/v1alpha1", "kind": "CloneSet",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 6,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                         "spec": {"containers": [{"name": "app", "image": image("app:v1"),
                                                  "imagePullPolicy": "IfNotPresent",
                                                  "readinessProbe": {"httpGet": {"path": "/readyz", "port": 8080}, "periodSeconds": 1}}]}},
            "updateStrategy": {"type": "InPlaceIfPossible"}
        }
    }))
    .expect("valid CloneSet literal");
    let clonesets: Api<CloneSet> = ns.api();
    clonesets
        .create(&PostParams::default(), &cs)
        .await
        .expect("create CloneSet");
    let pods: Api<Pod> = ns.api();
    let before = ready_pods(&pods, "app=web", 6).await;
    let identity = |ps: &[Pod]| -> std::collections::BTreeMap<String, String> {
        ps.iter()
            .map(|p| {
                (
                    p.metadata.uid.clone().unwrap_or_default(),
                    p.status
                        .as_ref()
                        .and_then(|s| s.pod_ip.clone())
                        .unwrap_or_default(),
                )
            })
            .collect()
    };
    let ids = identity(&before);
    wait_for(
        &sets,
        &set_name,
        "status: 6 matched, 6 updated and ready",
        MINUTE,
        |s| {
            s.status.as_ref().is_some_and(|st| {
                st.matched_pods == 6 && st.updated_pods == 6 && st.updated_ready_pods == 6
            })
        },
    )
    .await;

    let watcher = support::PodWatcher::start(&client, &ns.name, "app=web");
    tokio::time::sleep(Duration::from_millis(500)).await;
    sets.patch(
        &set_name,
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(&json!({"spec": {"containers": [
            {"name": "log", "image": image("sidecar:v2"), "imagePullPolicy": "IfNotPresent",
             "env": [{"name": "ROLE", "value": "log"}]}]}})),
    )
    .await
    .expect("patch the sidecar image");
    let done = wait_for(
        &sets,
        &set_name,
        "4 of 6 upgraded (partition 2) and ready",
        3 * MINUTE,
        |s| {
            s.status.as_ref().is_some_and(|st| {
                st.matched_pods == 6
                    && st.updated_pods == 4
                    && st.updated_ready_pods == 4
                    && st.ready_pods == 6
            })
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = ready_pods(&pods, "app=web", 6).await;
    assert_eq!(
        identity(&after),
        ids,
        "same pods, same IPs: upgraded in place"
    );
    let images: Vec<String> = after
        .iter()
        .filter_map(|p| {
            p.spec
                .as_ref()
                .and_then(|s| s.containers.iter().find(|c| c.name == "log"))
                .and_then(|c| c.image.clone())
        })
        .collect();
    let v2 = images.iter().filter(|i| i.ends_with("sidecar:v2")).count();
    assert_eq!(
        v2, 4,
        "partition 2 keeps two pods on v1: {images:?} {:?}",
        done.status
    );
    for p in &after {
        let st = p.status.as_ref().expect("status");
        let app = st
            .container_statuses
            .iter()
            .flatten()
            .find(|c| c.name == "app")
            .expect("app status");
        assert_eq!(app.restart_count, 0, "the app container never restarts");
    }
    // Never more than maxUnavailable 2 pods not ready at once.
    let history = watcher.history();
    let mut current: std::collections::BTreeMap<String, bool> = Default::default();
    let mut worst = 0;
    for s in &history {
        current.insert(s.uid.clone(), s.ready);
        if current.len() == 6 {
            worst = worst.max(current.values().filter(|r| !**r).count());
        }
    }
    assert!(worst <= 2, "at most 2 pods not ready at once, saw {worst}");
    guard.delete().await;
}

/// The commit's record in a GitSync's history.
fn commit_record<'a>(
    gs: &'a graft_api::graft::gitsync::GitSync,
    sha: &str,
) -> Option<&'a graft_api::graft::gitsync::CommitRecord> {
    gs.status
        .as_ref()?
        .history
        .as_ref()?
        .iter()
        .find(|h| h.sha == sha)
}

/// The SidecarSet of the Git test. It opts out of graft's admission webhooks: SidecarSets are
/// cluster-scoped, so the SidecarSet webhook of another test's graft (started and killed while
/// this test runs) would apply to it, and a dry run that the webhook defaulted once and not the
/// next time showed up as drift. This test is about graft's controller writing the hashes.
fn set_yaml(ns: &str, tag: &str) -> String {
    format!(
        "apiVersion: apps.kruise.io/v1beta1\nkind: SidecarSet\nmetadata:\n  name: {ns}-log\n  labels: {{graft.dev/admission: disabled}}\nspec:\n  selector:\n    matchLabels: {{app: web}}\n  namespaceSelector:\n    matchLabels: {{kubernetes.io/metadata.name: {ns}}}\n  updateStrategy: {{type: RollingUpdate, maxUnavailable: 1}}\n  containers:\n  - name: log\n    image: {}\n    imagePullPolicy: IfNotPresent\n",
        image(&format!("sidecar:{tag}"))
    )
}

fn web_yaml() -> String {
    format!(
        "apiVersion: apps.kruise.io/v1alpha1\nkind: CloneSet\nmetadata:\n  name: web\nspec:\n  replicas: 3\n  selector:\n    matchLabels: {{app: web}}\n  updateStrategy: {{type: InPlaceIfPossible, maxUnavailable: 1}}\n  template:\n    metadata:\n      labels: {{app: web}}\n    spec:\n      terminationGracePeriodSeconds: 2\n      containers:\n      - name: app\n        image: {}\n        imagePullPolicy: IfNotPresent\n",
        image("app:v1")
    )
}

#[tokio::test]
async fn a_commit_changing_the_sidecar_image_rolls_out_in_place_and_its_history_reaches_healthy() {
    use graft_api::graft::gitsync::{CommitPhase, GitSync};
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "sidecar-git").await;
    let guard = Cleanup(Api::all(client.clone()), format!("{}-log", ns.name));
    let _controllers = GraftControllers::start(&ns.name);
    let _sync = support::imagepull::start_sync(&ns.name);
    let repo = support::GitRepo::new(&ns.name);
    let c1 = repo.commit(
        "sidecar v1",
        &[
            ("log.yaml", set_yaml(&ns.name, "v1")),
            ("web.yaml", web_yaml()),
        ],
    );
    let gitsyncs: Api<GitSync> = ns.api();
    let gs: GitSync = serde_json::from_value(json!({
        "apiVersion": "graft.dev/v1alpha1", "kind": "GitSync",
        "metadata": {"name": "app"},
        "spec": {"url": repo.url(), "ref": {"branch": "main"}, "path": "deploy",
                 "interval": "2s", "prune": true, "prePull": {"mode": "Off"}}
    }))
    .expect("GitSync literal");
    gitsyncs
        .create(&PostParams::default(), &gs)
        .await
        .expect("create GitSync");
    wait_for(
        &gitsyncs,
        "app",
        "the first commit Healthy",
        2 * MINUTE,
        |g| commit_record(g, &c1).is_some_and(|h| h.phase == CommitPhase::Healthy),
    )
    .await;
    let pods: Api<Pod> = ns.api();
    let before: BTreeSet<String> = ready_pods(&pods, "app=web", 3)
        .await
        .iter()
        .filter_map(|p| p.metadata.uid.clone())
        .collect();

    let c2 = repo.commit(
        "sidecar v2",
        &[
            ("log.yaml", set_yaml(&ns.name, "v2")),
            ("web.yaml", web_yaml()),
        ],
    );
    let gs = wait_for(
        &gitsyncs,
        "app",
        "the second commit Healthy",
        3 * MINUTE,
        |g| commit_record(g, &c2).is_some_and(|h| h.phase == CommitPhase::Healthy),
    )
    .await;
    let record = commit_record(&gs, &c2).expect("record");
    let workloads = record.workloads.clone().unwrap_or_default();
    assert!(
        workloads
            .iter()
            .any(|w| w.kind == "SidecarSet" && w.name == format!("{}-log", ns.name)),
        "the SidecarSet's rollout is recorded with the commit: {workloads:?}"
    );
    // Healthy means every matched pod runs the new sidecar, the same pods as before.
    let sets: Api<SidecarSet> = Api::all(client.clone());
    let status = sets
        .get(&format!("{}-log", ns.name))
        .await
        .expect("SidecarSet")
        .status
        .unwrap_or_default();
    assert_eq!(
        (status.matched_pods, status.updated_ready_pods),
        (3, 3),
        "{status:?}"
    );
    let after = ready_pods(&pods, "app=web", 3).await;
    let uids: BTreeSet<String> = after
        .iter()
        .filter_map(|p| p.metadata.uid.clone())
        .collect();
    assert_eq!(uids, before, "upgraded in place");
    for p in &after {
        let log = p
            .spec
            .as_ref()
            .and_then(|s| s.containers.iter().find(|c| c.name == "log"))
            .and_then(|c| c.image.clone())
            .unwrap_or_default();
        assert!(log.ends_with("sidecar:v2"), "{log}");
    }

    // The hash annotations graft's controller writes on the SidecarSet (no webhook runs here)
    // are not drift: resyncs every 2 s leave the object alone and correct nothing.
    let set_name = format!("{}-log", ns.name);
    let marks = |s: &SidecarSet| {
        let a = s.metadata.annotations.clone().unwrap_or_default();
        (
            s.metadata.generation,
            a.get("kruise.io/sidecarset-hash").cloned(),
            a.get("kruise.io/sidecarset-hash-without-image").cloned(),
        )
    };
    let settled = marks(&sets.get(&set_name).await.expect("SidecarSet"));
    assert!(settled.1.is_some(), "hash annotations written: {settled:?}");
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert_eq!(
        marks(&sets.get(&set_name).await.expect("SidecarSet")),
        settled,
        "four resyncs later: same generation and hashes"
    );
    let events: Api<k8s_openapi::api::events::v1::Event> = ns.api();
    let drift: Vec<String> = events
        .list(&ListParams::default())
        .await
        .expect("list events")
        .items
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some("DriftCorrected"))
        .filter_map(|e| e.note)
        .collect();
    assert!(drift.is_empty(), "no drift corrected: {drift:?}");

    // The dashboard of this namespace shows the SidecarSet's rollout on the commit's page.
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
        l.local_addr().expect("address").to_string()
    };
    let mut web = std::process::Command::new(env!("CARGO_BIN_EXE_graft"))
        .args(["web", "--addr", &addr, "--namespace", &ns.name])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start graft web");
    let set_name = format!("{}-log", ns.name);
    let path = format!("/api/gitsyncs/{}/app/commits/{c2}", ns.name);
    let shown = support::eventually(
        "the commit page to show the SidecarSet live, 3 of 3 updated",
        MINUTE,
        || async {
            let (code, _, body) =
                support::http("GET", &addr, &path, &[]).map_err(|e| e.to_string())?;
            let v: Value = serde_json::from_str(&body).map_err(|e| format!("{code}: {e}"))?;
            let w = v["workloads"]
                .as_array()
                .and_then(|ws| ws.iter().find(|w| w["kind"] == "SidecarSet").cloned())
                .ok_or_else(|| format!("no SidecarSet: {v}"))?;
            let p = &w["progress"];
            if w["live"] == true && p["replicas"] == 3 && p["updated"] == 3 && p["ready"] == 3 {
                Ok(w)
            } else {
                Err(format!("{w}"))
            }
        },
    )
    .await;
    assert_eq!(shown["name"], json!(set_name));
    let (code, _, html) = support::http(
        "GET",
        &addr,
        &format!("/gitsyncs/{}/app/commits/{c2}", ns.name),
        &[],
    )
    .expect("commit page");
    let _ = web.kill();
    let _ = web.wait();
    assert_eq!(code, 200);
    assert!(
        html.contains(&set_name) && html.contains("SidecarSet"),
        "the commit page names the SidecarSet"
    );
    guard.delete().await;
}

/// Sends `GET /version` to `addr` with one-second connect and read timeouts; the body, or why not.
fn probe(addr: &std::net::SocketAddr) -> Result<String, String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect_timeout(addr, Duration::from_secs(1))
        .map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(1)))
        .map_err(|e| e.to_string())?;
    s.write_all(b"GET /version HTTP/1.0\r\n\r\n")
        .map_err(|e| format!("write: {e}"))?;
    let mut raw = String::new();
    s.read_to_string(&mut raw)
        .map_err(|e| format!("read: {e}"))?;
    match raw.split_once("\r\n\r\n") {
        Some((head, body)) if head.starts_with("HTTP/1.0 200") => Ok(body.trim().to_string()),
        _ => Err(format!("answer: {raw:?}")),
    }
}

/// Probes each address every 100 ms on its own thread until stopped: (address, answer) in order.
struct Prober {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    threads: Vec<std::thread::JoinHandle<Vec<Result<String, String>>>>,
}

impl Prober {
    fn start(addrs: &[std::net::SocketAddr]) -> Prober {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let threads = addrs
            .iter()
            .map(|&addr| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut seen = Vec::new();
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        seen.push(probe(&addr));
                        std::thread::sleep(Duration::from_millis(100));
                    }
                    seen
                })
            })
            .collect();
        Prober { stop, threads }
    }

    fn finish(self) -> Vec<Vec<Result<String, String>>> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.threads
            .into_iter()
            .map(|t| t.join().expect("probe thread"))
            .collect()
    }
}

#[tokio::test]
async fn a_hot_upgrade_switches_the_sidecar_twins_while_its_port_answers_every_probe() {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "sidecar-hot").await;
    // The test sidecar hands its listener to its successor over a unix socket on a volume both
    // twins mount ($HANDOVER), so the port never closes during the switch.
    let set: SidecarSet = serde_json::from_value(json!({
        "apiVersion": "apps.kruise.io/v1beta1", "kind": "SidecarSet",
        "metadata": {"name": format!("{}-proxy", ns.name)},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns.name}},
            "updateStrategy": {"type": "RollingUpdate", "maxUnavailable": 1},
            "containers": [{"name": "proxy", "image": image("sidecar:v1"),
                            "imagePullPolicy": "IfNotPresent",
                            "env": [{"name": "HANDOVER", "value": "/handover/sock"}],
                            "volumeMounts": [{"name": "handover", "mountPath": "/handover"}],
                            "upgradeStrategy": {"upgradeType": "HotUpgrade",
                                                "hotUpgradeEmptyImage": image("empty:v1")}}],
            "volumes": [{"name": "handover", "emptyDir": {}}]
        }
    }))
    .expect("valid SidecarSet literal");
    let sets: Api<SidecarSet> = Api::all(client.clone());
    let set_name = set.metadata.name.clone().unwrap_or_default();
    sets.create(&PostParams::default(), &set)
        .await
        .expect("create SidecarSet");
    let guard = Cleanup(sets.clone(), set_name.clone());
    let _graft = GraftControllers::start(&ns.name);
    let cs: CloneSet = serde_json::from_value(json!({
        "apiVersion": "apps.kruise.io/v1alpha1", "kind": "CloneSet",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                         "spec": {"terminationGracePeriodSeconds": 2,
                                  "containers": [{"name": "app", "image": image("app:v1"),
                                                  "imagePullPolicy": "IfNotPresent"}]}}
        }
    }))
    .expect("valid CloneSet literal");
    let clonesets: Api<CloneSet> = ns.api();
    clonesets
        .create(&PostParams::default(), &cs)
        .await
        .expect("create CloneSet");
    let pods: Api<Pod> = ns.api();
    wait_for(
        &sets,
        &set_name,
        "3 matched, updated and ready",
        2 * MINUTE,
        |s| {
            s.status.as_ref().is_some_and(|st| {
                st.matched_pods == 3 && st.updated_pods == 3 && st.updated_ready_pods == 3
            })
        },
    )
    .await;
    let before = ready_pods(&pods, "app=web", 3).await;
    for p in &before {
        let name = p.metadata.name.clone().unwrap_or_default();
        let images: Vec<(String, String)> = p
            .spec
            .iter()
            .flat_map(|s| &s.containers)
            .map(|c| (c.name.clone(), c.image.clone().unwrap_or_default()))
            .collect();
        assert_eq!(
            images,
            vec![
                ("proxy-1".to_string(), image("sidecar:v1")),
                ("proxy-2".to_string(), image("empty:v1")),
                ("app".to_string(), image("app:v1")),
            ],
            "{name}: hot-upgrade twins, the second one empty"
        );
        assert_eq!(
            annotation(p, "kruise.io/sidecarset-working-hotupgrade-container").as_deref(),
            Some(r#"{"proxy":"proxy-1"}"#),
            "{name}"
        );
    }
    let addrs: Vec<std::net::SocketAddr> = before
        .iter()
        .map(|p| {
            let ip = p
                .status
                .as_ref()
                .and_then(|s| s.pod_ip.clone())
                .expect("pod IP");
            format!("{ip}:9090").parse().expect("socket address")
        })
        .collect();
    for a in &addrs {
        assert_eq!(
            probe(a).as_deref(),
            Ok("sidecar-v1"),
            "{a} before the upgrade"
        );
    }

    let prober = Prober::start(&addrs);
    tokio::time::sleep(Duration::from_secs(1)).await;
    sets.patch(
        &set_name,
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(&json!({"spec": {"containers": [
            {"name": "proxy", "image": image("sidecar:v2"), "imagePullPolicy": "IfNotPresent",
             "env": [{"name": "HANDOVER", "value": "/handover/sock"}],
             "volumeMounts": [{"name": "handover", "mountPath": "/handover"}],
             "upgradeStrategy": {"upgradeType": "HotUpgrade",
                                 "hotUpgradeEmptyImage": image("empty:v1")}}]}})),
    )
    .await
    .expect("patch the sidecar image");
    // Ready counts only pods whose old twin is back on the empty image.
    wait_for(
        &sets,
        &set_name,
        "3 upgraded, old twins reset",
        3 * MINUTE,
        |s| {
            s.status.as_ref().is_some_and(|st| {
                Some(st.observed_generation) == s.metadata.generation
                    && st.matched_pods == 3
                    && st.updated_pods == 3
                    && st.updated_ready_pods == 3
            })
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let answers = prober.finish();

    for (addr, seen) in addrs.iter().zip(&answers) {
        let failures: Vec<&String> = seen.iter().filter_map(|r| r.as_ref().err()).collect();
        assert!(seen.len() > 20, "{addr}: probed {} times", seen.len());
        assert!(
            failures.is_empty(),
            "{addr}: {} of {} probes failed during the hot upgrade: {failures:?}",
            failures.len(),
            seen.len()
        );
        assert_eq!(
            seen.last().and_then(|r| r.as_deref().ok()),
            Some("sidecar-v2"),
            "{addr}: the new sidecar answers at the end"
        );
    }
    let after = ready_pods(&pods, "app=web", 3).await;
    let uids = |ps: &[Pod]| -> BTreeSet<String> {
        ps.iter().filter_map(|p| p.metadata.uid.clone()).collect()
    };
    assert_eq!(
        uids(&after),
        uids(&before),
        "the same pods: upgraded in place"
    );
    for p in &after {
        let name = p.metadata.name.clone().unwrap_or_default();
        let spec: std::collections::BTreeMap<String, String> = p
            .spec
            .iter()
            .flat_map(|s| &s.containers)
            .map(|c| (c.name.clone(), c.image.clone().unwrap_or_default()))
            .collect();
        assert_eq!(
            spec["proxy-1"],
            image("empty:v1"),
            "{name}: the old twin reset"
        );
        assert_eq!(spec["proxy-2"], image("sidecar:v2"), "{name}: the new twin");
        assert_eq!(
            annotation(p, "kruise.io/sidecarset-working-hotupgrade-container").as_deref(),
            Some(r#"{"proxy":"proxy-2"}"#),
            "{name}"
        );
        let app = p
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.name == "app"))
            .expect("app status");
        assert_eq!(
            app.restart_count, 0,
            "{name}: the app container never restarts"
        );
    }
    guard.delete().await;
}

#[tokio::test]
async fn a_sidecarset_and_a_cloneset_rolling_out_on_the_same_pods_keep_both_limits() {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "sidecar-both").await;
    // The windows where the two could collide are made wide: the old sidecar keeps running
    // (and ready) for 2 s after its image changed (preStop), and the app is not ready for 3 s
    // after its restart.
    let log = |tag: &str| {
        json!({"name": "log", "image": image(&format!("sidecar:{tag}")), "imagePullPolicy": "IfNotPresent",
               "env": [{"name": "ROLE", "value": "log"}],
               "lifecycle": {"preStop": {"exec": {"command": ["sleep", "2"]}}}})
    };
    let mut set = sidecarset(&ns.name, "web");
    set.spec.containers = Some(vec![
        serde_json::from_value(log("v1")).expect("sidecar literal"),
    ]);
    set.spec.update_strategy =
        serde_json::from_value(json!({"type": "RollingUpdate", "maxUnavailable": 2}))
            .expect("strategy literal");
    let sets: Api<SidecarSet> = Api::all(client.clone());
    let set_name = set.metadata.name.clone().unwrap_or_default();
    sets.create(&PostParams::default(), &set)
        .await
        .expect("create SidecarSet");
    let guard = Cleanup(sets.clone(), set_name.clone());
    let _graft = GraftControllers::start(&ns.name);
    let template = |app: &str| {
        json!({"metadata": {"labels": {"app": "web"}},
               "spec": {"terminationGracePeriodSeconds": 5,
                        "containers": [{"name": "app", "image": image(app),
                                        "imagePullPolicy": "IfNotPresent",
                                        "readinessProbe": {"httpGet": {"path": "/readyz", "port": 8080},
                                                           "initialDelaySeconds": 3,
                                                           "periodSeconds": 1}}]}})
    };
    let cs: CloneSet = serde_json::from_value(json!({
        "apiVersion": "apps.kruise.io/v1alpha1", "kind": "CloneSet",
        "metadata": {"name": "web"},
        "spec": {"replicas": 6, "selector": {"matchLabels": {"app": "web"}},
                 "template": template("app:v1"),
                 "updateStrategy": {"type": "InPlaceIfPossible", "maxUnavailable": 2}}
    }))
    .expect("valid CloneSet literal");
    let clonesets: Api<CloneSet> = ns.api();
    clonesets
        .create(&PostParams::default(), &cs)
        .await
        .expect("create CloneSet");
    let pods: Api<Pod> = ns.api();
    let before = ready_pods(&pods, "app=web", 6).await;
    wait_for(&sets, &set_name, "6 matched and ready", MINUTE, |s| {
        s.status
            .as_ref()
            .is_some_and(|st| st.matched_pods == 6 && st.updated_ready_pods == 6)
    })
    .await;

    let watcher = support::PodWatcher::start(&client, &ns.name, "app=web");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pp = kube::api::PatchParams::default();
    let sidecar_v2 = json!({"spec": {"containers": [log("v2")]}});
    let app_v2 = json!({"spec": {"template": template("app:v2")}});
    let (sidecar_v2, app_v2) = (
        kube::api::Patch::Merge(&sidecar_v2),
        kube::api::Patch::Merge(&app_v2),
    );
    let (a, b) = tokio::join!(
        sets.patch(&set_name, &pp, &sidecar_v2),
        clonesets.patch("web", &pp, &app_v2),
    );
    a.expect("patch the SidecarSet");
    b.expect("patch the CloneSet");
    wait_for(&sets, &set_name, "the sidecar on 6 pods", 4 * MINUTE, |s| {
        s.status.as_ref().is_some_and(|st| {
            Some(st.observed_generation) == s.metadata.generation
                && st.updated_ready_pods == 6
                && st.ready_pods == 6
        })
    })
    .await;
    wait_for(&clonesets, "web", "the app on 6 pods", 4 * MINUTE, |c| {
        c.status.as_ref().is_some_and(|st| {
            Some(st.observed_generation) == c.metadata.generation
                && st.updated_ready_replicas == 6
                && st.ready_replicas == 6
        })
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = ready_pods(&pods, "app=web", 6).await;
    let uids = |ps: &[Pod]| -> BTreeSet<String> {
        ps.iter().filter_map(|p| p.metadata.uid.clone()).collect()
    };
    assert_eq!(uids(&after), uids(&before), "both rollouts in place");

    // Over the whole history: never more than 2 pods not ready, and never a pod whose app and
    // sidecar were both changed in its spec and not yet running (two in-place updates at once).
    let history = watcher.history();
    let mut ready: std::collections::BTreeMap<String, bool> = Default::default();
    let mut worst = 0;
    let mut both = Vec::new();
    for s in &history {
        ready.insert(s.uid.clone(), s.ready);
        if ready.len() == 6 {
            worst = worst.max(ready.values().filter(|r| !**r).count());
        }
        let pending = |name: &str| {
            let running = s
                .containers
                .iter()
                .find(|c| c.0 == name)
                .map(|c| c.1.clone());
            s.spec_images.get(name).cloned() != running
        };
        if pending("app") && pending("log") {
            both.push(format!("{} at {:?}", s.name, s.at));
        }
    }
    assert!(
        both.is_empty(),
        "two in-place updates of one pod at once: {both:?}"
    );
    assert!(
        worst <= 2,
        "at most 2 pods not ready at once (both maxUnavailable 2), saw {worst}"
    );
    for p in &after {
        let name = p.metadata.name.clone().unwrap_or_default();
        for c in p
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .into_iter()
            .flatten()
        {
            let want = if c.name == "app" {
                "app:v2"
            } else {
                "sidecar:v2"
            };
            assert_eq!(c.image, image(want), "{name}/{}", c.name);
            assert_eq!(
                c.restart_count, 1,
                "{name}/{}: restarted once, in place",
                c.name
            );
        }
    }
    guard.delete().await;
}

#[tokio::test]
async fn a_change_beyond_images_marks_the_pods_not_upgradable_and_touches_none() {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "sidecar-immutable").await;
    let guard = create_sidecarset(&client, &ns.name, "web").await;
    let set_name = guard.1.clone();
    let sets = guard.0.clone();
    let _graft = GraftControllers::start(&ns.name);
    let cs: CloneSet = serde_json::from_value(json!({
        "apiVersion": "apps.kruise.io/v1alpha1", "kind": "CloneSet",
        "metadata": {"name": "web"},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"terminationGracePeriodSeconds": 2,
                                       "containers": [{"name": "app", "image": image("app:v1"),
                                                       "imagePullPolicy": "IfNotPresent"}]}}}
    }))
    .expect("valid CloneSet literal");
    let clonesets: Api<CloneSet> = ns.api();
    clonesets
        .create(&PostParams::default(), &cs)
        .await
        .expect("create CloneSet");
    let pods: Api<Pod> = ns.api();
    wait_for(&sets, &set_name, "3 matched and updated", 2 * MINUTE, |s| {
        s.status
            .as_ref()
            .is_some_and(|st| st.matched_pods == 3 && st.updated_ready_pods == 3)
    })
    .await;
    let before = ready_pods(&pods, "app=web", 3).await;
    let specs = |ps: &[Pod]| -> std::collections::BTreeMap<String, Value> {
        ps.iter()
            .map(|p| {
                (
                    p.metadata.uid.clone().unwrap_or_default(),
                    serde_json::to_value(&p.spec.as_ref().expect("spec").containers)
                        .expect("containers"),
                )
            })
            .collect()
    };

    // The env of the sidecar changes (and its image with it): not an image-only change.
    sets.patch(
        &set_name,
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(&json!({"spec": {"containers": [
            {"name": "log", "image": image("sidecar:v2"), "imagePullPolicy": "IfNotPresent",
             "env": [{"name": "ROLE", "value": "changed"}]}]}})),
    )
    .await
    .expect("patch the sidecar env");
    let condition = |p: &Pod| -> Option<(String, String, String)> {
        p.status
            .as_ref()?
            .conditions
            .as_ref()?
            .iter()
            .find(|c| c.type_ == "SidecarSetUpgradable")
            .map(|c| {
                (
                    c.status.clone(),
                    c.reason.clone().unwrap_or_default(),
                    c.message.clone().unwrap_or_default(),
                )
            })
    };
    let marked = support::eventually("every pod SidecarSetUpgradable=False", MINUTE, || async {
        let list = pods
            .list(&ListParams::default().labels("app=web"))
            .await
            .map_err(|e| e.to_string())?;
        let conds: Vec<_> = list.items.iter().map(condition).collect();
        if conds
            .iter()
            .all(|c| c.as_ref().is_some_and(|c| c.0 == "False"))
        {
            Ok(list.items)
        } else {
            Err(format!("{conds:?}"))
        }
    })
    .await;
    for p in &marked {
        let (_, reason, message) = condition(p).expect("condition");
        assert_eq!(reason, "UpdateImmutableField");
        let m: Value = serde_json::from_str(&message).expect("message is JSON");
        assert_eq!(m, json!({ set_name.clone(): false }), "{message}");
    }
    let events: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(client.clone(), "default");
    support::eventually("a NotUpgradablePods Event", MINUTE, || async {
        let found = events
            .list(&ListParams::default())
            .await
            .map_err(|e| e.to_string())?
            .items
            .into_iter()
            .any(|e| {
                e.reason.as_deref() == Some("NotUpgradablePods")
                    && e.involved_object.name.as_deref() == Some(set_name.as_str())
            });
        if found {
            Ok(())
        } else {
            Err("none yet".to_string())
        }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let set = sets.get(&set_name).await.expect("SidecarSet");
    let st = set.status.clone().unwrap_or_default();
    assert_eq!(
        (st.matched_pods, st.updated_pods),
        (3, 0),
        "no pod counts as updated: {st:?}"
    );
    let after = ready_pods(&pods, "app=web", 3).await;
    assert_eq!(specs(&after), specs(&before), "no pod's containers changed");
    for p in &after {
        for c in p
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .into_iter()
            .flatten()
        {
            assert_eq!(c.restart_count, 0, "{}: nothing restarted", c.name);
        }
    }
    guard.delete().await;
}
