//! The SidecarSet status (kruise `calculateStatus` and `inconsistentStatus` in
//! `sidecarset_processor.go`).

use graft_api::apps::v1beta1::sidecarset::{SidecarSet, SidecarSetStatus};

use super::facts::PodFacts;

/// The status kruise computes from the matched pods: `matchedPods` counts them, `updatedPods`
/// those whose hash is the latest, `readyPods` those consistent and ready ([`PodFacts::consistent`]
/// and [`PodFacts::ready`]), `updatedReadyPods` both. Pods in `facts` that are not matched are
/// ignored. `latest_revision` and `collision_count` come from registering the latest
/// ControllerRevision.
pub fn calculate_status(
    set: &SidecarSet,
    facts: &[PodFacts],
    latest_revision: &str,
    collision_count: i32,
) -> SidecarSetStatus {
    let mut status = SidecarSetStatus {
        observed_generation: set.metadata.generation.unwrap_or_default(),
        latest_revision: Some(latest_revision.to_string()),
        collision_count: Some(collision_count),
        ..Default::default()
    };
    for f in facts.iter().filter(|f| f.matched) {
        status.matched_pods += 1;
        if f.updated {
            status.updated_pods += 1;
        }
        if f.consistent && f.ready {
            status.ready_pods += 1;
            if f.updated {
                status.updated_ready_pods += 1;
            }
        }
    }
    status
}

/// Whether `new` must be written over `old` (kruise `inconsistentStatus`): a newer generation,
/// or any counter, the latest revision or the collision count differs.
pub fn status_changed(old: Option<&SidecarSetStatus>, new: &SidecarSetStatus) -> bool {
    let empty = SidecarSetStatus::default();
    let old = old.unwrap_or(&empty);
    let revision = |s: &SidecarSetStatus| s.latest_revision.clone().unwrap_or_default();
    new.observed_generation > old.observed_generation
        || new.matched_pods != old.matched_pods
        || new.updated_pods != old.updated_pods
        || new.ready_pods != old.ready_pods
        || new.updated_ready_pods != old.updated_ready_pods
        || revision(new) != revision(old)
        || new.collision_count != old.collision_count
}
