//! The Advanced StatefulSet reconcile as a pipeline: gather what the caches hold
//! (`gather.rs`), [`prepare`](super::prepare::prepare) ownership and revisions and
//! [`plan`](super::plan::plan) the actions purely, execute the setup writes and the actions
//! (`execute.rs`), write the status and Events (`status.rs`). Only this file sequences the steps;
//! none of them but the pure ones decides anything.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use graft_api::apps::v1beta1::StatefulSet;
use graft_api::apps::v1beta1::statefulset::VolumeClaimUpdateStrategyType;
use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::Api;
use kube::api::{PatchParams, PostParams};
use kube::runtime::controller::Action as Requeue;
use kube::runtime::reflector::{ObjectRef, Store};

use super::execute::{Executor, SetupOutcome, with_conditions};
use super::gather::gather;
use super::plan::{self, EventType, Plan, PlannedEvent};
use super::{prepare, status};
use crate::context::Context;
use crate::expectations::CacheView;
use crate::revision;

/// The controller's name in metrics.
pub(super) const CONTROLLER: &str = "statefulset";
/// Longest a single reconcile may take before it is abandoned and retried.
const RECONCILE_TIMEOUT: Duration = Duration::from_secs(60);
/// Field manager for graft's writes to objects it owns (pods, PVCs, revisions, status).
const MANAGER: &str = "graft";

/// Errors of one reconcile; each names the StatefulSet and the step.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An API call failed.
    #[error("{key}: {step}: {source}")]
    Api {
        /// `namespace/name` of the StatefulSet.
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
        /// `namespace/name` of the StatefulSet.
        key: String,
        /// The limit.
        after: Duration,
    },
    /// The in-place engine could not update a pod.
    #[error("{key}: in-place update: {message}")]
    InPlace {
        /// `namespace/name` of the StatefulSet.
        key: String,
        /// The cause.
        message: String,
    },
    /// A matching SidecarSet could not be injected into a new pod (kruise's webhook would
    /// refuse the pod): the pod is not created.
    #[error("{key}: injecting the SidecarSets into pod {pod}: {message}")]
    Inject {
        /// `namespace/name` of the StatefulSet.
        key: String,
        /// The pod that was to be created.
        pod: String,
        /// The cause.
        message: String,
    },
    /// A PVC a new pod needs is being deleted: the pod would not start on it.
    #[error("{key}: PVC {claim} is being deleted")]
    ClaimDeleting {
        /// `namespace/name` of the StatefulSet.
        key: String,
        /// The PVC.
        claim: String,
    },
    /// A revision could not be built or read.
    #[error("{key}: {source}")]
    Revision {
        /// `namespace/name` of the StatefulSet.
        key: String,
        /// The cause.
        #[source]
        source: revision::RevisionError,
    },
    /// The rolling update cannot go on (kruise returns it as the reconcile error).
    #[error("{key}: {message}")]
    Update {
        /// `namespace/name` of the StatefulSet.
        key: String,
        /// What blocks it.
        message: String,
    },
}

/// Patch parameters for graft's writes.
pub(super) fn pp() -> PatchParams {
    PatchParams {
        field_manager: Some(MANAGER.to_string()),
        ..Default::default()
    }
}

/// Create parameters for graft's writes.
pub(super) fn post() -> PostParams {
    PostParams {
        field_manager: Some(MANAGER.to_string()),
        ..Default::default()
    }
}

/// Wraps an API error with the StatefulSet and the step.
pub(super) fn api_err(key: &str, step: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
    let key = key.to_string();
    let step = step.into();
    move |source| Error::Api { key, step, source }
}

/// The expectation keys of one set: its pods, its PVCs, its revisions, each checked against its
/// own cache. The kind is part of the key so a CloneSet of the same name never shares them.
pub(super) struct Keys {
    /// `StatefulSet:ns/name`: pods (also the key in logs and Events dedup).
    pub set: String,
    /// PVCs.
    pub claims: String,
    /// ControllerRevisions.
    pub revisions: String,
}

impl Keys {
    fn of(set: &StatefulSet) -> Self {
        let key = format!(
            "StatefulSet:{}/{}",
            set.metadata.namespace.as_deref().unwrap_or_default(),
            set.metadata.name.as_deref().unwrap_or_default()
        );
        Self {
            claims: format!("{key}/claims"),
            revisions: format!("{key}/revisions"),
            set: key,
        }
    }

    fn all(&self) -> [&str; 3] {
        [&self.set, &self.claims, &self.revisions]
    }
}

/// Requeue with backoff after an error; the error is logged and counted here.
pub fn error_policy(set: Arc<StatefulSet>, err: &Error, ctx: Arc<Context>) -> Requeue {
    tracing::warn!(statefulset = %Keys::of(&set).set, error = %err, "reconcile failed");
    ctx.metrics.reconciled(CONTROLLER, false, Duration::ZERO);
    Requeue::requeue(Duration::from_secs(5))
}

/// A shared cache as a [`CacheView`] of one namespace, for expectations.
struct StoreView<'a, K: kube::Resource + Clone + 'static>
where
    K::DynamicType: std::hash::Hash + Eq + Clone,
{
    namespace: &'a str,
    store: &'a Store<K>,
}

impl<K> CacheView for StoreView<'_, K>
where
    K: kube::Resource<DynamicType = ()> + Clone + 'static,
{
    fn lookup(&self, name: &str) -> Option<(bool, String)> {
        let obj = self
            .store
            .get(&ObjectRef::<K>::new(name).within(self.namespace))?;
        let meta = obj.meta();
        Some((
            meta.deletion_timestamp.is_some(),
            meta.resource_version.clone().unwrap_or_default(),
        ))
    }
}

/// One reconcile of an Advanced StatefulSet.
pub async fn reconcile(set: Arc<StatefulSet>, ctx: Arc<Context>) -> Result<Requeue, Error> {
    let started = Instant::now();
    let keys = Keys::of(&set);
    // A reconcile that hangs (an API call that never answers) must not hold this set forever:
    // kube-runtime runs one reconcile per object at a time.
    let result =
        match tokio::time::timeout(RECONCILE_TIMEOUT, reconcile_inner(&set, &ctx, &keys)).await {
            Ok(r) => r,
            Err(_) => Err(Error::Timeout {
                key: keys.set.clone(),
                after: RECONCILE_TIMEOUT,
            }),
        };
    if result.is_ok() {
        ctx.metrics.reconciled(CONTROLLER, true, started.elapsed());
    }
    result
}

async fn reconcile_inner(set: &StatefulSet, ctx: &Context, keys: &Keys) -> Result<Requeue, Error> {
    let key = keys.set.as_str();
    if set.metadata.deletion_timestamp.is_some() {
        // Pods, PVCs (by the retention policy) and revisions go with it through their owner
        // references.
        for k in keys.all() {
            ctx.expectations.forget(k);
        }
        ctx.waiting_changed(key, None);
        return Ok(Requeue::await_change());
    }
    // Refused before anything is read: an invalid selector must select nothing.
    let label_selector = match prepare::admit(set) {
        Ok(s) => s,
        Err(message) => return Ok(refuse(ctx, set, key, &message)),
    };
    if let Some(wait) = cache_not_ready(ctx, set, keys).await {
        return Ok(wait);
    }
    let mut gathered = gather(ctx, set, key, &label_selector)?;
    gathered.prepared.snapshot.storage_classes =
        storage_classes(ctx, &gathered.prepared.snapshot).await;
    let executor = Executor::new(ctx, keys, set, &gathered);
    if let SetupOutcome::Again(after) = executor.setup(&gathered.prepared.setup).await? {
        return Ok(Requeue::requeue(after));
    }
    let reference = kube::Resource::object_ref(set, &());
    let ns = set.metadata.namespace.clone().unwrap_or_default();
    crate::predownload::apply(ctx, &ns, key, &gathered.prepared.pre_download, &reference).await;
    let plan = plan::plan(&gathered.prepared.snapshot);
    status::announce_waiting(
        ctx,
        set,
        key,
        plan.waiting.as_deref(),
        plan.error.as_deref(),
    );
    for ev in &plan.events {
        status::publish(ctx, set, ev);
    }
    let outcome = executor.run(&plan.actions).await;
    let mut new_status = plan.status.clone();
    let with_condition = with_conditions(&mut new_status, &outcome, gathered.prepared.snapshot.now);
    if plan.status_changed || with_condition {
        status::write(ctx, set, key, &new_status).await?;
    }
    status::prune_history(ctx, set, key, &gathered.prepared.delete_revisions).await;
    tracing::debug!(statefulset = %key, actions = plan.actions.len(), failed = outcome.failed, "reconciled");
    if let Some(message) = plan.error {
        return Err(Error::Update {
            key: key.to_string(),
            message,
        });
    }
    Ok(requeue(&plan, outcome.failed))
}

/// `allowVolumeExpansion` of the storage classes of the PVCs an `OnPodRollingUpdate` set may
/// expand (kruise reads them from its informer; graft only when an expansion is due, which is
/// rare enough for a GET each).
async fn storage_classes(ctx: &Context, snap: &plan::Snapshot) -> BTreeMap<String, Option<bool>> {
    let on_rolling_update = snap
        .set
        .spec
        .volume_claim_update_strategy
        .as_ref()
        .and_then(|s| s.type_)
        == Some(VolumeClaimUpdateStrategyType::OnPodRollingUpdate);
    let mut out = BTreeMap::new();
    if !on_rolling_update {
        return out;
    }
    let api: Api<StorageClass> = Api::all(ctx.client.clone());
    for claim in &snap.claims {
        let r = &claim.resize;
        let Some(class) = r
            .storage_class
            .as_ref()
            .filter(|_| r.needs_expand && r.same_shape)
        else {
            continue;
        };
        if out.contains_key(class) {
            continue;
        }
        let allow = match api.get_opt(class).await {
            Ok(sc) => sc.map(|sc| sc.allow_volume_expansion == Some(true)),
            Err(e) => {
                tracing::debug!(storageclass = %class, error = %e, "reading a storage class");
                None
            }
        };
        out.insert(class.clone(), allow);
    }
    out
}

/// Invalid input is reported once and waits for the object to change (STYLE.md).
fn refuse(ctx: &Context, set: &StatefulSet, key: &str, message: &str) -> Requeue {
    let ev = PlannedEvent {
        type_: EventType::Warning,
        reason: "InvalidSpec".into(),
        message: message.to_string(),
    };
    status::publish(ctx, set, &ev);
    tracing::warn!(statefulset = %key, %message, "invalid spec");
    Requeue::await_change()
}

/// `Some(requeue)` while the shared caches cannot be trusted yet for this set.
async fn cache_not_ready(ctx: &Context, set: &StatefulSet, keys: &Keys) -> Option<Requeue> {
    // A fresh process must not plan before the caches have listed: it would see no pods and
    // create them all again. Expectations cannot catch this; they start empty after a restart.
    let synced = tokio::time::timeout(Duration::from_millis(100), async {
        ctx.pods.wait_until_ready().await?;
        ctx.revisions.wait_until_ready().await?;
        ctx.claims.wait_until_ready().await
    });
    if !matches!(synced.await, Ok(Ok(()))) {
        tracing::debug!(statefulset = %keys.set, "waiting for the pod, revision and PVC caches to sync");
        return Some(Requeue::requeue(Duration::from_millis(500)));
    }
    let namespace = set.metadata.namespace.as_deref().unwrap_or_default();
    let pods = StoreView::<Pod> {
        namespace,
        store: &ctx.pods,
    };
    let claims = StoreView::<PersistentVolumeClaim> {
        namespace,
        store: &ctx.claims,
    };
    let revisions = StoreView::<ControllerRevision> {
        namespace,
        store: &ctx.revisions,
    };
    let satisfied = ctx.expectations.satisfied(&keys.set, &pods)
        && ctx.expectations.satisfied(&keys.claims, &claims)
        && ctx.expectations.satisfied(&keys.revisions, &revisions);
    if !satisfied {
        tracing::debug!(statefulset = %keys.set, "waiting for the caches to show our last writes");
        return Some(Requeue::requeue(Duration::from_millis(500)));
    }
    None
}

/// Watch events drive progress; while a rollout is not settled, also look again every few
/// seconds so a missed event can only delay it, never stall it.
fn requeue(plan: &Plan, failed: bool) -> Requeue {
    match plan.requeue_after {
        _ if failed => Requeue::requeue(Duration::from_secs(5)),
        Some(d) => Requeue::requeue(d.min(Duration::from_secs(300))),
        None if !plan.actions.is_empty() => Requeue::requeue(Duration::from_secs(1)),
        None if plan.waiting.is_some() => Requeue::requeue(Duration::from_secs(3)),
        None => Requeue::requeue(Duration::from_secs(300)),
    }
}
