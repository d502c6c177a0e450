//! `apps.kruise.io/v1alpha1` kinds. (BroadcastJob and AdvancedCronJob are served at v1alpha1 with
//! their v1beta1 schemas: upstream the two versions are the same types.)

pub mod cloneset;
pub mod cloneset_validation;
pub mod containerrecreaterequest;
pub mod imagepulljob;
pub mod nodeimage;
pub mod sidecarset;
pub mod statefulset;

pub use cloneset::{CloneSet, CloneSetSpec, CloneSetStatus};
pub use containerrecreaterequest::{
    ContainerRecreateRequest, ContainerRecreateRequestSpec, ContainerRecreateRequestStatus,
};
pub use imagepulljob::{ImagePullJob, ImagePullJobSpec, ImagePullJobStatus};
pub use nodeimage::{NodeImage, NodeImageSpec, NodeImageStatus};
pub use sidecarset::{SidecarSet, SidecarSetSpec, SidecarSetStatus};
pub use statefulset::{StatefulSet, StatefulSetSpec, StatefulSetStatus};
