//! PodUnavailableBudget protection (kruise-api.md §8): the budget a PUB grants is checked and
//! spent when one of its pods is deleted, evicted or changed in a way that may make it
//! unavailable (OpenKruise's `pubcontrol.PodUnavailableBudgetValidatePod`).
//!
//! The pure middle: [`classify`] names the operation of an admission request, [`pub_for_pod`]
//! finds the budget protecting a pod, [`decide`] says whether the budget must be spent, and
//! [`check_and_decrement`] spends it in a status. [`Guard::spend`] ([`spend`]) is the one place
//! that talks to the API server: under a per-PUB lock it re-reads the PUB, spends, and writes
//! the status conditionally on its resourceVersion, so that two racing requests for the last
//! allowed disruption never both pass. The admission webhook (`/validate-pod`) and graft's own
//! workload controllers (before deleting or updating a pod in place) both call it.

mod spend;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use graft_api::labels;
use graft_api::policy::v1alpha1::{
    PodUnavailableBudget, PodUnavailableBudgetStatus, ProtectOperation,
};
use graft_api::selector;
use k8s_openapi::api::core::v1::{Container, Pod, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, Time};
use k8s_openapi::jiff::Timestamp;
use serde_json::Value;

pub use spend::{CONFLICT_RETRIES, CONFLICT_WAIT, Guard, Refused, Spent, owner_chain, spend};

/// Most pods `status.disruptedPods` and `status.unavailablePods` may hold together before the
/// budget refuses everything (kruise's `MaxUnavailablePodSize`): the PUB controller is behind.
pub const MAX_UNAVAILABLE_POD_SIZE: usize = 2000;

/// Reason of the Warning Event recorded on a pod whose operation the budget refused.
pub const PREVENT_EVENT_REASON: &str = "PubPreventPodDeletion";
/// Note of that Event (kruise's words).
pub const PREVENT_EVENT_NOTE: &str = "openkruise pub prevents pod deletion";

/// The verb of an admission request, as far as the budget cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verb {
    /// `CREATE` (only `pods/eviction` matters).
    Create,
    /// `UPDATE` of a pod.
    Update,
    /// `DELETE` of a pod.
    Delete,
    /// Anything else (`CONNECT`).
    Other,
}

/// What [`classify`] reads from an admission request on pods or `pods/eviction`.
#[derive(Clone, Copy, Debug)]
pub struct Admission<'a> {
    /// The verb.
    pub verb: Verb,
    /// The subresource (`eviction`, `status`, …), `None` for the pod itself.
    pub sub_resource: Option<&'a str>,
    /// The pod before an update (unused for other verbs).
    pub old_pod: Option<&'a Pod>,
    /// The pod after an update (unused for other verbs).
    pub new_pod: Option<&'a Pod>,
    /// The request's own `dryRun` flag.
    pub dry_run: bool,
    /// The request's `options` (UpdateOptions, DeleteOptions), as JSON.
    pub options: Option<&'a Value>,
    /// The request's object (the Eviction for `pods/eviction`), as JSON.
    pub object: Option<&'a Value>,
}

/// A request the budget has to look at: which operation, and whether it is a dry run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Classified {
    /// The protected operation it is.
    pub operation: ProtectOperation,
    /// A dry run checks the budget but spends nothing.
    pub dry_run: bool,
}

/// The operation of an admission request, or `None` when the budget is not concerned: a pod
/// DELETE (no subresource), a `pods/eviction` CREATE, or a pod UPDATE that changes the spec or
/// adds an `unavailable-pod.kruise.io/*` label (RESIZE when only resizable resources change
/// without a restart, else UPDATE). For an UPDATE the pod checked is the old pod; for an
/// eviction it is the pod named by the request (read it from the cluster).
pub fn classify(a: &Admission<'_>) -> Option<Classified> {
    let options_dry_run = a.options.is_some_and(|o| dry_run_set(o.get("dryRun")));
    let operation = match a.verb {
        Verb::Delete if a.sub_resource.is_none_or(str::is_empty) => ProtectOperation::Delete,
        Verb::Create if a.sub_resource == Some("eviction") => {
            let evict_dry_run = a
                .object
                .and_then(|o| o.pointer("/deleteOptions/dryRun"))
                .is_some_and(|v| dry_run_set(Some(v)));
            return Some(Classified {
                operation: ProtectOperation::Evict,
                dry_run: a.dry_run || evict_dry_run || options_dry_run,
            });
        }
        Verb::Update if a.sub_resource.is_none_or(str::is_empty) => {
            let (Some(old), Some(new)) = (a.old_pod, a.new_pod) else {
                return None;
            };
            if !unavailable_changed(old, new) {
                return None;
            }
            if can_resize_in_place(old, new) {
                ProtectOperation::Resize
            } else {
                ProtectOperation::Update
            }
        }
        _ => return None,
    };
    Some(Classified {
        operation,
        dry_run: a.dry_run || options_dry_run,
    })
}

/// `dryRun: ["All"]` (any non-empty list) in request options.
fn dry_run_set(v: Option<&Value>) -> bool {
    v.and_then(Value::as_array).is_some_and(|l| !l.is_empty())
}

/// Whether any label of the pod marks it unavailable (`unavailable-pod.kruise.io/*`).
pub fn has_unavailable_label(pod: &Pod) -> bool {
    pod.metadata
        .labels
        .iter()
        .flatten()
        .any(|(k, _)| k.starts_with(labels::UNAVAILABLE_POD_LABEL_PREFIX))
}

/// kruise's `IsPodUnavailableChanged`: the spec changed, or an unavailable label was added.
pub fn unavailable_changed(old: &Pod, new: &Pod) -> bool {
    old.spec != new.spec || (!has_unavailable_label(old) && has_unavailable_label(new))
}

/// kruise's `CanResizeInplace`: only container resources changed, on resources the kubelet
/// resizes in place (cpu, memory) without a restart, with the same QoS class, and neither pod
/// is a static pod.
pub fn can_resize_in_place(old: &Pod, new: &Pod) -> bool {
    if !has_unavailable_label(old) && has_unavailable_label(new) {
        return false;
    }
    let (Some(o), Some(n)) = (&old.spec, &new.spec) else {
        return false;
    };
    if without_resources(o) != without_resources(n) {
        return false;
    }
    if is_static(old) || is_static(new) || qos(o) != qos(n) {
        return false;
    }
    if o.containers.len() != n.containers.len() {
        return false;
    }
    n.containers.iter().all(|c| {
        o.containers
            .iter()
            .find(|oc| oc.name == c.name)
            .is_some_and(|oc| resources_resizable(oc, c))
    })
}

fn without_resources(spec: &PodSpec) -> PodSpec {
    let mut s = spec.clone();
    for c in &mut s.containers {
        c.resources = None;
    }
    s
}

/// A static (mirror) pod: `kubernetes.io/config.source` set and not `api`.
fn is_static(pod: &Pod) -> bool {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("kubernetes.io/config.source"))
        .is_some_and(|s| s != "api")
}

/// Every changed resource of the container is cpu or memory with restart policy NotRequired.
fn resources_resizable(old: &Container, new: &Container) -> bool {
    let empty = BTreeMap::new();
    let lists = |c: &Container| {
        let r = c.resources.as_ref();
        (
            r.and_then(|r| r.requests.as_ref())
                .unwrap_or(&empty)
                .clone(),
            r.and_then(|r| r.limits.as_ref()).unwrap_or(&empty).clone(),
        )
    };
    let (or, ol) = lists(old);
    let (nr, nl) = lists(new);
    let names: std::collections::BTreeSet<&String> = or
        .keys()
        .chain(ol.keys())
        .chain(nr.keys())
        .chain(nl.keys())
        .collect();
    names.into_iter().all(|name| {
        let changed = or.get(name) != nr.get(name) || ol.get(name) != nl.get(name);
        if !changed {
            return true;
        }
        if name != "cpu" && name != "memory" {
            return false;
        }
        let policy = new
            .resize_policy
            .iter()
            .flatten()
            .find(|p| &p.resource_name == name)
            .map(|p| p.restart_policy.as_str());
        matches!(policy, None | Some("") | Some("NotRequired"))
    })
}

/// The QoS class, compared only for equality: BestEffort (no cpu/memory anywhere), Guaranteed
/// (every container limits cpu and memory, requests equal to limits), Burstable otherwise.
fn qos(spec: &PodSpec) -> u8 {
    let all: Vec<&Container> = spec
        .init_containers
        .iter()
        .flatten()
        .chain(&spec.containers)
        .collect();
    let get = |c: &Container, limits: bool, name: &str| {
        c.resources
            .as_ref()
            .and_then(|r| {
                if limits {
                    r.limits.as_ref()
                } else {
                    r.requests.as_ref()
                }
            })
            .and_then(|m| m.get(name))
            .map(|q| q.0.clone())
            .filter(|q| q != "0")
    };
    let any = all.iter().any(|c| {
        ["cpu", "memory"]
            .iter()
            .any(|n| get(c, false, n).is_some() || get(c, true, n).is_some())
    });
    if !any {
        return 0;
    }
    let guaranteed = all.iter().all(|c| {
        ["cpu", "memory"].iter().all(|n| {
            let limit = get(c, true, n);
            limit.is_some() && get(c, false, n).is_none_or(|r| Some(r) == limit)
        })
    });
    if guaranteed { 2 } else { 1 }
}

/// The owner chain of a pod used to match a PUB's `targetRef`: the pod's controller and, for a
/// ReplicaSet, the ReplicaSet's own controller (a Deployment). Each entry is (API group, kind,
/// name).
pub type OwnerChain = Vec<(String, String, String)>;

/// The (group, kind, name) of an object's controller owner reference.
pub fn controller_of(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> Option<(String, String, String)> {
    meta.owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
        .map(|o| (group_of(&o.api_version), o.kind.clone(), o.name.clone()))
}

fn group_of(api_version: &str) -> String {
    api_version
        .rsplit_once('/')
        .map_or(String::new(), |(g, _)| g.to_string())
}

/// The PUB protecting `pod` among `pubs` (those of the pod's namespace): the one the pod's
/// `related-pub` annotation names, else the first (by name) whose `targetRef` is in the pod's
/// owner chain or, without targetRef, whose selector matches the pod's labels.
pub fn pub_for_pod<'a>(
    pubs: &'a [PodUnavailableBudget],
    pod: &Pod,
    owners: &OwnerChain,
) -> Option<&'a PodUnavailableBudget> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
    let mut candidates: Vec<&PodUnavailableBudget> = pubs
        .iter()
        .filter(|p| p.metadata.namespace.as_deref().unwrap_or_default() == ns)
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect();
    candidates.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let annotations = pod.metadata.annotations.as_ref();
    let named = annotations
        .and_then(|a| {
            a.get(labels::PUB_RELATED_NEW)
                .or_else(|| a.get(labels::PUB_RELATED))
        })
        .filter(|n| !n.is_empty());
    if let Some(name) = named
        && let Some(p) = candidates
            .iter()
            .find(|p| p.metadata.name.as_deref() == Some(name))
    {
        return Some(p);
    }
    let pod_labels = pod.metadata.labels.clone().unwrap_or_default();
    candidates.into_iter().find(|p| match &p.spec.target_ref {
        Some(t) => {
            let group = group_of(t.api_version.as_deref().unwrap_or_default());
            owners.iter().any(|(g, k, n)| {
                *g == group
                    && Some(k.as_str()) == t.kind.as_deref()
                    && Some(n.as_str()) == t.name.as_deref()
            })
        }
        None => p
            .spec
            .selector
            .as_ref()
            .is_some_and(|s| !selector::is_empty(s) && selector::matches(s, &pod_labels)),
    })
}

/// What [`decide`] says about a pod and its PUB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Admit without spending: the reason, for logs and tests.
    Skip(Skip),
    /// The operation must spend one of the PUB's allowed disruptions.
    Spend,
}

/// Why a pod's operation does not spend the budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Skip {
    /// The pod carries `pub.kruise.io/no-protect: "true"`.
    NoProtect,
    /// The pod is not Running and Ready, or carries an unavailable label: it is not counted.
    NotReady,
    /// An in-place update or digest image is not complete yet: it is not counted.
    Inconsistent,
    /// The PUB's `ignoredPodSelector` (v1beta1) matches the pod.
    Ignored,
    /// `status.desiredAvailable` is 0: nothing to protect.
    NothingDesired,
    /// The PUB does not protect this operation.
    NotProtected,
    /// The pod is already in `status.disruptedPods` or `status.unavailablePods`.
    AlreadyRecorded,
}

/// Whether `op` on `pod` must spend `budget` (kruise's checks, in kruise's order). `raw` is the
/// PUB as the API server sent it, for the v1beta1 fields the v1alpha1 type lacks
/// (`spec.ignoredPodSelector`, `spec.protectOperations`).
pub fn decide(
    budget: &PodUnavailableBudget,
    raw: Option<&Value>,
    pod: &Pod,
    op: ProtectOperation,
) -> Decision {
    if no_protect(pod) {
        return Decision::Skip(Skip::NoProtect);
    }
    if !is_ready(pod) {
        return Decision::Skip(Skip::NotReady);
    }
    if !is_consistent(pod) {
        return Decision::Skip(Skip::Inconsistent);
    }
    if let Some(ignored) = raw
        .and_then(|r| r.pointer("/spec/ignoredPodSelector"))
        .and_then(|s| serde_json::from_value::<LabelSelector>(s.clone()).ok())
        && !selector::is_empty(&ignored)
        && selector::matches_labels(&ignored, pod.metadata.labels.as_ref())
    {
        return Decision::Skip(Skip::Ignored);
    }
    let status = budget.status.clone().unwrap_or_default();
    if status.desired_available == 0 {
        return Decision::Skip(Skip::NothingDesired);
    }
    if !protected_operations(budget, raw).contains(&op) {
        return Decision::Skip(Skip::NotProtected);
    }
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    if is_recorded(&status, name) {
        return Decision::Skip(Skip::AlreadyRecorded);
    }
    Decision::Spend
}

/// The operations a PUB protects: v1beta1 `spec.protectOperations`, else the annotation, else
/// DELETE, UPDATE, EVICT. RESIZE counts as protected whenever UPDATE is (kruise with its
/// `InPlacePodVerticalScaling` gate off, the default). Unknown names are ignored.
pub fn protected_operations(
    budget: &PodUnavailableBudget,
    raw: Option<&Value>,
) -> Vec<ProtectOperation> {
    let parse = |s: &str| match s.trim() {
        "DELETE" => Some(ProtectOperation::Delete),
        "EVICT" => Some(ProtectOperation::Evict),
        "UPDATE" => Some(ProtectOperation::Update),
        "RESIZE" => Some(ProtectOperation::Resize),
        _ => None,
    };
    let from_spec: Vec<ProtectOperation> = raw
        .and_then(|r| r.pointer("/spec/protectOperations"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().and_then(parse))
        .collect();
    let mut ops = if !from_spec.is_empty() {
        from_spec
    } else {
        match budget.protect_operations() {
            Ok(ops) => ops,
            Err(_) => budget
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(labels::PUB_PROTECT_OPERATIONS))
                .map(|v| v.split(',').filter_map(parse).collect())
                .unwrap_or_default(),
        }
    };
    if ops.contains(&ProtectOperation::Update) && !ops.contains(&ProtectOperation::Resize) {
        ops.push(ProtectOperation::Resize);
    }
    ops
}

fn no_protect(pod: &Pod) -> bool {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(labels::PUB_NO_PROTECT))
        .is_some_and(|v| matches!(v.as_str(), "1" | "t" | "T" | "true" | "TRUE" | "True"))
}

/// Running, condition Ready true, no unavailable label (kruise's `IsPodReady`).
pub fn is_ready(pod: &Pod) -> bool {
    let status = pod.status.as_ref();
    let running = status.and_then(|s| s.phase.as_deref()) == Some("Running");
    let ready = status
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
    running && ready && !has_unavailable_label(pod)
}

/// kruise's `IsPodStateConsistent`, without the SidecarSet part: every digest image runs that
/// digest, and a recorded in-place update has completed (when not every image is a digest).
pub fn is_consistent(pod: &Pod) -> bool {
    let containers = pod.spec.iter().flat_map(|s| &s.containers);
    let mut all_digest = true;
    for c in containers {
        let image = c.image.as_deref().unwrap_or_default();
        let Some((_, digest)) = image.split_once('@') else {
            all_digest = false;
            continue;
        };
        let runs = pod
            .status
            .iter()
            .flat_map(|s| s.container_statuses.iter().flatten())
            .find(|s| s.name == c.name)
            .is_some_and(|s| s.image_id.ends_with(digest));
        if !runs {
            return false;
        }
    }
    all_digest || crate::inplace::is_update_completed(pod).unwrap_or(false)
}

/// Whether the pod is already in the status maps.
pub fn is_recorded(status: &PodUnavailableBudgetStatus, pod: &str) -> bool {
    status
        .disrupted_pods
        .as_ref()
        .is_some_and(|m| m.contains_key(pod))
        || status
            .unavailable_pods
            .as_ref()
            .is_some_and(|m| m.contains_key(pod))
}

/// The refusal message of a budget with nothing left, in kruise's words (a `Forbidden` error
/// on `podunavailablebudget.policy.kruise.io`).
pub fn forbidden_message(pub_name: &str, why: &str) -> String {
    format!("podunavailablebudget.policy.kruise.io \"{pub_name}\" is forbidden: {why}")
}

/// Spends one allowed disruption of `status` for `pod`: `unavailableAllowed` − 1 and the pod
/// recorded at `now` in `unavailablePods` (UPDATE) or `disruptedPods` (others). `Err` is the
/// refusal message (nothing allowed, or the maps already too big).
pub fn check_and_decrement(
    status: &mut PodUnavailableBudgetStatus,
    pub_name: &str,
    pod: &str,
    op: ProtectOperation,
    now: Timestamp,
) -> Result<(), String> {
    if status.unavailable_allowed <= 0 {
        return Err(forbidden_message(
            pub_name,
            "pub unavailable allowed is negative",
        ));
    }
    let recorded = status.disrupted_pods.as_ref().map_or(0, BTreeMap::len)
        + status.unavailable_pods.as_ref().map_or(0, BTreeMap::len);
    if recorded > MAX_UNAVAILABLE_POD_SIZE {
        return Err(forbidden_message(
            pub_name,
            "DisruptedPods and UnavailablePods map too big - too many unavailable not confirmed by PUB controller",
        ));
    }
    status.unavailable_allowed -= 1;
    let map = if op == ProtectOperation::Update {
        &mut status.unavailable_pods
    } else {
        &mut status.disrupted_pods
    };
    map.get_or_insert_with(BTreeMap::new)
        .insert(pod.to_string(), Time(now));
    Ok(())
}
