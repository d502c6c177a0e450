//! PodUnavailableBudget protection on the real cluster: `graft controllers` with its admission
//! server (`/validate-pod`) narrowed to the test's namespace. No PUB status controller runs, so
//! the test writes the PUB's status itself through the status subresource.
#![cfg(feature = "cluster-tests")]

mod support;

use std::time::{Duration, Instant};

use graft_api::policy::v1alpha1::PodUnavailableBudget;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{DeleteParams, EvictParams, Patch, PatchParams, PostParams};
use serde_json::json;
use support::{
    GraftControllers, TestNamespace, client, free_host_port, image, install_crds, wait_for,
};

const MINUTE: Duration = Duration::from_secs(60);
const PODS: usize = 12;

async fn ready_pod(pods: &Api<Pod>, name: &str) {
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": "pub-guarded"}},
        "spec": {
            "terminationGracePeriodSeconds": 0,
            "containers": [{"name": "app", "image": image("app:v1"), "imagePullPolicy": "IfNotPresent"}]
        }
    }))
    .expect("valid pod literal");
    pods.create(&PostParams::default(), &pod)
        .await
        .unwrap_or_else(|e| panic!("creating pod {name}: {e}"));
}

async fn set_status(pubs: &Api<PodUnavailableBudget>, allowed: i32) {
    let status = json!({"status": {
        "observedGeneration": 1, "totalReplicas": PODS, "desiredAvailable": PODS as i32 - 1,
        "currentAvailable": PODS as i32 - 1 + allowed, "unavailableAllowed": allowed,
        "disruptedPods": null, "unavailablePods": null}});
    pubs.patch_status("guard", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap_or_else(|e| panic!("writing the PUB status: {e}"));
}

fn evict_result(r: Result<(), kube::Error>) -> Result<(), (u16, String)> {
    r.map_err(|e| match e {
        kube::Error::Api(s) => (s.code, s.message),
        other => (0, other.to_string()),
    })
}

async fn evict(pods: &Api<Pod>, name: &str, dry_run: bool) -> Result<(), (u16, String)> {
    // A dry run as `kubectl drain --dry-run=server` sends it: `?dryRun=All` on the eviction.
    let params = EvictParams {
        delete_options: None,
        post_options: PostParams {
            dry_run,
            ..Default::default()
        },
    };
    evict_result(pods.evict(name, &params).await.map(|_| ()))
}

#[tokio::test]
async fn pub_budget_is_spent_once_and_fails_open() {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "pub").await;
    let pods: Api<Pod> = ns.api();
    let pubs: Api<PodUnavailableBudget> = ns.api();
    for i in 0..PODS {
        ready_pod(&pods, &format!("p{i}")).await;
    }
    for i in 0..PODS {
        wait_for(
            &pods,
            &format!("p{i}"),
            "the pod Running and Ready",
            MINUTE,
            pubguard_ready,
        )
        .await;
    }
    let budget: PodUnavailableBudget = serde_json::from_value(json!({
        "apiVersion": "policy.kruise.io/v1alpha1", "kind": "PodUnavailableBudget",
        "metadata": {"name": "guard"},
        "spec": {"selector": {"matchLabels": {"app": "pub-guarded"}}, "maxUnavailable": 1}
    }))
    .expect("valid PUB literal");
    pubs.create(&PostParams::default(), &budget)
        .await
        .unwrap_or_else(|e| panic!("creating the PUB: {e}"));
    set_status(&pubs, 0).await;

    let mut graft = GraftControllers::start_admitting(&ns.name, free_host_port(), "pub");
    // Live once a dry-run eviction is refused by the budget with nothing allowed.
    support::eventually(
        "a dry-run eviction refused by PUB guard",
        MINUTE * 2,
        || {
            let pods = pods.clone();
            async move {
                match evict(&pods, "p0", true).await {
                    Err((403, m)) if m.contains("\"guard\"") => Ok(()),
                    other => Err(format!("{other:?}")),
                }
            }
        },
    )
    .await;

    // A dry run with one allowed disruption passes and spends nothing.
    set_status(&pubs, 1).await;
    evict(&pods, "p0", true)
        .await
        .unwrap_or_else(|e| panic!("dry-run eviction refused: {e:?}"));
    let after = pubs.get_status("guard").await.expect("reading the PUB");
    assert_eq!(
        after.status.as_ref().map(|s| s.unavailable_allowed),
        Some(1),
        "a dry run spent the budget: {:?}",
        after.status
    );

    // 10 concurrent evictions of distinct pods for one allowed disruption: exactly 1 passes.
    let results = futures::future::join_all((1..=10).map(|i| {
        let pods = pods.clone();
        async move { (i, evict(&pods, &format!("p{i}"), false).await) }
    }))
    .await;
    let passed: Vec<usize> = results
        .iter()
        .filter(|(_, r)| r.is_ok())
        .map(|(i, _)| *i)
        .collect();
    println!("concurrent evictions: {results:?}");
    assert_eq!(
        passed.len(),
        1,
        "exactly one eviction should pass: {results:?}"
    );
    for (i, r) in &results {
        if let Err((code, message)) = r {
            assert_eq!(*code, 403, "p{i}: {message}");
            assert!(
                message.contains("podunavailablebudget.policy.kruise.io \"guard\" is forbidden"),
                "p{i}: {message}"
            );
        }
    }
    let after = pubs.get_status("guard").await.expect("reading the PUB");
    let status = after.status.unwrap_or_default();
    assert_eq!(status.unavailable_allowed, 0);
    assert!(
        status
            .disrupted_pods
            .as_ref()
            .is_some_and(|m| m.contains_key(&format!("p{}", passed[0]))),
        "the evicted pod is recorded in disruptedPods: {status:?}"
    );

    // Budget spent: a further eviction and a delete are refused the same way.
    let second = evict(&pods, "p11", false).await;
    assert!(
        matches!(&second, Err((403, m)) if m.contains("\"guard\"")),
        "{second:?}"
    );
    let delete = evict_result(
        pods.delete("p11", &DeleteParams::default())
            .await
            .map(|_| ()),
    );
    assert!(
        matches!(&delete, Err((403, m)) if m.contains("\"guard\"")),
        "{delete:?}"
    );

    // graft gone: the API server admits without it (failurePolicy Ignore).
    graft.kill();
    let started = Instant::now();
    let delete = pods.delete("p11", &DeleteParams::default()).await;
    println!("delete with graft killed took {:?}", started.elapsed());
    assert!(delete.is_ok(), "delete with graft killed: {delete:?}");
    let started = Instant::now();
    let evicted = evict(&pods, "p0", false).await;
    println!("eviction with graft killed took {:?}", started.elapsed());
    assert!(evicted.is_ok(), "eviction with graft killed: {evicted:?}");
}

fn pubguard_ready(p: &Pod) -> bool {
    p.status.as_ref().is_some_and(|s| {
        s.phase.as_deref() == Some("Running")
            && s.conditions
                .iter()
                .flatten()
                .any(|c| c.type_ == "Ready" && c.status == "True")
    })
}
