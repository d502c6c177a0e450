//! SidecarSet injection at pod CREATE, for the pods graft's own controllers do not create
//! (Deployments, Jobs, bare pods): OpenKruise's `/mutate-pod`, with `failurePolicy: Ignore`. The
//! injection is the one pure function the CloneSet controller calls too
//! ([`graft_controllers::sidecarset::inject`]); this handler only reads the request and writes
//! the patch. Pods of graft's CloneSets never come here: the configuration's object selector
//! leaves out pods with a CloneSet instance id (their controller injected them already).
//!
//! When graft is down the pod is created without its sidecars; the SidecarSet controller reports
//! such pods (status and an Event on the pod).

use futures::future::BoxFuture;
use graft_controllers::sidecarset::SidecarSetSource;
use k8s_openapi::api::core::v1::Pod;
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, Operation};

use super::{object_json, patch_between};
use crate::error::HandlerError;
use crate::server::{Handler, Verdict, Webhook, rule};

/// Path of the pod webhook (OpenKruise's).
pub const PATH: &str = "/mutate-pod";

/// Label of pods a graft CloneSet created (and injected itself).
pub const CLONESET_INSTANCE_ID: &str = graft_api::labels::CLONESET_INSTANCE_ID;

/// The pod-create injection webhook, reading SidecarSets and Namespaces from its caches.
pub struct PodHandler {
    source: SidecarSetSource,
}

impl PodHandler {
    /// A handler injecting from `source`.
    pub fn new(source: SidecarSetSource) -> PodHandler {
        PodHandler { source }
    }
}

impl Handler for PodHandler {
    fn webhook(&self) -> Webhook {
        Webhook {
            name: "mpod.graft.dev",
            path: PATH,
            rules: vec![rule("", &["v1"], "pods", &["CREATE"])],
            absent_labels: &[CLONESET_INSTANCE_ID],
            label_in: &[],
        }
    }

    fn admit<'a>(
        &'a self,
        req: &'a AdmissionRequest<DynamicObject>,
    ) -> BoxFuture<'a, Result<Verdict, HandlerError>> {
        Box::pin(async move {
            if req.operation != Operation::Create || req.sub_resource.is_some() {
                return Ok(Verdict::Allow);
            }
            let key = crate::server::request_key(req);
            let object = object_json(req, false, "Pod")?;
            let mut pod: Pod =
                serde_json::from_value(object.clone()).map_err(|e| HandlerError::Decode {
                    kind: "Pod",
                    key: key.clone(),
                    reason: e.to_string(),
                })?;
            // The object of a CREATE may lack its namespace; the request names it.
            if pod.metadata.namespace.is_none() {
                pod.metadata.namespace = req.namespace.clone();
            }
            let injected = self
                .source
                .inject(&pod)
                .await
                .map_err(|e| HandlerError::Inject {
                    key: key.clone(),
                    reason: e.to_string(),
                })?;
            if injected.sidecarsets.is_empty() && injected.pod == pod {
                return Ok(Verdict::Allow);
            }
            // Diff the pod as decoded (not the raw request) against the injected one, so the
            // patch holds the injection only; the namespace the request lacked stays out of it.
            let encode = |p: &Pod| {
                let mut v = serde_json::to_value(p).map_err(|e| HandlerError::Encode {
                    key: key.clone(),
                    reason: e.to_string(),
                })?;
                if object.pointer("/metadata/namespace").is_none()
                    && let Some(m) = v.get_mut("metadata").and_then(|m| m.as_object_mut())
                {
                    m.remove("namespace");
                }
                Ok::<_, HandlerError>(v)
            };
            let (before, after) = (encode(&pod)?, encode(&injected.pod)?);
            Ok(patch_between(&before, &after))
        })
    }
}
