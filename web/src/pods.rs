//! Pods of a workload: node, revision, readiness, restarts, in-place update state, and how
//! each came to its revision for a commit (updated in place, recreated, or untouched).

use graft_api::annotations::InPlaceUpdateState;
use graft_api::labels;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use serde::Serialize;

use crate::format;

/// A pod as the workload page shows it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PodRow {
    /// Name.
    pub name: String,
    /// Node (empty until scheduled).
    pub node: String,
    /// `controller-revision-hash` (or `pod-template-hash`) label.
    pub revision: String,
    /// The pod is at the workload's update revision.
    pub updated: bool,
    /// Ready condition is True.
    pub ready: bool,
    /// `status.phase`, or `Terminating`.
    pub phase: String,
    /// Sum of the containers' restart counts.
    pub restarts: i32,
    /// The in-place update recorded on the pod, if any.
    pub in_place: Option<InPlaceRow>,
    /// Why a container is not running (`ImagePullBackOff: ...`), if one is waiting.
    pub waiting: Option<String>,
    /// Age.
    pub age: String,
}

/// The `apps.kruise.io/inplace-update-state` annotation, summarized.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct InPlaceRow {
    /// Revision the pod was updated to in place.
    pub revision: String,
    /// When (RFC 3339), if recorded.
    pub at: Option<String>,
    /// `done` when the pod runs that revision with every container ready, else `updating`.
    pub state: String,
}

/// The in-place update state of a pod, if it carries one that parses.
pub fn in_place_state(pod: &Pod) -> Option<InPlaceUpdateState> {
    let a = pod.metadata.annotations.as_ref()?;
    let raw = a
        .get(labels::INPLACE_UPDATE_STATE)
        .or_else(|| a.get(labels::INPLACE_UPDATE_STATE_LEGACY))?;
    serde_json::from_str(raw).ok()
}

/// The pod's revision label.
pub fn revision(pod: &Pod) -> String {
    let l = pod.metadata.labels.as_ref();
    l.and_then(|l| {
        l.get(labels::CONTROLLER_REVISION_HASH)
            .or_else(|| l.get(labels::POD_TEMPLATE_HASH))
    })
    .cloned()
    .unwrap_or_default()
}

/// Ready condition is True.
pub fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// `reason: message` of the first container (init containers first) that is waiting for a
/// reason other than plain `ContainerCreating`/`PodInitializing`.
pub fn waiting_reason(pod: &Pod) -> Option<String> {
    let s = pod.status.as_ref()?;
    s.init_container_statuses
        .iter()
        .flatten()
        .chain(s.container_statuses.iter().flatten())
        .find_map(|c| {
            let w = c.state.as_ref()?.waiting.as_ref()?;
            let reason = w.reason.clone().unwrap_or_default();
            if reason.is_empty() || reason == "ContainerCreating" || reason == "PodInitializing" {
                return None;
            }
            Some(match &w.message {
                Some(m) if !m.is_empty() => format!("{reason}: {m}"),
                _ => reason,
            })
        })
}

/// A pod row for the workload page.
pub fn row(pod: &Pod, update_revision: Option<&str>, now: Timestamp) -> PodRow {
    let status = pod.status.clone().unwrap_or_default();
    let revision = revision(pod);
    let ready = is_ready(pod);
    let in_place = in_place_state(pod).map(|st| {
        let done = st.revision == revision && ready;
        InPlaceRow {
            at: st.update_timestamp.as_ref().map(|t| t.0.to_string()),
            revision: st.revision,
            state: if done { "done" } else { "updating" }.into(),
        }
    });
    PodRow {
        name: pod.metadata.name.clone().unwrap_or_default(),
        node: pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default(),
        updated: update_revision.is_some_and(|u| !u.is_empty() && u == revision),
        revision,
        ready,
        phase: if pod.metadata.deletion_timestamp.is_some() {
            "Terminating".into()
        } else {
            status.phase.clone().unwrap_or_else(|| "Pending".into())
        },
        restarts: status
            .container_statuses
            .iter()
            .flatten()
            .map(|c| c.restart_count)
            .sum(),
        in_place,
        waiting: waiting_reason(pod),
        age: pod
            .metadata
            .creation_timestamp
            .as_ref()
            .map(|t| format::age(t.0, now))
            .unwrap_or_default(),
    }
}

/// How the pods of a workload came to a commit, counted over the live pods.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct UpdateCounts {
    /// Pods updated in place while the commit was the newest (their in-place update time falls
    /// in the commit's window).
    pub in_place: usize,
    /// Pods created while the commit was the newest.
    pub recreated: usize,
    /// Other live pods (older, not touched by this commit).
    pub untouched: usize,
}

/// Counts the pods by how they came to the commit applied at `from` and superseded at `until`
/// (`None`: still the newest).
pub fn update_counts<'a>(
    pods: impl IntoIterator<Item = &'a Pod>,
    from: Timestamp,
    until: Option<Timestamp>,
) -> UpdateCounts {
    let within = |t: Timestamp| t >= from && until.is_none_or(|u| t < u);
    let mut c = UpdateCounts::default();
    for pod in pods {
        let created = pod.metadata.creation_timestamp.as_ref().map(|t| t.0);
        let updated_at = in_place_state(pod)
            .filter(|s| s.revision == revision(pod))
            .and_then(|s| s.update_timestamp.map(|t| t.0));
        if updated_at.is_some_and(within) && created.is_none_or(|c| c < from) {
            c.in_place += 1;
        } else if created.is_some_and(within) {
            c.recreated += 1;
        } else {
            c.untouched += 1;
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, created: &str, rev: &str, inplace: Option<(&str, &str)>) -> Pod {
        let mut annotations = serde_json::Map::new();
        if let Some((r, at)) = inplace {
            annotations.insert(
                "apps.kruise.io/inplace-update-state".into(),
                json!(
                    json!({"revision": r, "updateTimestamp": at, "lastContainerStatuses": {}})
                        .to_string()
                ),
            );
        }
        serde_json::from_value(json!({
            "metadata": {"name": name, "creationTimestamp": created,
                         "labels": {"controller-revision-hash": rev}, "annotations": annotations},
            "spec": {"nodeName": "n1", "containers": [{"name": "app"}]},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
                       "containerStatuses": [{"name": "app", "image": "x", "imageID": "", "ready": true,
                                              "restartCount": 2, "state": {"running": {}}}]}
        }))
        .expect("pod")
    }

    fn t(s: &str) -> Timestamp {
        s.parse().expect("time")
    }

    #[test]
    fn counts_in_place_recreated_and_untouched_within_the_commit_window() {
        let pods = [
            pod(
                "a",
                "2026-01-01T00:00:00Z",
                "web-2",
                Some(("web-2", "2026-01-01T01:00:10Z")),
            ),
            pod("b", "2026-01-01T01:00:20Z", "web-2", None),
            pod("c", "2026-01-01T00:00:00Z", "web-1", None),
            // Updated in place by a later commit: not counted for this one.
            pod(
                "d",
                "2026-01-01T00:00:00Z",
                "web-3",
                Some(("web-3", "2026-01-01T02:00:00Z")),
            ),
        ];
        let c = update_counts(
            &pods,
            t("2026-01-01T01:00:00Z"),
            Some(t("2026-01-01T01:30:00Z")),
        );
        assert_eq!(
            c,
            UpdateCounts {
                in_place: 1,
                recreated: 1,
                untouched: 2
            }
        );
    }

    #[test]
    fn pod_row_reads_node_revision_restarts_and_in_place_state() {
        let p = pod(
            "a",
            "2026-01-01T00:00:00Z",
            "web-2",
            Some(("web-2", "2026-01-01T01:00:10Z")),
        );
        let r = row(&p, Some("web-2"), t("2026-01-01T02:00:00Z"));
        assert_eq!(r.node, "n1");
        assert!(r.updated && r.ready);
        assert_eq!(r.restarts, 2);
        assert_eq!(r.in_place.as_ref().map(|i| i.state.as_str()), Some("done"));
        assert_eq!(r.age, "2h 00m ago");
    }
}
