//! The GitSync controller: keeps each GitSync's repository path applied and records, for every
//! commit, what happened to it (detected → validated → applying → rolling out → healthy /
//! failed / superseded) in `status.history`.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use graft_api::apps::v1alpha1::ImagePullJob;
use graft_api::graft::gitsync::{
    CommitPhase, GitSync, GitSyncStatus, PrePullMode, WorkloadProgress,
};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action as Requeue;
use kube::runtime::reflector::ObjectRef as KubeRef;
use kube::runtime::{Controller, watcher};
use kube::{Api, Client, ResourceExt};
use serde_json::json;

use crate::apply::Action;
use crate::git::{Auth, Reference};
use crate::health::{self, HealthStatus};
use crate::object::ObjectRef;
use crate::plan::Owner;
use crate::prepull;
use crate::run::{Engine, Source, SyncError};

/// Kinds whose rollout a commit waits for.
const WORKLOAD_KINDS: [(&str, &str); 6] = [
    ("apps", "Deployment"),
    ("apps", "StatefulSet"),
    ("apps", "DaemonSet"),
    ("apps.kruise.io", "CloneSet"),
    ("apps.kruise.io", "StatefulSet"),
    ("apps.kruise.io", "SidecarSet"),
];

/// How long a BeforeRollout hold waits for an ImagePullJob controller to pick up the jobs at
/// all before applying without the pre-pull (a cluster with no node agent or manager).
const NO_PRE_PULL_CONTROLLER: Duration = Duration::from_secs(30);

/// How often a commit's rollout is looked at while it is not finished.
const ROLLOUT_POLL: Duration = Duration::from_secs(2);

struct Ctx {
    client: Client,
    engine: Engine,
    recorder: graft_events::Recorder,
}

/// Errors of one GitSync reconcile that are retried (sync failures are written to the status).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The sync task panicked or was cancelled.
    #[error("{key}: sync task: {message}")]
    Task {
        /// `namespace/name` of the GitSync.
        key: String,
        /// What happened.
        message: String,
    },
    /// Reading the current status failed.
    #[error("{key}: reading status: {source}")]
    ReadStatus {
        /// `namespace/name` of the GitSync.
        key: String,
        /// The cause.
        source: kube::Error,
    },
    /// Writing the status failed.
    #[error("{key}: writing status: {source}")]
    Status {
        /// `namespace/name` of the GitSync.
        key: String,
        /// The cause.
        source: kube::Error,
    },
}

/// The push webhook endpoint of the GitSync controller.
#[derive(Clone, Debug)]
pub struct WebhookOptions {
    /// Where to listen (`POST /hook`).
    pub addr: std::net::SocketAddr,
    /// The shared secret of the signatures (GitHub/Gitea/Forgejo/generic HMAC, GitLab token).
    pub secret: Vec<u8>,
}

/// Run the GitSync controller (all namespaces, or one) until the process stops; with
/// `webhook`, a verified push syncs the GitSyncs that follow the pushed repository and ref at
/// once.
pub async fn run(
    client: Client,
    cache_dir: std::path::PathBuf,
    namespace: Option<String>,
    webhook: Option<WebhookOptions>,
) -> Result<(), std::io::Error> {
    let api: Api<GitSync> = match &namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let instance = std::env::var("POD_NAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "graft".into());
    let ctx = Arc::new(Ctx {
        engine: Engine::new(client.clone(), cache_dir),
        recorder: graft_events::Recorder::new(client.clone(), "graft-sync", &instance),
        client,
    });
    let controller = Controller::new(api, watcher::Config::default().any_semantic());
    let store = controller.store();
    let (tx, rx) = futures::channel::mpsc::unbounded::<KubeRef<GitSync>>();
    let controller = controller
        .reconcile_on(rx)
        .shutdown_on_signal()
        .run(reconcile, error_policy, ctx)
        .for_each(|r| {
            if let Err(e) = r {
                tracing::debug!(error = %e, "gitsync reconcile");
            }
            futures::future::ready(())
        });
    let watch = crate::watch::watch_local_repos(store.clone(), tx.clone());
    match webhook {
        None => {
            drop(tx);
            tokio::select! {
                _ = controller => {},
                _ = watch => {},
            }
            Ok(())
        }
        Some(opts) => {
            let listener = tokio::net::TcpListener::bind(opts.addr).await?;
            tracing::info!(addr = %opts.addr, "push webhooks on POST /hook");
            let app = webhook_router(store, tx, Arc::new(opts.secret));
            tokio::select! {
                _ = controller => Ok(()),
                _ = watch => Ok(()),
                r = axum::serve(listener, app) => r,
            }
        }
    }
}

fn webhook_router(
    store: kube::runtime::reflector::Store<GitSync>,
    tx: futures::channel::mpsc::UnboundedSender<KubeRef<GitSync>>,
    secret: Arc<Vec<u8>>,
) -> axum::Router {
    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::post;
    axum::Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let store = store.clone();
            let tx = tx.clone();
            let secret = secret.clone();
            async move {
                let pairs: Vec<(&str, &str)> = headers
                    .iter()
                    .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)))
                    .collect();
                match crate::webhook::verify(&pairs, &body, &secret) {
                    Err(e) => {
                        tracing::warn!(error = %e, "webhook rejected");
                        (StatusCode::UNAUTHORIZED, "invalid signature\n".to_string())
                    }
                    Ok((_, crate::webhook::Event::Push(push))) => {
                        let mut n = 0;
                        for gs in store.state() {
                            let reference = Reference::from_spec(gs.spec.git_ref.as_ref());
                            if push.matches(&gs.spec.url, &reference) {
                                n += 1;
                                let _ = tx.unbounded_send(KubeRef::from_obj(gs.as_ref()));
                            }
                        }
                        tracing::info!(gitsyncs = n, "push webhook");
                        (StatusCode::ACCEPTED, format!("{n} GitSync(s) to sync\n"))
                    }
                    Ok(_) => (StatusCode::OK, "nothing to do\n".to_string()),
                }
            }
        }),
    )
}

fn error_policy(gs: Arc<GitSync>, err: &Error, _ctx: Arc<Ctx>) -> Requeue {
    tracing::warn!(gitsync = %gs.name_any(), error = %err, "reconcile failed");
    Requeue::requeue(Duration::from_secs(5))
}

fn now() -> Time {
    Time(Timestamp::now())
}

async fn reconcile(gs: Arc<GitSync>, ctx: Arc<Ctx>) -> Result<Requeue, Error> {
    // The apply engine's stream combinators borrow across awaits in a way the compiler cannot
    // prove `Send` for the controller's task; run each sync on a blocking thread instead.
    let handle = tokio::runtime::Handle::current();
    let key = format!("{}/{}", gs.namespace().unwrap_or_default(), gs.name_any());
    tokio::task::spawn_blocking(move || handle.block_on(sync_gitsync(gs, ctx)))
        .await
        .map_err(|e| Error::Task {
            key,
            message: e.to_string(),
        })?
}

async fn sync_gitsync(cached: Arc<GitSync>, ctx: Arc<Ctx>) -> Result<Requeue, Error> {
    let ns = cached.namespace().unwrap_or_default();
    let name = cached.name_any();
    let key = format!("{ns}/{name}");
    // The controller's cached object can predate this controller's own last status write (a
    // file-watch or webhook trigger can arrive before the watch event of that write): with the
    // stale status, a commit would be recorded as new a second time and lose its phases and
    // workloads. Read the object fresh.
    let api: Api<GitSync> = Api::namespaced(ctx.client.clone(), &ns);
    let gs = match api.get_opt(&name).await {
        Ok(Some(gs)) => gs,
        Ok(None) => return Ok(Requeue::await_change()),
        Err(source) => return Err(Error::ReadStatus { key, source }),
    };
    let spec = gs.spec.defaulted();
    if spec.suspend == Some(true) {
        return Ok(Requeue::await_change());
    }
    let interval = spec.interval().unwrap_or(Duration::from_secs(60));
    let mut status = gs.status.clone().unwrap_or_default();
    status.observed_generation = gs.metadata.generation.unwrap_or(0);
    let owner = Owner {
        namespace: ns.clone(),
        name: name.clone(),
    };

    let auth = match read_auth(&ctx.client, &ns, &spec).await {
        Ok(a) => a,
        Err(message) => {
            event(&ctx, &gs, Warning, "CredentialsFailed", &message).await;
            set_ready(&mut status, false, "CredentialsFailed", &message);
            write_status(&ctx.client, &ns, &name, &status).await?;
            return Ok(Requeue::requeue(interval));
        }
    };
    let source = Source {
        url: spec.url.clone(),
        reference: Reference::from_spec(spec.git_ref.as_ref()),
        path: spec.path.clone().unwrap_or_else(|| ".".into()),
        prune: spec.prune == Some(true),
        owner: owner.clone(),
        auth,
    };

    let accept_rewrite = gs
        .annotations()
        .get(graft_api::graft::gitsync::ACCEPT_REWRITE_ANNOTATION)
        .cloned();
    let fetched = match ctx
        .engine
        .fetch(
            &source,
            status.last_applied_commit.as_deref(),
            accept_rewrite.as_deref(),
        )
        .await
    {
        Ok(f) => f,
        Err(SyncError::Unusable {
            commit,
            info,
            source,
        }) => {
            // A commit that was fetched but cannot be used gets its own failed history entry.
            let e = SyncError::Unusable {
                commit: commit.clone(),
                info: info.clone(),
                source,
            };
            if status.last_attempted_commit.as_deref() != Some(commit.as_str()) {
                let mut record = info.record();
                record.phase = CommitPhase::Detected;
                status.record_commit(record, &now());
                status.last_attempted_commit = Some(commit.clone());
                let reason = fail(&mut status, &commit, &e);
                event(&ctx, &gs, Warning, reason, &e.to_string()).await;
            } else {
                fail(&mut status, &commit, &e);
            }
            write_status(&ctx.client, &ns, &name, &status).await?;
            return Ok(Requeue::requeue(interval));
        }
        Err(e) => {
            event(&ctx, &gs, Warning, "FetchFailed", &e.to_string()).await;
            set_ready(&mut status, false, "FetchFailed", &e.to_string());
            write_status(&ctx.client, &ns, &name, &status).await?;
            return Ok(Requeue::requeue(interval.min(Duration::from_secs(30))));
        }
    };
    let commit = fetched.commit.clone();
    let new_commit = status.last_attempted_commit.as_deref() != Some(commit.as_str());
    if new_commit {
        let mut record = fetched.info.record();
        record.phase = CommitPhase::Detected;
        status.record_commit(record, &now());
        status.last_attempted_commit = Some(commit.clone());
    }
    // A commit refused as a history rewrite that fetched fine now was accepted (annotation):
    // it starts over as if it were new.
    let mut accepted_rewrite = false;
    if let Some(h) = status.commit_mut(&commit)
        && !new_commit
        && h.phase == CommitPhase::Failed
        && h.reason.as_deref() == Some("HistoryRewritten")
    {
        h.reason = None;
        h.status_message = None;
        h.phase = CommitPhase::Detected;
        *h.phase_times.slot_mut(CommitPhase::Failed) = None;
        accepted_rewrite = true;
    }
    let new_commit = new_commit || accepted_rewrite;
    let phase = status.commit(&commit).map(|h| h.phase);
    // A commit that failed validation stays failed until a new commit arrives.
    if phase == Some(CommitPhase::Failed) && status.last_applied_commit.as_deref() != Some(&commit)
    {
        write_status(&ctx.client, &ns, &name, &status).await?;
        return Ok(Requeue::requeue(interval));
    }

    let plan = match ctx.engine.prepare(&fetched, &owner, &ns).await {
        Ok(p) => p,
        Err(e) => {
            let reason = fail(&mut status, &commit, &e);
            event(&ctx, &gs, Warning, reason, &e.to_string()).await;
            write_status(&ctx.client, &ns, &name, &status).await?;
            return Ok(Requeue::requeue(interval));
        }
    };
    if new_commit {
        status.set_phase(&commit, CommitPhase::Validated, &now());
    }
    // Pre-pulls: a new commit's new images go onto the nodes first (BeforeRollout) or while
    // it applies (Parallel).
    let pre_pull = spec.pre_pull.clone().unwrap_or_default();
    let mut job_ns = job_namespaces(&owner, &status);
    job_ns.extend(plan.objects().filter_map(|o| o.reference.namespace.clone()));
    let mode = pre_pull.mode.unwrap_or_default();
    if new_commit && mode != PrePullMode::Off {
        let settings = prepull::Settings {
            parallelism: pre_pull.parallelism.unwrap_or(1),
            timeout_seconds: pre_pull.timeout_seconds.unwrap_or(600),
        };
        match start_pre_pulls(&ctx, &owner, &commit, &plan, settings).await {
            Ok(0) => {}
            Ok(n) => {
                status.set_phase(&commit, CommitPhase::PrePulling, &now());
                let note = format!(
                    "Pre-pulling {n} new image(s) of commit {} ({mode:?})",
                    crate::run::short_sha(&commit)
                );
                set_message(&mut status, &commit, &note);
                event(&ctx, &gs, Normal, "PrePulling", &note).await;
            }
            Err(e) => {
                let note = format!("pre-pull not started, applying without it: {e}");
                set_message(&mut status, &commit, &note);
                event(&ctx, &gs, Warning, "PrePullFailed", &note).await;
            }
        }
    }
    let record = status.commit(&commit);
    let pre_pulling = record.is_some_and(|h| h.phase == CommitPhase::PrePulling);
    if pre_pulling && mode == PrePullMode::BeforeRollout {
        let started = record
            .and_then(|h| h.phase_times.pre_pulling.as_ref())
            .map_or_else(Timestamp::now, |t| t.0);
        let waited = Timestamp::now()
            .duration_since(started)
            .as_secs_f64()
            .max(0.0);
        let timeout = f64::from(pre_pull.timeout_seconds.unwrap_or(600));
        let progress = pre_pull_progress(&ctx, &owner, &commit, &job_ns).await;
        let answered = progress.as_ref().is_ok_and(|p| p.answered > 0);
        // The outcome of the hold: (reason kept in the history when it did not simply finish,
        // note).
        let (reason, note) = match &progress {
            Ok(p) if p.done() => (None, format!("pre-pull done: {p}")),
            Ok(p) if waited >= timeout => (
                Some("PrePullTimedOut"),
                format!("pre-pull timed out after {waited:.0}s ({p}); applying anyway"),
            ),
            Ok(_) if !answered && waited >= NO_PRE_PULL_CONTROLLER.as_secs_f64() => (
                Some("PrePullSkipped"),
                format!(
                    "no ImagePullJob controller answered in {waited:.0}s; applying without pre-pull"
                ),
            ),
            Ok(p) => {
                set_message(&mut status, &commit, &format!("pre-pulling: {p}"));
                write_status(&ctx.client, &ns, &name, &status).await?;
                clean_pre_pulls(&ctx, &owner, &commit, false, &job_ns).await;
                return Ok(Requeue::requeue(ROLLOUT_POLL));
            }
            Err(e) => (
                Some("PrePullUnknown"),
                format!("pre-pull status unreadable ({e}); applying anyway"),
            ),
        };
        if let Some(h) = status.commit_mut(&commit) {
            h.reason = reason.map(str::to_string);
        }
        set_message(&mut status, &commit, &note);
        let type_ = if reason.is_some() { Warning } else { Normal };
        event(&ctx, &gs, type_, "PrePulled", &note).await;
    }
    // A commit applies for the first time when it is new, or when its pre-pull hold ends.
    let new_commit = new_commit || pre_pulling;
    if new_commit {
        status.set_phase(&commit, CommitPhase::Applying, &now());
    }
    let old_inventory = status.inventory.clone().unwrap_or_default();
    let (outcome, report, inventory) = match ctx
        .engine
        .apply(&commit, &plan, source.prune, &old_inventory, &owner)
        .await
    {
        Ok(r) => r,
        Err(e) => {
            let reason = fail(&mut status, &commit, &e);
            event(&ctx, &gs, Warning, reason, &e.to_string()).await;
            write_status(&ctx.client, &ns, &name, &status).await?;
            return Ok(Requeue::requeue(interval.min(Duration::from_secs(30))));
        }
    };
    status.inventory = Some(inventory);
    status.last_applied_commit = Some(commit.clone());
    let short = crate::run::short_sha(&commit);
    if new_commit {
        let message = &fetched.info.summary;
        let note = format!(
            "Applied commit {short} ({message:?}): {} created, {} configured, {} unchanged",
            outcome.created, outcome.configured, outcome.unchanged
        );
        event(&ctx, &gs, Normal, "CommitApplied", &note).await;
    } else {
        let drift = crate::run::drift(&report);
        if !drift.is_empty() {
            let list: Vec<String> = drift.iter().map(ToString::to_string).collect();
            tracing::info!(gitsync = %key, objects = ?list, "drift corrected");
            let note = format!(
                "Reverted drift from commit {short} on {} object(s): {}",
                list.len(),
                list.join("; ")
            );
            event(&ctx, &gs, Normal, "DriftCorrected", &note).await;
            let sync = format!("GitSync {key}");
            for d in &drift {
                crate::run::publish_drift_event(&ctx.recorder, d, &commit, &sync).await;
            }
        }
    }
    if !outcome.pruned_objects.is_empty() {
        let note = format!(
            "Pruned {} object(s) that left the repository at commit {short}: {}",
            outcome.pruned_objects.len(),
            outcome.pruned_objects.join("; ")
        );
        event(&ctx, &gs, Normal, "Pruned", &note).await;
    }
    for f in &outcome.prune_failures {
        event(&ctx, &gs, Warning, "PruneFailed", f).await;
    }

    // The commit's workloads: those it created or changed (remembered in its record).
    let record_workloads: Vec<ObjectRef> = status
        .commit(&commit)
        .and_then(|h| h.workloads.clone())
        .unwrap_or_default()
        .iter()
        .map(|w| ObjectRef {
            group: w.group.clone(),
            version: String::new(),
            kind: w.kind.clone(),
            namespace: w.namespace.clone(),
            name: w.name.clone(),
        })
        .collect();
    let changed: Vec<ObjectRef> = if new_commit {
        report
            .objects
            .iter()
            .filter(|o| o.action != Action::Unchanged)
            .map(|o| o.reference.clone())
            .filter(|r| {
                WORKLOAD_KINDS
                    .iter()
                    .any(|(g, k)| r.group == *g && r.kind == *k)
            })
            .collect()
    } else {
        // Later looks: the versions come from the plan.
        plan.objects()
            .map(|o| o.reference.clone())
            .filter(|r| {
                record_workloads.iter().any(|w| {
                    w.kind == r.kind
                        && w.group == r.group
                        && w.name == r.name
                        && w.namespace == r.namespace
                })
            })
            .collect()
    };
    let mut progress: Vec<WorkloadProgress> = Vec::new();
    let mut healths = Vec::new();
    for r in &changed {
        let live = ctx.engine.applier().get(r).await.ok().flatten();
        healths.push(health::health_of(live.as_ref()));
        if let Some(p) = live.as_ref().and_then(health::workload_progress) {
            progress.push(p);
        }
    }
    let overall = health::Health::worst(healths.iter());
    let current_phase = status.commit(&commit).map(|h| h.phase);
    if let Some(h) = status.commit_mut(&commit) {
        if !progress.is_empty() || new_commit {
            h.workloads = Some(progress);
        }
        h.status_message = Some(overall.message.clone());
    }
    let finished = matches!(
        current_phase,
        Some(CommitPhase::Healthy | CommitPhase::Failed)
    );
    if !finished {
        let next = match overall.status {
            HealthStatus::Healthy => CommitPhase::Healthy,
            HealthStatus::Degraded => CommitPhase::Failed,
            _ => CommitPhase::RollingOut,
        };
        if current_phase != Some(next) {
            status.set_phase(&commit, next, &now());
            match next {
                CommitPhase::Healthy => {
                    let note = format!("Commit {short} is healthy: {}", overall.message);
                    event(&ctx, &gs, Normal, "RolloutHealthy", &note).await;
                }
                CommitPhase::Failed => {
                    let note = format!("Commit {short} failed: {}", overall.message);
                    event(&ctx, &gs, Warning, "RolloutFailed", &note).await;
                }
                _ => {}
            }
        }
    }
    set_ready(
        &mut status,
        true,
        "Succeeded",
        &format!(
            "Applied revision {commit}: {} created, {} configured, {} unchanged, {} pruned",
            outcome.created, outcome.configured, outcome.unchanged, outcome.pruned
        ),
    );
    write_status(&ctx.client, &ns, &name, &status).await?;
    let current_final = status.commit(&commit).is_some_and(|h| h.phase.is_final());
    job_ns.extend(job_namespaces(&owner, &status));
    clean_pre_pulls(&ctx, &owner, &commit, current_final, &job_ns).await;
    let rolling = status.commit(&commit).is_some_and(|h| !h.phase.is_final());
    Ok(Requeue::requeue(if rolling {
        ROLLOUT_POLL
    } else {
        interval
    }))
}

/// Marks the commit failed with `e`; returns the reason (`ValidationFailed`, `FetchFailed`,
/// `ApplyFailed`).
fn fail(status: &mut GitSyncStatus, commit: &str, e: &SyncError) -> &'static str {
    let t = now();
    status.set_phase(commit, CommitPhase::Failed, &t);
    let reason = match e {
        SyncError::Invalid { .. } => "ValidationFailed",
        SyncError::Unusable {
            source: crate::Error::HistoryRewritten { .. },
            ..
        } => "HistoryRewritten",
        SyncError::Unusable { .. } => "ValidationFailed",
        SyncError::Source(_) => "FetchFailed",
        _ => "ApplyFailed",
    };
    if let Some(h) = status.commit_mut(commit) {
        h.reason = Some(reason.into());
        h.status_message = Some(e.to_string());
    }
    set_ready(status, false, "SyncFailed", &e.to_string());
    reason
}

use graft_events::EventType::{Normal, Warning};

/// An Event about the GitSync (a failure to publish it is logged, not fatal).
async fn event(ctx: &Ctx, gs: &GitSync, type_: graft_events::EventType, reason: &str, note: &str) {
    let regarding = k8s_openapi::api::core::v1::ObjectReference {
        api_version: Some("graft.dev/v1alpha1".into()),
        kind: Some("GitSync".into()),
        name: gs.metadata.name.clone(),
        namespace: gs.metadata.namespace.clone(),
        uid: gs.metadata.uid.clone(),
        ..Default::default()
    };
    // Events are capped at 1 KiB of note by the API server.
    let note: String = note.chars().take(1000).collect();
    if let Err(e) = ctx.recorder.publish(type_, reason, &note, &regarding).await {
        tracing::warn!(gitsync = %gs.name_any(), error = %e, "could not publish an event");
    }
}

fn set_ready(status: &mut GitSyncStatus, ok: bool, reason: &str, message: &str) {
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    let s = if ok { "True" } else { "False" };
    let transition = conditions
        .iter()
        .find(|c| c.type_ == "Ready" && c.status == s)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or_else(now);
    conditions.retain(|c| c.type_ != "Ready");
    conditions.push(Condition {
        type_: "Ready".into(),
        status: s.into(),
        reason: reason.into(),
        message: message.chars().take(4000).collect(),
        last_transition_time: transition,
        observed_generation: Some(status.observed_generation),
    });
}

async fn read_auth(
    client: &Client,
    ns: &str,
    spec: &graft_api::graft::gitsync::GitSyncSpec,
) -> Result<Auth, String> {
    let Some(secret_ref) = &spec.secret_ref else {
        return Ok(Auth::default());
    };
    let api: Api<Secret> = Api::namespaced(client.clone(), ns);
    let secret = api
        .get(&secret_ref.name)
        .await
        .map_err(|e| format!("reading Secret {ns}/{}: {e}", secret_ref.name))?;
    let data = secret
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect();
    Auth::from_secret_data(&data).map_err(|e| format!("Secret {ns}/{}: {e}", secret_ref.name))
}

async fn write_status(
    client: &Client,
    ns: &str,
    name: &str,
    status: &GitSyncStatus,
) -> Result<(), Error> {
    let api: Api<GitSync> = Api::namespaced(client.clone(), ns);
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(&json!({ "status": status })),
    )
    .await
    .map(|_| ())
    .map_err(|source| Error::Status {
        key: format!("{ns}/{name}"),
        source,
    })
}

/// Sets the commit's status message in its history entry.
fn set_message(status: &mut GitSyncStatus, commit: &str, message: &str) {
    if let Some(h) = status.commit_mut(commit) {
        h.status_message = Some(message.chars().take(1000).collect());
    }
}

/// Creates the ImagePullJobs for the new images of the commit's workloads; returns how many.
async fn start_pre_pulls(
    ctx: &Ctx,
    owner: &Owner,
    commit: &str,
    plan: &crate::plan::ApplyPlan,
    settings: prepull::Settings,
) -> Result<usize, String> {
    let mut workloads = Vec::new();
    for o in plan
        .objects()
        .filter(|o| prepull::is_workload(&o.reference))
    {
        let live = ctx
            .engine
            .applier()
            .get(&o.reference)
            .await
            .map_err(|e| format!("reading {}: {e}", o.reference))?;
        workloads.push((o.reference.clone(), o.object.clone(), live));
    }
    let pulls = prepull::plan(owner, commit, &workloads, settings);
    for p in &pulls {
        let ns = p.job["metadata"]["namespace"].as_str().unwrap_or_default();
        let name = p.job["metadata"]["name"].as_str().unwrap_or_default();
        let api: Api<ImagePullJob> = Api::namespaced(ctx.client.clone(), ns);
        api.patch(
            name,
            &PatchParams::apply(crate::apply::FIELD_MANAGER).force(),
            &Patch::Apply(&p.job),
        )
        .await
        .map_err(|e| format!("creating ImagePullJob {ns}/{name} for {}: {e}", p.image))?;
    }
    Ok(pulls.len())
}

/// The ImagePullJobs of this GitSync (all commits). They live in the namespaces of the
/// workloads they prepare (or the GitSync's): listed there, so a namespaced install needs no
/// cluster-wide read.
async fn pre_pull_jobs(
    ctx: &Ctx,
    owner: &Owner,
    namespaces: &std::collections::BTreeSet<String>,
) -> Result<Vec<ImagePullJob>, kube::Error> {
    let selector = format!("{}={}", graft_api::labels::GRAFT_SYNC, owner.label_value());
    let mut jobs = Vec::new();
    for ns in namespaces {
        let api: Api<ImagePullJob> = Api::namespaced(ctx.client.clone(), ns);
        jobs.extend(
            api.list(&kube::api::ListParams::default().labels(&selector))
                .await?
                .items,
        );
    }
    Ok(jobs)
}

/// Where a GitSync's pre-pull jobs can be: its own namespace and those of its objects.
fn job_namespaces(owner: &Owner, status: &GitSyncStatus) -> std::collections::BTreeSet<String> {
    let mut out: std::collections::BTreeSet<String> = status
        .inventory
        .iter()
        .flatten()
        .filter_map(|e| e.namespace.clone())
        .collect();
    out.insert(owner.namespace.clone());
    out
}

fn job_commit(job: &ImagePullJob) -> Option<&str> {
    job.metadata
        .annotations
        .as_ref()?
        .get(graft_api::labels::GRAFT_COMMIT)
        .map(String::as_str)
}

/// How far the commit's pre-pull jobs are.
async fn pre_pull_progress(
    ctx: &Ctx,
    owner: &Owner,
    commit: &str,
    namespaces: &std::collections::BTreeSet<String>,
) -> Result<prepull::Progress, kube::Error> {
    let jobs: Vec<serde_json::Value> = pre_pull_jobs(ctx, owner, namespaces)
        .await?
        .iter()
        .filter(|j| job_commit(j) == Some(commit))
        .filter_map(|j| serde_json::to_value(j).ok())
        .collect();
    Ok(prepull::Progress::of(&jobs))
}

/// Deletes the pre-pull jobs of older commits, and of the current one once it is final.
async fn clean_pre_pulls(
    ctx: &Ctx,
    owner: &Owner,
    commit: &str,
    current_final: bool,
    namespaces: &std::collections::BTreeSet<String>,
) {
    let jobs = match pre_pull_jobs(ctx, owner, namespaces).await {
        Ok(jobs) => jobs,
        Err(e) => {
            tracing::debug!(error = %e, "listing pre-pull jobs");
            return;
        }
    };
    // Only the jobs the sync created (they name their workload).
    let created = |j: &ImagePullJob| {
        j.metadata
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key(prepull::WORKLOAD_ANNOTATION))
    };
    for job in jobs.into_iter().filter(created) {
        if job_commit(&job) == Some(commit) && !current_final {
            continue;
        }
        let (ns, name) = (job.namespace().unwrap_or_default(), job.name_any());
        let api: Api<ImagePullJob> = Api::namespaced(ctx.client.clone(), &ns);
        if let Err(e) = api.delete(&name, &Default::default()).await {
            tracing::debug!(job = %name, error = %e, "deleting a finished pre-pull job");
        }
    }
}
