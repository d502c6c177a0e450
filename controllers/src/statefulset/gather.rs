//! The gather step: reads the set's namespace from the shared pod, revision and PVC caches and
//! hands it to [`super::prepare::prepare`]. It decides nothing.

use std::collections::HashMap;
use std::sync::Arc;

use graft_api::apps::v1beta1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;

use super::controller::Error;
use super::prepare::{Prepared, prepare};
use crate::context::Context;

/// What one reconcile works from: the prepared input, and the objects behind it that the
/// executor needs.
pub(super) struct Gathered {
    /// Setup writes, the snapshot, templates and history to prune.
    pub prepared: Prepared,
    /// The namespace's pods as read from the cache, by name.
    pub pods: HashMap<String, Arc<Pod>>,
    /// The namespace's PVCs as read from the cache, by name.
    pub claims: HashMap<String, Arc<PersistentVolumeClaim>>,
}

fn in_namespace<K: kube::Resource>(objs: Vec<Arc<K>>, ns: &str) -> Vec<Arc<K>> {
    objs.into_iter()
        .filter(|o| o.meta().namespace.as_deref() == Some(ns))
        .collect()
}

/// Reads the world of `set`; `label_selector` is its selector in query syntax.
pub(super) fn gather(
    ctx: &Context,
    set: &StatefulSet,
    key: &str,
    label_selector: &str,
) -> Result<Gathered, Error> {
    let ns = set.namespace().unwrap_or_default();
    let pods = in_namespace(ctx.pods.state(), &ns);
    let revisions = in_namespace(ctx.revisions.state(), &ns);
    let claims = in_namespace(ctx.claims.state(), &ns);
    let jobs = crate::predownload::owned_jobs(ctx, &ns, set.metadata.uid.as_deref().unwrap_or(""));
    let prepared = prepare(
        set,
        &pods,
        &revisions,
        &claims,
        &jobs,
        label_selector,
        Timestamp::now(),
    )
    .map_err(|source| Error::Revision {
        key: key.to_string(),
        source,
    })?;
    Ok(Gathered {
        prepared,
        pods: pods.into_iter().map(|p| (p.name_any(), p)).collect(),
        claims: claims.into_iter().map(|c| (c.name_any(), c)).collect(),
    })
}
