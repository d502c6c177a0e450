//! BroadcastJob validation and defaulting at CREATE and UPDATE, both served versions, as
//! OpenKruise's `/validate-apps-kruise-io-broadcastjob` and `/mutate-apps-kruise-io-broadcastjob`
//! together (one fail-open webhook, as graft's others).
//!
//! v1alpha1 and v1beta1 BroadcastJobs are field for field the same, so both are read as
//! v1beta1. After the mutating webhook's defaults (`BroadcastJobSpec::defaulted`, the one home
//! of the rule: parallelism MaxInt32, completionPolicy `Always`, failurePolicy `FailFast`):
//! - refused with kruise's messages (Go's aggregate form): the name (alphanumerics and `-`, at
//!   most 63 characters) and the spec (`BroadcastJobSpec::validate`: deadline and TTL only with
//!   `Always`, restartPolicy `Never`/`OnFailure`, no preset job labels, the template);
//! - admitted with a patch adding the defaults the object lacks. The pod template is not
//!   defaulted (OpenKruise with `TemplateNoDefaults` on; graft behaves as OpenKruise with every
//!   gate on).

use futures::future::BoxFuture;
use graft_api::apps::v1beta1::broadcastjob::{BroadcastJobSpec, validate_name};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, Operation};
use serde_json::Value;

use super::statefulset::aggregate;
use super::{fill_missing, object_json, patch_between};
use crate::error::HandlerError;
use crate::server::{Handler, Verdict, Webhook, request_key, rule};

/// Path of the BroadcastJob webhook (OpenKruise's mutating one).
pub const PATH: &str = "/mutate-apps-kruise-io-broadcastjob";

/// The BroadcastJob webhook (stateless).
pub struct BroadcastJobHandler;

impl Handler for BroadcastJobHandler {
    fn webhook(&self) -> Webhook {
        Webhook {
            name: "mbroadcastjob.graft.dev",
            path: PATH,
            rules: vec![rule(
                "apps.kruise.io",
                &["v1alpha1", "v1beta1"],
                "broadcastjobs",
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
            let object = object_json(req, false, "BroadcastJob")?;
            decide(&object).map_err(|reason| HandlerError::Decode {
                kind: "BroadcastJob",
                key: request_key(req),
                reason,
            })
        })
    }
}

/// The verdict for `object` (either version). An `Err` is an object that does not decode: it
/// is admitted unchanged.
pub fn decide(object: &Value) -> Result<Verdict, String> {
    let meta: ObjectMeta = match object.get("metadata") {
        Some(m) => serde_json::from_value(m.clone()).map_err(|e| format!("metadata: {e}"))?,
        None => ObjectMeta::default(),
    };
    let spec_json = object
        .get("spec")
        .ok_or_else(|| "the object has no spec".to_string())?;
    let spec: BroadcastJobSpec =
        serde_json::from_value(spec_json.clone()).map_err(|e| format!("spec: {e}"))?;
    let defaulted = spec.defaulted();
    let mut errs = validate_name(&meta);
    errs.extend(defaulted.validate());
    if !errs.is_empty() {
        return Ok(Verdict::DenyWithCode(403, aggregate(&errs)));
    }
    let defaults = serde_json::to_value(&defaulted).map_err(|e| e.to_string())?;
    let mut after = object.clone();
    if let Some(s) = after.get_mut("spec") {
        fill_missing(s, &defaults);
    }
    Ok(patch_between(object, &after))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use serde_json::json;

    fn job(version: &str, name: &str, spec_extra: Value) -> Value {
        let mut spec = json!({
            "template": {"spec": {"restartPolicy": "Never",
                "containers": [{"name": "main", "image": "busybox"}]}}
        });
        if let (Some(s), Some(extra)) = (spec.as_object_mut(), spec_extra.as_object()) {
            for (k, v) in extra {
                s.insert(k.clone(), v.clone());
            }
        }
        json!({"apiVersion": format!("apps.kruise.io/{version}"), "kind": "BroadcastJob",
               "metadata": {"name": name, "namespace": "ns"}, "spec": spec})
    }

    fn patch_json(v: &Verdict) -> Value {
        let mut got = match v {
            Verdict::Patch(p) => serde_json::to_value(p).unwrap(),
            Verdict::Allow => json!([]),
            Verdict::Deny(m) | Verdict::DenyWithCode(_, m) => panic!("unexpected deny: {m}"),
        };
        if let Some(a) = got.as_array_mut() {
            a.sort_by_key(|op| op["path"].as_str().unwrap_or_default().to_string());
        }
        got
    }

    /// (rule, version, spec fields, expected JSON patch)
    #[test]
    fn defaults_table() {
        let cases: Vec<(&str, &str, Value, Value)> = vec![
            (
                "a bare spec gets every default",
                "v1beta1",
                json!({}),
                json!([
                    {"op": "add", "path": "/spec/completionPolicy", "value": {"type": "Always"}},
                    {"op": "add", "path": "/spec/failurePolicy", "value": {"type": "FailFast"}},
                    {"op": "add", "path": "/spec/parallelism", "value": 2147483647}
                ]),
            ),
            (
                "as the API server sends it (schema defaults applied): parallelism only",
                "v1alpha1",
                json!({"completionPolicy": {"type": "Always"}, "failurePolicy": {"type": "FailFast"}}),
                json!([{"op": "add", "path": "/spec/parallelism", "value": 2147483647}]),
            ),
            (
                "values the user set are kept",
                "v1beta1",
                json!({"parallelism": "50%", "completionPolicy": {"type": "Never"},
                    "failurePolicy": {"type": "Pause", "restartLimit": 3}}),
                json!([]),
            ),
        ];
        for (rule, version, extra, want) in cases {
            let got = decide(&job(version, "j", extra)).unwrap();
            assert_eq!(patch_json(&got), want, "{rule}");
        }
    }

    /// (rule, name, spec fields, kruise's message)
    #[test]
    fn refusals_table() {
        let cases: Vec<(&str, &str, Value, &str)> = vec![
            (
                "ttl with Never",
                "j",
                json!({"completionPolicy": {"type": "Never", "ttlSecondsAfterFinished": 5}}),
                "spec.completionPolicy.ttlSecondsAfterFinished: Invalid value: \"5\": ttlSecondsAfterFinished can just work with Always CompletionPolicyType",
            ),
            (
                "deadline with Never",
                "j",
                json!({"completionPolicy": {"type": "Never", "activeDeadlineSeconds": 5}}),
                "spec.completionPolicy.activeDeadlineSeconds: Invalid value: \"5\": activeDeadlineSeconds can just work with Always CompletionPolicyType",
            ),
            (
                "restartPolicy Always",
                "j",
                json!({"template": {"spec": {"restartPolicy": "Always", "containers": [{"name": "c", "image": "i"}]}}}),
                "spec.template.spec.restartPolicy: Invalid value: \"Always\": pod restartPolicy can only be Never or OnFailure",
            ),
            (
                "a dotted name",
                "a.b",
                json!({}),
                "metadata.name: Invalid value: \"a.b\": BroadcastJob name must consist of alphanumeric characters or '-' (e.g. 'example-com', regex used for validation is '^[a-zA-Z0-9\\-]+$')",
            ),
            (
                "preset controller-uid label",
                "j",
                json!({"template": {"metadata": {"labels": {"broadcastjob-controller-uid": "u"}},
                    "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "i"}]}}}),
                "spec.template.metadata.labels: Invalid value: \"{\\\"broadcastjob-controller-uid\\\":\\\"u\\\"}\": \"broadcastjob-name\" and \"broadcastjob-controller-uid\" are not allowed to preset in pod labels",
            ),
        ];
        for (rule, name, extra, want) in cases {
            match decide(&job("v1beta1", name, extra)).unwrap() {
                Verdict::Deny(m) | Verdict::DenyWithCode(_, m) => assert_eq!(m, want, "{rule}"),
                other => panic!("{rule}: expected a refusal, got {other:?}"),
            }
        }
    }

    #[test]
    fn two_errors_are_aggregated_in_brackets() {
        let got = decide(&job(
            "v1alpha1",
            "j",
            json!({"completionPolicy": {"type": "Never", "ttlSecondsAfterFinished": 5, "activeDeadlineSeconds": 5}}),
        ))
        .unwrap();
        let Verdict::DenyWithCode(403, m) = got else {
            panic!("{got:?}")
        };
        assert!(
            m.starts_with('[')
                && m.contains("ttlSecondsAfterFinished")
                && m.contains("activeDeadlineSeconds"),
            "{m}"
        );
    }

    #[test]
    fn an_undecodable_object_is_an_error_so_it_is_admitted_unchanged() {
        assert!(decide(&json!({"spec": {"parallelism": []}})).is_err());
        assert!(decide(&json!({})).is_err());
    }
}
