//! Taking over from the real OpenKruise: an Advanced StatefulSet and a CloneSet that
//! kruise-manager 1.9.1 (`deploy/kruise/kruise`) created and rolled out in place are adopted by
//! graft with the same pods (no restart), the same ControllerRevisions, the same PVCs and the same
//! status; graft's next in-place rollout goes back to the revision kruise minted.
//!
//! kruise's webhooks are cluster-wide while it is installed, so this file is not part of the
//! parallel suite: feature `kruise-tests`, run alone by `make test-kruise` (part of `make test`).
#![cfg(feature = "kruise-tests")]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::Api;
use kube::api::{
    ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams, PostParams,
};
use serde_json::{Value, json};
use support::kruise::Kruise;
use support::{
    GraftControllers, PodState, PodWatcher, TestNamespace, client, eventually, image, install_crds,
    wait_for,
};

const MINUTE: Duration = Duration::from_secs(60);
const REPLICAS: i64 = 3;
/// The pod annotation kruise's in-place update leaves on every pod it updated (§2.6).
const INPLACE_STATE: &str = "apps.kruise.io/inplace-update-state";

/// The app (ready on `/readyz`) at `tag` and an untouched sidecar; with `gate`, the
/// `InPlaceUpdateReady` readiness gate an in-place Advanced StatefulSet must carry (kruise injects
/// it into CloneSet pods itself).
fn template(name: &str, tag: &str, gate: bool) -> Value {
    let mut t = json!({
        "metadata": {"labels": {"app": name}},
        "spec": {
            "terminationGracePeriodSeconds": 3,
            "containers": [
                {"name": "app", "image": image(&format!("app:{tag}")), "imagePullPolicy": "IfNotPresent",
                 "readinessProbe": {"httpGet": {"path": "/readyz", "port": 8080}, "periodSeconds": 1}},
                {"name": "sidecar", "image": image("sidecar:v1"), "imagePullPolicy": "IfNotPresent"}
            ]
        }
    });
    if gate {
        t["spec"]["readinessGates"] = json!([{"conditionType": "InPlaceUpdateReady"}]);
    }
    t
}

/// One of the two workloads, read as plain JSON: the status exactly as its writer left it.
struct Workload {
    kind: &'static str,
    name: &'static str,
    /// graft's module that logs its reconciles (`graft_controllers::<module>::controller`).
    module: &'static str,
    /// The status fields that must read the same before and after the takeover.
    status_fields: &'static [&'static str],
    manifest: Value,
    api: Api<DynamicObject>,
}

fn workloads(client: &kube::Client, ns: &str) -> (Workload, Workload) {
    let api = |group_version: &str, kind: &str, plural: &str| {
        let (group, version) = group_version.split_once('/').unwrap_or(("", group_version));
        let gvk = GroupVersionKind::gvk(group, version, kind);
        Api::namespaced_with(
            client.clone(),
            ns,
            &ApiResource::from_gvk_with_plural(&gvk, plural),
        )
    };
    let sts = Workload {
        kind: "StatefulSet",
        name: "db",
        module: "statefulset",
        status_fields: &[
            "replicas",
            "readyReplicas",
            "availableReplicas",
            "currentReplicas",
            "updatedReplicas",
            "updatedReadyReplicas",
            "updatedAvailableReplicas",
            "currentRevision",
            "updateRevision",
            "collisionCount",
        ],
        manifest: json!({
            "apiVersion": "apps.kruise.io/v1beta1", "kind": "StatefulSet",
            "metadata": {"name": "db"},
            "spec": {
                "replicas": REPLICAS,
                "serviceName": "db",
                "podManagementPolicy": "Parallel",
                "selector": {"matchLabels": {"app": "db"}},
                "template": template("db", "v1", true),
                "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {
                    "podUpdatePolicy": "InPlaceIfPossible", "maxUnavailable": 1
                }},
                "volumeClaimTemplates": [{
                    "metadata": {"name": "data"},
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "16Mi"}}}
                }]
            }
        }),
        api: api("apps.kruise.io/v1beta1", "StatefulSet", "statefulsets"),
    };
    let cs = Workload {
        kind: "CloneSet",
        name: "web",
        module: "cloneset",
        status_fields: &[
            "replicas",
            "readyReplicas",
            "availableReplicas",
            "updatedReplicas",
            "updatedReadyReplicas",
            "updatedAvailableReplicas",
            "expectedUpdatedReplicas",
            "currentRevision",
            "updateRevision",
            "collisionCount",
        ],
        manifest: json!({
            "apiVersion": "apps.kruise.io/v1alpha1", "kind": "CloneSet",
            "metadata": {"name": "web"},
            "spec": {
                "replicas": REPLICAS,
                "selector": {"matchLabels": {"app": "web"}},
                "template": template("web", "v1", false),
                "updateStrategy": {"type": "InPlaceIfPossible", "maxUnavailable": 1}
            }
        }),
        api: api("apps.kruise.io/v1alpha1", "CloneSet", "clonesets"),
    };
    (sts, cs)
}

/// What the test compares of a pod before and after the takeover.
#[derive(Clone, Debug, PartialEq)]
struct PodRecord {
    uid: String,
    restarts: BTreeMap<String, i32>,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
}

impl PodRecord {
    fn of(p: &Pod) -> PodRecord {
        PodRecord {
            uid: p.metadata.uid.clone().unwrap_or_default(),
            restarts: p
                .status
                .iter()
                .flat_map(|s| s.container_statuses.iter().flatten())
                .map(|c| (c.name.clone(), c.restart_count))
                .collect(),
            labels: p.metadata.labels.clone().unwrap_or_default(),
            annotations: p.metadata.annotations.clone().unwrap_or_default(),
        }
    }
}

/// A workload as its controller left it.
struct Snapshot {
    generation: i64,
    status: BTreeMap<&'static str, Value>,
    pods: BTreeMap<String, PodRecord>,
    revisions: BTreeMap<String, ControllerRevision>,
}

impl Workload {
    fn what(&self) -> String {
        format!("{} {}", self.kind, self.name)
    }

    async fn create(&self) {
        let obj: DynamicObject =
            serde_json::from_value(self.manifest.clone()).expect("valid workload literal");
        self.api
            .create(&PostParams::default(), &obj)
            .await
            .unwrap_or_else(|e| panic!("creating {}: {e}", self.what()));
    }

    async fn get(&self) -> DynamicObject {
        self.api
            .get(self.name)
            .await
            .unwrap_or_else(|e| panic!("reading {}: {e}", self.what()))
    }

    /// Sets the app container's image, leaving the rest of the stored template (kruise's
    /// defaults included) as it is.
    async fn set_app_image(&self, tag: &str) {
        for _ in 0..10 {
            let mut obj = self.get().await;
            let app = &mut obj.data["spec"]["template"]["spec"]["containers"][0];
            assert_eq!(app["name"], "app", "{}: the first container", self.what());
            app["image"] = json!(image(&format!("app:{tag}")));
            match self
                .api
                .replace(self.name, &PostParams::default(), &obj)
                .await
            {
                Ok(_) => return,
                Err(kube::Error::Api(e)) if e.code == 409 => continue,
                Err(e) => panic!("setting app:{tag} on {}: {e}", self.what()),
            }
        }
        panic!(
            "setting app:{tag} on {}: conflicts 10 times in a row",
            self.what()
        );
    }

    /// Changes an annotation of the workload (not of its template): a watch event, so one more
    /// reconcile, and nothing to roll out.
    async fn poke(&self, n: usize) {
        let patch = json!({"metadata": {"annotations": {"graft.dev/test-poke": n.to_string()}}});
        self.api
            .patch(self.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap_or_else(|e| panic!("annotating {}: {e}", self.what()));
    }

    /// Its pods that are not terminating, by name.
    async fn pods(&self, pods: &Api<Pod>) -> BTreeMap<String, Pod> {
        pods.list(&ListParams::default().labels(&format!("app={}", self.name)))
            .await
            .expect("list pods")
            .items
            .into_iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .map(|p| (p.metadata.name.clone().unwrap_or_default(), p))
            .collect()
    }

    /// Its ControllerRevisions (controller owner reference to it), by name.
    async fn revisions(
        &self,
        revisions: &Api<ControllerRevision>,
    ) -> BTreeMap<String, ControllerRevision> {
        revisions
            .list(&ListParams::default())
            .await
            .expect("list controller revisions")
            .items
            .into_iter()
            .filter(|r| {
                r.metadata.owner_references.iter().flatten().any(|o| {
                    o.controller == Some(true) && o.kind == self.kind && o.name == self.name
                })
            })
            .map(|r| (r.metadata.name.clone().unwrap_or_default(), r))
            .collect()
    }

    fn status(&self, obj: &DynamicObject) -> BTreeMap<&'static str, Value> {
        self.status_fields
            .iter()
            .map(|f| (*f, obj.data["status"][*f].clone()))
            .collect()
    }

    async fn snapshot(&self, pods: &Api<Pod>, revisions: &Api<ControllerRevision>) -> Snapshot {
        let obj = self.get().await;
        Snapshot {
            generation: obj.metadata.generation.unwrap_or(-1),
            status: self.status(&obj),
            pods: self
                .pods(pods)
                .await
                .iter()
                .map(|(n, p)| (n.clone(), PodRecord::of(p)))
                .collect(),
            revisions: self.revisions(revisions).await,
        }
    }

    /// Waits until the rollout to `tag` is complete: the status of the current generation counts
    /// every pod ready and updated, current revision = update revision (= `revision` if given),
    /// and every pod runs app:`tag`, ready.
    async fn wait_rolled_out(
        &self,
        pods: &Api<Pod>,
        tag: &str,
        revision: Option<&str>,
        who: &str,
    ) -> DynamicObject {
        let expected = format!(
            "{who}'s rollout of {} to app:{tag} complete: status of the current generation with every counter at {REPLICAS}, currentRevision = updateRevision{}",
            self.what(),
            revision.map(|r| format!(" = {r}")).unwrap_or_default()
        );
        let obj = wait_for(&self.api, self.name, &expected, 4 * MINUTE, |o| {
            rolled_out(self, o, revision)
        })
        .await;
        eventually(
            &format!("every pod of {} on app:{tag}, ready", self.what()),
            2 * MINUTE,
            || async { pods_on(&self.pods(pods).await, tag) },
        )
        .await;
        obj
    }

    /// graft's `reconciled` log lines for this workload so far: the `actions=` of each.
    fn reconciles(&self, log: &Path, ns: &str) -> Vec<usize> {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let module = format!("::{}::", self.module);
        let key = format!("{ns}/{} ", self.name);
        text.lines()
            .map(strip_ansi)
            .filter(|l| l.contains(": reconciled ") && l.contains(&module) && l.contains(&key))
            .map(|l| {
                l.split_whitespace()
                    .find_map(|w| w.strip_prefix("actions="))
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(usize::MAX)
            })
            .collect()
    }
}

fn rolled_out(w: &Workload, o: &DynamicObject, revision: Option<&str>) -> bool {
    let st = &o.data["status"];
    let counted = |f: &str| st[f].as_i64() == Some(REPLICAS);
    let mut fields = vec![
        "replicas",
        "readyReplicas",
        "availableReplicas",
        "updatedReplicas",
        "updatedReadyReplicas",
    ];
    if w.kind == "StatefulSet" {
        fields.push("currentReplicas");
    }
    st["observedGeneration"].as_i64() == o.metadata.generation
        && fields.iter().all(|f| counted(f))
        && st["updateRevision"].is_string()
        && st["currentRevision"] == st["updateRevision"]
        && revision.is_none_or(|r| st["updateRevision"].as_str() == Some(r))
}

/// `Ok` when there are exactly [`REPLICAS`] pods, each with app:`tag` in its spec and running,
/// Ready and InPlaceUpdateReady; else what is not so.
fn pods_on(pods: &BTreeMap<String, Pod>, tag: &str) -> Result<(), String> {
    let want = image(&format!("app:{tag}"));
    let mut wrong = Vec::new();
    for (name, p) in pods {
        let spec_image = p
            .spec
            .iter()
            .flat_map(|s| &s.containers)
            .find(|c| c.name == "app")
            .and_then(|c| c.image.clone());
        let status = p.status.clone().unwrap_or_default();
        let running = status
            .container_statuses
            .iter()
            .flatten()
            .find(|c| c.name == "app")
            .map(|c| (c.image.clone(), c.ready));
        let conditions: BTreeMap<String, String> = status
            .conditions
            .iter()
            .flatten()
            .map(|c| (c.type_.clone(), c.status.clone()))
            .collect();
        let ok = spec_image.as_deref() == Some(want.as_str())
            && running == Some((want.clone(), true))
            && conditions.get("Ready").map(String::as_str) == Some("True")
            && conditions.get("InPlaceUpdateReady").map(String::as_str) == Some("True");
        if !ok {
            wrong.push(format!(
                "{name}: spec {spec_image:?}, running {running:?}, conditions {conditions:?}"
            ));
        }
    }
    if pods.len() as i64 != REPLICAS {
        wrong.push(format!("{} pods: {:?}", pods.len(), pods.keys()));
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(wrong.join("; "))
    }
}

fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The hash part of a pod's `controller-revision-hash` label (after the last `-`).
fn short_revision_hash(labels: &BTreeMap<String, String>) -> Option<String> {
    labels
        .get("controller-revision-hash")
        .map(|r| r.rsplit('-').next().unwrap_or_default().to_string())
}

/// A pod's labels without `controller-revision-hash`.
fn without_revision_hash(labels: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut l = labels.clone();
    l.remove("controller-revision-hash");
    l
}

/// The keys whose values differ between two maps, with both values.
fn map_diff<K: Ord + std::fmt::Debug, V: PartialEq + std::fmt::Debug>(
    before: &BTreeMap<K, V>,
    after: &BTreeMap<K, V>,
) -> String {
    let keys: BTreeSet<&K> = before.keys().chain(after.keys()).collect();
    keys.into_iter()
        .filter(|k| before.get(k) != after.get(k))
        .map(|k| format!("{k:?}: {:?} -> {:?}", before.get(k), after.get(k)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The revisions in `after` that are not in `before`, with their data next to the data of the
/// revisions that were there, for a failure message.
fn new_revisions(
    before: &BTreeMap<String, ControllerRevision>,
    after: &BTreeMap<String, ControllerRevision>,
) -> String {
    let show = |r: &ControllerRevision| {
        format!(
            "{} (revision {}, labels {:?}): {}",
            r.metadata.name.clone().unwrap_or_default(),
            r.revision,
            r.metadata.labels.clone().unwrap_or_default(),
            serde_json::to_string(&r.data).unwrap_or_default()
        )
    };
    let added: Vec<String> = after
        .iter()
        .filter(|(n, _)| !before.contains_key(*n))
        .map(|(_, r)| show(r))
        .collect();
    let gone: Vec<&String> = before.keys().filter(|n| !after.contains_key(*n)).collect();
    let old: Vec<String> = before.values().map(show).collect();
    format!(
        "new:\n{}\ngone: {gone:?}\nkruise's:\n{}",
        added.join("\n"),
        old.join("\n")
    )
}

/// One line per recorded pod state, for failure messages.
fn timeline(history: &[PodState]) -> String {
    history
        .iter()
        .map(|s| {
            format!(
                "{:>7.2}s {} uid={} ready={} deleting={} deleted={} rev={:?} containers={:?}",
                s.at.as_secs_f64(),
                s.name,
                s.uid,
                s.ready,
                s.deleting,
                s.deleted,
                s.labels.get("controller-revision-hash"),
                s.containers
                    .iter()
                    .map(|(n, image, _, restarts)| format!(
                        "{n}={} restarts={restarts}",
                        image.rsplit('/').next().unwrap_or_default()
                    ))
                    .collect::<Vec<_>>()
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// PVC name -> UID in the namespace.
async fn claims(api: &Api<PersistentVolumeClaim>) -> BTreeMap<String, String> {
    api.list(&ListParams::default())
        .await
        .expect("list PVCs")
        .items
        .into_iter()
        .map(|c| {
            (
                c.metadata.name.unwrap_or_default(),
                c.metadata.uid.unwrap_or_default(),
            )
        })
        .collect()
}

#[tokio::test]
async fn workloads_left_by_openkruise_are_taken_over_without_restarting_a_pod() {
    let client = client().await;
    // graft's CRDs must be there before: `kruise down` puts back what it found, and deletes the
    // CRDs (and so the workloads) that were not there.
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "kruise-takeover").await;
    let pods: Api<Pod> = ns.api();
    let revisions: Api<ControllerRevision> = ns.api();
    let pvcs: Api<PersistentVolumeClaim> = ns.api();
    let (sts, cs) = workloads(&client, &ns.name);
    let both = [&sts, &cs];

    // 1. OpenKruise creates both and rolls them out in place, app:v1 -> app:v2.
    let kruise = Kruise::up().await;
    for w in both {
        w.create().await;
    }
    let mut kruise_v1 = BTreeMap::new();
    for w in both {
        let o = w.wait_rolled_out(&pods, "v1", None, "kruise").await;
        let labels: BTreeMap<String, BTreeMap<String, String>> = w
            .pods(&pods)
            .await
            .into_iter()
            .map(|(n, p)| (n, p.metadata.labels.unwrap_or_default()))
            .collect();
        let revision = o.data["status"]["updateRevision"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        kruise_v1.insert(w.name, (revision, labels));
    }
    for w in both {
        w.set_app_image("v2").await;
    }
    let mut before = BTreeMap::new();
    for w in both {
        let o = w.wait_rolled_out(&pods, "v2", None, "kruise").await;
        let v2 = o.data["status"]["updateRevision"]
            .as_str()
            .unwrap_or_default();
        assert_ne!(
            v2,
            kruise_v1[w.name].0,
            "{}: kruise minted a revision for app:v2",
            w.what()
        );
        let snap = w.snapshot(&pods, &revisions).await;
        assert_eq!(
            snap.revisions.keys().collect::<BTreeSet<_>>(),
            BTreeSet::from([&kruise_v1[w.name].0, &v2.to_string()]),
            "{}: kruise's two revisions",
            w.what()
        );
        for (name, p) in &snap.pods {
            assert!(
                p.annotations.contains_key(INPLACE_STATE),
                "{name}: kruise's in-place update left no {INPLACE_STATE}: {:?}",
                p.annotations
            );
            assert_eq!(
                p.restarts.get("app"),
                Some(&1),
                "{name}: kruise updated app in place"
            );
        }
        eprintln!(
            "kruise takeover: {} as kruise left it: generation {}, revisions {:?}, pods' controller-revision-hash {:?}, status {:?}",
            w.what(),
            snap.generation,
            snap.revisions.keys(),
            snap.pods
                .values()
                .map(|p| p
                    .labels
                    .get("controller-revision-hash")
                    .cloned()
                    .unwrap_or_default())
                .collect::<Vec<_>>(),
            snap.status
        );
        before.insert(w.name, snap);
    }
    let claims_before = claims(&pvcs).await;
    assert_eq!(
        claims_before.len(),
        REPLICAS as usize,
        "the StatefulSet's PVCs: {claims_before:?}"
    );

    // 2. OpenKruise goes (graft's CRDs back), graft comes.
    let watcher = PodWatcher::start(&client, &ns.name, "");
    kruise.down().await;
    let controllers = GraftControllers::start(&ns.name);

    // 3. graft reconciles each workload a few times: at start, and after each of three
    // annotation changes on the workload.
    for w in both {
        eventually(
            &format!(
                "graft to reconcile {} (log {})",
                w.what(),
                controllers.log.display()
            ),
            2 * MINUTE,
            || async {
                match w.reconciles(&controllers.log, &ns.name).len() {
                    0 => Err("no `reconciled` line yet".to_string()),
                    _ => Ok(()),
                }
            },
        )
        .await;
        for n in 1..=3 {
            let seen = w.reconciles(&controllers.log, &ns.name).len();
            w.poke(n).await;
            eventually(
                &format!(
                    "graft to reconcile {} after annotation change {n}",
                    w.what()
                ),
                MINUTE,
                || async {
                    let now = w.reconciles(&controllers.log, &ns.name).len();
                    if now > seen {
                        Ok(())
                    } else {
                        Err(format!("{now} `reconciled` lines, as before the change"))
                    }
                },
            )
            .await;
        }
    }

    // 4. Nothing moved.
    let takeover = watcher.history();
    for w in both {
        let b = &before[w.name];
        let actions = w.reconciles(&controllers.log, &ns.name);
        assert_eq!(
            actions.last(),
            Some(&0),
            "{}: graft still plans actions after the takeover (actions per reconcile: {actions:?}; log {})",
            w.what(),
            controllers.log.display()
        );
        let obj = w.get().await;
        eprintln!(
            "kruise takeover: {} under graft: generation {:?} (kruise left {}), actions per reconcile {actions:?}",
            w.what(),
            obj.metadata.generation,
            b.generation
        );
        assert_eq!(
            obj.data["status"]["observedGeneration"].as_i64(),
            obj.metadata.generation,
            "{}: graft's status is for the current generation (kruise left generation {})",
            w.what(),
            b.generation
        );
        let after = w.snapshot(&pods, &revisions).await;
        assert!(
            after.revisions.keys().eq(b.revisions.keys()),
            "{}: graft changed the ControllerRevisions\n{}",
            w.what(),
            new_revisions(&b.revisions, &after.revisions)
        );
        assert!(
            after.status == b.status,
            "{}: the status differs from kruise's:\n{}",
            w.what(),
            map_diff(&b.status, &after.status)
        );
        assert!(
            after.pods.keys().eq(b.pods.keys()),
            "{}: pods {:?} -> {:?}",
            w.what(),
            b.pods.keys(),
            after.pods.keys()
        );
        for (name, p) in &after.pods {
            let was = &b.pods[name];
            assert_eq!(p.uid, was.uid, "{name}: recreated");
            assert_eq!(p.restarts, was.restarts, "{name}: a container restarted");
            assert!(
                p.labels == was.labels,
                "{name}: labels changed:\n{}",
                map_diff(&was.labels, &p.labels)
            );
            assert!(
                p.annotations == was.annotations,
                "{name}: annotations changed:\n{}",
                map_diff(&was.annotations, &p.annotations)
            );
        }
    }
    assert_eq!(claims(&pvcs).await, claims_before, "the PVCs are the same");
    let uids: BTreeMap<&str, &PodRecord> = before
        .values()
        .flat_map(|s| s.pods.values())
        .map(|p| (p.uid.as_str(), p))
        .collect();
    let disturbed: Vec<&PodState> = takeover
        .iter()
        .filter(|s| {
            let restarts: BTreeMap<String, i32> = s
                .containers
                .iter()
                .map(|(n, _, _, r)| (n.clone(), *r))
                .collect();
            s.deleting
                || s.deleted
                || !s.ready
                || uids
                    .get(s.uid.as_str())
                    .is_none_or(|p| p.restarts != restarts)
        })
        .collect();
    assert!(
        disturbed.is_empty(),
        "a pod was deleted, created, restarted or not ready during the takeover:\n{}",
        timeline(&takeover)
    );

    // 5. graft rolls back to app:v1 in place, onto the revision kruise minted for it.
    for w in both {
        w.set_app_image("v1").await;
    }
    for w in both {
        let (v1, v1_labels) = &kruise_v1[w.name];
        w.wait_rolled_out(&pods, "v1", Some(v1), "graft").await;
        let b = &before[w.name];
        let after = w.snapshot(&pods, &revisions).await;
        assert!(
            after.revisions.keys().eq(b.revisions.keys()),
            "{}: back to app:v1 is kruise's revision {v1}, no new one\n{}",
            w.what(),
            new_revisions(&b.revisions, &after.revisions)
        );
        assert!(
            after.pods.keys().eq(b.pods.keys()),
            "{}: graft's rollout replaced pods {:?} with {:?} (not in place; log {})",
            w.what(),
            b.pods.keys(),
            after.pods.keys(),
            controllers.log.display()
        );
        for (name, p) in &after.pods {
            let was = &b.pods[name];
            assert_eq!(p.uid, was.uid, "{name}: updated in place");
            let expected: BTreeMap<String, i32> = was
                .restarts
                .iter()
                .map(|(c, r)| (c.clone(), if c == "app" { r + 1 } else { *r }))
                .collect();
            assert_eq!(
                p.restarts, expected,
                "{name}: app restarted once, the sidecar not"
            );
            // kruise labels CloneSet pods with only the short hash when its CloneSetShortHash
            // gate is on (as `deploy/kruise/kruise` runs it: all alpha gates); graft writes the
            // revision name, as kruise does by default. Both name the same revision.
            let (kruise_hash, graft_hash) = (
                short_revision_hash(&v1_labels[name]),
                short_revision_hash(&p.labels),
            );
            assert_eq!(
                graft_hash, kruise_hash,
                "{name}: back at kruise's revision for app:v1"
            );
            assert!(
                without_revision_hash(&p.labels) == without_revision_hash(&v1_labels[name]),
                "{name}: labels differ from those kruise gave it at app:v1:\n{}",
                map_diff(&v1_labels[name], &p.labels)
            );
        }
    }
    let history = watcher.history();
    assert!(
        history
            .iter()
            .all(|s| !s.deleting && !s.deleted && uids.contains_key(s.uid.as_str())),
        "a pod was deleted or created during graft's rollout:\n{}",
        timeline(&history)
    );
    assert_eq!(claims(&pvcs).await, claims_before, "the PVCs are the same");
}
