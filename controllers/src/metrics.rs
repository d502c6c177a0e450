//! Prometheus metrics of the controllers: reconcile counts and durations, per controller.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Labels of the per-controller metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabels {
    /// The controller, e.g. `cloneset`.
    pub controller: String,
    /// `ok` or `error`.
    pub result: String,
}

/// The metrics every controller updates.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    reconciles: Family<ControllerLabels, Counter>,
    durations: Family<ControllerLabels, Histogram>,
    /// Pods created, deleted and updated in place by the controllers.
    pub pod_actions: Family<PodActionLabels, Counter>,
    /// Objects currently known to the shared pod cache.
    pub cached_pods: Gauge,
}

/// Labels of [`Metrics::pod_actions`].
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PodActionLabels {
    /// The controller that acted.
    pub controller: String,
    /// `create`, `delete`, `update_in_place`, `recreate`.
    pub action: String,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("graft");
        let reconciles = Family::<ControllerLabels, Counter>::default();
        let durations = Family::<ControllerLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0])
        });
        let pod_actions = Family::<PodActionLabels, Counter>::default();
        let cached_pods = Gauge::default();
        registry.register(
            "reconciles",
            "Reconciles by controller and result",
            reconciles.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Reconcile duration by controller and result",
            durations.clone(),
        );
        registry.register(
            "pod_actions",
            "Pod writes by controller and kind",
            pod_actions.clone(),
        );
        registry.register(
            "cached_pods",
            "Pods in the shared pod cache",
            cached_pods.clone(),
        );
        Metrics {
            registry: Arc::new(registry),
            reconciles,
            durations,
            pod_actions,
            cached_pods,
        }
    }
}

impl Metrics {
    /// Count one reconcile of `controller` that took `took`.
    pub fn reconciled(&self, controller: &str, ok: bool, took: Duration) {
        let labels = ControllerLabels {
            controller: controller.to_string(),
            result: if ok { "ok" } else { "error" }.to_string(),
        };
        self.reconciles.get_or_create(&labels).inc();
        self.durations
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }

    /// Count a pod write.
    pub fn pod_action(&self, controller: &str, action: &str) {
        self.pod_actions
            .get_or_create(&PodActionLabels {
                controller: controller.to_string(),
                action: action.to_string(),
            })
            .inc();
    }

    /// The metrics in Prometheus text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconciles_are_counted_per_controller_and_result() {
        let m = Metrics::default();
        m.reconciled("cloneset", true, Duration::from_millis(3));
        m.reconciled("cloneset", false, Duration::from_millis(3));
        m.reconciled("cloneset", true, Duration::from_millis(3));
        let text = m.encode();
        assert!(
            text.contains(r#"graft_reconciles_total{controller="cloneset",result="ok"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"graft_reconciles_total{controller="cloneset",result="error"} 1"#),
            "{text}"
        );
    }
}
