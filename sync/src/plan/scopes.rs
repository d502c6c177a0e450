//! Which kinds are namespaced: from discovery (passed in by the executor), a built-in table
//! for tests and tools, and the CRDs of the commit being planned.

use std::collections::BTreeMap;

use serde_json::Value;

/// Scope of each known kind, by (group, kind).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KindScopes {
    namespaced: BTreeMap<(String, String), bool>,
}

/// Built-in kinds: (group, kind, namespaced).
const BUILTIN: &[(&str, &str, bool)] = &[
    ("", "Namespace", false),
    ("", "Node", false),
    ("", "PersistentVolume", false),
    ("", "Pod", true),
    ("", "Service", true),
    ("", "ConfigMap", true),
    ("", "Secret", true),
    ("", "ServiceAccount", true),
    ("", "PersistentVolumeClaim", true),
    ("", "Endpoints", true),
    ("", "LimitRange", true),
    ("", "ResourceQuota", true),
    ("", "ReplicationController", true),
    ("", "PodTemplate", true),
    ("apps", "Deployment", true),
    ("apps", "StatefulSet", true),
    ("apps", "DaemonSet", true),
    ("apps", "ReplicaSet", true),
    ("apps", "ControllerRevision", true),
    ("batch", "Job", true),
    ("batch", "CronJob", true),
    ("autoscaling", "HorizontalPodAutoscaler", true),
    ("policy", "PodDisruptionBudget", true),
    ("networking.k8s.io", "Ingress", true),
    ("networking.k8s.io", "NetworkPolicy", true),
    ("networking.k8s.io", "IngressClass", false),
    ("discovery.k8s.io", "EndpointSlice", true),
    ("coordination.k8s.io", "Lease", true),
    ("rbac.authorization.k8s.io", "Role", true),
    ("rbac.authorization.k8s.io", "RoleBinding", true),
    ("rbac.authorization.k8s.io", "ClusterRole", false),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding", false),
    ("storage.k8s.io", "StorageClass", false),
    ("storage.k8s.io", "CSIDriver", false),
    ("storage.k8s.io", "VolumeAttachment", false),
    ("scheduling.k8s.io", "PriorityClass", false),
    ("node.k8s.io", "RuntimeClass", false),
    ("apiextensions.k8s.io", "CustomResourceDefinition", false),
    ("apiregistration.k8s.io", "APIService", false),
    (
        "admissionregistration.k8s.io",
        "MutatingWebhookConfiguration",
        false,
    ),
    (
        "admissionregistration.k8s.io",
        "ValidatingWebhookConfiguration",
        false,
    ),
    (
        "admissionregistration.k8s.io",
        "ValidatingAdmissionPolicy",
        false,
    ),
    (
        "admissionregistration.k8s.io",
        "ValidatingAdmissionPolicyBinding",
        false,
    ),
    (
        "admissionregistration.k8s.io",
        "MutatingAdmissionPolicy",
        false,
    ),
    (
        "admissionregistration.k8s.io",
        "MutatingAdmissionPolicyBinding",
        false,
    ),
    ("apps.kruise.io", "CloneSet", true),
    ("apps.kruise.io", "StatefulSet", true),
    ("apps.kruise.io", "DaemonSet", true),
    ("apps.kruise.io", "BroadcastJob", true),
    ("apps.kruise.io", "AdvancedCronJob", true),
    ("apps.kruise.io", "ImagePullJob", true),
    ("apps.kruise.io", "ImageListPullJob", true),
    ("apps.kruise.io", "ContainerRecreateRequest", true),
    ("apps.kruise.io", "UnitedDeployment", true),
    ("apps.kruise.io", "WorkloadSpread", true),
    ("apps.kruise.io", "SidecarSet", false),
    ("apps.kruise.io", "NodeImage", false),
    ("apps.kruise.io", "ResourceDistribution", false),
    ("policy.kruise.io", "PodUnavailableBudget", true),
    ("graft.dev", "GitSync", true),
];

impl KindScopes {
    /// No kind known.
    pub fn new() -> Self {
        Self::default()
    }

    /// The built-in Kubernetes, OpenKruise and graft kinds (for tests and for running without
    /// discovery; the executor should use the cluster's discovery).
    pub fn builtin() -> Self {
        let mut s = Self::new();
        for (g, k, n) in BUILTIN {
            s.insert(g, k, *n);
        }
        s
    }

    /// Records the scope of a kind.
    pub fn insert(&mut self, group: &str, kind: &str, namespaced: bool) {
        self.namespaced
            .insert((group.to_string(), kind.to_string()), namespaced);
    }

    /// Whether `kind` of `group` is namespaced; `None` when unknown.
    pub fn is_namespaced(&self, group: &str, kind: &str) -> Option<bool> {
        self.namespaced
            .get(&(group.to_string(), kind.to_string()))
            .copied()
    }

    /// Adds the kinds defined by the CustomResourceDefinitions among `objects`.
    pub fn add_crds<'a>(&mut self, objects: impl IntoIterator<Item = &'a Value>) {
        for o in objects {
            let is_crd = o.get("kind").and_then(Value::as_str) == Some("CustomResourceDefinition")
                && o.get("apiVersion")
                    .and_then(Value::as_str)
                    .is_some_and(|v| v.starts_with("apiextensions.k8s.io/"));
            if !is_crd {
                continue;
            }
            let spec = &o["spec"];
            let (Some(group), Some(kind)) =
                (spec["group"].as_str(), spec["names"]["kind"].as_str())
            else {
                continue;
            };
            let namespaced = spec["scope"].as_str() != Some("Cluster");
            self.insert(group, kind, namespaced);
        }
    }
}
