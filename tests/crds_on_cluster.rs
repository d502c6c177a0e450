//! graft's CRDs install on the real API server, every fixture manifest is accepted by it without
//! losing a field, schema defaults are applied and CEL rules reject what they should — no webhook.
#![cfg(feature = "cluster-tests")]

mod support;

use std::path::{Path, PathBuf};

use kube::api::{ApiResource, DynamicObject, GroupVersionKind, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};
use support::{TestNamespace, client, install_crds};

fn fixtures() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut out = Vec::new();
    for dir in ["kruise", "graft"] {
        for entry in std::fs::read_dir(root.join(dir))
            .into_iter()
            .flatten()
            .flatten()
        {
            let p = entry.path();
            if p.extension().is_some_and(|e| e == "yaml")
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().contains("invalid"))
            {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn api_for(
    client: &Client,
    obj: &DynamicObject,
    ns: &str,
    cluster_scoped: bool,
) -> Api<DynamicObject> {
    let types = obj
        .types
        .as_ref()
        .expect("manifest has apiVersion and kind");
    let gvk = GroupVersionKind::try_from(types).expect("valid apiVersion");
    let plural = format!("{}s", gvk.kind.to_ascii_lowercase());
    let ar = ApiResource::from_gvk_with_plural(&gvk, &plural);
    if cluster_scoped {
        Api::all_with(client.clone(), &ar)
    } else {
        Api::namespaced_with(client.clone(), ns, &ar)
    }
}

const CLUSTER_SCOPED: [&str; 2] = ["SidecarSet", "NodeImage"];

/// Every leaf of `sent` is present with the same value in `got` (the server may add defaults).
fn missing_fields(sent: &Value, got: &Value, path: &str, out: &mut Vec<String>) {
    match (sent, got) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                match b.get(k) {
                    Some(w) => missing_fields(v, w, &format!("{path}.{k}"), out),
                    None => out.push(format!("{path}.{k}")),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (v, w)) in a.iter().zip(b).enumerate() {
                missing_fields(v, w, &format!("{path}[{i}]"), out);
            }
        }
        (a, b) if a == b => {}
        // Quantities and int-or-strings may be normalised; numbers equal as numbers are fine.
        (Value::Number(a), Value::Number(b)) if a.as_f64() == b.as_f64() => {}
        (a, b) => out.push(format!("{path}: sent {a}, got {b}")),
    }
}

#[tokio::test]
async fn crds_install_and_every_fixture_is_accepted_without_losing_a_field() {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "crds").await;
    let files = fixtures();
    assert!(
        files.len() >= 16,
        "expected at least two fixtures per kind, found {files:?}"
    );
    let mut failures = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read fixture");
        let value: Value = serde_saphyr::from_str(&text)
            .unwrap_or_else(|e| panic!("{}: not YAML: {e}", file.display()));
        let mut obj: DynamicObject = serde_json::from_value(value.clone())
            .unwrap_or_else(|e| panic!("{}: not a Kubernetes object: {e}", file.display()));
        let kind = obj
            .types
            .as_ref()
            .map(|t| t.kind.clone())
            .unwrap_or_default();
        let cluster_scoped = CLUSTER_SCOPED.contains(&kind.as_str());
        if !cluster_scoped {
            obj.metadata.namespace = Some(ns.name.clone());
        }
        let api = api_for(&client, &obj, &ns.name, cluster_scoped);
        let pp = PostParams {
            dry_run: true,
            field_manager: Some("graft-test".into()),
        };
        match api.create(&pp, &obj).await {
            Ok(created) => {
                let got = serde_json::to_value(&created).expect("serialize");
                let mut missing = Vec::new();
                missing_fields(&value["spec"], &got["spec"], "spec", &mut missing);
                if !missing.is_empty() {
                    failures.push(format!(
                        "{}: the API server dropped or changed {missing:?}",
                        file.display()
                    ));
                }
            }
            Err(e) => failures.push(format!("{}: rejected: {e}", file.display())),
        }
    }
    assert!(
        failures.is_empty(),
        "fixtures not accepted as written:\n{}",
        failures.join("\n")
    );
}

fn cloneset(ns: &str, update_strategy: Value) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "apps.kruise.io/v1alpha1", "kind": "CloneSet",
        "metadata": {"name": "web", "namespace": ns},
        "spec": {
            "replicas": 4,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "app", "image": support::image("app:v1")}]}
            },
            "updateStrategy": update_strategy
        }
    }))
    .expect("valid object")
}

#[tokio::test]
async fn the_api_server_applies_cloneset_defaults_and_rejects_invalid_strategies() {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "crd-rules").await;
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("apps.kruise.io", "v1alpha1", "CloneSet"),
        "clonesets",
    );
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns.name, &ar);
    let dry = PostParams {
        dry_run: true,
        field_manager: None,
    };
    let created = api
        .create(&dry, &cloneset(&ns.name, json!({})))
        .await
        .expect("a minimal CloneSet is accepted");
    let strategy = &created.data["spec"]["updateStrategy"];
    assert_eq!(
        strategy["type"],
        json!("ReCreate"),
        "default update type: {strategy}"
    );
    assert_eq!(
        strategy["maxUnavailable"],
        json!("20%"),
        "default maxUnavailable: {strategy}"
    );
    assert_eq!(created.data["spec"]["revisionHistoryLimit"], json!(10));

    for (bad, why, field) in [
        (
            json!({"type": "InPlaceOnly", "maxSurge": 1}),
            "maxSurge with InPlaceOnly",
            "maxSurge",
        ),
        (
            json!({"maxUnavailable": "1"}),
            "a numeric string for maxUnavailable",
            "maxUnavailable",
        ),
        (
            json!({"type": "Sideways"}),
            "an unknown update type",
            "type",
        ),
        (
            json!({"maxUnavailable": "150%"}),
            "a maxUnavailable above 100%",
            "maxUnavailable",
        ),
    ] {
        match api.create(&dry, &cloneset(&ns.name, bad.clone())).await {
            Ok(_) => panic!("the API server accepted {why}: {bad}"),
            Err(e) => assert!(
                e.to_string().contains(field),
                "rejected {why}, but the error does not name {field}: {e}"
            ),
        }
    }
}

/// OpenKruise's NodeImage webhook rules (`pkg/webhook/nodeimage/validating`), made by the API
/// server through the CRD's CEL rules with kruise's messages, and its defaults (every tag gets a
/// `pullPolicy` with timeout 600 and backoff 3).
#[tokio::test]
async fn the_api_server_refuses_nodeimages_as_kruises_webhook_does() {
    let client = client().await;
    install_crds(&client).await;
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("apps.kruise.io", "v1alpha1", "NodeImage"),
        "nodeimages",
    );
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
    let dry = PostParams {
        dry_run: true,
        field_manager: None,
    };
    let node_image = |images: Value| -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "apps.kruise.io/v1alpha1", "kind": "NodeImage",
            "metadata": {"name": "graft-test-crd-nodeimage"},
            "spec": {"images": images}
        }))
        .expect("NodeImage literal")
    };
    let ttl = json!({"ttlSecondsAfterFinished": 300});
    let many: serde_json::Map<String, Value> = (0..257)
        .map(|i| (format!("img{i}"), json!({"tags": []})))
        .collect();
    let refused = [
        (
            Value::Object(many),
            "spec images length can not be more than 256".to_string(),
        ),
        (
            json!({"": {"tags": []}}),
            "image name can not be empty".to_string(),
        ),
        (
            json!({"nginx": {"tags": [{"tag": "", "pullPolicy": ttl}]}}),
            "tag for image can not be empty".to_string(),
        ),
        (
            json!({"nginx": {"tags": [{"tag": "1", "pullPolicy": ttl}, {"tag": "1", "pullPolicy": ttl}]}}),
            // a list keyed by tag: the API server's own refusal (kruise's webhook words it
            // "duplicated tag 1 for image nginx"; a CEL rule for it exceeds the cost budget)
            "Duplicate value".to_string(),
        ),
        (
            json!({"nginx": {"tags": [{"tag": "1", "version": -1, "pullPolicy": ttl}]}}),
            "version for image tag can not be less than 0".to_string(),
        ),
        (
            json!({"nginx": {"tags": [{"tag": "1"}]}}),
            "pullPolicy.ttlSecondsAfterFinished for image tag must set".to_string(),
        ),
    ];
    for (images, message) in refused {
        match api.create(&dry, &node_image(images.clone())).await {
            Ok(_) => panic!("the API server accepted a NodeImage kruise refuses ({message})"),
            Err(e) => assert!(
                e.to_string().contains(&message),
                "refused, but without {message:?}: {e}"
            ),
        }
    }
    let created = api
        .create(
            &dry,
            &node_image(json!({"nginx": {"tags": [
                {"tag": "1", "version": 0, "pullPolicy": ttl},
                {"tag": "2", "pullPolicy": {"ttlSecondsAfterFinished": 300, "timeoutSeconds": 5}}
            ]}})),
        )
        .await
        .expect("kruise accepts tags with a TTL");
    let tags = &created.data["spec"]["images"]["nginx"]["tags"];
    assert_eq!(
        tags[0]["pullPolicy"],
        json!({"ttlSecondsAfterFinished": 300, "timeoutSeconds": 600, "backoffLimit": 3}),
        "kruise's per-tag defaults: {tags}"
    );
    assert_eq!(
        tags[1]["pullPolicy"],
        json!({"ttlSecondsAfterFinished": 300, "timeoutSeconds": 5, "backoffLimit": 3}),
        "{tags}"
    );
}

/// The enum fields whose unknown values kruise's webhooks refuse with their own words (the
/// ImagePullJob's completionPolicy.type, the CRR's failurePolicy), and the ones kruise takes as
/// written (an ImagePullJob's imagePullPolicy; no minimum on its deadline and TTL).
#[tokio::test]
async fn unknown_enum_values_get_kruises_messages_and_free_strings_are_accepted() {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "crd-enums").await;
    let dry = PostParams {
        dry_run: true,
        field_manager: None,
    };
    let api = |kind: &str, plural: &str| -> Api<DynamicObject> {
        let ar = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("apps.kruise.io", "v1alpha1", kind),
            plural,
        );
        Api::namespaced_with(client.clone(), &ns.name, &ar)
    };
    let obj = |kind: &str, spec: Value| -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "apps.kruise.io/v1alpha1", "kind": kind,
            "metadata": {"name": "x"}, "spec": spec
        }))
        .expect("literal")
    };
    let jobs = api("ImagePullJob", "imagepulljobs");
    let crrs = api("ContainerRecreateRequest", "containerrecreaterequests");
    for (api, kind, spec, message) in [
        (
            &jobs,
            "ImagePullJob",
            json!({"image": "nginx", "completionPolicy": {"type": "Sometimes"}}),
            "unknown type of completionPolicy: Sometimes",
        ),
        (
            &crrs,
            "ContainerRecreateRequest",
            json!({"podName": "web", "containers": [{"name": "app"}], "strategy": {"failurePolicy": "Sometimes"}}),
            "unknown failurePolicy Sometimes",
        ),
    ] {
        match api.create(&dry, &obj(kind, spec.clone())).await {
            Ok(_) => panic!("the API server accepted {spec}"),
            Err(e) => assert!(
                e.to_string().contains(message),
                "{spec}: refused, but without {message:?}: {e}"
            ),
        }
    }
    for spec in [
        json!({"image": "nginx", "imagePullPolicy": "Never"}),
        json!({"image": "nginx", "pullPolicy": {"timeoutSeconds": 0},
            "completionPolicy": {"activeDeadlineSeconds": 0, "ttlSecondsAfterFinished": -1}}),
    ] {
        let created = jobs
            .create(&dry, &obj("ImagePullJob", spec.clone()))
            .await
            .unwrap_or_else(|e| panic!("kruise accepts {spec}, graft refused it: {e}"));
        if spec["imagePullPolicy"] == json!("Never") {
            assert_eq!(created.data["spec"]["imagePullPolicy"], json!("Never"));
        }
    }
}
