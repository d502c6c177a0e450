//! ContainerRecreateRequest (`apps.kruise.io/v1alpha1`): restart containers of a running pod
//! through the node agent (kruise-api.md §7).

use k8s_openapi::api::core::v1::{ContainerPort, LifecycleHandler};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::field::{FieldError, FieldErrors};

/// Desired recreation; immutable after creation.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "apps.kruise.io",
    version = "v1alpha1",
    kind = "ContainerRecreateRequest",
    namespaced,
    shortname = "crr",
    status = "ContainerRecreateRequestStatus",
    derive = "PartialEq",
    doc = "ContainerRecreateRequest restarts containers of a running pod in place.",
    printcolumn(
        name = "PHASE",
        type_ = "string",
        json_path = ".status.phase",
        description = "Phase of this ContainerRecreateRequest."
    ),
    printcolumn(
        name = "POD",
        type_ = "string",
        json_path = ".spec.podName",
        description = "Pod name of this ContainerRecreateRequest."
    ),
    printcolumn(
        name = "NODE",
        type_ = "string",
        json_path = ".metadata.labels.crr\\.apps\\.kruise\\.io/node-name",
        description = "Pod name of this ContainerRecreateRequest."
    ),
    printcolumn(
        name = "AGE",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "self.podName == oldSelf.podName && self.containers.map(c, c.name) == oldSelf.containers.map(c, c.name)",
    "message": "podName and containers are immutable"
}]))]
pub struct ContainerRecreateRequestSpec {
    /// Pod in the same namespace.
    #[schemars(length(min = 1))]
    pub pod_name: String,
    /// Containers to recreate (at least one, unique names).
    #[schemars(length(min = 1, max = 64))]
    pub containers: Vec<ContainerRecreateRequestContainer>,
    /// How to recreate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = {}))]
    pub strategy: Option<ContainerRecreateRequestStrategy>,
    /// Seconds before the request is given up (at least 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 3))]
    pub active_deadline_seconds: Option<i64>,
    /// Seconds after completion before the request is deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub ttl_seconds_after_finished: Option<i32>,
}

/// A container to recreate; users set only `name`, the rest is filled from the pod.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContainerRecreateRequestContainer {
    /// Container name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// The container's preStop handler (filled by graft).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::opaque_object")]
    pub pre_stop: Option<LifecycleHandler>,
    /// The container's ports, for httpGet/tcpSocket handlers (filled by graft).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::opaque_object_list")]
    pub ports: Option<Vec<ContainerPort>>,
    /// The container's status when the request was made (filled by graft).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_context: Option<ContainerRecreateRequestContainerContext>,
}

/// Container id and restart count at request time.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContainerRecreateRequestContainerContext {
    /// Runtime container id.
    #[serde(rename = "containerID")]
    pub container_id: String,
    /// Restart count.
    pub restart_count: i32,
}

/// CRR `strategy`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContainerRecreateRequestStrategy {
    /// `Fail` (default): stop at the first failed container; `Ignore`: go on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "Fail"))]
    pub failure_policy: Option<ContainerRecreateRequestFailurePolicy>,
    /// Recreate one container after the other.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ordered_recreate: Option<bool>,
    /// Kill even if the container was already restarted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_recreate: Option<bool>,
    /// Grace period for stopping (default: the pod's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub termination_grace_period_seconds: Option<i64>,
    /// Seconds to keep the pod not ready before stopping.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub unready_grace_period_seconds: Option<i64>,
    /// Seconds a new container must run to count as succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub min_started_seconds: Option<i32>,
}

/// CRR `strategy.failurePolicy`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ContainerRecreateRequestFailurePolicy {
    /// Stop at the first failure (default).
    #[default]
    Fail,
    /// Ignore failures.
    Ignore,
}

/// Observed state of a CRR.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct ContainerRecreateRequestStatus {
    /// `Pending`, `Recreating` or `Completed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<ContainerRecreateRequestPhase>,
    /// When the request completed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<Time>,
    /// Why it completed (e.g. "pod has gone").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Per-container state.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_recreate_states: Option<Vec<ContainerRecreateRequestContainerRecreateState>>,
}

/// Phase of a request or of one container.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum ContainerRecreateRequestPhase {
    /// Waiting.
    #[default]
    Pending,
    /// In progress.
    Recreating,
    /// Container recreated.
    Succeeded,
    /// Container failed.
    Failed,
    /// Request done.
    Completed,
}

/// State of one container.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContainerRecreateRequestContainerRecreateState {
    /// Container name.
    pub name: String,
    /// `Pending`, `Recreating`, `Succeeded` or `Failed`.
    pub phase: ContainerRecreateRequestPhase,
    /// Message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The container was killed by the agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_killed: Option<bool>,
}

/// One entry of the annotation `crr.apps.kruise.io/sync-container-statuses` (v1alpha1; v1beta1
/// keeps it in `status.containerStatusSnapshot`): a container that started after the request was
/// created, as the pod status shows it. Written by the manager while the request is Recreating.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerRecreateRequestSyncContainerStatus {
    /// Container name.
    pub name: String,
    /// The container passed its readiness probe.
    pub ready: bool,
    /// Restart count.
    pub restart_count: i32,
    /// Runtime container id (`containerd://...`).
    #[serde(
        rename = "containerID",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub container_id: String,
}

impl ContainerRecreateRequestSpec {
    /// A copy with the webhook's defaults: failurePolicy `Fail`.
    pub fn defaulted(&self) -> Self {
        let mut s = self.clone();
        s.strategy
            .get_or_insert_with(Default::default)
            .failure_policy
            .get_or_insert(ContainerRecreateRequestFailurePolicy::Fail);
        s
    }

    /// Checks podName, containers (≥1, unique names) and deadlines.
    pub fn validate(&self) -> FieldErrors {
        let mut errs = FieldErrors::default();
        if self.pod_name.is_empty() {
            errs.push(FieldError::required("spec.podName", ""));
        }
        if self.containers.is_empty() {
            errs.push(FieldError::required(
                "spec.containers",
                "at least one container",
            ));
        }
        for (i, c) in self.containers.iter().enumerate() {
            if c.name.is_empty() {
                errs.push(FieldError::required(
                    &format!("spec.containers[{i}].name"),
                    "",
                ));
            } else if self.containers[..i].iter().any(|o| o.name == c.name) {
                errs.push(FieldError::duplicate(
                    &format!("spec.containers[{i}].name"),
                    &c.name,
                ));
            }
        }
        if let Some(a) = self.active_deadline_seconds
            && a < 3
        {
            errs.push(FieldError::invalid(
                "spec.activeDeadlineSeconds",
                a,
                "must be at least 3",
            ));
        }
        if let Some(s) = &self.strategy {
            for (f, v) in [
                (
                    "terminationGracePeriodSeconds",
                    s.termination_grace_period_seconds,
                ),
                ("unreadyGracePeriodSeconds", s.unready_grace_period_seconds),
                ("minStartedSeconds", s.min_started_seconds.map(i64::from)),
            ] {
                if let Some(v) = v
                    && v < 0
                {
                    errs.push(FieldError::invalid(
                        &format!("spec.strategy.{f}"),
                        v,
                        "must be greater than or equal to 0",
                    ));
                }
            }
        }
        errs
    }

    /// Checks an update: the spec is immutable.
    pub fn validate_update(&self, old: &Self) -> FieldErrors {
        let mut errs = self.validate();
        if self != old {
            errs.push(FieldError::forbidden("spec", "spec is immutable"));
        }
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_and_validation() {
        let s: ContainerRecreateRequestSpec = serde_json::from_value(json!({
            "podName": "web-0", "containers": [{"name": "app"}, {"name": "app"}], "activeDeadlineSeconds": 1
        }))
        .unwrap();
        assert_eq!(
            serde_json::to_value(s.defaulted()).unwrap()["strategy"],
            json!({"failurePolicy": "Fail"})
        );
        let errs = s.validate();
        assert!(errs.has_field("spec.containers[1].name"));
        assert!(errs.has_field("spec.activeDeadlineSeconds"));
        let mut changed = s.clone();
        changed.pod_name = "web-1".into();
        assert!(changed.validate_update(&s).has_field("spec"));
    }
}
