//! The facts the planner reads from a pod: [`ObservedPod`] and its [`PodInfo`] (readiness,
//! lifecycle, failures, what the in-place engine says about it).

use std::collections::HashMap;

use graft_api::labels;
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;

use super::plan::{self, InPlaceFacts, ObservedPod, PodInfo, PodPhase};
use crate::inplace;

/// One pod of the namespace as [`plan::decide`] reads it.
pub(super) fn observe(
    pod: &Pod,
    templates: &HashMap<String, PodTemplateSpec>,
    target: &PodTemplateSpec,
    grace: i32,
    now: Timestamp,
) -> ObservedPod {
    ObservedPod {
        uid: pod.metadata.uid.clone(),
        owner_references: pod.metadata.owner_references.clone().unwrap_or_default(),
        kruise_pod_ready_gate: has_gate(pod, labels::KRUISE_POD_READY),
        kruise_pod_ready_condition: inplace::pod_condition(pod, labels::KRUISE_POD_READY).is_some(),
        info: pod_info(pod, templates, target, grace, now),
    }
}

fn has_gate(pod: &Pod, condition_type: &str) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.readiness_gates.as_ref())
        .is_some_and(|g| g.iter().any(|g| g.condition_type == condition_type))
}

/// The pod's `controller-revision-hash` label ("" when absent).
pub(super) fn pod_revision(pod: &Pod) -> String {
    pod.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(labels::CONTROLLER_REVISION_HASH).cloned())
        .unwrap_or_default()
}

/// The template of the revision a pod's `controller-revision-hash` label names: by the full
/// revision name, or by its short hash alone, as kruise-manager labels pods with its
/// `CloneSetShortHash` gate on (`EqualToRevisionHash`).
pub(super) fn revision_template<'a>(
    templates: &'a HashMap<String, PodTemplateSpec>,
    pod_revision: &str,
) -> Option<&'a PodTemplateSpec> {
    templates.get(pod_revision).or_else(|| {
        templates
            .iter()
            .find(|(name, _)| crate::revision::revision_label_matches(pod_revision, name))
            .map(|(_, t)| t)
    })
}

/// What the planner needs to know of one pod. `templates` holds the templates of the observed
/// revisions by name; `in_place.possible` is measured from the pod's revision to `target` (the
/// CloneSet's template), and the planner overrides it for pods already at the update revision.
pub(super) fn pod_info(
    pod: &Pod,
    templates: &HashMap<String, PodTemplateSpec>,
    target: &PodTemplateSpec,
    grace: i32,
    now: Timestamp,
) -> PodInfo {
    let status = pod.status.clone().unwrap_or_default();
    let conditions = status.conditions.clone().unwrap_or_default();
    let ready_cond = conditions.iter().find(|c| c.type_ == "Ready");
    let in_place_ready = conditions
        .iter()
        .find(|c| c.type_ == labels::INPLACE_UPDATE_READY)
        .map(|c| c.status == "True");
    let rev = pod_revision(pod);
    // Only whether an in-place update is possible matters here, not the spec the engine builds
    // (so the target revision's name is not needed).
    let possible = match revision_template(templates, &rev) {
        Some(old) => inplace::calculate(old, target, "", grace)
            .map(|_| ())
            .map_err(|e| e.to_string()),
        None => Err(format!("the template of revision {rev} is unknown")),
    };
    let (in_grace, completed, refresh) = in_place_progress(pod, now);
    PodInfo {
        name: pod.name_any(),
        labels: pod.metadata.labels.clone().unwrap_or_default(),
        finalizers: pod.metadata.finalizers.clone().unwrap_or_default(),
        phase: match status.phase.as_deref() {
            Some("Running") => PodPhase::Running,
            Some("Succeeded") => PodPhase::Succeeded,
            Some("Failed") => PodPhase::Failed,
            Some("Unknown") => PodPhase::Unknown,
            _ => PodPhase::Pending,
        },
        node_name: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
        ready: ready_cond.is_some_and(|c| c.status == "True"),
        ready_since: ready_cond
            .and_then(|c| c.last_transition_time.as_ref())
            .map(|t| t.0),
        in_place_update_ready: in_place_ready,
        deletion_timestamp: pod.metadata.deletion_timestamp.as_ref().map(|t| t.0),
        creation_timestamp: pod.metadata.creation_timestamp.as_ref().map(|t| t.0),
        deletion_cost: pod
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(labels::POD_DELETION_COST))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        restart_count: status
            .container_statuses
            .iter()
            .flatten()
            .map(|c| c.restart_count)
            .max()
            .unwrap_or(0),
        failure: failure(pod),
        in_place: InPlaceFacts {
            possible,
            in_grace,
            completed,
            refresh,
            sidecar_upgrading: crate::sidecarset::upgrade::facts::any_sidecar_upgrade_in_flight(
                pod,
            ),
        },
    }
}

/// Why a pod cannot become ready, from its containers' waiting reasons; `None` while they are
/// merely starting. The wording is stable across the kubelet's retries (`ErrImagePull` and
/// `ImagePullBackOff` alternate) so the rollout's waiting reason does not flap.
fn failure(pod: &Pod) -> Option<String> {
    let status = pod.status.as_ref()?;
    let spec_image = |name: &str| {
        pod.spec
            .iter()
            .flat_map(|s| {
                s.containers
                    .iter()
                    .chain(s.init_containers.iter().flatten())
            })
            .find(|c| c.name == name)
            .and_then(|c| c.image.clone())
    };
    status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten())
        .filter(|c| !c.ready)
        .find_map(|c| {
            let reason = c.state.as_ref()?.waiting.as_ref()?.reason.as_deref()?;
            let name = &c.name;
            match reason {
                "ErrImagePull" | "ImagePullBackOff" | "InvalidImageName" | "ErrImageNeverPull" => {
                    let image = spec_image(name).unwrap_or_else(|| c.image.clone());
                    Some(format!("container {name} cannot pull image {image}"))
                }
                "CrashLoopBackOff" => Some(format!("container {name} is crash-looping")),
                "CreateContainerConfigError" | "CreateContainerError" | "RunContainerError" => {
                    Some(format!("container {name} cannot start ({reason})"))
                }
                _ => None,
            }
        })
}

/// The in-place engine's view of a pod for the planner: (parked in grace, last update completed,
/// what a refresh would do).
fn in_place_progress(pod: &Pod, now: Timestamp) -> (bool, bool, plan::Refresh) {
    let in_grace = inplace::is_in_grace(pod);
    match inplace::progress(pod, now) {
        Ok(inplace::Progress::NotUpdating) => (in_grace, true, plan::Refresh::Idle),
        Ok(inplace::Progress::WaitingGrace { remaining }) => {
            (in_grace, false, plan::Refresh::After(remaining))
        }
        Ok(inplace::Progress::Apply(c)) => (in_grace, false, due(&c)),
        Ok(inplace::Progress::InProgress { .. }) => (in_grace, false, plan::Refresh::Idle),
        Ok(inplace::Progress::Completed(c)) => (in_grace, true, due(&c)),
        Err(e) => {
            tracing::warn!(pod = %pod.name_any(), error = %e, "unreadable in-place state");
            (in_grace, true, plan::Refresh::Idle)
        }
    }
}

fn due(changes: &[inplace::PodChange]) -> plan::Refresh {
    if changes.is_empty() {
        plan::Refresh::Idle
    } else {
        plan::Refresh::Due
    }
}

/// The changes a refresh sends now (grace over, or completion to record).
pub(super) fn refresh_changes(pod: &Pod, now: Timestamp) -> Vec<inplace::PodChange> {
    match inplace::progress(pod, now) {
        Ok(inplace::Progress::Apply(c)) | Ok(inplace::Progress::Completed(c)) => c,
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(image: &str) -> PodTemplateSpec {
        serde_json::from_value(serde_json::json!({
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "app", "image": image}]}
        }))
        .expect("template literal")
    }

    fn pod_labelled(revision: &str) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web-abcde", "labels": {"app": "web", "controller-revision-hash": revision}},
            "spec": {"containers": [{"name": "app", "image": "app:v2"}]}
        }))
        .expect("pod literal")
    }

    #[test]
    fn a_pod_labelled_with_the_short_hash_is_in_place_updatable_from_its_revision() {
        let templates = HashMap::from([("web-6786b78dc6".to_string(), template("app:v2"))]);
        for label in ["web-6786b78dc6", "6786b78dc6"] {
            let info = pod_info(
                &pod_labelled(label),
                &templates,
                &template("app:v1"),
                0,
                Timestamp::now(),
            );
            assert_eq!(info.in_place.possible, Ok(()), "label {label}");
        }
        let info = pod_info(
            &pod_labelled("5d8f7c9b4"),
            &templates,
            &template("app:v1"),
            0,
            Timestamp::now(),
        );
        assert!(info.in_place.possible.is_err(), "an unknown revision");
    }
}
