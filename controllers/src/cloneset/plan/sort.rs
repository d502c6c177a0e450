//! Pod orders: which pods scale-in deletes first (`pod_sorter.go` `ActivePodsWithRanks`) and
//! which pods an update takes first (Kubernetes `ActivePods`, then `priorityStrategy`, then
//! `scatterStrategy`, then `PreparingUpdate` pods; kruise-api.md §1.4).
//!
//! All sorts are stable over the snapshot order, so equal pods keep a deterministic order.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use graft_api::apps::common::{UpdatePriorityStrategy, UpdateScatterTerm};
use graft_api::labels;
use k8s_openapi::jiff::Timestamp;

use super::PodPhase;
use super::view::View;
use crate::podorder::{self, OrderFacts, later_or_zero_first, unassigned_first};

impl OrderFacts for View<'_> {
    fn node_name(&self) -> &str {
        self.pod.node_name.as_deref().unwrap_or("")
    }
    fn phase_rank(&self) -> u8 {
        phase_ordinal(self.pod.phase)
    }
    fn ready(&self) -> bool {
        self.pod.ready
    }
    fn ready_since(&self) -> Option<Timestamp> {
        if self.pod.ready {
            self.pod.ready_since
        } else {
            None
        }
    }
    fn restart_count(&self) -> i32 {
        self.pod.restart_count
    }
    fn created(&self) -> Option<Timestamp> {
        self.pod.creation_timestamp
    }
    fn labels(&self) -> &BTreeMap<String, String> {
        &self.pod.labels
    }
}

fn phase_ordinal(p: PodPhase) -> u8 {
    match p {
        PodPhase::Pending => 0,
        PodPhase::Unknown => 1,
        PodPhase::Running => 2,
        // Inactive pods never reach the sorts; Kubernetes maps unknown phases to 0.
        PodPhase::Succeeded | PodPhase::Failed => 0,
    }
}

fn false_first(a: bool, b: bool) -> Ordering {
    a.cmp(&b)
}

fn ready_time(v: &View<'_>) -> Option<Timestamp> {
    v.ready_since()
}

/// Scale-in victim order (`ActivePodsWithRanks` with the same-node ranker): unassigned <
/// assigned; Pending < Unknown < Running; not available < available; not ready < ready; lower
/// deletion cost; higher rank (more pods of this set on the same node); ready more recently;
/// more restarts; newer. `pods` is the group being sorted (ranks are computed within it).
pub(crate) fn sort_for_scale_in(pods: &mut [View<'_>]) {
    let ranks = same_node_ranks(pods);
    let rank = |v: &View<'_>| ranks.get(v.name()).copied().unwrap_or(0);
    pods.sort_by(|a, b| {
        unassigned_first(a, b)
            .then_with(|| phase_ordinal(a.pod.phase).cmp(&phase_ordinal(b.pod.phase)))
            .then_with(|| false_first(a.available, b.available))
            .then_with(|| false_first(a.pod.ready, b.pod.ready))
            .then_with(|| a.pod.deletion_cost.cmp(&b.pod.deletion_cost))
            .then_with(|| rank(b).cmp(&rank(a)))
            .then_with(|| {
                if a.pod.ready && b.pod.ready {
                    later_or_zero_first(ready_time(a), ready_time(b))
                } else {
                    Ordering::Equal
                }
            })
            .then_with(|| b.pod.restart_count.cmp(&a.pod.restart_count))
            .then_with(|| later_or_zero_first(a.pod.creation_timestamp, b.pod.creation_timestamp))
    });
}

/// `NewSameNodeRanker`: on a node with several pods of the set, all but the "best" pod (last in
/// the plain `ActivePodsWithRanks` order) get ranks n-1, …, 1 so they are deleted first.
fn same_node_ranks(pods: &[View<'_>]) -> BTreeMap<String, usize> {
    let mut by_node: BTreeMap<&str, Vec<&View<'_>>> = BTreeMap::new();
    for p in pods {
        if let Some(node) = p.pod.node_name.as_deref().filter(|n| !n.is_empty()) {
            by_node.entry(node).or_default().push(p);
        }
    }
    let mut ranks = BTreeMap::new();
    for (_, mut on_node) in by_node {
        if on_node.len() <= 1 {
            continue;
        }
        // The plain ActivePodsWithRanks order: no availability function and no ranker.
        on_node.sort_by(|a, b| {
            phase_ordinal(a.pod.phase)
                .cmp(&phase_ordinal(b.pod.phase))
                .then_with(|| false_first(a.pod.ready, b.pod.ready))
                .then_with(|| a.pod.deletion_cost.cmp(&b.pod.deletion_cost))
                .then_with(|| {
                    if a.pod.ready && b.pod.ready {
                        later_or_zero_first(ready_time(a), ready_time(b))
                    } else {
                        Ordering::Equal
                    }
                })
                .then_with(|| b.pod.restart_count.cmp(&a.pod.restart_count))
                .then_with(|| {
                    later_or_zero_first(a.pod.creation_timestamp, b.pod.creation_timestamp)
                })
        });
        let n = on_node.len() - 1;
        for (i, p) in on_node[..n].iter().enumerate() {
            ranks.insert(p.name().to_string(), n - i);
        }
    }
    ranks
}

/// Update order: `ActivePods`, then priority, then scatter ([`podorder::sort_for_update`]),
/// then `PreparingUpdate` pods first. `all` are all active pods (scatter counts label values over
/// them); `wait` are indexes into `all` of the pods waiting to update. Returns the sorted indexes.
pub(crate) fn sort_for_update(
    all: &[View<'_>],
    wait: Vec<usize>,
    priority: Option<&UpdatePriorityStrategy>,
    scatter: Option<&[UpdateScatterTerm]>,
) -> Vec<usize> {
    let mut wait = podorder::sort_for_update(all, wait, priority, scatter);
    wait.sort_by_key(|&i| all[i].state != labels::LIFECYCLE_STATE_PREPARING_UPDATE);
    wait
}
