//! CloneSet defaulting at CREATE and UPDATE, as OpenKruise's `/mutate-apps-kruise-io-cloneset`
//! (`SetDefaultsCloneSet`), so the create response already shows what the controller assumes.
//!
//! The defaults are `CloneSetSpec::defaulted` from `graft-api`, the one home of the rule. The
//! CRD's schema defaults already fill most of them before any webhook runs; what only the
//! webhook adds is `updateStrategy.inPlaceUpdateStrategy: {}` for the in-place types. Pod-template
//! defaults are not injected, as OpenKruise with its `TemplateNoDefaults` gate on (graft behaves
//! as OpenKruise with every gate on).

use futures::future::BoxFuture;
use graft_api::apps::v1alpha1::CloneSetSpec;
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, Operation};
use serde_json::Value;

use super::{fill_missing, object_json, patch_between};
use crate::error::HandlerError;
use crate::server::{Handler, Verdict, Webhook, rule};

/// Path of the CloneSet webhook (OpenKruise's).
pub const PATH: &str = "/mutate-apps-kruise-io-cloneset";

/// The CloneSet defaulting webhook (stateless).
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
            defaults(&object).map_err(|reason| HandlerError::Decode {
                kind: "CloneSet",
                key: crate::server::request_key(req),
                reason,
            })
        })
    }
}

/// The patch that adds OpenKruise's defaults the object lacks (never changes a value it has).
pub fn defaults(object: &Value) -> Result<Verdict, String> {
    let spec_json = object
        .get("spec")
        .ok_or_else(|| "the object has no spec".to_string())?;
    let spec: CloneSetSpec =
        serde_json::from_value(spec_json.clone()).map_err(|e| format!("spec: {e}"))?;
    let defaulted = serde_json::to_value(spec.defaulted()).map_err(|e| e.to_string())?;
    let mut after = object.clone();
    if let Some(s) = after.get_mut("spec") {
        fill_missing(s, &defaulted);
    }
    Ok(patch_between(object, &after))
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
            Verdict::Deny(m) => panic!("unexpected deny: {m}"),
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
            let got = defaults(&cloneset(extra)).unwrap();
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
        let got = patch_json(&defaults(&cloneset(json!({}))).unwrap());
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
        assert!(defaults(&obj).is_err());
        assert!(defaults(&json!({})).is_err());
    }
}
