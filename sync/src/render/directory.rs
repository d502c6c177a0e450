//! The plain-directory renderer: every `.yaml`, `.yml` and `.json` file under the path,
//! recursively, each possibly holding several documents, read the way kubectl reads them.

use serde_json::Value;

use super::documents;
use super::json;
use super::{
    Location, RenderError, RenderErrors, RenderedObject, Renderer, SourceFile, duplicate_errors,
};
use crate::object::ObjectRef;

/// Plain YAML/JSON files (Argo CD's "directory" source, Flux's plain manifests).
///
/// - YAML is read with [`graft_api::manifest::yaml_options`]: legacy octal numbers (`0644` is
///   420), merge keys, duplicate keys rejected. JSON rejects duplicate keys too.
/// - Empty documents are skipped; a `v1` `List` is expanded into its items.
/// - Every object needs `apiVersion`, `kind` and `metadata.name`.
/// - Two objects with the same group, kind, namespace and name are an error naming both files.
#[derive(Clone, Copy, Debug, Default)]
pub struct Directory;

impl Renderer for Directory {
    fn name(&self) -> &'static str {
        "directory"
    }

    fn accepts(&self, path: &str) -> bool {
        kind_of(path).is_some()
    }

    fn render(&self, files: &[SourceFile]) -> Result<Vec<RenderedObject>, RenderErrors> {
        let mut objects = Vec::new();
        let mut errors = Vec::new();
        for f in files {
            let Some(kind) = kind_of(&f.path) else {
                continue;
            };
            let Ok(text) = std::str::from_utf8(&f.content) else {
                errors.push(RenderError::file(&f.path, "the file is not UTF-8 text"));
                continue;
            };
            let text = text.strip_prefix('\u{feff}').unwrap_or(text);
            let docs = match kind {
                FileKind::Yaml => yaml_documents(&f.path, text),
                FileKind::Json => json_documents(&f.path, text),
            };
            for (loc, value) in docs {
                match value {
                    Ok(v) => collect(v, &loc, &mut objects, &mut errors),
                    Err(e) => errors.push(e),
                }
            }
        }
        errors.extend(duplicate_errors(&objects));
        if errors.is_empty() {
            Ok(objects)
        } else {
            errors.sort();
            Err(RenderErrors(errors))
        }
    }
}

#[derive(Clone, Copy)]
enum FileKind {
    Yaml,
    Json,
}

fn kind_of(path: &str) -> Option<FileKind> {
    let name = path.rsplit('/').next().unwrap_or(path);
    let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
    match ext.as_str() {
        "yaml" | "yml" => Some(FileKind::Yaml),
        "json" => Some(FileKind::Json),
        _ => None,
    }
}

type Doc = (Location, Result<Value, RenderError>);

fn yaml_documents(file: &str, text: &str) -> Vec<Doc> {
    let mut options = graft_api::manifest::yaml_options();
    options.with_snippet = false;
    let mut out = Vec::new();
    for chunk in documents::split(text) {
        if !chunk.has_content {
            continue;
        }
        let loc = Location {
            file: file.to_string(),
            document: chunk.index,
            line: chunk.content_line,
        };
        let parsed: Result<Value, _> =
            serde_saphyr::from_str_with_options(&chunk.text, options.clone());
        let value = parsed.map_err(|e| {
            let line = e
                .location()
                .map(|l| l.line() as usize)
                .filter(|l| *l > 0)
                .map(|l| l + chunk.first_line - 1);
            RenderError::at(&loc, line, yaml_reason(&e))
        });
        out.push((loc, value));
    }
    out
}

/// The error message without the location serde-saphyr appends (the line is reported
/// separately, counted from the start of the file rather than of the document).
fn yaml_reason(e: &serde_saphyr::Error) -> String {
    let opts = serde_saphyr::render_options! {
        snippets: serde_saphyr::SnippetMode::Off,
    };
    let msg = e.render_with_options(opts);
    let msg = msg.lines().next().unwrap_or_default();
    let msg = msg.rfind(" at line ").map_or(msg, |i| &msg[..i]);
    // Advice meant for programmers using serde-saphyr, not for people writing manifests.
    let msg = msg.split(", set DuplicateKeyPolicy").next().unwrap_or(msg);
    msg.to_string()
}

fn json_documents(file: &str, text: &str) -> Vec<Doc> {
    json::documents(text)
        .into_iter()
        .map(|(index, line, value)| {
            let loc = Location {
                file: file.to_string(),
                document: index,
                line,
            };
            let value = value.map_err(|(l, reason)| RenderError::at(&loc, Some(l), reason));
            (loc, value)
        })
        .collect()
}

/// Checks one document and adds its object(s), expanding `List`s.
fn collect(
    value: Value,
    loc: &Location,
    objects: &mut Vec<RenderedObject>,
    errors: &mut Vec<RenderError>,
) {
    match value {
        Value::Null => {}
        Value::Object(_)
            if value.get("apiVersion").and_then(Value::as_str) == Some("v1")
                && value.get("kind").and_then(Value::as_str) == Some("List") =>
        {
            match value.get("items") {
                Some(Value::Array(items)) => {
                    for (i, item) in items.iter().enumerate() {
                        match item {
                            Value::Object(_) => check(item.clone(), loc, Some(i), objects, errors),
                            _ => errors.push(RenderError::at(
                                loc,
                                None,
                                format!("List item {i} is not an object"),
                            )),
                        }
                    }
                }
                Some(Value::Null) | None => {}
                Some(_) => errors.push(RenderError::at(loc, None, "List items is not a list")),
            }
        }
        Value::Object(_) => check(value, loc, None, objects, errors),
        other => errors.push(RenderError::at(
            loc,
            None,
            format!(
                "expected a Kubernetes object (a mapping), found {}",
                type_name(&other)
            ),
        )),
    }
}

fn check(
    value: Value,
    loc: &Location,
    item: Option<usize>,
    objects: &mut Vec<RenderedObject>,
    errors: &mut Vec<RenderError>,
) {
    let in_item = item.map(|i| format!("List item {i}: ")).unwrap_or_default();
    let mut missing = Vec::new();
    for (field, v) in [
        ("apiVersion", value.get("apiVersion")),
        ("kind", value.get("kind")),
        (
            "metadata.name",
            value.get("metadata").and_then(|m| m.get("name")),
        ),
    ] {
        match v {
            Some(Value::String(s)) if !s.is_empty() => {}
            Some(Value::String(_)) | None | Some(Value::Null) => {
                missing.push(format!("{field} is missing"))
            }
            Some(other) => missing.push(format!(
                "{field} must be a string, found {}",
                type_name(other)
            )),
        }
    }
    if let Some(meta) = value.get("metadata")
        && !meta.is_object()
    {
        missing.push(format!(
            "metadata must be a mapping, found {}",
            type_name(meta)
        ));
    }
    if let Some(ns) = value.get("metadata").and_then(|m| m.get("namespace"))
        && !(ns.is_string() || ns.is_null())
    {
        missing.push(format!(
            "metadata.namespace must be a string, found {}",
            type_name(ns)
        ));
    }
    match ObjectRef::from_object(&value) {
        Some(reference) if missing.is_empty() => objects.push(RenderedObject {
            object: value,
            reference,
            location: loc.clone(),
        }),
        _ => errors.push(RenderError::at(
            loc,
            None,
            format!("{in_item}{}", missing.join(", ")),
        )),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

#[cfg(test)]
mod tests;
