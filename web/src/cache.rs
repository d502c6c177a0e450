//! One watch per kind for the whole process, kept in reflector stores. Every change bumps a
//! counter that SSE streams follow, so the number of browsers never changes the load on the API
//! server.

use std::fmt::Debug;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use graft_api::apps::v1alpha1::imagepulljob::ImagePullJob;
use graft_api::apps::v1alpha1::nodeimage::NodeImage;
use graft_api::graft::gitsync::GitSync;
use graft_api::labels;
use k8s_openapi::api::core::v1::{Event, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::api::DynamicObject;
use kube::runtime::reflector::{self, Lookup, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::watch;

use graft_api::workload::{Scope, WorkloadKind};

use crate::snapshot::{LiveWorkload, Snapshot};

/// The watched objects and the change counter.
#[derive(Clone)]
pub struct Cache {
    gitsyncs: Store<GitSync>,
    workloads: Vec<(WorkloadKind, Store<DynamicObject>)>,
    pods: Store<Pod>,
    events: Store<Event>,
    image_pull_jobs: Store<ImagePullJob>,
    node_images: Store<NodeImage>,
    changes: Arc<watch::Sender<u64>>,
}

/// Things the pages can be rendered from: the live [`Cache`], or a fixed snapshot in tests and
/// benchmarks.
pub trait Source: Send + Sync + 'static {
    /// The objects now.
    fn snapshot(&self) -> Snapshot;
    /// A receiver whose value changes whenever the objects do.
    fn changes(&self) -> watch::Receiver<u64>;
}

impl Source for Cache {
    fn snapshot(&self) -> Snapshot {
        Snapshot {
            gitsyncs: self.gitsyncs.state(),
            workloads: self
                .workloads
                .iter()
                .flat_map(|(k, s)| {
                    s.state().into_iter().map(|o| LiveWorkload {
                        kind: *k,
                        object: o,
                    })
                })
                .collect(),
            pods: self.pods.state(),
            events: self.events.state(),
            image_pull_jobs: self.image_pull_jobs.state(),
            node_images: self.node_images.state(),
            now: Timestamp::now(),
        }
    }

    fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }
}

/// A snapshot set by hand (tests, benchmarks): [`FixedSource::set`] replaces it and notifies
/// the SSE streams as a watch event would.
pub struct FixedSource {
    snapshot: std::sync::RwLock<Snapshot>,
    changes: watch::Sender<u64>,
}

impl FixedSource {
    /// A source serving `snapshot`.
    pub fn new(snapshot: Snapshot) -> Self {
        FixedSource {
            snapshot: std::sync::RwLock::new(snapshot),
            changes: watch::channel(0).0,
        }
    }

    /// Replace the snapshot and announce the change.
    pub fn set(&self, snapshot: Snapshot) {
        if let Ok(mut s) = self.snapshot.write() {
            *s = snapshot;
        }
        self.changes.send_modify(|v| *v += 1);
    }
}

impl Source for FixedSource {
    fn snapshot(&self) -> Snapshot {
        self.snapshot
            .read()
            .map(|s| s.clone())
            .unwrap_or_else(|_| Snapshot::empty(Timestamp::now()))
    }

    fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }
}

fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    K::DynamicType: Default,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Runs a watch into a store, bumping `changes` after the first list and on every change;
/// managed fields are dropped to keep memory down. Errors are retried with backoff; the first
/// is logged as a warning, later ones at debug level.
fn run<K, S>(
    what: &'static str,
    writer: reflector::store::Writer<K>,
    stream: S,
    changes: Arc<watch::Sender<u64>>,
) -> impl std::future::Future<Output = ()> + Send + 'static
where
    K: Lookup + Resource + Clone + Debug + DeserializeOwned + Send + Sync + 'static,
    <K as Resource>::DynamicType: Eq + Hash + Clone + Send + Sync,
    <K as Lookup>::DynamicType: Eq + Hash + Clone + Send + Sync,
    S: Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
{
    let stream = reflector(
        writer,
        stream.default_backoff().modify(|o: &mut K| {
            o.meta_mut().managed_fields = None;
        }),
    );
    async move {
        let mut stream = std::pin::pin!(stream);
        let mut warned = false;
        while let Some(ev) = stream.next().await {
            match ev {
                Ok(watcher::Event::Init | watcher::Event::InitApply(_)) => {}
                Ok(_) => changes.send_modify(|v| *v += 1),
                Err(e) if !warned => {
                    warned = true;
                    tracing::warn!(kind = what, error = %e, "watch failed; retrying");
                }
                Err(e) => tracing::debug!(kind = what, error = %e, "watch failed; retrying"),
            }
        }
    }
}

use kube::runtime::reflector::reflector;

/// Drops what the pages never read from a pod before it is stored (the pod store is the biggest
/// by far): container specs except name and image, volumes, scheduling constraints, and every
/// annotation but the in-place update state. Node, labels, status and times stay.
pub fn slim_pod(pod: &mut Pod) {
    if let Some(a) = pod.metadata.annotations.as_mut() {
        a.retain(|k, _| {
            k == graft_api::labels::INPLACE_UPDATE_STATE
                || k == graft_api::labels::INPLACE_UPDATE_STATE_LEGACY
        });
    }
    if let Some(spec) = pod.spec.as_mut() {
        let slim = |c: &mut k8s_openapi::api::core::v1::Container| {
            *c = k8s_openapi::api::core::v1::Container {
                name: std::mem::take(&mut c.name),
                image: c.image.take(),
                ..Default::default()
            };
        };
        spec.containers.iter_mut().for_each(slim);
        spec.init_containers.iter_mut().flatten().for_each(slim);
        spec.ephemeral_containers = None;
        spec.volumes = None;
        spec.affinity = None;
        spec.tolerations = None;
        spec.topology_spread_constraints = None;
        spec.readiness_gates = None;
    }
}

/// Waits until `store` has its first list, or warns after `timeout` (the watch keeps retrying:
/// the kind's objects show once it succeeds).
fn ready<K>(
    what: &'static str,
    store: Store<K>,
    timeout: Duration,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>
where
    K: Lookup + Clone + Send + Sync + 'static,
    <K as Lookup>::DynamicType: Eq + Hash + Clone + Send + Sync,
{
    Box::pin(async move {
        if tokio::time::timeout(timeout, store.wait_until_ready())
            .await
            .is_err()
        {
            tracing::warn!(
                kind = what,
                "not listed yet (CRD not installed, or no permission to list and watch it); \
                 serving without it until its watch succeeds"
            );
        }
    })
}

impl Cache {
    /// Starts the watches (all namespaces, or one) on the current tokio runtime and waits up
    /// to `ready_timeout` for their first lists.
    pub async fn start(
        client: Client,
        namespace: Option<String>,
        ready_timeout: Duration,
    ) -> Cache {
        let ns = namespace.as_deref();
        let (tx, _) = watch::channel(0u64);
        let changes = Arc::new(tx);
        let mut waits: Vec<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>> =
            Vec::new();

        macro_rules! typed {
            ($ty:ty, $what:expr, $api:expr, $cfg:expr) => {{
                let (reader, writer) = reflector::store::<$ty>();
                let stream = watcher($api, $cfg);
                tokio::spawn(run($what, writer, stream, changes.clone()));
                waits.push(ready($what, reader.clone(), ready_timeout));
                reader
            }};
        }

        let gitsyncs = typed!(
            GitSync,
            "GitSync",
            api::<GitSync>(&client, ns),
            watcher::Config::default()
        );
        let pods = {
            let (reader, writer) = reflector::store::<Pod>();
            let stream =
                watcher(api::<Pod>(&client, ns), watcher::Config::default()).modify(slim_pod);
            tokio::spawn(run("Pod", writer, stream, changes.clone()));
            waits.push(ready("Pod", reader.clone(), ready_timeout));
            reader
        };
        let events = typed!(
            Event,
            "Event",
            api::<Event>(&client, ns),
            watcher::Config::default()
        );
        let image_pull_jobs = typed!(
            ImagePullJob,
            "ImagePullJob",
            api::<ImagePullJob>(&client, ns),
            watcher::Config::default().labels(labels::GRAFT_SYNC)
        );
        let node_images = {
            let (reader, writer) = reflector::store::<NodeImage>();
            let stream = watcher(Api::<NodeImage>::all(client.clone()), Default::default());
            tokio::spawn(run("NodeImage", writer, stream, changes.clone()));
            waits.push(ready("NodeImage", reader.clone(), ready_timeout));
            reader
        };
        let mut workloads = Vec::new();
        for kind in WorkloadKind::ROLLOUT {
            let ar = api_resource(&kind);
            let api: Api<DynamicObject> = match (kind.scope, ns) {
                (Scope::Namespaced, Some(n)) => Api::namespaced_with(client.clone(), n, &ar),
                _ => Api::all_with(client.clone(), &ar),
            };
            let writer = reflector::store::Writer::<DynamicObject>::new(ar.clone());
            let reader = writer.as_reader();
            let stream = watcher(
                api,
                watcher::Config::default().labels(labels::GRAFT_GITSYNC),
            );
            // A dashboard of one namespace shows the cluster-scoped workloads (SidecarSets) its
            // own GitSyncs applied, and none of other namespaces'. Without the permission to read
            // them (a RoleBinding only), the watch fails and the kind stays empty.
            let own = match (kind.scope, ns) {
                (Scope::Cluster, Some(n)) => Some(format!("{n}.")),
                _ => None,
            };
            let stream = stream.filter_map(move |ev| {
                let keep = |o: &DynamicObject| {
                    own.as_ref().is_none_or(|prefix| {
                        kube::ResourceExt::labels(o)
                            .get(labels::GRAFT_GITSYNC)
                            .is_some_and(|v| v.starts_with(prefix.as_str()))
                    })
                };
                let ev = match ev {
                    Ok(watcher::Event::InitApply(o)) if !keep(&o) => None,
                    Ok(watcher::Event::Apply(o)) if !keep(&o) => {
                        Some(Ok(watcher::Event::Delete(o)))
                    }
                    other => Some(other),
                };
                std::future::ready(ev)
            });
            tokio::spawn(run(kind.kind, writer, stream, changes.clone()));
            waits.push(ready(kind.kind, reader.clone(), ready_timeout));
            workloads.push((kind, reader));
        }
        // Missing CRDs (or RBAC) must not keep the dashboard from starting.
        futures::future::join_all(waits).await;
        Cache {
            gitsyncs,
            workloads,
            pods,
            events,
            image_pull_jobs,
            node_images,
            changes,
        }
    }
}

/// `kube`'s description of the resource of a workload kind.
pub fn api_resource(kind: &WorkloadKind) -> kube::discovery::ApiResource {
    kube::discovery::ApiResource {
        group: kind.group.into(),
        version: kind.version.into(),
        api_version: kind.api_version(),
        kind: kind.kind.into(),
        plural: kind.plural.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slim_pod_keeps_what_the_pages_read() {
        let mut pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web-1", "namespace": "ns", "labels": {"app": "web"},
                         "creationTimestamp": "2026-01-01T00:00:00Z",
                         "annotations": {"apps.kruise.io/inplace-update-state": "{\"revision\":\"r\"}",
                                         "kubectl.kubernetes.io/last-applied-configuration": "{...}"}},
            "spec": {"nodeName": "n1", "volumes": [{"name": "v", "emptyDir": {}}],
                     "containers": [{"name": "app", "image": "app:v2", "env": [{"name": "PASSWORD", "value": "x"}]}]},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
        }))
        .expect("pod");
        slim_pod(&mut pod);
        let a = pod.metadata.annotations.clone().unwrap_or_default();
        assert_eq!(
            a.keys().collect::<Vec<_>>(),
            ["apps.kruise.io/inplace-update-state"]
        );
        let spec = pod.spec.clone().unwrap_or_default();
        assert_eq!(spec.node_name.as_deref(), Some("n1"));
        assert_eq!(spec.containers[0].image.as_deref(), Some("app:v2"));
        assert!(spec.containers[0].env.is_none() && spec.volumes.is_none());
        assert!(crate::pods::is_ready(&pod));
        assert_eq!(
            crate::pods::in_place_state(&pod).map(|s| s.revision),
            Some("r".to_string())
        );
    }
}
