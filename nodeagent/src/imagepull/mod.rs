//! The agent's image puller: watches this node's NodeImage only (field selector on its name), runs
//! one pull per tag and version, and writes the tags' states to the NodeImage status.

pub mod auth;
pub mod plan;
pub mod worker;
#[cfg(test)]
mod worker_tests;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use graft_api::apps::v1alpha1::nodeimage::{
    ImagePullPhase, ImageTagStatus, NodeImage, NodeImageStatus,
};
use k8s_openapi::api::core::v1::{ObjectReference, Secret};
use kube::api::{Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource};
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinHandle;

use crate::cri::{CriClient, proto::AuthConfig};
use crate::error::AgentError;
use crate::options::Options;
use plan::{TagJob, TagKey};
use worker::{Backoff, PullContext};

/// Field manager of the agent's status writes.
const MANAGER: &str = "graft-nodeagent";
/// How often the status is rewritten while nothing changes (keeps it fresh after a lost write).
const RESYNC: Duration = Duration::from_secs(30);

struct Running {
    version: i64,
    handle: JoinHandle<()>,
}

/// Runs the image puller for `opts.node_name` until the watch ends.
pub async fn run(client: Client, cri: CriClient, opts: Options) -> Result<(), AgentError> {
    let api: Api<NodeImage> = Api::all(client.clone());
    let limiter = (opts.max_concurrent_pulls > 0)
        .then(|| Arc::new(Semaphore::new(opts.max_concurrent_pulls)));
    let ctx = PullContext {
        cri,
        limiter,
        backoff: Backoff::default(),
    };
    let reporter = Reporter {
        controller: "graft-nodeagent".into(),
        instance: Some(opts.node_name.clone()),
    };
    let recorder = Recorder::new(client.clone(), reporter);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &opts.pull_secrets_namespace);
    let pulls: Arc<Mutex<BTreeMap<TagKey, ImageTagStatus>>> = Default::default();
    let changed = Arc::new(Notify::new());
    let mut running: BTreeMap<TagKey, Running> = BTreeMap::new();
    let mut current: Option<NodeImage> = None;
    let mut last_written: Option<NodeImageStatus> = None;

    let config = watcher::Config::default().fields(&format!("metadata.name={}", opts.node_name));
    let mut events = watcher(api.clone(), config)
        .default_backoff()
        .applied_objects()
        .boxed();
    tracing::info!(node = %opts.node_name, limit = opts.max_concurrent_pulls, "image puller watching its NodeImage");
    loop {
        tokio::select! {
            ev = events.next() => match ev {
                Some(Ok(ni)) => current = Some(ni),
                Some(Err(e)) => tracing::warn!(error = %e, "NodeImage watch"),
                None => return Err(AgentError::Task { task: "image puller", reason: "NodeImage watch ended".into() }),
            },
            () = changed.notified() => {}
            () = tokio::time::sleep(RESYNC) => last_written = None,
        }
        let Some(ni) = &current else { continue };
        let spec = ni.spec.clone();
        let observed = ni.status.clone().unwrap_or_default();

        // Finished pulls stay in `running` until their tag or version leaves the spec: the watch
        // may still show the old status, and that must not start the same pull again.
        let versions: BTreeMap<TagKey, i64> = running
            .iter()
            .map(|(k, r)| (k.clone(), r.version))
            .collect();
        let worker_plan = plan::plan_workers(&spec, &observed, &versions);
        for key in &worker_plan.stop {
            if let Some(r) = running.remove(key) {
                r.handle.abort();
            }
            lock(&pulls).remove(key);
        }
        for job in worker_plan.start {
            let key = job.key();
            let handle = tokio::spawn(pull_tag(
                job.clone(),
                ctx.clone(),
                secrets.clone(),
                recorder.clone(),
                ni.object_ref(&()),
                pulls.clone(),
                changed.clone(),
            ));
            running.insert(
                key,
                Running {
                    version: job.version,
                    handle,
                },
            );
        }

        let status = plan::build_status(&spec, &lock(&pulls), &observed);
        if Some(&status) != last_written.as_ref() && Some(&status) != ni.status.as_ref() {
            let patch = status_patch(&status, &observed);
            match api
                .patch_status(
                    &opts.node_name,
                    &PatchParams {
                        field_manager: Some(MANAGER.into()),
                        ..Default::default()
                    },
                    &Patch::Merge(&patch),
                )
                .await
            {
                Ok(_) => last_written = Some(status),
                Err(e) => {
                    tracing::warn!(node = %opts.node_name, error = %e, "writing NodeImage status")
                }
            }
        } else {
            last_written = Some(status);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A merge patch that sets `status` and removes images the old status had and the new one lacks.
fn status_patch(status: &NodeImageStatus, old: &NodeImageStatus) -> serde_json::Value {
    let mut value = serde_json::to_value(status).unwrap_or_default();
    let mut images = serde_json::Map::new();
    for name in old.image_statuses.iter().flat_map(|m| m.keys()) {
        images.insert(name.clone(), serde_json::Value::Null);
    }
    if let Some(new) = value.get("imageStatuses").and_then(|v| v.as_object()) {
        for (k, v) in new {
            images.insert(k.clone(), v.clone());
        }
    }
    value["imageStatuses"] = serde_json::Value::Object(images);
    serde_json::json!({ "status": value })
}

/// Reads the credentials for `job`'s registry from its pull secrets (in the agent's namespace).
async fn credentials(job: &TagJob, secrets: &Api<Secret>) -> (Vec<AuthConfig>, Vec<String>) {
    let host = auth::registry_host(&job.reference());
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for r in &job.pull_secrets {
        let Some(name) = r.name.as_deref() else {
            continue;
        };
        let key = format!("{}/{name}", r.namespace.as_deref().unwrap_or_default());
        match secrets.get_opt(name).await {
            Ok(Some(secret)) => {
                let data: BTreeMap<String, Vec<u8>> = secret
                    .data
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, v.0))
                    .collect();
                match auth::credentials_for(&key, &data, &host) {
                    Ok(c) => out.extend(c),
                    Err(e) => problems.push(e.to_string()),
                }
            }
            Ok(None) => problems.push(format!("pull secret {key} not found")),
            Err(e) => problems.push(format!("reading pull secret {key}: {e}")),
        }
    }
    (out, problems)
}

#[allow(clippy::too_many_arguments)]
async fn pull_tag(
    job: TagJob,
    ctx: PullContext,
    secrets: Api<Secret>,
    recorder: Recorder,
    node_image: ObjectReference,
    pulls: Arc<Mutex<BTreeMap<TagKey, ImageTagStatus>>>,
    changed: Arc<Notify>,
) {
    let key = job.key();
    let (creds, problems) = credentials(&job, &secrets).await;
    for p in &problems {
        tracing::warn!(image = %job.reference(), problem = %p, "pull secret");
    }
    let report = |s: ImageTagStatus| {
        lock(&pulls).insert(key.clone(), s);
        changed.notify_one();
    };
    let mut last = worker::pull(&job, creds, &ctx, &report).await;
    if last.phase == ImagePullPhase::Failed && !problems.is_empty() {
        last.message = Some(format!(
            "{}; {}",
            last.message.unwrap_or_default(),
            problems.join("; ")
        ));
        report(last.clone());
    }
    let (type_, reason) = match last.phase {
        ImagePullPhase::Succeeded => (EventType::Normal, "PullImageSucceed"),
        _ => (EventType::Warning, "PullImageFailed"),
    };
    let note = match last.phase {
        ImagePullPhase::Succeeded => format!("Image {} has been pulled", job.reference()),
        _ => format!(
            "Failed to pull image {}: {}",
            job.reference(),
            last.message.clone().unwrap_or_default()
        ),
    };
    let event = Event {
        type_,
        reason: reason.into(),
        note: Some(truncate(&note, 1000)),
        action: "PullImage".into(),
        secondary: None,
    };
    if let Err(e) = recorder.publish(&event, &node_image).await {
        tracing::debug!(error = %e, "publishing pull event");
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use graft_api::apps::v1alpha1::nodeimage::ImageStatus;
    use serde_json::json;

    #[test]
    fn the_status_patch_drops_images_that_left_the_spec() {
        let tag = |t: &str| ImageTagStatus {
            tag: t.into(),
            phase: ImagePullPhase::Succeeded,
            version: Some(0),
            ..Default::default()
        };
        let old = NodeImageStatus {
            image_statuses: Some(BTreeMap::from([
                (
                    "gone".to_string(),
                    ImageStatus {
                        tags: vec![tag("v1")],
                    },
                ),
                (
                    "kept".to_string(),
                    ImageStatus {
                        tags: vec![tag("v1")],
                    },
                ),
            ])),
            ..Default::default()
        };
        let new = NodeImageStatus {
            desired: 1,
            succeeded: 1,
            image_statuses: Some(BTreeMap::from([(
                "kept".to_string(),
                ImageStatus {
                    tags: vec![tag("v2")],
                },
            )])),
            ..Default::default()
        };
        let patch = status_patch(&new, &old);
        assert_eq!(patch["status"]["imageStatuses"]["gone"], json!(null));
        assert_eq!(
            patch["status"]["imageStatuses"]["kept"]["tags"][0]["tag"],
            "v2"
        );
        assert_eq!(patch["status"]["desired"], 1);
    }
}
