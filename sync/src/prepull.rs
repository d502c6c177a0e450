//! Commit-triggered pre-pulls: the ImagePullJobs that bring a commit's new images onto the nodes
//! that will run them, before (or while) its workloads roll out. Pure: the desired and live
//! workloads in, the jobs out.
//!
//! For each workload of the commit (Deployment, StatefulSet, DaemonSet, CloneSet, Advanced
//! StatefulSet, SidecarSet), the images of its pod template (containers and init containers)
//! that the live object does not use yet get one ImagePullJob each:
//! - an existing workload that is not scaling up pulls on the nodes running its pods
//!   (`podSelector` = the workload's selector; for a SidecarSet, whose pods may be in any
//!   namespace, `selector.names` = the nodes of the pods it matches);
//! - a new workload, a scale-up or a DaemonSet pulls on every node the scheduler may use
//!   (`selector.matchLabels` = the template's `nodeSelector`, all nodes without one).

use std::collections::BTreeSet;

use graft_api::labels::{GRAFT_COMMIT, GRAFT_SYNC};
use serde_json::{Value, json};

use crate::object::ObjectRef;
use crate::plan::Owner;

/// Annotation on a pre-pull job: the workload it prepares (`Kind namespace/name`).
pub const WORKLOAD_ANNOTATION: &str = "graft.dev/workload";

/// How the commit's pre-pulls run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Nodes pulling one image at once.
    pub parallelism: i32,
    /// How long the whole pull may take on a node (the job's `activeDeadlineSeconds`).
    pub timeout_seconds: i32,
}

/// One ImagePullJob to create for a commit.
#[derive(Clone, Debug, PartialEq)]
pub struct Pull {
    /// The workload the image is for.
    pub workload: ObjectRef,
    /// The image.
    pub image: String,
    /// The ImagePullJob manifest (`apps.kruise.io/v1alpha1`).
    pub job: Value,
}

/// Whether `r` is a workload whose images are pre-pulled: one of the kinds a commit waits for
/// ([`graft_api::workload::WorkloadKind::ROLLOUT`]).
pub fn is_workload(r: &ObjectRef) -> bool {
    graft_api::workload::WorkloadKind::is_rollout(&r.group, &r.kind)
}

/// The images a workload's pods run: its pod template's containers and init containers, or a
/// SidecarSet's injected containers.
pub fn images(r: &ObjectRef, obj: &Value) -> BTreeSet<String> {
    let pod_spec = if r.kind == "SidecarSet" {
        obj.get("spec")
    } else {
        obj.pointer("/spec/template/spec")
    };
    let mut out = BTreeSet::new();
    for list in ["containers", "initContainers"] {
        for c in pod_spec
            .and_then(|s| s.get(list))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(image) = c.get("image").and_then(Value::as_str) {
                out.insert(image.to_string());
            }
        }
    }
    out
}

/// One workload of a commit, as [`plan`] reads it.
#[derive(Clone, Debug, PartialEq)]
pub struct Workload {
    /// The workload.
    pub reference: ObjectRef,
    /// Its manifest in the commit.
    pub desired: Value,
    /// The same workload as it is in the cluster now (`None` when it does not exist).
    pub live: Option<Value>,
    /// For a SidecarSet: the nodes of the pods it matches now, where its sidecars are upgraded
    /// in place (a SidecarSet's pods may sit in any namespace, so a job's namespaced
    /// `podSelector` cannot name them). `None` or empty: every node.
    pub pod_nodes: Option<Vec<String>>,
}

/// The ImagePullJobs for one commit's workloads.
pub fn plan(owner: &Owner, commit: &str, workloads: &[Workload], settings: Settings) -> Vec<Pull> {
    let mut pulls = Vec::new();
    for w in workloads {
        let (r, desired, live) = (&w.reference, &w.desired, &w.live);
        if !is_workload(r) {
            continue;
        }
        let before = live.as_ref().map(|l| images(r, l)).unwrap_or_default();
        let new: Vec<String> = images(r, desired).difference(&before).cloned().collect();
        if new.is_empty() {
            continue;
        }
        let target = target(r, desired, live.as_ref(), w.pod_nodes.as_deref());
        for image in new {
            pulls.push(Pull {
                workload: r.clone(),
                job: job(owner, commit, r, &image, &target, desired, settings),
                image,
            });
        }
    }
    pulls
}

/// Where a workload's pods will run: the nodes of its current pods, or all nodes it may use.
fn target(
    r: &ObjectRef,
    desired: &Value,
    live: Option<&Value>,
    pod_nodes: Option<&[String]>,
) -> Value {
    if r.kind == "SidecarSet" {
        let mut nodes: Vec<&String> = pod_nodes.into_iter().flatten().collect();
        nodes.sort();
        nodes.dedup();
        return match (live, nodes.is_empty()) {
            (Some(_), false) => json!({"selector": {"names": nodes}}),
            _ => json!({}),
        };
    }
    let replicas = |o: &Value| {
        o.pointer("/spec/replicas")
            .and_then(Value::as_i64)
            .unwrap_or(1)
    };
    let scaling_up = live.is_some_and(|l| replicas(desired) > replicas(l));
    let selector = desired.pointer("/spec/selector").filter(|s| {
        s.get("matchLabels")
            .is_some_and(|m| m.as_object().is_some_and(|m| !m.is_empty()))
            || s.get("matchExpressions")
                .is_some_and(|m| m.as_array().is_some_and(|m| !m.is_empty()))
    });
    let pods_decide = live.is_some() && !scaling_up && r.kind != "DaemonSet" && selector.is_some();
    if let (true, Some(selector)) = (pods_decide, selector) {
        return json!({"podSelector": selector});
    }
    let node_selector = desired
        .pointer("/spec/template/spec/nodeSelector")
        .filter(|s| s.as_object().is_some_and(|m| !m.is_empty()));
    match node_selector {
        Some(labels) => json!({"selector": {"matchLabels": labels}}),
        None => json!({}),
    }
}

fn job(
    owner: &Owner,
    commit: &str,
    r: &ObjectRef,
    image: &str,
    target: &Value,
    desired: &Value,
    settings: Settings,
) -> Value {
    let short = commit.get(..7).unwrap_or(commit);
    let name = format!(
        "prepull-{short}-{:08x}",
        fnv1a(&format!("{}/{}/{}/{image}", r.kind, r.name, commit))
    );
    let namespace = r
        .namespace
        .clone()
        .unwrap_or_else(|| owner.namespace.clone());
    let pull_secrets: Vec<Value> = desired
        .pointer("/spec/template/spec/imagePullSecrets")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| s.get("name").cloned())
        .collect();
    // One attempt may take half the time (a retry fits); the deadline must exceed an attempt.
    let attempt = (settings.timeout_seconds / 2).max(1);
    let deadline = settings.timeout_seconds.max(attempt + 1);
    let mut spec = json!({
        "image": image,
        "parallelism": settings.parallelism.max(1),
        "pullPolicy": {"timeoutSeconds": attempt, "backoffLimit": 3},
        "completionPolicy": {
            "type": "Always",
            "activeDeadlineSeconds": deadline,
            "ttlSecondsAfterFinished": 3600,
        },
        "imagePullPolicy": "IfNotPresent",
    });
    if let (Some(spec), Some(t)) = (spec.as_object_mut(), target.as_object()) {
        spec.extend(t.clone());
        if !pull_secrets.is_empty() {
            spec.insert("pullSecrets".into(), Value::Array(pull_secrets));
        }
    }
    json!({
        "apiVersion": "apps.kruise.io/v1alpha1",
        "kind": "ImagePullJob",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {GRAFT_SYNC: owner.label_value()},
            "annotations": {
                GRAFT_COMMIT: commit,
                WORKLOAD_ANNOTATION: format!("{} {}", r.kind, r.id()),
            },
        },
        "spec": spec,
    })
}

/// FNV-1a, for short stable job names.
fn fnv1a(s: &str) -> u32 {
    s.bytes().fold(0x811c_9dc5, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// How far a commit's pre-pull jobs are, from their statuses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// Jobs of the commit.
    pub jobs: usize,
    /// Jobs that completed (succeeded or failed on every node, or hit their deadline).
    pub finished: usize,
    /// Nodes that pulled, over all jobs.
    pub succeeded: i64,
    /// Nodes that failed, over all jobs.
    pub failed: i64,
    /// Nodes targeted, over all jobs.
    pub desired: i64,
    /// Jobs an ImagePullJob controller has written a status to.
    pub answered: usize,
}

impl Progress {
    /// Reads the statuses of a commit's ImagePullJobs.
    pub fn of(jobs: &[Value]) -> Progress {
        let int = |j: &Value, p: &str| j.pointer(p).and_then(Value::as_i64).unwrap_or(0);
        Progress {
            jobs: jobs.len(),
            finished: jobs
                .iter()
                .filter(|j| {
                    j.pointer("/status/completionTime")
                        .is_some_and(|t| !t.is_null())
                })
                .count(),
            succeeded: jobs.iter().map(|j| int(j, "/status/succeeded")).sum(),
            failed: jobs.iter().map(|j| int(j, "/status/failed")).sum(),
            desired: jobs.iter().map(|j| int(j, "/status/desired")).sum(),
            answered: jobs
                .iter()
                .filter(|j| j.get("status").is_some_and(|s| !s.is_null()))
                .count(),
        }
    }

    /// Every job completed.
    pub fn done(&self) -> bool {
        self.finished >= self.jobs
    }
}

impl std::fmt::Display for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}/{} pre-pull job(s) done, {} of {} node pull(s) succeeded, {} failed",
            self.finished, self.jobs, self.succeeded, self.desired, self.failed
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(group: &str, kind: &str, name: &str) -> ObjectRef {
        ObjectRef {
            group: group.into(),
            version: "v1".into(),
            kind: kind.into(),
            namespace: Some("team".into()),
            name: name.into(),
        }
    }

    fn cloneset(image: &str, replicas: i64) -> Value {
        json!({"apiVersion": "apps.kruise.io/v1alpha1", "kind": "CloneSet",
               "metadata": {"name": "web"},
               "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                        "template": {"spec": {
                            "initContainers": [{"name": "init", "image": "busybox:1"}],
                            "containers": [{"name": "app", "image": image}],
                            "imagePullSecrets": [{"name": "regcred"}]}}}})
    }

    fn owner() -> Owner {
        Owner {
            namespace: "team".into(),
            name: "app".into(),
        }
    }

    fn wl(reference: ObjectRef, desired: Value, live: Option<Value>) -> Workload {
        Workload {
            reference,
            desired,
            live,
            pod_nodes: None,
        }
    }

    const SETTINGS: Settings = Settings {
        parallelism: 2,
        timeout_seconds: 300,
    };

    #[test]
    fn only_new_images_of_a_changed_workload_are_pulled_where_its_pods_run() {
        let w = r("apps.kruise.io", "CloneSet", "web");
        let pulls = plan(
            &owner(),
            "0123456789abcdef",
            &[wl(
                w.clone(),
                cloneset("app:v2", 3),
                Some(cloneset("app:v1", 3)),
            )],
            SETTINGS,
        );
        assert_eq!(pulls.len(), 1, "{pulls:?}");
        let p = &pulls[0];
        assert_eq!(p.image, "app:v2");
        assert_eq!(p.workload, w);
        let job = &p.job;
        assert_eq!(job["metadata"]["namespace"], "team");
        assert_eq!(job["metadata"]["labels"]["graft.dev/sync"], "team.app");
        assert_eq!(
            job["metadata"]["annotations"]["graft.dev/commit"],
            "0123456789abcdef"
        );
        assert!(
            job["metadata"]["name"]
                .as_str()
                .unwrap()
                .starts_with("prepull-0123456-")
        );
        assert_eq!(
            job["spec"]["podSelector"],
            json!({"matchLabels": {"app": "web"}})
        );
        assert!(job["spec"].get("selector").is_none());
        assert_eq!(job["spec"]["parallelism"], 2);
        assert_eq!(
            job["spec"]["completionPolicy"]["activeDeadlineSeconds"],
            300
        );
        assert_eq!(job["spec"]["pullSecrets"], json!(["regcred"]));
    }

    #[test]
    fn unchanged_images_pull_nothing() {
        let w = r("apps.kruise.io", "CloneSet", "web");
        let same = plan(
            &owner(),
            "abc",
            &[wl(w, cloneset("app:v1", 3), Some(cloneset("app:v1", 5)))],
            SETTINGS,
        );
        assert!(same.is_empty(), "{same:?}");
        let not_a_workload = plan(
            &owner(),
            "abc",
            &[wl(r("", "ConfigMap", "c"), json!({"data": {}}), None)],
            SETTINGS,
        );
        assert!(not_a_workload.is_empty());
    }

    #[test]
    fn new_workloads_scale_ups_and_daemonsets_pull_on_the_nodes_they_may_use() {
        let w = r("apps.kruise.io", "CloneSet", "web");
        let new = plan(
            &owner(),
            "abc",
            &[wl(w.clone(), cloneset("app:v2", 3), None)],
            SETTINGS,
        );
        assert_eq!(
            new.iter().map(|p| p.image.as_str()).collect::<Vec<_>>(),
            ["app:v2", "busybox:1"],
            "every image of a new workload"
        );
        assert!(new[0].job["spec"].get("podSelector").is_none());
        assert!(new[0].job["spec"].get("selector").is_none(), "all nodes");

        let mut bigger = cloneset("app:v2", 6);
        bigger["spec"]["template"]["spec"]["nodeSelector"] = json!({"pool": "web"});
        let up = plan(
            &owner(),
            "abc",
            &[wl(w, bigger, Some(cloneset("app:v1", 3)))],
            SETTINGS,
        );
        assert_eq!(
            up[0].job["spec"]["selector"],
            json!({"matchLabels": {"pool": "web"}})
        );

        let ds = r("apps", "DaemonSet", "agent");
        let mut desired = cloneset("agent:v2", 1);
        desired["kind"] = json!("DaemonSet");
        let mut live = cloneset("agent:v1", 1);
        live["kind"] = json!("DaemonSet");
        let pulls = plan(&owner(), "abc", &[wl(ds, desired, Some(live))], SETTINGS);
        assert!(pulls[0].job["spec"].get("podSelector").is_none());
    }

    #[test]
    fn a_broadcastjob_pulls_its_image_on_the_nodes_its_template_selects() {
        let job = r("apps.kruise.io", "BroadcastJob", "check");
        let desired = json!({"apiVersion": "apps.kruise.io/v1alpha1", "kind": "BroadcastJob",
            "metadata": {"name": "check"},
            "spec": {"template": {"spec": {"nodeSelector": {"disk": "ssd"},
                "containers": [{"name": "c", "image": "check:v1"}]}}}});
        let pulls = plan(&owner(), "abc", &[wl(job, desired, None)], SETTINGS);
        assert_eq!(
            pulls.iter().map(|p| p.image.as_str()).collect::<Vec<_>>(),
            ["check:v1"]
        );
        assert_eq!(
            pulls[0].job["spec"]["selector"],
            json!({"matchLabels": {"disk": "ssd"}}),
            "the nodes the job's pods may run on"
        );
    }

    #[test]
    fn a_sidecarset_pulls_its_injected_containers_on_the_nodes_of_its_pods() {
        let s = ObjectRef {
            namespace: None,
            ..r("apps.kruise.io", "SidecarSet", "logs")
        };
        let sidecar = |image: &str| {
            json!({"spec": {"selector": {"matchLabels": {"app": "web"}},
                            "containers": [{"name": "log", "image": image}]}})
        };
        let pulls = plan(
            &owner(),
            "abc",
            &[wl(s.clone(), sidecar("log:v2"), Some(sidecar("log:v1")))],
            SETTINGS,
        );
        assert_eq!(pulls.len(), 1);
        assert_eq!(
            pulls[0].job["metadata"]["namespace"], "team",
            "the GitSync's namespace"
        );
        assert!(pulls[0].job["spec"].get("podSelector").is_none());
        assert!(
            pulls[0].job["spec"].get("selector").is_none(),
            "no pods known: every node"
        );

        let mut on_nodes = wl(s.clone(), sidecar("log:v2"), Some(sidecar("log:v1")));
        on_nodes.pod_nodes = Some(vec!["b".into(), "a".into(), "b".into()]);
        let pulls = plan(&owner(), "abc", &[on_nodes.clone()], SETTINGS);
        assert_eq!(
            pulls[0].job["spec"]["selector"],
            json!({"names": ["a", "b"]}),
            "the nodes of the matched pods, once each"
        );
        // A new SidecarSet injects pods yet to be created, anywhere.
        on_nodes.live = None;
        let pulls = plan(&owner(), "abc", &[on_nodes], SETTINGS);
        assert!(pulls[0].job["spec"].get("selector").is_none());
    }

    #[test]
    fn progress_counts_finished_jobs_and_node_pulls() {
        let jobs = [
            json!({"status": {"desired": 2, "succeeded": 2, "failed": 0, "completionTime": "2026-01-01T00:00:00Z"}}),
            json!({"status": {"desired": 2, "succeeded": 1, "failed": 0}}),
        ];
        let p = Progress::of(&jobs);
        assert_eq!(
            p,
            Progress {
                jobs: 2,
                finished: 1,
                succeeded: 3,
                failed: 0,
                desired: 4,
                answered: 2
            }
        );
        assert!(!p.done());
        assert!(Progress::of(&jobs[..1]).done());
        assert_eq!(
            p.to_string(),
            "1/2 pre-pull job(s) done, 3 of 4 node pull(s) succeeded, 0 failed"
        );
    }
}
