//! What an apply or a prune did, object by object, and what the API server refused.

use std::fmt;

use crate::object::{ObjectId, ObjectRef};
use crate::render::{Location, RenderError};

/// What the apply did to one object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    /// It did not exist and was created.
    Created,
    /// It existed and differed from the commit (changed in Git, or drifted): it was applied.
    Configured,
    /// It already matched the commit: no write was sent.
    Unchanged,
}

/// The outcome for one object of the plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectOutcome {
    /// The object.
    pub reference: ObjectRef,
    /// Where it is in the commit.
    pub location: Location,
    /// What was done.
    pub action: Action,
    /// Field managers (`kubectl-edit`, ...) whose changes to the live object were reverted.
    pub reverted: Vec<String>,
    /// A job whose definition changed: deleted and created again (`Configured`).
    pub replaced: bool,
}

/// What [`Applier::apply`](super::Applier::apply) did, in apply order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// One entry per object applied (or found unchanged), wave by wave.
    pub objects: Vec<ObjectOutcome>,
    /// Requests sent to the API server (reads, dry-runs, writes, CRD status polls).
    pub requests: usize,
    /// Write requests (non-dry-run applies) among them.
    pub writes: usize,
}

impl ApplyReport {
    /// The action taken for an object, if it was part of the apply.
    pub fn action(&self, id: &ObjectId) -> Option<Action> {
        self.objects
            .iter()
            .find(|o| &o.reference.id() == id)
            .map(|o| o.action)
    }

    /// How many objects got `action`.
    pub fn count(&self, action: Action) -> usize {
        self.objects.iter().filter(|o| o.action == action).count()
    }

    /// The objects that were created or configured.
    pub fn changed(&self) -> impl Iterator<Item = &ObjectOutcome> {
        self.objects
            .iter()
            .filter(|o| o.action != Action::Unchanged)
    }
}

/// What [`Applier::prune`](super::Applier::prune) did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Objects whose deletion the API server accepted (they may still be finalizing).
    pub deleted: Vec<ObjectRef>,
    /// Objects that were already gone (or whose kind is no longer served).
    pub gone: Vec<ObjectRef>,
    /// Objects that could not be deleted, with the reason; keep them in the inventory so a
    /// later sync retries.
    pub failed: Vec<(ObjectRef, String)>,
}

/// An object the API server refused, with where it is in the commit and why.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ObjectError {
    /// Where the object is in the commit.
    pub location: Location,
    /// The object.
    pub reference: ObjectRef,
    /// The API server's reason (unknown kind, schema error, admission denial...).
    pub reason: String,
}

impl ObjectError {
    /// The same problem as a manifest error, the shape history and conditions report.
    pub fn to_render_error(&self) -> RenderError {
        RenderError::at(
            &self.location,
            None,
            format!("{}: {}", self.reference, self.reason),
        )
    }
}

impl fmt::Display for ObjectError {
    /// `file, document N, line L: Kind.group ns/name: reason`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.location, self.reference, self.reason)
    }
}

impl std::error::Error for ObjectError {}

/// `e1; e2; ...`, for error messages.
pub(crate) fn join(errors: &[ObjectError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}
