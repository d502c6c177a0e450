//! The CloneSet's image pre-download checks (`cloneset_predownload_image.go`) on top of the
//! shared [`crate::predownload`] decision.

use graft_api::apps::v1alpha1::CloneSet;
use graft_api::apps::v1alpha1::cloneset::{CloneSetUpdateStrategyType, DEFAULT_MAX_UNAVAILABLE};
use graft_api::intstr;
use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::cloneset::{pods, vct};
use crate::inplace;
use crate::predownload::{self, Gate, NOT_IN_PLACE, PreDownload, Workload};

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
    let spec = cs.spec.defaulted();
    let replicas = spec.replicas();
    let status = cs.status.clone().unwrap_or_default();
    let update_name = f.update.metadata.name.clone().unwrap_or_default();
    let w = Workload {
        meta: &cs.metadata,
        owner: pods::owner_reference(cs),
        selector: &cs.spec.selector,
        template: &cs.spec.template,
        replicas,
        status_update_revision: status.update_revision.as_deref(),
        status_updated_ready: status.updated_ready_replicas,
    };
    predownload::decide(&w, f.current, f.update, f.owned_jobs, |current| {
        let us = spec.update_strategy.clone().unwrap_or_default();
        let strategy = us.type_.unwrap_or_default();
        if strategy == CloneSetUpdateStrategyType::ReCreate {
            return Gate::Ignore("update type is ReCreate");
        }
        let Ok(partition) = intstr::partition_replicas(us.partition.as_ref(), replicas) else {
            // kruise returns the error and labels nothing.
            return if replicas <= predownload::MINIMUM_REPLICAS {
                Gate::Ignore("replicas less than or equal to the minimum threshold")
            } else {
                Gate::Later
            };
        };
        let default_mu = IntOrString::String(DEFAULT_MAX_UNAVAILABLE.to_string());
        let max_unavailable = intstr::scaled_value(
            us.max_unavailable.as_ref().unwrap_or(&default_mu),
            replicas,
            false,
        )
        .unwrap_or(0);
        if let Some(g) = predownload::batch_gate(replicas, partition, max_unavailable) {
            return g;
        }
        let Some(current) = current else {
            return Gate::Ignore(NOT_IN_PLACE);
        };
        let vct_ok = strategy == CloneSetUpdateStrategyType::InPlaceOnly
            || vct::can_update_in_place(f.current, f.update);
        let in_place = inplace::calculate(
            current,
            &cs.spec.template,
            &update_name,
            spec.in_place_grace_seconds(),
        )
        .is_ok();
        if !in_place || !vct_ok {
            return Gate::Ignore(NOT_IN_PLACE);
        }
        Gate::Go
    })
}
