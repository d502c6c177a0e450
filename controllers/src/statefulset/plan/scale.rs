//! The scale half (kruise `updateStatefulSet` up to the rolling update): every replica slot in
//! ascending ordinal order (`processReplica`), the PVC owners of condemned pods, then the
//! condemned pods from the highest ordinal (`processCondemned`).

use graft_api::apps::common::LifecycleState;
use graft_api::labels;

use super::view::{Ctx, Flow, Out, Slot, View, all_hooked, hooked, marks_not_ready};
use super::{Action, Refresh};
use crate::statefulset::claims::{self, Owner};

/// What one replica step says about the loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    /// Next replica.
    Next,
    /// `OrderedReady` stops the whole plan here; `Parallel` goes on with the next replica (kruise
    /// ignores `shouldExit` outside monotonic mode).
    Exit,
    /// `scaleStrategy.maxUnavailable` is used up: stop the replicas, go on with the rest.
    Break,
}

pub(crate) fn scale(ctx: &Ctx<'_>, out: &mut Out) -> Flow {
    let mut budget = ctx.scale_max_unavailable();
    for slot in &ctx.slots {
        match replica(ctx, slot, &mut budget, out) {
            Step::Next => {}
            Step::Exit if ctx.monotonic => return Flow::Exit,
            Step::Exit => {}
            Step::Break => break,
        }
    }

    // PVC owners of the condemned pods (whenScaled: Delete gives them the pod as owner).
    for v in &ctx.condemned {
        claim_owners(ctx, v, true, out);
    }

    // The lowest unhealthy ordinal may be deleted even while unhealthy; any other unhealthy pod
    // blocks OrderedReady scale-in.
    let first_unhealthy = ctx
        .slots
        .iter()
        .filter_map(|s| match s {
            Slot::Missing { ordinal, .. } => Some(*ordinal),
            Slot::Pod(v) => (!v.healthy).then_some(v.ordinal),
        })
        .chain(
            ctx.condemned
                .iter()
                .filter(|v| !v.healthy)
                .map(|v| v.ordinal),
        )
        .min();
    for v in &ctx.condemned {
        if condemned(ctx, v, first_unhealthy, out) == Flow::Exit {
            return Flow::Exit;
        }
    }
    Flow::Continue
}

/// `decreaseAndCheckMaxUnavailable`: count one more unavailable pod; true when the budget is
/// used up.
fn spend(budget: &mut Option<i32>) -> bool {
    match budget {
        None => false,
        Some(b) => {
            *b -= 1;
            *b <= 0
        }
    }
}

/// `processReplica`.
fn replica(ctx: &Ctx<'_>, slot: &Slot<'_>, budget: &mut Option<i32>, out: &mut Out) -> Step {
    let v = match slot {
        Slot::Missing { ordinal, revision } => {
            let name = ctx.pod_name(*ordinal);
            // A PVC still owned by an earlier pod of this name goes with it: wait.
            if let Some((_, c)) = ctx
                .claims_of(*ordinal)
                .into_iter()
                .find(|(_, c)| claims::is_stale(ctx.retention, &c.owner_references, &name, ""))
            {
                out.wait(|| {
                    format!(
                        "waiting for PVC {} of a former pod {name} to be deleted",
                        c.name
                    )
                });
                return Step::Exit;
            }
            out.actions.push(Action::CreatePod {
                ordinal: *ordinal,
                name,
                revision: revision.clone(),
            });
            if ctx.monotonic {
                return Step::Exit;
            }
            return if spend(budget) {
                Step::Break
            } else {
                Step::Next
            };
        }
        Slot::Pod(v) => v,
    };

    // Failed or succeeded pods are deleted so that they are recreated at the same ordinal.
    // kruise checks the scale budget before deleting, which with maxUnavailable 1 would never
    // delete the first finished pod; graft deletes first and then counts it.
    if v.finished() {
        if !v.pod.terminating {
            delete_pod(ctx, v, out);
        }
        if spend(budget) {
            return Step::Break;
        }
        return Step::Exit;
    }

    if v.pod.phase == super::PodPhase::Pending {
        let missing = ctx.missing_claims(v.ordinal);
        if !missing.is_empty() {
            out.actions.push(Action::CreateClaims {
                pod: v.name().to_string(),
                ordinal: v.ordinal,
                claims: missing,
            });
        }
    }

    if v.pod.terminating {
        if ctx.monotonic {
            out.wait(|| format!("waiting for pod {} to terminate", v.name()));
            return Step::Exit;
        }
        if spend(budget) {
            return Step::Break;
        }
    }

    refresh(ctx, v, out);

    if (ctx.monotonic || budget.is_some()) && !v.available {
        if let Some(d) = v.available_in {
            out.requeue(d);
        }
        if ctx.monotonic {
            out.wait(|| match v.available_in {
                Some(_) => format!(
                    "waiting for pod {} to be ready for minReadySeconds ({}s)",
                    v.name(),
                    ctx.min_ready_seconds
                ),
                None => format!("waiting for pod {} to be running and ready", v.name()),
            });
            return Step::Exit;
        }
        if spend(budget) {
            out.wait(|| {
                format!(
                    "scale-up limited by scaleStrategy.maxUnavailable: waiting for pod {} to be available",
                    v.name()
                )
            });
            return Step::Break;
        }
    }

    // The StatefulSet invariants: identity, storage, PVC owners.
    if !v.pod.identity_matches || !v.pod.storage_matches {
        out.actions.push(Action::RepairPod {
            name: v.name().to_string(),
            ordinal: v.ordinal,
        });
    }
    claim_owners(ctx, v, false, out);
    Step::Next
}

/// `processCondemned`.
fn condemned(ctx: &Ctx<'_>, v: &View<'_>, first_unhealthy: Option<i64>, out: &mut Out) -> Flow {
    if v.pod.terminating {
        if ctx.monotonic {
            out.wait(|| format!("waiting for pod {} to terminate before scale-in", v.name()));
            return Flow::Exit;
        }
        return Flow::Continue;
    }
    let first = first_unhealthy == Some(v.ordinal);
    if ctx.monotonic && !first && (!v.running_ready || !v.available) {
        if v.running_ready
            && let Some(d) = v.available_in
        {
            out.requeue(d);
        }
        out.wait(|| {
            format!(
                "waiting for pod {} to be available before scale-in",
                first_unhealthy.map_or_else(|| v.name().to_string(), |o| ctx.pod_name(o))
            )
        });
        return Flow::Exit;
    }
    let (modified, _) = delete_pod(ctx, v, out);
    if ctx.monotonic && modified {
        return Flow::Exit;
    }
    Flow::Continue
}

/// kruise `deletePod`: a pod hooked by preDelete goes to `PreparingDelete` (once) and waits for
/// the hook to be released; others are deleted. Returns (something planned, pod deleted).
pub(crate) fn delete_pod(ctx: &Ctx<'_>, v: &View<'_>, out: &mut Out) -> (bool, bool) {
    let hook = ctx.pre_delete();
    if hooked(hook, v.pod) {
        if v.state == labels::LIFECYCLE_STATE_PREPARING_DELETE {
            out.wait(|| format!("waiting for the preDelete hook to release pod {}", v.name()));
            return (false, false);
        }
        out.actions.push(Action::SetLifecycleState {
            name: v.name().to_string(),
            state: LifecycleState::PreparingDelete,
            mark_pod_not_ready: marks_not_ready(hook),
        });
        return (true, false);
    }
    out.actions.push(Action::DeletePod {
        name: v.name().to_string(),
        uid: v.pod.uid.clone(),
    });
    (true, true)
}

/// The PVC owner fixes the retention policy asks for on the pod's claims.
fn claim_owners(ctx: &Ctx<'_>, v: &View<'_>, scaled_down: bool, out: &mut Out) {
    let Some(uid) = v.pod.uid.as_deref() else {
        return;
    };
    let set = Owner::set(&ctx.snap.set);
    let pod = Owner::pod(v.name(), uid);
    for (_, c) in ctx.claims_of(v.ordinal) {
        if let Some(refs) =
            claims::updated_owners(ctx.retention, &c.owner_references, &set, &pod, scaled_down)
        {
            out.actions.push(Action::SetClaimOwners {
                claim: c.name.clone(),
                owner_references: refs,
            });
        }
    }
}

/// kruise `refreshPodState`, once per pod and plan: the in-place engine's refresh, then the
/// lifecycle transitions PreparingNormal → Normal (no preNormal hook, or all hooked);
/// PreparingUpdate at the update revision (a rollback) and Updating once complete → Updated (a
/// lifecycle is configured and the inPlaceUpdate hook is not all hooked) or Normal; Updated →
/// Normal once the inPlaceUpdate hook is all hooked again (or there is none).
pub(crate) fn refresh(ctx: &Ctx<'_>, v: &View<'_>, out: &mut Out) {
    if !out.refreshed.insert(v.name().to_string()) {
        return;
    }
    match v.pod.in_place.refresh {
        Refresh::Idle => {}
        Refresh::Due => out.actions.push(Action::RefreshInPlace {
            name: v.name().to_string(),
        }),
        Refresh::After(d) => out.requeue(d),
    }
    let hook = ctx.in_place_hook();
    let after_update = || {
        if ctx.has_lifecycle() && !all_hooked(hook, v.pod) {
            LifecycleState::Updated
        } else {
            LifecycleState::Normal
        }
    };
    let next = match LifecycleState::parse(v.state) {
        Some(LifecycleState::PreparingNormal) => {
            let pre_normal = ctx.pre_normal();
            (pre_normal.is_none() || all_hooked(pre_normal, v.pod))
                .then_some(LifecycleState::Normal)
        }
        Some(LifecycleState::PreparingUpdate) => v.updated.then(after_update),
        Some(LifecycleState::Updating) => v.pod.in_place.completed.then(after_update),
        Some(LifecycleState::Updated) => {
            (hook.is_none() || all_hooked(hook, v.pod)).then_some(LifecycleState::Normal)
        }
        _ => None,
    };
    if let Some(state) = next {
        out.actions.push(Action::SetLifecycleState {
            name: v.name().to_string(),
            state,
            mark_pod_not_ready: marks_not_ready(hook),
        });
        out.lifecycle_changed = true;
    }
}
