//! Kubernetes Events (`events.k8s.io/v1`) for graft's controllers, sync and node agent.
//!
//! Like kube-runtime's `Recorder`: a repeat of an Event seen in the last 6 minutes updates its
//! `series` count instead of creating another object. Unlike it, an Event is a repeat only when
//! its message is the same too: kube-runtime 5 keys its cache on the reason alone, so every
//! `SuccessfulCreate` after the first showed the first pod's name, and a rollout's new waiting
//! reason never reached the API server.
#![warn(missing_docs)]

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use tokio::sync::{Mutex, mpsc};

/// How long a published Event is remembered for series aggregation.
const CACHE_TTL: SignedDuration = SignedDuration::from_mins(6);

/// `Normal` or `Warning`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventType {
    /// `Normal`.
    Normal,
    /// `Warning`.
    Warning,
}

/// What makes two Events the same one repeated.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    type_: EventType,
    reason: String,
    note: String,
    regarding: (
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
    ),
}

/// Publishes Events as `reporting_controller`/`reporting_instance`.
pub struct Recorder {
    inner: Arc<Inner>,
    /// The sender of [`Recorder::enqueue`]'s task, started on first use.
    queue: OnceLock<mpsc::UnboundedSender<Queued>>,
}

struct Inner {
    client: Client,
    controller: String,
    instance: String,
    cache: Mutex<HashMap<Key, Event>>,
}

/// An Event waiting in [`Recorder::enqueue`]'s queue.
struct Queued {
    type_: EventType,
    reason: String,
    note: String,
    regarding: ObjectReference,
}

impl Recorder {
    /// A recorder reporting as `controller` (e.g. `graft-controllers`) from `instance`.
    pub fn new(client: Client, controller: &str, instance: &str) -> Self {
        Self {
            inner: Arc::new(Inner {
                client,
                controller: controller.to_string(),
                instance: instance.to_string(),
                cache: Mutex::new(HashMap::new()),
            }),
            queue: OnceLock::new(),
        }
    }

    /// Publish an Event about `regarding`: `reason` (also the action) and the human-readable
    /// `note`. A repeat within 6 minutes bumps the earlier Event's series count.
    pub async fn publish(
        &self,
        type_: EventType,
        reason: &str,
        note: &str,
        regarding: &ObjectReference,
    ) -> Result<(), kube::Error> {
        self.inner.publish(type_, reason, note, regarding).await
    }

    /// Like [`Recorder::publish`], without waiting: the Event joins a queue that one task (per
    /// recorder, started on the first call) sends in order. A controller's reconcile holds its
    /// object until it returns, so an Event it awaited delayed its next look at the pods; queued,
    /// it costs nothing on that path. A send that fails is logged and dropped, as Events are best
    /// effort. Must be called from within a Tokio runtime.
    pub fn enqueue(&self, type_: EventType, reason: &str, note: &str, regarding: &ObjectReference) {
        let queue = self.queue.get_or_init(|| {
            let (tx, mut rx) = mpsc::unbounded_channel::<Queued>();
            let inner = self.inner.clone();
            tokio::spawn(async move {
                while let Some(q) = rx.recv().await {
                    if let Err(e) = inner
                        .publish(q.type_, &q.reason, &q.note, &q.regarding)
                        .await
                    {
                        tracing::debug!(reason = %q.reason, error = %e, "publishing event");
                    }
                }
            });
            tx
        });
        let _ = queue.send(Queued {
            type_,
            reason: reason.to_string(),
            note: note.to_string(),
            regarding: regarding.clone(),
        });
    }
}

impl Inner {
    async fn publish(
        &self,
        type_: EventType,
        reason: &str,
        note: &str,
        regarding: &ObjectReference,
    ) -> Result<(), kube::Error> {
        let now = Timestamp::now();
        let key = Key {
            type_,
            reason: reason.to_string(),
            note: note.to_string(),
            regarding: (
                regarding.namespace.clone(),
                regarding.kind.clone(),
                regarding.name.clone(),
                regarding.uid.clone(),
            ),
        };
        let earlier = {
            let mut cache = self.cache.lock().await;
            cache.retain(|_, e| {
                let last = e
                    .series
                    .as_ref()
                    .map(|s| s.last_observed_time.0)
                    .or(e.event_time.as_ref().map(|t| t.0));
                last.is_none_or(|t| t + CACHE_TTL > now)
            });
            cache.get(&key).cloned()
        };
        // The lock is not held across the API call (reconciles publish concurrently); two
        // racing repeats at worst create two Events.
        let namespace = regarding.namespace.as_deref().unwrap_or("default");
        let api: Api<Event> = Api::namespaced(self.client.clone(), namespace);
        let event = match earlier {
            Some(mut event) => {
                event.series = Some(EventSeries {
                    count: event.series.as_ref().map_or(2, |s| s.count + 1),
                    last_observed_time: MicroTime(now),
                });
                let name = event.metadata.name.clone().unwrap_or_default();
                let patch = serde_json::json!({"series": event.series});
                api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await?;
                event
            }
            None => {
                let event = Event {
                    action: Some(reason.to_string()),
                    reason: Some(reason.to_string()),
                    note: Some(note.to_string()),
                    event_time: Some(MicroTime(now)),
                    regarding: Some(regarding.clone()),
                    reporting_controller: Some(self.controller.clone()),
                    reporting_instance: Some(self.instance.clone()),
                    type_: Some(
                        match type_ {
                            EventType::Normal => "Normal",
                            EventType::Warning => "Warning",
                        }
                        .to_string(),
                    ),
                    metadata: ObjectMeta {
                        namespace: Some(namespace.to_string()),
                        name: Some(format!(
                            "{}.{:x}",
                            regarding.name.as_deref().unwrap_or(&self.controller),
                            now.as_nanosecond()
                        )),
                        ..Default::default()
                    },
                    ..Default::default()
                };
                api.create(&PostParams::default(), &event).await?;
                event
            }
        };
        self.cache.lock().await.insert(key, event);
        Ok(())
    }
}
