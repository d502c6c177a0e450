//! Pruning: what an earlier commit applied that the new one no longer has, limited to what
//! this GitSync created and the user did not protect.

use std::collections::{BTreeMap, BTreeSet};

use graft_api::graft::gitsync::InventoryEntry;
use serde_json::Value;

use super::{Owner, Stage};
use crate::object::{ObjectId, ObjectRef};

/// Annotation that protects an object from pruning when set to [`PRUNE_DISABLED`] (as Flux's
/// `kustomize.toolkit.fluxcd.io/prune: disabled`).
pub const PRUNE_ANNOTATION: &str = "graft.dev/prune";
/// The value of [`PRUNE_ANNOTATION`] that protects an object.
pub const PRUNE_DISABLED: &str = "disabled";

/// The labels and annotations of a live object, all pruning looks at.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LiveMeta {
    /// `metadata.labels`.
    pub labels: BTreeMap<String, String>,
    /// `metadata.annotations`.
    pub annotations: BTreeMap<String, String>,
}

impl LiveMeta {
    /// Reads the labels and annotations of a live object (JSON).
    pub fn from_object(obj: &Value) -> Self {
        let map = |field: &str| -> BTreeMap<String, String> {
            obj.get("metadata")
                .and_then(|m| m.get(field))
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                        .collect()
                })
                .unwrap_or_default()
        };
        Self {
            labels: map("labels"),
            annotations: map("annotations"),
        }
    }
}

/// Why an object of the old inventory is or is not deleted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PruneDecision {
    /// Delete it.
    Delete,
    /// It no longer exists.
    Gone,
    /// It does not carry this GitSync's owner label (someone else created or adopted it).
    NotOwned {
        /// The owner label it carries, if any.
        owner: Option<String>,
    },
    /// It carries `graft.dev/prune: disabled`.
    Disabled,
}

/// What to delete, in order, and what was left alone.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PrunePlan {
    /// Deletion waves: workloads first, then the other namespaced objects, then cluster-scoped
    /// ones, CRDs and Namespaces last. Objects inside a wave may be deleted concurrently.
    pub delete: Vec<Vec<ObjectRef>>,
    /// Objects of the old inventory that left the repository but are not deleted, and why.
    pub kept: Vec<(ObjectRef, PruneDecision)>,
}

impl PrunePlan {
    /// True when nothing is to be deleted.
    pub fn is_empty(&self) -> bool {
        self.delete.is_empty()
    }
}

/// Decides the fate of one live object that left the repository.
pub fn decide(live: Option<&LiveMeta>, owner: &Owner) -> PruneDecision {
    let Some(live) = live else {
        return PruneDecision::Gone;
    };
    let label = live.labels.get(graft_api::labels::GRAFT_GITSYNC);
    if label != Some(&owner.label_value()) {
        return PruneDecision::NotOwned {
            owner: label.cloned(),
        };
    }
    if live
        .annotations
        .get(PRUNE_ANNOTATION)
        .is_some_and(|v| v.eq_ignore_ascii_case(PRUNE_DISABLED))
    {
        return PruneDecision::Disabled;
    }
    PruneDecision::Delete
}

/// The prune set: objects of `old_inventory` whose identity (group, kind, namespace, name; the
/// version may change) is not among `new_objects`, that still exist in `live`, carry the owner
/// label of `owner` and are not protected by [`PRUNE_ANNOTATION`].
///
/// After deleting, the executor stores the new plan's inventory plus every object whose delete
/// failed, so that a later sync retries it.
pub fn prune_set<'a>(
    old_inventory: &[InventoryEntry],
    new_objects: impl IntoIterator<Item = &'a ObjectRef>,
    live: &BTreeMap<ObjectId, LiveMeta>,
    owner: &Owner,
) -> PrunePlan {
    let keep: BTreeSet<ObjectId> = new_objects.into_iter().map(ObjectRef::id).collect();
    let mut stages: BTreeMap<Stage, Vec<ObjectRef>> = BTreeMap::new();
    let mut kept = Vec::new();
    let mut seen = BTreeSet::new();
    for entry in old_inventory {
        let r = ObjectRef::from(entry);
        let id = r.id();
        if keep.contains(&id) || !seen.insert(id.clone()) {
            continue;
        }
        match decide(live.get(&id), owner) {
            PruneDecision::Delete => stages
                .entry(Stage::of(&r.group, &r.kind, r.namespace.is_some()))
                .or_default()
                .push(r),
            other => kept.push((r, other)),
        }
    }
    let delete = stages
        .into_iter()
        .rev()
        .map(|(_, mut v)| {
            v.sort();
            v
        })
        .collect();
    PrunePlan { delete, kept }
}
