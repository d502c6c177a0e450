//! The ImagePullJob executor: gathers the snapshot (the job, every NodeImage, the pods of a
//! `podSelector`), runs the pure [`plan`](super::plan), writes tags into NodeImages, the status and
//! Events, and deletes the job after its TTL. It decides nothing itself.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use graft_api::apps::v1alpha1::imagepulljob::{ImagePullJob, ImagePullJobStatus};
use graft_api::apps::v1alpha1::nodeimage::{ImageTagSpec, NodeImage, ReferenceObject};
use k8s_openapi::api::core::v1::{Namespace, ObjectReference, Pod, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{Controller, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde_json::json;

use super::plan::{self, NodeTag, Snapshot, TagWrite};
use super::secrets;
use crate::events::{EventType, Recorder};

/// Field manager of graft's writes.
const MANAGER: &str = "graft";

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

/// Shared state of the ImagePullJob controller.
pub struct Context {
    /// API client.
    pub client: Client,
    /// Publishes Events.
    pub recorder: Recorder,
    /// Namespace the agents read pull secrets from.
    pub pull_secrets_namespace: String,
}

fn key_of(job: &ImagePullJob) -> String {
    format!("{}/{}", job.namespace().unwrap_or_default(), job.name_any())
}

/// Runs the ImagePullJob controller (jobs of `namespace`, or of all namespaces) until shutdown.
pub async fn run(client: Client, namespace: Option<String>, ctx: Arc<Context>) {
    let jobs: Api<ImagePullJob> = match &namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let node_images: Api<NodeImage> = Api::all(client.clone());
    let scope = namespace.clone();
    Controller::new(jobs, watcher::Config::default().any_semantic())
        .watches(
            node_images,
            watcher::Config::default().any_semantic(),
            move |ni| owner_jobs(&ni, scope.as_deref()),
        )
        .shutdown_on_signal()
        .run(reconcile, error_policy, ctx)
        .for_each(|res| {
            if let Err(e) = res {
                tracing::debug!(error = %e, "imagepulljob reconcile");
            }
            futures::future::ready(())
        })
        .await;
}

/// The ImagePullJobs named as owners of tags in a NodeImage.
fn owner_jobs(ni: &NodeImage, namespace: Option<&str>) -> Vec<ObjectRef<ImagePullJob>> {
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
pub fn error_policy(job: Arc<ImagePullJob>, err: &Error, _ctx: Arc<Context>) -> Action {
    tracing::warn!(imagepulljob = %key_of(&job), error = %err, "reconcile failed");
    Action::requeue(Duration::from_secs(5))
}

fn api_err(key: &str, step: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
    let key = key.to_string();
    let step = step.into();
    move |source| Error::Api { key, step, source }
}

/// One reconcile of an ImagePullJob.
pub async fn reconcile(job: Arc<ImagePullJob>, ctx: Arc<Context>) -> Result<Action, Error> {
    let key = key_of(&job);
    if job.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let ns = job.namespace().unwrap_or_default();
    let jobs: Api<ImagePullJob> = Api::namespaced(ctx.client.clone(), &ns);
    let job_ref = job.object_ref(&());

    let errors = job.spec.validate();
    if !errors.is_empty() {
        let message = format!("invalid ImagePullJob {key}: {errors}");
        if job.status.as_ref().and_then(|s| s.message.as_ref()) != Some(&message) {
            let _ = ctx
                .recorder
                .publish(EventType::Warning, "InvalidSpec", &message, &job_ref)
                .await;
            patch_status(
                &jobs,
                &job,
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
    let spec = job.spec.defaulted();
    let status = job.status.clone().unwrap_or_default();

    // Copy pull secrets while the job runs.
    let mut synced = Vec::new();
    if status.completion_time.is_none() {
        for name in spec.pull_secrets.iter().flatten() {
            match sync_secret(&ctx, &ns, name, &key).await {
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
    let all = node_images
        .list(&ListParams::default())
        .await
        .map_err(api_err(&key, "listing NodeImages"))?;
    let uid = job.uid().unwrap_or_default();
    let nodes: Vec<NodeTag> = all
        .items
        .iter()
        .map(|ni| node_tag(ni, &image, &tag, &uid))
        .collect();

    let pod_nodes = match &spec.pod_selector {
        None => None,
        Some(sel) => {
            let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
            let list = pods
                .list(&ListParams::default().labels(&selector_string(sel)))
                .await
                .map_err(api_err(&key, "listing pods of podSelector"))?;
            Some(
                list.items
                    .iter()
                    .filter(|p| p.metadata.deletion_timestamp.is_none())
                    .filter(|p| {
                        !matches!(
                            p.status.as_ref().and_then(|s| s.phase.as_deref()),
                            Some("Succeeded" | "Failed")
                        )
                    })
                    .filter_map(|p| p.spec.as_ref().and_then(|s| s.node_name.clone()))
                    .collect(),
            )
        }
    };

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
            Ok(()) => {}
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
        patch_status(&jobs, &job, &plan.status)
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

/// Writes one tag into a NodeImage with optimistic concurrency (a conflict is retried later).
async fn write_tag(
    api: &Api<NodeImage>,
    w: &TagWrite,
    owner: &ObjectReference,
    synced: &[(String, String)],
    sandbox: &Option<graft_api::apps::v1alpha1::imagepulljob::SandboxConfig>,
) -> Result<(), kube::Error> {
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
                t.image_pull_policy = Some(w.image_pull_policy);
            }
        }
        None => image.tags.push(ImageTagSpec {
            tag: w.tag.clone(),
            created_at: now,
            pull_policy: Some(w.pull_policy.clone()),
            owner_references: Some(vec![owner.clone()]),
            version: Some(w.version.unwrap_or(0)),
            image_pull_policy: Some(w.image_pull_policy),
        }),
    }
    api.replace(&w.node, &PostParams::default(), &ni).await?;
    Ok(())
}

/// Copies pull secret `name` of namespace `ns` for job `job_key`; returns the copy's name or a
/// message saying why it could not.
async fn sync_secret(ctx: &Context, ns: &str, name: &str, job_key: &str) -> Result<String, String> {
    let source_api: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    let source = source_api
        .get_opt(name)
        .await
        .map_err(|e| format!("reading pull secret {ns}/{name}: {e}"))?
        .ok_or_else(|| format!("pull secret {ns}/{name} of ImagePullJob {job_key} not found"))?;
    let target_ns = &ctx.pull_secrets_namespace;
    ensure_namespace(&ctx.client, target_ns).await?;
    let target: Api<Secret> = Api::namespaced(ctx.client.clone(), target_ns);
    let copy_name = secrets::copy_name(ns, name);
    let existing = target
        .get_opt(&copy_name)
        .await
        .map_err(|e| format!("reading {target_ns}/{copy_name}: {e}"))?;
    let copy = secrets::copy_for(&source, job_key, existing.as_ref(), target_ns);
    let unchanged = existing.as_ref().is_some_and(|e| {
        e.data == copy.data
            && e.type_ == copy.type_
            && secrets::references(e) == secrets::references(&copy)
    });
    if !unchanged {
        target
            .patch(
                &copy_name,
                &PatchParams::apply(MANAGER).force(),
                &Patch::Apply(&with_type_meta(copy)),
            )
            .await
            .map_err(|e| format!("copying pull secret {ns}/{name} to {target_ns}: {e}"))?;
    }
    Ok(copy_name)
}

fn with_type_meta(secret: Secret) -> serde_json::Value {
    let mut v = serde_json::to_value(secret).unwrap_or_default();
    v["apiVersion"] = json!("v1");
    v["kind"] = json!("Secret");
    v
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

/// A label selector in the API server's query syntax.
pub fn selector_string(sel: &LabelSelector) -> String {
    let mut parts: Vec<String> = sel
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for e in sel.match_expressions.iter().flatten() {
        let values = e.values.clone().unwrap_or_default().join(",");
        parts.push(match e.operator.as_str() {
            "In" => format!("{} in ({values})", e.key),
            "NotIn" => format!("{} notin ({values})", e.key),
            "Exists" => e.key.clone(),
            _ => format!("!{}", e.key),
        });
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ni(v: serde_json::Value) -> NodeImage {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn selectors_render_in_the_api_server_syntax() {
        let sel: LabelSelector = serde_json::from_value(json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["a", "b"]},
                {"key": "zone", "operator": "NotIn", "values": ["x"]},
                {"key": "gpu", "operator": "Exists"},
                {"key": "spot", "operator": "DoesNotExist"}
            ]
        }))
        .unwrap();
        assert_eq!(
            selector_string(&sel),
            "app=web,tier in (a,b),zone notin (x),gpu,!spot"
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
