//! Image pre-download for in-place updates (OpenKruise's `PreDownloadImageForInPlaceUpdate`,
//! `cloneset_predownload_image.go`, kruise-api.md §2.8): while a CloneSet rolls out a new
//! revision in place, one ImagePullJob per changed container pulls the new image on the nodes of
//! the pods not yet updated, so that their turn costs no pull. The update revision is labelled
//! once the jobs are made (`apps.kruise.io/pre-predownload-created`) or once it is clear that it
//! needs none (`apps.kruise.io/image-predownload-ignored`); when the revisions converge, the
//! CloneSet's jobs are deleted.
//!
//! Pure: the planner says which jobs to create or delete and which label to put on the revision;
//! the executor does it.

use std::collections::BTreeMap;

use graft_api::apps::common::{CompletionPolicy, CompletionPolicyType};
use graft_api::apps::v1alpha1::cloneset::{CloneSetUpdateStrategyType, DEFAULT_MAX_UNAVAILABLE};
use graft_api::apps::v1alpha1::imagepulljob::{PullPolicy, SandboxConfig};
use graft_api::apps::v1alpha1::{CloneSet, ImagePullJob, ImagePullJobSpec};
use graft_api::{intstr, labels};
use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelectorRequirement, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::cloneset::{pods, vct};
use crate::inplace;
use crate::revision;

/// CloneSets with this many replicas or fewer never pre-download (`minimumReplicasToPreDownloadImage`).
pub const MINIMUM_REPLICAS: i32 = 3;
/// `pullPolicy.timeoutSeconds` of the jobs unless the CloneSet's annotation says otherwise.
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

/// What the pre-download decision reads.
pub(crate) struct Facts<'a> {
    /// The CloneSet as read.
    pub cloneset: &'a CloneSet,
    /// The current revision.
    pub current: &'a ControllerRevision,
    /// The update revision (possibly created by this very plan).
    pub update: &'a ControllerRevision,
    /// Names of the ImagePullJobs controlled by the CloneSet.
    pub owned_jobs: &'a [String],
}

/// `createImagePullJobsForInPlaceUpdate` and the job clean-up around it in `doReconcile`.
pub(crate) fn decide(f: &Facts<'_>) -> PreDownload {
    let cs = f.cloneset;
    let current_name = f.current.metadata.name.clone().unwrap_or_default();
    let update_name = f.update.metadata.name.clone().unwrap_or_default();
    if current_name == update_name {
        if f.owned_jobs.is_empty() {
            return PreDownload::None;
        }
        return PreDownload::Delete {
            jobs: f.owned_jobs.to_vec(),
        };
    }
    let spec = cs.spec.defaulted();
    let replicas = spec.replicas();
    let annotations = cs.metadata.annotations.clone().unwrap_or_default();

    // Wait until enough pods run the new revision, if the CloneSet asks for it.
    let min_updated_ready = annotations
        .get(labels::IMAGE_PREDOWNLOAD_MIN_UPDATED_READY_PODS)
        .map(|v| {
            let v = match v.parse::<i32>() {
                Ok(i) => IntOrString::Int(i),
                Err(_) => IntOrString::String(v.clone()),
            };
            intstr::scaled_value(&v, replicas, true).unwrap_or(0)
        })
        .unwrap_or(0);
    let status = cs.status.clone().unwrap_or_default();
    let updated_ready = if status.update_revision.as_deref() == Some(update_name.as_str()) {
        status.updated_ready_replicas
    } else {
        0
    };
    if min_updated_ready > updated_ready {
        return PreDownload::None;
    }

    let revision_labels = f.update.metadata.labels.clone().unwrap_or_default();
    if revision_labels.contains_key(labels::IMAGE_PREDOWNLOAD_CREATED)
        || revision_labels.contains_key(labels::IMAGE_PREDOWNLOAD_IGNORED)
    {
        return PreDownload::None;
    }
    let ignore = |reason: &str| PreDownload::Ignore {
        revision: update_name.clone(),
        reason: reason.to_string(),
    };

    let us = spec.update_strategy.clone().unwrap_or_default();
    let strategy = us.type_.unwrap_or_default();
    if strategy == CloneSetUpdateStrategyType::ReCreate {
        return ignore("update type is ReCreate");
    }
    if replicas <= MINIMUM_REPLICAS {
        return ignore("replicas less than or equal to the minimum threshold");
    }
    let partition = match intstr::partition_replicas(us.partition.as_ref(), replicas) {
        Ok(p) => p,
        // kruise returns the error and labels nothing.
        Err(_) => return PreDownload::None,
    };
    let default_mu = IntOrString::String(DEFAULT_MAX_UNAVAILABLE.to_string());
    let max_unavailable = intstr::scaled_value(
        us.max_unavailable.as_ref().unwrap_or(&default_mu),
        replicas,
        false,
    )
    .unwrap_or(0);
    if partition == 0 && max_unavailable >= replicas {
        return ignore("all Pods update in one batch");
    }

    let Ok(current_template) = revision::template_from_revision(f.current) else {
        return ignore("in-place update was not possible");
    };
    let target = &cs.spec.template;
    let vct_ok = strategy == CloneSetUpdateStrategyType::InPlaceOnly
        || vct::can_update_in_place(f.current, f.update);
    let in_place = inplace::calculate(
        &current_template,
        target,
        &update_name,
        spec.in_place_grace_seconds(),
    )
    .is_ok();
    if !in_place || !vct_ok {
        return ignore("in-place update was not possible");
    }

    let images = changed_images(&current_template, target);
    let jobs = images
        .iter()
        .map(|(container, image)| job(cs, f.update, container, image, &annotations))
        .collect();
    PreDownload::Create {
        revision: update_name,
        jobs,
    }
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
/// `<update revision>-<container>`, controlled by the CloneSet, labelled with the template labels
/// and the revision hash, selecting the nodes of the CloneSet's pods not at the update revision.
pub(crate) fn job(
    cs: &CloneSet,
    update: &ControllerRevision,
    container: &str,
    image: &str,
    cs_annotations: &BTreeMap<String, String>,
) -> ImagePullJob {
    let update_name = update.metadata.name.clone().unwrap_or_default();
    let hash = update
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(labels::CONTROLLER_HASH))
        .cloned()
        .unwrap_or_default();
    let template_meta = cs.spec.template.metadata.clone().unwrap_or_default();
    let mut job_labels = template_meta.labels.clone().unwrap_or_default();
    job_labels.insert(labels::CONTROLLER_HASH.to_string(), hash.clone());
    let sandbox_annotations = template_meta.annotations.clone().unwrap_or_default();

    let mut selector = cs.spec.selector.clone();
    selector
        .match_expressions
        .get_or_insert_with(Vec::new)
        .push(LabelSelectorRequirement {
            key: labels::CONTROLLER_REVISION_HASH.to_string(),
            operator: "NotIn".to_string(),
            values: Some(vec![update_name.clone(), hash]),
        });

    let pull_secrets: Vec<String> = cs
        .spec
        .template
        .spec
        .as_ref()
        .and_then(|s| s.image_pull_secrets.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|s| s.name)
        .collect();
    // Go's strconv: a value that does not parse leaves the default.
    let timeout = cs_annotations
        .get(labels::IMAGE_PREDOWNLOAD_TIMEOUT_SECONDS)
        .and_then(|v| v.parse::<i32>().ok())
        .unwrap_or(DEFAULT_TIMEOUT_SECONDS);
    let parallelism = cs_annotations
        .get(labels::IMAGE_PREDOWNLOAD_PARALLELISM)
        .and_then(|v| v.parse::<i32>().ok())
        .unwrap_or(1);

    ImagePullJob {
        metadata: ObjectMeta {
            name: Some(format!("{update_name}-{container}")),
            namespace: cs.metadata.namespace.clone(),
            owner_references: Some(vec![pods::owner_reference(cs)]),
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
