//! Advanced StatefulSet validation and defaulting at CREATE and UPDATE, both served versions, as
//! OpenKruise's `/validate-apps-kruise-io-statefulset` and `/mutate-apps-kruise-io-statefulset`
//! together (one fail-open webhook, as graft's others).
//!
//! Like kruise, every rule works on the v1beta1 form (a v1alpha1 object is converted as kruise
//! converts it) after the mutating webhook's defaults:
//! - refused with kruise's messages (its aggregate form: one error alone, several in brackets,
//!   duplicates once): the name and spec rules (`validateStatefulSet`) and, on UPDATE, the
//!   immutable fields (`ValidateStatefulSetUpdate`); then, with `volumeClaimUpdateStrategy:
//!   OnPodRollingUpdate`, PVC template changes other than a size change on a class that allows
//!   expansion; then, with `InPlaceOnly`, template changes other than images.
//! - admitted with a patch adding the defaults the object lacks (`StatefulSetSpec::defaulted`,
//!   the one home of the rule), in the object's own version: a v1alpha1 object gets no v1beta1
//!   field. The pod template is not defaulted (OpenKruise with `TemplateNoDefaults` on; graft
//!   behaves as OpenKruise with every gate on).
//!
//! Reading the StorageClasses is the only API call; when it fails the request is admitted
//! unchanged (fail open), where kruise would refuse it.

use futures::future::BoxFuture;
use graft_api::apps::common::PodUpdatePolicy;
use graft_api::apps::statefulset_conversion::{self as conversion, V1ALPHA1, V1BETA1};
use graft_api::apps::v1alpha1::statefulset as alpha;
use graft_api::apps::v1beta1::statefulset::{self as beta, StatefulSetUpdateStrategyType};
use graft_api::apps::v1beta1::statefulset_validation::{
    StorageClassLookup, in_place_only_message, validate_template_in_place_only,
    validate_volume_claim_template_update,
};
use graft_api::field::FieldErrors;
use k8s_openapi::api::storage::v1::StorageClass;
use kube::Api;
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, Operation};
use serde_json::Value;

use super::{fill_missing, object_json, patch_between};
use crate::error::HandlerError;
use crate::server::{Handler, Verdict, Webhook, request_key, rule};

/// Path of the StatefulSet webhook (OpenKruise's mutating one).
pub const PATH: &str = "/mutate-apps-kruise-io-statefulset";

/// Annotation marking the cluster's default StorageClass.
pub const DEFAULT_CLASS_ANNOTATION: &str = "storageclass.kubernetes.io/is-default-class";

/// The Advanced StatefulSet webhook; reads StorageClasses for PVC template resizes.
pub struct StatefulSetHandler {
    client: kube::Client,
}

impl StatefulSetHandler {
    /// A handler reading StorageClasses with this client.
    pub fn new(client: kube::Client) -> StatefulSetHandler {
        StatefulSetHandler { client }
    }
}

impl Handler for StatefulSetHandler {
    fn webhook(&self) -> Webhook {
        Webhook {
            name: "mstatefulset.graft.dev",
            path: PATH,
            rules: vec![rule(
                "apps.kruise.io",
                &["v1alpha1", "v1beta1"],
                "statefulsets",
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
            let key = request_key(req);
            let object = object_json(req, false, "StatefulSet")?;
            let older = match req.operation {
                Operation::Update => Some(object_json(req, true, "StatefulSet")?),
                _ => None,
            };
            let classes = if older.is_some() && resizes_on_rolling_update(&object) {
                let list = Api::<StorageClass>::all(self.client.clone())
                    .list(&Default::default())
                    .await
                    .map_err(|source| HandlerError::Read {
                        what: "storageclasses".into(),
                        key: key.clone(),
                        source,
                    })?;
                list.items
            } else {
                Vec::new()
            };
            decide(&object, older.as_ref(), &classes).map_err(|reason| HandlerError::Decode {
                kind: "StatefulSet",
                key,
                reason,
            })
        })
    }
}

/// Whether the object asks for PVC templates to follow rolling updates (then an UPDATE needs
/// the StorageClasses).
fn resizes_on_rolling_update(object: &Value) -> bool {
    object
        .pointer("/spec/volumeClaimUpdateStrategy/type")
        .and_then(Value::as_str)
        == Some("OnPodRollingUpdate")
}

/// The verdict for `object` (`older`: the stored object on UPDATE; `classes`: the cluster's
/// StorageClasses, read when [`resizes_on_rolling_update`]). An `Err` is an object that does
/// not decode: it is admitted unchanged.
pub fn decide(
    object: &Value,
    older: Option<&Value>,
    classes: &[StorageClass],
) -> Result<Verdict, String> {
    let new = to_v1beta1(object)?;
    let spec = new.spec.defaulted();
    let old = older.map(to_v1beta1).transpose()?.map(|mut o| {
        o.spec = o.spec.defaulted();
        o
    });
    let new = beta::StatefulSet {
        spec: spec.clone(),
        ..new
    };
    let mut errs = new.validate_defaulted();
    if let Some(old) = &old {
        errs.extend(new.validate_update(old));
    }
    if !errs.is_empty() {
        return Ok(Verdict::DenyWithCode(422, aggregate(&errs)));
    }
    if let Some(old) = &old {
        let lookup = |name: Option<&str>| storage_class(classes, name);
        let vct = validate_volume_claim_template_update(&new.spec, &old.spec, &lookup);
        if !vct.is_empty() {
            return Ok(Verdict::DenyWithCode(422, aggregate(&vct)));
        }
        let in_place_only = new
            .spec
            .update_strategy
            .as_ref()
            .filter(|u| u.type_ == Some(StatefulSetUpdateStrategyType::RollingUpdate))
            .and_then(|u| u.rolling_update.as_ref())
            .is_some_and(|r| r.pod_update_policy == Some(PodUpdatePolicy::InPlaceOnly));
        if in_place_only
            && let Err(detail) =
                validate_template_in_place_only(&old.spec.template, &new.spec.template)
        {
            return Ok(Verdict::DenyWithCode(422, in_place_only_message(&detail)));
        }
    }
    let defaulted = if api_version(object) == V1ALPHA1 {
        serde_json::to_value(conversion::spec_to_v1alpha1(spec))
    } else {
        serde_json::to_value(spec)
    }
    .map_err(|e| e.to_string())?;
    let mut after = object.clone();
    match after.get_mut("spec") {
        Some(s) => fill_missing(s, &defaulted),
        None => return Err("the object has no spec".into()),
    }
    Ok(patch_between(object, &after))
}

fn api_version(object: &Value) -> &str {
    object
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// The v1beta1 form of an object of either version, as kruise's `ConvertTo` makes it.
fn to_v1beta1(object: &Value) -> Result<beta::StatefulSet, String> {
    match api_version(object) {
        V1ALPHA1 => serde_json::from_value::<alpha::StatefulSet>(object.clone())
            .map(conversion::to_v1beta1)
            .map_err(|e| e.to_string()),
        V1BETA1 => serde_json::from_value(object.clone()).map_err(|e| e.to_string()),
        other => Err(format!("unsupported apiVersion {other:?}")),
    }
}

/// A StorageClass by name, or the default one (the newest marked default) for `None`, as
/// kruise's `GetDefaultStorageClass` picks it.
pub fn storage_class(classes: &[StorageClass], name: Option<&str>) -> StorageClassLookup {
    let found = |c: &StorageClass| StorageClassLookup::Found {
        name: c.metadata.name.clone().unwrap_or_default(),
        allow_volume_expansion: c.allow_volume_expansion,
    };
    match name {
        Some(n) => classes
            .iter()
            .find(|c| c.metadata.name.as_deref() == Some(n))
            .map_or(StorageClassLookup::Missing, found),
        None => classes
            .iter()
            .filter(|c| {
                c.metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(DEFAULT_CLASS_ANNOTATION))
                    .is_some_and(|v| v == "true")
            })
            .max_by_key(|c| c.metadata.creation_timestamp.as_ref().map(|t| t.0))
            .map_or(StorageClassLookup::Missing, found),
    }
}

/// Go's `ErrorList.ToAggregate().Error()`: duplicates once, one error alone, several in brackets.
pub fn aggregate(errs: &FieldErrors) -> String {
    let mut msgs: Vec<String> = Vec::new();
    for e in errs.iter() {
        let m = e.to_string();
        if !msgs.contains(&m) {
            msgs.push(m);
        }
    }
    match msgs.as_slice() {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use serde_json::json;

    fn sts(version: &str, spec_extra: Value) -> Value {
        let mut spec = json!({
            "selector": {"matchLabels": {"app": "db"}},
            "serviceName": "db",
            "template": {
                "metadata": {"labels": {"app": "db"}},
                "spec": {"containers": [{"name": "db", "image": "redis:7"}]}
            }
        });
        if let (Some(s), Some(extra)) = (spec.as_object_mut(), spec_extra.as_object()) {
            for (k, v) in extra {
                s.insert(k.clone(), v.clone());
            }
        }
        json!({"apiVersion": format!("apps.kruise.io/{version}"), "kind": "StatefulSet",
               "metadata": {"name": "db", "namespace": "ns"}, "spec": spec})
    }

    fn patch_json(v: &Verdict) -> Value {
        let mut got = match v {
            Verdict::Patch(p) => serde_json::to_value(p).unwrap(),
            Verdict::Allow => json!([]),
            Verdict::Deny(m) | Verdict::DenyWithCode(_, m) => panic!("unexpected deny: {m}"),
        };
        // json-patch's diff order is not part of the contract: compare sorted by path.
        if let Some(a) = got.as_array_mut() {
            a.sort_by_key(|op| op["path"].as_str().unwrap_or_default().to_string());
        }
        got
    }

    fn patched(object: &Value) -> Value {
        let mut out = object.clone();
        if let Verdict::Patch(p) = decide(object, None, &[]).unwrap() {
            json_patch::patch(&mut out, &p).unwrap();
        }
        out
    }

    /// (rule, version, spec fields, expected JSON patch)
    #[test]
    fn defaults_table() {
        let cases: Vec<(&str, &str, Value, Value)> = vec![
            (
                "a bare v1beta1 spec gets every default",
                "v1beta1",
                json!({}),
                json!([
                    {"op": "add", "path": "/spec/persistentVolumeClaimRetentionPolicy", "value": {"whenDeleted": "Retain", "whenScaled": "Retain"}},
                    {"op": "add", "path": "/spec/podManagementPolicy", "value": "OrderedReady"},
                    {"op": "add", "path": "/spec/replicas", "value": 1},
                    {"op": "add", "path": "/spec/revisionHistoryLimit", "value": 10},
                    {"op": "add", "path": "/spec/updateStrategy", "value": {"type": "RollingUpdate", "rollingUpdate":
                        {"partition": 0, "maxUnavailable": 1, "podUpdatePolicy": "ReCreate", "minReadySeconds": 0}}},
                    {"op": "add", "path": "/spec/volumeClaimUpdateStrategy", "value": {"type": "OnDelete"}}
                ]),
            ),
            (
                "a bare v1alpha1 spec gets the same, without the v1beta1 fields",
                "v1alpha1",
                json!({}),
                json!([
                    {"op": "add", "path": "/spec/podManagementPolicy", "value": "OrderedReady"},
                    {"op": "add", "path": "/spec/replicas", "value": 1},
                    {"op": "add", "path": "/spec/revisionHistoryLimit", "value": 10},
                    {"op": "add", "path": "/spec/updateStrategy", "value": {"type": "RollingUpdate", "rollingUpdate":
                        {"partition": 0, "maxUnavailable": 1, "podUpdatePolicy": "ReCreate", "minReadySeconds": 0}}}
                ]),
            ),
            (
                "as the API server sends it (schema defaults applied): the rollingUpdate block",
                "v1beta1",
                json!({"replicas": 3, "podManagementPolicy": "OrderedReady", "revisionHistoryLimit": 10,
                    "updateStrategy": {"type": "RollingUpdate"},
                    "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"},
                    "volumeClaimUpdateStrategy": {"type": "OnDelete"}}),
                json!([{"op": "add", "path": "/spec/updateStrategy/rollingUpdate", "value":
                    {"partition": 0, "maxUnavailable": 1, "podUpdatePolicy": "ReCreate", "minReadySeconds": 0}}]),
            ),
            (
                "OnDelete gets no rollingUpdate",
                "v1alpha1",
                json!({"replicas": 3, "podManagementPolicy": "Parallel", "revisionHistoryLimit": 10,
                    "updateStrategy": {"type": "OnDelete"}}),
                json!([]),
            ),
            (
                "values the user set are kept",
                "v1beta1",
                json!({"replicas": 0, "podManagementPolicy": "Parallel", "revisionHistoryLimit": 2,
                    "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 1,
                        "maxUnavailable": "50%", "podUpdatePolicy": "ReCreate", "minReadySeconds": 5}},
                    "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Delete", "whenScaled": "Delete"},
                    "volumeClaimUpdateStrategy": {"type": "OnPodRollingUpdate"}}),
                json!([]),
            ),
        ];
        for (rule, version, extra, want) in cases {
            let got = decide(&sts(version, extra), None, &[]).unwrap();
            assert_eq!(patch_json(&got), want, "{rule}");
        }
    }

    #[test]
    fn the_pod_template_is_not_defaulted() {
        let got = patch_json(&decide(&sts("v1beta1", json!({})), None, &[]).unwrap());
        assert!(
            got.as_array()
                .unwrap()
                .iter()
                .all(|op| !op["path"].as_str().unwrap().starts_with("/spec/template")),
            "{got}"
        );
    }

    fn denied(v: Verdict) -> String {
        match v {
            Verdict::Deny(m) | Verdict::DenyWithCode(_, m) => m,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    /// (rule, version, spec fields, kruise's message)
    #[test]
    fn refusals_table() {
        let cases: Vec<(&str, &str, Value, &str)> = vec![
            (
                "in place without the readiness gate (v1alpha1)",
                "v1alpha1",
                json!({"updateStrategy": {"rollingUpdate": {"podUpdatePolicy": "InPlaceIfPossible"}}}),
                "spec.template.spec.readinessGates: Invalid value: \"null\": must contains InPlaceUpdateReady when podUpdatePolicy is InPlaceIfPossible",
            ),
            (
                "maxUnavailable other than 1 without Parallel",
                "v1beta1",
                json!({"updateStrategy": {"rollingUpdate": {"maxUnavailable": 2}}}),
                "spec.updateStrategy.rollingUpdate.maxUnavailable: Invalid value: \"2\": can only work with Parallel PodManagementPolicyType",
            ),
            (
                "unorderedUpdate without Parallel",
                "v1beta1",
                json!({"updateStrategy": {"rollingUpdate": {"unorderedUpdate": {}}}}),
                "spec.updateStrategy.rollingUpdate.unorderedUpdate: Required value: unorderedUpdate can only work with Parallel PodManagementPolicyType",
            ),
            (
                "two errors, in brackets",
                "v1beta1",
                json!({"replicas": -1, "updateStrategy": {"rollingUpdate": {"minReadySeconds": 301}}}),
                "[spec.updateStrategy.rollingUpdate.minReadySeconds: Invalid value: \"301\": must be no more than 300 seconds, spec.replicas: Invalid value: \"-1\": must be greater than or equal to 0]",
            ),
            (
                "a bad reserved ordinal",
                "v1beta1",
                json!({"reserveOrdinals": [-1]}),
                "spec: Invalid value: \"[-1]\": 0 th reserve ordinal is negative: -1",
            ),
            (
                "a template label key that is no qualified name (v1alpha1)",
                "v1alpha1",
                json!({"template": {"metadata": {"labels": {"app": "db", "a b": "x"}},
                    "spec": {"containers": [{"name": "db", "image": "redis:7"}]}}}),
                "spec.template.labels: Invalid value: \"a b\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
            ),
        ];
        for (rule, version, extra, want) in cases {
            assert_eq!(
                denied(decide(&sts(version, extra), None, &[]).unwrap()),
                want,
                "{rule}"
            );
        }
    }

    #[test]
    fn names_are_dns_labels_and_come_first() {
        let mut obj = sts("v1beta1", json!({"replicas": -1}));
        obj["metadata"]["name"] = json!("db.v1");
        assert_eq!(
            denied(decide(&obj, None, &[]).unwrap()),
            "[metadata.name: Invalid value: \"db.v1\": must not contain dots, spec.replicas: Invalid value: \"-1\": must be greater than or equal to 0]"
        );
        // Not even a subdomain: admitted here, for the API server to refuse in its own words.
        obj["metadata"]["name"] = json!("DB");
        obj["spec"]["replicas"] = json!(1);
        assert!(matches!(
            decide(&obj, None, &[]).unwrap(),
            Verdict::Patch(_) | Verdict::Allow
        ));
    }

    #[test]
    fn updates_refuse_immutable_fields_once() {
        let old = patched(&sts("v1beta1", json!({})));
        let mut new = old.clone();
        new["spec"]["serviceName"] = json!("other");
        new["spec"]["replicas"] = json!(-1);
        assert_eq!(
            denied(decide(&new, Some(&old), &[]).unwrap()),
            format!(
                "[spec.replicas: Invalid value: \"-1\": must be greater than or equal to 0, spec: Forbidden: {}]",
                graft_api::apps::v1beta1::statefulset_validation::FORBIDDEN_UPDATE
            )
        );
        // mutable fields, and a v1alpha1 client updating a stored object, are fine
        let mut new = old.clone();
        new["spec"]["replicas"] = json!(5);
        new["spec"]["reserveOrdinals"] = json!([0]);
        assert_eq!(decide(&new, Some(&old), &[]).unwrap(), Verdict::Allow);
        let old_alpha = patched(&sts("v1alpha1", json!({})));
        let mut new_alpha = old_alpha.clone();
        new_alpha["spec"]["template"]["spec"]["containers"][0]["image"] = json!("redis:8");
        assert_eq!(
            decide(&new_alpha, Some(&old_alpha), &[]).unwrap(),
            Verdict::Allow
        );
        new_alpha["spec"]["podManagementPolicy"] = json!("Parallel");
        assert!(
            denied(decide(&new_alpha, Some(&old_alpha), &[]).unwrap())
                .starts_with("spec: Forbidden")
        );
    }

    #[test]
    fn in_place_only_updates_change_images_only() {
        let gates = json!({"metadata": {"labels": {"app": "db"}}, "spec": {
            "readinessGates": [{"conditionType": "InPlaceUpdateReady"}],
            "containers": [{"name": "db", "image": "redis:7"}]}});
        let old = patched(&sts(
            "v1beta1",
            json!({"template": gates, "updateStrategy": {"rollingUpdate": {"podUpdatePolicy": "InPlaceOnly"}}}),
        ));
        let mut new = old.clone();
        new["spec"]["template"]["spec"]["containers"][0]["image"] = json!("redis:8");
        assert_eq!(decide(&new, Some(&old), &[]).unwrap(), Verdict::Allow);
        new["spec"]["template"]["spec"]["containers"][0]["args"] = json!(["--x"]);
        assert_eq!(
            denied(decide(&new, Some(&old), &[]).unwrap()),
            "invalid template modified with InPlaceOnly strategy: add /containers/0/args, currently only image update is allowed for InPlaceOnly"
        );
    }

    fn class(name: &str, default: bool, created: &str, expand: Option<bool>) -> StorageClass {
        let mut v = json!({"metadata": {"name": name, "creationTimestamp": created},
            "provisioner": "example.com/p"});
        if default {
            v["metadata"]["annotations"] = json!({DEFAULT_CLASS_ANNOTATION: "true"});
        }
        if let Some(e) = expand {
            v["allowVolumeExpansion"] = json!(e);
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn pvc_templates_grow_only_where_the_class_allows() {
        let vct = |size: &str| {
            json!([{"metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}}}])
        };
        let with = |size: &str| {
            patched(&sts(
                "v1beta1",
                json!({"volumeClaimTemplates": vct(size),
                    "volumeClaimUpdateStrategy": {"type": "OnPodRollingUpdate"}}),
            ))
        };
        let (old, new) = (with("1Gi"), with("2Gi"));
        assert!(resizes_on_rolling_update(&new));
        let fixed = [
            class("old-default", true, "2026-01-01T00:00:00Z", None),
            class("new-default", true, "2026-02-01T00:00:00Z", Some(false)),
        ];
        assert_eq!(
            denied(decide(&new, Some(&old), &fixed).unwrap()),
            "spec.volumeClaimTemplates[data].spec.resources.requests.storage: Forbidden: storage class new-default does not support volume expansion"
        );
        // no default class: nothing to check against
        assert_eq!(decide(&new, Some(&old), &[]).unwrap(), Verdict::Allow);
        assert_eq!(
            storage_class(&fixed, Some("old-default")),
            StorageClassLookup::Found {
                name: "old-default".into(),
                allow_volume_expansion: None
            }
        );
        assert_eq!(
            storage_class(&fixed, Some("nope")),
            StorageClassLookup::Missing
        );
    }

    #[test]
    fn aggregate_drops_duplicates() {
        let mut errs = FieldErrors::default();
        let e = graft_api::field::FieldError::required("spec.selector", "");
        errs.push(e.clone());
        errs.push(e);
        assert_eq!(aggregate(&errs), "spec.selector: Required value");
    }

    #[test]
    fn an_undecodable_object_is_an_error_so_it_is_admitted_unchanged() {
        let mut obj = sts("v1beta1", json!({}));
        obj["spec"]["replicas"] = json!("three");
        assert!(decide(&obj, None, &[]).is_err());
        assert!(decide(&json!({"apiVersion": "apps.kruise.io/v2"}), None, &[]).is_err());
    }
}
