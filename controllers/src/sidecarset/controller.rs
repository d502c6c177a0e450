//! The SidecarSet controller: the thin executor around the [`upgrade`](super::upgrade) planner
//! (kruise's `sidecarset_processor.go UpdateSidecarSet`).
//!
//! One reconcile: write the hash annotations when the object lacks them (its webhook did not
//! answer when it was applied), register the latest ControllerRevision in graft's namespace
//! (reuse an equal one, bump it on a rollback, create one otherwise; trim the history), gather
//! the pods of the selector from the shared cache, plan, send each pod's changes, publish the
//! events and write the status.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use graft_api::apps::v1beta1::sidecarset::{SidecarSet, SidecarSetStatus};
use graft_api::{labels, selector};
use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action as Requeue;
use kube::{Api, Resource};
use serde_json::{Value, json};

use super::upgrade::{self, PlannedEvent, PodAction, PodActionKind, Snapshot};
use crate::context::Context;
use crate::expectations::{Expected, PodView};
use crate::inplace::PodChange;
use crate::revision::{self, RevisionAction, RevisionOwner};

/// Name in metrics and logs.
pub const CONTROLLER: &str = "sidecarset";
/// Field manager of graft's writes.
const MANAGER: &str = "graft";
/// A reconcile that takes longer is abandoned and retried.
const RECONCILE_TIMEOUT: Duration = Duration::from_secs(60);

/// Errors of one reconcile; each names the SidecarSet and the step.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An API call failed.
    #[error("SidecarSet {name}: {step}: {source}")]
    Api {
        /// The SidecarSet.
        name: String,
        /// What was being done.
        step: String,
        /// The cause.
        #[source]
        source: kube::Error,
    },
    /// The hashes could not be computed.
    #[error("SidecarSet {name}: {message}")]
    Hash {
        /// The SidecarSet.
        name: String,
        /// The cause.
        message: String,
    },
    /// The reconcile did not finish in time.
    #[error("SidecarSet {name}: reconcile did not finish within {after:?}")]
    Timeout {
        /// The SidecarSet.
        name: String,
        /// The limit.
        after: Duration,
    },
}

fn api_err(name: &str, step: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
    let name = name.to_string();
    let step = step.into();
    move |source| Error::Api { name, step, source }
}

fn pp() -> PatchParams {
    PatchParams {
        field_manager: Some(MANAGER.to_string()),
        ..Default::default()
    }
}

/// Requeue with backoff after an error.
pub fn error_policy(set: Arc<SidecarSet>, err: &Error, ctx: Arc<Context>) -> Requeue {
    tracing::warn!(sidecarset = %set.metadata.name.as_deref().unwrap_or_default(), error = %err, "reconcile failed");
    ctx.metrics.reconciled(CONTROLLER, false, Duration::ZERO);
    Requeue::requeue(Duration::from_secs(5))
}

/// One reconcile of a SidecarSet.
pub async fn reconcile(set: Arc<SidecarSet>, ctx: Arc<Context>) -> Result<Requeue, Error> {
    let started = Instant::now();
    let name = set.metadata.name.clone().unwrap_or_default();
    let result = match tokio::time::timeout(RECONCILE_TIMEOUT, reconcile_inner(&set, &ctx)).await {
        Ok(r) => r,
        Err(_) => Err(Error::Timeout {
            name,
            after: RECONCILE_TIMEOUT,
        }),
    };
    if result.is_ok() {
        ctx.metrics.reconciled(CONTROLLER, true, started.elapsed());
    }
    result
}

fn key_of(set: &SidecarSet) -> String {
    format!(
        "sidecarset/{}",
        set.metadata.name.as_deref().unwrap_or_default()
    )
}

async fn reconcile_inner(stored: &SidecarSet, ctx: &Context) -> Result<Requeue, Error> {
    let name = stored.metadata.name.clone().unwrap_or_default();
    let key = key_of(stored);
    if stored.metadata.deletion_timestamp.is_some() {
        ctx.expectations.forget(&key);
        return Ok(Requeue::await_change());
    }
    if let Some(ns) = ctx.namespace.as_deref()
        && !pinned_to(stored, ns)
    {
        // A graft that acts in one namespace runs only the SidecarSets of that namespace: the
        // others are cluster-wide, and their status is the business of a cluster-wide graft.
        return Ok(Requeue::await_change());
    }
    let api: Api<SidecarSet> = Api::all(ctx.client.clone());
    let set = super::source::with_hashes(stored.converted()).map_err(|e| Error::Hash {
        name: name.clone(),
        message: e.to_string(),
    })?;
    if hashes(&set) != hashes(stored) {
        // Written back so that every reader (kubectl, OpenKruise's tools) sees what pods carry;
        // the write triggers the next reconcile.
        let patch = json!({"metadata": {"annotations": {
            labels::SIDECARSET_HASH: hashes(&set).0,
            labels::SIDECARSET_HASH_WITHOUT_IMAGE: hashes(&set).1,
        }}});
        api.patch(&name, &pp(), &Patch::Merge(&patch))
            .await
            .map_err(api_err(&name, "writing the hash annotations"))?;
        return Ok(Requeue::requeue(Duration::from_millis(100)));
    }

    let (latest, collision_count) = register_revision(ctx, &set).await?;
    let pods = candidate_pods(ctx, &set);
    let view = StoreView { ctx };
    let unobserved = if ctx.expectations.satisfied(&key, &view) {
        Vec::new()
    } else {
        vec![key.clone()]
    };
    let namespaces: BTreeMap<String, BTreeMap<String, String>> = ctx
        .sidecarsets
        .namespaces
        .state()
        .iter()
        .map(|n| {
            (
                n.metadata.name.clone().unwrap_or_default(),
                n.metadata.labels.clone().unwrap_or_default(),
            )
        })
        .collect();
    report_missed(ctx, &set, &super::missed::missed(&set, &pods, &namespaces)).await;
    let snap = Snapshot {
        sidecarset: set.clone(),
        pods,
        namespaces,
        latest_revision: latest,
        collision_count,
        unobserved_pods: unobserved,
        now: Timestamp::now(),
    };
    let plan = upgrade::plan(&snap);
    tracing::debug!(sidecarset = %name, outcome = ?plan.outcome, actions = plan.actions.len(), "planned");
    for ev in &plan.events {
        publish(ctx, &set.object_ref(&()), ev).await;
    }
    for action in &plan.actions {
        if let Err(e) = run_action(ctx, &key, action).await {
            tracing::warn!(sidecarset = %name, pod = %action.name, error = %e, "pod change failed");
            break;
        }
    }
    if plan.status_changed {
        write_status(&api, &name, &plan.status).await?;
    }
    Ok(match plan.requeue_after {
        Some(d) => Requeue::requeue(d),
        None if plan.actions.is_empty() => Requeue::requeue(Duration::from_secs(60)),
        None => Requeue::requeue(Duration::from_secs(5)),
    })
}

/// The SidecarSet selects only namespace `ns` (`namespaceSelector` on
/// `kubernetes.io/metadata.name`, or v1alpha1's `namespace`).
fn pinned_to(set: &SidecarSet, ns: &str) -> bool {
    let set = set.converted();
    set.spec
        .namespace_selector
        .as_ref()
        .and_then(|s| s.match_labels.as_ref())
        .and_then(|m| m.get(graft_api::apps::v1beta1::sidecarset::NAMESPACE_NAME_LABEL))
        .is_some_and(|v| v == ns)
}

fn hashes(set: &SidecarSet) -> (String, String) {
    let get = |k: &str| {
        set.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(k).cloned())
            .unwrap_or_default()
    };
    (
        get(labels::SIDECARSET_HASH),
        get(labels::SIDECARSET_HASH_WITHOUT_IMAGE),
    )
}

/// The pods the selector selects, in the namespaces graft acts in (the planner applies the
/// namespace selector and the rest).
fn candidate_pods(ctx: &Context, set: &SidecarSet) -> Vec<Pod> {
    let Some(sel) = set.spec.selector.as_ref() else {
        return Vec::new();
    };
    let mut pods: Vec<Pod> = ctx
        .pods
        .state()
        .iter()
        .filter(|p| {
            let l = p.metadata.labels.clone().unwrap_or_default();
            selector::matches(sel, &l)
        })
        .map(|p| p.as_ref().clone())
        .collect();
    pods.sort_by(|a, b| {
        (a.metadata.namespace.as_deref(), a.metadata.name.as_deref())
            .cmp(&(b.metadata.namespace.as_deref(), b.metadata.name.as_deref()))
    });
    pods
}

/// kruise's revision data: `{"spec": {"$patch": "replace", volumes, containers,
/// initContainers, imagePullSecrets, patchPodMetadata}}` of the (converted, defaulted) spec, the
/// containers in the shape Go writes them ([`super::hash::go_shaped`]), so that the revision gets
/// the name kruise-manager gives it.
pub fn revision_data(set: &SidecarSet) -> Value {
    let spec = serde_json::to_value(&set.spec).unwrap_or(Value::Null);
    let field = |k: &str| spec.get(k).cloned().unwrap_or(Value::Null);
    let containers = |k: &str, items: &Option<Vec<_>>| {
        super::hash::go_shaped(items).unwrap_or_else(|_| field(k))
    };
    json!({"spec": {
        "$patch": "replace",
        "volumes": field("volumes"),
        "containers": containers("containers", &set.spec.containers),
        "initContainers": containers("initContainers", &set.spec.init_containers),
        "imagePullSecrets": field("imagePullSecrets"),
        "patchPodMetadata": field("patchPodMetadata"),
    }})
}

/// `registerLatestRevision`: the latest revision's name and the collision count.
async fn register_revision(ctx: &Context, set: &SidecarSet) -> Result<(String, i32), Error> {
    let name = set.metadata.name.clone().unwrap_or_default();
    let ns = ctx.sidecarsets.revision_namespace.clone();
    let api: Api<ControllerRevision> = Api::namespaced(ctx.client.clone(), &ns);
    let lp = ListParams::default().labels(&format!("{}={name}", labels::SIDECARSET_NAME));
    let existing = api
        .list(&lp)
        .await
        .map_err(api_err(&name, "listing revisions"))?
        .items;
    let owner = RevisionOwner {
        api_version: "apps.kruise.io/v1beta1".into(),
        kind: "SidecarSet".into(),
        name: name.clone(),
        namespace: None,
        uid: set.metadata.uid.clone().unwrap_or_default(),
    };
    let mut rev_labels = set.metadata.labels.clone().unwrap_or_default();
    rev_labels.insert(labels::SIDECARSET_NAME.to_string(), name.clone());
    if let Some(v) = set.spec.custom_version.as_deref().filter(|v| !v.is_empty()) {
        rev_labels.insert(labels::SIDECARSET_CUSTOM_VERSION.to_string(), v.to_string());
    }
    let annotations = set.metadata.annotations.clone().unwrap_or_default();
    let collision = set
        .status
        .as_ref()
        .and_then(|s| s.collision_count)
        .unwrap_or(0);
    let active = revision::resolve_revisions(
        &existing,
        &owner,
        &rev_labels,
        &annotations,
        revision_data(set),
        None,
        collision,
    );
    let latest = active.update.metadata.name.clone().unwrap_or_default();
    match active.action {
        RevisionAction::None => {}
        RevisionAction::Create(mut r) => {
            r.metadata.namespace = Some(ns.clone());
            match api.create(&PostParams::default(), &r).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 409 => {}
                Err(e) => return Err(api_err(&name, "creating a revision")(e)),
            }
        }
        RevisionAction::BumpRevision { name: r, revision } => {
            api.patch(&r, &pp(), &Patch::Merge(&json!({"revision": revision})))
                .await
                .map_err(api_err(&name, "bumping a revision"))?;
        }
    }
    // History: keep revisionHistoryLimit (default 10) besides the latest.
    let limit = set.spec.revision_history_limit.unwrap_or(10);
    let mut all = existing;
    revision::sort_revisions(&mut all);
    let old: Vec<&ControllerRevision> = all
        .iter()
        .filter(|r| r.metadata.name.as_deref() != Some(latest.as_str()))
        .collect();
    let excess = old
        .len()
        .saturating_sub(usize::try_from(limit.max(0)).unwrap_or(0));
    for r in old.iter().take(excess) {
        let n = r.metadata.name.clone().unwrap_or_default();
        let _ = api.delete(&n, &DeleteParams::default()).await;
    }
    Ok((latest, active.collision_count))
}

/// Sends one pod's changes in order, stopping at the first failure; then its Event.
async fn run_action(ctx: &Context, key: &str, action: &PodAction) -> Result<(), kube::Error> {
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &action.namespace);
    let mut result = Ok(());
    for change in &action.changes {
        let sent = match change {
            PodChange::Patch(p) => pods.patch(&action.name, &pp(), &Patch::Strategic(p)).await,
            PodChange::Conditions(c) => {
                let body = PodChange::status_patch(c);
                pods.patch_status(&action.name, &pp(), &Patch::Strategic(&body))
                    .await
            }
            PodChange::Resize(p) => {
                pods.patch_subresource("resize", &action.name, &pp(), &Patch::Strategic(p))
                    .await
            }
        };
        match sent {
            Ok(pod) => {
                if matches!(
                    action.kind,
                    PodActionKind::Upgrade { .. } | PodActionKind::ResetHotUpgrade { .. }
                ) && let Some(rv) = pod.metadata.resource_version.clone()
                {
                    ctx.expectations.expect(
                        key,
                        Expected::Patched(format!("{}/{}", action.namespace, action.name), rv),
                    );
                }
            }
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    if matches!(action.kind, PodActionKind::Upgrade { .. }) && result.is_ok() {
        ctx.metrics.pod_action(CONTROLLER, "upgrade_sidecar");
    }
    let reference = ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Pod".into()),
        name: Some(action.name.clone()),
        namespace: Some(action.namespace.clone()),
        ..Default::default()
    };
    let event = match &result {
        Ok(()) => action.success_event.clone(),
        Err(e) => action.failure_event.clone().map(|mut ev| {
            ev.message = format!("{}: {e}", ev.message);
            ev
        }),
    };
    if let Some(ev) = event {
        publish(ctx, &reference, &ev).await;
    }
    result
}

/// What was last reported of the pods each SidecarSet missed: per pod once, per SidecarSet when
/// the list changes. Losing it on a restart costs one repeated Event per pod.
fn reported() -> &'static std::sync::Mutex<BTreeMap<String, String>> {
    static REPORTED: std::sync::OnceLock<std::sync::Mutex<BTreeMap<String, String>>> =
        std::sync::OnceLock::new();
    REPORTED.get_or_init(Default::default)
}

/// Reports the pods created without this SidecarSet's sidecars and, when its switch is on,
/// deletes the one [`super::missed::missed`] chose (its controller creates it again, injected).
async fn report_missed(ctx: &Context, set: &SidecarSet, missed: &super::missed::Missed) {
    let name = set.metadata.name.clone().unwrap_or_default();
    let (new_pods, list_changed) = {
        let Ok(mut seen) = reported().lock() else {
            return;
        };
        let new_pods: Vec<String> = missed
            .pods
            .iter()
            .filter(|p| seen.insert(format!("{name}|{p}"), String::new()).is_none())
            .cloned()
            .collect();
        let list = missed.pods.join(",");
        let changed = seen.insert(format!("{name}|"), list.clone()) != Some(list);
        (new_pods, changed && !missed.pods.is_empty())
    };
    for key in &new_pods {
        let Some((ns, pod)) = key.split_once('/') else {
            continue;
        };
        let reference = ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            name: Some(pod.to_string()),
            namespace: Some(ns.to_string()),
            ..Default::default()
        };
        let ev = PlannedEvent {
            type_: crate::events::EventType::Warning,
            reason: super::missed::REASON.into(),
            message: super::missed::pod_message(&name),
        };
        publish(ctx, &reference, &ev).await;
    }
    if list_changed {
        let ev = PlannedEvent {
            type_: crate::events::EventType::Warning,
            reason: super::missed::REASON.into(),
            message: super::missed::set_message(&missed.pods),
        };
        publish(ctx, &set.object_ref(&()), &ev).await;
    }
    if let Some((ns, pod)) = missed.delete.as_deref().and_then(|k| k.split_once('/')) {
        let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
        match pods.delete(pod, &DeleteParams::default()).await {
            Ok(_) => {
                tracing::info!(sidecarset = %name, pod = %format!("{ns}/{pod}"), "deleted a pod created without the sidecars, to be recreated injected")
            }
            Err(e) => {
                tracing::warn!(sidecarset = %name, pod = %format!("{ns}/{pod}"), error = %e, "deleting a pod created without the sidecars")
            }
        }
    }
}

async fn publish(ctx: &Context, reference: &ObjectReference, ev: &PlannedEvent) {
    if let Err(e) = ctx
        .recorder
        .publish(ev.type_, &ev.reason, &ev.message, reference)
        .await
    {
        tracing::debug!(error = %e, "publishing event");
    }
}

async fn write_status(
    api: &Api<SidecarSet>,
    name: &str,
    status: &SidecarSetStatus,
) -> Result<(), Error> {
    let patch = json!({"status": status});
    api.patch_status(name, &pp(), &Patch::Merge(&patch))
        .await
        .map_err(api_err(name, "writing the status"))?;
    Ok(())
}

/// The pod cache as expectations see it: keys are `namespace/name`.
struct StoreView<'a> {
    ctx: &'a Context,
}

impl PodView for StoreView<'_> {
    fn lookup(&self, key: &str) -> Option<(bool, String)> {
        let (ns, name) = key.split_once('/')?;
        let pod = self
            .ctx
            .pods
            .get(&kube::runtime::reflector::ObjectRef::<Pod>::new(name).within(ns))?;
        Some((
            pod.metadata.deletion_timestamp.is_some(),
            pod.metadata.resource_version.clone().unwrap_or_default(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::revision::{hash_revision_data, revision_name, to_go_json};

    /// A SidecarSet's first ControllerRevision as OpenKruise 1.9.1's kruise-manager wrote it for
    /// the same applied object (testdata/kruise_revision.json: containers with probes, env,
    /// ports, resources, transferEnv, a hot-upgrade twin, an init container, volumes, pull
    /// secrets, patchPodMetadata, and `<`/`&` in strings): the same data bytes, hence the same
    /// name, so graft taking over finds kruise's revision instead of minting a second one.
    #[test]
    fn revision_data_and_name_are_byte_equal_to_kruise() {
        let golden: Value =
            serde_json::from_str(include_str!("testdata/kruise_revision.json")).expect("golden");
        let applied: SidecarSet = serde_json::from_value(golden["input"].clone()).expect("input");
        let set = super::super::hash::default_and_hash(&applied.converted()).expect("defaults");
        let data = revision_data(&set);
        assert_eq!(to_go_json(&data), golden["data_raw"].as_str().expect("raw"));
        let hash = hash_revision_data(&data, Some(0));
        assert_eq!(revision_name("golden-log", &hash), golden["name"]);
        assert_eq!(
            golden["labels"]["controller.kubernetes.io/hash"],
            hash.as_str()
        );
    }
}
