//! The crate's error type: one variant per step that can fail, each carrying the key of what
//! failed (URL, ref, commit, file, object) and the cause. URLs are always shown with their
//! credentials removed, and no variant ever carries a password, token or private key.

use std::path::PathBuf;
use std::time::Duration;

use crate::render::RenderErrors;

/// Everything that can go wrong in graft-sync.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bare cache repository of a source could not be opened or created.
    #[error("open Git cache {path}: {message}")]
    CacheOpen {
        /// Directory of the cache repository.
        path: PathBuf,
        /// What libgit2 reported.
        message: String,
    },
    /// The repository URL cannot be used.
    #[error("repository URL {url}: {reason}")]
    InvalidUrl {
        /// The URL, credentials removed.
        url: String,
        /// Why it was refused.
        reason: String,
    },
    /// The Secret holding the Git credentials does not have a usable shape.
    #[error("Git credentials: {reason}")]
    Credentials {
        /// What is wrong (never the secret values).
        reason: String,
    },
    /// The remote could not be reached or listed (DNS, connection refused, not a repository).
    #[error("connect to {url}: {message}")]
    Connect {
        /// The URL, credentials removed.
        url: String,
        /// What libgit2 reported, credentials removed.
        message: String,
    },
    /// The remote refused the credentials (or asked for credentials none were given for).
    #[error("authenticate to {url}: {message}")]
    Authentication {
        /// The URL, credentials removed.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// The SSH host key of the remote is not in known_hosts, or does not match it.
    #[error("SSH host key of {host}: {reason}")]
    HostKey {
        /// Host (and port when not 22) as known_hosts names it.
        host: String,
        /// Unknown host, mismatching key or revoked key.
        reason: String,
    },
    /// The branch, tag or commit does not exist on the remote.
    #[error("{reference} not found in {url}")]
    RefNotFound {
        /// The URL, credentials removed.
        url: String,
        /// `branch main`, `tag v1`, `commit <sha>` or `the default branch`.
        reference: String,
    },
    /// Fetching the objects of a ref failed.
    #[error("fetch {reference} from {url}: {message}")]
    Fetch {
        /// The URL, credentials removed.
        url: String,
        /// What was fetched.
        reference: String,
        /// What libgit2 reported, credentials removed.
        message: String,
    },
    /// Listing or fetching took longer than the configured timeout.
    #[error("fetch from {url} timed out after {}s", .after.as_secs_f64())]
    Timeout {
        /// The URL, credentials removed.
        url: String,
        /// The timeout that was exceeded.
        after: Duration,
    },
    /// A commit, tree or blob could not be read from the cache repository.
    #[error("read commit {sha}: {message}")]
    ReadCommit {
        /// The commit SHA (or the ref being resolved).
        sha: String,
        /// What libgit2 reported.
        message: String,
    },
    /// The manifest path does not exist in the commit.
    #[error("path {path:?} does not exist in commit {sha}")]
    PathNotFound {
        /// The commit SHA.
        sha: String,
        /// The path inside the repository.
        path: String,
    },
    /// A file under the manifest path is larger than the per-file limit.
    #[error("file {path} in commit {sha} is {size} bytes, more than the limit of {limit} bytes")]
    FileTooLarge {
        /// The commit SHA.
        sha: String,
        /// Path of the file inside the repository.
        path: String,
        /// Its size in bytes.
        size: u64,
        /// The limit in bytes.
        limit: u64,
    },
    /// The files under the manifest path are larger together than the total limit.
    #[error(
        "files under the manifest path of commit {sha} add up to more than the limit of {limit} bytes (limit reached at {path})"
    )]
    TooMuchContent {
        /// The commit SHA.
        sha: String,
        /// The file at which the total went over the limit.
        path: String,
        /// The limit in bytes.
        limit: u64,
    },
    /// The new tip is not a descendant of the last applied commit: someone rewrote history.
    #[error(
        "history rewritten: {new} is not a descendant of the last applied commit {last_applied}; nothing applied (to apply it anyway: annotate the GitSync graft.dev/accept-rewrite={new}, or run graft sync with --accept-rewrite {new})"
    )]
    HistoryRewritten {
        /// The last applied commit.
        last_applied: String,
        /// The new tip.
        new: String,
    },
    /// The manifests of a commit are invalid (parse errors, missing fields, duplicates, kinds
    /// the cluster does not serve); every error found is listed.
    #[error("{0}")]
    Render(RenderErrors),
    /// A push webhook's signature or token is missing or wrong.
    #[error("{provider} webhook: {reason}")]
    WebhookSignature {
        /// `github`, `gitlab`, `gitea`, `forgejo` or `generic`.
        provider: &'static str,
        /// What is wrong (never the expected value).
        reason: String,
    },
    /// A push webhook's payload cannot be read.
    #[error("{provider} webhook payload: {reason}")]
    WebhookPayload {
        /// `github`, `gitlab`, `gitea`, `forgejo` or `generic`.
        provider: &'static str,
        /// What is wrong.
        reason: String,
    },
}
