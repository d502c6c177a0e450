//! The crate's error type.

use crate::field::FieldErrors;

/// Everything that can go wrong in graft-api: reading or writing YAML and checking objects.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The text is not valid YAML (syntax, duplicate key, budget exceeded, ...).
    #[error("parse YAML: {0}")]
    ParseYaml(#[source] Box<serde_saphyr::Error>),
    /// The YAML is valid but does not fit the target type; `path` names the field.
    #[error("decode {path}: {message}")]
    Decode {
        /// Field path such as `spec.updateStrategy.maxSurge` (empty for the document root).
        path: String,
        /// What serde reported.
        message: String,
    },
    /// A value could not be turned into YAML or JSON.
    #[error("serialize: {0}")]
    Serialize(String),
    /// A multi-document input had the wrong number of documents for the call.
    #[error("expected {expected} YAML document(s), found {found}")]
    DocumentCount {
        /// Documents the caller asked for.
        expected: usize,
        /// Documents in the input.
        found: usize,
    },
    /// The object failed validation.
    #[error("invalid {kind} {key}: {errors}")]
    Invalid {
        /// Kind of the object, e.g. `CloneSet`.
        kind: String,
        /// `namespace/name` (or `name` for cluster-scoped objects).
        key: String,
        /// Every field error found.
        errors: FieldErrors,
    },
}
