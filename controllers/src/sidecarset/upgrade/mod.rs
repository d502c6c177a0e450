//! The SidecarSet upgrade planner: kruise's `UpdateSidecarSet` loop (kruise-api.md §3.4) as pure
//! functions, the observed SidecarSet and pods in, a [`Plan`] of pod changes and the status out.
//!
//! - [`facts`]: per pod, matched / updated / upgradable / consistent / ready / in-flight, and
//!   whether a workload's in-place update is under way on it.
//! - [`status`]: `matchedPods`, `updatedPods`, `readyPods`, `updatedReadyPods` (`calculateStatus`).
//! - [`strategy`]: the pods of one round (`GetNextUpgradePods`): updateStrategy selector,
//!   partition, maxUnavailable, not-upgradable pods; [`order`] sorts them.
//! - [`hot`]: hot-upgrade twins: which one gets the new image, and the reset of the old one.
//! - [`plan()`]: the whole round. The executor sends each [`PodAction`]'s
//!   [`PodChange`](crate::inplace::PodChange)s; it must not go through `inplace::begin`, which
//!   writes the workload's revision label and `apps.kruise.io/inplace-update-state`: a sidecar
//!   upgrade only changes sidecar images and the `kruise.io/sidecarset-*` annotations, as kruise does.
//!
//! graft rule on top of kruise: a pod in a workload's in-place update is not touched and counts as
//! unavailable, so the workload's and the SidecarSet's maxUnavailable both hold.

mod edit;
pub mod facts;
pub mod hot;
pub mod order;
mod plan;
pub mod status;
pub mod strategy;

#[cfg(test)]
mod facts_tests;
#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod hot_tests;
#[cfg(test)]
mod plan_tests;
#[cfg(test)]
mod status_tests;

pub use edit::{REASON_ALL_UPGRADABLE, REASON_UPDATE_IMMUTABLE_FIELD, upgradable_condition};
pub use facts::{PodFacts, pod_facts};
pub use plan::{
    ContainerUpgrade, EXPECTATIONS_REQUEUE, Outcome, Plan, PlannedEvent, PodAction, PodActionKind,
    Snapshot, not_upgradable_message, plan,
};
pub use status::{calculate_status, status_changed};
pub use strategy::{NextUpgrade, next_upgrade_pods};
