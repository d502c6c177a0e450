//! A GitSync driven by real Git commits on the real cluster, with graft's sync and CloneSet
//! controllers running: every commit gets its history entry and phases; a bad commit fails
//! alone and the last good one stays applied.
#![cfg(feature = "cluster-tests")]

mod support;

use std::process::Command;
use std::time::Duration;

use graft_api::apps::v1beta1::StatefulSet;
use graft_api::graft::gitsync::{CommitPhase, CommitRecord, GitSync, WorkloadProgress};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::Api;
use kube::api::{ListParams, PostParams};
use serde_json::json;
use support::{
    GitRepo, GraftControllers, PodWatcher, TestNamespace, client, eventually, image, install_crds,
    wait_for,
};

/// `graft sync` (the GitSync controller) for one namespace, killed when dropped.
struct SyncProcess(std::process::Child);

impl SyncProcess {
    fn start(ns: &str) -> SyncProcess {
        Self::start_with(ns, &[])
    }

    fn start_with(ns: &str, extra: &[&str]) -> SyncProcess {
        let log = std::path::Path::new("/tmp/graft-test-logs").join(format!("sync-{ns}.log"));
        let _ = std::fs::create_dir_all("/tmp/graft-test-logs");
        let out = std::fs::File::create(&log).expect("log file");
        let err = out.try_clone().expect("log handle");
        SyncProcess(
            Command::new(env!("CARGO_BIN_EXE_graft"))
                .args(["sync", "--watch-namespace", ns])
                .args(extra)
                .arg("--cache-dir")
                .arg(std::env::temp_dir().join(format!("graft-gitsync-cache-{ns}")))
                .stdout(out)
                .stderr(err)
                .spawn()
                .expect("start graft sync"),
        )
    }
}

impl Drop for SyncProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn configmap() -> String {
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  mode: blue\n".into()
}

fn cloneset(tag: &str) -> String {
    format!(
        "apiVersion: apps.kruise.io/v1alpha1\nkind: CloneSet\nmetadata:\n  name: web\nspec:\n  replicas: 2\n  selector:\n    matchLabels: {{app: web}}\n  updateStrategy: {{type: InPlaceIfPossible, maxUnavailable: 1}}\n  template:\n    metadata:\n      labels: {{app: web}}\n    spec:\n      terminationGracePeriodSeconds: 2\n      containers:\n      - name: app\n        image: {}\n        imagePullPolicy: IfNotPresent\n",
        image(&format!("app:{tag}"))
    )
}

/// An Advanced StatefulSet `db` of [`DB_REPLICAS`] pods at `tag`, started together and updated
/// in place one at a time (with the `InPlaceUpdateReady` readiness gate OpenKruise requires).
fn advanced_statefulset(tag: &str) -> String {
    format!(
        "apiVersion: apps.kruise.io/v1beta1\nkind: StatefulSet\nmetadata:\n  name: db\nspec:\n  replicas: {DB_REPLICAS}\n  serviceName: db\n  podManagementPolicy: Parallel\n  selector:\n    matchLabels: {{app: db}}\n  updateStrategy:\n    type: RollingUpdate\n    rollingUpdate: {{podUpdatePolicy: InPlaceIfPossible, maxUnavailable: 1}}\n  template:\n    metadata:\n      labels: {{app: db}}\n    spec:\n      terminationGracePeriodSeconds: 2\n      readinessGates:\n      - conditionType: InPlaceUpdateReady\n      containers:\n      - name: app\n        image: {}\n        imagePullPolicy: IfNotPresent\n        readinessProbe: {{httpGet: {{path: /readyz, port: 8080}}, periodSeconds: 1}}\n",
        image(&format!("app:{tag}"))
    )
}

const DB_REPLICAS: i32 = 3;

/// The Advanced StatefulSet's own status says its rollout is complete: the spec observed, every
/// pod updated and ready, and the update revision became the current one.
fn rollout_complete(set: &StatefulSet) -> bool {
    let st = set.status.clone().unwrap_or_default();
    st.observed_generation == set.metadata.generation.unwrap_or(-1)
        && st.replicas == DB_REPLICAS
        && st.updated_replicas == DB_REPLICAS
        && st.updated_ready_replicas == DB_REPLICAS
        && st.ready_replicas == DB_REPLICAS
        && st.update_revision.is_some()
        && st.current_revision == st.update_revision
}

fn db_progress(ns: &str, done: i32) -> WorkloadProgress {
    WorkloadProgress {
        group: "apps.kruise.io".into(),
        kind: "StatefulSet".into(),
        namespace: Some(ns.into()),
        name: "db".into(),
        replicas: DB_REPLICAS,
        updated: done,
        ready: done,
        available: done,
        failed: 0,
    }
}

fn entry<'a>(gs: &'a GitSync, sha: &str) -> Option<&'a CommitRecord> {
    gs.status
        .as_ref()?
        .history
        .as_ref()?
        .iter()
        .find(|h| h.sha == sha)
}

fn phase_is(gs: &GitSync, sha: &str, phase: CommitPhase) -> bool {
    entry(gs, sha).is_some_and(|h| h.phase == phase)
}

#[tokio::test]
async fn every_commit_gets_its_history_and_a_bad_commit_fails_alone() {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "gitsync").await;
    let _controllers = GraftControllers::start(&ns.name);
    let _sync = SyncProcess::start(&ns.name);
    let repo = GitRepo::new(&ns.name);
    let gitsyncs: Api<GitSync> = ns.api();
    let cms: Api<ConfigMap> = ns.api();
    let minute = Duration::from_secs(60);

    let c1 = repo.commit(
        "first: app v1",
        &[("settings.yaml", configmap()), ("web.yaml", cloneset("v1"))],
    );
    let gs: GitSync = serde_json::from_value(json!({
        "apiVersion": "graft.dev/v1alpha1", "kind": "GitSync",
        "metadata": {"name": "app"},
        "spec": {"url": repo.url(), "ref": {"branch": "main"},
                 "path": "deploy", "interval": "2s", "prune": true,
                 "prePull": {"mode": "Off"}}
    }))
    .expect("GitSync literal");
    gitsyncs
        .create(&PostParams::default(), &gs)
        .await
        .expect("create GitSync");
    wait_for(
        &gitsyncs,
        "app",
        "the first commit Healthy",
        2 * minute,
        |g| phase_is(g, &c1, CommitPhase::Healthy),
    )
    .await;
    assert!(cms.get_opt("settings").await.expect("get").is_some());

    // A commit that changes the image: its own entry, with every phase time in order.
    let c2 = repo.commit(
        "second: app v2",
        &[("settings.yaml", configmap()), ("web.yaml", cloneset("v2"))],
    );
    let gs = wait_for(
        &gitsyncs,
        "app",
        "the second commit Healthy",
        2 * minute,
        |g| phase_is(g, &c2, CommitPhase::Healthy),
    )
    .await;
    let e = entry(&gs, &c2).expect("entry");
    assert_eq!(e.message.as_deref(), Some("second: app v2"));
    assert_eq!(
        e.author.as_deref().map(|a| a.starts_with("Dev")),
        Some(true)
    );
    let t = &e.phase_times;
    let times: Vec<_> = [
        &t.detected,
        &t.validated,
        &t.applying,
        &t.rolling_out,
        &t.healthy,
    ]
    .iter()
    .map(|t| t.as_ref().map(|t| t.0))
    .collect();
    assert!(
        times.iter().all(Option::is_some),
        "every phase has a time: {t:?}"
    );
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "phase times in order: {t:?}"
    );
    let workloads = e.workloads.clone().unwrap_or_default();
    assert!(
        workloads
            .iter()
            .any(|w| w.kind == "CloneSet" && w.name == "web" && w.updated == 2),
        "the CloneSet's rollout is recorded: {workloads:?}"
    );
    let history = gs
        .status
        .clone()
        .and_then(|s| s.history)
        .unwrap_or_default();
    assert_eq!(
        history.first().map(|h| h.sha.as_str()),
        Some(c2.as_str()),
        "newest first"
    );

    // Removing the ConfigMap prunes it.
    let c3 = repo.commit("third: drop settings", &[("web.yaml", cloneset("v2"))]);
    wait_for(
        &gitsyncs,
        "app",
        "the third commit Healthy",
        2 * minute,
        |g| phase_is(g, &c3, CommitPhase::Healthy),
    )
    .await;
    assert!(
        cms.get_opt("settings").await.expect("get").is_none(),
        "pruned"
    );

    // A truncated manifest: that commit fails with the file named; the last good one stays.
    let c4 = repo.commit(
        "fourth: broken",
        &[
            ("web.yaml", cloneset("v3")),
            (
                "broken.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x\n".into(),
            ),
        ],
    );
    let gs = wait_for(&gitsyncs, "app", "the fourth commit Failed", minute, |g| {
        phase_is(g, &c4, CommitPhase::Failed)
    })
    .await;
    let e = entry(&gs, &c4).expect("entry");
    assert_eq!(e.reason.as_deref(), Some("ValidationFailed"));
    assert!(
        e.status_message
            .as_deref()
            .is_some_and(|m| m.contains("broken.yaml")),
        "the failure names the file: {e:?}"
    );
    let status = gs.status.clone().unwrap_or_default();
    assert_eq!(status.last_applied_commit.as_deref(), Some(c3.as_str()));
    let ready = status
        .conditions
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .expect("Ready condition");
    assert_eq!(ready.status, "False");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let web: Api<graft_api::apps::v1alpha1::CloneSet> = ns.api();
    let image_now = web
        .get("web")
        .await
        .expect("web")
        .spec
        .template
        .spec
        .and_then(|s| s.containers.first().and_then(|c| c.image.clone()));
    assert_eq!(
        image_now,
        Some(image("app:v2")),
        "nothing of the bad commit applied"
    );
}

#[tokio::test]
async fn a_signed_push_webhook_syncs_at_once_and_a_bad_signature_does_nothing() {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "gitsync-hook").await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port");
    let addr = format!("127.0.0.1:{port}");
    let _sync = SyncProcess::start_with(
        &ns.name,
        &["--webhook-addr", &addr, "--webhook-secret", "s3cret"],
    );
    let repo = GitRepo::new(&ns.name);
    let gitsyncs: Api<GitSync> = ns.api();
    let cms: Api<ConfigMap> = ns.api();
    let c1 = repo.commit("first", &[("settings.yaml", configmap())]);
    // Served by a real `git daemon`, so only the webhook (not the local file watch) can bring
    // the next commit in early.
    let daemon_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port");
    let parent = repo.dir.parent().expect("repo parent").to_path_buf();
    // Run git-daemon itself: `git daemon` forks it, and it would outlive a kill of the wrapper
    // (holding the test's output open).
    let exec_path = String::from_utf8(
        Command::new("git")
            .arg("--exec-path")
            .output()
            .expect("git --exec-path")
            .stdout,
    )
    .expect("utf-8 exec path");
    let _daemon = SyncProcess(
        Command::new(std::path::Path::new(exec_path.trim()).join("git-daemon"))
            .args(["--reuseaddr", "--export-all", "--listen=127.0.0.1"])
            .arg(format!("--port={daemon_port}"))
            .arg(format!("--base-path={}", parent.display()))
            .arg(&parent)
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start git daemon"),
    );
    let repo_name = repo
        .dir
        .file_name()
        .expect("name")
        .to_string_lossy()
        .to_string();
    let url = format!("git://127.0.0.1:{daemon_port}/{repo_name}");
    // An interval of an hour: only the webhook can bring the next commit in time.
    let gs: GitSync = serde_json::from_value(json!({
        "apiVersion": "graft.dev/v1alpha1", "kind": "GitSync",
        "metadata": {"name": "app"},
        "spec": {"url": url, "ref": {"branch": "main"}, "path": "deploy", "interval": "1h"}
    }))
    .expect("GitSync literal");
    gitsyncs
        .create(&PostParams::default(), &gs)
        .await
        .expect("create GitSync");
    wait_for(
        &gitsyncs,
        "app",
        "the first commit applied",
        Duration::from_secs(60),
        |g| {
            g.status
                .as_ref()
                .and_then(|s| s.last_applied_commit.as_deref())
                == Some(c1.as_str())
        },
    )
    .await;

    // The controller looks once more right after its own status write; let that pass so the
    // next commit can only come in through a webhook.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let c2 = repo.commit(
        "second",
        &[("settings.yaml", configmap().replace("blue", "green"))],
    );
    let body = serde_json::to_vec(&json!({"url": url, "ref": "refs/heads/main", "commit": c2}))
        .expect("body");
    let post = |signature: String| -> String {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(&addr).expect("connect");
        let head = format!(
            "POST /hook HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nX-Graft-Signature: {signature}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).expect("write");
        stream.write_all(&body).expect("write body");
        let mut out = String::new();
        let _ = stream.read_to_string(&mut out);
        out
    };
    let bad = post(format!(
        "sha256={}",
        graft_sync::webhook::sign(&body, b"wrong")
    ));
    assert!(
        bad.starts_with("HTTP/1.1 401"),
        "bad signature rejected: {bad}"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let g = gitsyncs.get("app").await.expect("get");
    assert_eq!(
        g.status.and_then(|s| s.last_applied_commit).as_deref(),
        Some(c1.as_str()),
        "a rejected webhook syncs nothing"
    );

    let sent = std::time::Instant::now();
    let good = post(format!(
        "sha256={}",
        graft_sync::webhook::sign(&body, b"s3cret")
    ));
    assert!(
        good.starts_with("HTTP/1.1 202"),
        "signed push accepted: {good}"
    );
    wait_for(
        &gitsyncs,
        "app",
        "the pushed commit applied",
        Duration::from_secs(30),
        |g| {
            g.status
                .as_ref()
                .and_then(|s| s.last_applied_commit.as_deref())
                == Some(c2.as_str())
        },
    )
    .await;
    println!("push-to-applied through the webhook: {:?}", sent.elapsed());
    assert_eq!(
        cms.get("settings")
            .await
            .expect("settings")
            .data
            .unwrap_or_default()
            .get("mode")
            .map(String::as_str),
        Some("green")
    );
}

#[tokio::test]
async fn a_commit_to_a_local_repository_syncs_through_the_file_watch() {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "gitsync-watch").await;
    let _sync = SyncProcess::start(&ns.name);
    let repo = GitRepo::new(&ns.name);
    let gitsyncs: Api<GitSync> = ns.api();
    let cms: Api<ConfigMap> = ns.api();
    let c1 = repo.commit("first", &[("settings.yaml", configmap())]);
    // A local path (no file://) and an interval of an hour: only the watch can be this quick.
    let gs: GitSync = serde_json::from_value(json!({
        "apiVersion": "graft.dev/v1alpha1", "kind": "GitSync",
        "metadata": {"name": "app"},
        "spec": {"url": repo.dir.display().to_string(), "path": "deploy", "interval": "1h"}
    }))
    .expect("GitSync literal");
    gitsyncs
        .create(&PostParams::default(), &gs)
        .await
        .expect("create GitSync");
    wait_for(
        &gitsyncs,
        "app",
        "the first commit applied",
        Duration::from_secs(60),
        |g| {
            g.status
                .as_ref()
                .and_then(|s| s.last_applied_commit.as_deref())
                == Some(c1.as_str())
        },
    )
    .await;
    // Give the watcher its rescan to pick the repository up.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let committed = std::time::Instant::now();
    let c2 = repo.commit(
        "second",
        &[("settings.yaml", configmap().replace("blue", "green"))],
    );
    wait_for(
        &gitsyncs,
        "app",
        "the local commit applied through the file watch",
        Duration::from_secs(30),
        |g| {
            g.status
                .as_ref()
                .and_then(|s| s.last_applied_commit.as_deref())
                == Some(c2.as_str())
        },
    )
    .await;
    println!(
        "commit-to-applied through the file watch: {:?}",
        committed.elapsed()
    );
    assert_eq!(
        cms.get("settings")
            .await
            .expect("settings")
            .data
            .unwrap_or_default()
            .get("mode")
            .map(String::as_str),
        Some("green")
    );
}

fn settings(mode: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  mode: {mode}\n")
}

async fn mode_of(cms: &Api<ConfigMap>) -> Option<String> {
    cms.get("settings")
        .await
        .expect("settings")
        .data
        .and_then(|d| d.get("mode").cloned())
}

fn ready(gs: &GitSync) -> Option<(String, String, String)> {
    gs.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

/// The notes of the Events of `reason` about the object `kind/name` in `ns`.
async fn event_notes(ns: &TestNamespace, kind: &str, name: &str, reason: &str) -> Vec<String> {
    let events: Api<k8s_openapi::api::events::v1::Event> = ns.api();
    events
        .list(&Default::default())
        .await
        .expect("list events")
        .items
        .into_iter()
        .filter(|e| {
            e.reason.as_deref() == Some(reason)
                && e.regarding.as_ref().is_some_and(|r| {
                    r.kind.as_deref() == Some(kind) && r.name.as_deref() == Some(name)
                })
        })
        .filter_map(|e| e.note)
        .collect()
}

#[tokio::test]
async fn bad_sources_fail_in_status_and_keep_the_last_good_commit() {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "gitsync-bad").await;
    let _sync = SyncProcess::start(&ns.name);
    let repo = GitRepo::new(&ns.name);
    let gitsyncs: Api<GitSync> = ns.api();
    let cms: Api<ConfigMap> = ns.api();
    let minute = Duration::from_secs(60);

    // The repository lives on a real smart-HTTP server (git http-backend) asking for a password.
    let root = std::env::temp_dir().join(format!("graft-test-http-{}", ns.name));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).expect("server root");
    let c1 = repo.commit("good: blue", &[("settings.yaml", settings("blue"))]);
    let bare = root.join("app.git");
    repo.git(&[
        "clone",
        "-q",
        "--bare",
        ".",
        bare.to_str().expect("utf-8 path"),
    ]);
    repo.git(&[
        "remote",
        "add",
        "origin",
        bare.to_str().expect("utf-8 path"),
    ]);
    let push = |force: bool| {
        if force {
            repo.git(&["push", "-q", "--force", "origin", "main"]);
        } else {
            repo.git(&["push", "-q", "origin", "main"]);
        }
    };
    let server = support::git_http::GitHttpServer::start(&root, "dev", "s3cret-pw");
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = ns.api();
    for (name, password) in [("git-auth", "s3cret-pw"), ("git-wrong", "wr0ng-pw")] {
        let secret = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
            "stringData": {"username": "dev", "password": password}
        }))
        .expect("Secret literal");
        secrets
            .create(&PostParams::default(), &secret)
            .await
            .expect("create Secret");
    }
    let gs: GitSync = serde_json::from_value(json!({
        "apiVersion": "graft.dev/v1alpha1", "kind": "GitSync",
        "metadata": {"name": "app"},
        "spec": {"url": server.url("app"), "ref": {"branch": "main"}, "path": "deploy",
                 "interval": "2s", "prune": true, "secretRef": {"name": "git-auth"}}
    }))
    .expect("GitSync literal");
    gitsyncs
        .create(&PostParams::default(), &gs)
        .await
        .expect("create GitSync");
    wait_for(&gitsyncs, "app", "the first commit Healthy", minute, |g| {
        phase_is(g, &c1, CommitPhase::Healthy)
    })
    .await;
    assert_eq!(mode_of(&cms).await.as_deref(), Some("blue"));

    // Each bad commit fails alone, says why in its history entry, and applies nothing.
    let big = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: big\ndata:\n  blob: \"{}\"\n",
        "x".repeat(20 * 1024 * 1024)
    );
    let c2 = repo.commit(
        "bad: a 20 MB file",
        &[("settings.yaml", settings("red")), ("big.yaml", big)],
    );
    push(false);
    let g = wait_for(&gitsyncs, "app", "the 20 MB commit Failed", minute, |g| {
        phase_is(g, &c2, CommitPhase::Failed)
    })
    .await;
    let e = entry(&g, &c2).expect("entry");
    let message = e.status_message.clone().unwrap_or_default();
    assert!(
        message.contains("deploy/big.yaml") && message.contains("limit"),
        "names the file and the limit: {message}"
    );
    assert_eq!(e.message.as_deref(), Some("bad: a 20 MB file"));

    let c3 = repo.commit("bad: no deploy directory", &[] as &[(&str, String)]);
    push(false);
    let g = wait_for(
        &gitsyncs,
        "app",
        "the pathless commit Failed",
        minute,
        |g| phase_is(g, &c3, CommitPhase::Failed),
    )
    .await;
    let message = entry(&g, &c3)
        .and_then(|e| e.status_message.clone())
        .unwrap_or_default();
    assert!(message.contains("deploy"), "names the path: {message}");
    assert_eq!(mode_of(&cms).await.as_deref(), Some("blue"));
    assert_eq!(
        g.status.and_then(|s| s.last_applied_commit).as_deref(),
        Some(c1.as_str())
    );

    let c4 = repo.commit("good: green", &[("settings.yaml", settings("green"))]);
    push(false);
    wait_for(&gitsyncs, "app", "the green commit Healthy", minute, |g| {
        phase_is(g, &c4, CommitPhase::Healthy)
    })
    .await;
    assert_eq!(mode_of(&cms).await.as_deref(), Some("green"));

    // A force-push that rewrites history back past the applied commit is refused ...
    repo.git(&["reset", "-q", "--hard", &c1]);
    let c5 = repo.commit("rewritten: red", &[("settings.yaml", settings("red"))]);
    push(true);
    let g = wait_for(
        &gitsyncs,
        "app",
        "the rewritten commit Failed",
        minute,
        |g| phase_is(g, &c5, CommitPhase::Failed),
    )
    .await;
    let e = entry(&g, &c5).expect("entry");
    assert_eq!(e.reason.as_deref(), Some("HistoryRewritten"), "{e:?}");
    assert!(
        e.status_message
            .as_deref()
            .is_some_and(|m| m.contains(&c4) && m.contains("accept-rewrite")),
        "names the applied commit and the way out: {e:?}"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(mode_of(&cms).await.as_deref(), Some("green"));
    // ... until the owner accepts that exact rewrite.
    gitsyncs
        .patch(
            "app",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(
                json!({"metadata": {"annotations": {"graft.dev/accept-rewrite": c5}}}),
            ),
        )
        .await
        .expect("annotate");
    eventually("the rewrite applied once accepted", minute, || async {
        let mode = mode_of(&cms).await;
        if mode.as_deref() == Some("red") {
            Ok(())
        } else {
            Err(format!("mode {mode:?}"))
        }
    })
    .await;

    // Wrong credentials: the fetch fails with an authentication error, the secret unseen.
    let refused_before = server.refused();
    gitsyncs
        .patch(
            "app",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"spec": {"secretRef": {"name": "git-wrong"}}})),
        )
        .await
        .expect("switch secret");
    repo.commit(
        "good but unreachable: blue",
        &[("settings.yaml", settings("blue"))],
    );
    push(false);
    let g = wait_for(
        &gitsyncs,
        "app",
        "Ready=False for wrong credentials",
        minute,
        |g| {
            ready(g).is_some_and(|(s, r, m)| {
                s == "False" && r == "FetchFailed" && m.to_lowercase().contains("authenticate")
            })
        },
    )
    .await;
    let (_, _, message) = ready(&g).expect("Ready");
    assert!(
        !message.contains("wr0ng-pw"),
        "no secret in status: {message}"
    );
    assert!(
        server.refused() > refused_before,
        "the server refused the credentials"
    );
    assert_eq!(mode_of(&cms).await.as_deref(), Some("red"));
    let notes = event_notes(&ns, "GitSync", "app", "FetchFailed").await;
    assert!(!notes.is_empty(), "a FetchFailed event");
    assert!(notes.iter().all(|n| !n.contains("wr0ng-pw")), "{notes:?}");

    // An unreachable remote.
    gitsyncs
        .patch(
            "app",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"spec": {"url": "git://127.0.0.1:1/app.git"}})),
        )
        .await
        .expect("switch url");
    wait_for(
        &gitsyncs,
        "app",
        "Ready=False for an unreachable remote",
        minute,
        |g| {
            ready(g).is_some_and(|(s, r, m)| {
                s == "False" && r == "FetchFailed" && m.contains("127.0.0.1:1")
            })
        },
    )
    .await;
    assert_eq!(mode_of(&cms).await.as_deref(), Some("red"));
    let _ = std::fs::remove_dir_all(&root);
}

#[tokio::test]
async fn a_kubectl_edit_is_reverted_on_the_next_interval_with_an_event() {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "gitsync-edit").await;
    let _sync = SyncProcess::start(&ns.name);
    let repo = GitRepo::new(&ns.name);
    let gitsyncs: Api<GitSync> = ns.api();
    let cms: Api<ConfigMap> = ns.api();
    let minute = Duration::from_secs(60);
    let c1 = repo.commit("settings", &[("settings.yaml", settings("blue"))]);
    let gs: GitSync = serde_json::from_value(json!({
        "apiVersion": "graft.dev/v1alpha1", "kind": "GitSync",
        "metadata": {"name": "app"},
        "spec": {"url": repo.url(), "ref": {"branch": "main"}, "path": "deploy", "interval": "5s"}
    }))
    .expect("GitSync literal");
    gitsyncs
        .create(&PostParams::default(), &gs)
        .await
        .expect("create GitSync");
    wait_for(&gitsyncs, "app", "the commit Healthy", minute, |g| {
        phase_is(g, &c1, CommitPhase::Healthy)
    })
    .await;

    // A real `kubectl edit`: the "editor" changes a value graft set and adds a key and a label
    // graft never set.
    let editor = std::env::temp_dir().join(format!("graft-test-editor-{}.sh", ns.name));
    std::fs::write(
        &editor,
        "#!/bin/sh\nsed -i -e 's/mode: blue/mode: edited/' -e 's/^data:$/data:\\n  extra: added/' -e 's/^  name: settings$/  name: settings\\n  labels:\\n    debug: \"on\"/' \"$1\"\n",
    )
    .expect("write editor");
    std::fs::set_permissions(&editor, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod editor");
    let out = Command::new("kubectl")
        .args(["edit", "configmap", "settings", "-n", &ns.name])
        .env("KUBE_EDITOR", &editor)
        .output()
        .expect("run kubectl edit");
    assert!(
        out.status.success(),
        "kubectl edit: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let edited = cms.get("settings").await.expect("settings");
    let data = edited.data.clone().unwrap_or_default();
    assert_eq!(
        data.get("mode").map(String::as_str),
        Some("edited"),
        "the edit landed"
    );
    assert_eq!(data.get("extra").map(String::as_str), Some("added"));

    let reverted = eventually("the edit reverted", minute, || async {
        let cm = cms.get("settings").await.expect("settings");
        let data = cm.data.clone().unwrap_or_default();
        let labels = cm.metadata.labels.clone().unwrap_or_default();
        if data.get("mode").map(String::as_str) == Some("blue")
            && !data.contains_key("extra")
            && !labels.contains_key("debug")
        {
            Ok(cm)
        } else {
            Err(format!("data {data:?}, labels {labels:?}"))
        }
    })
    .await;
    assert_eq!(
        reverted
            .metadata
            .labels
            .unwrap_or_default()
            .get("graft.dev/gitsync")
            .map(String::as_str),
        Some(format!("{}.app", ns.name).as_str()),
        "graft's own label stays"
    );
    let on_object = eventually(
        "a DriftCorrected event on the ConfigMap",
        minute,
        || async {
            let notes = event_notes(&ns, "ConfigMap", "settings", "DriftCorrected").await;
            if notes.is_empty() {
                Err("no event yet".to_string())
            } else {
                Ok(notes)
            }
        },
    )
    .await;
    assert!(
        on_object[0].contains("kubectl-edit") && on_object[0].contains(&c1[..7]),
        "says who and to which commit: {on_object:?}"
    );
    let on_sync = event_notes(&ns, "GitSync", "app", "DriftCorrected").await;
    assert!(
        on_sync
            .iter()
            .any(|n| n.contains("ConfigMap") && n.contains("settings")),
        "the GitSync's event lists the object: {on_sync:?}"
    );
    let _ = std::fs::remove_file(&editor);
}

/// An OpenSSH server on a free loopback port with its own host key, letting in `root` with one
/// client key; stopped when dropped.
struct Sshd {
    child: std::process::Child,
    port: u16,
    dir: std::path::PathBuf,
}

impl Sshd {
    fn start(dir: &std::path::Path) -> Sshd {
        std::fs::create_dir_all(dir).expect("sshd dir");
        for key in ["host_key", "client_key"] {
            let out = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(dir.join(key))
                .output()
                .expect("ssh-keygen");
            assert!(out.status.success(), "ssh-keygen: {out:?}");
        }
        std::fs::copy(dir.join("client_key.pub"), dir.join("authorized_keys"))
            .expect("authorized_keys");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nAuthorizedKeysFile {d}/authorized_keys\nPidFile {d}/sshd.pid\nPermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nStrictModes no\nUsePAM no\n",
            d = dir.display()
        );
        std::fs::write(dir.join("sshd_config"), config).expect("sshd_config");
        let _ = std::fs::create_dir_all("/run/sshd");
        let log = std::fs::File::create(dir.join("sshd.log")).expect("sshd log");
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(dir.join("sshd_config"))
            .stderr(log)
            .spawn()
            .expect("/usr/sbin/sshd (deploy/local/sshd installs it)");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "sshd did not listen on {port}: {}",
                std::fs::read_to_string(dir.join("sshd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Sshd {
            child,
            port,
            dir: dir.to_path_buf(),
        }
    }

    /// A `known_hosts` line for this server, as `ssh-keyscan` would print it.
    fn known_hosts(&self) -> String {
        let public = std::fs::read_to_string(self.dir.join("host_key.pub")).expect("host key");
        let mut parts = public.split_whitespace();
        let (kind, key) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        format!("[127.0.0.1]:{} {kind} {key}\n", self.port)
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn a_repository_over_ssh_with_a_deploy_key_and_a_checked_host_key() {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "gitsync-ssh").await;
    let _sync = SyncProcess::start(&ns.name);
    let repo = GitRepo::new(&ns.name);
    let gitsyncs: Api<GitSync> = ns.api();
    let cms: Api<ConfigMap> = ns.api();
    let minute = Duration::from_secs(60);
    let dir = std::env::temp_dir().join(format!("graft-test-ssh-{}", ns.name));
    let _ = std::fs::remove_dir_all(&dir);
    let sshd = Sshd::start(&dir);
    let bare = dir.join("app.git");
    let c1 = repo.commit("over ssh: blue", &[("settings.yaml", settings("blue"))]);
    repo.git(&[
        "clone",
        "-q",
        "--bare",
        ".",
        bare.to_str().expect("utf-8 path"),
    ]);
    repo.git(&[
        "remote",
        "add",
        "origin",
        bare.to_str().expect("utf-8 path"),
    ]);

    // A second server's host key: what a man in the middle would present.
    let other = dir.join("other");
    std::fs::create_dir_all(&other).expect("other dir");
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(other.join("key"))
        .output()
        .expect("ssh-keygen");
    assert!(out.status.success());
    let other_public = std::fs::read_to_string(other.join("key.pub")).expect("other key");
    let wrong_hosts = format!(
        "[127.0.0.1]:{} {}\n",
        sshd.port,
        other_public
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let identity = std::fs::read_to_string(dir.join("client_key")).expect("client key");
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = ns.api();
    for (name, known_hosts) in [
        ("git-ssh", sshd.known_hosts()),
        ("git-ssh-mitm", wrong_hosts),
    ] {
        let secret = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
            "stringData": {"identity": identity, "known_hosts": known_hosts}
        }))
        .expect("Secret literal");
        secrets
            .create(&PostParams::default(), &secret)
            .await
            .expect("create Secret");
    }
    let url = format!("ssh://root@127.0.0.1:{}{}", sshd.port, bare.display());
    let gs: GitSync = serde_json::from_value(json!({
        "apiVersion": "graft.dev/v1alpha1", "kind": "GitSync",
        "metadata": {"name": "app"},
        "spec": {"url": url, "ref": {"branch": "main"}, "path": "deploy", "interval": "2s",
                 "secretRef": {"name": "git-ssh"}}
    }))
    .expect("GitSync literal");
    gitsyncs
        .create(&PostParams::default(), &gs)
        .await
        .expect("create GitSync");
    wait_for(
        &gitsyncs,
        "app",
        "the commit fetched over ssh Healthy",
        minute,
        |g| phase_is(g, &c1, CommitPhase::Healthy),
    )
    .await;
    assert_eq!(mode_of(&cms).await.as_deref(), Some("blue"));

    // The server presents a host key the Secret does not trust: nothing is fetched.
    gitsyncs
        .patch(
            "app",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"spec": {"secretRef": {"name": "git-ssh-mitm"}}})),
        )
        .await
        .expect("switch secret");
    let g = wait_for(
        &gitsyncs,
        "app",
        "Ready=False for an untrusted host key",
        minute,
        |g| {
            ready(g).is_some_and(|(s, r, m)| {
                s == "False" && r == "FetchFailed" && m.to_lowercase().contains("host key")
            })
        },
    )
    .await;
    let (_, _, message) = ready(&g).expect("Ready");
    assert!(
        !message.contains("PRIVATE KEY"),
        "no key in status: {message}"
    );
    // A new commit stays out of reach while the host key is untrusted.
    repo.commit("over ssh: red", &[("settings.yaml", settings("red"))]);
    repo.git(&["push", "-q", "origin", "main"]);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(
        mode_of(&cms).await.as_deref(),
        Some("blue"),
        "nothing fetched"
    );
    let g = gitsyncs.get("app").await.expect("GitSync");
    assert_eq!(
        g.status
            .as_ref()
            .and_then(|s| s.last_applied_commit.as_deref()),
        Some(c1.as_str())
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn an_advanced_statefulset_rollout_is_recorded_per_commit_and_healthy_once_complete() {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "gitsync-asts").await;
    let _controllers = GraftControllers::start(&ns.name);
    let _sync = SyncProcess::start(&ns.name);
    let repo = GitRepo::new(&ns.name);
    let gitsyncs: Api<GitSync> = ns.api();
    let sets: Api<StatefulSet> = ns.api();
    let pod_api: Api<Pod> = ns.api();
    let minute = Duration::from_secs(60);
    let db_pods = || async {
        pod_api
            .list(&ListParams::default().labels("app=db"))
            .await
            .expect("list pods")
            .items
    };

    let c1 = repo.commit("first: db v1", &[("db.yaml", advanced_statefulset("v1"))]);
    let gs: GitSync = serde_json::from_value(json!({
        "apiVersion": "graft.dev/v1alpha1", "kind": "GitSync",
        "metadata": {"name": "app"},
        "spec": {"url": repo.url(), "ref": {"branch": "main"},
                 "path": "deploy", "interval": "2s", "prune": true,
                 "prePull": {"mode": "Off"}}
    }))
    .expect("GitSync literal");
    gitsyncs
        .create(&PostParams::default(), &gs)
        .await
        .expect("create GitSync");
    wait_for(
        &gitsyncs,
        "app",
        "the first commit Healthy",
        3 * minute,
        |g| phase_is(g, &c1, CommitPhase::Healthy),
    )
    .await;
    let old = sets.get("db").await.expect("db");
    assert!(
        rollout_complete(&old),
        "c1 Healthy with the set complete: {:?}",
        old.status
    );
    let before: std::collections::BTreeMap<String, String> = db_pods()
        .await
        .into_iter()
        .map(|p| {
            (
                p.metadata.name.unwrap_or_default(),
                p.metadata.uid.unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(before.len(), DB_REPLICAS as usize, "{before:?}");

    // The image changes in Git. While it rolls out, the GitSync is read first and the set right
    // after: whenever the commit reads Healthy, the set's own status must already say done.
    let watcher = PodWatcher::start(&client, &ns.name, "app=db");
    let c2 = repo.commit("second: db v2", &[("db.yaml", advanced_statefulset("v2"))]);
    let start = std::time::Instant::now();
    let mut seen: Vec<(CommitPhase, Option<WorkloadProgress>, Option<String>)> = Vec::new();
    let gs = loop {
        let g = gitsyncs.get("app").await.expect("GitSync");
        let set = sets.get("db").await.expect("db");
        if let Some(e) = entry(&g, &c2) {
            let db = e
                .workloads
                .iter()
                .flatten()
                .find(|w| w.kind == "StatefulSet" && w.name == "db")
                .cloned();
            let now = (e.phase, db, e.status_message.clone());
            if seen.last() != Some(&now) {
                seen.push(now);
            }
            if e.phase == CommitPhase::Healthy {
                assert!(
                    rollout_complete(&set)
                        && set.status.as_ref().and_then(|s| s.update_revision.as_ref())
                            != old.status.as_ref().and_then(|s| s.update_revision.as_ref()),
                    "the commit reads Healthy before the Advanced StatefulSet completed its \
                     rollout to the new revision: {:?}\nrecords: {seen:#?}",
                    set.status
                );
                break g;
            }
            assert_ne!(e.phase, CommitPhase::Failed, "{e:?}");
        }
        assert!(
            start.elapsed() < 3 * minute,
            "timed out waiting for the second commit Healthy; records: {seen:#?}\nset: {:?}",
            set.status
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    println!("the second commit's records: {seen:#?}");

    // Both commits in the history, newest first, each with the set's entry at 3 of 3.
    let history = gs
        .status
        .clone()
        .and_then(|s| s.history)
        .unwrap_or_default();
    let shas: Vec<&str> = history.iter().map(|h| h.sha.as_str()).collect();
    assert_eq!(
        shas.get(..2),
        Some(&[c2.as_str(), c1.as_str()][..]),
        "{shas:?}"
    );
    for sha in [&c1, &c2] {
        let e = entry(&gs, sha).expect("entry");
        assert_eq!(e.phase, CommitPhase::Healthy, "{e:?}");
        assert_eq!(
            e.workloads.as_deref(),
            Some(&[db_progress(&ns.name, DB_REPLICAS)][..]),
            "{sha}: the set's rollout is recorded"
        );
    }
    let e = entry(&gs, &c2).expect("entry");
    assert_eq!(e.message.as_deref(), Some("second: db v2"));
    let t = &e.phase_times;
    let (rolling_out, healthy) = (
        t.rolling_out.clone().expect("rolling-out time").0,
        t.healthy.clone().expect("healthy time").0,
    );
    assert!(rolling_out <= healthy, "phase times in order: {t:?}");
    // The progress shows while it rolls out: fewer than 3 updated pods at first, never going
    // back once counted (after the controller has seen the new spec).
    let rolling: Vec<i32> = seen
        .iter()
        .filter(|(p, _, _)| *p == CommitPhase::RollingOut)
        .filter_map(|(_, w, _)| w.as_ref().map(|w| w.updated))
        .collect();
    let first_short = rolling.iter().position(|u| *u < DB_REPLICAS);
    assert!(
        first_short.is_some(),
        "the rollout's progress was recorded on the way: {seen:#?}"
    );
    let counted = &rolling[first_short.unwrap_or_default()..];
    assert!(
        counted.windows(2).all(|w| w[0] <= w[1]),
        "updated pods never go back: {seen:#?}"
    );

    // Every pod updated in place: the same pods, never deleted, now running v2.
    let after = db_pods().await;
    let uids: std::collections::BTreeMap<String, String> = after
        .iter()
        .map(|p| {
            (
                p.metadata.name.clone().unwrap_or_default(),
                p.metadata.uid.clone().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(uids, before, "in place: the same pods");
    for p in &after {
        let app = p
            .spec
            .as_ref()
            .and_then(|s| s.containers.first())
            .and_then(|c| c.image.clone());
        assert_eq!(app, Some(image("app:v2")), "{:?}", p.metadata.name);
    }
    let history = watcher.history();
    assert!(
        history.iter().all(|s| !s.deleting && !s.deleted),
        "no pod deleted during the rollout: {history:#?}"
    );
}

/// A BroadcastJob `check` running `script` once on every node (the one real node here).
fn broadcastjob(script: &str, extra_meta: &str) -> String {
    format!(
        "apiVersion: apps.kruise.io/v1alpha1\nkind: BroadcastJob\nmetadata:\n  name: check\n{extra_meta}spec:\n  completionPolicy: {{type: Always}}\n  template:\n    spec:\n      restartPolicy: Never\n      terminationGracePeriodSeconds: 1\n      containers:\n      - name: check\n        image: {}\n        imagePullPolicy: IfNotPresent\n        command: [sh, -c, {script:?}]\n",
        image("app:v1")
    )
}

fn gitsync_for(repo: &GitRepo) -> GitSync {
    serde_json::from_value(json!({
        "apiVersion": "graft.dev/v1alpha1", "kind": "GitSync",
        "metadata": {"name": "app"},
        "spec": {"url": repo.url(), "ref": {"branch": "main"},
                 "path": "deploy", "interval": "2s", "prune": true,
                 "prePull": {"mode": "Off"}}
    }))
    .expect("GitSync literal")
}

/// The BroadcastJob's `(uid, phase)`, if it exists.
async fn job_state(ns: &TestNamespace) -> Option<(String, String)> {
    let api: Api<graft_api::apps::v1beta1::BroadcastJob> = ns.api();
    let job = api.get_opt("check").await.expect("read the job")?;
    Some((
        job.metadata.uid.clone().unwrap_or_default(),
        job.status
            .and_then(|s| s.phase)
            .map(|p| format!("{p:?}"))
            .unwrap_or_default(),
    ))
}

#[tokio::test]
async fn a_commit_adding_a_broadcastjob_is_healthy_once_it_completed_and_a_change_runs_it_again() {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "gitsync-bcj").await;
    let _controllers = GraftControllers::start(&ns.name);
    let _sync = SyncProcess::start(&ns.name);
    let repo = GitRepo::new(&ns.name);
    let gitsyncs: Api<GitSync> = ns.api();
    let minute = Duration::from_secs(60);

    let c1 = repo.commit(
        "add the node check",
        &[("check.yaml", broadcastjob("sleep 3; echo ok", ""))],
    );
    gitsyncs
        .create(&PostParams::default(), &gitsync_for(&repo))
        .await
        .expect("create GitSync");
    // Read the GitSync first and the job right after: whenever the commit reads Healthy, the
    // job has completed.
    let start = std::time::Instant::now();
    let mut phases: Vec<CommitPhase> = Vec::new();
    loop {
        let g = gitsyncs.get("app").await.expect("GitSync");
        let job = job_state(&ns).await;
        if let Some(e) = entry(&g, &c1) {
            if phases.last() != Some(&e.phase) {
                phases.push(e.phase);
            }
            if e.phase == CommitPhase::Healthy {
                assert_eq!(
                    job.as_ref().map(|j| j.1.as_str()),
                    Some("Completed"),
                    "the commit reads Healthy before its BroadcastJob completed"
                );
                let w = e
                    .workloads
                    .iter()
                    .flatten()
                    .find(|w| w.kind == "BroadcastJob")
                    .cloned();
                assert_eq!(
                    w.map(|w| (w.replicas, w.available, w.failed)),
                    Some((1, 1, 0)),
                    "the job's progress (desired, succeeded, failed) is recorded: {e:?}"
                );
                break;
            }
            assert_ne!(e.phase, CommitPhase::Failed, "{e:?}");
        }
        assert!(
            start.elapsed() < 2 * minute,
            "the commit never became Healthy; phases {phases:?}, job {job:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        phases.contains(&CommitPhase::RollingOut),
        "the commit waited for the job: {phases:?}"
    );
    let (first_uid, _) = job_state(&ns).await.expect("the job");

    // A changed definition replaces the job: a new object runs to completion.
    let c2 = repo.commit(
        "change the check",
        &[("check.yaml", broadcastjob("sleep 1; echo changed", ""))],
    );
    wait_for(
        &gitsyncs,
        "app",
        "the second commit Healthy",
        2 * minute,
        |g| phase_is(g, &c2, CommitPhase::Healthy),
    )
    .await;
    let (second_uid, phase) = job_state(&ns).await.expect("the job");
    assert_ne!(second_uid, first_uid, "the changed job was replaced");
    assert_eq!(phase, "Completed");
    let notes = event_notes(&ns, "GitSync", "app", "Replaced").await;
    assert!(
        notes
            .iter()
            .any(|n| n.contains("BroadcastJob.apps.kruise.io")),
        "a Replaced event names the job: {notes:?}"
    );

    // Opted out: the change is patched into the same object.
    let c3 = repo.commit(
        "change it again, in place",
        &[(
            "check.yaml",
            broadcastjob(
                "echo patched",
                "  annotations: {graft.dev/replace-on-change: \"false\"}\n",
            ),
        )],
    );
    wait_for(
        &gitsyncs,
        "app",
        "the third commit applied",
        2 * minute,
        |g| {
            entry(g, &c3)
                .is_some_and(|e| matches!(e.phase, CommitPhase::RollingOut | CommitPhase::Healthy))
        },
    )
    .await;
    let (third_uid, _) = job_state(&ns).await.expect("the job");
    assert_eq!(third_uid, second_uid, "opted out: not replaced");
}

#[tokio::test]
async fn a_later_sync_wave_is_applied_only_once_the_earlier_rollout_is_healthy() {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "gitsync-waves").await;
    let _controllers = GraftControllers::start(&ns.name);
    let _sync = SyncProcess::start(&ns.name);
    let repo = GitRepo::new(&ns.name);
    let gitsyncs: Api<GitSync> = ns.api();
    let sets: Api<graft_api::apps::v1alpha1::CloneSet> = ns.api();
    let minute = Duration::from_secs(60);

    // The CloneSet's pods need a few seconds to become ready (a readiness delay), so a job
    // applied with it would be seen before the CloneSet is available.
    let web = cloneset("v1").replace(
        "        imagePullPolicy: IfNotPresent\n",
        "        imagePullPolicy: IfNotPresent\n        readinessProbe: {httpGet: {path: /readyz, port: 8080}, initialDelaySeconds: 4, periodSeconds: 1}\n",
    );
    let c1 = repo.commit(
        "web, then a post-rollout check",
        &[
            ("web.yaml", web),
            (
                "check.yaml",
                broadcastjob(
                    "echo after",
                    "  annotations: {graft.dev/sync-wave: \"1\"}\n",
                ),
            ),
        ],
    );
    gitsyncs
        .create(&PostParams::default(), &gitsync_for(&repo))
        .await
        .expect("create GitSync");
    let start = std::time::Instant::now();
    let mut saw_hold = false;
    loop {
        let set = sets.get_opt("web").await.expect("read web");
        let job = job_state(&ns).await;
        let g = gitsyncs.get("app").await.expect("GitSync");
        if job.is_some() {
            let set = set.expect("the job exists before the CloneSet");
            let st = set.status.clone().unwrap_or_default();
            assert!(
                st.observed_generation == set.metadata.generation.unwrap_or(0)
                    && st.updated_available_replicas == 2,
                "the wave-1 job was applied before the wave-0 CloneSet was healthy: {st:?}"
            );
            break;
        }
        if let Some(e) = entry(&g, &c1) {
            assert_ne!(
                e.phase,
                CommitPhase::Healthy,
                "Healthy with wave 1 not applied"
            );
            saw_hold |= e
                .status_message
                .as_deref()
                .is_some_and(|m| m.contains("sync wave 1 waits for wave 0"));
        }
        assert!(start.elapsed() < 2 * minute, "the job was never applied");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(saw_hold, "the history said what the commit waited for");
    wait_for(&gitsyncs, "app", "the commit Healthy", 2 * minute, |g| {
        phase_is(g, &c1, CommitPhase::Healthy)
    })
    .await;
    let g = gitsyncs.get("app").await.expect("GitSync");
    let kinds: Vec<String> = entry(&g, &c1)
        .and_then(|e| e.workloads.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|w| w.kind)
        .collect();
    assert_eq!(
        kinds,
        ["CloneSet", "BroadcastJob"],
        "both waves are recorded"
    );
    assert_eq!(
        job_state(&ns).await.map(|j| j.1).as_deref(),
        Some("Completed")
    );
}

/// A commit holding a CloneSet OpenKruise refuses (maxUnavailable and maxSurge both 0) fails at
/// validation, refused by graft's webhook in the server-side dry-run, and nothing of it is
/// applied: not even the ConfigMap next to it.
#[tokio::test]
async fn a_commit_with_a_cloneset_kruise_refuses_fails_at_validation_with_nothing_applied() {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "gitsync-invalid").await;
    let _controllers =
        GraftControllers::start_admitting(&ns.name, support::free_host_port(), "gitsync-invalid");
    let _sync = SyncProcess::start(&ns.name);
    let repo = GitRepo::new(&ns.name);
    let gitsyncs: Api<GitSync> = ns.api();
    let cms: Api<ConfigMap> = ns.api();
    let minute = Duration::from_secs(60);
    // Wait until graft's webhook answers: an invalid CloneSet is refused at a dry-run create.
    let clonesets: Api<graft_api::apps::v1alpha1::CloneSet> = ns.api();
    let invalid = cloneset("v1").replace("maxUnavailable: 1}", "maxUnavailable: 0, maxSurge: 0}");
    let probe: graft_api::apps::v1alpha1::CloneSet = serde_json::from_value(json!({
        "apiVersion": "apps.kruise.io/v1alpha1", "kind": "CloneSet",
        "metadata": {"name": "probe"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "probe"}},
                 "updateStrategy": {"maxUnavailable": 0, "maxSurge": 0},
                 "template": {"metadata": {"labels": {"app": "probe"}},
                              "spec": {"containers": [{"name": "app", "image": image("app:v1")}]}}}
    }))
    .expect("CloneSet literal");
    eventually(
        "graft's webhook refusing an invalid CloneSet",
        minute,
        || {
            let (clonesets, probe) = (clonesets.clone(), probe.clone());
            async move {
                let dry = PostParams {
                    dry_run: true,
                    ..Default::default()
                };
                match clonesets.create(&dry, &probe).await {
                    Err(kube::Error::Api(e)) if e.code == 422 => Ok(()),
                    other => Err(format!("{other:?}")),
                }
            }
        },
    )
    .await;

    let c1 = repo.commit(
        "invalid CloneSet",
        &[
            ("settings.yaml", configmap()),
            ("web.yaml", invalid.clone()),
        ],
    );
    let gs: GitSync = serde_json::from_value(json!({
        "apiVersion": "graft.dev/v1alpha1", "kind": "GitSync",
        "metadata": {"name": "app"},
        "spec": {"url": repo.url(), "ref": {"branch": "main"},
                 "path": "deploy", "interval": "2s", "prune": true,
                 "prePull": {"mode": "Off"}}
    }))
    .expect("GitSync literal");
    gitsyncs
        .create(&PostParams::default(), &gs)
        .await
        .expect("create GitSync");
    let gs = wait_for(&gitsyncs, "app", "the commit Failed", 2 * minute, |g| {
        phase_is(g, &c1, CommitPhase::Failed)
    })
    .await;
    let e = entry(&gs, &c1).expect("entry");
    assert_eq!(e.reason.as_deref(), Some("ValidationFailed"), "{e:?}");
    assert!(
        e.status_message
            .as_deref()
            .is_some_and(|m| m.contains("web.yaml")
                && m.contains("maxUnavailable and maxSurge should not both be less than 1")),
        "the failure names the file and kruise's reason: {e:?}"
    );
    assert!(
        cms.get_opt("settings").await.expect("get").is_none(),
        "nothing of the commit applied"
    );
    assert!(
        clonesets.get_opt("web").await.expect("get").is_none(),
        "the CloneSet was not created"
    );
}
