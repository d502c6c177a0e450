//! The rolling update (kruise `rollingUpdateStatefulsetPods`): lifecycle refresh of every pod,
//! `paused`, the unavailable pods, specified deletions (not bound by the partition), then the
//! pods to update (`sortPodsToUpdate`) within the partition and `maxUnavailable`, each in place
//! (`inPlaceUpdatePod`) or by recreation.

use std::collections::BTreeSet;

use graft_api::apps::common::{LifecycleState, PodUpdatePolicy};
use graft_api::apps::v1beta1::StatefulSetStatus;
use graft_api::labels;

use super::scale::{delete_pod, refresh};
use super::view::{Ctx, OrderSlot, Out, Slot, View, hooked, marks_not_ready};
use super::{Action, EventType, PlannedEvent};
use crate::podorder;
use crate::revision::revision_label_matches;
use crate::statefulset::claims::ClaimInfo;

pub(crate) fn update(ctx: &Ctx<'_>, out: &mut Out, status: &mut StatefulSetStatus) {
    // 1. Refresh every pod; a lifecycle transition ends the update half for this plan.
    for v in ctx.all_pods() {
        refresh(ctx, v, out);
    }
    if out.lifecycle_changed {
        return;
    }
    if ctx.paused() {
        if ctx.replica_pods().any(|v| !v.updated) {
            out.wait(|| "updates paused (updateStrategy.rollingUpdate.paused: true)".into());
        }
        return;
    }

    // 2. Unavailable replicas: unhealthy or terminating, in-place update not complete, or not
    // ready for minReadySeconds. Pods still to be created count too.
    let max_unavailable = ctx.max_unavailable();
    let resize = ctx.resizes_claims();
    let mut unavailable: BTreeSet<i64> = BTreeSet::new();
    for slot in &ctx.slots {
        match slot {
            Slot::Missing { ordinal, .. } => {
                unavailable.insert(*ordinal);
            }
            Slot::Pod(v) => {
                if !v.healthy || !v.pod.in_place.completed || !v.available {
                    unavailable.insert(v.ordinal);
                    if v.healthy
                        && v.pod.in_place.completed
                        && let Some(d) = v.available_in
                    {
                        out.requeue(d);
                    }
                } else if resize && !claims_of(ctx, v).all(|(_, c)| c.ready) {
                    // IsOwnedPVCsReady: a PVC still growing makes its pod unavailable.
                    unavailable.insert(v.ordinal);
                }
            }
        }
    }

    // 3. Specified deletions, highest ordinal first, within maxUnavailable only.
    let mut specified: BTreeSet<i64> = BTreeSet::new();
    for slot in ctx.slots.iter().rev() {
        let Slot::Pod(v) = slot else { continue };
        if !v.specified_delete {
            continue;
        }
        if unavailable.len() >= max_unavailable && !unavailable.contains(&v.ordinal) {
            out.wait(|| {
                format!(
                    "maxUnavailable reached: pod {} specified for deletion waits ({} unavailable, maxUnavailable {max_unavailable})",
                    v.name(),
                    unavailable.len()
                )
            });
            continue;
        }
        specified.insert(v.ordinal);
        if !v.pod.terminating {
            let (_, deleted) = delete_pod(ctx, v, out);
            if deleted {
                if v.current {
                    status.current_replicas -= 1;
                } else if v.updated {
                    status.updated_replicas -= 1;
                }
            }
        }
        unavailable.insert(v.ordinal);
    }

    // 4. The pods to update, in order.
    for i in pods_to_update(ctx) {
        let Slot::Pod(v) = &ctx.slots[i] else {
            continue;
        };
        let claims_match = !resize || claims_of(ctx, v).all(|(_, c)| c.matches_template());
        if v.updated && claims_match {
            continue;
        }
        if unavailable.len() >= max_unavailable && !unavailable.contains(&v.ordinal) {
            out.wait(|| {
                format!(
                    "maxUnavailable reached: {} pod(s) unavailable, maxUnavailable {max_unavailable}; pod {} waits",
                    unavailable.len(),
                    v.name()
                )
            });
            return;
        }
        // OnPodRollingUpdate: the pod's PVCs grow before the pod is updated (kruise patches a
        // PVC only once a pod references it, for online file system expansion).
        if resize {
            if !claims_match && let Err(e) = resize_claims(ctx, v, out) {
                out.wait(|| e.clone());
                out.error = Some(e);
                return;
            }
            if !claims_of(ctx, v).all(|(_, c)| c.patch_completed()) {
                unavailable.insert(v.ordinal);
                out.wait(|| format!("waiting for the PVCs of pod {} to be resized", v.name()));
                continue;
            }
        }
        if specified.contains(&v.ordinal) || v.pod.terminating {
            continue;
        }
        if v.updated {
            // Only its PVCs were behind: nothing else to do for it (kruise then runs an
            // in-place update with no change).
            unavailable.insert(v.ordinal);
            continue;
        }
        let decrease = match in_place(ctx, v, out) {
            Err(e) => {
                out.wait(|| e.clone());
                out.error = Some(e);
                return;
            }
            Ok(true) => true,
            Ok(false) => delete_pod(ctx, v, out).1,
        };
        unavailable.insert(v.ordinal);
        if decrease && v.current {
            status.current_replicas -= 1;
        }
    }
    let kept = ctx.replica_pods().filter(|v| !v.updated).count();
    if kept > 0 && out.actions.is_empty() && ctx.partition() > 0 {
        out.wait(|| {
            format!(
                "partition reached: {kept} pod(s) kept at the current revision (partition {})",
                ctx.partition()
            )
        });
    }
}

/// The pod's PVCs that exist and are not being deleted (kruise `handlePVCWithCustomFn` with
/// `ignoreTerminatingPVC`).
fn claims_of<'a>(
    ctx: &Ctx<'a>,
    v: &View<'_>,
) -> impl Iterator<Item = (String, &'a ClaimInfo)> + use<'a> {
    ctx.claims_of(v.ordinal)
        .into_iter()
        .filter(|(_, c)| !c.deleting)
}

/// kruise `TryPatchPVC`: plan the expansion of the pod's PVCs that are smaller than their
/// template, or say why they cannot be (a PVC that differs in more than its size is left for its
/// owner to delete; the storage class must allow expansion).
fn resize_claims(ctx: &Ctx<'_>, v: &View<'_>, out: &mut Out) -> Result<(), String> {
    for (template, c) in claims_of(ctx, v) {
        if c.matches_template() {
            continue;
        }
        if !c.resize.needs_expand || !c.resize.same_shape {
            out.events.push(PlannedEvent {
                type_: EventType::Warning,
                reason: "FailedUpdatePVC".into(),
                message: format!(
                    "failed to update pvc {}: contains diff other than spec resource, wait pvc to be deleted",
                    c.name
                ),
            });
            return Err(format!(
                "can not patch pvc {}: contains diff other than spec resource, wait pvc to be deleted",
                c.name
            ));
        }
        if let Some(class) = &c.resize.storage_class {
            match ctx.snap.storage_classes.get(class) {
                Some(Some(true)) => {}
                Some(Some(false)) => {
                    return Err(format!(
                        "storage class {class} for {} does not support volume expansion",
                        v.name()
                    ));
                }
                _ => {
                    return Err(format!(
                        "could not get sc {class} for {} when checking PVC spec",
                        v.name()
                    ));
                }
            }
        }
        out.actions.push(Action::ResizeClaim {
            claim: c.name.clone(),
            pod: v.name().to_string(),
            template,
        });
    }
    Ok(())
}

/// kruise `sortPodsToUpdate`: slot indexes in update order, at most `replicas - partition`.
/// Ordered: the highest `replicas - partition` replica ordinals, highest first (so the first
/// `partition` replica ordinals, reserved ones skipped, keep the current revision; kruise's extra
/// `index >= partition` bound over slots that include reserved ordinals never binds before the
/// count does). Unordered: the updated (or
/// terminating) pods first, then the others by `priorityStrategy` (descending ordinal among
/// equals) — the partition then counts pods kept not updated.
fn pods_to_update(ctx: &Ctx<'_>) -> Vec<usize> {
    let partition = ctx.partition();
    let max_update = usize::try_from(ctx.replicas - partition).unwrap_or(0);
    if max_update == 0 {
        return Vec::new();
    }
    let Some(priority) = ctx.unordered() else {
        return (0..ctx.slots.len()).rev().take(max_update).collect();
    };
    let update_revision = &ctx.snap.update_revision;
    let (mut updated, mut wait) = (Vec::new(), Vec::new());
    for i in (0..ctx.slots.len()).rev() {
        let done = match &ctx.slots[i] {
            Slot::Pod(v) => v.pod.terminating || v.updated_by_hash,
            Slot::Missing { revision, .. } => revision_label_matches(revision, update_revision),
        };
        if done {
            updated.push(i);
        } else {
            wait.push(i);
        }
    }
    if let Some(p) = priority {
        let all: Vec<OrderSlot<'_, '_>> = ctx
            .slots
            .iter()
            .map(|s| match s {
                Slot::Pod(v) => OrderSlot::Pod(v),
                _ => OrderSlot::None,
            })
            .collect();
        podorder::sort_by_priority(&all, &mut wait, p);
    }
    updated.extend(wait);
    updated.truncate(max_update);
    updated
}

/// kruise `inPlaceUpdatePod`: `Ok(true)` when the pod is being updated in place (or waits in
/// the inPlaceUpdate hook), `Ok(false)` to recreate it, `Err` when it can be neither.
fn in_place(ctx: &Ctx<'_>, v: &View<'_>, out: &mut Out) -> Result<bool, String> {
    let policy = ctx.pod_update_policy();
    if policy == PodUpdatePolicy::ReCreate {
        return Ok(false);
    }
    if v.pod.in_place.possible.is_err() {
        if policy == PodUpdatePolicy::InPlaceOnly {
            return Err(format!(
                "find strategy is InPlaceOnly but Pod {} can not update in-place",
                v.name()
            ));
        }
        return Ok(false);
    }
    let hook = ctx.in_place_hook();
    let to_preparing = |out: &mut Out| {
        out.actions.push(Action::SetLifecycleState {
            name: v.name().to_string(),
            state: LifecycleState::PreparingUpdate,
            mark_pod_not_ready: marks_not_ready(hook),
        });
    };
    match v.state {
        "" | labels::LIFECYCLE_STATE_PREPARING_NORMAL | labels::LIFECYCLE_STATE_NORMAL => {
            if hooked(hook, v.pod) {
                to_preparing(out);
                return Ok(true);
            }
        }
        labels::LIFECYCLE_STATE_UPDATED => {
            to_preparing(out);
            return Ok(true);
        }
        labels::LIFECYCLE_STATE_PREPARING_UPDATE => {
            if hooked(hook, v.pod) {
                out.wait(|| {
                    format!(
                        "waiting for the inPlaceUpdate hook to release pod {}",
                        v.name()
                    )
                });
                return Ok(true);
            }
        }
        labels::LIFECYCLE_STATE_UPDATING => {}
        state => {
            return Err(format!(
                "not allowed to in-place update pod {} in state {state}",
                v.name()
            ));
        }
    }
    out.actions.push(Action::UpdateInPlace {
        name: v.name().to_string(),
        revision: ctx.snap.update_revision.clone(),
        set_updating: !v.state.is_empty(),
    });
    Ok(true)
}
