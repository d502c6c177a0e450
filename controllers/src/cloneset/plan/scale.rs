//! The scale half of a reconcile (`sync/cloneset_scale.go Scale`): cancel unneeded
//! PreparingDelete, create, delete PreparingDelete pods, delete specified pods, scale in. Each
//! step that plans something ends the scale half; the executor's expectations make the next
//! reconcile wait until the informer has seen the result.

use graft_api::apps::common::LifecycleState;
use graft_api::labels;

use super::diff::{self, Diffs};
use super::sort;
use super::view::{Ctx, View, hooked, marks_not_ready};
use super::{Action, EventType, PlannedEvent};

/// What the scale half decided.
#[derive(Debug, Default)]
pub(crate) struct ScaleOutcome {
    /// Actions; non-empty means "scaling": the update half is skipped.
    pub actions: Vec<Action>,
    /// Plan-level events (`ScaleUpLimited`).
    pub events: Vec<PlannedEvent>,
    /// Why scaling could not proceed, if it is stuck.
    pub waiting: Option<String>,
    /// Instance ids ran out: requeue.
    pub out_of_ids: bool,
}

pub(crate) fn scale(ctx: &Ctx<'_>, reusable_ids: &[String]) -> ScaleOutcome {
    let mut out = ScaleOutcome::default();
    let pods = &ctx.pods;

    // 1. Pods specified for deletion and pods in PreparingDelete.
    let specified: Vec<&View<'_>> = pods.iter().filter(|p| p.to_delete).collect();
    let pre_delete: Vec<&View<'_>> = pods
        .iter()
        .filter(|p| p.state == labels::LIFECYCLE_STATE_PREPARING_DELETE)
        .collect();
    let num_to_delete = pods
        .iter()
        .filter(|p| p.to_delete || p.state == labels::LIFECYCLE_STATE_PREPARING_DELETE)
        .count();
    out.actions = manage_preparing_delete(ctx, &pre_delete, num_to_delete);
    if !out.actions.is_empty() {
        return out;
    }

    // 2. The numbers.
    let d = diff::calculate(
        ctx.replicas,
        diff::limits(&ctx.spec),
        pods,
        ctx.exclude_preparing_delete(),
        diff::Counting::Scale,
        ctx.rollback_allowed(),
    );
    if d.scale_up > d.scale_up_limit {
        out.events.push(PlannedEvent {
            type_: EventType::Warning,
            reason: "ScaleUpLimited".into(),
            message: format!(
                "scaleUp is limited because of scaleStrategy.maxUnavailable, limit: {}",
                d.scale_up_limit
            ),
        });
        out.waiting = Some(format!(
            "scale-up limited by scaleStrategy.maxUnavailable: {} of {} pods may be created now",
            d.scale_up_limit, d.scale_up
        ));
    }

    // 3. Scale out: old-revision pods first when the partition needs them.
    if d.scale_up > 0 {
        out.actions = create_pods(ctx, &d, reusable_ids, &mut out.out_of_ids);
        if !out.actions.is_empty() {
            return out;
        }
    }

    // 4. Pods already in PreparingDelete: delete once their hook is released.
    if !pre_delete.is_empty() {
        out.actions = delete_pods(ctx, &pre_delete, &mut out.waiting);
        if !out.actions.is_empty() {
            return out;
        }
    }

    // 5. Specified deletions; ready pods only within the maxUnavailable budget.
    let mut delete_ready_limit = d.delete_ready_limit;
    let specified: Vec<&View<'_>> = specified
        .into_iter()
        .filter(|p| p.state != labels::LIFECYCLE_STATE_PREPARING_DELETE)
        .collect();
    if !specified.is_empty() {
        let can = within_ready_limit(&specified, &mut delete_ready_limit);
        if can.len() < specified.len() {
            out.waiting = Some(format!(
                "maxUnavailable reached: {} pod(s) specified for deletion wait for others to become available",
                specified.len() - can.len()
            ));
        }
        out.actions = delete_pods(ctx, &can, &mut out.waiting);
        if !out.actions.is_empty() {
            return out;
        }
    }

    // 6. Scale in, old-revision pods first, in pod_sorter order.
    if d.scale_down > 0 {
        if num_to_delete > 0 {
            // Pending specified deletions first; ordinary scale-in waits for them.
            return out;
        }
        let victims = choose_pods_to_delete(ctx, d.scale_down, d.scale_down_old_revision);
        let refs: Vec<&View<'_>> = victims.iter().collect();
        let can = within_ready_limit(&refs, &mut delete_ready_limit);
        if can.len() < refs.len() {
            out.waiting = Some(format!(
                "maxUnavailable reached: scale-in of {} ready pod(s) waits",
                refs.len() - can.len()
            ));
        }
        out.actions = delete_pods(ctx, &can, &mut out.waiting);
    }
    out
}

/// `managePreparingDelete`: when replicas went up again, pods in PreparingDelete that are not
/// specified for deletion go back to PreparingNormal (never with a markPodNotReady hook: such a
/// pod may already have lost traffic).
fn manage_preparing_delete(
    ctx: &Ctx<'_>,
    pre_delete: &[&View<'_>],
    num_to_delete: usize,
) -> Vec<Action> {
    let mut actions = Vec::new();
    if marks_not_ready(ctx.pre_delete()) || marks_not_ready(ctx.in_place_hook()) {
        return actions;
    }
    let total = i64::try_from(ctx.pods.len()).unwrap_or(i64::MAX);
    let mut diff = i64::from(ctx.replicas) - total + i64::try_from(num_to_delete).unwrap_or(0);
    for p in pre_delete {
        if diff <= 0 {
            break;
        }
        if p.to_delete {
            continue;
        }
        actions.push(Action::SetLifecycleState {
            name: p.name().to_string(),
            state: LifecycleState::PreparingNormal,
            mark_pod_not_ready: false,
        });
        diff -= 1;
    }
    actions
}

fn create_pods(
    ctx: &Ctx<'_>,
    d: &Diffs,
    reusable_ids: &[String],
    out_of_ids: &mut bool,
) -> Vec<Action> {
    let total = usize::try_from(d.scale_up_limit).unwrap_or(0);
    let old = usize::try_from(d.scale_up_old_revision)
        .unwrap_or(0)
        .min(total);
    let snap = ctx.snap;
    let mut used: Vec<&str> = snap
        .pods
        .iter()
        .filter_map(|p| {
            p.labels
                .get(labels::CLONESET_INSTANCE_ID)
                .map(String::as_str)
        })
        .chain(snap.pvc_instance_ids.iter().map(String::as_str))
        .collect();
    let mut reuse = reusable_ids.iter();
    let mut fresh = snap.fresh_instance_ids.iter();
    let mut actions = Vec::with_capacity(total);
    for i in 0..total {
        let (id, reuse_pvcs) = if let Some(id) = reuse.next() {
            (id.clone(), true)
        } else if let Some(id) = fresh
            .by_ref()
            .find(|id| !id.is_empty() && !used.contains(&id.as_str()))
        {
            used.push(id);
            (id.clone(), false)
        } else {
            *out_of_ids = true;
            break;
        };
        let revision = if i < old {
            &snap.current_revision
        } else {
            &snap.update_revision
        };
        actions.push(Action::CreatePod {
            instance_id: id,
            revision: revision.clone(),
            reuse_pvcs,
        });
    }
    actions
}

/// `deletePods`: pods with a preDelete hook go to PreparingDelete (once) instead.
fn delete_pods(ctx: &Ctx<'_>, pods: &[&View<'_>], waiting: &mut Option<String>) -> Vec<Action> {
    let hook = ctx.pre_delete();
    let mut actions = Vec::new();
    let mut held = Vec::new();
    for p in pods {
        if hooked(hook, p.pod) {
            if p.state == labels::LIFECYCLE_STATE_PREPARING_DELETE {
                held.push(p.name());
            } else {
                actions.push(Action::SetLifecycleState {
                    name: p.name().to_string(),
                    state: LifecycleState::PreparingDelete,
                    mark_pod_not_ready: marks_not_ready(hook),
                });
            }
            continue;
        }
        actions.push(Action::DeletePod {
            name: p.name().to_string(),
            instance_id: p.pod.labels.get(labels::CLONESET_INSTANCE_ID).cloned(),
        });
    }
    if !held.is_empty() && waiting.is_none() {
        *waiting = Some(format!(
            "waiting for the preDelete hook to release pod(s) {}",
            held.join(", ")
        ));
    }
    actions
}

fn within_ready_limit<'a, 'b>(pods: &[&'a View<'b>], limit: &mut i32) -> Vec<&'a View<'b>> {
    let mut out = Vec::with_capacity(pods.len());
    for p in pods {
        if !p.ready_now {
            out.push(*p);
        } else if *limit > 0 {
            out.push(*p);
            *limit -= 1;
        }
    }
    out
}

/// `choosePodsToDelete`: `total` victims, `old_diff` of them from old-revision pods first.
fn choose_pods_to_delete<'a>(ctx: &Ctx<'a>, total: i32, old_diff: i32) -> Vec<View<'a>> {
    let (updated, not_updated): (Vec<View<'a>>, Vec<View<'a>>) = ctx
        .pods
        .iter()
        .cloned()
        .partition(|p| p.updated_for_scale());
    let choose = |mut group: Vec<View<'a>>, n: i32| -> Vec<View<'a>> {
        let n = usize::try_from(n).unwrap_or(0);
        if n < group.len() {
            sort::sort_for_scale_in(&mut group);
        }
        group.truncate(n);
        group
    };
    if old_diff >= total {
        choose(not_updated, total)
    } else if old_diff > 0 {
        let mut v = choose(not_updated, old_diff);
        v.extend(choose(updated, total - old_diff));
        v
    } else {
        choose(updated, total)
    }
}
