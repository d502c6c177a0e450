//! ContainerRecreateRequest on the real cluster: `graft controllers --namespace NS` (the manager)
//! and `graft nodeagent` (the agent, on the host, talking to the cluster's containerd over CRI,
//! limited to the test's namespace so parallel tests never act on each other's requests).
#![cfg(feature = "cluster-tests")]

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use graft_api::apps::v1alpha1::ContainerRecreateRequest;
use graft_api::apps::v1alpha1::containerrecreaterequest::ContainerRecreateRequestPhase as Phase;
use graft_api::labels;
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use k8s_openapi::api::events::v1::Event;
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use serde_json::{Value, json};
use support::{
    GraftControllers, GraftNodeAgent, TestNamespace, client, image, install_crds, node_name,
    wait_for,
};

const MINUTE: Duration = Duration::from_secs(60);

struct Env {
    ns: TestNamespace,
    crrs: Api<ContainerRecreateRequest>,
    pods: Api<Pod>,
    _controllers: GraftControllers,
}

async fn env(prefix: &str) -> Env {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, prefix).await;
    let controllers = GraftControllers::start(&ns.name);
    Env {
        crrs: ns.api(),
        pods: ns.api(),
        ns,
        _controllers: controllers,
    }
}

/// A running pod with `app` (preStop appends a line to a shared emptyDir) and `sidecar` (preStop
/// is an HTTP GET on its named port), both mounting `/shared`.
async fn two_container_pod(e: &Env, name: &str) -> Pod {
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "terminationGracePeriodSeconds": 5,
            "volumes": [{"name": "shared", "emptyDir": {}}],
            "containers": [
                {"name": "app", "image": image("app:v1"), "imagePullPolicy": "IfNotPresent",
                 "volumeMounts": [{"name": "shared", "mountPath": "/shared"}],
                 "readinessProbe": {"httpGet": {"path": "/readyz", "port": 8080}, "periodSeconds": 1},
                 "lifecycle": {"preStop": {"exec": {"command": ["sh", "-c",
                     "echo \"prestop app $(date +%s) $(hostname)\" >> /shared/prestop.log"]}}}},
                {"name": "sidecar", "image": image("sidecar:v1"), "imagePullPolicy": "IfNotPresent",
                 "ports": [{"name": "http", "containerPort": 9090}],
                 "volumeMounts": [{"name": "shared", "mountPath": "/shared"}],
                 "lifecycle": {"preStop": {"httpGet": {"path": "/version", "port": "http"}}}}
            ]
        }
    }))
    .expect("valid pod literal");
    e.pods
        .create(&PostParams::default(), &pod)
        .await
        .unwrap_or_else(|err| panic!("creating pod {name}: {err}"));
    wait_for(&e.pods, name, "the pod Running and Ready", MINUTE, |p| {
        p.status.as_ref().is_some_and(|s| {
            s.phase.as_deref() == Some("Running")
                && s.conditions
                    .iter()
                    .flatten()
                    .any(|c| c.type_ == "Ready" && c.status == "True")
        })
    })
    .await
}

fn crr(name: &str, pod: &str, containers: &[&str], extra: Value) -> ContainerRecreateRequest {
    let mut v = json!({
        "apiVersion": "apps.kruise.io/v1alpha1", "kind": "ContainerRecreateRequest",
        "metadata": {"name": name},
        "spec": {"podName": pod, "containers": containers.iter().map(|c| json!({"name": c})).collect::<Vec<_>>()}
    });
    if let (Some(spec), Some(extra)) = (v["spec"].as_object_mut(), extra.as_object()) {
        for (k, val) in extra {
            spec.insert(k.clone(), val.clone());
        }
    }
    serde_json::from_value(v).expect("valid CRR literal")
}

async fn create(e: &Env, r: &ContainerRecreateRequest) {
    e.crrs
        .create(&PostParams::default(), r)
        .await
        .unwrap_or_else(|err| panic!("creating CRR: {err}"));
}

fn phase(r: &ContainerRecreateRequest) -> Option<Phase> {
    r.status.as_ref().and_then(|s| s.phase)
}

fn completed(r: &ContainerRecreateRequest) -> bool {
    phase(r) == Some(Phase::Completed)
        && r.status
            .as_ref()
            .is_some_and(|s| s.completion_time.is_some())
}

fn message(r: &ContainerRecreateRequest) -> String {
    r.status
        .as_ref()
        .and_then(|s| s.message.clone())
        .unwrap_or_default()
}

fn container<'a>(pod: &'a Pod, name: &str) -> &'a ContainerStatus {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.name == name))
        .unwrap_or_else(|| panic!("pod has no status for container {name}: {pod:?}"))
}

async fn events_for(e: &Env, crr: &str) -> Vec<Event> {
    let events: Api<Event> = e.ns.api();
    events
        .list(&Default::default())
        .await
        .expect("listing events")
        .items
        .into_iter()
        .filter(|ev| ev.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(crr))
        .collect()
}

#[tokio::test]
async fn requests_for_a_missing_pod_or_container_are_rejected_with_a_clear_message() {
    let e = env("crr-reject").await;
    two_container_pod(&e, "web").await;
    let before = e.pods.get("web").await.expect("pod");

    create(
        &e,
        &crr(
            "no-pod",
            "missing",
            &["app"],
            json!({"ttlSecondsAfterFinished": 3}),
        ),
    )
    .await;
    create(&e, &crr("no-container", "web", &["app", "nope"], json!({}))).await;

    let no_pod = wait_for(&e.crrs, "no-pod", "phase Completed", MINUTE, completed).await;
    assert_eq!(message(&no_pod), "rejected: no found Pod named missing");
    let no_container = wait_for(
        &e.crrs,
        "no-container",
        "phase Completed",
        MINUTE,
        completed,
    )
    .await;
    assert_eq!(
        message(&no_container),
        "rejected: container nope not found in Pod"
    );
    // Rejected requests are never handed to a node agent.
    for r in [&no_pod, &no_container] {
        let l = r.metadata.labels.clone().unwrap_or_default();
        assert!(!l.contains_key(labels::CRR_ACTIVE), "{l:?}");
        assert!(!l.contains_key(labels::CRR_NODE_NAME), "{l:?}");
    }
    let ev = events_for(&e, "no-container").await;
    assert!(
        ev.iter().any(|ev| ev.reason.as_deref() == Some("Rejected")
            && ev.type_.as_deref() == Some("Warning")
            && ev.note.as_deref() == Some("rejected: container nope not found in Pod")),
        "a Warning event Rejected with the message; events: {ev:?}"
    );
    // ttlSecondsAfterFinished removes the finished request; the one without a TTL stays.
    support::eventually("CRR no-pod deleted after its ttl", MINUTE, || async {
        match e.crrs.get_opt("no-pod").await {
            Ok(None) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert!(e.crrs.get_opt("no-container").await.expect("get").is_some());
    // The pod was not touched.
    let after = e.pods.get("web").await.expect("pod");
    for c in ["app", "sidecar"] {
        assert_eq!(
            container(&after, c).container_id,
            container(&before, c).container_id
        );
        assert_eq!(container(&after, c).restart_count, 0);
    }
}

#[tokio::test]
async fn a_request_is_filled_from_its_pod_and_completes_when_the_pod_is_gone() {
    // No node agent runs for this namespace: the request stays unanswered until its pod goes.
    let e = env("crr-podgone").await;
    let pod = two_container_pod(&e, "web").await;
    create(&e, &crr("r", "web", &["app"], json!({}))).await;
    let filled = wait_for(
        &e.crrs,
        "r",
        "labelled with node and pod UID",
        MINUTE,
        |r| {
            r.metadata
                .labels
                .as_ref()
                .is_some_and(|l| l.contains_key(labels::CRR_POD_UID))
        },
    )
    .await;
    let l = filled.metadata.labels.clone().unwrap_or_default();
    assert_eq!(
        l,
        BTreeMap::from([
            (labels::CRR_NODE_NAME.to_string(), node_name()),
            (
                labels::CRR_POD_UID.to_string(),
                pod.metadata.uid.clone().unwrap_or_default()
            ),
            (labels::CRR_ACTIVE.to_string(), "true".to_string()),
        ])
    );
    let c = &filled.spec.containers[0];
    let ctx = c.status_context.clone().expect("statusContext filled");
    assert_eq!(Some(ctx.container_id), container(&pod, "app").container_id);
    assert_eq!(ctx.restart_count, 0);
    assert_eq!(
        serde_json::to_value(&c.pre_stop).unwrap()["exec"]["command"][0],
        json!("sh"),
        "preStop copied from the pod"
    );
    let strategy = filled.spec.strategy.clone().unwrap_or_default();
    assert_eq!(strategy.termination_grace_period_seconds, Some(5));

    e.pods
        .delete("web", &DeleteParams::default().grace_period(0))
        .await
        .expect("deleting the pod");
    let done = wait_for(&e.crrs, "r", "phase Completed", MINUTE, completed).await;
    assert_eq!(message(&done), "pod has gone");
    // Completed requests lose the active label, so agents stop watching them.
    wait_for(&e.crrs, "r", "no active label", MINUTE, |r| {
        !r.metadata
            .labels
            .as_ref()
            .is_some_and(|l| l.contains_key(labels::CRR_ACTIVE))
    })
    .await;
    let ev = events_for(&e, "r").await;
    assert!(
        ev.iter().any(|ev| ev.reason.as_deref() == Some("PodGone")),
        "a PodGone event; events: {ev:?}"
    );
}

/// `kubectl exec` into a container (the cluster env puts kubectl on PATH); returns stdout.
fn exec(ns: &str, pod: &str, container: &str, cmd: &[&str]) -> String {
    let out = std::process::Command::new("kubectl")
        .args(["exec", "-n", ns, pod, "-c", container, "--"])
        .args(cmd)
        .output()
        .unwrap_or_else(|e| panic!("running kubectl exec: {e}"));
    assert!(
        out.status.success(),
        "kubectl exec {pod}/{container} {cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn started_at(c: &ContainerStatus) -> Option<k8s_openapi::jiff::Timestamp> {
    c.state
        .as_ref()
        .and_then(|s| s.running.as_ref())
        .and_then(|r| r.started_at.as_ref())
        .map(|t| t.0)
}

fn states(r: &ContainerRecreateRequest) -> Value {
    serde_json::to_value(
        r.status
            .as_ref()
            .and_then(|s| s.container_recreate_states.clone()),
    )
    .unwrap_or_default()
}

#[tokio::test]
async fn a_request_restarts_one_container_in_place_after_its_prestop_hook() {
    let e = env("crr-restart").await;
    let _agent = GraftNodeAgent::start_for_crr(&e.ns.name);
    let before = two_container_pod(&e, "web").await;

    create(&e, &crr("restart-app", "web", &["app"], json!({}))).await;
    let done = wait_for(
        &e.crrs,
        "restart-app",
        "phase Completed",
        MINUTE * 2,
        completed,
    )
    .await;
    assert_eq!(message(&done), "", "a successful request has no message");
    assert_eq!(
        states(&done),
        json!([{"name": "app", "phase": "Succeeded", "isKilled": true}])
    );

    let after = e.pods.get("web").await.expect("pod");
    // The same pod: same UID, same IP.
    assert_eq!(after.metadata.uid, before.metadata.uid);
    let ip = |p: &Pod| p.status.as_ref().and_then(|s| s.pod_ip.clone());
    assert_eq!(ip(&after), ip(&before));
    assert!(ip(&after).is_some());
    // app: a new container, one more restart, running and ready.
    let (app0, app1) = (container(&before, "app"), container(&after, "app"));
    assert_ne!(app1.container_id, app0.container_id);
    assert_eq!(app1.restart_count, app0.restart_count + 1);
    assert!(app1.ready);
    // sidecar: untouched.
    let (side0, side1) = (container(&before, "sidecar"), container(&after, "sidecar"));
    assert_eq!(side1.container_id, side0.container_id);
    assert_eq!(side1.restart_count, side0.restart_count);
    assert_eq!(started_at(side1), started_at(side0));

    // The preStop hook ran once, in the old container, before it stopped: its line is in the
    // shared volume, as the sidecar sees it.
    let log = exec(
        &e.ns.name,
        "web",
        "sidecar",
        &["cat", "/shared/prestop.log"],
    );
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 1, "one preStop run; log: {log:?}");
    let fields: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(fields[..2], ["prestop", "app"], "{log:?}");
    let ran_at: i64 = fields[2].parse().expect("epoch seconds");
    let finished = app1
        .last_state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .and_then(|t| t.finished_at.as_ref())
        .map(|t| t.0.as_second())
        .expect("app's last state is terminated");
    assert!(
        ran_at <= finished,
        "preStop ran at {ran_at}, the old container ended at {finished}"
    );

    let ev = events_for(&e, "restart-app").await;
    assert!(
        ev.iter()
            .any(|ev| ev.reason.as_deref() == Some("ContainerStopped")
                && ev.reporting_controller.as_deref() == Some("graft-nodeagent")),
        "a ContainerStopped event from the agent; events: {ev:?}"
    );
    // kruise-daemon's KillContainer Event on the pod's container.
    let killing = pod_container_events(&e, "web", "app", "Killing").await;
    assert!(
        killing.iter().any(|ev| ev.note.as_deref()
            == Some("Stopping container app by ContainerRecreateRequest restart-app")),
        "a Killing event on web's app container in kruise's words; events: {killing:?}"
    );
}

/// The Events about container `container` of pod `pod` with `reason`.
async fn pod_container_events(e: &Env, pod: &str, container: &str, reason: &str) -> Vec<Event> {
    let events: Api<Event> = e.ns.api();
    let field_path = format!("spec.containers{{{container}}}");
    events
        .list(&Default::default())
        .await
        .expect("listing events")
        .items
        .into_iter()
        .filter(|ev| {
            ev.reason.as_deref() == Some(reason)
                && ev.regarding.as_ref().is_some_and(|r| {
                    r.kind.as_deref() == Some("Pod")
                        && r.name.as_deref() == Some(pod)
                        && r.field_path.as_deref() == Some(field_path.as_str())
                })
        })
        .collect()
}

/// kruise-daemon's container-meta restarter (env from metadata): when a label a container's env
/// reads changes while the pod's `InPlaceUpdateReady` is False, the agent restarts that
/// container as kruise's `KillContainer` does, from what the kubelet recorded on the runtime
/// container: an Event `Killing` ("Stopping containerID ... by container meta restarter", the
/// ID replaced by the container name), then the preStop hook, then the stop; the other
/// container is untouched.
#[tokio::test]
async fn a_container_meta_restart_runs_the_prestop_hook_and_reports_killing() {
    let e = env("crr-meta").await;
    let _agent = GraftNodeAgent::start_for_crr(&e.ns.name);
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "web", "labels": {"version": "1"},
            // Pods a SidecarSet injected are watched as the ones a kruise workload owns.
            "annotations": {labels::SIDECARSET_HASH: "{}"}},
        "spec": {
            "terminationGracePeriodSeconds": 5,
            "readinessGates": [{"conditionType": labels::INPLACE_UPDATE_READY}],
            "volumes": [{"name": "shared", "emptyDir": {}}],
            "containers": [
                {"name": "app", "image": image("app:v1"), "imagePullPolicy": "IfNotPresent",
                 "env": [{"name": "VERSION", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['version']"}}}],
                 "volumeMounts": [{"name": "shared", "mountPath": "/shared"}],
                 "lifecycle": {"preStop": {"exec": {"command": ["sh", "-c",
                     "echo \"prestop app $VERSION\" >> /shared/prestop.log"]}}}},
                {"name": "sidecar", "image": image("sidecar:v1"), "imagePullPolicy": "IfNotPresent",
                 "volumeMounts": [{"name": "shared", "mountPath": "/shared"}]}
            ]
        }
    }))
    .expect("valid pod literal");
    e.pods
        .create(&PostParams::default(), &pod)
        .await
        .expect("creating pod web");
    // The agent reports the app container's env hash once it runs.
    let before = wait_for(
        &e.pods,
        "web",
        "both containers running and the agent's container meta with app's env hash",
        MINUTE * 2,
        |p| {
            let running = |name: &str| {
                p.status
                    .as_ref()
                    .and_then(|s| s.container_statuses.as_ref())
                    .and_then(|cs| cs.iter().find(|c| c.name == name))
                    .is_some_and(|c| {
                        c.container_id.is_some()
                            && c.state.as_ref().is_some_and(|st| st.running.is_some())
                    })
            };
            running("app")
                && running("sidecar")
                && p.metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(labels::RUNTIME_CONTAINERS_META))
                    .and_then(|raw| serde_json::from_str::<Value>(raw).ok())
                    .is_some_and(|m| {
                        m["containers"].as_array().is_some_and(|cs| {
                            cs.iter().any(|c| {
                                c["name"] == "app"
                                    && c["hashes"]["extractedEnvFromMetadataHash"]
                                        .as_u64()
                                        .is_some_and(|h| h > 0)
                            })
                        })
                    })
        },
    )
    .await;
    let app0 = container(&before, "app").clone();
    let side0 = container(&before, "sidecar").clone();

    // An in-place update under way (InPlaceUpdateReady False), then the label changes.
    e.pods
        .patch_status(
            "web",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Strategic(json!({"status": {"conditions": [
                {"type": labels::INPLACE_UPDATE_READY, "status": "False", "reason": "StartInPlaceUpdate"}
            ]}})),
        )
        .await
        .expect("marking the pod not in-place-update-ready");
    e.pods
        .patch(
            "web",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"metadata": {"labels": {"version": "2"}}})),
        )
        .await
        .expect("changing the label");

    let after = wait_for(
        &e.pods,
        "web",
        "app restarted and running",
        MINUTE * 2,
        |p| {
            p.status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref())
                .and_then(|cs| cs.iter().find(|c| c.name == "app"))
                .is_some_and(|c| {
                    c.restart_count == app0.restart_count + 1
                        && c.state.as_ref().is_some_and(|st| st.running.is_some())
                })
        },
    )
    .await;
    let side1 = container(&after, "sidecar");
    assert_eq!(side1.container_id, side0.container_id, "sidecar untouched");
    assert_eq!(side1.restart_count, side0.restart_count);

    // The preStop hook ran once, in the old container (it saw VERSION=1).
    let log = exec(
        &e.ns.name,
        "web",
        "sidecar",
        &["cat", "/shared/prestop.log"],
    );
    assert_eq!(
        log.trim(),
        "prestop app 1",
        "one preStop run in the old container"
    );
    // The new container runs with the new label's value.
    let version = exec(&e.ns.name, "web", "app", &["sh", "-c", "echo $VERSION"]);
    assert_eq!(version.trim(), "2");

    let killing = pod_container_events(&e, "web", "app", "Killing").await;
    assert!(
        killing.iter().any(|ev| ev.note.as_deref()
            == Some("Stopping containerID containerd://app by container meta restarter")),
        "a Killing event on web's app container in kruise's words; events: {killing:?}"
    );
    assert!(
        pod_container_events(&e, "web", "app", "FailedPreStopHook")
            .await
            .is_empty(),
        "the preStop hook succeeded"
    );
}

#[tokio::test]
async fn two_requests_for_one_pod_run_one_after_the_other() {
    let e = env("crr-serial").await;
    let _agent = GraftNodeAgent::start_for_crr(&e.ns.name);
    let before = two_container_pod(&e, "web").await;

    // r1 holds the pod for at least 3 s after its container restarts (minStartedSeconds).
    create(
        &e,
        &crr(
            "r1",
            "web",
            &["app"],
            json!({"strategy": {"minStartedSeconds": 3}}),
        ),
    )
    .await;
    wait_for(&e.crrs, "r1", "phase Recreating", MINUTE, |r| {
        phase(r) == Some(Phase::Recreating)
    })
    .await;
    create(&e, &crr("r2", "web", &["sidecar"], json!({}))).await;

    // Record both requests until both complete: never both recreating at once.
    let mut seen: Vec<(Option<Phase>, Option<Phase>, String)> = Vec::new();
    let start = std::time::Instant::now();
    let (r1, r2) = loop {
        let r1 = e.crrs.get("r1").await.expect("r1");
        let r2 = e.crrs.get("r2").await.expect("r2");
        let obs = (phase(&r1), phase(&r2), message(&r2));
        if seen.last() != Some(&obs) {
            seen.push(obs);
        }
        assert!(
            !(phase(&r1) == Some(Phase::Recreating) && phase(&r2) == Some(Phase::Recreating)),
            "both requests recreating at once; seen: {seen:?}"
        );
        if completed(&r1) && completed(&r2) {
            break (r1, r2);
        }
        assert!(
            start.elapsed() < MINUTE * 2,
            "timed out waiting for both requests to complete; seen: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // r2 said what it waited for.
    assert!(
        seen.iter().any(|(_, p2, m)| *p2 == Some(Phase::Pending)
            && m.starts_with("waiting for ContainerRecreateRequest r1 of the same pod to finish")),
        "r2 Pending with a message naming r1; seen: {seen:?}"
    );
    assert_eq!(
        states(&r1),
        json!([{"name": "app", "phase": "Succeeded", "isKilled": true}])
    );
    assert_eq!(
        states(&r2),
        json!([{"name": "sidecar", "phase": "Succeeded", "isKilled": true}])
    );
    assert_eq!(message(&r2), "");

    // The sidecar was stopped only after r1 had completed.
    let after = e.pods.get("web").await.expect("pod");
    let done1 = r1
        .status
        .as_ref()
        .and_then(|s| s.completion_time.clone())
        .expect("r1 completionTime")
        .0;
    let done2 = r2
        .status
        .as_ref()
        .and_then(|s| s.completion_time.clone())
        .expect("r2 completionTime")
        .0;
    let sidecar = container(&after, "sidecar");
    let sidecar_started = started_at(sidecar).expect("sidecar running");
    assert!(
        sidecar_started.as_second() >= done1.as_second(),
        "the new sidecar started at {sidecar_started}, before r1 completed at {done1}"
    );
    assert!(done2 >= done1);
    assert_eq!(after.metadata.uid, before.metadata.uid);
    assert_eq!(container(&after, "app").restart_count, 1);
    assert_eq!(sidecar.restart_count, 1);
    // The sidecar's httpGet preStop (named port, from the node to the pod IP) answered.
    let ev = events_for(&e, "r2").await;
    assert!(
        ev.iter().any(|ev| {
            ev.reason.as_deref() == Some("ContainerStopped")
                && ev
                    .note
                    .as_deref()
                    .is_some_and(|n| n.contains("sidecar") && n.contains("after its preStop hook"))
        }),
        "a ContainerStopped event after the preStop hook; events: {ev:?}"
    );
    assert!(
        !ev.iter()
            .any(|ev| ev.reason.as_deref() == Some("FailedPreStopHook")),
        "the httpGet preStop failed; events: {ev:?}"
    );
}

#[tokio::test]
async fn ordered_recreate_restarts_the_next_container_only_after_the_previous_one_has_run() {
    let e = env("crr-ordered").await;
    let _agent = GraftNodeAgent::start_for_crr(&e.ns.name);
    let before = two_container_pod(&e, "web").await;
    create(
        &e,
        &crr(
            "both",
            "web",
            &["app", "sidecar"],
            json!({"strategy": {"orderedRecreate": true, "minStartedSeconds": 2}}),
        ),
    )
    .await;
    let done = wait_for(&e.crrs, "both", "phase Completed", MINUTE * 2, completed).await;
    assert_eq!(
        states(&done),
        json!([
            {"name": "app", "phase": "Succeeded", "isKilled": true},
            {"name": "sidecar", "phase": "Succeeded", "isKilled": true}
        ])
    );
    let after = e.pods.get("web").await.expect("pod");
    let app = started_at(container(&after, "app")).expect("app running");
    let sidecar = started_at(container(&after, "sidecar")).expect("sidecar running");
    // The sidecar was stopped once the new app container had run minStartedSeconds.
    assert!(
        sidecar.as_second() >= app.as_second() + 2,
        "app started at {app}, sidecar at {sidecar}: expected at least 2 s between them"
    );
    for c in ["app", "sidecar"] {
        assert_eq!(
            container(&after, c).restart_count,
            container(&before, c).restart_count + 1
        );
    }
}

#[tokio::test]
async fn a_request_past_its_active_deadline_completes_without_restarting_anything() {
    let e = env("crr-deadline").await;
    let _agent = GraftNodeAgent::start_for_crr(&e.ns.name);
    let before = two_container_pod(&e, "web").await;
    // The unready grace outlasts the deadline, so the agent is still waiting when it passes.
    create(
        &e,
        &crr(
            "late",
            "web",
            &["app"],
            json!({"activeDeadlineSeconds": 3, "strategy": {"unreadyGracePeriodSeconds": 600}}),
        ),
    )
    .await;
    let done = wait_for(&e.crrs, "late", "phase Completed", MINUTE, completed).await;
    assert_eq!(
        message(&done),
        "recreating has exceeded the activeDeadlineSeconds"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = e.pods.get("web").await.expect("pod");
    assert_eq!(
        container(&after, "app").container_id,
        container(&before, "app").container_id
    );
    assert_eq!(container(&after, "app").restart_count, 0);
}

#[tokio::test]
async fn unready_grace_takes_a_gated_pod_out_of_service_before_the_restart_and_back_after() {
    use kube::api::{Patch, PatchParams};
    let e = env("crr-unready").await;
    let _agent = GraftNodeAgent::start_for_crr(&e.ns.name);
    // A pod with the KruisePodReady readiness gate, which this test holds True.
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {
            "terminationGracePeriodSeconds": 5,
            "readinessGates": [{"conditionType": "KruisePodReady"}],
            "containers": [
                {"name": "app", "image": image("app:v1"), "imagePullPolicy": "IfNotPresent",
                 "readinessProbe": {"httpGet": {"path": "/readyz", "port": 8080}, "periodSeconds": 1}}
            ]
        }
    }))
    .expect("valid pod literal");
    e.pods
        .create(&PostParams::default(), &pod)
        .await
        .expect("creating pod");
    wait_for(&e.pods, "web", "the pod Running", MINUTE, |p| {
        p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
    })
    .await;
    let ready_gate = json!({"status": {"conditions": [
        {"type": "KruisePodReady", "status": "True", "message": "[]"}
    ]}});
    e.pods
        .patch_status(
            "web",
            &PatchParams::default(),
            &Patch::Strategic(&ready_gate),
        )
        .await
        .expect("setting KruisePodReady");
    let ready = |p: &Pod| {
        p.status.as_ref().is_some_and(|s| {
            s.conditions
                .iter()
                .flatten()
                .any(|c| c.type_ == "Ready" && c.status == "True")
        })
    };
    let before = wait_for(&e.pods, "web", "the pod Ready", MINUTE, ready).await;
    let old_id = container(&before, "app").container_id.clone();

    create(
        &e,
        &crr(
            "drain",
            "web",
            &["app"],
            json!({"strategy": {"unreadyGracePeriodSeconds": 3}}),
        ),
    )
    .await;
    // Watch the pod until the request completes: it must be seen not ready, with this
    // request's reason, while the old container still runs.
    let key = format!("{}/drain", e.ns.name);
    let mut unready_with_old_container = false;
    let start = std::time::Instant::now();
    let done = loop {
        let p = e.pods.get("web").await.expect("pod");
        let gate = p
            .status
            .as_ref()
            .and_then(|s| s.conditions.clone())
            .unwrap_or_default()
            .into_iter()
            .find(|c| c.type_ == "KruisePodReady");
        if !ready(&p)
            && container(&p, "app").container_id == old_id
            && gate.as_ref().is_some_and(|g| {
                g.status == "False"
                    && g.message.as_deref().unwrap_or_default().contains(&format!(
                        r#"{{"userAgent":"ContainerRecreateRequest","key":"{key}"}}"#
                    ))
            })
        {
            unready_with_old_container = true;
        }
        let r = e.crrs.get("drain").await.expect("crr");
        if completed(&r) {
            break r;
        }
        assert!(
            start.elapsed() < MINUTE * 2,
            "timed out; last request: {r:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        unready_with_old_container,
        "the pod was never seen not ready (KruisePodReady=False with reason {key}) before its container was stopped"
    );
    assert_eq!(message(&done), "");
    // The restart came at least unreadyGracePeriodSeconds after the pod was taken out.
    let acquired: k8s_openapi::jiff::Timestamp = done
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(labels::CRR_UNREADY_ACQUIRED))
        .expect("unready-acquired annotation")
        .parse()
        .expect("RFC 3339 time");
    let after = e.pods.get("web").await.expect("pod");
    let stopped = container(&after, "app")
        .last_state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .and_then(|t| t.finished_at.as_ref())
        .expect("app's last state is terminated")
        .0;
    assert!(
        stopped.as_second() >= acquired.as_second() + 3,
        "stopped at {stopped}, only {}s after the pod was made not ready at {acquired}",
        stopped.as_second() - acquired.as_second()
    );
    // Afterwards the reason is released, the finalizer removed, and the pod serves again.
    wait_for(
        &e.crrs,
        "drain",
        "the unready-acquired finalizer removed",
        MINUTE,
        |r| {
            !r.metadata
                .finalizers
                .iter()
                .flatten()
                .any(|f| f == labels::CRR_UNREADY_ACQUIRED)
        },
    )
    .await;
    wait_for(
        &e.pods,
        "web",
        "KruisePodReady=True and the pod Ready again",
        MINUTE,
        |p| {
            ready(p)
                && p.status.as_ref().is_some_and(|s| {
                    s.conditions.iter().flatten().any(|c| {
                        c.type_ == "KruisePodReady"
                            && c.status == "True"
                            && c.message.as_deref() == Some("[]")
                    })
                })
        },
    )
    .await;
}

/// OpenKruise's CRR webhook refusals that need no pod, made by the API server through the CRD's
/// CEL rules: each invalid request is refused at create time with kruise's message, and what
/// kruise accepts is accepted. Updates may not change the spec, except what the manager fills in.
#[tokio::test]
async fn the_api_server_refuses_what_kruises_webhook_refuses() {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "crr-apply").await;
    let crrs: Api<ContainerRecreateRequest> = Api::namespaced(client.clone(), &ns.name);
    let dry = PostParams {
        dry_run: true,
        field_manager: None,
    };
    let refused = [
        (
            "empty podName",
            crr("a", "", &["app"], json!({})),
            "podName can not be empty",
        ),
        (
            "no container",
            crr("a", "web", &[], json!({})),
            "containers list can not be null",
        ),
        (
            "activeDeadlineSeconds below 3",
            crr("a", "web", &["app"], json!({"activeDeadlineSeconds": 2})),
            "activeDeadlineSeconds can not be less than 3s",
        ),
        (
            "negative terminationGracePeriodSeconds",
            crr(
                "a",
                "web",
                &["app"],
                json!({"strategy": {"terminationGracePeriodSeconds": -1}}),
            ),
            "terminationGracePeriodSeconds must be non-negative integer",
        ),
        (
            "negative unreadyGracePeriodSeconds",
            crr(
                "a",
                "web",
                &["app"],
                json!({"strategy": {"unreadyGracePeriodSeconds": -1}}),
            ),
            "unreadyGracePeriodSeconds must be non-negative integer",
        ),
        (
            "a container named twice",
            crr("a", "web", &["app", "app"], json!({})),
            "can not recreate app multi times",
        ),
    ];
    for (why, r, message) in refused {
        match crrs.create(&dry, &r).await {
            Ok(_) => panic!("the API server accepted {why}"),
            Err(e) => assert!(
                e.to_string().contains(message),
                "{why}: refused, but without {message:?}: {e}"
            ),
        }
    }
    let accepted = crrs
        .create(
            &dry,
            &crr(
                "a",
                "web",
                &["app"],
                json!({"activeDeadlineSeconds": 3, "ttlSecondsAfterFinished": -1, "strategy": {"minStartedSeconds": -1}}),
            ),
        )
        .await
        .expect("kruise accepts a 3 s deadline and negative ttl/minStartedSeconds");
    assert_eq!(
        serde_json::to_value(&accepted.spec.strategy).unwrap()["failurePolicy"],
        json!("Fail"),
        "default failurePolicy"
    );

    let created = crrs
        .create(
            &PostParams::default(),
            &crr(
                "keep",
                "web",
                &["app"],
                json!({"activeDeadlineSeconds": 60}),
            ),
        )
        .await
        .expect("a valid request is stored");
    let mut changed = created.clone();
    changed.spec.active_deadline_seconds = Some(120);
    match crrs.replace("keep", &PostParams::default(), &changed).await {
        Ok(_) => panic!("the API server let the spec change"),
        Err(e) => assert!(
            e.to_string()
                .contains("spec of ContainerRecreateRequest is immutable"),
            "{e}"
        ),
    }
    // What the manager fills in once (kruise's webhook fills it before storing) may be written.
    let mut filled = created.clone();
    filled.spec.containers[0].status_context = Some(
        serde_json::from_value(json!({"containerID": "containerd://abc", "restartCount": 1}))
            .unwrap(),
    );
    if let Some(st) = filled.spec.strategy.as_mut() {
        st.termination_grace_period_seconds = Some(30);
    }
    let filled = crrs
        .replace("keep", &PostParams::default(), &filled)
        .await
        .expect("the manager's fill is allowed");
    let mut regrace = filled.clone();
    if let Some(st) = regrace.spec.strategy.as_mut() {
        st.termination_grace_period_seconds = Some(5);
    }
    assert!(
        crrs.replace("keep", &PostParams::default(), &regrace)
            .await
            .is_err(),
        "terminationGracePeriodSeconds, once set, is immutable"
    );
}
