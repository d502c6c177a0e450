//! Git source: a bare cache repository per source URL, fetched with libgit2 (git2) over
//! `file://`, local paths, `git://`, http(s) and ssh, and read from the commit tree without a
//! working-tree checkout.
//!
//! Everything here blocks: the sync loop runs it in `tokio::task::spawn_blocking`, one source at
//! a time per cache repository ([`CacheRepo`] is `Send` but not `Sync`).
//!
//! The loop, per poll or webhook: [`GitCache::open`] → [`CacheRepo::fetch`] (lists the remote
//! first and skips the download when the tip is already cached) → if the commit is new,
//! [`CacheRepo::history`] against the last applied commit, [`CacheRepo::commit_info`] for the
//! history entry, and [`CacheRepo::read_files`] for the renderer.

mod auth;
mod known_hosts;
mod tree;
mod url;

use std::cell::RefCell;
use std::collections::hash_map::DefaultHasher;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Once;
use std::time::{Duration, Instant};

use git2::{
    AutotagOption, CertificateCheckStatus, Direction, ErrorClass, ErrorCode, Oid, Repository,
};
use graft_api::graft::gitsync::GitRef;

pub use auth::{Auth, Credentials, SSH_USERNAME, TOKEN_USERNAME};
pub use known_hosts::{HostKeyCheck, KnownHosts};
pub use tree::{CommitInfo, DEFAULT_MAX_FILE_BYTES, DEFAULT_MAX_TOTAL_BYTES, ReadLimits};
pub use url::{RepoUrl, Transport};

use crate::Error;

/// Default bound on one list-and-fetch.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// What to follow in a repository.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum Reference {
    /// The branch the remote's `HEAD` points at.
    #[default]
    DefaultBranch,
    /// A branch (`main` or `refs/heads/main`).
    Branch(String),
    /// A tag (`v1.2.0` or `refs/tags/v1.2.0`); annotated tags are peeled to their commit.
    Tag(String),
    /// An exact commit (full SHA).
    Commit(String),
}

impl Reference {
    /// The reference a GitSync's `spec.ref` names (commit before tag before branch).
    pub fn from_spec(r: Option<&GitRef>) -> Self {
        let Some(r) = r else {
            return Self::DefaultBranch;
        };
        if let Some(c) = r.commit.as_deref().filter(|s| !s.is_empty()) {
            Self::Commit(c.to_ascii_lowercase())
        } else if let Some(t) = r.tag.as_deref().filter(|s| !s.is_empty()) {
            Self::Tag(t.to_string())
        } else if let Some(b) = r.branch.as_deref().filter(|s| !s.is_empty()) {
            Self::Branch(b.to_string())
        } else {
            Self::DefaultBranch
        }
    }

    /// True when the reference can move (a branch, or a tag that someone re-points).
    pub fn is_moving(&self) -> bool {
        !matches!(self, Self::Commit(_))
    }

    /// The full remote ref name, for branches and tags.
    fn remote_ref(&self) -> Option<String> {
        match self {
            Self::Branch(b) if b.starts_with("refs/") => Some(b.clone()),
            Self::Branch(b) => Some(format!("refs/heads/{b}")),
            Self::Tag(t) if t.starts_with("refs/") => Some(t.clone()),
            Self::Tag(t) => Some(format!("refs/tags/{t}")),
            _ => None,
        }
    }

    /// The ref in the cache repository that keeps the fetched commit.
    fn local_ref(&self) -> String {
        match self {
            Self::DefaultBranch => "refs/graft/default".into(),
            Self::Branch(_) | Self::Tag(_) => {
                let r = self.remote_ref().unwrap_or_default();
                format!("refs/graft/{}", r.trim_start_matches("refs/"))
            }
            Self::Commit(c) => format!("refs/graft/commits/{c}"),
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::DefaultBranch => f.write_str("the default branch"),
            Self::Branch(b) => write!(f, "branch {b}"),
            Self::Tag(t) => write!(f, "tag {t}"),
            Self::Commit(c) => write!(f, "commit {c}"),
        }
    }
}

/// Bounds of one fetch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchOptions {
    /// Longest time listing and fetching may take together (checked between network reads;
    /// the socket timeouts set by [`GitCache::new`] catch a silent server).
    pub timeout: Duration,
}

impl Default for FetchOptions {
    fn default() -> Self {
        Self {
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// The result of a fetch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fetched {
    /// The commit the reference points at (full SHA).
    pub commit: String,
    /// False when the commit was already in the cache and nothing was downloaded (the remote
    /// tip is unchanged, or the commit was fetched before).
    pub downloaded: bool,
}

/// How a new commit relates to the last applied one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum History {
    /// The same commit.
    Same,
    /// The new commit descends from the last applied one (an ordinary push).
    FastForward,
    /// The new commit is an ancestor of the last applied one (the ref went back).
    Behind,
    /// Neither descends from the other (a force-push rewrote history).
    Diverged,
    /// The last applied commit is not in the repository any more: it is not reachable from the
    /// fetched ref (rewritten history) or was never fetched into this cache.
    Missing,
}

impl History {
    /// True when following `reference` to the new commit means history was rewritten: a
    /// branch or tag that went back, diverged or lost the last applied commit. Pinning an exact
    /// commit is always deliberate.
    pub fn is_rewrite(self, reference: &Reference) -> bool {
        reference.is_moving() && matches!(self, Self::Behind | Self::Diverged | Self::Missing)
    }
}

/// The directory holding one bare cache repository per source URL.
#[derive(Clone, Debug)]
pub struct GitCache {
    root: PathBuf,
}

static TIMEOUTS: Once = Once::new();

impl GitCache {
    /// A cache under `root` (created on first use). The first call also sets libgit2's
    /// process-wide socket timeouts (connect 15 s, read/write 60 s), so call it at start-up
    /// before any fetch runs.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        TIMEOUTS.call_once(|| {
            // SAFETY: libgit2 stores these in plain globals; Once makes this the only writer
            // and it runs before any fetch of this process reads them.
            unsafe {
                let _ = git2::opts::set_server_connect_timeout_in_milliseconds(15_000);
                let _ = git2::opts::set_server_timeout_in_milliseconds(60_000);
            }
        });
        Self { root: root.into() }
    }

    /// The directory of the cache repository of `url`: readable host and path, plus a hash of
    /// the URL without credentials so two URLs never share a cache.
    pub fn dir_for(&self, url: &RepoUrl) -> PathBuf {
        let mut h = DefaultHasher::new();
        url.for_libgit2().hash(&mut h);
        let readable: String = url
            .redacted()
            .split("://")
            .last()
            .unwrap_or_default()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let readable = readable.trim_matches('_');
        let readable: String = readable
            .chars()
            .rev()
            .take(60)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        self.root
            .join(format!("{readable}-{:016x}.git", h.finish()))
    }

    /// Opens (or initializes) the bare cache repository of `url`.
    pub fn open(&self, url: &str) -> Result<CacheRepo, Error> {
        let url = RepoUrl::parse(url)?;
        let path = self.dir_for(&url);
        let open_err = |e: git2::Error| Error::CacheOpen {
            path: path.clone(),
            message: e.message().to_string(),
        };
        let repo = match Repository::open_bare(&path) {
            Ok(r) => r,
            Err(e) if e.code() == ErrorCode::NotFound => {
                std::fs::create_dir_all(&path).map_err(|e| Error::CacheOpen {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
                Repository::init_bare(&path).map_err(open_err)?
            }
            Err(e) => return Err(open_err(e)),
        };
        Ok(CacheRepo { repo, url, path })
    }
}

/// One bare cache repository and the URL it mirrors.
pub struct CacheRepo {
    repo: Repository,
    url: RepoUrl,
    path: PathBuf,
}

impl fmt::Debug for CacheRepo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheRepo")
            .field("url", &self.url)
            .field("path", &self.path)
            .finish()
    }
}

/// What the callbacks saw, to turn libgit2's generic "callback failed" into a clear error.
#[derive(Default)]
struct CallbackState {
    timed_out: bool,
    host_key: Option<(String, String)>,
    auth: Option<String>,
    cred_attempts: u32,
}

impl CacheRepo {
    /// The URL this cache mirrors.
    pub fn url(&self) -> &RepoUrl {
        &self.url
    }

    /// Directory of the cache repository.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The underlying repository (for tests and tools).
    pub fn repository(&self) -> &Repository {
        &self.repo
    }

    /// Resolves `reference` on the remote (an `ls-remote`) and downloads its commit unless the
    /// cache already has it. An exact commit already in the cache needs no network at all.
    pub fn fetch(
        &self,
        reference: &Reference,
        auth: &Auth,
        opts: &FetchOptions,
    ) -> Result<Fetched, Error> {
        let deadline = Instant::now() + opts.timeout;
        if let Reference::Commit(sha) = reference {
            return self.fetch_commit(sha, auth, deadline, opts.timeout);
        }
        let (heads, default_branch) = self.ls_remote(auth, deadline, opts.timeout)?;
        let find = |name: &str| heads.iter().find(|(n, _)| n == name).map(|(_, o)| *o);
        let (remote_name, tip) = match reference {
            Reference::DefaultBranch => {
                let name = default_branch.unwrap_or_else(|| "HEAD".into());
                let tip = find(&name).or_else(|| find("HEAD"));
                (name, tip)
            }
            _ => {
                let name = reference.remote_ref().unwrap_or_default();
                let tip = find(&format!("{name}^{{}}")).or_else(|| find(&name));
                (name, tip)
            }
        };
        let Some(tip) = tip else {
            return Err(Error::RefNotFound {
                url: self.url.to_string(),
                reference: reference.to_string(),
            });
        };
        let local = reference.local_ref();
        if let Some(commit) = self.peel_commit(tip) {
            self.set_ref(&local, commit, reference)?;
            return Ok(Fetched {
                commit: commit.to_string(),
                downloaded: false,
            });
        }
        let refspec = format!("+{remote_name}:{local}");
        self.fetch_refspecs(&[refspec], reference, auth, deadline, opts.timeout)?;
        let commit = self
            .repo
            .find_reference(&local)
            .and_then(|r| r.peel_to_commit())
            .map_err(|e| Error::Fetch {
                url: self.url.to_string(),
                reference: reference.to_string(),
                message: format!(
                    "the fetched ref does not point at a commit: {}",
                    e.message()
                ),
            })?;
        Ok(Fetched {
            commit: commit.id().to_string(),
            downloaded: true,
        })
    }

    fn fetch_commit(
        &self,
        sha: &str,
        auth: &Auth,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<Fetched, Error> {
        let reference = Reference::Commit(sha.to_string());
        let not_found = || Error::RefNotFound {
            url: self.url.to_string(),
            reference: reference.to_string(),
        };
        let oid = Oid::from_str(sha).map_err(|_| not_found())?;
        if let Some(c) = self.peel_commit(oid) {
            return Ok(Fetched {
                commit: c.to_string(),
                downloaded: false,
            });
        }
        // Servers that allow fetching any reachable commit by id answer the first form; the
        // others need all branches and tags to be fetched.
        let direct = self.fetch_refspecs(
            &[format!("+{sha}:{}", reference.local_ref())],
            &reference,
            auth,
            deadline,
            timeout,
        );
        if let Err(
            e @ (Error::Timeout { .. } | Error::HostKey { .. } | Error::Authentication { .. }),
        ) = direct
        {
            return Err(e);
        }
        if self.peel_commit(oid).is_none() {
            self.fetch_refspecs(
                &[
                    "+refs/heads/*:refs/graft/heads/*".to_string(),
                    "+refs/tags/*:refs/graft/tags/*".to_string(),
                ],
                &reference,
                auth,
                deadline,
                timeout,
            )?;
        }
        let commit = self.peel_commit(oid).ok_or_else(not_found)?;
        self.set_ref(&reference.local_ref(), commit, &reference)?;
        Ok(Fetched {
            commit: commit.to_string(),
            downloaded: true,
        })
    }

    /// The commit `oid` names (peeling annotated tags), if the cache has it.
    fn peel_commit(&self, oid: Oid) -> Option<Oid> {
        let obj = self.repo.find_object(oid, None).ok()?;
        obj.peel_to_commit().ok().map(|c| c.id())
    }

    fn set_ref(&self, name: &str, commit: Oid, reference: &Reference) -> Result<(), Error> {
        self.repo
            .reference(name, commit, true, "graft fetch")
            .map(|_| ())
            .map_err(|e| Error::Fetch {
                url: self.url.to_string(),
                reference: reference.to_string(),
                message: format!("update {name} in the cache: {}", e.message()),
            })
    }

    /// Lists the remote's refs and its default branch.
    #[allow(clippy::type_complexity)]
    fn ls_remote(
        &self,
        auth: &Auth,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<(Vec<(String, Oid)>, Option<String>), Error> {
        let state = Rc::new(RefCell::new(CallbackState::default()));
        let mut remote = self
            .repo
            .remote_anonymous(self.url.for_libgit2())
            .map_err(|e| self.classify(e, &state, None, auth, timeout))?;
        let callbacks = self.callbacks(auth, deadline, &state);
        let conn = remote
            .connect_auth(Direction::Fetch, Some(callbacks), None)
            .map_err(|e| self.classify(e, &state, None, auth, timeout))?;
        let heads = conn
            .list()
            .map_err(|e| self.classify(e, &state, None, auth, timeout))?
            .iter()
            .map(|h| (h.name().to_string(), h.oid()))
            .collect();
        let default = conn
            .default_branch()
            .ok()
            .and_then(|b| b.as_str().ok().map(str::to_string));
        Ok((heads, default))
    }

    fn fetch_refspecs(
        &self,
        refspecs: &[String],
        reference: &Reference,
        auth: &Auth,
        deadline: Instant,
        timeout: Duration,
    ) -> Result<(), Error> {
        let state = Rc::new(RefCell::new(CallbackState::default()));
        let mut remote = self
            .repo
            .remote_anonymous(self.url.for_libgit2())
            .map_err(|e| self.classify(e, &state, Some(reference), auth, timeout))?;
        let mut fo = git2::FetchOptions::new();
        fo.remote_callbacks(self.callbacks(auth, deadline, &state))
            .download_tags(AutotagOption::None)
            .update_fetchhead(false);
        remote
            .fetch(refspecs, Some(&mut fo), None)
            .map_err(|e| self.classify(e, &state, Some(reference), auth, timeout))
    }

    fn callbacks<'a>(
        &'a self,
        auth: &'a Auth,
        deadline: Instant,
        state: &Rc<RefCell<CallbackState>>,
    ) -> git2::RemoteCallbacks<'a> {
        let mut cb = git2::RemoteCallbacks::new();
        let s = state.clone();
        cb.credentials(move |_url, user_from_url, allowed| {
            let mut st = s.borrow_mut();
            if Instant::now() >= deadline {
                st.timed_out = true;
                return Err(git2::Error::from_str("timed out"));
            }
            let attempt = st.cred_attempts;
            st.cred_attempts += 1;
            // libgit2 asks for the user name first over SSH; that does not count as a try.
            if allowed.contains(git2::CredentialType::USERNAME) {
                st.cred_attempts = 0;
            }
            let choice = auth::choose_credential(
                &auth.credentials,
                user_from_url.or(self.url.username()),
                self.url.password(),
                allowed,
                attempt,
            );
            match choice {
                Ok(c) => c.to_cred().map_err(|e| {
                    let m = format!("the credentials cannot be used: {}", e.message());
                    st.auth = Some(m.clone());
                    git2::Error::from_str(&m)
                }),
                Err(m) => {
                    st.auth = Some(m.clone());
                    Err(git2::Error::from_str(&m))
                }
            }
        });
        let s = state.clone();
        cb.certificate_check(move |cert, _host| {
            let Some(hk) = cert.as_hostkey() else {
                // X.509: libgit2 verified the chain against the system roots already.
                return Ok(CertificateCheckStatus::CertificatePassthrough);
            };
            let host = self.url.known_hosts_name().unwrap_or_default();
            let check = match (hk.hostkey(), hk.hash_sha256()) {
                (Some(raw), _) => auth.known_hosts.check(&host, raw),
                (None, Some(sha)) => auth.known_hosts.check_sha256(&host, sha),
                (None, None) => HostKeyCheck::UnknownHost,
            };
            let reason = match check {
                HostKeyCheck::Trusted => return Ok(CertificateCheckStatus::CertificateOk),
                HostKeyCheck::UnknownHost => {
                    "the host is not in known_hosts (add its key to the Secret's known_hosts)"
                        .to_string()
                }
                HostKeyCheck::Mismatch { known_types } => format!(
                    "the presented key does not match known_hosts (known key types: {})",
                    known_types.join(", ")
                ),
                HostKeyCheck::Revoked => "the presented key is revoked in known_hosts".into(),
            };
            s.borrow_mut().host_key = Some((host, reason.clone()));
            Err(git2::Error::from_str(&reason))
        });
        let s = state.clone();
        cb.transfer_progress(move |_| {
            let alive = Instant::now() < deadline;
            if !alive {
                s.borrow_mut().timed_out = true;
            }
            alive
        });
        let s = state.clone();
        cb.sideband_progress(move |_| {
            let alive = Instant::now() < deadline;
            if !alive {
                s.borrow_mut().timed_out = true;
            }
            alive
        });
        cb
    }

    /// Turns a libgit2 error into the crate's error, using what the callbacks recorded.
    fn classify(
        &self,
        e: git2::Error,
        state: &Rc<RefCell<CallbackState>>,
        reference: Option<&Reference>,
        auth: &Auth,
        timeout: Duration,
    ) -> Error {
        let st = state.borrow();
        let url = self.url.to_string();
        if st.timed_out || (e.class() == ErrorClass::Net && e.message().contains("timed out")) {
            return Error::Timeout {
                url,
                after: timeout,
            };
        }
        if let Some((host, reason)) = &st.host_key {
            return Error::HostKey {
                host: host.clone(),
                reason: reason.clone(),
            };
        }
        let message = url::scrub(e.message(), &self.url, &auth.credentials.secrets());
        if let Some(m) = &st.auth {
            return Error::Authentication {
                url,
                message: m.clone(),
            };
        }
        if e.code() == ErrorCode::Auth
            || message.contains("401")
            || message.contains("403")
            || message.to_ascii_lowercase().contains("authentication")
        {
            return Error::Authentication { url, message };
        }
        match reference {
            Some(r)
                if !matches!(
                    e.class(),
                    ErrorClass::Net
                        | ErrorClass::Ssh
                        | ErrorClass::Http
                        | ErrorClass::Os
                        | ErrorClass::Ssl
                ) =>
            {
                Error::Fetch {
                    url,
                    reference: r.to_string(),
                    message,
                }
            }
            _ => Error::Connect { url, message },
        }
    }

    /// How `new` relates to `last_applied` (both full SHAs).
    pub fn history(&self, last_applied: &str, new: &str) -> Result<History, Error> {
        if last_applied == new {
            return Ok(History::Same);
        }
        let read = |sha: &str| {
            Oid::from_str(sha).map_err(|e| Error::ReadCommit {
                sha: sha.to_string(),
                message: e.message().to_string(),
            })
        };
        let (old, new_oid) = (read(last_applied)?, read(new)?);
        if self.repo.find_commit(new_oid).is_err() {
            return Err(Error::ReadCommit {
                sha: new.to_string(),
                message: "the commit is not in the cache".into(),
            });
        }
        if self.repo.find_commit(old).is_err() {
            return Ok(History::Missing);
        }
        let graph = |a, b| {
            self.repo
                .graph_descendant_of(a, b)
                .map_err(|e| Error::ReadCommit {
                    sha: new.to_string(),
                    message: e.message().to_string(),
                })
        };
        Ok(if graph(new_oid, old)? {
            History::FastForward
        } else if graph(old, new_oid)? {
            History::Behind
        } else {
            History::Diverged
        })
    }

    /// Checks the history from `last_applied` to `new` for `reference`: an error naming both
    /// commits when it was rewritten (see [`History::is_rewrite`]).
    pub fn check_history(
        &self,
        reference: &Reference,
        last_applied: &str,
        new: &str,
    ) -> Result<History, Error> {
        let h = self.history(last_applied, new)?;
        if h.is_rewrite(reference) {
            return Err(Error::HistoryRewritten {
                last_applied: last_applied.to_string(),
                new: new.to_string(),
            });
        }
        Ok(h)
    }
}

#[cfg(test)]
mod tests;
