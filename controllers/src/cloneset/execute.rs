//! The execute step: turns the plan's actions into API calls, in order, and decides nothing.
//! Setup actions (claims, revisions) come first and stop the reconcile when one does not go
//! through; pod creations go out in slow-start batches (1, 2, 4, …); the first failed pod
//! operation stops the rest.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use graft_api::apps::common::LifecycleState;
use graft_api::apps::v1alpha1::CloneSet;
use graft_api::labels;
use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, PodTemplateSpec};
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, Patch, Preconditions};
use kube::{Api, ResourceExt};
use serde_json::json;

use super::controller::{CONTROLLER, Error, api_err, post, pp};
use super::gather::{Gathered, owned_by};
use super::plan::PreDownload;
use super::plan::{self, Action};
use super::{facts, pods, status, vct};
use crate::context::Context;
use crate::expectations::Expected;
use crate::inplace;

/// Carries out one plan for one CloneSet.
pub(super) struct Executor<'a> {
    ctx: &'a Context,
    key: &'a str,
    cs: &'a CloneSet,
    now: Timestamp,
    pods_api: Api<Pod>,
    pvcs_api: Api<PersistentVolumeClaim>,
    /// The observed pods by name.
    pods: &'a HashMap<String, Arc<Pod>>,
    /// Templates by revision name, the update revision's being the CloneSet's own.
    templates: HashMap<String, PodTemplateSpec>,
}

/// How the setup actions went.
pub(super) enum Setup {
    /// All went through: go on with the pod operations.
    Done,
    /// One did not (the world changed under us): reconcile again after this long.
    Again(Duration),
}

impl<'a> Executor<'a> {
    /// An executor for what `gathered` read; `update_revision` names the CloneSet's template.
    pub fn new(
        ctx: &'a Context,
        key: &'a str,
        gathered: &'a Gathered,
        update_revision: &str,
    ) -> Self {
        let cs = &gathered.observed.cloneset;
        let ns = cs.namespace().unwrap_or_default();
        let mut templates = gathered.templates.clone();
        templates.insert(update_revision.to_string(), cs.spec.template.clone());
        Self {
            ctx,
            key,
            cs,
            now: gathered.observed.now,
            pods_api: Api::namespaced(ctx.client.clone(), &ns),
            pvcs_api: Api::namespaced(ctx.client.clone(), &ns),
            pods: &gathered.pods,
            templates,
        }
    }

    /// Runs the leading setup actions one by one.
    pub async fn setup(&self, actions: &[Action]) -> Result<Setup, Error> {
        for a in actions.iter().take_while(|a| a.is_setup()) {
            if let Setup::Again(after) = self.setup_action(a).await? {
                return Ok(Setup::Again(after));
            }
            tracing::info!(cloneset = %self.key, action = ?a, "done");
        }
        Ok(Setup::Done)
    }

    async fn setup_action(&self, action: &Action) -> Result<Setup, Error> {
        match action {
            Action::AdoptPod {
                name,
                uid,
                owner_references,
            } => {
                self.write_owners(name, uid, owner_references, "adopting")
                    .await
            }
            Action::ReleasePod {
                name,
                uid,
                owner_references,
            } => {
                self.write_owners(name, uid, owner_references, "releasing")
                    .await
            }
            Action::CreateRevision {
                revision,
                collision_count_on_conflict,
            } => {
                self.create_revision(revision, *collision_count_on_conflict)
                    .await
            }
            Action::BumpRevision {
                name,
                revision,
                vct_hash,
            } => {
                let mut patch = json!({"revision": revision});
                if let Some(hash) = vct_hash {
                    patch["metadata"] = json!({"annotations": {vct::VCT_HASH_ANNOTATION: hash}});
                }
                Api::<ControllerRevision>::namespaced(self.ctx.client.clone(), &self.ns())
                    .patch(name, &pp(), &Patch::Merge(&patch))
                    .await
                    .map_err(api_err(self.key, "moving a revision to the top (rollback)"))?;
                Ok(Setup::Done)
            }
            Action::InitKruisePodReady { name } => {
                if let Some(pod) = self.pods.get(name) {
                    self.set_pod_not_ready_reason(pod, None).await?;
                }
                Ok(Setup::Done)
            }
            other => {
                tracing::warn!(cloneset = %self.key, action = ?other, "not a setup action");
                Ok(Setup::Done)
            }
        }
    }

    fn ns(&self) -> String {
        self.cs.namespace().unwrap_or_default()
    }

    /// Creates or deletes the pre-download ImagePullJobs and labels the update revision. As in
    /// kruise-manager, a failure is logged (and a failed creation reported as an Event) but does
    /// not stop the reconcile: pre-downloading only saves time.
    pub async fn pre_download(&self, pre: &PreDownload) {
        let reference = kube::Resource::object_ref(self.cs, &());
        crate::predownload::apply(self.ctx, &self.ns(), self.key, pre, &reference).await;
    }

    /// Adopts or releases a pod. The uid precondition makes sure we change the pod we looked
    /// at, not a recreated namesake; when the pod changed, the plan that counted on it is stale.
    async fn write_owners(
        &self,
        name: &str,
        uid: &Option<String>,
        owner_references: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference],
        doing: &str,
    ) -> Result<Setup, Error> {
        let patch = json!({"metadata": {"ownerReferences": owner_references, "uid": uid}});
        match self
            .pods_api
            .patch(name, &pp(), &Patch::Merge(&patch))
            .await
        {
            Ok(p) => {
                self.expect_patched(name, &p);
                Ok(Setup::Done)
            }
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 || e.code == 422 => {
                let key = self.key;
                tracing::debug!(cloneset = %key, pod = %name, error = %e, "{doing}: pod changed");
                Ok(Setup::Again(Duration::from_secs(1)))
            }
            Err(e) => Err(api_err(self.key, format!("{doing} pod {name}"))(e)),
        }
    }

    async fn create_revision(
        &self,
        revision: &ControllerRevision,
        collision_count_on_conflict: i32,
    ) -> Result<Setup, Error> {
        let api = Api::<ControllerRevision>::namespaced(self.ctx.client.clone(), &self.ns());
        match api.create(&post(), revision).await {
            Ok(_) => Ok(Setup::Done),
            Err(kube::Error::Api(e)) if e.code == 409 => {
                // The history comes from the cache, so the name may be taken by our own revision
                // of this very template that the cache does not show yet: then it is ours to use
                // (as kruise does when it finds an equal revision under the name).
                let name = revision.metadata.name.as_deref().unwrap_or_default();
                let uid = self.cs.metadata.uid.as_deref().unwrap_or_default();
                if let Ok(existing) = api.get(name).await
                    && owned_by(&existing.metadata, uid)
                    && crate::revision::revisions_equal(&existing, revision)
                {
                    return Ok(Setup::Done);
                }
                let patch = json!({"status": {"collisionCount": collision_count_on_conflict}});
                Api::<CloneSet>::namespaced(self.ctx.client.clone(), &self.ns())
                    .patch_status(&self.cs.name_any(), &pp(), &Patch::Merge(&patch))
                    .await
                    .map_err(api_err(self.key, "writing collisionCount"))?;
                Ok(Setup::Again(Duration::from_millis(100)))
            }
            Err(e) => Err(api_err(self.key, "creating the update revision")(e)),
        }
    }

    /// Runs the pod operations after the setup actions: creations in slow-start batches, the
    /// rest one by one, each with its Event; stops at the first failure.
    pub async fn pod_operations(&self, actions: &[Action]) {
        let actions: Vec<&Action> = actions.iter().skip_while(|a| a.is_setup()).collect();
        let mut batch = 1usize;
        let mut i = 0usize;
        while i < actions.len() {
            let is_create = |a: &Action| matches!(a, Action::CreatePod { .. });
            let end = if is_create(actions[i]) {
                let creates = actions[i..]
                    .iter()
                    .take(batch)
                    .take_while(|a| is_create(a))
                    .count();
                batch *= 2;
                i + creates
            } else {
                i + actions[i..].iter().take_while(|a| !is_create(a)).count()
            };
            let group = &actions[i..end];
            let results = if is_create(group[0]) {
                let all = group.iter().map(|a| self.pod_action(a));
                futures::future::join_all(all)
                    .await
                    .into_iter()
                    .map(Some)
                    .collect()
            } else {
                self.per_pod_chains(group).await
            };
            if !self.report(group, results).await {
                break;
            }
            i = end;
        }
    }

    /// Runs a run of pod actions (patches, deletes) with the actions of each pod in plan order
    /// and different pods at once: one slow patch no longer holds up the other pods of the
    /// batch. A pod's chain stops at its first failure (`None`: not run).
    async fn per_pod_chains(&self, group: &[&Action]) -> Vec<Option<Result<(), Error>>> {
        let cs_name = self.cs.name_any();
        let mut chains: Vec<(String, Vec<usize>)> = Vec::new();
        for (n, a) in group.iter().enumerate() {
            let pod = a.pod_name(&cs_name);
            match chains.iter_mut().find(|(p, _)| *p == pod) {
                Some((_, idx)) => idx.push(n),
                None => chains.push((pod, vec![n])),
            }
        }
        let runs = chains.iter().map(|(_, idx)| async move {
            let mut out = Vec::with_capacity(idx.len());
            for &n in idx {
                let r = self.pod_action(group[n]).await;
                let failed = r.is_err();
                out.push((n, r));
                if failed {
                    break;
                }
            }
            out
        });
        let mut results: Vec<Option<Result<(), Error>>> = group.iter().map(|_| None).collect();
        for (n, r) in futures::future::join_all(runs).await.into_iter().flatten() {
            results[n] = Some(r);
        }
        results
    }

    /// Logs and publishes the outcome of each action in plan order; false when one failed
    /// (the rest of the plan waits for the next reconcile).
    async fn report(&self, group: &[&Action], results: Vec<Option<Result<(), Error>>>) -> bool {
        let cs_name = self.cs.name_any();
        let mut ok = true;
        for (a, r) in group.iter().zip(results) {
            let event = match r {
                None => None,
                Some(Ok(())) => {
                    tracing::info!(cloneset = %self.key, action = ?a, "done");
                    a.success_event(&cs_name)
                }
                Some(Err(e)) => {
                    ok = false;
                    tracing::warn!(cloneset = %self.key, action = ?a, error = %e, "action failed");
                    a.failure_event(&cs_name, &e.to_string())
                }
            };
            if let Some(ev) = event {
                status::publish(self.ctx, self.cs, &ev).await;
            }
        }
        ok
    }

    async fn pod_action(&self, action: &Action) -> Result<(), Error> {
        match action {
            Action::CreatePod {
                instance_id,
                revision,
                reuse_pvcs,
            } => self.create_pod(instance_id, revision, *reuse_pvcs).await,
            Action::DeletePod { name, instance_id } => {
                self.delete_pod(name, instance_id.as_deref()).await
            }
            Action::RemovePvcs { instance_id } => self.delete_pvcs(instance_id).await,
            Action::SetLifecycleState {
                name,
                state,
                mark_pod_not_ready,
            } => {
                self.set_lifecycle_state(name, *state, *mark_pod_not_ready)
                    .await
            }
            Action::SetPodTemplateHash { name, hash } => {
                let patch = json!({"metadata": {"labels": {labels::POD_TEMPLATE_HASH: hash}}});
                self.patch_pod(name, &Patch::Merge(&patch)).await
            }
            Action::MarkSpecifiedDelete { name, .. } => {
                let patch = json!({"metadata": {"labels": {labels::SPECIFIED_DELETE: "true"}}});
                self.patch_pod(name, &Patch::Merge(&patch)).await?;
                self.ctx.metrics.pod_action(CONTROLLER, "recreate");
                Ok(())
            }
            Action::UpdateInPlace { name, revision } => self.update_in_place(name, revision).await,
            Action::RefreshInPlace { name } => {
                let Some(pod) = self.pods.get(name) else {
                    return Ok(());
                };
                for change in facts::refresh_changes(pod, self.now) {
                    self.apply_change(name, change).await?;
                }
                Ok(())
            }
            Action::AdoptPod { .. }
            | Action::ReleasePod { .. }
            | Action::CreateRevision { .. }
            | Action::BumpRevision { .. }
            | Action::InitKruisePodReady { .. } => {
                tracing::warn!(cloneset = %self.key, action = ?action, "setup action out of order");
                Ok(())
            }
        }
    }

    async fn create_pod(
        &self,
        instance_id: &str,
        revision: &str,
        reuse_pvcs: bool,
    ) -> Result<(), Error> {
        let template = self
            .templates
            .get(revision)
            .unwrap_or(&self.cs.spec.template);
        if !reuse_pvcs {
            for pvc in pods::new_pvcs(self.cs, instance_id) {
                match self.pvcs_api.create(&post(), &pvc).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(e)) if e.code == 409 => {}
                    Err(e) => return Err(api_err(self.key, "creating a PVC")(e)),
                }
            }
        }
        let pod = pods::new_pod(self.cs, instance_id, revision, template);
        let pod_name = pod.metadata.name.clone().unwrap_or_default();
        // Sidecars go in here, not through an admission hop: the same function the pod webhook
        // runs, on graft's own caches. A pod kruise's webhook would refuse is not created.
        let pod = match self.ctx.sidecarsets.inject(&pod).await {
            Ok(injected) => injected.pod,
            Err(e) => {
                return Err(Error::Inject {
                    key: self.key.to_string(),
                    pod: pod_name,
                    message: e.to_string(),
                });
            }
        };
        self.ctx
            .expectations
            .expect(self.key, Expected::Created(pod_name.clone()));
        if let Err(e) = self.pods_api.create(&post(), &pod).await {
            self.ctx.expectations.forget(self.key);
            return Err(api_err(self.key, format!("creating pod {pod_name}"))(e));
        }
        self.ctx.metrics.pod_action(CONTROLLER, "create");
        Ok(())
    }

    async fn delete_pod(&self, name: &str, instance_id: Option<&str>) -> Result<(), Error> {
        self.ctx
            .expectations
            .expect(self.key, Expected::Deleted(name.to_string()));
        let uid = self.pods.get(name).and_then(|p| p.metadata.uid.clone());
        let dp = DeleteParams {
            preconditions: uid.map(|uid| Preconditions {
                uid: Some(uid),
                resource_version: None,
            }),
            ..Default::default()
        };
        match self.pods_api.delete(name, &dp).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(api_err(self.key, format!("deleting pod {name}"))(e)),
        }
        if let Some(id) = instance_id {
            self.delete_pvcs(id).await?;
        }
        self.ctx.metrics.pod_action(CONTROLLER, "delete");
        Ok(())
    }

    async fn delete_pvcs(&self, instance_id: &str) -> Result<(), Error> {
        for pvc in pods::new_pvcs(self.cs, instance_id) {
            let n = pvc.metadata.name.unwrap_or_default();
            match self.pvcs_api.delete(&n, &DeleteParams::default()).await {
                Ok(_) => {}
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => return Err(api_err(self.key, format!("deleting PVC {n}"))(e)),
            }
        }
        Ok(())
    }

    async fn set_lifecycle_state(
        &self,
        name: &str,
        state: LifecycleState,
        mark_pod_not_ready: bool,
    ) -> Result<(), Error> {
        if mark_pod_not_ready && let Some(pod) = self.pods.get(name) {
            // Out of service before the hook runs, back in service after.
            self.set_pod_not_ready_reason(pod, plan::not_ready_hook(state))
                .await?;
        }
        let patch = json!({"metadata": {
            "labels": {labels::LIFECYCLE_STATE: state.as_str()},
            "annotations": {labels::LIFECYCLE_TIMESTAMP: self.now.to_string()},
        }});
        self.patch_pod(name, &Patch::Merge(&patch)).await
    }

    async fn update_in_place(&self, name: &str, revision: &str) -> Result<(), Error> {
        let Some(pod) = self.pods.get(name) else {
            return Ok(());
        };
        let old_rev = facts::pod_revision(pod);
        let (Some(old), Some(new)) = (
            facts::revision_template(&self.templates, &old_rev),
            self.templates.get(revision),
        ) else {
            return Ok(());
        };
        let grace = self.cs.spec.in_place_grace_seconds();
        let mut spec = match inplace::calculate(old, new, revision, grace) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(cloneset = %self.key, pod = %name, reason = %e, "not in-place-able");
                return Ok(());
            }
        };
        let stamp = plan::in_place_stamp(revision, self.now);
        for (k, v) in stamp.labels {
            spec.immediate.labels.insert(k, Some(v));
        }
        for (k, v) in stamp.annotations {
            spec.immediate.annotations.insert(k, Some(v));
        }
        let changes = inplace::begin(pod, &spec, self.now).map_err(|e| Error::InPlace {
            key: self.key.to_string(),
            message: e.to_string(),
        })?;
        // A SidecarSet may be upgrading the same pod: the first change is sent only if the pod is
        // still the one observed (its patches carry the resourceVersion too), so two in-place
        // updates never start on one pod. On a conflict the pod's event brings a new reconcile.
        let mut guard = pod
            .annotations()
            .contains_key(labels::SIDECARSET_HASH)
            .then(|| pod.resource_version())
            .flatten();
        for change in changes {
            match self.apply_change_if(name, change, guard.take()).await {
                Err(Error::Api { source, .. }) if is_conflict(&source) => {
                    tracing::debug!(cloneset = %self.key, pod = %name, "pod changed since observed; in-place update deferred");
                    return Ok(());
                }
                r => r?,
            }
        }
        self.ctx.metrics.pod_action(CONTROLLER, "update_in_place");
        Ok(())
    }

    /// Sets (or clears, with `hook: None`) the lifecycle's "not ready" reason in the pod's
    /// `KruisePodReady` condition. The condition's message is kruise's JSON list of reasons; it
    /// is False while the list is non-empty, and then the pod's Ready condition goes False too.
    async fn set_pod_not_ready_reason(&self, pod: &Pod, hook: Option<&str>) -> Result<(), Error> {
        match crate::podready::lifecycle_conditions(pod, hook, self.now) {
            Some(conditions) => {
                self.apply_change(&pod.name_any(), inplace::PodChange::Conditions(conditions))
                    .await
            }
            None => Ok(()),
        }
    }

    async fn apply_change(&self, name: &str, change: inplace::PodChange) -> Result<(), Error> {
        self.apply_change_if(name, change, None).await
    }

    /// [`Self::apply_change`], refused by the API server (409) unless the pod is still at
    /// `resource_version` when one is given.
    async fn apply_change_if(
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
        match change {
            inplace::PodChange::Conditions(conditions) => {
                let patch = guarded(inplace::PodChange::status_patch(&conditions));
                let p = self
                    .pods_api
                    .patch_status(name, &pp(), &Patch::Strategic(&patch))
                    .await
                    .map_err(api_err(self.key, format!("patching status of pod {name}")))?;
                self.expect_patched(name, &p);
                Ok(())
            }
            inplace::PodChange::Patch(patch) => {
                self.patch_pod(name, &Patch::Strategic(&guarded(patch)))
                    .await
            }
            inplace::PodChange::Resize(patch) => {
                let patch = guarded(patch);
                let p = self
                    .pods_api
                    .patch_subresource("resize", name, &pp(), &Patch::Strategic(&patch))
                    .await
                    .map_err(api_err(self.key, format!("resizing pod {name}")))?;
                self.expect_patched(name, &p);
                Ok(())
            }
        }
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
            .map_err(api_err(self.key, format!("patching pod {name}")))?;
        self.expect_patched(name, &p);
        Ok(())
    }

    fn expect_patched(&self, name: &str, pod: &Pod) {
        if let Some(rv) = &pod.metadata.resource_version {
            self.ctx
                .expectations
                .expect(self.key, Expected::Patched(name.to_string(), rv.clone()));
        }
    }
}

fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(r) if r.code == 409)
}
