//! The node agent's RBAC (`deploy/rbac/nodeagent.yaml`) on the real API server: what its
//! ServiceAccount may and may not do, checked with `kubectl auth can-i` and with a real token bound
//! to a pod on the node (which the admission policy needs to know the agent's node).
#![cfg(feature = "cluster-tests")]

mod support;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use graft_api::apps::v1alpha1::NodeImage;
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::{Pod, Secret, ServiceAccount};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use support::imagepull::ClusterLock;
use support::{TestNamespace, node_name, wait_for};

/// The manifest with its namespace and cluster-wide names made unique to this test.
fn manifest(ns: &str) -> String {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/rbac/nodeagent.yaml"
    ))
    .expect("reading deploy/rbac/nodeagent.yaml");
    text.replace("graft-system", ns)
        .replace("graft-nodeagent", &format!("graft-nodeagent-{ns}"))
}

fn kubectl(args: &[&str], stdin: Option<&str>) -> (bool, String) {
    let mut child = Command::new("kubectl")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("running kubectl {args:?}: {e} (is the cluster env loaded?)"));
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    } else {
        drop(child.stdin.take());
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Deletes the applied manifest (its cluster-scoped objects too) on drop.
struct Applied(String);

impl Drop for Applied {
    fn drop(&mut self) {
        let _ = kubectl(
            &["delete", "--ignore-not-found", "--wait=false", "-f", "-"],
            Some(&self.0),
        );
    }
}

async fn client_with_token(token: String) -> Client {
    let path = std::env::var("KUBECONFIG")
        .unwrap_or_else(|_| "/var/lib/graft-local/admin.kubeconfig".into());
    let kc = kube::config::Kubeconfig::read_from(&path).unwrap();
    let mut config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    config.auth_info = kube::config::AuthInfo {
        token: Some(token.into()),
        ..Default::default()
    };
    Client::try_from(config).unwrap()
}

#[tokio::test]
async fn the_node_agent_may_do_what_it_needs_and_nothing_more() {
    let _lock = ClusterLock::acquire();
    let client = support::client().await;
    support::install_crds(&client).await;
    let ns = TestNamespace::new(&client, "agent-rbac").await;
    let text = manifest(&ns.name);
    let (ok, out) = kubectl(&["apply", "-f", "-"], Some(&text));
    assert!(
        ok,
        "kubectl apply of deploy/rbac/nodeagent.yaml failed:\n{out}"
    );
    let _applied = Applied(text);
    let sa = format!("graft-nodeagent-{}", ns.name);
    let user = format!("system:serviceaccount:{}:{sa}", ns.name);

    // (verb, resource, subresource, namespace, allowed)
    let table: &[(&str, &str, &str, &str, bool)] = &[
        ("watch", "nodeimages.apps.kruise.io", "", "", true),
        ("get", "nodeimages.apps.kruise.io", "", "", true),
        ("patch", "nodeimages.apps.kruise.io", "status", "", true),
        ("update", "nodeimages.apps.kruise.io", "", "", false),
        ("delete", "nodeimages.apps.kruise.io", "", "", false),
        ("create", "nodeimages.apps.kruise.io", "", "", false),
        (
            "list",
            "containerrecreaterequests.apps.kruise.io",
            "",
            "default",
            true,
        ),
        (
            "patch",
            "containerrecreaterequests.apps.kruise.io",
            "status",
            "default",
            true,
        ),
        (
            "delete",
            "containerrecreaterequests.apps.kruise.io",
            "",
            "default",
            false,
        ),
        ("watch", "pods", "", "default", true),
        ("patch", "pods", "status", "default", true),
        ("patch", "pods", "", "default", false),
        ("create", "pods", "", "default", false),
        ("delete", "pods", "", "default", false),
        ("create", "events", "", "default", true),
        ("create", "events.events.k8s.io", "", "default", true),
        ("get", "secrets", "", ns.name.as_str(), true),
        ("watch", "secrets", "", ns.name.as_str(), true),
        ("get", "secrets", "", "default", false),
        ("list", "secrets", "", "kube-system", false),
        ("create", "secrets", "", ns.name.as_str(), false),
        ("list", "imagepulljobs.apps.kruise.io", "", "default", false),
        ("get", "nodes", "", "", false),
    ];
    let mut wrong = Vec::new();
    for (verb, resource, sub, namespace, allowed) in table {
        let mut args = vec!["auth", "can-i", verb, resource, "--as", user.as_str()];
        if !sub.is_empty() {
            args.extend(["--subresource", sub]);
        }
        if !namespace.is_empty() {
            args.extend(["-n", namespace]);
        }
        let (_, out) = kubectl(&args, None);
        let got = out.trim().starts_with("yes");
        if got != *allowed {
            wrong.push(format!(
                "{verb} {resource}/{sub} in {namespace:?}: want {allowed}, kubectl says {}",
                out.trim()
            ));
        }
    }
    assert!(wrong.is_empty(), "RBAC differs:\n{}", wrong.join("\n"));

    // A real token, bound to a pod on the node as the DaemonSet's would be.
    let pods: Api<Pod> = ns.api();
    let pod: Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "agent"},
        "spec": {"serviceAccountName": sa, "terminationGracePeriodSeconds": 0,
                 "automountServiceAccountToken": false,
                 "containers": [{"name": "pause", "image": format!("{}/pause:3.10", support::registry())}]}
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let pod = wait_for(
        &pods,
        "agent",
        "scheduled on the node",
        Duration::from_secs(60),
        |p| p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node_name().as_str()),
    )
    .await;
    let sas: Api<ServiceAccount> = ns.api();
    let request: TokenRequest = serde_json::from_value(json!({
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
        "spec": {"audiences": [], "expirationSeconds": 600,
                 "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": "agent", "uid": pod.uid().unwrap()}}
    }))
    .unwrap();
    let token: TokenRequest = sas
        .create_subresource("token", &sa, &PostParams::default(), &request)
        .await
        .unwrap_or_else(|e| panic!("TokenRequest for {sa}: {e}"));
    let agent = client_with_token(token.status.unwrap().token).await;

    // Its own NodeImage: status writes pass the policy. Another node's: rejected, by name.
    let admin_nis: Api<NodeImage> = Api::all(client.clone());
    if admin_nis.get_opt(&node_name()).await.unwrap().is_none() {
        let ni: NodeImage = serde_json::from_value(
            json!({"apiVersion": "apps.kruise.io/v1alpha1", "kind": "NodeImage",
            "metadata": {"name": node_name()}, "spec": {}}),
        )
        .unwrap();
        admin_nis.create(&PostParams::default(), &ni).await.unwrap();
    }
    let other = format!("{}-other-node", ns.name);
    let ni: NodeImage = serde_json::from_value(json!({"apiVersion": "apps.kruise.io/v1alpha1", "kind": "NodeImage",
        "metadata": {"name": other, "labels": {"apps.kruise.io/fake-nodeimage": "true"}}, "spec": {}})).unwrap();
    admin_nis.create(&PostParams::default(), &ni).await.unwrap();
    struct DeleteNi(Api<NodeImage>, String);
    impl Drop for DeleteNi {
        fn drop(&mut self) {
            let (api, name) = (self.0.clone(), self.1.clone());
            let _ = std::thread::spawn(move || {
                let _ = kubectl(&["delete", "nodeimage", &name, "--ignore-not-found"], None);
                drop(api);
            })
            .join();
        }
    }
    let _cleanup = DeleteNi(admin_nis.clone(), other.clone());

    let nis: Api<NodeImage> = Api::all(agent.clone());
    let status_patch = Patch::Merge(json!({"status": {"desired": 0}}));
    // The policy is compiled in the background after it is created: wait until it rejects.
    support::eventually(
        "the policy to reject a write to another node's NodeImage",
        Duration::from_secs(30),
        || {
            let nis = nis.clone();
            let other = other.clone();
            let patch = status_patch.clone();
            async move {
                match nis
                    .patch_status(&other, &PatchParams::default(), &patch)
                    .await
                {
                    Err(kube::Error::Api(e))
                        if e.message.contains("may only write its own NodeImage") =>
                    {
                        Ok(())
                    }
                    other => Err(format!("{:?}", other.map(|o| o.name_any()))),
                }
            }
        },
    )
    .await;
    nis.patch_status(&node_name(), &PatchParams::default(), &status_patch)
        .await
        .unwrap_or_else(|e| panic!("the agent could not write its own NodeImage status: {e}"));
    // Watching its own NodeImage by name works.
    let own = nis
        .list(&ListParams::default().fields(&format!("metadata.name={}", node_name())))
        .await
        .unwrap();
    assert_eq!(own.items.len(), 1);
    // Spec writes and deletes are refused by RBAC.
    match nis.delete(&other, &Default::default()).await {
        Err(kube::Error::Api(e)) => assert_eq!(e.code, 403, "{e:?}"),
        other => panic!("the agent deleted a NodeImage: {:?}", other.is_ok()),
    }

    // Secrets: readable in its namespace only.
    let admin_secrets: Api<Secret> = ns.api();
    let s: Secret = serde_json::from_value(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "pull"}, "stringData": {"a": "b"}})).unwrap();
    admin_secrets
        .create(&PostParams::default(), &s)
        .await
        .unwrap();
    let own_secrets: Api<Secret> = Api::namespaced(agent.clone(), &ns.name);
    own_secrets
        .get("pull")
        .await
        .unwrap_or_else(|e| panic!("reading a secret of its namespace: {e}"));
    let other_secrets: Api<Secret> = Api::namespaced(agent.clone(), "default");
    match other_secrets.list(&ListParams::default()).await {
        Err(kube::Error::Api(e)) => assert_eq!(e.code, 403, "{e:?}"),
        other => panic!("the agent listed secrets of default: {:?}", other.is_ok()),
    }
}
