//! Pods a SidecarSet should have been injected into and was not: created after the SidecarSet,
//! matched by it, and without it in their `kruise.io/sidecarset-injected-list`. graft's pod
//! webhook fails open, so a pod created while it did not answer (graft down, a network fault)
//! starts without its sidecars; OpenKruise would have refused to create it. graft reports such
//! pods (an Event on each pod, once, and one on the SidecarSet) and, when the SidecarSet carries
//! [`RECREATE_ANNOTATION`]`: "true"`, deletes them one at a time so that their controller creates
//! them again, injected. Pods without a controller are never deleted (nothing would bring them
//! back); pods created before the SidecarSet are not missed (kruise does not inject those either).

use std::collections::BTreeMap;

use graft_api::apps::v1beta1::sidecarset::{SidecarSet, missed_injection};
use k8s_openapi::api::core::v1::Pod;

use super::inject::pod_matches;

/// The switch on a SidecarSet: `"true"` recreates the pods it missed.
pub const RECREATE_ANNOTATION: &str = graft_api::labels::RECREATE_NOT_INJECTED;
/// Reason of the Events.
pub const REASON: &str = "SidecarNotInjected";

/// What to do about the pods a SidecarSet missed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Missed {
    /// `namespace/name` of every missed pod, sorted.
    pub pods: Vec<String>,
    /// The one pod to delete now (the switch is on, it has a controller, and every other
    /// matched pod is ready).
    pub delete: Option<String>,
}

/// The pods `set` missed among `pods` (namespace labels by name for its `namespaceSelector`).
pub fn missed(
    set: &SidecarSet,
    pods: &[Pod],
    namespaces: &BTreeMap<String, BTreeMap<String, String>>,
) -> Missed {
    let empty = BTreeMap::new();
    let mut out = Missed::default();
    let mut all_others_ready = true;
    let mut candidate = None;
    for pod in pods {
        if pod.metadata.deletion_timestamp.is_some() || finished(pod) {
            continue;
        }
        let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
        let pod_labels = pod.metadata.labels.clone().unwrap_or_default();
        if !pod_matches(set, &pod_labels, namespaces.get(ns).unwrap_or(&empty)) {
            continue;
        }
        let key = format!("{ns}/{}", pod.metadata.name.as_deref().unwrap_or_default());
        if missed_injection(&set.metadata, pod) {
            out.pods.push(key.clone());
            if candidate.is_none() && has_controller(pod) {
                candidate = Some(key);
                continue;
            }
        }
        all_others_ready &= ready(pod);
    }
    out.pods.sort();
    let on = set
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(RECREATE_ANNOTATION))
        .is_some_and(|v| v == "true");
    if on && all_others_ready {
        out.delete = candidate;
    }
    out
}

/// The Event message on a missed pod.
pub fn pod_message(set: &str) -> String {
    format!(
        "created without the sidecars of SidecarSet {set} (graft's pod webhook did not answer); \
         set annotation {RECREATE_ANNOTATION}: \"true\" on the SidecarSet to have such pods recreated"
    )
}

/// The Event message on the SidecarSet.
pub fn set_message(pods: &[String]) -> String {
    const SHOWN: usize = 5;
    let mut names = pods
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if pods.len() > SHOWN {
        names.push_str(&format!(" and {} more", pods.len() - SHOWN));
    }
    format!(
        "{} matched pod(s) were created without this SidecarSet's sidecars: {names}",
        pods.len()
    )
}

fn has_controller(pod: &Pod) -> bool {
    pod.metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.controller == Some(true))
}

fn finished(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

fn ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use serde_json::json;

    fn set(recreate: bool) -> SidecarSet {
        let mut v = json!({
            "apiVersion": "apps.kruise.io/v1beta1", "kind": "SidecarSet",
            "metadata": {"name": "log", "creationTimestamp": "2026-12-02T10:00:00Z"},
            "spec": {"selector": {"matchLabels": {"app": "web"}},
                     "containers": [{"name": "log", "image": "log:v1"}]}
        });
        if recreate {
            v["metadata"]["annotations"] = json!({RECREATE_ANNOTATION: "true"});
        }
        serde_json::from_value(v).unwrap()
    }

    fn pod(name: &str, created: &str, injected: bool, owned: bool, ready: bool) -> Pod {
        let mut v = json!({
            "metadata": {"name": name, "namespace": "shop", "labels": {"app": "web"},
                         "creationTimestamp": created},
            "spec": {"containers": [{"name": "app", "image": "app:v1"}]},
            "status": {"phase": "Running", "conditions": [
                {"type": "Ready", "status": if ready { "True" } else { "False" }}]}
        });
        if injected {
            v["metadata"]["annotations"] =
                json!({"kruise.io/sidecarset-injected-list": "other,log"});
        }
        if owned {
            v["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                "name": "web-1", "uid": "u", "controller": true}]);
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn only_pods_created_after_the_set_without_it_are_missed() {
        let pods = vec![
            pod("old", "2026-12-02T09:00:00Z", false, true, true),
            pod("ok", "2026-12-02T11:00:00Z", true, true, true),
            pod("bare", "2026-12-02T11:00:00Z", false, false, true),
            pod("owned", "2026-12-02T11:00:01Z", false, true, true),
        ];
        let m = missed(&set(false), &pods, &BTreeMap::new());
        assert_eq!(
            m.pods,
            vec!["shop/bare".to_string(), "shop/owned".to_string()]
        );
        assert_eq!(m.delete, None, "the switch is off");
    }

    #[test]
    fn the_switch_deletes_one_owned_pod_while_the_others_are_ready() {
        let pods = vec![
            pod("bare", "2026-12-02T11:00:00Z", false, false, true),
            pod("a", "2026-12-02T11:00:01Z", false, true, true),
            pod("b", "2026-12-02T11:00:02Z", false, true, true),
        ];
        let m = missed(&set(true), &pods, &BTreeMap::new());
        assert_eq!(
            m.delete.as_deref(),
            Some("shop/a"),
            "never the pod nothing would recreate"
        );
        let mut pods = pods;
        pods.push(pod("sick", "2026-12-02T11:00:03Z", true, true, false));
        let m = missed(&set(true), &pods, &BTreeMap::new());
        assert_eq!(m.delete, None, "waits while a matched pod is not ready");
    }

    #[test]
    fn messages_name_the_pods() {
        let pods: Vec<String> = (0..7).map(|i| format!("shop/p{i}")).collect();
        assert_eq!(
            set_message(&pods),
            "7 matched pod(s) were created without this SidecarSet's sidecars: shop/p0, shop/p1, shop/p2, shop/p3, shop/p4 and 2 more"
        );
        assert!(pod_message("log").contains(RECREATE_ANNOTATION));
    }
}
