//! The rendered manifests of a commit against the previous commit.
//!
//! The sync renders both commits with its own renderer (so the diff shows exactly what graft
//! applied) and hands the objects over through [`DiffSource`]; the dashboard hides Secret
//! values, writes the objects as YAML and diffs the lines. Without a source, or when the source
//! has no copy of the commits, the page says why.

use std::collections::BTreeMap;

use futures::future::BoxFuture;
use graft_api::graft::gitsync::GitSync;
use serde::Serialize;
use serde_json::Value;
use similar::{ChangeTag, TextDiff};

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

/// The objects as YAML keyed by identity (Secret values hidden).
pub fn manifests(objects: &[RenderedObject]) -> Result<Manifests, String> {
    let mut out = Manifests::new();
    for o in objects {
        let mut object = o.object.clone();
        hide_secrets(&mut object);
        let text = serde_saphyr::to_string(&object).map_err(|e| e.to_string())?;
        out.insert(o.id.clone(), (o.file.clone(), text));
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

/// One object of a commit, as the sync's renderer read it (Secret values included: they are
/// hidden here, before anything is shown).
#[derive(Clone, Debug, PartialEq)]
pub struct RenderedObject {
    /// `group/kind namespace/name`.
    pub id: String,
    /// File the object is in.
    pub file: String,
    /// The object.
    pub object: Value,
}

/// The rendered objects of the two commits a diff compares.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CommitManifests {
    /// The commit compared against (none: everything is new).
    pub from: Option<String>,
    /// The objects of `from`.
    pub old: Vec<RenderedObject>,
    /// The objects of the commit shown.
    pub new: Vec<RenderedObject>,
    /// What was left out (e.g. an unreadable previous commit).
    pub note: Option<String>,
}

/// Where the dashboard gets the rendered manifests of commits: the sync's side (Git and the
/// renderer), wired in by the binary, so that the dashboard links neither.
pub trait DiffSource: Send + Sync {
    /// The objects of commit `to` of `gitsync` and of `from` (default: `to`'s first parent).
    /// `Err` says why there is no diff.
    fn manifests<'a>(
        &'a self,
        gitsync: &'a GitSync,
        from: Option<&'a str>,
        to: &'a str,
    ) -> BoxFuture<'a, Result<CommitManifests, String>>;
}

/// The diff of commit `to` of `gitsync` against `from` (default: its first parent), from
/// `source`.
pub async fn of_commit(
    source: &dyn DiffSource,
    gitsync: &GitSync,
    from: Option<&str>,
    to: &str,
) -> Diff {
    let fail = |note: String| Diff {
        note: Some(note),
        ..Default::default()
    };
    let pair = match source.manifests(gitsync, from, to).await {
        Ok(p) => p,
        Err(e) => return fail(e),
    };
    let (old, new) = match (manifests(&pair.old), manifests(&pair.new)) {
        (Ok(o), Ok(n)) => (o, n),
        (Err(e), _) | (_, Err(e)) => return fail(format!("no diff: {e}")),
    };
    let mut d = diff(&old, &new);
    d.from = pair.from;
    if d.note.is_none() {
        d.note = pair.note;
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Objects as the sync renders them: one YAML document per file, identified by kind and
    /// name.
    fn files(list: &[(&str, &str)]) -> Vec<RenderedObject> {
        list.iter()
            .map(|(p, c)| {
                let object: Value = serde_saphyr::from_str(c).expect("yaml");
                let id = format!(
                    "{} {}",
                    object["kind"].as_str().unwrap_or_default(),
                    object["metadata"]["name"].as_str().unwrap_or_default()
                );
                RenderedObject {
                    id,
                    file: p.to_string(),
                    object,
                }
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
