//! AdvancedCronJob validation and defaulting at CREATE and UPDATE, both served versions, as
//! OpenKruise's `/validate-apps-kruise-io-advancedcronjob` and
//! `/mutate-apps-kruise-io-advancedcronjob` together (one fail-open webhook, as graft's others).
//!
//! graft serves v1alpha1 with the v1beta1 schema, so both versions decode as v1beta1. Every rule
//! works on the defaulted object, as kruise's validating webhook sees it after its mutating one:
//! - refused with kruise's messages (its aggregate form: one error alone, several in brackets,
//!   duplicates once): `AdvancedCronJob::validate` at CREATE, `validate_update` at UPDATE (only
//!   the schedule, time zone, policies, limits, deadline and `paused` may change);
//! - admitted with a patch adding the defaults the object lacks (`AdvancedCronJobSpec::defaulted`,
//!   the one home of the rule). The pod templates are not defaulted (OpenKruise with
//!   `TemplateNoDefaults` on; graft behaves as OpenKruise with every gate on).

use futures::future::BoxFuture;
use graft_api::apps::v1beta1::AdvancedCronJob;
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, Operation};
use serde_json::Value;

use super::statefulset::aggregate;
use super::{fill_missing, object_json, patch_between};
use crate::error::HandlerError;
use crate::server::{Handler, Verdict, Webhook, request_key, rule};

/// Path of the AdvancedCronJob webhook (OpenKruise's mutating one).
pub const PATH: &str = "/mutate-apps-kruise-io-advancedcronjob";

/// The AdvancedCronJob webhook (stateless).
pub struct AdvancedCronJobHandler;

impl Handler for AdvancedCronJobHandler {
    fn webhook(&self) -> Webhook {
        Webhook {
            name: "madvancedcronjob.graft.dev",
            path: PATH,
            rules: vec![rule(
                "apps.kruise.io",
                &["v1alpha1", "v1beta1"],
                "advancedcronjobs",
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
            let object = object_json(req, false, "AdvancedCronJob")?;
            let older = match req.operation {
                Operation::Update => Some(object_json(req, true, "AdvancedCronJob")?),
                _ => None,
            };
            decide(&object, older.as_ref()).map_err(|reason| HandlerError::Decode {
                kind: "AdvancedCronJob",
                key: request_key(req),
                reason,
            })
        })
    }
}

fn decode(object: &Value) -> Result<AdvancedCronJob, String> {
    let mut o: AdvancedCronJob =
        serde_json::from_value(object.clone()).map_err(|e| e.to_string())?;
    o.spec = o.spec.defaulted();
    Ok(o)
}

/// The verdict for `object` (`older`: the stored object on UPDATE). An `Err` is an object that
/// does not decode: it is admitted unchanged (the API server's schema refuses it).
pub fn decide(object: &Value, older: Option<&Value>) -> Result<Verdict, String> {
    let new = decode(object)?;
    let errs = match older {
        Some(old) => new.validate_update(&decode(old)?),
        None => new.validate(),
    };
    if !errs.is_empty() {
        return Ok(Verdict::DenyWithCode(422, aggregate(&errs)));
    }
    let defaulted = serde_json::to_value(&new.spec).map_err(|e| e.to_string())?;
    let mut after = object.clone();
    match after.get_mut("spec") {
        Some(s) => fill_missing(s, &defaulted),
        None => return Err("the object has no spec".into()),
    }
    Ok(patch_between(object, &after))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use serde_json::json;

    fn acj(version: &str, spec_extra: Value) -> Value {
        let mut spec = json!({
            "schedule": "*/5 * * * *",
            "template": {"jobTemplate": {"spec": {"template": {"spec": {
                "restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}}}
        });
        if let (Some(s), Some(extra)) = (spec.as_object_mut(), spec_extra.as_object()) {
            for (k, v) in extra {
                s.insert(k.clone(), v.clone());
            }
        }
        json!({"apiVersion": format!("apps.kruise.io/{version}"), "kind": "AdvancedCronJob",
               "metadata": {"name": "nightly", "namespace": "ns"}, "spec": spec})
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

    fn denied(v: Verdict) -> String {
        match v {
            Verdict::Deny(m) | Verdict::DenyWithCode(_, m) => m,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn defaults_are_added_in_either_version() {
        for version in ["v1alpha1", "v1beta1"] {
            assert_eq!(
                patch_json(&decide(&acj(version, json!({})), None).unwrap()),
                json!([
                    {"op": "add", "path": "/spec/concurrencyPolicy", "value": "Allow"},
                    {"op": "add", "path": "/spec/failedJobsHistoryLimit", "value": 1},
                    {"op": "add", "path": "/spec/paused", "value": false},
                    {"op": "add", "path": "/spec/successfulJobsHistoryLimit", "value": 3}
                ]),
                "{version}"
            );
        }
        let set = acj(
            "v1beta1",
            json!({"concurrencyPolicy": "Forbid", "paused": true,
                "successfulJobsHistoryLimit": 0, "failedJobsHistoryLimit": 0}),
        );
        assert_eq!(decide(&set, None).unwrap(), Verdict::Allow);
    }

    /// (rule, spec fields, kruise's message)
    #[test]
    fn refusals_table() {
        let cases: Vec<(&str, Value, &str)> = vec![
            (
                "a bad schedule",
                json!({"schedule": "* * *"}),
                "spec.schedule: Invalid value: \"* * *\": expected exactly 5 fields, found 3: [* * *]",
            ),
            (
                "an unknown time zone",
                json!({"timeZone": "Moon/Base"}),
                "spec.timeZone: Invalid value: \"Moon/Base\": unknown time zone Moon/Base",
            ),
            (
                "two errors, in brackets",
                json!({"schedule": "", "startingDeadlineSeconds": -5}),
                "[spec.schedule: Invalid value: \"\": schedule cannot be empty, please provide valid cron schedule., spec.schedule: Invalid value: \"\": empty spec string, spec.startingDeadlineSeconds: Invalid value: -5: must be greater than or equal to 0]",
            ),
            (
                "no template",
                json!({"template": {}}),
                "spec.template: Forbidden: spec must have one template, either JobTemplate or BroadcastJobTemplate or ImageListPullJobTemplate should be provided",
            ),
        ];
        for (rule, extra, want) in cases {
            assert_eq!(
                denied(decide(&acj("v1beta1", extra), None).unwrap()),
                want,
                "{rule}"
            );
        }
        let mut dotted = acj("v1alpha1", json!({}));
        dotted["metadata"]["name"] = json!("nightly.v1");
        assert!(denied(decide(&dotted, None).unwrap()).starts_with(
            "metadata.name: Invalid value: \"nightly.v1\": AdvancedCronJob name must consist of alphanumeric characters or '-'"
        ));
    }

    #[test]
    fn updates_may_change_the_schedule_but_not_the_template() {
        let old = acj("v1beta1", json!({}));
        let mut new = old.clone();
        new["spec"]["schedule"] = json!("@hourly");
        new["spec"]["paused"] = json!(true);
        assert!(matches!(
            decide(&new, Some(&old)).unwrap(),
            Verdict::Patch(_) | Verdict::Allow
        ));
        new["spec"]["template"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["image"] =
            json!("busybox:2");
        assert_eq!(
            denied(decide(&new, Some(&old)).unwrap()),
            format!(
                "spec: Forbidden: {}",
                graft_api::apps::v1beta1::advancedcronjob::FORBIDDEN_UPDATE
            )
        );
        // an invalid schedule on update is refused like on create
        let mut bad = old.clone();
        bad["spec"]["schedule"] = json!("nope");
        assert_eq!(
            denied(decide(&bad, Some(&old)).unwrap()),
            "spec.schedule: Invalid value: \"nope\": expected exactly 5 fields, found 1: [nope]"
        );
    }

    #[test]
    fn an_undecodable_object_is_an_error_so_it_is_admitted_unchanged() {
        let mut obj = acj("v1beta1", json!({}));
        obj["spec"]["concurrencyPolicy"] = json!("Sometimes");
        assert!(decide(&obj, None).is_err());
        assert!(decide(&json!({"metadata": {}}), None).is_err());
    }
}
