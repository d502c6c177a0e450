//! Health rules of the OpenKruise kinds.

use serde_json::Value;

use super::{
    Health, cond_message, condition, condition_true, flag, int, int_or_percent, not_observed, text,
};

/// Degraded when a `Failed*` condition (FailedScale, FailedUpdate, FailedCreatePod, ...) is True.
fn failed_condition(obj: &Value) -> Option<Health> {
    obj.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| {
            c.get("type")
                .and_then(Value::as_str)
                .is_some_and(|t| t.starts_with("Failed"))
                && c.get("status").and_then(Value::as_str) == Some("True")
        })
        .map(|c| Health::degraded(cond_message(c)))
}

/// Degraded when the `Progressing` condition is False with `ProgressDeadlineExceeded`.
fn deadline_exceeded(obj: &Value) -> Option<Health> {
    let c = condition(obj, "Progressing")?;
    (c.get("status").and_then(Value::as_str) == Some("False")
        && c.get("reason").and_then(Value::as_str) == Some("ProgressDeadlineExceeded"))
    .then(|| Health::degraded(cond_message(c)))
}

/// Counters of a replicated workload's roll-out.
struct Rollout {
    replicas: i64,
    expected: i64,
    partition: i64,
    updated: i64,
    /// Updated and ready (falls back to ready when the field is absent).
    updated_ready: i64,
    /// Updated and available (falls back to updated-ready, then available).
    updated_available: i64,
    total: i64,
    available: i64,
    paused: bool,
}

impl Rollout {
    /// What the roll-out still waits for; `None` once it reached its target (all pods, or the
    /// partition).
    fn waiting(&self) -> Option<String> {
        let Rollout {
            replicas,
            expected,
            partition,
            updated,
            updated_ready,
            updated_available,
            total,
            available,
            ..
        } = *self;
        let held = if partition > 0 {
            format!(" (partition keeps {partition} at the old revision)")
        } else {
            String::new()
        };
        if updated < expected {
            Some(format!("{updated} of {expected} pods updated{held}"))
        } else if updated_ready < expected {
            Some(format!(
                "{updated_ready} of {expected} updated pods ready{held}"
            ))
        } else if updated_available < expected {
            Some(format!(
                "{updated_available} of {expected} updated pods available{held}"
            ))
        } else if total > replicas {
            Some(format!("{} extra pods pending deletion", total - replicas))
        } else if available < replicas {
            Some(format!("{available} of {replicas} pods available"))
        } else {
            None
        }
    }

    /// The verdict shared by CloneSet and Advanced StatefulSet, once the generation is observed.
    fn health(&self, kind: &str) -> Health {
        let Rollout {
            replicas,
            expected,
            partition,
            updated,
            paused,
            ..
        } = *self;
        match self.waiting() {
            Some(m) if paused => Health::suspended(format!("the {kind} update is paused: {m}")),
            Some(m) => Health::progressing(m),
            None if expected < replicas => Health::suspended(format!(
                "{updated} of {replicas} pods updated; the partition holds {partition} back \
                 (lower the partition to continue)"
            )),
            None => Health::healthy(format!("{replicas} pods updated and available")),
        }
    }
}

/// CloneSet (`apps.kruise.io`): generation observed, the deadline condition, then the roll-out
/// counters against `expectedUpdatedReplicas` (replicas − partition), and failure conditions
/// while the roll-out is short of it.
pub(crate) fn cloneset(obj: &Value) -> Health {
    if let Some(h) = not_observed(obj) {
        return h;
    }
    if let Some(h) = deadline_exceeded(obj) {
        return h;
    }
    let replicas = int(obj, "/spec/replicas").unwrap_or(1);
    // v1alpha1 keeps the strategy in updateStrategy; v1beta1 in updateStrategy.rollingUpdate.
    let strategy = |field: &str| {
        obj.pointer(&format!("/spec/updateStrategy/{field}"))
            .or_else(|| obj.pointer(&format!("/spec/updateStrategy/rollingUpdate/{field}")))
    };
    let partition = int_or_percent(strategy("partition"), replicas);
    let paused = strategy("paused").and_then(Value::as_bool).unwrap_or(false);
    let expected = int(obj, "/status/expectedUpdatedReplicas")
        .unwrap_or(replicas - partition)
        .clamp(0, replicas.max(0));
    let rollout = rollout(obj, replicas, expected, partition, paused);
    // The CloneSet controller sets FailedScale / FailedUpdate True on an error and never clears
    // them (each status starts from the last one's conditions): they tell of a failure only while
    // the roll-out is still short of its target, not once every pod made it.
    if rollout.waiting().is_some()
        && let Some(h) = failed_condition(obj)
    {
        return h;
    }
    rollout.health("CloneSet")
}

/// Reads the status counters; absent counters are zero (Kubernetes omits zero values), and
/// counters older Kruise versions lack fall back to the nearest one they have.
fn rollout(obj: &Value, replicas: i64, expected: i64, partition: i64, paused: bool) -> Rollout {
    let status = obj.get("status");
    let has = |f: &str| status.and_then(|s| s.get(f)).is_some();
    let get = |f: &str| int(obj, &format!("/status/{f}")).unwrap_or(0);
    let updated = get("updatedReplicas");
    let ready = get("readyReplicas");
    let available = if has("availableReplicas") {
        get("availableReplicas")
    } else {
        ready
    };
    // When updatedReadyReplicas is absent the controller cannot tell ready from updated-ready:
    // bound by both.
    let updated_ready = if has("updatedReadyReplicas") || has("updatedAvailableReplicas") {
        get("updatedReadyReplicas")
    } else {
        updated.min(ready)
    };
    let updated_available = if has("updatedAvailableReplicas") {
        get("updatedAvailableReplicas")
    } else if has("updatedReadyReplicas") {
        // Zero counters are omitted: absent next to a present updatedReadyReplicas is 0 only
        // when updatedReadyReplicas is 0 as well; otherwise trust the nearer counter.
        updated_ready.min(available)
    } else {
        updated.min(available)
    };
    Rollout {
        replicas,
        expected,
        partition,
        updated,
        updated_ready,
        updated_available,
        total: get("replicas"),
        available,
        paused,
    }
}

/// Advanced StatefulSet (`apps.kruise.io` v1beta1/v1alpha1 StatefulSet).
pub(crate) fn advanced_statefulset(obj: &Value) -> Health {
    if let Some(h) = not_observed(obj) {
        return h;
    }
    if let Some(h) = failed_condition(obj) {
        return h;
    }
    let replicas = int(obj, "/spec/replicas").unwrap_or(1);
    if text(obj, "/spec/updateStrategy/type") == Some("OnDelete") {
        let ready = int(obj, "/status/readyReplicas").unwrap_or(0);
        return if ready < replicas {
            Health::progressing(format!("{ready} of {replicas} pods ready"))
        } else {
            Health::healthy("the StatefulSet updates pods on delete")
        };
    }
    let partition = int_or_percent(
        obj.pointer("/spec/updateStrategy/rollingUpdate/partition"),
        replicas,
    );
    let paused = flag(obj, "/spec/updateStrategy/rollingUpdate/paused");
    let expected = (replicas - partition).max(0);
    rollout(obj, replicas, expected, partition, paused).health("StatefulSet")
}

/// Advanced DaemonSet (`apps.kruise.io` DaemonSet): like a DaemonSet, with partition and pause.
pub(crate) fn advanced_daemonset(obj: &Value) -> Health {
    if let Some(h) = not_observed(obj) {
        return h;
    }
    let desired = int(obj, "/status/desiredNumberScheduled").unwrap_or(0);
    let updated = int(obj, "/status/updatedNumberScheduled").unwrap_or(0);
    let available = int(obj, "/status/numberAvailable").unwrap_or(0);
    let partition = int_or_percent(
        obj.pointer("/spec/updateStrategy/rollingUpdate/partition"),
        desired,
    );
    let paused = flag(obj, "/spec/updateStrategy/rollingUpdate/paused");
    let expected = (desired - partition).max(0);
    if updated < expected {
        let m = format!("{updated} of {expected} pods updated");
        return if paused {
            Health::suspended(format!("the DaemonSet update is paused: {m}"))
        } else {
            Health::progressing(m)
        };
    }
    if available < desired {
        return Health::progressing(format!("{available} of {desired} pods available"));
    }
    if expected < desired {
        return Health::suspended(format!(
            "{updated} of {desired} pods updated; the partition holds {partition} back"
        ));
    }
    Health::healthy(format!(
        "{available} of {desired} pods updated and available"
    ))
}

/// SidecarSet: matched pods updated and ready, unless paused, partitioned or `NotUpdate`.
pub(crate) fn sidecarset(obj: &Value) -> Health {
    if let Some(h) = not_observed(obj) {
        return h;
    }
    let get = |f: &str| int(obj, &format!("/status/{f}")).unwrap_or(0);
    let matched = get("matchedPods");
    let updated = get("updatedPods");
    let ready = get("readyPods");
    let updated_ready = if obj.pointer("/status/updatedReadyPods").is_some() {
        get("updatedReadyPods")
    } else {
        updated.min(ready)
    };
    if matched == 0 {
        return Health::healthy("no pods match the SidecarSet");
    }
    if text(obj, "/spec/updateStrategy/type") == Some("NotUpdate") {
        return if ready < matched {
            Health::progressing(format!("{ready} of {matched} matched pods ready"))
        } else {
            Health::healthy(format!("{matched} matched pods ready (updates are off)"))
        };
    }
    let partition = int_or_percent(obj.pointer("/spec/updateStrategy/partition"), matched);
    let paused = flag(obj, "/spec/updateStrategy/paused");
    let expected = (matched - partition).max(0);
    let waiting = if updated < expected {
        Some(format!("{updated} of {expected} matched pods updated"))
    } else if updated_ready < expected {
        Some(format!("{updated_ready} of {expected} updated pods ready"))
    } else if ready < matched {
        Some(format!("{ready} of {matched} matched pods ready"))
    } else {
        None
    };
    match waiting {
        Some(m) if paused => Health::suspended(format!("the SidecarSet update is paused: {m}")),
        Some(m) => Health::progressing(m),
        None if expected < matched => Health::suspended(format!(
            "{updated} of {matched} matched pods updated; the partition holds {partition} back"
        )),
        None => Health::healthy(format!("{matched} matched pods updated and ready")),
    }
}

/// BroadcastJob: phase and conditions; `Never` jobs are healthy while running everywhere.
pub(crate) fn broadcastjob(obj: &Value) -> Health {
    let get = |f: &str| int(obj, &format!("/status/{f}")).unwrap_or(0);
    let (desired, active, succeeded, failed) = (
        get("desired"),
        get("active"),
        get("succeeded"),
        get("failed"),
    );
    if let Some(c) = condition(obj, "Failed")
        && c.get("status").and_then(Value::as_str) == Some("True")
    {
        return Health::degraded(cond_message(c));
    }
    let phase = text(obj, "/status/phase").unwrap_or_default();
    if phase == "failed" {
        return Health::degraded(format!("{failed} of {desired} pods failed"));
    }
    if condition_true(obj, "Complete") || phase == "completed" {
        return Health::healthy(format!("{succeeded} of {desired} pods succeeded"));
    }
    if flag(obj, "/spec/paused") || phase == "paused" {
        return Health::suspended("the BroadcastJob is paused");
    }
    if text(obj, "/spec/completionPolicy/type") == Some("Never")
        && desired > 0
        && active + succeeded >= desired
        && failed == 0
    {
        return Health::healthy(format!("running on all {desired} nodes"));
    }
    Health::progressing(format!(
        "{succeeded} of {desired} pods succeeded, {active} active, {failed} failed"
    ))
}

/// AdvancedCronJob: suspended while paused, progressing while runs are active, healthy
/// otherwise — also before its first scheduled time, which is not a failure (Argo CD calls that
/// Degraded). Whether each run succeeds is the health of the Jobs it creates.
pub(crate) fn advancedcronjob(obj: &Value) -> Health {
    if flag(obj, "/spec/paused") {
        return Health::suspended("the AdvancedCronJob is paused");
    }
    let active = obj
        .pointer("/status/active")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    if active > 0 {
        return Health::progressing(format!("{active} active run(s)"));
    }
    match text(obj, "/status/lastScheduleTime") {
        Some(t) => Health::healthy(format!("last run scheduled at {t}")),
        None => Health::healthy("waiting for its first scheduled time"),
    }
}

/// ImagePullJob: pulled on every selected node; failed nodes make it degraded.
pub(crate) fn imagepulljob(obj: &Value) -> Health {
    let get = |f: &str| int(obj, &format!("/status/{f}")).unwrap_or(0);
    let (desired, succeeded, failed) = (get("desired"), get("succeeded"), get("failed"));
    let failed_nodes = obj
        .pointer("/status/failedNodes")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    let failure = || {
        let nodes = if failed_nodes.is_empty() {
            String::new()
        } else {
            format!(" ({failed_nodes})")
        };
        Health::degraded(format!(
            "the pull failed on {failed} of {desired} nodes{nodes}"
        ))
    };
    let message = text(obj, "/status/message").unwrap_or_default();
    if message.contains("exceeds activeDeadlineSeconds") {
        return Health::degraded(message.to_string());
    }
    let done = obj
        .pointer("/status/completionTime")
        .is_some_and(|v| !v.is_null())
        || (desired > 0 && succeeded + failed >= desired);
    if done {
        return if failed > 0 {
            failure()
        } else {
            Health::healthy(format!("pulled on {succeeded} of {desired} nodes"))
        };
    }
    if obj.pointer("/spec/parallelism") == Some(&Value::from(0)) {
        return Health::suspended("the ImagePullJob is paused (parallelism 0)");
    }
    Health::progressing(format!("pulled on {succeeded} of {desired} nodes"))
}
