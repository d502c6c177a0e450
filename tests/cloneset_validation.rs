//! CloneSet validation through graft's admission webhook on the real cluster: what OpenKruise
//! v1.9 refuses, `kubectl apply --dry-run=server` refuses with kruise's message (a selector not
//! matching the template labels, maxUnavailable and maxSurge both 0, progressDeadlineSeconds
//! not above minReadySeconds, and on UPDATE a changed selector), and a valid CloneSet goes
//! through. graft runs as `graft controllers --namespace NS` with its admission server on the
//! host, its webhook configuration narrowed to the test's namespace.
#![cfg(feature = "cluster-tests")]

mod support;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use graft_api::apps::v1alpha1::CloneSet;
use graft_api::apps::v1alpha1::cloneset_validation::FORBIDDEN_UPDATE;
use kube::Api;
use kube::api::PostParams;
use serde_json::{Value, json};
use support::{GraftControllers, TestNamespace, client, free_host_port, image, install_crds};

const MINUTE: Duration = Duration::from_secs(60);

/// How kubectl shows a refusal by graft's CloneSet webhook.
const DENIED: &str = "admission webhook \"mcloneset.graft.dev\" denied the request: ";

/// A valid CloneSet manifest named `name`, with `spec_extra` merged into its spec.
fn manifest(name: &str, spec_extra: Value) -> Value {
    let mut spec = json!({
        "replicas": 2,
        "selector": {"matchLabels": {"app": name}},
        "template": {"metadata": {"labels": {"app": name}},
            "spec": {"containers": [{"name": "app", "image": image("app:v1")}]}}
    });
    for (k, v) in spec_extra.as_object().into_iter().flatten() {
        spec[k] = v.clone();
    }
    json!({"apiVersion": "apps.kruise.io/v1alpha1", "kind": "CloneSet",
        "metadata": {"name": name}, "spec": spec})
}

/// `kubectl apply -n ns -f -` (plus `extra` flags) on `manifest`: success and the output.
fn apply(ns: &str, manifest: &Value, extra: &[&str]) -> (bool, String) {
    let mut child = Command::new("kubectl")
        .args(["apply", "-n", ns, "-f", "-"])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("running kubectl apply: {e} (is the cluster env loaded?)"));
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(manifest.to_string().as_bytes())
            .unwrap_or_else(|e| panic!("writing the manifest to kubectl: {e}"));
    }
    let out = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("waiting for kubectl apply: {e}"));
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Asserts that a server-side dry-run apply of `manifest` is refused by graft's webhook with
/// exactly `want`.
fn assert_refused(ns: &str, rule: &str, manifest: &Value, want: &str) {
    let (ok, out) = apply(ns, manifest, &["--dry-run=server"]);
    assert!(!ok, "{rule}: kruise refuses it, but kubectl said: {out}");
    assert!(
        out.trim_end().ends_with(&format!("{DENIED}{want}")),
        "{rule}: want {DENIED}{want:?}\n got {out}"
    );
}

/// Waits until the API server calls graft's webhook: a dry-run create comes back with the
/// default only the webhook writes (`inPlaceUpdateStrategy: {}`).
async fn wait_until_admitting(ns: &TestNamespace) {
    let clonesets: Api<CloneSet> = ns.api();
    let probe: CloneSet = serde_json::from_value(manifest(
        "probe",
        json!({"updateStrategy": {"type": "InPlaceIfPossible"}}),
    ))
    .expect("a CloneSet literal");
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    support::eventually(
        "a dry-run CloneSet create defaulted by graft's webhook",
        MINUTE,
        || {
            let (clonesets, probe, dry) = (clonesets.clone(), probe.clone(), dry.clone());
            async move {
                let got = clonesets
                    .create(&dry, &probe)
                    .await
                    .map_err(|e| e.to_string())?;
                let us =
                    serde_json::to_value(&got.spec.update_strategy).map_err(|e| e.to_string())?;
                if us["inPlaceUpdateStrategy"] == json!({}) {
                    Ok(())
                } else {
                    Err(format!("not defaulted yet: {us}"))
                }
            }
        },
    )
    .await;
}

#[tokio::test]
async fn kubectl_apply_of_a_cloneset_kruise_refuses_is_refused_with_its_message() {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "cloneset-validation").await;
    let _graft = GraftControllers::start_admitting(&ns.name, free_host_port(), "validation");
    wait_until_admitting(&ns).await;

    // CREATE: (rule, manifest, kruise's message)
    let refusals = [
        (
            "the selector does not match the template labels",
            manifest(
                "web",
                json!({"selector": {"matchLabels": {"app": "other"}}}),
            ),
            "spec.template.metadata.labels: Invalid value: \"{\\\"app\\\":\\\"web\\\"}\": `selector` does not match template `labels`",
        ),
        (
            "maxUnavailable 0 and maxSurge 0",
            manifest(
                "web",
                json!({"updateStrategy": {"maxUnavailable": 0, "maxSurge": 0}}),
            ),
            "spec.updateStrategy.maxUnavailable: Invalid value: \"0\": maxUnavailable and maxSurge should not both be less than 1",
        ),
        (
            "progressDeadlineSeconds not above minReadySeconds",
            manifest(
                "web",
                json!({"minReadySeconds": 30, "progressDeadlineSeconds": 30}),
            ),
            "spec.progressDeadlineSeconds: Invalid value: \"30\": must be greater than minReadySeconds",
        ),
        (
            "two at once, in brackets",
            manifest(
                "web",
                json!({"minReadySeconds": 30, "progressDeadlineSeconds": 10,
                    "updateStrategy": {"maxUnavailable": "0%"}}),
            ),
            "[spec.updateStrategy.maxUnavailable: Invalid value: \"0%\": maxUnavailable and maxSurge should not both be less than 1, spec.progressDeadlineSeconds: Invalid value: \"10\": must be greater than minReadySeconds]",
        ),
    ];
    for (rule, m, want) in &refusals {
        assert_refused(&ns.name, rule, m, want);
    }
    // OpenKruise answers an invalid CloneSet with 422 Unprocessable Entity.
    let invalid: CloneSet =
        serde_json::from_value(refusals[0].1.clone()).expect("a CloneSet literal");
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    match ns.api::<CloneSet>().create(&dry, &invalid).await {
        Err(kube::Error::Api(e)) => assert_eq!(e.code, 422, "refused with {e:?}"),
        other => panic!("an invalid CloneSet was not refused: {other:?}"),
    }

    // Valid ones go through, the in-place defaults included.
    for (rule, m) in [
        ("the defaults", manifest("web", json!({}))),
        (
            "maxUnavailable 0 with a surge",
            manifest(
                "web",
                json!({"updateStrategy": {"maxUnavailable": 0, "maxSurge": 1}}),
            ),
        ),
        (
            "progressDeadlineSeconds above minReadySeconds",
            manifest(
                "web",
                json!({"minReadySeconds": 30, "progressDeadlineSeconds": 31}),
            ),
        ),
    ] {
        let (ok, out) = apply(&ns.name, &m, &["--dry-run=server"]);
        assert!(ok, "{rule}: a valid CloneSet is accepted, got: {out}");
        assert!(out.contains("(server dry run)"), "{rule}: {out}");
    }

    // UPDATE: the stored object is the old one. A new image is fine, a new selector is not.
    let stored = manifest("web", json!({"replicas": 0}));
    let (ok, out) = apply(&ns.name, &stored, &[]);
    assert!(ok, "creating the CloneSet: {out}");
    let mut new_image = stored.clone();
    new_image["spec"]["template"]["spec"]["containers"][0]["image"] = json!(image("app:v2"));
    let (ok, out) = apply(&ns.name, &new_image, &["--dry-run=server"]);
    assert!(ok, "a template change is accepted: {out}");
    let mut new_selector = stored.clone();
    new_selector["spec"]["selector"]["matchLabels"] = json!({"app": "web", "tier": "front"});
    new_selector["spec"]["template"]["metadata"]["labels"] = json!({"app": "web", "tier": "front"});
    assert_refused(
        &ns.name,
        "the selector is immutable",
        &new_selector,
        &format!("spec: Forbidden: {FORBIDDEN_UPDATE}"),
    );
}
