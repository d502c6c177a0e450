//! The update half of a reconcile (`sync/cloneset_update.go Update`): refresh in-place and
//! lifecycle state of every pod, then pick pods to move to the update revision within the
//! partition and maxUnavailable, and update each in place or by recreation.

use std::time::Duration;

use graft_api::apps::common::LifecycleState;
use graft_api::apps::v1alpha1::cloneset::CloneSetUpdateStrategyType;
use graft_api::labels;

use super::diff;
use super::sort;
use super::view::{Ctx, all_hooked, hooked, marks_not_ready, same_revision, short_hash};
use super::{Action, Refresh};

/// What the update half decided.
#[derive(Debug, Default)]
pub(crate) struct UpdateOutcome {
    /// Actions in order.
    pub actions: Vec<Action>,
    /// Error for the `FailedUpdate` condition (InPlaceOnly and a pod that cannot be updated in
    /// place, or a pod in a lifecycle state that forbids an in-place update).
    pub error: Option<String>,
    /// Why the rollout is not moving.
    pub waiting: Option<String>,
    /// Reconcile again after this long (grace periods, next container batches).
    pub requeue_after: Option<Duration>,
}

pub(crate) fn update(ctx: &Ctx<'_>) -> UpdateOutcome {
    let mut out = UpdateOutcome::default();
    let snap = ctx.snap;

    // 1. Refresh every pod: in-place engine work, lifecycle transitions, pod-template-hash.
    let mut modified = false;
    for p in &ctx.pods {
        match p.pod.in_place.refresh {
            Refresh::Idle => {}
            Refresh::Due => out.actions.push(Action::RefreshInPlace {
                name: p.name().to_string(),
            }),
            Refresh::After(d) => {
                out.requeue_after = Some(out.requeue_after.map_or(d, |r| r.min(d)));
            }
        }
        if let Some(state) = lifecycle_transition(ctx, p) {
            let mark = marks_not_ready(ctx.in_place_hook());
            out.actions.push(Action::SetLifecycleState {
                name: p.name().to_string(),
                state,
                mark_pod_not_ready: mark,
            });
            modified = true;
        }
        if !p.pod.labels.contains_key(labels::POD_TEMPLATE_HASH) {
            // Pods created before OpenKruise v1.1 lack the label; back-fill it.
            let full = p
                .pod
                .labels
                .get(labels::CONTROLLER_REVISION_HASH)
                .map(String::as_str)
                .unwrap_or("");
            out.actions.push(Action::SetPodTemplateHash {
                name: p.name().to_string(),
                hash: short_hash(full).to_string(),
            });
            modified = true;
        }
    }
    if modified {
        return out;
    }

    if ctx.strategy() == CloneSetUpdateStrategyType::OnDelete {
        return out;
    }
    if ctx.paused() {
        if ctx.pods.iter().any(|p| !p.updated) {
            out.waiting = Some("updates paused (updateStrategy.paused: true)".into());
        }
        return out;
    }

    // 2. How many pods to update.
    let limits = diff::limits(&ctx.spec);
    let d = diff::calculate(
        ctx.replicas,
        limits,
        &ctx.pods,
        ctx.exclude_preparing_delete(),
        diff::Counting::Update,
        ctx.rollback_allowed(),
    );
    if d.update == 0 {
        let old = ctx.pods.iter().filter(|p| !p.updated).count();
        if old > 0 && limits.partition > 0 {
            out.waiting = Some(format!(
                "partition reached: {old} pod(s) kept at the current revision (partition {})",
                limits.partition
            ));
        }
        return out;
    }
    // Negative: the partition was raised over updated pods, which go back to the current
    // revision (partition rollback).
    let rollback = d.update < 0;
    let target = if rollback {
        &snap.current_revision
    } else {
        &snap.update_revision
    };

    // 3. Pods that may be updated: those not at the target revision.
    let mut wait = Vec::new();
    let mut in_grace = 0;
    for (i, p) in ctx.pods.iter().enumerate() {
        if p.updated != rollback {
            continue;
        }
        match p.state {
            labels::LIFECYCLE_STATE_PREPARING_DELETE => {}
            labels::LIFECYCLE_STATE_UPDATED => wait.push(i),
            _ if p.pod.in_place.in_grace => in_grace += 1,
            _ => wait.push(i),
        }
    }

    // 4. Order.
    let us = ctx.spec.update_strategy.clone().unwrap_or_default();
    let wait = sort::sort_for_update(
        &ctx.pods,
        wait,
        us.priority_strategy.as_ref(),
        us.scatter_strategy.as_deref(),
    );

    // 5. Cut to the update count and the maxUnavailable budget.
    let mut wait = wait;
    wait.truncate(usize::try_from(d.update.unsigned_abs()).unwrap_or(0));
    // A pod whose sidecars a SidecarSet is upgrading keeps its place and waits until that upgrade
    // is done.
    let sidecar_busy: Vec<&str> = wait
        .iter()
        .map(|&i| &ctx.pods[i])
        .filter(|p| p.pod.in_place.sidecar_upgrading)
        .map(|p| p.name())
        .collect();
    wait.retain(|&i| !ctx.pods[i].pod.in_place.sidecar_upgrading);
    let waiting_count = wait.len();
    // A pod in a SidecarSet upgrade is unavailable for this count even before its readiness
    // drops.
    let down = |p: &super::view::View<'_>| !p.available || p.pod.in_place.sidecar_upgrading;
    let mut unavailable = ctx.pods.iter().filter(|p| down(p)).count();
    let target_unavailable = ctx
        .pods
        .iter()
        .filter(|p| down(p) && at_revision(p, target))
        .count();
    let budget = usize::try_from(d.update_max_unavailable.max(0)).unwrap_or(0);
    let mut can = 0;
    for &i in &wait {
        // Unavailable pods at the target revision (including the ones updated now) stay within
        // maxUnavailable...
        if target_unavailable + can >= budget {
            break;
        }
        // ...and so do unavailable pods overall; updating an already unavailable pod costs
        // nothing.
        if !down(&ctx.pods[i]) {
            if unavailable >= budget {
                break;
            }
            unavailable += 1;
        }
        can += 1;
    }
    wait.truncate(can);
    if can < waiting_count {
        out.waiting = Some(format!(
            "maxUnavailable reached: {unavailable} pod(s) unavailable, maxUnavailable {}{}",
            limits.max_unavailable,
            failures(ctx)
        ));
    } else if wait.is_empty() && in_grace > 0 {
        out.waiting = Some(format!(
            "{in_grace} pod(s) in the in-place update grace period"
        ));
    } else if wait.is_empty() && !sidecar_busy.is_empty() {
        out.waiting = Some(format!(
            "waiting for the SidecarSet upgrade of pod(s) {} to finish",
            sidecar_busy.join(", ")
        ));
    }

    // 6. Update each pod; the first error stops the rest (as OpenKruise returns on error).
    let strategy = ctx.strategy();
    for i in wait {
        let p = &ctx.pods[i];
        let name = p.name().to_string();
        let in_place = matches!(
            strategy,
            CloneSetUpdateStrategyType::InPlaceIfPossible | CloneSetUpdateStrategyType::InPlaceOnly
        );
        if in_place && p.pod.in_place.possible.is_ok() {
            let hook = ctx.in_place_hook();
            match p.lifecycle() {
                None | Some(LifecycleState::Normal) if hooked(hook, p.pod) => {
                    out.actions.push(Action::SetLifecycleState {
                        name,
                        state: LifecycleState::PreparingUpdate,
                        mark_pod_not_ready: marks_not_ready(hook),
                    });
                    continue;
                }
                Some(LifecycleState::PreparingUpdate) if hooked(hook, p.pod) => {
                    if out.waiting.is_none() {
                        out.waiting = Some(format!(
                            "waiting for the inPlaceUpdate hook to release pod {name}"
                        ));
                    }
                    continue;
                }
                None
                | Some(LifecycleState::Normal)
                | Some(LifecycleState::PreparingUpdate)
                | Some(LifecycleState::Updating) => {}
                _ => {
                    out.error = Some(format!(
                        "not allowed to in-place update pod {name} in state {}",
                        p.state
                    ));
                    return out;
                }
            }
            out.actions.push(Action::UpdateInPlace {
                name,
                revision: target.clone(),
            });
            continue;
        }
        if strategy == CloneSetUpdateStrategyType::InPlaceOnly {
            let why = p.pod.in_place.possible.clone().err().unwrap_or_default();
            out.error = Some(format!(
                "find Pod {name} update strategy is InPlaceOnly but can not update in-place: {why}"
            ));
            out.waiting = out.error.clone();
            return out;
        }
        out.actions.push(Action::MarkSpecifiedDelete {
            name,
            revision: target.clone(),
        });
    }
    out
}

/// The pod is at `revision` (`EqualToRevisionHash`).
fn at_revision(p: &super::view::View<'_>, revision: &str) -> bool {
    same_revision(
        p.pod
            .labels
            .get(labels::CONTROLLER_REVISION_HASH)
            .map(String::as_str),
        revision,
    )
}

/// The unavailable pods that the kubelet reports as failing, as `; pod a: why; pod b: why`, so
/// that a rollout stuck on a bad image or a crash loop says so (at most 3 named).
fn failures(ctx: &Ctx<'_>) -> String {
    const SHOWN: usize = 3;
    let failing: Vec<(&str, &str)> = ctx
        .pods
        .iter()
        .filter(|p| !p.available)
        .filter_map(|p| Some((p.name(), p.pod.failure.as_deref()?)))
        .collect();
    let mut out: String = failing
        .iter()
        .take(SHOWN)
        .map(|(name, why)| format!("; pod {name}: {why}"))
        .collect();
    if failing.len() > SHOWN {
        out.push_str(&format!(
            "; and {} more failing pod(s)",
            failing.len() - SHOWN
        ));
    }
    out
}

/// `refreshPodState`'s lifecycle transitions: PreparingNormal → Normal once scheduled (or the
/// preNormal hook is all hooked); PreparingUpdate at the update revision (a rollback) →
/// Updated/Normal; Updating → Updated/Normal once the in-place update completed; Updated →
/// Normal once the inPlaceUpdate hook is all hooked again.
fn lifecycle_transition(ctx: &Ctx<'_>, p: &super::view::View<'_>) -> Option<LifecycleState> {
    let hook = ctx.in_place_hook();
    let after_update = || {
        if ctx.lifecycle().is_some() && !all_hooked(hook, p.pod) {
            LifecycleState::Updated
        } else {
            LifecycleState::Normal
        }
    };
    match p.lifecycle()? {
        LifecycleState::PreparingNormal => {
            let normal = match ctx.pre_normal() {
                None => p.pod.node_name.as_deref().is_some_and(|n| !n.is_empty()),
                Some(h) => all_hooked(Some(h), p.pod),
            };
            normal.then_some(LifecycleState::Normal)
        }
        LifecycleState::PreparingUpdate => p.updated.then(after_update),
        LifecycleState::Updating => p.pod.in_place.completed.then(after_update),
        LifecycleState::Updated => {
            (hook.is_none() || all_hooked(hook, p.pod)).then_some(LifecycleState::Normal)
        }
        LifecycleState::Normal | LifecycleState::PreparingDelete => None,
    }
}
