//! Fetch and read tests against real repositories made with git2 in temporary directories.

use std::collections::BTreeMap;
use std::path::Path;

use git2::{Oid, Repository, Signature, Time};
use pretty_assertions::assert_eq;

use super::*;

/// A source repository with a `main` branch, written without a working tree.
struct Source {
    dir: tempfile::TempDir,
    repo: Repository,
}

impl Source {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(dir.path()).unwrap();
        repo.set_head("refs/heads/main").unwrap();
        Self { dir, repo }
    }

    fn url(&self) -> String {
        format!("file://{}", self.dir.path().display())
    }

    /// Commits `files` (path → content; the whole tree) on top of `parent` and moves `main`.
    fn commit(&self, parent: Option<Oid>, files: &[(&str, &[u8])], message: &str) -> Oid {
        let tree = self.tree(files);
        let sig = Signature::new(
            "Ada Lovelace",
            "ada@example.com",
            &Time::new(1_700_000_000, 60),
        )
        .unwrap();
        let parents: Vec<git2::Commit<'_>> = parent
            .map(|p| self.repo.find_commit(p).unwrap())
            .into_iter()
            .collect();
        let refs: Vec<&git2::Commit<'_>> = parents.iter().collect();
        let tree = self.repo.find_tree(tree).unwrap();
        let oid = self
            .repo
            .commit(None, &sig, &sig, message, &tree, &refs)
            .unwrap();
        self.repo
            .reference("refs/heads/main", oid, true, "test")
            .unwrap();
        oid
    }

    fn tree(&self, files: &[(&str, &[u8])]) -> Oid {
        // Group by first path component, recursively.
        let mut blobs: BTreeMap<&str, &[u8]> = BTreeMap::new();
        let mut dirs: BTreeMap<&str, Vec<(&str, &[u8])>> = BTreeMap::new();
        for (path, content) in files {
            match path.split_once('/') {
                Some((d, rest)) => dirs.entry(d).or_default().push((rest, content)),
                None => {
                    blobs.insert(path, content);
                }
            }
        }
        let mut tb = self.repo.treebuilder(None).unwrap();
        for (name, content) in blobs {
            let oid = self.repo.blob(content).unwrap();
            tb.insert(name, oid, 0o100644).unwrap();
        }
        for (name, entries) in dirs {
            let oid = self.tree(&entries);
            tb.insert(name, oid, 0o040000).unwrap();
        }
        tb.write().unwrap()
    }
}

fn new_cache() -> (tempfile::TempDir, GitCache) {
    let dir = tempfile::tempdir().unwrap();
    let cache = GitCache::new(dir.path().join("cache"));
    (dir, cache)
}

fn main_ref() -> Reference {
    Reference::Branch("main".into())
}

fn all(_: &str) -> bool {
    true
}

#[test]
fn fetch_skips_the_download_when_the_tip_is_unchanged() {
    let src = Source::new();
    let c1 = src.commit(None, &[("deploy/a.yaml", b"a: 1\n")], "first");
    let (_d, cache) = new_cache();
    let repo = cache.open(&src.url()).unwrap();
    let auth = Auth::default();
    let opts = FetchOptions::default();

    let f = repo.fetch(&main_ref(), &auth, &opts).unwrap();
    assert_eq!(
        f,
        Fetched {
            commit: c1.to_string(),
            downloaded: true
        }
    );
    let f = repo.fetch(&main_ref(), &auth, &opts).unwrap();
    assert_eq!(
        f,
        Fetched {
            commit: c1.to_string(),
            downloaded: false
        }
    );

    // A reopened cache (a restart) still has the commit.
    let repo = cache.open(&src.url()).unwrap();
    assert!(!repo.fetch(&main_ref(), &auth, &opts).unwrap().downloaded);

    let c2 = src.commit(Some(c1), &[("deploy/a.yaml", b"a: 2\n")], "second");
    let f = repo.fetch(&main_ref(), &auth, &opts).unwrap();
    assert_eq!(
        f,
        Fetched {
            commit: c2.to_string(),
            downloaded: true
        }
    );
    assert_eq!(
        repo.history(&c1.to_string(), &c2.to_string()).unwrap(),
        History::FastForward
    );
    assert_eq!(
        repo.history(&c2.to_string(), &c2.to_string()).unwrap(),
        History::Same
    );
    assert_eq!(
        repo.history(&c2.to_string(), &c1.to_string()).unwrap(),
        History::Behind
    );
}

#[test]
fn default_branch_tags_commits_and_local_paths() {
    let src = Source::new();
    let c1 = src.commit(None, &[("a.yaml", b"a: 1\n")], "first");
    let sig = Signature::now("t", "t@example.com").unwrap();
    let obj = src.repo.find_object(c1, None).unwrap();
    src.repo
        .tag("v1-annotated", &obj, &sig, "release", false)
        .unwrap();
    src.repo.tag_lightweight("v1-light", &obj, false).unwrap();
    let c2 = src.commit(Some(c1), &[("a.yaml", b"a: 2\n")], "second");
    let (_d, cache) = new_cache();
    let auth = Auth::default();
    let opts = FetchOptions::default();

    let repo = cache.open(&src.url()).unwrap();
    let f = repo.fetch(&Reference::DefaultBranch, &auth, &opts).unwrap();
    assert_eq!(f.commit, c2.to_string());
    for tag in ["v1-annotated", "v1-light", "refs/tags/v1-light"] {
        let f = repo
            .fetch(&Reference::Tag(tag.into()), &auth, &opts)
            .unwrap();
        assert_eq!(f.commit, c1.to_string(), "{tag}");
    }

    // An exact commit that is not a branch tip, into a fresh cache (fetched by id or by all refs).
    let (_d2, cache2) = new_cache();
    let repo2 = cache2.open(&src.url()).unwrap();
    let commit = Reference::Commit(c1.to_string());
    let f = repo2.fetch(&commit, &auth, &opts).unwrap();
    assert_eq!(
        f,
        Fetched {
            commit: c1.to_string(),
            downloaded: true
        }
    );
    assert!(!repo2.fetch(&commit, &auth, &opts).unwrap().downloaded);

    // A plain local path works like file://.
    let local = cache.open(&src.dir.path().display().to_string()).unwrap();
    assert_eq!(local.url().transport(), Transport::Local);
    assert_eq!(
        local.fetch(&main_ref(), &auth, &opts).unwrap().commit,
        c2.to_string()
    );
    assert_ne!(local.path(), repo.path());
}

#[test]
fn missing_refs_and_unreachable_remotes_are_clear_errors() {
    let src = Source::new();
    src.commit(None, &[("a.yaml", b"a: 1\n")], "first");
    let (_d, cache) = new_cache();
    let auth = Auth::default();
    let opts = FetchOptions::default();
    let repo = cache.open(&src.url()).unwrap();

    let e = repo
        .fetch(&Reference::Branch("nope".into()), &auth, &opts)
        .unwrap_err();
    assert!(matches!(e, Error::RefNotFound { .. }), "{e:?}");
    assert!(e.to_string().contains("branch nope not found"), "{e}");
    let e = repo
        .fetch(
            &Reference::Commit("0123456789012345678901234567890123456789".into()),
            &auth,
            &opts,
        )
        .unwrap_err();
    assert!(matches!(e, Error::RefNotFound { .. }), "{e:?}");

    let gone = cache.open("file:///nonexistent/graft/repo.git").unwrap();
    let e = gone.fetch(&main_ref(), &auth, &opts).unwrap_err();
    assert!(matches!(e, Error::Connect { .. }), "{e:?}");
}

#[test]
fn credentials_never_appear_in_errors() {
    let (_d, cache) = new_cache();
    // Nothing listens on port 1: the connection is refused at once.
    let repo = cache
        .open("https://alice:hunter2-secret@127.0.0.1:1/o/r.git")
        .unwrap();
    let auth = Auth {
        credentials: Credentials::Token {
            token: "ghp_secret_token".into(),
        },
        ..Default::default()
    };
    let e = repo
        .fetch(&main_ref(), &auth, &FetchOptions::default())
        .unwrap_err();
    let shown = format!("{e} {e:?} {repo:?} {auth:?}");
    assert!(
        !shown.contains("hunter2") && !shown.contains("ghp_secret"),
        "{shown}"
    );
    assert!(shown.contains("127.0.0.1:1"), "{shown}");
}

#[test]
fn a_fetch_past_its_deadline_times_out() {
    let src = Source::new();
    src.commit(None, &[("a.yaml", b"a: 1\n")], "first");
    let (_d, cache) = new_cache();
    let repo = cache.open(&src.url()).unwrap();
    let opts = FetchOptions {
        timeout: Duration::ZERO,
    };
    let e = repo
        .fetch(&main_ref(), &Auth::default(), &opts)
        .unwrap_err();
    assert!(matches!(e, Error::Timeout { .. }), "{e:?}");
}

#[test]
fn force_pushes_are_detected() {
    let src = Source::new();
    let c1 = src.commit(None, &[("a.yaml", b"a: 1\n")], "first");
    let c2 = src.commit(Some(c1), &[("a.yaml", b"a: 2\n")], "second");
    let (_d, cache) = new_cache();
    let auth = Auth::default();
    let opts = FetchOptions::default();
    let repo = cache.open(&src.url()).unwrap();
    assert_eq!(
        repo.fetch(&main_ref(), &auth, &opts).unwrap().commit,
        c2.to_string()
    );

    // Rewrite: main now starts from c1 again with another commit.
    let c3 = src.commit(Some(c1), &[("a.yaml", b"a: 3\n")], "rewritten");
    let f = repo.fetch(&main_ref(), &auth, &opts).unwrap();
    assert_eq!(f.commit, c3.to_string());
    let (last, new) = (c2.to_string(), c3.to_string());
    assert_eq!(repo.history(&last, &new).unwrap(), History::Diverged);
    let e = repo.check_history(&main_ref(), &last, &new).unwrap_err();
    assert!(matches!(e, Error::HistoryRewritten { .. }), "{e:?}");
    assert!(
        e.to_string().contains(&last) && e.to_string().contains(&new),
        "{e}"
    );
    // Pinning an exact commit is deliberate, not a rewrite.
    let pinned = Reference::Commit(new.clone());
    assert_eq!(
        repo.check_history(&pinned, &last, &new).unwrap(),
        History::Diverged
    );
    // A commit the cache never saw.
    let unknown = "0123456789012345678901234567890123456789";
    assert_eq!(repo.history(unknown, &new).unwrap(), History::Missing);
    assert!(History::Missing.is_rewrite(&main_ref()));
    assert!(!History::FastForward.is_rewrite(&main_ref()));
}

#[test]
fn reads_files_from_the_commit_tree() {
    let src = Source::new();
    let big = vec![b'x'; 2048];
    let c1 = src.commit(
        None,
        &[
            ("README.md", b"# repo\n"),
            ("deploy/app.yaml", b"kind: A\n"),
            ("deploy/nested/more/b.yml", b"kind: B\n"),
            ("deploy/notes.txt", b"not a manifest\n"),
            ("deploy/.hidden.yaml", b"kind: Hidden\n"),
            ("deploy/.github/ci.yaml", b"kind: CI\n"),
            ("deploy/big.json", &big),
            ("other/c.yaml", b"kind: C\n"),
        ],
        "files",
    );
    let (_d, cache) = new_cache();
    let repo = cache.open(&src.url()).unwrap();
    repo.fetch(&main_ref(), &Auth::default(), &FetchOptions::default())
        .unwrap();
    let sha = c1.to_string();
    let limits = ReadLimits::default();
    let yaml = |p: &str| p.ends_with(".yaml") || p.ends_with(".yml");

    let files = repo.read_files(&sha, "deploy", &limits, &yaml).unwrap();
    let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, vec!["deploy/app.yaml", "deploy/nested/more/b.yml"]);
    assert_eq!(files[0].content, b"kind: A\n");
    assert!(!format!("{files:?}").contains("kind: A"));

    for root in [".", "", "./", "/"] {
        let files = repo.read_files(&sha, root, &limits, &all).unwrap();
        assert_eq!(files.len(), 6, "{root:?}: {files:?}");
    }
    let one = repo
        .read_files(&sha, "./deploy/app.yaml", &limits, &all)
        .unwrap();
    assert_eq!(one.len(), 1);

    for missing in ["nope", "deploy/nope", "../deploy"] {
        let e = repo.read_files(&sha, missing, &limits, &all).unwrap_err();
        assert!(matches!(e, Error::PathNotFound { .. }), "{missing}: {e:?}");
    }

    let small = ReadLimits {
        max_file_bytes: 1024,
        ..limits
    };
    let e = repo.read_files(&sha, "deploy", &small, &all).unwrap_err();
    assert!(
        matches!(e, Error::FileTooLarge { ref path, size: 2048, limit: 1024, .. } if path == "deploy/big.json"),
        "{e:?}"
    );
    assert!(e.to_string().contains("deploy/big.json"), "{e}");
    // Files the renderer does not want are never loaded, so they cannot exceed the limit.
    assert!(repo.read_files(&sha, "deploy", &small, &yaml).is_ok());

    let total = ReadLimits {
        max_total_bytes: 2050,
        ..limits
    };
    let e = repo.read_files(&sha, "deploy", &total, &all).unwrap_err();
    assert!(matches!(e, Error::TooMuchContent { .. }), "{e:?}");
}

#[test]
fn commit_metadata_and_history_record() {
    let src = Source::new();
    let c1 = src.commit(
        None,
        &[("a.yaml", b"a: 1\n")],
        "Roll out v2\n\nWith details.\n",
    );
    let (_d, cache) = new_cache();
    let repo = cache.open(&src.url()).unwrap();
    repo.fetch(&main_ref(), &Auth::default(), &FetchOptions::default())
        .unwrap();
    let info = repo.commit_info(&c1.to_string()).unwrap();
    assert_eq!(info.sha, c1.to_string());
    assert_eq!(info.summary, "Roll out v2");
    assert_eq!(info.message, "Roll out v2\n\nWith details.\n");
    assert_eq!(info.author(), "Ada Lovelace <ada@example.com>");
    assert_eq!(info.time, 1_700_000_000);
    let rec = info.record();
    assert_eq!(rec.message.as_deref(), Some("Roll out v2"));
    assert_eq!(
        serde_json::to_value(&rec.time).unwrap(),
        serde_json::json!("2023-11-14T22:13:20Z")
    );
    assert!(repo.commit_info("zz").is_err());
}

#[test]
fn references_from_the_gitsync_spec() {
    let r = |v: serde_json::Value| Reference::from_spec(Some(&serde_json::from_value(v).unwrap()));
    assert_eq!(Reference::from_spec(None), Reference::DefaultBranch);
    assert_eq!(r(serde_json::json!({"branch": "main"})), main_ref());
    assert_eq!(
        r(serde_json::json!({"tag": "v1"})),
        Reference::Tag("v1".into())
    );
    assert_eq!(
        r(serde_json::json!({"commit": "ABC"})),
        Reference::Commit("abc".into())
    );
    assert_eq!(r(serde_json::json!({})), Reference::DefaultBranch);
    assert_eq!(main_ref().to_string(), "branch main");
}

#[test]
fn cache_dirs_are_per_url_and_readable() {
    let cache = GitCache::new("/var/cache/graft/git");
    let a = cache.dir_for(&RepoUrl::parse("https://github.com/o/r.git").unwrap());
    let b = cache.dir_for(&RepoUrl::parse("https://github.com/o/r2.git").unwrap());
    assert_ne!(a, b);
    let name = a.file_name().unwrap().to_string_lossy().to_string();
    assert!(name.starts_with("github.com_o_r.git-"), "{name}");
    // Credentials do not change (or show in) the directory.
    let c = cache.dir_for(&RepoUrl::parse("https://u:secret@github.com/o/r.git").unwrap());
    assert!(!c.to_string_lossy().contains("secret"));
}

/// Stops the `git daemon` it holds when dropped.
struct Daemon(std::process::Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn fetches_over_the_git_protocol_from_a_real_git_daemon() {
    let src = Source::new();
    let c1 = src.commit(None, &[("a.yaml", b"a: 1\n")], "first");
    std::fs::write(src.dir.path().join("git-daemon-export-ok"), "").unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let base = src.dir.path().parent().unwrap();
    // Run git-daemon itself (`git daemon` forks it and would outlive a kill of the wrapper).
    let exec_path = std::process::Command::new("git")
        .arg("--exec-path")
        .output()
        .expect("git must be installed (the git package) for this test");
    let exec_path = String::from_utf8(exec_path.stdout).unwrap();
    let child = std::process::Command::new(Path::new(exec_path.trim()).join("git-daemon"))
        .args(["--reuseaddr", "--listen=127.0.0.1"])
        .arg(format!("--port={port}"))
        .arg(format!("--base-path={}", base.display()))
        .arg(base)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("git-daemon must be installed (the git package) for this test");
    let _daemon = Daemon(child);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "git daemon did not listen on {port} within 10s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let name = src
        .dir
        .path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .to_string();
    let (_d, cache) = new_cache();
    let repo = cache
        .open(&format!("git://127.0.0.1:{port}/{name}"))
        .unwrap();
    assert_eq!(repo.url().transport(), Transport::Git);
    let f = repo
        .fetch(&main_ref(), &Auth::default(), &FetchOptions::default())
        .unwrap();
    assert_eq!(
        f,
        Fetched {
            commit: c1.to_string(),
            downloaded: true
        }
    );
    assert!(
        !repo
            .fetch(&main_ref(), &Auth::default(), &FetchOptions::default())
            .unwrap()
            .downloaded
    );
    let e = repo
        .fetch(
            &Reference::Branch("gone".into()),
            &Auth::default(),
            &FetchOptions::default(),
        )
        .unwrap_err();
    assert!(matches!(e, Error::RefNotFound { .. }), "{e:?}");
    // A repository the daemon does not serve.
    let missing = cache
        .open(&format!("git://127.0.0.1:{port}/nope.git"))
        .unwrap();
    let e = missing
        .fetch(&main_ref(), &Auth::default(), &FetchOptions::default())
        .unwrap_err();
    assert!(matches!(e, Error::Connect { .. }), "{e:?}");
}
