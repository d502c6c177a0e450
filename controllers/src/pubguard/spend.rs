//! The one step that talks to the API server: spend a PUB's budget atomically.
//!
//! Two guards make it atomic. In process, one async mutex per PUB (`namespace/name`) serialises
//! read-spend-write, so concurrent admission requests (and graft's controllers) queue instead of
//! conflicting. Across processes (two graft replicas, OpenKruise beside graft), the status is
//! written with the resourceVersion it was read at: a stale write gets 409 Conflict, and the PUB
//! is read again and the spend retried (kruise: 4 tries, 500 ms apart).

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use graft_api::policy::v1alpha1::{PodUnavailableBudget, ProtectOperation};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::api::{ApiResource, DynamicObject, ListParams, PostParams};
use kube::{Api, Client, Resource};
use serde_json::Value;

use super::{Decision, OwnerChain, Skip, check_and_decrement, controller_of, decide};
use crate::events::{EventType, Recorder};

/// Tries of the conditional status write before giving up (kruise's `ConflictRetry.Steps`).
pub const CONFLICT_RETRIES: usize = 4;
/// Wait between two tries (kruise's `ConflictRetry.Duration`).
pub const CONFLICT_WAIT: Duration = Duration::from_millis(500);

/// The operation may go ahead.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Spent {
    /// No PUB protects the pod, or [`decide`] let it through without spending.
    Unprotected,
    /// One allowed disruption of this PUB was spent (or would be, on a dry run).
    Budget {
        /// The PUB's name.
        pub_name: String,
        /// Nothing was written (dry run).
        dry_run: bool,
    },
}

/// The operation must not go ahead: kruise's message (the webhook answers it with 403).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Refused {
    /// The PUB's name.
    pub pub_name: String,
    /// Why, naming the PUB.
    pub message: String,
}

/// Spends PUB budgets: the client and the recorder of `PubPreventPodDeletion` Events.
#[derive(Clone)]
pub struct Guard {
    client: Client,
    recorder: Option<Arc<Recorder>>,
}

impl Guard {
    /// A guard writing with `client`, recording refusals with `recorder` when given.
    pub fn new(client: Client, recorder: Option<Arc<Recorder>>) -> Guard {
        Guard { client, recorder }
    }

    /// For a controller about to delete (`Delete`) or update in place (`Update`) `pod`: finds
    /// the pod's PUB (listed from the API server) and [`Guard::spend`]s it. A failed list
    /// refuses (the controller retries later).
    pub async fn protect(&self, pod: &Pod, op: ProtectOperation) -> Result<Spent, Refused> {
        let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
        let api = pub_api(&self.client, ns);
        let listed = api
            .list(&ListParams::default())
            .await
            .map_err(|e| refused("", format!("listing PodUnavailableBudgets in {ns}: {e}")))?;
        let pubs: Vec<PodUnavailableBudget> = listed
            .items
            .into_iter()
            .filter_map(|o| serde_json::to_value(o).ok())
            .filter_map(|v| serde_json::from_value(v).ok())
            .collect();
        let owners = owner_chain(&self.client, pod).await;
        match super::pub_for_pod(&pubs, pod, &owners) {
            Some(p) => self.spend(p, pod, op, false).await,
            None => Ok(Spent::Unprotected),
        }
    }

    /// [`spend`] with this guard's client and recorder.
    pub async fn spend(
        &self,
        budget: &PodUnavailableBudget,
        pod: &Pod,
        op: ProtectOperation,
        dry_run: bool,
    ) -> Result<Spent, Refused> {
        let result = spend(&self.client, budget, pod, op, dry_run).await;
        if let (Err(_), Some(recorder)) = (&result, &self.recorder) {
            recorder.enqueue(
                EventType::Warning,
                super::PREVENT_EVENT_REASON,
                super::PREVENT_EVENT_NOTE,
                &pod.object_ref(&()),
            );
        }
        result
    }
}

/// The owner chain of `pod` for `targetRef` matching: its controller, and the controller of a
/// ReplicaSet owner (read from the API server; unreadable means no Deployment).
pub async fn owner_chain(client: &Client, pod: &Pod) -> OwnerChain {
    let mut chain = OwnerChain::new();
    let Some(owner) = controller_of(&pod.metadata) else {
        return chain;
    };
    if owner.0 == "apps" && owner.1 == "ReplicaSet" {
        let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
        let rs: Api<ReplicaSet> = Api::namespaced(client.clone(), ns);
        if let Ok(Some(rs)) = rs.get_opt(&owner.2).await
            && let Some(deployment) = controller_of(&rs.metadata)
        {
            chain.push(deployment);
        }
    }
    chain.insert(0, owner);
    chain
}

/// Checks `pod`'s `op` against `budget` and, when it must be spent, spends one allowed
/// disruption: under the PUB's lock, reads the PUB, [`decide`]s again on the fresh copy,
/// [`check_and_decrement`]s and writes the status conditionally (retried on conflict). A dry
/// run checks and writes nothing. A PUB gone meanwhile admits; any other API error refuses
/// with its message (kruise).
pub async fn spend(
    client: &Client,
    budget: &PodUnavailableBudget,
    pod: &Pod,
    op: ProtectOperation,
    dry_run: bool,
) -> Result<Spent, Refused> {
    let ns = budget.metadata.namespace.as_deref().unwrap_or_default();
    let name = budget.metadata.name.clone().unwrap_or_default();
    // The pod's own reasons are checked here; the budget's on the fresh copy read below (the
    // caller's may be a cache behind the last spend).
    if let Decision::Skip(Skip::NoProtect | Skip::NotReady | Skip::Inconsistent) =
        decide(budget, None, pod, op)
    {
        return Ok(Spent::Unprotected);
    }
    let pod_name = pod.metadata.name.clone().unwrap_or_default();
    let api = pub_api(client, ns);
    let lock = lock_for(&format!("{ns}/{name}"));
    for attempt in 0..CONFLICT_RETRIES {
        if attempt > 0 {
            tokio::time::sleep(CONFLICT_WAIT).await;
        }
        let _held = lock.lock().await;
        let fresh = match api.get_opt(&name).await {
            Ok(Some(o)) => o,
            Ok(None) => return Ok(Spent::Unprotected),
            Err(e) => return Err(refused(&name, e.to_string())),
        };
        let raw = serde_json::to_value(&fresh).map_err(|e| refused(&name, e.to_string()))?;
        let typed: PodUnavailableBudget =
            serde_json::from_value(raw.clone()).map_err(|e| refused(&name, e.to_string()))?;
        if decide(&typed, Some(&raw), pod, op) != Decision::Spend {
            return Ok(Spent::Unprotected);
        }
        let mut status = typed.status.clone().unwrap_or_default();
        check_and_decrement(&mut status, &name, &pod_name, op, Timestamp::now())
            .map_err(|message| refused(&name, message))?;
        if dry_run {
            return Ok(Spent::Budget {
                pub_name: name,
                dry_run: true,
            });
        }
        let mut body = raw;
        let status_json =
            serde_json::to_value(&status).map_err(|e| refused(&name, e.to_string()))?;
        merge_status(&mut body, status_json);
        let object: DynamicObject =
            serde_json::from_value(body).map_err(|e| refused(&name, e.to_string()))?;
        match api
            .replace_status(&name, &PostParams::default(), &object)
            .await
        {
            Ok(_) => {
                tracing::debug!(pub_ = %format!("{ns}/{name}"), pod = %pod_name, ?op, "pub: spent one allowed disruption");
                return Ok(Spent::Budget {
                    pub_name: name,
                    dry_run: false,
                });
            }
            Err(kube::Error::Api(e)) if e.code == 404 => return Ok(Spent::Unprotected),
            Err(kube::Error::Api(e)) if e.code == 409 => {
                tracing::debug!(pub_ = %format!("{ns}/{name}"), attempt, "pub: status conflict, reading again");
                continue;
            }
            Err(e) => return Err(refused(&name, e.to_string())),
        }
    }
    Err(refused(
        &name,
        format!("Timeout: couldn't update PodUnavailableBudget {name} due to conflicts"),
    ))
}

/// Replaces the status fields graft knows in `body`, keeping any others (a newer version's).
fn merge_status(body: &mut Value, status: Value) {
    let Some(obj) = body.as_object_mut() else {
        return;
    };
    let target = obj
        .entry("status")
        .or_insert_with(|| Value::Object(Default::default()));
    if !target.is_object() {
        *target = Value::Object(Default::default());
    }
    if let (Some(t), Value::Object(s)) = (target.as_object_mut(), status) {
        for key in ["disruptedPods", "unavailablePods"] {
            t.remove(key);
        }
        t.extend(s);
    }
}

fn refused(pub_name: &str, message: String) -> Refused {
    Refused {
        pub_name: pub_name.to_string(),
        message,
    }
}

fn pub_api(client: &Client, ns: &str) -> Api<DynamicObject> {
    let resource = ApiResource::erase::<PodUnavailableBudget>(&());
    Api::namespaced_with(client.clone(), ns, &resource)
}

/// The in-process lock of one PUB. Entries are never removed: one small mutex per PUB ever
/// spent, which is bounded by the PUBs of the cluster.
fn lock_for(key: &str) -> Arc<tokio::sync::Mutex<()>> {
    static LOCKS: LazyLock<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>> =
        LazyLock::new(Default::default);
    let mut map = match LOCKS.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    };
    map.entry(key.to_string()).or_default().clone()
}
