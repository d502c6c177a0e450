//! The watched objects at one instant: the only input of the pages.

use std::sync::Arc;

use graft_api::apps::v1alpha1::imagepulljob::ImagePullJob;
use graft_api::apps::v1alpha1::nodeimage::NodeImage;
use graft_api::graft::gitsync::GitSync;
use graft_api::workload::WorkloadKind;
use k8s_openapi::api::core::v1::{Event, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::api::DynamicObject;

/// A live workload and its kind (list items of a watch carry no kind of their own).
#[derive(Clone, Debug)]
pub struct LiveWorkload {
    /// Its kind (one of [`WorkloadKind::ROLLOUT`]).
    pub kind: WorkloadKind,
    /// The object.
    pub object: Arc<DynamicObject>,
}

/// Everything the pages read, as watched at `now`.
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// GitSyncs.
    pub gitsyncs: Vec<Arc<GitSync>>,
    /// Workloads that carry graft's owner label.
    pub workloads: Vec<LiveWorkload>,
    /// Pods.
    pub pods: Vec<Arc<Pod>>,
    /// Events.
    pub events: Vec<Arc<Event>>,
    /// ImagePullJobs created for a GitSync commit.
    pub image_pull_jobs: Vec<Arc<ImagePullJob>>,
    /// NodeImages (per-node pull status).
    pub node_images: Vec<Arc<NodeImage>>,
    /// The time the pages are rendered for.
    pub now: Timestamp,
}

impl Snapshot {
    /// An empty snapshot at `now`.
    pub fn empty(now: Timestamp) -> Self {
        Snapshot {
            gitsyncs: Vec::new(),
            workloads: Vec::new(),
            pods: Vec::new(),
            events: Vec::new(),
            image_pull_jobs: Vec::new(),
            node_images: Vec::new(),
            now,
        }
    }
}
