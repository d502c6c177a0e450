//! The rendered manifests of two commits of a GitSync, for the dashboard's diff: the sync's
//! side of the diff (the dashboard turns them into lines; it links no Git and no renderer).
//!
//! [`ManifestSource`] reads the sync's own cache first, read-only: it never creates, fetches
//! into or locks a repository there. When the commit is not in it (a standby replica, whose
//! sync never ran; a cache lost with its pod), and a fallback cache is configured, it fetches
//! the commit into that cache, which only it writes: one fetch at a time, bounded by the
//! sync's fetch timeout, with the GitSync's credentials Secret when it names one. It fetches
//! only commits the dashboard asks about, which are commits of the GitSync's history.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use graft_api::graft::gitsync::GitSync;
use kube::ResourceExt;

use crate::git::{Auth, FetchOptions, GitCache, ReadLimits, Reference, RepoUrl};
use crate::render::{Directory, RenderedObject, Renderer};

/// The rendered objects of a commit and of the commit it is compared against.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CommitPair {
    /// The commit compared against: the one asked for, else the new commit's first parent
    /// (none: the new commit has no parent, everything is new).
    pub from: Option<String>,
    /// The objects of `from` (empty when it is unreadable; `note` says why).
    pub old: Vec<RenderedObject>,
    /// The objects of the new commit.
    pub new: Vec<RenderedObject>,
    /// What was left out.
    pub note: Option<String>,
}

/// Why there is no pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Missing {
    /// This cache has no copy of the repository, or not the commit: fetching may help.
    NotCached(String),
    /// The repository or the commit cannot give a diff (bad URL, unreadable path, invalid
    /// manifests).
    Unusable(String),
}

impl Missing {
    /// The reason, as the dashboard shows it.
    pub fn message(&self) -> &str {
        match self {
            Missing::NotCached(m) | Missing::Unusable(m) => m,
        }
    }
}

/// Reads `new` and `old` (or `new`'s first parent) from the cache under `cache_root` and
/// renders their manifests under `path`. Blocking (libgit2). Never fetches and never creates a
/// cache.
pub fn read_cache(
    cache_root: &Path,
    url: &str,
    path: &str,
    old: Option<&str>,
    new: &str,
) -> Result<CommitPair, Missing> {
    let parsed =
        RepoUrl::parse(url).map_err(|e| Missing::Unusable(format!("repository URL: {e}")))?;
    let cache = GitCache::new(cache_root);
    if !cache.dir_for(&parsed).exists() {
        return Err(Missing::NotCached(format!(
            "no diff: the Git cache {} has no copy of this repository (run the dashboard where graft sync keeps its cache, --git-cache)",
            cache_root.display()
        )));
    }
    let repo = cache
        .open(url)
        .map_err(|e| Missing::Unusable(format!("no diff: {e}")))?;
    let has = |sha: &str| {
        git2::Oid::from_str(sha)
            .ok()
            .is_some_and(|oid| repo.repository().find_commit(oid).is_ok())
    };
    if !has(new) {
        return Err(Missing::NotCached(format!(
            "no diff: the Git cache {} does not hold commit {new}",
            cache_root.display()
        )));
    }
    let old = old.map(str::to_string).or_else(|| {
        repo.repository()
            .revparse_single(&format!("{new}^1"))
            .ok()
            .map(|o| o.id().to_string())
    });
    let read = |sha: &str| -> Result<Vec<RenderedObject>, String> {
        let files = repo
            .read_files(sha, path, &ReadLimits::default(), &|p| Directory.accepts(p))
            .map_err(|e| e.to_string())?;
        Directory.render(&files).map_err(|e| e.to_string())
    };
    let new_objects =
        read(new).map_err(|e| Missing::Unusable(format!("no diff: commit {new}: {e}")))?;
    let (old_objects, note) = match &old {
        Some(o) => match read(o) {
            Ok(objects) => (objects, None),
            Err(e) => (
                Vec::new(),
                Some(format!(
                    "previous commit {o} unreadable ({e}); showing everything as added"
                )),
            ),
        },
        None => (Vec::new(), None),
    };
    Ok(CommitPair {
        from: old,
        old: old_objects,
        new: new_objects,
        note,
    })
}

/// Fetches `new` (and `old`, when given and missing) into the cache under `cache_root`,
/// creating it. Blocking (libgit2).
pub fn fetch_commits(
    cache_root: &Path,
    url: &str,
    old: Option<&str>,
    new: &str,
    auth: &Auth,
    opts: &FetchOptions,
) -> Result<(), String> {
    let repo = GitCache::new(cache_root)
        .open(url)
        .map_err(|e| e.to_string())?;
    repo.fetch(&Reference::Commit(new.to_string()), auth, opts)
        .map_err(|e| e.to_string())?;
    if let Some(old) = old {
        // A previous commit that cannot be fetched shows as "unreadable" in the diff.
        let _ = repo.fetch(&Reference::Commit(old.to_string()), auth, opts);
    }
    Ok(())
}

/// Where the dashboard's diffs come from: the sync's cache, and a cache of its own to fetch
/// into when the sync's lacks a commit.
#[derive(Clone)]
pub struct ManifestSource {
    sync_cache: PathBuf,
    fallback: Option<Arc<Fallback>>,
}

struct Fallback {
    cache: PathBuf,
    client: kube::Client,
    fetch: FetchOptions,
    /// One fetch at a time: a page opened by many browsers fetches once.
    one_at_a_time: futures::lock::Mutex<()>,
}

impl std::fmt::Debug for ManifestSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManifestSource")
            .field("sync_cache", &self.sync_cache)
            .field("fallback", &self.fallback.as_ref().map(|b| &b.cache))
            .finish()
    }
}

impl ManifestSource {
    /// Reads the sync's cache under `sync_cache` only (`graft web`: a dashboard that may not
    /// read Secrets and fetches nothing).
    pub fn read_only(sync_cache: impl Into<PathBuf>) -> Self {
        Self {
            sync_cache: sync_cache.into(),
            fallback: None,
        }
    }

    /// Also fetches the commits the sync's cache lacks into `own_cache` (a directory only this
    /// source writes), reading the GitSync's credentials Secret with `client`.
    pub fn with_fetch(mut self, own_cache: impl Into<PathBuf>, client: kube::Client) -> Self {
        self.fallback = Some(Arc::new(Fallback {
            cache: own_cache.into(),
            client,
            fetch: FetchOptions::default(),
            one_at_a_time: futures::lock::Mutex::new(()),
        }));
        self
    }

    /// The rendered manifests of commit `new` of `gitsync` and of `old` (default: `new`'s
    /// first parent).
    pub async fn commits(
        &self,
        gitsync: &GitSync,
        old: Option<&str>,
        new: &str,
    ) -> Result<CommitPair, String> {
        let url = gitsync.spec.url.clone();
        let path = gitsync.spec.path.clone().unwrap_or_else(|| ".".into());
        let (old, new) = (old.map(str::to_string), new.to_string());
        let read = |root: PathBuf| {
            let (url, path, old, new) = (url.clone(), path.clone(), old.clone(), new.clone());
            async move {
                tokio::task::spawn_blocking(move || {
                    read_cache(&root, &url, &path, old.as_deref(), &new)
                })
                .await
                .unwrap_or_else(|e| Err(Missing::Unusable(format!("no diff: {e}"))))
            }
        };
        let first = read(self.sync_cache.clone()).await;
        let (Err(Missing::NotCached(why)), Some(fb)) = (&first, &self.fallback) else {
            return first.map_err(|m| m.message().to_string());
        };
        let _one = fb.one_at_a_time.lock().await;
        // Another request may have fetched it while this one waited.
        if let Ok(pair) = read(fb.cache.clone()).await {
            return Ok(pair);
        }
        let ns = gitsync.namespace().unwrap_or_default();
        let auth = crate::gitsync::read_auth(&fb.client, &ns, &gitsync.spec)
            .await
            .map_err(|e| format!("{why}; fetching it: {e}"))?;
        let (root, opts) = (fb.cache.clone(), fb.fetch.clone());
        let (u, o, n) = (url.clone(), old.clone(), new.clone());
        tokio::task::spawn_blocking(move || {
            fetch_commits(&root, &u, o.as_deref(), &n, &auth, &opts)
        })
        .await
        .unwrap_or_else(|e| Err(e.to_string()))
        .map_err(|e| format!("no diff: fetching commit {new}: {e}"))?;
        read(fb.cache.clone())
            .await
            .map_err(|m| m.message().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

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

    fn cm(v: &str) -> String {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  mode: {v}\n"
        )
    }

    const SECRET: &str =
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\nstringData:\n  password: hunter2\n";

    /// A repository with two commits: c1 (a ConfigMap), c2 (the ConfigMap changed, a Secret).
    fn repo() -> (tempfile::TempDir, String, String, String) {
        let repo = tempfile::tempdir().expect("repo");
        git(repo.path(), &["init", "-q", "-b", "main"]);
        let url = format!("file://{}", repo.path().display());
        let c1 = commit(repo.path(), "one", &[("cm.yaml", &cm("blue"))]);
        let c2 = commit(
            repo.path(),
            "two",
            &[("cm.yaml", &cm("green")), ("secret.yaml", SECRET)],
        );
        (repo, url, c1, c2)
    }

    /// What the sync does for a public repository.
    fn fetch_anonymously(cache: &Path, url: &str, sha: &str) {
        let opts = FetchOptions::default();
        fetch_commits(cache, url, None, sha, &Auth::default(), &opts).expect("fetch");
    }

    fn kinds(objects: &[RenderedObject]) -> Vec<String> {
        objects.iter().map(|o| o.reference.kind.clone()).collect()
    }

    #[test]
    fn reads_two_commits_from_the_sync_cache_and_never_creates_one() {
        let (_repo, url, c1, c2) = repo();
        let cache_dir = tempfile::tempdir().expect("cache");

        // No cache for this repository yet: a note, and nothing created on disk.
        let missing = read_cache(cache_dir.path(), &url, "deploy", Some(&c1), &c2).unwrap_err();
        assert!(
            matches!(&missing, Missing::NotCached(n) if n.contains("no copy of this repository")),
            "{missing:?}"
        );
        assert_eq!(
            std::fs::read_dir(cache_dir.path()).expect("dir").count(),
            0,
            "reading never creates a cache"
        );

        // The sync fetches; the diff reads.
        fetch_anonymously(cache_dir.path(), &url, &c2);
        let p = read_cache(cache_dir.path(), &url, "deploy", Some(&c1), &c2).expect("pair");
        assert_eq!(p.note, None, "{p:?}");
        assert_eq!(p.from.as_deref(), Some(c1.as_str()));
        assert_eq!(kinds(&p.old), ["ConfigMap"]);
        assert_eq!(kinds(&p.new), ["ConfigMap", "Secret"]);
        assert_eq!(p.new[0].location.file, "deploy/cm.yaml");

        // Without a previous commit in the history, the first parent is used.
        let p = read_cache(cache_dir.path(), &url, "deploy", None, &c2).expect("pair");
        assert_eq!(p.from.as_deref(), Some(c1.as_str()));
        assert_eq!(p.old.len(), 1);
        // The first commit has no parent: everything is new.
        let p = read_cache(cache_dir.path(), &url, "deploy", None, &c1).expect("pair");
        assert_eq!(p.from, None);
        assert!(p.old.is_empty());
        assert_eq!(kinds(&p.new), ["ConfigMap"]);

        // A commit the cache does not hold may be fetched; a bad path may not.
        let unknown = "0123456789012345678901234567890123456789";
        assert!(matches!(
            read_cache(cache_dir.path(), &url, "deploy", None, unknown),
            Err(Missing::NotCached(_))
        ));
        assert!(matches!(
            read_cache(cache_dir.path(), &url, "nowhere", None, &c2),
            Err(Missing::Unusable(n)) if n.contains(&c2)
        ));
    }

    #[test]
    fn a_previous_commit_that_cannot_be_read_shows_everything_as_added() {
        let (repo, url, c1, _) = repo();
        let c2 = commit(repo.path(), "bad", &[("cm.yaml", "kind: [\n")]);
        let c3 = commit(repo.path(), "fixed", &[("cm.yaml", &cm("red"))]);
        let cache_dir = tempfile::tempdir().expect("cache");
        fetch_anonymously(cache_dir.path(), &url, &c3);
        let p = read_cache(cache_dir.path(), &url, "deploy", Some(&c2), &c3).expect("pair");
        assert!(p.old.is_empty());
        assert!(
            p.note
                .as_deref()
                .is_some_and(|n| n.contains("unreadable") && n.contains(&c2)),
            "{p:?}"
        );
        let p = read_cache(cache_dir.path(), &url, "deploy", Some(&c1), &c3).expect("pair");
        assert_eq!(p.note, None);
    }

    /// The standby replica: its sync never ran, so the sync's cache is empty; the source
    /// fetches the commits into its own cache and reads them there, leaving the sync's alone.
    #[tokio::test]
    async fn a_replica_that_is_not_syncing_fetches_into_its_own_cache() {
        let (_repo, url, c1, c2) = repo();
        let sync_cache = tempfile::tempdir().expect("sync cache");
        let own = tempfile::tempdir().expect("own cache");
        let gitsync = GitSync::new(
            "app",
            graft_api::graft::gitsync::GitSyncSpec {
                url: url.clone(),
                path: Some("deploy".into()),
                ..Default::default()
            },
        );

        // Read-only: the note says the cache lacks the repository.
        let ro = ManifestSource::read_only(sync_cache.path());
        let e = ro.commits(&gitsync, None, &c2).await.unwrap_err();
        assert!(e.contains("no copy of this repository"), "{e}");

        // With a fallback cache (no Secret named: the client is never used).
        let config = kube::Config::new("http://127.0.0.1:1".parse().expect("uri"));
        let client = kube::Client::try_from(config).expect("client");
        let source = ManifestSource::read_only(sync_cache.path()).with_fetch(own.path(), client);
        let p = source.commits(&gitsync, None, &c2).await.expect("pair");
        assert_eq!(p.from.as_deref(), Some(c1.as_str()));
        assert_eq!(kinds(&p.new), ["ConfigMap", "Secret"]);
        assert_eq!(
            std::fs::read_dir(sync_cache.path()).expect("dir").count(),
            0,
            "the sync's cache is never written"
        );
        assert_eq!(std::fs::read_dir(own.path()).expect("dir").count(), 1);
        // Asked again: read from its own cache, no fetch (the origin is gone).
        drop(_repo);
        let p = source
            .commits(&gitsync, Some(&c1), &c2)
            .await
            .expect("cached");
        assert_eq!(kinds(&p.old), ["ConfigMap"]);
    }
}
