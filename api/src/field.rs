//! Field errors in the style of Kubernetes' `field.ErrorList`: a path, a reason and a detail.

use std::fmt;

/// Why a field is wrong (the same categories as Kubernetes `field.ErrorType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldErrorKind {
    /// A required value is missing.
    Required,
    /// The value is malformed or out of range.
    Invalid,
    /// The field may not be set (in this combination).
    Forbidden,
    /// The value repeats one already given.
    Duplicate,
    /// The value is not one of the supported ones.
    NotSupported,
    /// The value is longer than allowed (shown without the value, as upstream does).
    TooLong,
}

impl fmt::Display for FieldErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Required => "Required value",
            Self::Invalid => "Invalid value",
            Self::Forbidden => "Forbidden",
            Self::Duplicate => "Duplicate value",
            Self::NotSupported => "Unsupported value",
            Self::TooLong => "Too long",
        })
    }
}

/// One problem with one field, e.g. `spec.updateStrategy.maxSurge: Invalid value: "1": ...`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// JSON path of the field, e.g. `spec.updateStrategy.maxSurge` or `spec.containers[0].name`.
    pub field: String,
    /// The category of the problem.
    pub kind: FieldErrorKind,
    /// The offending value as the user wrote it, if there is one.
    pub value: Option<String>,
    /// A human-readable reason.
    pub detail: String,
}

impl FieldError {
    fn new(kind: FieldErrorKind, field: &str, value: Option<String>, detail: &str) -> Self {
        Self {
            field: field.to_string(),
            kind,
            value,
            detail: detail.to_string(),
        }
    }
    /// A required value is missing.
    pub fn required(field: &str, detail: &str) -> Self {
        Self::new(FieldErrorKind::Required, field, None, detail)
    }
    /// The value is malformed or out of range.
    pub fn invalid(field: &str, value: impl fmt::Display, detail: &str) -> Self {
        Self::new(
            FieldErrorKind::Invalid,
            field,
            Some(value.to_string()),
            detail,
        )
    }
    /// The field may not be set here.
    pub fn forbidden(field: &str, detail: &str) -> Self {
        Self::new(FieldErrorKind::Forbidden, field, None, detail)
    }
    /// The value repeats an earlier one.
    pub fn duplicate(field: &str, value: impl fmt::Display) -> Self {
        Self::new(
            FieldErrorKind::Duplicate,
            field,
            Some(value.to_string()),
            "",
        )
    }
    /// The value is longer than `max_bytes` (Go's `field.TooLong` with a limit).
    pub fn too_long(field: &str, max_bytes: usize) -> Self {
        let detail = format!("may not be more than {max_bytes} bytes");
        Self::new(FieldErrorKind::TooLong, field, None, &detail)
    }
    /// The value is not one of `supported` (listed quoted, as Go's `field.NotSupported` does).
    pub fn not_supported(field: &str, value: impl fmt::Display, supported: &[&str]) -> Self {
        let quoted: Vec<String> = supported.iter().map(|s| format!("{s:?}")).collect();
        let detail = format!("supported values: {}", quoted.join(", "));
        Self::new(
            FieldErrorKind::NotSupported,
            field,
            Some(value.to_string()),
            &detail,
        )
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.kind)?;
        if let Some(v) = &self.value {
            write!(f, ": {v:?}")?;
        }
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        Ok(())
    }
}

/// A list of field errors; empty means valid.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldErrors(pub Vec<FieldError>);

impl FieldErrors {
    /// True when no error was found.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// Number of errors.
    pub fn len(&self) -> usize {
        self.0.len()
    }
    /// Adds one error.
    pub fn push(&mut self, e: FieldError) {
        self.0.push(e);
    }
    /// Adds all errors of another list.
    pub fn extend(&mut self, other: impl IntoIterator<Item = FieldError>) {
        self.0.extend(other);
    }
    /// Iterates over the errors.
    pub fn iter(&self) -> std::slice::Iter<'_, FieldError> {
        self.0.iter()
    }
    /// True if some error names exactly this field path.
    pub fn has_field(&self, field: &str) -> bool {
        self.0.iter().any(|e| e.field == field)
    }
    /// `Ok(())` when empty, else the list as an `Err`.
    pub fn into_result(self) -> Result<(), FieldErrors> {
        if self.is_empty() { Ok(()) } else { Err(self) }
    }
}

impl IntoIterator for FieldErrors {
    type Item = FieldError;
    type IntoIter = std::vec::IntoIter<FieldError>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl fmt::Display for FieldErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|e| e.to_string()).collect();
        write!(f, "[{}]", parts.join(", "))
    }
}

impl std::error::Error for FieldErrors {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_like_kubernetes() {
        let e = FieldError::invalid(
            "spec.updateStrategy.maxSurge",
            "1",
            "must be 0 for InPlaceOnly",
        );
        assert_eq!(
            e.to_string(),
            r#"spec.updateStrategy.maxSurge: Invalid value: "1": must be 0 for InPlaceOnly"#
        );
        let r = FieldError::required("spec.selector", "");
        assert_eq!(r.to_string(), "spec.selector: Required value");
    }
}
