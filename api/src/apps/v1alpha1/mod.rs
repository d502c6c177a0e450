//! `apps.kruise.io/v1alpha1` kinds.

pub mod broadcastjob;
pub mod cloneset;
pub mod containerrecreaterequest;
pub mod imagepulljob;
pub mod nodeimage;
pub mod sidecarset;
pub mod statefulset;

pub use broadcastjob::{BroadcastJob, BroadcastJobSpec, BroadcastJobStatus};
pub use cloneset::{CloneSet, CloneSetSpec, CloneSetStatus};
pub use containerrecreaterequest::{
    ContainerRecreateRequest, ContainerRecreateRequestSpec, ContainerRecreateRequestStatus,
};
pub use imagepulljob::{ImagePullJob, ImagePullJobSpec, ImagePullJobStatus};
pub use nodeimage::{NodeImage, NodeImageSpec, NodeImageStatus};
pub use sidecarset::{SidecarSet, SidecarSetSpec, SidecarSetStatus};
pub use statefulset::{StatefulSet, StatefulSetSpec, StatefulSetStatus};
