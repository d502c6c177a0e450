//! Errors of the apply engine, each naming the object (or CRD) and the wave it concerns.

use std::time::Duration;

use super::report::{ApplyReport, ObjectError, join};
use crate::object::ObjectRef;
use crate::plan::Stage;

/// What can stop an apply, a discovery or a live read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Discovery of the API server's kinds failed.
    #[error("discover the kinds the API server serves: {0}")]
    Discovery(#[source] kube::Error),
    /// The server-side dry-run of a wave refused some objects; nothing of that wave (or of
    /// later waves) was written.
    #[error("{} object(s) of wave {stage:?} rejected by a server-side dry-run, nothing of the wave applied: {}", errors.len(), join(errors))]
    Rejected {
        /// The wave.
        stage: Stage,
        /// Every object refused, with its file and the API server's reason.
        errors: Vec<ObjectError>,
        /// What earlier waves did.
        applied: ApplyReport,
    },
    /// Writing some objects of a wave failed (the others of the wave were applied); later
    /// waves were not started.
    #[error("{} object(s) of wave {stage:?} failed to apply: {}", errors.len(), join(errors))]
    Apply {
        /// The wave.
        stage: Stage,
        /// Every object that failed, with its file and the reason.
        errors: Vec<ObjectError>,
        /// What was done, including the objects of this wave that succeeded.
        applied: ApplyReport,
    },
    /// A CustomResourceDefinition did not become `Established` in time, so the objects of its
    /// kind were not applied.
    #[error("CustomResourceDefinition {name} not Established after {}s: {last}", .after.as_secs())]
    NotEstablished {
        /// Name of the CRD.
        name: String,
        /// How long graft waited.
        after: Duration,
        /// The last conditions (or error) seen.
        last: String,
        /// What was done.
        applied: ApplyReport,
    },
    /// Reading a live object failed (not a NotFound: those mean the object is absent).
    #[error("read live {object}: {source}")]
    ReadLive {
        /// The object.
        object: ObjectRef,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
}

impl Error {
    /// What was applied before the error, when the error happened during an apply.
    pub fn applied(&self) -> Option<&ApplyReport> {
        match self {
            Self::Rejected { applied, .. }
            | Self::Apply { applied, .. }
            | Self::NotEstablished { applied, .. } => Some(applied),
            Self::Discovery(_) | Self::ReadLive { .. } => None,
        }
    }
}
