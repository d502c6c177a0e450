//! Reading and writing manifests the way kubectl does, with serde-saphyr: YAML 1.1 legacy octal
//! numbers (`0644` is 420), merge keys (`<<`), duplicate keys rejected, large budgets for big
//! repos. Unknown fields are reported, not silently dropped.

use std::collections::BTreeSet;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::Error;

/// A decoded manifest and the paths of the fields the type did not know.
#[derive(Clone, Debug, PartialEq)]
pub struct Parsed<T> {
    /// The decoded object.
    pub value: T,
    /// Paths such as `spec.updateStrategy.maxSurgee` or `spec.template.spec.containers[0].imagee`,
    /// sorted; empty when every field was understood.
    pub unknown_fields: Vec<String>,
}

/// The YAML reading options graft uses everywhere (kubectl-compatible).
pub fn yaml_options() -> serde_saphyr::Options {
    let mut o = serde_saphyr::Options::default();
    o.legacy_octal_numbers = true;
    o.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::Error;
    o.merge_keys = serde_saphyr::MergeKeyPolicy::Merge;
    let mut budget = serde_saphyr::Budget::default();
    budget.max_documents = 100_000;
    budget.max_nodes = 20_000_000;
    budget.max_events = 50_000_000;
    o.budget = Some(budget);
    o
}

/// Parses one YAML document into an untyped JSON value.
pub fn parse_value(yaml: &str) -> Result<Value, Error> {
    serde_saphyr::from_str_with_options(yaml, yaml_options())
        .map_err(|e| Error::ParseYaml(Box::new(e)))
}

/// Parses a `---`-separated stream into untyped values, skipping empty documents.
pub fn parse_documents(yaml: &str) -> Result<Vec<Value>, Error> {
    let docs: Vec<Value> = serde_saphyr::from_multiple_with_options(yaml, yaml_options())
        .map_err(|e| Error::ParseYaml(Box::new(e)))?;
    Ok(docs.into_iter().filter(|d| !d.is_null()).collect())
}

/// Parses one YAML document into `T`, reporting unknown fields instead of dropping them.
pub fn parse_strict<T: DeserializeOwned + Serialize>(yaml: &str) -> Result<Parsed<T>, Error> {
    from_value_strict(parse_value(yaml)?)
}

/// Decodes an untyped value into `T`, reporting unknown fields and naming the failing field.
///
/// Unknown fields are found twice over: fields serde skipped (`serde_ignored`) and fields of
/// the input that are missing when `T` is serialized again (this also catches fields inside
/// flattened structs); a missing field whose value is empty (`null`, `false`, `0`, `""`, `[]`,
/// `{}`) is taken as a dropped default, not as unknown.
pub fn from_value_strict<T: DeserializeOwned + Serialize>(
    value: Value,
) -> Result<Parsed<T>, Error> {
    let mut unknown = BTreeSet::new();
    let decoded: T = {
        let mut record = |p: serde_ignored::Path<'_>| {
            unknown.insert(format_ignored_path(&p));
        };
        let ignored = serde_ignored::Deserializer::new(&value, &mut record);
        serde_path_to_error::deserialize(ignored).map_err(|e| Error::Decode {
            path: e.path().to_string(),
            message: e.inner().to_string(),
        })?
    };
    let back = serde_json::to_value(&decoded).map_err(|e| Error::Serialize(e.to_string()))?;
    // Top-level fields that a type skips while reading but writes back (`apiVersion` and `kind`
    // of kube's derived root types) are known.
    unknown.retain(|p| back.get(p).is_none_or(|b| value.get(p) != Some(b)));
    missing_fields(&value, &back, "", &mut unknown);
    Ok(Parsed {
        value: decoded,
        unknown_fields: unknown.into_iter().collect(),
    })
}

/// Parses a Kubernetes object of kind `K`, checking `apiVersion` and `kind` too.
pub fn parse_resource<K>(yaml: &str) -> Result<Parsed<K>, Error>
where
    K: kube::Resource<DynamicType = ()> + DeserializeOwned + Serialize,
{
    let value = parse_value(yaml)?;
    for (field, want) in [
        ("apiVersion", K::api_version(&()).to_string()),
        ("kind", K::kind(&()).to_string()),
    ] {
        let got = value.get(field).and_then(Value::as_str).unwrap_or_default();
        if got != want {
            return Err(Error::Decode {
                path: field.to_string(),
                message: format!("expected {want:?}, found {got:?}"),
            });
        }
    }
    from_value_strict(value)
}

/// Serializes a value as YAML (one document, ending in a newline).
pub fn to_yaml<T: Serialize>(value: &T) -> Result<String, Error> {
    let mut s = serde_saphyr::to_string(value).map_err(|e| Error::Serialize(e.to_string()))?;
    if !s.ends_with('\n') {
        s.push('\n');
    }
    Ok(s)
}

fn format_ignored_path(p: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    match p {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", format_ignored_path(parent)),
        Path::Map { parent, key } => join(&format_ignored_path(parent), key),
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => format_ignored_path(parent),
    }
}

fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

fn is_empty_value(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

fn missing_fields(input: &Value, output: &Value, path: &str, out: &mut BTreeSet<String>) {
    match (input, output) {
        (Value::Object(i), Value::Object(o)) => {
            for (k, v) in i {
                let p = join(path, k);
                match o.get(k) {
                    Some(ov) => missing_fields(v, ov, &p, out),
                    None if !is_empty_value(v) => {
                        out.insert(p);
                    }
                    None => {}
                }
            }
        }
        (Value::Array(i), Value::Array(o)) => {
            for (idx, (a, b)) in i.iter().zip(o).enumerate() {
                missing_fields(a, b, &format!("{path}[{idx}]"), out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Mode {
        #[serde(rename = "defaultMode")]
        default_mode: i32,
    }

    #[test]
    fn legacy_octal_is_read_like_kubectl() {
        let v = parse_value("defaultMode: 0644\nquoted: \"0644\"\n").unwrap();
        assert_eq!(v, json!({"defaultMode": 420, "quoted": "0644"}));
        let typed = parse_strict::<Mode>("defaultMode: 0644").unwrap();
        assert_eq!(typed.value.default_mode, 420);
    }

    #[test]
    fn duplicate_keys_are_errors() {
        assert!(matches!(
            parse_value("a: 1\na: 2\n"),
            Err(Error::ParseYaml(_))
        ));
    }

    #[test]
    fn merge_keys_are_expanded() {
        let v = parse_value("base: &b {x: 1, y: 2}\nderived:\n  <<: *b\n  y: 3\n").unwrap();
        assert_eq!(v["derived"], json!({"x": 1, "y": 3}));
    }

    #[test]
    fn documents_skip_empty_ones() {
        let docs = parse_documents("---\na: 1\n---\n---\nb: 2\n").unwrap();
        assert_eq!(docs, vec![json!({"a": 1}), json!({"b": 2})]);
    }

    #[test]
    fn unknown_and_decode_errors_name_the_field() {
        let p = parse_strict::<Mode>("defaultMode: 1\nextra: {a: 1}\n").unwrap();
        assert_eq!(p.unknown_fields, vec!["extra".to_string()]);
        match parse_strict::<Mode>("defaultMode: abc") {
            Err(Error::Decode { path, .. }) => assert_eq!(path, "defaultMode"),
            other => panic!("expected decode error, got {other:?}"),
        }
    }
}
