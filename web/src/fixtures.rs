//! Hand-built objects for tests and benchmarks: GitSyncs with a history, CloneSets, pods,
//! events, ImagePullJobs and NodeImages, as the API server would return them.

use std::sync::Arc;

use graft_api::apps::v1alpha1::imagepulljob::ImagePullJob;
use graft_api::apps::v1alpha1::nodeimage::NodeImage;
use graft_api::graft::gitsync::GitSync;
use k8s_openapi::api::core::v1::{Event, Pod};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

use graft_api::workload::WorkloadKind;

use crate::snapshot::{LiveWorkload, Snapshot};

fn at(base: Timestamp, secs: i64) -> String {
    (base + SignedDuration::from_secs(secs)).to_string()
}

/// A commit record in `phase`, detected at `base + offset` seconds, each phase 2 s after the
/// previous one, with one CloneSet `web` in `ns`.
pub fn commit(
    sha: &str,
    message: &str,
    phase: &str,
    base: Timestamp,
    offset: i64,
    ns: &str,
) -> Value {
    let order = [
        "detected",
        "validated",
        "applying",
        "rollingOut",
        phase_key(phase),
    ];
    let mut times = serde_json::Map::new();
    for (i, k) in order.iter().enumerate() {
        times.insert((*k).into(), json!(at(base, offset + 2 * i as i64)));
        if *k == phase_key(phase) {
            break;
        }
    }
    json!({
        "sha": sha, "message": message, "author": "Dev <dev@graft.dev>",
        "time": at(base, offset - 5), "phase": phase, "phaseTimes": times,
        "reason": if phase == "Failed" { json!("ValidationFailed") } else { Value::Null },
        "statusMessage": if phase == "Failed" { json!("deploy/web.yaml, document 0, line 3: bad indentation") } else { json!("1 workload(s) rolling out") },
        "workloads": [{"group": "apps.kruise.io", "kind": "CloneSet", "namespace": ns, "name": "web",
                       "replicas": 3, "updated": 3, "ready": 3, "available": 3}]
    })
}

fn phase_key(phase: &str) -> &'static str {
    match phase {
        "Detected" => "detected",
        "Validated" => "validated",
        "Applying" => "applying",
        "RollingOut" => "rollingOut",
        "Healthy" => "healthy",
        "Failed" => "failed",
        "Superseded" => "superseded",
        _ => "prePulling",
    }
}

/// A GitSync `ns/name` with `history` (newest first) and a Ready condition.
pub fn gitsync(ns: &str, name: &str, history: Vec<Value>, ready: bool) -> Arc<GitSync> {
    let last = history
        .iter()
        .find(|h| h["phase"] != "Failed")
        .and_then(|h| h["sha"].as_str())
        .map(str::to_string);
    let gs: GitSync = serde_json::from_value(json!({
        "apiVersion": "graft.dev/v1alpha1", "kind": "GitSync",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"url": "https://user:hunter2@git.example.com/team/app.git", "ref": {"branch": "main"}, "path": "deploy"},
        "status": {
            "observedGeneration": 1,
            "lastAppliedCommit": last,
            "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"},
                            "reason": if ready {"Succeeded"} else {"SyncFailed"},
                            "message": "Applied revision", "lastTransitionTime": "2026-01-01T00:00:00Z"}],
            "history": history,
        }
    }))
    .expect("GitSync fixture");
    Arc::new(gs)
}

/// A CloneSet `ns/name` owned by GitSync `owner`, selecting `app: <name>`.
pub fn cloneset(
    ns: &str,
    name: &str,
    owner: &str,
    replicas: i32,
    updated: i32,
    rev: &str,
) -> LiveWorkload {
    LiveWorkload {
        kind: WorkloadKind::find("apps.kruise.io", "CloneSet").expect("kind"),
        object: Arc::new(
            serde_json::from_value(json!({
                "apiVersion": "apps.kruise.io/v1alpha1", "kind": "CloneSet",
                "metadata": {"name": name, "namespace": ns, "generation": 2,
                             "labels": {"graft.dev/gitsync": owner}},
                "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                         "updateStrategy": {"type": "InPlaceIfPossible", "maxUnavailable": 1}},
                "status": {"observedGeneration": 2, "replicas": replicas, "updatedReplicas": updated,
                           "readyReplicas": replicas, "availableReplicas": replicas,
                           "updateRevision": rev}
            }))
            .expect("CloneSet fixture"),
        ),
    }
}

/// A ready pod of workload `app` at revision `rev`, created at `created`, optionally updated in
/// place at `in_place_at`.
pub fn pod(
    ns: &str,
    name: &str,
    app: &str,
    rev: &str,
    created: &str,
    in_place_at: Option<&str>,
) -> Arc<Pod> {
    let mut annotations = serde_json::Map::new();
    if let Some(t) = in_place_at {
        annotations.insert(
            "apps.kruise.io/inplace-update-state".into(),
            json!(
                json!({"revision": rev, "updateTimestamp": t, "lastContainerStatuses": {}})
                    .to_string()
            ),
        );
    }
    Arc::new(
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": ns, "creationTimestamp": created,
                         "labels": {"app": app, "controller-revision-hash": rev},
                         "annotations": annotations},
            "spec": {"nodeName": "node-1", "containers": [{"name": "app", "image": "app:v2"}]},
            "status": {"phase": "Running",
                       "conditions": [{"type": "Ready", "status": "True"}],
                       "containerStatuses": [{"name": "app", "image": "app:v2", "imageID": "", "ready": true,
                                              "restartCount": 1, "state": {"running": {}}}]}
        }))
        .expect("Pod fixture"),
    )
}

/// An event about `kind/name` in `ns`.
pub fn event(
    ns: &str,
    kind: &str,
    name: &str,
    reason: &str,
    message: &str,
    at: &str,
) -> Arc<Event> {
    Arc::new(
        serde_json::from_value(json!({
            "metadata": {"name": format!("{name}.{reason}"), "namespace": ns},
            "involvedObject": {"kind": kind, "name": name, "namespace": ns},
            "reason": reason, "message": message, "type": "Normal", "count": 1,
            "lastTimestamp": at
        }))
        .expect("Event fixture"),
    )
}

/// An ImagePullJob of GitSync `owner` for commit `sha`, and the NodeImage of `node` pulling it.
pub fn pre_pull(
    ns: &str,
    owner: &str,
    sha: &str,
    node: &str,
    phase: &str,
) -> (Arc<ImagePullJob>, Arc<NodeImage>) {
    let job: ImagePullJob = serde_json::from_value(json!({
        "apiVersion": "apps.kruise.io/v1alpha1", "kind": "ImagePullJob",
        "metadata": {"name": format!("pull-{}", &sha[..sha.len().min(8)]), "namespace": ns, "uid": "job-uid",
                     "labels": {"graft.dev/sync": owner}, "annotations": {"graft.dev/commit": sha}},
        "spec": {"image": "registry.example/app:v2"},
        "status": {"desired": 1, "active": 1, "succeeded": 0, "failed": 0}
    }))
    .expect("ImagePullJob fixture");
    let ni: NodeImage = serde_json::from_value(json!({
        "apiVersion": "apps.kruise.io/v1alpha1", "kind": "NodeImage",
        "metadata": {"name": node},
        "spec": {"images": {"registry.example/app": {"tags": [{"tag": "v2",
            "ownerReferences": [{"kind": "ImagePullJob", "name": job.metadata.name, "namespace": ns, "uid": "job-uid"}]}]}}},
        "status": {"desired": 1, "succeeded": 0, "failed": 0, "pulling": 1, "waiting": 0,
                   "imageStatuses": {"registry.example/app": {"tags": [{"tag": "v2", "phase": phase, "progress": 40}]}}}
    }))
    .expect("NodeImage fixture");
    (Arc::new(job), Arc::new(ni))
}

/// A whole scene: GitSync `team/app` with `commits` commits (the newest rolling out), CloneSet
/// `web` with `pods` pods (all updated in place by the newest commit), events, a pre-pull.
/// `text` goes into every free-text field (commit messages, names of pods and events), so tests
/// can put hostile strings everywhere.
pub fn scene(commits: usize, pods: usize, text: &str, now: Timestamp) -> Snapshot {
    let ns = "team";
    let base = now - SignedDuration::from_secs(60 * commits as i64 + 60);
    let mut history = Vec::new();
    for i in (0..commits).rev() {
        let sha = format!("{:040x}", i + 1);
        let phase = match i {
            _ if i + 1 == commits => "RollingOut",
            _ if i % 7 == 3 => "Failed",
            _ => "Healthy",
        };
        history.push(commit(
            &sha,
            &format!("commit {i}: {text}"),
            phase,
            base,
            60 * i as i64,
            ns,
        ));
    }
    let newest_applying = history
        .first()
        .and_then(|h| h["phaseTimes"]["applying"].as_str())
        .unwrap_or_default()
        .to_string();
    let newest_sha = history
        .first()
        .and_then(|h| h["sha"].as_str())
        .unwrap_or_default()
        .to_string();
    let mut snap = Snapshot::empty(now);
    snap.gitsyncs.push(gitsync(ns, "app", history, true));
    snap.workloads.push(cloneset(
        ns,
        "web",
        "team.app",
        pods as i32,
        pods as i32,
        "web-2",
    ));
    let created = (base - SignedDuration::from_secs(600)).to_string();
    let updated = (now - SignedDuration::from_secs(30)).to_string();
    for i in 0..pods {
        let name = format!("web-{i:04}");
        snap.pods.push(pod(
            ns,
            &name,
            "web",
            "web-2",
            &created,
            Some(updated.as_str()),
        ));
    }
    snap.events.push(event(
        ns,
        "CloneSet",
        "web",
        "SuccessfulUpdatePodInPlace",
        &format!("updated pod in place: {text}"),
        &updated,
    ));
    snap.events
        .push(event(ns, "Pod", "web-0000", "Pulled", text, &updated));
    if !newest_sha.is_empty() && !newest_applying.is_empty() {
        let (job, ni) = pre_pull(ns, "team.app", &newest_sha, "node-1", "Pulling");
        snap.image_pull_jobs.push(job);
        snap.node_images.push(ni);
    }
    snap
}
