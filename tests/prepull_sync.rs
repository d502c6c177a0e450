//! Commit-triggered pre-pulls on the real cluster: a GitSync with `prePull.mode: BeforeRollout`
//! pulls a commit's new image onto the node (ImagePullJob → NodeImage → `graft nodeagent` → CRI)
//! before it applies the commit, then the CloneSet updates every pod in place; the job is
//! cleaned up once the commit is healthy.
#![cfg(feature = "cluster-tests")]

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use graft_api::apps::v1alpha1::ImagePullJob;
use graft_api::apps::v1beta1::StatefulSet;
use graft_api::graft::gitsync::{CommitPhase, GitSync};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{ListParams, PostParams};
use serde_json::json;
use support::imagepull::{ClusterLock, cri, start_agent, start_manager, start_sync};
use support::{
    GitRepo, TestNamespace, client, eventually, image, install_crds, node_name, wait_for,
};

fn cloneset(tag: &str) -> String {
    format!(
        "apiVersion: apps.kruise.io/v1alpha1\nkind: CloneSet\nmetadata:\n  name: web\nspec:\n  replicas: 2\n  selector:\n    matchLabels: {{app: web}}\n  updateStrategy: {{type: InPlaceIfPossible, maxUnavailable: 1}}\n  template:\n    metadata:\n      labels: {{app: web}}\n    spec:\n      terminationGracePeriodSeconds: 2\n      containers:\n      - name: app\n        image: {}\n        imagePullPolicy: IfNotPresent\n",
        image(&format!("app:{tag}"))
    )
}

/// An Advanced StatefulSet `db` of 2 pods at `tag`, updated in place (with the
/// `InPlaceUpdateReady` readiness gate OpenKruise requires), its pods started together.
fn advanced_statefulset(tag: &str) -> String {
    format!(
        "apiVersion: apps.kruise.io/v1beta1\nkind: StatefulSet\nmetadata:\n  name: db\nspec:\n  replicas: 2\n  serviceName: db\n  podManagementPolicy: Parallel\n  selector:\n    matchLabels: {{app: db}}\n  updateStrategy:\n    type: RollingUpdate\n    rollingUpdate: {{podUpdatePolicy: InPlaceIfPossible, maxUnavailable: 1}}\n  template:\n    metadata:\n      labels: {{app: db}}\n    spec:\n      terminationGracePeriodSeconds: 2\n      readinessGates:\n      - conditionType: InPlaceUpdateReady\n      containers:\n      - name: app\n        image: {}\n        imagePullPolicy: IfNotPresent\n",
        image(&format!("app:{tag}"))
    )
}

fn phase_of(gs: &GitSync, sha: &str) -> Option<CommitPhase> {
    gs.status
        .as_ref()?
        .history
        .as_ref()?
        .iter()
        .find(|h| h.sha == sha)
        .map(|h| h.phase)
}

async fn pods(api: &Api<Pod>) -> Vec<Pod> {
    pods_of(api, "web").await
}

async fn pods_of(api: &Api<Pod>, app: &str) -> Vec<Pod> {
    api.list(&ListParams::default().labels(&format!("app={app}")))
        .await
        .expect("list pods")
        .items
}

#[tokio::test]
async fn before_rollout_pulls_the_new_image_first_then_updates_in_place() {
    let client = client().await;
    install_crds(&client).await;
    let _lock = ClusterLock::acquire();
    let ns = TestNamespace::new(&client, "prepull-sync").await;
    let _manager = start_manager(&ns.name, &ns.name);
    let _agent = start_agent(&node_name(), &ns.name, 2);
    let _sync = start_sync(&ns.name);
    let repo = GitRepo::new(&ns.name);
    let gitsyncs: Api<GitSync> = ns.api();
    let jobs: Api<ImagePullJob> = ns.api();
    let pod_api: Api<Pod> = ns.api();
    let minute = Duration::from_secs(60);

    let c1 = repo.commit("web v1", &[("web.yaml", cloneset("v1"))]);
    let gs: GitSync = serde_json::from_value(json!({
        "apiVersion": "graft.dev/v1alpha1", "kind": "GitSync",
        "metadata": {"name": "app"},
        "spec": {"url": repo.url(), "ref": {"branch": "main"}, "path": "deploy", "interval": "2s",
                 "prePull": {"mode": "BeforeRollout", "timeoutSeconds": 120, "parallelism": 1}}
    }))
    .expect("GitSync literal");
    gitsyncs
        .create(&PostParams::default(), &gs)
        .await
        .expect("create GitSync");
    wait_for(
        &gitsyncs,
        "app",
        "the first commit Healthy",
        2 * minute,
        |g| phase_of(g, &c1) == Some(CommitPhase::Healthy),
    )
    .await;
    let before: BTreeSet<String> = pods(&pod_api)
        .await
        .iter()
        .filter_map(|p| p.metadata.uid.clone())
        .collect();
    assert_eq!(before.len(), 2);

    // The new image is not on the node: the pre-pull must really pull it.
    let v3 = image("app:v3");
    let runtime = cri().await;
    let _ = runtime.remove_image(&v3).await;
    assert!(
        runtime
            .image_status(&v3)
            .await
            .expect("image status")
            .is_none(),
        "app:v3 removed from containerd"
    );

    let c2 = repo.commit("web v3", &[("web.yaml", cloneset("v3"))]);
    // The commit's job completes while the CloneSet still runs v1 everywhere.
    let job = eventually(
        "the commit's pre-pull job completed",
        2 * minute,
        || async {
            let list = jobs.list(&ListParams::default()).await.expect("list jobs");
            let job = list.items.into_iter().find(|j| {
                j.metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get("graft.dev/commit"))
                    == Some(&c2)
            });
            match job {
                Some(j)
                    if j.status
                        .as_ref()
                        .is_some_and(|s| s.completion_time.is_some()) =>
                {
                    Ok(j)
                }
                other => Err(format!("job: {other:?}")),
            }
        },
    )
    .await;
    let status = job.status.clone().expect("job status");
    assert_eq!(status.succeeded, 1, "pulled on the node: {status:?}");
    assert_eq!(job.spec.image, v3);
    assert!(
        runtime
            .image_status(&v3)
            .await
            .expect("image status")
            .is_some(),
        "app:v3 is in containerd after the pre-pull"
    );
    let gs = wait_for(
        &gitsyncs,
        "app",
        "the second commit Healthy",
        2 * minute,
        |g| phase_of(g, &c2) == Some(CommitPhase::Healthy),
    )
    .await;
    let record = gs
        .status
        .and_then(|s| s.history)
        .and_then(|h| h.into_iter().find(|h| h.sha == c2))
        .expect("record");
    let t = &record.phase_times;
    let (pre, applying) = (
        t.pre_pulling.clone().expect("pre-pulling time").0,
        t.applying.clone().expect("applying time").0,
    );
    let completed = status.completion_time.clone().expect("completion").0;
    assert!(
        pre <= completed,
        "pre-pull started before the job completed: {t:?}"
    );
    // Both are whole seconds on the wire (metav1.Time), each rounded by its writer: within the
    // same second either may read one second later than the other.
    let one_second = k8s_openapi::jiff::SignedDuration::from_secs(1);
    assert!(
        applying
            .checked_add(one_second)
            .is_ok_and(|a| completed <= a),
        "the job completed ({completed}) before the commit was applied ({applying})"
    );
    assert_eq!(record.reason, None, "no timeout: {record:?}");

    // Every pod updated in place: same pods, now running v3.
    let after = pods(&pod_api).await;
    let uids: BTreeSet<String> = after
        .iter()
        .filter_map(|p| p.metadata.uid.clone())
        .collect();
    assert_eq!(uids, before, "in place: the same pods");
    for p in &after {
        let img = p
            .spec
            .as_ref()
            .and_then(|s| s.containers.first())
            .and_then(|c| c.image.clone());
        assert_eq!(img.as_deref(), Some(v3.as_str()));
    }
    // The healthy commit's job is cleaned up.
    eventually("the pre-pull job deleted", minute, || async {
        let left = jobs
            .list(&ListParams::default())
            .await
            .expect("list")
            .items
            .len();
        if left == 0 {
            Ok(())
        } else {
            Err(format!("{left} job(s) left"))
        }
    })
    .await;
}

#[tokio::test]
async fn before_rollout_pulls_on_the_nodes_of_an_advanced_statefulsets_pods_then_updates_in_place()
{
    let client = client().await;
    install_crds(&client).await;
    let _lock = ClusterLock::acquire();
    let ns = TestNamespace::new(&client, "prepull-asts").await;
    let _manager = start_manager(&ns.name, &ns.name);
    let _agent = start_agent(&node_name(), &ns.name, 2);
    let _sync = start_sync(&ns.name);
    let repo = GitRepo::new(&ns.name);
    let gitsyncs: Api<GitSync> = ns.api();
    let jobs: Api<ImagePullJob> = ns.api();
    let sets: Api<StatefulSet> = ns.api();
    let pod_api: Api<Pod> = ns.api();
    let minute = Duration::from_secs(60);

    let c1 = repo.commit("db v1", &[("db.yaml", advanced_statefulset("v1"))]);
    let gs: GitSync = serde_json::from_value(json!({
        "apiVersion": "graft.dev/v1alpha1", "kind": "GitSync",
        "metadata": {"name": "app"},
        "spec": {"url": repo.url(), "ref": {"branch": "main"}, "path": "deploy", "interval": "2s",
                 "prePull": {"mode": "BeforeRollout", "timeoutSeconds": 120, "parallelism": 1}}
    }))
    .expect("GitSync literal");
    gitsyncs
        .create(&PostParams::default(), &gs)
        .await
        .expect("create GitSync");
    wait_for(
        &gitsyncs,
        "app",
        "the first commit Healthy",
        2 * minute,
        |g| phase_of(g, &c1) == Some(CommitPhase::Healthy),
    )
    .await;
    let before: BTreeSet<String> = pods_of(&pod_api, "db")
        .await
        .iter()
        .filter_map(|p| p.metadata.uid.clone())
        .collect();
    assert_eq!(before.len(), 2);

    // The new image is not on the node: the pre-pull must really pull it.
    let v3 = image("app:v3");
    let runtime = cri().await;
    let _ = runtime.remove_image(&v3).await;
    assert!(
        runtime
            .image_status(&v3)
            .await
            .expect("image status")
            .is_none(),
        "app:v3 removed from containerd"
    );

    let c2 = repo.commit("db v3", &[("db.yaml", advanced_statefulset("v3"))]);
    let job = eventually(
        "the commit's pre-pull job completed",
        2 * minute,
        || async {
            let list = jobs.list(&ListParams::default()).await.expect("list jobs");
            let job = list.items.into_iter().find(|j| {
                j.metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get("graft.dev/commit"))
                    == Some(&c2)
            });
            match job {
                Some(j)
                    if j.status
                        .as_ref()
                        .is_some_and(|s| s.completion_time.is_some()) =>
                {
                    Ok(j)
                }
                other => Err(format!("job: {other:?}")),
            }
        },
    )
    .await;
    // Aimed at the nodes of the set's pods: its selector, not a node selector.
    let set_selector = sets.get("db").await.expect("db").spec.selector;
    assert_eq!(
        serde_json::to_value(&job.spec.pod_selector).expect("json"),
        json!({"matchLabels": {"app": "db"}}),
        "podSelector: {:?}",
        job.spec
    );
    assert_eq!(
        serde_json::to_value(&job.spec.pod_selector).expect("json"),
        serde_json::to_value(&set_selector).expect("json"),
        "the set's own selector"
    );
    assert!(
        job.spec.selector.is_none(),
        "no node selector: {:?}",
        job.spec
    );
    let workload = job
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("graft.dev/workload"))
        .cloned()
        .unwrap_or_default();
    assert!(
        workload.contains(&format!("StatefulSet.apps.kruise.io {}/db", ns.name)),
        "for the Advanced StatefulSet: {workload}"
    );
    let status = job.status.clone().expect("job status");
    assert_eq!(
        (status.desired, status.succeeded),
        (1, 1),
        "pulled on the node of its pods: {status:?}"
    );
    assert_eq!(job.spec.image, v3);
    assert!(
        runtime
            .image_status(&v3)
            .await
            .expect("image status")
            .is_some(),
        "app:v3 is in containerd after the pre-pull"
    );
    let gs = wait_for(
        &gitsyncs,
        "app",
        "the second commit Healthy",
        2 * minute,
        |g| phase_of(g, &c2) == Some(CommitPhase::Healthy),
    )
    .await;
    let record = gs
        .status
        .and_then(|s| s.history)
        .and_then(|h| h.into_iter().find(|h| h.sha == c2))
        .expect("record");
    let t = &record.phase_times;
    let (pre, applying) = (
        t.pre_pulling.clone().expect("pre-pulling time").0,
        t.applying.clone().expect("applying time").0,
    );
    let completed = status.completion_time.clone().expect("completion").0;
    assert!(
        pre <= completed,
        "pre-pull started before the job completed: {t:?}"
    );
    // Whole seconds on the wire, each rounded by its writer (see the CloneSet test).
    let one_second = k8s_openapi::jiff::SignedDuration::from_secs(1);
    assert!(
        applying
            .checked_add(one_second)
            .is_ok_and(|a| completed <= a),
        "the job completed ({completed}) before the commit was applied ({applying})"
    );
    assert_eq!(record.reason, None, "no timeout: {record:?}");

    // Every pod updated in place: same pods, now running v3.
    let after = pods_of(&pod_api, "db").await;
    let uids: BTreeSet<String> = after
        .iter()
        .filter_map(|p| p.metadata.uid.clone())
        .collect();
    assert_eq!(uids, before, "in place: the same pods");
    for p in &after {
        let img = p
            .spec
            .as_ref()
            .and_then(|s| s.containers.first())
            .and_then(|c| c.image.clone());
        assert_eq!(img.as_deref(), Some(v3.as_str()));
    }
    eventually("the pre-pull job deleted", minute, || async {
        let left = jobs
            .list(&ListParams::default())
            .await
            .expect("list")
            .items
            .len();
        if left == 0 {
            Ok(())
        } else {
            Err(format!("{left} job(s) left"))
        }
    })
    .await;
}
