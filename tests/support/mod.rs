//! Support for integration tests against the local cluster from `deploy/local/cluster`.
//!
//! - [`client`]: a `kube::Client` for the local cluster, or a panic that says how to start it.
//! - [`TestNamespace`]: a fresh namespace per test, removed when the test ends (also on panic).
//! - [`wait_for`]: poll an object until a condition holds, failing with what was expected and the
//!   last state seen.
//! - [`PodWatcher`]: records every pod state change during a test for invariant checks.
//! - [`kruise::Kruise`]: the real OpenKruise installed for one test, removed when dropped.
#![allow(dead_code)]

pub mod git_http;
pub mod imagepull;
pub mod kruise;

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::future::Future;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Pod, ServiceAccount};
use kube::api::{DeleteParams, ObjectMeta, PostParams};
use kube::runtime::watcher;
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;

/// Where `deploy/local/cluster` writes the admin kubeconfig.
const DEFAULT_KUBECONFIG: &str = "/var/lib/graft-local/admin.kubeconfig";
const START_HINT: &str = "the local cluster is not running: start it with `deploy/local/cluster up` \
     (or run `make test`, which does); component logs are in /var/log/graft-local/";

/// The local registry (`host:port`) that serves the test images.
pub fn registry() -> String {
    std::env::var("REGISTRY").unwrap_or_else(|_| "127.0.0.1:5100".to_string())
}

/// The full name of a test image, e.g. `image("app:v1")` -> `127.0.0.1:5100/graft-test/app:v1`.
pub fn image(name_and_tag: &str) -> String {
    format!("{}/graft-test/{name_and_tag}", registry())
}

/// The host's address as pods see it (a server listening there is reachable from pods).
pub fn host_ip() -> String {
    std::env::var("GRAFT_HOST_IP").unwrap_or_else(|_| "10.88.0.1".to_string())
}

/// The name of the local cluster's only node.
pub fn node_name() -> String {
    std::env::var("GRAFT_NODE_NAME").unwrap_or_else(|_| "graft-local".to_string())
}

/// A client for the local cluster. Panics with instructions when the cluster is not reachable:
/// an integration test never skips itself.
pub async fn client() -> Client {
    let client = new_client()
        .await
        .unwrap_or_else(|e| panic!("{e}; {START_HINT}"));
    if let Err(e) = client.apiserver_version().await {
        panic!("the API server does not answer ({e}); {START_HINT}");
    }
    client
}

/// A client bound to the calling tokio runtime (a kube `Client` drives its connections from a
/// task of the runtime it was made on, so each runtime needs its own).
pub async fn new_client() -> Result<Client, String> {
    let path = std::env::var("KUBECONFIG").unwrap_or_else(|_| DEFAULT_KUBECONFIG.to_string());
    let kubeconfig = kube::config::Kubeconfig::read_from(&path)
        .map_err(|e| format!("reading kubeconfig {path}: {e}"))?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .map_err(|e| format!("loading kubeconfig {path}: {e}"))?;
    Client::try_from(config).map_err(|e| format!("building a client from {path}: {e}"))
}

/// A namespace made for one test and deleted when dropped.
pub struct TestNamespace {
    /// The namespace's name, `<prefix>-<random>`.
    pub name: String,
    client: Client,
}

impl TestNamespace {
    /// Create `<prefix>-<random>` and wait until its `default` service account exists (pods are
    /// rejected until it does).
    pub async fn new(client: &Client, prefix: &str) -> TestNamespace {
        let name = format!("{prefix}-{}", random_suffix());
        let api: Api<Namespace> = Api::all(client.clone());
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                labels: Some(BTreeMap::from([(
                    "graft.dev/test".to_string(),
                    "true".to_string(),
                )])),
                ..Default::default()
            },
            ..Default::default()
        };
        api.create(&PostParams::default(), &ns)
            .await
            .unwrap_or_else(|e| panic!("creating namespace {name}: {e}"));
        let sa: Api<ServiceAccount> = Api::namespaced(client.clone(), &name);
        wait_for(
            &sa,
            "default",
            "the default service account to exist",
            Duration::from_secs(60),
            |_| true,
        )
        .await;
        TestNamespace {
            name,
            client: client.clone(),
        }
    }

    /// An `Api` for a namespaced kind in this namespace.
    pub fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.name)
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        // Drop cannot await; delete from a helper thread with its own runtime (and its own
        // client: the test's runtime is blocked here) so this also runs while a failed test unwinds.
        let name = self.name.clone();
        let handle = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(rt) = rt {
                rt.block_on(async move {
                    if let Ok(client) = new_client().await {
                        let api: Api<Namespace> = Api::all(client);
                        let _ = api.delete(&name, &DeleteParams::background()).await;
                    }
                });
            }
        });
        let _ = handle.join();
    }
}

fn random_suffix() -> String {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    let mut h = RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    format!("{:08x}", h.finish() as u32)
}

/// Poll `name` every 250 ms until `condition` holds and return the object. Panics after `timeout`
/// with what was expected and the last state seen (or the last error).
pub async fn wait_for<K, F>(
    api: &Api<K>,
    name: &str,
    expected: &str,
    timeout: Duration,
    condition: F,
) -> K
where
    K: Resource + Clone + DeserializeOwned + Debug + serde::Serialize,
    F: Fn(&K) -> bool,
{
    let start = Instant::now();
    let mut last: String;
    loop {
        match api.get_opt(name).await {
            Ok(Some(obj)) => {
                if condition(&obj) {
                    return obj;
                }
                last = serde_json::to_string_pretty(&obj).unwrap_or_else(|e| format!("{e}"));
            }
            Ok(None) => last = format!("{name} does not exist"),
            Err(e) => last = format!("error reading {name}: {e}"),
        }
        if start.elapsed() > timeout {
            panic!(
                "timed out after {timeout:?} waiting for {name}: expected {expected}; last seen:\n{last}"
            );
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Retry an async check until it returns `Ok`, failing after `timeout` with the last error.
pub async fn eventually<T, Fut>(expected: &str, timeout: Duration, mut f: impl FnMut() -> Fut) -> T
where
    Fut: Future<Output = Result<T, String>>,
{
    let start = Instant::now();
    loop {
        match f().await {
            Ok(v) => return v,
            Err(e) if start.elapsed() > timeout => {
                panic!("timed out after {timeout:?}: expected {expected}; last seen: {e}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(300)).await,
        }
    }
}

/// One observed state of a pod, as recorded by [`PodWatcher`].
#[derive(Clone, Debug, PartialEq)]
pub struct PodState {
    /// Time since the watcher started.
    pub at: Duration,
    /// Pod name.
    pub name: String,
    /// Pod UID.
    pub uid: String,
    /// `status.phase`.
    pub phase: Option<String>,
    /// The Ready condition is True.
    pub ready: bool,
    /// The pod has a deletion timestamp.
    pub deleting: bool,
    /// Per container: (name, image, imageID, restartCount).
    pub containers: Vec<(String, String, String, i32)>,
    /// The pod's labels.
    pub labels: BTreeMap<String, String>,
    /// Per container of the spec: the image it names.
    pub spec_images: BTreeMap<String, String>,
    /// True when this record is the pod's deletion.
    pub deleted: bool,
}

impl PodState {
    fn of(pod: &Pod, at: Duration, deleted: bool) -> PodState {
        let status = pod.status.clone().unwrap_or_default();
        let ready = status
            .conditions
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        let containers = status
            .container_statuses
            .unwrap_or_default()
            .into_iter()
            .map(|c| (c.name, c.image, c.image_id, c.restart_count))
            .collect();
        PodState {
            at,
            name: pod.metadata.name.clone().unwrap_or_default(),
            uid: pod.metadata.uid.clone().unwrap_or_default(),
            phase: status.phase,
            ready,
            deleting: pod.metadata.deletion_timestamp.is_some(),
            containers,
            labels: pod.metadata.labels.clone().unwrap_or_default(),
            spec_images: pod
                .spec
                .iter()
                .flat_map(|s| &s.containers)
                .map(|c| (c.name.clone(), c.image.clone().unwrap_or_default()))
                .collect(),
            deleted,
        }
    }
}

/// Records every state change of the pods in a namespace (optionally filtered by a label selector)
/// while a test runs, so invariants can be checked over the whole history, not only at the end.
pub struct PodWatcher {
    states: Arc<Mutex<Vec<PodState>>>,
    task: tokio::task::JoinHandle<()>,
}

impl PodWatcher {
    /// Start watching pods in `namespace` that match `label_selector` (empty: all).
    pub fn start(client: &Client, namespace: &str, label_selector: &str) -> PodWatcher {
        let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
        let mut config = watcher::Config::default();
        if !label_selector.is_empty() {
            config = config.labels(label_selector);
        }
        let states: Arc<Mutex<Vec<PodState>>> = Arc::new(Mutex::new(Vec::new()));
        let sink = states.clone();
        let start = Instant::now();
        let task = tokio::spawn(async move {
            let mut stream = watcher(api, config).boxed();
            while let Some(event) = stream.next().await {
                let (pod, deleted) = match event {
                    Ok(watcher::Event::Apply(p)) | Ok(watcher::Event::InitApply(p)) => (p, false),
                    Ok(watcher::Event::Delete(p)) => (p, true),
                    _ => continue,
                };
                let state = PodState::of(&pod, start.elapsed(), deleted);
                if let Ok(mut v) = sink.lock() {
                    let changed = v
                        .iter()
                        .rev()
                        .find(|s| s.uid == state.uid)
                        .is_none_or(|prev| !same_state(prev, &state));
                    if changed {
                        v.push(state);
                    }
                }
            }
        });
        PodWatcher { states, task }
    }

    /// Every state recorded so far, in order.
    pub fn history(&self) -> Vec<PodState> {
        self.states.lock().map(|v| v.clone()).unwrap_or_default()
    }
}

impl Drop for PodWatcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn same_state(a: &PodState, b: &PodState) -> bool {
    a.phase == b.phase
        && a.ready == b.ready
        && a.deleting == b.deleting
        && a.containers == b.containers
        && a.labels == b.labels
        && a.deleted == b.deleted
}

/// An HTTP response: status code, lower-cased headers, body.
pub type HttpResponse = (u16, Vec<(String, String)>, String);

/// Apply graft's CRDs (server-side) and wait until each is Established.
pub async fn install_crds(client: &Client) {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use kube::api::{Patch, PatchParams};
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in graft_api::crds::all() {
        let name = crd.metadata.name.clone().unwrap_or_default();
        crds.patch(
            &name,
            &PatchParams::apply("graft-test").force(),
            &Patch::Apply(&crd),
        )
        .await
        .unwrap_or_else(|e| panic!("the API server rejected CRD {name}: {e}"));
        wait_for(
            &crds,
            &name,
            "condition Established=True",
            Duration::from_secs(30),
            |c| {
                c.status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|cs| {
                        cs.iter()
                            .any(|c| c.type_ == "Established" && c.status == "True")
                    })
            },
        )
        .await;
    }
}

/// `graft controllers` running as a child process for one namespace; killed when dropped.
pub struct GraftControllers {
    child: std::process::Child,
    /// Where its log goes.
    pub log: std::path::PathBuf,
}

impl GraftControllers {
    /// Start `graft controllers --namespace <ns>` (the binary cargo built for this test run).
    pub fn start(namespace: &str) -> GraftControllers {
        let dir = std::path::Path::new("/tmp/graft-test-logs");
        let _ = std::fs::create_dir_all(dir);
        let log = dir.join(format!("controllers-{namespace}.log"));
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap_or_else(|e| panic!("opening {}: {e}", log.display()));
        let err = out
            .try_clone()
            .unwrap_or_else(|e| panic!("log handle: {e}"));
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_graft"))
            .args([
                "controllers",
                "--namespace",
                namespace,
                "--metrics-addr",
                "127.0.0.1:0",
            ])
            .env("RUST_LOG", "info,graft_controllers=debug")
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("starting graft controllers: {e}"));
        GraftControllers { child, log }
    }

    /// Start `graft controllers --namespace <ns>` with its admission server on
    /// `host_ip():port`, writing the webhook configuration [`admission_config_name`]`(ns)` that
    /// applies to `ns` only.
    pub fn start_admitting(namespace: &str, port: u16, log_tag: &str) -> GraftControllers {
        let host = host_ip();
        GraftControllers::start_with(
            namespace,
            log_tag,
            &[
                "--admission-addr",
                &format!("{host}:{port}"),
                "--admission-url",
                &format!("https://{host}:{port}"),
                "--admission-namespace",
                namespace,
                "--admission-config-name",
                &admission_config_name(namespace),
            ],
        )
    }

    /// Start `graft controllers --namespace <ns>` with these extra arguments (e.g. the admission
    /// server's), logging to `controllers-<ns>-<log_tag>.log`.
    pub fn start_with(namespace: &str, log_tag: &str, extra: &[&str]) -> GraftControllers {
        let dir = std::path::Path::new("/tmp/graft-test-logs");
        let _ = std::fs::create_dir_all(dir);
        let log = dir.join(format!("controllers-{namespace}-{log_tag}.log"));
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap_or_else(|e| panic!("opening {}: {e}", log.display()));
        let err = out
            .try_clone()
            .unwrap_or_else(|e| panic!("log handle: {e}"));
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_graft"))
            .args([
                "controllers",
                "--namespace",
                namespace,
                "--metrics-addr",
                "127.0.0.1:0",
            ])
            .args(extra)
            .env(
                "RUST_LOG",
                "info,graft_controllers=debug,graft_admission=debug",
            )
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("starting graft controllers: {e}"));
        GraftControllers { child, log }
    }

    /// Kill the process at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for GraftControllers {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `graft nodeagent` on the host as a child process (this node's `NODE_NAME`, the local cluster's
/// CRI socket), running only its ContainerRecreateRequest executor and only for one namespace (so
/// parallel tests' agents never act on each other's requests nor pull for the node's NodeImage);
/// killed when dropped.
pub struct GraftNodeAgent {
    child: std::process::Child,
    /// Where its log goes.
    pub log: std::path::PathBuf,
}

impl GraftNodeAgent {
    /// Start `graft nodeagent --cri-socket $GRAFT_CRI_SOCKET --crr-namespace <ns> --only-crr`.
    pub fn start_for_crr(namespace: &str) -> GraftNodeAgent {
        let dir = std::path::Path::new("/tmp/graft-test-logs");
        let _ = std::fs::create_dir_all(dir);
        let log = dir.join(format!("nodeagent-{namespace}.log"));
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap_or_else(|e| panic!("opening {}: {e}", log.display()));
        let err = out
            .try_clone()
            .unwrap_or_else(|e| panic!("log handle: {e}"));
        let socket = std::env::var("GRAFT_CRI_SOCKET")
            .unwrap_or_else(|_| "/run/graft-local/containerd/containerd.sock".to_string());
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_graft"))
            .args([
                "nodeagent",
                "--cri-socket",
                &socket,
                "--crr-namespace",
                namespace,
                "--only-crr",
            ])
            .env("NODE_NAME", node_name())
            .env("RUST_LOG", "info,graft_nodeagent=debug")
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("starting graft nodeagent: {e}"));
        GraftNodeAgent { child, log }
    }
}

impl Drop for GraftNodeAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Git repository in a temporary directory, committed to with the `git` CLI; removed on drop.
pub struct GitRepo {
    /// The work tree.
    pub dir: std::path::PathBuf,
}

impl GitRepo {
    /// A new repository `graft-test-repo-<name>` with a `main` branch.
    pub fn new(name: &str) -> GitRepo {
        let dir = std::env::temp_dir().join(format!("graft-test-repo-{name}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create repo dir");
        let repo = GitRepo { dir };
        repo.git(&["init", "-q", "-b", "main"]);
        repo
    }

    /// Run git in the repository; returns its trimmed stdout, panics with stderr on failure.
    pub fn git(&self, args: &[&str]) -> String {
        let out = std::process::Command::new("git")
            .args(["-c", "user.email=dev@graft.dev", "-c", "user.name=Dev"])
            .args(args)
            .current_dir(&self.dir)
            .output()
            .expect("run git");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Replace everything under `deploy/` with `files` (path, content) and commit; returns the
    /// new commit's SHA.
    pub fn commit(&self, message: &str, files: &[(&str, impl AsRef<str>)]) -> String {
        let deploy = self.dir.join("deploy");
        let _ = std::fs::remove_dir_all(&deploy);
        std::fs::create_dir_all(&deploy).expect("deploy dir");
        for (path, content) in files {
            std::fs::write(deploy.join(path), content.as_ref()).expect("write manifest");
        }
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "--allow-empty", "-m", message]);
        self.git(&["rev-parse", "HEAD"])
    }

    /// `file://` URL of the repository.
    pub fn url(&self) -> String {
        format!("file://{}", self.dir.display())
    }
}

impl Drop for GitRepo {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The webhook configuration a [`GraftControllers::start_admitting`] of `ns` writes.
pub fn admission_config_name(ns: &str) -> String {
    format!("graft-test-{ns}")
}

/// A port free on the host address (where the API server can call an admission server) now.
pub fn free_host_port() -> u16 {
    std::net::TcpListener::bind((host_ip().as_str(), 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("finding a free port on {}: {e}", host_ip()))
}

/// A plain HTTP/1.0 request without extra dependencies.
pub fn http(
    method: &str,
    addr: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> std::io::Result<HttpResponse> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut req = format!("{method} {path} HTTP/1.0\r\nHost: {addr}\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes())?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw)?;
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((raw.as_str(), ""));
    let mut lines = head.lines();
    let code = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Ok((code, headers, body.to_string()))
}

/// The manifest digest (`sha256:...`) the local registry serves for a test image tag.
pub fn image_digest(repo_and_tag: &str) -> String {
    let (repo, tag) = repo_and_tag
        .rsplit_once(':')
        .unwrap_or((repo_and_tag, "latest"));
    let path = format!("/v2/graft-test/{repo}/manifests/{tag}");
    let (code, headers, body) = http(
        "HEAD",
        &registry(),
        &path,
        &[(
            "Accept",
            "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json",
        )],
    )
    .unwrap_or_else(|e| panic!("asking the registry {} for {path}: {e}", registry()));
    assert_eq!(code, 200, "registry answered {code} for {path}: {body}");
    headers
        .into_iter()
        .find(|(k, _)| k == "docker-content-digest")
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("registry sent no Docker-Content-Digest for {path}"))
}
