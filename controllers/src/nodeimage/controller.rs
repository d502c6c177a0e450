//! The NodeImage manager's executor: a level-triggered loop woken by changes to Nodes, NodeImages
//! and ImagePullJobs (and every few seconds), which reads them all, runs the pure
//! [`plan`](super::plan) and applies it. It also releases pull-secret copies no running job needs.

use std::collections::{BTreeMap, BTreeSet};

use futures::FutureExt;
use std::time::Duration;

use futures::StreamExt;
use graft_api::apps::v1alpha1::imagepulljob::ImagePullJob;
use graft_api::apps::v1alpha1::nodeimage::{NodeImage, NodeImageSpec};
use k8s_openapi::api::core::v1::{Node, Secret};
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use serde_json::json;

use super::plan::{self, Action, NodeView, Snapshot};
use crate::imagepull::secrets::{self, COPIED_SECRET_LABEL, SweepAction};

/// Field manager of graft's writes.
const MANAGER: &str = "graft";
/// Longest wait between passes.
const RESYNC: Duration = Duration::from_secs(10);
/// Shortest wait between passes (status writes of pulling agents come in bursts).
const MIN_INTERVAL: Duration = Duration::from_millis(500);

/// Options of the manager.
#[derive(Clone, Debug)]
pub struct Options {
    /// How long a Node must be Ready before it gets a NodeImage (kruise: 30 s).
    pub creation_delay: Duration,
    /// How long the node agent has to report on a new tag (kruise: 10 min).
    pub response_timeout: Duration,
    /// Namespace of the pull-secret copies to release.
    pub pull_secrets_namespace: String,
}

/// Runs the manager until the process stops.
pub async fn run(client: Client, opts: Options) {
    let nodes: Api<Node> = Api::all(client.clone());
    let node_images: Api<NodeImage> = Api::all(client.clone());
    let jobs: Api<ImagePullJob> = Api::all(client.clone());
    let secrets_api: Api<Secret> = Api::namespaced(client.clone(), &opts.pull_secrets_namespace);
    let cfg = || watcher::Config::default().any_semantic();
    let mut changes = futures::stream::select_all(vec![
        watcher(nodes.clone(), cfg()).map(|_| ()).boxed(),
        watcher(node_images.clone(), cfg()).map(|_| ()).boxed(),
        watcher(jobs.clone(), cfg()).map(|_| ()).boxed(),
    ]);
    tracing::info!("NodeImage manager running");
    loop {
        if let Err(e) = pass(&nodes, &node_images, &jobs, &secrets_api, &opts).await {
            tracing::warn!(error = %e, "NodeImage manager pass");
        }
        tokio::time::sleep(MIN_INTERVAL).await;
        tokio::select! {
            c = changes.next() => if c.is_none() { tracing::warn!("NodeImage manager watches ended"); return; },
            () = tokio::time::sleep(RESYNC) => {}
        }
        // Drain what queued up meanwhile: one pass covers it all.
        while let Some(Some(_)) = changes.next().now_or_never() {}
    }
}

async fn pass(
    nodes: &Api<Node>,
    node_images: &Api<NodeImage>,
    jobs: &Api<ImagePullJob>,
    secrets_api: &Api<Secret>,
    opts: &Options,
) -> Result<(), kube::Error> {
    let node_list = nodes.list(&ListParams::default()).await?;
    let ni_list = node_images.list(&ListParams::default()).await?;
    let job_list = jobs.list(&ListParams::default()).await?;
    let snapshot = Snapshot {
        nodes: node_list.items.iter().map(node_view).collect(),
        node_images: ni_list.items.clone(),
        live_jobs: job_list.items.iter().filter_map(|j| j.uid()).collect(),
        now: Timestamp::now(),
        creation_delay: opts.creation_delay,
        response_timeout: opts.response_timeout,
    };
    for action in plan::plan(&snapshot) {
        if let Err(e) = apply(node_images, &action).await {
            tracing::warn!(?action, error = %e, "NodeImage manager action");
        }
    }

    // Release pull-secret copies whose jobs are gone or finished.
    let running: BTreeSet<String> = job_list
        .items
        .iter()
        .filter(|j| {
            j.status
                .as_ref()
                .is_none_or(|s| s.completion_time.is_none())
        })
        .map(|j| format!("{}/{}", j.namespace().unwrap_or_default(), j.name_any()))
        .collect();
    let copies = match secrets_api
        .list(&ListParams::default().labels(&format!("{COPIED_SECRET_LABEL}=true")))
        .await
    {
        Ok(l) => l.items,
        Err(kube::Error::Api(e)) if e.code == 404 => vec![],
        Err(e) => return Err(e),
    };
    for a in secrets::sweep(&copies, &running) {
        let res = match &a {
            SweepAction::Delete(name) => secrets_api
                .delete(name, &DeleteParams::default())
                .await
                .map(|_| ()),
            SweepAction::SetReferences(name, refs) => secrets_api
                .patch(
                    name,
                    &PatchParams::default(),
                    &Patch::Merge(json!({"metadata": {"annotations": {
                        graft_api::labels::IMAGEPULLJOB_REFERENCES: refs}}})),
                )
                .await
                .map(|_| ()),
        };
        match res {
            Ok(()) => tracing::info!(action = ?a, "released pull secret copy"),
            Err(e) => tracing::warn!(action = ?a, error = %e, "releasing pull secret copy"),
        }
    }
    Ok(())
}

fn pp() -> PostParams {
    PostParams {
        field_manager: Some(MANAGER.to_string()),
        ..Default::default()
    }
}

fn node_view(node: &Node) -> NodeView {
    let ready_since = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
        .filter(|c| c.status == "True")
        .map(|c| {
            c.last_transition_time
                .as_ref()
                .map_or(Timestamp::UNIX_EPOCH, |t| t.0)
        });
    NodeView {
        name: node.name_any(),
        labels: node.labels().clone(),
        ready_since,
    }
}

async fn apply(api: &Api<NodeImage>, action: &Action) -> Result<(), kube::Error> {
    match action {
        Action::Create { name, labels } => {
            let ni = NodeImage {
                metadata: ObjectMeta {
                    name: Some(name.clone()),
                    labels: Some(labels.clone()),
                    ..Default::default()
                },
                spec: NodeImageSpec::default(),
                status: None,
            };
            match api.create(&pp(), &ni).await {
                Ok(_) => tracing::info!(nodeimage = %name, "created NodeImage for Ready node"),
                Err(kube::Error::Api(e)) if e.code == 409 => {}
                Err(e) => return Err(e),
            }
        }
        Action::Delete(name) => match api.delete(name, &DeleteParams::default()).await {
            Ok(_) => tracing::info!(nodeimage = %name, "deleted NodeImage of a removed node"),
            Err(kube::Error::Api(e)) if e.code == 404 => {}
            Err(e) => return Err(e),
        },
        Action::SetLabels { name, labels } => {
            let mut ni = api.get(name).await?;
            ni.metadata.labels = Some(labels.clone());
            api.replace(name, &pp(), &ni).await?;
        }
        Action::RemoveTags { name, tags } => {
            let mut ni = api.get(name).await?;
            if let Some(images) = ni.spec.images.as_mut() {
                for (image, tag, _) in tags {
                    if let Some(i) = images.get_mut(image) {
                        i.tags.retain(|t| &t.tag != tag);
                    }
                }
                images.retain(|_, i| !i.tags.is_empty());
            }
            api.replace(name, &pp(), &ni).await?;
            tracing::info!(nodeimage = %name, ?tags, "removed tags");
        }
        Action::MarkFailed { name, tags } => {
            let mut ni = api.get_status(name).await?;
            let status = ni.status.get_or_insert_with(Default::default);
            let images = status.image_statuses.get_or_insert_with(BTreeMap::new);
            for (image, t) in tags {
                let entry = images.entry(image.clone()).or_default();
                entry.tags.retain(|x| x.tag != t.tag);
                entry.tags.push(t.clone());
                tracing::warn!(nodeimage = %name, image = %image, tag = %t.tag, message = ?t.message, "marking tag failed");
            }
            api.replace_status(name, &pp(), &ni).await?;
        }
    }
    Ok(())
}
