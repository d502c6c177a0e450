//! The execute step: turns the setup writes and the plan's actions into API calls, in order, and
//! decides nothing. Setup writes (adoption, revisions) go first, one by one, and stop the
//! reconcile when one does not go through. Then the actions run grouped by pod (a PVC's owner
//! write goes with the pod of its ordinal): one pod's actions in plan order, different pods at
//! once, pod creations in slow-start batches (1, 2, 4, …) that stop after a failed batch.
//! Every write records an expectation so the next reconcile waits for the cache to show it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use graft_api::apps::common::LifecycleState;
use graft_api::apps::v1beta1::StatefulSet;
use graft_api::labels;
use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, Patch, Preconditions};
use kube::{Api, ResourceExt};
use serde_json::{Value, json};

use super::claims::{self, Owner, RetentionPolicy};
use super::controller::{CONTROLLER, Error, Keys, api_err, post, pp};
use super::gather::Gathered;
use super::identity;
use super::plan::{Action, status as plan_status};
use super::prepare::Setup;
use super::status;
use crate::context::Context;
use crate::expectations::Expected;
use crate::{inplace, podready};

/// Carries out one reconcile's writes for one StatefulSet.
pub(super) struct Executor<'a> {
    ctx: &'a Context,
    keys: &'a Keys,
    set: &'a StatefulSet,
    now: Timestamp,
    pods_api: Api<Pod>,
    pvcs_api: Api<PersistentVolumeClaim>,
    revisions_api: Api<ControllerRevision>,
    /// The observed pods by name.
    pods: &'a HashMap<String, Arc<Pod>>,
    /// The observed PVCs by name.
    claims: &'a HashMap<String, Arc<PersistentVolumeClaim>>,
    /// Templates by revision name.
    templates: &'a HashMap<String, PodTemplateSpec>,
}

/// How the setup writes went.
pub(super) enum SetupOutcome {
    /// All went through: go on with the plan.
    Done,
    /// One did not (the world changed under us): reconcile again after this long.
    Again(Duration),
}

/// What the actions did, for the status.
#[derive(Default)]
pub(super) struct Outcome {
    /// `(condition type, message)` of the failed actions that set a condition.
    pub conditions: Vec<(&'static str, String)>,
    /// Some action failed.
    pub failed: bool,
}

fn is_code(e: &kube::Error, codes: &[u16]) -> bool {
    matches!(e, kube::Error::Api(r) if codes.contains(&r.code))
}

impl<'a> Executor<'a> {
    /// An executor for what `gathered` read.
    pub fn new(
        ctx: &'a Context,
        keys: &'a Keys,
        set: &'a StatefulSet,
        gathered: &'a Gathered,
    ) -> Self {
        let ns = set.namespace().unwrap_or_default();
        Self {
            ctx,
            keys,
            set,
            now: gathered.prepared.snapshot.now,
            pods_api: Api::namespaced(ctx.client.clone(), &ns),
            pvcs_api: Api::namespaced(ctx.client.clone(), &ns),
            revisions_api: Api::namespaced(ctx.client.clone(), &ns),
            pods: &gathered.pods,
            claims: &gathered.claims,
            templates: &gathered.prepared.templates,
        }
    }

    fn key(&self) -> &str {
        &self.keys.set
    }

    fn set_name(&self) -> String {
        self.set.name_any()
    }

    // ---- setup ------------------------------------------------------------------------------

    /// Runs the setup writes one by one.
    pub async fn setup(&self, setup: &[Setup]) -> Result<SetupOutcome, Error> {
        if setup.iter().any(Setup::adopts) && !self.still_adoptable().await? {
            tracing::debug!(statefulset = %self.key(), "set changed or is being deleted: no adoption");
            return Ok(SetupOutcome::Again(Duration::from_secs(1)));
        }
        for s in setup {
            if let SetupOutcome::Again(after) = self.setup_one(s).await? {
                return Ok(SetupOutcome::Again(after));
            }
            tracing::info!(statefulset = %self.key(), setup = ?s, "done");
        }
        Ok(SetupOutcome::Done)
    }

    /// kruise `RecheckDeletionTimestamp`: adopt only for the very set we looked at, and not
    /// while it is being deleted (a quorum read, not the cache).
    async fn still_adoptable(&self) -> Result<bool, Error> {
        let api: Api<StatefulSet> = Api::namespaced(
            self.ctx.client.clone(),
            &self.set.namespace().unwrap_or_default(),
        );
        let fresh = api
            .get(&self.set_name())
            .await
            .map_err(api_err(self.key(), "re-reading the set before adopting"))?;
        Ok(fresh.metadata.uid == self.set.metadata.uid
            && fresh.metadata.deletion_timestamp.is_none())
    }

    async fn setup_one(&self, setup: &Setup) -> Result<SetupOutcome, Error> {
        match setup {
            Setup::AdoptPod {
                name,
                uid,
                owner_references,
            }
            | Setup::ReleasePod {
                name,
                uid,
                owner_references,
            } => {
                let patch = json!({"metadata": {"ownerReferences": owner_references, "uid": uid}});
                match self
                    .pods_api
                    .patch(name, &pp(), &Patch::Merge(&patch))
                    .await
                {
                    Ok(p) => {
                        self.expect_pod_patched(name, &p);
                        Ok(SetupOutcome::Done)
                    }
                    Err(e) if is_code(&e, &[404, 409, 422]) => {
                        tracing::debug!(statefulset = %self.key(), pod = %name, error = %e, "pod changed before its owner write");
                        Ok(SetupOutcome::Again(Duration::from_secs(1)))
                    }
                    Err(e) => Err(api_err(
                        self.key(),
                        format!("writing the owners of pod {name}"),
                    )(e)),
                }
            }
            Setup::AdoptRevision {
                name,
                uid,
                owner_references,
            } => {
                let patch = json!({"metadata": {"ownerReferences": owner_references, "uid": uid}});
                match self
                    .revisions_api
                    .patch(name, &pp(), &Patch::Merge(&patch))
                    .await
                {
                    Ok(r) => {
                        self.expect_revision_patched(name, &r);
                        Ok(SetupOutcome::Done)
                    }
                    Err(e) if is_code(&e, &[404, 409, 422]) => {
                        Ok(SetupOutcome::Again(Duration::from_secs(1)))
                    }
                    Err(e) => Err(api_err(self.key(), format!("adopting revision {name}"))(e)),
                }
            }
            Setup::CreateRevision {
                revision,
                collision_count_on_conflict,
            } => {
                self.create_revision(revision, *collision_count_on_conflict)
                    .await
            }
            Setup::InitKruisePodReady { name } => {
                let conditions = self
                    .pods
                    .get(name)
                    .and_then(|pod| podready::lifecycle_conditions(pod, None, self.now));
                if let Some(conditions) = conditions {
                    self.apply_change(name, inplace::PodChange::Conditions(conditions), None)
                        .await?;
                }
                Ok(SetupOutcome::Done)
            }
            Setup::BumpRevision { name, revision } => {
                let r = self
                    .revisions_api
                    .patch(name, &pp(), &Patch::Merge(&json!({"revision": revision})))
                    .await
                    .map_err(api_err(
                        self.key(),
                        "moving a revision to the top (rollback)",
                    ))?;
                self.expect_revision_patched(name, &r);
                Ok(SetupOutcome::Done)
            }
        }
    }

    async fn create_revision(
        &self,
        revision: &ControllerRevision,
        collision_count_on_conflict: i32,
    ) -> Result<SetupOutcome, Error> {
        let name = revision.metadata.name.clone().unwrap_or_default();
        let expected = Expected::Created(name.clone());
        self.ctx
            .expectations
            .expect(&self.keys.revisions, expected.clone());
        match self.revisions_api.create(&post(), revision).await {
            Ok(_) => Ok(SetupOutcome::Done),
            Err(e) if is_code(&e, &[409]) => {
                // The cache may not show our own revision of this very template yet: then it is
                // ours to use (as kruise's CreateControllerRevision does for an equal revision).
                let uid = self.set.metadata.uid.as_deref().unwrap_or_default();
                if let Ok(existing) = self.revisions_api.get(&name).await
                    && existing
                        .metadata
                        .owner_references
                        .iter()
                        .flatten()
                        .any(|o| o.uid == uid)
                    && crate::revision::revisions_equal(&existing, revision)
                {
                    return Ok(SetupOutcome::Done);
                }
                self.ctx
                    .expectations
                    .withdraw(&self.keys.revisions, &expected);
                let patch = json!({"status": {"collisionCount": collision_count_on_conflict}});
                Api::<StatefulSet>::namespaced(
                    self.ctx.client.clone(),
                    &self.set.namespace().unwrap_or_default(),
                )
                .patch_status(&self.set_name(), &pp(), &Patch::Merge(&patch))
                .await
                .map_err(api_err(self.key(), "writing collisionCount"))?;
                Ok(SetupOutcome::Again(Duration::from_millis(100)))
            }
            Err(e) => {
                self.ctx
                    .expectations
                    .withdraw(&self.keys.revisions, &expected);
                Err(api_err(self.key(), "creating the update revision")(e))
            }
        }
    }

    // ---- the plan's actions -----------------------------------------------------------------

    /// The pod an action belongs to: its target, or for a PVC owner write the pod of the PVC's
    /// ordinal (`<vct>-<set>-<ordinal>`), so the write precedes that pod's deletion.
    fn chain_of(&self, action: &Action) -> String {
        match action {
            Action::SetClaimOwners { claim, .. } => {
                let ordinal = claim.rsplit('-').next().unwrap_or_default();
                format!("{}-{ordinal}", self.set_name())
            }
            other => other.target().to_string(),
        }
    }

    /// Runs the plan's actions and publishes their Events, in plan order.
    pub async fn run(&self, actions: &[Action]) -> Outcome {
        let mut chains: Vec<(String, Vec<usize>)> = Vec::new();
        for (n, a) in actions.iter().enumerate() {
            let pod = self.chain_of(a);
            match chains.iter_mut().find(|(p, _)| *p == pod) {
                Some((_, idx)) => idx.push(n),
                None => chains.push((pod, vec![n])),
            }
        }
        let (creates, others): (Vec<_>, Vec<_>) = chains
            .into_iter()
            .partition(|(_, idx)| matches!(actions[idx[0]], Action::CreatePod { .. }));
        let run_chain = |idx: Vec<usize>| async move {
            let mut out = Vec::with_capacity(idx.len());
            for n in idx {
                let r = self.action(&actions[n]).await;
                let failed = r.is_err();
                out.push((n, r));
                if failed {
                    break;
                }
            }
            out
        };
        let others = futures::future::join_all(others.into_iter().map(|(_, idx)| run_chain(idx)));
        let creates = async {
            let mut done = Vec::new();
            let mut pending = creates
                .into_iter()
                .map(|(_, idx)| idx)
                .collect::<Vec<_>>()
                .into_iter();
            let mut batch = 1usize;
            loop {
                let group: Vec<Vec<usize>> = pending.by_ref().take(batch).collect();
                if group.is_empty() {
                    break;
                }
                let results: Vec<_> = futures::future::join_all(group.into_iter().map(run_chain))
                    .await
                    .into_iter()
                    .flatten()
                    .collect();
                let failed = results.iter().any(|(_, r)| r.is_err());
                done.extend(results);
                if failed {
                    break;
                }
                batch *= 2;
            }
            done
        };
        let (others, creates) = futures::future::join(others, creates).await;
        let mut results: Vec<Option<Result<(), Error>>> = actions.iter().map(|_| None).collect();
        for (n, r) in others.into_iter().flatten().chain(creates) {
            results[n] = Some(r);
        }
        self.report(actions, results).await
    }

    async fn report(&self, actions: &[Action], results: Vec<Option<Result<(), Error>>>) -> Outcome {
        let set = self.set_name();
        let mut outcome = Outcome::default();
        for (a, r) in actions.iter().zip(results) {
            let event = match r {
                None => None,
                Some(Ok(())) => {
                    tracing::info!(statefulset = %self.key(), action = ?a, "done");
                    a.success_event(&set)
                }
                Some(Err(e)) => {
                    outcome.failed = true;
                    tracing::warn!(statefulset = %self.key(), action = ?a, error = %e, "action failed");
                    let msg = e.to_string();
                    if let Some(c) = a.failure_condition(&msg) {
                        outcome.conditions.push(c);
                    }
                    a.failure_event(&set, &msg)
                }
            };
            if let Some(ev) = event {
                status::publish(self.ctx, self.set, &ev);
            }
        }
        outcome
    }

    async fn action(&self, action: &Action) -> Result<(), Error> {
        match action {
            Action::CreatePod {
                ordinal,
                name,
                revision,
            } => self.create_pod(*ordinal, name, revision).await,
            Action::CreateClaims {
                ordinal, claims, ..
            } => self.create_claims(*ordinal, Some(claims)).await,
            Action::DeletePod { name, uid } => self.delete_pod(name, uid.as_deref()).await,
            Action::SetLifecycleState {
                name,
                state,
                mark_pod_not_ready,
            } => {
                self.set_lifecycle_state(name, *state, *mark_pod_not_ready)
                    .await
            }
            Action::UpdateInPlace {
                name,
                revision,
                set_updating,
            } => self.update_in_place(name, revision, *set_updating).await,
            Action::RefreshInPlace { name } => {
                let Some(pod) = self.pods.get(name) else {
                    return Ok(());
                };
                let changes = match inplace::progress(pod, self.now) {
                    Ok(inplace::Progress::Apply(c)) | Ok(inplace::Progress::Completed(c)) => c,
                    _ => Vec::new(),
                };
                for change in changes {
                    self.apply_change(name, change, None).await?;
                }
                Ok(())
            }
            Action::RepairPod { name, ordinal } => self.repair_pod(name, *ordinal).await,
            Action::SetClaimOwners {
                claim,
                owner_references,
            } => self.set_claim_owners(claim, owner_references).await,
            Action::ResizeClaim {
                claim, template, ..
            } => self.resize_claim(claim, template).await,
        }
    }

    /// Gives a PVC its template's `spec.resources` (replacing them, as kruise's update does) and
    /// the `apps.kruise.io/owned-by-asts` annotation, refused (409) unless the PVC is still the
    /// version the decision was made on.
    async fn resize_claim(&self, claim: &str, template: &str) -> Result<(), Error> {
        let Some(observed) = self.claims.get(claim) else {
            return Ok(());
        };
        let Some(t) = self
            .set
            .spec
            .volume_claim_templates
            .iter()
            .flatten()
            .find(|t| t.metadata.name.as_deref() == Some(template))
        else {
            return Ok(());
        };
        let resources = |c: &PersistentVolumeClaim| {
            c.spec
                .as_ref()
                .and_then(|s| serde_json::to_value(&s.resources).ok())
                .unwrap_or(Value::Null)
        };
        let patch = json!({
            "metadata": {
                "resourceVersion": observed.metadata.resource_version,
                "annotations": {labels::PVC_OWNED_BY_ASTS: self.set_name()},
            },
            "spec": {"resources": replacing(&resources(observed), resources(t))},
        });
        let p = self
            .pvcs_api
            .patch(claim, &pp(), &Patch::Merge(&patch))
            .await
            .map_err(api_err(self.key(), format!("resizing PVC {claim}")))?;
        if let Some(rv) = p.metadata.resource_version {
            self.ctx
                .expectations
                .expect(&self.keys.claims, Expected::Patched(claim.to_string(), rv));
        }
        Ok(())
    }

    /// Creates the PVCs of `ordinal` that do not exist (only `only`, when given). A PVC that
    /// is being deleted fails: the pod would not start on it.
    async fn create_claims(&self, ordinal: i64, only: Option<&[String]>) -> Result<(), Error> {
        for pvc in identity::new_claims(self.set, ordinal) {
            let name = pvc.metadata.name.clone().unwrap_or_default();
            if only.is_some_and(|o| !o.contains(&name)) {
                continue;
            }
            if let Some(existing) = self.claims.get(&name) {
                if existing.metadata.deletion_timestamp.is_some() {
                    return Err(Error::ClaimDeleting {
                        key: self.key().to_string(),
                        claim: name,
                    });
                }
                continue;
            }
            let expected = Expected::Created(name.clone());
            self.ctx
                .expectations
                .expect(&self.keys.claims, expected.clone());
            match self.pvcs_api.create(&post(), &pvc).await {
                Ok(_) => {}
                Err(e) if is_code(&e, &[409]) => {
                    self.ctx.expectations.withdraw(&self.keys.claims, &expected);
                }
                Err(e) => {
                    self.ctx.expectations.withdraw(&self.keys.claims, &expected);
                    return Err(api_err(self.key(), format!("creating PVC {name}"))(e));
                }
            }
        }
        Ok(())
    }

    async fn create_pod(&self, ordinal: i64, name: &str, revision: &str) -> Result<(), Error> {
        let template = match self.templates.get(revision) {
            Some(t) => t,
            None => {
                tracing::warn!(statefulset = %self.key(), %revision, "no template for the revision: using the set's");
                &self.set.spec.template
            }
        };
        self.create_claims(ordinal, None).await?;
        let pod = identity::new_pod(self.set, ordinal, revision, template, self.now);
        // Sidecars go in here, not through an admission hop: the same function the pod webhook
        // runs, on graft's own caches. A pod kruise's webhook would refuse is not created.
        let pod = match self.ctx.sidecarsets.inject(&pod).await {
            Ok(injected) => injected.pod,
            Err(e) => {
                return Err(Error::Inject {
                    key: self.key().to_string(),
                    pod: name.to_string(),
                    message: e.to_string(),
                });
            }
        };
        let expected = Expected::Created(name.to_string());
        self.ctx
            .expectations
            .expect(&self.keys.set, expected.clone());
        let created = match self.pods_api.create(&post(), &pod).await {
            Ok(p) => p,
            Err(e) => {
                self.ctx.expectations.withdraw(&self.keys.set, &expected);
                return Err(api_err(self.key(), format!("creating pod {name}"))(e));
            }
        };
        self.ctx.metrics.pod_action(CONTROLLER, "create");
        // The new pod's PVCs get the owners the retention policy asks for (kruise does it in
        // CreateStatefulPod); a failure here is fixed by the next plan.
        if let Some(uid) = created.metadata.uid.as_deref()
            && let Err(e) = self.own_new_claims(ordinal, name, uid).await
        {
            tracing::warn!(statefulset = %self.key(), pod = %name, error = %e, "PVC owners of a new pod");
        }
        Ok(())
    }

    async fn own_new_claims(&self, ordinal: i64, pod: &str, uid: &str) -> Result<(), Error> {
        let policy = RetentionPolicy::of(&self.set.spec.defaulted());
        let (set_owner, pod_owner) = (Owner::set(self.set), Owner::pod(pod, uid));
        for (_, claim) in identity::claim_names(self.set, ordinal) {
            let current = match self.pvcs_api.get_opt(&claim).await {
                Ok(Some(c)) => c,
                Ok(None) => continue,
                Err(e) => return Err(api_err(self.key(), format!("reading PVC {claim}"))(e)),
            };
            let refs = current
                .metadata
                .owner_references
                .clone()
                .unwrap_or_default();
            if let Some(new) = claims::updated_owners(policy, &refs, &set_owner, &pod_owner, false)
            {
                self.patch_claim_owners(&claim, &new, current.metadata.resource_version.clone())
                    .await?;
            }
        }
        Ok(())
    }

    async fn set_claim_owners(
        &self,
        claim: &str,
        owner_references: &[OwnerReference],
    ) -> Result<(), Error> {
        let Some(observed) = self.claims.get(claim) else {
            return Ok(());
        };
        self.patch_claim_owners(
            claim,
            owner_references,
            observed.metadata.resource_version.clone(),
        )
        .await
    }

    /// Writes a PVC's owner references, refused (409) unless the PVC is still the version the
    /// decision was made on.
    async fn patch_claim_owners(
        &self,
        claim: &str,
        owner_references: &[OwnerReference],
        resource_version: Option<String>,
    ) -> Result<(), Error> {
        let mut patch = json!({"metadata": {"ownerReferences": owner_references}});
        if let Some(rv) = resource_version {
            patch["metadata"]["resourceVersion"] = json!(rv);
        }
        let p = self
            .pvcs_api
            .patch(claim, &pp(), &Patch::Merge(&patch))
            .await
            .map_err(api_err(
                self.key(),
                format!("writing the owners of PVC {claim}"),
            ))?;
        if let Some(rv) = p.metadata.resource_version {
            self.ctx
                .expectations
                .expect(&self.keys.claims, Expected::Patched(claim.to_string(), rv));
        }
        Ok(())
    }

    async fn delete_pod(&self, name: &str, uid: Option<&str>) -> Result<(), Error> {
        let expected = Expected::Deleted(name.to_string());
        self.ctx
            .expectations
            .expect(&self.keys.set, expected.clone());
        let dp = DeleteParams {
            preconditions: uid.map(|uid| Preconditions {
                uid: Some(uid.to_string()),
                resource_version: None,
            }),
            ..Default::default()
        };
        match self.pods_api.delete(name, &dp).await {
            Ok(_) => {}
            Err(e) if is_code(&e, &[404]) => {}
            Err(e) => {
                self.ctx.expectations.withdraw(&self.keys.set, &expected);
                return Err(api_err(self.key(), format!("deleting pod {name}"))(e));
            }
        }
        self.ctx.metrics.pod_action(CONTROLLER, "delete");
        Ok(())
    }

    async fn set_lifecycle_state(
        &self,
        name: &str,
        state: LifecycleState,
        mark_pod_not_ready: bool,
    ) -> Result<(), Error> {
        let Some(pod) = self.pods.get(name) else {
            return Ok(());
        };
        if mark_pod_not_ready
            && let Some(conditions) =
                podready::lifecycle_conditions(pod, podready::not_ready_hook(state), self.now)
        {
            // Out of service before the hook runs, back in service after.
            self.apply_change(name, inplace::PodChange::Conditions(conditions), None)
                .await?;
        }
        let mut patch = json!({"metadata": {
            "labels": {labels::LIFECYCLE_STATE: state.as_str()},
            "annotations": {labels::LIFECYCLE_TIMESTAMP: self.now.to_string()},
        }});
        // Back from Updated to PreparingUpdate: the inPlaceUpdate hook holds the pod again
        // (`UpdatePodLifecycleWithHandler`).
        let from_updated = pod
            .labels()
            .get(labels::LIFECYCLE_STATE)
            .is_some_and(|s| s == labels::LIFECYCLE_STATE_UPDATED);
        if state == LifecycleState::PreparingUpdate
            && from_updated
            && let Some(hook) = self
                .set
                .spec
                .lifecycle
                .as_ref()
                .and_then(|l| l.in_place_update.as_ref())
        {
            for (k, v) in hook.labels_handler.iter().flatten() {
                patch["metadata"]["labels"][k] = json!(v);
            }
            let finalizers: Vec<&String> = hook.finalizers_handler.iter().flatten().collect();
            if !finalizers.is_empty() {
                // Finalizers merge as a set in a strategic merge patch.
                patch["metadata"]["finalizers"] = json!(finalizers);
            }
        }
        self.patch_pod(name, &Patch::Strategic(&patch)).await
    }

    async fn update_in_place(
        &self,
        name: &str,
        revision: &str,
        set_updating: bool,
    ) -> Result<(), Error> {
        let Some(pod) = self.pods.get(name) else {
            return Ok(());
        };
        let old_rev = pod
            .labels()
            .get(labels::CONTROLLER_REVISION_HASH)
            .cloned()
            .unwrap_or_default();
        let in_place_err = |message: String| Error::InPlace {
            key: self.key().to_string(),
            message,
        };
        let (Some(old), Some(new)) = (self.templates.get(&old_rev), self.templates.get(revision))
        else {
            return Err(in_place_err(format!(
                "the template of revision {old_rev} or {revision} is unknown"
            )));
        };
        let grace = self
            .set
            .spec
            .update_strategy
            .as_ref()
            .and_then(|u| u.rolling_update.as_ref())
            .and_then(|r| r.in_place_update_strategy.as_ref())
            .and_then(|s| s.grace_period_seconds)
            .unwrap_or(0);
        let mut spec = inplace::calculate(old, new, revision, grace)
            .map_err(|e| in_place_err(e.to_string()))?;
        if set_updating {
            spec.immediate.labels.insert(
                labels::LIFECYCLE_STATE.to_string(),
                Some(labels::LIFECYCLE_STATE_UPDATING.to_string()),
            );
            spec.immediate.annotations.insert(
                labels::LIFECYCLE_TIMESTAMP.to_string(),
                Some(self.now.to_string()),
            );
        }
        let changes =
            inplace::begin(pod, &spec, self.now).map_err(|e| in_place_err(e.to_string()))?;
        // A SidecarSet may be upgrading the same pod: the first change is sent only if the pod is
        // still the one observed, so two in-place updates never start on one pod. On a conflict
        // the pod's event brings a new reconcile.
        let mut guard = pod
            .annotations()
            .contains_key(labels::SIDECARSET_HASH)
            .then(|| pod.resource_version())
            .flatten();
        for change in changes {
            match self.apply_change(name, change, guard.take()).await {
                Err(Error::Api { source, .. }) if is_code(&source, &[409]) => {
                    tracing::debug!(statefulset = %self.key(), pod = %name, "pod changed since observed; in-place update deferred");
                    return Ok(());
                }
                r => r?,
            }
        }
        self.ctx.metrics.pod_action(CONTROLLER, "update_in_place");
        Ok(())
    }

    /// kruise `UpdateStatefulPod`: the identity labels and, if they do not match, the claim
    /// volumes of the pod's ordinal (the API server refuses a volume change on a live pod; that
    /// failure is what kruise reports too), after creating the PVCs it lacks.
    async fn repair_pod(&self, name: &str, ordinal: i64) -> Result<(), Error> {
        let Some(pod) = self.pods.get(name) else {
            return Ok(());
        };
        let storage_ok = identity::storage_matches(self.set, pod);
        let mut repaired = Pod::clone(pod);
        identity::repair(self.set, ordinal, &mut repaired);
        if !storage_ok {
            self.create_claims(ordinal, None).await?;
        }
        let mut patch = json!({"metadata": {"labels": repaired.metadata.labels}});
        if let Some(rv) = &pod.metadata.resource_version {
            patch["metadata"]["resourceVersion"] = json!(rv);
        }
        if !storage_ok {
            patch["spec"] =
                json!({"volumes": repaired.spec.as_ref().and_then(|s| s.volumes.clone())});
        }
        self.patch_pod(name, &Patch::Merge(&patch)).await
    }

    /// Sends one in-place engine change; with `resource_version`, refused (409) unless the pod is
    /// still at that version.
    async fn apply_change(
        &self,
        name: &str,
        change: inplace::PodChange,
        resource_version: Option<String>,
    ) -> Result<(), Error> {
        let guarded = |mut patch: serde_json::Value| {
            if let Some(rv) = &resource_version {
                patch["metadata"]["resourceVersion"] = serde_json::Value::String(rv.clone());
            }
            patch
        };
        let (result, step) = match change {
            inplace::PodChange::Conditions(conditions) => {
                let patch = guarded(inplace::PodChange::status_patch(&conditions));
                (
                    self.pods_api
                        .patch_status(name, &pp(), &Patch::Strategic(&patch))
                        .await,
                    "patching status of",
                )
            }
            inplace::PodChange::Patch(patch) => (
                self.pods_api
                    .patch(name, &pp(), &Patch::Strategic(&guarded(patch)))
                    .await,
                "patching",
            ),
            inplace::PodChange::Resize(patch) => (
                self.pods_api
                    .patch_subresource("resize", name, &pp(), &Patch::Strategic(&guarded(patch)))
                    .await,
                "resizing",
            ),
        };
        let p = result.map_err(api_err(self.key(), format!("{step} pod {name}")))?;
        self.expect_pod_patched(name, &p);
        Ok(())
    }

    async fn patch_pod<P: serde::Serialize + std::fmt::Debug>(
        &self,
        name: &str,
        patch: &Patch<P>,
    ) -> Result<(), Error> {
        let p = self
            .pods_api
            .patch(name, &pp(), patch)
            .await
            .map_err(api_err(self.key(), format!("patching pod {name}")))?;
        self.expect_pod_patched(name, &p);
        Ok(())
    }

    fn expect_pod_patched(&self, name: &str, pod: &Pod) {
        if let Some(rv) = &pod.metadata.resource_version {
            self.ctx.expectations.expect(
                &self.keys.set,
                Expected::Patched(name.to_string(), rv.clone()),
            );
        }
    }

    fn expect_revision_patched(&self, name: &str, r: &ControllerRevision) {
        if let Some(rv) = &r.metadata.resource_version {
            self.ctx.expectations.expect(
                &self.keys.revisions,
                Expected::Patched(name.to_string(), rv.clone()),
            );
        }
    }
}

/// The status to write: the plan's, with the conditions of the failed actions
/// (`SetStatefulsetCondition`); true when a condition was added, so it must be written even if
/// the counters did not change.
pub(super) fn with_conditions(
    status: &mut graft_api::apps::v1beta1::StatefulSetStatus,
    outcome: &Outcome,
    now: Timestamp,
) -> bool {
    for (type_, message) in &outcome.conditions {
        plan_status::set_condition(status, type_, "True", None, message, now);
    }
    !outcome.conditions.is_empty()
}

/// The merge patch that turns `old` into `new` where `new` is an object: keys of `old` that
/// `new` lacks become `null` (a merge patch alone would keep them).
fn replacing(old: &Value, new: Value) -> Value {
    match (old, new) {
        (Value::Object(o), Value::Object(mut n)) => {
            for (k, v) in o {
                match n.remove(k) {
                    None => {
                        n.insert(k.clone(), Value::Null);
                    }
                    Some(nv) => {
                        n.insert(k.clone(), replacing(v, nv));
                    }
                }
            }
            Value::Object(n)
        }
        (_, n) => n,
    }
}
