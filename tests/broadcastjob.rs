//! BroadcastJob on the real cluster: `graft controllers --namespace NS` per test.
//!
//! The local cluster has one real node, so every test that needs several nodes registers **fake
//! Node objects** ([`FakeNodes`]): capacity and allocatable cpu/memory/pods, a Ready condition, a
//! Lease in `kube-node-lease` renewed every 10 s (so the node lifecycle controller never marks
//! them unreachable), the label `graft.dev/bcj-test=<namespace>` (each test's jobs select only
//! their own fake nodes) and the taint `graft.dev/fake-node=true:NoSchedule` that only these
//! jobs tolerate (no other test's pod is ever scheduled there). The real scheduler binds pods to
//! them; nothing runs them: the test plays the kubelet by patching the pods' status. They are
//! deleted when the guard drops.
//!
//! Tests with fake Nodes: every test here but
//! `the_webhook_defaults_parallelism_and_refuses_what_kruise_refuses` (admission only).
//! `one_pod_per_eligible_node_runs_to_completion_with_the_right_counters` uses the real node too
//! (a real container runs to completion there) besides two fake ones; the others use fake nodes
//! only.
#![cfg(feature = "cluster-tests")]

mod support;

use std::time::{Duration, Instant};

use graft_api::apps::v1beta1::BroadcastJob;
use graft_api::apps::v1beta1::broadcastjob::BroadcastJobPhase;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::{Value, json};
use support::{
    GraftControllers, TestNamespace, client, free_host_port, image, install_crds, node_name,
    wait_for,
};

const MINUTE: Duration = Duration::from_secs(60);
const FAKE_TAINT: &str = "graft.dev/fake-node";
const TEST_LABEL: &str = "graft.dev/bcj-test";

struct Env {
    client: Client,
    ns: TestNamespace,
    jobs: Api<BroadcastJob>,
    pods: Api<Pod>,
    _controllers: GraftControllers,
}

async fn env(prefix: &str) -> Env {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, prefix).await;
    let controllers = GraftControllers::start(&ns.name);
    Env {
        client,
        jobs: ns.api(),
        pods: ns.api(),
        ns,
        _controllers: controllers,
    }
}

/// Fake nodes of one test, kept Ready by renewing their Leases; deleted on drop.
struct FakeNodes {
    names: Vec<String>,
    renew: tokio::task::JoinHandle<()>,
}

fn fake_node(name: &str, test: &str, extra_taints: &[Value]) -> Node {
    let mut taints = vec![json!({"key": FAKE_TAINT, "value": "true", "effect": "NoSchedule"})];
    taints.extend(extra_taints.iter().cloned());
    let resources = json!({"cpu": "4", "memory": "8Gi", "pods": "110"});
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {TEST_LABEL: test, "kubernetes.io/hostname": name}},
        "spec": {"taints": taints},
        "status": {"capacity": resources, "allocatable": resources, "conditions": [ready_condition()]}
    }))
    .expect("fake node")
}

fn ready_condition() -> Value {
    let now = Timestamp::now().to_string();
    json!({"type": "Ready", "status": "True", "reason": "KubeletReady",
           "message": "fake node for graft tests", "lastHeartbeatTime": now, "lastTransitionTime": now})
}

async fn renew_leases(client: &Client, names: &[String]) {
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    for name in names {
        let lease = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": name},
            "spec": {"holderIdentity": name, "leaseDurationSeconds": 40,
                     "renewTime": MicroTime(Timestamp::now())}});
        let pp = PatchParams::apply("graft-bcj-test").force();
        if let Err(e) = leases.patch(name, &pp, &Patch::Apply(&lease)).await {
            eprintln!("renewing lease {name}: {e}");
        }
    }
}

impl FakeNodes {
    /// Registers `<ns>-<suffix>` for each (suffix, extra taints).
    async fn create(client: &Client, ns: &str, nodes: &[(&str, Vec<Value>)]) -> FakeNodes {
        let mut guard = FakeNodes {
            names: Vec::new(),
            renew: tokio::spawn(async {}),
        };
        for (suffix, taints) in nodes {
            guard.add(client, ns, suffix, taints).await;
        }
        guard
    }

    /// Registers one more fake node.
    async fn add(&mut self, client: &Client, ns: &str, suffix: &str, taints: &[Value]) -> String {
        let name = format!("{ns}-{suffix}");
        let api: Api<Node> = Api::all(client.clone());
        let node = fake_node(&name, ns, taints);
        api.create(&PostParams::default(), &node)
            .await
            .unwrap_or_else(|e| panic!("creating fake node {name}: {e}"));
        // The API server may drop the status of a created node: set it again.
        let status = json!({"status": serde_json::to_value(&node.status).expect("status")});
        api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
            .await
            .unwrap_or_else(|e| panic!("setting status of fake node {name}: {e}"));
        self.names.push(name.clone());
        renew_leases(client, &self.names).await;
        self.renew.abort();
        let (client, names) = (client.clone(), self.names.clone());
        self.renew = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(10)).await;
                renew_leases(&client, &names).await;
            }
        });
        name
    }
}

impl Drop for FakeNodes {
    fn drop(&mut self) {
        self.renew.abort();
        // The test's client belongs to its (now blocked) runtime: use a fresh one on a thread.
        let names = self.names.clone();
        let handle = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                let Ok(client) = support::new_client().await else {
                    return;
                };
                let nodes: Api<Node> = Api::all(client.clone());
                let pods: Api<Pod> = Api::all(client.clone());
                let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
                for n in &names {
                    // No kubelet finishes their deletion: remove the pods bound there at once,
                    // so the test's namespace goes away without waiting for the pod GC.
                    let bound = ListParams::default().fields(&format!("spec.nodeName={n}"));
                    for p in pods.list(&bound).await.map(|l| l.items).unwrap_or_default() {
                        let ns_pods: Api<Pod> =
                            Api::namespaced(client.clone(), &p.namespace().unwrap_or_default());
                        let _ = ns_pods
                            .delete(&p.name_any(), &DeleteParams::default().grace_period(0))
                            .await;
                    }
                    let _ = nodes.delete(n, &DeleteParams::background()).await;
                    let _ = leases.delete(n, &DeleteParams::default()).await;
                }
            });
        });
        let _ = handle.join();
    }
}

/// A BroadcastJob selecting the test's fake nodes (and the real node when `real_node`),
/// tolerating the fake-node taint; `extra` merges into the spec.
fn job_object(e: &Env, name: &str, real_node: bool, extra: Value) -> BroadcastJob {
    let mut terms = vec![json!({"matchExpressions": [
        {"key": TEST_LABEL, "operator": "In", "values": [e.ns.name]}]})];
    if real_node {
        terms.push(json!({"matchFields": [
            {"key": "metadata.name", "operator": "In", "values": [node_name()]}]}));
    }
    let mut spec = json!({
        "template": {
            "metadata": {"labels": {"app": name}},
            "spec": {
                "restartPolicy": "Never",
                "terminationGracePeriodSeconds": 1,
                "tolerations": [{"key": FAKE_TAINT, "operator": "Exists", "effect": "NoSchedule"}],
                "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution":
                    {"nodeSelectorTerms": terms}}},
                "containers": [{"name": "main", "image": image("app:v1"),
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["sh", "-c", "echo broadcast; exit 0"]}]
            }
        }
    });
    if let (Some(s), Some(x)) = (spec.as_object_mut(), extra.as_object()) {
        for (k, v) in x {
            s.insert(k.clone(), v.clone());
        }
    }
    serde_json::from_value(json!({
        "apiVersion": "apps.kruise.io/v1beta1", "kind": "BroadcastJob",
        "metadata": {"name": name}, "spec": spec
    }))
    .expect("job")
}

async fn create_job(e: &Env, job: &BroadcastJob) -> BroadcastJob {
    e.jobs
        .create(&PostParams::default(), job)
        .await
        .unwrap_or_else(|err| panic!("creating BroadcastJob: {err}"))
}

async fn job_pods(e: &Env, job: &str) -> Vec<Pod> {
    e.pods
        .list(&ListParams::default().labels(&format!("broadcastjob-name={job}")))
        .await
        .expect("listing pods")
        .items
}

/// The node a job pod is pinned to (its required `metadata.name In [node]` term).
fn pinned_node(p: &Pod) -> String {
    let v = serde_json::to_value(p).expect("pod json");
    v.pointer("/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms/0/matchFields/0/values/0")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// Waits until the job has pods on exactly these nodes.
async fn wait_pods_on(e: &Env, job: &str, nodes: &[String]) -> Vec<Pod> {
    let start = Instant::now();
    let mut want: Vec<String> = nodes.to_vec();
    want.sort();
    loop {
        let pods = job_pods(e, job).await;
        let mut got: Vec<String> = pods.iter().map(pinned_node).collect();
        got.sort();
        if got == want {
            return pods;
        }
        if start.elapsed() > MINUTE {
            panic!("timed out waiting for pods of {job} on {want:?}; pods are on {got:?}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Plays the kubelet of a fake node: the pod ends in `phase`.
async fn finish_pod(e: &Env, pod: &str, phase: &str) {
    let exit = i32::from(phase != "Succeeded");
    let status = json!({"status": {"phase": phase, "containerStatuses": [{
        "name": "main", "image": image("app:v1"), "imageID": "", "ready": false, "restartCount": 0,
        "state": {"terminated": {"exitCode": exit, "reason": if exit == 0 {"Completed"} else {"Error"}}}}]}});
    e.pods
        .patch_status(pod, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap_or_else(|err| panic!("patching status of pod {pod}: {err}"));
}

fn status_of(j: &BroadcastJob) -> (i32, i32, i32, i32, Option<BroadcastJobPhase>) {
    let s = j.status.clone().unwrap_or_default();
    (s.desired, s.active, s.succeeded, s.failed, s.phase)
}

fn condition<'a>(
    j: &'a BroadcastJob,
    type_: &str,
) -> Option<&'a graft_api::apps::v1beta1::broadcastjob::JobCondition> {
    j.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == type_))
}

async fn events_for(e: &Env, job: &str) -> Vec<Event> {
    let events: Api<Event> = e.ns.api();
    events
        .list(&Default::default())
        .await
        .expect("listing events")
        .items
        .into_iter()
        .filter(|ev| ev.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(job))
        .collect()
}

async fn wait_event(e: &Env, job: &str, reason: &str) -> Event {
    let start = Instant::now();
    loop {
        let events = events_for(e, job).await;
        if let Some(ev) = events
            .iter()
            .find(|ev| ev.reason.as_deref() == Some(reason))
        {
            return ev.clone();
        }
        if start.elapsed() > MINUTE {
            let seen: Vec<_> = events.iter().map(|e| e.reason.clone()).collect();
            panic!("timed out waiting for a {reason} event of {job}; seen {seen:?}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn one_pod_per_eligible_node_runs_to_completion_with_the_right_counters() {
    let e = env("bcj-complete").await;
    let fakes = FakeNodes::create(&e.client, &e.ns.name, &[("a", vec![]), ("b", vec![])]).await;
    create_job(&e, &job_object(&e, "all", true, json!({}))).await;
    let mut nodes = fakes.names.clone();
    nodes.push(node_name());
    let pods = wait_pods_on(&e, "all", &nodes).await;
    for p in &pods {
        assert_eq!(
            p.metadata.generate_name.as_deref(),
            Some("all-"),
            "{}",
            p.name_any()
        );
        let owner = &p.owner_references()[0];
        assert_eq!(
            (
                owner.api_version.as_str(),
                owner.kind.as_str(),
                owner.controller,
                owner.block_owner_deletion
            ),
            (
                "apps.kruise.io/v1beta1",
                "BroadcastJob",
                Some(true),
                Some(true)
            )
        );
        assert!(p.labels().contains_key("broadcastjob-controller-uid"));
        if pinned_node(p) != node_name() {
            let p = wait_for(
                &e.pods,
                &p.name_any(),
                "bound by the scheduler",
                MINUTE,
                |p: &Pod| {
                    p.spec
                        .as_ref()
                        .and_then(|s| s.node_name.as_deref())
                        .is_some()
                },
            )
            .await;
            finish_pod(&e, &p.name_any(), "Succeeded").await;
        }
    }
    // The real node's pod runs its container to completion.
    let job = wait_for(
        &e.jobs,
        "all",
        "completed",
        Duration::from_secs(120),
        |j: &BroadcastJob| status_of(j).4 == Some(BroadcastJobPhase::Completed),
    )
    .await;
    assert_eq!(
        status_of(&job),
        (3, 0, 3, 0, Some(BroadcastJobPhase::Completed))
    );
    let c = condition(&job, "Complete").expect("Complete condition");
    assert_eq!(
        (c.status.as_str(), c.reason.as_deref(), c.message.as_deref()),
        (
            "True",
            Some("Complete"),
            Some("Job completed, 3 pods succeeded, 0 pods failed")
        )
    );
    let st = job.status.clone().unwrap_or_default();
    assert!(
        st.start_time.is_some() && st.completion_time.is_some(),
        "{st:?}"
    );
    let ev = wait_event(&e, "all", "JobComplete").await;
    assert_eq!(
        ev.note.as_deref(),
        Some(
            format!(
                "Job {}/all is completed, 3 pods succeeded, 0 pods failed",
                e.ns.name
            )
            .as_str()
        )
    );
    let created = events_for(&e, "all")
        .await
        .into_iter()
        .filter(|ev| ev.reason.as_deref() == Some("SuccessfulCreate"))
        .count();
    assert_eq!(created, 3, "one SuccessfulCreate per pod");
}

#[tokio::test]
async fn a_tainted_node_without_toleration_gets_no_pod() {
    let e = env("bcj-taint").await;
    let taint = json!({"key": "graft.dev/bcj-extra", "value": "x", "effect": "NoSchedule"});
    let fakes = FakeNodes::create(
        &e.client,
        &e.ns.name,
        &[("plain", vec![]), ("tainted", vec![taint])],
    )
    .await;
    create_job(&e, &job_object(&e, "t", false, json!({}))).await;
    wait_pods_on(&e, "t", &fakes.names[..1]).await;
    wait_for(
        &e.jobs,
        "t",
        "desired 1 (the tainted node is not eligible)",
        MINUTE,
        |j: &BroadcastJob| status_of(j).0 == 1 && status_of(j).1 == 1,
    )
    .await;
    // Watch a few reconciles (node lease renewals wake the job): still only one pod.
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        let on: Vec<String> = job_pods(&e, "t").await.iter().map(pinned_node).collect();
        assert_eq!(
            on,
            vec![fakes.names[0].clone()],
            "a pod landed on the tainted node"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test]
async fn never_mode_gives_a_newly_registered_node_a_pod() {
    let e = env("bcj-never").await;
    let mut fakes = FakeNodes::create(&e.client, &e.ns.name, &[("a", vec![])]).await;
    create_job(
        &e,
        &job_object(
            &e,
            "n",
            false,
            json!({"completionPolicy": {"type": "Never"}}),
        ),
    )
    .await;
    let pods = wait_pods_on(&e, "n", &fakes.names).await;
    finish_pod(&e, &pods[0].name_any(), "Succeeded").await;
    wait_for(
        &e.jobs,
        "n",
        "one pod succeeded",
        MINUTE,
        |j: &BroadcastJob| status_of(j) == (1, 0, 1, 0, Some(BroadcastJobPhase::Running)),
    )
    .await;
    let second = fakes.add(&e.client, &e.ns.name, "b", &[]).await;
    let nodes = fakes.names.clone();
    wait_pods_on(&e, "n", &nodes).await;
    let job = wait_for(&e.jobs, "n", "desired 2", MINUTE, |j: &BroadcastJob| {
        status_of(j).0 == 2
    })
    .await;
    assert_eq!(
        status_of(&job).4,
        Some(BroadcastJobPhase::Running),
        "Never does not complete"
    );
    assert!(condition(&job, "Complete").is_none(), "{:?}", job.status);
    assert!(nodes.contains(&second));
}

#[tokio::test]
async fn fail_fast_deletes_active_pods_on_the_first_failure() {
    let e = env("bcj-failfast").await;
    let fakes = FakeNodes::create(&e.client, &e.ns.name, &[("a", vec![]), ("b", vec![])]).await;
    create_job(&e, &job_object(&e, "ff", false, json!({}))).await;
    let pods = wait_pods_on(&e, "ff", &fakes.names).await;
    let (failing, other) = (pods[0].name_any(), pods[1].name_any());
    wait_for(&e.pods, &failing, "bound", MINUTE, |p: &Pod| {
        p.spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .is_some()
    })
    .await;
    finish_pod(&e, &failing, "Failed").await;
    let job = wait_for(&e.jobs, "ff", "phase failed", MINUTE, |j: &BroadcastJob| {
        status_of(j).4 == Some(BroadcastJobPhase::Failed)
    })
    .await;
    assert_eq!(
        status_of(&job),
        (2, 0, 0, 2, Some(BroadcastJobPhase::Failed))
    );
    let c = condition(&job, "Failed").expect("Failed condition");
    assert_eq!(
        (c.status.as_str(), c.message.as_deref()),
        (
            "True",
            Some("failure policy is FailurePolicyTypeFailFast and failed pod is found")
        )
    );
    // The other, active pod is deleted (it terminates forever on a node without kubelet).
    wait_for(
        &e.pods,
        &other,
        "the active pod deleted",
        MINUTE,
        |p: &Pod| p.metadata.deletion_timestamp.is_some(),
    )
    .await;
    let ev = wait_event(&e, "ff", "SuccessfulDelete").await;
    assert_eq!(
        ev.note.as_deref(),
        Some(format!("Delete pod: {other}").as_str())
    );
    wait_event(&e, "ff", "failed pod is found").await;
    let p = e.pods.get(&failing).await.expect("failed pod");
    assert!(
        p.metadata.deletion_timestamp.is_none(),
        "the failed pod is kept"
    );
}

#[tokio::test]
async fn ttl_seconds_after_finished_deletes_the_job() {
    let e = env("bcj-ttl").await;
    let fakes = FakeNodes::create(&e.client, &e.ns.name, &[("a", vec![])]).await;
    create_job(
        &e,
        &job_object(
            &e,
            "ttl",
            false,
            json!({"completionPolicy": {"ttlSecondsAfterFinished": 2}}),
        ),
    )
    .await;
    let pods = wait_pods_on(&e, "ttl", &fakes.names).await;
    finish_pod(&e, &pods[0].name_any(), "Succeeded").await;
    wait_for(&e.jobs, "ttl", "completed", MINUTE, |j: &BroadcastJob| {
        status_of(j).4 == Some(BroadcastJobPhase::Completed)
    })
    .await;
    let start = Instant::now();
    loop {
        match e.jobs.get_opt("ttl").await.expect("reading job") {
            None => break,
            Some(j) if start.elapsed() > MINUTE => {
                panic!("the job was not deleted after its TTL: {:?}", j.status)
            }
            Some(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "deleted before its TTL"
    );
}

#[tokio::test]
async fn paused_creates_nothing_until_resumed() {
    let e = env("bcj-paused").await;
    let fakes = FakeNodes::create(&e.client, &e.ns.name, &[("a", vec![])]).await;
    create_job(&e, &job_object(&e, "p", false, json!({"paused": true}))).await;
    wait_for(
        &e.jobs,
        "p",
        "phase paused with desired 1",
        MINUTE,
        |j: &BroadcastJob| status_of(j) == (1, 0, 0, 0, Some(BroadcastJobPhase::Paused)),
    )
    .await;
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        assert!(
            job_pods(&e, "p").await.is_empty(),
            "a paused job created a pod"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    e.jobs
        .patch(
            "p",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"paused": false}})),
        )
        .await
        .expect("resuming");
    wait_pods_on(&e, "p", &fakes.names).await;
    wait_event(&e, "p", "Continue").await;
}

#[tokio::test]
async fn parallelism_limits_active_pods() {
    let e = env("bcj-parallel").await;
    let fakes = FakeNodes::create(
        &e.client,
        &e.ns.name,
        &[("a", vec![]), ("b", vec![]), ("c", vec![])],
    )
    .await;
    create_job(&e, &job_object(&e, "par", false, json!({"parallelism": 1}))).await;
    let start = Instant::now();
    let mut finished: Vec<String> = Vec::new();
    loop {
        let pods = job_pods(&e, "par").await;
        let active: Vec<&Pod> = pods
            .iter()
            .filter(|p| {
                !matches!(
                    p.status.as_ref().and_then(|s| s.phase.as_deref()),
                    Some("Succeeded" | "Failed")
                )
            })
            .collect();
        assert!(
            active.len() <= 1,
            "parallelism 1, active: {:?}",
            active.iter().map(|p| p.name_any()).collect::<Vec<_>>()
        );
        if let Some(p) = active.first()
            && p.spec
                .as_ref()
                .and_then(|s| s.node_name.as_deref())
                .is_some()
        {
            // Give the controller a moment to (wrongly) add a second pod before finishing this one.
            tokio::time::sleep(Duration::from_secs(1)).await;
            finish_pod(&e, &p.name_any(), "Succeeded").await;
            finished.push(pinned_node(p));
        }
        if finished.len() == 3 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "finished only {finished:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    finished.sort();
    assert_eq!(finished, fakes.names);
    let job = wait_for(&e.jobs, "par", "completed", MINUTE, |j: &BroadcastJob| {
        status_of(j).4 == Some(BroadcastJobPhase::Completed)
    })
    .await;
    assert_eq!(
        status_of(&job),
        (3, 0, 3, 0, Some(BroadcastJobPhase::Completed))
    );
}

#[tokio::test]
async fn the_webhook_defaults_parallelism_and_refuses_what_kruise_refuses() {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "bcj-admission").await;
    let port = free_host_port();
    let _graft = GraftControllers::start_admitting(&ns.name, port, "bcj");
    let jobs: Api<BroadcastJob> = ns.api();
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let probe: BroadcastJob = serde_json::from_value(json!({
        "apiVersion": "apps.kruise.io/v1beta1", "kind": "BroadcastJob",
        "metadata": {"name": "probe"},
        "spec": {"template": {"spec": {"restartPolicy": "Never",
            "containers": [{"name": "main", "image": image("app:v1")}]}}}
    }))
    .expect("job");
    // The CRD's schema does not default parallelism: only the webhook writes it.
    support::eventually(
        "a dry-run create defaulted by graft's webhook",
        MINUTE,
        || {
            let (jobs, probe, dry) = (jobs.clone(), probe.clone(), dry.clone());
            async move {
                let got = jobs.create(&dry, &probe).await.map_err(|e| e.to_string())?;
                let v = serde_json::to_value(&got.spec).map_err(|e| e.to_string())?;
                if v["parallelism"] == json!(2147483647) {
                    Ok(())
                } else {
                    Err(format!("not defaulted yet: {v}"))
                }
            }
        },
    )
    .await;
    let mut bad = probe.clone();
    if let Some(s) = bad.spec.template.spec.as_mut() {
        s.restart_policy = Some("Always".to_string());
    }
    let err = jobs
        .create(&PostParams::default(), &bad)
        .await
        .expect_err("restartPolicy Always must be refused");
    assert!(
        err.to_string().contains("spec.template.spec.restartPolicy: Invalid value: \"Always\": pod restartPolicy can only be Never or OnFailure"),
        "{err}"
    );
    // v1alpha1 too.
    let alpha = kube::discovery::ApiResource {
        group: "apps.kruise.io".into(),
        version: "v1alpha1".into(),
        api_version: "apps.kruise.io/v1alpha1".into(),
        kind: "BroadcastJob".into(),
        plural: "broadcastjobs".into(),
    };
    let dynamic: Api<kube::core::DynamicObject> =
        Api::namespaced_with(client.clone(), &ns.name, &alpha);
    let obj: kube::core::DynamicObject = serde_json::from_value(json!({
        "apiVersion": "apps.kruise.io/v1alpha1", "kind": "BroadcastJob",
        "metadata": {"name": "alpha"},
        "spec": {"completionPolicy": {"type": "Never", "ttlSecondsAfterFinished": 5},
                 "template": {"spec": {"restartPolicy": "Never",
                     "containers": [{"name": "main", "image": image("app:v1")}]}}}
    }))
    .expect("v1alpha1 job");
    let err = dynamic
        .create(&PostParams::default(), &obj)
        .await
        .expect_err("ttl with Never must be refused");
    assert!(
        err.to_string()
            .contains("ttlSecondsAfterFinished can just work with Always CompletionPolicyType"),
        "{err}"
    );
}
