//! Kubernetes' syntax rules for names, label keys and values and annotation keys, with the
//! messages its validation gives (apimachinery's `pkg/util/validation`, `pkg/api/validation` and
//! `pkg/apis/meta/v1/validation`): what `kubectl apply` shows when a webhook refuses one.
//!
//! The `is_*` functions return upstream's list of messages (empty: valid); the `validate_*` ones
//! turn them into [`FieldErrors`] on a field, one error per message, as upstream does.

use std::collections::BTreeMap;

use crate::field::{FieldError, FieldErrors};

/// Longest name part of a qualified name, label value and DNS-1123 label.
pub const MAX_LABEL_LEN: usize = 63;
/// Longest DNS-1123 subdomain.
pub const MAX_SUBDOMAIN_LEN: usize = 253;
/// Most bytes all annotations of an object may hold, keys and values together.
pub const MAX_ANNOTATIONS_BYTES: usize = 256 * 1024;

const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QUALIFIED_NAME_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_FMT: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";

/// Go's `validation.RegexError`: the message, its examples and the pattern (the double spaces
/// between examples are upstream's).
fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    if examples.is_empty() {
        return format!("{msg} (regex used for validation is '{fmt}')");
    }
    let shown: Vec<String> = examples.iter().map(|e| format!("'{e}', ")).collect();
    format!(
        "{msg} (e.g. {}regex used for validation is '{fmt}')",
        shown.join(" or ")
    )
}

/// Go's `validation.MaxLenError`.
fn max_len_error(n: usize) -> String {
    format!("must be no more than {n} characters")
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`, whole string.
fn is_qualified_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(f), Some(l)) => {
            f.is_ascii_alphanumeric()
                && l.is_ascii_alphanumeric()
                && b.iter()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, whole string.
fn matches_dns1123_label(s: &str) -> bool {
    let lower_alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(f), Some(l)) => {
            lower_alnum(f) && lower_alnum(l) && b.iter().all(|c| lower_alnum(c) || *c == b'-')
        }
        _ => false,
    }
}

/// DNS-1123 labels joined by dots, whole string.
fn matches_dns1123_subdomain(s: &str) -> bool {
    s.split('.').all(matches_dns1123_label)
}

/// Go's `IsQualifiedName`: a name part of at most 63 characters, optionally after a DNS
/// subdomain prefix and `/` (label keys, finalizers, annotation keys in lower case).
pub fn is_qualified_name(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".to_string());
            } else {
                errs.extend(
                    is_dns1123_subdomain(prefix)
                        .into_iter()
                        .map(|m| format!("prefix part {m}")),
                );
            }
            *name
        }
        _ => {
            errs.push(format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(
                    QUALIFIED_NAME_MSG,
                    QUALIFIED_NAME_FMT,
                    &["MyName", "my.name", "123-abc"]
                )
            ));
            return errs;
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".to_string());
    } else if name.len() > MAX_LABEL_LEN {
        errs.push(format!("name part {}", max_len_error(MAX_LABEL_LEN)));
    }
    if !is_qualified_name_part(name) {
        errs.push(format!(
            "name part {}",
            regex_error(
                QUALIFIED_NAME_MSG,
                QUALIFIED_NAME_FMT,
                &["MyName", "my.name", "123-abc"]
            )
        ));
    }
    errs
}

/// Go's `IsValidLabelValue`: empty, or a qualified name part of at most 63 characters.
pub fn is_valid_label_value(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > MAX_LABEL_LEN {
        errs.push(max_len_error(MAX_LABEL_LEN));
    }
    if !value.is_empty() && !is_qualified_name_part(value) {
        errs.push(regex_error(
            LABEL_VALUE_MSG,
            LABEL_VALUE_FMT,
            &["MyValue", "my_value", "12345"],
        ));
    }
    errs
}

/// Go's `IsDNS1123Label`: lower-case alphanumerics and `-`, at most 63 characters.
pub fn is_dns1123_label(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > MAX_LABEL_LEN {
        errs.push(max_len_error(MAX_LABEL_LEN));
    }
    if !matches_dns1123_label(value) {
        if matches_dns1123_subdomain(value) {
            errs.push("must not contain dots".to_string());
        } else {
            errs.push(regex_error(
                DNS1123_LABEL_MSG,
                DNS1123_LABEL_FMT,
                &["my-name", "123-abc"],
            ));
        }
    }
    errs
}

/// Go's `IsDNS1123Subdomain`: DNS-1123 labels joined by dots, at most 253 characters.
pub fn is_dns1123_subdomain(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > MAX_SUBDOMAIN_LEN {
        errs.push(max_len_error(MAX_SUBDOMAIN_LEN));
    }
    if !matches_dns1123_subdomain(value) {
        errs.push(regex_error(
            DNS1123_SUBDOMAIN_MSG,
            DNS1123_SUBDOMAIN_FMT,
            &["example.com"],
        ));
    }
    errs
}

/// Go's `maskTrailingDash`, applied to a `generateName` before it is checked: a trailing `-`
/// (and the character before it) becomes `a`, as the generated suffix will follow it.
pub fn mask_trailing_dash(name: &str) -> String {
    match name.as_bytes() {
        [rest @ .., _, b'-'] => {
            let mut b = rest.to_vec();
            b.push(b'a');
            String::from_utf8_lossy(&b).into_owned()
        }
        _ => name.to_string(),
    }
}

/// `metav1validation.ValidateLabelName`: the key is a qualified name.
pub fn validate_label_name(key: &str, field: &str) -> FieldErrors {
    let mut errs = FieldErrors::default();
    for m in is_qualified_name(key) {
        errs.push(FieldError::invalid(field, key, &m));
    }
    errs
}

/// `metav1validation.ValidateLabels`: every key a qualified name, every value a label value,
/// all reported on `field` itself (upstream names no key).
pub fn validate_labels(labels: &BTreeMap<String, String>, field: &str) -> FieldErrors {
    let mut errs = FieldErrors::default();
    for (k, v) in labels {
        errs.extend(validate_label_name(k, field));
        for m in is_valid_label_value(v) {
            errs.push(FieldError::invalid(field, v, &m));
        }
    }
    errs
}

/// `apimachineryvalidation.ValidateAnnotations`: every key a qualified name in any case, and
/// all keys and values together at most 256 KiB.
pub fn validate_annotations(annotations: &BTreeMap<String, String>, field: &str) -> FieldErrors {
    let mut errs = FieldErrors::default();
    for k in annotations.keys() {
        for m in is_qualified_name(&k.to_lowercase()) {
            errs.push(FieldError::invalid(field, k, &m));
        }
    }
    let size: usize = annotations.iter().map(|(k, v)| k.len() + v.len()).sum();
    if size > MAX_ANNOTATIONS_BYTES {
        errs.push(FieldError::too_long(field, MAX_ANNOTATIONS_BYTES));
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;

    /// The messages spelled out once, as the API server prints them.
    const NAME_PART: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
    const LABEL_VALUE: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
    const SUBDOMAIN: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
    const LABEL: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

    #[test]
    fn qualified_names() {
        let (max, long) = ("a".repeat(63), "a".repeat(64));
        let cases: Vec<(&str, Vec<String>)> = vec![
            ("app", vec![]),
            ("My.Name_1-x", vec![]),
            ("apps.kruise.io/pod-name", vec![]),
            (&max, vec![]),
            ("a b", vec![NAME_PART.into()]),
            ("-a", vec![NAME_PART.into()]),
            ("a.", vec![NAME_PART.into()]),
            (
                "",
                vec!["name part must be non-empty".into(), NAME_PART.into()],
            ),
            (
                &long,
                vec!["name part must be no more than 63 characters".into()],
            ),
            ("/a", vec!["prefix part must be non-empty".into()]),
            ("Example.com/a", vec![format!("prefix part {SUBDOMAIN}")]),
            (
                "a/b/c",
                vec![format!(
                    "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                    &NAME_PART["name part ".len()..]
                )],
            ),
        ];
        for (v, want) in cases {
            assert_eq!(is_qualified_name(v), want, "{v:?}");
        }
    }

    #[test]
    fn label_values() {
        assert_eq!(is_valid_label_value(""), Vec::<String>::new());
        assert_eq!(is_valid_label_value("v1.2_x-Y"), Vec::<String>::new());
        assert_eq!(is_valid_label_value("a b"), vec![LABEL_VALUE.to_string()]);
        assert_eq!(
            is_valid_label_value(&"a".repeat(64)),
            vec!["must be no more than 63 characters".to_string()]
        );
    }

    #[test]
    fn dns_labels_and_subdomains() {
        assert_eq!(is_dns1123_label("web-0"), Vec::<String>::new());
        assert_eq!(
            is_dns1123_label("web.v1"),
            vec!["must not contain dots".to_string()]
        );
        assert_eq!(is_dns1123_label("Web"), vec![LABEL.to_string()]);
        assert_eq!(
            is_dns1123_label(&"a".repeat(64)),
            vec!["must be no more than 63 characters".to_string()]
        );
        assert_eq!(is_dns1123_subdomain("web.v1"), Vec::<String>::new());
        assert_eq!(is_dns1123_subdomain("web..v1"), vec![SUBDOMAIN.to_string()]);
        assert_eq!(
            is_dns1123_subdomain(&"a".repeat(254)),
            vec!["must be no more than 253 characters".to_string()]
        );
        assert_eq!(mask_trailing_dash("web-"), "wea");
        assert_eq!(mask_trailing_dash("-"), "-");
        assert_eq!(mask_trailing_dash("web"), "web");
    }

    #[test]
    fn labels_and_annotations_on_a_field() {
        let m = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        assert!(validate_labels(&m(&[("app", "db")]), "f").is_empty());
        assert_eq!(
            validate_labels(&m(&[("a b", "c d")]), "f").to_string(),
            format!(
                "[f: Invalid value: \"a b\": {NAME_PART}, f: Invalid value: \"c d\": {LABEL_VALUE}]"
            )
        );
        // Annotation keys may use capitals in the prefix; values are free.
        assert!(validate_annotations(&m(&[("Example.COM/Key", "a b")]), "f").is_empty());
        assert_eq!(
            validate_annotations(&m(&[("a b", "")]), "f").to_string(),
            format!("[f: Invalid value: \"a b\": {NAME_PART}]")
        );
        let big = "x".repeat(MAX_ANNOTATIONS_BYTES);
        assert_eq!(
            validate_annotations(&m(&[("k", &big)]), "f").to_string(),
            "[f: Too long: may not be more than 262144 bytes]"
        );
    }
}
