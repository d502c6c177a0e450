//! SidecarSet: the pure foundation that injection (graft's own controllers and the admission
//! server) and the upgrade controller share (kruise-api.md §3).
//!
//! - [`hash`]: the SidecarSet hash annotations, byte-identical to OpenKruise's, and the mutating
//!   webhook's default-then-hash step.
//! - [`inject`]: one pure function that injects every matching SidecarSet into a new pod, as
//!   kruise's pod-create webhook does (§3.3).
//! - [`controller`]: the SidecarSet controller (hash annotations, revisions, status, upgrades),
//!   the executor of [`upgrade`].
//! - [`missed`]: the pods created without their sidecars (graft's webhook did not answer), their
//!   report, and the switch that recreates them.
//! - [`source`]: the caches injection reads (SidecarSets, Namespaces, revisions on demand), shared
//!   by the CloneSet controller and the admission server.
//! - [`validate_against`]: the checks between overlapping SidecarSets that CEL cannot express
//!   (container, init container, volume and patched-annotation collisions).

pub mod controller;
pub mod hash;
pub mod inject;
mod merge_patch;
pub mod missed;
mod resources;
pub mod source;
pub mod upgrade;
mod validate;

#[cfg(test)]
mod inject_tests;
#[cfg(test)]
mod resources_tests;

pub use inject::{InjectInput, Injected, RandomSource, SidecarSetRevision, inject};
pub use source::{SidecarSetSource, SourceError};
pub use validate::{validate_against, validate_canary};

/// Everything that can go wrong computing a SidecarSet hash or injecting a pod.
#[derive(Debug, thiserror::Error)]
pub enum SidecarSetError {
    /// A container could not be turned into JSON.
    #[error("encode {what}: {message}")]
    Encode {
        /// What was encoded, e.g. `container log`.
        what: String,
        /// What serde reported.
        message: String,
    },
    /// A pod annotation kruise writes as JSON does not parse.
    #[error("pod {pod}: invalid annotations[{annotation}] value {value:?}: {message}")]
    PodAnnotation {
        /// `namespace/name` of the pod.
        pod: String,
        /// The annotation key.
        annotation: String,
        /// Its value.
        value: String,
        /// What the parser reported.
        message: String,
    },
    /// A SidecarSet's selector (or updateStrategy selector) is not a valid label selector.
    #[error("SidecarSet {sidecarset}: invalid {field}: {message}")]
    Selector {
        /// Name of the SidecarSet.
        sidecarset: String,
        /// `spec.selector`, `spec.namespaceSelector` or `spec.updateStrategy.selector`.
        field: String,
        /// Why it is invalid.
        message: String,
    },
    /// `patchPodMetadata` with `MergePatchJson` met an annotation whose value or patch is not JSON.
    #[error("SidecarSet {sidecarset}: merge patch of pod annotation {annotation}: {message}")]
    PatchPodMetadata {
        /// Name of the SidecarSet.
        sidecarset: String,
        /// The annotation key.
        annotation: String,
        /// What failed.
        message: String,
    },
    /// `resourcesPolicy` could not be computed for a sidecar.
    #[error("SidecarSet {sidecarset}: resourcesPolicy of container {container}: {message}")]
    ResourcesPolicy {
        /// Name of the SidecarSet.
        sidecarset: String,
        /// The sidecar container.
        container: String,
        /// What failed.
        message: String,
    },
    /// The revision `injectionStrategy.revision` names cannot be found or restored.
    #[error("SidecarSet {sidecarset}: inject revision: {message}")]
    Revision {
        /// Name of the SidecarSet.
        sidecarset: String,
        /// What failed.
        message: String,
    },
    /// `updateStrategy.partition` is a percentage that does not parse.
    #[error("SidecarSet {sidecarset}: invalid partition {value:?}")]
    Partition {
        /// Name of the SidecarSet.
        sidecarset: String,
        /// The partition as written.
        value: String,
    },
}
