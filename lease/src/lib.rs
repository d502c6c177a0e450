//! Leader election for `graft run`: replicas compete for one `coordination.k8s.io` Lease
//! (through `kube-lease-manager`); the holder runs the controllers and the sync, the others
//! wait. [`Elector::acquire`] returns when this replica holds the Lease, [`Elector::hold`] keeps
//! renewing it and returns when it is lost, [`Elector::release`] frees it on shutdown so a
//! standby takes over at once instead of after the Lease expires.

use std::time::{Duration, Instant};

use kube::Client;
use kube_lease_manager::{LeaseManager, LeaseManagerBuilder};

/// Where the Lease lives and how it is timed.
#[derive(Clone, Debug)]
pub struct Options {
    /// Name of the Lease object.
    pub lease_name: String,
    /// Namespace of the Lease object (the manager's own namespace).
    pub namespace: String,
    /// This replica's identity in `holderIdentity` (the pod name).
    pub identity: String,
    /// Seconds a Lease stays valid after its last renewal: how long a standby waits when the
    /// leader dies without releasing it.
    pub duration_seconds: u64,
    /// Seconds before expiry at which the holder renews (tolerated clock skew).
    pub grace_seconds: u64,
}

/// Errors of the leader election.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The options cannot work (a grace not shorter than the duration).
    #[error("lease {lease}: {reason}")]
    Invalid {
        /// `namespace/name` of the Lease.
        lease: String,
        /// Why.
        reason: String,
    },
    /// Creating or reading the Lease failed.
    #[error("lease {lease}: {source}")]
    Lease {
        /// `namespace/name` of the Lease.
        lease: String,
        /// The cause.
        source: kube_lease_manager::LeaseManagerError,
    },
}

/// One replica's side of the election.
pub struct Elector {
    manager: LeaseManager,
    lease: String,
    duration: Duration,
    grace: Duration,
}

impl Elector {
    /// Connects to (and creates if missing) the Lease; does not try to take it yet.
    pub async fn new(client: Client, opts: &Options) -> Result<Self, Error> {
        let lease = format!("{}/{}", opts.namespace, opts.lease_name);
        if opts.duration_seconds == 0 || opts.grace_seconds >= opts.duration_seconds {
            return Err(Error::Invalid {
                lease,
                reason: format!(
                    "the renew grace ({}s) must be shorter than the lease duration ({}s)",
                    opts.grace_seconds, opts.duration_seconds
                ),
            });
        }
        let manager = LeaseManagerBuilder::new(client, &opts.lease_name)
            .with_namespace(&opts.namespace)
            .with_identity(&opts.identity)
            .with_duration(opts.duration_seconds)
            .with_grace(opts.grace_seconds)
            .with_field_manager(format!("graft-leader-{}", opts.identity))
            .build()
            .await
            .map_err(|source| Error::Lease {
                lease: lease.clone(),
                source,
            })?;
        Ok(Self {
            manager,
            lease,
            duration: Duration::from_secs(opts.duration_seconds),
            grace: Duration::from_secs(opts.grace_seconds),
        })
    }

    /// Waits until this replica holds the Lease. API errors are logged and retried.
    pub async fn acquire(&self) {
        loop {
            match self.manager.changed().await {
                Ok(true) => return,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(lease = %self.lease, error = %e, "waiting for the lease");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    /// Keeps renewing the Lease; returns when it is lost: another replica holds it, or renewing
    /// has kept failing for as long as the Lease could still be valid (then another replica may
    /// hold it next).
    pub async fn hold(&self) {
        // `changed()` only returns on a change or an error; while it keeps running for a whole
        // Lease duration, renewals succeed, so the error clock starts again.
        let mut failing_since: Option<Instant> = None;
        loop {
            match tokio::time::timeout(self.duration, self.manager.changed()).await {
                Err(_) => failing_since = None,
                Ok(Ok(false)) => return,
                Ok(Ok(true)) => failing_since = None,
                Ok(Err(e)) => {
                    let since = *failing_since.get_or_insert_with(Instant::now);
                    if lost_after_errors(since.elapsed(), self.duration - self.grace) {
                        tracing::error!(lease = %self.lease, error = %e, "could not renew the lease in time");
                        return;
                    }
                    tracing::warn!(lease = %self.lease, error = %e, "renewing the lease");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    /// Frees the Lease if this replica holds it, so a standby takes over without waiting for
    /// it to expire.
    pub async fn release(&self) {
        if let Err(e) = self.manager.release().await {
            tracing::warn!(lease = %self.lease, error = %e, "releasing the lease");
        }
    }
}

/// A holder whose renewals have failed for `failing` must consider the Lease lost once it may
/// have expired (`valid` = duration minus the clock-skew grace): after that another replica may
/// legitimately hold it.
fn lost_after_errors(failing: Duration, valid: Duration) -> bool {
    failing >= valid
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renew_errors_lose_the_lease_only_once_it_may_have_expired() {
        let d = Duration::from_secs(10);
        assert!(!lost_after_errors(Duration::from_secs(3), d));
        assert!(!lost_after_errors(Duration::from_millis(9_999), d));
        assert!(lost_after_errors(Duration::from_secs(10), d));
        assert!(lost_after_errors(Duration::from_secs(60), d));
    }
}
