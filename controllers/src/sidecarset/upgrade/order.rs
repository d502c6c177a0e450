//! The order in which pods get their sidecars upgraded (kruise `SortUpdateIndexes` in
//! `sidecarset_strategy.go`): Kubernetes `ActivePods`, then `priorityStrategy`, then
//! `scatterStrategy` with `value: "*"` expanded to every value the matched pods carry
//! (`parseUpdateScatterTerms`). The sorts are the shared ones in [`crate::podorder`], which the
//! CloneSet uses too.

use std::collections::BTreeMap;

use graft_api::apps::v1beta1::sidecarset::SidecarSetUpdateStrategy;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;

use super::facts::{condition_true, container_statuses, phase, pod_labels};
use crate::podorder::{self, OrderFacts};

impl OrderFacts for Pod {
    fn node_name(&self) -> &str {
        self.spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .unwrap_or_default()
    }
    fn phase_rank(&self) -> u8 {
        podorder::phase_rank(phase(self))
    }
    fn ready(&self) -> bool {
        condition_true(self, "Ready")
    }
    fn ready_since(&self) -> Option<Timestamp> {
        crate::inplace::pod_condition(self, "Ready")
            .filter(|c| c.status == "True")
            .and_then(|c| c.last_transition_time.as_ref())
            .map(|t| t.0)
    }
    fn restart_count(&self) -> i32 {
        container_statuses(self)
            .iter()
            .map(|c| c.restart_count)
            .max()
            .unwrap_or(0)
    }
    fn created(&self) -> Option<Timestamp> {
        self.metadata.creation_timestamp.as_ref().map(|t| t.0)
    }
    fn labels(&self) -> &BTreeMap<String, String> {
        pod_labels(self)
    }
}

/// Sorts `wait` (indexes into `pods`, the matched pods) into upgrade order.
pub fn sort_for_upgrade(
    strategy: &SidecarSetUpdateStrategy,
    pods: &[&Pod],
    wait: Vec<usize>,
) -> Vec<usize> {
    let terms = strategy
        .scatter_strategy
        .as_deref()
        .filter(|t| !t.is_empty())
        .map(|t| podorder::expand_scatter_terms(t, pods));
    podorder::sort_for_update(
        pods,
        wait,
        strategy.priority_strategy.as_ref(),
        terms.as_deref(),
    )
}
