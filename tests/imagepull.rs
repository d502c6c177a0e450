//! ImagePullJob / NodeImage / node agent acceptance tests on the local cluster: `graft controllers`
//! (with the NodeImage manager) and `graft nodeagent` run as children against the real API server
//! and the real containerd. They share the node's NodeImage, so they take turns (ClusterLock).
#![cfg(feature = "cluster-tests")]

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use graft_api::apps::v1alpha1::nodeimage::ImagePullPhase;
use graft_api::apps::v1alpha1::{ImagePullJob, NodeImage};
use k8s_openapi::api::core::v1::{Event, Pod, Secret};
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use support::imagepull::{
    AuthRegistry, ChildProcess, ClusterLock, FakeNode, cri, start_agent, start_manager_with,
};
use support::{TestNamespace, image, node_name, wait_for};

struct Fixture {
    client: Client,
    ns: TestNamespace,
    manager: ChildProcess,
    agent: Option<ChildProcess>,
    /// The agents' namespace for pull-secret copies when it is not `ns` (see
    /// [`Fixture::with_agents_namespace`]).
    agents: Option<TestNamespace>,
    _lock: ClusterLock,
}

impl Fixture {
    /// Takes the lock, starts from a fresh NodeImage for the real node, runs the manager and an
    /// agent for the real node with at most `max_pulls` pulls at once.
    async fn new(prefix: &str, max_pulls: usize) -> Fixture {
        Self::with_manager_flags(prefix, max_pulls, &[]).await
    }

    /// [`Fixture::new`] with extra `graft controllers` flags.
    async fn with_manager_flags(prefix: &str, max_pulls: usize, flags: &[&str]) -> Fixture {
        Self::build(prefix, max_pulls, flags, false).await
    }

    /// [`Fixture::new`] with the agents' pull-secret namespace apart from the jobs' namespace,
    /// as in a real install (a job in the agents' own namespace has its secrets used as they
    /// are, without copies).
    async fn with_agents_namespace(prefix: &str, max_pulls: usize) -> Fixture {
        Self::build(prefix, max_pulls, &[], true).await
    }

    async fn build(prefix: &str, max_pulls: usize, flags: &[&str], apart: bool) -> Fixture {
        let lock = ClusterLock::acquire();
        let client = support::client().await;
        support::install_crds(&client).await;
        let ns = TestNamespace::new(&client, prefix).await;
        let agents = if apart {
            Some(TestNamespace::new(&client, &format!("{prefix}-agents")).await)
        } else {
            None
        };
        let secrets_ns = agents.as_ref().map_or(ns.name.clone(), |a| a.name.clone());
        let nis: Api<NodeImage> = Api::all(client.clone());
        // Tags of earlier tests (their jobs may still be terminating) must not take pull slots.
        let _ = nis.delete(&node_name(), &DeleteParams::default()).await;
        support::eventually(
            "the old NodeImage to be gone",
            Duration::from_secs(30),
            || {
                let nis = nis.clone();
                async move {
                    match nis.get_opt(&node_name()).await {
                        Ok(Some(ni))
                            if ni.metadata.deletion_timestamp.is_none()
                                && ni.spec.images.as_ref().is_none_or(|i| i.is_empty()) =>
                        {
                            Ok(())
                        }
                        Ok(None) => Ok(()),
                        other => Err(format!("{other:?}")),
                    }
                }
            },
        )
        .await;
        let manager = start_manager_with(&ns.name, &secrets_ns, flags);
        wait_for(
            &nis,
            &node_name(),
            "the manager to create the node's NodeImage",
            Duration::from_secs(60),
            |_| true,
        )
        .await;
        let agent = Some(start_agent(&node_name(), &secrets_ns, max_pulls));
        Fixture {
            client,
            ns,
            manager,
            agent,
            agents,
            _lock: lock,
        }
    }

    /// Secrets in the agents' pull-secret namespace.
    fn agents_secrets(&self) -> Api<Secret> {
        self.agents.as_ref().unwrap_or(&self.ns).api()
    }

    fn jobs(&self) -> Api<ImagePullJob> {
        self.ns.api()
    }

    async fn create_job(&self, name: &str, spec: serde_json::Value) -> ImagePullJob {
        let job: ImagePullJob = serde_json::from_value(json!({
            "apiVersion": "apps.kruise.io/v1alpha1", "kind": "ImagePullJob",
            "metadata": {"name": name, "namespace": self.ns.name},
            "spec": spec
        }))
        .unwrap();
        self.jobs()
            .create(&PostParams::default(), &job)
            .await
            .unwrap_or_else(|e| panic!("creating ImagePullJob {name}: {e}"))
    }

    async fn wait_job(
        &self,
        name: &str,
        what: &str,
        timeout: Duration,
        f: impl Fn(&ImagePullJob) -> bool,
    ) -> ImagePullJob {
        let jobs = self.jobs();
        let start = std::time::Instant::now();
        loop {
            let job = jobs.get_opt(name).await.ok().flatten();
            if let Some(j) = &job
                && f(j)
            {
                return j.clone();
            }
            if start.elapsed() > timeout {
                panic!(
                    "timed out waiting for ImagePullJob {name}: {what}; last seen: {}\nmanager log:\n{}\nagent log:\n{}",
                    serde_json::to_string_pretty(&job).unwrap_or_default(),
                    self.manager.log_tail(),
                    self.agent
                        .as_ref()
                        .map(|a| a.log_tail())
                        .unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    async fn job_events(&self, name: &str) -> Vec<String> {
        let events: Api<k8s_openapi::api::events::v1::Event> = self.ns.api();
        events
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
            .map(|e| {
                format!(
                    "{}: {}",
                    e.reason.unwrap_or_default(),
                    e.note.unwrap_or_default()
                )
            })
            .collect()
    }
}

fn completed(j: &ImagePullJob) -> bool {
    j.status
        .as_ref()
        .is_some_and(|s| s.completion_time.is_some())
}

/// The status of `tag` of `image_name` on NodeImage `ni`.
fn tag_status(
    ni: &NodeImage,
    image_name: &str,
    tag: &str,
) -> Option<graft_api::apps::v1alpha1::nodeimage::ImageTagStatus> {
    ni.status
        .as_ref()?
        .image_statuses
        .as_ref()?
        .get(image_name)?
        .tags
        .iter()
        .find(|t| t.tag == tag)
        .cloned()
}

fn split(image: &str) -> (String, String) {
    let (n, t) = image.rsplit_once(':').unwrap();
    (n.to_string(), t.to_string())
}

/// Records every NodeImage state while a test runs.
struct NodeImageWatch {
    seen: Arc<Mutex<Vec<NodeImage>>>,
    task: tokio::task::JoinHandle<()>,
}

impl NodeImageWatch {
    fn start(client: &Client) -> NodeImageWatch {
        let api: Api<NodeImage> = Api::all(client.clone());
        let seen: Arc<Mutex<Vec<NodeImage>>> = Default::default();
        let s = seen.clone();
        let task = tokio::spawn(async move {
            let mut stream = watcher(api, watcher::Config::default())
                .applied_objects()
                .boxed();
            while let Some(ev) = stream.next().await {
                if let Ok(ni) = ev {
                    s.lock().unwrap().push(ni);
                }
            }
        });
        NodeImageWatch { seen, task }
    }

    fn history(&self) -> Vec<NodeImage> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for NodeImageWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_image_is_prepulled_and_a_pod_then_starts_without_pulling() {
    let fx = Fixture::new("ipj-large", 2).await;
    let large = image("large:v1");
    let cri = cri().await;
    cri.remove_image(&large).await.unwrap();
    assert!(
        cri.image_status(&large).await.unwrap().is_none(),
        "{large} still present after RemoveImage"
    );

    fx.create_job(
        "large",
        json!({"image": large, "selector": {"names": [node_name()]},
        "pullPolicy": {"timeoutSeconds": 300, "backoffLimit": 1}}),
    )
    .await;
    let job = fx
        .wait_job("large", "completed", Duration::from_secs(300), completed)
        .await;
    let st = job.status.unwrap();
    assert_eq!(
        (st.desired, st.succeeded, st.failed, st.active),
        (1, 1, 0, 0),
        "{st:?}"
    );
    assert_eq!(st.message.as_deref(), Some("job has completed"));

    // Present in containerd, checked through CRI.
    let present = cri
        .image_status(&large)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{large} not in containerd"));

    // The NodeImage says Succeeded with the imageID.
    let nis: Api<NodeImage> = Api::all(fx.client.clone());
    let ni = nis.get(&node_name()).await.unwrap();
    let (name, tag) = split(&large);
    let ts = tag_status(&ni, &name, &tag).unwrap();
    assert_eq!(ts.phase, ImagePullPhase::Succeeded, "{ts:?}");
    let image_id = ts.image_id.unwrap();
    assert!(
        image_id.starts_with(&format!("{name}@sha256:")),
        "{image_id}"
    );
    assert!(
        present.repo_digests.contains(&image_id),
        "{image_id} not among {:?}",
        present.repo_digests
    );
    assert_eq!(ts.progress, Some(100));
    // The agent's Event on the NodeImage (cluster-scoped objects' Events go to `default`).
    let node_events: Api<k8s_openapi::api::events::v1::Event> =
        Api::namespaced(fx.client.clone(), "default");
    support::eventually(
        "a PullImageSucceed event on the NodeImage",
        Duration::from_secs(30),
        || {
            let node_events = node_events.clone();
            let large = large.clone();
            async move {
                let found = node_events
                    .list(&ListParams::default())
                    .await
                    .map_err(|e| e.to_string())?
                    .items
                    .into_iter()
                    .any(|e| {
                        e.reason.as_deref() == Some("PullImageSucceed")
                            && e.regarding.as_ref().and_then(|r| r.kind.as_deref())
                                == Some("NodeImage")
                            && e.note.as_deref().is_some_and(|n| n.contains(&large))
                    });
                if found {
                    Ok(())
                } else {
                    Err("no such event".to_string())
                }
            }
        },
    )
    .await;

    // A pod using it starts without pulling.
    let pods: Api<Pod> = fx.ns.api();
    let pod: Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "uses-large"},
        "spec": {"terminationGracePeriodSeconds": 0, "containers": [{"name": "app", "image": large, "imagePullPolicy": "IfNotPresent"}]}
    })).unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    wait_for(
        &pods,
        "uses-large",
        "Running",
        Duration::from_secs(120),
        |p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"),
    )
    .await;
    let events: Api<Event> = fx.ns.api();
    let msgs: Vec<String> = events
        .list(&ListParams::default().fields("involvedObject.name=uses-large"))
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|e| {
            format!(
                "{}: {}",
                e.reason.unwrap_or_default(),
                e.message.unwrap_or_default()
            )
        })
        .collect();
    assert!(
        msgs.iter()
            .any(|m| m.starts_with("Pulled: ") && m.contains("already present on machine")),
        "pod events: {msgs:?}"
    );
    assert!(
        !msgs.iter().any(|m| m.starts_with("Pulling: ")),
        "the pod pulled: {msgs:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_image_fails_after_its_backoff_with_the_registry_error() {
    let fx = Fixture::new("ipj-missing", 2).await;
    let watch = NodeImageWatch::start(&fx.client);
    let missing = image("does-not-exist:v1");
    fx.create_job(
        "missing",
        json!({"image": missing, "pullPolicy": {"timeoutSeconds": 30, "backoffLimit": 2},
        "selector": {"names": [node_name()]}}),
    )
    .await;
    let job = fx
        .wait_job("missing", "completed", Duration::from_secs(120), completed)
        .await;
    let st = job.status.unwrap();
    assert_eq!((st.desired, st.succeeded, st.failed), (1, 0, 1), "{st:?}");
    assert_eq!(st.failed_nodes, Some(vec![node_name()]));
    assert_eq!(st.message.as_deref(), Some("job has completed"));

    let (name, tag) = split(&missing);
    let nis: Api<NodeImage> = Api::all(fx.client.clone());
    let ts = tag_status(&nis.get(&node_name()).await.unwrap(), &name, &tag).unwrap();
    assert_eq!(ts.phase, ImagePullPhase::Failed);
    let msg = ts.message.unwrap_or_default();
    assert!(
        msg.contains("not found") && msg.contains(&missing),
        "the registry's error: {msg}"
    );
    // It tried 1 + backoffLimit times before failing.
    let attempts: Vec<String> = watch
        .history()
        .iter()
        .filter(|ni| ni.name_any() == node_name())
        .filter_map(|ni| tag_status(ni, &name, &tag))
        .filter_map(|t| t.message)
        .filter(|m| m.starts_with("pulling, attempt"))
        .collect();
    assert!(
        attempts.iter().any(|m| m == "pulling, attempt 3/3"),
        "attempts seen: {attempts:?}"
    );
    let events = fx.job_events("missing").await;
    assert!(
        events
            .iter()
            .any(|e| e.starts_with("PullImageFailed") && e.contains("not found")),
        "job events: {events:?}"
    );
}

fn pull_secret(name: &str, config: &str) -> Secret {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
        "type": "kubernetes.io/dockerconfigjson",
        "stringData": {".dockerconfigjson": config}
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_with_credentials_needs_the_right_pull_secret() {
    let registry = AuthRegistry::start().await;
    let fx = Fixture::with_agents_namespace("ipj-auth", 2).await;
    let private = format!("{}/graft-test/app:v2", registry.addr);
    let cri = cri().await;
    cri.remove_image(&private).await.unwrap();

    let secrets: Api<Secret> = fx.ns.api();
    secrets
        .create(
            &PostParams::default(),
            &pull_secret("wrong", &registry.docker_config("not-the-password")),
        )
        .await
        .unwrap();
    secrets
        .create(
            &PostParams::default(),
            &pull_secret("right", &registry.docker_config(AuthRegistry::PASSWORD)),
        )
        .await
        .unwrap();

    // Wrong credentials: Failed with the registry's refusal.
    fx.create_job(
        "wrong",
        json!({"image": private, "pullSecrets": ["wrong"], "selector": {"names": [node_name()]},
        "pullPolicy": {"timeoutSeconds": 30, "backoffLimit": 0}}),
    )
    .await;
    let job = fx
        .wait_job("wrong", "completed", Duration::from_secs(120), completed)
        .await;
    let st = job.status.unwrap();
    assert_eq!((st.succeeded, st.failed), (0, 1), "{st:?}");
    let (name, tag) = split(&private);
    let nis: Api<NodeImage> = Api::all(fx.client.clone());
    let ts = tag_status(&nis.get(&node_name()).await.unwrap(), &name, &tag).unwrap();
    let msg = ts.message.unwrap_or_default();
    assert!(
        msg.contains("401") || msg.to_lowercase().contains("unauthorized"),
        "{msg}"
    );
    assert!(cri.image_status(&private).await.unwrap().is_none());

    // The right ones: Succeeded, and the image is in containerd.
    fx.create_job(
        "right",
        json!({"image": private, "pullSecrets": ["right"], "selector": {"names": [node_name()]},
        "pullPolicy": {"timeoutSeconds": 60, "backoffLimit": 1}}),
    )
    .await;
    let job = fx
        .wait_job("right", "completed", Duration::from_secs(120), completed)
        .await;
    let st = job.status.unwrap();
    assert_eq!((st.succeeded, st.failed), (1, 0), "{st:?}");
    assert!(
        cri.image_status(&private).await.unwrap().is_some(),
        "{private} not in containerd"
    );

    // The secret copies for the agent are released once their jobs are finished.
    let copies: Api<Secret> = fx.agents_secrets();
    support::eventually(
        "the copied pull secrets to be released",
        Duration::from_secs(60),
        || {
            let copies = copies.clone();
            async move {
                let left: Vec<String> = copies
                    .list(&ListParams::default())
                    .await
                    .map_err(|e| e.to_string())?
                    .items
                    .iter()
                    .filter(|s| {
                        s.annotations()
                            .contains_key("imagepulljobs.kruise.io/source-key")
                    })
                    .map(|s| s.name_any())
                    .collect();
                if left.is_empty() {
                    Ok(())
                } else {
                    Err(format!("copies left: {left:?}"))
                }
            }
        },
    )
    .await;
    // ... and a finished job no longer holds the protection finalizer.
    let job = fx.jobs().get("right").await.unwrap();
    assert!(
        !job.finalizers()
            .iter()
            .any(|f| f == "apps.kruise.io/deletion-protection"),
        "a finished job's finalizers: {:?}",
        job.finalizers()
    );
    cri.remove_image(&private).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallelism_and_the_node_pull_limit_hold() {
    let fx = Fixture::new("ipj-limits", 1).await;
    let large = image("large:v1");
    let cri = cri().await;
    cri.remove_image(&large).await.unwrap();
    let watch = NodeImageWatch::start(&fx.client);

    // Two fake nodes with their own agents (on the same containerd) and the real node: a job with
    // parallelism 1 must never have two of them pulling at once.
    let pool = format!("graft-test-{}", fx.ns.name);
    let labels = BTreeMap::from([("graft.dev/test-pool".to_string(), pool.clone())]);
    let fake_a = FakeNode::create(&fx.client, &format!("{}-a", fx.ns.name), labels.clone()).await;
    let fake_b = FakeNode::create(&fx.client, &format!("{}-b", fx.ns.name), labels).await;
    let _agents: Vec<ChildProcess> = [&fake_a, &fake_b]
        .iter()
        .map(|n| start_agent(&n.name, &fx.ns.name, 1))
        .collect();
    let targets = vec![node_name(), fake_a.name.clone(), fake_b.name.clone()];
    let nis: Api<NodeImage> = Api::all(fx.client.clone());
    for n in [&fake_a, &fake_b] {
        wait_for(
            &nis,
            &n.name,
            "the manager to create the fake node's NodeImage",
            Duration::from_secs(60),
            |_| true,
        )
        .await;
    }
    let job = fx
        .create_job(
            "one-at-a-time",
            json!({"image": image("app:v3"), "parallelism": 1,
        "imagePullPolicy": "Always", "selector": {"names": targets}}),
        )
        .await;

    // On the real node (limit 1): large:v1 and two more images at once.
    let others = [image("app:v2"), image("sidecar:v2")];
    fx.create_job(
        "large",
        json!({"image": large, "selector": {"names": [node_name()]}}),
    )
    .await;
    for (i, img) in others.iter().enumerate() {
        fx.create_job(&format!("other-{i}"), json!({"image": img, "imagePullPolicy": "Always", "selector": {"names": [node_name()]}})).await;
    }
    for name in ["one-at-a-time", "large", "other-0", "other-1"] {
        let j = fx
            .wait_job(name, "completed", Duration::from_secs(300), completed)
            .await;
        let st = j.status.unwrap();
        assert_eq!(st.failed, 0, "{name}: {st:?}");
    }

    let history = watch.history();
    // Parallelism: replay the NodeImage states; count nodes with the job's tag not yet finished.
    let uid = job.uid().unwrap();
    let (app_name, app_tag) = split(&image("app:v3"));
    let mut latest: BTreeMap<String, NodeImage> = BTreeMap::new();
    let mut max_active = 0;
    let mut nodes_pulled = std::collections::BTreeSet::new();
    for ni in &history {
        latest.insert(ni.name_any(), ni.clone());
        let active = latest
            .values()
            .filter(|n| {
                let spec_tag = n
                    .spec
                    .images
                    .as_ref()
                    .and_then(|m| m.get(&app_name))
                    .and_then(|i| i.tags.iter().find(|t| t.tag == app_tag));
                let Some(t) = spec_tag.filter(|t| {
                    t.owner_references
                        .iter()
                        .flatten()
                        .any(|o| o.uid.as_deref() == Some(&uid))
                }) else {
                    return false;
                };
                nodes_pulled.insert(n.name_any());
                !tag_status(n, &app_name, &app_tag).is_some_and(|s| {
                    s.version == t.version
                        && matches!(s.phase, ImagePullPhase::Succeeded | ImagePullPhase::Failed)
                })
            })
            .count();
        max_active = max_active.max(active);
    }
    assert_eq!(max_active, 1, "parallelism 1 was exceeded");
    assert_eq!(
        nodes_pulled.len(),
        3,
        "every node got the tag: {nodes_pulled:?}"
    );

    // Node limit: on the real node, never two tags Pulling at once, and large:v1 did pull.
    let mut saw_large_pulling = false;
    for ni in history.iter().filter(|n| n.name_any() == node_name()) {
        let pulling: Vec<String> = ni
            .status
            .iter()
            .flat_map(|s| s.image_statuses.iter().flatten())
            .flat_map(|(name, st)| {
                st.tags
                    .iter()
                    .filter(|t| t.phase == ImagePullPhase::Pulling)
                    .map(move |t| format!("{name}:{}", t.tag))
            })
            .collect();
        assert!(
            pulling.len() <= 1,
            "more than one pull at once on a node limited to 1: {pulling:?}"
        );
        saw_large_pulling |= pulling.iter().any(|p| p == &large);
    }
    assert!(saw_large_pulling, "large:v1 was never seen Pulling");
    drop((fake_a, fake_b));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_never_job_puts_its_image_on_new_nodes() {
    let fx = Fixture::new("ipj-never", 2).await;
    let pool = format!("graft-test-{}", fx.ns.name);
    fx.create_job(
        "forever",
        json!({"image": image("app:v1"), "parallelism": 5,
        "completionPolicy": {"type": "Never"},
        "selector": {"matchLabels": {"graft.dev/test-pool": pool}}}),
    )
    .await;
    let job = fx
        .wait_job(
            "forever",
            "running with no nodes",
            Duration::from_secs(30),
            |j| {
                j.status
                    .as_ref()
                    .is_some_and(|s| s.message.as_deref() == Some("job is running, no progress"))
            },
        )
        .await;
    let uid = job.uid().unwrap();
    let labels = BTreeMap::from([("graft.dev/test-pool".to_string(), pool.clone())]);
    let nis: Api<NodeImage> = Api::all(fx.client.clone());
    let (name, tag) = split(&image("app:v1"));
    for suffix in ["new-1", "new-2"] {
        let node = FakeNode::create(
            &fx.client,
            &format!("{}-{suffix}", fx.ns.name),
            labels.clone(),
        )
        .await;
        let ni = wait_for(
            &nis,
            &node.name,
            "the Never job's tag on the new node's NodeImage",
            Duration::from_secs(60),
            |ni| {
                ni.labels().get("graft.dev/test-pool") == Some(&pool)
                    && ni
                        .spec
                        .images
                        .as_ref()
                        .and_then(|m| m.get(&name))
                        .is_some_and(|i| {
                            i.tags.iter().any(|t| {
                                t.tag == tag
                                    && t.owner_references
                                        .iter()
                                        .flatten()
                                        .any(|o| o.uid.as_deref() == Some(&uid))
                            })
                        })
            },
        )
        .await;
        let t = &ni.spec.images.unwrap()[&name].tags[0];
        assert_eq!(
            t.pull_policy.as_ref().unwrap().ttl_seconds_after_finished,
            Some(86400)
        );
        // The fake node has no agent: the job stays running and never completes.
        let j = fx.jobs().get("forever").await.unwrap();
        assert!(!completed(&j));
        drop(node);
        // The NodeImage goes with its node.
        support::eventually(
            "the fake node's NodeImage to be deleted",
            Duration::from_secs(30),
            || {
                let nis = nis.clone();
                let n = format!("{}-{suffix}", fx.ns.name);
                async move {
                    match nis.get_opt(&n).await {
                        Ok(None) => Ok(()),
                        other => Err(format!("{other:?}")),
                    }
                }
            },
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_removes_a_finished_job() {
    let fx = Fixture::new("ipj-ttl", 2).await;
    fx.create_job(
        "short",
        json!({"image": image("app:v1"), "selector": {"names": [node_name()]},
        "completionPolicy": {"ttlSecondsAfterFinished": 3}}),
    )
    .await;
    let job = fx
        .wait_job("short", "completed", Duration::from_secs(60), completed)
        .await;
    assert_eq!(job.status.as_ref().unwrap().succeeded, 1);
    support::eventually(
        "the job to be deleted after its TTL",
        Duration::from_secs(30),
        || {
            let jobs = fx.jobs();
            async move {
                match jobs.get_opt("short").await {
                    Ok(None) => Ok(()),
                    other => Err(format!("{:?}", other.map(|j| j.map(|j| j.status)))),
                }
            }
        },
    )
    .await;
    let events = fx.job_events("short").await;
    assert!(
        events.iter().any(|e| e.starts_with("Completed")),
        "{events:?}"
    );
    // With its only owner gone, the manager removes the tag from the node's NodeImage.
    let nis: Api<NodeImage> = Api::all(fx.client.clone());
    let (name, tag) = split(&image("app:v1"));
    wait_for(
        &nis,
        &node_name(),
        "the deleted job's tag to be garbage-collected",
        Duration::from_secs(30),
        |ni| {
            !ni.spec
                .images
                .as_ref()
                .and_then(|m| m.get(&name))
                .is_some_and(|i| i.tags.iter().any(|t| t.tag == tag))
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_selector_targets_the_nodes_running_its_pods() {
    let fx = Fixture::new("ipj-podsel", 2).await;
    let pods: Api<Pod> = fx.ns.api();
    let pod: Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "target", "labels": {"app": "target"}},
        "spec": {"terminationGracePeriodSeconds": 0,
                 "containers": [{"name": "pause", "image": format!("{}/pause:3.10", support::registry())}]}
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    wait_for(&pods, "target", "scheduled", Duration::from_secs(60), |p| {
        p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some()
    })
    .await;
    fx.create_job(
        "by-pods",
        json!({"image": image("app:v1"), "podSelector": {"matchLabels": {"app": "target"}}}),
    )
    .await;
    fx.create_job(
        "no-pods",
        json!({"image": image("app:v1"), "podSelector": {"matchLabels": {"app": "nothing"}}}),
    )
    .await;
    let job = fx
        .wait_job("by-pods", "completed", Duration::from_secs(60), completed)
        .await;
    let st = job.status.unwrap();
    assert_eq!((st.desired, st.succeeded), (1, 1), "{st:?}");
    // kruise: an Always job whose selector finds no node is done at once (desired 0 ==
    // succeeded + failed); only a Never job stays "running, no progress".
    let job = fx
        .wait_job(
            "no-pods",
            "completed without targets",
            Duration::from_secs(30),
            |j| {
                j.status
                    .as_ref()
                    .is_some_and(|s| s.message.as_deref() == Some("job has completed"))
            },
        )
        .await;
    let st = job.status.unwrap();
    assert_eq!((st.desired, st.succeeded, st.failed), (0, 0, 0), "{st:?}");
    assert!(st.completion_time.is_some(), "{st:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_job_is_reported_and_pulls_nothing() {
    let fx = Fixture::new("ipj-invalid", 2).await;
    // The API server's schema lets this through (CEL has no cheap "distinct"); the
    // controller's validation does not (kruise: "duplicated name in selector names").
    fx.create_job(
        "bad",
        json!({"image": image("app:v1"),
        "selector": {"names": [node_name(), node_name()]}}),
    )
    .await;
    let job = fx
        .wait_job(
            "bad",
            "an invalid-spec message",
            Duration::from_secs(30),
            |j| {
                j.status
                    .as_ref()
                    .and_then(|s| s.message.as_deref())
                    .is_some_and(|m| m.starts_with("invalid ImagePullJob"))
            },
        )
        .await;
    let msg = job.status.unwrap().message.unwrap();
    assert!(
        msg.contains(&format!("{}/bad", fx.ns.name))
            && msg.contains("spec.selector")
            && msg.contains("duplicated name in selector names"),
        "{msg}"
    );
    let events = fx.job_events("bad").await;
    assert!(
        events.iter().any(|e| e.starts_with("InvalidSpec")),
        "{events:?}"
    );
    let nis: Api<NodeImage> = Api::all(fx.client.clone());
    let ni = nis.get(&node_name()).await.unwrap();
    let owned = ni
        .spec
        .images
        .iter()
        .flatten()
        .flat_map(|(_, i)| i.tags.iter())
        .any(|t| {
            t.owner_references
                .iter()
                .flatten()
                .any(|o| o.uid == job.metadata.uid)
        });
    assert!(!owned, "an invalid job wrote a tag: {:?}", ni.spec);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tag_no_agent_answers_is_marked_failed() {
    let fx = Fixture::with_manager_flags(
        "ipj-noagent",
        2,
        &["--nodeimage-response-timeout-seconds", "3"],
    )
    .await;
    let silent = FakeNode::create(
        &fx.client,
        &format!("{}-silent", fx.ns.name),
        BTreeMap::new(),
    )
    .await;
    let nis: Api<NodeImage> = Api::all(fx.client.clone());
    wait_for(
        &nis,
        &silent.name,
        "the fake node's NodeImage",
        Duration::from_secs(60),
        |_| true,
    )
    .await;
    fx.create_job(
        "unanswered",
        json!({"image": image("app:v1"), "selector": {"names": [silent.name]}}),
    )
    .await;
    let job = fx
        .wait_job(
            "unanswered",
            "completed",
            Duration::from_secs(60),
            completed,
        )
        .await;
    let st = job.status.unwrap();
    assert_eq!((st.desired, st.failed), (1, 1), "{st:?}");
    assert_eq!(st.failed_nodes, Some(vec![silent.name.clone()]));
    let (name, tag) = split(&image("app:v1"));
    let ts = tag_status(&nis.get(&silent.name).await.unwrap(), &name, &tag).unwrap();
    assert_eq!(ts.phase, ImagePullPhase::Failed);
    assert_eq!(
        ts.message.as_deref(),
        Some("node has not responded for a long time")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_active_deadline_ends_a_job_whose_nodes_do_not_finish() {
    let fx = Fixture::new("ipj-deadline", 2).await;
    let silent = FakeNode::create(
        &fx.client,
        &format!("{}-silent", fx.ns.name),
        BTreeMap::new(),
    )
    .await;
    let nis: Api<NodeImage> = Api::all(fx.client.clone());
    wait_for(
        &nis,
        &silent.name,
        "the fake node's NodeImage",
        Duration::from_secs(60),
        |_| true,
    )
    .await;
    fx.create_job(
        "deadline",
        json!({"image": image("app:v1"), "selector": {"names": [silent.name]},
        "pullPolicy": {"timeoutSeconds": 1}, "completionPolicy": {"activeDeadlineSeconds": 3}}),
    )
    .await;
    let job = fx
        .wait_job("deadline", "completed", Duration::from_secs(60), completed)
        .await;
    let st = job.status.unwrap();
    assert_eq!(
        st.message.as_deref(),
        Some("job exceeds activeDeadlineSeconds"),
        "{st:?}"
    );
    assert_eq!(
        (st.desired, st.succeeded, st.failed, st.active),
        (1, 0, 1, 0),
        "{st:?}"
    );
    let events = fx.job_events("deadline").await;
    assert!(
        events.iter().any(|e| e.starts_with("DeadlineExceeded")),
        "{events:?}"
    );
}

/// OpenKruise's ImagePullJob webhook rules, enforced by the API server through the CRD's CEL
/// rules: what kruise refuses is refused at create time with kruise's message (no controller
/// runs here), what kruise accepts is accepted with kruise's defaults, and `pullSecrets` cannot
/// change.
#[tokio::test]
async fn the_api_server_refuses_what_kruises_webhook_refuses() {
    let client = support::client().await;
    support::install_crds(&client).await;
    let ns = TestNamespace::new(&client, "ipj-apply").await;
    let jobs: Api<ImagePullJob> = Api::namespaced(client.clone(), &ns.name);
    let dry = PostParams {
        dry_run: true,
        field_manager: None,
    };
    let job = |name: &str, spec: serde_json::Value| -> ImagePullJob {
        serde_json::from_value(json!({
            "apiVersion": "apps.kruise.io/v1alpha1", "kind": "ImagePullJob",
            "metadata": {"name": name}, "spec": spec
        }))
        .expect("ImagePullJob literal")
    };
    let refused = [
        (
            json!({"image": "nginx", "selector": {"names": ["n"], "matchLabels": {"a": "b"}}}),
            "can not set both names and labelSelector in this spec.selector",
        ),
        (
            json!({"image": "nginx", "selector": {"names": ["n"]}, "podSelector": {"matchLabels": {"a": "b"}}}),
            "can not set both selector and podSelector",
        ),
        (json!({"image": ""}), "image can not be empty"),
        (
            json!({"image": "nginx", "parallelism": "50%"}),
            "parallelism does not support percentage value",
        ),
        (
            json!({"image": "nginx", "parallelism": "two"}),
            r#"parallelism must be a valid integer: strconv.ParseInt: parsing \"two\": invalid syntax"#,
        ),
        (
            json!({"image": "nginx", "parallelism": -1}),
            "parallelism must be non-negative",
        ),
        (
            json!({"image": "nginx", "completionPolicy": {"activeDeadlineSeconds": 599}}),
            "completionPolicy.activeDeadlineSeconds must be greater than pullPolicy.timeoutSeconds(default 600)",
        ),
        (
            json!({"image": "nginx", "completionPolicy": {"type": "Never", "ttlSecondsAfterFinished": 5}}),
            "activeDeadlineSeconds and ttlSecondsAfterFinished can only work with Always CompletionPolicyType",
        ),
    ];
    for (spec, message) in refused {
        match jobs.create(&dry, &job("bad", spec.clone())).await {
            Ok(_) => panic!("the API server accepted {spec}"),
            Err(e) => {
                let text = e.to_string();
                // The error quotes the message; quotes inside it come escaped or not.
                assert!(
                    text.contains(message) || text.contains(&message.replace(r#"\""#, "\"")),
                    "{spec}: refused, but without {message:?}: {text}"
                )
            }
        }
    }
    for spec in [
        json!({"image": "nginx", "completionPolicy": {"activeDeadlineSeconds": 600}}),
        json!({"image": "nginx", "pullPolicy": {"timeoutSeconds": 30}, "completionPolicy": {"activeDeadlineSeconds": 30}}),
        json!({"image": "nginx", "parallelism": "5"}),
        json!({"image": "nginx", "pullPolicy": {"timeoutSeconds": 0, "backoffLimit": -1}}),
    ] {
        jobs.create(&dry, &job("good", spec.clone()))
            .await
            .unwrap_or_else(|e| panic!("kruise accepts {spec}, graft refused it: {e}"));
    }
    let created = jobs
        .create(&dry, &job("defaults", json!({"image": "nginx"})))
        .await
        .expect("a minimal job is accepted");
    assert_eq!(
        serde_json::to_value(&created.spec).unwrap(),
        json!({
            "image": "nginx",
            "pullPolicy": {"timeoutSeconds": 600, "backoffLimit": 3},
            "completionPolicy": {"type": "Always"},
            "imagePullPolicy": "IfNotPresent"
        }),
        "kruise's defaults, and no parallelism written"
    );

    let stored = jobs
        .create(
            &PostParams::default(),
            &job(
                "secrets",
                json!({"image": "nginx", "pullSecrets": ["a"], "parallelism": 0}),
            ),
        )
        .await
        .expect("a job with a pull secret is stored");
    let mut changed = stored.clone();
    changed.spec.pull_secrets = Some(vec!["b".into()]);
    match jobs
        .replace("secrets", &PostParams::default(), &changed)
        .await
    {
        Ok(_) => panic!("the API server let pullSecrets change"),
        Err(e) => assert!(
            e.to_string().contains("spec.pullSecrets is immutable"),
            "{e}"
        ),
    }
    let mut other = stored.clone();
    other.spec.parallelism =
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(1));
    jobs.replace("secrets", &PostParams::default(), &other)
        .await
        .expect("other fields may change");
}

/// kruise's pull-secret handling over the life of a job that never completes
/// (`completionPolicy: Never`): the copy for the agents is made with kruise's annotations and
/// referenced from the NodeImage in `batch` mode, stays while the job runs (also after its
/// node is done, since the job never completes), follows a rotated source secret, and is
/// released when the job is deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_never_jobs_pull_secret_copy_lives_and_follows_its_source_until_the_job_is_deleted() {
    let fx = Fixture::with_agents_namespace("ipj-never-secret", 2).await;
    let ns = fx.ns.name.clone();
    let secrets: Api<Secret> = fx.ns.api();
    let copies = fx.agents_secrets();
    let agents_ns = fx.agents.as_ref().unwrap().name.clone();
    let config = |user: &str| {
        format!(r#"{{"auths":{{"registry.invalid":{{"username":"{user}","password":"p"}}}}}}"#)
    };
    secrets
        .create(
            &PostParams::default(),
            &pull_secret("creds", &config("one")),
        )
        .await
        .unwrap();
    fx.create_job(
        "forever",
        json!({"image": image("app:v1"), "pullSecrets": ["creds"],
        "completionPolicy": {"type": "Never"}, "selector": {"names": [node_name()]}}),
    )
    .await;
    let data_of = |s: &Secret| {
        s.data
            .as_ref()
            .and_then(|d| d.get(".dockerconfigjson"))
            .map(|b| String::from_utf8_lossy(&b.0).to_string())
            .unwrap_or_default()
    };
    // kruise names a copy `<secret>-<6 random hex>` and finds it again by its source-key.
    let source_key = format!("{ns}/creds");
    let copy = {
        let (copies, source_key) = (copies.clone(), source_key.clone());
        support::eventually(
            "the pull secret's copy for the agents",
            Duration::from_secs(60),
            move || {
                let (copies, source_key) = (copies.clone(), source_key.clone());
                async move {
                    let found: Vec<Secret> = copies
                        .list(&ListParams::default())
                        .await
                        .map_err(|e| e.to_string())?
                        .items
                        .into_iter()
                        .filter(|s| {
                            s.annotations().get("imagepulljobs.kruise.io/source-key")
                                == Some(&source_key)
                        })
                        .collect();
                    match found.as_slice() {
                        [one] => Ok(one.clone()),
                        other => Err(format!("copies of {source_key}: {other:?}")),
                    }
                }
            },
        )
        .await
    };
    let copy_name = copy.name_any();
    let suffix = copy_name.strip_prefix("creds-").unwrap_or_default();
    assert!(
        suffix.len() == 6 && suffix.bytes().all(|b| b.is_ascii_hexdigit()),
        "the copy is named <secret>-<6 hex>: {copy_name}"
    );
    assert!(
        !copy.labels().contains_key("graft.dev/imagepulljob-secret"),
        "the copy carries the source's labels only: {:?}",
        copy.labels()
    );
    let running = fx.jobs().get("forever").await.unwrap();
    assert!(
        running
            .finalizers()
            .iter()
            .any(|f| f == "apps.kruise.io/deletion-protection"),
        "a running job holds the protection finalizer: {:?}",
        running.finalizers()
    );
    let ann = copy.annotations();
    assert_eq!(
        ann.get("imagepulljobs.kruise.io/source-key"),
        Some(&format!("{ns}/creds"))
    );
    assert_eq!(
        ann.get("imagepulljobs.kruise.io/references"),
        Some(&format!("{ns}/forever"))
    );
    assert_eq!(
        ann.get("imagepulljobs.kruise.io/mode").map(String::as_str),
        Some("batch")
    );
    assert_eq!(data_of(&copy), config("one"));

    let (name, _) = split(&image("app:v1"));
    let nis: Api<NodeImage> = Api::all(fx.client.clone());
    let ni = wait_for(
        &nis,
        &node_name(),
        "the NodeImage to reference the copy",
        Duration::from_secs(60),
        |ni| {
            ni.spec
                .images
                .as_ref()
                .and_then(|m| m.get(&name))
                .and_then(|i| i.pull_secrets.as_ref())
                .is_some_and(|ps| ps.iter().any(|p| p.name.as_deref() == Some(&copy_name)))
        },
    )
    .await;
    let reference = ni.spec.images.unwrap()[&name]
        .pull_secrets
        .clone()
        .unwrap()
        .into_iter()
        .find(|p| p.name.as_deref() == Some(&copy_name))
        .unwrap();
    assert_eq!(reference.namespace.as_deref(), Some(agents_ns.as_str()));
    assert_eq!(reference.mode.as_deref(), Some("batch"));

    let job = fx
        .wait_job("forever", "its node done", Duration::from_secs(120), |j| {
            j.status.as_ref().is_some_and(|s| s.succeeded == 1)
        })
        .await;
    assert!(!completed(&job), "a Never job does not complete");
    assert!(
        copies.get_opt(&copy_name).await.unwrap().is_some(),
        "the copy stays while the Never job runs"
    );

    // Rotate the source: the copy follows while the job runs.
    let mut src = secrets.get("creds").await.unwrap();
    src.data = None;
    src.string_data = Some(BTreeMap::from([(
        ".dockerconfigjson".to_string(),
        config("two"),
    )]));
    secrets
        .replace("creds", &PostParams::default(), &src)
        .await
        .unwrap();
    wait_for(
        &copies,
        &copy_name,
        "the copy to follow the rotated source",
        Duration::from_secs(60),
        |s| data_of(s) == config("two"),
    )
    .await;

    fx.jobs()
        .delete("forever", &DeleteParams::default())
        .await
        .unwrap();
    support::eventually(
        "the copy to be released with its job",
        Duration::from_secs(60),
        || {
            let copies = copies.clone();
            let copy_name = copy_name.clone();
            async move {
                match copies.get_opt(&copy_name).await {
                    Ok(None) => Ok(()),
                    other => Err(format!("still there: {other:?}")),
                }
            }
        },
    )
    .await;
    // The finalizer released the copy first, then let the job go.
    let jobs = fx.jobs();
    support::eventually(
        "the job to be gone once its finalizer is removed",
        Duration::from_secs(60),
        || {
            let jobs = jobs.clone();
            async move {
                match jobs.get_opt("forever").await {
                    Ok(None) => Ok(()),
                    other => Err(format!("still there: {other:?}")),
                }
            }
        },
    )
    .await;
}
