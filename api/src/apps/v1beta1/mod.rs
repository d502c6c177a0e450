//! `apps.kruise.io/v1beta1` kinds.

pub mod advancedcronjob;
pub mod broadcastjob;
pub mod sidecarset;
pub mod statefulset;
pub mod statefulset_validation;

pub use advancedcronjob::{AdvancedCronJob, AdvancedCronJobSpec, AdvancedCronJobStatus};
pub use broadcastjob::{BroadcastJob, BroadcastJobSpec, BroadcastJobStatus};
pub use statefulset::{StatefulSet, StatefulSetSpec, StatefulSetStatus};
