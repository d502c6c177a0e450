//! A live workload read the same way for every kind: replicas and the updated / ready /
//! available counters, update revision, partition, paused, maxUnavailable, its pod selector.

use std::collections::BTreeMap;

use graft_api::workload::{Scope, WorkloadKind};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use serde::Serialize;
use serde_json::Value;

use crate::snapshot::LiveWorkload;

/// What the pages show of a workload.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct WorkloadInfo {
    /// API group.
    pub group: String,
    /// Kind.
    pub kind: String,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// The owning GitSync `<namespace>.<name>` (graft's owner label), if any.
    pub gitsync: Option<String>,
    /// Desired pods (scheduled pods for DaemonSets).
    pub replicas: i32,
    /// Pods at the update revision.
    pub updated: i32,
    /// Ready pods.
    pub ready: i32,
    /// Available pods.
    pub available: i32,
    /// A job (BroadcastJob, ImagePullJob: one pod per node): `replicas` is the desired nodes,
    /// `ready` and `available` the succeeded ones, `updated` the succeeded and active ones.
    pub job: bool,
    /// Jobs: pods that failed.
    pub failed: i32,
    /// The revision pods are updated to (`status.updateRevision`), when the kind has one.
    pub update_revision: Option<String>,
    /// Pods kept at the old revision (`partition`, resolved against replicas), when set.
    pub partition: Option<i32>,
    /// The rollout is paused.
    pub paused: bool,
    /// Most pods unavailable at once during the update (resolved).
    pub max_unavailable: i32,
    /// `metadata.generation` is not yet observed by the controller.
    pub stale: bool,
    /// Conditions as `type=status: reason: message`, for the ones that explain a block.
    pub conditions: Vec<ConditionInfo>,
    /// `spec.selector` (absent, or not a label selector, means none: selects nothing).
    #[serde(skip)]
    pub selector: Option<LabelSelector>,
    /// Cluster-scoped kind (SidecarSet): its pods are in every namespace.
    #[serde(skip)]
    pub cluster_scoped: bool,
}

/// A workload condition.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ConditionInfo {
    /// Type.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// Reason.
    pub reason: String,
    /// Message.
    pub message: String,
}

fn int(v: &Value, path: &str) -> Option<i64> {
    v.pointer(path).and_then(Value::as_i64)
}

fn clamp(v: i64) -> i32 {
    v.clamp(0, i64::from(i32::MAX)) as i32
}

/// An int-or-percent against `total`: percentages round up with `round_up`, down otherwise.
pub fn int_or_percent(v: Option<&Value>, total: i32, default: &str, round_up: bool) -> i32 {
    let parse = |s: &str| -> Option<i32> {
        let p: f64 = s.strip_suffix('%')?.trim().parse().ok()?;
        let x = p / 100.0 * f64::from(total);
        Some(if round_up { x.ceil() } else { x.floor() } as i32)
    };
    match v {
        Some(Value::Number(n)) => clamp(n.as_i64().unwrap_or(0)),
        Some(Value::String(s)) => parse(s).or_else(|| s.parse().ok()).unwrap_or(0),
        _ => parse(default).or_else(|| default.parse().ok()).unwrap_or(0),
    }
}

impl WorkloadInfo {
    /// Reads a live workload.
    pub fn of(w: &LiveWorkload) -> WorkloadInfo {
        let obj = &w.object;
        let data = &obj.data;
        let k = w.kind;
        let graft_api::workload::Counters {
            replicas,
            updated,
            ready,
            available,
            failed,
        } = graft_api::workload::counters_of(&k, data);
        let job = k.counters == graft_api::workload::CounterShape::Job;
        let (partition_v, max_unavailable_v, paused, default_max_unavailable, round_up) =
            strategy(k, data);
        let partition = partition_v
            .map(|p| int_or_percent(Some(p), replicas, "0", true))
            .filter(|p| *p > 0);
        let max_unavailable = int_or_percent(
            max_unavailable_v,
            replicas,
            default_max_unavailable,
            round_up,
        )
        .max(1);
        let generation = obj.metadata.generation.unwrap_or(0);
        let observed = int(data, "/status/observedGeneration").unwrap_or(0);
        let conditions = data
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .map(|cs| {
                cs.iter()
                    .map(|c| {
                        let s = |f: &str| {
                            c.get(f)
                                .and_then(Value::as_str)
                                .unwrap_or_default()
                                .to_string()
                        };
                        ConditionInfo {
                            type_: s("type"),
                            status: s("status"),
                            reason: s("reason"),
                            message: s("message"),
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        WorkloadInfo {
            group: k.group.into(),
            kind: k.kind.into(),
            namespace: obj.metadata.namespace.clone().unwrap_or_default(),
            name: obj.metadata.name.clone().unwrap_or_default(),
            gitsync: obj
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(graft_api::labels::GRAFT_GITSYNC))
                .cloned(),
            replicas,
            updated,
            ready,
            available,
            job,
            failed,
            update_revision: data
                .pointer("/status/updateRevision")
                .and_then(Value::as_str)
                .map(str::to_string),
            partition,
            paused,
            max_unavailable,
            // Jobs publish no observedGeneration.
            stale: !job && generation > observed,
            conditions,
            // A BroadcastJob has no selector: its pods carry its name.
            selector: if k.kind == "BroadcastJob" {
                Some(LabelSelector {
                    match_labels: Some(BTreeMap::from([(
                        graft_api::labels::BROADCASTJOB_NAME.to_string(),
                        obj.metadata.name.clone().unwrap_or_default(),
                    )])),
                    ..Default::default()
                })
            } else {
                data.pointer("/spec/selector")
                    .and_then(|s| serde_json::from_value(s.clone()).ok())
            },
            cluster_scoped: k.scope == Scope::Cluster,
        }
    }

    /// True when every desired pod is updated, ready and available (and the spec is observed).
    pub fn is_done(&self) -> bool {
        !self.stale
            && self.updated >= self.replicas - self.partition.unwrap_or(0)
            && self.ready >= self.replicas
            && self.available >= self.replicas
    }

    /// Whether `labels` (a pod's) match the workload's selector ([`graft_api::selector`]: an
    /// empty selector matches everything, none matches nothing).
    pub fn selects(&self, labels: Option<&BTreeMap<String, String>>) -> bool {
        self.selector
            .as_ref()
            .is_some_and(|s| graft_api::selector::matches_labels(s, labels))
    }
}

/// (partition, maxUnavailable, paused, default maxUnavailable, percent rounds up) of a kind.
fn strategy(k: WorkloadKind, data: &Value) -> (Option<&Value>, Option<&Value>, bool, &str, bool) {
    let b = |p: &str| data.pointer(p).and_then(Value::as_bool).unwrap_or(false);
    match (k.group, k.kind) {
        ("apps.kruise.io", "CloneSet") => (
            data.pointer("/spec/updateStrategy/partition"),
            data.pointer("/spec/updateStrategy/maxUnavailable"),
            b("/spec/updateStrategy/paused"),
            "20%",
            false,
        ),
        (_, "StatefulSet") => (
            data.pointer("/spec/updateStrategy/rollingUpdate/partition"),
            data.pointer("/spec/updateStrategy/rollingUpdate/maxUnavailable"),
            b("/spec/updateStrategy/rollingUpdate/paused"),
            "1",
            false,
        ),
        (_, "Deployment") => (
            None,
            data.pointer("/spec/strategy/rollingUpdate/maxUnavailable"),
            b("/spec/paused"),
            "25%",
            false,
        ),
        ("apps.kruise.io", "SidecarSet") => (
            data.pointer("/spec/updateStrategy/partition"),
            data.pointer("/spec/updateStrategy/maxUnavailable"),
            b("/spec/updateStrategy/paused"),
            "1",
            false,
        ),
        (_, "DaemonSet") => (
            data.pointer("/spec/updateStrategy/rollingUpdate/partition"),
            data.pointer("/spec/updateStrategy/rollingUpdate/maxUnavailable"),
            b("/spec/updateStrategy/rollingUpdate/paused"),
            "1",
            false,
        ),
        ("apps.kruise.io", "BroadcastJob") => (None, None, b("/spec/paused"), "1", false),
        _ => (None, None, false, "1", false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::Arc;

    fn live(kind: &str, group: &str, v: Value) -> LiveWorkload {
        LiveWorkload {
            kind: WorkloadKind::find(group, kind).expect("kind"),
            object: Arc::new(serde_json::from_value(v).expect("object")),
        }
    }

    #[test]
    fn a_broadcastjob_counts_nodes_and_selects_its_pods_by_name() {
        let w = WorkloadInfo::of(&live(
            "BroadcastJob",
            "apps.kruise.io",
            json!({"apiVersion": "apps.kruise.io/v1beta1", "kind": "BroadcastJob",
                "metadata": {"name": "check", "namespace": "team", "generation": 1},
                "spec": {"template": {}},
                "status": {"desired": 3, "active": 1, "succeeded": 1, "failed": 1,
                           "phase": "running"}}),
        ));
        assert!(w.job);
        assert!(!w.stale, "jobs publish no observedGeneration");
        assert_eq!((w.replicas, w.updated, w.available, w.failed), (3, 2, 1, 1));
        let labels = BTreeMap::from([("broadcastjob-name".to_string(), "check".to_string())]);
        assert!(w.selects(Some(&labels)));
        let other = BTreeMap::from([("broadcastjob-name".to_string(), "x".to_string())]);
        assert!(!w.selects(Some(&other)));
        assert!(!w.is_done());
    }

    #[test]
    fn cloneset_counters_partition_and_max_unavailable() {
        let w = WorkloadInfo::of(&live(
            "CloneSet",
            "apps.kruise.io",
            json!({"apiVersion": "apps.kruise.io/v1alpha1", "kind": "CloneSet",
                "metadata": {"name": "web", "namespace": "team", "generation": 2,
                             "labels": {"graft.dev/gitsync": "team.app"}},
                "spec": {"replicas": 10, "selector": {"matchLabels": {"app": "web"}},
                         "updateStrategy": {"partition": "25%", "maxUnavailable": "30%", "paused": true}},
                "status": {"observedGeneration": 2, "updatedReplicas": 7, "readyReplicas": 9,
                           "availableReplicas": 8, "updateRevision": "web-abc"}}),
        ));
        assert_eq!((w.replicas, w.updated, w.ready, w.available), (10, 7, 9, 8));
        assert_eq!(w.partition, Some(3), "percent partitions round up");
        assert_eq!(w.max_unavailable, 3);
        assert!(w.paused);
        assert_eq!(w.gitsync.as_deref(), Some("team.app"));
        assert_eq!(w.update_revision.as_deref(), Some("web-abc"));
        assert!(!w.stale);
        assert!(w.selects(Some(&BTreeMap::from([("app".into(), "web".into())]))));
        assert!(!w.selects(Some(&BTreeMap::from([("app".into(), "db".into())]))));
    }

    #[test]
    fn deployment_defaults_and_daemonset_counters() {
        let d = WorkloadInfo::of(&live(
            "Deployment",
            "apps",
            json!({"metadata": {"name": "d", "generation": 3},
                   "spec": {"replicas": 8}, "status": {"observedGeneration": 2}}),
        ));
        assert_eq!(d.max_unavailable, 2, "25% of 8");
        assert!(d.stale, "generation 3 not observed");
        assert!(!d.is_done());
        let ds = WorkloadInfo::of(&live(
            "DaemonSet",
            "apps",
            json!({"metadata": {"name": "ds"},
                   "status": {"desiredNumberScheduled": 2, "updatedNumberScheduled": 2,
                              "numberReady": 2, "numberAvailable": 2}}),
        ));
        assert_eq!((ds.replicas, ds.updated), (2, 2));
        assert!(ds.is_done());
    }

    #[test]
    fn selector_expressions() {
        let with = |sel: Value| {
            WorkloadInfo::of(&live(
                "CloneSet",
                "apps.kruise.io",
                json!({"metadata": {"name": "web"}, "spec": {"selector": sel}}),
            ))
        };
        let w = with(json!({"matchLabels": {"a": "1"}, "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["web", "api"]},
            {"key": "canary", "operator": "DoesNotExist"}]}));
        let l = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>()
        };
        assert!(w.selects(Some(&l(&[("a", "1"), ("tier", "web")]))));
        assert!(!w.selects(Some(&l(&[("a", "1"), ("tier", "web"), ("canary", "x")]))));
        assert!(!w.selects(Some(&l(&[("a", "1"), ("tier", "db")]))));
        assert!(
            with(json!({})).selects(None),
            "an empty selector matches everything"
        );
        let none = WorkloadInfo::of(&live(
            "CloneSet",
            "apps.kruise.io",
            json!({"metadata": {"name": "web"}}),
        ));
        assert!(!none.selects(None), "no selector matches nothing");
    }

    #[test]
    fn sidecarset_counters_and_scope() {
        let w = WorkloadInfo::of(&live(
            "SidecarSet",
            "apps.kruise.io",
            json!({"metadata": {"name": "log"},
                   "spec": {"selector": {"matchLabels": {"app": "web"}},
                            "updateStrategy": {"partition": 1, "paused": true}},
                   "status": {"matchedPods": 4, "updatedPods": 2, "readyPods": 4, "updatedReadyPods": 1}}),
        ));
        assert_eq!((w.replicas, w.updated, w.ready, w.available), (4, 2, 4, 1));
        assert_eq!(w.partition, Some(1));
        assert!(w.paused && w.cluster_scoped);
        assert_eq!(w.max_unavailable, 1);
    }
}
