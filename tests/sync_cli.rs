//! `graft sync` against the real cluster and real Git repositories: apply, change, prune, and bad
//! commits that apply nothing and keep the last good commit.
#![cfg(feature = "cluster-tests")]

mod support;

use std::path::Path;
use std::process::{Command, Output};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use support::{GitRepo, TestNamespace, client, image};

fn graft_sync(repo_url: &str, ns: &str, cache: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_graft"))
        .args([
            "sync", "--once", "--prune", "--path", "deploy", "--name", "app", "--repo", repo_url,
        ])
        .args(["--namespace", ns])
        .arg("--cache-dir")
        .arg(cache)
        .output()
        .expect("run graft sync")
}

fn ok(out: &Output) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "graft sync failed:\n{text}");
    text
}

fn failed(out: &Output) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !out.status.success(),
        "graft sync should have failed:\n{text}"
    );
    text
}

fn configmap(name: &str, value: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  mode: \"{value}\"\n"
    )
}

fn deployment(replicas: i32) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: {replicas}\n  selector:\n    matchLabels: {{app: web}}\n  template:\n    metadata:\n      labels: {{app: web}}\n    spec:\n      containers:\n      - name: app\n        image: {}\n",
        image("app:v1")
    )
}

/// A commit that must be refused: what is wrong, its files, the file the error must name.
type BadCommit = (&'static str, Vec<(&'static str, String)>, &'static str);

async fn state_commit(ns: &TestNamespace) -> Option<String> {
    let cms: Api<ConfigMap> = ns.api();
    cms.get_opt("graft-sync-app")
        .await
        .ok()
        .flatten()
        .and_then(|c| c.data)
        .and_then(|d| d.get("commit").cloned())
}

#[tokio::test]
async fn sync_applies_changes_and_prunes_and_a_bad_commit_applies_nothing() {
    let client = client().await;
    let ns = TestNamespace::new(&client, "sync-cli").await;
    let repo = GitRepo::new(&ns.name);
    let cache = std::env::temp_dir().join(format!("graft-sync-cache-{}", ns.name));
    let cms: Api<ConfigMap> = ns.api();
    let deploys: Api<Deployment> = ns.api();

    repo.commit(
        "first",
        &[
            ("settings.yaml", &configmap("settings", "blue")),
            ("web.yaml", &deployment(1)),
            ("extra.yaml", &configmap("extra", "x")),
        ],
    );
    ok(&graft_sync(&repo.url(), &ns.name, &cache));
    let settings = cms.get("settings").await.expect("settings applied");
    assert_eq!(
        settings
            .metadata
            .labels
            .unwrap_or_default()
            .get("graft.dev/gitsync")
            .map(String::as_str),
        Some(format!("{}.app", ns.name).as_str()),
        "owner label"
    );
    assert!(cms.get_opt("extra").await.expect("get").is_some());
    assert_eq!(
        deploys
            .get("web")
            .await
            .expect("web")
            .spec
            .and_then(|s| s.replicas),
        Some(1)
    );
    let good = repo.git(&["rev-parse", "HEAD"]);
    assert_eq!(state_commit(&ns).await.as_deref(), Some(good.as_str()));

    // Second commit: a change and a removal. The same commit again changes nothing.
    repo.commit(
        "second",
        &[
            ("settings.yaml", &configmap("settings", "green")),
            ("web.yaml", &deployment(2)),
        ],
    );
    let text = ok(&graft_sync(&repo.url(), &ns.name, &cache));
    assert!(text.contains("1 pruned"), "{text}");
    assert!(
        cms.get_opt("extra").await.expect("get").is_none(),
        "extra was pruned"
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
    assert_eq!(
        deploys
            .get("web")
            .await
            .expect("web")
            .spec
            .and_then(|s| s.replicas),
        Some(2)
    );
    let text = ok(&graft_sync(&repo.url(), &ns.name, &cache));
    assert!(
        text.contains("0 created, 0 configured, 2 unchanged, 0 pruned"),
        "{text}"
    );
    let good = repo.git(&["rev-parse", "HEAD"]);

    // Bad commits: each fails naming the problem, applies nothing and keeps the last good commit.
    let bad_commits: [BadCommit; 3] = [
        (
            "truncated YAML",
            vec![("settings.yaml", configmap("settings", "red")), ("web.yaml", "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: [3\n".to_string())],
            "web.yaml",
        ),
        (
            "unknown kind",
            vec![("settings.yaml", configmap("settings", "red")), ("web.yaml", deployment(3)), ("odd.yaml", "apiVersion: example.com/v1\nkind: Gadget\nmetadata:\n  name: g\n".to_string())],
            "odd.yaml",
        ),
        (
            "wrong field type",
            vec![("settings.yaml", configmap("settings", "red")), ("web.yaml", deployment(3).replace("replicas: 3", "replicas: three"))],
            "web.yaml",
        ),
    ];
    for (what, files, culprit) in bad_commits {
        let files: Vec<(&str, &str)> = files.iter().map(|(p, c)| (*p, c.as_str())).collect();
        repo.commit(what, &files);
        let text = failed(&graft_sync(&repo.url(), &ns.name, &cache));
        assert!(
            text.contains(culprit),
            "{what}: the error names {culprit}:\n{text}"
        );
        assert_eq!(
            cms.get("settings")
                .await
                .expect("settings")
                .data
                .unwrap_or_default()
                .get("mode")
                .map(String::as_str),
            Some("green"),
            "{what}: nothing of the bad commit was applied"
        );
        assert_eq!(
            deploys
                .get("web")
                .await
                .expect("web")
                .spec
                .and_then(|s| s.replicas),
            Some(2),
            "{what}"
        );
        assert_eq!(
            state_commit(&ns).await.as_deref(),
            Some(good.as_str()),
            "{what}: last good commit kept"
        );
    }

    // A path that does not exist, and an unreachable remote.
    let out = Command::new(env!("CARGO_BIN_EXE_graft"))
        .args([
            "sync",
            "--once",
            "--path",
            "nowhere",
            "--name",
            "app",
            "--repo",
            &repo.url(),
            "--namespace",
            &ns.name,
        ])
        .arg("--cache-dir")
        .arg(&cache)
        .output()
        .expect("run graft sync");
    assert!(failed(&out).contains("nowhere"), "names the missing path");
    let out = graft_sync("git://127.0.0.1:1/nothing.git", &ns.name, &cache);
    let text = failed(&out);
    assert!(
        text.contains("127.0.0.1:1"),
        "names the unreachable remote: {text}"
    );
    let _ = std::fs::remove_dir_all(&cache);
}
