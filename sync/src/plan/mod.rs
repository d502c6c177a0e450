//! The apply plan: rendered objects in, ordered waves of labelled objects out; and the prune
//! set: what an earlier commit applied that this one no longer has.
//!
//! Waves run one after the other; the objects inside a wave may be applied concurrently:
//!
//! | stage | objects | why |
//! |---|---|---|
//! | [`Stage::Definitions`] | CustomResourceDefinitions, Namespaces | everything else needs them (wait for CRDs to be `Established`) |
//! | [`Stage::ClusterScoped`] | other cluster-scoped objects (ClusterRoles, StorageClasses, ...) | namespaced objects refer to them |
//! | [`Stage::Namespaced`] | other namespaced objects (ConfigMaps, Secrets, Services, ...) | workloads mount and use them |
//! | [`Stage::ImagePull`] | ImagePullJobs | images are pulled before the workloads roll out |
//! | [`Stage::Sidecars`] | SidecarSets | injected into the workloads' new pods |
//! | [`Stage::Workloads`] | CloneSet, Advanced StatefulSet/DaemonSet, Deployment, StatefulSet, DaemonSet, Jobs, ... | last |
//!
//! Pruning deletes in the reverse order: workloads first, CRDs and Namespaces last.
//!
//! **Sync waves** order the stages themselves, as Argo CD's do: an object annotated
//! `graft.dev/sync-wave: "<integer>"` (or Argo CD's `argocd.argoproj.io/sync-wave`, read when
//! graft's is absent) belongs to that wave, default 0. Waves apply in ascending order, each in the
//! stage order above; the sync applies a wave only once every workload of the earlier waves is
//! healthy (a BroadcastJob: completed), so a post-rollout check runs after the rollout.
//!
//! **Jobs are replaced, not patched, when their definition changes**: a batch Job's pod
//! template is immutable, and a finished BroadcastJob never runs again. Each Job and
//! BroadcastJob carries `graft.dev/spec-hash` (a hash of its `spec` in Git); when the commit's
//! hash differs from the live object's, the apply deletes the job and creates it again. The
//! annotation `graft.dev/replace-on-change: "false"` opts an object out (it is then patched like
//! anything else, and a Job's immutable fields make its apply fail).

mod prune;
mod scopes;

use std::collections::BTreeMap;

use graft_api::graft::gitsync::InventoryEntry;
use serde_json::Value;

pub use prune::{LiveMeta, PRUNE_ANNOTATION, PRUNE_DISABLED, PruneDecision, PrunePlan, prune_set};
pub use scopes::KindScopes;

use crate::Error;
use crate::object::{ObjectId, ObjectRef};
use crate::render::{Location, RenderError, RenderErrors, RenderedObject};

/// The GitSync that owns the objects of a plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    /// Namespace of the GitSync.
    pub namespace: String,
    /// Name of the GitSync.
    pub name: String,
}

impl Owner {
    /// The value of the owner label [`graft_api::labels::GRAFT_GITSYNC`]: `<namespace>.<name>`,
    /// or, when that does not fit a label value (63 characters), its first 46 characters, `-`
    /// and 16 hex digits of a hash of the whole, so distinct owners keep distinct values.
    pub fn label_value(&self) -> String {
        let full = format!("{}.{}", self.namespace, self.name);
        if full.len() <= 63 {
            return full;
        }
        let hash = fnv1a(full.as_bytes());
        let head: String = full.chars().take(46).collect();
        format!("{}-{hash:016x}", head.trim_end_matches(['.', '-', '_']))
    }
}

/// FNV-1a: a small stable hash (the std hasher is not guaranteed stable across releases).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100000001b3)
    })
}

/// Apply stages, in apply order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stage {
    /// CustomResourceDefinitions and Namespaces.
    Definitions,
    /// Other cluster-scoped objects.
    ClusterScoped,
    /// Other namespaced objects.
    Namespaced,
    /// OpenKruise ImagePullJobs.
    ImagePull,
    /// OpenKruise SidecarSets.
    Sidecars,
    /// Workloads that create pods.
    Workloads,
}

impl Stage {
    /// The stage of a kind; `namespaced` is its scope.
    pub fn of(group: &str, kind: &str, namespaced: bool) -> Self {
        match (group, kind) {
            ("apiextensions.k8s.io", "CustomResourceDefinition") | ("", "Namespace") => {
                Self::Definitions
            }
            ("apps.kruise.io", "ImagePullJob" | "ImageListPullJob") => Self::ImagePull,
            ("apps.kruise.io", "SidecarSet") => Self::Sidecars,
            ("apps", "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet")
            | ("batch", "Job" | "CronJob")
            | ("", "Pod" | "ReplicationController")
            | (
                "apps.kruise.io",
                "CloneSet" | "StatefulSet" | "DaemonSet" | "BroadcastJob" | "AdvancedCronJob"
                | "UnitedDeployment",
            ) => Self::Workloads,
            _ if namespaced => Self::Namespaced,
            _ => Self::ClusterScoped,
        }
    }
}

/// Graft's sync-wave annotation (an integer, default 0).
pub const SYNC_WAVE: &str = "graft.dev/sync-wave";
/// Argo CD's sync-wave annotation, read when [`SYNC_WAVE`] is absent.
pub const ARGO_SYNC_WAVE: &str = "argocd.argoproj.io/sync-wave";
/// Annotation on applied Jobs and BroadcastJobs: the hash of their `spec` in Git.
pub const SPEC_HASH: &str = "graft.dev/spec-hash";
/// `"false"` on a Job or BroadcastJob: patch it when its definition changes, never replace it.
pub const REPLACE_ON_CHANGE: &str = "graft.dev/replace-on-change";

/// Kinds that are replaced when their definition changes (see the module docs).
pub fn replaced_on_change(group: &str, kind: &str) -> bool {
    matches!(
        (group, kind),
        ("batch", "Job") | ("apps.kruise.io", "BroadcastJob")
    )
}

/// An object ready to be applied: labelled, its namespace set (or removed for cluster-scoped
/// kinds).
#[derive(Clone, Debug, PartialEq)]
pub struct PlannedObject {
    /// Group, version, kind, namespace and name as applied.
    pub reference: ObjectRef,
    /// The object to send with server-side apply.
    pub object: Value,
    /// Where it came from in the commit.
    pub location: Location,
}

impl PlannedObject {
    /// The `graft.dev/spec-hash` it is applied with, when it is replaced on change.
    pub fn spec_hash(&self) -> Option<&str> {
        self.object
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(SPEC_HASH))
            .and_then(Value::as_str)
    }
}

/// Objects that may be applied concurrently, after every earlier wave.
#[derive(Clone, Debug, PartialEq)]
pub struct Wave {
    /// The sync wave ([`SYNC_WAVE`]).
    pub sync_wave: i64,
    /// The stage.
    pub stage: Stage,
    /// The objects, sorted by kind, namespace and name.
    pub objects: Vec<PlannedObject>,
}

/// The ordered waves of a commit.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ApplyPlan {
    /// Non-empty waves in apply order.
    pub waves: Vec<Wave>,
}

impl ApplyPlan {
    /// Every planned object, in apply order.
    pub fn objects(&self) -> impl Iterator<Item = &PlannedObject> {
        self.waves.iter().flat_map(|w| w.objects.iter())
    }

    /// The distinct sync waves, ascending.
    pub fn sync_waves(&self) -> Vec<i64> {
        let mut v: Vec<i64> = self.waves.iter().map(|w| w.sync_wave).collect();
        v.dedup();
        v
    }

    /// The part of the plan in sync wave `wave`.
    pub fn sync_wave(&self, wave: i64) -> ApplyPlan {
        ApplyPlan {
            waves: self
                .waves
                .iter()
                .filter(|w| w.sync_wave == wave)
                .cloned()
                .collect(),
        }
    }

    /// The inventory to store in the GitSync status once the plan is applied, sorted.
    pub fn inventory(&self) -> Vec<InventoryEntry> {
        let mut v: Vec<InventoryEntry> = self
            .objects()
            .map(|o| InventoryEntry::from(&o.reference))
            .collect();
        v.sort();
        v
    }
}

/// Plans the apply of a commit's objects for `owner`.
///
/// - `scopes` tells which kinds are namespaced (from discovery), completed by the CRDs of the
///   commit itself; an object of a kind neither knows is an error naming its file.
/// - Namespaced objects without a namespace go to `default_namespace`; cluster-scoped objects
///   lose a namespace they were given (as kubectl does).
/// - Every object gets the owner label; two objects that end up with the same identity are an
///   error naming both files. All errors are collected.
pub fn plan(
    objects: &[RenderedObject],
    scopes: &KindScopes,
    owner: &Owner,
    default_namespace: &str,
) -> Result<ApplyPlan, Error> {
    let mut scopes = scopes.clone();
    scopes.add_crds(objects.iter().map(|o| &o.object));
    let owner_label = owner.label_value();
    let mut errors = Vec::new();
    let mut seen: BTreeMap<ObjectId, Location> = BTreeMap::new();
    let mut stages: BTreeMap<(i64, Stage), Vec<PlannedObject>> = BTreeMap::new();
    for o in objects {
        let r = &o.reference;
        let Some(namespaced) = scopes.is_namespaced(&r.group, &r.kind) else {
            errors.push(RenderError::at(
                &o.location,
                None,
                format!(
                    "unknown kind {} in {}: the cluster does not serve it and no CustomResourceDefinition of this commit defines it",
                    r.kind,
                    r.api_version()
                ),
            ));
            continue;
        };
        let mut reference = r.clone();
        let mut object = o.object.clone();
        reference.namespace = if namespaced {
            Some(
                r.namespace
                    .clone()
                    .unwrap_or_else(|| default_namespace.to_string()),
            )
        } else {
            None
        };
        let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) else {
            continue; // the renderer guarantees metadata is a mapping
        };
        match &reference.namespace {
            Some(ns) => {
                meta.insert("namespace".into(), Value::String(ns.clone()));
            }
            None => {
                meta.remove("namespace");
            }
        }
        let labels = meta
            .entry("labels")
            .or_insert_with(|| Value::Object(Default::default()));
        if !labels.is_object() {
            *labels = Value::Object(Default::default());
        }
        if let Some(l) = labels.as_object_mut() {
            l.insert(
                graft_api::labels::GRAFT_GITSYNC.into(),
                Value::String(owner_label.clone()),
            );
        }
        let sync_wave = match sync_wave(meta) {
            Ok(w) => w,
            Err(message) => {
                errors.push(RenderError::at(&o.location, None, message));
                continue;
            }
        };
        let opted_out = meta
            .get("annotations")
            .and_then(|a| a.get(REPLACE_ON_CHANGE))
            .and_then(Value::as_str)
            == Some("false");
        if replaced_on_change(&r.group, &r.kind) && !opted_out {
            // serde_json's maps are sorted (no `preserve_order`): the same spec gives the same
            // text whatever order the manifest wrote its keys in.
            let spec = o
                .object
                .get("spec")
                .map(Value::to_string)
                .unwrap_or_default();
            let hash = format!("{:016x}", fnv1a(spec.as_bytes()));
            let annotations = meta
                .entry("annotations")
                .or_insert_with(|| Value::Object(Default::default()));
            if !annotations.is_object() {
                *annotations = Value::Object(Default::default());
            }
            if let Some(a) = annotations.as_object_mut() {
                a.insert(SPEC_HASH.into(), Value::String(hash));
            }
        }
        let id = reference.id();
        if let Some(first) = seen.get(&id) {
            errors.push(RenderError::at(
                &o.location,
                None,
                format!("{id} is defined twice: also in {first}"),
            ));
            continue;
        }
        seen.insert(id, o.location.clone());
        stages
            .entry((sync_wave, Stage::of(&r.group, &r.kind, namespaced)))
            .or_default()
            .push(PlannedObject {
                reference,
                object,
                location: o.location.clone(),
            });
    }
    if !errors.is_empty() {
        errors.sort();
        return Err(Error::Render(RenderErrors(errors)));
    }
    let waves = stages
        .into_iter()
        .map(|((sync_wave, stage), mut objects)| {
            objects.sort_by(|a, b| {
                (&a.reference.kind, &a.reference.namespace, &a.reference.name).cmp(&(
                    &b.reference.kind,
                    &b.reference.namespace,
                    &b.reference.name,
                ))
            });
            Wave {
                sync_wave,
                stage,
                objects,
            }
        })
        .collect();
    Ok(ApplyPlan { waves })
}

#[cfg(test)]
mod tests;

/// The sync wave an object's annotations give it ([`SYNC_WAVE`], else [`ARGO_SYNC_WAVE`], else
/// 0), or why its value is not one.
fn sync_wave(meta: &serde_json::Map<String, Value>) -> Result<i64, String> {
    let annotations = meta.get("annotations");
    for key in [SYNC_WAVE, ARGO_SYNC_WAVE] {
        if let Some(v) = annotations.and_then(|a| a.get(key)) {
            let text = v.as_str().unwrap_or_default();
            return text.trim().parse::<i64>().map_err(|_| {
                format!("annotation {key}: {v} is not an integer (the sync wave, default 0)")
            });
        }
    }
    Ok(0)
}
