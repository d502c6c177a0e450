//! Errors of the admission server, one variant per step that failed.

use std::net::SocketAddr;

/// What went wrong, with the object and the cause.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The listening socket could not be opened.
    #[error("admission server: listening on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// A certificate or key could not be generated or read.
    #[error("admission certificate: {0}")]
    Certificate(String),
    /// The certificate Secret could not be read or written.
    #[error("admission certificate Secret {key}: {source}")]
    Secret {
        /// `namespace/name`.
        key: String,
        /// The cause.
        source: kube::Error,
    },
    /// The webhook configuration could not be written.
    #[error("MutatingWebhookConfiguration {name}: {source}")]
    Configuration {
        /// Its name.
        name: String,
        /// The cause.
        source: kube::Error,
    },
    /// The TLS setup failed.
    #[error("admission TLS: {0}")]
    Tls(String),
}

/// Why a handler could not decide (the request is then admitted unchanged: fail open).
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// The request had no object, or one that does not decode as the kind.
    #[error("decoding {kind} {key}: {reason}")]
    Decode {
        /// The kind.
        kind: &'static str,
        /// `namespace/name` (the name may be empty at create with generateName).
        key: String,
        /// The cause.
        reason: String,
    },
    /// An API call the handler needs failed.
    #[error("reading {what} for {key}: {source}")]
    Read {
        /// What was read, e.g. `pod web-0`.
        what: String,
        /// The object under admission.
        key: String,
        /// The cause.
        source: kube::Error,
    },
    /// A matching SidecarSet could not be injected (the pod is admitted without it).
    #[error("injecting SidecarSets into pod {key}: {reason}")]
    Inject {
        /// The pod under admission.
        key: String,
        /// The cause.
        reason: String,
    },
    /// The patch could not be encoded.
    #[error("encoding the patch for {key}: {reason}")]
    Encode {
        /// The object under admission.
        key: String,
        /// The cause.
        reason: String,
    },
}
