//! graft's admission server on the real cluster: `graft controllers --namespace NS` with
//! `--admission-addr` on the host (the local cluster's kube-apiserver runs on the host and calls
//! it by URL). Each test writes its own MutatingWebhookConfiguration, narrowed to its namespace
//! (and owned by it, so it goes with the namespace), and keeps the certificate Secret there.
//!
//! With graft up, a ContainerRecreateRequest comes back from the create call already filled from
//! its pod (labels, container IDs, restart counts), a CloneSet with OpenKruise's defaults, and a
//! request OpenKruise refuses is refused with its message. With graft killed and its configuration
//! left in place, creations go through at once (fail open, no timeout wait) and the CRR manager
//! fills the request when graft is back; the second start reuses the certificate Secret.
#![cfg(feature = "cluster-tests")]

mod support;

use std::time::{Duration, Instant};

use graft_api::apps::v1alpha1::{CloneSet, ContainerRecreateRequest};
use graft_api::labels;
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::Api;
use kube::api::{DeleteParams, EvictParams, PostParams};
use serde_json::json;
use support::{
    GraftControllers, TestNamespace, admission_config_name, client, free_host_port, image,
    install_crds, wait_for,
};

const MINUTE: Duration = Duration::from_secs(60);
/// The webhook's timeout; a create with graft down must be well below it.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(3);

/// Waits until the API server calls graft's webhook: the configuration exists with a CA and a
/// dry-run CloneSet create comes back with the default only the webhook writes.
async fn wait_until_admitting(
    client: &kube::Client,
    ns: &TestNamespace,
) -> MutatingWebhookConfiguration {
    let configs: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    let config = wait_for(
        &configs,
        &admission_config_name(&ns.name),
        "graft's webhook configuration with a caBundle",
        MINUTE,
        |c| {
            c.webhooks.iter().flatten().all(|w| {
                w.client_config
                    .ca_bundle
                    .as_ref()
                    .is_some_and(|b| !b.0.is_empty())
            }) && c.webhooks.as_ref().is_some_and(|w| !w.is_empty())
        },
    )
    .await;
    let clonesets: Api<CloneSet> = ns.api();
    let probe = cloneset("probe");
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    support::eventually(
        "a dry-run CloneSet create defaulted by graft's webhook",
        MINUTE,
        || {
            let clonesets = clonesets.clone();
            let probe = probe.clone();
            let dry = dry.clone();
            async move {
                let got = clonesets
                    .create(&dry, &probe)
                    .await
                    .map_err(|e| e.to_string())?;
                let v = serde_json::to_value(&got.spec).map_err(|e| e.to_string())?;
                if v["updateStrategy"]["inPlaceUpdateStrategy"] == json!({}) {
                    Ok(())
                } else {
                    Err(format!("not defaulted yet: {}", v["updateStrategy"]))
                }
            }
        },
    )
    .await;
    config
}

fn cloneset(name: &str) -> CloneSet {
    serde_json::from_value(json!({
        "apiVersion": "apps.kruise.io/v1alpha1", "kind": "CloneSet",
        "metadata": {"name": name},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                         "spec": {"containers": [{"name": "app", "image": image("app:v1")}]}},
            "updateStrategy": {"type": "InPlaceIfPossible"}
        }
    }))
    .expect("valid CloneSet literal")
}

/// A running, ready one-container pod.
async fn running_pod(pods: &Api<Pod>, name: &str) -> Pod {
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "terminationGracePeriodSeconds": 7,
            "containers": [{"name": "app", "image": image("app:v1"), "imagePullPolicy": "IfNotPresent",
                            "readinessProbe": {"httpGet": {"path": "/readyz", "port": 8080}, "periodSeconds": 1}}]
        }
    }))
    .expect("valid pod literal");
    pods.create(&PostParams::default(), &pod)
        .await
        .unwrap_or_else(|e| panic!("creating pod {name}: {e}"));
    wait_for(pods, name, "the pod Running and Ready", MINUTE, |p| {
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

fn crr(name: &str, pod: &str) -> ContainerRecreateRequest {
    serde_json::from_value(json!({
        "apiVersion": "apps.kruise.io/v1alpha1", "kind": "ContainerRecreateRequest",
        "metadata": {"name": name},
        "spec": {"podName": pod, "containers": [{"name": "app"}]}
    }))
    .expect("valid CRR literal")
}

fn label<'a>(r: &'a ContainerRecreateRequest, key: &str) -> Option<&'a str> {
    r.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(key))
        .map(String::as_str)
}

/// The request is filled from `pod` as OpenKruise's webhook fills it.
fn assert_filled_from(r: &ContainerRecreateRequest, pod: &Pod, what: &str) {
    let node = pod.spec.as_ref().and_then(|s| s.node_name.as_deref());
    assert_eq!(
        label(r, labels::CRR_NODE_NAME),
        node,
        "{what}: node-name label: {r:?}"
    );
    assert_eq!(
        label(r, labels::CRR_POD_UID),
        pod.metadata.uid.as_deref(),
        "{what}: pod-uid label: {r:?}"
    );
    let status = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.name == "app"))
        .unwrap_or_else(|| panic!("pod has no status for app: {pod:?}"));
    let ctx = r.spec.containers[0]
        .status_context
        .as_ref()
        .unwrap_or_else(|| panic!("{what}: no statusContext: {r:?}"));
    assert_eq!(
        Some(ctx.container_id.as_str()),
        status.container_id.as_deref(),
        "{what}: container ID"
    );
    assert!(
        ctx.container_id.starts_with("containerd://"),
        "{what}: {ctx:?}"
    );
    assert_eq!(
        ctx.restart_count, status.restart_count,
        "{what}: restart count"
    );
    assert_eq!(
        r.spec
            .strategy
            .as_ref()
            .and_then(|s| s.termination_grace_period_seconds),
        Some(7),
        "{what}: the pod's grace period"
    );
}

#[tokio::test]
async fn with_graft_up_create_responses_carry_what_openkruise_fills() {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "admission-up").await;
    let port = free_host_port();
    let _graft = GraftControllers::start_admitting(&ns.name, port, "up");
    let config = wait_until_admitting(&client, &ns).await;
    let hooks = config.webhooks.clone().unwrap_or_default();
    assert!(
        hooks
            .iter()
            .all(|w| w.failure_policy.as_deref() == Some("Ignore")
                && w.timeout_seconds == Some(3)
                && w.side_effects == "None"),
        "fail-open, short timeout: {hooks:?}"
    );

    let pods: Api<Pod> = ns.api();
    let pod = running_pod(&pods, "web-0").await;
    let crrs: Api<ContainerRecreateRequest> = ns.api();
    let started = Instant::now();
    let created = crrs
        .create(&PostParams::default(), &crr("restart-app", "web-0"))
        .await
        .unwrap_or_else(|e| panic!("creating the CRR: {e}"));
    eprintln!(
        "CRR create with graft up (through the webhook): {:?}",
        started.elapsed()
    );
    // The create response itself, not a later read.
    assert_filled_from(&created, &pod, "the create response");
    assert_eq!(label(&created, labels::CRR_ACTIVE), Some("true"));

    // OpenKruise's refusals, in its words.
    let err = crrs
        .create(&PostParams::default(), &crr("no-pod", "nope"))
        .await
        .expect_err("a CRR for a missing pod is refused");
    assert!(
        err.to_string().contains("no found Pod named nope"),
        "kruise's message: {err}"
    );
    let mut missing = crr("no-container", "web-0");
    missing.spec.containers[0].name = "sidecar".into();
    let err = crrs
        .create(&PostParams::default(), &missing)
        .await
        .expect_err("a CRR for a container the pod lacks is refused");
    assert!(
        err.to_string()
            .contains("container sidecar not found in Pod"),
        "kruise's message: {err}"
    );

    let clonesets: Api<CloneSet> = ns.api();
    let cs = clonesets
        .create(&PostParams::default(), &cloneset("web"))
        .await
        .unwrap_or_else(|e| panic!("creating the CloneSet: {e}"));
    let spec = serde_json::to_value(&cs.spec).expect("spec");
    assert_eq!(
        spec["updateStrategy"],
        json!({"type": "InPlaceIfPossible", "partition": 0, "maxUnavailable": "20%", "maxSurge": 0,
               "inPlaceUpdateStrategy": {}}),
        "the create response shows OpenKruise's defaults"
    );
    assert_eq!(spec["revisionHistoryLimit"], json!(10));

    // Advanced StatefulSet: kruise's name and label syntax rules in its words, and a name that
    // is not even a DNS subdomain left to the API server, which refuses it in its own (as it
    // does before kruise's validating webhook is called). Dry runs: the controller sees nothing.
    let sets: Api<graft_api::apps::v1beta1::StatefulSet> = ns.api();
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let name_part = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
    // (name, template labels, expected message, refused by graft's webhook)
    let refusals = [
        (
            "db.v1",
            json!({"app": "db"}),
            "metadata.name: Invalid value: \"db.v1\": must not contain dots".to_string(),
            true,
        ),
        (
            "db",
            json!({"app": "db", "a b": "x"}),
            format!("spec.template.labels: Invalid value: \"a b\": {name_part}"),
            true,
        ),
        (
            "DB",
            json!({"app": "db"}),
            "metadata.name: Invalid value: \"DB\": a lowercase RFC 1123 subdomain must consist of"
                .to_string(),
            false,
        ),
    ];
    for (name, template_labels, want, by_graft) in refusals {
        let set: graft_api::apps::v1beta1::StatefulSet = serde_json::from_value(json!({
            "apiVersion": "apps.kruise.io/v1beta1", "kind": "StatefulSet",
            "metadata": {"name": name},
            "spec": {"selector": {"matchLabels": {"app": "db"}}, "serviceName": "db",
                "template": {"metadata": {"labels": template_labels},
                    "spec": {"containers": [{"name": "db", "image": image("app:v1")}]}}}
        }))
        .expect("a StatefulSet");
        let err = sets
            .create(&dry, &set)
            .await
            .expect_err("an Advanced StatefulSet kruise refuses")
            .to_string();
        assert!(err.contains(&want), "{name}: want {want:?}, got {err}");
        assert_eq!(
            err.contains("admission webhook"),
            by_graft,
            "{name}: refused by graft's webhook? {err}"
        );
    }

    let secrets: Api<Secret> = ns.api();
    let secret = secrets
        .get("graft-admission-tls")
        .await
        .unwrap_or_else(|e| panic!("the certificate Secret: {e}"));
    assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/tls"));
}

#[tokio::test]
async fn with_graft_down_creation_is_not_blocked_and_the_manager_fills_later() {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "admission-down").await;
    let port = free_host_port();
    let mut first = GraftControllers::start_admitting(&ns.name, port, "first");
    let config = wait_until_admitting(&client, &ns).await;
    let secrets: Api<Secret> = ns.api();
    let secret = secrets
        .get("graft-admission-tls")
        .await
        .unwrap_or_else(|e| panic!("the certificate Secret: {e}"));
    let pods: Api<Pod> = ns.api();
    let pod = running_pod(&pods, "web-0").await;

    // graft dies; its configuration stays.
    first.kill();
    let configs: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    assert!(
        configs
            .get_opt(&admission_config_name(&ns.name))
            .await
            .expect("read the configuration")
            .is_some(),
        "the configuration is left in place"
    );

    let crrs: Api<ContainerRecreateRequest> = ns.api();
    let started = Instant::now();
    let created = crrs
        .create(&PostParams::default(), &crr("while-down", "web-0"))
        .await
        .unwrap_or_else(|e| panic!("creating a CRR with graft down must work: {e}"));
    let crr_latency = started.elapsed();
    let plain: Pod = serde_json::from_value(json!({
        "metadata": {"name": "plain"},
        "spec": {"containers": [{"name": "app", "image": image("app:v1"), "imagePullPolicy": "IfNotPresent"}]}
    }))
    .expect("valid pod literal");
    let started = Instant::now();
    pods.create(&PostParams::default(), &plain)
        .await
        .unwrap_or_else(|e| panic!("creating a pod with graft down must work: {e}"));
    let pod_latency = started.elapsed();
    // Evicting and deleting pods go through at once too (graft's webhooks match no pod request;
    // this shows it with graft down).
    let started = Instant::now();
    pods.evict("plain", &EvictParams::default())
        .await
        .unwrap_or_else(|e| panic!("evicting a pod with graft down must work: {e}"));
    let evict_latency = started.elapsed();
    let mut second_plain = plain.clone();
    second_plain.metadata.name = Some("plain-2".into());
    pods.create(&PostParams::default(), &second_plain)
        .await
        .unwrap_or_else(|e| panic!("creating a pod with graft down must work: {e}"));
    let started = Instant::now();
    pods.delete("plain-2", &DeleteParams::default())
        .await
        .unwrap_or_else(|e| panic!("deleting a pod with graft down must work: {e}"));
    let delete_latency = started.elapsed();
    let clonesets: Api<CloneSet> = ns.api();
    let started = Instant::now();
    clonesets
        .create(&PostParams::default(), &cloneset("while-down"))
        .await
        .unwrap_or_else(|e| panic!("creating a CloneSet with graft down must work: {e}"));
    let cloneset_latency = started.elapsed();
    eprintln!(
        "create latency with graft down (webhook timeout {WEBHOOK_TIMEOUT:?}): CRR {crr_latency:?}, CloneSet {cloneset_latency:?}, Pod {pod_latency:?}, eviction {evict_latency:?}, delete {delete_latency:?}"
    );
    for (what, took) in [
        ("CRR", crr_latency),
        ("CloneSet", cloneset_latency),
        ("Pod", pod_latency),
        ("Pod eviction", evict_latency),
        ("Pod delete", delete_latency),
    ] {
        assert!(
            took < WEBHOOK_TIMEOUT / 3,
            "{what} took {took:?}: it must not wait for the webhook's timeout"
        );
    }
    assert_eq!(
        label(&created, labels::CRR_POD_UID),
        None,
        "no webhook ran: {created:?}"
    );

    // graft is back: the CRR manager fills the request created meanwhile.
    let _second = GraftControllers::start_admitting(&ns.name, port, "second");
    let filled = wait_for(
        &crrs,
        "while-down",
        "the CRR filled from its pod by the manager",
        MINUTE,
        |r| {
            label(r, labels::CRR_POD_UID).is_some()
                && r.spec.containers.iter().all(|c| c.status_context.is_some())
        },
    )
    .await;
    assert_filled_from(&filled, &pod, "filled by the manager");

    // The second start reused the Secret's certificate: same certificate, same Secret version,
    // same caBundle; and it serves it (a new CRR comes back filled).
    let again = wait_until_admitting(&client, &ns).await;
    let after = secrets
        .get("graft-admission-tls")
        .await
        .unwrap_or_else(|e| panic!("the certificate Secret: {e}"));
    assert_eq!(
        after.metadata.resource_version, secret.metadata.resource_version,
        "the Secret was not rewritten"
    );
    assert_eq!(
        after.data.as_ref().and_then(|d| d.get("tls.crt")),
        secret.data.as_ref().and_then(|d| d.get("tls.crt")),
        "the same certificate"
    );
    let bundle = |c: &MutatingWebhookConfiguration| {
        c.webhooks
            .iter()
            .flatten()
            .map(|w| w.client_config.ca_bundle.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(bundle(&again), bundle(&config), "the same caBundle");
    let created = crrs
        .create(&PostParams::default(), &crr("after-restart", "web-0"))
        .await
        .unwrap_or_else(|e| panic!("creating the CRR: {e}"));
    assert_filled_from(&created, &pod, "the create response after the restart");
}
