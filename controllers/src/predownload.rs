//! Image pre-download for in-place updates (OpenKruise's `PreDownloadImageForInPlaceUpdate`,
//! `cloneset_predownload_image.go` and `statefulset_predownload_image.go`, kruise-api.md §2.8),
//! shared by CloneSet and Advanced StatefulSet: while a workload rolls out a new revision in
//! place, one ImagePullJob per changed container pulls the new image on the nodes of the pods not
//! yet updated, so that their turn costs no pull. The update revision is labelled once the jobs
//! are made (`apps.kruise.io/pre-predownload-created`) or once it is clear that it needs none
//! (`apps.kruise.io/image-predownload-ignored`); when the revisions converge, the workload's jobs
//! are deleted.
//!
//! [`decide`] is pure (each kind adds its own checks as a [`Gate`]); [`apply`] carries the
//! decision out.

use std::collections::BTreeMap;

use graft_api::apps::common::{CompletionPolicy, CompletionPolicyType};
use graft_api::apps::v1alpha1::imagepulljob::{PullPolicy, SandboxConfig};
use graft_api::apps::v1alpha1::{ImagePullJob, ImagePullJobSpec};
use graft_api::{intstr, labels};
use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::{ObjectReference, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, LabelSelectorRequirement, ObjectMeta, OwnerReference,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::context::Context;
use crate::revision;

/// Workloads with this many replicas or fewer never pre-download (`minimumReplicasToPreDownloadImage`).
pub const MINIMUM_REPLICAS: i32 = 3;
/// `pullPolicy.timeoutSeconds` of the jobs unless the workload's annotation says otherwise.
pub const DEFAULT_TIMEOUT_SECONDS: i32 = 300;
/// `pullPolicy.backoffLimit` of the jobs.
pub const BACKOFF_LIMIT: i32 = 1;
/// `completionPolicy.ttlSecondsAfterFinished` of the jobs.
pub const TTL_SECONDS_AFTER_FINISHED: i32 = 600;

/// What this reconcile does about pre-downloads.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum PreDownload {
    /// Nothing.
    #[default]
    None,
    /// The update revision needs no pre-download (why, for the log): label it
    /// `apps.kruise.io/image-predownload-ignored=true`.
    Ignore {
        /// Name of the update revision.
        revision: String,
        /// Why no job is made.
        reason: String,
    },
    /// Create these jobs (one that exists already is left alone), then label the update revision
    /// `apps.kruise.io/pre-predownload-created=true`.
    Create {
        /// Name of the update revision.
        revision: String,
        /// The jobs, by container name order.
        jobs: Vec<ImagePullJob>,
    },
    /// The revisions converged: delete the CloneSet's jobs.
    Delete {
        /// Names of the ImagePullJobs controlled by the CloneSet.
        jobs: Vec<String>,
    },
}

/// The workload a pre-download is for, as CloneSet and Advanced StatefulSet both have it.
pub(crate) struct Workload<'a> {
    /// Its metadata (namespace; the `apps.kruise.io/image-predownload-*` annotations).
    pub meta: &'a ObjectMeta,
    /// The controller reference its jobs carry.
    pub owner: OwnerReference,
    /// Its pod selector.
    pub selector: &'a LabelSelector,
    /// Its pod template (the update revision's).
    pub template: &'a PodTemplateSpec,
    /// `spec.replicas`.
    pub replicas: i32,
    /// `status.updateRevision`.
    pub status_update_revision: Option<&'a str>,
    /// `status.updatedReadyReplicas`.
    pub status_updated_ready: i32,
}

/// What the kind's own checks say, after the shared ones (`createImagePullJobsFor...`).
pub(crate) enum Gate {
    /// Make the jobs.
    Go,
    /// The update revision needs none, for this reason: label it ignored.
    Ignore(&'static str),
    /// Decide nothing now (kruise returned an error and labelled nothing).
    Later,
}

/// Why a revision that cannot be updated in place gets no jobs (both kinds' wording).
pub(crate) const NOT_IN_PLACE: &str = "in-place update was not possible";

/// kruise's `doPreDownload` / the CloneSet's equivalent in `doReconcile`, around the kind's own
/// checks: once the revisions converge the workload's jobs (`owned_jobs`, the ImagePullJobs it
/// controls) are deleted; otherwise, once enough pods of the update revision are ready
/// (`image-predownload-min-updated-ready-pods`) and the update revision is not labelled yet,
/// `gate` gets the current revision's template (`None` when it cannot be read) and decides.
pub(crate) fn decide(
    w: &Workload<'_>,
    current: &ControllerRevision,
    update: &ControllerRevision,
    owned_jobs: &[String],
    gate: impl FnOnce(Option<&PodTemplateSpec>) -> Gate,
) -> PreDownload {
    let current_name = current.metadata.name.clone().unwrap_or_default();
    let update_name = update.metadata.name.clone().unwrap_or_default();
    if current_name == update_name {
        if owned_jobs.is_empty() {
            return PreDownload::None;
        }
        return PreDownload::Delete {
            jobs: owned_jobs.to_vec(),
        };
    }
    let annotations = w.meta.annotations.clone().unwrap_or_default();

    // Wait until enough pods run the new revision, if the workload asks for it.
    let min_updated_ready = annotations
        .get(labels::IMAGE_PREDOWNLOAD_MIN_UPDATED_READY_PODS)
        .map(|v| {
            let v = match v.parse::<i32>() {
                Ok(i) => IntOrString::Int(i),
                Err(_) => IntOrString::String(v.clone()),
            };
            intstr::scaled_value(&v, w.replicas, true).unwrap_or(0)
        })
        .unwrap_or(0);
    let updated_ready = if w.status_update_revision == Some(update_name.as_str()) {
        w.status_updated_ready
    } else {
        0
    };
    if min_updated_ready > updated_ready {
        return PreDownload::None;
    }

    let revision_labels = update.metadata.labels.clone().unwrap_or_default();
    if revision_labels.contains_key(labels::IMAGE_PREDOWNLOAD_CREATED)
        || revision_labels.contains_key(labels::IMAGE_PREDOWNLOAD_IGNORED)
    {
        return PreDownload::None;
    }
    let current_template = revision::template_from_revision(current).ok();
    let ignore = |reason: &str| PreDownload::Ignore {
        revision: update_name.clone(),
        reason: reason.to_string(),
    };
    match gate(current_template.as_ref()) {
        Gate::Later => return PreDownload::None,
        Gate::Ignore(reason) => return ignore(reason),
        Gate::Go => {}
    }
    let Some(current_template) = current_template else {
        return ignore(NOT_IN_PLACE);
    };
    let jobs = changed_images(&current_template, w.template)
        .iter()
        .map(|(container, image)| job(w, update, container, image))
        .collect();
    PreDownload::Create {
        revision: update_name,
        jobs,
    }
}

/// The common checks of both kinds: too few replicas, or every pod in one batch.
pub(crate) fn batch_gate(replicas: i32, partition: i32, max_unavailable: i32) -> Option<Gate> {
    if replicas <= MINIMUM_REPLICAS {
        return Some(Gate::Ignore(
            "replicas less than or equal to the minimum threshold",
        ));
    }
    if partition == 0 && max_unavailable >= replicas {
        return Some(Gate::Ignore("all Pods update in one batch"));
    }
    None
}

/// `diffImagesBetweenRevisions`: containers of the new template whose image differs from the
/// container of the same name in the old one, or that the old one lacks.
pub(crate) fn changed_images(
    old: &PodTemplateSpec,
    new: &PodTemplateSpec,
) -> BTreeMap<String, String> {
    let containers = |t: &PodTemplateSpec| t.spec.as_ref().map(|s| s.containers.clone());
    let old_containers = containers(old).unwrap_or_default();
    containers(new)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|c| {
            let image = c.image.clone().unwrap_or_default();
            match old_containers.iter().find(|o| o.name == c.name) {
                Some(o) if o.image.as_deref().unwrap_or_default() == image => None,
                _ => Some((c.name, image)),
            }
        })
        .collect()
}

/// The ImagePullJob kruise-manager creates for `container` (`CreateJobForWorkload`): named
/// `<update revision>-<container>`, controlled by the workload, labelled with the template labels
/// and the revision hash, selecting the nodes of the workload's pods not at the update revision.
pub(crate) fn job(
    w: &Workload<'_>,
    update: &ControllerRevision,
    container: &str,
    image: &str,
) -> ImagePullJob {
    let update_name = update.metadata.name.clone().unwrap_or_default();
    let hash = update
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(labels::CONTROLLER_HASH))
        .cloned()
        .unwrap_or_default();
    let template_meta = w.template.metadata.clone().unwrap_or_default();
    let mut job_labels = template_meta.labels.clone().unwrap_or_default();
    job_labels.insert(labels::CONTROLLER_HASH.to_string(), hash.clone());
    let sandbox_annotations = template_meta.annotations.clone().unwrap_or_default();

    let mut selector = w.selector.clone();
    selector
        .match_expressions
        .get_or_insert_with(Vec::new)
        .push(LabelSelectorRequirement {
            key: labels::CONTROLLER_REVISION_HASH.to_string(),
            operator: "NotIn".to_string(),
            values: Some(vec![update_name.clone(), hash]),
        });

    let pull_secrets: Vec<String> = w
        .template
        .spec
        .as_ref()
        .and_then(|s| s.image_pull_secrets.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|s| s.name)
        .collect();
    let annotations = w.meta.annotations.clone().unwrap_or_default();
    // Go's strconv: a value that does not parse leaves the default.
    let timeout = annotations
        .get(labels::IMAGE_PREDOWNLOAD_TIMEOUT_SECONDS)
        .and_then(|v| v.parse::<i32>().ok())
        .unwrap_or(DEFAULT_TIMEOUT_SECONDS);
    let parallelism = annotations
        .get(labels::IMAGE_PREDOWNLOAD_PARALLELISM)
        .and_then(|v| v.parse::<i32>().ok())
        .unwrap_or(1);

    ImagePullJob {
        metadata: ObjectMeta {
            name: Some(format!("{update_name}-{container}")),
            namespace: w.meta.namespace.clone(),
            owner_references: Some(vec![w.owner.clone()]),
            labels: Some(job_labels.clone()),
            ..Default::default()
        },
        spec: ImagePullJobSpec {
            image: image.to_string(),
            pull_secrets: (!pull_secrets.is_empty()).then_some(pull_secrets),
            pod_selector: Some(selector),
            parallelism: Some(IntOrString::Int(parallelism)),
            pull_policy: Some(PullPolicy {
                timeout_seconds: Some(timeout),
                backoff_limit: Some(BACKOFF_LIMIT),
            }),
            completion_policy: Some(CompletionPolicy {
                type_: Some(CompletionPolicyType::Always),
                ttl_seconds_after_finished: Some(TTL_SECONDS_AFTER_FINISHED),
                ..Default::default()
            }),
            sandbox_config: Some(SandboxConfig {
                labels: (!job_labels.is_empty()).then_some(job_labels),
                annotations: (!sandbox_annotations.is_empty()).then_some(sandbox_annotations),
            }),
            ..Default::default()
        },
        status: None,
    }
}

/// Names of the ImagePullJobs of `ns` (from the shared cache) whose controller is the object with
/// `uid` (`DeleteJobsForWorkload` goes by the controller reference).
pub(crate) fn owned_jobs(ctx: &Context, ns: &str, uid: &str) -> Vec<String> {
    let mut names: Vec<String> = ctx
        .image_pull_jobs
        .state()
        .iter()
        .filter(|j| j.metadata.namespace.as_deref() == Some(ns))
        .filter(|j| {
            j.metadata
                .owner_references
                .iter()
                .flatten()
                .any(|o| o.controller == Some(true) && o.uid == uid)
        })
        .filter_map(|j| j.metadata.name.clone())
        .collect();
    names.sort();
    names
}

/// Carries out `pre` in namespace `ns` for the workload `key` (for logs), with the Events kruise
/// records on the workload (`reference`), both `Normal`: `CreatedImagePullJob`,
/// `FailedCreateImagePullJob`.
pub(crate) async fn apply(
    ctx: &Context,
    ns: &str,
    key: &str,
    pre: &PreDownload,
    reference: &ObjectReference,
) {
    let publish = |(reason, message): (&str, String)| {
        ctx.recorder.enqueue(
            crate::events::EventType::Normal,
            reason,
            &message,
            reference,
        );
    };
    let jobs_api = Api::<ImagePullJob>::namespaced(ctx.client.clone(), ns);
    match pre {
        PreDownload::None => {}
        PreDownload::Ignore { revision, reason } => {
            tracing::debug!(workload = %key, %revision, %reason, "no image pre-download");
            label_revision(ctx, ns, key, revision, labels::IMAGE_PREDOWNLOAD_IGNORED).await;
        }
        PreDownload::Create { revision, jobs } => {
            for job in jobs {
                let name = job.metadata.name.clone().unwrap_or_default();
                match jobs_api.create(&PostParams::default(), job).await {
                    Ok(_) => publish((
                        "CreatedImagePullJob",
                        format!("created ImagePullJob {name} for image: {}", job.spec.image),
                    )),
                    Err(kube::Error::Api(e)) if e.code == 409 => {}
                    Err(e) => {
                        tracing::warn!(workload = %key, job = %name, error = %e, "creating an ImagePullJob");
                        publish((
                            "FailedCreateImagePullJob",
                            format!("failed to create ImagePullJob {name}: {e}"),
                        ));
                    }
                }
            }
            label_revision(ctx, ns, key, revision, labels::IMAGE_PREDOWNLOAD_CREATED).await;
        }
        PreDownload::Delete { jobs } => {
            for name in jobs {
                match jobs_api.delete(name, &DeleteParams::default()).await {
                    Ok(_) => {
                        tracing::info!(workload = %key, job = %name, "deleted pre-download ImagePullJob");
                    }
                    Err(kube::Error::Api(e)) if e.code == 404 => {}
                    Err(e) => {
                        tracing::warn!(workload = %key, job = %name, error = %e, "deleting an ImagePullJob");
                        // kruise stops at the first failure too.
                        return;
                    }
                }
            }
        }
    }
}

async fn label_revision(ctx: &Context, ns: &str, key: &str, revision: &str, label: &str) {
    let patch = json!({"metadata": {"labels": {label: "true"}}});
    let pp = PatchParams {
        field_manager: Some(labels::GRAFT_FIELD_MANAGER.to_string()),
        ..Default::default()
    };
    if let Err(e) = Api::<ControllerRevision>::namespaced(ctx.client.clone(), ns)
        .patch(revision, &pp, &Patch::Merge(&patch))
        .await
    {
        tracing::warn!(workload = %key, %revision, %label, error = %e, "labelling the update revision");
    }
}
