//! ContainerRecreateRequest at CREATE and UPDATE, as OpenKruise's
//! `/mutate-apps-kruise-io-containerrecreaterequest` (`crr_mutating_handler.go`).
//!
//! CREATE: the request is filled from its pod before it is stored — labels
//! `crr.apps.kruise.io/node-name`, `crr.apps.kruise.io/pod-uid` and `crr.apps.kruise.io/active`,
//! each container's `statusContext` (container ID and restart count), `preStop` and `ports`,
//! `strategy.terminationGracePeriodSeconds` (the pod's) and `failurePolicy` — or refused with
//! kruise's message when kruise refuses (pod not found, inactive, pending; a container not in the
//! pod or without a container ID; read-only fields set). The rule is the CRR manager's
//! (`graft_controllers::crr::plan`): the same function fills a request created while graft was
//! down, on its first reconcile. A request already filled (restored, or taken over from
//! OpenKruise) is admitted as it is, as the manager keeps it.
//!
//! UPDATE: what CEL cannot check — the labels `pod-uid` and `node-name` and the annotation
//! `unready-acquired` cannot change once set (set from empty is allowed: the manager fills
//! requests created while graft was down).

use futures::future::BoxFuture;
use graft_api::apps::v1alpha1::ContainerRecreateRequest;
use graft_api::labels;
use graft_controllers::crr::plan::{Action, Snapshot, initialized, plan};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, Operation};
use serde_json::Value;

use super::{object_json, patch_between};
use crate::error::HandlerError;
use crate::server::{Handler, Verdict, Webhook, request_key, rule};

/// Path of the ContainerRecreateRequest webhook (OpenKruise's).
pub const PATH: &str = "/mutate-apps-kruise-io-containerrecreaterequest";

/// The prefix of the manager's messages for a request kruise's webhook refuses.
const REJECTED: &str = "rejected: ";

/// The ContainerRecreateRequest webhook; reads the pod named by the request.
pub struct CrrHandler {
    client: kube::Client,
}

impl CrrHandler {
    /// A handler reading pods with this client.
    pub fn new(client: kube::Client) -> CrrHandler {
        CrrHandler { client }
    }
}

impl Handler for CrrHandler {
    fn webhook(&self) -> Webhook {
        Webhook {
            name: "mcontainerrecreaterequest.graft.dev",
            path: PATH,
            rules: vec![rule(
                "apps.kruise.io",
                &["v1alpha1"],
                "containerrecreaterequests",
                &["CREATE", "UPDATE"],
            )],
            absent_labels: &[],
            label_in: &[],
        }
    }

    fn admit<'a>(
        &'a self,
        req: &'a AdmissionRequest<DynamicObject>,
    ) -> BoxFuture<'a, Result<Verdict, HandlerError>> {
        Box::pin(async move {
            let key = request_key(req);
            let decode = |reason: String| HandlerError::Decode {
                kind: "ContainerRecreateRequest",
                key: key.clone(),
                reason,
            };
            match req.operation {
                Operation::Create => {
                    let object = object_json(req, false, "ContainerRecreateRequest")?;
                    let crr: ContainerRecreateRequest = serde_json::from_value(object.clone())
                        .map_err(|e| decode(e.to_string()))?;
                    let namespace = req.namespace.clone().unwrap_or_default();
                    let pod_name = &crr.spec.pod_name;
                    let pod = if pod_name.is_empty() || initialized(&crr) {
                        None
                    } else {
                        Api::<Pod>::namespaced(self.client.clone(), &namespace)
                            .get_opt(pod_name)
                            .await
                            .map_err(|source| HandlerError::Read {
                                what: format!("pod {namespace}/{pod_name}"),
                                key: key.clone(),
                                source,
                            })?
                    };
                    on_create(&object, &crr, pod.as_ref(), Timestamp::now())
                        .map_err(|reason| HandlerError::Encode { key, reason })
                }
                Operation::Update => {
                    let new = object_json(req, false, "ContainerRecreateRequest")?;
                    let old = object_json(req, true, "ContainerRecreateRequest")?;
                    Ok(on_update(&old, &new))
                }
                _ => Ok(Verdict::Allow),
            }
        })
    }
}

/// The CREATE verdict for `object` (its JSON as sent, `crr` decoded from it) and its pod.
pub fn on_create(
    object: &Value,
    crr: &ContainerRecreateRequest,
    pod: Option<&Pod>,
    now: Timestamp,
) -> Result<Verdict, String> {
    if initialized(crr) {
        return Ok(Verdict::Allow);
    }
    let p = plan(&Snapshot { crr, pod, now });
    for action in &p.actions {
        match action {
            Action::Initialize {
                labels,
                containers,
                termination_grace_period_seconds,
                failure_policy,
            } => {
                let mut after = object.clone();
                let root = after
                    .as_object_mut()
                    .ok_or_else(|| "the object is not a JSON object".to_string())?;
                let meta = object_entry(root, "metadata")?;
                let obj_labels = object_entry(meta, "labels")?;
                for (k, v) in labels {
                    obj_labels.insert(k.clone(), Value::String(v.clone()));
                }
                let spec = object_entry(root, "spec")?;
                if let Some(Value::Array(list)) = spec.get_mut("containers") {
                    for (c, filled) in list.iter_mut().zip(containers) {
                        let Some(c) = c.as_object_mut() else { continue };
                        if c.get("name").and_then(Value::as_str) != Some(filled.name.as_str()) {
                            return Err(format!("container {} out of order", filled.name));
                        }
                        let filled = serde_json::to_value(filled).map_err(|e| e.to_string())?;
                        for field in ["preStop", "ports", "statusContext"] {
                            if let Some(v) = filled.get(field) {
                                c.insert(field.to_string(), v.clone());
                            }
                        }
                    }
                }
                let strategy = object_entry(spec, "strategy")?;
                if let Some(t) = termination_grace_period_seconds {
                    strategy
                        .entry("terminationGracePeriodSeconds")
                        .or_insert_with(|| Value::from(*t));
                }
                let policy = serde_json::to_value(failure_policy).map_err(|e| e.to_string())?;
                strategy.entry("failurePolicy").or_insert(policy);
                return Ok(patch_between(object, &after));
            }
            Action::Complete { message } => {
                if let Some(why) = message.strip_prefix(REJECTED) {
                    return Ok(Verdict::Deny(why.to_string()));
                }
            }
            _ => {}
        }
    }
    Ok(Verdict::Allow)
}

/// The UPDATE verdict: kruise's immutable labels and annotation, once set.
pub fn on_update(old: &Value, new: &Value) -> Verdict {
    let get = |o: &Value, section: &str, key: &str| {
        o.get("metadata")
            .and_then(|m| m.get(section))
            .and_then(|l| l.get(key))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    for key in [labels::CRR_POD_UID, labels::CRR_NODE_NAME] {
        let was = get(old, "labels", key);
        if !was.is_empty() && get(new, "labels", key) != was {
            return Verdict::DenyWithCode(
                403,
                format!("not allowed to update immutable label {key}"),
            );
        }
    }
    let key = labels::CRR_UNREADY_ACQUIRED;
    let was = get(old, "annotations", key);
    if !was.is_empty() && get(new, "annotations", key) != was {
        return Verdict::DenyWithCode(
            403,
            format!("not allowed to update immutable annotation {key}"),
        );
    }
    Verdict::Allow
}

fn object_entry<'a>(
    map: &'a mut serde_json::Map<String, Value>,
    key: &str,
) -> Result<&'a mut serde_json::Map<String, Value>, String> {
    let slot = map
        .entry(key.to_string())
        .or_insert_with(|| Value::Object(Default::default()));
    if slot.is_null() {
        *slot = Value::Object(Default::default());
    }
    slot.as_object_mut()
        .ok_or_else(|| format!("{key} is not an object"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use serde_json::json;

    fn pod(extra_spec: Value, status: Value) -> Pod {
        let mut spec = json!({
            "nodeName": "graft-local",
            "terminationGracePeriodSeconds": 30,
            "containers": [
                {"name": "app", "image": "app:v1"},
                {"name": "web", "image": "web:v1", "ports": [{"containerPort": 8080}],
                 "lifecycle": {"preStop": {"httpGet": {"path": "/stop", "port": 8080}}}}
            ]
        });
        if let (Some(s), Some(e)) = (spec.as_object_mut(), extra_spec.as_object()) {
            for (k, v) in e {
                s.insert(k.clone(), v.clone());
            }
        }
        serde_json::from_value(json!({
            "metadata": {"name": "web-0", "namespace": "ns", "uid": "uid-1"},
            "spec": spec,
            "status": status
        }))
        .unwrap()
    }

    fn running() -> Value {
        json!({"phase": "Running", "containerStatuses": [
            {"name": "app", "containerID": "containerd://aaa", "restartCount": 2, "ready": true, "image": "app:v1", "imageID": ""},
            {"name": "web", "containerID": "containerd://bbb", "restartCount": 0, "ready": true, "image": "web:v1", "imageID": ""}
        ]})
    }

    fn crr(spec: Value) -> Value {
        json!({"apiVersion": "apps.kruise.io/v1alpha1", "kind": "ContainerRecreateRequest",
               "metadata": {"name": "r", "namespace": "ns"}, "spec": spec})
    }

    fn admit(object: &Value, pod: Option<&Pod>) -> Verdict {
        let typed: ContainerRecreateRequest = serde_json::from_value(object.clone()).unwrap();
        on_create(object, &typed, pod, Timestamp::now()).unwrap()
    }

    fn patched(object: &Value, v: &Verdict) -> Value {
        let mut out = object.clone();
        match v {
            Verdict::Patch(p) => json_patch::patch(&mut out, p).unwrap(),
            other => panic!("expected a patch, got {other:?}"),
        }
        out
    }

    #[test]
    fn create_fills_labels_status_context_and_strategy_from_the_pod() {
        let obj = crr(
            json!({"podName": "web-0", "containers": [{"name": "app"}, {"name": "web"}],
                              "strategy": {"failurePolicy": "Fail"}}),
        );
        let p = pod(json!({}), running());
        let out = patched(&obj, &admit(&obj, Some(&p)));
        assert_eq!(
            out["metadata"]["labels"],
            json!({"crr.apps.kruise.io/node-name": "graft-local",
                   "crr.apps.kruise.io/pod-uid": "uid-1",
                   "crr.apps.kruise.io/active": "true"})
        );
        assert_eq!(
            out["spec"]["containers"],
            json!([
                {"name": "app", "statusContext": {"containerID": "containerd://aaa", "restartCount": 2}},
                {"name": "web",
                 "preStop": {"httpGet": {"path": "/stop", "port": 8080}},
                 "ports": [{"containerPort": 8080}],
                 "statusContext": {"containerID": "containerd://bbb", "restartCount": 0}}
            ])
        );
        assert_eq!(
            out["spec"]["strategy"],
            json!({"failurePolicy": "Fail", "terminationGracePeriodSeconds": 30})
        );
    }

    #[test]
    fn create_keeps_what_the_user_set_and_defaults_the_failure_policy() {
        let obj = crr(json!({"podName": "web-0", "containers": [{"name": "app"}],
                              "strategy": {"terminationGracePeriodSeconds": 5}}));
        let out = patched(&obj, &admit(&obj, Some(&pod(json!({}), running()))));
        assert_eq!(
            out["spec"]["strategy"],
            json!({"failurePolicy": "Fail", "terminationGracePeriodSeconds": 5})
        );
        let no_strategy = crr(json!({"podName": "web-0", "containers": [{"name": "app"}]}));
        let out = patched(
            &no_strategy,
            &admit(&no_strategy, Some(&pod(json!({}), running()))),
        );
        assert_eq!(
            out["spec"]["strategy"],
            json!({"failurePolicy": "Fail", "terminationGracePeriodSeconds": 30})
        );
    }

    /// kruise's refusals, word for word: (rule, request spec, pod, message).
    #[test]
    fn create_refusals_table() {
        let app = json!({"podName": "web-0", "containers": [{"name": "app"}]});
        let cases: Vec<(&str, Value, Option<Pod>, &str)> = vec![
            (
                "pod not found",
                app.clone(),
                None,
                "no found Pod named web-0",
            ),
            (
                "pending pod",
                app.clone(),
                Some(pod(json!({"nodeName": null}), json!({"phase": "Pending"}))),
                "not allowed to recreate containers in a pending Pod",
            ),
            (
                "finished pod",
                app.clone(),
                Some(pod(json!({}), json!({"phase": "Succeeded"}))),
                "not allowed to recreate containers in an inactive Pod",
            ),
            (
                "container not in the pod",
                json!({"podName": "web-0", "containers": [{"name": "nope"}]}),
                Some(pod(json!({}), running())),
                "container nope not found in Pod",
            ),
            (
                "container without a status",
                app.clone(),
                Some(pod(json!({}), json!({"phase": "Running"}))),
                "not found app containerStatus in Pod Status",
            ),
            (
                "container without an id",
                app.clone(),
                Some(pod(
                    json!({}),
                    json!({"phase": "Running", "containerStatuses": [
                    {"name": "app", "restartCount": 0, "ready": false, "image": "app:v1", "imageID": ""}]}),
                )),
                "no containerID in app containerStatus, maybe the container has not been initialized",
            ),
            (
                "read-only fields set by the user",
                json!({"podName": "web-0", "containers": [{"name": "app", "statusContext": {"containerID": "x", "restartCount": 0}}]}),
                Some(pod(json!({}), running())),
                "preStop, ports, statusContext in container are ready-only fields",
            ),
            (
                "deadline below 3 s",
                json!({"podName": "web-0", "containers": [{"name": "app"}], "activeDeadlineSeconds": 2}),
                Some(pod(json!({}), running())),
                "activeDeadlineSeconds can not be less than 3s",
            ),
        ];
        for (rule, spec, p, message) in cases {
            let obj = crr(spec);
            assert_eq!(
                admit(&obj, p.as_ref()),
                Verdict::Deny(message.to_string()),
                "{rule}"
            );
        }
    }

    #[test]
    fn a_request_already_filled_is_admitted_as_it_is() {
        let obj = json!({"apiVersion": "apps.kruise.io/v1alpha1", "kind": "ContainerRecreateRequest",
            "metadata": {"name": "r", "namespace": "ns", "labels": {
                "crr.apps.kruise.io/node-name": "n1", "crr.apps.kruise.io/pod-uid": "u1"}},
            "spec": {"podName": "web-0", "containers": [{"name": "app", "statusContext": {"containerID": "x", "restartCount": 0}}]}});
        assert_eq!(admit(&obj, None), Verdict::Allow);
    }

    #[test]
    fn update_keeps_kruise_immutable_labels_and_annotation() {
        let with = |labels: Value, annotations: Value| json!({"metadata": {"labels": labels, "annotations": annotations}});
        let uid = "crr.apps.kruise.io/pod-uid";
        let node = "crr.apps.kruise.io/node-name";
        let unready = "crr.apps.kruise.io/unready-acquired";
        let cases: Vec<(&str, Value, Value, Verdict)> = vec![
            (
                "filled later by the manager",
                with(json!({}), json!({})),
                with(json!({uid: "u", node: "n"}), json!({})),
                Verdict::Allow,
            ),
            (
                "active label removed at completion",
                with(
                    json!({uid: "u", node: "n", "crr.apps.kruise.io/active": "true"}),
                    json!({}),
                ),
                with(json!({uid: "u", node: "n"}), json!({})),
                Verdict::Allow,
            ),
            (
                "pod-uid changed",
                with(json!({uid: "u"}), json!({})),
                with(json!({uid: "v"}), json!({})),
                Verdict::DenyWithCode(403, format!("not allowed to update immutable label {uid}")),
            ),
            (
                "node-name removed",
                with(json!({node: "n"}), json!({})),
                with(json!({}), json!({})),
                Verdict::DenyWithCode(403, format!("not allowed to update immutable label {node}")),
            ),
            (
                "unready-acquired set",
                with(json!({}), json!({})),
                with(json!({}), json!({unready: "2026-12-02T08:00:00Z"})),
                Verdict::Allow,
            ),
            (
                "unready-acquired changed",
                with(json!({}), json!({unready: "a"})),
                with(json!({}), json!({unready: "b"})),
                Verdict::DenyWithCode(
                    403,
                    format!("not allowed to update immutable annotation {unready}"),
                ),
            ),
        ];
        for (rule, old, new, want) in cases {
            assert_eq!(on_update(&old, &new), want, "{rule}");
        }
    }
}
