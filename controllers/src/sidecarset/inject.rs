//! Sidecar injection into a new pod, as OpenKruise's pod-create webhook does it
//! (`pkg/webhook/pod/mutating/sidecarset.go`, kruise-api.md §3.3), as one pure function.
//!
//! graft's own workload controllers call [`inject`] on the pods they create (no admission hop);
//! the admission server calls it for every other pod. Everything the function needs is in its
//! arguments: the namespace's labels, every SidecarSet with its ControllerRevisions, the clock and
//! a source of randomness (the `Partial` revision policy draws one number per pod).
//!
//! The pod comes out exactly as kruise would write it: sidecars placed by `podInjectPolicy` (a pod
//! container of the same name is replaced where it stands), init containers sorted by name after
//! the pod's own, `IS_INJECTED=true`, shared mounts/devices and transferred env, referenced
//! volumes, pull secrets, patched annotations, hot-upgrade twins, and the annotations
//! `kruise.io/sidecarset-hash`, `kruise.io/sidecarset-hash-without-image` and
//! `kruise.io/sidecarset-injected-list` in kruise's JSON shapes.

use std::collections::{BTreeMap, BTreeSet};

use graft_api::annotations::{SidecarSetHashes, SidecarSetUpgradeSpec, parse_sidecarset_hashes};
use graft_api::apps::v1beta1::sidecarset::{
    PatchPolicy, PodInjectPolicy, SidecarContainer, SidecarSet, SidecarSetInjectRevision,
    SidecarSetInjectRevisionPolicy, split_subscripted_path,
};
use graft_api::{gojson, labels, selector};
use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::{
    Container, EnvVar, EnvVarSource, LocalObjectReference, ObjectFieldSelector, Pod, Volume,
    VolumeDevice, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;

use super::{SidecarSetError, hash, merge_patch};

/// Env var kruise adds to every injected container.
pub const ENV_IS_INJECTED: &str = "IS_INJECTED";

/// A SidecarSet with its ControllerRevisions (label `kruise.io/sidecarset-name=<name>`).
#[derive(Clone, Debug)]
pub struct SidecarSetRevision {
    /// The SidecarSet as stored (defaults and hash annotations written).
    pub sidecarset: SidecarSet,
    /// Its ControllerRevisions, in any order.
    pub revisions: Vec<ControllerRevision>,
}

/// A number in `[0, 1)`, drawn once per pod for the `Partial` inject-revision policy.
pub trait RandomSource {
    /// The next number.
    fn float64(&mut self) -> f64;
}

impl<F: FnMut() -> f64> RandomSource for F {
    fn float64(&mut self) -> f64 {
        self()
    }
}

/// The thread-local generator, for production callers.
pub struct ThreadRandom;

impl RandomSource for ThreadRandom {
    fn float64(&mut self) -> f64 {
        rand::random::<f64>()
    }
}

/// The world [`inject`] looks at besides the pod.
pub struct InjectInput<'a> {
    /// Labels of the pod's namespace (for `namespaceSelector`).
    pub namespace_labels: &'a BTreeMap<String, String>,
    /// Every SidecarSet in the cluster, with its revisions.
    pub sidecarsets: &'a [SidecarSetRevision],
    /// The time written into `updateTimestamp`.
    pub now: Time,
}

/// The result of [`inject`].
#[derive(Clone, Debug, PartialEq)]
pub struct Injected {
    /// The pod with everything injected (equal to the input when nothing matched).
    pub pod: Pod,
    /// Names of the SidecarSets injected into this pod, sorted; the revision each came from is
    /// in the pod's `kruise.io/sidecarset-hash` annotation.
    pub sidecarsets: Vec<String>,
}

/// Injects every matching SidecarSet into a pod being created.
pub fn inject(
    pod: &Pod,
    input: &InjectInput<'_>,
    random: &mut dyn RandomSource,
) -> Result<Injected, SidecarSetError> {
    let unchanged = || Injected {
        pod: pod.clone(),
        sidecarsets: Vec::new(),
    };
    if !is_active(pod) {
        return Ok(unchanged());
    }
    let mut candidates: Vec<&SidecarSetRevision> = input.sidecarsets.iter().collect();
    candidates.sort_by(|a, b| a.sidecarset.metadata.name.cmp(&b.sidecarset.metadata.name));

    let pod_labels = pod.metadata.labels.clone().unwrap_or_default();
    let mut bases = BTreeSet::new();
    let mut matched: Vec<SidecarSet> = Vec::new();
    for c in candidates {
        let set = &c.sidecarset;
        if set
            .spec
            .injection_strategy
            .as_ref()
            .and_then(|i| i.paused)
            .unwrap_or(false)
        {
            continue;
        }
        if !pod_matches(set, &pod_labels, input.namespace_labels) {
            continue;
        }
        let suitable = suitable_revision(c, &pod_labels, random)?;
        if let Some(base) = suitable.canary_base() {
            bases.insert(base.to_string());
        }
        matched.push(suitable);
    }
    matched.retain(|s| !bases.contains(s.metadata.name.as_deref().unwrap_or_default()));
    if matched.is_empty() {
        return Ok(unchanged());
    }

    let mut out = pod.clone();
    let key = pod_key(pod);
    let annotations = out
        .metadata
        .annotations
        .get_or_insert_with(Default::default);
    for set in &matched {
        patch_pod_metadata(annotations, set)?;
    }
    let built = build_sidecars(&out, &matched, &input.now, &key)?;
    let names: Vec<String> = matched
        .iter()
        .filter_map(|s| s.metadata.name.clone())
        .collect();
    if built.containers.is_empty() && built.init_containers.is_empty() {
        return Ok(Injected {
            pod: out,
            sidecarsets: Vec::new(),
        });
    }

    let mut init = built.init_containers;
    init.sort_by(|a, b| a.container.name.cmp(&b.container.name));
    let spec = out.spec.get_or_insert_with(Default::default);
    let pod_init = spec.init_containers.take().unwrap_or_default();
    let merged_init = merge_sidecar_containers(pod_init, &init);
    spec.init_containers = (!merged_init.is_empty()).then_some(merged_init);
    spec.containers =
        merge_sidecar_containers(std::mem::take(&mut spec.containers), &built.containers);
    let volumes = merge_volumes(spec.volumes.take().unwrap_or_default(), built.volumes);
    spec.volumes = (!volumes.is_empty()).then_some(volumes);
    let secrets = merge_secrets(
        spec.image_pull_secrets.take().unwrap_or_default(),
        built.secrets,
    );
    spec.image_pull_secrets = (!secrets.is_empty()).then_some(secrets);
    out.metadata
        .annotations
        .get_or_insert_with(Default::default)
        .extend(built.annotations);
    Ok(Injected {
        pod: out,
        sidecarsets: names,
    })
}

/// Kubernetes' `IsPodActive`: not succeeded, not failed, not being deleted.
fn is_active(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    !matches!(phase, Some("Succeeded" | "Failed")) && pod.metadata.deletion_timestamp.is_none()
}

fn pod_key(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or("default"),
        pod.metadata
            .name
            .as_deref()
            .or(pod.metadata.generate_name.as_deref())
            .unwrap_or_default()
    )
}

/// kruise's `PodMatchedSidecarSet`: the namespace selector (if any) on the namespace's labels,
/// then a non-empty selector on the pod's labels.
pub fn pod_matches(
    set: &SidecarSet,
    pod_labels: &BTreeMap<String, String>,
    namespace_labels: &BTreeMap<String, String>,
) -> bool {
    if let Some(ns) = &set.spec.namespace_selector
        && !selector::matches(ns, namespace_labels)
    {
        return false;
    }
    set.spec
        .selector
        .as_ref()
        .is_some_and(|s| !selector::is_empty(s) && selector::matches(s, pod_labels))
}

/// The SidecarSet to inject (`getSuitableRevisionSidecarSet` on create): the latest, or the
/// historic revision `injectionStrategy.revision` names, depending on `updateStrategy.paused`
/// and the revision policy.
fn suitable_revision(
    c: &SidecarSetRevision,
    pod_labels: &BTreeMap<String, String>,
    random: &mut dyn RandomSource,
) -> Result<SidecarSet, SidecarSetError> {
    let set = &c.sidecarset;
    let Some(info) = set
        .spec
        .injection_strategy
        .as_ref()
        .and_then(|i| i.revision.as_ref())
        .filter(|r| r.revision_name.is_some() || r.custom_version.is_some())
    else {
        return Ok(set.clone());
    };
    let historic = history_sidecarset(c, info)?;
    let us = set.spec.update_strategy.clone().unwrap_or_default();
    if us.paused.unwrap_or(false) {
        return Ok(historic);
    }
    match info.policy.unwrap_or_default() {
        SidecarSetInjectRevisionPolicy::Always => Ok(historic),
        SidecarSetInjectRevisionPolicy::Partial => {
            if let Some(sel) = &us.selector
                && !selector::matches(sel, pod_labels)
            {
                // Pods the update selector leaves out always get the pinned revision.
                return Ok(historic);
            }
            match &us.partition {
                Some(IntOrString::String(p)) => {
                    let probability =
                        parse_percent(p.as_str()).ok_or_else(|| SidecarSetError::Partition {
                            sidecarset: set.metadata.name.clone().unwrap_or_default(),
                            value: p.clone(),
                        })?;
                    if random.float64() <= probability {
                        Ok(historic)
                    } else {
                        Ok(set.clone())
                    }
                }
                _ => Ok(set.clone()),
            }
        }
    }
}

/// `ParsePercentageAsFloat64`: `"30%"` is 0.3; like Go's `ParseFloat`, no surrounding spaces.
fn parse_percent(p: &str) -> Option<f64> {
    let n: f64 = p.strip_suffix('%')?.parse().ok()?;
    Some(n / 100.0)
}

/// kruise's `GetHistorySidecarSet`: the SidecarSet with the spec parts a revision records
/// (volumes, containers, initContainers, imagePullSecrets, patchPodMetadata) replaced by the
/// revision's, its hash annotations, and `status.latestRevision` = the revision's name. A revision
/// that cannot be found is an error, as in kruise.
pub fn history_sidecarset(
    c: &SidecarSetRevision,
    info: &SidecarSetInjectRevision,
) -> Result<SidecarSet, SidecarSetError> {
    let set = &c.sidecarset;
    let name = set.metadata.name.clone().unwrap_or_default();
    let not_found = |what: String| SidecarSetError::Revision {
        sidecarset: name.clone(),
        message: what,
    };
    let revision = if let Some(rn) = &info.revision_name {
        c.revisions
            .iter()
            .find(|r| r.metadata.name.as_deref() == Some(rn.as_str()))
            .ok_or_else(|| not_found(format!("controllerrevisions.apps {rn:?} not found")))?
    } else {
        let cv = info.custom_version.clone().unwrap_or_default();
        c.revisions
            .iter()
            .filter(|r| {
                r.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(labels::SIDECARSET_CUSTOM_VERSION))
                    == Some(&cv)
            })
            .max_by(|a, b| {
                a.revision
                    .cmp(&b.revision)
                    .then_with(|| {
                        a.metadata
                            .creation_timestamp
                            .cmp(&b.metadata.creation_timestamp)
                    })
                    .then_with(|| a.metadata.name.cmp(&b.metadata.name))
            })
            .ok_or_else(|| {
                not_found(format!(
                    "no ControllerRevision of SidecarSet {name} has custom version {cv:?}"
                ))
            })?
    };
    let rev_name = revision.metadata.name.clone().unwrap_or_default();
    let mut value = serde_json::to_value(set).map_err(|e| SidecarSetError::Encode {
        what: format!("SidecarSet {name}"),
        message: e.to_string(),
    })?;
    let recorded = revision
        .data
        .as_ref()
        .and_then(|d| d.0.get("spec"))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    if let Some(spec) = value.get_mut("spec").and_then(Value::as_object_mut) {
        for key in [
            "volumes",
            "containers",
            "initContainers",
            "imagePullSecrets",
            "patchPodMetadata",
        ] {
            match recorded.get(key) {
                Some(v) if !v.is_null() => {
                    spec.insert(key.to_string(), v.clone());
                }
                _ => {
                    spec.remove(key);
                }
            }
        }
    }
    let mut restored: SidecarSet =
        serde_json::from_value(value).map_err(|e| SidecarSetError::Revision {
            sidecarset: name.clone(),
            message: format!("decode revision {rev_name}: {e}"),
        })?;
    let rev_annotations = revision.metadata.annotations.clone().unwrap_or_default();
    let with = match rev_annotations.get(labels::SIDECARSET_HASH) {
        Some(h) if !h.is_empty() => h.clone(),
        _ => hash::sidecarset_hash(&restored.spec)?,
    };
    let without = match rev_annotations.get(labels::SIDECARSET_HASH_WITHOUT_IMAGE) {
        Some(h) if !h.is_empty() => h.clone(),
        _ => hash::sidecarset_hash_without_image(&restored.spec)?,
    };
    let a = restored
        .metadata
        .annotations
        .get_or_insert_with(Default::default);
    a.insert(labels::SIDECARSET_HASH.to_string(), with);
    a.insert(labels::SIDECARSET_HASH_WITHOUT_IMAGE.to_string(), without);
    restored
        .status
        .get_or_insert_with(Default::default)
        .latest_revision = Some(rev_name);
    Ok(restored)
}

/// kruise's `PatchPodMetadata`: `Retain` keeps existing values, `Overwrite` replaces them,
/// `MergePatchJson` JSON-merges the patch into the existing value.
pub fn patch_pod_metadata(
    annotations: &mut BTreeMap<String, String>,
    set: &SidecarSet,
) -> Result<(), SidecarSetError> {
    for patch in set.spec.patch_pod_metadata.iter().flatten() {
        let items = patch.annotations.clone().unwrap_or_default();
        match patch.patch_policy.unwrap_or_default() {
            PatchPolicy::Retain => {
                for (k, v) in items {
                    annotations.entry(k).or_insert(v);
                }
            }
            PatchPolicy::Overwrite => annotations.extend(items),
            PatchPolicy::MergePatchJson => {
                for (k, patch_json) in items {
                    let merged = match annotations.get(&k).filter(|o| !o.is_empty()) {
                        Some(origin) => merge_patch::merge_json_text(origin, &patch_json).map_err(
                            |message| SidecarSetError::PatchPodMetadata {
                                sidecarset: set.metadata.name.clone().unwrap_or_default(),
                                annotation: k.clone(),
                                message,
                            },
                        )?,
                        None => patch_json,
                    };
                    annotations.insert(k, merged);
                }
            }
        }
    }
    Ok(())
}

/// What [`build_sidecars`] collects across all matched SidecarSets.
struct Built {
    containers: Vec<SidecarContainer>,
    init_containers: Vec<SidecarContainer>,
    secrets: Vec<LocalObjectReference>,
    volumes: Vec<Volume>,
    annotations: BTreeMap<String, String>,
}

fn parse_hashes(pod: &Pod, key: &str, pod_key: &str) -> Result<SidecarSetHashes, SidecarSetError> {
    match pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .filter(|v| !v.is_empty())
    {
        None => Ok(SidecarSetHashes::new()),
        Some(v) => parse_sidecarset_hashes(v).map_err(|e| SidecarSetError::PodAnnotation {
            pod: pod_key.to_string(),
            annotation: key.to_string(),
            value: v.clone(),
            message: e.to_string(),
        }),
    }
}

/// The working twin of each hot-upgrade sidecar (`kruise.io/sidecarset-working-hotupgrade-container`);
/// an unparsable value counts as none, as in kruise.
pub fn hot_upgrade_work_info(pod: &Pod) -> BTreeMap<String, String> {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(labels::SIDECARSET_WORKING_HOTUPGRADE_CONTAINER))
        .and_then(|v| serde_json::from_str(v).ok())
        .unwrap_or_default()
}

fn build_sidecars(
    pod: &Pod,
    sets: &[SidecarSet],
    now: &Time,
    pod_key: &str,
) -> Result<Built, SidecarSetError> {
    let mut built = Built {
        containers: Vec::new(),
        init_containers: Vec::new(),
        secrets: Vec::new(),
        volumes: Vec::new(),
        annotations: BTreeMap::new(),
    };
    let mut hashes = parse_hashes(pod, labels::SIDECARSET_HASH, pod_key)?;
    let mut hashes_without_image =
        parse_hashes(pod, labels::SIDECARSET_HASH_WITHOUT_IMAGE, pod_key)?;
    let mut work_info = hot_upgrade_work_info(pod);
    let mut names: BTreeSet<String> = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(labels::SIDECARSET_INJECTED_LIST))
        .filter(|v| !v.is_empty())
        .map(|v| v.split(',').map(str::to_string).collect())
        .unwrap_or_default();
    let app_containers = pod
        .spec
        .as_ref()
        .map(|s| s.containers.as_slice())
        .unwrap_or_default();

    for set in sets {
        let set_name = set.metadata.name.clone().unwrap_or_default();
        names.insert(set_name.clone());
        let volumes: BTreeMap<&str, &Volume> = set
            .spec
            .volumes()
            .iter()
            .map(|v| (v.name.as_str(), v))
            .collect();
        let mut sidecar_list = BTreeSet::new();
        let mut injecting = false;
        let prepare = |sidecar: &SidecarContainer,
                       built: &mut Built|
         -> Result<SidecarContainer, SidecarSetError> {
            let mut s = sidecar.clone();
            if s.resources_policy.is_some() {
                super::resources::apply(pod, &mut s, sets, &set_name)?;
            }
            let (mounts, mount_envs) = injected_mounts_and_envs(&s, app_containers);
            let transfer = merge_env(transfer_envs(&s, pod), mount_envs);
            for name in s
                .container
                .volume_mounts
                .iter()
                .flatten()
                .map(|m| m.name.as_str())
                .chain(
                    s.container
                        .volume_devices
                        .iter()
                        .flatten()
                        .map(|d| d.name.as_str()),
                )
            {
                if let Some(v) = volumes.get(name) {
                    built.volumes.push((*v).clone());
                }
            }
            let merged_mounts = merge_volume_mounts(&s.container, mounts);
            s.container.volume_mounts = (!merged_mounts.is_empty()).then_some(merged_mounts);
            let env = s.container.env.get_or_insert_with(Vec::new);
            env.push(EnvVar {
                name: ENV_IS_INJECTED.into(),
                value: Some("true".into()),
                value_from: None,
            });
            let merged = merge_env(std::mem::take(env), transfer);
            s.container.env = Some(merged);
            let devices = injected_devices(&s, app_containers);
            let merged_devices = merge_volume_devices(&s.container, devices);
            s.container.volume_devices = (!merged_devices.is_empty()).then_some(merged_devices);
            Ok(s)
        };
        for sidecar in set.spec.init_containers() {
            if sidecar.is_native_sidecar() {
                sidecar_list.insert(sidecar.name().to_string());
            }
            let s = prepare(sidecar, &mut built)?;
            injecting = true;
            if s.is_native_sidecar() && s.is_hot_upgrade() {
                let (twins, annotations) = hot_upgrade_twins(&mut work_info, &s);
                built.init_containers.extend(twins);
                built.annotations.extend(annotations);
            } else {
                built.init_containers.push(s);
            }
        }
        built
            .secrets
            .extend(set.spec.image_pull_secrets.iter().flatten().cloned());
        for sidecar in set.spec.containers() {
            sidecar_list.insert(sidecar.name().to_string());
            let s = prepare(sidecar, &mut built)?;
            injecting = true;
            if s.is_hot_upgrade() {
                let (twins, annotations) = hot_upgrade_twins(&mut work_info, &s);
                built.containers.extend(twins);
                built.annotations.extend(annotations);
            } else {
                built.containers.push(s);
            }
        }
        if injecting {
            let list: Vec<String> = sidecar_list.into_iter().collect();
            hashes.insert(
                set_name.clone(),
                SidecarSetUpgradeSpec {
                    update_timestamp: Some(now.clone()),
                    sidecar_set_hash: set.hash().to_string(),
                    sidecar_set_name: set_name.clone(),
                    sidecar_list: list.clone(),
                    sidecar_set_controller_revision: set
                        .status
                        .as_ref()
                        .and_then(|s| s.latest_revision.clone())
                        .unwrap_or_default(),
                },
            );
            hashes_without_image.insert(
                set_name.clone(),
                SidecarSetUpgradeSpec {
                    update_timestamp: Some(now.clone()),
                    sidecar_set_hash: set.hash_without_image().to_string(),
                    sidecar_set_name: set_name.clone(),
                    sidecar_list: list,
                    sidecar_set_controller_revision: String::new(),
                },
            );
        }
    }
    let encode = |h: &SidecarSetHashes| {
        serde_json::to_string(h).map_err(|e| SidecarSetError::Encode {
            what: "pod annotation kruise.io/sidecarset-hash".into(),
            message: e.to_string(),
        })
    };
    built
        .annotations
        .insert(labels::SIDECARSET_HASH.to_string(), encode(&hashes)?);
    built.annotations.insert(
        labels::SIDECARSET_HASH_WITHOUT_IMAGE.to_string(),
        encode(&hashes_without_image)?,
    );
    built.annotations.insert(
        labels::SIDECARSET_INJECTED_LIST.to_string(),
        names.into_iter().collect::<Vec<_>>().join(","),
    );
    Ok(built)
}

/// A container kruise injected (it carries `IS_INJECTED=true`).
pub fn is_injected_container(c: &Container) -> bool {
    c.env
        .iter()
        .flatten()
        .find(|e| e.name == ENV_IS_INJECTED)
        .and_then(|e| e.value.as_deref())
        == Some("true")
}

/// `GetInjectedVolumeMountsAndEnvs`: with `shareVolumePolicy: enabled`, every volume mount of the
/// app containers, plus the env vars their `subPathExpr`s expand.
fn injected_mounts_and_envs(
    s: &SidecarContainer,
    app_containers: &[Container],
) -> (Vec<VolumeMount>, Vec<EnvVar>) {
    if !s.shares_volume_mounts() {
        return (Vec::new(), Vec::new());
    }
    let mut mounts = Vec::new();
    let mut envs = Vec::new();
    for app in app_containers.iter().filter(|c| !is_injected_container(c)) {
        for m in app.volume_mounts.iter().flatten() {
            mounts.push(m.clone());
            for var in subpath_expr_vars(m.sub_path_expr.as_deref().unwrap_or_default()) {
                if let Some(e) = app.env.iter().flatten().find(|e| e.name == var) {
                    envs.push(e.clone());
                }
            }
        }
    }
    (mounts, envs)
}

/// The names in `$(NAME)` references of a `subPathExpr` (`\$\(([-._a-zA-Z][-._a-zA-Z0-9]*)\)`).
fn subpath_expr_vars(expr: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = expr;
    while let Some(start) = rest.find("$(") {
        let after = &rest[start + 2..];
        let Some(end) = after.find(')') else { break };
        let name = &after[..end];
        let valid = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || "-._".contains(c))
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._".contains(c));
        if valid {
            out.push(name);
            rest = &after[end + 1..];
        } else {
            rest = after;
        }
    }
    out
}

/// `GetInjectedVolumeDevices`: with `shareVolumeDevicePolicy: enabled`, the app containers' devices.
fn injected_devices(s: &SidecarContainer, app_containers: &[Container]) -> Vec<VolumeDevice> {
    if !s.shares_volume_devices() {
        return Vec::new();
    }
    app_containers
        .iter()
        .filter(|c| !is_injected_container(c))
        .flat_map(|c| c.volume_devices.iter().flatten().cloned())
        .collect()
}

/// `GetSidecarTransferEnvs`: the env vars `transferEnv` names, from the container named
/// directly or through a pod label/annotation.
fn transfer_envs(s: &SidecarContainer, pod: &Pod) -> Vec<EnvVar> {
    let mut in_pod: BTreeMap<(String, String), EnvVar> = BTreeMap::new();
    for c in pod.spec.iter().flat_map(|s| s.containers.iter()) {
        for e in c.env.iter().flatten() {
            in_pod.insert((c.name.clone(), e.name.clone()), e.clone());
        }
    }
    let mut out = Vec::new();
    for t in s.transfer_env.iter().flatten() {
        let mut env_names = BTreeSet::new();
        if let Some(n) = t.env_name.as_deref().filter(|n| !n.is_empty()) {
            env_names.insert(n.to_string());
        }
        env_names.extend(t.env_names.iter().flatten().cloned());
        let mut source = t.source_container_name.clone().unwrap_or_default();
        if let Some(fr) = t
            .source_container_name_from
            .as_ref()
            .and_then(|f| f.field_ref.as_ref())
        {
            match container_name_from_field(fr, pod) {
                Some(name) => source = name,
                None => continue,
            }
        }
        for name in env_names {
            if let Some(e) = in_pod.get(&(source.clone(), name)) {
                out.push(e.clone());
            }
        }
    }
    out
}

/// `ExtractContainerNameFromFieldPath`: `metadata.labels['k']` or `metadata.annotations['k']`.
fn container_name_from_field(fr: &ObjectFieldSelector, pod: &Pod) -> Option<String> {
    let (path, key) = split_subscripted_path(&fr.field_path)?;
    let map = match path {
        "metadata.annotations" => pod.metadata.annotations.as_ref(),
        "metadata.labels" => pod.metadata.labels.as_ref(),
        _ => return None,
    };
    Some(map.and_then(|m| m.get(key)).cloned().unwrap_or_default())
}

/// `MergeEnvVar`: `additional` vars whose names are not there yet, appended.
fn merge_env(mut original: Vec<EnvVar>, additional: Vec<EnvVar>) -> Vec<EnvVar> {
    let mut seen: BTreeSet<String> = original.iter().map(|e| e.name.clone()).collect();
    for e in additional {
        if seen.insert(e.name.clone()) {
            original.push(e);
        }
    }
    original
}

/// `MergeVolumeMounts`: extra mounts whose path is not used by a mount or a device yet.
fn merge_volume_mounts(c: &Container, additional: Vec<VolumeMount>) -> Vec<VolumeMount> {
    let mut out: Vec<VolumeMount> = c.volume_mounts.clone().unwrap_or_default();
    let mut points: BTreeSet<String> = out.iter().map(|m| m.mount_path.clone()).collect();
    points.extend(
        c.volume_devices
            .iter()
            .flatten()
            .map(|d| d.device_path.clone()),
    );
    for m in additional {
        if points.insert(m.mount_path.clone()) {
            out.push(m);
        }
    }
    out
}

/// `MergeVolumeDevices`: extra devices whose path is not used by a device or a mount yet.
fn merge_volume_devices(c: &Container, additional: Vec<VolumeDevice>) -> Vec<VolumeDevice> {
    let mut out: Vec<VolumeDevice> = c.volume_devices.clone().unwrap_or_default();
    let mut points: BTreeSet<String> = out.iter().map(|d| d.device_path.clone()).collect();
    points.extend(
        c.volume_mounts
            .iter()
            .flatten()
            .map(|m| m.mount_path.clone()),
    );
    for d in additional {
        if points.insert(d.device_path.clone()) {
            out.push(d);
        }
    }
    out
}

/// `MergeVolumes`: the pod's volumes win over same-named sidecar volumes.
fn merge_volumes(mut original: Vec<Volume>, additional: Vec<Volume>) -> Vec<Volume> {
    let mut seen: BTreeSet<String> = original.iter().map(|v| v.name.clone()).collect();
    for v in additional {
        if seen.insert(v.name.clone()) {
            original.push(v);
        }
    }
    original
}

fn merge_secrets(
    pod: Vec<LocalObjectReference>,
    sidecar: Vec<LocalObjectReference>,
) -> Vec<LocalObjectReference> {
    let mut seen = BTreeSet::new();
    pod.into_iter()
        .chain(sidecar)
        .filter(|s| seen.insert(s.name.clone()))
        .collect()
}

/// `mergeSidecarContainers`: a sidecar replaces the pod container of the same name where it
/// stands; the others go before (`BeforeAppContainer`) or after the pod's containers.
fn merge_sidecar_containers(
    origins: Vec<Container>,
    injected: &[SidecarContainer],
) -> Vec<Container> {
    let mut origins = origins;
    let index: BTreeMap<String, usize> = origins
        .iter()
        .enumerate()
        .map(|(i, c)| (c.name.clone(), i))
        .collect();
    let mut before = Vec::new();
    let mut after = Vec::new();
    for s in injected {
        if let Some(&i) = index.get(&s.container.name) {
            origins[i] = s.container.clone();
            continue;
        }
        match s.pod_inject_policy {
            Some(PodInjectPolicy::BeforeAppContainer) => before.push(s.container.clone()),
            _ => after.push(s.container.clone()),
        }
    }
    before.extend(origins);
    before.extend(after);
    before
}

/// The two containers of a hot-upgrade sidecar `X`: `X-1` (working, the real image) and `X-2`
/// (idle, `hotUpgradeEmptyImage`), both with `SIDECARSET_VERSION`/`SIDECARSET_VERSION_ALT` read
/// from their version annotations, and the annotations kruise writes for them.
pub fn hot_upgrade_twins(
    work_info: &mut BTreeMap<String, String>,
    s: &SidecarContainer,
) -> (Vec<SidecarContainer>, BTreeMap<String, String>) {
    let (name1, name2) = hot_upgrade_names(s.name());
    let mut c1 = s.clone();
    let mut c2 = s.clone();
    c1.container.name = name1.clone();
    c2.container.name = name2.clone();
    c2.container.image = Some(s.hot_upgrade_empty_image().to_string());
    for c in [&mut c1, &mut c2] {
        let name = c.container.name.clone();
        let env = c.container.env.get_or_insert_with(Vec::new);
        for (var, prefix) in [
            (
                labels::ENV_SIDECARSET_VERSION,
                labels::SIDECARSET_VERSION_PREFIX,
            ),
            (
                labels::ENV_SIDECARSET_VERSION_ALT,
                labels::SIDECARSET_VERSION_ALT_PREFIX,
            ),
        ] {
            env.push(EnvVar {
                name: var.into(),
                value: None,
                value_from: Some(EnvVarSource {
                    field_ref: Some(ObjectFieldSelector {
                        api_version: None,
                        field_path: format!("metadata.annotations['{prefix}{name}']"),
                    }),
                    ..Default::default()
                }),
            });
        }
    }
    let mut annotations = BTreeMap::new();
    for (name, version, alt) in [(&name1, "1", "0"), (&name2, "0", "1")] {
        annotations.insert(
            format!("{}{name}", labels::SIDECARSET_VERSION_PREFIX),
            version.to_string(),
        );
        annotations.insert(
            format!("{}{name}", labels::SIDECARSET_VERSION_ALT_PREFIX),
            alt.to_string(),
        );
    }
    work_info.insert(s.name().to_string(), name1);
    let info: serde_json::Map<String, Value> = work_info
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    annotations.insert(
        labels::SIDECARSET_WORKING_HOTUPGRADE_CONTAINER.to_string(),
        gojson::to_go_json(&Value::Object(info)),
    );
    (vec![c1, c2], annotations)
}

/// `X-1`, `X-2`.
pub fn hot_upgrade_names(name: &str) -> (String, String) {
    (format!("{name}-1"), format!("{name}-2"))
}
