//! Where injection gets its world from: the SidecarSet and Namespace caches, and the SidecarSets'
//! ControllerRevisions, read only when a matching SidecarSet pins an older revision
//! (`injectionStrategy.revision`). Shared by graft's own workload controllers (which inject the
//! pods they create, no admission hop) and the admission server (every other pod).

use std::collections::BTreeMap;

use graft_api::apps::v1beta1::sidecarset::SidecarSet;
use graft_api::labels;
use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::ListParams;
use kube::runtime::reflector::Store;
use kube::{Api, Client};

use super::SidecarSetError;
use super::inject::{InjectInput, Injected, SidecarSetRevision, ThreadRandom, inject};

/// Why a pod could not be injected.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The SidecarSets' revisions could not be listed.
    #[error("listing the ControllerRevisions of SidecarSet {sidecarset}: {source}")]
    Revisions {
        /// The SidecarSet that pins a revision.
        sidecarset: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// Injection itself refused the pod (a bad revision, a merge patch that does not apply, …).
    #[error(transparent)]
    Inject(#[from] SidecarSetError),
}

/// The caches and client injection reads.
#[derive(Clone)]
pub struct SidecarSetSource {
    /// Every SidecarSet (cluster-scoped), v1beta1.
    pub sidecarsets: Store<SidecarSet>,
    /// Every Namespace (for `namespaceSelector`).
    pub namespaces: Store<Namespace>,
    /// For the revisions.
    pub client: Client,
    /// Namespace holding the SidecarSets' ControllerRevisions (graft's own, as kruise keeps them
    /// in kruise-system).
    pub revision_namespace: String,
}

impl SidecarSetSource {
    /// Whether both caches hold their first list.
    pub async fn wait_until_ready(
        &self,
    ) -> Result<(), kube::runtime::reflector::store::WriterDropped> {
        self.sidecarsets.wait_until_ready().await?;
        self.namespaces.wait_until_ready().await
    }

    /// Injects every matching SidecarSet into `pod`, which is about to be created.
    pub async fn inject(&self, pod: &Pod) -> Result<Injected, SourceError> {
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let namespace_labels: BTreeMap<String, String> = self
            .namespaces
            .get(&kube::runtime::reflector::ObjectRef::new(&ns))
            .and_then(|n| n.metadata.labels.clone())
            .unwrap_or_default();
        let mut sets = Vec::new();
        for set in self.sidecarsets.state() {
            // kruise's SidecarSet webhook writes the hash annotations at apply time; one applied
            // while graft's webhook was not answering gets them here (the controller writes them
            // back to the object).
            let set = with_hashes(set.converted())?;
            let revisions = if pins_a_revision(&set) {
                self.revisions_of(&set).await?
            } else {
                Vec::new()
            };
            sets.push(SidecarSetRevision {
                sidecarset: set,
                revisions,
            });
        }
        let input = InjectInput {
            namespace_labels: &namespace_labels,
            sidecarsets: &sets,
            now: Time(k8s_openapi::jiff::Timestamp::now()),
        };
        Ok(inject(pod, &input, &mut ThreadRandom)?)
    }

    async fn revisions_of(&self, set: &SidecarSet) -> Result<Vec<ControllerRevision>, SourceError> {
        let name = set.metadata.name.clone().unwrap_or_default();
        let api: Api<ControllerRevision> =
            Api::namespaced(self.client.clone(), &self.revision_namespace);
        let lp = ListParams::default().labels(&format!("{}={name}", labels::SIDECARSET_NAME));
        api.list(&lp)
            .await
            .map(|l| l.items)
            .map_err(|source| SourceError::Revisions {
                sidecarset: name,
                source,
            })
    }
}

/// The SidecarSet with kruise's defaults and its hash annotations as of its spec. kruise's webhook
/// stores every SidecarSet defaulted and hashed on each create and update; one applied while
/// graft's webhook did not answer is read as if it had been (defaults and hashes are pure
/// functions of the spec, so this agrees with what the webhook wrote).
pub fn with_hashes(set: SidecarSet) -> Result<SidecarSet, SidecarSetError> {
    super::hash::default_and_hash(&set)
}

/// `injectionStrategy.revision` names a revision (by name or custom version): injection needs the
/// SidecarSet's ControllerRevisions.
fn pins_a_revision(set: &SidecarSet) -> bool {
    set.spec
        .injection_strategy
        .as_ref()
        .and_then(|i| i.revision.as_ref())
        .is_some_and(|r| {
            r.revision_name.as_deref().is_some_and(|n| !n.is_empty())
                || r.custom_version.as_deref().is_some_and(|v| !v.is_empty())
        })
}
