//! The push webhook receiver (`POST /hook`) of `graft run`, served by every replica (leader and
//! standbys), and of `graft sync`.
//!
//! In `graft run`, a verified push does not sync in the receiving process: it stamps the GitSyncs that follow
//! the pushed repository and ref with the [`RECEIVED_AT_ANNOTATION`] annotation. The change wakes
//! the GitSync controller of whichever replica is the leader (its watch reconciles every change),
//! so a webhook that the Service routes to a standby is not lost and no replica needs to know
//! which one leads.

use std::sync::Arc;

use futures::channel::mpsc::UnboundedSender;
use graft_api::graft::gitsync::GitSync;
use kube::api::{ListParams, Patch, PatchParams};
use kube::runtime::reflector::{ObjectRef as KubeRef, Store};
use kube::{Api, Client, ResourceExt};

use super::Push;
use crate::git::Reference;

/// Annotation a webhook sets on the GitSyncs it concerns (RFC 3339 time of the delivery).
pub const RECEIVED_AT_ANNOTATION: &str = "graft.dev/webhook-received-at";

/// `(namespace, name)` of the GitSyncs a push concerns (suspended ones are left alone).
pub fn targets<'a>(
    push: &Push,
    gitsyncs: impl IntoIterator<Item = &'a GitSync>,
) -> Vec<(String, String)> {
    gitsyncs
        .into_iter()
        .filter(|gs| gs.spec.suspend != Some(true))
        .filter(|gs| {
            push.matches(
                &gs.spec.url,
                &Reference::from_spec(gs.spec.git_ref.as_ref()),
            )
        })
        .map(|gs| (gs.namespace().unwrap_or_default(), gs.name_any()))
        .collect()
}

/// What a verified push does to the GitSyncs it concerns.
pub enum Trigger {
    /// Stamp them with [`RECEIVED_AT_ANNOTATION`] (`graft run`: whichever replica leads sees
    /// the change).
    Stamp {
        /// Client to list and patch GitSyncs with.
        client: Client,
        /// Only this namespace's GitSyncs (`None`: all).
        namespace: Option<String>,
    },
    /// Queue them on the GitSync controller running in this process (`graft sync`).
    Queue {
        /// The controller's GitSyncs.
        store: Store<GitSync>,
        /// The controller's extra trigger queue.
        tx: UnboundedSender<KubeRef<GitSync>>,
    },
}

impl Trigger {
    /// Triggers the GitSyncs `push` concerns; returns how many.
    async fn fire(&self, push: &Push) -> Result<usize, kube::Error> {
        match self {
            Self::Stamp { client, namespace } => stamp(client, namespace.as_deref(), push).await,
            Self::Queue { store, tx } => {
                let all = store.state();
                let targets = targets(push, all.iter().map(AsRef::as_ref));
                for (ns, name) in &targets {
                    let _ = tx.unbounded_send(KubeRef::new(name).within(ns));
                }
                Ok(targets.len())
            }
        }
    }
}

/// `POST /hook` of `graft run`: verifies the delivery with `secret` and stamps the GitSyncs
/// (of `namespace`, or all) it concerns ([`Trigger::Stamp`]).
pub fn router(client: Client, namespace: Option<String>, secret: Arc<Vec<u8>>) -> axum::Router {
    router_with(Trigger::Stamp { client, namespace }, secret)
}

/// `POST /hook`, the one receiver of push webhooks: verifies the delivery with `secret` and
/// fires `trigger` for the GitSyncs it concerns. Answers 401 for a bad signature, 202 with the
/// count for a push, 200 for other events.
pub fn router_with(trigger: Trigger, secret: Arc<Vec<u8>>) -> axum::Router {
    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::post;
    let trigger = Arc::new(trigger);
    axum::Router::new()
        .route(
            "/hook",
            post(move |headers: HeaderMap, body: axum::body::Bytes| {
                let trigger = trigger.clone();
                let secret = secret.clone();
                async move {
                    let pairs: Vec<(&str, &str)> = headers
                        .iter()
                        .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)))
                        .collect();
                    match super::verify(&pairs, &body, &secret) {
                        Err(e) => {
                            tracing::warn!(error = %e, "webhook rejected");
                            (StatusCode::UNAUTHORIZED, "invalid signature\n".to_string())
                        }
                        Ok((_, super::Event::Push(push))) => match trigger.fire(&push).await {
                            Ok(n) => {
                                tracing::info!(gitsyncs = n, "push webhook");
                                (StatusCode::ACCEPTED, format!("{n} GitSync(s) to sync\n"))
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "push webhook: marking the GitSyncs");
                                (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n"))
                            }
                        },
                        Ok(_) => (StatusCode::OK, "nothing to do\n".to_string()),
                    }
                }
            }),
        )
        .layer(axum::extract::DefaultBodyLimit::max(
            super::MAX_PAYLOAD_BYTES,
        ))
}

async fn stamp(
    client: &Client,
    namespace: Option<&str>,
    push: &Push,
) -> Result<usize, kube::Error> {
    let all: Api<GitSync> = match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let list = all.list(&ListParams::default()).await?;
    let targets = targets(push, &list.items);
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    for (ns, name) in &targets {
        let api: Api<GitSync> = Api::namespaced(client.clone(), ns);
        let patch = serde_json::json!({"metadata": {"annotations": {RECEIVED_AT_ANNOTATION: now}}});
        api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
    }
    Ok(targets.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use graft_api::graft::gitsync::GitSyncSpec;

    fn gitsync(ns: &str, name: &str, yaml: &str) -> GitSync {
        let spec: GitSyncSpec = serde_saphyr::from_str(yaml).expect("spec fixture");
        let mut gs = GitSync::new(name, spec);
        gs.metadata.namespace = Some(ns.into());
        gs
    }

    #[test]
    fn a_push_stamps_the_gitsyncs_following_its_repository_and_branch() {
        let push = Push {
            repository_urls: vec!["https://git.example/org/app.git".into()],
            git_ref: Some("refs/heads/main".into()),
            commit: None,
        };
        let all = [
            gitsync(
                "a",
                "main",
                "url: https://git.example/org/app\nref: {branch: main}\n",
            ),
            gitsync("b", "default", "url: https://git.example/org/app.git\n"),
            gitsync(
                "a",
                "other-branch",
                "url: https://git.example/org/app\nref: {branch: dev}\n",
            ),
            gitsync("a", "other-repo", "url: https://git.example/org/web\n"),
            gitsync(
                "a",
                "suspended",
                "url: https://git.example/org/app\nsuspend: true\n",
            ),
        ];
        assert_eq!(
            targets(&push, &all),
            vec![
                ("a".to_string(), "main".to_string()),
                ("b".to_string(), "default".to_string())
            ]
        );
    }
}
