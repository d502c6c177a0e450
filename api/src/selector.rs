//! Label selectors (`metav1.LabelSelector`), with the one meaning Kubernetes gives them: every
//! `matchLabels` pair and every `matchExpressions` requirement must hold, so an empty selector
//! (`{}`) matches everything and an absent one (`None` where a field is optional) matches nothing
//! (`metav1.LabelSelectorAsSelector`). A workload that must not select everything refuses an
//! empty selector at validation ([`crate::apps::common::validate_selector_not_empty`]).
//!
//! Every place in graft that matches or lists by a selector uses this module.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};

use crate::field::{FieldError, FieldErrors};
use crate::names;

/// A selector the API server would refuse (unknown operator, or values where none belong).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid label selector requirement on {key:?}: {reason}")]
pub struct SelectorError {
    /// The requirement's key.
    pub key: String,
    /// Why it is invalid.
    pub reason: String,
}

/// True when the selector has neither `matchLabels` nor `matchExpressions` (it matches
/// everything).
pub fn is_empty(selector: &LabelSelector) -> bool {
    selector.match_labels.as_ref().is_none_or(|m| m.is_empty())
        && selector
            .match_expressions
            .as_ref()
            .is_none_or(|m| m.is_empty())
}

/// Whether `labels` satisfy `selector`. An empty selector matches everything; a requirement with
/// an unknown operator matches nothing (the API server refuses such a selector).
pub fn matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let pairs = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    pairs
        && selector
            .match_expressions
            .iter()
            .flatten()
            .all(|r| requirement_holds(r, labels))
}

/// [`matches`] for an object whose labels may be absent (no labels is the empty set).
pub fn matches_labels(selector: &LabelSelector, labels: Option<&BTreeMap<String, String>>) -> bool {
    static NONE: BTreeMap<String, String> = BTreeMap::new();
    matches(selector, labels.unwrap_or(&NONE))
}

/// [`matches`] for an optional selector: `None` matches nothing, as Kubernetes defines it.
pub fn matches_opt(selector: Option<&LabelSelector>, labels: &BTreeMap<String, String>) -> bool {
    selector.is_some_and(|s| matches(s, labels))
}

fn requirement_holds(r: &LabelSelectorRequirement, labels: &BTreeMap<String, String>) -> bool {
    let values = r.values.as_deref().unwrap_or_default();
    let have = labels.get(&r.key);
    match r.operator.as_str() {
        "In" => have.is_some_and(|v| values.contains(v)),
        "NotIn" => have.is_none_or(|v| !values.contains(v)),
        "Exists" => have.is_some(),
        "DoesNotExist" => have.is_none(),
        _ => false,
    }
}

/// The selector in the API server's query syntax (`app=web,tier in (a,b),!spot`), for list and
/// watch calls and for a scale subresource's `status.labelSelector`. An empty selector is the
/// empty string (everything). An unknown operator is an error, as the API server makes it.
pub fn to_query(selector: &LabelSelector) -> Result<String, SelectorError> {
    let mut parts: Vec<String> = selector
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for r in selector.match_expressions.iter().flatten() {
        let values = r.values.as_deref().unwrap_or_default();
        let bad = |reason: &str| SelectorError {
            key: r.key.clone(),
            reason: reason.to_string(),
        };
        parts.push(match r.operator.as_str() {
            "In" | "NotIn" if values.is_empty() => {
                return Err(bad("values must be non-empty for In and NotIn"));
            }
            "In" => format!("{} in ({})", r.key, values.join(",")),
            "NotIn" => format!("{} notin ({})", r.key, values.join(",")),
            "Exists" | "DoesNotExist" if !values.is_empty() => {
                return Err(bad("values must be empty for Exists and DoesNotExist"));
            }
            "Exists" => r.key.clone(),
            "DoesNotExist" => format!("!{}", r.key),
            other => return Err(bad(&format!("unknown operator {other:?}"))),
        });
    }
    Ok(parts.join(","))
}

/// `metav1validation.ValidateLabelSelector` (no options): `matchLabels` as labels, then each
/// requirement's operator and values, its key (a qualified name) and each value (a label
/// value). `field` is the selector's path, e.g. `spec.selector`.
pub fn validate(selector: &LabelSelector, field: &str) -> FieldErrors {
    let mut errs = FieldErrors::default();
    if let Some(m) = &selector.match_labels {
        errs.extend(names::validate_labels(m, &format!("{field}.matchLabels")));
    }
    for (i, r) in selector.match_expressions.iter().flatten().enumerate() {
        let f = format!("{field}.matchExpressions[{i}]");
        let values = r.values.as_deref().unwrap_or_default();
        match r.operator.as_str() {
            "In" | "NotIn" if values.is_empty() => errs.push(FieldError::required(
                &format!("{f}.values"),
                "must be specified when `operator` is 'In' or 'NotIn'",
            )),
            "Exists" | "DoesNotExist" if !values.is_empty() => errs.push(FieldError::forbidden(
                &format!("{f}.values"),
                "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
            )),
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            op => errs.push(FieldError::invalid(
                &format!("{f}.operator"),
                op,
                "not a valid selector operator",
            )),
        }
        errs.extend(names::validate_label_name(&r.key, &format!("{f}.key")));
        for (j, v) in values.iter().enumerate() {
            for m in names::is_valid_label_value(v) {
                errs.push(FieldError::invalid(&format!("{f}.values[{j}]"), v, &m));
            }
        }
    }
    errs
}

/// Whether `metav1.LabelSelectorAsSelector` accepts the selector: exactly when [`validate`]
/// finds nothing (it checks the same operators, keys and values).
pub fn converts(selector: &LabelSelector) -> bool {
    validate(selector, "").is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn sel(v: serde_json::Value) -> LabelSelector {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn an_empty_selector_matches_everything_and_an_absent_one_nothing() {
        assert!(matches(&LabelSelector::default(), &labels(&[])));
        assert!(matches(&sel(serde_json::json!({})), &labels(&[("a", "b")])));
        assert!(matches_labels(&LabelSelector::default(), None));
        assert!(!matches_opt(None, &labels(&[("a", "b")])));
        assert!(is_empty(&sel(serde_json::json!({"matchLabels": {}}))));
        assert!(!is_empty(&sel(
            serde_json::json!({"matchLabels": {"a": "b"}})
        )));
    }

    #[test]
    fn every_pair_and_every_requirement_must_hold() {
        let s = sel(serde_json::json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["a", "b"]},
                {"key": "zone", "operator": "NotIn", "values": ["x"]},
                {"key": "gpu", "operator": "Exists"},
                {"key": "spot", "operator": "DoesNotExist"}
            ]
        }));
        let ok = labels(&[("app", "web"), ("tier", "a"), ("gpu", "1")]);
        assert!(matches(&s, &ok));
        let cases: [(&str, &str, &str); 5] = [
            ("wrong pair", "app", "api"),
            ("value not in", "tier", "c"),
            ("value in NotIn", "zone", "x"),
            ("forbidden key", "spot", "yes"),
            ("pair missing", "app", ""),
        ];
        for (what, key, value) in cases {
            let mut l = ok.clone();
            if value.is_empty() {
                l.remove(key);
            } else {
                l.insert(key.into(), value.into());
            }
            assert!(!matches(&s, &l), "{what}: {l:?}");
        }
        let mut no_gpu = ok.clone();
        no_gpu.remove("gpu");
        assert!(!matches(&s, &no_gpu), "Exists needs the key");
        let mut no_zone = ok.clone();
        no_zone.remove("zone");
        assert!(matches(&s, &no_zone), "NotIn holds without the key");
    }

    #[test]
    fn unknown_operators_match_nothing_and_cannot_be_queried() {
        let s = sel(serde_json::json!({
            "matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]
        }));
        assert!(!matches(&s, &labels(&[("a", "2")])));
        let err = to_query(&s).unwrap_err();
        assert!(err.to_string().contains("unknown operator \"Gt\""), "{err}");
    }

    #[test]
    fn queries_use_the_api_server_syntax() {
        let s = sel(serde_json::json!({
            "matchLabels": {"app": "web", "b": "c"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["a", "b"]},
                {"key": "zone", "operator": "NotIn", "values": ["x"]},
                {"key": "gpu", "operator": "Exists"},
                {"key": "spot", "operator": "DoesNotExist"}
            ]
        }));
        assert_eq!(
            to_query(&s).unwrap(),
            "app=web,b=c,tier in (a,b),zone notin (x),gpu,!spot"
        );
        assert_eq!(to_query(&LabelSelector::default()).unwrap(), "");
    }

    #[test]
    fn validate_names_each_bad_part_and_converts_agrees() {
        let s = sel(serde_json::json!({
            "matchLabels": {"ok": "v"},
            "matchExpressions": [
                {"key": "-k", "operator": "Exists"},
                {"key": "k", "operator": "In", "values": ["a", "b c"]}
            ]
        }));
        let fields: Vec<String> = validate(&s, "sel").into_iter().map(|e| e.field).collect();
        assert_eq!(
            fields,
            [
                "sel.matchExpressions[0].key",
                "sel.matchExpressions[1].values[1]"
            ]
        );
        assert!(!converts(&s));
        assert!(converts(&sel(
            serde_json::json!({"matchLabels": {"a/b": ""}})
        )));
        assert!(!converts(&sel(
            serde_json::json!({"matchLabels": {"a/b": "-"}})
        )));
    }

    #[test]
    fn malformed_requirements_are_refused_like_the_api_server_does() {
        for (op, values) in [
            ("In", serde_json::json!([])),
            ("NotIn", serde_json::json!([])),
            ("Exists", serde_json::json!(["x"])),
            ("DoesNotExist", serde_json::json!(["x"])),
        ] {
            let s = sel(serde_json::json!({
                "matchExpressions": [{"key": "k", "operator": op, "values": values}]
            }));
            assert!(to_query(&s).is_err(), "{op} {values}");
        }
    }
}
