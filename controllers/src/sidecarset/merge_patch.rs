//! JSON merge patch as `github.com/evanphx/json-patch` (v5.6, the version kruise builds with)
//! applies it in `jsonpatch.MergePatch` for `patchPodMetadata` with `MergePatchJson`: RFC 7386
//! plus that library's rules — nulls are pruned from inserted values (also inside arrays), a
//! non-object document is replaced by the pruned patch, a scalar or `null` patch and a `null`
//! document are errors.
//!
//! Known difference: Go keeps the key order of nested objects the merge never touches; graft
//! writes every object with sorted keys.

use serde_json::{Map, Value};

/// `ErrBadJSONDoc`.
const BAD_DOC: &str = "Invalid JSON Document";
/// `ErrBadJSONPatch`.
const BAD_PATCH: &str = "Invalid JSON Patch";

/// Merges the JSON text `patch` into the JSON text `origin` and writes the result as Go does
/// (compact, object keys sorted).
pub fn merge_json_text(origin: &str, patch: &str) -> Result<String, String> {
    let doc: Value = serde_json::from_str(origin).map_err(|_| BAD_DOC.to_string())?;
    let patch: Value = serde_json::from_str(patch).map_err(|_| BAD_PATCH.to_string())?;
    if doc.is_null() {
        return Err(BAD_DOC.into());
    }
    let merged = match (doc, patch) {
        (_, Value::Null) => return Err(BAD_PATCH.into()),
        (Value::Object(mut d), Value::Object(p)) => {
            merge_docs(&mut d, p);
            Value::Object(d)
        }
        (_, p @ (Value::Object(_) | Value::Array(_))) => pruned(p),
        _ => return Err(BAD_PATCH.into()),
    };
    Ok(graft_api::gojson::to_go_json(&merged))
}

/// `mergeDocs`: `null` deletes, a new key gets the pruned value, an existing one merges.
fn merge_docs(doc: &mut Map<String, Value>, patch: Map<String, Value>) {
    for (k, v) in patch {
        if v.is_null() {
            doc.remove(&k);
            continue;
        }
        let merged = match doc.remove(&k) {
            None | Some(Value::Null) => pruned(v),
            Some(cur) => merge_values(cur, v),
        };
        doc.insert(k, merged);
    }
}

/// `merge`: objects merge; a non-object current value gives way to the pruned patch; a
/// non-object patch replaces the current value as it is.
fn merge_values(cur: Value, patch: Value) -> Value {
    match (cur, patch) {
        (Value::Object(mut c), Value::Object(p)) => {
            merge_docs(&mut c, p);
            Value::Object(c)
        }
        (Value::Object(_), p) => p,
        (_, p) => pruned(p),
    }
}

/// `pruneNulls`: drops `null` members of objects, recursively, through arrays too (array
/// elements that are `null` stay).
fn pruned(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, pruned(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(pruned).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evanphx_merge_patch_cases() {
        for (origin, patch, want) in [
            (r#"{"a":"b"}"#, r#"{"a":"c"}"#, r#"{"a":"c"}"#),
            (r#"{"a":"b"}"#, r#"{"b":"c"}"#, r#"{"a":"b","b":"c"}"#),
            (r#"{"a":"b"}"#, r#"{"a":null}"#, r#"{}"#),
            (
                r#"{"a":{"b":"c"}}"#,
                r#"{"a":{"b":"d","c":null}}"#,
                r#"{"a":{"b":"d"}}"#,
            ),
            (r#"{"a":[1]}"#, r#"{"a":[2,3]}"#, r#"{"a":[2,3]}"#),
            (r#"["a"]"#, r#"{"a":"b","n":null}"#, r#"{"a":"b"}"#),
            (
                r#"{"a":"b"}"#,
                r#"["c",null,{"x":null}]"#,
                r#"["c",null,{}]"#,
            ),
            // New keys are pruned of nulls, also inside arrays.
            (r#"{}"#, r#"{"a":[{"x":null,"y":1}]}"#, r#"{"a":[{"y":1}]}"#),
            // A non-object patch replacing an object is taken as it is.
            (
                r#"{"a":{"k":1}}"#,
                r#"{"a":[{"x":null}]}"#,
                r#"{"a":[{"x":null}]}"#,
            ),
            // A non-object current value gives way to the pruned patch.
            (
                r#"{"a":"s"}"#,
                r#"{"a":{"x":null,"y":2}}"#,
                r#"{"a":{"y":2}}"#,
            ),
            (
                r#"{"b":1,"a":2}"#,
                r#"{"c":"<&>"}"#,
                r#"{"a":2,"b":1,"c":"\u003c\u0026\u003e"}"#,
            ),
            ("5", r#"{"a":1}"#, r#"{"a":1}"#),
        ] {
            assert_eq!(
                merge_json_text(origin, patch).as_deref(),
                Ok(want),
                "{origin} + {patch}"
            );
        }
    }

    #[test]
    fn evanphx_merge_patch_errors() {
        for (origin, patch, want) in [
            ("not json", "{}", BAD_DOC),
            ("null", "{}", BAD_DOC),
            ("{}", "not json", BAD_PATCH),
            ("{}", "null", BAD_PATCH),
            ("{}", r#""scalar""#, BAD_PATCH),
            ("{}", "5", BAD_PATCH),
        ] {
            assert_eq!(
                merge_json_text(origin, patch),
                Err(want.to_string()),
                "{origin} + {patch}"
            );
        }
    }
}
