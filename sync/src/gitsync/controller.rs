//! The GitSync controller's I/O: it gathers what the planner ([`super::plan`]) decides on, one
//! step at a time, and executes the [`Done`] it ends with. Nothing here decides anything.

use std::collections::BTreeSet;
use std::ops::ControlFlow;
use std::sync::Arc;

use graft_api::apps::v1alpha1::ImagePullJob;
use graft_api::graft::gitsync::{GitSync, GitSyncSpec, GitSyncStatus, WorkloadProgress};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{ListParams, Patch, PatchParams};
use kube::runtime::controller::Action as Requeue;
use kube::{Api, Client, ResourceExt};
use serde_json::json;

use super::Error;
use super::plan::{self, CleanPrePulls, Done, Event, Look, Wake};
use crate::git::{Auth, Reference};
use crate::health::{self, Health};
use crate::object::ObjectRef;
use crate::plan::{ApplyPlan, Owner};
use crate::prepull;
use crate::run::{Engine, Source};

/// What every reconcile shares.
pub(super) struct Ctx {
    pub(super) client: Client,
    pub(super) engine: Engine,
    pub(super) recorder: graft_events::Recorder,
}

/// Goes on with the [`Look`] of a step, or returns its [`Done`].
macro_rules! step {
    ($e:expr) => {
        match $e {
            ControlFlow::Continue(look) => look,
            ControlFlow::Break(done) => return done,
        }
    };
}

/// One reconcile: read the GitSync fresh, sync it, execute what the planner decided.
pub(super) async fn reconcile(cached: Arc<GitSync>, ctx: Arc<Ctx>) -> Result<Requeue, Error> {
    let ns = cached.namespace().unwrap_or_default();
    let name = cached.name_any();
    // The controller's cached object can predate this controller's own last status write (a
    // file-watch or webhook trigger can arrive before the watch event of that write): with the
    // stale status, a commit would be recorded as new a second time and lose its phases and
    // workloads. Read the object fresh.
    let api: Api<GitSync> = Api::namespaced(ctx.client.clone(), &ns);
    let gs = match api.get_opt(&name).await {
        Ok(Some(gs)) => gs,
        Ok(None) => return Ok(Requeue::await_change()),
        Err(source) => {
            let key = format!("{ns}/{name}");
            return Err(Error::ReadStatus { key, source });
        }
    };
    let done = sync(&gs, &ctx).await;
    execute(&ctx, &gs, done).await
}

/// The I/O steps of a sync, each result handed to the planner.
async fn sync(gs: &GitSync, ctx: &Ctx) -> Done {
    let look = step!(plan::begin(gs, now()));
    let ns = gs.namespace().unwrap_or_default();
    let spec = gs.spec.defaulted();
    let auth = match read_auth(&ctx.client, &ns, &spec).await {
        Ok(auth) => auth,
        Err(message) => return look.credentials_failed(&message),
    };
    let source = Source {
        url: spec.url.clone(),
        reference: Reference::from_spec(spec.git_ref.as_ref()),
        path: spec.path.clone().unwrap_or_else(|| ".".into()),
        prune: spec.prune == Some(true),
        owner: owner(gs),
        auth,
    };
    let fetched = ctx
        .engine
        .fetch(&source, look.last_applied(), look.accept_rewrite())
        .await;
    let fetched = match fetched {
        Ok(f) => f,
        Err(e) => return look.fetch_failed(&e),
    };
    let look = step!(look.after_fetch(&fetched.info));
    let plan = match ctx.engine.prepare(&fetched, &source.owner, &ns).await {
        Ok(p) => p,
        Err(e) => return look.prepare_failed(&e),
    };
    let look = look.after_prepare(&plan);
    let look = match look.starts_pre_pulls() {
        Some(settings) => {
            let started = start_pre_pulls(ctx, &source.owner, &fetched.commit, &plan, settings);
            look.pre_pulls_started(started.await)
        }
        None => look,
    };
    let look = if look.holds_for_pre_pull() {
        let namespaces = look.pre_pull_namespaces();
        let progress = pre_pull_progress(ctx, &source.owner, &fetched.commit, namespaces).await;
        step!(look.after_pre_pull(progress.map_err(|e| e.to_string())))
    } else {
        look
    };
    apply_and_watch(ctx, look, &source, &plan, &fetched.commit).await
}

/// Applies the plan and reads the health of the workloads the commit waits for.
async fn apply_and_watch(
    ctx: &Ctx,
    mut look: Look,
    source: &Source,
    plan: &ApplyPlan,
    commit: &str,
) -> Done {
    let old_inventory = look.applying();
    let applied = ctx
        .engine
        .apply(commit, plan, source.prune, &old_inventory, &source.owner)
        .await;
    let look = match applied {
        Ok((outcome, report, inventory)) => look.after_apply(plan, outcome, &report, inventory),
        Err(e) => return look.apply_failed(&e),
    };
    let mut looked: Vec<(Health, Option<WorkloadProgress>)> = Vec::new();
    for r in look.workloads() {
        let live = ctx.engine.applier().get(r).await.ok().flatten();
        let progress = live.as_ref().and_then(health::workload_progress);
        let mut health = health::health_of(live.as_ref());
        if health.status == health::HealthStatus::Degraded
            && r.kind == "BroadcastJob"
            && let Some(why) = failed_job_pod(ctx, r).await
        {
            health.message = format!("{}; {why}", health.message);
        }
        looked.push((health, progress));
    }
    look.after_rollout(&looked)
}

/// Why a failed BroadcastJob's first failed pod failed (its condition only says that one did).
async fn failed_job_pod(ctx: &Ctx, r: &ObjectRef) -> Option<String> {
    let ns = r.namespace.as_deref()?;
    let selector = format!("{}={}", health::failure::BROADCASTJOB_NAME_LABEL, r.name);
    match ctx.engine.applier().pods(ns, &selector).await {
        Ok(pods) => health::failure::failed_pod_reason(&pods),
        Err(e) => {
            tracing::debug!(job = %r, error = %e, "reading a failed job's pods");
            None
        }
    }
}

/// Publishes the Events, writes the status, cleans the pre-pull jobs, in that order.
async fn execute(ctx: &Ctx, gs: &GitSync, done: Done) -> Result<Requeue, Error> {
    for e in &done.events {
        event(ctx, gs, e).await;
    }
    if !done.drift.is_empty() {
        let sync = format!(
            "GitSync {}/{}",
            gs.namespace().unwrap_or_default(),
            gs.name_any()
        );
        let list: Vec<String> = done.drift.iter().map(ToString::to_string).collect();
        tracing::info!(gitsync = %sync, objects = ?list, "drift corrected");
        for d in &done.drift {
            crate::run::publish_drift_event(&ctx.recorder, d, &done.commit, &sync).await;
        }
    }
    if let Some(status) = &done.status {
        write_status(&ctx.client, gs, status).await?;
    }
    if let Some(clean) = &done.clean_pre_pulls {
        clean_pre_pulls(ctx, &owner(gs), clean).await;
    }
    Ok(match done.wake {
        Wake::AwaitChange => Requeue::await_change(),
        Wake::After(d) => Requeue::requeue(d),
    })
}

fn now() -> Time {
    Time(Timestamp::now())
}

fn owner(gs: &GitSync) -> Owner {
    Owner {
        namespace: gs.namespace().unwrap_or_default(),
        name: gs.name_any(),
    }
}

/// An Event about the GitSync (a failure to publish it is logged, not fatal).
async fn event(ctx: &Ctx, gs: &GitSync, e: &Event) {
    let regarding = k8s_openapi::api::core::v1::ObjectReference {
        api_version: Some("graft.dev/v1alpha1".into()),
        kind: Some("GitSync".into()),
        name: gs.metadata.name.clone(),
        namespace: gs.metadata.namespace.clone(),
        uid: gs.metadata.uid.clone(),
        ..Default::default()
    };
    // Events are capped at 1 KiB of note by the API server.
    let note: String = e.note.chars().take(1000).collect();
    let published = ctx
        .recorder
        .publish(e.type_, e.reason.as_str(), &note, &regarding)
        .await;
    if let Err(err) = published {
        tracing::warn!(gitsync = %gs.name_any(), error = %err, "could not publish an event");
    }
}

/// The Git credentials the GitSync's `secretRef` names (none: anonymous); also read by the
/// dashboard's diffs ([`crate::diff`]) when they fetch.
pub(crate) async fn read_auth(
    client: &Client,
    ns: &str,
    spec: &GitSyncSpec,
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

async fn write_status(client: &Client, gs: &GitSync, status: &GitSyncStatus) -> Result<(), Error> {
    let (ns, name) = (gs.namespace().unwrap_or_default(), gs.name_any());
    let api: Api<GitSync> = Api::namespaced(client.clone(), &ns);
    api.patch_status(
        &name,
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

/// Creates the ImagePullJobs for the new images of the commit's workloads; returns how many.
async fn start_pre_pulls(
    ctx: &Ctx,
    owner: &Owner,
    commit: &str,
    plan: &ApplyPlan,
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
        let pod_nodes = match &live {
            Some(live) if o.reference.kind == "SidecarSet" => sidecarset_pod_nodes(ctx, live).await,
            _ => None,
        };
        workloads.push(prepull::Workload {
            reference: o.reference.clone(),
            desired: o.object.clone(),
            live,
            pod_nodes,
        });
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

/// The nodes of the pods a live SidecarSet matches (its selector, in the namespaces of its
/// namespaceSelector): where its sidecars are upgraded in place. `None` when they cannot be read
/// (an install without the right to list pods everywhere): the pre-pull then goes to every node.
async fn sidecarset_pod_nodes(ctx: &Ctx, live: &serde_json::Value) -> Option<Vec<String>> {
    use k8s_openapi::api::core::v1::{Namespace, Pod};
    // Either version (v1alpha1's `namespace` reads as a namespaceSelector).
    let set = graft_api::apps::v1alpha1::sidecarset::from_any_version(live.clone()).ok()?;
    let selector = set.spec.selector.as_ref()?;
    let query = graft_api::selector::to_query(selector).ok()?;
    let pods = Api::<Pod>::all(ctx.client.clone())
        .list(&ListParams::default().labels(&query))
        .await
        .map_err(
            |e| tracing::debug!(error = %e, "listing the pods of a SidecarSet for its pre-pull"),
        )
        .ok()?;
    let namespaces: Option<BTreeSet<String>> = match &set.spec.namespace_selector {
        None => None,
        Some(ns_selector) => {
            let query = graft_api::selector::to_query(ns_selector).ok()?;
            let list = Api::<Namespace>::all(ctx.client.clone())
                .list(&ListParams::default().labels(&query))
                .await
                .map_err(|e| tracing::debug!(error = %e, "listing namespaces for a SidecarSet's pre-pull"))
                .ok()?;
            Some(list.items.into_iter().map(|n| n.name_any()).collect())
        }
    };
    Some(
        pods.items
            .into_iter()
            .filter(|p| {
                namespaces.as_ref().is_none_or(|n| {
                    p.metadata
                        .namespace
                        .as_ref()
                        .is_some_and(|ns| n.contains(ns))
                })
            })
            .filter_map(|p| p.spec?.node_name)
            .collect(),
    )
}

/// The ImagePullJobs of this GitSync (all commits). They live in the namespaces of the
/// workloads they prepare (or the GitSync's): listed there, so a namespaced install needs no
/// cluster-wide read.
async fn pre_pull_jobs(
    ctx: &Ctx,
    owner: &Owner,
    namespaces: &BTreeSet<String>,
) -> Result<Vec<ImagePullJob>, kube::Error> {
    let selector = format!("{}={}", graft_api::labels::GRAFT_SYNC, owner.label_value());
    let mut jobs = Vec::new();
    for ns in namespaces {
        let api: Api<ImagePullJob> = Api::namespaced(ctx.client.clone(), ns);
        jobs.extend(
            api.list(&ListParams::default().labels(&selector))
                .await?
                .items,
        );
    }
    Ok(jobs)
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
    namespaces: &BTreeSet<String>,
) -> Result<prepull::Progress, kube::Error> {
    let jobs: Vec<serde_json::Value> = pre_pull_jobs(ctx, owner, namespaces)
        .await?
        .iter()
        .filter(|j| job_commit(j) == Some(commit))
        .filter_map(|j| serde_json::to_value(j).ok())
        .collect();
    Ok(prepull::Progress::of(&jobs))
}

/// Deletes the pre-pull jobs the sync created for older commits, and for the current one
/// once it is final.
async fn clean_pre_pulls(ctx: &Ctx, owner: &Owner, clean: &CleanPrePulls) {
    let jobs = match pre_pull_jobs(ctx, owner, &clean.namespaces).await {
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
        if job_commit(&job) == Some(clean.commit.as_str()) && !clean.current_final {
            continue;
        }
        let (ns, name) = (job.namespace().unwrap_or_default(), job.name_any());
        let api: Api<ImagePullJob> = Api::namespaced(ctx.client.clone(), &ns);
        if let Err(e) = api.delete(&name, &Default::default()).await {
            tracing::debug!(job = %name, error = %e, "deleting a finished pre-pull job");
        }
    }
}
