//! The Advanced StatefulSet status (kruise `updateStatus`/`computeReplicaStatus`,
//! `updatePVCStatus`, `completeRollingUpdate`, `inconsistentStatus`, `SetStatefulsetCondition`).

use graft_api::apps::v1beta1::statefulset::{StatefulSetStatus, VolumeClaimStatus};
use k8s_openapi::api::apps::v1::StatefulSetCondition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use super::view::{Ctx, Slot};

/// Condition type kruise sets when a pod could not be created.
pub const CONDITION_FAILED_CREATE_POD: &str = "FailedCreatePod";
/// Condition type kruise sets when a pod could not be updated (identity/storage repair).
pub const CONDITION_FAILED_UPDATE_POD: &str = "FailedUpdatePod";

/// Sets a condition the way kruise's `SetStatefulsetCondition` does: nothing changes when status
/// and reason are the same; the transition time is kept when only the reason changes. The
/// executor calls it with [`super::Action::failure_condition`] when an action fails.
pub fn set_condition(
    status: &mut StatefulSetStatus,
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
    let new = StatefulSetCondition {
        type_: type_.to_string(),
        status: cond_status.to_string(),
        last_transition_time: transition,
        reason: reason.map(str::to_string),
        message: Some(message.to_string()),
    };
    conditions.retain(|c| c.type_ != type_);
    conditions.push(new);
}

/// The status of the observed pods (replicas and condemned), before the plan acts. Conditions
/// start empty, as kruise builds a fresh status every reconcile.
pub(crate) fn initial(ctx: &Ctx<'_>) -> StatefulSetStatus {
    let snap = ctx.snap;
    let mut s = StatefulSetStatus {
        observed_generation: snap.set.metadata.generation.unwrap_or(0),
        current_revision: Some(snap.current_revision.clone()),
        update_revision: Some(snap.update_revision.clone()),
        collision_count: Some(snap.collision_count.unwrap_or(0)),
        label_selector: Some(snap.label_selector.clone()),
        volume_claims: volume_claims(ctx),
        ..StatefulSetStatus::default()
    };
    for v in ctx.all_pods() {
        s.replicas += 1;
        if v.running_ready {
            s.ready_replicas += 1;
            s.available_replicas += i32::from(v.available);
            if v.updated {
                s.updated_ready_replicas += 1;
                s.updated_available_replicas += i32::from(v.available);
            }
        }
        if !v.pod.terminating {
            s.current_replicas += i32::from(v.current);
            s.updated_replicas += i32::from(v.updated);
        }
    }
    s
}

/// `updatePVCStatus`: per volume claim template, the replicas' PVCs (not being deleted) that are
/// compatible with it, and of those the ones whose capacity is ready. `None` without templates.
fn volume_claims(ctx: &Ctx<'_>) -> Option<Vec<VolumeClaimStatus>> {
    let templates = ctx.spec.volume_claim_templates.as_deref()?;
    if templates.is_empty() {
        return None;
    }
    let mut out: Vec<VolumeClaimStatus> = templates
        .iter()
        .map(|t| VolumeClaimStatus {
            volume_claim_name: t.metadata.name.clone().unwrap_or_default(),
            ..VolumeClaimStatus::default()
        })
        .collect();
    for ordinal in ctx.slots.iter().map(Slot::ordinal) {
        for (vct, claim) in ctx.claims_of(ordinal) {
            if claim.deleting || !claim.compatible {
                continue;
            }
            if let Some(s) = out.iter_mut().find(|s| s.volume_claim_name == vct) {
                s.compatible_replicas += 1;
                s.compatible_ready_replicas += i32::from(claim.ready);
            }
        }
    }
    Some(out)
}

/// `completeRollingUpdate`: with `RollingUpdate`, once every pod is updated and ready the update
/// revision becomes the current one.
pub(crate) fn complete_rolling_update(ctx: &Ctx<'_>, s: &mut StatefulSetStatus) {
    if ctx.rolling_update() && s.updated_replicas == s.replicas && s.ready_replicas == s.replicas {
        s.current_replicas = s.updated_replicas;
        s.current_revision = s.update_revision.clone();
    }
}

/// Whether `new` must be written over `old`: kruise's `inconsistentStatus` fields (a newer
/// generation, replicas, current/ready/available/updated counts, revisions, selector, the
/// volume claim counts) plus the ones it leaves out (`updatedReadyReplicas`,
/// `updatedAvailableReplicas`, `collisionCount`), so those are never stale. Conditions are not
/// compared, as in kruise.
pub fn inconsistent(old: &StatefulSetStatus, new: &StatefulSetStatus) -> bool {
    new.observed_generation > old.observed_generation
        || new.replicas != old.replicas
        || new.current_replicas != old.current_replicas
        || new.ready_replicas != old.ready_replicas
        || new.available_replicas != old.available_replicas
        || new.updated_replicas != old.updated_replicas
        || new.updated_ready_replicas != old.updated_ready_replicas
        || new.updated_available_replicas != old.updated_available_replicas
        || new.current_revision != old.current_revision
        || new.update_revision != old.update_revision
        || new.label_selector != old.label_selector
        || new.collision_count.unwrap_or(0) != old.collision_count.unwrap_or(0)
        || volume_claims_differ(old, new)
}

fn volume_claims_differ(old: &StatefulSetStatus, new: &StatefulSetStatus) -> bool {
    let new_claims = new.volume_claims.as_deref().unwrap_or_default();
    old.volume_claims.iter().flatten().any(|o| {
        new_claims
            .iter()
            .find(|n| n.volume_claim_name == o.volume_claim_name)
            .is_none_or(|n| {
                n.compatible_replicas != o.compatible_replicas
                    || n.compatible_ready_replicas != o.compatible_ready_replicas
            })
    }) || new_claims.len() != old.volume_claims.as_deref().unwrap_or_default().len()
}
