//! Names of Kubernetes objects as the sync sees them: with and without the API version.

use std::fmt;

use graft_api::graft::gitsync::InventoryEntry;
use serde_json::Value;

/// Identity of an object: group, kind, namespace and name. Two manifests with the same identity
/// describe the same live object, whatever their API versions.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectId {
    /// API group (empty for the core group).
    pub group: String,
    /// Kind.
    pub kind: String,
    /// Namespace (`None` for cluster-scoped objects, or when the manifest names none).
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
}

impl fmt::Display for ObjectId {
    /// `Kind.group namespace/name` (`Kind namespace/name` for the core group).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.kind)?;
        if !self.group.is_empty() {
            write!(f, ".{}", self.group)?;
        }
        match &self.namespace {
            Some(ns) => write!(f, " {ns}/{}", self.name),
            None => write!(f, " {}", self.name),
        }
    }
}

/// A reference to an object with its API version: what the inventory in the GitSync status
/// stores for every applied object.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectRef {
    /// API group (empty for the core group).
    pub group: String,
    /// API version without the group (`v1`, `v1alpha1`).
    pub version: String,
    /// Kind.
    pub kind: String,
    /// Namespace (`None` for cluster-scoped objects).
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
}

impl ObjectRef {
    /// Reads `apiVersion`, `kind`, `metadata.namespace` and `metadata.name` of an object;
    /// `None` when `apiVersion`, `kind` or `metadata.name` is missing or empty.
    pub fn from_object(obj: &Value) -> Option<Self> {
        let api_version = non_empty_str(obj.get("apiVersion"))?;
        let kind = non_empty_str(obj.get("kind"))?;
        let meta = obj.get("metadata")?;
        let name = non_empty_str(meta.get("name"))?;
        let namespace = non_empty_str(meta.get("namespace")).map(str::to_string);
        let (group, version) = split_api_version(api_version);
        Some(Self {
            group: group.to_string(),
            version: version.to_string(),
            kind: kind.to_string(),
            namespace,
            name: name.to_string(),
        })
    }

    /// The identity of the object (the reference without its version).
    pub fn id(&self) -> ObjectId {
        ObjectId {
            group: self.group.clone(),
            kind: self.kind.clone(),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
        }
    }

    /// `group/version`, or `version` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

impl fmt::Display for ObjectRef {
    /// `Kind.group namespace/name`, as [`ObjectId`] shows it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.id().fmt(f)
    }
}

impl From<&InventoryEntry> for ObjectRef {
    fn from(e: &InventoryEntry) -> Self {
        Self {
            group: e.group.clone(),
            version: e.version.clone(),
            kind: e.kind.clone(),
            namespace: e.namespace.clone().filter(|n| !n.is_empty()),
            name: e.name.clone(),
        }
    }
}

impl From<&ObjectRef> for InventoryEntry {
    fn from(r: &ObjectRef) -> Self {
        Self {
            group: r.group.clone(),
            version: r.version.clone(),
            kind: r.kind.clone(),
            namespace: r.namespace.clone(),
            name: r.name.clone(),
        }
    }
}

/// Splits `apps/v1` into (`apps`, `v1`) and `v1` into (``, `v1`).
pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.rsplit_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    }
}

fn non_empty_str(v: Option<&Value>) -> Option<&str> {
    v.and_then(Value::as_str).filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_refs_and_round_trips_through_the_inventory() {
        let obj = json!({"apiVersion": "apps.kruise.io/v1alpha1", "kind": "CloneSet",
            "metadata": {"name": "web", "namespace": "demo"}});
        let r = ObjectRef::from_object(&obj).unwrap();
        assert_eq!(r.group, "apps.kruise.io");
        assert_eq!(r.version, "v1alpha1");
        assert_eq!(r.api_version(), "apps.kruise.io/v1alpha1");
        assert_eq!(r.to_string(), "CloneSet.apps.kruise.io demo/web");
        let e = InventoryEntry::from(&r);
        assert_eq!(ObjectRef::from(&e), r);

        let core = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "demo"}});
        let r = ObjectRef::from_object(&core).unwrap();
        assert_eq!((r.group.as_str(), r.api_version().as_str()), ("", "v1"));
        assert_eq!(r.to_string(), "Namespace demo");

        for bad in [
            json!({"kind": "X", "metadata": {"name": "a"}}),
            json!({"apiVersion": "v1", "metadata": {"name": "a"}}),
            json!({"apiVersion": "v1", "kind": "X", "metadata": {"name": ""}}),
            json!({"apiVersion": "v1", "kind": "X"}),
        ] {
            assert_eq!(ObjectRef::from_object(&bad), None, "{bad}");
        }
    }
}
