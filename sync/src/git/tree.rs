//! Reading a commit: its metadata, and the files under a path of its tree (no checkout).

use git2::{ObjectType, Oid, TreeWalkMode, TreeWalkResult};
use graft_api::graft::gitsync::{CommitPhase, CommitRecord};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::CacheRepo;
use crate::Error;
use crate::render::SourceFile;

/// Default largest file read from a commit: 10 MiB.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 10 * 1024 * 1024;
/// Default largest total of the files read from a commit: 100 MiB.
pub const DEFAULT_MAX_TOTAL_BYTES: u64 = 100 * 1024 * 1024;

/// Bounds on what is read from a commit, so one huge file cannot exhaust memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadLimits {
    /// Largest single file, in bytes.
    pub max_file_bytes: u64,
    /// Largest sum of all files read, in bytes.
    pub max_total_bytes: u64,
}

impl Default for ReadLimits {
    fn default() -> Self {
        Self {
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
            max_total_bytes: DEFAULT_MAX_TOTAL_BYTES,
        }
    }
}

/// Metadata of a commit, for the GitSync history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitInfo {
    /// Full SHA.
    pub sha: String,
    /// First line of the message.
    pub summary: String,
    /// The whole message.
    pub message: String,
    /// Author name.
    pub author_name: String,
    /// Author e-mail.
    pub author_email: String,
    /// Commit time, seconds since the Unix epoch.
    pub time: i64,
}

impl CommitInfo {
    /// `Name <email>`.
    pub fn author(&self) -> String {
        format!("{} <{}>", self.author_name, self.author_email)
    }

    /// A history entry for the commit in phase `Detected` (the caller sets the phase times
    /// through `GitSyncStatus::record_commit`).
    pub fn record(&self) -> CommitRecord {
        CommitRecord {
            sha: self.sha.clone(),
            message: Some(self.summary.clone()),
            author: Some(self.author()),
            time: k8s_openapi::jiff::Timestamp::from_second(self.time)
                .ok()
                .map(Time),
            phase: CommitPhase::Detected,
            ..Default::default()
        }
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Normalizes a manifest path: `.`, `./`, `` and `/` are the root; no `..`.
fn normalize(path: &str) -> Option<String> {
    let mut parts = Vec::new();
    for p in path.split('/') {
        match p {
            "" | "." => {}
            ".." => return None,
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

impl CacheRepo {
    fn find_commit(&self, sha: &str) -> Result<git2::Commit<'_>, Error> {
        let err = |e: git2::Error| Error::ReadCommit {
            sha: sha.to_string(),
            message: e.message().to_string(),
        };
        let oid = Oid::from_str(sha).map_err(err)?;
        self.repo.find_commit(oid).map_err(err)
    }

    /// Sha, message, author and time of a commit in the cache.
    pub fn commit_info(&self, sha: &str) -> Result<CommitInfo, Error> {
        let c = self.find_commit(sha)?;
        let author = c.author();
        Ok(CommitInfo {
            sha: c.id().to_string(),
            summary: c.summary_bytes().map(lossy).unwrap_or_default(),
            message: lossy(c.message_bytes()),
            author_name: lossy(author.name_bytes()),
            author_email: lossy(author.email_bytes()),
            time: c.time().seconds(),
        })
    }

    /// The files under `path` in the tree of commit `sha`, recursively, sorted by path (paths
    /// are relative to the repository root). Files and directories whose name starts with `.`
    /// (`.git*`, `.github/`) are skipped, and so are symbolic links and submodules; `accept`
    /// chooses the rest by path (a renderer's [`crate::render::Renderer::accepts`]). A file over
    /// the size limit is an error naming it; its content is never loaded.
    pub fn read_files(
        &self,
        sha: &str,
        path: &str,
        limits: &ReadLimits,
        accept: &dyn Fn(&str) -> bool,
    ) -> Result<Vec<SourceFile>, Error> {
        let not_found = || Error::PathNotFound {
            sha: sha.to_string(),
            path: path.to_string(),
        };
        let read_err = |e: git2::Error| Error::ReadCommit {
            sha: sha.to_string(),
            message: e.message().to_string(),
        };
        let commit = self.find_commit(sha)?;
        let root = commit.tree().map_err(read_err)?;
        let rel = normalize(path).ok_or_else(not_found)?;
        let odb = self.repo.odb().map_err(read_err)?;

        // The path may name a single file.
        let (tree, prefix) = if rel.is_empty() {
            (root, String::new())
        } else {
            let entry = root
                .get_path(std::path::Path::new(&rel))
                .map_err(|_| not_found())?;
            match entry.kind() {
                Some(ObjectType::Tree) => (
                    self.repo.find_tree(entry.id()).map_err(read_err)?,
                    format!("{rel}/"),
                ),
                Some(ObjectType::Blob) => {
                    let mut files = Vec::new();
                    let mut total = 0;
                    self.read_blob(sha, &rel, entry.id(), &odb, limits, &mut total, &mut files)?;
                    return Ok(files);
                }
                _ => return Err(not_found()),
            }
        };

        let mut files = Vec::new();
        let mut total = 0u64;
        let mut failure = None;
        tree.walk(TreeWalkMode::PreOrder, |dir, entry| {
            let name = lossy(entry.name_bytes());
            if name.starts_with('.') {
                return TreeWalkResult::Skip;
            }
            // Symbolic links (0o120000) and submodules (commits) are not manifests.
            if entry.kind() != Some(ObjectType::Blob) || entry.filemode() == 0o120000 {
                return TreeWalkResult::Ok;
            }
            let file_path = format!("{prefix}{dir}{name}");
            if !accept(&file_path) {
                return TreeWalkResult::Ok;
            }
            match self.read_blob(
                sha,
                &file_path,
                entry.id(),
                &odb,
                limits,
                &mut total,
                &mut files,
            ) {
                Ok(()) => TreeWalkResult::Ok,
                Err(e) => {
                    failure = Some(e);
                    TreeWalkResult::Abort
                }
            }
        })
        .or_else(|e| {
            if failure.is_some() {
                Ok(())
            } else {
                Err(read_err(e))
            }
        })?;
        if let Some(e) = failure {
            return Err(e);
        }
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(files)
    }

    #[allow(clippy::too_many_arguments)]
    fn read_blob(
        &self,
        sha: &str,
        path: &str,
        id: Oid,
        odb: &git2::Odb<'_>,
        limits: &ReadLimits,
        total: &mut u64,
        files: &mut Vec<SourceFile>,
    ) -> Result<(), Error> {
        let read_err = |e: git2::Error| Error::ReadCommit {
            sha: sha.to_string(),
            message: format!("{path}: {}", e.message()),
        };
        let (size, _) = odb.read_header(id).map_err(read_err)?;
        let size = size as u64;
        if size > limits.max_file_bytes {
            return Err(Error::FileTooLarge {
                sha: sha.to_string(),
                path: path.to_string(),
                size,
                limit: limits.max_file_bytes,
            });
        }
        *total += size;
        if *total > limits.max_total_bytes {
            return Err(Error::TooMuchContent {
                sha: sha.to_string(),
                path: path.to_string(),
                limit: limits.max_total_bytes,
            });
        }
        let blob = self.repo.find_blob(id).map_err(read_err)?;
        files.push(SourceFile {
            path: path.to_string(),
            content: blob.content().to_vec(),
        });
        Ok(())
    }
}
