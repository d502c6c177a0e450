//! The whole reconcile decided at once: from what the executor [`Observed`] (the CloneSet, every
//! pod of its namespace, its revisions) to one [`Plan`]. Before the pod rules of [`plan`] run,
//! this step refuses invalid CloneSets, claims pods (adopt orphans that match the selector,
//! release owned pods that stopped matching, leave other controllers' pods alone) and settles the
//! revision history (create the update revision, stepping `collisionCount` past taken names, or
//! move an old revision to the top on a rollback). All of it is pure, like the rest of the planner.

use std::collections::BTreeMap;

use graft_api::apps::v1alpha1::CloneSet;
use graft_api::apps::v1alpha1::cloneset::CloneSetUpdateStrategyType;
use graft_api::{labels, selector};
use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use k8s_openapi::jiff::Timestamp;
use kube::Resource;
use serde_json::Value;

use super::predownload;
use super::view::same_revision;
use super::{Action, Plan, PodInfo, Snapshot, plan};
use crate::cloneset::{pods, vct};
use crate::inplace;
use crate::revision::{self, RevisionAction, RevisionOwner};

/// Everything the executor read for one reconcile: the CloneSet, the pods of its namespace from
/// the shared cache, its revisions, its PVCs' instance ids, and the clock.
#[derive(Clone, Debug, PartialEq)]
pub struct Observed {
    /// The CloneSet as read.
    pub cloneset: CloneSet,
    /// Every pod of the CloneSet's namespace (owned, orphaned, or another controller's):
    /// which of them the CloneSet owns is decided here.
    pub pods: Vec<ObservedPod>,
    /// The ControllerRevisions owned by the CloneSet.
    pub revisions: Vec<ControllerRevision>,
    /// The CloneSet's template as revision data ([`revision::template_revision_data`]).
    pub revision_data: Value,
    /// Instance ids of the PVCs owned by the CloneSet ([`Snapshot::pvc_instance_ids`]).
    pub pvc_instance_ids: Vec<String>,
    /// Pre-generated random instance ids ([`Snapshot::fresh_instance_ids`]).
    pub fresh_instance_ids: Vec<String>,
    /// The manager flag `--cloneset-scaling-exclude-preparing-delete`.
    pub scaling_exclude_preparing_delete: bool,
    /// Names of the ImagePullJobs controlled by the CloneSet (image pre-download).
    pub image_pull_jobs: Vec<String>,
    /// The clock.
    pub now: Timestamp,
}

/// One pod of the namespace with the facts claiming needs besides its [`PodInfo`].
#[derive(Clone, Debug, PartialEq)]
pub struct ObservedPod {
    /// `metadata.uid` (the adopt/release patch carries it as a precondition).
    pub uid: Option<String>,
    /// `metadata.ownerReferences`.
    pub owner_references: Vec<OwnerReference>,
    /// The pod has the `KruisePodReady` readiness gate.
    pub kruise_pod_ready_gate: bool,
    /// The pod has a `KruisePodReady` condition (of any status).
    pub kruise_pod_ready_condition: bool,
    /// The pod as the rules see it. `in_place.possible` is measured from the template of the
    /// pod's own revision to the CloneSet's template; a pod at the update revision is always
    /// in-place-able.
    pub info: PodInfo,
}

/// Why a CloneSet is not reconciled: invalid input, reported once (Warning Event `InvalidSpec`)
/// and then the controller waits for the object to change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// What is wrong, in the validation's words.
    pub message: String,
}

/// Validates the CloneSet as OpenKruise's webhook does (an empty selector included: it would
/// select every pod of the namespace) and renders its selector for list calls and
/// `status.labelSelector`. A selector the API server would refuse is invalid input too.
pub fn admit(cs: &CloneSet) -> Result<String, Refusal> {
    let errors = cs.spec.validate();
    if !errors.is_empty() {
        return Err(Refusal {
            message: errors.to_string(),
        });
    }
    if selector::is_empty(&cs.spec.selector) {
        return Err(Refusal {
            message: "spec.selector: empty selector is not valid".into(),
        });
    }
    selector::to_query(&cs.spec.selector).map_err(|e| Refusal {
        message: format!("spec.selector: {e}"),
    })
}

/// What claiming does with one pod of the namespace (`ClaimPods`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim {
    /// Owned and matching: one of the CloneSet's pods.
    Keep,
    /// An orphan (no controller) that matches and is not terminating: adopt it.
    Adopt,
    /// Owned but no longer matching: drop our owner reference.
    Release,
    /// Another controller's pod, or an orphan that does not match (or is terminating).
    Ignore,
}

/// Claims one pod of the namespace for `cs` (matched by the CloneSet's uid).
pub fn claim(cs: &CloneSet, pod: &ObservedPod) -> Claim {
    let uid = cs.metadata.uid.as_deref().unwrap_or_default();
    let matches = selector::matches(&cs.spec.selector, &pod.info.labels);
    let controller = pod
        .owner_references
        .iter()
        .find(|o| o.controller == Some(true));
    match controller {
        Some(o) if o.uid == uid && matches => Claim::Keep,
        Some(o) if o.uid == uid => Claim::Release,
        None if matches && pod.info.deletion_timestamp.is_none() => Claim::Adopt,
        _ => Claim::Ignore,
    }
}

/// The update and current revisions, the collision count, and what to write to the history.
struct Revisions {
    update: String,
    current: String,
    /// The update revision as it will be once `action` went through.
    update_revision: ControllerRevision,
    /// The current revision.
    current_revision: ControllerRevision,
    collision_count: i32,
    action: Option<Action>,
}

/// The annotations a new CloneSet revision gets (`NewRevision`): the CloneSet's own, and the hash
/// of its `volumeClaimTemplates` ([`vct::VCT_HASH_ANNOTATION`]).
pub fn revision_annotations(cs: &CloneSet) -> BTreeMap<String, String> {
    let mut annotations = cs.metadata.annotations.clone().unwrap_or_default();
    annotations.insert(
        vct::VCT_HASH_ANNOTATION.to_string(),
        vct::hash_annotation(cs.spec.volume_claim_templates.as_deref()),
    );
    annotations
}

fn revisions(obs: &Observed) -> Revisions {
    let cs = &obs.cloneset;
    let owner = RevisionOwner {
        api_version: CloneSet::api_version(&()).to_string(),
        kind: CloneSet::kind(&()).to_string(),
        name: cs.metadata.name.clone().unwrap_or_default(),
        namespace: cs.metadata.namespace.clone(),
        uid: cs.metadata.uid.clone().unwrap_or_default(),
    };
    let status = cs.status.clone().unwrap_or_default();
    let template_labels = cs
        .spec
        .template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let annotations = revision_annotations(cs);
    let vct_hash = annotations
        .get(vct::VCT_HASH_ANNOTATION)
        .cloned()
        .unwrap_or_default();
    let mut active = revision::resolve_revisions(
        &obs.revisions,
        &owner,
        &template_labels,
        &annotations,
        obs.revision_data.clone(),
        status.current_revision.as_deref(),
        status.collision_count.unwrap_or(0),
    );
    // A rollback to an older revision brings the volumeClaimTemplates hash of today's CloneSet
    // along; the newest revision keeps its hash (kruise changes no revision then).
    let mut bump_vct_hash = None;
    if let RevisionAction::BumpRevision { .. } = active.action
        && vct::hash_of(&active.update) != Some(vct_hash.as_str())
    {
        active
            .update
            .metadata
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(vct::VCT_HASH_ANNOTATION.to_string(), vct_hash.clone());
        bump_vct_hash = Some(vct_hash);
    }
    let action = match active.action {
        RevisionAction::None => None,
        // A name taken by a revision we did not list (not ours, or not labelled like ours) only
        // shows as a conflict on create: then the next collision count is the one to try.
        RevisionAction::Create(rev) => Some(Action::CreateRevision {
            revision: Box::new(rev),
            collision_count_on_conflict: active.collision_count.saturating_add(1),
        }),
        RevisionAction::BumpRevision { name, revision } => Some(Action::BumpRevision {
            name,
            revision,
            vct_hash: bump_vct_hash,
        }),
    };
    Revisions {
        update: active.update.metadata.name.clone().unwrap_or_default(),
        current: active.current.metadata.name.clone().unwrap_or_default(),
        update_revision: active.update,
        current_revision: active.current,
        collision_count: active.collision_count,
        action,
    }
}

fn adopt(cs: &CloneSet, pod: &ObservedPod) -> Action {
    let mut owner_references = pod.owner_references.clone();
    owner_references.push(pods::owner_reference(cs));
    Action::AdoptPod {
        name: pod.info.name.clone(),
        uid: pod.uid.clone(),
        owner_references,
    }
}

fn release(cs: &CloneSet, pod: &ObservedPod) -> Action {
    let uid = cs.metadata.uid.as_deref().unwrap_or_default();
    Action::ReleasePod {
        name: pod.info.name.clone(),
        uid: pod.uid.clone(),
        owner_references: pod
            .owner_references
            .iter()
            .filter(|o| o.uid != uid)
            .cloned()
            .collect(),
    }
}

/// The adopt/release actions for the namespace's pods, and the pods the CloneSet owns once they
/// went through.
fn claim_all<'a>(cs: &CloneSet, pods: &'a [ObservedPod]) -> (Vec<Action>, Vec<&'a ObservedPod>) {
    let mut actions = Vec::new();
    let mut owned = Vec::new();
    for pod in pods {
        match claim(cs, pod) {
            Claim::Keep => owned.push(pod),
            Claim::Adopt => {
                actions.push(adopt(cs, pod));
                owned.push(pod);
            }
            Claim::Release => actions.push(release(cs, pod)),
            Claim::Ignore => {}
        }
    }
    (actions, owned)
}

/// Why a pod at `revision` must be recreated to reach `update` although its template could
/// change in place: the CloneSet's `volumeClaimTemplates` changed between the two revisions
/// (`RecreatePodWhenChangeVCTInCloneSetGate`; `InPlaceOnly` ignores the hashes).
fn vct_refusal(
    cs: &CloneSet,
    revisions: &[ControllerRevision],
    pod_revision: Option<&str>,
    update: &ControllerRevision,
) -> Option<String> {
    let strategy = cs
        .spec
        .update_strategy
        .as_ref()
        .and_then(|u| u.type_)
        .unwrap_or_default();
    if strategy == CloneSetUpdateStrategyType::InPlaceOnly {
        return None;
    }
    let old = revisions
        .iter()
        .find(|r| same_revision(pod_revision, r.metadata.name.as_deref().unwrap_or_default()))?;
    (!vct::can_update_in_place(old, update)).then(|| {
        format!(
            "volumeClaimTemplates changed since revision {} (annotation {} {:?} -> {:?})",
            old.metadata.name.as_deref().unwrap_or_default(),
            vct::VCT_HASH_ANNOTATION,
            vct::hash_of(old).unwrap_or_default(),
            vct::hash_of(update).unwrap_or_default(),
        )
    })
}

/// Whether a pod at the update revision can go back to the current one in place (a partition
/// rollback): the engine's verdict on the two templates, then the volumeClaimTemplates hashes.
fn rollback_in_place(
    cs: &CloneSet,
    update: &ControllerRevision,
    current: &ControllerRevision,
) -> Result<(), String> {
    let (from, to) = match (
        revision::template_from_revision(update),
        revision::template_from_revision(current),
    ) {
        (Ok(f), Ok(t)) => (f, t),
        (Err(e), _) | (_, Err(e)) => return Err(e.to_string()),
    };
    inplace::calculate(&from, &to, "", cs.spec.in_place_grace_seconds())
        .map_err(|e| e.to_string())?;
    match vct_refusal(
        cs,
        std::slice::from_ref(update),
        update.metadata.name.as_deref(),
        current,
    ) {
        Some(why) => Err(why),
        None => Ok(()),
    }
}

/// The pod as the rules see it: a pod already at the update revision needs no in-place update
/// forwards, so it is only refused one back to the current revision (`back`: `None` when the two
/// revisions are one); another is refused one when the volumeClaimTemplates changed.
fn pod_info(
    cs: &CloneSet,
    revisions: &[ControllerRevision],
    pod: &ObservedPod,
    update: &ControllerRevision,
    back: Option<&Result<(), String>>,
) -> PodInfo {
    let mut info = pod.info.clone();
    let revision = info
        .labels
        .get(labels::CONTROLLER_REVISION_HASH)
        .map(String::as_str);
    let update_name = update.metadata.name.as_deref().unwrap_or_default();
    if same_revision(revision, update_name) {
        info.in_place.possible = back.cloned().unwrap_or(Ok(()));
    } else if info.in_place.possible.is_ok()
        && let Some(why) = vct_refusal(cs, revisions, revision, update)
    {
        info.in_place.possible = Err(why);
    }
    info
}

/// Plans one reconcile from what was observed: refuse invalid input, claim pods, settle the
/// revisions, run the pod rules ([`plan`]) on the claimed pods, and name the old revisions to
/// prune. The plan's actions start with the claims and the revision write, then the
/// `KruisePodReady` conditions of pods that lack one, then the pod operations.
pub fn decide(obs: &Observed) -> Result<Plan, Refusal> {
    let cs = &obs.cloneset;
    let label_selector = admit(cs)?;
    let revs = revisions(obs);

    let (mut first, owned) = claim_all(cs, &obs.pods);
    first.extend(revs.action);
    // Pods with the KruisePodReady gate start in service: give them the condition once.
    first.extend(
        owned
            .iter()
            .filter(|p| {
                p.info.deletion_timestamp.is_none()
                    && p.kruise_pod_ready_gate
                    && !p.kruise_pod_ready_condition
            })
            .map(|p| Action::InitKruisePodReady {
                name: p.info.name.clone(),
            }),
    );

    let back = (revs.current != revs.update)
        .then(|| rollback_in_place(cs, &revs.update_revision, &revs.current_revision));
    let snapshot = Snapshot {
        cloneset: cs.clone(),
        pods: owned
            .iter()
            .map(|p| pod_info(cs, &obs.revisions, p, &revs.update_revision, back.as_ref()))
            .collect(),
        update_revision: revs.update.clone(),
        current_revision: revs.current.clone(),
        collision_count: Some(revs.collision_count),
        label_selector,
        pvc_instance_ids: obs.pvc_instance_ids.clone(),
        fresh_instance_ids: obs.fresh_instance_ids.clone(),
        scaling_exclude_preparing_delete: obs.scaling_exclude_preparing_delete,
        now: obs.now,
    };
    let mut plan = plan(&snapshot);
    first.append(&mut plan.actions);
    plan.actions = first;
    plan.pre_download = predownload::decide(&predownload::Facts {
        cloneset: cs,
        current: &revs.current_revision,
        update: &revs.update_revision,
        owned_jobs: &obs.image_pull_jobs,
    });

    // History: keep revisionHistoryLimit besides the live revisions.
    let pod_revisions: Vec<&str> = owned
        .iter()
        .filter_map(|p| {
            p.info
                .labels
                .get(labels::CONTROLLER_REVISION_HASH)
                .map(String::as_str)
        })
        .collect();
    plan.delete_revisions = revision::revisions_to_delete(
        &obs.revisions,
        cs.spec.revision_history_limit.unwrap_or(10),
        &revs.current,
        &revs.update,
        &pod_revisions,
    );
    Ok(plan)
}
