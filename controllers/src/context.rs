//! The context every controller's reconcile takes: the API client, the shared caches, the
//! expectations, metrics and the Event recorder. Built once by [`crate::runtime::run`].

use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::runtime::reflector::Store;

use crate::expectations::Expectations;
use crate::metrics::Metrics;

/// What every reconcile needs: the client, the shared caches, expectations, metrics, events.
pub struct Context {
    /// API client.
    pub client: Client,
    /// The shared pod cache (all namespaces), fed by one watch.
    pub pods: Store<Pod>,
    /// Writes not yet seen in the caches.
    pub expectations: Expectations,
    /// Prometheus metrics.
    pub metrics: Metrics,
    /// Publishes Events.
    pub recorder: crate::events::Recorder,
    /// The last `Plan::waiting` published as an Event, per CloneSet key: the Event goes out when
    /// the reason changes, not on every reconcile. Only dedups Events, so losing it on a restart
    /// costs one repeated Event.
    pub rollout_waiting: std::sync::Mutex<std::collections::HashMap<String, String>>,
}

impl Context {
    /// Remembers `waiting` as the current reason `key`'s rollout waits for; true when it differs
    /// from the last one (so an Event should say so).
    pub fn waiting_changed(&self, key: &str, waiting: Option<&str>) -> bool {
        let Ok(mut last) = self.rollout_waiting.lock() else {
            return false;
        };
        match waiting {
            None => last.remove(key).is_some(),
            Some(w) if last.get(key).map(String::as_str) == Some(w) => false,
            Some(w) => {
                last.insert(key.to_string(), w.to_string());
                true
            }
        }
    }
}
