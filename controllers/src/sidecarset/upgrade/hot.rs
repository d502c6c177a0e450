//! Hot upgrade (kruise `sidecarset_hotupgrade.go`, `findContainerToHotUpgrade` and
//! `updatePodSidecarContainer`): a sidecar `X` runs as twins `X-1` and `X-2`; the annotation
//! `kruise.io/sidecarset-working-hotupgrade-container` names the working one.
//!
//! An upgrade puts the new image into one twin and makes it the working one in the same patch;
//! once every non-idle sidecar is consistent and the pod ready again, the old twin is reset to
//! `hotUpgradeEmptyImage` (kruise calls this the "flip"; events `ResetContainerSucceed` /
//! `ResetContainerFailed`).

use std::collections::BTreeSet;

use graft_api::apps::v1beta1::sidecarset::{SidecarContainer, SidecarSet};
use graft_api::labels;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use serde_json::Value;

use super::edit::PodEdit;
use super::facts::{
    annotations, container, container_status, container_statuses, is_running_and_ready,
    is_state_consistent, sidecar_names_in_pod, work_info, working_and_idle,
};
use crate::sidecarset::inject::hot_upgrade_names;

/// Which twin of `sidecar` gets the new image, and the other one (kruise
/// `findContainerToHotUpgrade`): the twin holding `hotUpgradeEmptyImage` (`X-1` first); else the
/// one that is not ready (Ready and consistent) while the other is; else the one that is not
/// working.
pub fn twin_to_upgrade(
    set: &SidecarSet,
    pod: &Pod,
    sidecar: &SidecarContainer,
) -> (String, String) {
    let (n1, n2) = hot_upgrade_names(sidecar.name());
    let empty = sidecar.hot_upgrade_empty_image();
    let image = |n: &str| {
        container(pod, n)
            .and_then(|c| c.image.as_deref())
            .unwrap_or_default()
    };
    if image(&n1) == empty {
        return (n1, n2);
    }
    if image(&n2) == empty {
        return (n2, n1);
    }
    let ready = |n: &str| {
        container_status(pod, n).is_some_and(|s| s.ready)
            && is_state_consistent(set, pod, &BTreeSet::from([n.to_string()]))
    };
    match (ready(&n1), ready(&n2)) {
        (true, false) => return (n2, n1),
        (false, true) => return (n1, n2),
        _ => {}
    }
    let (working, idle) = working_and_idle(&work_info(&annotations(pod)), sidecar.name());
    (idle, working)
}

/// Upgrades hot sidecar `sidecar` in `edit`: the chosen twin gets the image unless the other twin
/// already runs it; the twin becomes the working one; `version.sidecarset.kruise.io/<new>` is the
/// SidecarSet's resourceVersion, `versionalt.…/<new>` the old twin's version and
/// `versionalt.…/<old>` the resourceVersion. Returns the upgraded twin.
pub(crate) fn upgrade_twin(
    set: &SidecarSet,
    edit: &mut PodEdit<'_>,
    sidecar: &SidecarContainer,
) -> Option<String> {
    let (new, old) = twin_to_upgrade(set, edit.pod, sidecar);
    let image = sidecar.container.image.clone().unwrap_or_default();
    if edit.image(&new).is_none() || edit.image(&old).as_deref() == Some(image.as_str()) {
        return None;
    }
    edit.images.insert(new.clone(), image);
    let mut info = work_info(&edit.annotations);
    info.insert(sidecar.name().to_string(), new.clone());
    let info: serde_json::Map<String, Value> = info
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    edit.set_annotation(
        labels::SIDECARSET_WORKING_HOTUPGRADE_CONTAINER.to_string(),
        graft_api::gojson::to_go_json(&Value::Object(info)),
    );
    let rv = set.metadata.resource_version.clone().unwrap_or_default();
    let version = |n: &str| format!("{}{n}", labels::SIDECARSET_VERSION_PREFIX);
    let alt = |n: &str| format!("{}{n}", labels::SIDECARSET_VERSION_ALT_PREFIX);
    let old_version = edit.annotation(&version(&old));
    edit.set_annotation(version(&new), rv.clone());
    edit.set_annotation(alt(&new), old_version);
    edit.set_annotation(alt(&old), rv);
    Some(new)
}

/// Whether the pod's old twins are due for the reset (kruise step 5 of `UpdateSidecarSet`): some
/// idle twin does not hold `hotUpgradeEmptyImage`, every other sidecar container is consistent,
/// and the pod is Running and Ready, or else every container but the idle twins is ready
/// (`isHotUpgradingReady`).
pub fn needs_reset(set: &SidecarSet, pod: &Pod) -> bool {
    let work = work_info(&annotations(pod));
    let mut idle = BTreeSet::new();
    let mut upgrading = false;
    for s in set.spec.containers().iter().filter(|s| s.is_hot_upgrade()) {
        let (_, other) = working_and_idle(&work, s.name());
        let image = container(pod, &other).and_then(|c| c.image.as_deref());
        if image.unwrap_or_default() != s.hot_upgrade_empty_image() {
            upgrading = true;
        }
        idle.insert(other);
    }
    if !upgrading {
        return false;
    }
    let mut sidecars = sidecar_names_in_pod(set);
    sidecars.retain(|n| !idle.contains(n));
    if !is_state_consistent(set, pod, &sidecars) {
        return false;
    }
    is_running_and_ready(pod)
        || container_statuses(pod)
            .iter()
            .filter(|c| !idle.contains(&c.name))
            .all(|c| c.ready)
}

/// kruise `flipPodSidecarContainerDo`: every idle twin not holding `hotUpgradeEmptyImage` gets it,
/// with `version.sidecarset.kruise.io/<idle>` and `versionalt.…/<working>` set to "0", and the
/// reset recorded in `kruise.io/sidecarset-inplace-update-state`. Returns the reset twins.
pub(crate) fn reset_idle_twins(
    set: &SidecarSet,
    edit: &mut PodEdit<'_>,
    now: Timestamp,
) -> Vec<String> {
    let work = work_info(&edit.annotations);
    let mut changed = Vec::new();
    for s in set.spec.containers().iter().filter(|s| s.is_hot_upgrade()) {
        let (working, idle) = working_and_idle(&work, s.name());
        let empty = s.hot_upgrade_empty_image();
        match edit.image(&idle) {
            Some(image) if image != empty => {}
            _ => continue,
        }
        edit.images.insert(idle.clone(), empty.to_string());
        edit.set_annotation(
            format!("{}{idle}", labels::SIDECARSET_VERSION_PREFIX),
            "0".into(),
        );
        edit.set_annotation(
            format!("{}{working}", labels::SIDECARSET_VERSION_ALT_PREFIX),
            "0".into(),
        );
        changed.push(idle);
    }
    edit.record_update_state(set, &changed, now);
    changed
}
