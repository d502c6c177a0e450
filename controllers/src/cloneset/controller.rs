//! The CloneSet executor: gather a [`Snapshot`] from the caches and the API server, run the pure
//! [`plan`], carry the plan out, write the status. It decides nothing the planner decides.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use graft_api::apps::common::LifecycleState;
use graft_api::apps::v1alpha1::{CloneSet, CloneSetStatus};
use graft_api::labels;
use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::{ObjectReference, PersistentVolumeClaim, Pod, PodTemplateSpec};
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::controller::Action as Requeue;
use kube::{Api, Resource, ResourceExt};
use serde_json::json;

use super::plan::{
    self, Action, EventType, InPlaceFacts, PlannedEvent, PodInfo, PodPhase, Snapshot,
};
use super::pods;
use crate::expectations::{Expected, PodView};
use crate::inplace;
use crate::revision::{self, RevisionAction, RevisionOwner};
use crate::runtime::Context;

const CONTROLLER: &str = "cloneset";
/// Longest a single reconcile may take before it is abandoned and retried.
const RECONCILE_TIMEOUT: Duration = Duration::from_secs(60);
/// Field manager for graft's writes to objects it owns (pods, PVCs, revisions, status).
const MANAGER: &str = "graft";

/// Errors of one reconcile; each names the CloneSet and the step.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An API call failed.
    #[error("{key}: {step}: {source}")]
    Api {
        /// `namespace/name` of the CloneSet.
        key: String,
        /// What was being done.
        step: String,
        /// The cause.
        #[source]
        source: kube::Error,
    },
    /// The reconcile did not finish in time.
    #[error("{key}: reconcile did not finish within {after:?}")]
    Timeout {
        /// `namespace/name` of the CloneSet.
        key: String,
        /// The limit.
        after: Duration,
    },
    /// The in-place engine could not read a pod's state.
    #[error("{key}: in-place update: {message}")]
    InPlace {
        /// `namespace/name` of the CloneSet.
        key: String,
        /// The cause.
        message: String,
    },
    /// A revision could not be built or read.
    #[error("{key}: {source}")]
    Revision {
        /// `namespace/name` of the CloneSet.
        key: String,
        /// The cause.
        #[source]
        source: revision::RevisionError,
    },
}

fn pp() -> PatchParams {
    PatchParams {
        field_manager: Some(MANAGER.to_string()),
        ..Default::default()
    }
}

fn post() -> PostParams {
    PostParams {
        field_manager: Some(MANAGER.to_string()),
        ..Default::default()
    }
}

fn api_err(key: &str, step: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
    let key = key.to_string();
    let step = step.into();
    move |source| Error::Api { key, step, source }
}

/// Requeue with backoff after an error; the error is logged and counted by the caller.
pub fn error_policy(cs: Arc<CloneSet>, err: &Error, ctx: Arc<Context>) -> Requeue {
    tracing::warn!(cloneset = %key_of(&cs), error = %err, "reconcile failed");
    ctx.metrics.reconciled(CONTROLLER, false, Duration::ZERO);
    Requeue::requeue(Duration::from_secs(5))
}

fn key_of(cs: &CloneSet) -> String {
    format!(
        "{}/{}",
        cs.metadata.namespace.as_deref().unwrap_or_default(),
        cs.metadata.name.as_deref().unwrap_or_default()
    )
}

/// The shared pod cache as [`PodView`] for expectations.
struct StoreView<'a> {
    namespace: &'a str,
    ctx: &'a Context,
}

impl PodView for StoreView<'_> {
    fn lookup(&self, name: &str) -> Option<(bool, String)> {
        let pod = self
            .ctx
            .pods
            .get(&kube::runtime::reflector::ObjectRef::<Pod>::new(name).within(self.namespace))?;
        Some((
            pod.metadata.deletion_timestamp.is_some(),
            pod.metadata.resource_version.clone().unwrap_or_default(),
        ))
    }
}

/// One reconcile of a CloneSet.
pub async fn reconcile(cs: Arc<CloneSet>, ctx: Arc<Context>) -> Result<Requeue, Error> {
    let started = Instant::now();
    let key = key_of(&cs);
    // A reconcile that hangs (an API call that never answers) must not hold this CloneSet forever:
    // kube-runtime runs one reconcile per object at a time.
    let result =
        match tokio::time::timeout(RECONCILE_TIMEOUT, reconcile_inner(&cs, &ctx, &key)).await {
            Ok(r) => r,
            Err(_) => Err(Error::Timeout {
                key: key.clone(),
                after: RECONCILE_TIMEOUT,
            }),
        };
    if result.is_ok() {
        ctx.metrics.reconciled(CONTROLLER, true, started.elapsed());
    }
    result
}

async fn reconcile_inner(cs: &CloneSet, ctx: &Context, key: &str) -> Result<Requeue, Error> {
    let ns = cs.metadata.namespace.clone().unwrap_or_default();
    let name = cs.name_any();
    if cs.metadata.deletion_timestamp.is_some() {
        // Pods, PVCs and revisions go with it through their owner references.
        ctx.expectations.forget(key);
        ctx.waiting_changed(key, None);
        return Ok(Requeue::await_change());
    }
    let errors = cs.spec.validate();
    if !errors.is_empty() {
        // Invalid input is reported once and waits for the object to change (STYLE.md).
        let message = errors.to_string();
        publish(
            ctx,
            cs,
            &PlannedEvent {
                type_: EventType::Warning,
                reason: "InvalidSpec".into(),
                message: message.clone(),
            },
        )
        .await;
        tracing::warn!(cloneset = %key, %message, "invalid spec");
        return Ok(Requeue::await_change());
    }
    // A fresh process must not plan before the shared pod cache has listed the pods: it would
    // see none, create every pod again, then delete the surplus (found by killing graft
    // mid-rollout). Expectations cannot catch this; they start empty after a restart.
    let synced = tokio::time::timeout(Duration::from_millis(100), ctx.pods.wait_until_ready());
    if !matches!(synced.await, Ok(Ok(()))) {
        tracing::debug!(cloneset = %key, "waiting for the pod cache to sync");
        return Ok(Requeue::requeue(Duration::from_millis(500)));
    }
    if !ctx.expectations.satisfied(
        key,
        &StoreView {
            namespace: &ns,
            ctx,
        },
    ) {
        tracing::debug!(cloneset = %key, "waiting for the cache to show our last writes");
        return Ok(Requeue::requeue(Duration::from_millis(500)));
    }
    let uid = cs.metadata.uid.clone().unwrap_or_default();

    // Pods: owned ones from the shared cache, adopting orphans that match the selector and
    // releasing owned ones that no longer do.
    let selector = cs.spec.selector.clone();
    let mut owned: Vec<Arc<Pod>> = Vec::new();
    for pod in ctx.pods.state() {
        if pod.metadata.namespace.as_deref() != Some(ns.as_str()) {
            continue;
        }
        let controller = pod
            .metadata
            .owner_references
            .iter()
            .flatten()
            .find(|o| o.controller == Some(true));
        let matches = selector_matches(&selector, pod.metadata.labels.as_ref());
        match controller {
            Some(o) if o.uid == uid => {
                if matches {
                    owned.push(pod);
                } else {
                    release(ctx, key, &ns, &pod, &uid).await?;
                }
            }
            None if matches
                && pod.metadata.deletion_timestamp.is_none()
                && adopt(ctx, key, cs, &pod).await? =>
            {
                owned.push(pod);
            }
            _ => {}
        }
    }

    // Revisions.
    let revisions_api: Api<ControllerRevision> = Api::namespaced(ctx.client.clone(), &ns);
    let selector_string = selector_string(&selector);
    let existing: Vec<ControllerRevision> = revisions_api
        .list(&ListParams::default().labels(&selector_string))
        .await
        .map_err(api_err(key, "listing controller revisions"))?
        .items
        .into_iter()
        .filter(|r| owned_by(&r.metadata, &uid))
        .collect();
    let data =
        revision::template_revision_data(&cs.spec.template).map_err(|source| Error::Revision {
            key: key.to_string(),
            source,
        })?;
    let owner = RevisionOwner {
        api_version: CloneSet::api_version(&()).to_string(),
        kind: CloneSet::kind(&()).to_string(),
        name: name.clone(),
        namespace: Some(ns.clone()),
        uid: uid.clone(),
    };
    let status = cs.status.clone().unwrap_or_default();
    let template_labels = cs
        .spec
        .template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let active = revision::resolve_revisions(
        &existing,
        &owner,
        &template_labels,
        &BTreeMap::new(),
        data,
        status.current_revision.as_deref(),
        status.collision_count.unwrap_or(0),
    );
    match &active.action {
        RevisionAction::None => {}
        RevisionAction::Create(rev) => {
            match revisions_api.create(&post(), rev).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 409 => {
                    // A revision of that name with other data exists: step the collision count.
                    let patch = json!({"status": {"collisionCount": active.collision_count + 1}});
                    Api::<CloneSet>::namespaced(ctx.client.clone(), &ns)
                        .patch_status(&name, &pp(), &Patch::Merge(&patch))
                        .await
                        .map_err(api_err(key, "writing collisionCount"))?;
                    return Ok(Requeue::requeue(Duration::from_millis(100)));
                }
                Err(e) => return Err(api_err(key, "creating the update revision")(e)),
            }
        }
        RevisionAction::BumpRevision {
            name: rev,
            revision,
        } => {
            revisions_api
                .patch(rev, &pp(), &Patch::Merge(&json!({"revision": revision})))
                .await
                .map_err(api_err(key, "moving a revision to the top (rollback)"))?;
        }
    }
    let update_revision = active.update.metadata.name.clone().unwrap_or_default();
    let current_revision = active.current.metadata.name.clone().unwrap_or_default();

    // Templates per revision, for new pods at the current revision and for in-place decisions.
    let mut templates: HashMap<String, PodTemplateSpec> = HashMap::new();
    templates.insert(update_revision.clone(), cs.spec.template.clone());
    for rev in existing.iter().chain([&active.current]) {
        if let Some(n) = &rev.metadata.name
            && !templates.contains_key(n)
            && let Ok(t) = revision::template_from_revision(rev)
        {
            templates.insert(n.clone(), t);
        }
    }

    // PVCs owned by the CloneSet.
    let pvcs_api: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), &ns);
    let pvc_instance_ids: Vec<String> = if cs.spec.volume_claim_templates.is_some() {
        pvcs_api
            .list(&ListParams::default().labels(&selector_string))
            .await
            .map_err(api_err(key, "listing PVCs"))?
            .items
            .into_iter()
            .filter(|p| owned_by(&p.metadata, &uid))
            .filter_map(|p| {
                p.metadata
                    .labels
                    .and_then(|l| l.get(labels::CLONESET_INSTANCE_ID).cloned())
            })
            .collect()
    } else {
        Vec::new()
    };

    let now = Timestamp::now();
    let grace = cs
        .spec
        .update_strategy
        .as_ref()
        .and_then(|u| u.in_place_update_strategy.as_ref())
        .and_then(|s| s.grace_period_seconds)
        .unwrap_or(0);
    let infos: Vec<PodInfo> = owned
        .iter()
        .map(|p| pod_info(p, &templates, &update_revision, grace, now))
        .collect();
    let wanted_ids = cs.spec.replicas.unwrap_or(1).max(0) as usize + 8;
    let snapshot = Snapshot {
        cloneset: cs.clone(),
        pods: infos,
        update_revision: update_revision.clone(),
        current_revision: current_revision.clone(),
        collision_count: Some(active.collision_count),
        label_selector: selector_string.clone(),
        pvc_instance_ids,
        fresh_instance_ids: (0..wanted_ids).map(|_| random_id()).collect(),
        scaling_exclude_preparing_delete: false,
        now,
    };
    // Pods with the KruisePodReady gate start in service: give them the condition once.
    let pods_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    for pod in owned.iter().filter(|p| {
        p.metadata.deletion_timestamp.is_none()
            && has_gate(p, labels::KRUISE_POD_READY)
            && inplace::pod_condition(p, labels::KRUISE_POD_READY).is_none()
    }) {
        set_pod_not_ready_reason(ctx, key, &pods_api, pod, None, now).await?;
    }
    let plan = plan::plan(&snapshot);
    if let Some(w) = &plan.waiting {
        tracing::debug!(cloneset = %key, waiting = %w, "rollout waiting");
    }
    // Say why the rollout waits where `kubectl describe` shows it, once per new reason.
    if ctx.waiting_changed(key, plan.waiting.as_deref())
        && let Some(w) = &plan.waiting
    {
        publish(
            ctx,
            cs,
            &PlannedEvent {
                type_: EventType::Normal,
                reason: "RolloutWaiting".into(),
                message: w.clone(),
            },
        )
        .await;
    }

    // Carry the actions out in order; creations in slow-start batches, stopping at the first error.
    let by_name: HashMap<&str, &Arc<Pod>> = owned
        .iter()
        .map(|p| (p.metadata.name.as_deref().unwrap_or_default(), p))
        .collect();
    let mut batch = 1usize;
    let mut i = 0usize;
    let actions = &plan.actions;
    while i < actions.len() {
        let group_end = if matches!(actions[i], Action::CreatePod { .. }) {
            let mut j = i;
            while j < actions.len()
                && matches!(actions[j], Action::CreatePod { .. })
                && j - i < batch
            {
                j += 1;
            }
            batch *= 2;
            j
        } else {
            i + 1
        };
        let group = &actions[i..group_end];
        let results = futures::future::join_all(group.iter().map(|a| {
            execute(
                ctx, key, cs, a, &pods_api, &pvcs_api, &templates, &by_name, now,
            )
        }))
        .await;
        let mut failed = false;
        for (a, r) in group.iter().zip(results) {
            match r {
                Ok(()) => {
                    tracing::info!(cloneset = %key, action = ?a, "done");
                    if let Some(ev) = a.success_event(&name) {
                        publish(ctx, cs, &ev).await;
                    }
                }
                Err(e) => {
                    failed = true;
                    if let Some(ev) = a.failure_event(&name, &e.to_string()) {
                        publish(ctx, cs, &ev).await;
                    }
                    tracing::warn!(cloneset = %key, action = ?a, error = %e, "action failed");
                }
            }
        }
        if failed {
            break;
        }
        i = group_end;
    }
    for ev in &plan.events {
        publish(ctx, cs, ev).await;
    }

    let cs_api: Api<CloneSet> = Api::namespaced(ctx.client.clone(), &ns);
    if let Some(names) = &plan.pods_to_delete {
        let patch = json!({"spec": {"scaleStrategy": {"podsToDelete": names}}});
        cs_api
            .patch(&name, &pp(), &Patch::Merge(&patch))
            .await
            .map_err(api_err(key, "truncating podsToDelete"))?;
    }
    if plan.status_changed {
        write_status(&cs_api, &name, &plan.status)
            .await
            .map_err(api_err(key, "writing status"))?;
    }

    // History: keep revisionHistoryLimit besides the live revisions.
    let pod_revisions: Vec<&str> = owned
        .iter()
        .filter_map(|p| {
            p.metadata
                .labels
                .as_ref()?
                .get(labels::CONTROLLER_REVISION_HASH)
                .map(String::as_str)
        })
        .collect();
    for old in revision::revisions_to_delete(
        &existing,
        cs.spec.revision_history_limit.unwrap_or(10),
        &current_revision,
        &update_revision,
        &pod_revisions,
    ) {
        if let Err(e) = revisions_api.delete(&old, &DeleteParams::default()).await {
            tracing::debug!(cloneset = %key, revision = %old, error = %e, "deleting old revision");
        }
    }

    // Watch events drive progress; while a rollout is not settled, also look again every few
    // seconds so a missed event can only delay it, never stall it.
    Ok(match plan.requeue_after {
        Some(d) => Requeue::requeue(d.min(Duration::from_secs(300))),
        None if !plan.actions.is_empty() => Requeue::requeue(Duration::from_secs(1)),
        None if plan.waiting.is_some() => Requeue::requeue(Duration::from_secs(3)),
        None => Requeue::requeue(Duration::from_secs(300)),
    })
}

async fn write_status(
    api: &Api<CloneSet>,
    name: &str,
    status: &CloneSetStatus,
) -> kube::Result<()> {
    let mut body = serde_json::to_value(status).unwrap_or_else(|_| json!({}));
    // A merge patch only removes what it sets to null: clear conditions that went away.
    if status.conditions.is_none()
        && let Some(map) = body.as_object_mut()
    {
        map.insert("conditions".into(), serde_json::Value::Null);
    }
    let patch = json!({ "status": body });
    api.patch_status(name, &pp(), &Patch::Merge(&patch))
        .await
        .map(|_| ())
}

#[allow(clippy::too_many_arguments)]
async fn execute(
    ctx: &Context,
    key: &str,
    cs: &CloneSet,
    action: &Action,
    pods_api: &Api<Pod>,
    pvcs_api: &Api<PersistentVolumeClaim>,
    templates: &HashMap<String, PodTemplateSpec>,
    by_name: &HashMap<&str, &Arc<Pod>>,
    now: Timestamp,
) -> Result<(), Error> {
    let cs_name = cs.name_any();
    match action {
        Action::CreatePod {
            instance_id,
            revision,
            reuse_pvcs,
        } => {
            let template = templates.get(revision).unwrap_or(&cs.spec.template);
            if !reuse_pvcs {
                for pvc in pods::new_pvcs(cs, instance_id) {
                    match pvcs_api.create(&post(), &pvc).await {
                        Ok(_) => {}
                        Err(kube::Error::Api(e)) if e.code == 409 => {}
                        Err(e) => return Err(api_err(key, "creating a PVC")(e)),
                    }
                }
            }
            let pod = pods::new_pod(cs, instance_id, revision, template);
            let pod_name = pod.metadata.name.clone().unwrap_or_default();
            ctx.expectations
                .expect(key, Expected::Created(pod_name.clone()));
            if let Err(e) = pods_api.create(&post(), &pod).await {
                ctx.expectations.forget(key);
                return Err(api_err(key, format!("creating pod {pod_name}"))(e));
            }
            ctx.metrics.pod_action(CONTROLLER, "create");
        }
        Action::DeletePod { name, instance_id } => {
            ctx.expectations
                .expect(key, Expected::Deleted(name.clone()));
            let uid = by_name
                .get(name.as_str())
                .and_then(|p| p.metadata.uid.clone());
            let dp = DeleteParams {
                preconditions: uid.map(|uid| Preconditions {
                    uid: Some(uid),
                    resource_version: None,
                }),
                ..Default::default()
            };
            match pods_api.delete(name, &dp).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => return Err(api_err(key, format!("deleting pod {name}"))(e)),
            }
            if let Some(id) = instance_id {
                delete_pvcs(pvcs_api, cs, id, key).await?;
            }
            ctx.metrics.pod_action(CONTROLLER, "delete");
        }
        Action::RemovePvcs { instance_id } => delete_pvcs(pvcs_api, cs, instance_id, key).await?,
        Action::SetLifecycleState {
            name,
            state,
            mark_pod_not_ready,
        } => {
            if *mark_pod_not_ready && let Some(pod) = by_name.get(name.as_str()) {
                // Out of service before the hook runs, back in service after.
                let hook = match state {
                    LifecycleState::PreparingDelete => Some("preDeleteHook"),
                    LifecycleState::PreparingUpdate => Some("preUpdateHook"),
                    _ => None,
                };
                set_pod_not_ready_reason(ctx, key, pods_api, pod, hook, now).await?;
            }
            let patch = json!({"metadata": {
                "labels": {labels::LIFECYCLE_STATE: state.as_str()},
                "annotations": {labels::LIFECYCLE_TIMESTAMP: now.to_string()},
            }});
            patch_pod(ctx, key, pods_api, name, &Patch::Merge(&patch)).await?;
        }
        Action::SetPodTemplateHash { name, hash } => {
            let patch = json!({"metadata": {"labels": {labels::POD_TEMPLATE_HASH: hash}}});
            patch_pod(ctx, key, pods_api, name, &Patch::Merge(&patch)).await?;
        }
        Action::MarkSpecifiedDelete { name, .. } => {
            let patch = json!({"metadata": {"labels": {labels::SPECIFIED_DELETE: "true"}}});
            patch_pod(ctx, key, pods_api, name, &Patch::Merge(&patch)).await?;
            ctx.metrics.pod_action(CONTROLLER, "recreate");
        }
        Action::UpdateInPlace { name, revision } => {
            let Some(pod) = by_name.get(name.as_str()) else {
                return Ok(());
            };
            let old_rev = pod_revision(pod);
            let (Some(old), Some(new)) = (templates.get(&old_rev), templates.get(revision)) else {
                return Ok(());
            };
            let grace = cs
                .spec
                .update_strategy
                .as_ref()
                .and_then(|u| u.in_place_update_strategy.as_ref())
                .and_then(|s| s.grace_period_seconds)
                .unwrap_or(0);
            let mut spec = match inplace::calculate(old, new, revision, grace) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(cloneset = %key, pod = %name, reason = %e, "not in-place-able");
                    return Ok(());
                }
            };
            // Written at once with the revision label, never parked with the images.
            spec.immediate.labels.insert(
                labels::POD_TEMPLATE_HASH.to_string(),
                Some(pods::short_hash(revision).to_string()),
            );
            spec.immediate.labels.insert(
                labels::LIFECYCLE_STATE.to_string(),
                Some(labels::LIFECYCLE_STATE_UPDATING.to_string()),
            );
            spec.immediate.annotations.insert(
                labels::LIFECYCLE_TIMESTAMP.to_string(),
                Some(now.to_string()),
            );
            let changes = inplace::begin(pod, &spec, now).map_err(|e| Error::InPlace {
                key: key.to_string(),
                message: e.to_string(),
            })?;
            for change in changes {
                apply_change(ctx, key, pods_api, name, change).await?;
            }
            ctx.metrics.pod_action(CONTROLLER, "update_in_place");
        }
        Action::RefreshInPlace { name } => {
            let Some(pod) = by_name.get(name.as_str()) else {
                return Ok(());
            };
            for change in refresh_changes(pod, now) {
                apply_change(ctx, key, pods_api, name, change).await?;
            }
        }
    }
    let _ = cs_name;
    Ok(())
}

/// Sets (or clears, with `hook: None`) the lifecycle's "not ready" reason in the pod's
/// `KruisePodReady` condition. The condition's message is kruise's JSON list of reasons; it is
/// False while the list is non-empty, and then the pod's Ready condition goes False too.
async fn set_pod_not_ready_reason(
    ctx: &Context,
    key: &str,
    pods_api: &Api<Pod>,
    pod: &Pod,
    hook: Option<&str>,
    now: Timestamp,
) -> Result<(), Error> {
    use graft_api::annotations::{PodNotReadyReason, PodNotReadyReasons};
    let current = inplace::pod_condition(pod, labels::KRUISE_POD_READY);
    let mut reasons: PodNotReadyReasons = current
        .and_then(|c| c.message.as_deref())
        .and_then(|m| serde_json::from_str(m).ok())
        .unwrap_or_default();
    reasons.retain(|r| r.user_agent != "Lifecycle");
    if let Some(hook) = hook {
        reasons.push(PodNotReadyReason {
            user_agent: "Lifecycle".into(),
            key: hook.into(),
        });
    }
    let status = if reasons.is_empty() { "True" } else { "False" };
    if current.is_some_and(|c| c.status == status)
        && current.and_then(|c| c.message.clone()).unwrap_or_default()
            == serde_json::to_string(&reasons).unwrap_or_default()
    {
        return Ok(());
    }
    let mut conditions = vec![k8s_openapi::api::core::v1::PodCondition {
        type_: labels::KRUISE_POD_READY.to_string(),
        status: status.to_string(),
        message: Some(serde_json::to_string(&reasons).unwrap_or_else(|_| "[]".into())),
        last_transition_time: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now)),
        ..Default::default()
    }];
    if status == "False" {
        conditions.push(k8s_openapi::api::core::v1::PodCondition {
            type_: "Ready".to_string(),
            status: "False".to_string(),
            reason: Some("ReadinessGatesNotReady".into()),
            last_transition_time: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(now)),
            ..Default::default()
        });
    }
    apply_change(
        ctx,
        key,
        pods_api,
        &pod.name_any(),
        inplace::PodChange::Conditions(conditions),
    )
    .await
}

async fn apply_change(
    ctx: &Context,
    key: &str,
    pods_api: &Api<Pod>,
    name: &str,
    change: inplace::PodChange,
) -> Result<(), Error> {
    match change {
        inplace::PodChange::Conditions(conditions) => {
            let patch = inplace::PodChange::status_patch(&conditions);
            let p = pods_api
                .patch_status(name, &pp(), &Patch::Strategic(&patch))
                .await
                .map_err(api_err(key, format!("patching status of pod {name}")))?;
            expect_patched(ctx, key, name, &p);
        }
        inplace::PodChange::Patch(patch) => {
            patch_pod(ctx, key, pods_api, name, &Patch::Strategic(&patch)).await?;
        }
    }
    Ok(())
}

async fn patch_pod<P: serde::Serialize + std::fmt::Debug>(
    ctx: &Context,
    key: &str,
    pods_api: &Api<Pod>,
    name: &str,
    patch: &Patch<P>,
) -> Result<(), Error> {
    let p = pods_api
        .patch(name, &pp(), patch)
        .await
        .map_err(api_err(key, format!("patching pod {name}")))?;
    expect_patched(ctx, key, name, &p);
    Ok(())
}

fn expect_patched(ctx: &Context, key: &str, name: &str, pod: &Pod) {
    if let Some(rv) = &pod.metadata.resource_version {
        ctx.expectations
            .expect(key, Expected::Patched(name.to_string(), rv.clone()));
    }
}

async fn delete_pvcs(
    api: &Api<PersistentVolumeClaim>,
    cs: &CloneSet,
    instance_id: &str,
    key: &str,
) -> Result<(), Error> {
    for pvc in pods::new_pvcs(cs, instance_id) {
        let n = pvc.metadata.name.unwrap_or_default();
        match api.delete(&n, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(api_err(key, format!("deleting PVC {n}"))(e)),
        }
    }
    Ok(())
}

async fn adopt(ctx: &Context, key: &str, cs: &CloneSet, pod: &Pod) -> Result<bool, Error> {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let name = pod.name_any();
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let mut refs = pod.metadata.owner_references.clone().unwrap_or_default();
    refs.push(pods::owner_reference(cs));
    // The uid precondition makes sure we adopt the pod we looked at, not a recreated namesake.
    let patch = json!({"metadata": {"ownerReferences": refs, "uid": pod.metadata.uid}});
    match api.patch(&name, &pp(), &Patch::Merge(&patch)).await {
        Ok(p) => {
            expect_patched(ctx, key, &name, &p);
            Ok(true)
        }
        Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 || e.code == 422 => Ok(false),
        Err(e) => Err(api_err(key, format!("adopting pod {name}"))(e)),
    }
}

async fn release(ctx: &Context, key: &str, ns: &str, pod: &Pod, uid: &str) -> Result<(), Error> {
    let name = pod.name_any();
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    let refs: Vec<_> = pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .filter(|o| o.uid != uid)
        .cloned()
        .collect();
    let patch = json!({"metadata": {"ownerReferences": refs, "uid": pod.metadata.uid}});
    match api.patch(&name, &pp(), &Patch::Merge(&patch)).await {
        Ok(p) => {
            expect_patched(ctx, key, &name, &p);
            Ok(())
        }
        Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 || e.code == 422 => Ok(()),
        Err(e) => Err(api_err(key, format!("releasing pod {name}"))(e)),
    }
}

async fn publish(ctx: &Context, cs: &CloneSet, ev: &PlannedEvent) {
    let reference: ObjectReference = cs.object_ref(&());
    let type_ = match ev.type_ {
        EventType::Normal => crate::events::EventType::Normal,
        EventType::Warning => crate::events::EventType::Warning,
    };
    if let Err(e) = ctx
        .recorder
        .publish(type_, &ev.reason, &ev.message, &reference)
        .await
    {
        tracing::debug!(error = %e, "publishing event");
    }
}

/// Whether an object has an owner reference to the object with `uid`.
fn owned_by(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta, uid: &str) -> bool {
    meta.owner_references.iter().flatten().any(|o| o.uid == uid)
}

fn has_gate(pod: &Pod, condition_type: &str) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.readiness_gates.as_ref())
        .is_some_and(|g| g.iter().any(|g| g.condition_type == condition_type))
}

fn pod_revision(pod: &Pod) -> String {
    pod.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(labels::CONTROLLER_REVISION_HASH).cloned())
        .unwrap_or_default()
}

/// What the planner needs to know of one pod.
fn pod_info(
    pod: &Pod,
    templates: &HashMap<String, PodTemplateSpec>,
    update_revision: &str,
    grace: i32,
    now: Timestamp,
) -> PodInfo {
    let status = pod.status.clone().unwrap_or_default();
    let conditions = status.conditions.clone().unwrap_or_default();
    let ready_cond = conditions.iter().find(|c| c.type_ == "Ready");
    let in_place_ready = conditions
        .iter()
        .find(|c| c.type_ == labels::INPLACE_UPDATE_READY)
        .map(|c| c.status == "True");
    let rev = pod_revision(pod);
    let possible = if revision::revision_label_matches(&rev, update_revision) {
        Ok(())
    } else {
        match (templates.get(&rev), templates.get(update_revision)) {
            (Some(old), Some(new)) => inplace::calculate(old, new, update_revision, grace)
                .map(|_| ())
                .map_err(|e| e.to_string()),
            _ => Err(format!("the template of revision {rev} is unknown")),
        }
    };
    let (in_grace, completed, refresh) = in_place_progress(pod, now);
    PodInfo {
        name: pod.name_any(),
        labels: pod.metadata.labels.clone().unwrap_or_default(),
        finalizers: pod.metadata.finalizers.clone().unwrap_or_default(),
        phase: match status.phase.as_deref() {
            Some("Running") => PodPhase::Running,
            Some("Succeeded") => PodPhase::Succeeded,
            Some("Failed") => PodPhase::Failed,
            Some("Unknown") => PodPhase::Unknown,
            _ => PodPhase::Pending,
        },
        node_name: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
        ready: ready_cond.is_some_and(|c| c.status == "True"),
        ready_since: ready_cond
            .and_then(|c| c.last_transition_time.as_ref())
            .map(|t| t.0),
        in_place_update_ready: in_place_ready,
        deletion_timestamp: pod.metadata.deletion_timestamp.as_ref().map(|t| t.0),
        creation_timestamp: pod.metadata.creation_timestamp.as_ref().map(|t| t.0),
        deletion_cost: pod
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(labels::POD_DELETION_COST))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        restart_count: status
            .container_statuses
            .iter()
            .flatten()
            .map(|c| c.restart_count)
            .max()
            .unwrap_or(0),
        failure: failure(pod),
        in_place: InPlaceFacts {
            possible,
            in_grace,
            completed,
            refresh,
        },
    }
}

/// Why a pod cannot become ready, from its containers' waiting reasons; `None` while they are
/// merely starting. The wording is stable across the kubelet's retries (`ErrImagePull` and
/// `ImagePullBackOff` alternate) so the rollout's waiting reason does not flap.
fn failure(pod: &Pod) -> Option<String> {
    let status = pod.status.as_ref()?;
    let spec_image = |name: &str| {
        pod.spec
            .iter()
            .flat_map(|s| {
                s.containers
                    .iter()
                    .chain(s.init_containers.iter().flatten())
            })
            .find(|c| c.name == name)
            .and_then(|c| c.image.clone())
    };
    status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten())
        .filter(|c| !c.ready)
        .find_map(|c| {
            let reason = c.state.as_ref()?.waiting.as_ref()?.reason.as_deref()?;
            let name = &c.name;
            match reason {
                "ErrImagePull" | "ImagePullBackOff" | "InvalidImageName" | "ErrImageNeverPull" => {
                    let image = spec_image(name).unwrap_or_else(|| c.image.clone());
                    Some(format!("container {name} cannot pull image {image}"))
                }
                "CrashLoopBackOff" => Some(format!("container {name} is crash-looping")),
                "CreateContainerConfigError" | "CreateContainerError" | "RunContainerError" => {
                    Some(format!("container {name} cannot start ({reason})"))
                }
                _ => None,
            }
        })
}

/// The in-place engine's view of a pod for the planner: (parked in grace, last update completed,
/// what a refresh would do).
fn in_place_progress(pod: &Pod, now: Timestamp) -> (bool, bool, plan::Refresh) {
    let in_grace = inplace::is_in_grace(pod);
    match inplace::progress(pod, now) {
        Ok(inplace::Progress::NotUpdating) => (in_grace, true, plan::Refresh::Idle),
        Ok(inplace::Progress::WaitingGrace { remaining }) => {
            (in_grace, false, plan::Refresh::After(remaining))
        }
        Ok(inplace::Progress::Apply(c)) => (in_grace, false, due(&c)),
        Ok(inplace::Progress::InProgress { .. }) => (in_grace, false, plan::Refresh::Idle),
        Ok(inplace::Progress::Completed(c)) => (in_grace, true, due(&c)),
        Err(e) => {
            tracing::warn!(pod = %pod.name_any(), error = %e, "unreadable in-place state");
            (in_grace, true, plan::Refresh::Idle)
        }
    }
}

fn due(changes: &[inplace::PodChange]) -> plan::Refresh {
    if changes.is_empty() {
        plan::Refresh::Idle
    } else {
        plan::Refresh::Due
    }
}

/// The changes a refresh sends now (grace over, or completion to record).
fn refresh_changes(pod: &Pod, now: Timestamp) -> Vec<inplace::PodChange> {
    match inplace::progress(pod, now) {
        Ok(inplace::Progress::Apply(c)) | Ok(inplace::Progress::Completed(c)) => c,
        _ => Vec::new(),
    }
}

fn selector_matches(
    selector: &k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector,
    pod_labels: Option<&BTreeMap<String, String>>,
) -> bool {
    let empty = BTreeMap::new();
    let l = pod_labels.unwrap_or(&empty);
    let labels_ok = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| l.get(k) == Some(v));
    let exprs_ok = selector.match_expressions.iter().flatten().all(|e| {
        let values = e.values.clone().unwrap_or_default();
        match e.operator.as_str() {
            "In" => l.get(&e.key).is_some_and(|v| values.contains(v)),
            "NotIn" => l.get(&e.key).is_none_or(|v| !values.contains(v)),
            "Exists" => l.contains_key(&e.key),
            "DoesNotExist" => !l.contains_key(&e.key),
            _ => false,
        }
    });
    let non_empty = selector
        .match_labels
        .as_ref()
        .is_some_and(|m| !m.is_empty())
        || selector
            .match_expressions
            .as_ref()
            .is_some_and(|m| !m.is_empty());
    non_empty && labels_ok && exprs_ok
}

/// The selector in label-selector syntax (`a=b,c in (d,e)`), for list calls and
/// `status.labelSelector`.
pub fn selector_string(
    selector: &k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector,
) -> String {
    let mut parts: Vec<String> = selector
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for e in selector.match_expressions.iter().flatten() {
        let values = e.values.clone().unwrap_or_default().join(",");
        parts.push(match e.operator.as_str() {
            "In" => format!("{} in ({values})", e.key),
            "NotIn" => format!("{} notin ({values})", e.key),
            "Exists" => e.key.clone(),
            "DoesNotExist" => format!("!{}", e.key),
            other => format!("{} {other} ({values})", e.key),
        });
    }
    parts.join(",")
}

/// A random instance id: 5 characters from Kubernetes' `rand.String` alphabet (no vowels, no
/// look-alikes, so names never spell words).
fn random_id() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..5)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};

    fn sel() -> LabelSelector {
        LabelSelector {
            match_labels: Some(BTreeMap::from([("app".into(), "web".into())])),
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "tier".into(),
                operator: "In".into(),
                values: Some(vec!["a".into(), "b".into()]),
            }]),
        }
    }

    #[test]
    fn selectors_render_in_label_selector_syntax() {
        assert_eq!(selector_string(&sel()), "app=web,tier in (a,b)");
    }

    #[test]
    fn selectors_match_labels_and_expressions() {
        let l = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>()
        };
        assert!(selector_matches(
            &sel(),
            Some(&l(&[("app", "web"), ("tier", "a")]))
        ));
        assert!(!selector_matches(
            &sel(),
            Some(&l(&[("app", "web"), ("tier", "c")]))
        ));
        assert!(!selector_matches(&sel(), Some(&l(&[("tier", "a")]))));
        assert!(
            !selector_matches(&LabelSelector::default(), Some(&l(&[("app", "web")]))),
            "an empty selector matches nothing"
        );
    }

    #[test]
    fn instance_ids_are_five_safe_characters() {
        for _ in 0..100 {
            let id = random_id();
            assert_eq!(id.len(), 5);
            assert!(
                id.chars()
                    .all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c))
            );
        }
    }
}
