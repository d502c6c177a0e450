//! The lifecycle's "not ready" reasons in a pod's `KruisePodReady` condition (kruise's
//! `podreadiness` util): a pod entering `PreparingDelete`/`PreparingUpdate` of a hook with
//! `markPodNotReady` is held out of service until it leaves the state. Pure: it returns the
//! conditions to write, the caller sends them through `pods/status`.

use graft_api::annotations::{PodNotReadyReason, PodNotReadyReasons};
use graft_api::apps::common::LifecycleState;
use graft_api::labels;
use k8s_openapi::api::core::v1::{Pod, PodCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use crate::inplace;

/// The lifecycle hook a pod entering `state` waits for while held out of service (the key of
/// its `KruisePodReady` not-ready reason), or `None` when entering `state` puts it back in.
pub fn not_ready_hook(state: LifecycleState) -> Option<&'static str> {
    match state {
        LifecycleState::PreparingDelete => Some("preDeleteHook"),
        LifecycleState::PreparingUpdate => Some("preUpdateHook"),
        _ => None,
    }
}

/// The conditions that set (`hook: Some`) or clear (`None`) the lifecycle's reason in the pod's
/// `KruisePodReady` condition, or `None` when the pod already says so. The condition's message is
/// kruise's JSON list of reasons; it is False while the list is non-empty, and then `Ready` goes
/// False at once too (the kubelet would take a probe period).
pub fn lifecycle_conditions(
    pod: &Pod,
    hook: Option<&str>,
    now: Timestamp,
) -> Option<Vec<PodCondition>> {
    let current = inplace::pod_condition(pod, labels::KRUISE_POD_READY);
    let mut reasons: PodNotReadyReasons = current
        .and_then(|c| c.message.as_deref())
        .and_then(|m| serde_json::from_str(m).ok())
        .unwrap_or_default();
    reasons.retain(|r| r.user_agent != "Lifecycle");
    if let Some(hook) = hook {
        reasons.push(PodNotReadyReason {
            user_agent: "Lifecycle".into(),
            key: hook.into(),
        });
    }
    let status = if reasons.is_empty() { "True" } else { "False" };
    let message = serde_json::to_string(&reasons).unwrap_or_else(|_| "[]".into());
    if current.is_some_and(|c| c.status == status && c.message.as_deref() == Some(&message)) {
        return None;
    }
    let mut conditions = vec![PodCondition {
        type_: labels::KRUISE_POD_READY.to_string(),
        status: status.to_string(),
        message: Some(message),
        last_transition_time: Some(Time(now)),
        ..Default::default()
    }];
    if status == "False" {
        conditions.push(PodCondition {
            type_: "Ready".to_string(),
            status: "False".to_string(),
            reason: Some("ReadinessGatesNotReady".into()),
            last_transition_time: Some(Time(now)),
            ..Default::default()
        });
    }
    Some(conditions)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_lifecycle_reason_is_set_once_and_cleared() {
        let now: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let pod: Pod = serde_json::from_value(json!({"metadata": {"name": "p"}})).unwrap();
        let set = lifecycle_conditions(&pod, Some("preDeleteHook"), now).unwrap();
        assert_eq!(set.len(), 2);
        assert_eq!(set[0].status, "False");
        assert_eq!(
            set[0].message.as_deref(),
            Some(r#"[{"userAgent":"Lifecycle","key":"preDeleteHook"}]"#)
        );
        let mut held = pod.clone();
        held.status = Some(k8s_openapi::api::core::v1::PodStatus {
            conditions: Some(set),
            ..Default::default()
        });
        assert_eq!(
            lifecycle_conditions(&held, Some("preDeleteHook"), now),
            None
        );
        let cleared = lifecycle_conditions(&held, None, now).unwrap();
        assert_eq!(cleared.len(), 1);
        assert_eq!(cleared[0].status, "True");
        assert_eq!(not_ready_hook(LifecycleState::Normal), None);
    }
}
