//! Which REST resource (plural, scope) serves a kind: from discovery, cached, and from the
//! CustomResourceDefinitions of the plan being applied.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use kube::core::ApiResource;
use serde_json::Value;

use crate::plan::ApplyPlan;

/// A kind's REST resource and whether it is namespaced.
pub(super) type Resource = (ApiResource, bool);

/// (group, version, kind).
type Gvk = (String, String, String);

/// Resources found so far; misses are not cached (a CRD may be installed at any time).
#[derive(Debug, Default)]
pub(super) struct Resources {
    known: Mutex<BTreeMap<Gvk, Resource>>,
}

impl Resources {
    pub(super) fn insert(&self, ar: ApiResource, namespaced: bool) {
        if let Ok(mut known) = self.known.lock() {
            known.insert(
                (ar.group.clone(), ar.version.clone(), ar.kind.clone()),
                (ar, namespaced),
            );
        }
    }

    /// The resource of exactly this group, version and kind.
    pub(super) fn get(&self, group: &str, version: &str, kind: &str) -> Option<Resource> {
        let known = self.known.lock().ok()?;
        known
            .get(&(group.to_string(), version.to_string(), kind.to_string()))
            .cloned()
    }

    /// The resource of this group and kind at any served version (to read or delete an object
    /// whose recorded version is no longer served).
    pub(super) fn any_version(&self, group: &str, kind: &str) -> Option<Resource> {
        let known = self.known.lock().ok()?;
        known
            .iter()
            .find(|((g, _, k), _)| g == group && k == kind)
            .map(|(_, r)| r.clone())
    }
}

/// The resources the CustomResourceDefinitions of `plan` define, for every version they serve.
pub(super) fn plan_crds(plan: &ApplyPlan) -> BTreeMap<Gvk, Resource> {
    let mut out = BTreeMap::new();
    for o in plan.objects() {
        let r = &o.reference;
        if r.group != "apiextensions.k8s.io" || r.kind != "CustomResourceDefinition" {
            continue;
        }
        let spec = &o.object["spec"];
        let (Some(group), Some(kind), Some(plural)) = (
            spec["group"].as_str(),
            spec["names"]["kind"].as_str(),
            spec["names"]["plural"].as_str(),
        ) else {
            continue;
        };
        let namespaced = spec["scope"].as_str() != Some("Cluster");
        let versions = spec["versions"].as_array().into_iter().flatten();
        for v in versions {
            if v.get("served").and_then(Value::as_bool) == Some(false) {
                continue;
            }
            let Some(version) = v.get("name").and_then(Value::as_str) else {
                continue;
            };
            let ar = ApiResource {
                group: group.to_string(),
                version: version.to_string(),
                api_version: format!("{group}/{version}"),
                kind: kind.to_string(),
                plural: plural.to_string(),
            };
            out.insert(
                (group.to_string(), version.to_string(), kind.to_string()),
                (ar, namespaced),
            );
        }
    }
    out
}

/// (group, kind) of every kind the CRDs of `plan` define.
pub(super) fn plan_crd_kinds(plan: &ApplyPlan) -> BTreeSet<(String, String)> {
    plan_crds(plan)
        .into_keys()
        .map(|(g, _, k)| (g, k))
        .collect()
}

/// The resource of CustomResourceDefinitions themselves.
pub(super) fn crd_resource() -> ApiResource {
    ApiResource {
        group: "apiextensions.k8s.io".into(),
        version: "v1".into(),
        api_version: "apiextensions.k8s.io/v1".into(),
        kind: "CustomResourceDefinition".into(),
        plural: "customresourcedefinitions".into(),
    }
}

/// The resource of Namespaces.
pub(super) fn namespace_resource() -> ApiResource {
    ApiResource {
        group: String::new(),
        version: "v1".into(),
        api_version: "v1".into(),
        kind: "Namespace".into(),
        plural: "namespaces".into(),
    }
}
