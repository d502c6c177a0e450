//! The NodeImage manager's executor: a level-triggered loop woken by changes to Nodes, NodeImages
//! and ImagePullJobs (and every few seconds), which reads them from the shared caches of the
//! [`Context`], runs the pure [`plan`](super::plan) and applies it. It also releases pull-secret
//! copies no running job needs.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use graft_api::apps::v1alpha1::nodeimage::{NodeImage, NodeImageSpec};
use k8s_openapi::api::core::v1::{Node, Secret};
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;
use tokio::sync::Notify;

use super::plan::{self, Action, NodeView, Snapshot};
use crate::context::Context;
use crate::pullsecrets::{self as secrets, SweepAction};

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
}

/// Errors of one pass of the manager.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Listing the pull-secret copies failed.
    #[error("listing the pull-secret copies in {namespace}: {source}")]
    ListCopies {
        /// The pull-secrets namespace.
        namespace: String,
        /// The cause.
        #[source]
        source: kube::Error,
    },
}

/// Runs the manager until the process stops: a pass now, then one after every wake-up of
/// `changes` (notified by the runtime on every Node, NodeImage and ImagePullJob change; changes
/// during a pass coalesce into one more pass) or after [`RESYNC`].
pub async fn run(ctx: Arc<Context>, opts: Options, changes: Arc<Notify>) {
    tracing::info!("NodeImage manager running");
    loop {
        if let Err(e) = pass(&ctx, &opts).await {
            tracing::warn!(error = %e, "NodeImage manager pass");
        }
        tokio::time::sleep(MIN_INTERVAL).await;
        tokio::select! {
            () = changes.notified() => {}
            () = tokio::time::sleep(RESYNC) => {}
        }
    }
}

async fn pass(ctx: &Context, opts: &Options) -> Result<(), Error> {
    let nodes = &ctx.nodes;
    let node_images: Api<NodeImage> = Api::all(ctx.client.clone());
    let secrets_api: Api<Secret> = Api::namespaced(ctx.client.clone(), &ctx.pull_secrets_namespace);
    let jobs = ctx.image_pull_jobs.state();
    let mut node_list = nodes.state();
    node_list.sort_by_key(|n| n.name_any());
    let mut ni_list: Vec<NodeImage> = ctx
        .node_images
        .state()
        .iter()
        .map(|ni| (**ni).clone())
        .collect();
    ni_list.sort_by_key(|n| n.name_any());
    let snapshot = Snapshot {
        nodes: node_list.iter().map(|n| node_view(n)).collect(),
        node_images: ni_list,
        live_jobs: jobs.iter().filter_map(|j| j.uid()).collect(),
        now: Timestamp::now(),
        creation_delay: opts.creation_delay,
        response_timeout: opts.response_timeout,
    };
    for action in plan::plan(&snapshot) {
        if let Err(e) = apply(&node_images, &action).await {
            tracing::warn!(?action, error = %e, "NodeImage manager action");
        }
    }

    // Release pull-secret copies whose jobs are gone or finished.
    let running: BTreeSet<String> = jobs
        .iter()
        .filter(|j| {
            j.status
                .as_ref()
                .is_none_or(|s| s.completion_time.is_none())
        })
        .map(|j| format!("{}/{}", j.namespace().unwrap_or_default(), j.name_any()))
        .collect();
    // No cache holds Secrets (graft reads only the agents' namespace): list them; the sweep
    // picks the copies (annotation `imagepulljobs.kruise.io/source-key`).
    let copies = match secrets_api.list(&ListParams::default()).await {
        Ok(l) => l.items,
        Err(kube::Error::Api(e)) if e.code == 404 => vec![],
        Err(source) => {
            return Err(Error::ListCopies {
                namespace: ctx.pull_secrets_namespace.clone(),
                source,
            });
        }
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
