//! The local cluster does what graft relies on: pods really run on a real kubelet with containerd,
//! an image patch restarts one container in place, the registry is real, and Services work.
//! Run with `make test` (or `cargo test --features cluster-tests --test local_cluster` with the
//! cluster up).
#![cfg(feature = "cluster-tests")]

mod support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use kube::Api;
use kube::api::{DeleteParams, LogParams, Patch, PatchParams, PostParams};
use serde_json::json;
use support::{TestNamespace, client, eventually, image, image_digest, wait_for};

fn from_json<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
    serde_json::from_value(v).expect("test object literal is valid")
}

fn container_status<'a>(
    pod: &'a Pod,
    name: &str,
) -> Option<&'a k8s_openapi::api::core::v1::ContainerStatus> {
    pod.status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .iter()
        .find(|c| c.name == name)
}

fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn app_deployment(name: &str, tag: &str, replicas: i32) -> Deployment {
    from_json(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "terminationGracePeriodSeconds": 5,
                    "containers": [{
                        "name": "app", "image": image(&format!("app:{tag}")),
                        "imagePullPolicy": "IfNotPresent",
                        "ports": [{"containerPort": 8080}],
                        "readinessProbe": {"httpGet": {"path": "/readyz", "port": 8080}, "periodSeconds": 1}
                    }]
                }
            }
        }
    }))
}

#[tokio::test]
async fn deployment_of_the_app_becomes_available_on_the_real_node() {
    let client = client().await;
    let ns = TestNamespace::new(&client, "lc-deploy").await;
    let deploys: Api<Deployment> = ns.api();
    deploys
        .create(&PostParams::default(), &app_deployment("web", "v1", 2))
        .await
        .expect("create deployment");
    wait_for(
        &deploys,
        "web",
        "2 available replicas",
        Duration::from_secs(120),
        |d| d.status.as_ref().and_then(|s| s.available_replicas) == Some(2),
    )
    .await;
    let pods: Api<Pod> = ns.api();
    let list = pods
        .list(&kube::api::ListParams::default().labels("app=web"))
        .await
        .expect("list pods");
    assert_eq!(list.items.len(), 2, "pods of the deployment: {list:?}");
    for pod in &list.items {
        let status = pod.status.as_ref().expect("pod has a status");
        assert_eq!(status.phase.as_deref(), Some("Running"));
        assert!(is_ready(pod), "pod is not Ready: {status:?}");
        assert_eq!(
            pod.spec.as_ref().and_then(|s| s.node_name.clone()),
            Some(support::node_name())
        );
        let app = container_status(pod, "app").expect("app container status");
        assert!(
            app.image_id.contains(&image_digest("app:v1")),
            "imageID {} is not app:v1's digest",
            app.image_id
        );
    }
}

#[tokio::test]
async fn patching_a_container_image_restarts_only_that_container_in_the_same_pod() {
    let client = client().await;
    let ns = TestNamespace::new(&client, "lc-inplace").await;
    let pods: Api<Pod> = ns.api();
    let pod: Pod = from_json(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "two"},
        "spec": {
            "terminationGracePeriodSeconds": 5,
            "containers": [
                {"name": "app", "image": image("app:v1"), "imagePullPolicy": "IfNotPresent"},
                {"name": "sidecar", "image": image("sidecar:v1"), "imagePullPolicy": "IfNotPresent"}
            ]
        }
    }));
    pods.create(&PostParams::default(), &pod)
        .await
        .expect("create pod");
    let before = wait_for(
        &pods,
        "two",
        "Running and Ready",
        Duration::from_secs(120),
        is_ready,
    )
    .await;
    let uid = before.metadata.uid.clone();
    let ip = before.status.as_ref().and_then(|s| s.pod_ip.clone());
    let node = before.spec.as_ref().and_then(|s| s.node_name.clone());
    assert!(ip.is_some(), "pod has an IP");

    let watcher = support::PodWatcher::start(&client, &ns.name, "");
    let patch = json!({"spec": {"containers": [{"name": "app", "image": image("app:v2")}]}});
    pods.patch("two", &PatchParams::default(), &Patch::Strategic(&patch))
        .await
        .expect("patch image");

    let v2 = image_digest("app:v2");
    let after = wait_for(
        &pods,
        "two",
        "container app running v2 (imageID with app:v2's digest), restartCount 1, Ready",
        Duration::from_secs(120),
        |p| {
            container_status(p, "app")
                .is_some_and(|c| c.image_id.contains(&v2) && c.restart_count == 1 && c.ready)
        },
    )
    .await;
    assert_eq!(after.metadata.uid, uid, "same pod (UID)");
    assert_eq!(
        after.status.as_ref().and_then(|s| s.pod_ip.clone()),
        ip,
        "same IP"
    );
    assert_eq!(
        after.spec.as_ref().and_then(|s| s.node_name.clone()),
        node,
        "same node"
    );
    let sidecar = container_status(&after, "sidecar").expect("sidecar status");
    assert_eq!(sidecar.restart_count, 0, "the sidecar was not restarted");
    assert!(sidecar.image_id.contains(&image_digest("sidecar:v1")));
    // While it happened, the pod was never replaced and the sidecar never restarted.
    let history = watcher.history();
    assert!(
        history
            .iter()
            .all(|s| Some(&s.uid) == uid.as_ref() && !s.deleting),
        "the pod was replaced or deleted during the update: {history:#?}"
    );
    assert!(
        history
            .iter()
            .flat_map(|s| s.containers.iter())
            .filter(|c| c.0 == "sidecar")
            .all(|c| c.3 == 0),
        "the sidecar restarted during the update: {history:#?}"
    );
}

#[tokio::test]
async fn an_image_missing_from_the_registry_fails_to_pull() {
    let client = client().await;
    let ns = TestNamespace::new(&client, "lc-pullfail").await;
    let pods: Api<Pod> = ns.api();
    let pod: Pod = from_json(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "missing"},
        "spec": {"containers": [{"name": "app", "image": image("app:does-not-exist")}]}
    }));
    pods.create(&PostParams::default(), &pod)
        .await
        .expect("create pod");
    let seen = wait_for(
        &pods,
        "missing",
        "container app waiting with ErrImagePull or ImagePullBackOff",
        Duration::from_secs(60),
        |p| {
            container_status(p, "app")
                .and_then(|c| c.state.as_ref()?.waiting.as_ref()?.reason.clone())
                .is_some_and(|r| r == "ErrImagePull" || r == "ImagePullBackOff")
        },
    )
    .await;
    let msg = container_status(&seen, "app")
        .and_then(|c| c.state.as_ref()?.waiting.as_ref()?.message.clone())
        .unwrap_or_default();
    assert!(
        msg.contains("not found") || msg.contains("does-not-exist"),
        "the pull error comes from the registry: {msg}"
    );
}

#[tokio::test]
async fn a_pod_reaches_the_api_server_through_the_kubernetes_service() {
    let client = client().await;
    let ns = TestNamespace::new(&client, "lc-incluster").await;
    let sas: Api<ServiceAccount> = ns.api();
    sas.create(
        &PostParams::default(),
        &from_json(json!({"metadata": {"name": "reader"}})),
    )
    .await
    .expect("create service account");
    let crbs: Api<ClusterRoleBinding> = Api::all(client.clone());
    let crb_name = format!("{}-reader", ns.name);
    crbs.create(
        &PostParams::default(),
        &from_json(json!({
            "metadata": {"name": crb_name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
            "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": ns.name}]
        })),
    )
    .await
    .expect("create cluster role binding");
    // `view` does not cover namespaces; add a rule that does.
    let roles: Api<k8s_openapi::api::rbac::v1::ClusterRole> = Api::all(client.clone());
    roles
        .create(
            &PostParams::default(),
            &from_json(json!({
                "metadata": {"name": crb_name},
                "rules": [{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list"]}]
            })),
        )
        .await
        .expect("create cluster role");
    crbs.create(
        &PostParams::default(),
        &from_json(json!({
            "metadata": {"name": format!("{crb_name}-ns")},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": crb_name},
            "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": ns.name}]
        })),
    )
    .await
    .expect("create cluster role binding");

    let pods: Api<Pod> = ns.api();
    let pod: Pod = from_json(json!({
        "metadata": {"name": "kubectl"},
        "spec": {
            "serviceAccountName": "reader",
            "restartPolicy": "Never",
            "containers": [{
                "name": "kubectl",
                "image": format!("{}/graft-test/kubectl:v1.34.4", support::registry()),
                "command": ["/bin/sh", "-c",
                    "echo host=$KUBERNETES_SERVICE_HOST port=$KUBERNETES_SERVICE_PORT; kubectl get namespaces -o name"]
            }]
        }
    }));
    pods.create(&PostParams::default(), &pod)
        .await
        .expect("create pod");
    let done = wait_for(
        &pods,
        "kubectl",
        "the in-cluster kubectl to finish",
        Duration::from_secs(120),
        |p| {
            matches!(
                p.status.as_ref().and_then(|s| s.phase.as_deref()),
                Some("Succeeded" | "Failed")
            )
        },
    )
    .await;
    let logs = pods
        .logs("kubectl", &LogParams::default())
        .await
        .expect("pod logs");
    for name in [format!("{crb_name}-ns"), crb_name.clone()] {
        let _ = crbs.delete(&name, &DeleteParams::default()).await;
    }
    let _ = roles.delete(&crb_name, &DeleteParams::default()).await;
    assert_eq!(
        done.status.and_then(|s| s.phase).as_deref(),
        Some("Succeeded"),
        "kubectl in the pod failed: {logs}"
    );
    let svc: Api<Service> = Api::namespaced(client.clone(), "default");
    let cluster_ip = svc
        .get("kubernetes")
        .await
        .expect("kubernetes service")
        .spec
        .and_then(|s| s.cluster_ip)
        .expect("kubernetes service has a ClusterIP");
    assert!(
        logs.contains(&format!("host={cluster_ip} ")),
        "the pod used the kubernetes Service's ClusterIP {cluster_ip}: {logs}"
    );
    assert!(
        logs.contains("namespace/default") && logs.contains(&format!("namespace/{}", ns.name)),
        "the in-cluster client listed namespaces: {logs}"
    );
}

#[tokio::test]
async fn services_route_pod_to_pod_and_host_to_pod_and_pods_reach_the_host() {
    let client = client().await;
    let ns = TestNamespace::new(&client, "lc-svc").await;
    let deploys: Api<Deployment> = ns.api();
    deploys
        .create(&PostParams::default(), &app_deployment("server", "v3", 1))
        .await
        .expect("create deployment");
    let services: Api<Service> = ns.api();
    let svc = services
        .create(
            &PostParams::default(),
            &from_json(json!({
                "metadata": {"name": "server"},
                "spec": {"selector": {"app": "server"}, "ports": [{"port": 80, "targetPort": 8080}]}
            })),
        )
        .await
        .expect("create service");
    let cluster_ip = svc
        .spec
        .and_then(|s| s.cluster_ip)
        .expect("service has a ClusterIP");
    wait_for(
        &deploys,
        "server",
        "1 available replica",
        Duration::from_secs(120),
        |d| d.status.as_ref().and_then(|s| s.available_replicas) == Some(1),
    )
    .await;

    // The host (where the API server runs, so the path an admission webhook call takes) reaches
    // the pod through the ClusterIP.
    let addr = format!("{cluster_ip}:80");
    let body = eventually(
        "the host to reach the server through its ClusterIP",
        Duration::from_secs(30),
        || {
            let addr = addr.clone();
            async move {
                match support::http("GET", &addr, "/version", &[]) {
                    Ok((200, _, body)) => Ok(body),
                    other => Err(format!("{other:?}")),
                }
            }
        },
    )
    .await;
    assert_eq!(body.trim(), "v3");

    // A server on the host, reachable from pods at the host address.
    let listener = TcpListener::bind(format!("{}:0", support::host_ip())).expect("bind on host ip");
    let host_port = listener.local_addr().expect("local addr").port();
    let host_server = std::thread::spawn(move || {
        if let Ok((mut conn, _)) = listener.accept() {
            let mut buf = [0u8; 512];
            let _ = conn.read(&mut buf);
            let _ = conn.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 15\r\n\r\nhello-from-host");
        }
    });

    let pods: Api<Pod> = ns.api();
    let script = format!(
        "wget -qO- http://{cluster_ip}/version; wget -qO- http://{}:{host_port}/",
        support::host_ip()
    );
    let client_pod: Pod = from_json(json!({
        "metadata": {"name": "client"},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "c", "image": image("app:v1"), "command": ["/bin/sh", "-c", script]}]
        }
    }));
    pods.create(&PostParams::default(), &client_pod)
        .await
        .expect("create client pod");
    let done = wait_for(
        &pods,
        "client",
        "the client pod to finish",
        Duration::from_secs(120),
        |p| {
            matches!(
                p.status.as_ref().and_then(|s| s.phase.as_deref()),
                Some("Succeeded" | "Failed")
            )
        },
    )
    .await;
    let logs = pods
        .logs("client", &LogParams::default())
        .await
        .expect("logs");
    let _ = host_server.join();
    assert!(
        done.status.and_then(|s| s.phase).as_deref() == Some("Succeeded"),
        "client pod failed: {logs}"
    );
    assert!(
        logs.lines().next() == Some("v3"),
        "pod-to-pod through the ClusterIP: {logs}"
    );
    assert!(
        logs.contains("hello-from-host"),
        "pod to a server on the host: {logs}"
    );
}

/// A child process killed when dropped.
struct Child(std::process::Child);
impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_api_server_calls_an_admission_webhook_behind_a_service() {
    use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
    use k8s_openapi::api::core::v1::ConfigMap;
    use k8s_openapi::api::discovery::v1::EndpointSlice;
    use std::io::BufRead;

    let client = client().await;
    let ns = TestNamespace::new(&client, "lc-webhook").await;
    // A serving certificate for the Service's DNS name, signed by itself (it is its own CA bundle).
    let dir = std::env::temp_dir().join(format!("graft-webhook-{}", ns.name));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let dns = format!("deny.{}.svc", ns.name);
    let status = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
        ])
        .arg(format!("/CN={dns}"))
        .arg("-addext")
        .arg(format!("subjectAltName=DNS:{dns}"))
        .arg("-keyout")
        .arg(dir.join("tls.key"))
        .arg("-out")
        .arg(dir.join("tls.crt"))
        .stderr(std::process::Stdio::null())
        .status()
        .expect("run openssl");
    assert!(status.success(), "openssl failed");
    // The webhook runs on the host at the node address; the Service has no selector and an
    // EndpointSlice pointing there, so the call goes API server -> ClusterIP -> kube-proxy -> host.
    let port = TcpListener::bind(format!("{}:0", support::host_ip()))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/webhook/deny.py");
    let mut server = Child(
        std::process::Command::new("python3")
            .arg(script)
            .arg(support::host_ip())
            .arg(port.to_string())
            .arg(dir.join("tls.crt"))
            .arg(dir.join("tls.key"))
            .arg("denied by the graft-test webhook")
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start the webhook"),
    );
    let mut ready = String::new();
    if let Some(out) = server.0.stdout.take() {
        let _ = std::io::BufReader::new(out).read_line(&mut ready);
    }
    assert_eq!(ready.trim(), "ready", "the webhook did not start");

    let services: Api<Service> = ns.api();
    services
        .create(
            &PostParams::default(),
            &from_json(json!({
                "metadata": {"name": "deny"},
                "spec": {"ports": [{"port": 443, "targetPort": port, "protocol": "TCP"}]}
            })),
        )
        .await
        .expect("create service");
    let slices: Api<EndpointSlice> = ns.api();
    slices
        .create(
            &PostParams::default(),
            &from_json(json!({
                "metadata": {"name": "deny-1", "labels": {"kubernetes.io/service-name": "deny"}},
                "addressType": "IPv4",
                "endpoints": [{"addresses": [support::host_ip()], "conditions": {"ready": true}}],
                "ports": [{"port": port, "protocol": "TCP"}]
            })),
        )
        .await
        .expect("create endpoint slice");
    let ca = std::fs::read(dir.join("tls.crt")).expect("read cert");
    let hooks: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let hook_name = format!("{}-deny", ns.name);
    hooks
        .create(
            &PostParams::default(),
            &from_json(json!({
                "metadata": {"name": hook_name},
                "webhooks": [{
                    "name": "deny.graft.dev",
                    "admissionReviewVersions": ["v1"],
                    "sideEffects": "None",
                    "failurePolicy": "Fail",
                    "timeoutSeconds": 5,
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns.name}},
                    "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["configmaps"]}],
                    "clientConfig": {
                        "service": {"namespace": ns.name, "name": "deny", "port": 443},
                        "caBundle": k8s_openapi::ByteString(ca)
                    }
                }]
            })),
        )
        .await
        .expect("create webhook configuration");

    let configmaps: Api<ConfigMap> = ns.api();
    let message = eventually(
        "the webhook to deny a ConfigMap",
        Duration::from_secs(30),
        || {
            let configmaps = configmaps.clone();
            async move {
                let cm: ConfigMap = from_json(json!({"metadata": {"generateName": "probe-"}}));
                match configmaps.create(&PostParams::default(), &cm).await {
                    Ok(_) => Err("created: the webhook was not called yet".to_string()),
                    Err(e) if e.to_string().contains("graft-test webhook") => Ok(e.to_string()),
                    Err(e) => Err(e.to_string()),
                }
            }
        },
    )
    .await;
    let _ = hooks.delete(&hook_name, &DeleteParams::default()).await;
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        message.contains("denied by the graft-test webhook"),
        "{message}"
    );
}
