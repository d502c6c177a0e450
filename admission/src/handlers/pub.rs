//! PodUnavailableBudget protection (kruise-api.md §8): `/validate-pod`, OpenKruise's path, sees
//! pod DELETEs, UPDATEs and `pods/eviction` CREATEs, and refuses those that would take a
//! protected pod down beyond its budget (403, kruise's message), spending the budget of those
//! it admits. The decisions are [`graft_controllers::pubguard`]'s; this is the shell that decodes
//! the request, finds the pod's PUB in a cache, and lets the guard spend it on a fresh read.
//!
//! Unlike OpenKruise, a pod is matched to its PUB by selector/targetRef even without the
//! `related-pub` annotation (graft's pod webhook does not write it), and a failure to decode or
//! read the pod admits (graft fails open).

use futures::future::BoxFuture;
use graft_api::policy::v1alpha1::PodUnavailableBudget;
use graft_controllers::pubguard::{self, Admission, Guard, Verb};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, Operation};
use kube::runtime::reflector::Store;

use super::object_json;
use crate::error::HandlerError;
use crate::server::{Handler, Verdict, Webhook, request_key, rule};

/// Path of the webhook (OpenKruise's).
pub const PATH: &str = "/validate-pod";

/// Pod deletes, evictions and updates checked against PodUnavailableBudgets.
pub struct PubHandler {
    client: kube::Client,
    pubs: Store<PodUnavailableBudget>,
    guard: Guard,
}

impl PubHandler {
    /// A handler finding PUBs in `pubs` and spending them with `guard`.
    pub fn new(client: kube::Client, pubs: Store<PodUnavailableBudget>, guard: Guard) -> Self {
        PubHandler {
            client,
            pubs,
            guard,
        }
    }
}

fn verb(op: &Operation) -> Verb {
    match op {
        Operation::Create => Verb::Create,
        Operation::Update => Verb::Update,
        Operation::Delete => Verb::Delete,
        Operation::Connect => Verb::Other,
    }
}

fn decode_pod(
    req: &AdmissionRequest<DynamicObject>,
    old: bool,
) -> Result<Option<Pod>, HandlerError> {
    let present = if old {
        req.old_object.is_some()
    } else {
        req.object.is_some()
    };
    if !present {
        return Ok(None);
    }
    let value = object_json(req, old, "Pod")?;
    serde_json::from_value(value)
        .map(Some)
        .map_err(|e| HandlerError::Decode {
            kind: "Pod",
            key: request_key(req),
            reason: e.to_string(),
        })
}

impl Handler for PubHandler {
    fn webhook(&self) -> Webhook {
        Webhook {
            name: "vpod.graft.dev",
            path: PATH,
            rules: vec![
                rule("", &["v1"], "pods", &["DELETE", "UPDATE"]),
                rule("", &["v1"], "pods/eviction", &["CREATE"]),
            ],
            absent_labels: &[],
            label_in: &[],
        }
    }

    fn admit<'a>(
        &'a self,
        req: &'a AdmissionRequest<DynamicObject>,
    ) -> BoxFuture<'a, Result<Verdict, HandlerError>> {
        Box::pin(async move {
            let is_pod_update = req.operation == Operation::Update && req.sub_resource.is_none();
            let (old_pod, new_pod) = if is_pod_update {
                (decode_pod(req, true)?, decode_pod(req, false)?)
            } else {
                (None, None)
            };
            let object = match (&req.operation, req.sub_resource.as_deref()) {
                (Operation::Create, Some("eviction")) => Some(object_json(req, false, "Eviction")?),
                _ => None,
            };
            let options = req
                .options
                .as_ref()
                .and_then(|o| serde_json::to_value(o).ok());
            let Some(classified) = pubguard::classify(&Admission {
                verb: verb(&req.operation),
                sub_resource: req.sub_resource.as_deref(),
                old_pod: old_pod.as_ref(),
                new_pod: new_pod.as_ref(),
                dry_run: req.dry_run,
                options: options.as_ref(),
                object: object.as_ref(),
            }) else {
                return Ok(Verdict::Allow);
            };
            let pod = match classified.operation {
                graft_api::policy::v1alpha1::ProtectOperation::Evict => {
                    let ns = req.namespace.as_deref().unwrap_or_default();
                    let pods: Api<Pod> = Api::namespaced(self.client.clone(), ns);
                    match pods.get_opt(&req.name).await {
                        Ok(Some(p)) => p,
                        Ok(None) => return Ok(Verdict::Allow),
                        Err(source) => {
                            return Err(HandlerError::Read {
                                what: format!("pod {}", req.name),
                                key: request_key(req),
                                source,
                            });
                        }
                    }
                }
                graft_api::policy::v1alpha1::ProtectOperation::Update
                | graft_api::policy::v1alpha1::ProtectOperation::Resize => match old_pod {
                    Some(p) => p,
                    None => return Ok(Verdict::Allow),
                },
                graft_api::policy::v1alpha1::ProtectOperation::Delete => {
                    match decode_pod(req, true)? {
                        Some(p) => p,
                        None => return Ok(Verdict::Allow),
                    }
                }
            };
            let ns = pod.metadata.namespace.clone().unwrap_or_default();
            let pubs: Vec<PodUnavailableBudget> = self
                .pubs
                .state()
                .iter()
                .filter(|p| p.metadata.namespace.as_deref() == Some(ns.as_str()))
                .map(|p| (**p).clone())
                .collect();
            if pubs.is_empty() {
                return Ok(Verdict::Allow);
            }
            let needs_owners = pubs.iter().any(|p| p.spec.target_ref.is_some());
            let owners = if needs_owners {
                pubguard::owner_chain(&self.client, &pod).await
            } else {
                Vec::new()
            };
            let Some(budget) = pubguard::pub_for_pod(&pubs, &pod, &owners) else {
                return Ok(Verdict::Allow);
            };
            match self
                .guard
                .spend(budget, &pod, classified.operation, classified.dry_run)
                .await
            {
                Ok(_) => Ok(Verdict::Allow),
                Err(refused) => Ok(Verdict::DenyWithCode(403, refused.message)),
            }
        })
    }
}
