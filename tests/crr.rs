//! ContainerRecreateRequest on the real cluster: `graft controllers --namespace NS` (the manager)
//! and `graft nodeagent` (the agent, on the host, talking to the cluster's containerd over CRI,
//! limited to the test's namespace so parallel tests never act on each other's requests).

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
use support::{GraftControllers, TestNamespace, client, image, install_crds, node_name, wait_for};

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

/// A running pod with `app` (preStop appends a line to a shared emptyDir) and `sidecar`, both
/// mounting `/shared`.
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
                 "volumeMounts": [{"name": "shared", "mountPath": "/shared"}]}
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
    assert_eq!(message(&no_pod), "rejected: Pod missing not found");
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
        "rejected: container nope not found in Pod web"
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
            && ev.note.as_deref() == Some("rejected: container nope not found in Pod web")),
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
