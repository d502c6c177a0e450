//! The context every controller's reconcile takes: the API client, the shared caches, the
//! expectations, metrics and the Event recorder. Built once by `runtime::run`, which also runs
//! the one watch behind each cache and starts no controller before every cache has listed its
//! objects ([`Context::wait_until_ready`]).
//!
//! A controller reads pods, nodes, NodeImages, ImagePullJobs, BroadcastJobs and Jobs from these caches and never lists
//! them itself; it fetches one object fresh only where a decision needs the latest version (a
//! compare-and-swap write, a request about a pod that may have just started).

use std::time::Duration;

use graft_api::apps::v1alpha1::{ImagePullJob, NodeImage};
use graft_api::apps::v1beta1::BroadcastJob;
use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Node, PersistentVolumeClaim, Pod};
use kube::Client;
use kube::runtime::reflector::Store;

use crate::expectations::Expectations;
use crate::metrics::Metrics;

/// What every reconcile needs: the client, the shared caches, expectations, metrics, events.
pub struct Context {
    /// API client.
    pub client: Client,
    /// The shared pod cache, fed by one watch: all namespaces, or the `--namespace` one.
    pub pods: Store<Pod>,
    /// The shared ControllerRevision cache, same scope as the pods: the CloneSets read their
    /// history from it instead of listing it on every reconcile (that list was most of a
    /// reconcile's time during a rollout).
    pub revisions: Store<ControllerRevision>,
    /// The shared PersistentVolumeClaim cache, same scope as the pods: the Advanced StatefulSets
    /// read their pods' claims from it.
    pub claims: Store<PersistentVolumeClaim>,
    /// The shared NodeImage cache (cluster-scoped; every install may read NodeImages).
    pub node_images: Store<NodeImage>,
    /// The shared Node cache (cluster-scoped): the NodeImage manager and the BroadcastJobs
    /// (one pod per eligible node) read it.
    pub nodes: Store<Node>,
    /// The shared BroadcastJob cache, same scope as the pods: the BroadcastJob controller
    /// reconciles from it and the AdvancedCronJobs read the runs they created.
    pub broadcast_jobs: Store<BroadcastJob>,
    /// The shared batch/v1 Job cache, same scope as the pods: the runs of AdvancedCronJobs with a
    /// `jobTemplate`.
    pub jobs: Store<Job>,
    /// The shared ImagePullJob cache: all namespaces when the NodeImage manager runs (it collects
    /// the tags of jobs that are gone, everywhere), otherwise the `--namespace` one.
    pub image_pull_jobs: Store<ImagePullJob>,
    /// SidecarSets and Namespaces, for injecting the pods graft's workload controllers create.
    pub sidecarsets: crate::sidecarset::SidecarSetSource,
    /// The namespace the controllers act in (`None`: all).
    pub namespace: Option<String>,
    /// Namespace ImagePullJob pull secrets are copied into for the node agents.
    pub pull_secrets_namespace: String,
    /// kruise's `--cloneset-scaling-exclude-preparing-delete`: PreparingDelete pods do not count
    /// as replicas when a CloneSet scales.
    pub cloneset_scaling_exclude_preparing_delete: bool,
    /// Writes not yet seen in the caches.
    pub expectations: Expectations,
    /// Prometheus metrics.
    pub metrics: Metrics,
    /// Publishes Events.
    pub recorder: crate::events::Recorder,
    /// The last `Plan::waiting` published as an Event, per CloneSet key: the Event goes out when
    /// the reason changes, not on every reconcile. Only dedups Events, so losing it on a restart
    /// costs one repeated Event.
    pub rollout_waiting: std::sync::Mutex<std::collections::HashMap<String, String>>,
}

impl Context {
    /// Remembers `waiting` as the current reason `key`'s rollout waits for; true when it differs
    /// from the last one (so an Event should say so).
    pub fn waiting_changed(&self, key: &str, waiting: Option<&str>) -> bool {
        let Ok(mut last) = self.rollout_waiting.lock() else {
            return false;
        };
        match waiting {
            None => last.remove(key).is_some(),
            Some(w) if last.get(key).map(String::as_str) == Some(w) => false,
            Some(w) => {
                last.insert(key.to_string(), w.to_string());
                true
            }
        }
    }

    /// Waits until every cache holds its first full list: a controller planning from a cache
    /// that has not listed yet would see nothing and act on that (create every pod again, give
    /// a job's tag to no node). Errs when a cache's watch is gone for good.
    pub async fn wait_until_ready(
        &self,
    ) -> Result<(), kube::runtime::reflector::store::WriterDropped> {
        self.pods.wait_until_ready().await?;
        self.revisions.wait_until_ready().await?;
        self.claims.wait_until_ready().await?;
        self.node_images.wait_until_ready().await?;
        self.image_pull_jobs.wait_until_ready().await?;
        self.sidecarsets.wait_until_ready().await?;
        self.nodes.wait_until_ready().await?;
        self.broadcast_jobs.wait_until_ready().await?;
        self.jobs.wait_until_ready().await?;
        Ok(())
    }

    /// The caches that have not listed yet, by kind (for `/readyz`); empty when all have.
    pub async fn unsynced(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if !ready(&self.pods).await {
            out.push("pod");
        }
        if !ready(&self.revisions).await {
            out.push("ControllerRevision");
        }
        if !ready(&self.claims).await {
            out.push("PersistentVolumeClaim");
        }
        if !ready(&self.node_images).await {
            out.push("NodeImage");
        }
        if !ready(&self.image_pull_jobs).await {
            out.push("ImagePullJob");
        }
        if !ready(&self.sidecarsets.sidecarsets).await {
            out.push("SidecarSet");
        }
        if !ready(&self.sidecarsets.namespaces).await {
            out.push("namespace");
        }
        if !ready(&self.nodes).await {
            out.push("node");
        }
        if !ready(&self.broadcast_jobs).await {
            out.push("BroadcastJob");
        }
        if !ready(&self.jobs).await {
            out.push("Job");
        }
        out
    }
}

async fn ready<K>(store: &Store<K>) -> bool
where
    K: kube::Resource + Clone + 'static,
    K::DynamicType: std::hash::Hash + Eq + Clone,
{
    matches!(
        tokio::time::timeout(Duration::from_millis(50), store.wait_until_ready()).await,
        Ok(Ok(()))
    )
}
