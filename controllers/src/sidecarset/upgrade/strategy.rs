//! Which pods get their sidecars upgraded in this round (kruise `GetNextUpgradePods` and
//! `calculateUpgradeCount` in `sidecarset_strategy.go`).

use graft_api::apps::v1beta1::sidecarset::{DEFAULT_MAX_UNAVAILABLE, SidecarSet};
use graft_api::intstr;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::facts::PodFacts;
use super::order::sort_for_upgrade;

/// The pods of one round, as indexes into the matched pods.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NextUpgrade {
    /// Pods to upgrade now, in upgrade order.
    pub upgrade: Vec<usize>,
    /// Pods not updated and selected whose change is more than images: never upgraded in place
    /// (condition `SidecarSetUpgradable=False`, event `NotUpgradablePods`).
    pub not_upgradable: Vec<usize>,
    /// Pods waiting to be upgraded after this round (kept back by partition or maxUnavailable),
    /// in upgrade order.
    pub waiting: Vec<usize>,
    /// Pods that would be upgraded but are in a workload's in-place update; left alone.
    pub in_place_updating: Vec<usize>,
    /// `updateStrategy.partition` as a number of pods.
    pub partition: usize,
    /// `updateStrategy.maxUnavailable` as a number of pods.
    pub max_unavailable: usize,
    /// Pods counted as unavailable before this round: updated but not consistent or not ready,
    /// plus pods in a workload's in-place update or not ready after one.
    pub unavailable: usize,
}

/// kruise `GetNextUpgradePods` over the matched pods (`pods[i]` with `facts[i]`):
/// 1. candidates are pods not updated and selected by `updateStrategy.selector`; a candidate
///    whose without-image hash differs is not upgradable; one with a sidecar upgrade still in
///    flight waits; graft also leaves out pods in a workload's in-place update;
/// 2. candidates are sorted (`ActivePods`, priority, scatter);
/// 3. the last `partition` candidates stay (partition of all matched pods, rounded up, see
///    [`intstr::partition_replicas`]);
/// 4. from the front, a candidate that is not ready is always taken; a ready one only while the
///    unavailable count is below `maxUnavailable` (default 1, percent of matched pods rounded
///    up) — the first ready one over the budget ends the round.
///
/// Unavailable = updated pods that are not consistent or not ready (kruise) plus pods in a
/// workload's in-place update or not ready after one (graft: so while a CloneSet and a SidecarSet
/// roll out on the same pods, neither's maxUnavailable is exceeded; kruise counts neither).
pub fn next_upgrade_pods(set: &SidecarSet, pods: &[&Pod], facts: &[PodFacts]) -> NextUpgrade {
    let strategy = set.spec.update_strategy.clone().unwrap_or_default();
    let mut next = NextUpgrade::default();
    let mut wait = Vec::new();
    for (i, f) in facts.iter().enumerate() {
        if f.updated || !f.selected {
            continue;
        }
        if !f.upgradable {
            next.not_upgradable.push(i);
        } else if f.in_place_updating {
            next.in_place_updating.push(i);
        } else if !f.sidecar_upgrade_in_flight {
            wait.push(i);
        }
    }
    let mut wait = sort_for_upgrade(&strategy, pods, wait);

    let total = i32::try_from(pods.len()).unwrap_or(i32::MAX);
    // kruise ignores a value it cannot parse (the API server's schema refuses those).
    next.partition = strategy
        .partition
        .as_ref()
        .map(|p| intstr::partition_replicas(Some(p), total).unwrap_or(0))
        .map_or(0, |p| usize::try_from(p).unwrap_or(0));
    next.max_unavailable = usize::try_from(
        intstr::scaled_value(
            strategy
                .max_unavailable
                .as_ref()
                .unwrap_or(&IntOrString::Int(DEFAULT_MAX_UNAVAILABLE)),
            total,
            true,
        )
        .unwrap_or(0),
    )
    .unwrap_or(0);
    next.unavailable = facts
        .iter()
        .filter(|f| {
            (f.updated && (!f.consistent || !f.ready))
                || f.in_place_updating
                || f.not_ready_after_workload_update
        })
        .count();

    let eligible = wait.len().saturating_sub(next.partition);
    let mut unavailable = next.unavailable;
    let mut take = 0;
    for &i in &wait[..eligible] {
        if !facts[i].ready {
            take += 1;
            continue;
        }
        if unavailable >= next.max_unavailable {
            break;
        }
        unavailable += 1;
        take += 1;
    }
    next.waiting = wait.split_off(take);
    next.upgrade = wait;
    next
}
