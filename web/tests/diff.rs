//! Manifest diffs read from a real Git cache, the way `graft sync` leaves it: a repository made
//! with the git CLI, fetched into the cache by the sync's own fetcher, then diffed.

use std::path::Path;
use std::process::Command;

use graft_sync::git::{Auth, FetchOptions, GitCache, Reference};
use graft_web::diff::from_git_cache;

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(["-c", "user.email=dev@graft.dev", "-c", "user.name=Dev"])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn commit(dir: &Path, message: &str, files: &[(&str, &str)]) -> String {
    let deploy = dir.join("deploy");
    let _ = std::fs::remove_dir_all(&deploy);
    std::fs::create_dir_all(&deploy).expect("deploy dir");
    for (p, c) in files {
        std::fs::write(deploy.join(p), c).expect("write");
    }
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "--allow-empty", "-m", message]);
    git(dir, &["rev-parse", "HEAD"])
}

#[test]
fn diffs_two_commits_from_the_sync_cache_and_says_when_there_is_no_cache() {
    let repo = tempfile::tempdir().expect("repo");
    let cache_dir = tempfile::tempdir().expect("cache");
    git(repo.path(), &["init", "-q", "-b", "main"]);
    let url = format!("file://{}", repo.path().display());
    let cm = |v: &str| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  mode: {v}\n"
        )
    };
    let c1 = commit(repo.path(), "one", &[("cm.yaml", &cm("blue"))]);
    let secret =
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\nstringData:\n  password: hunter2\n";
    let c2 = commit(
        repo.path(),
        "two",
        &[("cm.yaml", &cm("green")), ("secret.yaml", secret)],
    );

    // No cache for this repository yet: a note, and nothing created on disk.
    let d = from_git_cache(cache_dir.path(), &url, "deploy", Some(&c1), &c2);
    assert!(
        d.note
            .as_deref()
            .is_some_and(|n| n.contains("no copy of this repository")),
        "{d:?}"
    );
    assert_eq!(
        std::fs::read_dir(cache_dir.path()).expect("dir").count(),
        0,
        "the dashboard never creates a cache"
    );

    // The sync fetches; the dashboard reads.
    let cache = GitCache::new(cache_dir.path());
    cache
        .open(&url)
        .expect("open cache")
        .fetch(
            &Reference::Branch("main".into()),
            &Auth::default(),
            &FetchOptions::default(),
        )
        .expect("fetch");
    let d = from_git_cache(cache_dir.path(), &url, "deploy", Some(&c1), &c2);
    assert_eq!(d.note, None, "{d:?}");
    assert_eq!(d.from.as_deref(), Some(c1.as_str()));
    let changes: Vec<(&str, &str)> = d
        .objects
        .iter()
        .map(|o| (o.change.as_str(), o.id.as_str()))
        .collect();
    assert_eq!(changes.len(), 2, "{changes:?}");
    assert!(
        changes
            .iter()
            .any(|(c, id)| *c == "changed" && id.contains("ConfigMap"))
    );
    assert!(
        changes
            .iter()
            .any(|(c, id)| *c == "added" && id.contains("Secret"))
    );
    let text = serde_json::to_string(&d).expect("json");
    assert!(
        !text.contains("hunter2"),
        "Secret values never leave: {text}"
    );
    assert!(text.contains("(hidden)"));

    // Without a previous commit in the history, the first parent is used.
    let d = from_git_cache(cache_dir.path(), &url, "deploy", None, &c2);
    assert_eq!(d.from.as_deref(), Some(c1.as_str()));
    assert_eq!(d.objects.len(), 2);
    // The first commit has no parent: everything is added.
    let d = from_git_cache(cache_dir.path(), &url, "deploy", None, &c1);
    assert_eq!(d.from, None);
    assert_eq!(
        d.objects
            .iter()
            .map(|o| o.change.as_str())
            .collect::<Vec<_>>(),
        ["added"]
    );
}
