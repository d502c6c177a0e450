//! The update order of pods shared by the workload controllers (kruise-api.md §1.4): Kubernetes
//! `ActivePods`, then `priorityStrategy` (kruise `prioritySort`), then `scatterStrategy` (kruise
//! `scatterSort`). Each controller reads its pods through [`OrderFacts`], so the CloneSet's pod
//! view and the SidecarSet's plain pods are ordered by the same code.
//!
//! All sorts are stable over the input order, so equal pods keep a deterministic order.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use graft_api::apps::common::{UpdatePriorityStrategy, UpdateScatterTerm};
use graft_api::selector;
use k8s_openapi::jiff::Timestamp;

/// What the orders read of a pod.
pub trait OrderFacts {
    /// The node it is bound to, `""` when unscheduled.
    fn node_name(&self) -> &str;
    /// Its phase as Kubernetes ranks it: Pending 0 < Unknown 1 < Running 2 (others 0); see
    /// [`phase_rank`].
    fn phase_rank(&self) -> u8;
    /// Ready condition true.
    fn ready(&self) -> bool;
    /// When it last became Ready (`None` when not ready or unknown).
    fn ready_since(&self) -> Option<Timestamp>;
    /// Its restart count (the highest of its containers').
    fn restart_count(&self) -> i32;
    /// Its creation time.
    fn created(&self) -> Option<Timestamp>;
    /// Its labels.
    fn labels(&self) -> &BTreeMap<String, String>;
}

impl<T: OrderFacts> OrderFacts for &T {
    fn node_name(&self) -> &str {
        (**self).node_name()
    }
    fn phase_rank(&self) -> u8 {
        (**self).phase_rank()
    }
    fn ready(&self) -> bool {
        (**self).ready()
    }
    fn ready_since(&self) -> Option<Timestamp> {
        (**self).ready_since()
    }
    fn restart_count(&self) -> i32 {
        (**self).restart_count()
    }
    fn created(&self) -> Option<Timestamp> {
        (**self).created()
    }
    fn labels(&self) -> &BTreeMap<String, String> {
        (**self).labels()
    }
}

/// Kubernetes' rank of a pod phase in `ActivePods`: Pending < Unknown < Running; any other phase
/// (inactive pods never reach the sorts) ranks as Pending.
pub fn phase_rank(phase: &str) -> u8 {
    match phase {
        "Unknown" => 1,
        "Running" => 2,
        _ => 0,
    }
}

/// The unscheduled pod first; equal when both or neither are scheduled.
pub fn unassigned_first(a: &impl OrderFacts, b: &impl OrderFacts) -> Ordering {
    let (na, nb) = (a.node_name(), b.node_name());
    if na != nb && (na.is_empty() || nb.is_empty()) {
        return (!na.is_empty()).cmp(&!nb.is_empty());
    }
    Ordering::Equal
}

/// Later (or unknown) times first: Kubernetes `afterOrZero`.
pub fn later_or_zero_first(a: Option<Timestamp>, b: Option<Timestamp>) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(x), Some(y)) => y.cmp(&x),
    }
}

/// Ready more recently first, when both are ready.
pub fn ready_more_recently_first(a: &impl OrderFacts, b: &impl OrderFacts) -> Ordering {
    if a.ready() && b.ready() {
        later_or_zero_first(a.ready_since(), b.ready_since())
    } else {
        Ordering::Equal
    }
}

/// Kubernetes `ActivePods` order (the default update order): unassigned < assigned,
/// Pending < Unknown < Running, not ready < ready, ready more recently first, more restarts first,
/// newer first.
pub fn active_pods_order(a: &impl OrderFacts, b: &impl OrderFacts) -> Ordering {
    unassigned_first(a, b)
        .then_with(|| a.phase_rank().cmp(&b.phase_rank()))
        .then_with(|| a.ready().cmp(&b.ready()))
        .then_with(|| ready_more_recently_first(a, b))
        .then_with(|| b.restart_count().cmp(&a.restart_count()))
        .then_with(|| later_or_zero_first(a.created(), b.created()))
}

/// `ActivePods`, then priority, then scatter: sorts `wait` (indexes into `all`, the pods the
/// scatter counts label values over) into update order.
pub fn sort_for_update<P: OrderFacts>(
    all: &[P],
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
    wait
}

/// kruise `prioritySort`: by the sum of matching weights (higher first), else by the first
/// ordered key a pod has (pods with none first, as OpenKruise sorts them) and the integer its
/// value ends with (higher first). Stable.
pub fn sort_by_priority<P: OrderFacts>(all: &[P], wait: &mut [usize], p: &UpdatePriorityStrategy) {
    let weights = p.weight_priority.as_deref().unwrap_or_default();
    let orders = p.order_priority.as_deref().unwrap_or_default();
    if !weights.is_empty() {
        let weight = |i: usize| -> i64 {
            weights
                .iter()
                .filter(|t| selector::matches(&t.match_selector, all[i].labels()))
                .map(|t| i64::from(t.weight))
                .sum()
        };
        wait.sort_by_key(|&i| std::cmp::Reverse(weight(i)));
    } else if !orders.is_empty() {
        let key = |i: usize| -> (i64, std::cmp::Reverse<i64>) {
            for (level, t) in orders.iter().enumerate() {
                if let Some(v) = all[i].labels().get(&t.ordered_key) {
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

/// kruise `parseUpdateScatterTerms` (SidecarSet): `key=*` becomes one term per value of `key`
/// among the pods (in pod order); duplicates are dropped.
pub fn expand_scatter_terms<P: OrderFacts>(
    terms: &[UpdateScatterTerm],
    pods: &[P],
) -> Vec<UpdateScatterTerm> {
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
            if let Some(v) = pod.labels().get(&t.key) {
                push(UpdateScatterTerm {
                    key: t.key.clone(),
                    value: v.clone(),
                });
            }
        }
    }
    out
}

/// kruise `scatterSort`: spreads the pods matching each term across the order.
pub fn scatter_sort<P: OrderFacts>(
    all: &[P],
    mut wait: Vec<usize>,
    terms: &[UpdateScatterTerm],
) -> Vec<usize> {
    if wait.len() <= 1 {
        return wait;
    }
    for term in scatter_terms(all, &wait, terms) {
        wait = scatter_by_term(all, wait, &term);
    }
    wait
}

fn term_matches(pod: &impl OrderFacts, t: &UpdateScatterTerm) -> bool {
    pod.labels().get(&t.key) == Some(&t.value)
}

/// With several terms, the terms that match the most waiting pods go first.
fn scatter_terms<P: OrderFacts>(
    all: &[P],
    wait: &[usize],
    terms: &[UpdateScatterTerm],
) -> Vec<UpdateScatterTerm> {
    if terms.len() == 1 {
        return terms.to_vec();
    }
    let mut seen: Vec<(UpdateScatterTerm, usize)> = Vec::new();
    for t in terms {
        for &i in wait {
            if term_matches(&all[i], t) {
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

fn scatter_by_term<P: OrderFacts>(
    all: &[P],
    wait: Vec<usize>,
    term: &UpdateScatterTerm,
) -> Vec<usize> {
    let (mut matched, mut unmatched): (Vec<usize>, Vec<usize>) =
        wait.iter().partition(|&&i| term_matches(&all[i], term));
    if matched.len() <= 1 || unmatched.len() <= 1 {
        return wait;
    }
    let total_matched = all.iter().filter(|p| term_matches(*p, term)).count();
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
