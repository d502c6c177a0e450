//! Health rules of the Kubernetes kinds (the semantics of Argo CD's built-in checks).

use serde_json::Value;

use super::{Health, cond_message, condition, condition_true, flag, int, not_observed, text};

/// Deployment: paused, deadline exceeded, then updated, old replicas gone, updated available.
pub(crate) fn deployment(obj: &Value) -> Health {
    if flag(obj, "/spec/paused") {
        return Health::suspended("the Deployment is paused");
    }
    if let Some(h) = not_observed(obj) {
        return h;
    }
    if let Some(c) = condition(obj, "Progressing")
        && c.get("reason").and_then(Value::as_str) == Some("ProgressDeadlineExceeded")
    {
        return Health::degraded(cond_message(c));
    }
    let replicas = int(obj, "/spec/replicas").unwrap_or(1);
    let updated = int(obj, "/status/updatedReplicas").unwrap_or(0);
    let total = int(obj, "/status/replicas").unwrap_or(0);
    let available = int(obj, "/status/availableReplicas").unwrap_or(0);
    if updated < replicas {
        return Health::progressing(format!("{updated} of {replicas} replicas updated"));
    }
    if total > updated {
        return Health::progressing(format!(
            "{} old replicas pending termination",
            total - updated
        ));
    }
    if available < updated {
        return Health::progressing(format!(
            "{available} of {updated} updated replicas available"
        ));
    }
    Health::healthy(format!(
        "{available} of {replicas} replicas updated and available"
    ))
}

/// StatefulSet (apps/v1): ready replicas, partitioned roll-out, revisions.
pub(crate) fn statefulset(obj: &Value) -> Health {
    if let Some(h) = not_observed(obj) {
        return h;
    }
    let replicas = int(obj, "/spec/replicas").unwrap_or(1);
    let ready = int(obj, "/status/readyReplicas").unwrap_or(0);
    if ready < replicas {
        return Health::progressing(format!("{ready} of {replicas} pods ready"));
    }
    if text(obj, "/spec/updateStrategy/type") == Some("OnDelete") {
        return Health::healthy("the StatefulSet updates pods on delete");
    }
    let updated = int(obj, "/status/updatedReplicas").unwrap_or(0);
    let partition = int(obj, "/spec/updateStrategy/rollingUpdate/partition").unwrap_or(0);
    if partition > 0 {
        let expected = (replicas - partition).max(0);
        if updated < expected {
            return Health::progressing(format!(
                "partitioned roll-out: {updated} of {expected} pods updated"
            ));
        }
        return Health::healthy(format!(
            "partitioned roll-out complete: {updated} of {replicas} pods updated"
        ));
    }
    let (current, update) = (
        text(obj, "/status/currentRevision"),
        text(obj, "/status/updateRevision"),
    );
    if update.is_some() && current != update {
        return Health::progressing(format!(
            "{updated} of {replicas} pods at the update revision"
        ));
    }
    Health::healthy(format!("{ready} of {replicas} pods ready and updated"))
}

/// DaemonSet: every scheduled pod updated and available.
pub(crate) fn daemonset(obj: &Value) -> Health {
    if let Some(h) = not_observed(obj) {
        return h;
    }
    if text(obj, "/spec/updateStrategy/type") == Some("OnDelete") {
        return Health::healthy("the DaemonSet updates pods on delete");
    }
    let desired = int(obj, "/status/desiredNumberScheduled").unwrap_or(0);
    let updated = int(obj, "/status/updatedNumberScheduled").unwrap_or(0);
    let available = int(obj, "/status/numberAvailable").unwrap_or(0);
    if updated < desired {
        return Health::progressing(format!("{updated} of {desired} pods updated"));
    }
    if available < desired {
        return Health::progressing(format!("{available} of {desired} pods available"));
    }
    Health::healthy(format!(
        "{available} of {desired} pods updated and available"
    ))
}

/// Job: Failed or Complete conditions, suspended, else running.
pub(crate) fn job(obj: &Value) -> Health {
    if let Some(c) = condition(obj, "Failed")
        && c.get("status").and_then(Value::as_str) == Some("True")
    {
        return Health::degraded(cond_message(c));
    }
    if condition_true(obj, "Complete") || condition_true(obj, "SuccessCriteriaMet") {
        return Health::healthy("the Job completed");
    }
    if flag(obj, "/spec/suspend") {
        return Health::suspended("the Job is suspended");
    }
    let active = int(obj, "/status/active").unwrap_or(0);
    Health::progressing(format!("the Job is running ({active} active pods)"))
}

/// Container waiting reasons that will not fix themselves.
const BAD_WAITING: &[&str] = &[
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
];

/// Pod: phase, stuck containers, readiness.
pub(crate) fn pod(obj: &Value) -> Health {
    let statuses = ["/status/initContainerStatuses", "/status/containerStatuses"]
        .iter()
        .filter_map(|p| obj.pointer(p).and_then(Value::as_array))
        .flatten();
    for s in statuses {
        if let Some(reason) = s.pointer("/state/waiting/reason").and_then(Value::as_str)
            && BAD_WAITING.contains(&reason)
        {
            let name = s.get("name").and_then(Value::as_str).unwrap_or_default();
            let msg = s
                .pointer("/state/waiting/message")
                .and_then(Value::as_str)
                .unwrap_or_default();
            return Health::degraded(
                format!("container {name}: {reason} {msg}")
                    .trim_end()
                    .to_string(),
            );
        }
    }
    let message = || {
        text(obj, "/status/message")
            .or_else(|| text(obj, "/status/reason"))
            .unwrap_or_default()
            .to_string()
    };
    match text(obj, "/status/phase") {
        Some("Succeeded") => Health::healthy(message()),
        Some("Failed") => Health::degraded(message()),
        Some("Running") => {
            let always = text(obj, "/spec/restartPolicy").is_none_or(|p| p == "Always");
            if always && condition_true(obj, "Ready") {
                Health::healthy("the pod is running and ready")
            } else if always {
                Health::progressing("the pod is running, not ready")
            } else {
                Health::progressing("the pod is running")
            }
        }
        Some("Pending") => Health::progressing(message()),
        _ => Health::new(super::HealthStatus::Unknown, message()),
    }
}

/// PersistentVolumeClaim: bound, pending or lost.
pub(crate) fn pvc(obj: &Value) -> Health {
    match text(obj, "/status/phase") {
        Some("Bound") => Health::healthy("the claim is bound"),
        Some("Pending") => Health::progressing("the claim is pending"),
        Some("Lost") => Health::degraded("the claim lost its volume"),
        other => Health::new(
            super::HealthStatus::Unknown,
            format!("unknown phase {}", other.unwrap_or("(none)")),
        ),
    }
}

/// Service: a LoadBalancer needs an ingress address.
pub(crate) fn service(obj: &Value) -> Health {
    if text(obj, "/spec/type") != Some("LoadBalancer") {
        return Health::healthy("");
    }
    let has_ingress = obj
        .pointer("/status/loadBalancer/ingress")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty());
    if has_ingress {
        Health::healthy("the load balancer has an address")
    } else {
        Health::progressing("waiting for the load balancer address")
    }
}
