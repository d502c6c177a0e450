//! The order in which pods get their sidecars upgraded (kruise `SortUpdateIndexes` in
//! `sidecarset_strategy.go`): Kubernetes `ActivePods`, then `priorityStrategy`, then
//! `scatterStrategy` with `value: "*"` expanded to every value the matched pods carry
//! (`parseUpdateScatterTerms`).
//!
//! The CloneSet has the same priority and scatter rules in `cloneset/plan/sort.rs`, but private
//! to the CloneSet planner and typed on its pod view, and a controller module must not import
//! another; this is a port over plain [`Pod`]s. Both should move to one shared pod-order module.

use std::cmp::Ordering;

use graft_api::apps::common::{UpdatePriorityStrategy, UpdateScatterTerm};
use graft_api::apps::v1beta1::sidecarset::SidecarSetUpdateStrategy;
use graft_api::selector;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;

use super::facts::{condition_true, container_statuses, phase, pod_labels};

/// Sorts `wait` (indexes into `pods`, the matched pods) into upgrade order.
pub fn sort_for_upgrade(
    strategy: &SidecarSetUpdateStrategy,
    pods: &[&Pod],
    mut wait: Vec<usize>,
) -> Vec<usize> {
    wait.sort_by(|&i, &j| active_pods_order(pods[i], pods[j]));
    if let Some(p) = &strategy.priority_strategy {
        sort_by_priority(pods, &mut wait, p);
    }
    if let Some(terms) = strategy
        .scatter_strategy
        .as_deref()
        .filter(|t| !t.is_empty())
    {
        let terms = expand_scatter_terms(terms, pods);
        wait = scatter_sort(pods, wait, &terms);
    }
    wait
}

fn phase_ordinal(pod: &Pod) -> u8 {
    match phase(pod) {
        "Pending" => 0,
        "Unknown" => 1,
        "Running" => 2,
        _ => 0,
    }
}

fn ready_since(pod: &Pod) -> Option<Timestamp> {
    crate::inplace::pod_condition(pod, "Ready")
        .filter(|c| c.status == "True")
        .and_then(|c| c.last_transition_time.as_ref())
        .map(|t| t.0)
}

fn restarts(pod: &Pod) -> i32 {
    container_statuses(pod)
        .iter()
        .map(|c| c.restart_count)
        .max()
        .unwrap_or(0)
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

/// Kubernetes `ActivePods`: unassigned < assigned, Pending < Unknown < Running, not ready <
/// ready, ready more recently first, more restarts first, newer first.
fn active_pods_order(a: &Pod, b: &Pod) -> Ordering {
    let node = |p: &Pod| {
        p.spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_default()
    };
    let (na, nb) = (node(a), node(b));
    let assigned = if na != nb && (na.is_empty() || nb.is_empty()) {
        (!na.is_empty()).cmp(&!nb.is_empty())
    } else {
        Ordering::Equal
    };
    let (ra, rb) = (condition_true(a, "Ready"), condition_true(b, "Ready"));
    assigned
        .then_with(|| phase_ordinal(a).cmp(&phase_ordinal(b)))
        .then_with(|| ra.cmp(&rb))
        .then_with(|| {
            if ra && rb {
                later_or_zero_first(ready_since(a), ready_since(b))
            } else {
                Ordering::Equal
            }
        })
        .then_with(|| restarts(b).cmp(&restarts(a)))
        .then_with(|| {
            later_or_zero_first(
                a.metadata.creation_timestamp.as_ref().map(|t| t.0),
                b.metadata.creation_timestamp.as_ref().map(|t| t.0),
            )
        })
}

/// kruise `prioritySort`: by the sum of matching weights (higher first), else by the first
/// ordered key a pod has (pods with none first) and the integer its value ends with (higher
/// first). Stable.
fn sort_by_priority(pods: &[&Pod], wait: &mut [usize], p: &UpdatePriorityStrategy) {
    let weights = p.weight_priority.as_deref().unwrap_or_default();
    let orders = p.order_priority.as_deref().unwrap_or_default();
    if !weights.is_empty() {
        let weight = |i: usize| -> i64 {
            weights
                .iter()
                .filter(|t| selector::matches(&t.match_selector, pod_labels(pods[i])))
                .map(|t| i64::from(t.weight))
                .sum()
        };
        wait.sort_by_key(|&i| std::cmp::Reverse(weight(i)));
    } else if !orders.is_empty() {
        let key = |i: usize| -> (i64, std::cmp::Reverse<i64>) {
            for (level, t) in orders.iter().enumerate() {
                if let Some(v) = pod_labels(pods[i]).get(&t.ordered_key) {
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

fn trailing_int(v: &str) -> i64 {
    let digits = v.len() - v.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    v[v.len() - digits..].parse().unwrap_or(0)
}

/// kruise `parseUpdateScatterTerms`: `key=*` becomes one term per value of `key` among the pods
/// (in pod order); duplicates are dropped.
pub fn expand_scatter_terms(terms: &[UpdateScatterTerm], pods: &[&Pod]) -> Vec<UpdateScatterTerm> {
    let mut out: Vec<UpdateScatterTerm> = Vec::new();
    let mut push = |t: UpdateScatterTerm| {
        if !out.iter().any(|o| o.key == t.key && o.value == t.value) {
            out.push(t);
        }
    };
    for t in terms {
        if t.value != "*" {
            push(t.clone());
            continue;
        }
        for pod in pods {
            if let Some(v) = pod_labels(pod).get(&t.key) {
                push(UpdateScatterTerm {
                    key: t.key.clone(),
                    value: v.clone(),
                });
            }
        }
    }
    out
}

fn term_matches(pod: &Pod, t: &UpdateScatterTerm) -> bool {
    pod_labels(pod).get(&t.key) == Some(&t.value)
}

/// kruise `scatterSort`: spreads the pods matching each term across the order.
fn scatter_sort(pods: &[&Pod], mut wait: Vec<usize>, terms: &[UpdateScatterTerm]) -> Vec<usize> {
    if wait.len() <= 1 {
        return wait;
    }
    let terms = if terms.len() == 1 {
        terms.to_vec()
    } else {
        // Terms matching more waiting pods go first.
        let mut counted: Vec<(UpdateScatterTerm, usize)> = Vec::new();
        for t in terms {
            for &i in &wait {
                if term_matches(pods[i], t) {
                    match counted.iter_mut().find(|(c, _)| c == t) {
                        Some((_, n)) => *n += 1,
                        None => counted.push((t.clone(), 1)),
                    }
                }
            }
        }
        counted.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
        counted.into_iter().map(|(t, _)| t).collect()
    };
    for t in &terms {
        wait = scatter_by_term(pods, wait, t);
    }
    wait
}

struct Group {
    count: usize,
    matched: usize,
    unmatched: usize,
    unmatched_remainder: usize,
}

fn group(matched: usize, unmatched: usize) -> Group {
    let count = matched.min(unmatched).max(1);
    let round = |n: usize| ((n as f64) / (count as f64)).round() as usize;
    Group {
        count,
        matched: round(matched).max(1),
        unmatched: round(unmatched).max(1),
        unmatched_remainder: 0,
    }
}

fn group_by_density(total_m: usize, total_u: usize, update_m: usize, update_u: usize) -> Group {
    let total = group(total_m, total_u);
    let update = group(update_m, update_u);
    if (total_u as f32) / (total_m.max(1) as f32) >= (update_u as f32) / (update_m.max(1) as f32) {
        return update;
    }
    let count = (update_m / total.matched).min(update_u / total.unmatched);
    Group {
        count,
        unmatched_remainder: update_u - count * total.unmatched,
        ..total
    }
}

fn scatter_by_term(pods: &[&Pod], wait: Vec<usize>, t: &UpdateScatterTerm) -> Vec<usize> {
    let (mut matched, mut unmatched): (Vec<usize>, Vec<usize>) =
        wait.iter().partition(|&&i| term_matches(pods[i], t));
    if matched.len() <= 1 || unmatched.len() <= 1 {
        return wait;
    }
    let total_m = pods.iter().filter(|p| term_matches(p, t)).count();
    let total_u = pods.len() - total_m;
    let last = matched.pop();
    let g = group_by_density(
        total_m.saturating_sub(1),
        total_u,
        matched.len(),
        unmatched.len(),
    );
    let mut out = Vec::with_capacity(wait.len());
    let take = |src: &mut Vec<usize>, out: &mut Vec<usize>, n: usize| {
        let n = n.min(src.len());
        out.extend(src.drain(..n));
    };
    take(&mut unmatched, &mut out, g.unmatched_remainder);
    for _ in 0..g.count {
        take(&mut matched, &mut out, g.matched);
        take(&mut unmatched, &mut out, g.unmatched);
    }
    out.append(&mut matched);
    out.append(&mut unmatched);
    out.extend(last);
    out
}
