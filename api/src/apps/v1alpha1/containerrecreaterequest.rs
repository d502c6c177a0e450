//! ContainerRecreateRequest (`apps.kruise.io/v1alpha1`): restart containers of a running pod
//! through the node agent (kruise-api.md §7).

use k8s_openapi::api::core::v1::{ContainerPort, LifecycleHandler};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::field::{FieldError, FieldErrors};

/// OpenKruise's CRR webhook messages (`pkg/webhook/containerrecreaterequest/mutating`), word
/// for word: the CRD's CEL rules, [`ContainerRecreateRequestSpec::validate`] and the manager's
/// create-time checks use them.
pub mod messages {
    /// `podName: ""`.
    pub const POD_NAME_EMPTY: &str = "podName can not be empty";
    /// `containers: []`.
    pub const CONTAINERS_EMPTY: &str = "containers list can not be null";
    /// `activeDeadlineSeconds` below 3.
    pub const DEADLINE_BELOW_MIN: &str = "activeDeadlineSeconds can not be less than 3s";
    /// Negative `strategy.terminationGracePeriodSeconds`.
    pub const TERMINATION_GRACE_NEGATIVE: &str =
        "terminationGracePeriodSeconds must be non-negative integer";
    /// Negative `strategy.unreadyGracePeriodSeconds`.
    pub const UNREADY_GRACE_NEGATIVE: &str =
        "unreadyGracePeriodSeconds must be non-negative integer";
    /// preStop/ports/statusContext given by the user (kruise's typo "ready-only" kept).
    pub const READ_ONLY_FIELDS: &str =
        "preStop, ports, statusContext in container are ready-only fields";
    /// An update that changes the spec.
    pub const SPEC_IMMUTABLE: &str = "spec of ContainerRecreateRequest is immutable";
    /// A container named twice.
    pub fn duplicate_container(name: &str) -> String {
        format!("can not recreate {name} multi times")
    }
    /// An unknown `strategy.failurePolicy`.
    pub fn unknown_failure_policy(policy: &str) -> String {
        format!("unknown failurePolicy {policy}")
    }
}

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
        json_path = ".metadata.creationTimestamp",
        description = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC."
    )
)]
#[serde(rename_all = "camelCase")]
// OpenKruise's webhook rules the API server can check itself (table: `ContainerRecreateRequestSpec::validate`).
// The spec is immutable except for what graft's controller fills in once from the pod (kruise's
// webhook fills it before the object is stored): each container's preStop/ports/statusContext and
// strategy.terminationGracePeriodSeconds.
#[schemars(extend("x-kubernetes-validations" = [
    {
        "rule": "self.podName == oldSelf.podName && self.containers.map(c, c.name) == oldSelf.containers.map(c, c.name) && has(self.activeDeadlineSeconds) == has(oldSelf.activeDeadlineSeconds) && (!has(self.activeDeadlineSeconds) || self.activeDeadlineSeconds == oldSelf.activeDeadlineSeconds) && has(self.ttlSecondsAfterFinished) == has(oldSelf.ttlSecondsAfterFinished) && (!has(self.ttlSecondsAfterFinished) || self.ttlSecondsAfterFinished == oldSelf.ttlSecondsAfterFinished)",
        "message": messages::SPEC_IMMUTABLE
    }
]))]
pub struct ContainerRecreateRequestSpec {
    /// Pod in the same namespace.
    #[schemars(extend("x-kubernetes-validations" = [{
        "rule": "size(self) > 0",
        "message": messages::POD_NAME_EMPTY
    }]))]
    pub pod_name: String,
    /// Containers to recreate (at least one, unique names). graft caps the list at 64 so that
    /// the API server can afford its CEL rules; OpenKruise has no cap.
    #[schemars(length(max = 64), extend("x-kubernetes-validations" = [
        {
            "rule": "size(self) > 0",
            "message": messages::CONTAINERS_EMPTY
        },
        {
            "rule": "self.all(c, self.exists_one(d, d.name == c.name))",
            "messageExpression": "'can not recreate ' + self.map(c, c.name).filter(n, self.filter(d, d.name == n).size() > 1)[0] + ' multi times'"
        }
    ]))]
    pub containers: Vec<ContainerRecreateRequestContainer>,
    /// How to recreate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = {}, "x-kubernetes-validations" = [{
        "rule": "has(self.failurePolicy) == has(oldSelf.failurePolicy) && (!has(self.failurePolicy) || self.failurePolicy == oldSelf.failurePolicy) && has(self.orderedRecreate) == has(oldSelf.orderedRecreate) && (!has(self.orderedRecreate) || self.orderedRecreate == oldSelf.orderedRecreate) && has(self.forceRecreate) == has(oldSelf.forceRecreate) && (!has(self.forceRecreate) || self.forceRecreate == oldSelf.forceRecreate) && has(self.unreadyGracePeriodSeconds) == has(oldSelf.unreadyGracePeriodSeconds) && (!has(self.unreadyGracePeriodSeconds) || self.unreadyGracePeriodSeconds == oldSelf.unreadyGracePeriodSeconds) && has(self.minStartedSeconds) == has(oldSelf.minStartedSeconds) && (!has(self.minStartedSeconds) || self.minStartedSeconds == oldSelf.minStartedSeconds) && (!has(oldSelf.terminationGracePeriodSeconds) || (has(self.terminationGracePeriodSeconds) && self.terminationGracePeriodSeconds == oldSelf.terminationGracePeriodSeconds))",
        "message": messages::SPEC_IMMUTABLE
    }]))]
    pub strategy: Option<ContainerRecreateRequestStrategy>,
    /// Seconds before the request is given up (at least 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-validations" = [{
        "rule": "self >= 3",
        "message": messages::DEADLINE_BELOW_MIN
    }]))]
    pub active_deadline_seconds: Option<i64>,
    /// Seconds after completion before the request is deleted (OpenKruise sets no minimum).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds_after_finished: Option<i32>,
}

/// A container to recreate; users set only `name`, the rest is filled from the pod.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContainerRecreateRequestContainer {
    /// Container name.
    #[schemars(length(max = 253))]
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
    // A plain string in the schema (no enum): the API server skips CEL rules once the schema
    // refused a value, so an enum would hide kruise's message.
    #[schemars(with = "Option<String>")]
    #[schemars(extend("default" = "Fail", "x-kubernetes-validations" = [{
        "rule": "self in ['Fail', 'Ignore']",
        "messageExpression": "'unknown failurePolicy ' + self"
    }]))]
    pub failure_policy: Option<ContainerRecreateRequestFailurePolicy>,
    /// Recreate one container after the other.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ordered_recreate: Option<bool>,
    /// Kill even if the container was already restarted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_recreate: Option<bool>,
    /// Grace period for stopping (default: the pod's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-validations" = [{
        "rule": "self >= 0",
        "message": messages::TERMINATION_GRACE_NEGATIVE
    }]))]
    pub termination_grace_period_seconds: Option<i64>,
    /// Seconds to keep the pod not ready before stopping.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("x-kubernetes-validations" = [{
        "rule": "self >= 0",
        "message": messages::UNREADY_GRACE_NEGATIVE
    }]))]
    pub unready_grace_period_seconds: Option<i64>,
    /// Seconds a new container must run to count as succeeded (OpenKruise sets no minimum).
    #[serde(default, skip_serializing_if = "Option::is_none")]
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

    /// Checks the spec as OpenKruise's webhook does at create time, with its messages. Rules
    /// (kruise 1.9 `crr_mutating_handler.go`), and where graft enforces each:
    ///
    /// | rule | message | graft |
    /// |---|---|---|
    /// | podName empty | [`messages::POD_NAME_EMPTY`] | CEL on `spec.podName` + here |
    /// | containers empty | [`messages::CONTAINERS_EMPTY`] | CEL on `spec.containers` + here |
    /// | activeDeadlineSeconds < 3 | [`messages::DEADLINE_BELOW_MIN`] | CEL + here |
    /// | terminationGracePeriodSeconds < 0 | [`messages::TERMINATION_GRACE_NEGATIVE`] | CEL + here |
    /// | unreadyGracePeriodSeconds < 0 | [`messages::UNREADY_GRACE_NEGATIVE`] | CEL + here |
    /// | unknown failurePolicy (default `Fail`) | `unknown failurePolicy X` | CEL on `spec.strategy.failurePolicy` (next to the schema's enum); default in the schema |
    /// | a container named twice | `can not recreate X multi times` | CEL on `spec.containers` + here |
    /// | preStop/ports/statusContext set at create | [`messages::READ_ONLY_FIELDS`] | the manager only: a CEL create-only rule would refuse CRRs as kruise stored them (restores, takeover; fixture `containerrecreaterequest-force.yaml`) |
    /// | pod missing / inactive / pending, container missing / without containerID | see `crr::plan` in graft-controllers | the manager (needs the pod) |
    /// | update changes the spec | [`messages::SPEC_IMMUTABLE`] | CEL transition rules, except the fields graft's manager fills once |
    /// | update changes label pod-uid / node-name, or a set unready-acquired annotation | `not allowed to update immutable label ...` | not enforced: CEL cannot see metadata labels |
    pub fn validate(&self) -> FieldErrors {
        let mut errs = FieldErrors::default();
        if self.pod_name.is_empty() {
            errs.push(FieldError::required(
                "spec.podName",
                messages::POD_NAME_EMPTY,
            ));
        }
        if self.containers.is_empty() {
            errs.push(FieldError::required(
                "spec.containers",
                messages::CONTAINERS_EMPTY,
            ));
        }
        if let Some(a) = self.active_deadline_seconds
            && a < 3
        {
            errs.push(FieldError::invalid(
                "spec.activeDeadlineSeconds",
                a,
                messages::DEADLINE_BELOW_MIN,
            ));
        }
        if let Some(s) = &self.strategy {
            if let Some(v) = s.termination_grace_period_seconds
                && v < 0
            {
                errs.push(FieldError::invalid(
                    "spec.strategy.terminationGracePeriodSeconds",
                    v,
                    messages::TERMINATION_GRACE_NEGATIVE,
                ));
            }
            if let Some(v) = s.unready_grace_period_seconds
                && v < 0
            {
                errs.push(FieldError::invalid(
                    "spec.strategy.unreadyGracePeriodSeconds",
                    v,
                    messages::UNREADY_GRACE_NEGATIVE,
                ));
            }
        }
        for (i, c) in self.containers.iter().enumerate() {
            if self.containers[..i].iter().any(|o| o.name == c.name) {
                errs.push(FieldError::invalid(
                    &format!("spec.containers[{i}].name"),
                    &c.name,
                    &messages::duplicate_container(&c.name),
                ));
            }
        }
        errs
    }

    /// Checks an update: the spec is immutable.
    pub fn validate_update(&self, old: &Self) -> FieldErrors {
        let mut errs = self.validate();
        if self != old {
            errs.push(FieldError::forbidden("spec", messages::SPEC_IMMUTABLE));
        }
        errs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(v: serde_json::Value) -> ContainerRecreateRequestSpec {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn defaults_are_pinned() {
        let s = spec(json!({"podName": "web-0", "containers": [{"name": "app"}]}));
        assert_eq!(
            serde_json::to_value(s.defaulted()).unwrap()["strategy"],
            json!({"failurePolicy": "Fail"})
        );
    }

    /// One row per OpenKruise 1.9 webhook rule that needs no pod: (rule, spec, field and exact
    /// detail, or `None` when OpenKruise accepts it).
    #[test]
    fn validation_table() {
        /// (rule, spec, field and detail of the error, or `None` when accepted)
        type Row<'a> = (&'a str, serde_json::Value, Option<(&'a str, String)>);
        let cases: Vec<Row> = vec![
            (
                "minimal request is accepted",
                json!({"podName": "p", "containers": [{"name": "a"}]}),
                None,
            ),
            (
                "empty podName is refused",
                json!({"podName": "", "containers": [{"name": "a"}]}),
                Some(("spec.podName", messages::POD_NAME_EMPTY.into())),
            ),
            (
                "empty containers are refused",
                json!({"podName": "p", "containers": []}),
                Some(("spec.containers", messages::CONTAINERS_EMPTY.into())),
            ),
            (
                "activeDeadlineSeconds below 3 is refused",
                json!({"podName": "p", "containers": [{"name": "a"}], "activeDeadlineSeconds": 2}),
                Some((
                    "spec.activeDeadlineSeconds",
                    messages::DEADLINE_BELOW_MIN.into(),
                )),
            ),
            (
                "activeDeadlineSeconds of 3 is accepted",
                json!({"podName": "p", "containers": [{"name": "a"}], "activeDeadlineSeconds": 3}),
                None,
            ),
            (
                "negative terminationGracePeriodSeconds is refused",
                json!({"podName": "p", "containers": [{"name": "a"}], "strategy": {"terminationGracePeriodSeconds": -1}}),
                Some((
                    "spec.strategy.terminationGracePeriodSeconds",
                    messages::TERMINATION_GRACE_NEGATIVE.into(),
                )),
            ),
            (
                "negative unreadyGracePeriodSeconds is refused",
                json!({"podName": "p", "containers": [{"name": "a"}], "strategy": {"unreadyGracePeriodSeconds": -1}}),
                Some((
                    "spec.strategy.unreadyGracePeriodSeconds",
                    messages::UNREADY_GRACE_NEGATIVE.into(),
                )),
            ),
            (
                "negative minStartedSeconds and ttl are accepted (no minimum in OpenKruise)",
                json!({"podName": "p", "containers": [{"name": "a"}], "ttlSecondsAfterFinished": -1, "strategy": {"minStartedSeconds": -1}}),
                None,
            ),
            (
                "a container named twice is refused",
                json!({"podName": "p", "containers": [{"name": "app"}, {"name": "app"}]}),
                Some((
                    "spec.containers[1].name",
                    messages::duplicate_container("app"),
                )),
            ),
        ];
        for (rule, v, want) in cases {
            let errs = spec(v.clone()).validate();
            match want {
                None => assert!(errs.is_empty(), "{rule}: {v}: {errs}"),
                Some((field, detail)) => assert!(
                    errs.iter().any(|e| e.field == field && e.detail == detail),
                    "{rule}: {v}: want {field}: {detail}, got {errs}"
                ),
            }
        }
    }

    #[test]
    fn the_spec_is_immutable() {
        let s = spec(json!({"podName": "web-0", "containers": [{"name": "app"}]}));
        let mut changed = s.clone();
        changed.pod_name = "web-1".into();
        assert!(
            changed
                .validate_update(&s)
                .iter()
                .any(|e| e.detail == messages::SPEC_IMMUTABLE)
        );
        assert!(s.validate_update(&s).is_empty());
    }
}
