//! Why a rollout waits: paused, partition, image pulls failing, crash loops, unschedulable
//! pods, maxUnavailable reached, or a blocking condition the controller set. Pure.

use k8s_openapi::api::core::v1::Pod;

use crate::pods;
use crate::workload::WorkloadInfo;

/// Conditions whose True status (or, for `Progressing`, False) explains a stuck rollout.
const BLOCKING_TRUE: [&str; 2] = ["RolloutBlocked", "ReplicaFailure"];

/// Every reason the rollout of `w` waits, given its pods; empty when it is done or simply
/// progressing.
pub fn reasons(w: &WorkloadInfo, pods: &[&Pod]) -> Vec<String> {
    if w.is_done() {
        return Vec::new();
    }
    let mut out = Vec::new();
    if w.paused {
        out.push("paused: the update strategy says paused".to_string());
    }
    if let Some(p) = w.partition
        && w.updated >= w.replicas - p
    {
        out.push(format!(
            "partition {p}: {p} pod(s) stay at the old revision until the partition is lowered"
        ));
    }
    for pod in pods {
        let name = pod.metadata.name.as_deref().unwrap_or_default();
        if let Some(why) = pods::waiting_reason(pod) {
            let what = if why.contains("ImagePull")
                || why.starts_with("ErrImage")
                || why.starts_with("InvalidImageName")
            {
                "image pull failing on"
            } else if why.starts_with("CrashLoopBackOff") {
                "crash-looping:"
            } else {
                "waiting:"
            };
            out.push(format!("{what} pod {name}: {why}"));
        }
        let unschedulable = pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|cs| cs.iter().find(|c| c.type_ == "PodScheduled"))
            .filter(|c| c.status == "False");
        if let Some(c) = unschedulable {
            out.push(format!(
                "pod {name} cannot be scheduled: {}",
                c.message.clone().unwrap_or_default()
            ));
        }
    }
    let unavailable = (w.replicas - w.available).max(0);
    // A job has no maxUnavailable: its pods run to completion.
    if !w.job
        && w.updated < w.replicas - w.partition.unwrap_or(0)
        && unavailable >= w.max_unavailable
    {
        let names: Vec<&str> = pods
            .iter()
            .filter(|p| !pods::is_ready(p))
            .filter_map(|p| p.metadata.name.as_deref())
            .take(5)
            .collect();
        let list = if names.is_empty() {
            String::new()
        } else {
            format!(" ({})", names.join(", "))
        };
        out.push(format!(
            "maxUnavailable {} reached: {unavailable} pod(s) unavailable{list}",
            w.max_unavailable
        ));
    }
    for c in &w.conditions {
        let blocking = (BLOCKING_TRUE.contains(&c.type_.as_str()) && c.status == "True")
            || (c.type_ == "Progressing" && c.status == "False");
        if blocking {
            out.push(
                format!("{}: {} {}", c.type_, c.reason, c.message)
                    .trim()
                    .to_string(),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::ConditionInfo;
    use serde_json::json;

    fn w() -> WorkloadInfo {
        WorkloadInfo {
            kind: "CloneSet".into(),
            name: "web".into(),
            replicas: 4,
            updated: 1,
            ready: 3,
            available: 3,
            max_unavailable: 1,
            ..Default::default()
        }
    }

    fn pod(name: &str, waiting: Option<(&str, &str)>, ready: bool) -> Pod {
        let state = match waiting {
            Some((r, m)) => json!({"waiting": {"reason": r, "message": m}}),
            None => json!({"running": {}}),
        };
        serde_json::from_value(json!({
            "metadata": {"name": name},
            "status": {"conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}],
                       "containerStatuses": [{"name": "app", "image": "x", "imageID": "", "ready": ready,
                                              "restartCount": 0, "state": state}]}
        }))
        .expect("pod")
    }

    #[test]
    fn a_done_workload_waits_for_nothing() {
        let mut done = w();
        done.updated = 4;
        done.ready = 4;
        done.available = 4;
        assert!(reasons(&done, &[]).is_empty());
    }

    #[test]
    fn names_the_pod_whose_image_pull_fails_and_max_unavailable() {
        let bad = pod("web-x", Some(("ImagePullBackOff", "not found")), false);
        let ok = pod("web-y", None, true);
        let r = reasons(&w(), &[&bad, &ok]);
        assert_eq!(
            r,
            vec![
                "image pull failing on pod web-x: ImagePullBackOff: not found".to_string(),
                "maxUnavailable 1 reached: 1 pod(s) unavailable (web-x)".to_string(),
            ]
        );
    }

    #[test]
    fn paused_partition_and_blocking_conditions() {
        let mut p = w();
        p.paused = true;
        p.partition = Some(3);
        p.available = 4;
        p.conditions = vec![ConditionInfo {
            type_: "RolloutBlocked".into(),
            status: "True".into(),
            reason: "PodsNotReady".into(),
            message: "web-a not ready".into(),
        }];
        let r = reasons(&p, &[]);
        assert_eq!(r.len(), 3, "{r:?}");
        assert!(r[0].starts_with("paused"));
        assert!(r[1].starts_with("partition 3"));
        assert_eq!(r[2], "RolloutBlocked: PodsNotReady web-a not ready");
    }
}
