//! The workload kinds graft knows: which ones a commit's rollout waits for (and pre-pulls images
//! of, and the dashboard follows), and how to read each one's rollout counters from its status.
//!
//! Every list of workload kinds in graft is [`WorkloadKind::ROLLOUT`] or [`WorkloadKind::ALL`];
//! every reading of rollout counters is [`counters`].

use serde_json::Value;

/// Whether objects of a kind live in a namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// Namespaced (`metadata.namespace` is set).
    Namespaced,
    /// Cluster-scoped (SidecarSet, NodeImage).
    Cluster,
}

/// Which status fields hold a kind's rollout counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CounterShape {
    /// `spec.replicas` and `status.{updated,ready,available}Replicas` (Deployment, StatefulSet,
    /// CloneSet, Advanced StatefulSet).
    Replicas,
    /// `status.{desired,updated}NumberScheduled`, `numberReady`, `numberAvailable` (DaemonSets).
    Scheduled,
    /// `status.{matched,updated,ready,updatedReady}Pods` (SidecarSet).
    SidecarPods,
    /// `status.{desired,active,succeeded}` (BroadcastJob, ImagePullJob: one unit per node).
    Job,
}

/// A workload kind: where it is served and how its rollout is counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WorkloadKind {
    /// API group (`apps`, `apps.kruise.io`).
    pub group: &'static str,
    /// The version graft reads it at.
    pub version: &'static str,
    /// Kind.
    pub kind: &'static str,
    /// Resource name (plural).
    pub plural: &'static str,
    /// Namespaced or cluster-scoped.
    pub scope: Scope,
    /// Where its counters are.
    pub counters: CounterShape,
}

const fn kind(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    scope: Scope,
    counters: CounterShape,
) -> WorkloadKind {
    WorkloadKind {
        group,
        version,
        kind,
        plural,
        scope,
        counters,
    }
}

impl WorkloadKind {
    /// Kubernetes Deployment.
    pub const DEPLOYMENT: WorkloadKind = kind(
        "apps",
        "v1",
        "Deployment",
        "deployments",
        Scope::Namespaced,
        CounterShape::Replicas,
    );
    /// Kubernetes StatefulSet.
    pub const STATEFULSET: WorkloadKind = kind(
        "apps",
        "v1",
        "StatefulSet",
        "statefulsets",
        Scope::Namespaced,
        CounterShape::Replicas,
    );
    /// Kubernetes DaemonSet.
    pub const DAEMONSET: WorkloadKind = kind(
        "apps",
        "v1",
        "DaemonSet",
        "daemonsets",
        Scope::Namespaced,
        CounterShape::Scheduled,
    );
    /// OpenKruise CloneSet.
    pub const CLONESET: WorkloadKind = kind(
        "apps.kruise.io",
        "v1alpha1",
        "CloneSet",
        "clonesets",
        Scope::Namespaced,
        CounterShape::Replicas,
    );
    /// OpenKruise Advanced StatefulSet.
    pub const ADVANCED_STATEFULSET: WorkloadKind = kind(
        "apps.kruise.io",
        "v1beta1",
        "StatefulSet",
        "statefulsets",
        Scope::Namespaced,
        CounterShape::Replicas,
    );
    /// OpenKruise SidecarSet (cluster-scoped).
    pub const SIDECARSET: WorkloadKind = kind(
        "apps.kruise.io",
        "v1alpha1",
        "SidecarSet",
        "sidecarsets",
        Scope::Cluster,
        CounterShape::SidecarPods,
    );
    /// OpenKruise Advanced DaemonSet.
    pub const ADVANCED_DAEMONSET: WorkloadKind = kind(
        "apps.kruise.io",
        "v1alpha1",
        "DaemonSet",
        "daemonsets",
        Scope::Namespaced,
        CounterShape::Scheduled,
    );
    /// OpenKruise BroadcastJob.
    pub const BROADCASTJOB: WorkloadKind = kind(
        "apps.kruise.io",
        "v1beta1",
        "BroadcastJob",
        "broadcastjobs",
        Scope::Namespaced,
        CounterShape::Job,
    );
    /// OpenKruise ImagePullJob.
    pub const IMAGEPULLJOB: WorkloadKind = kind(
        "apps.kruise.io",
        "v1alpha1",
        "ImagePullJob",
        "imagepulljobs",
        Scope::Namespaced,
        CounterShape::Job,
    );

    /// The kinds whose rollout a commit waits for before it is Healthy, whose new images a
    /// commit pre-pulls, and whose rollouts the dashboard follows. A BroadcastJob's "rollout" is
    /// its run: the commit is Healthy when it completes, Failed when it fails.
    pub const ROLLOUT: [WorkloadKind; 7] = [
        Self::CLONESET,
        Self::ADVANCED_STATEFULSET,
        Self::SIDECARSET,
        Self::DEPLOYMENT,
        Self::STATEFULSET,
        Self::DAEMONSET,
        Self::BROADCASTJOB,
    ];

    /// Every kind with rollout counters ([`Self::ROLLOUT`] plus the ones whose counters are
    /// shown but that a commit does not wait for).
    pub const ALL: [WorkloadKind; 9] = [
        Self::CLONESET,
        Self::ADVANCED_STATEFULSET,
        Self::SIDECARSET,
        Self::DEPLOYMENT,
        Self::STATEFULSET,
        Self::DAEMONSET,
        Self::BROADCASTJOB,
        Self::ADVANCED_DAEMONSET,
        Self::IMAGEPULLJOB,
    ];

    /// The kind with this group and kind name, among [`Self::ALL`].
    pub fn find(group: &str, kind: &str) -> Option<WorkloadKind> {
        Self::ALL
            .into_iter()
            .find(|k| k.group == group && k.kind == kind)
    }

    /// Whether a commit waits for the rollout of objects of this group and kind.
    pub fn is_rollout(group: &str, kind: &str) -> bool {
        Self::ROLLOUT
            .iter()
            .any(|k| k.group == group && k.kind == kind)
    }

    /// `apiVersion` of the version graft reads (`apps/v1`, `apps.kruise.io/v1alpha1`).
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

/// A workload's rollout counters: how many pods (or nodes, for jobs) it wants, how many run the
/// update, are ready, and are available.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Desired pods (`spec.replicas`; DaemonSets: scheduled; SidecarSets: matched; jobs: nodes).
    pub replicas: i32,
    /// Pods at the current revision (jobs: active plus succeeded).
    pub updated: i32,
    /// Ready pods (jobs: succeeded).
    pub ready: i32,
    /// Available pods (SidecarSets: updated and ready; jobs: succeeded).
    pub available: i32,
    /// Jobs only: pods (one per node) that failed; 0 for the other kinds.
    pub failed: i32,
}

/// The rollout counters of an object of `kind`, read from its JSON (`spec` and `status`).
/// Missing fields count 0, except a missing `spec.replicas`, which defaults to 1 as the API
/// server defaults it.
pub fn counters_of(kind: &WorkloadKind, obj: &Value) -> Counters {
    let int = |p: &str| obj.pointer(p).and_then(Value::as_i64);
    let status = |f: &str| int(&format!("/status/{f}")).unwrap_or(0);
    let failed = match kind.counters {
        CounterShape::Job => status("failed"),
        _ => 0,
    };
    let (replicas, updated, ready, available) = match kind.counters {
        CounterShape::Replicas => (
            int("/spec/replicas").unwrap_or(1),
            status("updatedReplicas"),
            status("readyReplicas"),
            status("availableReplicas"),
        ),
        CounterShape::Scheduled => (
            status("desiredNumberScheduled"),
            status("updatedNumberScheduled"),
            status("numberReady"),
            status("numberAvailable"),
        ),
        CounterShape::SidecarPods => (
            status("matchedPods"),
            status("updatedPods"),
            status("readyPods"),
            status("updatedReadyPods"),
        ),
        CounterShape::Job => (
            status("desired"),
            status("succeeded") + status("active"),
            status("succeeded"),
            status("succeeded"),
        ),
    };
    let clamp = |v: i64| v.clamp(0, i64::from(i32::MAX)) as i32;
    Counters {
        replicas: clamp(replicas),
        updated: clamp(updated),
        ready: clamp(ready),
        available: clamp(available),
        failed: clamp(failed),
    }
}

/// The kind and rollout counters of an object (its `apiVersion` and `kind` name it), or `None`
/// for kinds that run no pods.
pub fn counters(obj: &Value) -> Option<(WorkloadKind, Counters)> {
    let api_version = obj.get("apiVersion").and_then(Value::as_str)?;
    let kind_name = obj.get("kind").and_then(Value::as_str)?;
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    let kind = WorkloadKind::find(group, kind_name)?;
    Some((kind, counters_of(&kind, obj)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_kind_reads_its_own_counters() {
        let cases = [
            (
                json!({"apiVersion": "apps.kruise.io/v1alpha1", "kind": "CloneSet",
                       "spec": {"replicas": 5},
                       "status": {"updatedReplicas": 3, "readyReplicas": 4, "availableReplicas": 2}}),
                Counters {
                    replicas: 5,
                    updated: 3,
                    ready: 4,
                    available: 2,
                    failed: 0,
                },
            ),
            (
                json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {}}),
                Counters {
                    replicas: 1,
                    ..Default::default()
                },
            ),
            (
                json!({"apiVersion": "apps/v1", "kind": "DaemonSet",
                       "status": {"desiredNumberScheduled": 3, "updatedNumberScheduled": 2,
                                  "numberReady": 1, "numberAvailable": 1}}),
                Counters {
                    replicas: 3,
                    updated: 2,
                    ready: 1,
                    available: 1,
                    failed: 0,
                },
            ),
            (
                json!({"apiVersion": "apps.kruise.io/v1beta1", "kind": "SidecarSet",
                       "status": {"matchedPods": 6, "updatedPods": 4, "readyPods": 6,
                                  "updatedReadyPods": 3}}),
                Counters {
                    replicas: 6,
                    updated: 4,
                    ready: 6,
                    available: 3,
                    failed: 0,
                },
            ),
            (
                json!({"apiVersion": "apps.kruise.io/v1beta1", "kind": "BroadcastJob",
                       "status": {"desired": 4, "active": 1, "succeeded": 2, "failed": 1}}),
                Counters {
                    replicas: 4,
                    updated: 3,
                    ready: 2,
                    available: 2,
                    failed: 1,
                },
            ),
        ];
        for (obj, want) in cases {
            let (_, got) = counters(&obj).expect("a workload");
            assert_eq!(got, want, "{obj}");
        }
        assert!(counters(&json!({"apiVersion": "v1", "kind": "ConfigMap"})).is_none());
    }

    #[test]
    fn a_commit_waits_for_the_rollout_kinds_only() {
        assert!(WorkloadKind::is_rollout("apps.kruise.io", "SidecarSet"));
        assert!(WorkloadKind::is_rollout("apps", "StatefulSet"));
        assert!(WorkloadKind::is_rollout("apps.kruise.io", "BroadcastJob"));
        assert!(!WorkloadKind::is_rollout("apps.kruise.io", "ImagePullJob"));
        assert!(!WorkloadKind::is_rollout("", "ConfigMap"));
        assert_eq!(WorkloadKind::SIDECARSET.scope, Scope::Cluster);
        assert_eq!(
            WorkloadKind::CLONESET.api_version(),
            "apps.kruise.io/v1alpha1"
        );
    }
}
