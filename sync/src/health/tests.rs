//! Table tests: one table per kind, each row a live object and the expected state.

use serde_json::{Value, json};

use super::rows::{self, cloneset, cs_status, obj};
use super::*;
use HealthStatus::*;

fn check(rows: Vec<(&str, Value, HealthStatus, &str)>) {
    for (name, o, want, msg_part) in rows {
        let h = health(&o);
        assert_eq!(h.status, want, "{name}: {h:?}");
        assert!(
            h.message.contains(msg_part),
            "{name}: message {:?} lacks {msg_part:?}",
            h.message
        );
    }
}

#[test]
fn cloneset_table() {
    check(rows::cloneset_rows());
}

#[test]
fn advanced_statefulset_and_daemonset_table() {
    check(rows::statefulset_rows());
    let ds = |spec: Value, status: Value| obj("apps.kruise.io/v1alpha1", "DaemonSet", spec, status);
    let dst = |updated: i64, avail: i64| json!({"desiredNumberScheduled": 4, "updatedNumberScheduled": updated, "numberAvailable": avail});
    check(vec![
        ("done", ds(json!({}), dst(4, 4)), Healthy, ""),
        ("rolling", ds(json!({}), dst(2, 4)), Progressing, "2 of 4"),
        (
            "paused",
            ds(
                json!({"updateStrategy": {"rollingUpdate": {"paused": true}}}),
                dst(2, 4),
            ),
            Suspended,
            "paused",
        ),
        (
            "partition",
            ds(
                json!({"updateStrategy": {"rollingUpdate": {"partition": 1}}}),
                dst(3, 4),
            ),
            Suspended,
            "partition",
        ),
    ]);
}

#[test]
fn sidecarset_table() {
    let ss =
        |spec: Value, status: Value| obj("apps.kruise.io/v1alpha1", "SidecarSet", spec, status);
    let st = |matched: i64, updated: i64, ready: i64| json!({"matchedPods": matched, "updatedPods": updated, "readyPods": ready, "updatedReadyPods": updated.min(ready)});
    check(vec![
        ("no pods", ss(json!({}), json!({})), Healthy, "no pods"),
        ("done", ss(json!({}), st(4, 4, 4)), Healthy, "4 matched"),
        (
            "updating",
            ss(json!({}), st(4, 1, 4)),
            Progressing,
            "1 of 4 matched pods updated",
        ),
        (
            "not ready",
            ss(json!({}), st(4, 4, 3)),
            Progressing,
            "3 of 4 updated pods ready",
        ),
        (
            "paused",
            ss(json!({"updateStrategy": {"paused": true}}), st(4, 1, 4)),
            Suspended,
            "paused",
        ),
        (
            "partition",
            ss(json!({"updateStrategy": {"partition": "50%"}}), st(4, 2, 4)),
            Suspended,
            "partition holds 2",
        ),
        (
            "not update",
            ss(
                json!({"updateStrategy": {"type": "NotUpdate"}}),
                st(4, 0, 4),
            ),
            Healthy,
            "updates are off",
        ),
        (
            "not observed",
            ss(json!({}), json!({"observedGeneration": 1})),
            Progressing,
            "generation",
        ),
    ]);
}

#[test]
fn kruise_jobs_table() {
    let bj =
        |spec: Value, status: Value| obj("apps.kruise.io/v1alpha1", "BroadcastJob", spec, status);
    check(vec![
        (
            "running",
            bj(
                json!({}),
                json!({"desired": 3, "active": 2, "succeeded": 1, "phase": "running"}),
            ),
            Progressing,
            "1 of 3",
        ),
        (
            "completed",
            bj(
                json!({}),
                json!({"desired": 3, "succeeded": 3, "phase": "completed", "conditions": [{"type": "Complete", "status": "True"}]}),
            ),
            Healthy,
            "3 of 3",
        ),
        (
            "failed",
            bj(
                json!({}),
                json!({"desired": 3, "failed": 1, "phase": "failed", "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]}),
            ),
            Degraded,
            "BackoffLimitExceeded",
        ),
        (
            "paused",
            bj(
                json!({"paused": true}),
                json!({"desired": 3, "phase": "paused"}),
            ),
            Suspended,
            "paused",
        ),
        (
            "never, everywhere",
            bj(
                json!({"completionPolicy": {"type": "Never"}}),
                json!({"desired": 3, "active": 3, "phase": "running"}),
            ),
            Healthy,
            "all 3 nodes",
        ),
    ]);
    let ipj =
        |spec: Value, status: Value| obj("apps.kruise.io/v1alpha1", "ImagePullJob", spec, status);
    check(vec![
        (
            "pulling",
            ipj(
                json!({}),
                json!({"desired": 3, "active": 1, "succeeded": 1}),
            ),
            Progressing,
            "1 of 3",
        ),
        (
            "no status",
            ipj(json!({}), json!({})),
            Progressing,
            "0 of 0",
        ),
        (
            "done",
            ipj(
                json!({}),
                json!({"desired": 3, "succeeded": 3, "completionTime": "2026-01-01T00:00:00Z"}),
            ),
            Healthy,
            "3 of 3",
        ),
        (
            "never policy, all pulled",
            ipj(
                json!({"completionPolicy": {"type": "Never"}}),
                json!({"desired": 2, "succeeded": 2}),
            ),
            Healthy,
            "",
        ),
        (
            "failed nodes",
            ipj(
                json!({}),
                json!({"desired": 3, "succeeded": 2, "failed": 1, "failedNodes": ["node-b"], "completionTime": "2026-01-01T00:00:00Z"}),
            ),
            Degraded,
            "node-b",
        ),
        (
            "deadline",
            ipj(
                json!({}),
                json!({"desired": 3, "message": "job exceeds activeDeadlineSeconds"}),
            ),
            Degraded,
            "activeDeadlineSeconds",
        ),
        (
            "paused",
            ipj(json!({"parallelism": 0}), json!({"desired": 3})),
            Suspended,
            "paused",
        ),
    ]);
}

#[test]
fn deployment_statefulset_daemonset_table() {
    let dep = |spec: Value, status: Value| obj("apps/v1", "Deployment", spec, status);
    check(vec![
        (
            "done",
            dep(
                json!({"replicas": 2}),
                json!({"replicas": 2, "updatedReplicas": 2, "availableReplicas": 2}),
            ),
            Healthy,
            "",
        ),
        (
            "rolling",
            dep(
                json!({"replicas": 2}),
                json!({"replicas": 3, "updatedReplicas": 1, "availableReplicas": 2}),
            ),
            Progressing,
            "1 of 2",
        ),
        (
            "old pending",
            dep(
                json!({"replicas": 2}),
                json!({"replicas": 3, "updatedReplicas": 2, "availableReplicas": 2}),
            ),
            Progressing,
            "old replicas",
        ),
        (
            "unavailable",
            dep(
                json!({"replicas": 2}),
                json!({"replicas": 2, "updatedReplicas": 2, "availableReplicas": 1}),
            ),
            Progressing,
            "1 of 2 updated",
        ),
        (
            "paused",
            dep(json!({"paused": true}), json!({})),
            Suspended,
            "paused",
        ),
        (
            "deadline",
            dep(
                json!({}),
                json!({"conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]}),
            ),
            Degraded,
            "ProgressDeadlineExceeded",
        ),
        (
            "stale",
            dep(json!({}), json!({"observedGeneration": 1})),
            Progressing,
            "generation",
        ),
    ]);
    let sts = |spec: Value, status: Value| obj("apps/v1", "StatefulSet", spec, status);
    check(vec![
        (
            "done",
            sts(
                json!({"replicas": 2}),
                json!({"readyReplicas": 2, "updatedReplicas": 2, "currentRevision": "a", "updateRevision": "a"}),
            ),
            Healthy,
            "",
        ),
        (
            "not ready",
            sts(json!({"replicas": 2}), json!({"readyReplicas": 1})),
            Progressing,
            "1 of 2 pods ready",
        ),
        (
            "revision",
            sts(
                json!({"replicas": 2}),
                json!({"readyReplicas": 2, "updatedReplicas": 1, "currentRevision": "a", "updateRevision": "b"}),
            ),
            Progressing,
            "update revision",
        ),
        (
            "partition done",
            sts(
                json!({"replicas": 3, "updateStrategy": {"rollingUpdate": {"partition": 2}}}),
                json!({"readyReplicas": 3, "updatedReplicas": 1, "currentRevision": "a", "updateRevision": "b"}),
            ),
            Healthy,
            "partitioned",
        ),
        (
            "on delete",
            sts(
                json!({"replicas": 1, "updateStrategy": {"type": "OnDelete"}}),
                json!({"readyReplicas": 1}),
            ),
            Healthy,
            "",
        ),
    ]);
    let ds = |status: Value| obj("apps/v1", "DaemonSet", json!({}), status);
    check(vec![
        (
            "done",
            ds(
                json!({"desiredNumberScheduled": 2, "updatedNumberScheduled": 2, "numberAvailable": 2}),
            ),
            Healthy,
            "",
        ),
        (
            "rolling",
            ds(
                json!({"desiredNumberScheduled": 2, "updatedNumberScheduled": 1, "numberAvailable": 2}),
            ),
            Progressing,
            "1 of 2 pods updated",
        ),
        (
            "unavailable",
            ds(
                json!({"desiredNumberScheduled": 2, "updatedNumberScheduled": 2, "numberAvailable": 1}),
            ),
            Progressing,
            "1 of 2 pods available",
        ),
    ]);
}

#[test]
fn job_pod_pvc_service_table() {
    let job = |spec: Value, status: Value| obj("batch/v1", "Job", spec, status);
    check(vec![
        (
            "complete",
            job(
                json!({}),
                json!({"conditions": [{"type": "Complete", "status": "True"}]}),
            ),
            Healthy,
            "completed",
        ),
        (
            "failed",
            job(
                json!({}),
                json!({"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}]}),
            ),
            Degraded,
            "BackoffLimitExceeded",
        ),
        (
            "running",
            job(json!({}), json!({"active": 1})),
            Progressing,
            "1 active",
        ),
        (
            "suspended",
            job(json!({"suspend": true}), json!({})),
            Suspended,
            "suspended",
        ),
    ]);
    let pod = |spec: Value, status: Value| obj("v1", "Pod", spec, status);
    check(vec![
        (
            "ready",
            pod(
                json!({}),
                json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}),
            ),
            Healthy,
            "",
        ),
        (
            "not ready",
            pod(
                json!({}),
                json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}]}),
            ),
            Progressing,
            "not ready",
        ),
        (
            "pending",
            pod(json!({}), json!({"phase": "Pending"})),
            Progressing,
            "",
        ),
        (
            "crash loop",
            pod(
                json!({}),
                json!({"phase": "Running", "containerStatuses": [{"name": "app", "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m"}}}]}),
            ),
            Degraded,
            "container app: CrashLoopBackOff back-off 5m",
        ),
        (
            "bad image",
            pod(
                json!({}),
                json!({"phase": "Pending", "containerStatuses": [{"name": "app", "state": {"waiting": {"reason": "ImagePullBackOff"}}}]}),
            ),
            Degraded,
            "ImagePullBackOff",
        ),
        (
            "succeeded",
            pod(
                json!({"restartPolicy": "Never"}),
                json!({"phase": "Succeeded"}),
            ),
            Healthy,
            "",
        ),
        (
            "failed",
            pod(
                json!({"restartPolicy": "Never"}),
                json!({"phase": "Failed", "message": "OOMKilled"}),
            ),
            Degraded,
            "OOMKilled",
        ),
        (
            "running job pod",
            pod(
                json!({"restartPolicy": "Never"}),
                json!({"phase": "Running"}),
            ),
            Progressing,
            "running",
        ),
        ("no phase", pod(json!({}), json!({})), Unknown, ""),
    ]);
    let pvc = |status: Value| obj("v1", "PersistentVolumeClaim", json!({}), status);
    check(vec![
        ("bound", pvc(json!({"phase": "Bound"})), Healthy, ""),
        ("pending", pvc(json!({"phase": "Pending"})), Progressing, ""),
        ("lost", pvc(json!({"phase": "Lost"})), Degraded, ""),
        ("none", pvc(json!({})), Unknown, ""),
    ]);
    let svc = |spec: Value, status: Value| obj("v1", "Service", spec, status);
    check(vec![
        (
            "cluster ip",
            svc(json!({"type": "ClusterIP"}), json!({})),
            Healthy,
            "",
        ),
        (
            "lb waiting",
            svc(json!({"type": "LoadBalancer"}), json!({"loadBalancer": {}})),
            Progressing,
            "load balancer",
        ),
        (
            "lb ready",
            svc(
                json!({"type": "LoadBalancer"}),
                json!({"loadBalancer": {"ingress": [{"ip": "10.0.0.1"}]}}),
            ),
            Healthy,
            "",
        ),
    ]);
}

#[test]
fn other_kinds_missing_and_aggregation() {
    check(vec![
        (
            "configmap",
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}),
            Healthy,
            "",
        ),
        (
            "ready condition",
            obj(
                "example.com/v1",
                "Widget",
                json!({}),
                json!({"conditions": [{"type": "Ready", "status": "False", "reason": "Broken"}]}),
            ),
            Degraded,
            "Broken",
        ),
    ]);
    assert_eq!(health_of(None).status, Missing);
    let all = [
        Health::healthy("a"),
        Health::progressing("b"),
        Health::suspended("c"),
        Health::progressing("d"),
    ];
    assert_eq!(Health::worst(&all), Health::progressing("b"));
    assert_eq!(Health::worst([]).status, Healthy);
    assert_eq!(
        Health::worst(&[Health::degraded("x"), Health::new(Missing, "")]).status,
        Degraded
    );
}

#[test]
fn workload_progress_counters() {
    let cs = cloneset(json!({"replicas": 5}), cs_status(2, 1, 1, 5));
    let p = workload_progress(&cs).unwrap();
    assert_eq!(
        (p.kind.as_str(), p.replicas, p.updated, p.ready, p.available),
        ("CloneSet", 5, 2, 5, 5)
    );
    assert_eq!(p.namespace.as_deref(), Some("demo"));
    let ss = obj(
        "apps.kruise.io/v1alpha1",
        "SidecarSet",
        json!({}),
        json!({"matchedPods": 4, "updatedPods": 2, "readyPods": 4, "updatedReadyPods": 2}),
    );
    let p = workload_progress(&ss).unwrap();
    assert_eq!((p.replicas, p.updated, p.ready, p.available), (4, 2, 4, 2));
    assert!(
        workload_progress(
            &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}})
        )
        .is_none()
    );
}

#[test]
fn int_or_percent_rounds_up_and_clamps() {
    for (v, total, want) in [
        (json!(2), 5, 2),
        (json!("2"), 5, 2),
        (json!("50%"), 5, 3),
        (json!("100%"), 5, 5),
        (json!(9), 5, 5),
        (json!(-1), 5, 0),
        (json!("junk"), 5, 0),
    ] {
        assert_eq!(int_or_percent(Some(&v), total), want, "{v}");
    }
    assert_eq!(int_or_percent(None, 5), 0);
}
