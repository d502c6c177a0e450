//! Roll-out counters of a workload, for the per-commit history.

use graft_api::graft::gitsync::WorkloadProgress;
use serde_json::Value;

/// The counters of a workload (desired, updated, ready, available pods; for DaemonSets the
/// scheduled pods, for SidecarSets the matched pods, for jobs the nodes), or `None` for kinds
/// that run no pods.
pub fn workload_progress(obj: &Value) -> Option<WorkloadProgress> {
    let r = crate::object::ObjectRef::from_object(obj)?;
    let (_, c) = graft_api::workload::counters(obj)?;
    Some(WorkloadProgress {
        group: r.group,
        kind: r.kind,
        namespace: r.namespace,
        name: r.name,
        replicas: c.replicas,
        updated: c.updated,
        ready: c.ready,
        available: c.available,
        failed: c.failed,
    })
}
