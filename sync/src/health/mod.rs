//! Health of live objects, with Argo CD's states and correct rules for the OpenKruise kinds.
//!
//! [`health`] is pure: a live object (JSON) in, a [`Health`] out. The sync loop computes it for
//! the workloads a commit changed, moves the commit to `Healthy` when every one is healthy
//! (or `Failed` when one is degraded), and shows the messages in the history.
//!
//! Unlike Argo CD's CloneSet Lua check, a CloneSet mid-rollout is `Progressing` (not
//! `Degraded`), a missing `updatedAvailableReplicas` (omitted when zero, or from older Kruise
//! versions) never reads as `Suspended`, an unset partition is 0, percent partitions are
//! resolved, a stuck rollout past `progressDeadlineSeconds` is `Degraded`, and a `FailedScale` /
//! `FailedUpdate` condition left from an earlier error (the controller never clears them) does not
//! keep a converged CloneSet `Degraded`. `sync/tests/argocd_health.rs` runs Argo CD's own checks
//! on the same objects and lists every difference.

mod builtin;
pub mod failure;
mod kruise;
mod progress;

use std::fmt;

use serde_json::Value;

pub use progress::workload_progress;

/// Health states, as Argo CD names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HealthStatus {
    /// Up to date and available.
    Healthy,
    /// Still converging (rollout, pending pods, waiting for a load balancer).
    Progressing,
    /// Failed, or stuck past its deadline.
    Degraded,
    /// Paused, or held at a partition awaiting approval.
    Suspended,
    /// The object does not exist.
    Missing,
    /// The status cannot be read.
    Unknown,
}

impl HealthStatus {
    /// Rank for aggregation, worst highest (Argo CD's order: Healthy, Suspended, Progressing,
    /// Missing, Degraded, Unknown).
    pub fn severity(self) -> u8 {
        match self {
            Self::Healthy => 0,
            Self::Suspended => 1,
            Self::Progressing => 2,
            Self::Missing => 3,
            Self::Degraded => 4,
            Self::Unknown => 5,
        }
    }
}

impl fmt::Display for HealthStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// The health of one object, with a message saying why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Health {
    /// The state.
    pub status: HealthStatus,
    /// Why, in a sentence (empty when there is nothing to say).
    pub message: String,
}

impl Health {
    /// A health with a message.
    pub fn new(status: HealthStatus, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    /// Healthy, with a message.
    pub fn healthy(message: impl Into<String>) -> Self {
        Self::new(HealthStatus::Healthy, message)
    }

    /// Progressing, with a message.
    pub fn progressing(message: impl Into<String>) -> Self {
        Self::new(HealthStatus::Progressing, message)
    }

    /// Degraded, with a message.
    pub fn degraded(message: impl Into<String>) -> Self {
        Self::new(HealthStatus::Degraded, message)
    }

    /// Suspended, with a message.
    pub fn suspended(message: impl Into<String>) -> Self {
        Self::new(HealthStatus::Suspended, message)
    }

    /// The worst of several healths (the first of equal severity); Healthy when empty.
    pub fn worst<'a>(all: impl IntoIterator<Item = &'a Health>) -> Health {
        all.into_iter()
            .fold(None::<&Health>, |w, h| match w {
                Some(w) if w.status.severity() >= h.status.severity() => Some(w),
                _ => Some(h),
            })
            .cloned()
            .unwrap_or_else(|| Health::healthy(""))
    }
}

/// Health of an object that may not exist: `Missing` when `live` is `None`.
pub fn health_of(live: Option<&Value>) -> Health {
    match live {
        Some(v) => health(v),
        None => Health::new(HealthStatus::Missing, "the object does not exist"),
    }
}

/// Health of a live object, by its group and kind. Kinds without a rule are healthy once they
/// exist, unless they publish a `Ready` condition, which is then followed.
pub fn health(obj: &Value) -> Health {
    let api_version = obj
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let (group, _) = crate::object::split_api_version(api_version);
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or_default();
    if obj
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
    {
        return Health::progressing("being deleted");
    }
    match (group, kind) {
        ("apps", "Deployment") => builtin::deployment(obj),
        ("apps", "StatefulSet") => builtin::statefulset(obj),
        ("apps", "DaemonSet") => builtin::daemonset(obj),
        ("batch", "Job") => builtin::job(obj),
        ("", "Pod") => builtin::pod(obj),
        ("", "PersistentVolumeClaim") => builtin::pvc(obj),
        ("", "Service") => builtin::service(obj),
        ("apps.kruise.io", "CloneSet") => kruise::cloneset(obj),
        ("apps.kruise.io", "StatefulSet") => kruise::advanced_statefulset(obj),
        ("apps.kruise.io", "DaemonSet") => kruise::advanced_daemonset(obj),
        ("apps.kruise.io", "SidecarSet") => kruise::sidecarset(obj),
        ("apps.kruise.io", "BroadcastJob") => kruise::broadcastjob(obj),
        ("apps.kruise.io", "AdvancedCronJob") => kruise::advancedcronjob(obj),
        ("apps.kruise.io", "ImagePullJob") => kruise::imagepulljob(obj),
        _ => generic(obj),
    }
}

fn generic(obj: &Value) -> Health {
    match condition(obj, "Ready") {
        Some(c) => match c.get("status").and_then(Value::as_str) {
            Some("True") => Health::healthy(cond_message(c)),
            Some("False") => Health::degraded(cond_message(c)),
            _ => Health::progressing(cond_message(c)),
        },
        None => Health::healthy(""),
    }
}

// ---- helpers shared by the rules ----------------------------------------------------------------

/// An integer at a JSON pointer.
pub(crate) fn int(obj: &Value, pointer: &str) -> Option<i64> {
    obj.pointer(pointer).and_then(Value::as_i64)
}

/// A string at a JSON pointer.
pub(crate) fn text<'a>(obj: &'a Value, pointer: &str) -> Option<&'a str> {
    obj.pointer(pointer).and_then(Value::as_str)
}

/// A boolean at a JSON pointer (false when absent).
pub(crate) fn flag(obj: &Value, pointer: &str) -> bool {
    obj.pointer(pointer)
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// The status condition of a type.
pub(crate) fn condition<'a>(obj: &'a Value, kind: &str) -> Option<&'a Value> {
    obj.pointer("/status/conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(kind))
}

/// True when the condition of `kind` has status `True`.
pub(crate) fn condition_true(obj: &Value, kind: &str) -> bool {
    condition(obj, kind)
        .and_then(|c| c.get("status"))
        .and_then(Value::as_str)
        == Some("True")
}

/// `reason: message` of a condition.
pub(crate) fn cond_message(c: &Value) -> String {
    let reason = c.get("reason").and_then(Value::as_str).unwrap_or_default();
    let message = c.get("message").and_then(Value::as_str).unwrap_or_default();
    match (reason.is_empty(), message.is_empty()) {
        (false, false) => format!("{reason}: {message}"),
        (false, true) => reason.to_string(),
        _ => message.to_string(),
    }
}

/// `Some(message)` while the controller has not observed the latest spec.
pub(crate) fn not_observed(obj: &Value) -> Option<Health> {
    let generation = int(obj, "/metadata/generation")?;
    match int(obj, "/status/observedGeneration") {
        Some(o) if o >= generation => None,
        _ => Some(Health::progressing(format!(
            "waiting for the controller to observe generation {generation}"
        ))),
    }
}

/// Resolves an int-or-percent (`3`, `"3"`, `"20%"`) against `total`, rounding up like the
/// Kruise partition helpers; clamped to `0..=total`.
pub(crate) fn int_or_percent(v: Option<&Value>, total: i64) -> i64 {
    let n = match v {
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
        Some(Value::String(s)) => match s.strip_suffix('%') {
            Some(p) => p
                .trim()
                .parse::<i64>()
                .map(|p| (p * total + 99) / 100)
                .unwrap_or(0),
            None => s.trim().parse().unwrap_or(0),
        },
        _ => 0,
    };
    n.clamp(0, total.max(0))
}

#[cfg(test)]
mod rows;
#[cfg(test)]
mod tests;
