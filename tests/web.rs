//! The dashboard against a real rollout on the local cluster: `graft sync` (GitSync controller),
//! `graft controllers` and `graft web` as child processes, a Git repository committed to by the
//! test, and for the browser test Debian's Chromium driven over WebDriver (fantoccini +
//! chromedriver; `deploy/local/browser` installs them).
#![cfg(feature = "cluster-tests")]

mod support;

use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use fantoccini::{Client as Browser, ClientBuilder, Locator};
use graft_api::graft::gitsync::{CommitPhase, GitSync};
use kube::Api;
use kube::api::PostParams;
use serde_json::{Value, json};
use support::{
    GitRepo, GraftControllers, TestNamespace, client, eventually, http, image, install_crds,
    wait_for,
};

const MINUTE: Duration = Duration::from_secs(60);
const REPLICAS: usize = 3;

/// A child process killed when dropped, its output in /tmp/graft-test-logs/<name>.log.
struct Proc(Child);

impl Proc {
    fn start(name: &str, cmd: &mut Command) -> Proc {
        let dir = std::path::Path::new("/tmp/graft-test-logs");
        let _ = std::fs::create_dir_all(dir);
        let log = std::fs::File::create(dir.join(format!("{name}.log"))).expect("log file");
        let err = log.try_clone().expect("log handle");
        Proc(
            cmd.stdout(log)
                .stderr(err)
                .spawn()
                .unwrap_or_else(|e| panic!("starting {name}: {e}")),
        )
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn cloneset(tag: &str) -> String {
    format!(
        "apiVersion: apps.kruise.io/v1alpha1\nkind: CloneSet\nmetadata:\n  name: web\nspec:\n  replicas: {REPLICAS}\n  selector:\n    matchLabels: {{app: web}}\n  updateStrategy: {{type: InPlaceIfPossible, maxUnavailable: 1}}\n  template:\n    metadata:\n      labels: {{app: web}}\n    spec:\n      terminationGracePeriodSeconds: 2\n      containers:\n      - name: app\n        image: {}\n        imagePullPolicy: IfNotPresent\n        readinessProbe: {{httpGet: {{path: /readyz, port: 8080}}, initialDelaySeconds: 3, periodSeconds: 1}}\n",
        image(&format!("app:{tag}"))
    )
}

/// An Advanced StatefulSet `db` of [`REPLICAS`] pods at `tag`, started together and updated in
/// place one at a time (with the `InPlaceUpdateReady` readiness gate OpenKruise requires).
fn advanced_statefulset(tag: &str) -> String {
    format!(
        "apiVersion: apps.kruise.io/v1beta1\nkind: StatefulSet\nmetadata:\n  name: db\nspec:\n  replicas: {REPLICAS}\n  serviceName: db\n  podManagementPolicy: Parallel\n  selector:\n    matchLabels: {{app: db}}\n  updateStrategy:\n    type: RollingUpdate\n    rollingUpdate: {{podUpdatePolicy: InPlaceIfPossible, maxUnavailable: 1}}\n  template:\n    metadata:\n      labels: {{app: db}}\n    spec:\n      terminationGracePeriodSeconds: 2\n      readinessGates:\n      - conditionType: InPlaceUpdateReady\n      containers:\n      - name: app\n        image: {}\n        imagePullPolicy: IfNotPresent\n        readinessProbe: {{httpGet: {{path: /readyz, port: 8080}}, initialDelaySeconds: 3, periodSeconds: 1}}\n",
        image(&format!("app:{tag}"))
    )
}

fn configmap(mode: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  mode: {mode}\n")
}

/// Sync, controllers and dashboard for one namespace, and the repository they follow.
struct Scene {
    ns: TestNamespace,
    repo: GitRepo,
    addr: String,
    token: Option<String>,
    _procs: Vec<Proc>,
    _controllers: GraftControllers,
    _rbac: Option<Applied>,
}

/// `kubectl` with `stdin`; (success, stdout+stderr).
fn kubectl(args: &[&str], stdin: Option<&str>) -> (bool, String) {
    use std::io::Write;
    let mut child = Command::new("kubectl")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("running kubectl {args:?}: {e} (is the cluster env loaded?)"));
    if let (Some(input), Some(mut w)) = (stdin, child.stdin.take()) {
        w.write_all(input.as_bytes()).expect("kubectl stdin");
    }
    let out = child.wait_with_output().expect("kubectl");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// An applied manifest, deleted (cluster-scoped objects too) on drop.
struct Applied(String);

impl Drop for Applied {
    fn drop(&mut self) {
        let _ = kubectl(
            &["delete", "--ignore-not-found", "--wait=false", "-f", "-"],
            Some(&self.0),
        );
    }
}

/// Applies `deploy/rbac/web.yaml` with its names made unique to namespace `ns`, checks that its
/// ServiceAccount may read what the dashboard shows and nothing else, and writes a kubeconfig
/// with a token of that ServiceAccount.
async fn dashboard_service_account(ns: &str) -> (PathBuf, Applied) {
    use k8s_openapi::api::authentication::v1::TokenRequest;
    use k8s_openapi::api::core::v1::ServiceAccount;
    let name = format!("graft-web-{ns}");
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/rbac/web.yaml"))
            .expect("reading deploy/rbac/web.yaml")
            .replace("graft-system", ns)
            .replace("graft-web", &name);
    let (ok, out) = kubectl(&["apply", "-f", "-"], Some(&text));
    assert!(ok, "applying deploy/rbac/web.yaml: {out}");
    let applied = Applied(text);
    let who = format!("system:serviceaccount:{ns}:{name}");
    for (verb, what, allowed) in [
        ("watch", "gitsyncs.graft.dev", true),
        ("watch", "clonesets.apps.kruise.io", true),
        ("watch", "pods", true),
        ("watch", "events", true),
        ("watch", "nodeimages.apps.kruise.io", true),
        ("get", "secrets", false),
        ("list", "secrets", false),
        ("patch", "clonesets.apps.kruise.io", false),
        ("create", "pods", false),
        ("delete", "gitsyncs.graft.dev", false),
        ("update", "gitsyncs.graft.dev/status", false),
    ] {
        let (_, out) = kubectl(&["auth", "can-i", verb, what, "--as", &who, "-A"], None);
        let answer = out.trim().starts_with("yes");
        assert_eq!(answer, allowed, "{who} {verb} {what}: {out}");
    }
    let client = client().await;
    let sas: Api<ServiceAccount> = Api::namespaced(client, ns);
    let request: TokenRequest = serde_json::from_value(json!({
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
        "spec": {"audiences": [], "expirationSeconds": 3600}
    }))
    .expect("TokenRequest literal");
    let token: TokenRequest = sas
        .create_subresource("token", &name, &PostParams::default(), &request)
        .await
        .unwrap_or_else(|e| panic!("TokenRequest for {name}: {e}"));
    let token = token.status.map(|s| s.token).expect("token");
    let admin = std::env::var("KUBECONFIG")
        .unwrap_or_else(|_| "/var/lib/graft-local/admin.kubeconfig".into());
    let mut kc = kube::config::Kubeconfig::read_from(&admin).expect("admin kubeconfig");
    for a in &mut kc.auth_infos {
        a.auth_info = Some(kube::config::AuthInfo {
            token: Some(token.clone().into()),
            ..Default::default()
        });
    }
    let path = std::env::temp_dir().join(format!("graft-web-{ns}.kubeconfig"));
    std::fs::write(&path, serde_json::to_vec(&kc).expect("kubeconfig json"))
        .expect("write kubeconfig");
    (path, applied)
}

impl Scene {
    /// With `least_privilege`, `graft web` runs as the ServiceAccount of `deploy/rbac/web.yaml`.
    async fn start(prefix: &str, token: Option<&str>, least_privilege: bool) -> Scene {
        let client = client().await;
        install_crds(&client).await;
        let ns = TestNamespace::new(&client, prefix).await;
        let (kubeconfig, rbac) = if least_privilege {
            let (path, applied) = dashboard_service_account(&ns.name).await;
            (Some(path), Some(applied))
        } else {
            (None, None)
        };
        let controllers = GraftControllers::start(&ns.name);
        let cache = std::env::temp_dir().join(format!("graft-web-cache-{}", ns.name));
        let sync = Proc::start(
            &format!("sync-{}", ns.name),
            Command::new(env!("CARGO_BIN_EXE_graft"))
                .args(["sync", "--watch-namespace", &ns.name, "--cache-dir"])
                .arg(&cache),
        );
        let addr = format!("127.0.0.1:{}", free_port());
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_graft"));
        cmd.args([
            "web",
            "--addr",
            &addr,
            "--namespace",
            &ns.name,
            "--git-cache",
        ])
        .arg(&cache);
        if let Some(t) = token {
            cmd.env("GRAFT_WEB_TOKEN", t);
        }
        if let Some(k) = &kubeconfig {
            cmd.env("KUBECONFIG", k);
        }
        let web = Proc::start(&format!("web-{}", ns.name), &mut cmd);
        let a = addr.clone();
        eventually("graft web to answer /healthz", MINUTE, || {
            let a = a.clone();
            async move {
                match http("GET", &a, "/healthz", &[]) {
                    Ok((200, _, _)) => Ok(()),
                    other => Err(format!("{other:?}")),
                }
            }
        })
        .await;
        let repo = GitRepo::new(&format!("web-{}", ns.name));
        Scene {
            ns,
            repo,
            addr,
            token: token.map(str::to_string),
            _procs: vec![sync, web],
            _controllers: controllers,
            _rbac: rbac,
        }
    }

    async fn create_gitsync(&self) {
        let gs: GitSync = serde_json::from_value(json!({
            "apiVersion": "graft.dev/v1alpha1", "kind": "GitSync",
            "metadata": {"name": "app"},
            "spec": {"url": self.repo.url(), "ref": {"branch": "main"},
                     "path": "deploy", "interval": "2s", "prune": true,
                     "prePull": {"mode": "Off"}}
        }))
        .expect("GitSync literal");
        self.ns
            .api::<GitSync>()
            .create(&PostParams::default(), &gs)
            .await
            .expect("create GitSync");
    }

    async fn wait_phase(&self, sha: &str, phase: CommitPhase) -> GitSync {
        wait_for(
            &self.ns.api::<GitSync>(),
            "app",
            &format!("commit {sha} {phase:?}"),
            2 * MINUTE,
            |g| {
                g.status
                    .as_ref()
                    .and_then(|s| s.history.as_ref())
                    .is_some_and(|h| h.iter().any(|c| c.sha == sha && c.phase == phase))
            },
        )
        .await
    }

    fn get(&self, path: &str) -> (u16, String) {
        let auth = self.token.as_ref().map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = auth
            .as_deref()
            .map(|a| vec![("Authorization", a)])
            .unwrap_or_default();
        let (code, _, body) =
            http("GET", &self.addr, path, &headers).unwrap_or_else(|e| panic!("GET {path}: {e}"));
        (code, body)
    }

    fn json(&self, path: &str) -> Value {
        let (code, body) = self.get(path);
        assert_eq!(code, 200, "GET {path}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
    }

    /// Polls a JSON endpoint until `check` accepts it.
    async fn json_until(
        &self,
        path: &str,
        expected: &str,
        check: impl Fn(&Value) -> Result<(), String>,
    ) -> Value {
        let start = Instant::now();
        loop {
            // Not there yet (404) counts as not yet.
            let (code, body) = self.get(path);
            let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            let checked = if code == 200 {
                check(&v)
            } else {
                Err(format!("HTTP {code}"))
            };
            match checked {
                Ok(()) => return v,
                Err(e) if start.elapsed() > 2 * MINUTE => {
                    panic!("timed out waiting for {path}: expected {expected}; {e}; last: {v:#}")
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(300)).await,
            }
        }
    }
}

#[tokio::test]
async fn json_api_follows_a_real_rollout_with_token_namespace_scope_and_least_privilege() {
    // The dashboard runs with the least privilege of deploy/rbac/web.yaml.
    let s = Scene::start("web-api", Some("tok-3n7"), true).await;
    let ns = s.ns.name.clone();

    // Safe by default: nothing without the token.
    let (code, _, _) = http("GET", &s.addr, "/api/overview", &[]).expect("http");
    assert_eq!(code, 401, "no token, no data");
    // Bound to loopback: a request naming another host (DNS rebinding) is refused.
    let status_line = {
        use std::io::{Read, Write};
        let mut c = std::net::TcpStream::connect(&s.addr).expect("connect");
        c.write_all(
            b"GET /api/overview HTTP/1.0\r\nHost: evil.example\r\nAuthorization: Bearer tok-3n7\r\n\r\n",
        )
        .expect("request");
        let mut out = String::new();
        let _ = c.read_to_string(&mut out);
        out.lines().next().unwrap_or_default().to_string()
    };
    assert!(
        status_line.contains(" 421 "),
        "foreign Host refused: {status_line}"
    );

    let c1 = s.repo.commit(
        "first: app v1",
        &[
            ("settings.yaml", configmap("blue")),
            ("web.yaml", cloneset("v1")),
        ],
    );
    s.create_gitsync().await;
    s.wait_phase(&c1, CommitPhase::Healthy).await;

    // An SSE client sees the next change without asking.
    let sse_addr = s.addr.clone();
    let sse = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(&sse_addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .expect("timeout");
        stream
            .write_all(
                format!(
                    "GET /events HTTP/1.1\r\nHost: {sse_addr}\r\nAuthorization: Bearer tok-3n7\r\n\r\n"
                )
                .as_bytes(),
            )
            .expect("request");
        let mut seen = String::new();
        let mut buf = [0u8; 4096];
        while !seen.contains("event: change") {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
            }
        }
        seen
    });

    let c2 = s.repo.commit(
        "second: app v2",
        &[
            ("settings.yaml", configmap("green")),
            ("web.yaml", cloneset("v2")),
        ],
    );
    s.wait_phase(&c2, CommitPhase::Healthy).await;
    let seen = sse.join().expect("sse thread");
    assert!(
        seen.contains("200 OK") && seen.contains("event: hello") && seen.contains("event: change"),
        "SSE stream: {seen}"
    );

    // Overview: the GitSync runs c2 and is healthy; the CloneSet is 3/3.
    let ov = s
        .json_until("/api/overview", "c2 running and healthy", |v| {
            let g = &v["gitsyncs"][0];
            (g["commit"] == c2.as_str() && g["health"]["label"] == "Healthy")
                .then_some(())
                .ok_or_else(|| format!("gitsync: {g}"))
        })
        .await;
    assert_eq!(
        ov["gitsyncs"].as_array().map(Vec::len),
        Some(1),
        "only {ns}"
    );
    let w = &ov["workloads"][0];
    assert_eq!(w["namespace"], ns.as_str());
    assert_eq!(w["progress"]["updated"], REPLICAS);
    assert_eq!(w["progress"]["available"], REPLICAS);

    // Timeline: newest first, every phase in order with durations.
    let tl = s.json(&format!("/api/gitsyncs/{ns}/app"));
    assert_eq!(tl["commits"][0]["sha"], c2.as_str());
    assert_eq!(tl["commits"][0]["message"], "second: app v2");
    assert_eq!(tl["commits"][1]["sha"], c1.as_str());
    let keys: Vec<&str> = tl["commits"][0]["phases"]
        .as_array()
        .expect("phases")
        .iter()
        .filter_map(|p| p["key"].as_str())
        .collect();
    assert_eq!(
        keys,
        ["detected", "validated", "applying", "rollingOut", "healthy"]
    );

    // Commit detail: every pod updated in place, none recreated; the manifest diff from Git.
    let cd = s
        .json_until(
            &format!("/api/gitsyncs/{ns}/app/commits/{c2}"),
            "3 pods updated in place",
            |v| {
                let w = &v["workloads"][0];
                (w["counts"]["in_place"] == REPLICAS && w["pods"] == REPLICAS)
                    .then_some(())
                    .ok_or_else(|| format!("workload: {w}"))
            },
        )
        .await;
    let w = &cd["workloads"][0];
    assert_eq!(w["counts"]["recreated"], 0);
    assert!(
        w["update_revision"]
            .as_str()
            .is_some_and(|r| r.starts_with("web-"))
    );
    assert_eq!(cd["previous"], c1.as_str());
    let objects = cd["diff"]["objects"].as_array().expect("diff objects");
    let changed: Vec<&str> = objects.iter().filter_map(|o| o["id"].as_str()).collect();
    assert_eq!(
        objects.len(),
        2,
        "CloneSet and ConfigMap changed: {changed:?}"
    );
    let lines = |id_part: &str| -> Vec<(String, String)> {
        objects
            .iter()
            .find(|o| o["id"].as_str().is_some_and(|i| i.contains(id_part)))
            .and_then(|o| o["lines"].as_array())
            .map(|ls| {
                ls.iter()
                    .map(|l| {
                        (
                            l["kind"].as_str().unwrap_or_default().to_string(),
                            l["text"].as_str().unwrap_or_default().to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let cs = lines("CloneSet");
    assert!(
        cs.iter().any(|(k, t)| k == "del" && t.contains("app:v1"))
            && cs.iter().any(|(k, t)| k == "add" && t.contains("app:v2")),
        "image line changed: {cs:?}"
    );

    // Pre-pull: an ImagePullJob labelled with the GitSync and annotated with the commit shows on
    // that commit's page (aimed at no node, so it pulls nothing on the shared node).
    let job: graft_api::apps::v1alpha1::ImagePullJob = serde_json::from_value(json!({
        "apiVersion": "apps.kruise.io/v1alpha1", "kind": "ImagePullJob",
        "metadata": {"name": "prepull-c2",
                     "labels": {(graft_api::labels::GRAFT_SYNC): format!("{ns}.app")},
                     "annotations": {(graft_api::labels::GRAFT_COMMIT): c2.as_str()}},
        "spec": {"image": image("app:v2"), "selector": {"names": ["no-such-node"]},
                 "completionPolicy": {"type": "Never"}}
    }))
    .expect("ImagePullJob literal");
    s.ns.api::<graft_api::apps::v1alpha1::ImagePullJob>()
        .create(&PostParams::default(), &job)
        .await
        .expect("create ImagePullJob");
    let cd = s
        .json_until(
            &format!("/api/gitsyncs/{ns}/app/commits/{c2}"),
            "the commit's ImagePullJob",
            |v| {
                (v["pre_pulls"][0]["name"] == "prepull-c2")
                    .then_some(())
                    .ok_or_else(|| format!("pre_pulls: {}", v["pre_pulls"]))
            },
        )
        .await;
    assert_eq!(cd["pre_pulls"][0]["image"], image("app:v2").as_str());
    let c1_detail = s.json(&format!("/api/gitsyncs/{ns}/app/commits/{c1}"));
    assert!(
        c1_detail["pre_pulls"].as_array().is_some_and(Vec::is_empty),
        "only on its own commit"
    );

    // Workload detail: the pods with node, revision, in-place state; events.
    let wd = s.json(&format!("/api/workloads/apps.kruise.io/CloneSet/{ns}/web"));
    let pods = wd["pods"].as_array().expect("pods");
    assert_eq!(pods.len(), REPLICAS);
    for p in pods {
        assert_eq!(p["node"], support::node_name().as_str(), "{p}");
        assert_eq!(p["ready"], true, "{p}");
        assert_eq!(p["updated"], true, "{p}");
        assert_eq!(p["in_place"]["state"], "done", "{p}");
    }
    assert!(
        wd["events"].as_array().is_some_and(|e| !e.is_empty()),
        "events of the CloneSet and its pods"
    );

    // A bad manifest: the commit fails with the file named, in the timeline.
    let c3 = s.repo.commit(
        "third: broken",
        &[
            ("web.yaml", cloneset("v3")),
            (
                "broken.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x\n".into(),
            ),
        ],
    );
    s.wait_phase(&c3, CommitPhase::Failed).await;
    let tl = s
        .json_until(&format!("/api/gitsyncs/{ns}/app"), "c3 failed", |v| {
            (v["commits"][0]["phase"] == "Failed")
                .then_some(())
                .ok_or_else(|| format!("{}", v["commits"][0]))
        })
        .await;
    assert_eq!(tl["commits"][0]["reason"], "ValidationFailed");
    assert!(
        tl["commits"][0]["status_message"]
            .as_str()
            .is_some_and(|m| m.contains("broken.yaml")),
        "{}",
        tl["commits"][0]
    );
    let (code, body) = s.get(&format!("/gitsyncs/{ns}/app"));
    assert_eq!(code, 200);
    assert!(body.contains("broken.yaml") && body.contains("ValidationFailed"));

    // An image that does not exist: the commit page says which pod's pull fails.
    let c4 = s.repo.commit(
        "fourth: missing image",
        &[
            ("settings.yaml", configmap("green")),
            ("web.yaml", cloneset("v404")),
        ],
    );
    let cd = s
        .json_until(
            &format!("/api/gitsyncs/{ns}/app/commits/{c4}"),
            "why the rollout waits: the failing image pull",
            |v| {
                let w = &v["workloads"][0]["waiting"];
                w.as_array()
                    .is_some_and(|r| {
                        r.iter().any(|x| {
                            x.as_str()
                                .is_some_and(|x| x.starts_with("image pull failing on pod web-"))
                        })
                    })
                    .then_some(())
                    .ok_or_else(|| format!("waiting: {w}"))
            },
        )
        .await;
    assert_eq!(
        cd["workloads"][0]["status"]["label"], "Blocked",
        "{}",
        cd["workloads"][0]
    );
}

#[tokio::test]
async fn an_advanced_statefulset_rollout_shows_on_the_overview_commit_and_workload_pages() {
    let s = Scene::start("web-asts", Some("tok-a575"), true).await;
    let ns = s.ns.name.clone();
    let c1 = s
        .repo
        .commit("first: db v1", &[("db.yaml", advanced_statefulset("v1"))]);
    s.create_gitsync().await;
    s.wait_phase(&c1, CommitPhase::Healthy).await;
    let c2 = s
        .repo
        .commit("second: db v2", &[("db.yaml", advanced_statefulset("v2"))]);

    // While it rolls out, the commit page shows the set short of its target (graft's own
    // controller updates one pod at a time, each waiting for its readiness probe).
    let commit = format!("/api/gitsyncs/{ns}/app/commits/{c2}");
    let rolling = s
        .json_until(&commit, "the set part way through its rollout", |v| {
            let w = &v["workloads"][0];
            (w["kind"] == "StatefulSet"
                && w["status"]["label"] == "Rolling out"
                && w["progress"]["updated"]
                    .as_u64()
                    .is_some_and(|u| u < REPLICAS as u64))
            .then_some(())
            .ok_or_else(|| format!("workload: {w}"))
        })
        .await;
    println!("part way: {}", rolling["workloads"][0]["progress"]);
    s.wait_phase(&c2, CommitPhase::Healthy).await;

    // Overview: the set at 3 of 3, up to date, linked to its page.
    let ov = s
        .json_until("/api/overview", "c2 running and healthy", |v| {
            let g = &v["gitsyncs"][0];
            (g["commit"] == c2.as_str() && g["health"]["label"] == "Healthy")
                .then_some(())
                .ok_or_else(|| format!("gitsync: {g}"))
        })
        .await;
    let w = &ov["workloads"][0];
    assert_eq!(ov["workloads"].as_array().map(Vec::len), Some(1), "{ov:#}");
    assert_eq!(
        (&w["group"], &w["kind"], &w["namespace"], &w["name"]),
        (
            &json!("apps.kruise.io"),
            &json!("StatefulSet"),
            &json!(ns),
            &json!("db")
        ),
        "{w}"
    );
    assert_eq!(w["progress"]["updated"], REPLICAS, "{w}");
    assert_eq!(w["progress"]["available"], REPLICAS, "{w}");
    assert_eq!(w["status"]["label"], "Up to date", "{w}");
    assert_eq!(
        w["href"],
        format!("/workloads/apps.kruise.io/StatefulSet/{ns}/db").as_str()
    );

    // Commit detail: every pod updated in place, none recreated.
    let cd = s
        .json_until(&commit, "3 pods updated in place", |v| {
            let w = &v["workloads"][0];
            (w["counts"]["in_place"] == REPLICAS && w["pods"] == REPLICAS)
                .then_some(())
                .ok_or_else(|| format!("workload: {w}"))
        })
        .await;
    let w = &cd["workloads"][0];
    assert_eq!(
        (&w["group"], &w["kind"]),
        (&json!("apps.kruise.io"), &json!("StatefulSet"))
    );
    assert_eq!(w["counts"]["recreated"], 0, "{w}");
    assert_eq!(w["progress"]["updated"], REPLICAS, "{w}");
    assert_eq!(w["live"], true, "{w}");
    assert!(
        w["update_revision"]
            .as_str()
            .is_some_and(|r| r.starts_with("db-")),
        "{w}"
    );
    assert_eq!(cd["previous"], c1.as_str());
    let (code, body) = s.get(&format!("/gitsyncs/{ns}/app/commits/{c2}"));
    assert_eq!(code, 200);
    assert!(
        body.contains("StatefulSet") && body.contains("/workloads/apps.kruise.io/StatefulSet/"),
        "the commit page lists the set: {body}"
    );

    // Workload detail: the pods with node, revision, in-place state.
    let wd = s.json(&format!(
        "/api/workloads/apps.kruise.io/StatefulSet/{ns}/db"
    ));
    let pods = wd["pods"].as_array().expect("pods");
    let names: Vec<&str> = pods.iter().filter_map(|p| p["name"].as_str()).collect();
    assert_eq!(names, ["db-0", "db-1", "db-2"]);
    for p in pods {
        assert_eq!(p["node"], support::node_name().as_str(), "{p}");
        assert_eq!(p["ready"], true, "{p}");
        assert_eq!(p["updated"], true, "{p}");
        assert_eq!(p["in_place"]["state"], "done", "{p}");
    }
}

#[tokio::test]
async fn a_failing_broadcastjob_fails_its_commit_with_the_pods_reason_on_the_commit_page() {
    let s = Scene::start("web-bcj", None, true).await;
    let ns = s.ns.name.clone();
    let job = format!(
        "apiVersion: apps.kruise.io/v1alpha1\nkind: BroadcastJob\nmetadata:\n  name: check\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      terminationGracePeriodSeconds: 1\n      containers:\n      - name: check\n        image: {}\n        imagePullPolicy: IfNotPresent\n        command: [sh, -c, \"echo disk check failed; exit 3\"]\n",
        image("app:v1")
    );
    let c1 = s
        .repo
        .commit("a node check that fails", &[("check.yaml", job)]);
    s.create_gitsync().await;
    let gs = s.wait_phase(&c1, CommitPhase::Failed).await;
    let e = gs
        .status
        .as_ref()
        .and_then(|st| st.history.as_ref())
        .and_then(|h| h.iter().find(|c| c.sha == c1))
        .cloned()
        .expect("the commit's entry");
    let message = e.status_message.clone().unwrap_or_default();
    assert!(
        message.contains("container check exited with code 3"),
        "the history says why the pod failed: {message:?}"
    );
    let w = e
        .workloads
        .iter()
        .flatten()
        .find(|w| w.kind == "BroadcastJob")
        .cloned()
        .expect("the job's progress");
    assert_eq!((w.replicas, w.failed), (1, 1), "{w:?}");

    // The commit page: the reason, and the job as 0 of 1 nodes succeeded, 1 failed.
    let commit = format!("/api/gitsyncs/{ns}/app/commits/{c1}");
    let cd = s
        .json_until(&commit, "the failed job on the commit page", |v| {
            let w = &v["workloads"][0];
            (w["kind"] == "BroadcastJob" && w["progress"]["failed"] == 1)
                .then_some(())
                .ok_or_else(|| format!("workload: {w}"))
        })
        .await;
    assert_eq!(cd["workloads"][0]["progress"]["job"], true, "{cd:#}");
    let (code, body) = s.get(&format!("/gitsyncs/{ns}/app/commits/{c1}"));
    assert_eq!(code, 200);
    assert!(
        body.contains("container check exited with code 3") && body.contains("1 failed"),
        "the commit page shows the pod's reason and the failed count: {body}"
    );
}

// ---- browser ------------------------------------------------------------------------------------

/// Where screenshots go: `<target>/test-artifacts/web/`.
fn artifacts() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .map(|p| p.join("test-artifacts").join("web"))
        .expect("target dir");
    std::fs::create_dir_all(&dir).expect("artifacts dir");
    dir
}

/// `chromedriver` on a free port, killed when dropped.
struct Driver {
    _proc: Proc,
    url: String,
}

impl Driver {
    async fn start() -> Driver {
        let bin = std::env::var("GRAFT_CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
        let port = free_port();
        let proc = Proc::start(
            &format!("chromedriver-{port}"),
            Command::new(&bin).arg(format!("--port={port}")),
        );
        let addr = format!("127.0.0.1:{port}");
        eventually(
            "chromedriver to answer (install it with deploy/local/browser)",
            Duration::from_secs(30),
            || {
                let addr = addr.clone();
                async move {
                    http("GET", &addr, "/status", &[])
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                }
            },
        )
        .await;
        Driver {
            _proc: proc,
            url: format!("http://{addr}"),
        }
    }

    /// A new headless Chromium (Debian's) of `width`×`height`.
    async fn browser(&self, width: u32, height: u32) -> Browser {
        self.browser_with(width, height, None).await
    }

    /// A browser that emulates a phone screen of `width`×`height` CSS pixels at `dpr`.
    async fn phone(&self, width: u32, height: u32, dpr: f64) -> Browser {
        self.browser_with(width, height, Some(json!({"deviceMetrics": {"width": width, "height": height, "pixelRatio": dpr}, "userAgent": "Mozilla/5.0 (Linux; Android 14) Mobile"}))).await
    }

    async fn browser_with(&self, width: u32, height: u32, mobile: Option<Value>) -> Browser {
        let chromium =
            std::env::var("GRAFT_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let caps = json!({
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--hide-scrollbars", "--force-device-scale-factor=1",
                         format!("--window-size={width},{height}")]
            }
        });
        let mut caps = caps;
        if let Some(m) = mobile {
            caps["goog:chromeOptions"]["mobileEmulation"] = m;
        }
        let caps = match caps {
            Value::Object(m) => m,
            _ => unreachable!(),
        };
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&self.url)
            .await
            .unwrap_or_else(|e| panic!("starting Chromium through chromedriver: {e}"))
    }
}

async fn js(b: &Browser, script: &str) -> Value {
    b.execute(script, vec![])
        .await
        .unwrap_or_else(|e| panic!("script {script}: {e}"))
}

/// Runs `script` in the page until it returns `true`.
async fn browser_until(b: &Browser, expected: &str, timeout: Duration, script: &str) {
    let start = Instant::now();
    loop {
        if js(b, script).await == Value::Bool(true) {
            return;
        }
        if start.elapsed() > timeout {
            let main = js(b, "return document.getElementById('main')?.innerText || ''").await;
            panic!(
                "timed out after {timeout:?} waiting in the browser for {expected}; page shows:\n{main}"
            );
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

async fn screenshot(b: &Browser, name: &str) {
    // Let the progress bars' width transitions finish.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let png = b.screenshot().await.expect("screenshot");
    let path = artifacts().join(name);
    std::fs::write(&path, png).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

/// Records in the page, on every DOM change, the commit row's phase and the first workload's
/// progress and in-place count, so the test can tell how they moved; and a marker a reload
/// would wipe.
const RECORDER: &str = r#"
window.__marker = 'no reload';
window.__phases = []; window.__progress = [];
const sha = arguments[0];
const record = () => {
  const row = document.getElementById('c-' + sha);
  const ph = row ? row.getAttribute('data-phase') : null;
  if (ph && window.__phases[window.__phases.length - 1] !== ph) window.__phases.push(ph);
  const n = document.querySelector('.n-updated');
  const t = n ? n.textContent : null;
  if (t && window.__progress[window.__progress.length - 1] !== t) window.__progress.push(t);
};
record();
new MutationObserver(record).observe(document.body, {subtree: true, childList: true, attributes: true, characterData: true});
return true;
"#;

#[tokio::test]
async fn browser_shows_a_rollout_live_in_chromium() {
    let s = Scene::start("web-browser", Some("tok-b7"), false).await;
    let ns = s.ns.name.clone();
    let driver = Driver::start().await;
    let base = format!("http://{}", s.addr);

    let c1 = s.repo.commit(
        "first: app v1",
        &[
            ("settings.yaml", configmap("blue")),
            ("web.yaml", cloneset("v1")),
        ],
    );
    s.create_gitsync().await;
    s.wait_phase(&c1, CommitPhase::Healthy).await;

    // The timeline, opened before the commit; the token moves into a cookie on first visit.
    let timeline = driver.browser(1280, 1000).await;
    timeline
        .goto(&format!("{base}/gitsyncs/{ns}/app?token=tok-b7"))
        .await
        .expect("open timeline");
    assert_eq!(
        timeline.current_url().await.expect("url").path(),
        format!("/gitsyncs/{ns}/app"),
        "the token left the address"
    );
    browser_until(
        &timeline,
        "the live badge",
        MINUTE,
        "return document.getElementById('live').dataset.state === 'on'",
    )
    .await;

    // A commit with a hostile message: it must show as text and run nothing.
    let hostile = "bump app to v2 <script>window.__xss=1</script><img src=x onerror=\"window.__xss=2\"> </textarea>";
    let c2 = s.repo.commit(
        hostile,
        &[
            ("settings.yaml", configmap("green")),
            ("web.yaml", cloneset("v2")),
        ],
    );
    js_args(&timeline, RECORDER, &c2).await;
    browser_until(
        &timeline,
        "the new commit's row, pushed over SSE",
        MINUTE,
        &format!("return !!document.getElementById('c-{c2}')"),
    )
    .await;

    // The commit page in a second browser while the rollout runs.
    let detail = driver.browser(1280, 1300).await;
    detail
        .goto(&format!("{base}/?token=tok-b7"))
        .await
        .expect("log in");
    detail
        .goto(&format!("{base}/gitsyncs/{ns}/app/commits/{c2}"))
        .await
        .expect("open commit");
    js_args(&detail, RECORDER, &c2).await;
    let mid = js(
        &detail,
        "return document.querySelector('.n-updated')?.textContent",
    )
    .await;
    // The page while the rollout runs (an artifact; what it shows depends on timing).
    let png = detail.screenshot().await.expect("screenshot");
    std::fs::write(artifacts().join("commit-rolling.png"), png).expect("write screenshot");
    browser_until(
        &detail,
        "the progress bar at 3/3 and every pod counted as updated in place",
        2 * MINUTE,
        &format!(
            "return document.querySelector('.n-updated')?.textContent === '{REPLICAS}/{REPLICAS}' \
             && document.querySelector('.n-inplace')?.textContent === '{REPLICAS}' \
             && document.querySelector('.n-pods')?.textContent === '{REPLICAS}' \
             && document.querySelector('.fill.upd')?.classList.contains('p100') \
             && document.getElementById('c-{c2}')?.dataset.phase === 'Healthy'"
        ),
    )
    .await;
    let progress = js(&detail, "return window.__progress").await;
    let marker = js(&detail, "return window.__marker").await;
    assert_eq!(marker, "no reload", "the commit page was not reloaded");
    assert_eq!(
        js(
            &detail,
            "return document.querySelector('.n-recreated').textContent"
        )
        .await,
        "0"
    );
    // The diff of the rendered manifests shows the image change.
    let diff = js(&detail, "return document.getElementById('diff').innerText").await;
    let diff = diff.as_str().unwrap_or_default();
    assert!(
        diff.contains("app:v1") && diff.contains("app:v2"),
        "diff: {diff}"
    );
    screenshot(&detail, "commit.png").await;
    let seen: Vec<String> = serde_json::from_value(progress).expect("progress");
    assert!(
        seen.len() >= 2 && seen.last().map(String::as_str) == Some("3/3"),
        "the bar moved while the page was open (first look {mid}): {seen:?}"
    );

    // Back to the timeline: the row went through its phases without a reload.
    browser_until(
        &timeline,
        "the commit row Healthy",
        MINUTE,
        &format!("return document.getElementById('c-{c2}')?.dataset.phase === 'Healthy'"),
    )
    .await;
    let phases = js(&timeline, "return window.__phases").await;
    assert_eq!(js(&timeline, "return window.__marker").await, "no reload");
    let phases: Vec<String> = serde_json::from_value(phases).expect("phases");
    assert!(
        phases.len() >= 2
            && phases.last().map(String::as_str) == Some("Healthy")
            && phases[..phases.len() - 1]
                .iter()
                .any(|p| p == "RollingOut" || p == "Applying" || p == "Detected"),
        "the row moved through its phases live: {phases:?}"
    );
    let chips = js(
        &timeline,
        &format!("return Array.from(document.querySelectorAll('#c-{c2} .ph-name')).map(e => e.textContent)"),
    )
    .await;
    assert_eq!(
        chips,
        json!([
            "detected",
            "validated",
            "applying",
            "rolling out",
            "healthy"
        ])
    );
    // The hostile message is shown as text and ran nothing.
    let msg = js(
        &timeline,
        &format!("return document.querySelector('#c-{c2} .msg').textContent"),
    )
    .await;
    assert_eq!(msg, hostile);
    assert_eq!(
        js(&timeline, "return typeof window.__xss").await,
        "undefined"
    );
    assert_eq!(js(&detail, "return typeof window.__xss").await, "undefined");
    screenshot(&timeline, "timeline.png").await;

    // Overview and workload pages.
    timeline.goto(&format!("{base}/")).await.expect("overview");
    browser_until(
        &timeline,
        "the overview with the healthy GitSync and 3/3 workload",
        MINUTE,
        &format!(
            "return document.body.innerText.includes('Healthy') && \
             document.querySelector('.n-updated')?.textContent === '{REPLICAS}/{REPLICAS}'"
        ),
    )
    .await;
    screenshot(&timeline, "overview.png").await;
    timeline
        .find(Locator::Css(".workload a.name"))
        .await
        .expect("workload link")
        .click()
        .await
        .expect("click");
    browser_until(
        &timeline,
        "the workload page with its pods",
        MINUTE,
        &format!("return document.querySelectorAll('table.pods tbody tr').length === {REPLICAS}"),
    )
    .await;
    screenshot(&timeline, "workload.png").await;

    // A phone.
    let phone = driver.phone(390, 844, 2.0).await;
    phone
        .goto(&format!("{base}/?token=tok-b7"))
        .await
        .expect("phone overview");
    phone
        .goto(&format!("{base}/gitsyncs/{ns}/app"))
        .await
        .expect("phone timeline");
    let overflow = js(
        &phone,
        "return document.documentElement.scrollWidth <= window.innerWidth",
    )
    .await;
    assert_eq!(overflow, true, "no sideways scrolling on a phone");
    screenshot(&phone, "timeline-phone.png").await;
    for (page, name) in [
        (
            format!("/gitsyncs/{ns}/app/commits/{c2}"),
            "commit-phone.png",
        ),
        (
            format!("/workloads/apps.kruise.io/CloneSet/{ns}/web"),
            "workload-phone.png",
        ),
    ] {
        phone
            .goto(&format!("{base}{page}"))
            .await
            .expect("phone page");
        let fits = js(
            &phone,
            "return document.documentElement.scrollWidth <= window.innerWidth",
        )
        .await;
        assert_eq!(fits, true, "{page}: no sideways scrolling on a phone");
        screenshot(&phone, name).await;
    }
    phone
        .goto(&format!("{base}/gitsyncs/{ns}/app"))
        .await
        .expect("phone timeline");
    // Ages tick on between updates (a window without a server update proves it is the page).
    let age = "return [document.querySelector('.commit [data-age]').textContent, \
               document.body.getAttribute('data-refreshes')]";
    let mut ticked = false;
    for _ in 0..5 {
        let before = js(&phone, age).await;
        tokio::time::sleep(Duration::from_millis(2200)).await;
        let after = js(&phone, age).await;
        if before[1] == after[1] {
            assert_ne!(
                before[0], after[0],
                "the commit's age moves on without an update"
            );
            ticked = true;
            break;
        }
    }
    assert!(ticked, "found no 2 s window without a server update");

    for b in [timeline, detail, phone] {
        let _ = b.close().await;
    }
}

async fn js_args(b: &Browser, script: &str, arg: &str) -> Value {
    b.execute(script, vec![Value::from(arg)])
        .await
        .unwrap_or_else(|e| panic!("script: {e}"))
}
