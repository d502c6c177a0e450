//! The table rows of CloneSet and Advanced StatefulSet: a live object and the state graft gives it.
//!
//! Shared by the unit tests (`tests.rs`) and by `tests/argocd_health.rs`, which includes this file
//! by path and runs Argo CD's Lua health checks on the same objects.

use serde_json::{Value, json};

use super::HealthStatus::{self, *};

/// A row: name, live object, expected state, a part of the expected message.
pub(crate) type Row = (&'static str, Value, HealthStatus, &'static str);

/// An object of `api_version`/`kind` at generation 2 with `spec` and `status` (generation 2
/// observed unless the status says otherwise).
pub(crate) fn obj(api_version: &str, kind: &str, spec: Value, status: Value) -> Value {
    let mut status = status;
    if let Some(s) = status.as_object_mut() {
        s.entry("observedGeneration").or_insert(json!(2));
    }
    json!({"apiVersion": api_version, "kind": kind,
        "metadata": {"name": "x", "namespace": "demo", "generation": 2},
        "spec": spec, "status": status})
}

/// A v1alpha1 CloneSet.
pub(crate) fn cloneset(spec: Value, status: Value) -> Value {
    obj("apps.kruise.io/v1alpha1", "CloneSet", spec, status)
}

/// A CloneSet status of 5 pods, all ready and available, with the updated counters given.
pub(crate) fn cs_status(updated: i64, ready: i64, avail: i64, expected: i64) -> Value {
    json!({"replicas": 5, "readyReplicas": 5, "availableReplicas": 5, "updatedReplicas": updated,
        "updatedReadyReplicas": ready, "updatedAvailableReplicas": avail, "expectedUpdatedReplicas": expected})
}

/// CloneSet rows: the roll-out counters, pause, partition, failure and deadline conditions.
pub(crate) fn cloneset_rows() -> Vec<Row> {
    let five = json!({"replicas": 5});
    vec![
        (
            "done",
            cloneset(five.clone(), cs_status(5, 5, 5, 5)),
            Healthy,
            "5 pods updated",
        ),
        (
            "generation not observed",
            cloneset(five.clone(), json!({"observedGeneration": 1})),
            Progressing,
            "generation 2",
        ),
        (
            "no status yet",
            json!({"apiVersion": "apps.kruise.io/v1alpha1", "kind": "CloneSet", "metadata": {"name": "x", "generation": 1}, "spec": five}),
            Progressing,
            "generation 1",
        ),
        // Argo CD reports Degraded here; a rollout in progress is Progressing.
        (
            "mid-rollout",
            cloneset(five.clone(), cs_status(2, 1, 1, 5)),
            Progressing,
            "2 of 5 pods updated",
        ),
        (
            "updated not ready",
            cloneset(five.clone(), cs_status(5, 3, 3, 5)),
            Progressing,
            "3 of 5 updated pods ready",
        ),
        (
            "ready not available",
            cloneset(five.clone(), cs_status(5, 5, 4, 5)),
            Progressing,
            "4 of 5 updated pods available",
        ),
        // Argo CD reports Suspended when updatedAvailableReplicas is absent (omitted when 0).
        (
            "updatedAvailable omitted at 0",
            cloneset(
                five.clone(),
                json!({"replicas": 5, "readyReplicas": 5, "availableReplicas": 5, "updatedReplicas": 5, "updatedReadyReplicas": 0, "expectedUpdatedReplicas": 5}),
            ),
            Progressing,
            "0 of 5 updated pods ready",
        ),
        (
            "old Kruise without updatedAvailable",
            cloneset(
                five.clone(),
                json!({"replicas": 5, "readyReplicas": 5, "availableReplicas": 5, "updatedReplicas": 5, "updatedReadyReplicas": 5}),
            ),
            Healthy,
            "",
        ),
        (
            "scaled to zero",
            cloneset(json!({"replicas": 0}), json!({})),
            Healthy,
            "",
        ),
        (
            "replicas default 1",
            cloneset(
                json!({}),
                json!({"replicas": 1, "readyReplicas": 1, "availableReplicas": 1, "updatedReplicas": 1, "updatedReadyReplicas": 1, "updatedAvailableReplicas": 1}),
            ),
            Healthy,
            "",
        ),
        (
            "paused mid-rollout",
            cloneset(
                json!({"replicas": 5, "updateStrategy": {"paused": true}}),
                cs_status(2, 2, 2, 5),
            ),
            Suspended,
            "paused",
        ),
        (
            "paused but complete",
            cloneset(
                json!({"replicas": 5, "updateStrategy": {"paused": true}}),
                cs_status(5, 5, 5, 5),
            ),
            Healthy,
            "",
        ),
        (
            "v1beta1 paused",
            obj(
                "apps.kruise.io/v1beta1",
                "CloneSet",
                json!({"replicas": 5, "updateStrategy": {"rollingUpdate": {"paused": true}}}),
                cs_status(1, 1, 1, 5),
            ),
            Suspended,
            "paused",
        ),
        (
            "partition reached",
            cloneset(
                json!({"replicas": 5, "updateStrategy": {"partition": 3}}),
                cs_status(2, 2, 2, 2),
            ),
            Suspended,
            "partition holds 3 back",
        ),
        (
            "partition in progress",
            cloneset(
                json!({"replicas": 5, "updateStrategy": {"partition": 3}}),
                cs_status(1, 1, 1, 2),
            ),
            Progressing,
            "1 of 2 pods updated (partition keeps 3",
        ),
        (
            "percent partition without expectedUpdatedReplicas",
            cloneset(
                json!({"replicas": 5, "updateStrategy": {"partition": "50%"}}),
                json!({"replicas": 5, "readyReplicas": 5, "availableReplicas": 5, "updatedReplicas": 2, "updatedReadyReplicas": 2, "updatedAvailableReplicas": 2}),
            ),
            Suspended,
            "holds 3 back",
        ),
        (
            "partition 0 is a full rollout",
            cloneset(
                json!({"replicas": 5, "updateStrategy": {"partition": 0}}),
                cs_status(5, 5, 5, 5),
            ),
            Healthy,
            "",
        ),
        (
            "deadline exceeded",
            cloneset(
                five.clone(),
                json!({"updatedReplicas": 1, "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "CloneSet x has timed out progressing."}]}),
            ),
            Degraded,
            "ProgressDeadlineExceeded: CloneSet x has timed out",
        ),
        (
            "failed update",
            cloneset(
                five.clone(),
                json!({"conditions": [{"type": "FailedUpdate", "status": "True", "message": "admission denied"}]}),
            ),
            Degraded,
            "admission denied",
        ),
        // The controller never clears FailedScale / FailedUpdate: once every pod is updated and
        // available, an old failure is history.
        (
            "done after an earlier FailedScale",
            cloneset(
                five.clone(),
                json!({"replicas": 5, "readyReplicas": 5, "availableReplicas": 5, "updatedReplicas": 5, "updatedReadyReplicas": 5, "updatedAvailableReplicas": 5, "expectedUpdatedReplicas": 5, "conditions": [{"type": "FailedScale", "status": "True", "message": "exceeded quota"}]}),
            ),
            Healthy,
            "5 pods updated",
        ),
        (
            "partition reached after an earlier FailedUpdate",
            cloneset(
                json!({"replicas": 5, "updateStrategy": {"partition": 3}}),
                json!({"replicas": 5, "readyReplicas": 5, "availableReplicas": 5, "updatedReplicas": 2, "updatedReadyReplicas": 2, "updatedAvailableReplicas": 2, "expectedUpdatedReplicas": 2, "conditions": [{"type": "FailedUpdate", "status": "True", "message": "admission denied"}]}),
            ),
            Suspended,
            "partition holds 3 back",
        ),
        (
            "scale-down in progress",
            cloneset(
                json!({"replicas": 3}),
                json!({"replicas": 5, "readyReplicas": 5, "availableReplicas": 5, "updatedReplicas": 5, "updatedReadyReplicas": 5, "updatedAvailableReplicas": 5, "expectedUpdatedReplicas": 3}),
            ),
            Progressing,
            "2 extra pods",
        ),
        (
            "old pods unavailable",
            cloneset(
                five.clone(),
                json!({"replicas": 5, "readyReplicas": 4, "availableReplicas": 4, "updatedReplicas": 5, "updatedReadyReplicas": 5, "updatedAvailableReplicas": 5, "expectedUpdatedReplicas": 5}),
            ),
            Progressing,
            "4 of 5 pods available",
        ),
        (
            "being deleted",
            json!({"apiVersion": "apps.kruise.io/v1alpha1", "kind": "CloneSet", "metadata": {"name": "x", "deletionTimestamp": "2026-01-01T00:00:00Z"}}),
            Progressing,
            "deleted",
        ),
    ]
}

/// Advanced StatefulSet (`apps.kruise.io` StatefulSet) rows.
pub(crate) fn statefulset_rows() -> Vec<Row> {
    let sts =
        |spec: Value, status: Value| obj("apps.kruise.io/v1beta1", "StatefulSet", spec, status);
    let st = |updated: i64, ready: i64| json!({"replicas": 3, "readyReplicas": 3, "availableReplicas": 3, "updatedReplicas": updated, "updatedReadyReplicas": ready, "updatedAvailableReplicas": ready});
    vec![
        ("done", sts(json!({"replicas": 3}), st(3, 3)), Healthy, ""),
        (
            "rolling",
            sts(json!({"replicas": 3}), st(1, 1)),
            Progressing,
            "1 of 3 pods updated",
        ),
        (
            "partition",
            sts(
                json!({"replicas": 3, "updateStrategy": {"rollingUpdate": {"partition": 1}}}),
                st(2, 2),
            ),
            Suspended,
            "partition",
        ),
        (
            "paused",
            sts(
                json!({"replicas": 3, "updateStrategy": {"rollingUpdate": {"paused": true}}}),
                st(1, 1),
            ),
            Suspended,
            "paused",
        ),
        (
            "on delete",
            sts(
                json!({"replicas": 3, "updateStrategy": {"type": "OnDelete"}}),
                st(0, 0),
            ),
            Healthy,
            "on delete",
        ),
        (
            "v1alpha1 without updatedReady fields",
            obj(
                "apps.kruise.io/v1alpha1",
                "StatefulSet",
                json!({"replicas": 3}),
                json!({"replicas": 3, "readyReplicas": 3, "updatedReplicas": 3}),
            ),
            Healthy,
            "",
        ),
        (
            "failed pod creation",
            sts(
                json!({"replicas": 3}),
                json!({"conditions": [{"type": "FailedCreatePod", "status": "True", "message": "quota"}]}),
            ),
            Degraded,
            "quota",
        ),
    ]
}
