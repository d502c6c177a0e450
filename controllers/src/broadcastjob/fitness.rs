//! Whether a BroadcastJob's pod can run on a node: kruise's `checkNodeFitness`, the scheduler
//! predicates it runs on a pod made from the template with `spec.nodeName` set to the node:
//! node name, required node affinity and nodeSelector, NoSchedule/NoExecute taints against the
//! tolerations (PreferNoSchedule ignored), `spec.unschedulable`, and resources (the pod's
//! requests against the node's allocatable, the node taken as empty, as kruise's `NodeInfo`
//! holds no pods).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Node, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, PodSpec, Taint, Toleration,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// Taint key of an unschedulable node (`node.kubernetes.io/unschedulable`).
pub const TAINT_UNSCHEDULABLE: &str = "node.kubernetes.io/unschedulable";

/// Why a pod does not fit a node (the scheduler's reasons, for logs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Misfit {
    /// `spec.nodeName` names another node.
    NodeName,
    /// nodeSelector or required node affinity does not match.
    Affinity,
    /// An untolerated NoSchedule/NoExecute taint.
    Taint {
        /// The taint's key.
        key: String,
        /// The taint's value.
        value: String,
    },
    /// The node is unschedulable and the pod does not tolerate it.
    Unschedulable,
    /// The node's allocatable is smaller than the pod's requests.
    Insufficient(Vec<String>),
}

impl std::fmt::Display for Misfit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Misfit::NodeName => f.write_str("node(s) didn't match the requested node name"),
            Misfit::Affinity => f.write_str("node(s) didn't match Pod's node affinity/selector"),
            Misfit::Taint { key, value } => write!(
                f,
                "node(s) had taint {{{key}: {value}}}, that the pod didn't tolerate"
            ),
            Misfit::Unschedulable => f.write_str("node(s) were unschedulable"),
            Misfit::Insufficient(r) => f.write_str(&r.join(", ")),
        }
    }
}

/// kruise's `checkNodeFitness` for a pod with this spec (its `nodeName` already set, as kruise's
/// mock pod has it) on `node`.
pub fn check(spec: &PodSpec, node: &Node) -> Result<(), Misfit> {
    let node_name = node.metadata.name.as_deref().unwrap_or_default();
    if let Some(n) = spec.node_name.as_deref()
        && !n.is_empty()
        && n != node_name
    {
        return Err(Misfit::NodeName);
    }
    if !matches_required_affinity(spec, node) {
        return Err(Misfit::Affinity);
    }
    let tolerations = spec.tolerations.as_deref().unwrap_or_default();
    let taints = node
        .spec
        .as_ref()
        .and_then(|s| s.taints.as_deref())
        .unwrap_or_default();
    if let Some(t) = taints
        .iter()
        .filter(|t| t.effect == "NoSchedule" || t.effect == "NoExecute")
        .find(|t| !tolerations.iter().any(|tol| tolerates(tol, t)))
    {
        return Err(Misfit::Taint {
            key: t.key.clone(),
            value: t.value.clone().unwrap_or_default(),
        });
    }
    let unschedulable = node
        .spec
        .as_ref()
        .and_then(|s| s.unschedulable)
        .unwrap_or(false);
    let unschedulable_taint = Taint {
        key: TAINT_UNSCHEDULABLE.to_string(),
        effect: "NoSchedule".to_string(),
        ..Default::default()
    };
    if unschedulable
        && !tolerations
            .iter()
            .any(|tol| tolerates(tol, &unschedulable_taint))
    {
        return Err(Misfit::Unschedulable);
    }
    let insufficient = insufficient_resources(spec, node);
    if !insufficient.is_empty() {
        return Err(Misfit::Insufficient(insufficient));
    }
    Ok(())
}

/// Kubernetes' `Toleration.ToleratesTaint`: effects equal (an empty effect matches all), keys
/// equal (an empty key with `Exists` matches all), and `Exists`, or `Equal` (the default) with
/// equal values.
pub fn tolerates(tol: &Toleration, taint: &Taint) -> bool {
    let effect = tol.effect.as_deref().unwrap_or_default();
    if !effect.is_empty() && effect != taint.effect {
        return false;
    }
    let key = tol.key.as_deref().unwrap_or_default();
    let op = tol.operator.as_deref().unwrap_or_default();
    if key.is_empty() {
        if op != "Exists" {
            return false;
        }
    } else if key != taint.key {
        return false;
    }
    match op {
        "Exists" => true,
        "" | "Equal" => {
            tol.value.as_deref().unwrap_or_default() == taint.value.as_deref().unwrap_or_default()
        }
        _ => false,
    }
}

/// `GetRequiredNodeAffinity(pod).Match(node)`: the nodeSelector's labels all match, and the
/// required node affinity (when set) has a matching term.
pub fn matches_required_affinity(spec: &PodSpec, node: &Node) -> bool {
    let empty = BTreeMap::new();
    let labels = node.metadata.labels.as_ref().unwrap_or(&empty);
    if let Some(sel) = &spec.node_selector
        && !sel.iter().all(|(k, v)| labels.get(k) == Some(v))
    {
        return false;
    }
    let required = spec
        .affinity
        .as_ref()
        .and_then(|a| a.node_affinity.as_ref())
        .and_then(|na| {
            na.required_during_scheduling_ignored_during_execution
                .as_ref()
        });
    match required {
        Some(sel) => matches_node_selector(sel, node),
        None => true,
    }
}

/// A `NodeSelector` matches when any of its terms does (no terms: none).
pub fn matches_node_selector(sel: &NodeSelector, node: &Node) -> bool {
    sel.node_selector_terms
        .iter()
        .any(|t| matches_term(t, node))
}

/// A term matches when it has requirements and all hold; an empty term matches no node.
fn matches_term(term: &NodeSelectorTerm, node: &Node) -> bool {
    let exprs = term.match_expressions.as_deref().unwrap_or_default();
    let fields = term.match_fields.as_deref().unwrap_or_default();
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    let empty = BTreeMap::new();
    let labels = node.metadata.labels.as_ref().unwrap_or(&empty);
    let name = node.metadata.name.clone().unwrap_or_default();
    exprs
        .iter()
        .all(|r| matches_requirement(r, labels.get(&r.key).map(String::as_str)))
        && fields.iter().all(|r| {
            // Only `metadata.name` with In/NotIn is a valid field selector.
            r.key == "metadata.name"
                && matches!(r.operator.as_str(), "In" | "NotIn")
                && matches_requirement(r, Some(&name))
        })
}

/// One requirement against the value of its key (`None`: the node lacks the label).
pub fn matches_requirement(r: &NodeSelectorRequirement, value: Option<&str>) -> bool {
    let values = r.values.as_deref().unwrap_or_default();
    match r.operator.as_str() {
        "In" => value.is_some_and(|v| values.iter().any(|x| x == v)),
        "NotIn" => value.is_none_or(|v| !values.iter().any(|x| x == v)),
        "Exists" => value.is_some(),
        "DoesNotExist" => value.is_none(),
        "Gt" | "Lt" => {
            let [bound] = values else { return false };
            let (Ok(bound), Some(Ok(v))) = (bound.parse::<i64>(), value.map(str::parse::<i64>))
            else {
                return false;
            };
            if r.operator == "Gt" {
                v > bound
            } else {
                v < bound
            }
        }
        _ => false,
    }
}

/// The scheduler's `noderesources.Fits` on an empty node: one more pod than `pods`
/// allocatable, or requests above allocatable, give the reasons (`Too many pods`,
/// `Insufficient cpu`, ...).
fn insufficient_resources(spec: &PodSpec, node: &Node) -> Vec<String> {
    let allocatable = node
        .status
        .as_ref()
        .and_then(|s| s.allocatable.clone())
        .unwrap_or_default();
    let mut out = Vec::new();
    let allowed_pods = allocatable.get("pods").map_or(0, nanos) / 1_000_000_000;
    if allowed_pods < 1 {
        out.push("Too many pods".to_string());
    }
    let requests = pod_requests(spec);
    for (name, wanted) in &requests {
        if *wanted <= 0 {
            continue;
        }
        // Extended resources the node does not know are the scheduler's "insufficient" too;
        // hugepages and the like are all under their own names.
        let have = allocatable.get(name).map_or(0, nanos);
        if *wanted > have {
            out.push(format!("Insufficient {name}"));
        }
    }
    out
}

/// The pod's effective requests: the larger of the containers' sum and each init container,
/// plus the overhead (Kubernetes' `PodRequests` without sidecar subtleties).
fn pod_requests(spec: &PodSpec) -> BTreeMap<String, i128> {
    let mut sum: BTreeMap<String, i128> = BTreeMap::new();
    for c in &spec.containers {
        for (k, q) in container_requests(c) {
            *sum.entry(k).or_default() += q;
        }
    }
    for c in spec.init_containers.iter().flatten() {
        for (k, q) in container_requests(c) {
            let e = sum.entry(k).or_default();
            *e = (*e).max(q);
        }
    }
    for (k, q) in spec.overhead.iter().flatten() {
        *sum.entry(k.clone()).or_default() += nanos(q);
    }
    sum
}

/// A container's requests; limits stand in for missing requests, as the API server defaults them.
fn container_requests(c: &k8s_openapi::api::core::v1::Container) -> BTreeMap<String, i128> {
    let res = c.resources.as_ref();
    let mut out: BTreeMap<String, i128> = res
        .and_then(|r| r.limits.as_ref())
        .map(|l| l.iter().map(|(k, q)| (k.clone(), nanos(q))).collect())
        .unwrap_or_default();
    for (k, q) in res.and_then(|r| r.requests.as_ref()).into_iter().flatten() {
        out.insert(k.clone(), nanos(q));
    }
    out
}

fn nanos(q: &Quantity) -> i128 {
    graft_api::quantity::parse(&q.0).map_or(0, |p| p.nanos)
}
