//! Deletion protection (`policy.kruise.io/delete-protection`, kruise-api.md §9), the half that
//! needs to read the cluster: `Cascading` on a Namespace (active pods, Bound PVCs) and on a
//! CustomResourceDefinition (its custom resources). The object selector sends only objects
//! labelled `Cascading` here: an unlabelled delete never reaches graft.
//!
//! Everything that can be decided from the deleted object alone (`Always` on every protected
//! kind, `Cascading` on workloads with `spec.replicas > 0`) is a ValidatingAdmissionPolicy the
//! API server evaluates itself ([`crate::policy`]), so it holds while graft is down.
//!
//! Messages are OpenKruise's. Unlike OpenKruise, a failed list admits the delete (graft's
//! webhooks fail open); OpenKruise refuses it.

use futures::future::BoxFuture;
use graft_api::labels::{DELETE_PROTECTION, DELETE_PROTECTION_CASCADING};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ApiResource, ListParams};
use kube::core::admission::{AdmissionRequest, Operation};
use kube::core::{DynamicObject, GroupVersionKind};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;

use super::object_json;
use crate::error::HandlerError;
use crate::server::{Handler, Verdict, Webhook, cluster_rule, request_key};

/// Path of the Namespace deletion webhook (OpenKruise's).
pub const NAMESPACE_PATH: &str = "/validate-namespace";
/// Path of the CRD deletion webhook (OpenKruise's).
pub const CRD_PATH: &str = "/validate-customresourcedefinition";

const CASCADING_ONLY: &[(&str, &[&str])] = &[(DELETE_PROTECTION, &[DELETE_PROTECTION_CASCADING])];

/// What depends on a Namespace.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NamespaceDependents {
    /// Pods neither Succeeded, Failed nor being deleted.
    pub active_pods: usize,
    /// PVCs Bound and not being deleted.
    pub bound_pvcs: usize,
}

/// OpenKruise's refusal of a `Cascading` Namespace delete, if any.
pub fn namespace_refusal(d: NamespaceDependents) -> Option<String> {
    let prefix = format!(
        "forbidden by ResourcesProtectionDeletion for {DELETE_PROTECTION}={DELETE_PROTECTION_CASCADING}"
    );
    if d.active_pods > 0 {
        return Some(format!("{prefix} and active pods {}>0", d.active_pods));
    }
    if d.bound_pvcs > 0 {
        return Some(format!(
            "{prefix} and \"Bound\" status pvc {}>0",
            d.bound_pvcs
        ));
    }
    None
}

/// OpenKruise's refusal of a `Cascading` CRD delete with `active` custom resources, if any.
pub fn crd_refusal(active: usize) -> Option<String> {
    (active > 0).then(|| {
        format!("forbidden by ResourcesProtectionDeletion for {DELETE_PROTECTION}={DELETE_PROTECTION_CASCADING} and active CRs {active}>0")
    })
}

/// Whether a pod counts as active (Kubernetes' `IsPodActive`).
pub fn pod_is_active(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    pod.metadata.deletion_timestamp.is_none() && !matches!(phase, Some("Succeeded" | "Failed"))
}

/// Whether a PVC holds a volume (`Bound`, not being deleted).
pub fn pvc_is_bound(pvc: &PersistentVolumeClaim) -> bool {
    pvc.metadata.deletion_timestamp.is_none()
        && pvc.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound")
}

/// The kind's storage version and list resource, from the CRD being deleted.
pub fn stored_resource(crd: &CustomResourceDefinition) -> Option<ApiResource> {
    let version = crd.spec.versions.iter().find(|v| v.storage)?;
    let gvk = GroupVersionKind::gvk(&crd.spec.group, &version.name, &crd.spec.names.kind);
    Some(ApiResource::from_gvk_with_plural(
        &gvk,
        &crd.spec.names.plural,
    ))
}

/// Deletes of Namespaces labelled `Cascading`.
pub struct NamespaceDeletion {
    client: kube::Client,
}

impl NamespaceDeletion {
    /// A handler listing pods and PVCs with this client.
    pub fn new(client: kube::Client) -> NamespaceDeletion {
        NamespaceDeletion { client }
    }
}

impl Handler for NamespaceDeletion {
    fn webhook(&self) -> Webhook {
        Webhook {
            name: "vnamespace.graft.dev",
            path: NAMESPACE_PATH,
            rules: vec![cluster_rule("", &["v1"], "namespaces", &["DELETE"])],
            absent_labels: &[],
            label_in: CASCADING_ONLY,
        }
    }

    fn admit<'a>(
        &'a self,
        req: &'a AdmissionRequest<DynamicObject>,
    ) -> BoxFuture<'a, Result<Verdict, HandlerError>> {
        Box::pin(async move {
            let Some(ns) =
                protected_old_object::<k8s_openapi::api::core::v1::Namespace>(req, "Namespace")?
            else {
                return Ok(Verdict::Allow);
            };
            let name = ns.metadata.name.unwrap_or_default();
            let pods: Vec<Pod> = list_all(Api::namespaced(self.client.clone(), &name), req).await?;
            let pvcs: Vec<PersistentVolumeClaim> =
                list_all(Api::namespaced(self.client.clone(), &name), req).await?;
            let dependents = NamespaceDependents {
                active_pods: pods.iter().filter(|p| pod_is_active(p)).count(),
                bound_pvcs: pvcs.iter().filter(|p| pvc_is_bound(p)).count(),
            };
            Ok(namespace_refusal(dependents).map_or(Verdict::Allow, forbidden))
        })
    }
}

/// Deletes of CustomResourceDefinitions labelled `Cascading`.
pub struct CrdDeletion {
    client: kube::Client,
}

impl CrdDeletion {
    /// A handler listing custom resources with this client.
    pub fn new(client: kube::Client) -> CrdDeletion {
        CrdDeletion { client }
    }
}

impl Handler for CrdDeletion {
    fn webhook(&self) -> Webhook {
        Webhook {
            name: "vcustomresourcedefinition.graft.dev",
            path: CRD_PATH,
            rules: vec![cluster_rule(
                "apiextensions.k8s.io",
                &["v1"],
                "customresourcedefinitions",
                &["DELETE"],
            )],
            absent_labels: &[],
            label_in: CASCADING_ONLY,
        }
    }

    fn admit<'a>(
        &'a self,
        req: &'a AdmissionRequest<DynamicObject>,
    ) -> BoxFuture<'a, Result<Verdict, HandlerError>> {
        Box::pin(async move {
            let Some(crd) =
                protected_old_object::<CustomResourceDefinition>(req, "CustomResourceDefinition")?
            else {
                return Ok(Verdict::Allow);
            };
            let Some(resource) = stored_resource(&crd) else {
                return Ok(Verdict::Allow);
            };
            let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &resource);
            let objects: Vec<DynamicObject> = list_all(api, req).await?;
            let active = objects
                .iter()
                .filter(|o| o.metadata.deletion_timestamp.is_none())
                .count();
            Ok(crd_refusal(active).map_or(Verdict::Allow, forbidden))
        })
    }
}

/// OpenKruise answers protection refusals with 403 Forbidden.
fn forbidden(message: String) -> Verdict {
    Verdict::DenyWithCode(403, message)
}

/// The deleted object, when the request is a DELETE of the object itself (no subresource) that
/// carries `Cascading` and is not already being deleted; `None` admits it.
fn protected_old_object<K: DeserializeOwned>(
    req: &AdmissionRequest<DynamicObject>,
    kind: &'static str,
) -> Result<Option<K>, HandlerError> {
    if req.operation != Operation::Delete || req.sub_resource.is_some() || req.old_object.is_none()
    {
        return Ok(None);
    }
    let value = object_json(req, true, kind)?;
    let cascading = value
        .pointer("/metadata/labels")
        .and_then(|l| l.get(DELETE_PROTECTION))
        .and_then(|v| v.as_str())
        == Some(DELETE_PROTECTION_CASCADING);
    let deleting = value
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null());
    if !cascading || deleting {
        return Ok(None);
    }
    serde_json::from_value(value)
        .map(Some)
        .map_err(|e| HandlerError::Decode {
            kind,
            key: request_key(req),
            reason: e.to_string(),
        })
}

/// Every object of `api`, page by page.
async fn list_all<K>(
    api: Api<K>,
    req: &AdmissionRequest<DynamicObject>,
) -> Result<Vec<K>, HandlerError>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let mut out = Vec::new();
    let mut params = ListParams::default().limit(500);
    loop {
        let page = api
            .list(&params)
            .await
            .map_err(|source| HandlerError::Read {
                what: "the objects depending on it".to_string(),
                key: request_key(req),
                source,
            })?;
        let next = page.metadata.continue_.clone().filter(|c| !c.is_empty());
        out.extend(page.items);
        match next {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use serde_json::json;

    #[test]
    fn a_namespace_with_active_pods_or_bound_claims_is_kept_in_kruises_words() {
        assert_eq!(namespace_refusal(NamespaceDependents::default()), None);
        assert_eq!(
            namespace_refusal(NamespaceDependents {
                active_pods: 2,
                bound_pvcs: 1
            })
            .as_deref(),
            Some(
                "forbidden by ResourcesProtectionDeletion for policy.kruise.io/delete-protection=Cascading and active pods 2>0"
            )
        );
        assert_eq!(
            namespace_refusal(NamespaceDependents {
                active_pods: 0,
                bound_pvcs: 3
            })
            .as_deref(),
            Some(
                "forbidden by ResourcesProtectionDeletion for policy.kruise.io/delete-protection=Cascading and \"Bound\" status pvc 3>0"
            )
        );
    }

    #[test]
    fn a_crd_with_custom_resources_is_kept() {
        assert_eq!(crd_refusal(0), None);
        assert_eq!(
            crd_refusal(4).as_deref(),
            Some(
                "forbidden by ResourcesProtectionDeletion for policy.kruise.io/delete-protection=Cascading and active CRs 4>0"
            )
        );
    }

    #[test]
    fn finished_or_deleting_pods_and_unbound_claims_do_not_count() {
        let pod = |v: serde_json::Value| -> Pod { serde_json::from_value(v).unwrap() };
        assert!(pod_is_active(&pod(json!({"status": {"phase": "Running"}}))));
        assert!(pod_is_active(&pod(json!({"status": {"phase": "Pending"}}))));
        assert!(pod_is_active(&pod(json!({}))));
        assert!(!pod_is_active(&pod(
            json!({"status": {"phase": "Succeeded"}})
        )));
        assert!(!pod_is_active(&pod(json!({"status": {"phase": "Failed"}}))));
        assert!(!pod_is_active(&pod(json!({
            "metadata": {"deletionTimestamp": "2026-12-04T10:00:00Z"},
            "status": {"phase": "Running"}
        }))));
        let pvc =
            |v: serde_json::Value| -> PersistentVolumeClaim { serde_json::from_value(v).unwrap() };
        assert!(pvc_is_bound(&pvc(json!({"status": {"phase": "Bound"}}))));
        assert!(!pvc_is_bound(&pvc(json!({"status": {"phase": "Pending"}}))));
        assert!(!pvc_is_bound(&pvc(json!({
            "metadata": {"deletionTimestamp": "2026-12-04T10:00:00Z"},
            "status": {"phase": "Bound"}
        }))));
    }

    #[test]
    fn the_crds_storage_version_is_listed() {
        let crd: CustomResourceDefinition = serde_json::from_value(json!({
            "metadata": {"name": "widgets.example.com"},
            "spec": {
                "group": "example.com",
                "names": {"kind": "Widget", "plural": "widgets"},
                "scope": "Namespaced",
                "versions": [
                    {"name": "v1", "served": true, "storage": false},
                    {"name": "v2", "served": true, "storage": true}
                ]
            }
        }))
        .unwrap();
        let r = stored_resource(&crd).unwrap();
        assert_eq!(r.api_version, "example.com/v2");
        assert_eq!(r.plural, "widgets");
    }
}
