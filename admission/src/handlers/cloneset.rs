//! CloneSet validation and defaulting at CREATE and UPDATE, as OpenKruise's
//! `/validate-apps-kruise-io-cloneset` and `/mutate-apps-kruise-io-cloneset` together (one
//! fail-open webhook, as graft's others).
//!
//! Like kruise, the rules work on the object after the mutating webhook's defaults
//! (`CloneSetSpec::defaulted`, the one home of the rule):
//! - refused with kruise v1.9's messages (its aggregate form: one error alone, several in
//!   brackets, duplicates once): `CloneSet::validate_defaulted` at CREATE,
//!   `CloneSet::validate_update` against the stored object at UPDATE (a changed selector,
//!   non-image template changes with `InPlaceOnly`, then the CREATE rules). kruise's reads of
//!   the pods named in `podsToDelete` are not made: this handler reads nothing.
//! - admitted with a patch adding the defaults the object lacks. The CRD's schema defaults
//!   already fill most of them before any webhook runs; what only the webhook adds is
//!   `updateStrategy.inPlaceUpdateStrategy: {}` for the in-place types. Pod-template defaults
//!   are not injected, as OpenKruise with its `TemplateNoDefaults` gate on (graft behaves as
//!   OpenKruise with every gate on).
//!
//! graft's webhook is a mutating one, so the API server calls it before its own schema checks:
//! a refusal here is what the user reads, in kruise's words.

use futures::future::BoxFuture;
use graft_api::apps::v1alpha1::CloneSet;
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, Operation};
use serde_json::Value;

use super::statefulset::aggregate;
use super::{fill_missing, object_json, patch_between};
use crate::error::HandlerError;
use crate::server::{Handler, Verdict, Webhook, request_key, rule};

/// Path of the CloneSet webhook (OpenKruise's mutating one).
pub const PATH: &str = "/mutate-apps-kruise-io-cloneset";

/// The CloneSet webhook (stateless).
pub struct CloneSetHandler;

impl Handler for CloneSetHandler {
    fn webhook(&self) -> Webhook {
        Webhook {
            name: "mcloneset.graft.dev",
            path: PATH,
            rules: vec![rule(
                "apps.kruise.io",
                &["v1alpha1"],
                "clonesets",
                &["CREATE", "UPDATE"],
            )],
            absent_labels: &[],
            label_in: &[],
        }
    }

    fn admit<'a>(
        &'a self,
        req: &'a AdmissionRequest<DynamicObject>,
    ) -> BoxFuture<'a, Result<Verdict, HandlerError>> {
        Box::pin(async move {
            if !matches!(req.operation, Operation::Create | Operation::Update) {
                return Ok(Verdict::Allow);
            }
            let object = object_json(req, false, "CloneSet")?;
            let older = match req.operation {
                Operation::Update => Some(object_json(req, true, "CloneSet")?),
                _ => None,
            };
            decide(&object, older.as_ref()).map_err(|reason| HandlerError::Decode {
                kind: "CloneSet",
                key: request_key(req),
                reason,
            })
        })
    }
}

/// The verdict for `object` (`older`: the stored object on UPDATE): kruise's refusal, or the
/// patch adding the defaults the object lacks (never changing a value it has). An `Err` is an
/// object that does not decode: it is admitted unchanged.
pub fn decide(object: &Value, older: Option<&Value>) -> Result<Verdict, String> {
    let new = defaulted(object)?;
    let errs = match older {
        Some(old) => new.validate_update(&defaulted(old)?),
        None => new.validate_defaulted(),
    };
    if !errs.is_empty() {
        return Ok(Verdict::DenyWithCode(422, aggregate(&errs)));
    }
    let defaults = serde_json::to_value(&new.spec).map_err(|e| e.to_string())?;
    let mut after = object.clone();
    match after.get_mut("spec") {
        Some(s) => fill_missing(s, &defaults),
        None => return Err("the object has no spec".into()),
    }
    Ok(patch_between(object, &after))
}

/// The object as the validating webhook sees it: decoded, with the mutating webhook's defaults.
fn defaulted(object: &Value) -> Result<CloneSet, String> {
    if object.get("spec").is_none() {
        return Err("the object has no spec".into());
    }
    let mut cs: CloneSet = serde_json::from_value(object.clone()).map_err(|e| e.to_string())?;
    cs.spec = cs.spec.defaulted();
    Ok(cs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use serde_json::json;

    fn cloneset(spec_extra: Value) -> Value {
        let mut spec = json!({
            "selector": {"matchLabels": {"app": "demo"}},
            "template": {
                "metadata": {"labels": {"app": "demo"}},
                "spec": {"containers": [{"name": "main", "image": "nginx:1.27"}]}
            }
        });
        if let (Some(s), Some(extra)) = (spec.as_object_mut(), spec_extra.as_object()) {
            for (k, v) in extra {
                s.insert(k.clone(), v.clone());
            }
        }
        json!({"apiVersion": "apps.kruise.io/v1alpha1", "kind": "CloneSet",
               "metadata": {"name": "demo", "namespace": "ns"}, "spec": spec})
    }

    fn patch_json(v: &Verdict) -> Value {
        match v {
            Verdict::Patch(p) => serde_json::to_value(p).unwrap(),
            Verdict::Allow => json!([]),
            other => panic!("unexpected verdict: {other:?}"),
        }
    }

    /// (rule, spec fields, expected JSON patch)
    #[test]
    fn defaults_table() {
        let cases: Vec<(&str, Value, Value)> = vec![
            (
                "a bare spec gets every default",
                json!({}),
                json!([
                    {"op": "add", "path": "/spec/replicas", "value": 1},
                    {"op": "add", "path": "/spec/revisionHistoryLimit", "value": 10},
                    {"op": "add", "path": "/spec/updateStrategy", "value":
                        {"type": "ReCreate", "partition": 0, "maxUnavailable": "20%", "maxSurge": 0}}
                ]),
            ),
            (
                "as the API server sends it (schema defaults applied): nothing for ReCreate",
                json!({"replicas": 3, "revisionHistoryLimit": 10, "updateStrategy":
                    {"type": "ReCreate", "partition": 0, "maxUnavailable": "20%", "maxSurge": 0}}),
                json!([]),
            ),
            (
                "in place: inPlaceUpdateStrategy {} is added (only the webhook does that)",
                json!({"replicas": 3, "revisionHistoryLimit": 10, "updateStrategy":
                    {"type": "InPlaceIfPossible", "partition": 0, "maxUnavailable": "20%", "maxSurge": 0}}),
                json!([{"op": "add", "path": "/spec/updateStrategy/inPlaceUpdateStrategy", "value": {}}]),
            ),
            (
                "InPlaceOnly too",
                json!({"updateStrategy": {"type": "InPlaceOnly"}}),
                json!([
                    {"op": "add", "path": "/spec/replicas", "value": 1},
                    {"op": "add", "path": "/spec/revisionHistoryLimit", "value": 10},
                    {"op": "add", "path": "/spec/updateStrategy/inPlaceUpdateStrategy", "value": {}},
                    {"op": "add", "path": "/spec/updateStrategy/maxSurge", "value": 0},
                    {"op": "add", "path": "/spec/updateStrategy/maxUnavailable", "value": "20%"},
                    {"op": "add", "path": "/spec/updateStrategy/partition", "value": 0}
                ]),
            ),
            (
                "values the user set are kept",
                json!({"replicas": 0, "revisionHistoryLimit": 2, "updateStrategy":
                    {"type": "InPlaceIfPossible", "partition": "50%", "maxUnavailable": 2, "maxSurge": "10%",
                     "inPlaceUpdateStrategy": {"gracePeriodSeconds": 5}}}),
                json!([]),
            ),
        ];
        for (rule, extra, want) in cases {
            let got = decide(&cloneset(extra), None).unwrap();
            let mut got = patch_json(&got);
            // json-patch's diff order is not part of the contract: compare sorted by path.
            if let Some(a) = got.as_array_mut() {
                a.sort_by_key(|op| op["path"].as_str().unwrap_or_default().to_string());
            }
            let mut want = want;
            if let Some(a) = want.as_array_mut() {
                a.sort_by_key(|op| op["path"].as_str().unwrap_or_default().to_string());
            }
            assert_eq!(got, want, "{rule}");
        }
    }

    #[test]
    fn the_pod_template_is_not_defaulted() {
        let got = patch_json(&decide(&cloneset(json!({})), None).unwrap());
        assert!(
            got.as_array()
                .unwrap()
                .iter()
                .all(|op| !op["path"].as_str().unwrap().starts_with("/spec/template")),
            "{got}"
        );
    }

    #[test]
    fn an_undecodable_spec_is_an_error_so_it_is_admitted_unchanged() {
        let obj = json!({"spec": {"replicas": "three"}});
        assert!(decide(&obj, None).is_err());
        assert!(decide(&json!({}), None).is_err());
        let good = cloneset(json!({}));
        assert!(
            decide(&good, Some(&obj)).is_err(),
            "an undecodable old object"
        );
    }

    fn denied(v: Verdict) -> String {
        match v {
            Verdict::Deny(m) | Verdict::DenyWithCode(_, m) => m,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    /// The object after the webhook's patch, as the API server stores it.
    fn patched(object: &Value) -> Value {
        let mut out = object.clone();
        if let Verdict::Patch(p) = decide(object, None).unwrap() {
            json_patch::patch(&mut out, &p).unwrap();
        }
        out
    }

    /// (rule, spec fields, kruise's message) at CREATE.
    #[test]
    fn refusals_table() {
        let cases: Vec<(&str, Value, &str)> = vec![
            (
                "the selector does not match the template labels",
                json!({"selector": {"matchLabels": {"app": "other"}}}),
                "spec.template.metadata.labels: Invalid value: \"{\\\"app\\\":\\\"demo\\\"}\": `selector` does not match template `labels`",
            ),
            (
                "maxUnavailable 0 and maxSurge 0",
                json!({"replicas": 3, "updateStrategy": {"maxUnavailable": 0, "maxSurge": 0}}),
                "spec.updateStrategy.maxUnavailable: Invalid value: \"0\": maxUnavailable and maxSurge should not both be less than 1",
            ),
            (
                "maxUnavailable 0 with the default maxSurge",
                json!({"updateStrategy": {"maxUnavailable": 0}}),
                "spec.updateStrategy.maxUnavailable: Invalid value: \"0\": maxUnavailable and maxSurge should not both be less than 1",
            ),
            (
                "progressDeadlineSeconds not above minReadySeconds",
                json!({"minReadySeconds": 30, "progressDeadlineSeconds": 30}),
                "spec.progressDeadlineSeconds: Invalid value: \"30\": must be greater than minReadySeconds",
            ),
            (
                "maxSurge with InPlaceOnly",
                json!({"updateStrategy": {"type": "InPlaceOnly", "maxSurge": 1}}),
                "spec.updateStrategy.maxSurge: Invalid value: \"1\": can not use maxSurge with strategy type InPlaceOnly",
            ),
            (
                "two errors, in brackets",
                json!({"replicas": -1, "scaleStrategy": {"podsToDelete": ["a", "a"]}}),
                "[spec.replicas: Invalid value: \"-1\": must be greater than or equal to 0, spec.scaleStrategy.podsToDelete: Invalid value: \"[\\\"a\\\",\\\"a\\\"]\": duplicated items [a]]",
            ),
        ];
        for (rule, extra, want) in cases {
            assert_eq!(
                denied(decide(&cloneset(extra), None).unwrap()),
                want,
                "{rule}"
            );
        }
    }

    #[test]
    fn updates_are_checked_against_the_stored_object() {
        let old = patched(&cloneset(
            json!({"updateStrategy": {"type": "InPlaceOnly"}}),
        ));
        // an image change, and a scale, are fine
        let mut new = old.clone();
        new["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:1.28");
        new["spec"]["replicas"] = json!(5);
        assert_eq!(decide(&new, Some(&old)).unwrap(), Verdict::Allow);
        // anything else in the template, with InPlaceOnly
        new["spec"]["template"]["spec"]["containers"][0]["args"] = json!(["-x"]);
        assert_eq!(
            denied(decide(&new, Some(&old)).unwrap()),
            "spec: Forbidden: only allowed to update images in spec for InPlaceOnly, but found add /containers/0/args"
        );
        // the selector, and the CREATE rules after it
        let mut new = old.clone();
        new["spec"]["selector"]["matchLabels"] = json!({"app": "demo", "tier": "web"});
        new["spec"]["template"]["metadata"]["labels"] = json!({"app": "demo", "tier": "web"});
        new["spec"]["updateStrategy"]["maxUnavailable"] = json!(0);
        assert_eq!(
            denied(decide(&new, Some(&old)).unwrap()),
            format!(
                "[spec: Forbidden: {}, spec.updateStrategy.maxUnavailable: Invalid value: \"0\": maxUnavailable and maxSurge should not both be less than 1]",
                graft_api::apps::v1alpha1::cloneset_validation::FORBIDDEN_UPDATE
            )
        );
    }

    #[test]
    fn a_valid_object_keeps_its_defaulting_patch() {
        let obj = cloneset(json!({"replicas": 3, "revisionHistoryLimit": 10,
            "updateStrategy": {"type": "InPlaceIfPossible", "partition": 0, "maxUnavailable": 0, "maxSurge": 1}}));
        assert_eq!(
            patch_json(&decide(&obj, None).unwrap()),
            json!([{"op": "add", "path": "/spec/updateStrategy/inPlaceUpdateStrategy", "value": {}}])
        );
        // on UPDATE too
        let stored = patched(&obj);
        let mut new = stored.clone();
        new["spec"]["updateStrategy"]
            .as_object_mut()
            .unwrap()
            .remove("inPlaceUpdateStrategy");
        assert_eq!(
            patch_json(&decide(&new, Some(&stored)).unwrap()),
            json!([{"op": "add", "path": "/spec/updateStrategy/inPlaceUpdateStrategy", "value": {}}])
        );
    }
}
