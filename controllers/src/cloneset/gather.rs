//! The gather step: reads what [`super::plan::decide`] looks at from the shared pod and revision
//! caches and the API server (PVCs), and nothing else. It decides nothing.

use std::collections::HashMap;
use std::sync::Arc;

use graft_api::apps::v1alpha1::CloneSet;
use graft_api::labels;
use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use kube::api::ListParams;
use kube::{Api, ResourceExt};

use super::controller::{Error, api_err};
use super::facts;
use super::plan::Observed;
use crate::context::Context;
use crate::revision;

/// What one reconcile works from: the planner's input, and the objects behind it that the
/// executor needs to carry the plan out.
pub(super) struct Gathered {
    /// The planner's input.
    pub observed: Observed,
    /// The namespace's pods as read from the cache, by name.
    pub pods: HashMap<String, Arc<Pod>>,
    /// The pod templates of the observed revisions, by revision name.
    pub templates: HashMap<String, PodTemplateSpec>,
}

/// Reads the world of `cs`; `label_selector` is its selector in query syntax
/// ([`super::plan::admit`]).
pub(super) async fn gather(
    ctx: &Context,
    cs: &CloneSet,
    key: &str,
    label_selector: &str,
) -> Result<Gathered, Error> {
    let ns = cs.namespace().unwrap_or_default();
    let uid = cs.metadata.uid.clone().unwrap_or_default();
    let list = ListParams::default().labels(label_selector);

    let revisions = owned_revisions(ctx, &ns, &uid);
    let revision_data =
        revision::template_revision_data(&cs.spec.template).map_err(|source| Error::Revision {
            key: key.to_string(),
            source,
        })?;
    let templates: HashMap<String, PodTemplateSpec> = revisions
        .iter()
        .filter_map(|r| {
            let t = revision::template_from_revision(r).ok()?;
            Some((r.metadata.name.clone()?, t))
        })
        .collect();

    let pvc_instance_ids = if cs.spec.volume_claim_templates.is_some() {
        pvc_instance_ids(ctx, key, &ns, &list, &uid).await?
    } else {
        Vec::new()
    };

    let now = Timestamp::now();
    let grace = cs.spec.in_place_grace_seconds();
    let pods: HashMap<String, Arc<Pod>> = ctx
        .pods
        .state()
        .into_iter()
        .filter(|p| p.metadata.namespace.as_deref() == Some(ns.as_str()))
        .filter(|p| may_claim(cs, &uid, p))
        .map(|p| (p.name_any(), p))
        .collect();
    let mut observed_pods: Vec<_> = pods
        .values()
        .map(|p| facts::observe(p, &templates, &cs.spec.template, grace, now))
        .collect();
    // The cache's order is arbitrary; a stable order keeps plans reproducible in the logs.
    observed_pods.sort_by(|a, b| a.info.name.cmp(&b.info.name));

    // Enough fresh ids for replicas plus any surge; unused ones are simply dropped.
    let wanted_ids = usize::try_from(cs.spec.replicas.unwrap_or(1).max(0)).unwrap_or(0) + 8;
    let observed = Observed {
        cloneset: cs.clone(),
        pods: observed_pods,
        revisions,
        revision_data,
        pvc_instance_ids,
        fresh_instance_ids: (0..wanted_ids).map(|_| random_id()).collect(),
        scaling_exclude_preparing_delete: ctx.cloneset_scaling_exclude_preparing_delete,
        image_pull_jobs: crate::predownload::owned_jobs(ctx, &ns, &uid),
        now,
    };
    Ok(Gathered {
        observed,
        pods,
        templates,
    })
}

/// Whether the CloneSet (uid `uid`) can have anything to do with `pod`: its controller, or no
/// controller and its labels match the selector (to adopt). Every other pod is
/// `Claim::Ignore` (`plan::decide::claim`); leaving them out before their facts are observed keeps a
/// reconcile's cost to its own pods when many CloneSets share a namespace (3,000 pods of 100
/// CloneSets: each reconcile observed all 3,000).
fn may_claim(cs: &CloneSet, uid: &str, pod: &Pod) -> bool {
    let controller = pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true));
    match controller {
        Some(o) => o.uid == uid,
        None => {
            graft_api::selector::matches_labels(&cs.spec.selector, pod.metadata.labels.as_ref())
        }
    }
}

/// The revisions `uid` owns in `ns`, from the shared cache.
fn owned_revisions(ctx: &Context, ns: &str, uid: &str) -> Vec<ControllerRevision> {
    ctx.revisions
        .state()
        .iter()
        .filter(|r| r.metadata.namespace.as_deref() == Some(ns) && owned_by(&r.metadata, uid))
        .map(|r| ControllerRevision::clone(r))
        .collect()
}

/// Instance ids of the PVCs owned by the CloneSet.
async fn pvc_instance_ids(
    ctx: &Context,
    key: &str,
    ns: &str,
    list: &ListParams,
    uid: &str,
) -> Result<Vec<String>, Error> {
    Ok(
        Api::<PersistentVolumeClaim>::namespaced(ctx.client.clone(), ns)
            .list(list)
            .await
            .map_err(api_err(key, "listing PVCs"))?
            .items
            .into_iter()
            .filter(|p| owned_by(&p.metadata, uid))
            // A terminating PVC still carries its instance id, but a new pod must not reuse it:
            // the scheduler refuses a pod whose claim is being deleted (kruise's `getOwnedPVCs`
            // skips them too), so the id is free for a fresh PVC only once it is gone.
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .filter_map(|p| {
                p.metadata
                    .labels
                    .and_then(|l| l.get(labels::CLONESET_INSTANCE_ID).cloned())
            })
            .collect(),
    )
}

/// Whether an object has an owner reference to the object with `uid`.
pub(super) fn owned_by(meta: &ObjectMeta, uid: &str) -> bool {
    meta.owner_references.iter().flatten().any(|o| o.uid == uid)
}

/// A random instance id: 5 characters from Kubernetes' `rand.String` alphabet (no vowels, no
/// look-alikes, so names never spell words).
fn random_id() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut rng = rand::rng();
    (0..5)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_ids_are_five_safe_characters() {
        for _ in 0..100 {
            let id = random_id();
            assert_eq!(id.len(), 5);
            assert!(
                id.chars()
                    .all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c))
            );
        }
    }
}
