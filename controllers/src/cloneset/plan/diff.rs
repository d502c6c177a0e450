//! `calculateDiffsWithExpectation`, OpenKruise's "most important algorithm" (kruise-api.md §2.5):
//! from replicas, partition, maxSurge, maxUnavailable, scaleStrategy.maxUnavailable and the pods'
//! revisions and availability, how many pods to create, delete and update this round.

use graft_api::apps::v1alpha1::cloneset::{
    CloneSetSpec, CloneSetUpdateStrategyType, DEFAULT_MAX_UNAVAILABLE,
};
use graft_api::intstr;
use graft_api::labels;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::view::View;

/// The numbers one reconcile works with. All counts are pods.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Diffs {
    /// Pods to create (before the scale-up limit).
    pub scale_up: i32,
    /// How many of the created pods should be at the current (old) revision; may exceed
    /// `scale_up`.
    pub scale_up_old_revision: i32,
    /// Pods to delete by scale-in, not counting pods already specified for deletion.
    pub scale_down: i32,
    /// How many of the deleted pods should be old-revision pods; may exceed `scale_down`.
    pub scale_down_old_revision: i32,
    /// Creations allowed by `scaleStrategy.maxUnavailable`.
    pub scale_up_limit: i32,
    /// Ready pods that may be deleted (limited by `updateStrategy.maxUnavailable`).
    pub delete_ready_limit: i32,
    /// Pods temporarily above `replicas`.
    pub use_surge: i32,
    /// The part of `use_surge` at the old revision.
    pub use_surge_old_revision: i32,
    /// Pods to update: positive towards the update revision, negative towards the current one
    /// (partition rollback: the partition was raised over pods already updated), 0 for none.
    pub update: i32,
    /// Most pods that may be unavailable while updating.
    pub update_max_unavailable: i32,
}

/// The resolved integer limits (`partition`, `maxSurge`, `maxUnavailable`,
/// `scaleStrategy.maxUnavailable`) for `replicas`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Pods kept at old revisions.
    pub partition: i32,
    /// Extra pods allowed during the update (0 while paused).
    pub max_surge: i32,
    /// Pods allowed to be unavailable during the update.
    pub max_unavailable: i32,
    /// Unavailable pods above which scale-up stops.
    pub scale_max_unavailable: i32,
}

/// Resolves the IntOrString limits as OpenKruise does; an invalid value counts as 0 (the
/// validating admission rejects such values, so this only guards against bad stored objects).
pub fn limits(spec: &CloneSetSpec) -> Limits {
    let replicas = spec.replicas();
    let us = spec.update_strategy.clone().unwrap_or_default();
    let default_mu = IntOrString::String(DEFAULT_MAX_UNAVAILABLE.to_string());
    let (partition, max_surge, max_unavailable) = if us.type_
        == Some(CloneSetUpdateStrategyType::OnDelete)
    {
        // OnDelete has no rollingUpdate section in v1beta1: no partition, no surge, and the
        // default maxUnavailable rounded down.
        let mu = intstr::scaled_value(&default_mu, replicas, false).unwrap_or(0);
        (0, 0, mu)
    } else {
        let partition = intstr::partition_replicas(us.partition.as_ref(), replicas).unwrap_or(0);
        let mut max_surge = us
            .max_surge
            .as_ref()
            .and_then(|v| intstr::scaled_value(v, replicas, true).ok())
            .unwrap_or(0);
        if us.paused == Some(true) {
            max_surge = 0;
        }
        let mu = intstr::scaled_value(
            us.max_unavailable.as_ref().unwrap_or(&default_mu),
            replicas,
            max_surge == 0,
        )
        .unwrap_or(0);
        (partition, max_surge, mu)
    };
    let scale_max_unavailable = spec
        .scale_strategy
        .as_ref()
        .and_then(|s| s.max_unavailable.as_ref())
        .map(|v| intstr::scaled_value(v, replicas, true).unwrap_or(0))
        .unwrap_or(i32::MAX);
    Limits {
        partition,
        max_surge,
        max_unavailable,
        scale_max_unavailable,
    }
}

/// Which pods count as updated: the scale half counts `PreparingUpdate` pods as updated
/// (`PreparingUpdateAsUpdate`, `revision.IsPodUpdate`), the update half counts only pods at the
/// update revision (`EqualToRevisionHash`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Counting {
    /// For scaling: `PreparingUpdate` pods are updated pods.
    Scale,
    /// For updating: only the revision label counts.
    Update,
}

/// `calculateDiffsWithExpectation`. `exclude_preparing_delete`: PreparingDelete pods do not
/// count as existing replicas when scaling. `rollback`: the current and update revisions differ,
/// so with `CloneSetPartitionRollback` (on, as in OpenKruise with every gate on) a partition
/// raised over updated pods moves them back to the current revision (negative `update`).
pub(crate) fn calculate(
    replicas: i32,
    l: Limits,
    pods: &[View<'_>],
    exclude_preparing_delete: bool,
    counting: Counting,
    rollback: bool,
) -> Diffs {
    let mut res = Diffs::default();
    let (mut new_count, mut new_active, mut old_count, mut old_active) = (0, 0, 0, 0);
    let (mut unavailable_new, mut unavailable_old) = (0, 0);
    let (mut to_delete_new, mut to_delete_old) = (0, 0);
    let (mut pre_deleting_new, mut pre_deleting_old) = (0, 0);
    for p in pods {
        let preparing_delete = p.state == labels::LIFECYCLE_STATE_PREPARING_DELETE;
        let updated = match counting {
            Counting::Scale => p.updated_for_scale(),
            Counting::Update => p.updated,
        };
        let (count, active, unavailable, to_delete, pre_deleting) = if updated {
            (
                &mut new_count,
                &mut new_active,
                &mut unavailable_new,
                &mut to_delete_new,
                &mut pre_deleting_new,
            )
        } else {
            (
                &mut old_count,
                &mut old_active,
                &mut unavailable_old,
                &mut to_delete_old,
                &mut pre_deleting_old,
            )
        };
        *count += 1;
        if preparing_delete {
            *pre_deleting += 1;
        } else {
            *active += 1;
            if p.to_delete {
                *to_delete += 1;
            } else if !p.available {
                *unavailable += 1;
            }
        }
    }
    let total = i32::try_from(pods.len()).unwrap_or(i32::MAX);

    // With one revision (or without partition rollback) pods only move towards the update
    // revision; otherwise a raised partition rolls updated pods back (kruise #261, the
    // `CloneSetPartitionRollback` gate).
    let (mut update_old_diff, mut update_new_diff) = (
        old_active - l.partition,
        new_active - (replicas - l.partition),
    );
    if !rollback {
        update_old_diff = update_old_diff.max(0);
        update_new_diff = update_new_diff.min(0);
    }
    let total_unavailable = pre_deleting_new + pre_deleting_old + unavailable_new + unavailable_old;

    if l.max_surge > 0 {
        // Surge to keep maxUnavailable while replacing pods specified for deletion.
        let (mut scale_surge, mut scale_old_surge) = (0, 0);
        let to_delete = to_delete_new + to_delete_old;
        if to_delete > 0 {
            scale_surge = (total_unavailable + to_delete - l.max_unavailable)
                .max(0)
                .min(to_delete);
            if scale_surge > to_delete_new {
                scale_old_surge = scale_surge - to_delete_new;
            }
        }
        // Surge for moving pods between revisions (the two diffs have opposite signs).
        let (mut update_surge, mut update_old_surge) = (0, 0);
        let opposite = (update_old_diff > 0 && update_new_diff < 0)
            || (update_old_diff < 0 && update_new_diff > 0);
        if opposite {
            if update_old_diff.abs() <= update_new_diff.abs() {
                update_surge = update_old_diff.abs();
                if update_old_diff < 0 {
                    update_old_surge = update_surge;
                }
            } else {
                update_surge = update_new_diff.abs();
                if update_new_diff > 0 {
                    update_old_surge = update_surge;
                }
            }
        }
        // Scale and update never happen in the same reconcile, so only one surge applies.
        if scale_surge >= update_surge {
            res.use_surge = l.max_surge.min(scale_surge);
            res.use_surge_old_revision = res.use_surge.min(scale_old_surge);
        } else {
            res.use_surge = l.max_surge.min(update_surge);
            res.use_surge_old_revision = res.use_surge.min(update_old_surge);
        }
    }

    let (mut current_total, mut current_total_old) = (total, old_count);
    if exclude_preparing_delete {
        current_total -= pre_deleting_old + pre_deleting_new;
        current_total_old -= pre_deleting_old;
    }
    let expected_total = replicas.saturating_add(res.use_surge);
    let expected_total_old = l.partition + res.use_surge_old_revision;

    let up = expected_total - current_total;
    if up > 0 {
        res.scale_up = up;
        res.scale_up_old_revision = (expected_total_old - current_total_old).max(0);
        res.scale_up_limit = up.min(
            l.scale_max_unavailable
                .saturating_sub(total_unavailable)
                .max(0),
        );
    }
    // Pods already specified for deletion are not chosen again by scale-in.
    let down = current_total - to_delete_old - to_delete_new - expected_total;
    if down > 0 {
        res.scale_down = down;
        res.scale_down_old_revision =
            (current_total_old - to_delete_old - expected_total_old).max(0);
    }
    if to_delete_new > 0 || to_delete_old > 0 || res.scale_down > 0 {
        res.delete_ready_limit =
            (l.max_unavailable + (total - replicas) - total_unavailable).max(0);
    }

    res.update = if update_old_diff.abs() <= update_new_diff.abs() {
        update_old_diff
    } else {
        -update_new_diff
    };
    if res.update != 0 {
        res.update_max_unavailable = l.max_unavailable + total - replicas;
    }
    res
}
