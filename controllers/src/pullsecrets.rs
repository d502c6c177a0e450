//! Pull secrets of ImagePullJobs, copied into the one namespace the node agents may read
//! (kruise copies them into `kruise-daemon-config`) by the ImagePullJob controller, and released
//! by the NodeImage manager when no live job needs them: a rule both share, so it sits below both.

use std::collections::{BTreeMap, BTreeSet};

use graft_api::labels::{IMAGEPULLJOB_REFERENCES, IMAGEPULLJOB_SOURCE_KEY};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// Label on every copied secret, so the sweep finds them.
pub const COPIED_SECRET_LABEL: &str = "graft.dev/imagepulljob-secret";

/// Name of the copy of secret `name` from namespace `namespace`: `<namespace>.<name>`.
pub fn copy_name(namespace: &str, name: &str) -> String {
    format!("{namespace}.{name}")
}

/// The jobs (`namespace/name`) a copy serves.
pub fn references(secret: &Secret) -> BTreeSet<String> {
    secret
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(IMAGEPULLJOB_REFERENCES))
        .map(|r| {
            r.split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// The copy of `source` for job `job_key` in `target_namespace`, keeping the references of an
/// `existing` copy.
pub fn copy_for(
    source: &Secret,
    job_key: &str,
    existing: Option<&Secret>,
    target_namespace: &str,
) -> Secret {
    let src_ns = source.metadata.namespace.clone().unwrap_or_default();
    let src_name = source.metadata.name.clone().unwrap_or_default();
    let mut refs = existing.map(references).unwrap_or_default();
    refs.insert(job_key.to_string());
    Secret {
        metadata: ObjectMeta {
            name: Some(copy_name(&src_ns, &src_name)),
            namespace: Some(target_namespace.to_string()),
            labels: Some(BTreeMap::from([(
                COPIED_SECRET_LABEL.to_string(),
                "true".to_string(),
            )])),
            annotations: Some(BTreeMap::from([
                (
                    IMAGEPULLJOB_SOURCE_KEY.to_string(),
                    format!("{src_ns}/{src_name}"),
                ),
                (
                    IMAGEPULLJOB_REFERENCES.to_string(),
                    refs.into_iter().collect::<Vec<_>>().join(","),
                ),
            ])),
            ..Default::default()
        },
        type_: source.type_.clone(),
        data: source.data.clone(),
        ..Default::default()
    }
}

/// What to do with one copied secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SweepAction {
    /// No live job references it: delete it.
    Delete(String),
    /// Drop references to jobs that are gone or finished.
    SetReferences(String, String),
}

/// Releases copies whose jobs are gone or finished (`live` holds `namespace/name` of the jobs
/// that still run).
pub fn sweep(copies: &[Secret], live: &BTreeSet<String>) -> Vec<SweepAction> {
    let mut out = Vec::new();
    for c in copies {
        let name = c.metadata.name.clone().unwrap_or_default();
        let refs = references(c);
        let kept: Vec<String> = refs.iter().filter(|r| live.contains(*r)).cloned().collect();
        if kept.is_empty() {
            out.push(SweepAction::Delete(name));
        } else if kept.len() != refs.len() {
            out.push(SweepAction::SetReferences(name, kept.join(",")));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(ns: &str, name: &str) -> Secret {
        Secret {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some(ns.into()),
                ..Default::default()
            },
            type_: Some("kubernetes.io/dockerconfigjson".into()),
            ..Default::default()
        }
    }

    #[test]
    fn copies_accumulate_references_and_are_released_when_unused() {
        let src = secret("team", "creds");
        let a = copy_for(&src, "team/job-a", None, "agents");
        let ab = copy_for(&src, "team/job-b", Some(&a), "agents");
        assert_eq!(ab.metadata.name.as_deref(), Some("team.creds"));
        assert_eq!(ab.metadata.namespace.as_deref(), Some("agents"));
        assert_eq!(
            references(&ab),
            BTreeSet::from(["team/job-a".to_string(), "team/job-b".to_string()])
        );
        let live = BTreeSet::from(["team/job-b".to_string()]);
        assert_eq!(
            sweep(std::slice::from_ref(&ab), &live),
            vec![SweepAction::SetReferences(
                "team.creds".into(),
                "team/job-b".into()
            )]
        );
        assert_eq!(
            sweep(&[ab], &BTreeSet::new()),
            vec![SweepAction::Delete("team.creds".into())]
        );
    }
}
