//! Errors of the CRI client: each names the socket, the call and what it was about.

use std::time::Duration;

/// A failed CRI operation.
#[derive(Debug, thiserror::Error)]
pub enum CriError {
    /// No socket was given and none of the usual paths answered.
    #[error("no CRI runtime found: tried {tried:?}; set --cri-socket (GRAFT_CRI_SOCKET)")]
    NoRuntime {
        /// Endpoints probed, each with why it did not answer.
        tried: Vec<String>,
    },
    /// The endpoint string is not a `unix://` path or a plain absolute path.
    #[error("invalid CRI endpoint {endpoint:?}: {reason}")]
    InvalidEndpoint {
        /// What was given.
        endpoint: String,
        /// Why it was refused.
        reason: String,
    },
    /// The socket could not be dialled.
    #[error("connecting to the CRI runtime at {endpoint}: {source}")]
    Connect {
        /// The socket.
        endpoint: String,
        /// The transport error.
        #[source]
        source: tonic::transport::Error,
    },
    /// The runtime answered the call with an error.
    #[error("CRI {method}({target}) at {endpoint}: {code:?}: {message}")]
    Call {
        /// gRPC method, e.g. `PullImage`.
        method: &'static str,
        /// What the call was about (image, container ID).
        target: String,
        /// The socket.
        endpoint: String,
        /// gRPC status code.
        code: tonic::Code,
        /// The runtime's message, as it gave it.
        message: String,
    },
    /// The call did not finish in time.
    #[error("CRI {method}({target}) at {endpoint}: no answer within {after:?}")]
    Timeout {
        /// gRPC method.
        method: &'static str,
        /// What the call was about.
        target: String,
        /// The socket.
        endpoint: String,
        /// The bound that was hit.
        after: Duration,
    },
}

impl CriError {
    /// The runtime's own message for a failed call (what users want to see in a status), or the
    /// whole error text otherwise.
    pub fn runtime_message(&self) -> String {
        match self {
            CriError::Call { message, .. } => message.clone(),
            other => other.to_string(),
        }
    }

    /// Whether the runtime said the target does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            CriError::Call {
                code: tonic::Code::NotFound,
                ..
            }
        )
    }
}
