//! The status step: what a user sees of a reconcile. Events (why the rollout waits, what the
//! plan did), the status the planner computed, written with a merge patch on the status
//! subresource, and the pruned history.

use graft_api::apps::v1beta1::{StatefulSet, StatefulSetStatus};
use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::{DeleteParams, Patch};
use kube::{Api, Resource, ResourceExt};
use serde_json::{Value, json};

use super::controller::{Error, api_err, pp};
use super::plan::{EventType, PlannedEvent};
use crate::context::Context;

/// Queues an Event on the set; Events are best effort and never hold up a reconcile.
pub(super) fn publish(ctx: &Context, set: &StatefulSet, ev: &PlannedEvent) {
    let reference: ObjectReference = set.object_ref(&());
    let type_ = match ev.type_ {
        EventType::Normal => crate::events::EventType::Normal,
        EventType::Warning => crate::events::EventType::Warning,
    };
    ctx.recorder
        .enqueue(type_, &ev.reason, &ev.message, &reference);
}

/// Says why the rollout waits (or why the update cannot go on: a Warning) where
/// `kubectl describe` shows it, once per new reason; `waiting_key` keys the dedup.
pub(super) fn announce_waiting(
    ctx: &Context,
    set: &StatefulSet,
    waiting_key: &str,
    waiting: Option<&str>,
    error: Option<&str>,
) {
    if let Some(w) = waiting {
        tracing::debug!(statefulset = %waiting_key, waiting = %w, "rollout waiting");
    }
    if !ctx.waiting_changed(waiting_key, waiting) {
        return;
    }
    let ev = match (error, waiting) {
        (Some(e), _) => PlannedEvent {
            type_: EventType::Warning,
            reason: "FailedRollingUpdate".into(),
            message: e.to_string(),
        },
        (None, Some(w)) => PlannedEvent {
            type_: EventType::Normal,
            reason: "RolloutWaiting".into(),
            message: w.to_string(),
        },
        (None, None) => return,
    };
    publish(ctx, set, &ev);
}

/// The merge patch body of a status: the whole status, with the optional lists that are absent
/// set to `null` so the patch removes them (kruise replaces the status with `UpdateStatus`, so
/// conditions of an earlier reconcile do not survive a write without them).
pub(super) fn status_patch(status: &StatefulSetStatus) -> Value {
    let mut body = serde_json::to_value(status).unwrap_or_else(|_| json!({}));
    if let Some(map) = body.as_object_mut() {
        for key in ["conditions", "volumeClaims"] {
            map.entry(key).or_insert(Value::Null);
        }
    }
    json!({ "status": body })
}

/// Writes the status.
pub(super) async fn write(
    ctx: &Context,
    set: &StatefulSet,
    key: &str,
    status: &StatefulSetStatus,
) -> Result<(), Error> {
    let api: Api<StatefulSet> =
        Api::namespaced(ctx.client.clone(), &set.namespace().unwrap_or_default());
    api.patch_status(&set.name_any(), &pp(), &Patch::Merge(&status_patch(status)))
        .await
        .map_err(api_err(key, "writing status"))?;
    Ok(())
}

/// Deletes old revisions (best effort: a leftover revision goes next time).
pub(super) async fn prune_history(ctx: &Context, set: &StatefulSet, key: &str, names: &[String]) {
    let api: Api<ControllerRevision> =
        Api::namespaced(ctx.client.clone(), &set.namespace().unwrap_or_default());
    for old in names {
        match api.delete(old, &DeleteParams::default()).await {
            Ok(_) => tracing::info!(statefulset = %key, revision = %old, "deleted old revision"),
            Err(e) => {
                tracing::debug!(statefulset = %key, revision = %old, error = %e, "deleting old revision")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_patch_clears_absent_conditions_and_keeps_the_counters() {
        let status = StatefulSetStatus {
            observed_generation: 3,
            replicas: 2,
            update_revision: Some("web-abc".into()),
            ..Default::default()
        };
        let patch = status_patch(&status);
        assert_eq!(patch["status"]["conditions"], Value::Null);
        assert!(
            patch["status"]
                .as_object()
                .unwrap()
                .contains_key("conditions")
        );
        assert_eq!(patch["status"]["observedGeneration"], json!(3));
        assert_eq!(patch["status"]["replicas"], json!(2));
        assert_eq!(patch["status"]["updateRevision"], json!("web-abc"));
    }
}
