//! Roll-out counters of a workload, for the per-commit history.

use graft_api::graft::gitsync::WorkloadProgress;
use serde_json::Value;

use super::int;

/// The counters of a workload (desired, updated, ready, available pods; for DaemonSets the
/// scheduled pods, for SidecarSets the matched pods, for jobs the nodes), or `None` for kinds
/// that run no pods.
pub fn workload_progress(obj: &Value) -> Option<WorkloadProgress> {
    let r = crate::object::ObjectRef::from_object(obj)?;
    let get = |f: &str| int(obj, &format!("/status/{f}")).unwrap_or(0);
    let (replicas, updated, ready, available) = match (r.group.as_str(), r.kind.as_str()) {
        ("apps", "Deployment" | "StatefulSet") | ("apps.kruise.io", "CloneSet" | "StatefulSet") => {
            (
                int(obj, "/spec/replicas").unwrap_or(1),
                get("updatedReplicas"),
                get("readyReplicas"),
                get("availableReplicas"),
            )
        }
        ("apps" | "apps.kruise.io", "DaemonSet") => (
            get("desiredNumberScheduled"),
            get("updatedNumberScheduled"),
            get("numberReady"),
            get("numberAvailable"),
        ),
        ("apps.kruise.io", "SidecarSet") => (
            get("matchedPods"),
            get("updatedPods"),
            get("readyPods"),
            get("updatedReadyPods"),
        ),
        ("apps.kruise.io", "BroadcastJob" | "ImagePullJob") => (
            get("desired"),
            get("succeeded") + get("active"),
            get("succeeded"),
            get("succeeded"),
        ),
        _ => return None,
    };
    let clamp = |v: i64| v.clamp(0, i64::from(i32::MAX)) as i32;
    Some(WorkloadProgress {
        group: r.group,
        kind: r.kind,
        namespace: r.namespace,
        name: r.name,
        replicas: clamp(replicas),
        updated: clamp(updated),
        ready: clamp(ready),
        available: clamp(available),
    })
}
