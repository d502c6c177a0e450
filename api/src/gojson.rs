//! JSON text exactly as Go's `encoding/json` writes a `map[string]interface{}`: keys sorted,
//! no spaces, `<`, `>`, `&`, U+2028 and U+2029 escaped. ControllerRevision hashes and the
//! env-from-metadata hashes are taken over these bytes, so they must match what kruise-manager
//! and kruise-daemon hashed.

use std::fmt::Write;

use serde_json::Value;

/// Writes `value` the way Go's `json.Marshal` writes the same decoded value.
pub fn to_go_json(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value);
    out
}

fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => write_number(out, n),
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            // serde_json's Map is a BTreeMap here (no preserve_order), so iteration is sorted by
            // byte order, like Go's sort of map keys.
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(out, key);
                out.push(':');
                if let Some(v) = map.get(key) {
                    write_value(out, v);
                }
            }
            out.push('}');
        }
    }
}

fn write_number(out: &mut String, n: &serde_json::Number) {
    // Go decodes every number into float64 and prints it with the shortest representation,
    // switching to exponent form below 1e-6 and from 1e21 on.
    let f = n.as_f64().unwrap_or(0.0);
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        // Go: strconv 'e' format with at least two exponent digits, e.g. 1e+21, 1e-07.
        let s = format!("{f:e}");
        if let Some((mantissa, exp)) = s.split_once('e') {
            let (sign, digits) = match exp.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', exp),
            };
            let _ = write!(out, "{mantissa}e{sign}{digits:0>2}");
            return;
        }
        out.push_str(&s);
    } else {
        let _ = write!(out, "{f}");
    }
}

/// A string as Go's `encoding/json` writes it, quotes included.
pub fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    write_string(&mut out, s);
    out
}

fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn matches_go_encoding() {
        let cases = [
            (
                json!({"b": 1, "a": [true, null]}),
                r#"{"a":[true,null],"b":1}"#,
            ),
            (json!("<a&b>"), r#""\u003ca\u0026b\u003e""#),
            (
                json!("line\nbreak\ttab\u{1}"),
                r#""line\nbreak\ttab\u0001""#,
            ),
            (json!("\u{2028}"), r#""\u2028""#),
            (json!(420), "420"),
            (json!(-30), "-30"),
            (json!(0.5), "0.5"),
            (json!(1e21), "1e+21"),
            (json!(1e-7), "1e-07"),
            (json!("é"), "\"é\""),
        ];
        for (value, want) in cases {
            assert_eq!(to_go_json(&value), want, "{value}");
        }
    }
}
