//! The rendered manifests of a commit against the previous commit.
//!
//! The dashboard reads the commits from the sync's own Git cache (`--git-cache`, the same
//! directory `graft sync` fetches into; it never fetches itself) and renders both with the
//! sync's renderer, so the diff shows exactly what graft applied. Secret values are replaced
//! before diffing. Without the cache (the dashboard on another machine), the page says so.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;
use serde_json::Value;
use similar::{ChangeTag, TextDiff};

use graft_sync::git::{GitCache, ReadLimits, RepoUrl};
use graft_sync::render::{self, Directory, Renderer};

/// Lines of context around each change.
const CONTEXT: usize = 3;
/// Most diff lines kept per object, and in total.
const MAX_LINES_PER_OBJECT: usize = 400;
const MAX_LINES: usize = 3000;
/// What a Secret value shows as.
pub const HIDDEN: &str = "(hidden)";

/// A manifests diff.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Diff {
    /// The commit compared against (none: everything is new).
    pub from: Option<String>,
    /// Why there is no diff, or what was left out.
    pub note: Option<String>,
    /// Objects added, removed or changed, by identity.
    pub objects: Vec<ObjectDiff>,
    /// Objects that did not change.
    pub unchanged: usize,
}

/// The change of one object.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ObjectDiff {
    /// `group/kind namespace/name`.
    pub id: String,
    /// `added`, `removed` or `changed`.
    pub change: String,
    /// File the object is in (new side, else old).
    pub file: String,
    /// The lines.
    pub lines: Vec<DiffLine>,
}

/// A line of a diff.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DiffLine {
    /// `add`, `del`, `ctx`, or `gap` (lines skipped).
    pub kind: String,
    /// Text without the newline.
    pub text: String,
}

/// The manifests of one commit: object identity to (file, YAML text).
pub type Manifests = BTreeMap<String, (String, String)>;

/// Replaces the values of a Secret (data, stringData, and the last-applied annotation, which
/// holds them too).
fn hide_secrets(obj: &mut Value) {
    let is_secret = obj.get("kind").and_then(Value::as_str) == Some("Secret")
        && obj.get("apiVersion").and_then(Value::as_str) == Some("v1");
    if !is_secret {
        return;
    }
    for field in ["data", "stringData"] {
        if let Some(m) = obj.get_mut(field).and_then(Value::as_object_mut) {
            for v in m.values_mut() {
                *v = Value::String(HIDDEN.into());
            }
        }
    }
    if let Some(a) = obj
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        for (k, v) in a.iter_mut() {
            if k == "kubectl.kubernetes.io/last-applied-configuration" {
                *v = Value::String(HIDDEN.into());
            }
        }
    }
}

/// Renders files into manifests keyed by identity (Secret values hidden).
pub fn manifests(files: &[render::SourceFile]) -> Result<Manifests, String> {
    let objects = Directory.render(files).map_err(|e| e.to_string())?;
    let mut out = Manifests::new();
    for mut o in objects {
        hide_secrets(&mut o.object);
        let text = serde_saphyr::to_string(&o.object).map_err(|e| e.to_string())?;
        out.insert(
            o.reference.id().to_string(),
            (o.location.file.clone(), text),
        );
    }
    Ok(out)
}

/// The diff between two sets of manifests.
pub fn diff(old: &Manifests, new: &Manifests) -> Diff {
    let mut d = Diff::default();
    let mut total = 0usize;
    let ids: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    for id in ids {
        let (o, n) = (old.get(id), new.get(id));
        let (change, file, a, b) = match (o, n) {
            (Some(o), Some(n)) if o.1 == n.1 => {
                d.unchanged += 1;
                continue;
            }
            (Some(o), Some(n)) => ("changed", n.0.clone(), o.1.as_str(), n.1.as_str()),
            (None, Some(n)) => ("added", n.0.clone(), "", n.1.as_str()),
            (Some(o), None) => ("removed", o.0.clone(), o.1.as_str(), ""),
            (None, None) => continue,
        };
        let text = TextDiff::from_lines(a, b);
        let mut lines = Vec::new();
        for (gi, group) in text.grouped_ops(CONTEXT).iter().enumerate() {
            if gi > 0 {
                lines.push(DiffLine {
                    kind: "gap".into(),
                    text: "…".into(),
                });
            }
            for op in group {
                for c in text.iter_changes(op) {
                    let kind = match c.tag() {
                        ChangeTag::Delete => "del",
                        ChangeTag::Insert => "add",
                        ChangeTag::Equal => "ctx",
                    };
                    lines.push(DiffLine {
                        kind: kind.into(),
                        text: c.value().trim_end_matches('\n').to_string(),
                    });
                }
            }
        }
        if lines.len() > MAX_LINES_PER_OBJECT {
            let cut = lines.len() - MAX_LINES_PER_OBJECT;
            lines.truncate(MAX_LINES_PER_OBJECT);
            lines.push(DiffLine {
                kind: "gap".into(),
                text: format!("… {cut} more lines not shown"),
            });
        }
        total += lines.len();
        if total > MAX_LINES {
            d.note = Some(format!("diff cut at {MAX_LINES} lines"));
            break;
        }
        d.objects.push(ObjectDiff {
            id: id.clone(),
            change: change.into(),
            file,
            lines,
        });
    }
    d
}

/// Reads `new` and `old` (or `new`'s first parent) from the Git cache under `cache_root` and
/// diffs their rendered manifests under `path`. Blocking (libgit2). Never fetches and never
/// creates a cache.
pub fn from_git_cache(
    cache_root: &Path,
    url: &str,
    path: &str,
    old: Option<&str>,
    new: &str,
) -> Diff {
    let fail = |note: String| Diff {
        note: Some(note),
        ..Default::default()
    };
    let parsed = match RepoUrl::parse(url) {
        Ok(u) => u,
        Err(e) => return fail(format!("repository URL: {e}")),
    };
    let cache = GitCache::new(cache_root);
    let dir = cache.dir_for(&parsed);
    if !dir.exists() {
        return fail(format!(
            "no diff: the Git cache {} has no copy of this repository (run the dashboard where graft sync keeps its cache, --git-cache)",
            cache_root.display()
        ));
    }
    let repo = match cache.open(url) {
        Ok(r) => r,
        Err(e) => return fail(format!("no diff: {e}")),
    };
    let old = old.map(str::to_string).or_else(|| {
        repo.repository()
            .revparse_single(&format!("{new}^1"))
            .ok()
            .map(|o| o.id().to_string())
    });
    let read = |sha: &str| -> Result<Manifests, String> {
        let files = repo
            .read_files(sha, path, &ReadLimits::default(), &|p| Directory.accepts(p))
            .map_err(|e| e.to_string())?;
        manifests(&files)
    };
    let new_m = match read(new) {
        Ok(m) => m,
        Err(e) => return fail(format!("no diff: commit {new}: {e}")),
    };
    let (old_m, note) = match &old {
        Some(o) => match read(o) {
            Ok(m) => (m, None),
            Err(e) => (
                Manifests::new(),
                Some(format!(
                    "previous commit {o} unreadable ({e}); showing everything as added"
                )),
            ),
        },
        None => (Manifests::new(), None),
    };
    let mut d = diff(&old_m, &new_m);
    d.from = old;
    if d.note.is_none() {
        d.note = note;
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use graft_sync::render::SourceFile;

    fn files(list: &[(&str, &str)]) -> Vec<SourceFile> {
        list.iter()
            .map(|(p, c)| SourceFile {
                path: p.to_string(),
                content: c.as_bytes().to_vec(),
            })
            .collect()
    }

    #[test]
    fn shows_changed_added_removed_and_hides_secret_values() {
        let old = manifests(&files(&[
            ("a.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {k: one}\n"),
            ("s.yaml", "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {password: hunter2}\n"),
            ("gone.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: gone}\n"),
        ]))
        .expect("old");
        let new = manifests(&files(&[
            ("a.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {k: two}\n"),
            ("s.yaml", "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nstringData: {password: s3cret}\n"),
            ("b.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n"),
        ]))
        .expect("new");
        let d = diff(&old, &new);
        let changes: Vec<(&str, &str)> = d
            .objects
            .iter()
            .map(|o| (o.change.as_str(), o.file.as_str()))
            .collect();
        assert_eq!(
            changes,
            vec![
                ("changed", "a.yaml"),
                ("added", "b.yaml"),
                ("removed", "gone.yaml")
            ]
        );
        assert_eq!(
            d.unchanged, 1,
            "the Secret's values are hidden, so it shows as unchanged"
        );
        let a = &d.objects[0];
        assert!(
            a.lines
                .iter()
                .any(|l| l.kind == "del" && l.text.contains("one"))
        );
        assert!(
            a.lines
                .iter()
                .any(|l| l.kind == "add" && l.text.contains("two"))
        );
        let all = serde_json::to_string(&d).expect("json");
        assert!(!all.contains("hunter2") && !all.contains("s3cret"));
    }
}
