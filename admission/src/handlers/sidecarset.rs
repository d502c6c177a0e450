//! SidecarSet defaulting and hashing at CREATE and UPDATE, as OpenKruise's
//! `/mutate-apps-kruise-io-v1alpha1-sidecarset`: the spec's defaults, then the
//! `kruise.io/sidecarset-hash` and `kruise.io/sidecarset-hash-without-image` annotations that pods
//! are compared against. Both served versions come here; the hash is taken of the v1beta1 form
//! (a v1alpha1 object converted as OpenKruise converts it), which is the same bytes for both.
//!
//! When graft's server does not answer, the object is stored without them; injection and the
//! SidecarSet controller then compute the same hashes themselves.

use futures::future::BoxFuture;
use graft_api::apps::v1beta1::sidecarset::SidecarSet;
use graft_api::labels;
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, Operation};
use serde_json::Value;

use super::{fill_missing, object_json, patch_between};
use crate::error::HandlerError;
use crate::server::{Handler, Verdict, Webhook, rule};

/// Path of the SidecarSet webhook (OpenKruise's).
pub const PATH: &str = "/mutate-apps-kruise-io-v1alpha1-sidecarset";

/// The SidecarSet webhook: OpenKruise's validation (the spec's own rules, then collisions with
/// the other SidecarSets from the cache), then defaults and hashes.
pub struct SidecarSetHandler {
    sidecarsets: kube::runtime::reflector::Store<SidecarSet>,
}

impl SidecarSetHandler {
    /// A handler comparing against the SidecarSets in `sidecarsets`.
    pub fn new(sidecarsets: kube::runtime::reflector::Store<SidecarSet>) -> SidecarSetHandler {
        SidecarSetHandler { sidecarsets }
    }
}

impl Handler for SidecarSetHandler {
    fn webhook(&self) -> Webhook {
        let mut r = rule(
            "apps.kruise.io",
            &["v1alpha1", "v1beta1"],
            "sidecarsets",
            &["CREATE", "UPDATE"],
        );
        r.scope = Some("Cluster".to_string());
        Webhook {
            name: "msidecarset.graft.dev",
            path: PATH,
            rules: vec![r],
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
            let object = object_json(req, false, "SidecarSet")?;
            let older = match req.operation {
                Operation::Update => object_json(req, true, "SidecarSet").ok(),
                _ => None,
            };
            let others: Vec<SidecarSet> = self
                .sidecarsets
                .state()
                .iter()
                .map(|s| s.converted())
                .collect();
            if let Some(refusal) = refusal(&object, older.as_ref(), &others) {
                return Ok(Verdict::DenyWithCode(403, refusal));
            }
            defaults_and_hashes(&object).map_err(|reason| HandlerError::Decode {
                kind: "SidecarSet",
                key: req.name.clone(),
                reason,
            })
        })
    }
}

/// Why OpenKruise's validating webhook would refuse this SidecarSet, if it would: its name, its
/// spec's rules, a canary's base (`older` is the stored object on an update), then collisions with
/// the overlapping SidecarSets among `others`. An object that does not decode is left to the API
/// server's schema.
pub fn refusal(object: &Value, older: Option<&Value>, others: &[SidecarSet]) -> Option<String> {
    let set: SidecarSet = serde_json::from_value(object.clone()).ok()?;
    let set = set.converted();
    let name = set.metadata.name.clone().unwrap_or_default();
    let mut errs = graft_api::apps::v1beta1::sidecarset::validate_name(&name);
    errs.0.extend(set.spec.defaulted().validate().0);
    if !errs.is_empty() {
        return Some(format!("SidecarSet {name} is invalid: {errs}"));
    }
    let older: Option<SidecarSet> = older
        .and_then(|o| serde_json::from_value::<SidecarSet>(o.clone()).ok())
        .map(|o| o.converted());
    graft_controllers::sidecarset::validate_canary(&set, older.as_ref(), others)
        .and_then(|()| graft_controllers::sidecarset::validate_against(&set, others))
        .err()
        .map(|why| format!("SidecarSet {name} is invalid: {}", why.join("; ")))
}

/// The patch adding the spec defaults the object lacks and the two hash annotations.
pub fn defaults_and_hashes(object: &Value) -> Result<Verdict, String> {
    let set: SidecarSet = serde_json::from_value(object.clone()).map_err(|e| e.to_string())?;
    let hashed = graft_controllers::sidecarset::hash::default_and_hash(&set.converted())
        .map_err(|e| e.to_string())?;
    let mut after = object.clone();
    let mut defaulted = serde_json::to_value(&hashed.spec).map_err(|e| e.to_string())?;
    // The v1beta1 form's own fields stay out of a v1alpha1 object and the reverse.
    if let Some(d) = defaulted.as_object_mut() {
        d.remove("customVersion");
        d.remove("namespaceSelector");
        d.remove("namespace");
    }
    if let Some(spec) = after.get_mut("spec") {
        fill_missing(spec, &defaulted);
        // fill_missing leaves lists alone: the sidecars and volumes take their defaulted form
        // (podInjectPolicy, shareVolumePolicy, upgradeStrategy, … as kruise's webhook writes).
        for list in ["containers", "initContainers", "volumes"] {
            if spec.get(list).is_some_and(|v| !v.is_null())
                && let Some(d) = defaulted.get(list)
            {
                spec[list] = d.clone();
            }
        }
    }
    let annotations = after
        .pointer_mut("/metadata")
        .and_then(Value::as_object_mut)
        .map(|m| {
            m.entry("annotations")
                .or_insert_with(|| Value::Object(Default::default()))
        })
        .and_then(Value::as_object_mut)
        .ok_or_else(|| "the object has no metadata".to_string())?;
    for key in [
        labels::SIDECARSET_HASH,
        labels::SIDECARSET_HASH_WITHOUT_IMAGE,
    ] {
        let v = hashed
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(key))
            .cloned()
            .unwrap_or_default();
        annotations.insert(key.to_string(), Value::String(v));
    }
    Ok(patch_between(object, &after))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn patched(object: &Value) -> Value {
        let Verdict::Patch(p) = defaults_and_hashes(object).expect("decides") else {
            panic!("expected a patch");
        };
        let mut out = object.clone();
        json_patch::patch(&mut out, &p).expect("the patch applies");
        out
    }

    fn set(version: &str, image: &str) -> Value {
        json!({
            "apiVersion": format!("apps.kruise.io/{version}"), "kind": "SidecarSet",
            "metadata": {"name": "log"},
            "spec": {"selector": {"matchLabels": {"app": "web"}},
                     "containers": [{"name": "log", "image": image}]}
        })
    }

    #[test]
    fn both_versions_get_the_same_hashes_and_the_image_changes_only_one() {
        let a = patched(&set("v1alpha1", "log:v1"));
        let b = patched(&set("v1beta1", "log:v1"));
        let c = patched(&set("v1beta1", "log:v2"));
        let h = |v: &Value, k: &str| {
            v["metadata"]["annotations"][k]
                .as_str()
                .unwrap()
                .to_string()
        };
        assert_eq!(
            h(&a, labels::SIDECARSET_HASH),
            h(&b, labels::SIDECARSET_HASH)
        );
        assert!(!h(&a, labels::SIDECARSET_HASH).is_empty());
        assert_ne!(
            h(&b, labels::SIDECARSET_HASH),
            h(&c, labels::SIDECARSET_HASH)
        );
        assert_eq!(
            h(&b, labels::SIDECARSET_HASH_WITHOUT_IMAGE),
            h(&c, labels::SIDECARSET_HASH_WITHOUT_IMAGE)
        );
        // The hashes are the ones the controller-side code computes.
        let typed: SidecarSet = serde_json::from_value(set("v1beta1", "log:v1")).unwrap();
        let direct = graft_controllers::sidecarset::hash::default_and_hash(&typed).unwrap();
        assert_eq!(
            direct.metadata.annotations.unwrap()[labels::SIDECARSET_HASH],
            h(&b, labels::SIDECARSET_HASH)
        );
    }

    #[test]
    fn a_container_name_another_overlapping_set_injects_is_refused() {
        let mut other: SidecarSet = serde_json::from_value(set("v1beta1", "log:v1")).unwrap();
        other.metadata.name = Some("other".into());
        let why = refusal(&set("v1beta1", "log:v2"), None, &[other]).expect("refused");
        assert!(why.contains("SidecarSet log is invalid"), "{why}");
        assert!(why.contains("log"), "names the container: {why}");
        assert_eq!(refusal(&set("v1beta1", "log:v2"), None, &[]), None);
    }

    #[test]
    fn a_canary_needs_an_existing_base_that_is_not_a_canary_and_never_rolls_out() {
        let canary = |base: &str, strategy: &str| {
            let mut obj = set("v1beta1", "log:v2");
            obj["metadata"]["name"] = json!("log-canary");
            obj["metadata"]["annotations"] = json!({
                "apps.kruise.io/sidecarset-canary": "true",
                "apps.kruise.io/sidecarset-base": base,
            });
            obj["spec"]["updateStrategy"] = json!({"type": strategy});
            obj
        };
        let base: SidecarSet = serde_json::from_value(set("v1beta1", "log:v1")).unwrap();
        // Same container name as its base: allowed, the canary replaces the base at injection.
        assert_eq!(
            refusal(
                &canary("log", "NotUpdate"),
                None,
                std::slice::from_ref(&base)
            ),
            None
        );
        let why = refusal(
            &canary("log", "RollingUpdate"),
            None,
            std::slice::from_ref(&base),
        )
        .expect("refused");
        assert!(
            why.contains("RollingUpdate is not supported for canary sidecarSet"),
            "{why}"
        );
        let why = refusal(
            &canary("nope", "NotUpdate"),
            None,
            std::slice::from_ref(&base),
        )
        .expect("refused");
        assert!(why.contains("fetch base sidecarSet[nope] failed"), "{why}");
        let why = refusal(
            &canary("log-canary", "NotUpdate"),
            None,
            std::slice::from_ref(&base),
        )
        .expect("refused");
        assert!(why.contains("base sidecarSet cannot be itself"), "{why}");
        let mut canary_base: SidecarSet =
            serde_json::from_value(canary("log", "NotUpdate")).unwrap();
        canary_base.metadata.name = Some("other".into());
        let why = refusal(&canary("other", "NotUpdate"), None, &[canary_base]).expect("refused");
        assert!(why.contains("base sidecarSet cannot be canary"), "{why}");
        let mut other_base = base.clone();
        other_base.metadata.name = Some("log2".into());
        let older = canary("log", "NotUpdate");
        let why = refusal(
            &canary("log2", "NotUpdate"),
            Some(&older),
            &[base, other_base],
        )
        .expect("refused");
        assert!(why.contains("is immutable"), "{why}");
    }

    #[test]
    fn a_set_without_selector_is_refused() {
        let mut obj = set("v1beta1", "log:v1");
        obj["spec"].as_object_mut().unwrap().remove("selector");
        let why = refusal(&obj, None, &[]).expect("refused");
        assert!(why.contains("selector"), "{why}");
    }

    #[test]
    fn sidecars_get_their_defaults() {
        let a = patched(&set("v1beta1", "log:v1"));
        assert_eq!(
            a["spec"]["containers"][0]["podInjectPolicy"],
            json!("BeforeAppContainer")
        );
        assert_eq!(a["spec"]["containers"][0]["image"], json!("log:v1"));
    }

    #[test]
    fn a_v1alpha1_object_gets_no_v1beta1_fields() {
        let mut obj = set("v1alpha1", "log:v1");
        obj["spec"]["namespace"] = json!("shop");
        let a = patched(&obj);
        assert!(a["spec"].get("namespaceSelector").is_none(), "{a}");
        assert!(a["spec"].get("customVersion").is_none(), "{a}");
        assert_eq!(a["spec"]["namespace"], json!("shop"));
    }
}
