//! The HTTPS server: AdmissionReviews in, answers out, one handler per path.
//!
//! Fail open: a handler that cannot decide (decode error, API error) answers "allowed, no patch"
//! and logs why. Only [`Verdict::Deny`], a handler's deliberate refusal in OpenKruise's words,
//! refuses a request.

use std::sync::{Arc, RwLock};
use std::time::Instant;

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use futures::future::BoxFuture;
use k8s_openapi::api::admissionregistration::v1::RuleWithOperations;
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::cert::Bundle;
use crate::error::{Error, HandlerError};

/// A handler's answer.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// Admit unchanged.
    Allow,
    /// Admit with this JSON patch.
    Patch(json_patch::Patch),
    /// Refuse, with this message (OpenKruise's words where it refuses the same); the API server
    /// answers 400.
    Deny(String),
    /// Refuse with this HTTP status code (OpenKruise's: 403 for protection, 422 for invalid
    /// objects) and message.
    DenyWithCode(u16, String),
}

/// Where a handler is served and what the API server sends it.
#[derive(Clone, Debug)]
pub struct Webhook {
    /// The webhook's name in the configuration (a qualified name, e.g. `mcloneset.graft.dev`).
    pub name: &'static str,
    /// URL path, e.g. `/mutate-apps-kruise-io-v1alpha1-cloneset`.
    pub path: &'static str,
    /// Which requests go to it.
    pub rules: Vec<RuleWithOperations>,
    /// Objects carrying any of these labels are never sent to it (object selector
    /// `DoesNotExist`).
    pub absent_labels: &'static [&'static str],
    /// Only objects whose label has one of these values are sent to it (object selector `In`),
    /// e.g. deletion protection sees only objects labelled `Cascading`.
    pub label_in: &'static [(&'static str, &'static [&'static str])],
}

impl Webhook {
    /// Whether it belongs in the ValidatingWebhookConfiguration: a path under `/validate-`
    /// (OpenKruise's convention). Validating webhooks run after every mutation and may only
    /// refuse.
    pub fn is_validating(&self) -> bool {
        self.path.starts_with("/validate-")
    }
}

/// One admission webhook.
pub trait Handler: Send + Sync {
    /// Its path and rules.
    fn webhook(&self) -> Webhook;
    /// Decide one request; an `Err` admits it unchanged.
    fn admit<'a>(
        &'a self,
        req: &'a AdmissionRequest<DynamicObject>,
    ) -> BoxFuture<'a, Result<Verdict, HandlerError>>;
}

/// The handlers, by path.
pub struct Registry {
    handlers: Vec<Arc<dyn Handler>>,
}

impl Registry {
    /// A registry of these handlers.
    pub fn new(handlers: Vec<Arc<dyn Handler>>) -> Registry {
        Registry { handlers }
    }

    /// Every handler's webhook, in registration order.
    pub fn webhooks(&self) -> Vec<Webhook> {
        self.handlers.iter().map(|h| h.webhook()).collect()
    }

    /// The HTTP routes: `POST <path>` per handler, and the CRD conversion webhook.
    pub fn router(&self) -> Router {
        let mut app = crate::handlers::convert::router();
        for h in &self.handlers {
            let path = h.webhook().path;
            app = app.route(path, post(review).with_state(h.clone()));
        }
        app
    }
}

/// The `rules` entry for namespaced `group/version resources` with these operations.
pub fn rule(
    group: &str,
    versions: &[&str],
    resource: &str,
    operations: &[&str],
) -> RuleWithOperations {
    RuleWithOperations {
        api_groups: Some(vec![group.to_string()]),
        api_versions: Some(versions.iter().map(|v| v.to_string()).collect()),
        resources: Some(vec![resource.to_string()]),
        operations: Some(operations.iter().map(|o| o.to_string()).collect()),
        scope: Some("Namespaced".to_string()),
    }
}

/// [`rule`] for a cluster-scoped resource (Namespaces, CRDs).
pub fn cluster_rule(
    group: &str,
    versions: &[&str],
    resource: &str,
    operations: &[&str],
) -> RuleWithOperations {
    RuleWithOperations {
        scope: Some("Cluster".to_string()),
        ..rule(group, versions, resource, operations)
    }
}

async fn review(
    State(handler): State<Arc<dyn Handler>>,
    Json(review): Json<AdmissionReview<DynamicObject>>,
) -> Json<AdmissionReview<DynamicObject>> {
    let req: AdmissionRequest<DynamicObject> = match review.try_into() {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "admission: a review without a request");
            return Json(AdmissionResponse::invalid(e.to_string()).into_review());
        }
    };
    let started = Instant::now();
    let verdict = handler.admit(&req).await;
    let path = handler.webhook().path;
    Json(answer(&req, verdict, path, started).into_review())
}

/// The response for a verdict (an error or an unencodable patch admits unchanged).
pub fn answer(
    req: &AdmissionRequest<DynamicObject>,
    verdict: Result<Verdict, HandlerError>,
    path: &str,
    started: Instant,
) -> AdmissionResponse {
    let key = request_key(req);
    let op = operation_name(&req.operation);
    let took_ms = started.elapsed().as_secs_f64() * 1000.0;
    let response = AdmissionResponse::from(req);
    match verdict {
        Ok(Verdict::Allow) => {
            tracing::debug!(%path, %key, op, took_ms, "admission: allowed");
            response
        }
        Ok(Verdict::Patch(patch)) => {
            let ops = patch.0.len();
            match response.clone().with_patch(patch) {
                Ok(r) => {
                    tracing::debug!(%path, %key, op, ops, took_ms, "admission: patched");
                    r
                }
                Err(e) => {
                    tracing::warn!(%path, %key, op, error = %e, "admission: patch not encodable; allowed unchanged");
                    response
                }
            }
        }
        Ok(Verdict::Deny(message)) => {
            tracing::info!(%path, %key, op, %message, took_ms, "admission: refused");
            response.deny(message)
        }
        Ok(Verdict::DenyWithCode(code, message)) => {
            tracing::info!(%path, %key, op, code, %message, took_ms, "admission: refused");
            let mut r = response.deny(message);
            r.result.code = code;
            r
        }
        Err(e) => {
            tracing::warn!(%path, %key, op, error = %e, took_ms, "admission: handler failed; allowed unchanged (fail open)");
            response
        }
    }
}

/// `namespace/name` of the object under admission (name may be empty with `generateName`).
pub fn request_key(req: &AdmissionRequest<DynamicObject>) -> String {
    format!(
        "{}/{}",
        req.namespace.as_deref().unwrap_or_default(),
        req.name
    )
}

fn operation_name(op: &Operation) -> &'static str {
    match op {
        Operation::Create => "CREATE",
        Operation::Update => "UPDATE",
        Operation::Delete => "DELETE",
        Operation::Connect => "CONNECT",
    }
}

/// The serving certificate, replaceable while serving (rotation).
#[derive(Debug)]
pub struct Resolver {
    current: RwLock<Arc<CertifiedKey>>,
}

impl Resolver {
    /// A resolver serving `bundle`'s certificate.
    pub fn new(bundle: &Bundle) -> Result<Resolver, Error> {
        Ok(Resolver {
            current: RwLock::new(Arc::new(certified_key(bundle)?)),
        })
    }

    /// Serve `bundle`'s certificate from now on.
    pub fn replace(&self, bundle: &Bundle) -> Result<(), Error> {
        let key = Arc::new(certified_key(bundle)?);
        match self.current.write() {
            Ok(mut g) => *g = key,
            Err(poisoned) => *poisoned.into_inner() = key,
        }
        Ok(())
    }
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(match self.current.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        })
    }
}

fn certified_key(bundle: &Bundle) -> Result<CertifiedKey, Error> {
    let certs = CertificateDer::pem_slice_iter(bundle.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::Tls(format!("reading the serving certificate: {e}")))?;
    if certs.is_empty() {
        return Err(Error::Tls("no serving certificate in the PEM".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(bundle.key_pem.as_bytes())
        .map_err(|e| Error::Tls(format!("reading the serving key: {e}")))?;
    let signing = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|e| Error::Tls(format!("unsupported serving key: {e}")))?;
    Ok(CertifiedKey::new(certs, signing))
}

/// The rustls server configuration (ring provider, HTTP/2 and HTTP/1.1).
pub fn tls_config(resolver: Arc<Resolver>) -> Result<rustls::ServerConfig, Error> {
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| Error::Tls(e.to_string()))?
    .with_no_client_auth()
    .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Accepts TLS connections on `listener` and serves the registry's routes until the listener
/// fails. A failed handshake or connection is logged and dropped.
pub async fn serve(
    listener: tokio::net::TcpListener,
    resolver: Arc<Resolver>,
    registry: Arc<Registry>,
) -> Result<(), Error> {
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls_config(resolver)?));
    let app = registry.router();
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of file descriptors and the like: wait a little, keep serving.
                tracing::warn!(error = %e, "admission: accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
        tokio::spawn(async move {
            let tls = match acceptor.accept(tcp).await {
                Ok(t) => t,
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "admission: TLS handshake failed");
                    return;
                }
            };
            let service = hyper_util::service::TowerToHyperService::new(app);
            let builder =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            if let Err(e) = builder
                .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                .await
            {
                tracing::debug!(%peer, error = %e, "admission: connection ended with an error");
            }
        });
    }
}
