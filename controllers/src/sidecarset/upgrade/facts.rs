//! What the upgrade rules need to know about one pod for one SidecarSet (kruise's
//! `sidecarcontrol` checks: `IsPodSidecarUpdated`, `IsSidecarSetUpgradable`,
//! `IsPodStateConsistent`, `IsPodReady`, `IsPodConsistentWithSidecarSet`).

use std::collections::{BTreeMap, BTreeSet};

use graft_api::annotations::{InPlaceUpdateState, SidecarSetHashes, SidecarSetUpgradeSpec};
use graft_api::apps::v1beta1::sidecarset::SidecarSet;
use graft_api::{labels, selector};
use k8s_openapi::api::core::v1::{Container, ContainerStatus, Pod};
use serde_json::Value;

use crate::inplace;
use crate::sidecarset::inject::{hot_upgrade_names, pod_matches};

/// The facts about one pod, computed once per reconcile by [`pod_facts`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodFacts {
    /// `namespace/name`.
    pub key: String,
    /// The SidecarSet manages this pod: active, selected (selector and namespace selector),
    /// listed in `kruise.io/sidecarset-injected-list` and still holding every sidecar (both
    /// twins for hot upgrade). Only matched pods are counted or upgraded.
    pub matched: bool,
    /// The pod's `kruise.io/sidecarset-hash` entry for this SidecarSet equals the SidecarSet's
    /// hash: its sidecars are the latest.
    pub updated: bool,
    /// The pod's `kruise.io/sidecarset-hash-without-image` entry equals the SidecarSet's: only
    /// images differ, so an in-place upgrade can apply the change. False means not upgradable.
    pub upgradable: bool,
    /// Every sidecar container runs the image its spec names (kruise `IsPodStateConsistent`).
    pub consistent: bool,
    /// kruise `IsPodReady`: idle hot-upgrade twins hold `hotUpgradeEmptyImage`, and the pod is
    /// Running, Ready and not terminating.
    pub ready: bool,
    /// A sidecar container is Ready but not consistent: a previous sidecar upgrade is still being
    /// applied by the kubelet, so kruise waits before upgrading again.
    pub sidecar_upgrade_in_flight: bool,
    /// An in-place update by a workload (`apps.kruise.io/inplace-update-state`, by the CloneSet
    /// or anything else) is under way: the SidecarSet does not touch the pod and counts it as
    /// unavailable.
    pub in_place_updating: bool,
    /// A workload has updated the pod in place (`apps.kruise.io/inplace-update-state`), that
    /// update is done, and the pod is not ready (yet) again: graft counts it as unavailable, so a
    /// SidecarSet upgrade does not add to the pods a workload rollout has just taken down.
    pub not_ready_after_workload_update: bool,
    /// The pod matches `updateStrategy.selector` (true when there is none).
    pub selected: bool,
}

/// Computes the [`PodFacts`] of `pod` for `set`. `namespace_labels` are the labels of the pod's
/// namespace, `None` when the namespace is unknown (then a namespace selector does not match).
pub fn pod_facts(
    set: &SidecarSet,
    pod: &Pod,
    namespace_labels: Option<&BTreeMap<String, String>>,
) -> PodFacts {
    let set_name = set.metadata.name.as_deref().unwrap_or_default();
    let (upgradable, in_flight) = sidecarset_upgradable(set, pod);
    PodFacts {
        key: pod_key(pod),
        matched: is_matched(set, pod, namespace_labels),
        updated: set.hash() == pod_hash(pod, labels::SIDECARSET_HASH, set_name),
        upgradable,
        consistent: is_state_consistent(set, pod, &BTreeSet::new()),
        ready: is_pod_ready(set, pod),
        sidecar_upgrade_in_flight: upgradable && in_flight,
        in_place_updating: inplace::is_in_place_updating(pod),
        not_ready_after_workload_update: matches!(inplace::update_state(pod), Ok(Some(_)))
            && !is_running_and_ready(pod),
        selected: set
            .spec
            .update_strategy
            .as_ref()
            .and_then(|u| u.selector.as_ref())
            .is_none_or(|s| selector::matches(s, pod_labels(pod))),
    }
}

/// kruise `getMatchingPods` for one pod: selector and namespace selector, active, injected by
/// this SidecarSet and still carrying all its containers.
fn is_matched(
    set: &SidecarSet,
    pod: &Pod,
    namespace_labels: Option<&BTreeMap<String, String>>,
) -> bool {
    static NONE: BTreeMap<String, String> = BTreeMap::new();
    if set.spec.namespace_selector.is_some() && namespace_labels.is_none() {
        return false;
    }
    pod_matches(set, pod_labels(pod), namespace_labels.unwrap_or(&NONE))
        && is_active(pod)
        && is_injected(set, pod)
        && has_all_sidecars(set, pod)
}

/// Not `Succeeded`, not `Failed`, not terminating (Kubernetes `IsPodActive`).
pub(crate) fn is_active(pod: &Pod) -> bool {
    !matches!(phase(pod), "Succeeded" | "Failed") && pod.metadata.deletion_timestamp.is_none()
}

fn is_injected(set: &SidecarSet, pod: &Pod) -> bool {
    let name = set.metadata.name.as_deref().unwrap_or_default();
    annotation(pod, labels::SIDECARSET_INJECTED_LIST)
        .is_some_and(|v| v.split(',').any(|n| n == name))
}

/// kruise `IsPodConsistentWithSidecarSet`: every sidecar is in the pod (a hot-upgrade one as both
/// twins plus its working-container entry).
fn has_all_sidecars(set: &SidecarSet, pod: &Pod) -> bool {
    let work = work_info(&annotations(pod));
    set.spec.containers().iter().all(|s| {
        if s.is_hot_upgrade() {
            let (n1, n2) = hot_upgrade_names(s.name());
            work.contains_key(s.name())
                && container(pod, &n1).is_some()
                && container(pod, &n2).is_some()
        } else {
            container(pod, s.name()).is_some()
        }
    })
}

/// kruise `IsSidecarSetUpgradable`: (without-image hashes equal, a ready sidecar is inconsistent).
fn sidecarset_upgradable(set: &SidecarSet, pod: &Pod) -> (bool, bool) {
    let set_name = set.metadata.name.as_deref().unwrap_or_default();
    if pod_hash(pod, labels::SIDECARSET_HASH_WITHOUT_IMAGE, set_name) != set.hash_without_image() {
        return (false, false);
    }
    let in_flight = sidecar_names_in_pod(set).into_iter().any(|name| {
        container_status(pod, &name).is_some_and(|s| s.ready)
            && !is_state_consistent(set, pod, &BTreeSet::from([name]))
    });
    (true, in_flight)
}

/// The pod containers a SidecarSet owns (kruise `GetSidecarContainersInPod`): each container, and
/// both twins of a hot-upgrade one.
pub fn sidecar_names_in_pod(set: &SidecarSet) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for s in set.spec.containers() {
        if s.is_hot_upgrade() {
            let (n1, n2) = hot_upgrade_names(s.name());
            names.insert(n1);
            names.insert(n2);
        } else {
            names.insert(s.name().to_string());
        }
    }
    names
}

/// kruise `IsPodStateConsistent(pod, containers)`: the listed sidecar containers (all of them
/// when empty) run their spec images. With digest images the status `imageID` must carry that
/// digest; otherwise [`is_update_completed`] decides. Every container must have a status.
pub fn is_state_consistent(set: &SidecarSet, pod: &Pod, containers: &BTreeSet<String>) -> bool {
    let spec_containers = pod_containers(pod);
    if spec_containers.len() != container_statuses(pod).len() {
        return false;
    }
    let all;
    let containers = if containers.is_empty() {
        all = sidecar_names_in_pod(set);
        &all
    } else {
        containers
    };
    let mut all_digest = true;
    for c in spec_containers
        .iter()
        .filter(|c| containers.contains(&c.name))
    {
        let image = c.image.as_deref().unwrap_or_default();
        if !is_digest(image) {
            all_digest = false;
            break;
        }
        let Some(status) = container_status(pod, &c.name) else {
            return false;
        };
        let image_id = status
            .image_id
            .split_once("://")
            .map_or(status.image_id.as_str(), |(_, id)| id);
        if !same_digest_image(image, image_id) {
            return false;
        }
    }
    all_digest || is_update_completed(set, pod, containers)
}

/// kruise `IsSidecarContainerUpdateCompleted`: every listed container whose `imageID` was
/// recorded in `kruise.io/sidecarset-inplace-update-state` before the upgrade reports another
/// `imageID` now, or already reports the spec image. No annotation means never upgraded
/// (complete); an unreadable one means not complete.
fn is_update_completed(set: &SidecarSet, pod: &Pod, containers: &BTreeSet<String>) -> bool {
    let Some(raw) = annotation(pod, labels::SIDECARSET_INPLACE_UPDATE_STATE) else {
        return true;
    };
    let Some(states) = read_update_states(raw) else {
        return false;
    };
    let set_name = set.metadata.name.as_deref().unwrap_or_default();
    let Some(state) = states.get(set_name) else {
        return true;
    };
    container_statuses(pod)
        .iter()
        .filter(|cs| containers.contains(&cs.name))
        .all(|cs| {
            let spec_image = container(pod, &cs.name)
                .and_then(|c| c.image.as_deref())
                .unwrap_or_default();
            match state.last_container_statuses.get(&cs.name) {
                Some(old) => {
                    old.image_id != cs.image_id || inplace::same_image(spec_image, &cs.image)
                }
                None => true,
            }
        })
}

/// Whether some SidecarSet's in-place upgrade of this pod is still being applied, read from the
/// pod alone (a workload controller has no SidecarSet at hand): a container recorded in
/// `kruise.io/sidecarset-inplace-update-state` still reports the `imageID` it had before the
/// upgrade and not the image its spec now names. A workload must not start its own in-place
/// update of such a pod, and counts it as unavailable. An unreadable annotation counts as in
/// flight.
pub fn any_sidecar_upgrade_in_flight(pod: &Pod) -> bool {
    let Some(raw) = annotation(pod, labels::SIDECARSET_INPLACE_UPDATE_STATE) else {
        return false;
    };
    let Some(states) = read_update_states(raw) else {
        return true;
    };
    states.values().any(|state| {
        state.last_container_statuses.iter().any(|(name, old)| {
            let Some(now) = container_status(pod, name) else {
                return false;
            };
            let spec_image = container(pod, name)
                .and_then(|c| c.image.as_deref())
                .unwrap_or_default();
            old.image_id == now.image_id && !inplace::same_image(spec_image, &now.image)
        })
    })
}

/// kruise `IsPodReady` for a SidecarSet: every idle hot-upgrade twin holds
/// `hotUpgradeEmptyImage`, and the pod is Running and Ready and not terminating.
pub fn is_pod_ready(set: &SidecarSet, pod: &Pod) -> bool {
    let work = work_info(&annotations(pod));
    for s in set.spec.containers().iter().filter(|s| s.is_hot_upgrade()) {
        let (_, idle) = working_and_idle(&work, s.name());
        let empty = s.hot_upgrade_empty_image();
        let image = container(pod, &idle).and_then(|c| c.image.as_deref());
        if !empty.is_empty() && image.is_some_and(|i| i != empty) {
            return false;
        }
    }
    is_running_and_ready(pod)
}

/// Running, `Ready=True`, not terminating (kruise `IsRunningAndReady`).
pub(crate) fn is_running_and_ready(pod: &Pod) -> bool {
    phase(pod) == "Running"
        && condition_true(pod, "Ready")
        && pod.metadata.deletion_timestamp.is_none()
}

/// The working and the idle twin of hot-upgrade sidecar `name` (kruise
/// `GetPodHotUpgradeContainers`): `name-1` works when the working-container annotation says so,
/// otherwise `name-2` does.
pub fn working_and_idle(work_info: &BTreeMap<String, String>, name: &str) -> (String, String) {
    let (n1, n2) = hot_upgrade_names(name);
    if work_info.get(name) == Some(&n1) {
        (n1, n2)
    } else {
        (n2, n1)
    }
}

/// The annotation `kruise.io/sidecarset-working-hotupgrade-container` (sidecar name to working
/// twin); unreadable counts as empty, as in kruise.
pub(crate) fn work_info(annotations: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    annotations
        .get(labels::SIDECARSET_WORKING_HOTUPGRADE_CONTAINER)
        .and_then(|v| serde_json::from_str(v).ok())
        .unwrap_or_default()
}

/// The hash recorded for SidecarSet `set_name` in the pod annotation `key` (new or legacy
/// format), empty when none.
pub fn pod_hash(pod: &Pod, key: &str, set_name: &str) -> String {
    annotation(pod, key)
        .and_then(read_hashes)
        .and_then(|(hashes, _)| hashes.get(set_name).map(|s| s.sidecar_set_hash.clone()))
        .unwrap_or_default()
}

/// Reads a SidecarSet hash annotation: the map of [`SidecarSetUpgradeSpec`] (Go `null`s taken as
/// absent), else the legacy `name → hash` map (then `true`).
pub(crate) fn read_hashes(raw: &str) -> Option<(SidecarSetHashes, bool)> {
    let value: Value = serde_json::from_str(raw).ok()?;
    let map = value.as_object()?;
    if map.values().all(Value::is_string) && !map.is_empty() {
        let legacy = map
            .iter()
            .map(|(k, v)| {
                let spec = SidecarSetUpgradeSpec {
                    sidecar_set_hash: v.as_str().unwrap_or_default().to_string(),
                    ..Default::default()
                };
                (k.clone(), spec)
            })
            .collect();
        return Some((legacy, true));
    }
    let mut hashes = SidecarSetHashes::new();
    for (k, v) in map {
        hashes.insert(
            k.clone(),
            serde_json::from_value(without_nulls(v.clone())).ok()?,
        );
    }
    Some((hashes, false))
}

/// Reads `kruise.io/sidecarset-inplace-update-state` (SidecarSet name to state).
pub(crate) fn read_update_states(raw: &str) -> Option<BTreeMap<String, InPlaceUpdateState>> {
    let value: Value = serde_json::from_str(raw).ok()?;
    let mut states = BTreeMap::new();
    for (k, v) in value.as_object()? {
        states.insert(
            k.clone(),
            serde_json::from_value(without_nulls(v.clone())).ok()?,
        );
    }
    Some(states)
}

fn without_nulls(mut v: Value) -> Value {
    if let Value::Object(m) = &mut v {
        m.retain(|_, x| !x.is_null());
    }
    v
}

/// Whether an image reference carries a digest (`repo@sha256:…`).
pub(crate) fn is_digest(image: &str) -> bool {
    image
        .split_once('@')
        .is_some_and(|(repo, d)| !repo.is_empty() && d.contains(':'))
}

/// kruise `IsContainerImageEqual` for a digest image and an `imageID`: same repository and
/// digest (the tag is ignored). Repositories are compared after Docker normalisation, since the
/// runtime reports `docker.io/library/nginx` for `nginx`.
fn same_digest_image(image: &str, image_id: &str) -> bool {
    let strip = |r: &str| -> Option<String> {
        let (name, digest) = r.split_once('@')?;
        let repo = match name.rsplit_once(':') {
            Some((repo, tag)) if !tag.contains('/') => repo,
            _ => name,
        };
        Some(format!("{repo}@{digest}"))
    };
    match (strip(image), strip(image_id)) {
        (Some(a), Some(b)) => inplace::same_image(&a, &b),
        _ => false,
    }
}

pub(crate) fn pod_key(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or("default"),
        pod.metadata.name.as_deref().unwrap_or_default()
    )
}

pub(crate) fn pod_labels(pod: &Pod) -> &BTreeMap<String, String> {
    static NONE: BTreeMap<String, String> = BTreeMap::new();
    pod.metadata.labels.as_ref().unwrap_or(&NONE)
}

pub(crate) fn annotations(pod: &Pod) -> BTreeMap<String, String> {
    pod.metadata.annotations.clone().unwrap_or_default()
}

pub(crate) fn annotation<'a>(pod: &'a Pod, key: &str) -> Option<&'a str> {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .map(String::as_str)
}

pub(crate) fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or_default()
}

pub(crate) fn condition_true(pod: &Pod, type_: &str) -> bool {
    inplace::pod_condition(pod, type_).is_some_and(|c| c.status == "True")
}

pub(crate) fn pod_containers(pod: &Pod) -> &[Container] {
    pod.spec.as_ref().map_or(&[], |s| s.containers.as_slice())
}

pub(crate) fn container<'a>(pod: &'a Pod, name: &str) -> Option<&'a Container> {
    pod_containers(pod).iter().find(|c| c.name == name)
}

pub(crate) fn container_statuses(pod: &Pod) -> &[ContainerStatus] {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_deref())
        .unwrap_or_default()
}

pub(crate) fn container_status<'a>(pod: &'a Pod, name: &str) -> Option<&'a ContainerStatus> {
    container_statuses(pod).iter().find(|c| c.name == name)
}
