//! JSON manifests: a stream of top-level values, duplicate keys rejected (as for YAML).

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// A JSON value decoded with duplicate object keys rejected.
struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut v = Vec::new();
        while let Some(Strict(item)) = seq.next_element()? {
            v.push(item);
        }
        Ok(Value::Array(v))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut m = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if m.contains_key(&key) {
                return Err(de::Error::custom(format_args!("duplicate key {key:?}")));
            }
            let Strict(value) = map.next_value()?;
            m.insert(key, value);
        }
        Ok(Value::Object(m))
    }
}

/// One top-level value of a JSON file: its index, first line, and the value or the error
/// (with its line). Reading stops at the first syntax error.
pub(crate) type JsonDoc = (usize, usize, Result<Value, (usize, String)>);

/// Reads every top-level JSON value of `text`.
pub(crate) fn documents(text: &str) -> Vec<JsonDoc> {
    let line_at = |byte: usize| text[..byte.min(text.len())].matches('\n').count() + 1;
    let mut out = Vec::new();
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<Strict>();
    let mut index = 0;
    loop {
        let before = stream.byte_offset();
        let start = before + (text.len() - before - text[before..].trim_start().len());
        match stream.next() {
            None => break,
            Some(Ok(Strict(v))) => out.push((index, line_at(start), Ok(v))),
            Some(Err(e)) => {
                let msg = e.to_string();
                // serde_json appends " at line L column C"; the line is reported separately.
                let reason = msg
                    .rsplit_once(" at line ")
                    .map_or(msg.as_str(), |(r, _)| r)
                    .to_string();
                out.push((index, line_at(start), Err((e.line().max(1), reason))));
                break;
            }
        }
        index += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stream_lines_and_duplicates() {
        let docs = documents("{\"a\": 1}\n\n{\"b\":\n 2}\n");
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0], (0, 1, Ok(json!({"a": 1}))));
        assert_eq!(docs[1], (1, 3, Ok(json!({"b": 2}))));

        let docs = documents("{\n \"a\": 1,\n \"a\": 2\n}");
        let (_, _, Err((line, reason))) = &docs[0] else {
            panic!("{docs:?}")
        };
        assert_eq!(*line, 3);
        assert!(reason.contains("duplicate key \"a\""), "{reason}");

        let docs = documents("{\"a\": 1}\n{\"b\": ");
        assert!(docs[0].2.is_ok());
        assert!(docs[1].2.is_err());
    }
}
