//! graft's one admission server (DESIGN.md principle 7: nothing graft adds may block the cluster
//! when graft is down).
//!
//! - [`server`]: `admission.k8s.io/v1` AdmissionReviews over TLS (axum on rustls with ring, kube's
//!   crypto provider), a registry of [`server::Handler`]s by path. A handler that fails answers
//!   "allowed, no patch" and logs: only a handler's deliberate refusal ([`server::Verdict::Deny`])
//!   refuses a request.
//! - [`cert`]: a self-signed CA and serving certificate, kept in a Secret in graft's namespace,
//!   shared by every replica and restart, rotated before expiry.
//! - [`config`]: the `MutatingWebhookConfiguration` graft writes itself (server-side apply):
//!   `failurePolicy: Ignore`, a 3 s timeout, system namespaces and graft's own excluded, the CA
//!   patched in. When graft is down the API server admits without it.
//! - `POST /convert` ([`handlers::convert`]): ConversionReviews for SidecarSet v1alpha1 ⇄ v1beta1
//!   with OpenKruise's rules. graft's CRDs convert with strategy `None` (a conversion webhook
//!   would sit in the path of every read at the other version, and graft fails open), so the
//!   API server does not call it; it is there for a CRD an operator points at it.
//! - [`handlers`]: the webhooks OpenKruise's manager serves that graft needs at creation time:
//!   ContainerRecreateRequest (labels, status context, refusals), CloneSet (defaults) and
//!   Advanced StatefulSet (kruise's refusals and defaults, both versions).
//!
//! [`run`] ties them together; every replica runs it (handlers are stateless, a standby answers).

pub mod cert;
pub mod config;
pub mod error;
pub mod handlers;
pub mod policy;
pub mod server;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use error::Error;

/// Default name of the certificate Secret.
pub const DEFAULT_SECRET_NAME: &str = "graft-admission-tls";
/// Default name of the MutatingWebhookConfiguration.
pub const DEFAULT_CONFIG_NAME: &str = "graft";
/// Seconds the API server waits for an answer before it admits without graft.
pub const TIMEOUT_SECONDS: i32 = 3;

/// How the API server reaches this server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// `https://host:port` (graft outside the cluster, e.g. on the local cluster's host); each
    /// webhook's path is appended.
    Url(String),
    /// A Service in front of graft's pods (in-cluster installs).
    Service {
        /// Service name.
        name: String,
        /// Service namespace.
        namespace: String,
        /// Service port.
        port: i32,
    },
}

impl Endpoint {
    /// The names a serving certificate must carry for this endpoint (DNS names or IPs).
    pub fn certificate_names(&self) -> Vec<String> {
        match self {
            Endpoint::Url(url) => vec![url_host(url).to_string()],
            Endpoint::Service {
                name, namespace, ..
            } => vec![
                name.clone(),
                format!("{name}.{namespace}"),
                format!("{name}.{namespace}.svc"),
                format!("{name}.{namespace}.svc.cluster.local"),
            ],
        }
    }
}

/// The host of an `https://host:port/path` URL (brackets of an IPv6 literal removed).
fn url_host(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or(rest);
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split(']').next().unwrap_or(v6);
    }
    authority.split(':').next().unwrap_or(authority)
}

/// Options of the admission server.
#[derive(Clone, Debug)]
pub struct Options {
    /// Where to listen (TLS).
    pub addr: SocketAddr,
    /// How the API server reaches it.
    pub endpoint: Endpoint,
    /// graft's own namespace: the certificate Secret lives there and it is never admitted.
    pub namespace: String,
    /// Name of the certificate Secret.
    pub secret_name: String,
    /// Name of the MutatingWebhookConfiguration.
    pub config_name: String,
    /// Admit only this namespace (graft watching one namespace); `None`: every namespace but
    /// the excluded ones.
    pub watch_namespace: Option<String>,
    /// How often the Secret is read again (rotation by this or another replica).
    pub refresh_interval: Duration,
    /// Deletion protection (`policy.kruise.io/delete-protection`): the policy and the
    /// `Cascading` webhooks are written when on, removed when off.
    pub deletion_protection: bool,
}

impl Options {
    /// Options with the default names and a 10-minute refresh.
    pub fn new(addr: SocketAddr, endpoint: Endpoint, namespace: String) -> Options {
        Options {
            addr,
            endpoint,
            namespace,
            secret_name: DEFAULT_SECRET_NAME.to_string(),
            config_name: DEFAULT_CONFIG_NAME.to_string(),
            watch_namespace: None,
            refresh_interval: Duration::from_secs(600),
            deletion_protection: true,
        }
    }
}

/// Runs the admission server until it fails to listen. Getting the certificate or writing the
/// webhook configuration is retried (the API server admits without graft meanwhile); the
/// certificate is re-read every `refresh_interval` and rotated before expiry.
pub async fn run(client: kube::Client, opts: Options) -> Result<(), Error> {
    let (source, watches) = sidecarset_source(&client, &opts.namespace);
    let (pubs, watch_pubs) = pub_source(&client, opts.watch_namespace.as_deref());
    let watches = futures::future::join(watches, watch_pubs);
    let registry = Arc::new(handlers::registry(
        client.clone(),
        source,
        pubs,
        opts.deletion_protection,
    ));
    let names = opts.endpoint.certificate_names();
    let listener = tokio::net::TcpListener::bind(opts.addr)
        .await
        .map_err(|source| Error::Listen {
            addr: opts.addr,
            source,
        })?;
    let store = cert::Store::new(client.clone(), &opts.namespace, &opts.secret_name);
    let bundle = ensure_until_ok(&store, &names, opts.refresh_interval).await;
    let resolver = Arc::new(server::Resolver::new(&bundle)?);
    tracing::info!(
        addr = %opts.addr,
        secret = %format!("{}/{}", opts.namespace, opts.secret_name),
        not_after = %bundle.not_after,
        "admission server: serving"
    );
    let serve = server::serve(listener, resolver.clone(), registry.clone());
    let maintain = async {
        let mut current = bundle;
        let mut applied = false;
        loop {
            if !applied {
                match config::apply(&client, &opts, &registry, &current.ca_bundle()).await {
                    Ok(()) => {
                        applied = true;
                        tracing::info!(name = %opts.config_name, "admission: webhook configuration applied");
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "admission: webhook configuration not applied (retrying)")
                    }
                }
            }
            let wait = if applied {
                opts.refresh_interval
            } else {
                Duration::from_secs(5)
            };
            tokio::time::sleep(wait).await;
            match store.ensure(&names).await {
                Ok(fresh) if fresh != current => match resolver.replace(&fresh) {
                    Ok(()) => {
                        tracing::info!(not_after = %fresh.not_after, "admission: serving a new certificate");
                        current = fresh;
                        applied = false;
                    }
                    Err(e) => tracing::warn!(error = %e, "admission: new certificate unusable"),
                },
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "admission: certificate check failed (keeping the current one)")
                }
            }
        }
    };
    tokio::select! {
        r = serve => r,
        _ = maintain => Ok(()),
        _ = watches => {
            tracing::warn!("admission: the SidecarSet, Namespace or PodUnavailableBudget watch ended");
            Ok(())
        }
    }
}

/// The SidecarSet and Namespace caches pod injection reads, and the watches that fill them. Until
/// they have listed, a pod is injected from what they hold so far (possibly nothing: the pod is
/// admitted without sidecars and the SidecarSet controller reports it).
fn sidecarset_source(
    client: &kube::Client,
    namespace: &str,
) -> (
    graft_controllers::sidecarset::SidecarSetSource,
    impl std::future::Future<Output = ()>,
) {
    use futures::StreamExt;
    use kube::runtime::{WatchStreamExt, reflector, watcher};
    let (sets, sets_writer) =
        reflector::store::<graft_api::apps::v1beta1::sidecarset::SidecarSet>();
    let (namespaces, ns_writer) = reflector::store::<k8s_openapi::api::core::v1::Namespace>();
    let watch_sets = watcher(
        kube::Api::all(client.clone()),
        watcher::Config::default().any_semantic(),
    )
    .default_backoff()
    .reflect(sets_writer)
    .for_each(|_| futures::future::ready(()));
    let watch_ns = watcher(
        kube::Api::all(client.clone()),
        watcher::Config::default().any_semantic(),
    )
    .default_backoff()
    .reflect(ns_writer)
    .for_each(|_| futures::future::ready(()));
    let source = graft_controllers::sidecarset::SidecarSetSource {
        sidecarsets: sets,
        namespaces,
        client: client.clone(),
        revision_namespace: namespace.to_string(),
    };
    (source, async move {
        futures::future::join(watch_sets, watch_ns).await;
    })
}

/// The PodUnavailableBudget cache `/validate-pod` finds a pod's PUB in (the budget itself is
/// read again before it is spent), and the watch that fills it: `namespace` only, or all.
fn pub_source(
    client: &kube::Client,
    namespace: Option<&str>,
) -> (
    kube::runtime::reflector::Store<graft_api::policy::v1alpha1::PodUnavailableBudget>,
    impl std::future::Future<Output = ()>,
) {
    use futures::StreamExt;
    use kube::runtime::{WatchStreamExt, reflector, watcher};
    let (store, writer) = reflector::store::<graft_api::policy::v1alpha1::PodUnavailableBudget>();
    let api = match namespace {
        Some(ns) => kube::Api::namespaced(client.clone(), ns),
        None => kube::Api::all(client.clone()),
    };
    let watch = watcher(api, watcher::Config::default().any_semantic())
        .default_backoff()
        .reflect(writer)
        .for_each(|_| futures::future::ready(()));
    (store, watch)
}

/// The certificate from the Secret (made or rotated when needed), retried until it works.
async fn ensure_until_ok(
    store: &cert::Store,
    names: &[String],
    max_wait: Duration,
) -> cert::Bundle {
    let mut wait = Duration::from_secs(1);
    loop {
        match store.ensure(names).await {
            Ok(b) => return b,
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?wait, "admission: no certificate yet (the API server admits without graft meanwhile)");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(max_wait.max(Duration::from_secs(1)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificate_names_of_each_endpoint() {
        assert_eq!(
            Endpoint::Url("https://10.88.0.1:9443".into()).certificate_names(),
            vec!["10.88.0.1"]
        );
        assert_eq!(
            Endpoint::Url("https://graft.example:9443/base".into()).certificate_names(),
            vec!["graft.example"]
        );
        assert_eq!(
            Endpoint::Url("https://[fd00::1]:9443".into()).certificate_names(),
            vec!["fd00::1"]
        );
        assert_eq!(
            Endpoint::Service {
                name: "graft-admission".into(),
                namespace: "graft-system".into(),
                port: 443
            }
            .certificate_names(),
            vec![
                "graft-admission",
                "graft-admission.graft-system",
                "graft-admission.graft-system.svc",
                "graft-admission.graft-system.svc.cluster.local"
            ]
        );
    }
}
