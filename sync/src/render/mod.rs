//! Rendering: the files of a commit in, Kubernetes objects out, each with the file, document
//! and line it came from. [`Renderer`] is the seam where Kustomize and Helm will plug in; the
//! first implementation is [`Directory`] (plain YAML and JSON files).
//!
//! A renderer reports every error of a commit at once ([`RenderErrors`]), so one sync tells
//! the user all that is wrong, and the sync applies nothing from a commit that has any.

mod directory;
mod documents;
mod json;

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

pub use directory::Directory;

use crate::object::{ObjectId, ObjectRef};

/// A file of a commit: its path from the repository root and its bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// Path from the repository root, `/`-separated.
    pub path: String,
    /// Content.
    pub content: Vec<u8>,
}

impl fmt::Debug for SourceFile {
    // Manifests may hold Secrets: show sizes, not contents.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourceFile")
            .field("path", &self.path)
            .field("bytes", &self.content.len())
            .finish()
    }
}

/// Where an object (or an error) is in a commit.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Location {
    /// Path of the file from the repository root.
    pub file: String,
    /// Index of the YAML document in the file, from 0, counting empty documents too
    /// (the `n`-th `---`-separated part; for JSON the `n`-th top-level value).
    pub document: usize,
    /// Line of the document's first content, from 1.
    pub line: usize,
}

impl fmt::Display for Location {
    /// `file, document N, line L`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}, document {}, line {}",
            self.file, self.document, self.line
        )
    }
}

/// An object read from a commit.
#[derive(Clone, Debug, PartialEq)]
pub struct RenderedObject {
    /// The object as written (JSON value).
    pub object: Value,
    /// Its group, version, kind, namespace and name.
    pub reference: ObjectRef,
    /// Where it was found.
    pub location: Location,
}

/// One problem with the manifests of a commit.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct RenderError {
    /// Path of the file from the repository root.
    pub file: String,
    /// Index of the document (see [`Location::document`]), when the problem is in one.
    pub document: Option<usize>,
    /// Line, from 1, when known.
    pub line: Option<usize>,
    /// What is wrong.
    pub reason: String,
}

impl RenderError {
    /// An error about a whole file.
    pub fn file(file: &str, reason: impl Into<String>) -> Self {
        Self {
            file: file.to_string(),
            document: None,
            line: None,
            reason: reason.into(),
        }
    }

    /// An error about a document of a file.
    pub fn at(loc: &Location, line: Option<usize>, reason: impl Into<String>) -> Self {
        Self {
            file: loc.file.clone(),
            document: Some(loc.document),
            line: line.or(Some(loc.line)),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for RenderError {
    /// `file, document N, line L: reason`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.file)?;
        if let Some(d) = self.document {
            write!(f, ", document {d}")?;
        }
        if let Some(l) = self.line {
            write!(f, ", line {l}")?;
        }
        write!(f, ": {}", self.reason)
    }
}

/// Every problem found in the manifests of a commit (never empty when returned as an error).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RenderErrors(pub Vec<RenderError>);

impl fmt::Display for RenderErrors {
    /// `N invalid manifest(s): e1; e2; ...`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        write!(f, "{n} manifest error{}: ", if n == 1 { "" } else { "s" })?;
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            e.fmt(f)?;
        }
        Ok(())
    }
}

impl std::error::Error for RenderErrors {}

/// Turns the files of a commit into objects.
pub trait Renderer: Send + Sync {
    /// A short name for status and logs (`directory`, later `kustomize`, `helm`).
    fn name(&self) -> &'static str;

    /// Whether the renderer reads the file at `path`; the Git reader loads (and size-checks)
    /// only these.
    fn accepts(&self, path: &str) -> bool {
        let _ = path;
        true
    }

    /// The objects of the commit, in file order then document order; or every error found.
    fn render(&self, files: &[SourceFile]) -> Result<Vec<RenderedObject>, RenderErrors>;
}

/// Renders with `renderer`, turning errors into the crate's error.
pub fn render(
    renderer: &dyn Renderer,
    files: &[SourceFile],
) -> Result<Vec<RenderedObject>, crate::Error> {
    renderer.render(files).map_err(crate::Error::Render)
}

/// An error for each object whose identity (group, kind, namespace, name) an earlier object of
/// the list already has, naming both places.
pub fn duplicate_errors(objects: &[RenderedObject]) -> Vec<RenderError> {
    let mut seen: BTreeMap<ObjectId, &Location> = BTreeMap::new();
    let mut errors = Vec::new();
    for o in objects {
        let id = o.reference.id();
        match seen.get(&id) {
            Some(first) => errors.push(RenderError::at(
                &o.location,
                None,
                format!("{id} is defined twice: also in {first}"),
            )),
            None => {
                seen.insert(id, &o.location);
            }
        }
    }
    errors
}
