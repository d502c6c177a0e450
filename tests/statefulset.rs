//! The Advanced StatefulSet controller on the real cluster: each test runs its own
//! `graft controllers` for its own namespace, records every pod state while things happen
//! ([`support::PodWatcher`]), and checks the invariants (creation order, maxUnavailable,
//! partition, identity) over the whole history, not only at the end.
#![cfg(feature = "cluster-tests")]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use graft_api::apps::v1beta1::StatefulSet;
use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet as NativeStatefulSet};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::Api;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use support::{
    GraftControllers, PodState, PodWatcher, TestNamespace, client, image, install_crds, wait_for,
};

const MINUTE: Duration = Duration::from_secs(60);

/// The pod template every test uses: the app (ready on `/readyz`) at `tag`, and an untouched
/// sidecar; with `in_place`, the `InPlaceUpdateReady` readiness gate kruise requires for
/// in-place updates.
fn template(name: &str, tag: &str, in_place: bool) -> Value {
    let mut t = json!({
        "metadata": {"labels": {"app": name}},
        "spec": {
            "terminationGracePeriodSeconds": 3,
            "containers": containers(tag)
        }
    });
    if in_place {
        t["spec"]["readinessGates"] = json!([{"conditionType": "InPlaceUpdateReady"}]);
    }
    t
}

fn containers(tag: &str) -> Value {
    json!([
        {"name": "app", "image": image(&format!("app:{tag}")), "imagePullPolicy": "IfNotPresent",
         "readinessProbe": {"httpGet": {"path": "/readyz", "port": 8080}, "periodSeconds": 1}},
        {"name": "sidecar", "image": image("sidecar:v1"), "imagePullPolicy": "IfNotPresent"}
    ])
}

/// An Advanced StatefulSet `name` with `replicas` pods at `tag`; `spec` is merged over the rest.
fn sts(name: &str, replicas: i32, tag: &str, in_place: bool, spec: Value) -> StatefulSet {
    let mut s = json!({
        "apiVersion": "apps.kruise.io/v1beta1", "kind": "StatefulSet",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "serviceName": name,
            "selector": {"matchLabels": {"app": name}},
            "template": template(name, tag, in_place)
        }
    });
    if let (Some(m), Some(extra)) = (s["spec"].as_object_mut(), spec.as_object()) {
        m.extend(extra.clone());
    }
    serde_json::from_value(s).expect("valid StatefulSet literal")
}

fn in_place_strategy(max_unavailable: i32, partition: i32) -> Value {
    json!({"type": "RollingUpdate", "rollingUpdate": {
        "podUpdatePolicy": "InPlaceIfPossible",
        "maxUnavailable": max_unavailable,
        "partition": partition
    }})
}

fn data_claim() -> Value {
    json!([{
        "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "16Mi"}}}
    }])
}

struct Env {
    ns: TestNamespace,
    sets: Api<StatefulSet>,
    pods: Api<Pod>,
    claims: Api<PersistentVolumeClaim>,
    controllers: GraftControllers,
    client: kube::Client,
}

async fn env(prefix: &str) -> Env {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, prefix).await;
    let controllers = GraftControllers::start(&ns.name);
    Env {
        sets: ns.api(),
        pods: ns.api(),
        claims: ns.api(),
        ns,
        controllers,
        client,
    }
}

impl Env {
    async fn create(&self, set: &StatefulSet) {
        self.sets
            .create(&PostParams::default(), set)
            .await
            .expect("create the StatefulSet");
    }

    async fn patch_spec(&self, name: &str, spec: Value) {
        self.sets
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(&json!({ "spec": spec })),
            )
            .await
            .expect("patch the StatefulSet");
    }

    /// Pods of `name` that are not terminating, by name.
    async fn live_pods(&self, name: &str) -> BTreeMap<String, Pod> {
        self.pods
            .list(&ListParams::default().labels(&format!("app={name}")))
            .await
            .expect("list pods")
            .items
            .into_iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .map(|p| (p.metadata.name.clone().unwrap_or_default(), p))
            .collect()
    }

    async fn revision_count(&self) -> usize {
        self.ns
            .api::<ControllerRevision>()
            .list(&ListParams::default())
            .await
            .expect("list controller revisions")
            .items
            .len()
    }

    /// [`wait_for`] on the set; on timeout the failure also shows every pod and where the
    /// controller's log is.
    async fn wait_set(
        &self,
        name: &str,
        expected: &str,
        timeout: Duration,
        cond: impl Fn(&StatefulSet) -> bool,
    ) -> StatefulSet {
        match tokio::time::timeout(
            timeout,
            wait_for(&self.sets, name, expected, timeout + MINUTE, cond),
        )
        .await
        {
            Ok(s) => s,
            Err(_) => {
                let status = self.sets.get(name).await.ok().and_then(|s| s.status);
                let pods = self
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
                            "{} rev={:?} deleting={} phase={:?} conditions={:?}",
                            p.metadata.name.clone().unwrap_or_default(),
                            p.metadata
                                .labels
                                .as_ref()
                                .and_then(|l| l.get("controller-revision-hash")),
                            p.metadata.deletion_timestamp.is_some(),
                            st.phase,
                            st.conditions
                                .unwrap_or_default()
                                .iter()
                                .map(|c| format!("{}={}", c.type_, c.status))
                                .collect::<Vec<_>>(),
                        )
                    })
                    .collect();
                panic!(
                    "timed out after {timeout:?} waiting for StatefulSet {name}: expected {expected}\nstatus: {status:?}\npods:\n{}\ncontroller log: {}",
                    lines.join("\n"),
                    self.controllers.log.display()
                )
            }
        }
    }

    /// Every counter at `replicas` for the current generation, and the rollout complete.
    async fn settled(&self, name: &str, replicas: i32) -> StatefulSet {
        self.wait_set(
            name,
            &format!("every status counter at {replicas}, current revision = update revision"),
            3 * MINUTE,
            |s| settled(s, replicas),
        )
        .await
    }
}

fn settled(s: &StatefulSet, want: i32) -> bool {
    let st = s.status.clone().unwrap_or_default();
    st.observed_generation == s.metadata.generation.unwrap_or(-1)
        && st.replicas == want
        && st.ready_replicas == want
        && st.available_replicas == want
        && st.updated_replicas == want
        && st.updated_ready_replicas == want
        && st.current_replicas == want
        && st.update_revision.is_some()
        && st.update_revision == st.current_revision
}

fn revision_of(p: &Pod) -> String {
    p.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get("controller-revision-hash").cloned())
        .unwrap_or_default()
}

fn app_status(p: &Pod) -> Option<&k8s_openapi::api::core::v1::ContainerStatus> {
    p.status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .iter()
        .find(|c| c.name == "app")
}

fn pod_ip(p: &Pod) -> String {
    p.status
        .as_ref()
        .and_then(|s| s.pod_ip.clone())
        .unwrap_or_default()
}

fn uid(p: &Pod) -> String {
    p.metadata.uid.clone().unwrap_or_default()
}

/// Replays a recorded history: the most pods that were ever unavailable at once (`replicas`
/// minus the Ready, not terminating pods), judged once the watch has listed them all.
fn worst_unavailable(history: &[PodState], replicas: usize) -> usize {
    let mut current: BTreeMap<String, PodState> = BTreeMap::new();
    let mut worst = 0usize;
    let mut listed = false;
    for s in history {
        if s.deleted {
            current.remove(&s.uid);
        } else {
            current.insert(s.uid.clone(), s.clone());
        }
        listed |= current.len() >= replicas;
        if listed {
            let available = current.values().filter(|p| p.ready && !p.deleting).count();
            worst = worst.max(replicas.saturating_sub(available));
        }
    }
    worst
}

/// One line per recorded pod state, for failure messages.
fn timeline(history: &[PodState]) -> String {
    history
        .iter()
        .map(|s| {
            format!(
                "{:>7.2}s {} phase={:?} ready={} deleting={} deleted={} rev={:?} images={:?}",
                s.at.as_secs_f64(),
                s.name,
                s.phase,
                s.ready,
                s.deleting,
                s.deleted,
                s.labels.get("controller-revision-hash"),
                s.spec_images
                    .values()
                    .map(|i| i.rsplit('/').next().unwrap_or_default())
                    .collect::<Vec<_>>()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn ordered_ready_scale_up_creates_one_pod_at_a_time_and_scale_in_removes_the_highest() {
    let e = env("sts-order").await;
    e.create(&sts("web", 0, "v1", false, json!({}))).await;
    e.settled("web", 0).await;
    let watcher = PodWatcher::start(&e.client, &e.ns.name, "app=web");
    tokio::time::sleep(Duration::from_millis(500)).await;
    e.patch_spec("web", json!({"replicas": 3})).await;
    e.settled("web", 3).await;
    let history = watcher.history();
    let first_seen = |name: &str| history.iter().position(|s| s.name == name);
    let first_running_ready = |name: &str| {
        history
            .iter()
            .position(|s| s.name == name && s.ready && s.phase.as_deref() == Some("Running"))
    };
    for (prev, next) in [("web-0", "web-1"), ("web-1", "web-2")] {
        let ready = first_running_ready(prev)
            .unwrap_or_else(|| panic!("{prev} never Running and Ready\n{}", timeline(&history)));
        let created = first_seen(next)
            .unwrap_or_else(|| panic!("{next} never created\n{}", timeline(&history)));
        assert!(
            ready < created,
            "{next} was created before {prev} was Running and Ready\n{}",
            timeline(&history)
        );
    }
    let before = e.live_pods("web").await;
    assert_eq!(
        before.keys().cloned().collect::<Vec<_>>(),
        ["web-0", "web-1", "web-2"]
    );
    for (name, p) in &before {
        let l = p.metadata.labels.clone().unwrap_or_default();
        assert_eq!(l.get("statefulset.kubernetes.io/pod-name"), Some(name));
        assert_eq!(
            p.spec.as_ref().and_then(|s| s.hostname.as_ref()),
            Some(name),
            "hostname is the pod name"
        );
        assert_eq!(
            p.spec.as_ref().and_then(|s| s.subdomain.as_deref()),
            Some("web")
        );
    }

    e.patch_spec("web", json!({"replicas": 2})).await;
    e.settled("web", 2).await;
    let after = e.live_pods("web").await;
    assert_eq!(
        after.keys().cloned().collect::<Vec<_>>(),
        ["web-0", "web-1"]
    );
    for (name, p) in &after {
        assert_eq!(uid(p), uid(&before[name]), "{name} kept");
    }
    let history = watcher.history();
    let deleting: BTreeSet<&str> = history
        .iter()
        .filter(|s| s.deleting || s.deleted)
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(
        deleting,
        BTreeSet::from(["web-2"]),
        "only the highest ordinal goes\n{}",
        timeline(&history)
    );
    // Events in kruise's words.
    support::eventually(
        "SuccessfulCreate and SuccessfulDelete Events",
        MINUTE,
        || async {
            let events = set_events(&e, "web").await;
            let has = |reason: &str, message: &str| {
                events.iter().any(|(r, m)| r == reason && m == message)
            };
            if has(
                "SuccessfulCreate",
                "create Pod web-2 in StatefulSet web successful",
            ) && has(
                "SuccessfulDelete",
                "delete Pod web-2 in StatefulSet web successful",
            ) {
                Ok(())
            } else {
                Err(format!("{events:?}"))
            }
        },
    )
    .await;
}

/// `(reason, message)` of every Event about the StatefulSet `name`.
async fn set_events(e: &Env, name: &str) -> Vec<(String, String)> {
    e.ns.api::<k8s_openapi::api::core::v1::Event>()
        .list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default()
        .into_iter()
        .filter(|ev| {
            ev.involved_object.kind.as_deref() == Some("StatefulSet")
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
async fn parallel_in_place_update_keeps_uids_ips_and_pvcs_within_max_unavailable() {
    let e = env("sts-inplace").await;
    e.create(&sts(
        "web",
        6,
        "v1",
        true,
        json!({
            "podManagementPolicy": "Parallel",
            "updateStrategy": in_place_strategy(2, 0),
            "volumeClaimTemplates": data_claim()
        }),
    ))
    .await;
    let old = e.settled("web", 6).await;
    let before = e.live_pods("web").await;
    let claims_before: BTreeMap<String, String> = e
        .claims
        .list(&ListParams::default())
        .await
        .expect("list PVCs")
        .items
        .into_iter()
        .map(|c| {
            (
                c.metadata.name.clone().unwrap_or_default(),
                c.metadata.uid.clone().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(claims_before.len(), 6, "a PVC per pod: {claims_before:?}");
    let watcher = PodWatcher::start(&e.client, &e.ns.name, "app=web");
    tokio::time::sleep(Duration::from_millis(500)).await;
    e.patch_spec(
        "web",
        json!({"template": {"spec": {"containers": containers("v2")}}}),
    )
    .await;
    let done = e
        .wait_set(
            "web",
            "all 6 pods at the new revision, ready",
            4 * MINUTE,
            |s| {
                settled(s, 6)
                    && s.status.as_ref().and_then(|st| st.update_revision.as_ref())
                        != old
                            .status
                            .as_ref()
                            .and_then(|st| st.update_revision.as_ref())
            },
        )
        .await;
    let update_revision = done
        .status
        .and_then(|s| s.update_revision)
        .unwrap_or_default();
    let after = e.live_pods("web").await;
    let v2 = support::image_digest("app:v2");
    for (name, p) in &after {
        let b = &before[name];
        assert_eq!(uid(p), uid(b), "{name}: same pod (updated in place)");
        assert_eq!(pod_ip(p), pod_ip(b), "{name}: same IP");
        assert_eq!(
            revision_of(p),
            update_revision,
            "{name}: at the update revision"
        );
        let app = app_status(p).expect("app status");
        assert!(
            app.image_id.contains(&v2),
            "{name} runs v2: {}",
            app.image_id
        );
        assert_eq!(app.restart_count, 1, "{name}: app restarted once");
        let claim = p
            .spec
            .as_ref()
            .and_then(|s| s.volumes.as_ref())
            .and_then(|v| v.iter().find(|v| v.name == "data"))
            .and_then(|v| v.persistent_volume_claim.as_ref())
            .map(|c| c.claim_name.clone());
        assert_eq!(claim, Some(format!("data-{name}")), "{name} mounts its PVC");
    }
    let claims_after: BTreeMap<String, String> = e
        .claims
        .list(&ListParams::default())
        .await
        .expect("list PVCs")
        .items
        .into_iter()
        .map(|c| {
            (
                c.metadata.name.clone().unwrap_or_default(),
                c.metadata.uid.clone().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(claims_after, claims_before, "the same PVCs");
    let history = watcher.history();
    let worst = worst_unavailable(&history, 6);
    assert!(
        worst <= 2,
        "maxUnavailable 2 was violated: {worst} pods unavailable at once\n{}",
        timeline(&history)
    );
    assert!(
        worst >= 1,
        "the watcher saw no pod go unavailable: it did not record the rollout\n{}",
        timeline(&history)
    );
}

#[tokio::test]
async fn partition_3_of_6_updates_ordinals_3_to_5_only() {
    let e = env("sts-partition").await;
    e.create(&sts(
        "web",
        6,
        "v1",
        true,
        json!({
            "podManagementPolicy": "Parallel",
            "updateStrategy": in_place_strategy(3, 3)
        }),
    ))
    .await;
    let old = e.settled("web", 6).await;
    let old_revision = old
        .status
        .and_then(|s| s.update_revision)
        .unwrap_or_default();
    let watcher = PodWatcher::start(&e.client, &e.ns.name, "app=web");
    tokio::time::sleep(Duration::from_millis(500)).await;
    e.patch_spec(
        "web",
        json!({"template": {"spec": {"containers": containers("v2")}}}),
    )
    .await;
    let partial = e
        .wait_set("web", "3 pods updated and all 6 ready", 3 * MINUTE, |s| {
            let st = s.status.clone().unwrap_or_default();
            st.observed_generation == s.metadata.generation.unwrap_or(-1)
                && st.updated_replicas == 3
                && st.updated_ready_replicas == 3
                && st.ready_replicas == 6
        })
        .await;
    let update_revision = partial
        .status
        .as_ref()
        .and_then(|s| s.update_revision.clone())
        .unwrap_or_default();
    assert_ne!(update_revision, old_revision);
    // It stops there: nothing more happens while the partition holds.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let pods = e.live_pods("web").await;
    assert_eq!(pods.len(), 6);
    for (name, p) in &pods {
        let ordinal: u32 = name
            .rsplit('-')
            .next()
            .and_then(|o| o.parse().ok())
            .unwrap_or(99);
        let want = if ordinal >= 3 {
            &update_revision
        } else {
            &old_revision
        };
        assert_eq!(&revision_of(p), want, "{name}");
    }
    let history = watcher.history();
    for s in &history {
        let ordinal: u32 = s
            .name
            .rsplit('-')
            .next()
            .and_then(|o| o.parse().ok())
            .unwrap_or(99);
        if ordinal < 3 {
            assert!(
                s.spec_images
                    .get("app")
                    .is_some_and(|i| i.ends_with("app:v1"))
                    && !s.deleting,
                "{} below the partition was touched\n{}",
                s.name,
                timeline(&history)
            );
        }
    }
    let st = e
        .sets
        .get("web")
        .await
        .expect("get")
        .status
        .unwrap_or_default();
    assert_eq!(st.updated_replicas, 3, "{st:?}");
    assert_eq!(st.current_revision.as_deref(), Some(old_revision.as_str()));
}

#[tokio::test]
async fn reserve_ordinals_1_with_3_replicas_gives_pods_0_2_3() {
    let e = env("sts-reserve").await;
    e.create(&sts(
        "web",
        3,
        "v1",
        false,
        json!({"podManagementPolicy": "Parallel", "reserveOrdinals": [1]}),
    ))
    .await;
    e.settled("web", 3).await;
    let pods = e.live_pods("web").await;
    assert_eq!(
        pods.keys().cloned().collect::<Vec<_>>(),
        ["web-0", "web-2", "web-3"]
    );
    for (name, p) in &pods {
        let index = name.rsplit('-').next().unwrap_or_default();
        assert_eq!(
            p.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("apps.kubernetes.io/pod-index"))
                .map(String::as_str),
            Some(index)
        );
    }
}

async fn claim_uid(e: &Env, name: &str) -> Option<String> {
    e.claims
        .get_opt(name)
        .await
        .expect("read PVC")
        .filter(|c| c.metadata.deletion_timestamp.is_none())
        .and_then(|c| c.metadata.uid)
}

#[tokio::test]
async fn when_scaled_delete_removes_the_pvc_of_a_scaled_in_pod() {
    let e = env("sts-pvc-delete").await;
    e.create(&sts(
        "web",
        2,
        "v1",
        false,
        json!({
            "podManagementPolicy": "Parallel",
            "volumeClaimTemplates": data_claim(),
            "persistentVolumeClaimRetentionPolicy": {"whenScaled": "Delete", "whenDeleted": "Retain"}
        }),
    ))
    .await;
    e.settled("web", 2).await;
    assert!(claim_uid(&e, "data-web-1").await.is_some());
    e.patch_spec("web", json!({"replicas": 1})).await;
    e.settled("web", 1).await;
    support::eventually("PVC data-web-1 deleted", 2 * MINUTE, || async {
        match e.claims.get_opt("data-web-1").await {
            Ok(None) => Ok(()),
            Ok(Some(c)) => Err(format!(
                "still there, owners {:?}, deleting {}",
                c.metadata.owner_references,
                c.metadata.deletion_timestamp.is_some()
            )),
            Err(err) => Err(err.to_string()),
        }
    })
    .await;
    assert!(
        claim_uid(&e, "data-web-0").await.is_some(),
        "the remaining pod's PVC stays"
    );
}

#[tokio::test]
async fn when_scaled_retain_keeps_the_pvc_and_the_pod_that_comes_back_uses_it() {
    let e = env("sts-pvc-retain").await;
    e.create(&sts(
        "web",
        2,
        "v1",
        false,
        json!({
            "podManagementPolicy": "Parallel",
            "volumeClaimTemplates": data_claim(),
            "persistentVolumeClaimRetentionPolicy": {"whenScaled": "Retain", "whenDeleted": "Retain"}
        }),
    ))
    .await;
    e.settled("web", 2).await;
    let kept = claim_uid(&e, "data-web-1")
        .await
        .expect("PVC data-web-1 exists");
    e.patch_spec("web", json!({"replicas": 1})).await;
    e.settled("web", 1).await;
    // Give a wrongly deleting controller or garbage collector the time to show it.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        claim_uid(&e, "data-web-1").await.as_ref(),
        Some(&kept),
        "Retain keeps the PVC"
    );
    e.patch_spec("web", json!({"replicas": 2})).await;
    e.settled("web", 2).await;
    let pods = e.live_pods("web").await;
    let claim = pods["web-1"]
        .spec
        .as_ref()
        .and_then(|s| s.volumes.as_ref())
        .and_then(|v| v.iter().find(|v| v.name == "data"))
        .and_then(|v| v.persistent_volume_claim.as_ref())
        .map(|c| c.claim_name.clone());
    assert_eq!(claim.as_deref(), Some("data-web-1"));
    assert_eq!(
        claim_uid(&e, "data-web-1").await.as_ref(),
        Some(&kept),
        "the pod came back on the same PVC"
    );
}

#[tokio::test]
async fn a_native_statefulset_is_taken_over_without_restarting_its_pods() {
    let e = env("sts-migrate").await;
    let native: Api<NativeStatefulSet> = e.ns.api();
    let spec = json!({
        "replicas": 3,
        "serviceName": "web",
        "podManagementPolicy": "Parallel",
        "selector": {"matchLabels": {"app": "web"}},
        "template": template("web", "v1", false)
    });
    let n: NativeStatefulSet = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "web"},
        "spec": spec
    }))
    .expect("native StatefulSet literal");
    native
        .create(&PostParams::default(), &n)
        .await
        .expect("create the native StatefulSet");
    wait_for(
        &native,
        "web",
        "3 ready replicas of the native StatefulSet",
        3 * MINUTE,
        |s| {
            s.status
                .as_ref()
                .is_some_and(|st| st.ready_replicas == Some(3) && st.updated_replicas == Some(3))
        },
    )
    .await;
    let before = e.live_pods("web").await;
    assert_eq!(before.len(), 3);
    let revisions_before = e.revision_count().await;

    // kubectl delete statefulset.apps web --cascade=orphan
    native
        .delete("web", &DeleteParams::orphan())
        .await
        .expect("delete the native StatefulSet, orphaning its pods");
    support::eventually(
        "the native StatefulSet gone and its pods orphaned",
        MINUTE,
        || async {
            if native
                .get_opt("web")
                .await
                .map_err(|e| e.to_string())?
                .is_some()
            {
                return Err("the native StatefulSet still exists".into());
            }
            let owned: Vec<String> = e
                .live_pods("web")
                .await
                .into_values()
                .filter(|p| {
                    p.metadata
                        .owner_references
                        .as_ref()
                        .is_some_and(|o| !o.is_empty())
                })
                .filter_map(|p| p.metadata.name)
                .collect();
            if owned.is_empty() {
                Ok(())
            } else {
                Err(format!("pods still owned: {owned:?}"))
            }
        },
    )
    .await;

    let watcher = PodWatcher::start(&e.client, &e.ns.name, "app=web");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut advanced: Value = json!({
        "apiVersion": "apps.kruise.io/v1beta1", "kind": "StatefulSet",
        "metadata": {"name": "web"},
        "spec": spec
    });
    advanced["spec"]["updateStrategy"] = json!({"type": "RollingUpdate"});
    let advanced: StatefulSet = serde_json::from_value(advanced).expect("StatefulSet literal");
    e.create(&advanced).await;
    let set = e.settled("web", 3).await;
    let set_uid = set.metadata.uid.clone().unwrap_or_default();
    let after = e.live_pods("web").await;
    assert_eq!(after.len(), 3);
    for (name, p) in &after {
        let b = &before[name];
        assert_eq!(uid(p), uid(b), "{name}: the same pod");
        assert_eq!(
            app_status(p).map(|c| (c.restart_count, c.container_id.clone())),
            app_status(b).map(|c| (c.restart_count, c.container_id.clone())),
            "{name}: not restarted"
        );
        let controller = p
            .metadata
            .owner_references
            .iter()
            .flatten()
            .find(|o| o.controller == Some(true))
            .unwrap_or_else(|| panic!("{name} not adopted"));
        assert_eq!(
            (controller.kind.as_str(), controller.uid.as_str()),
            ("StatefulSet", set_uid.as_str())
        );
        assert_eq!(
            revision_of(p),
            revision_of(b),
            "{name}: revision label kept"
        );
    }
    let history = watcher.history();
    assert!(
        history.iter().all(|s| !s.deleting && !s.deleted),
        "a pod was deleted during the takeover\n{}",
        timeline(&history)
    );
    assert_eq!(
        e.revision_count().await,
        revisions_before,
        "the native revision was adopted, not replaced"
    );
}

#[tokio::test]
async fn graft_killed_mid_rollout_resumes_without_violation_or_new_revision() {
    let mut e = env("sts-crash").await;
    e.create(&sts(
        "web",
        4,
        "v1",
        true,
        json!({
            "podManagementPolicy": "Parallel",
            "updateStrategy": in_place_strategy(1, 0)
        }),
    ))
    .await;
    e.settled("web", 4).await;
    let before = e.live_pods("web").await;
    let watcher = PodWatcher::start(&e.client, &e.ns.name, "app=web");
    tokio::time::sleep(Duration::from_millis(500)).await;
    e.patch_spec(
        "web",
        json!({"template": {"spec": {"containers": containers("v2")}}}),
    )
    .await;
    // Kill it twice: as the first pod starts updating, and in the middle of the rollout.
    for updated in [1, 2] {
        e.wait_set(
            "web",
            &format!("{updated} pod(s) at the update revision"),
            3 * MINUTE,
            |s| {
                let st = s.status.clone().unwrap_or_default();
                st.observed_generation == s.metadata.generation.unwrap_or(-1)
                    && st.update_revision != st.current_revision
                    && st.updated_replicas >= updated
            },
        )
        .await;
        let revisions = e.revision_count().await;
        e.controllers.kill();
        tokio::time::sleep(Duration::from_secs(2)).await;
        e.controllers = GraftControllers::start(&e.ns.name);
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(
            e.revision_count().await,
            revisions,
            "the restarted controller minted a new revision"
        );
    }
    e.settled("web", 4).await;
    assert_eq!(e.revision_count().await, 2, "one revision per template");
    let after = e.live_pods("web").await;
    for (name, p) in &after {
        assert_eq!(uid(p), uid(&before[name]), "{name} updated in place");
        assert_eq!(
            app_status(p).map(|c| c.restart_count),
            Some(1),
            "{name}: the app container restarted exactly once (no double update)"
        );
    }
    let history = watcher.history();
    let worst = worst_unavailable(&history, 4);
    assert!(
        worst <= 1,
        "maxUnavailable 1 was violated across the restarts: {worst}\n{}",
        timeline(&history)
    );
}

#[tokio::test]
async fn a_pod_that_cannot_be_created_gives_failed_create_pod_and_a_warning() {
    use k8s_openapi::api::core::v1::ResourceQuota;
    let e = env("sts-quota").await;
    let quota: ResourceQuota = serde_json::from_value(json!({
        "metadata": {"name": "one-pod"},
        "spec": {"hard": {"pods": "1"}}
    }))
    .expect("quota literal");
    e.ns.api::<ResourceQuota>()
        .create(&PostParams::default(), &quota)
        .await
        .expect("create the quota");
    // The quota controller must have counted before the API server enforces it.
    support::eventually("the quota to be counted", MINUTE, || async {
        let q =
            e.ns.api::<ResourceQuota>()
                .get("one-pod")
                .await
                .map_err(|e| e.to_string())?;
        q.status
            .and_then(|s| s.hard)
            .filter(|h| h.contains_key("pods"))
            .map(|_| ())
            .ok_or_else(|| "no status.hard yet".to_string())
    })
    .await;
    e.create(&sts(
        "web",
        2,
        "v1",
        false,
        json!({"podManagementPolicy": "Parallel"}),
    ))
    .await;
    let set = e
        .wait_set("web", "condition FailedCreatePod=True", 2 * MINUTE, |s| {
            s.status
                .as_ref()
                .and_then(|st| st.conditions.as_ref())
                .is_some_and(|c| {
                    c.iter()
                        .any(|c| c.type_ == "FailedCreatePod" && c.status == "True")
                })
        })
        .await;
    let condition = set
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_ == "FailedCreatePod")
        .expect("the condition");
    assert!(
        condition
            .message
            .as_deref()
            .is_some_and(|m| m.starts_with("StatefulPodControl failed to create Pod error:")),
        "{condition:?}"
    );
    support::eventually("a FailedCreate Warning Event", MINUTE, || async {
        let events = set_events(&e, "web").await;
        events
            .iter()
            .any(|(r, m)| r == "FailedCreate" && m.starts_with("create Pod web-"))
            .then_some(())
            .ok_or_else(|| format!("{events:?}"))
    })
    .await;
    assert_eq!(
        e.live_pods("web").await.len(),
        1,
        "the quota allows one pod"
    );
}

/// A StorageClass of the local hostPath provisioner that allows expansion, removed on drop.
/// (The hostPath volume plugin cannot grow a volume, so the test plays the storage driver's
/// resizer: it raises `status.capacity` of a PVC once graft has raised its request.)
struct ExpandableClass {
    name: String,
}

impl ExpandableClass {
    async fn new(client: &kube::Client, name: &str) -> ExpandableClass {
        let api: Api<k8s_openapi::api::storage::v1::StorageClass> = Api::all(client.clone());
        let class = serde_json::from_value(json!({
            "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": name},
            "provisioner": "kubernetes.io/host-path",
            "allowVolumeExpansion": true,
            "volumeBindingMode": "Immediate"
        }))
        .expect("valid StorageClass literal");
        api.create(&PostParams::default(), &class)
            .await
            .expect("create the StorageClass");
        ExpandableClass {
            name: name.to_string(),
        }
    }
}

impl Drop for ExpandableClass {
    fn drop(&mut self) {
        // As TestNamespace's drop: a thread with its own runtime and client (the test's runtime,
        // which drives the test's client, is blocked here).
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                if let Ok(client) = support::new_client().await {
                    let api: Api<k8s_openapi::api::storage::v1::StorageClass> = Api::all(client);
                    let _ = api.delete(&name, &DeleteParams::default()).await;
                }
            });
        })
        .join();
    }
}

fn requested(c: &PersistentVolumeClaim) -> String {
    c.spec
        .as_ref()
        .and_then(|s| s.resources.as_ref())
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"))
        .map(|q| q.0.clone())
        .unwrap_or_default()
}

#[tokio::test]
async fn on_pod_rolling_update_expands_pvcs_one_pod_at_a_time_without_restarting_pods() {
    let e = env("sts-pvc-expand").await;
    let class = ExpandableClass::new(&e.client, &format!("{}-expand", e.ns.name)).await;
    let claim = |size: &str| {
        json!([{
            "metadata": {"name": "data"},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": class.name,
                "resources": {"requests": {"storage": size}}}
        }])
    };
    e.create(&sts(
        "web",
        2,
        "v1",
        true,
        json!({
            "podManagementPolicy": "Parallel",
            "updateStrategy": in_place_strategy(1, 0),
            "volumeClaimTemplates": claim("16Mi"),
            "volumeClaimUpdateStrategy": {"type": "OnPodRollingUpdate"}
        }),
    ))
    .await;
    e.settled("web", 2).await;
    let before = e.live_pods("web").await;
    let watcher = PodWatcher::start(&e.client, &e.ns.name, "app=web");

    e.patch_spec("web", json!({"volumeClaimTemplates": claim("32Mi")}))
        .await;
    // The highest ordinal's PVC first; while it has not grown, the other one waits
    // (maxUnavailable 1: a pod whose PVC is growing counts as unavailable).
    let grown = |c: &PersistentVolumeClaim| requested(c) == "32Mi";
    let first = wait_for(
        &e.claims,
        "data-web-1",
        "request raised to 32Mi",
        MINUTE,
        grown,
    )
    .await;
    assert_eq!(
        first
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("apps.kruise.io/owned-by-asts"))
            .map(String::as_str),
        Some("web"),
        "the resized PVC names its set as kruise does"
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    let other = e.claims.get("data-web-0").await.expect("read data-web-0");
    assert_eq!(
        requested(&other),
        "16Mi",
        "the second PVC waits while the first has not grown"
    );
    // The storage driver grows the volume.
    for name in ["data-web-1", "data-web-0"] {
        if name == "data-web-0" {
            wait_for(&e.claims, name, "request raised to 32Mi", MINUTE, grown).await;
        }
        e.claims
            .patch_status(
                name,
                &PatchParams::default(),
                &Patch::Merge(&json!({"status": {"capacity": {"storage": "32Mi"}}})),
            )
            .await
            .expect("grow the PVC's capacity");
    }
    let set = e
        .wait_set("web", "both PVCs compatible and ready", 2 * MINUTE, |s| {
            let st = s.status.clone().unwrap_or_default();
            st.observed_generation >= s.metadata.generation.unwrap_or(0)
                && st.volume_claims.iter().flatten().any(|v| {
                    v.volume_claim_name == "data"
                        && v.compatible_replicas == 2
                        && v.compatible_ready_replicas == 2
                })
        })
        .await;
    assert_eq!(set.status.unwrap_or_default().ready_replicas, 2);
    let after = e.live_pods("web").await;
    for (name, pod) in &before {
        assert_eq!(uid(&after[name]), uid(pod), "{name} kept");
        assert_eq!(
            app_status(&after[name]).map(|s| s.restart_count),
            Some(0),
            "{name} not restarted"
        );
    }
    let history = watcher.history();
    assert!(
        worst_unavailable(&history, 2) <= 1,
        "never more than 1 pod unavailable:\n{}",
        timeline(&history)
    );
    let events = set_events(&e, "web").await;
    for claim in ["data-web-1", "data-web-0"] {
        let pod = claim.trim_start_matches("data-");
        assert!(
            events
                .iter()
                .any(|(reason, message)| reason == "SuccessfulResize"
                    && message
                        == &format!("resize Claim {claim} Pod {pod} in StatefulSet web success")),
            "a SuccessfulResize Event for {claim}: {events:?}"
        );
    }
}

#[tokio::test]
async fn pre_download_pulls_the_new_image_for_the_pods_the_partition_keeps_then_goes() {
    use graft_api::apps::v1alpha1::ImagePullJob;
    let e = env("sts-predl").await;
    // More than 3 replicas and a partition: kruise pre-downloads for such a rollout.
    e.create(&sts(
        "web",
        4,
        "v1",
        true,
        json!({"podManagementPolicy": "Parallel", "updateStrategy": in_place_strategy(1, 2)}),
    ))
    .await;
    let v1 = e.settled("web", 4).await;
    let current = v1
        .status
        .and_then(|s| s.update_revision)
        .expect("a revision");
    e.patch_spec("web", json!({"template": template("web", "v2", true)}))
        .await;
    let set = e
        .wait_set(
            "web",
            "ordinals 2 and 3 updated and ready",
            3 * MINUTE,
            |s| {
                let st = s.status.clone().unwrap_or_default();
                st.observed_generation >= s.metadata.generation.unwrap_or(0)
                    && st.updated_ready_replicas == 2
                    && st.ready_replicas == 4
            },
        )
        .await;
    let update = set
        .status
        .clone()
        .and_then(|s| s.update_revision)
        .expect("update revision");
    assert_ne!(update, current);
    let hash = update.rsplit('-').next().unwrap_or_default().to_string();

    let jobs: Api<ImagePullJob> = e.ns.api();
    let listed = jobs.list(&ListParams::default()).await.expect("list").items;
    let names: Vec<String> = listed
        .iter()
        .map(|j| j.metadata.name.clone().unwrap_or_default())
        .collect();
    assert_eq!(
        names,
        vec![format!("{update}-app")],
        "one job, for the changed container only, named <updateRevision>-<container>"
    );
    let owner = listed[0]
        .metadata
        .owner_references
        .as_ref()
        .and_then(|o| o.first())
        .expect("an owner reference");
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str(), owner.controller),
        ("StatefulSet", "web", Some(true))
    );
    let spec = serde_json::to_value(&listed[0].spec).expect("job spec as JSON");
    assert_eq!(spec["image"], json!(image("app:v2")));
    assert_eq!(
        spec["podSelector"],
        json!({"matchLabels": {"app": "web"}, "matchExpressions": [
            {"key": "controller-revision-hash", "operator": "NotIn", "values": [update, hash]}
        ]})
    );
    // The selector picks exactly the pods the partition keeps at the old revision.
    let selected: BTreeSet<String> = e
        .pods
        .list(&ListParams::default().labels(&format!(
            "app=web,controller-revision-hash notin ({update},{hash})"
        )))
        .await
        .expect("list pods")
        .items
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect();
    assert_eq!(
        selected,
        BTreeSet::from(["web-0".to_string(), "web-1".to_string()])
    );
    let revision: ControllerRevision = e.ns.api().get(&update).await.expect("update revision");
    assert_eq!(
        revision
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("apps.kruise.io/pre-predownload-created"))
            .map(String::as_str),
        Some("true"),
        "the update revision is marked as pre-downloaded"
    );

    // Once the revisions converge, the job goes.
    e.patch_spec("web", json!({"updateStrategy": in_place_strategy(1, 0)}))
        .await;
    e.settled("web", 4).await;
    support::eventually("the pre-download job deleted", MINUTE, || async {
        match jobs.list(&ListParams::default()).await {
            Ok(l) if l.items.is_empty() => Ok(()),
            Ok(l) => Err(format!("{} job(s) left", l.items.len())),
            Err(err) => Err(err.to_string()),
        }
    })
    .await;
}

/// The label a test's lifecycle hook waits on (the test plays the user's hook controller).
const HOOK: &str = "hooks.example.io/hold";

/// [`template`] with the hook label, so that every pod starts hooked.
fn hooked_template(name: &str, tag: &str, in_place: bool) -> Value {
    let mut t = template(name, tag, in_place);
    t["metadata"]["labels"][HOOK] = json!("true");
    t
}

fn lifecycle_state(labels: &BTreeMap<String, String>) -> &str {
    labels
        .get("lifecycle.apps.kruise.io/state")
        .map(String::as_str)
        .unwrap_or_default()
}

fn pod_labels(p: &Pod) -> BTreeMap<String, String> {
    p.metadata.labels.clone().unwrap_or_default()
}

/// `(status, message)` of the pod condition `type_`.
fn pod_condition(p: &Pod, type_: &str) -> Option<(String, String)> {
    p.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.message.clone().unwrap_or_default()))
}

impl Env {
    /// Set (`Some`) or remove (`None`) the hook label of pod `name`, as a hook controller does.
    async fn set_hook_label(&self, name: &str, value: Option<&str>) {
        self.pods
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(&json!({"metadata": {"labels": {HOOK: value}}})),
            )
            .await
            .unwrap_or_else(|err| panic!("patch the hook label of {name}: {err}"));
    }
}

/// The lifecycle states a pod went through, consecutive repeats folded.
fn lifecycle_path(history: &[PodState], name: &str) -> Vec<String> {
    let mut path: Vec<String> = Vec::new();
    for s in history.iter().filter(|s| s.name == name && !s.deleted) {
        let state = lifecycle_state(&s.labels).to_string();
        if path.last() != Some(&state) {
            path.push(state);
        }
    }
    path
}

#[tokio::test]
async fn pre_delete_hook_holds_the_scaled_in_pod_in_preparing_delete_until_released() {
    let e = env("sts-predelete").await;
    e.create(&sts(
        "web",
        3,
        "v1",
        false,
        json!({
            "podManagementPolicy": "Parallel",
            "template": hooked_template("web", "v1", false),
            "lifecycle": {"preDelete": {"labelsHandler": {HOOK: "true"}}}
        }),
    ))
    .await;
    e.settled("web", 3).await;
    let before = e.live_pods("web").await;
    let watcher = PodWatcher::start(&e.client, &e.ns.name, "app=web");
    tokio::time::sleep(Duration::from_millis(500)).await;
    e.patch_spec("web", json!({"replicas": 2})).await;
    let held = wait_for(
        &e.pods,
        "web-2",
        "lifecycle state PreparingDelete, not deleted",
        MINUTE,
        |p| lifecycle_state(&pod_labels(p)) == "PreparingDelete",
    )
    .await;
    assert_eq!(uid(&held), uid(&before["web-2"]), "web-2 is the same pod");
    // While the hook holds it, it stays.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let still = e.pods.get("web-2").await.expect("web-2 still exists");
    assert!(
        still.metadata.deletion_timestamp.is_none()
            && lifecycle_state(&pod_labels(&still)) == "PreparingDelete"
            && pod_labels(&still).contains_key(HOOK),
        "web-2 must wait in PreparingDelete while hooked: {:?}",
        still.metadata
    );
    // The hook controller is done: it releases the pod, graft deletes it.
    e.set_hook_label("web-2", None).await;
    e.settled("web", 2).await;
    support::eventually("web-2 gone", MINUTE, || async {
        match e.pods.get_opt("web-2").await {
            Ok(None) => Ok(()),
            Ok(Some(p)) => Err(format!(
                "still there, deleting {}",
                p.metadata.deletion_timestamp.is_some()
            )),
            Err(err) => Err(err.to_string()),
        }
    })
    .await;
    let history = watcher.history();
    let web2: Vec<&PodState> = history.iter().filter(|s| s.name == "web-2").collect();
    assert!(
        web2.iter()
            .any(|s| lifecycle_state(&s.labels) == "PreparingDelete" && s.labels.contains_key(HOOK)),
        "web-2 was seen hooked in PreparingDelete\n{}",
        timeline(&history)
    );
    assert!(
        web2.iter()
            .filter(|s| s.deleting || s.deleted)
            .all(|s| !s.labels.contains_key(HOOK)),
        "web-2 was deleted while the preDelete hook still held it\n{}",
        timeline(&history)
    );
    assert!(
        web2.iter().any(|s| s.deleting || s.deleted),
        "the watcher saw web-2's deletion\n{}",
        timeline(&history)
    );
    let after = e.live_pods("web").await;
    for (name, p) in &after {
        assert_eq!(uid(p), uid(&before[name]), "{name} kept");
    }
    assert!(
        history
            .iter()
            .filter(|s| s.name != "web-2")
            .all(|s| !s.deleting && !s.deleted),
        "only web-2 goes\n{}",
        timeline(&history)
    );
    support::eventually("a SuccessfulDelete Event", MINUTE, || async {
        let events = set_events(&e, "web").await;
        events
            .iter()
            .any(|(r, m)| {
                r == "SuccessfulDelete" && m == "delete Pod web-2 in StatefulSet web successful"
            })
            .then_some(())
            .ok_or_else(|| format!("{events:?}"))
    })
    .await;
}

#[tokio::test]
async fn in_place_update_hook_holds_the_pod_in_preparing_update_until_released() {
    in_place_update_hook("sts-inplace-hook", false).await;
}

/// With `markPodNotReady`, the pod also goes out of service (`KruisePodReady` False, so `Ready`
/// False) while the hook holds it, and back in once it is Normal again.
#[tokio::test]
async fn in_place_update_hook_with_mark_pod_not_ready_holds_the_pod_not_ready() {
    in_place_update_hook("sts-inplace-hook-nr", true).await;
}

/// One pod with an inPlaceUpdate hook (the hook label in the template): an image change takes it
/// to `PreparingUpdate` and no further while the label is on it; once the test removes the label
/// it is updated in place (`Updating`, then `Updated`: the hook no longer holds it) and, the label
/// put back, `Normal`.
async fn in_place_update_hook(prefix: &str, mark_pod_not_ready: bool) {
    let e = env(prefix).await;
    e.create(&sts(
        "web",
        1,
        "v1",
        true,
        // Parallel: with OrderedReady a pod in PreparingUpdate is unavailable, so kruise's scale
        // loop (and graft's) waits for it before the rolling update that would release it.
        json!({
            "podManagementPolicy": "Parallel",
            "updateStrategy": in_place_strategy(1, 0),
            "template": hooked_template("web", "v1", true),
            "lifecycle": {"inPlaceUpdate": {"labelsHandler": {HOOK: "true"}, "markPodNotReady": mark_pod_not_ready}}
        }),
    ))
    .await;
    if mark_pod_not_ready {
        // kruise's podreadiness controller gives a pod with the gate the condition, True.
        wait_for(
            &e.pods,
            "web-0",
            "condition KruisePodReady=True on the new pod (it has the KruisePodReady gate)",
            MINUTE,
            |p| pod_condition(p, "KruisePodReady").is_some_and(|(s, _)| s == "True"),
        )
        .await;
    }
    let v1 = e.settled("web", 1).await;
    let old_revision = v1
        .status
        .and_then(|s| s.update_revision)
        .unwrap_or_default();
    let before = e.pods.get("web-0").await.expect("web-0");
    assert_eq!(
        before
            .spec
            .as_ref()
            .and_then(|s| s.readiness_gates.as_ref())
            .is_some_and(|g| g.iter().any(|g| g.condition_type == "KruisePodReady")),
        mark_pod_not_ready,
        "markPodNotReady (and only it) gives the pod the KruisePodReady readiness gate"
    );
    let watcher = PodWatcher::start(&e.client, &e.ns.name, "app=web");
    tokio::time::sleep(Duration::from_millis(500)).await;
    e.patch_spec(
        "web",
        json!({"template": {"spec": {"containers": containers("v2")}}}),
    )
    .await;
    wait_for(
        &e.pods,
        "web-0",
        "lifecycle state PreparingUpdate (with markPodNotReady: KruisePodReady=False, Ready=False)",
        MINUTE,
        |p| {
            lifecycle_state(&pod_labels(p)) == "PreparingUpdate"
                && (!mark_pod_not_ready
                    || (pod_condition(p, "KruisePodReady").is_some_and(|(s, _)| s == "False")
                        && pod_condition(p, "Ready").is_some_and(|(s, _)| s == "False")))
        },
    )
    .await;
    // Held: not updated while the hook label is on it.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let held = e.pods.get("web-0").await.expect("web-0");
    assert_eq!(lifecycle_state(&pod_labels(&held)), "PreparingUpdate");
    assert_eq!(
        revision_of(&held),
        old_revision,
        "still at the old revision"
    );
    assert_eq!(
        app_status(&held).map(|c| c.restart_count),
        Some(0),
        "not restarted while hooked"
    );
    let ready = pod_condition(&held, "Ready").map(|(s, _)| s);
    if mark_pod_not_ready {
        let (_, reasons) = pod_condition(&held, "KruisePodReady").unwrap_or_default();
        assert!(
            reasons.contains("preUpdateHook"),
            "the not-ready reason is the lifecycle's: {reasons}"
        );
        assert_eq!(ready.as_deref(), Some("False"), "held out of service");
    } else {
        assert_eq!(ready.as_deref(), Some("True"), "still in service");
    }

    // Released: updated in place, then Updated (the hook is no longer all hooked).
    e.set_hook_label("web-0", None).await;
    let updated = wait_for(
        &e.pods,
        "web-0",
        "updated in place to v2, lifecycle state Updated",
        2 * MINUTE,
        |p| {
            lifecycle_state(&pod_labels(p)) == "Updated"
                && app_status(p).is_some_and(|c| {
                    c.image_id.contains(&support::image_digest("app:v2")) && c.ready
                })
        },
    )
    .await;
    assert_eq!(uid(&updated), uid(&before), "the same pod");
    // The hook controller hooks it again: back to Normal and in service.
    e.set_hook_label("web-0", Some("true")).await;
    let done = e.settled("web", 1).await;
    let pod = wait_for(
        &e.pods,
        "web-0",
        "lifecycle Normal, Ready=True (with markPodNotReady: KruisePodReady=True)",
        MINUTE,
        |p| {
            lifecycle_state(&pod_labels(p)) == "Normal"
                && (!mark_pod_not_ready
                    || pod_condition(p, "KruisePodReady").is_some_and(|(s, _)| s == "True"))
                && pod_condition(p, "Ready").is_some_and(|(s, _)| s == "True")
        },
    )
    .await;
    assert_eq!(uid(&pod), uid(&before), "the same pod");
    assert_eq!(app_status(&pod).map(|c| c.restart_count), Some(1));
    assert_eq!(
        Some(revision_of(&pod)),
        done.status.and_then(|s| s.update_revision)
    );
    let history = watcher.history();
    let first_v2 = history
        .iter()
        .find(|s| {
            s.name == "web-0"
                && s.spec_images
                    .get("app")
                    .is_some_and(|i| i.ends_with("app:v2"))
        })
        .unwrap_or_else(|| panic!("web-0 never got v2\n{}", timeline(&history)));
    assert!(
        !first_v2.labels.contains_key(HOOK),
        "web-0 was updated while the inPlaceUpdate hook held it\n{}",
        timeline(&history)
    );
    let path = lifecycle_path(&history, "web-0");
    assert_eq!(
        path,
        ["Normal", "PreparingUpdate", "Updating", "Updated", "Normal"],
        "{}",
        timeline(&history)
    );
    assert!(history.iter().all(|s| !s.deleting && !s.deleted));
}

#[tokio::test]
async fn a_pod_whose_identity_label_was_changed_is_repaired_in_place() {
    let e = env("sts-repair").await;
    e.create(&sts(
        "web",
        2,
        "v1",
        false,
        json!({"podManagementPolicy": "Parallel"}),
    ))
    .await;
    e.settled("web", 2).await;
    let before = e.live_pods("web").await;
    let watcher = PodWatcher::start(&e.client, &e.ns.name, "app=web");
    tokio::time::sleep(Duration::from_millis(500)).await;
    e.pods
        .patch(
            "web-1",
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"labels": {
                "statefulset.kubernetes.io/pod-name": "someone-else",
                "apps.kubernetes.io/pod-index": null
            }}})),
        )
        .await
        .expect("break web-1's identity");
    let repaired = wait_for(
        &e.pods,
        "web-1",
        "the pod-name and pod-index labels restored",
        MINUTE,
        |p| {
            let l = pod_labels(p);
            l.get("statefulset.kubernetes.io/pod-name")
                .is_some_and(|v| v == "web-1")
                && l.get("apps.kubernetes.io/pod-index")
                    .is_some_and(|v| v == "1")
        },
    )
    .await;
    assert_eq!(
        uid(&repaired),
        uid(&before["web-1"]),
        "repaired, not recreated"
    );
    assert_eq!(
        app_status(&repaired).map(|c| c.restart_count),
        Some(0),
        "not restarted"
    );
    assert_eq!(
        repaired.spec.as_ref().and_then(|s| s.hostname.as_deref()),
        Some("web-1")
    );
    e.settled("web", 2).await;
    let history = watcher.history();
    assert!(
        history.iter().any(|s| s.name == "web-1"
            && s.labels.get("statefulset.kubernetes.io/pod-name")
                == Some(&"someone-else".to_string())),
        "the watcher saw the broken identity\n{}",
        timeline(&history)
    );
    assert!(
        history.iter().all(|s| !s.deleting && !s.deleted),
        "no pod was deleted\n{}",
        timeline(&history)
    );
    let after = e.live_pods("web").await;
    assert_eq!(uid(&after["web-0"]), uid(&before["web-0"]));
    support::eventually("a SuccessfulUpdate Event", MINUTE, || async {
        let events = set_events(&e, "web").await;
        events
            .iter()
            .any(|(r, m)| {
                r == "SuccessfulUpdate" && m == "update Pod web-1 in StatefulSet web successful"
            })
            .then_some(())
            .ok_or_else(|| format!("{events:?}"))
    })
    .await;
}

#[tokio::test]
async fn a_foreign_revision_holding_the_name_steps_the_collision_count() {
    let e = env("sts-collision").await;
    let revisions: Api<ControllerRevision> = e.ns.api();
    let spec = json!({"podManagementPolicy": "Parallel"});
    // Learn the name the first revision gets, then remove that set and its history.
    e.create(&sts("web", 0, "v1", false, spec.clone())).await;
    let first = e.settled("web", 0).await;
    let taken = first
        .status
        .and_then(|s| s.update_revision)
        .expect("an update revision");
    e.sets
        .delete("web", &DeleteParams::background())
        .await
        .expect("delete the set");
    support::eventually("the set and its revision gone", MINUTE, || async {
        let set = e.sets.get_opt("web").await.map_err(|e| e.to_string())?;
        let rev = revisions.get_opt(&taken).await.map_err(|e| e.to_string())?;
        match (set, rev) {
            (None, None) => Ok(()),
            (s, r) => Err(format!("set {}, revision {}", s.is_some(), r.is_some())),
        }
    })
    .await;
    // Someone else's revision, other data, under that name (no owner, not matching the selector).
    let foreign: ControllerRevision = serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "ControllerRevision",
        "metadata": {"name": taken, "labels": {"owner": "someone-else"}},
        "data": {"foreign": true},
        "revision": 1
    }))
    .expect("ControllerRevision literal");
    let foreign = revisions
        .create(&PostParams::default(), &foreign)
        .await
        .expect("create the foreign revision");

    e.create(&sts("web", 2, "v1", false, spec)).await;
    let set = e
        .wait_set(
            "web",
            "collisionCount 1 and every counter at 2",
            MINUTE,
            |s| settled(s, 2) && s.status.as_ref().and_then(|st| st.collision_count) == Some(1),
        )
        .await;
    let st = set.status.unwrap_or_default();
    let update = st.update_revision.unwrap_or_default();
    assert_ne!(update, taken, "a new revision name");
    assert!(update.starts_with("web-"), "{update}");
    let ours = revisions.get(&update).await.expect("the set's revision");
    assert_eq!(
        ours.metadata
            .owner_references
            .iter()
            .flatten()
            .find(|o| o.controller == Some(true))
            .map(|o| o.uid.clone()),
        set.metadata.uid,
        "the new revision is the set's"
    );
    for (name, p) in e.live_pods("web").await {
        assert_eq!(revision_of(&p), update, "{name} at the new revision");
    }
    let now = revisions
        .get(&taken)
        .await
        .expect("the foreign revision is still there");
    assert_eq!(now.metadata.uid, foreign.metadata.uid);
    assert_eq!(
        now.metadata.resource_version, foreign.metadata.resource_version,
        "the foreign revision untouched"
    );
    assert!(now.metadata.owner_references.unwrap_or_default().is_empty());
    assert_eq!(
        now.data.map(|d| d.0),
        Some(json!({"foreign": true})),
        "its data untouched"
    );
}

#[tokio::test]
async fn a_v1alpha1_statefulset_runs_and_updates_in_place() {
    use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
    let e = env("sts-v1alpha1").await;
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("apps.kruise.io", "v1alpha1", "StatefulSet"),
        "statefulsets",
    );
    let alpha: Api<DynamicObject> = Api::namespaced_with(e.client.clone(), &e.ns.name, &ar);
    let manifest = |tag: &str| {
        json!({
            "apiVersion": "apps.kruise.io/v1alpha1", "kind": "StatefulSet",
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 2,
                "serviceName": "web",
                "podManagementPolicy": "Parallel",
                "selector": {"matchLabels": {"app": "web"}},
                "template": template("web", tag, true),
                "updateStrategy": in_place_strategy(1, 0)
            }
        })
    };
    let apply = PatchParams::apply("graft-test").force();
    alpha
        .patch("web", &apply, &Patch::Apply(&manifest("v1")))
        .await
        .expect("apply the v1alpha1 StatefulSet");
    let beta = e.settled("web", 2).await;
    let before = e.live_pods("web").await;
    assert_eq!(
        before.keys().cloned().collect::<Vec<_>>(),
        ["web-0", "web-1"]
    );
    let read_alpha = alpha.get("web").await.expect("read as v1alpha1");
    assert_eq!(
        read_alpha.types.as_ref().map(|t| t.api_version.as_str()),
        Some("apps.kruise.io/v1alpha1")
    );
    let a = &read_alpha.data["status"];
    let b = serde_json::to_value(beta.status.clone().unwrap_or_default()).expect("status JSON");
    for field in [
        "observedGeneration",
        "replicas",
        "readyReplicas",
        "availableReplicas",
        "currentReplicas",
        "updatedReplicas",
        "currentRevision",
        "updateRevision",
    ] {
        assert_eq!(a[field], b[field], "status.{field} as v1alpha1 and v1beta1");
    }
    assert_eq!(a["replicas"], json!(2));
    assert!(
        a.get("updatedReadyReplicas").is_none(),
        "v1alpha1 has no updatedReadyReplicas: {a}"
    );
    let old_revision = beta
        .status
        .and_then(|s| s.update_revision)
        .unwrap_or_default();

    let watcher = PodWatcher::start(&e.client, &e.ns.name, "app=web");
    tokio::time::sleep(Duration::from_millis(500)).await;
    alpha
        .patch("web", &apply, &Patch::Apply(&manifest("v2")))
        .await
        .expect("apply the image change as v1alpha1");
    let done = e
        .wait_set(
            "web",
            "both pods at a new revision, ready",
            3 * MINUTE,
            |s| {
                settled(s, 2)
                    && s.status
                        .as_ref()
                        .and_then(|st| st.update_revision.as_deref())
                        .is_some_and(|r| r != old_revision)
            },
        )
        .await;
    let update = done
        .status
        .and_then(|s| s.update_revision)
        .unwrap_or_default();
    let v2 = support::image_digest("app:v2");
    for (name, p) in e.live_pods("web").await {
        assert_eq!(uid(&p), uid(&before[&name]), "{name} updated in place");
        assert_eq!(revision_of(&p), update, "{name}");
        let app = app_status(&p).expect("app status");
        assert!(
            app.image_id.contains(&v2),
            "{name} runs v2: {}",
            app.image_id
        );
        assert_eq!(app.restart_count, 1, "{name}: app restarted once");
    }
    let history = watcher.history();
    assert!(
        worst_unavailable(&history, 2) <= 1,
        "maxUnavailable 1 was violated\n{}",
        timeline(&history)
    );
    assert!(history.iter().all(|s| !s.deleting && !s.deleted));
    let read_alpha = alpha.get("web").await.expect("read as v1alpha1");
    assert_eq!(read_alpha.data["status"]["updateRevision"], json!(update));
    assert_eq!(read_alpha.data["status"]["updatedReplicas"], json!(2));
}
