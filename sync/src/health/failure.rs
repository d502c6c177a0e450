//! Why a job failed, from its pods: the words a commit's history shows next to a failed
//! BroadcastJob, whose own condition only says that a pod failed.

use serde_json::Value;

/// The label a BroadcastJob's pods carry with the job's name.
pub const BROADCASTJOB_NAME_LABEL: &str = graft_api::labels::BROADCASTJOB_NAME;

/// The first failed pod (by name) and why: `pod <name> on <node>: container <c> exited with
/// code <n> (<reason>): <message>`, or the pod's own reason (`DeadlineExceeded`, `Evicted`).
/// `None` when no pod failed.
pub fn failed_pod_reason(pods: &[Value]) -> Option<String> {
    let mut failed: Vec<&Value> = pods.iter().filter(|p| failed(p)).collect();
    failed.sort_by_key(|p| p.pointer("/metadata/name").and_then(Value::as_str));
    let pod = failed.first()?;
    let text = |p: &str| pod.pointer(p).and_then(Value::as_str);
    let name = text("/metadata/name").unwrap_or("?");
    let node = text("/spec/nodeName")
        .map(|n| format!(" on {n}"))
        .unwrap_or_default();
    let why = container_failure(pod)
        .or_else(|| {
            let reason = text("/status/reason")?;
            Some(match text("/status/message") {
                Some(m) => format!("{reason}: {m}"),
                None => reason.to_string(),
            })
        })
        .unwrap_or_else(|| "failed".to_string());
    Some(format!("pod {name}{node}: {why}"))
}

/// Phase `Failed`, or a container that terminated with a non-zero code (an `OnFailure` pod
/// restarting it is failing too, and the job may count it failed by its restart limit).
fn failed(pod: &Value) -> bool {
    pod.pointer("/status/phase").and_then(Value::as_str) == Some("Failed")
        || container_failure(pod).is_some()
}

/// The first container (init containers first) that terminated with a non-zero exit code, now
/// or in its last run.
fn container_failure(pod: &Value) -> Option<String> {
    let lists = ["initContainerStatuses", "containerStatuses"];
    lists
        .iter()
        .filter_map(|l| {
            pod.pointer(&format!("/status/{l}"))
                .and_then(Value::as_array)
        })
        .flatten()
        .find_map(|c| {
            let name = c.get("name").and_then(Value::as_str).unwrap_or("?");
            ["/state/terminated", "/lastState/terminated"]
                .iter()
                .filter_map(|p| c.pointer(p))
                .find(|t| {
                    t.get("exitCode")
                        .and_then(Value::as_i64)
                        .is_some_and(|c| c != 0)
                })
                .map(|t| {
                    let code = t
                        .get("exitCode")
                        .and_then(Value::as_i64)
                        .unwrap_or_default();
                    let mut s = format!("container {name} exited with code {code}");
                    if let Some(r) = t.get("reason").and_then(Value::as_str) {
                        s.push_str(&format!(" ({r})"));
                    }
                    if let Some(m) = t
                        .get("message")
                        .and_then(Value::as_str)
                        .filter(|m| !m.trim().is_empty())
                    {
                        let m: String = m.trim().chars().take(300).collect();
                        s.push_str(&format!(": {m}"));
                    }
                    s
                })
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, status: Value) -> Value {
        json!({"metadata": {"name": name}, "spec": {"nodeName": "node-a"}, "status": status})
    }

    #[test]
    fn names_the_first_failed_pod_and_its_container() {
        let pods = [
            pod("job-b", json!({"phase": "Succeeded"})),
            pod(
                "job-c",
                json!({"phase": "Failed", "containerStatuses": [{"name": "check",
                    "state": {"terminated": {"exitCode": 3, "reason": "Error",
                        "message": "disk full\n"}}}]}),
            ),
            pod(
                "job-d",
                json!({"phase": "Failed", "reason": "DeadlineExceeded",
                "message": "Pod was active on the node longer than the specified deadline"}),
            ),
        ];
        assert_eq!(
            failed_pod_reason(&pods).as_deref(),
            Some("pod job-c on node-a: container check exited with code 3 (Error): disk full")
        );
        assert_eq!(
            failed_pod_reason(&pods[2..]).as_deref(),
            Some(
                "pod job-d on node-a: DeadlineExceeded: Pod was active on the node longer than \
                 the specified deadline"
            )
        );
    }

    #[test]
    fn a_restarting_on_failure_pod_reports_its_last_exit() {
        let pods = [pod(
            "job-a",
            json!({"phase": "Running", "containerStatuses": [{"name": "c",
                "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}}}]}),
        )];
        assert_eq!(
            failed_pod_reason(&pods).as_deref(),
            Some("pod job-a on node-a: container c exited with code 1 (Error)")
        );
    }

    #[test]
    fn no_failed_pod_no_reason() {
        let pods = [
            pod(
                "job-a",
                json!({"phase": "Succeeded", "containerStatuses": [{"name": "c",
                "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]}),
            ),
            pod("job-b", json!({"phase": "Running"})),
        ];
        assert_eq!(failed_pod_reason(&pods), None);
    }
}
