//! The rolling update (kruise `rollingUpdateStatefulsetPods`): lifecycle refresh of every pod,
//! `paused`, the unavailable pods, specified deletions (not bound by the partition), then the
//! pods to update (`sortPodsToUpdate`) within the partition and `maxUnavailable`, each in place
//! (`inPlaceUpdatePod`) or by recreation.

use std::collections::BTreeSet;

use graft_api::apps::common::{LifecycleState, PodUpdatePolicy};
use graft_api::apps::v1beta1::StatefulSetStatus;
use graft_api::labels;

use super::Action;
use super::scale::{delete_pod, refresh};
use super::view::{Ctx, OrderSlot, Out, Slot, View, hooked, marks_not_ready};
use crate::podorder;
use crate::revision::revision_label_matches;

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
        if v.updated {
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
        if specified.contains(&v.ordinal) || v.pod.terminating {
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
