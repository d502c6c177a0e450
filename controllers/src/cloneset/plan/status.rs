//! The CloneSet status (`cloneset_status.go calculateStatus`, kruise-api.md §2.2): counters,
//! revisions, `expectedUpdatedReplicas` and the `Progressing` condition.

use std::time::Duration;

use graft_api::apps::v1alpha1::cloneset::{CloneSetCondition, CloneSetStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use super::diff;
use super::view::Ctx;

/// Condition type set when a scale step failed.
pub const CONDITION_FAILED_SCALE: &str = "FailedScale";
/// Condition type set when an update step failed.
pub const CONDITION_FAILED_UPDATE: &str = "FailedUpdate";
/// Condition type describing rollout progress (only with `progressDeadlineSeconds`).
pub const CONDITION_PROGRESSING: &str = "Progressing";
/// graft's own condition: True while failing pods (image cannot be pulled, crash loop) hold the
/// rollout, with the reason in its message. OpenKruise has no such condition; it is absent
/// otherwise, so kruise clients see the status they know.
pub const CONDITION_ROLLOUT_BLOCKED: &str = "RolloutBlocked";

/// Sets `type_` on `status` the way OpenKruise's `SetCloneSetCondition` does: nothing changes if
/// status and reason are the same; the transition time is kept when only the reason changes.
/// The executor uses it to record `FailedScale` / `FailedUpdate` for errors it meets.
pub fn set_condition(
    status: &mut CloneSetStatus,
    type_: &str,
    cond_status: &str,
    reason: Option<&str>,
    message: &str,
    now: Timestamp,
) {
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    let current = conditions.iter().find(|c| c.type_ == type_);
    if let Some(c) = current
        && c.status == cond_status
        && c.reason.as_deref() == reason
    {
        return;
    }
    let transition = match current {
        Some(c) if c.status == cond_status => c.last_transition_time.clone(),
        _ => Some(Time(now)),
    };
    let new = CloneSetCondition {
        type_: type_.to_string(),
        status: cond_status.to_string(),
        last_update_time: Some(Time(now)),
        last_transition_time: transition,
        reason: reason.map(str::to_string),
        message: Some(message.to_string()),
    };
    conditions.retain(|c| c.type_ != type_);
    conditions.push(new);
}

/// Computes the status; returns it and, while progressing, when the progress deadline expires.
pub(crate) fn calculate(
    ctx: &Ctx<'_>,
    update_error: Option<&str>,
) -> (CloneSetStatus, Option<Duration>) {
    let snap = ctx.snap;
    let old = snap.cloneset.status.clone().unwrap_or_default();
    let mut s = CloneSetStatus {
        observed_generation: snap.cloneset.metadata.generation.unwrap_or(0),
        update_revision: Some(snap.update_revision.clone()),
        current_revision: Some(snap.current_revision.clone()),
        collision_count: Some(snap.collision_count.unwrap_or(0)),
        label_selector: Some(snap.label_selector.clone()),
        conditions: old.conditions.clone(),
        ..CloneSetStatus::default()
    };
    if let Some(err) = update_error {
        set_condition(&mut s, CONDITION_FAILED_UPDATE, "True", None, err, snap.now);
    }
    for p in &ctx.pods {
        s.replicas += 1;
        s.ready_replicas += i32::from(p.update_ready);
        s.available_replicas += i32::from(p.available);
        if p.updated {
            s.updated_replicas += 1;
            s.updated_ready_replicas += i32::from(p.update_ready);
            s.updated_available_replicas += i32::from(p.available);
        }
    }
    // The update revision is stable once every pod has it and the count is right; readiness is
    // not required.
    if s.updated_replicas == s.replicas && s.replicas == ctx.replicas {
        s.current_revision = s.update_revision.clone();
    }
    s.expected_updated_replicas = ctx.replicas - diff::limits(&ctx.spec).partition;
    let requeue = progressing(ctx, &mut s);
    (s, requeue)
}

fn progressing(ctx: &Ctx<'_>, s: &mut CloneSetStatus) -> Option<Duration> {
    let now = ctx.snap.now;
    let deadline = match ctx.spec.progress_deadline_seconds {
        Some(d) if d != i32::MAX => d,
        _ => {
            if let Some(c) = s.conditions.as_mut() {
                c.retain(|c| c.type_ != CONDITION_PROGRESSING);
                if c.is_empty() {
                    s.conditions = None;
                }
            }
            return None;
        }
    };
    let replicas = ctx.replicas;
    let set = |s: &mut CloneSetStatus, status: &str, reason: &str, msg: &str| {
        set_condition(s, CONDITION_PROGRESSING, status, Some(reason), msg, now);
    };
    if s.current_revision == s.update_revision
        && s.replicas == replicas
        && s.updated_replicas == replicas
        && s.updated_available_replicas == replicas
    {
        set(s, "True", "CloneSetAvailable", "CloneSet is available");
        return None;
    }
    if ctx.paused() {
        set(s, "True", "CloneSetPaused", "CloneSet is paused");
        return None;
    }
    if s.expected_updated_replicas < replicas
        && s.expected_updated_replicas <= s.updated_available_replicas
    {
        set(
            s,
            "True",
            "ProgressPartitionAvailable",
            "CloneSet has been paused due to partition ready",
        );
        return None;
    }
    let deadline_d = Duration::from_secs(u64::try_from(deadline.max(0)).unwrap_or(0));
    let cond = s
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == CONDITION_PROGRESSING)
        .cloned();
    let exceeded = cond.as_ref().is_some_and(|c| {
        c.reason.as_deref() == Some("ProgressDeadlineExceeded")
            || c.last_update_time
                .as_ref()
                .and_then(|t| t.0.checked_add(deadline_d).ok())
                .is_some_and(|end| end < now)
    });
    if exceeded {
        let msg = format!(
            "CloneSet revision {} has timed out progressing",
            s.update_revision.as_deref().unwrap_or("")
        );
        set(s, "False", "ProgressDeadlineExceeded", &msg);
        return None;
    }
    set(s, "True", "CloneSetUpdated", "CloneSet is progressing");
    let since = s
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == CONDITION_PROGRESSING)
        .and_then(|c| c.last_update_time.as_ref())
        .map(|t| t.0)
        .unwrap_or(now);
    let end = since.checked_add(deadline_d).unwrap_or(now);
    let left = now.duration_until(end);
    let left = Duration::try_from(left).unwrap_or(Duration::ZERO);
    // One extra second avoids waking up a few milliseconds too early (Kubernetes #39785).
    Some(if left < Duration::from_secs(1) {
        left
    } else {
        left + Duration::from_secs(1)
    })
}
