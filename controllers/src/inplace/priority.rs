//! Container launch priority as it orders an in-place update (kruise-api.md §1.1,
//! `apis/apps/pub/launch_priority.go`): of the containers an update changes, those with the
//! highest priority go first; the others wait in the `next*` fields of the state until the first
//! batch is ready.
//!
//! OpenKruise reads the priority from the `KRUISE_CONTAINER_BARRIER` env its pod webhook injects
//! (`configMapKeyRef.key` `p_<priority>`). Pods graft created have no barrier, so the same rules
//! the webhook applies at creation are read from the pod itself: annotation
//! `apps.kruise.io/container-launch-priority: Ordered` (first container highest), else each
//! container's `KRUISE_CONTAINER_PRIORITY` env (absent is 0), and no priority at all when the pod
//! has one container or every container has the same priority.

use graft_api::labels;
use k8s_openapi::api::core::v1::{Container, Pod};

/// The launch priority of every container of `pod`, in spec order (`None`: no priority, the
/// container is updated in the first batch).
pub fn container_priorities(pod: &Pod) -> Vec<Option<i32>> {
    let containers: &[Container] = pod.spec.as_ref().map_or(&[], |s| &s.containers);
    let barrier: Vec<Option<i32>> = containers.iter().map(barrier_priority).collect();
    if barrier.iter().any(Option::is_some) {
        return barrier;
    }
    if containers.len() <= 1 {
        return vec![None; containers.len()];
    }
    let ordered = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(labels::CONTAINER_LAUNCH_PRIORITY))
        .is_some_and(|v| v == "Ordered");
    if ordered {
        return (0..containers.len())
            .map(|i| Some(-i32::try_from(i).unwrap_or(i32::MAX)))
            .collect();
    }
    let mut priorities = Vec::with_capacity(containers.len());
    for c in containers {
        let mut p = 0;
        for e in c.env.iter().flatten() {
            if e.name == labels::ENV_CONTAINER_PRIORITY {
                // The webhook refuses a pod whose priority is not an integer; such a pod
                // cannot exist under OpenKruise, so it gets no order here.
                match e.value.as_deref().unwrap_or_default().parse::<i32>() {
                    Ok(v) => p = v,
                    Err(_) => return vec![None; containers.len()],
                }
            }
        }
        priorities.push(p);
    }
    let any = priorities.iter().any(|p| *p != 0);
    let all_same = priorities.iter().all(|p| *p == priorities[0]);
    if !any || all_same {
        return vec![None; containers.len()];
    }
    priorities.into_iter().map(Some).collect()
}

/// The priority in an injected `KRUISE_CONTAINER_BARRIER` env (`p_<n>`; kruise's
/// `GetContainerPriority` reads an unparsable number as 0).
fn barrier_priority(c: &Container) -> Option<i32> {
    let e = c
        .env
        .iter()
        .flatten()
        .find(|e| e.name == labels::ENV_CONTAINER_BARRIER)?;
    let key = e
        .value_from
        .as_ref()
        .and_then(|v| v.config_map_key_ref.as_ref())
        .map(|r| r.key.as_str())
        .unwrap_or_default();
    Some(key.get(2..).and_then(|n| n.parse().ok()).unwrap_or(0))
}
