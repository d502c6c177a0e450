//! Pod orders: which pods scale-in deletes first (`pod_sorter.go` `ActivePodsWithRanks`) and
//! which pods an update takes first (Kubernetes `ActivePods`, then `priorityStrategy`, then
//! `scatterStrategy`, then `PreparingUpdate` pods; kruise-api.md §1.4).
//!
//! All sorts are stable over the snapshot order, so equal pods keep a deterministic order.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use graft_api::apps::common::{UpdatePriorityStrategy, UpdateScatterTerm};
use graft_api::labels;
use graft_api::selector;
use k8s_openapi::jiff::Timestamp;

use super::PodPhase;
use super::view::View;

fn phase_ordinal(p: PodPhase) -> u8 {
    match p {
        PodPhase::Pending => 0,
        PodPhase::Unknown => 1,
        PodPhase::Running => 2,
        // Inactive pods never reach the sorts; Kubernetes maps unknown phases to 0.
        PodPhase::Succeeded | PodPhase::Failed => 0,
    }
}

fn unassigned_first(a: &View<'_>, b: &View<'_>) -> Ordering {
    let (na, nb) = (
        a.pod.node_name.as_deref().unwrap_or(""),
        b.pod.node_name.as_deref().unwrap_or(""),
    );
    if na != nb && (na.is_empty() || nb.is_empty()) {
        // The unassigned pod is "smaller".
        return if na.is_empty() {
            Ordering::Less
        } else {
            Ordering::Greater
        };
    }
    Ordering::Equal
}

fn false_first(a: bool, b: bool) -> Ordering {
    a.cmp(&b)
}

/// Later (or unknown) times first: Kubernetes `afterOrZero`.
fn later_or_zero_first(a: Option<Timestamp>, b: Option<Timestamp>) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(x), Some(y)) => y.cmp(&x),
    }
}

fn ready_time(v: &View<'_>) -> Option<Timestamp> {
    if v.pod.ready { v.pod.ready_since } else { None }
}

/// Kubernetes `ActivePods` order (the default update order): unassigned < assigned,
/// Pending < Unknown < Running, not ready < ready, ready more recently first, more restarts first,
/// newer first.
pub(crate) fn active_pods_order(a: &View<'_>, b: &View<'_>) -> Ordering {
    unassigned_first(a, b)
        .then_with(|| phase_ordinal(a.pod.phase).cmp(&phase_ordinal(b.pod.phase)))
        .then_with(|| false_first(a.pod.ready, b.pod.ready))
        .then_with(|| {
            if a.pod.ready && b.pod.ready {
                later_or_zero_first(ready_time(a), ready_time(b))
            } else {
                Ordering::Equal
            }
        })
        .then_with(|| b.pod.restart_count.cmp(&a.pod.restart_count))
        .then_with(|| later_or_zero_first(a.pod.creation_timestamp, b.pod.creation_timestamp))
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

/// Update order: `ActivePods`, then priority, then scatter, then `PreparingUpdate` pods first.
/// `all` are all active pods (scatter counts label values over them); `wait` are indexes into
/// `all` of the pods waiting to update. Returns the sorted indexes.
pub(crate) fn sort_for_update(
    all: &[View<'_>],
    mut wait: Vec<usize>,
    priority: Option<&UpdatePriorityStrategy>,
    scatter: Option<&[UpdateScatterTerm]>,
) -> Vec<usize> {
    wait.sort_by(|&i, &j| active_pods_order(&all[i], &all[j]));
    if let Some(p) = priority {
        sort_by_priority(all, &mut wait, p);
    }
    if let Some(s) = scatter.filter(|s| !s.is_empty()) {
        wait = scatter_sort(all, wait, s);
    }
    wait.sort_by_key(|&i| all[i].state != labels::LIFECYCLE_STATE_PREPARING_UPDATE);
    wait
}

fn sort_by_priority(all: &[View<'_>], wait: &mut [usize], p: &UpdatePriorityStrategy) {
    let weights = p.weight_priority.as_deref().unwrap_or_default();
    let orders = p.order_priority.as_deref().unwrap_or_default();
    if !weights.is_empty() {
        let weight = |i: usize| -> i64 {
            weights
                .iter()
                .filter(|t| selector::matches(&t.match_selector, &all[i].pod.labels))
                .map(|t| i64::from(t.weight))
                .sum()
        };
        wait.sort_by_key(|&i| std::cmp::Reverse(weight(i)));
    } else if !orders.is_empty() {
        // Level = index of the first ordered key the pod has (-1 when none, which OpenKruise
        // sorts first); within a level, higher trailing integer first.
        let key = |i: usize| -> (i64, std::cmp::Reverse<i64>) {
            for (level, t) in orders.iter().enumerate() {
                if let Some(v) = all[i].pod.labels.get(&t.ordered_key) {
                    return (
                        i64::try_from(level).unwrap_or(i64::MAX),
                        std::cmp::Reverse(trailing_int(v)),
                    );
                }
            }
            (-1, std::cmp::Reverse(0))
        };
        wait.sort_by_key(|&i| key(i));
    }
}

/// The integer at the end of `v` (`getIntFromStringSuffix`), 0 if none.
fn trailing_int(v: &str) -> i64 {
    let digits = v.len() - v.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    v[v.len() - digits..].parse().unwrap_or(0)
}

/// `scatterSort`: spreads pods matching each term across the update order.
fn scatter_sort(all: &[View<'_>], mut wait: Vec<usize>, terms: &[UpdateScatterTerm]) -> Vec<usize> {
    if wait.len() <= 1 {
        return wait;
    }
    for term in scatter_terms(all, &wait, terms) {
        wait = scatter_by_term(all, wait, &term);
    }
    wait
}

/// With several terms, the terms that match the most waiting pods go first.
fn scatter_terms(
    all: &[View<'_>],
    wait: &[usize],
    terms: &[UpdateScatterTerm],
) -> Vec<UpdateScatterTerm> {
    if terms.len() == 1 {
        return terms.to_vec();
    }
    let mut seen: Vec<(UpdateScatterTerm, usize)> = Vec::new();
    for t in terms {
        for &i in wait {
            if all[i].pod.labels.get(&t.key) == Some(&t.value) {
                match seen.iter_mut().find(|(s, _)| s == t) {
                    Some((_, n)) => *n += 1,
                    None => seen.push((t.clone(), 1)),
                }
            }
        }
    }
    seen.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    seen.into_iter().map(|(t, _)| t).collect()
}

#[derive(Debug, Default)]
struct ScatterGroup {
    groups: usize,
    matched_size: usize,
    unmatched_size: usize,
    unmatched_remainder: usize,
}

fn scatter_group(matched: usize, unmatched: usize) -> ScatterGroup {
    let groups = matched.min(unmatched).max(1);
    let round = |a: usize| ((a as f64) / (groups as f64)).round() as usize;
    ScatterGroup {
        groups,
        matched_size: round(matched).max(1),
        unmatched_size: round(unmatched).max(1),
        unmatched_remainder: 0,
    }
}

fn group_by_density(
    total_matched: usize,
    total_unmatched: usize,
    update_matched: usize,
    update_unmatched: usize,
) -> ScatterGroup {
    let total = scatter_group(total_matched, total_unmatched);
    let update = scatter_group(update_matched, update_unmatched);
    if (total_unmatched as f32) / (total_matched.max(1) as f32)
        >= (update_unmatched as f32) / (update_matched.max(1) as f32)
    {
        return update;
    }
    let mut g = ScatterGroup {
        matched_size: total.matched_size,
        unmatched_size: total.unmatched_size,
        ..ScatterGroup::default()
    };
    g.groups = (update_matched / g.matched_size).min(update_unmatched / g.unmatched_size);
    g.unmatched_remainder = update_unmatched - g.groups * g.unmatched_size;
    g
}

fn migrate(src: &mut Vec<usize>, dst: &mut Vec<usize>, size: usize) {
    let n = size.min(src.len());
    dst.extend(src.drain(..n));
}

fn scatter_by_term(all: &[View<'_>], wait: Vec<usize>, term: &UpdateScatterTerm) -> Vec<usize> {
    let matches = |i: usize| all[i].pod.labels.get(&term.key) == Some(&term.value);
    let (mut matched, mut unmatched): (Vec<usize>, Vec<usize>) =
        wait.iter().partition(|&&i| matches(i));
    if matched.len() <= 1 || unmatched.len() <= 1 {
        return wait;
    }
    let total_matched = (0..all.len()).filter(|&i| matches(i)).count();
    let total_unmatched = all.len() - total_matched;
    // The last matched pod goes to the very end.
    let last = matched.pop();
    let g = group_by_density(
        total_matched.saturating_sub(1),
        total_unmatched,
        matched.len(),
        unmatched.len(),
    );
    let mut out = Vec::with_capacity(wait.len());
    if g.unmatched_remainder > 0 {
        migrate(&mut unmatched, &mut out, g.unmatched_remainder);
    }
    for _ in 0..g.groups {
        migrate(&mut matched, &mut out, g.matched_size);
        migrate(&mut unmatched, &mut out, g.unmatched_size);
    }
    out.append(&mut matched);
    out.append(&mut unmatched);
    out.extend(last);
    out
}
