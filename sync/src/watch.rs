//! Local repositories sync on commit: a file watch (inotify through `notify`) on the `.git`
//! directory of every GitSync whose URL is a local path or `file://`, so a commit triggers its
//! GitSync at once instead of at the next interval.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::channel::mpsc::UnboundedSender;
use graft_api::graft::gitsync::GitSync;
use kube::runtime::reflector::{ObjectRef, Store};
use notify::{RecursiveMode, Watcher};

/// How often the set of watched repositories is brought in line with the GitSyncs.
const RESCAN: Duration = Duration::from_secs(2);

/// The directory to watch for a GitSync URL, if it names a local repository: the `.git`
/// directory of a work tree, or the repository itself when it is bare.
pub fn local_git_dir(url: &str) -> Option<PathBuf> {
    let path = if let Some(rest) = url.strip_prefix("file://") {
        PathBuf::from(rest)
    } else if url.starts_with('/') {
        PathBuf::from(url)
    } else {
        return None;
    };
    let dot_git = path.join(".git");
    if dot_git.is_dir() {
        Some(dot_git)
    } else if path.join("HEAD").is_file() {
        Some(path)
    } else {
        None
    }
}

/// Whether a changed path can mean a new commit (a ref, HEAD, packed refs), not object churn.
fn is_ref_change(path: &Path) -> bool {
    path.components().any(|c| c.as_os_str() == "refs")
        || path
            .file_name()
            .is_some_and(|n| n == "HEAD" || n == "packed-refs")
}

/// Whether an event can change a file: not a read. The sync's own fetch opens and reads the
/// repository's refs, and inotify reports that: reacting to it would fetch again, forever.
fn is_write(kind: &notify::EventKind) -> bool {
    matches!(
        kind,
        notify::EventKind::Create(_)
            | notify::EventKind::Modify(_)
            | notify::EventKind::Remove(_)
            | notify::EventKind::Any
    )
}

/// Keep watches on the local repositories of the GitSyncs in `store`, and send a GitSync to
/// `trigger` whenever a ref of its repository changes. Runs until `trigger` is closed.
pub async fn watch_local_repos(
    store: Store<GitSync>,
    trigger: UnboundedSender<ObjectRef<GitSync>>,
) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<PathBuf>();
    let mut watchers: BTreeMap<PathBuf, notify::RecommendedWatcher> = BTreeMap::new();
    let mut interval = tokio::time::interval(RESCAN);
    loop {
        tokio::select! {
            _ = interval.tick() => {
                let wanted: BTreeSet<PathBuf> = store
                    .state()
                    .iter()
                    .filter(|gs| gs.spec.suspend != Some(true))
                    .filter_map(|gs| local_git_dir(&gs.spec.url))
                    .collect();
                watchers.retain(|dir, _| wanted.contains(dir));
                for dir in wanted {
                    if watchers.contains_key(&dir) {
                        continue;
                    }
                    let tx = tx.clone();
                    let root = dir.clone();
                    let watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
                        if let Ok(event) = res
                            && is_write(&event.kind)
                            && event.paths.iter().any(|p| is_ref_change(p))
                        {
                            let _ = tx.send(root.clone());
                        }
                    });
                    match watcher {
                        Ok(mut w) => match w.watch(&dir, RecursiveMode::Recursive) {
                            Ok(()) => {
                                tracing::info!(dir = %dir.display(), "watching local repository");
                                watchers.insert(dir, w);
                            }
                            Err(e) => tracing::warn!(dir = %dir.display(), error = %e, "cannot watch"),
                        },
                        Err(e) => tracing::warn!(error = %e, "cannot create a file watcher"),
                    }
                }
            }
            Some(dir) = rx.recv() => {
                for gs in store.state() {
                    if local_git_dir(&gs.spec.url).as_deref() == Some(dir.as_path())
                        && trigger.unbounded_send(ObjectRef::from_obj(gs.as_ref())).is_err()
                    {
                        return;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_urls_of_existing_repositories_are_watched() {
        let dir = tempfile::tempdir().expect("temp dir");
        git2::Repository::init(dir.path()).expect("init");
        let url = format!("file://{}", dir.path().display());
        assert_eq!(local_git_dir(&url), Some(dir.path().join(".git")));
        assert_eq!(
            local_git_dir(&dir.path().display().to_string()),
            Some(dir.path().join(".git"))
        );
        let bare = tempfile::tempdir().expect("temp dir");
        git2::Repository::init_bare(bare.path()).expect("init bare");
        assert_eq!(
            local_git_dir(&bare.path().display().to_string()),
            Some(bare.path().to_path_buf())
        );
        assert_eq!(local_git_dir("https://example.com/x.git"), None);
        assert_eq!(local_git_dir("file:///nonexistent/graft"), None);
    }

    #[test]
    fn reads_are_not_changes() {
        use notify::event::{AccessKind, AccessMode, CreateKind, ModifyKind};
        assert!(!is_write(&notify::EventKind::Access(AccessKind::Open(
            AccessMode::Any
        ))));
        assert!(!is_write(&notify::EventKind::Access(AccessKind::Close(
            AccessMode::Read
        ))));
        assert!(is_write(&notify::EventKind::Create(CreateKind::File)));
        assert!(is_write(&notify::EventKind::Modify(ModifyKind::Any)));
    }

    #[test]
    fn ref_changes_are_told_from_object_churn() {
        assert!(is_ref_change(Path::new("/r/.git/refs/heads/main")));
        assert!(is_ref_change(Path::new("/r/.git/HEAD")));
        assert!(is_ref_change(Path::new("/r/.git/packed-refs")));
        assert!(!is_ref_change(Path::new("/r/.git/objects/ab/cdef")));
        assert!(!is_ref_change(Path::new("/r/.git/index")));
    }
}
