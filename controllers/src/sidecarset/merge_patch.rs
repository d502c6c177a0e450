//! JSON merge patch (RFC 7386), as `jsonpatch.MergePatch` applies it for `patchPodMetadata`
//! with `MergePatchJson`: objects merge key by key, `null` deletes, anything else replaces.

use serde_json::Value;

/// Applies `patch` to `target`.
pub fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(serde_json::Map::new());
    }
    if let Value::Object(t) = target {
        for (k, v) in p {
            if v.is_null() {
                t.remove(k);
            } else {
                merge(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

/// Merges the JSON text `patch` into the JSON text `origin` and writes the result as Go does
/// (keys sorted, compact).
pub fn merge_json_text(origin: &str, patch: &str) -> Result<String, String> {
    let mut doc: Value =
        serde_json::from_str(origin).map_err(|e| format!("annotation value is not JSON: {e}"))?;
    let p: Value = serde_json::from_str(patch).map_err(|e| format!("patch is not JSON: {e}"))?;
    merge(&mut doc, &p);
    Ok(graft_api::gojson::to_go_json(&doc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7386_cases() {
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
            (r#"["a"]"#, r#"{"a":"b"}"#, r#"{"a":"b"}"#),
            (r#"{"a":"b"}"#, r#"["c"]"#, r#"["c"]"#),
        ] {
            assert_eq!(
                merge_json_text(origin, patch).unwrap(),
                want,
                "{origin} + {patch}"
            );
        }
        assert!(merge_json_text("not json", "{}").is_err());
    }
}
