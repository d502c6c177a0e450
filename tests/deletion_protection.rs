//! Deletion protection (`policy.kruise.io/delete-protection`) on the real cluster, with
//! `graft controllers` and its admission server on the host, narrowed to the test's namespace.
//!
//! `Always` and workload `Cascading` are graft's ValidatingAdmissionPolicy: they hold with graft
//! killed. Namespace and CRD `Cascading` are graft's webhook: refused while dependents exist,
//! admitted once they are gone.
#![cfg(feature = "cluster-tests")]

mod support;

use std::time::Duration;

use graft_api::apps::v1alpha1::CloneSet;
use k8s_openapi::api::admissionregistration::v1::{
    ValidatingAdmissionPolicyBinding, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::{ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::json;
use support::{
    GraftControllers, TestNamespace, admission_config_name, client, free_host_port, image,
    install_crds, wait_for,
};

const MINUTE: Duration = Duration::from_secs(60);
const LABEL: &str = "policy.kruise.io/delete-protection";

/// Waits until graft wrote its policy binding and validating configuration (with a CA).
async fn wait_until_protecting(client: &kube::Client, ns: &TestNamespace) {
    let name = admission_config_name(&ns.name);
    let bindings: Api<ValidatingAdmissionPolicyBinding> = Api::all(client.clone());
    wait_for(
        &bindings,
        &format!("{name}-deletion-protection"),
        "graft's deletion-protection binding",
        MINUTE,
        |_| true,
    )
    .await;
    let configs: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    wait_for(
        &configs,
        &name,
        "graft's validating webhooks with a caBundle",
        MINUTE,
        |c| {
            let hooks = c.webhooks.as_deref().unwrap_or_default();
            !hooks.is_empty()
                && hooks.iter().all(|w| {
                    w.client_config
                        .ca_bundle
                        .as_ref()
                        .is_some_and(|b| !b.0.is_empty())
                })
        },
    )
    .await;
}

/// Deletes `name` until the API server refuses it with a message containing `want` (a policy
/// takes a moment to be loaded); returns the message.
async fn refused<K>(api: &Api<K>, name: &str, want: &str) -> String
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    support::eventually(
        &format!("the delete of {name} refused with {want:?}"),
        MINUTE,
        || {
            let api = api.clone();
            async move {
                let dry = DeleteParams {
                    dry_run: true,
                    ..Default::default()
                };
                match api.delete(name, &dry).await {
                    Err(kube::Error::Api(e)) if e.message.contains(want) => {
                        if e.code == 403 {
                            Ok(e.message)
                        } else {
                            Err(format!("refused with code {}: {}", e.code, e.message))
                        }
                    }
                    Err(e) => Err(format!("other error: {e}")),
                    Ok(_) => Err("the delete was admitted".to_string()),
                }
            }
        },
    )
    .await
}

fn cloneset(name: &str, replicas: i32, protection: &str) -> CloneSet {
    serde_json::from_value(json!({
        "apiVersion": "apps.kruise.io/v1alpha1", "kind": "CloneSet",
        "metadata": {"name": name, "labels": {LABEL: protection}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                         "spec": {"containers": [{"name": "app", "image": image("app:v1")}]}}
        }
    }))
    .expect("valid CloneSet literal")
}

fn unlabel() -> Patch<serde_json::Value> {
    Patch::Merge(json!({"metadata": {"labels": {LABEL: null}}}))
}

#[tokio::test]
async fn always_and_cascading_workloads_are_refused_by_the_api_server_even_with_graft_killed() {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "graft-dp-workload").await;
    let mut graft = GraftControllers::start_admitting(&ns.name, free_host_port(), "dp");
    wait_until_protecting(&client, &ns).await;

    let clonesets: Api<CloneSet> = ns.api();
    clonesets
        .create(&PostParams::default(), &cloneset("always", 0, "Always"))
        .await
        .expect("creating the Always CloneSet");
    let msg = refused(
        &clonesets,
        "always",
        "forbidden by ResourcesProtectionDeletion for policy.kruise.io/delete-protection=Always",
    )
    .await;
    assert!(
        msg.contains("always"),
        "the refusal names the object: {msg}"
    );

    let deployments: Api<Deployment> = ns.api();
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "cascading", "labels": {LABEL: "Cascading"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "cascading"}},
            "template": {"metadata": {"labels": {"app": "cascading"}},
                         "spec": {"containers": [{"name": "app", "image": image("app:v1")}]}}
        }
    }))
    .expect("valid Deployment literal");
    deployments
        .create(&PostParams::default(), &deployment)
        .await
        .expect("creating the Cascading Deployment");
    refused(
        &deployments,
        "cascading",
        "forbidden by ResourcesProtectionDeletion for policy.kruise.io/delete-protection=Cascading and replicas 2>0",
    )
    .await;
    // A Cascading CloneSet with no replicas has nothing to protect.
    clonesets
        .create(&PostParams::default(), &cloneset("empty", 0, "Cascading"))
        .await
        .expect("creating the empty Cascading CloneSet");
    clonesets
        .delete("empty", &DeleteParams::default())
        .await
        .expect("a Cascading CloneSet with 0 replicas is deleted");

    // graft killed: the policy is the API server's own, it still refuses.
    graft.kill();
    refused(
        &clonesets,
        "always",
        "forbidden by ResourcesProtectionDeletion for policy.kruise.io/delete-protection=Always",
    )
    .await;
    refused(&deployments, "cascading", "and replicas 2>0").await;
    deployments
        .patch(
            "cascading",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 0}})),
        )
        .await
        .expect("scaling the Deployment to 0");
    deployments
        .delete("cascading", &DeleteParams::default())
        .await
        .expect("a Cascading Deployment scaled to 0 is deleted");
    clonesets
        .patch("always", &PatchParams::default(), &unlabel())
        .await
        .expect("removing the label");
    clonesets
        .delete("always", &DeleteParams::default())
        .await
        .expect("without the label the CloneSet is deleted");
}

#[tokio::test]
async fn a_cascading_namespace_with_a_running_pod_cannot_be_deleted_without_pods_it_can() {
    let client = client().await;
    let ns = TestNamespace::new(&client, "graft-dp-ns").await;
    let _graft = GraftControllers::start_admitting(&ns.name, free_host_port(), "dp-ns");
    wait_until_protecting(&client, &ns).await;

    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .patch(
            &ns.name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {LABEL: "Cascading"}}})),
        )
        .await
        .expect("labelling the namespace Cascading");
    let pods: Api<Pod> = ns.api();
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "app"},
        "spec": {"terminationGracePeriodSeconds": 0,
                 "containers": [{"name": "app", "image": image("app:v1")}]}
    }))
    .expect("valid pod literal");
    pods.create(&PostParams::default(), &pod)
        .await
        .expect("creating the pod");
    let msg = refused(
        &namespaces,
        &ns.name,
        "forbidden by ResourcesProtectionDeletion for policy.kruise.io/delete-protection=Cascading and active pods 1>0",
    )
    .await;
    assert!(
        msg.contains("vnamespace.graft.dev"),
        "refused by graft's webhook: {msg}"
    );

    pods.delete("app", &DeleteParams::default())
        .await
        .expect("deleting the pod");
    support::eventually("the pod gone", MINUTE, || {
        let pods = pods.clone();
        async move {
            match pods.get_opt("app").await {
                Ok(None) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        }
    })
    .await;
    namespaces
        .delete(&ns.name, &DeleteParams::default())
        .await
        .expect("without pods the Cascading namespace is deleted");
}

/// Removes the test CRD even when the test fails (label first, so it can be deleted).
struct CrdGuard(String);

impl Drop for CrdGuard {
    fn drop(&mut self) {
        let name = self.0.clone();
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                if let Ok(client) = support::new_client().await {
                    let crds: Api<CustomResourceDefinition> = Api::all(client);
                    let _ = crds.patch(&name, &PatchParams::default(), &unlabel()).await;
                    let _ = crds.delete(&name, &DeleteParams::background()).await;
                }
            });
        })
        .join();
    }
}

#[tokio::test]
async fn a_cascading_crd_with_a_custom_resource_cannot_be_deleted_without_it_can() {
    let client = client().await;
    let ns = TestNamespace::new(&client, "graft-dp-crd").await;
    let _graft = GraftControllers::start_admitting(&ns.name, free_host_port(), "dp-crd");
    wait_until_protecting(&client, &ns).await;

    let plural = format!("widgets{}", ns.name.rsplit('-').next().unwrap_or("x"));
    let group = "graft-test.dev";
    let name = format!("{plural}.{group}");
    let _guard = CrdGuard(name.clone());
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {LABEL: "Cascading"}},
        "spec": {
            "group": group,
            "names": {"kind": "Widget", "plural": plural, "singular": plural, "listKind": "WidgetList"},
            "scope": "Namespaced",
            "versions": [{"name": "v1", "served": true, "storage": true,
                          "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]
        }
    }))
    .expect("valid CRD literal");
    crds.create(&PostParams::default(), &crd)
        .await
        .expect("creating the CRD");
    wait_for(&crds, &name, "the CRD established", MINUTE, |c| {
        c.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
            })
    })
    .await;
    let resource = ApiResource {
        group: group.to_string(),
        version: "v1".to_string(),
        api_version: format!("{group}/v1"),
        kind: "Widget".to_string(),
        plural: plural.clone(),
    };
    let widgets: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns.name, &resource);
    let widget: DynamicObject = serde_json::from_value(json!({
        "apiVersion": format!("{group}/v1"), "kind": "Widget",
        "metadata": {"name": "one"}
    }))
    .expect("valid Widget literal");
    support::eventually("the Widget created", MINUTE, || {
        let widgets = widgets.clone();
        let widget = widget.clone();
        async move {
            widgets
                .create(&PostParams::default(), &widget)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
    })
    .await;
    refused(
        &crds,
        &name,
        "forbidden by ResourcesProtectionDeletion for policy.kruise.io/delete-protection=Cascading and active CRs 1>0",
    )
    .await;

    widgets
        .delete("one", &DeleteParams::default())
        .await
        .expect("deleting the Widget");
    support::eventually("the CRD deleted once it has no objects", MINUTE, || {
        let crds = crds.clone();
        let name = name.clone();
        async move {
            crds.delete(&name, &DeleteParams::default())
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
    })
    .await;
}
