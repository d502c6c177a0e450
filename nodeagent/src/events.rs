//! Kubernetes Events the node agent publishes (`events.k8s.io/v1`, best effort): about a pod's
//! container, as the kubelet's (and kruise-daemon's) `Killing` / `FailedPreStopHook`, or about
//! any other object.

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::PostParams;

/// The agent's reporting controller name.
pub const REPORTING_CONTROLLER: &str = "graft-nodeagent";

/// Publishes Events in the name of the agent of one node.
#[derive(Clone)]
pub struct Recorder {
    client: kube::Client,
    node: String,
}

/// The pod (namespace, name, UID) a container event is about.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodRef {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// UID.
    pub uid: String,
}

impl PodRef {
    /// The reference to container `container` of the pod, as the kubelet's
    /// `GenerateContainerRef` makes it (`fieldPath: spec.containers{name}`).
    pub fn container_ref(&self, container: &str) -> ObjectReference {
        ObjectReference {
            api_version: Some("v1".to_string()),
            kind: Some("Pod".to_string()),
            namespace: Some(self.namespace.clone()),
            name: Some(self.name.clone()),
            uid: Some(self.uid.clone()).filter(|u| !u.is_empty()),
            field_path: Some(format!("spec.containers{{{container}}}")),
            ..Default::default()
        }
    }
}

impl Recorder {
    /// A recorder for the agent on `node`.
    pub fn new(client: kube::Client, node: impl Into<String>) -> Self {
        Self {
            client,
            node: node.into(),
        }
    }

    /// Publishes an Event about `regarding` (in its namespace); failures are only logged.
    pub async fn publish(&self, regarding: ObjectReference, type_: &str, reason: &str, note: &str) {
        let ns = regarding.namespace.clone().unwrap_or_default();
        let now = Timestamp::now();
        let base = regarding.name.clone().unwrap_or_default();
        let event = Event {
            metadata: ObjectMeta {
                name: Some(format!("{base}.{:x}", now.as_nanosecond())),
                namespace: Some(ns.clone()),
                ..Default::default()
            },
            action: Some(reason.to_string()),
            reason: Some(reason.to_string()),
            note: Some(note.to_string()),
            type_: Some(type_.to_string()),
            event_time: Some(MicroTime(now)),
            reporting_controller: Some(REPORTING_CONTROLLER.to_string()),
            reporting_instance: Some(self.node.clone()),
            regarding: Some(regarding),
            ..Default::default()
        };
        let api: Api<Event> = Api::namespaced(self.client.clone(), &ns);
        if let Err(e) = api.create(&PostParams::default(), &event).await {
            tracing::debug!(error = %e, reason, "publishing an event");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_container_reference_names_the_container_as_the_kubelet_does() {
        let r = PodRef {
            namespace: "ns".into(),
            name: "p".into(),
            uid: "u1".into(),
        }
        .container_ref("app");
        assert_eq!(r.field_path.as_deref(), Some("spec.containers{app}"));
        assert_eq!(r.kind.as_deref(), Some("Pod"));
        assert_eq!(r.uid.as_deref(), Some("u1"));
    }
}
