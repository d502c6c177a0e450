//! The ImagePullJob executor: gathers the snapshot (the job, every NodeImage and the pods of a
//! `podSelector`, from the shared caches of the [`Context`]), runs the pure [`plan`](super::plan),
//! writes tags into NodeImages, the status and Events, and deletes the job after its TTL. It
//! decides nothing itself. The runtime (`runtime.rs`) runs it, woken by the job's own changes
//! and, through [`owner_jobs`], by changes to the NodeImages that carry its tag.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use graft_api::apps::v1alpha1::imagepulljob::{ImagePullJob, ImagePullJobStatus};
use graft_api::apps::v1alpha1::nodeimage::{self, ImageTagSpec, NodeImage, ReferenceObject};
use k8s_openapi::api::core::v1::{Namespace, ObjectReference, Pod, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::json;

use super::plan::{self, NodeTag, Snapshot, TagWrite};
use crate::context::Context;
use crate::events::EventType;
use crate::expectations::{CacheView, Expected};
use crate::pullsecrets as secrets;

/// Field manager of graft's writes.
const MANAGER: &str = "graft";
/// Name of this controller in metrics.
const CONTROLLER: &str = "imagepulljob";

/// Errors of one reconcile; each names the job and the step.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An API call failed.
    #[error("ImagePullJob {key}: {step}: {source}")]
    Api {
        /// `namespace/name`.
        key: String,
        /// What was being done.
        step: String,
        /// The cause.
        #[source]
        source: kube::Error,
    },
}

fn key_of(job: &ImagePullJob) -> String {
    format!("{}/{}", job.namespace().unwrap_or_default(), job.name_any())
}

/// Owner key of a job's expectations (the NodeImage writes it waits to see in the cache).
fn expectations_key(key: &str) -> String {
    format!("ImagePullJob:{key}")
}

/// The NodeImage cache as a [`CacheView`] for expectations.
struct NodeImageView<'a>(&'a Store<NodeImage>);

impl CacheView for NodeImageView<'_> {
    fn lookup(&self, name: &str) -> Option<(bool, String)> {
        let ni = self.0.get(&ObjectRef::new(name))?;
        Some((
            ni.metadata.deletion_timestamp.is_some(),
            ni.metadata.resource_version.clone().unwrap_or_default(),
        ))
    }
}

/// The ImagePullJobs (of `namespace`, or of all) named as owners of tags in a NodeImage: the jobs
/// a change of that NodeImage wakes.
pub fn owner_jobs(ni: &NodeImage, namespace: Option<&str>) -> Vec<ObjectRef<ImagePullJob>> {
    let mut out = BTreeSet::new();
    for image in ni.spec.images.iter().flat_map(|m| m.values()) {
        for tag in &image.tags {
            for o in tag.owner_references.iter().flatten() {
                if o.kind.as_deref() == Some("ImagePullJob")
                    && let (Some(ns), Some(name)) = (&o.namespace, &o.name)
                    && namespace.is_none_or(|scope| scope == ns)
                {
                    out.insert((ns.clone(), name.clone()));
                }
            }
        }
    }
    out.into_iter()
        .map(|(ns, name)| ObjectRef::new(&name).within(&ns))
        .collect()
}

/// Retries a failed reconcile after a few seconds.
pub fn error_policy(job: Arc<ImagePullJob>, err: &Error, ctx: Arc<Context>) -> Action {
    tracing::warn!(imagepulljob = %key_of(&job), error = %err, "reconcile failed");
    ctx.metrics.reconciled(CONTROLLER, false, Duration::ZERO);
    Action::requeue(Duration::from_secs(5))
}

fn api_err(key: &str, step: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
    let key = key.to_string();
    let step = step.into();
    move |source| Error::Api { key, step, source }
}

/// One reconcile of an ImagePullJob.
pub async fn reconcile(job: Arc<ImagePullJob>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let result = reconcile_inner(&job, &ctx).await;
    if result.is_ok() {
        ctx.metrics.reconciled(CONTROLLER, true, started.elapsed());
    }
    result
}

async fn reconcile_inner(job: &ImagePullJob, ctx: &Context) -> Result<Action, Error> {
    let key = key_of(job);
    let ns = job.namespace().unwrap_or_default();
    let jobs: Api<ImagePullJob> = Api::namespaced(ctx.client.clone(), &ns);
    if job.metadata.deletion_timestamp.is_some() {
        // kruise: release the job's pull-secret copies, then let it go.
        ctx.expectations.forget(&expectations_key(&key));
        finalize(ctx, &jobs, job, &key).await?;
        return Ok(Action::await_change());
    }
    let job_ref = job.object_ref(&());

    let mut errors = job.spec.validate();
    errors.extend(plan::selector_errors(&job.spec));
    if !errors.is_empty() {
        let message = format!("invalid ImagePullJob {key}: {errors}");
        if job.status.as_ref().and_then(|s| s.message.as_ref()) != Some(&message) {
            let _ = ctx
                .recorder
                .publish(EventType::Warning, "InvalidSpec", &message, &job_ref)
                .await;
            patch_status(
                &jobs,
                job,
                &ImagePullJobStatus {
                    message: Some(message),
                    ..job.status.clone().unwrap_or_default()
                },
            )
            .await
            .map_err(api_err(&key, "writing status"))?;
        }
        return Ok(Action::await_change());
    }
    // Planning from a NodeImage cache that does not show our last tag writes yet would count
    // those nodes as not started and write them again (past `parallelism`).
    if !ctx
        .expectations
        .satisfied(&expectations_key(&key), &NodeImageView(&ctx.node_images))
    {
        tracing::debug!(imagepulljob = %key, "waiting for the NodeImage cache to show our writes");
        return Ok(Action::requeue(Duration::from_millis(500)));
    }
    let spec = job.spec.defaulted();
    let status = job.status.clone().unwrap_or_default();

    // kruise: a finished job releases its copies and its finalizer; a running one holds the
    // finalizer (so that deleting it releases them) and copies its pull secrets.
    let mut synced = Vec::new();
    if status.completion_time.is_some() {
        finalize(ctx, &jobs, job, &key).await?;
    } else {
        add_finalizer(&jobs, job, &key).await?;
        let copies = if spec.pull_secrets.as_ref().is_some_and(|p| !p.is_empty()) {
            list_copies(ctx)
                .await
                .map_err(api_err(&key, "listing pull-secret copies"))?
        } else {
            Vec::new()
        };
        for name in spec.pull_secrets.iter().flatten() {
            match sync_secret(ctx, &copies, &ns, name, &key).await {
                Ok(copy) => synced.push((ctx.pull_secrets_namespace.clone(), copy)),
                Err(message) => {
                    let _ = ctx
                        .recorder
                        .publish(
                            EventType::Warning,
                            "PullSecretNotSynced",
                            &message,
                            &job_ref,
                        )
                        .await;
                }
            }
        }
    }

    let (image, tag) = plan::split_image(&spec.image);
    let node_images: Api<NodeImage> = Api::all(ctx.client.clone());
    let uid = job.uid().unwrap_or_default();
    let nodes = node_tags(&ctx.node_images, &image, &tag, &uid);
    let pod_nodes = spec
        .pod_selector
        .as_ref()
        .map(|sel| pod_nodes(&ctx.pods, &ns, sel));

    let snapshot = Snapshot {
        job: plan::Job {
            namespace: ns.clone(),
            name: job.name_any(),
            uid: uid.clone(),
            spec: spec.clone(),
            status: status.clone(),
        },
        nodes,
        pod_nodes,
        synced_secrets: synced.clone(),
        now: Timestamp::now(),
    };
    let plan = plan::plan(&snapshot);

    let owner = ObjectReference {
        api_version: Some("apps.kruise.io/v1alpha1".into()),
        kind: Some("ImagePullJob".into()),
        name: Some(job.name_any()),
        namespace: Some(ns.clone()),
        uid: Some(uid.clone()),
        ..Default::default()
    };
    let mut conflicts = false;
    for w in &plan.writes {
        match write_tag(&node_images, w, &owner, &synced, &spec.sandbox_config).await {
            Ok(resource_version) => ctx.expectations.expect(
                &expectations_key(&key),
                Expected::Patched(w.node.clone(), resource_version),
            ),
            Err(kube::Error::Api(e)) if e.code == 409 || e.code == 404 => conflicts = true,
            Err(e) => {
                return Err(api_err(
                    &key,
                    format!("writing tag into NodeImage {}", w.node),
                )(e));
            }
        }
    }

    if status_changed(&status, &plan.status) {
        patch_status(&jobs, job, &plan.status)
            .await
            .map_err(api_err(&key, "writing status"))?;
    }
    for e in &plan.events {
        let type_ = if e.warning {
            EventType::Warning
        } else {
            EventType::Normal
        };
        if let Err(err) = ctx
            .recorder
            .publish(type_, &e.reason, &e.note, &job_ref)
            .await
        {
            tracing::debug!(error = %err, "publishing event");
        }
    }
    if plan.delete_job {
        tracing::info!(imagepulljob = %key, "ttlSecondsAfterFinished passed: deleting");
        ctx.expectations.forget(&expectations_key(&key));
        match jobs
            .delete(&job.name_any(), &DeleteParams::background())
            .await
        {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(api_err(&key, "deleting after TTL")(e)),
        }
        return Ok(Action::await_change());
    }
    if conflicts {
        return Ok(Action::requeue(Duration::from_secs(1)));
    }
    Ok(plan
        .requeue_after
        .map_or_else(Action::await_change, Action::requeue))
}

/// Compares statuses ignoring nothing but exact equality of the written fields.
fn status_changed(old: &ImagePullJobStatus, new: &ImagePullJobStatus) -> bool {
    old != new
}

async fn patch_status(
    jobs: &Api<ImagePullJob>,
    job: &ImagePullJob,
    status: &ImagePullJobStatus,
) -> Result<(), kube::Error> {
    let mut value = serde_json::to_value(status).unwrap_or_default();
    if let Some(obj) = value.as_object_mut() {
        for k in ["startTime", "completionTime", "message", "failedNodes"] {
            obj.entry(k).or_insert(serde_json::Value::Null);
        }
    }
    jobs.patch_status(
        &job.name_any(),
        &PatchParams {
            field_manager: Some(MANAGER.into()),
            ..Default::default()
        },
        &Patch::Merge(json!({ "status": value })),
    )
    .await
    .map(|_| ())
}

/// This job's tag on every NodeImage of the cache, by node name (the order a list returns).
fn node_tags(cache: &Store<NodeImage>, image: &str, tag: &str, uid: &str) -> Vec<NodeTag> {
    let mut nodes: Vec<NodeTag> = cache
        .state()
        .iter()
        .map(|ni| node_tag(ni, image, tag, uid))
        .collect();
    nodes.sort_by(|a, b| a.node.cmp(&b.node));
    nodes
}

/// The nodes running active pods of namespace `ns` that `selector` matches (a `podSelector`).
fn pod_nodes(cache: &Store<Pod>, ns: &str, selector: &LabelSelector) -> BTreeSet<String> {
    cache
        .state()
        .iter()
        .filter(|p| p.metadata.namespace.as_deref() == Some(ns))
        .filter(|p| graft_api::selector::matches_labels(selector, p.metadata.labels.as_ref()))
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| {
            !matches!(
                p.status.as_ref().and_then(|s| s.phase.as_deref()),
                Some("Succeeded" | "Failed")
            )
        })
        .filter_map(|p| p.spec.as_ref().and_then(|s| s.node_name.clone()))
        .collect()
}

/// This job's tag as NodeImage `ni` has it.
fn node_tag(ni: &NodeImage, image: &str, tag: &str, uid: &str) -> NodeTag {
    let spec_tag = ni
        .spec
        .images
        .as_ref()
        .and_then(|m| m.get(image))
        .and_then(|i| i.tags.iter().find(|t| t.tag == tag));
    let status_tag = ni
        .status
        .as_ref()
        .and_then(|s| s.image_statuses.as_ref())
        .and_then(|m| m.get(image))
        .and_then(|i| i.tags.iter().find(|t| t.tag == tag));
    NodeTag {
        node: ni.name_any(),
        labels: ni.labels().clone(),
        spec: spec_tag.map(|t| {
            let owned = t
                .owner_references
                .iter()
                .flatten()
                .any(|o| o.uid.as_deref() == Some(uid));
            (t.version.unwrap_or(0), owned)
        }),
        status: status_tag.map(|t| (t.phase, t.version.unwrap_or(0), t.message.clone())),
    }
}

/// Writes one tag into a NodeImage with optimistic concurrency (a conflict is retried later);
/// returns the NodeImage's new resourceVersion. Reads the NodeImage fresh: the write is a
/// compare-and-swap on the latest version, not on the cache's.
async fn write_tag(
    api: &Api<NodeImage>,
    w: &TagWrite,
    owner: &ObjectReference,
    synced: &[(String, String)],
    sandbox: &Option<graft_api::apps::v1alpha1::imagepulljob::SandboxConfig>,
) -> Result<String, kube::Error> {
    let mut ni = api.get(&w.node).await?;
    let images = ni.spec.images.get_or_insert_with(BTreeMap::new);
    let image = images.entry(w.image.clone()).or_default();
    let secrets = image.pull_secrets.get_or_insert_with(Vec::new);
    for (ns, name) in synced {
        if !secrets
            .iter()
            .any(|s| s.namespace.as_deref() == Some(ns) && s.name.as_deref() == Some(name))
        {
            secrets.push(ReferenceObject {
                namespace: Some(ns.clone()),
                name: Some(name.clone()),
                mode: secrets::reference_mode(owner.namespace.as_deref().unwrap_or_default(), ns),
            });
        }
    }
    if image.pull_secrets.as_ref().is_some_and(Vec::is_empty) {
        image.pull_secrets = None;
    }
    if sandbox.is_some() {
        image.sandbox_config = sandbox.clone();
    }
    let now = Some(Time(Timestamp::now()));
    match image.tags.iter_mut().find(|t| t.tag == w.tag) {
        Some(t) => {
            let owners = t.owner_references.get_or_insert_with(Vec::new);
            if !owners.iter().any(|o| o.uid == owner.uid) {
                owners.push(owner.clone());
            }
            if let Some(v) = w.version {
                t.version = Some(v);
                t.created_at = now;
                t.pull_policy = Some(w.pull_policy.clone());
                t.image_pull_policy = Some(w.image_pull_policy.clone());
            }
        }
        None => image.tags.push(ImageTagSpec {
            tag: w.tag.clone(),
            created_at: now,
            pull_policy: Some(w.pull_policy.clone()),
            owner_references: Some(vec![owner.clone()]),
            version: Some(w.version.unwrap_or(0)),
            image_pull_policy: Some(w.image_pull_policy.clone()),
        }),
    }
    // OpenKruise's NodeImage webhook stores every image's tags sorted by tag.
    nodeimage::sort_tags(&mut image.tags);
    let written = api.replace(&w.node, &PostParams::default(), &ni).await?;
    Ok(written.metadata.resource_version.unwrap_or_default())
}

/// The secrets of the agents' namespace (kruise lists them all; the copies among them carry
/// `imagepulljobs.kruise.io/source-key`).
async fn list_copies(ctx: &Context) -> Result<Vec<Secret>, kube::Error> {
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &ctx.pull_secrets_namespace);
    match api.list(&ListParams::default()).await {
        Ok(l) => Ok(l.items),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Adds the protection finalizer to a running job (kruise's `addProtectionFinalizer`).
async fn add_finalizer(
    jobs: &Api<ImagePullJob>,
    job: &ImagePullJob,
    key: &str,
) -> Result<(), Error> {
    if job
        .finalizers()
        .iter()
        .any(|f| f == secrets::PROTECTION_FINALIZER)
    {
        return Ok(());
    }
    let mut finalizers = job.finalizers().to_vec();
    finalizers.push(secrets::PROTECTION_FINALIZER.to_string());
    patch_finalizers(jobs, job, finalizers)
        .await
        .map_err(api_err(key, "adding the protection finalizer"))
}

/// Releases the job's pull-secret copies and removes its protection finalizer (kruise's
/// `finalize`), for a job that finished or is being deleted.
async fn finalize(
    ctx: &Context,
    jobs: &Api<ImagePullJob>,
    job: &ImagePullJob,
    key: &str,
) -> Result<(), Error> {
    if !job
        .finalizers()
        .iter()
        .any(|f| f == secrets::PROTECTION_FINALIZER)
    {
        return Ok(());
    }
    let copies = list_copies(ctx)
        .await
        .map_err(api_err(key, "listing pull-secret copies"))?;
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &ctx.pull_secrets_namespace);
    for action in secrets::release(&copies, key) {
        let res = match &action {
            secrets::SweepAction::Delete(name) => {
                api.delete(name, &DeleteParams::default()).await.map(|_| ())
            }
            secrets::SweepAction::SetReferences(name, refs) => api
                .patch(
                    name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"metadata": {"annotations": {
                        graft_api::labels::IMAGEPULLJOB_REFERENCES: refs}}})),
                )
                .await
                .map(|_| ()),
        };
        match res {
            Ok(()) => {}
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => {
                return Err(api_err(
                    key,
                    format!("releasing pull-secret copy ({action:?})"),
                )(e));
            }
        }
    }
    let finalizers: Vec<String> = job
        .finalizers()
        .iter()
        .filter(|f| *f != secrets::PROTECTION_FINALIZER)
        .cloned()
        .collect();
    match patch_finalizers(jobs, job, finalizers).await {
        Ok(()) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(api_err(key, "removing the protection finalizer")(e)),
    }
}

/// Writes the job's finalizers, guarded by its resourceVersion (a conflict retries).
async fn patch_finalizers(
    jobs: &Api<ImagePullJob>,
    job: &ImagePullJob,
    finalizers: Vec<String>,
) -> Result<(), kube::Error> {
    jobs.patch(
        &job.name_any(),
        &PatchParams {
            field_manager: Some(MANAGER.into()),
            ..Default::default()
        },
        &Patch::Merge(json!({"metadata": {
            "finalizers": finalizers,
            "resourceVersion": job.resource_version(),
        }})),
    )
    .await
    .map(|_| ())
}

/// Copies pull secret `name` of namespace `ns` for job `job_key` (kruise's
/// `claimImagePullJobSecrets`): a new copy `<name>-<6 hex>` in the agents' namespace, or the copy
/// kruise would pick among `copies` brought up to date; returns the copy's name or a message
/// saying why it could not.
async fn sync_secret(
    ctx: &Context,
    copies: &[Secret],
    ns: &str,
    name: &str,
    job_key: &str,
) -> Result<String, String> {
    let target_ns = &ctx.pull_secrets_namespace;
    if ns == target_ns {
        // kruise: a job in the agents' own namespace uses its secrets as they are.
        return Ok(name.to_string());
    }
    let source_api: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    let source = source_api
        .get_opt(name)
        .await
        .map_err(|e| format!("reading pull secret {ns}/{name}: {e}"))?
        .ok_or_else(|| format!("pull secret {ns}/{name} of ImagePullJob {job_key} not found"))?;
    let target: Api<Secret> = Api::namespaced(ctx.client.clone(), target_ns);
    let source_key = format!("{ns}/{name}");
    if let Some(existing) = secrets::find_copy(copies, &source_key, job_key) {
        let copy_name = existing.name_any();
        let copy = secrets::copy_for(&source, job_key, Some(existing), target_ns, &copy_name);
        let unchanged = existing.data == copy.data
            && existing.string_data == copy.string_data
            && existing.metadata.annotations == copy.metadata.annotations;
        if !unchanged {
            target
                .replace(&copy_name, &PostParams::default(), &copy)
                .await
                .map_err(|e| format!("updating pull-secret copy {target_ns}/{copy_name}: {e}"))?;
        }
        return Ok(copy_name);
    }
    ensure_namespace(&ctx.client, target_ns).await?;
    let copy_name = secrets::copy_name(name, &secrets::random_suffix());
    let copy = secrets::copy_for(&source, job_key, None, target_ns, &copy_name);
    target
        .create(&PostParams::default(), &copy)
        .await
        .map_err(|e| format!("copying pull secret {ns}/{name} to {target_ns}/{copy_name}: {e}"))?;
    Ok(copy_name)
}

async fn ensure_namespace(client: &Client, name: &str) -> Result<(), String> {
    let api: Api<Namespace> = Api::all(client.clone());
    if api
        .get_opt(name)
        .await
        .map_err(|e| format!("reading namespace {name}: {e}"))?
        .is_some()
    {
        return Ok(());
    }
    let ns = Namespace {
        metadata: kube::api::ObjectMeta {
            name: Some(name.to_string()),
            ..Default::default()
        },
        ..Default::default()
    };
    match api.create(&PostParams::default(), &ns).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        Err(e) => Err(format!("creating namespace {name}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ni(v: serde_json::Value) -> NodeImage {
        serde_json::from_value(v).unwrap()
    }

    fn cache<K>(objects: Vec<K>) -> Store<K>
    where
        K: kube::Resource + Clone + 'static,
        K::DynamicType: Default + Eq + std::hash::Hash + Clone,
    {
        let (store, mut writer) = kube::runtime::reflector::store();
        for o in objects {
            writer.apply_watcher_event(&kube::runtime::watcher::Event::Apply(o));
        }
        store
    }

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn a_pod_selector_picks_the_nodes_of_active_matching_pods_of_the_jobs_namespace() {
        let pods = cache(vec![
            pod(
                json!({"metadata": {"name": "a", "namespace": "ns", "labels": {"app": "x"}},
                "spec": {"nodeName": "n1", "containers": []}}),
            ),
            pod(
                json!({"metadata": {"name": "other-app", "namespace": "ns", "labels": {"app": "y"}},
                "spec": {"nodeName": "n2", "containers": []}}),
            ),
            pod(
                json!({"metadata": {"name": "other-ns", "namespace": "ns2", "labels": {"app": "x"}},
                "spec": {"nodeName": "n3", "containers": []}}),
            ),
            pod(
                json!({"metadata": {"name": "done", "namespace": "ns", "labels": {"app": "x"}},
                "spec": {"nodeName": "n4", "containers": []}, "status": {"phase": "Succeeded"}}),
            ),
            pod(
                json!({"metadata": {"name": "unscheduled", "namespace": "ns", "labels": {"app": "x"}},
                "spec": {"containers": []}}),
            ),
        ]);
        let sel: LabelSelector = serde_json::from_value(json!({
            "matchExpressions": [{"key": "app", "operator": "In", "values": ["x"]}]
        }))
        .unwrap();
        assert_eq!(
            pod_nodes(&pods, "ns", &sel),
            BTreeSet::from(["n1".to_string()])
        );
    }

    #[test]
    fn node_tags_come_from_the_cache_in_name_order() {
        let nis = cache(vec![
            ni(json!({"metadata": {"name": "n2"}, "spec": {}})),
            ni(json!({"metadata": {"name": "n1"}, "spec": {}})),
            ni(json!({"metadata": {"name": "n3"}, "spec": {}})),
        ]);
        let names: Vec<String> = node_tags(&nis, "reg/app", "v1", "u1")
            .into_iter()
            .map(|t| t.node)
            .collect();
        assert_eq!(names, ["n1", "n2", "n3"]);
    }

    #[test]
    fn the_node_image_cache_shows_our_writes_to_expectations() {
        let nis = cache(vec![ni(
            json!({"metadata": {"name": "n1", "resourceVersion": "12"}, "spec": {}}),
        )]);
        let e = crate::expectations::Expectations::new(Duration::from_secs(300));
        let key = expectations_key("ns/job");
        e.expect(&key, Expected::Patched("n1".into(), "13".into()));
        assert!(!e.satisfied(&key, &NodeImageView(&nis)));
        let e2 = crate::expectations::Expectations::new(Duration::from_secs(300));
        e2.expect(&key, Expected::Patched("n1".into(), "12".into()));
        assert!(e2.satisfied(&key, &NodeImageView(&nis)));
        assert!(
            e2.satisfied("ns/job", &NodeImageView(&nis)),
            "a CloneSet ns/job waits for nothing"
        );
    }

    #[test]
    fn node_images_map_to_the_jobs_owning_their_tags() {
        let n = ni(
            json!({"metadata": {"name": "n1"}, "spec": {"images": {"reg/app": {"tags": [
                {"tag": "v1", "ownerReferences": [
                    {"kind": "ImagePullJob", "namespace": "a", "name": "j1", "uid": "u1"},
                    {"kind": "ImagePullJob", "namespace": "b", "name": "j2", "uid": "u2"}]},
                {"tag": "v2", "ownerReferences": [{"kind": "Other", "namespace": "a", "name": "x"}]}
            ]}}}}),
        );
        let all: Vec<String> = owner_jobs(&n, None).iter().map(|r| r.to_string()).collect();
        assert_eq!(all.len(), 2, "{all:?}");
        assert_eq!(owner_jobs(&n, Some("b")).len(), 1);
    }

    #[test]
    fn a_node_tag_view_says_whether_the_job_owns_it() {
        let n = ni(json!({"metadata": {"name": "n1", "labels": {"z": "1"}},
            "spec": {"images": {"reg/app": {"tags": [
                {"tag": "v1", "version": 2, "ownerReferences": [{"uid": "u1"}]}]}}},
            "status": {"imageStatuses": {"reg/app": {"tags": [
                {"tag": "v1", "version": 2, "phase": "Failed", "message": "boom"}]}}}}));
        let mine = node_tag(&n, "reg/app", "v1", "u1");
        assert_eq!(mine.spec, Some((2, true)));
        assert_eq!(
            mine.status,
            Some((
                graft_api::apps::v1alpha1::nodeimage::ImagePullPhase::Failed,
                2,
                Some("boom".to_string())
            ))
        );
        assert_eq!(node_tag(&n, "reg/app", "v1", "u9").spec, Some((2, false)));
        assert_eq!(node_tag(&n, "reg/app", "v2", "u1").spec, None);
    }
}
