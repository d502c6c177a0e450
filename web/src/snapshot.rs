//! The watched objects at one instant: the only input of the pages.

use std::sync::Arc;

use graft_api::apps::v1alpha1::imagepulljob::ImagePullJob;
use graft_api::apps::v1alpha1::nodeimage::NodeImage;
use graft_api::graft::gitsync::GitSync;
use k8s_openapi::api::core::v1::{Event, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::api::DynamicObject;

/// A workload kind the dashboard follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WorkloadKind {
    /// API group.
    pub group: &'static str,
    /// API version.
    pub version: &'static str,
    /// Kind.
    pub kind: &'static str,
    /// Resource name.
    pub plural: &'static str,
}

impl WorkloadKind {
    /// The kinds whose rollouts graft records (as the sync's health knows them).
    pub const ALL: [WorkloadKind; 5] = [
        WorkloadKind {
            group: "apps.kruise.io",
            version: "v1alpha1",
            kind: "CloneSet",
            plural: "clonesets",
        },
        WorkloadKind {
            group: "apps.kruise.io",
            version: "v1beta1",
            kind: "StatefulSet",
            plural: "statefulsets",
        },
        WorkloadKind {
            group: "apps",
            version: "v1",
            kind: "Deployment",
            plural: "deployments",
        },
        WorkloadKind {
            group: "apps",
            version: "v1",
            kind: "StatefulSet",
            plural: "statefulsets",
        },
        WorkloadKind {
            group: "apps",
            version: "v1",
            kind: "DaemonSet",
            plural: "daemonsets",
        },
    ];

    /// The kind with this group and kind name.
    pub fn find(group: &str, kind: &str) -> Option<WorkloadKind> {
        Self::ALL
            .into_iter()
            .find(|k| k.group == group && k.kind == kind)
    }

    /// `kube`'s description of the resource.
    pub fn api_resource(&self) -> kube::discovery::ApiResource {
        kube::discovery::ApiResource {
            group: self.group.into(),
            version: self.version.into(),
            api_version: if self.group.is_empty() {
                self.version.into()
            } else {
                format!("{}/{}", self.group, self.version)
            },
            kind: self.kind.into(),
            plural: self.plural.into(),
        }
    }
}

/// A live workload and its kind (list items of a watch carry no kind of their own).
#[derive(Clone, Debug)]
pub struct LiveWorkload {
    /// Its kind.
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
