//! The status step: what a user sees of a reconcile. Events (why the rollout waits, what the
//! plan did), the truncated `podsToDelete`, the status the planner computed, the pruned history.

use graft_api::apps::v1alpha1::{CloneSet, CloneSetStatus};
use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::{DeleteParams, Patch};
use kube::{Api, Resource, ResourceExt};
use serde_json::json;

use super::controller::{Error, api_err, pp};
use super::plan::{EventType, Plan, PlannedEvent};
use crate::context::Context;

/// Publishes an Event on the CloneSet; a failure is only logged (Events are best effort).
pub(super) async fn publish(ctx: &Context, cs: &CloneSet, ev: &PlannedEvent) {
    let reference: ObjectReference = cs.object_ref(&());
    let type_ = match ev.type_ {
        EventType::Normal => crate::events::EventType::Normal,
        EventType::Warning => crate::events::EventType::Warning,
    };
    // Queued: a reconcile that waited for its Events held up the next look at the pods.
    ctx.recorder
        .enqueue(type_, &ev.reason, &ev.message, &reference);
}

/// Says why the rollout waits where `kubectl describe` shows it, once per new reason.
pub(super) async fn announce_waiting(ctx: &Context, cs: &CloneSet, key: &str, plan: &Plan) {
    if let Some(w) = &plan.waiting {
        tracing::debug!(cloneset = %key, waiting = %w, "rollout waiting");
    }
    if ctx.waiting_changed(key, plan.waiting.as_deref())
        && let Some(w) = &plan.waiting
    {
        let ev = PlannedEvent {
            type_: EventType::Normal,
            reason: "RolloutWaiting".into(),
            message: w.clone(),
        };
        publish(ctx, cs, &ev).await;
    }
}

/// Writes what the plan computed after its actions ran: its Events, `podsToDelete`, the status,
/// and the deletion of old revisions (best effort: a leftover revision goes next time).
pub(super) async fn write(
    ctx: &Context,
    cs: &CloneSet,
    key: &str,
    plan: &Plan,
) -> Result<(), Error> {
    for ev in &plan.events {
        publish(ctx, cs, ev).await;
    }
    let ns = cs.namespace().unwrap_or_default();
    let name = cs.name_any();
    let cs_api: Api<CloneSet> = Api::namespaced(ctx.client.clone(), &ns);
    if let Some(names) = &plan.pods_to_delete {
        let patch = json!({"spec": {"scaleStrategy": {"podsToDelete": names}}});
        cs_api
            .patch(&name, &pp(), &Patch::Merge(&patch))
            .await
            .map_err(api_err(key, "truncating podsToDelete"))?;
    }
    if plan.status_changed {
        write_status(&cs_api, &name, &plan.status)
            .await
            .map_err(api_err(key, "writing status"))?;
    }
    let revisions: Api<ControllerRevision> = Api::namespaced(ctx.client.clone(), &ns);
    for old in &plan.delete_revisions {
        if let Err(e) = revisions.delete(old, &DeleteParams::default()).await {
            tracing::debug!(cloneset = %key, revision = %old, error = %e, "deleting old revision");
        }
    }
    Ok(())
}

async fn write_status(
    api: &Api<CloneSet>,
    name: &str,
    status: &CloneSetStatus,
) -> kube::Result<()> {
    let mut body = serde_json::to_value(status).unwrap_or_else(|_| json!({}));
    // A merge patch only removes what it sets to null: clear conditions that went away.
    if status.conditions.is_none()
        && let Some(map) = body.as_object_mut()
    {
        map.insert("conditions".into(), serde_json::Value::Null);
    }
    let patch = json!({ "status": body });
    api.patch_status(name, &pp(), &Patch::Merge(&patch))
        .await
        .map(|_| ())
}
