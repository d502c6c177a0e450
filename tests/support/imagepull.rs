//! Fixtures for the node agent and ImagePullJob tests: the cluster-wide lock, `graft controllers`
//! with the NodeImage manager and `graft nodeagent` as children, fake Nodes, a registry that needs
//! credentials, and a CRI client for the real containerd.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::Duration;

use graft_nodeagent::cri::{CriClient, Timeouts};
use k8s_openapi::api::core::v1::Node;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;

/// The real containerd of the local cluster.
pub async fn cri() -> CriClient {
    let socket = std::env::var("GRAFT_CRI_SOCKET").unwrap_or_else(|_| {
        panic!("GRAFT_CRI_SOCKET is not set: run `eval \"$(deploy/local/cluster env)\"` first")
    });
    CriClient::connect(&socket, Timeouts::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Held while a test uses the cluster-wide NodeImage manager or an agent for the real node: such
/// tests share the node's NodeImage, so they take turns (across test binaries too).
pub struct ClusterLock(std::fs::File);

impl ClusterLock {
    /// Waits for the lock.
    pub fn acquire() -> ClusterLock {
        let path = "/tmp/graft-nodeimage-tests.lock";
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)
            .unwrap_or_else(|e| panic!("opening {path}: {e}"));
        file.lock()
            .unwrap_or_else(|e| panic!("locking {path}: {e}"));
        ClusterLock(file)
    }
}

fn log_file(name: &str) -> (std::fs::File, PathBuf) {
    let dir = std::path::Path::new("/tmp/graft-test-logs");
    let _ = std::fs::create_dir_all(dir);
    let path = dir.join(name);
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
    (f, path)
}

/// A child process killed on drop.
pub struct ChildProcess {
    child: Child,
    /// Its log.
    pub log: PathBuf,
}

impl ChildProcess {
    fn spawn(mut cmd: Command, log_name: &str) -> ChildProcess {
        let (out, log) = log_file(log_name);
        let err = out
            .try_clone()
            .unwrap_or_else(|e| panic!("log handle: {e}"));
        let child = cmd
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {cmd:?}: {e}"));
        ChildProcess { child, log }
    }

    /// The log so far (for failure messages).
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `graft controllers` for one namespace with the cluster-wide NodeImage manager, NodeImages
/// created as soon as a node is Ready, and pull secrets copied into `secrets_namespace`.
pub fn start_manager(namespace: &str, secrets_namespace: &str) -> ChildProcess {
    start_manager_with(namespace, secrets_namespace, &[])
}

/// [`start_manager`] with extra flags.
pub fn start_manager_with(
    namespace: &str,
    secrets_namespace: &str,
    extra: &[&str],
) -> ChildProcess {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_graft"));
    cmd.args([
        "controllers",
        "--namespace",
        namespace,
        "--metrics-addr",
        "127.0.0.1:0",
        "--nodeimage-manager=true",
        "--nodeimage-creation-delay-seconds",
        "0",
        "--pull-secrets-namespace",
        secrets_namespace,
    ])
    .args(extra)
    .env("RUST_LOG", "info,graft_controllers=debug");
    ChildProcess::spawn(cmd, &format!("manager-{namespace}.log"))
}

/// `graft sync` (the GitSync controller) for one namespace, its Git cache in a temporary
/// directory of its own.
pub fn start_sync(namespace: &str) -> ChildProcess {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_graft"));
    cmd.args(["sync", "--watch-namespace", namespace, "--cache-dir"])
        .arg(std::env::temp_dir().join(format!("graft-sync-cache-{namespace}")));
    ChildProcess::spawn(cmd, &format!("sync-{namespace}.log"))
}

/// `graft nodeagent` for `node` on the real containerd, reading pull secrets from
/// `secrets_namespace`, with at most `max_pulls` pulls at once. Its ContainerRecreateRequest
/// executor is limited to `secrets_namespace` (the test's own, holding no requests), so it never
/// acts on the requests of `tests/crr.rs` running on the same node.
pub fn start_agent(node: &str, secrets_namespace: &str, max_pulls: usize) -> ChildProcess {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_graft"));
    cmd.args([
        "nodeagent",
        "--pull-secrets-namespace",
        secrets_namespace,
        "--max-concurrent-pulls",
        &max_pulls.to_string(),
        "--crr-namespace",
        secrets_namespace,
    ])
    .env("NODE_NAME", node)
    .env("RUST_LOG", "info,graft_nodeagent=debug");
    ChildProcess::spawn(cmd, &format!("nodeagent-{node}-{secrets_namespace}.log"))
}

/// A Node object with no kubelet behind it, Ready, cordoned and tainted so nothing is scheduled
/// there; deleted on drop.
pub struct FakeNode {
    /// Its name.
    pub name: String,
}

impl FakeNode {
    /// Creates `name` with `labels` and marks it Ready.
    pub async fn create(client: &Client, name: &str, labels: BTreeMap<String, String>) -> FakeNode {
        let nodes: Api<Node> = Api::all(client.clone());
        let node: Node = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": labels},
            "spec": {
                "unschedulable": true,
                "taints": [{"key": "graft.dev/fake-node", "value": "true", "effect": "NoSchedule"}]
            }
        }))
        .unwrap();
        nodes
            .create(&PostParams::default(), &node)
            .await
            .unwrap_or_else(|e| panic!("creating fake node {name}: {e}"));
        let guard = FakeNode {
            name: name.to_string(),
        };
        let now = k8s_openapi::jiff::Timestamp::now().to_string();
        nodes
            .patch_status(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"status": {"conditions": [{
                    "type": "Ready", "status": "True", "reason": "FakeNode",
                    "message": "a graft test node without kubelet",
                    "lastHeartbeatTime": now, "lastTransitionTime": now
                }]}})),
            )
            .await
            .unwrap_or_else(|e| panic!("marking fake node {name} Ready: {e}"));
        guard
    }
}

impl Drop for FakeNode {
    fn drop(&mut self) {
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                let path = std::env::var("KUBECONFIG")
                    .unwrap_or_else(|_| "/var/lib/graft-local/admin.kubeconfig".to_string());
                let Ok(kc) = kube::config::Kubeconfig::read_from(&path) else {
                    return;
                };
                let Ok(config) =
                    kube::Config::from_custom_kubeconfig(kc, &Default::default()).await
                else {
                    return;
                };
                let Ok(client) = Client::try_from(config) else {
                    return;
                };
                let nodes: Api<Node> = Api::all(client.clone());
                let _ = nodes.delete(&name, &DeleteParams::default()).await;
                let nis: Api<graft_api::apps::v1alpha1::NodeImage> = Api::all(client);
                let _ = nis.delete(&name, &DeleteParams::default()).await;
            });
        })
        .join();
    }
}

/// A second registry over the test images' storage (read-only) that requires the user `graft`
/// with password [`AuthRegistry::PASSWORD`]; stopped on drop.
pub struct AuthRegistry {
    /// `127.0.0.1:<port>`.
    pub addr: String,
    _process: ChildProcess,
    dir: PathBuf,
}

impl AuthRegistry {
    /// The user.
    pub const USER: &'static str = "graft";
    /// The password.
    pub const PASSWORD: &'static str = "graft-secret";
    /// bcrypt (cost 5) of [`AuthRegistry::PASSWORD`], as the registry's htpasswd file wants it.
    const HTPASSWD: &'static str =
        "graft:$2b$05$WuZywFP8C8GgoXVKOpyJUOek/Bollo1muayUNQDPyrrq6Pw798gcG";

    /// Starts it on a free port and waits until it answers (401 without credentials).
    pub async fn start() -> AuthRegistry {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or_else(|e| panic!("finding a free port: {e}"));
        let addr = format!("127.0.0.1:{port}");
        let dir = std::env::temp_dir().join(format!("graft-auth-registry-{port}"));
        std::fs::create_dir_all(&dir).unwrap();
        let storage = std::env::var("GRAFT_CACHE").unwrap_or_else(|_| "/var/cache/graft".into());
        std::fs::write(dir.join("htpasswd"), format!("{}\n", Self::HTPASSWD)).unwrap();
        std::fs::write(
            dir.join("config.yml"),
            format!(
                "version: 0.1\nlog: {{level: warn}}\nstorage:\n  filesystem: {{rootdirectory: {storage}/registry}}\n  maintenance: {{readonly: {{enabled: true}}}}\nhttp:\n  addr: {addr}\nauth:\n  htpasswd: {{realm: graft-test, path: {}}}\n",
                dir.join("htpasswd").display()
            ),
        )
        .unwrap();
        let mut cmd = Command::new("/usr/bin/docker-registry");
        cmd.arg("serve").arg(dir.join("config.yml"));
        let process = ChildProcess::spawn(cmd, &format!("auth-registry-{port}.log"));
        super::eventually(
            "the auth registry to answer 401",
            Duration::from_secs(20),
            || {
                let addr = addr.clone();
                async move {
                    let (code, _, _) =
                        super::http("GET", &addr, "/v2/", &[]).map_err(|e| e.to_string())?;
                    if code == 401 {
                        Ok(())
                    } else {
                        Err(format!("status {code}"))
                    }
                }
            },
        )
        .await;
        AuthRegistry {
            addr,
            _process: process,
            dir,
        }
    }

    /// A `.dockerconfigjson` for this registry with `password`.
    pub fn docker_config(&self, password: &str) -> String {
        json!({"auths": {self.addr.clone(): {"username": Self::USER, "password": password}}})
            .to_string()
    }
}

impl Drop for AuthRegistry {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
