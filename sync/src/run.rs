//! Syncing one source without a GitSync object (`graft sync --repo URL --path P`): fetch →
//! render → plan → validate (server-side dry-run of everything) → apply → prune.
//!
//! Nothing of a commit is applied unless the whole commit validates; the last good commit stays.
//! Without a GitSync status to keep it in, the last applied commit and the inventory live in a
//! ConfigMap `graft-sync-<name>` next to the objects (like kubectl's ApplySet parent), so prune
//! works across runs and restarts.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use graft_api::graft::gitsync::InventoryEntry;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use serde_json::json;

use crate::apply::{Action, Applier};
use crate::git::{Auth, FetchOptions, GitCache, ReadLimits, Reference};
use crate::object::ObjectRef;
use crate::plan::{self, Owner};
use crate::render::{self, Directory, Renderer};

/// What to keep the cluster equal to.
#[derive(Clone, Debug)]
pub struct Source {
    /// Repository URL (file://, a local path, git://, https://, ssh://).
    pub url: String,
    /// Branch, tag, commit, or the default branch.
    pub reference: Reference,
    /// Directory in the repository holding the manifests.
    pub path: String,
    /// Delete objects that left the repository (only ones this source created).
    pub prune: bool,
    /// Name of this sync: owner label `<namespace>.<name>` and state ConfigMap `graft-sync-<name>`.
    pub owner: Owner,
    /// Credentials and trusted SSH host keys.
    pub auth: Auth,
}

/// What one sync did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The commit now applied.
    pub commit: String,
    /// Objects created, configured (changed or drift reverted) and found unchanged.
    pub created: usize,
    /// Objects whose live state differed and were applied.
    pub configured: usize,
    /// Objects that already matched.
    pub unchanged: usize,
    /// Objects pruned.
    pub pruned: usize,
    /// Objects that could not be pruned, with why (kept in the inventory to retry).
    pub prune_failures: Vec<String>,
    /// The objects pruned (`Kind.group namespace/name`).
    pub pruned_objects: Vec<String>,
    /// Objects that had drifted from the commit already applied, now reverted.
    pub drift: Vec<Drift>,
    /// Requests the apply sent to the API server (reads, dry-runs, writes).
    pub requests: usize,
    /// Writes among them.
    pub writes: usize,
    /// Jobs replaced because their definition changed (`Kind.group namespace/name`).
    pub replaced: Vec<String>,
    /// The commit has later sync waves that were not applied yet: why (the workload of an
    /// applied wave that is not healthy yet). The next sync goes on from there.
    pub held: Option<String>,
}

impl Outcome {
    /// Logs what the sync did: the counts, each prune failure and each drift reverted.
    pub fn log(&self) {
        tracing::info!(
            commit = %self.commit, created = self.created, configured = self.configured,
            unchanged = self.unchanged, pruned = self.pruned, "synced"
        );
        if let Some(h) = &self.held {
            tracing::info!(commit = %self.commit, "held: {h}");
        }
        for r in &self.replaced {
            tracing::info!(commit = %self.commit, object = %r, "replaced: its definition changed");
        }
        for f in &self.prune_failures {
            tracing::warn!(failure = %f, "could not prune");
        }
        for d in &self.drift {
            tracing::info!(object = %d, "drift corrected");
        }
    }
}

/// An object whose live state had drifted from a commit already applied, and was reverted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Drift {
    /// The object.
    pub object: ObjectRef,
    /// Who changed it, when the managed fields tell (`kubectl-edit`, ...).
    pub editors: Vec<String>,
}

impl std::fmt::Display for Drift {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.object)?;
        if !self.editors.is_empty() {
            write!(f, " (changed by {})", self.editors.join(", "))?;
        }
        Ok(())
    }
}

/// The objects an apply of an already-applied commit had to write: drift it reverted.
pub fn drift(report: &crate::apply::ApplyReport) -> Vec<Drift> {
    report
        .objects
        .iter()
        .filter(|o| o.action == Action::Configured)
        .map(|o| Drift {
            object: o.reference.clone(),
            editors: o.reverted.clone(),
        })
        .collect()
}

/// An Event about `drift` on the object that drifted: what was reverted and to which commit.
pub async fn publish_drift_event(
    recorder: &graft_events::Recorder,
    drift: &Drift,
    commit: &str,
    sync: &str,
) {
    let r = &drift.object;
    let who = if drift.editors.is_empty() {
        "changes made outside Git".to_string()
    } else {
        format!("changes made by {}", drift.editors.join(", "))
    };
    let note = format!(
        "{sync} reverted {who} to match commit {}",
        graft_api::commit::short_sha(commit)
    );
    let regarding = k8s_openapi::api::core::v1::ObjectReference {
        api_version: Some(if r.group.is_empty() {
            r.version.clone()
        } else {
            format!("{}/{}", r.group, r.version)
        }),
        kind: Some(r.kind.clone()),
        name: Some(r.name.clone()),
        namespace: r.namespace.clone(),
        ..Default::default()
    };
    if let Err(e) = recorder
        .publish(
            graft_events::EventType::Normal,
            "DriftCorrected",
            &note,
            &regarding,
        )
        .await
    {
        tracing::warn!(object = %r, error = %e, "could not publish the drift event");
    }
}

/// How long [`Syncer::run_until`] waits after `failures` failed syncs in a row: the interval
/// after a success, then 10 s, 20 s, 40 s, ... never longer than the interval.
pub fn retry_after(failures: u32, interval: Duration) -> Duration {
    if failures == 0 {
        interval
    } else {
        Duration::from_secs(5u64 << failures.min(10)).min(interval)
    }
}

/// Why a sync applied nothing (or stopped part way, for [`SyncError::Apply`]).
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// Fetching or reading the commit failed (unreachable remote, bad credentials, missing
    /// path, a file over the size limit, history rewritten).
    #[error("{0}")]
    Source(crate::Error),
    /// The commit was fetched but cannot be used: it rewrites the history of the last applied
    /// commit (a force-push), its path is missing, or a file is over the size limit.
    #[error("commit {commit}: {source}")]
    Unusable {
        /// The commit.
        commit: String,
        /// Its message, author and time.
        info: Box<crate::git::CommitInfo>,
        /// Why.
        source: crate::Error,
    },
    /// The manifests of the commit are invalid; nothing was applied.
    #[error("commit {commit}: {message}")]
    Invalid {
        /// The commit.
        commit: String,
        /// Every problem found, one per line, each naming file, document and line.
        message: String,
    },
    /// The API server refused a write part way through.
    #[error("commit {commit}: {source}")]
    Apply {
        /// The commit.
        commit: String,
        /// The cause.
        source: crate::apply::Error,
    },
    /// Reading or writing the sync's state ConfigMap failed.
    #[error("state ConfigMap {name}: {source}")]
    State {
        /// `namespace/name` of the ConfigMap.
        name: String,
        /// The cause.
        source: kube::Error,
    },
    /// The blocking Git task did not finish.
    #[error("git task failed: {0}")]
    Task(String),
}

/// A fetched commit: its metadata and the manifest files under the source's path.
pub struct FetchedCommit {
    /// Full SHA.
    pub commit: String,
    /// Message, author, time.
    pub info: crate::git::CommitInfo,
    /// The files the renderer accepts.
    pub files: Vec<render::SourceFile>,
}

/// The steps of a sync, shared by `graft sync` and the GitSync controller: fetch, prepare
/// (render, plan, validate), apply (+ prune).
#[derive(Clone)]
pub struct Engine {
    cache: Arc<GitCache>,
    applier: Applier,
}

impl Engine {
    /// An engine that keeps its Git caches under `cache_dir`.
    pub fn new(client: Client, cache_dir: PathBuf) -> Self {
        Engine {
            cache: Arc::new(GitCache::new(cache_dir)),
            applier: Applier::new(client),
        }
    }

    /// The applier (for reading live objects: health, progress).
    pub fn applier(&self) -> &Applier {
        &self.applier
    }

    /// Fetch the source's reference and read its manifests; refuses a rewritten history
    /// (force-push) relative to `last_applied` unless the new tip starts with `accept_rewrite`.
    // The blocking closure returns the same (large) error type as the function.
    #[allow(clippy::result_large_err)]
    pub async fn fetch(
        &self,
        source: &Source,
        last_applied: Option<&str>,
        accept_rewrite: Option<&str>,
    ) -> Result<FetchedCommit, SyncError> {
        let cache = self.cache.clone();
        let source = source.clone();
        let last = last_applied.map(str::to_string);
        let accept = accept_rewrite.map(str::to_string);
        tokio::task::spawn_blocking(move || {
            let repo = cache.open(&source.url).map_err(SyncError::Source)?;
            let fetched = repo
                .fetch(&source.reference, &source.auth, &FetchOptions::default())
                .map_err(SyncError::Source)?;
            let commit = fetched.commit;
            let info = repo.commit_info(&commit).map_err(SyncError::Source)?;
            let unusable = |source: crate::Error| SyncError::Unusable {
                commit: commit.clone(),
                info: Box::new(info.clone()),
                source,
            };
            let accepted = accept
                .as_deref()
                .is_some_and(|a| !a.is_empty() && commit.starts_with(a));
            if let Some(last) = &last
                && last != &commit
                && !accepted
            {
                repo.check_history(&source.reference, last, &commit)
                    .map_err(unusable)?;
            }
            let files = repo
                .read_files(&commit, &source.path, &ReadLimits::default(), &|p| {
                    Directory.accepts(p)
                })
                .map_err(unusable)?;
            Ok(FetchedCommit {
                commit,
                info,
                files,
            })
        })
        .await
        .map_err(|e| SyncError::Task(e.to_string()))?
    }

    /// Render, plan and validate (server-side dry-run of every object) a fetched commit.
    /// Nothing is written to the cluster.
    pub async fn prepare(
        &self,
        fetched: &FetchedCommit,
        owner: &Owner,
        default_namespace: &str,
    ) -> Result<plan::ApplyPlan, SyncError> {
        let invalid = |message: String| SyncError::Invalid {
            commit: fetched.commit.clone(),
            message,
        };
        let objects =
            render::render(&Directory, &fetched.files).map_err(|e| invalid(e.to_string()))?;
        let scopes = self
            .applier
            .discover()
            .await
            .map_err(|source| SyncError::Apply {
                commit: fetched.commit.clone(),
                source,
            })?;
        let plan = plan::plan(&objects, &scopes, owner, default_namespace)
            .map_err(|e| invalid(e.to_string()))?;
        if let Err(errors) = self.applier.validate(&plan).await {
            let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
            return Err(invalid(format!(
                "{} invalid object(s), nothing applied:\n{}",
                lines.len(),
                lines.join("\n")
            )));
        }
        Ok(plan)
    }

    /// Apply a prepared plan and, with `prune`, delete what left the previous inventory.
    /// Returns the outcome, the per-object report and the inventory to store.
    pub async fn apply(
        &self,
        commit: &str,
        plan: &plan::ApplyPlan,
        prune: bool,
        old_inventory: &[InventoryEntry],
        owner: &Owner,
    ) -> Result<(Outcome, crate::apply::ApplyReport, Vec<InventoryEntry>), SyncError> {
        // Sync waves one after the other; a wave waits for the workloads of the earlier ones.
        let waves = plan.sync_waves();
        let mut report = crate::apply::ApplyReport::default();
        let mut held = None;
        for (i, wave) in waves.iter().enumerate() {
            let part = if waves.len() == 1 {
                std::borrow::Cow::Borrowed(plan)
            } else {
                std::borrow::Cow::Owned(plan.sync_wave(*wave))
            };
            let applied = self
                .applier
                .apply(&part)
                .await
                .map_err(|source| SyncError::Apply {
                    commit: commit.to_string(),
                    source,
                })?;
            report.objects.extend(applied.objects);
            report.requests += applied.requests;
            report.writes += applied.writes;
            let Some(next) = waves.get(i + 1) else {
                break;
            };
            if let Some(waiting) = self.first_unhealthy(&part).await {
                held = Some(format!("sync wave {next} waits for wave {wave}: {waiting}"));
                break;
            }
        }
        let mut outcome = Outcome {
            commit: commit.to_string(),
            requests: report.requests,
            writes: report.writes,
            replaced: report
                .objects
                .iter()
                .filter(|o| o.replaced)
                .map(|o| o.reference.to_string())
                .collect(),
            ..Default::default()
        };
        for o in &report.objects {
            match o.action {
                Action::Created => outcome.created += 1,
                Action::Configured => outcome.configured += 1,
                Action::Unchanged => outcome.unchanged += 1,
            }
        }
        let mut inventory = plan.inventory();
        if held.is_some() {
            // Later waves are not applied yet: nothing is pruned, and the inventory is what was
            // listed before plus what this apply wrote.
            let mut partial: BTreeMap<String, InventoryEntry> = old_inventory
                .iter()
                .map(|e| (ObjectRef::from(e).id().to_string(), e.clone()))
                .collect();
            for o in &report.objects {
                partial.insert(
                    o.reference.id().to_string(),
                    InventoryEntry::from(&o.reference),
                );
            }
            inventory = partial.into_values().collect();
            inventory.sort();
            outcome.held = held;
        } else if prune {
            let live = self
                .applier
                .live_meta(old_inventory)
                .await
                .map_err(|source| SyncError::Apply {
                    commit: commit.to_string(),
                    source,
                })?;
            let new_refs: Vec<&ObjectRef> = plan.objects().map(|o| &o.reference).collect();
            let prune = plan::prune_set(old_inventory, new_refs, &live, owner);
            let pruned = self.applier.prune(&prune).await;
            outcome.pruned = pruned.deleted.len();
            outcome.pruned_objects = pruned.deleted.iter().map(ToString::to_string).collect();
            for (r, why) in &pruned.failed {
                outcome.prune_failures.push(format!("{r}: {why}"));
                inventory.push(InventoryEntry::from(r));
            }
        } else {
            // Without prune, objects that left the repository stay ours: keep them listed so a
            // later sync with prune can still remove them.
            let current: BTreeMap<_, _> = inventory
                .iter()
                .map(|e| (ObjectRef::from(e).id(), ()))
                .collect();
            inventory.extend(
                old_inventory
                    .iter()
                    .filter(|e| !current.contains_key(&ObjectRef::from(*e).id()))
                    .cloned(),
            );
        }
        Ok((outcome, report, inventory))
    }

    /// The first workload of `part` (a kind a commit waits for) that is not healthy yet, as
    /// `Kind.group namespace/name is <state>: <message>`; `None` when all are.
    async fn first_unhealthy(&self, part: &plan::ApplyPlan) -> Option<String> {
        for o in part.objects() {
            let r = &o.reference;
            if !graft_api::workload::WorkloadKind::is_rollout(&r.group, &r.kind) {
                continue;
            }
            let live = self.applier.get(r).await.ok().flatten();
            let health = crate::health::health_of(live.as_ref());
            if health.status != crate::health::HealthStatus::Healthy {
                return Some(format!("{r} is {}: {}", health.status, health.message));
            }
        }
        None
    }
}

/// Syncs one [`Source`] on demand, keeping its state in a ConfigMap.
pub struct Syncer {
    source: Source,
    engine: Engine,
    client: Client,
    /// Namespace for namespaced objects that name none, and for the state ConfigMap.
    namespace: String,
    recorder: graft_events::Recorder,
    accept_rewrite: Option<String>,
}

#[derive(Default)]
struct State {
    commit: Option<String>,
    inventory: Vec<InventoryEntry>,
}

impl Syncer {
    /// A syncer that keeps its Git cache under `cache_dir`.
    pub fn new(client: Client, cache_dir: PathBuf, source: Source) -> Self {
        let namespace = source.owner.namespace.clone();
        Syncer {
            engine: Engine::new(client.clone(), cache_dir),
            recorder: graft_events::Recorder::new(client.clone(), "graft-sync", &source.owner.name),
            client,
            source,
            namespace,
            accept_rewrite: None,
        }
    }

    /// Applies a rewritten history (a force-push) when the new tip starts with `commit`.
    pub fn accept_rewrite(mut self, commit: Option<String>) -> Self {
        self.accept_rewrite = commit;
        self
    }

    fn state_name(&self) -> String {
        format!("graft-sync-{}", self.source.owner.name)
    }

    async fn read_state(&self) -> Result<State, SyncError> {
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), &self.namespace);
        let cm = api
            .get_opt(&self.state_name())
            .await
            .map_err(|source| SyncError::State {
                name: format!("{}/{}", self.namespace, self.state_name()),
                source,
            })?;
        let data = cm.and_then(|c| c.data).unwrap_or_default();
        Ok(State {
            commit: data.get("commit").cloned(),
            inventory: data
                .get("inventory")
                .and_then(|i| serde_json::from_str(i).ok())
                .unwrap_or_default(),
        })
    }

    async fn write_state(
        &self,
        commit: &str,
        inventory: &[InventoryEntry],
    ) -> Result<(), SyncError> {
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), &self.namespace);
        let body = json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": self.state_name(), "labels": {"app.kubernetes.io/managed-by": "graft"}},
            "data": {
                "commit": commit,
                "url": crate::git::RepoUrl::parse(&self.source.url).map(|u| u.redacted().to_string()).unwrap_or_default(),
                "path": self.source.path,
                "inventory": serde_json::to_string(inventory).unwrap_or_else(|_| "[]".into()),
            }
        });
        api.patch(
            &self.state_name(),
            &PatchParams::apply("graft").force(),
            &Patch::Apply(&body),
        )
        .await
        .map(|_| ())
        .map_err(|source| SyncError::State {
            name: format!("{}/{}", self.namespace, self.state_name()),
            source,
        })
    }

    /// Syncs now, then after every `interval` until `shutdown` completes (a sync in progress is
    /// cancelled where it stands). After failures it tries again sooner, backing off
    /// ([`retry_after`]). Every result is logged.
    pub async fn run_until(&self, interval: Duration, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut failures = 0u32;
        loop {
            let synced = tokio::select! {
                r = self.sync_once() => r,
                _ = &mut shutdown => return,
            };
            match synced {
                Ok(o) => {
                    failures = 0;
                    o.log();
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    tracing::error!(error = %e, "sync failed");
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(retry_after(failures, interval)) => {}
                _ = &mut shutdown => return,
            }
        }
    }

    /// Fetch the reference and make the cluster equal to its commit. Nothing is applied when
    /// the commit is invalid or its history was rewritten; the last good commit stays.
    pub async fn sync_once(&self) -> Result<Outcome, SyncError> {
        let state = self.read_state().await?;
        let fetched = self
            .engine
            .fetch(
                &self.source,
                state.commit.as_deref(),
                self.accept_rewrite.as_deref(),
            )
            .await?;
        let plan = self
            .engine
            .prepare(&fetched, &self.source.owner, &self.namespace)
            .await?;
        let (mut outcome, report, inventory) = self
            .engine
            .apply(
                &fetched.commit,
                &plan,
                self.source.prune,
                &state.inventory,
                &self.source.owner,
            )
            .await?;
        self.write_state(&fetched.commit, &inventory).await?;
        if state.commit.as_deref() == Some(fetched.commit.as_str()) {
            let sync = format!("graft sync {}/{}", self.namespace, self.source.owner.name);
            for d in drift(&report) {
                publish_drift_event(&self.recorder, &d, &fetched.commit, &sync).await;
                outcome.drift.push(d);
            }
        }
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_syncs_back_off_up_to_the_interval() {
        let minute = Duration::from_secs(60);
        let secs = |failures| retry_after(failures, minute).as_secs();
        assert_eq!(secs(0), 60, "after a success: the interval");
        assert_eq!([secs(1), secs(2), secs(3), secs(4)], [10, 20, 40, 60]);
        assert_eq!(secs(u32::MAX), 60);
        assert_eq!(
            retry_after(1, Duration::from_secs(3)),
            Duration::from_secs(3)
        );
    }

    fn syncer() -> Syncer {
        // An API server nobody listens on: every sync fails at once.
        let config = kube::Config::new("http://127.0.0.1:9".parse().expect("a URL"));
        let client = Client::try_from(config).expect("a client");
        let source = Source {
            url: "file:///nonexistent/repo".into(),
            reference: Reference::DefaultBranch,
            path: ".".into(),
            prune: false,
            owner: Owner {
                namespace: "ns".into(),
                name: "app".into(),
            },
            auth: Auth::default(),
        };
        let cache = std::env::temp_dir().join("graft-sync-run-until-test");
        Syncer::new(client, cache, source)
    }

    /// The sync runs on the async runtime, not on a blocking thread: its futures are `Send`.
    #[allow(dead_code)]
    fn the_sync_futures_are_send(s: &Syncer) {
        fn send<T: Send>(_: T) {}
        send(s.sync_once());
        send(s.run_until(Duration::ZERO, std::future::pending()));
    }

    #[tokio::test]
    async fn the_polling_loop_stops_when_asked() {
        let s = syncer();
        let stop = tokio::time::sleep(Duration::from_millis(200));
        let stopped = tokio::time::timeout(
            Duration::from_secs(10),
            s.run_until(Duration::from_secs(3600), stop),
        )
        .await;
        assert!(
            stopped.is_ok(),
            "run_until did not return after its shutdown future"
        );
    }
}
