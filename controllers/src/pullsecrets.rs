//! Pull secrets of ImagePullJobs, copied into the one namespace the node agents may read
//! (kruise copies them into `kruise-daemon-config`) by the ImagePullJob controller, and released
//! by the NodeImage manager when no live job needs them: a rule both share, so it sits below both.

use std::collections::BTreeSet;

use graft_api::labels::{IMAGEPULLJOB_REFERENCES, IMAGEPULLJOB_SOURCE_KEY};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// Label on every copied secret, so the sweep finds them.
pub const COPIED_SECRET_LABEL: &str = "graft.dev/imagepulljob-secret";
/// Annotation kruise 1.9 puts on the copies it makes (`imagepulljobs.kruise.io/mode`).
pub const MODE_ANNOTATION: &str = "imagepulljobs.kruise.io/mode";
/// The mode of copies made by a job (kruise's `ReferenceObjectModeBatch`).
pub const MODE_BATCH: &str = "batch";

/// The `mode` of a NodeImage reference, written by a job of `job_namespace`, to a secret in
/// `secret_namespace`: `batch` for a copy, none for a job's own secret in the agents' namespace
/// (which kruise does not copy either).
pub fn reference_mode(job_namespace: &str, secret_namespace: &str) -> Option<String> {
    (job_namespace != secret_namespace).then(|| MODE_BATCH.to_string())
}

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
/// `existing` copy. As kruise's copy: the source's data, type, labels and annotations, plus
/// `source-key`, `references` (sorted, comma-separated) and `mode: batch`. Unlike kruise (which
/// names copies `<name>-<6 random hex>`), the name is fixed, so a crash between create and
/// record cannot leave an orphan copy.
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
    let mut labels = source.metadata.labels.clone().unwrap_or_default();
    labels.insert(COPIED_SECRET_LABEL.to_string(), "true".to_string());
    let mut annotations = source.metadata.annotations.clone().unwrap_or_default();
    // A source's last-applied copy would make kubectl treat the copy as its own object.
    annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
    annotations.insert(
        IMAGEPULLJOB_SOURCE_KEY.to_string(),
        format!("{src_ns}/{src_name}"),
    );
    annotations.insert(
        IMAGEPULLJOB_REFERENCES.to_string(),
        refs.into_iter().collect::<Vec<_>>().join(","),
    );
    annotations.insert(MODE_ANNOTATION.to_string(), MODE_BATCH.to_string());
    Secret {
        metadata: ObjectMeta {
            name: Some(copy_name(&src_ns, &src_name)),
            namespace: Some(target_namespace.to_string()),
            labels: Some(labels),
            annotations: Some(annotations),
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

    /// kruise's handling over the life of a `completionPolicy: Never` job: the job never
    /// completes, so its copy stays referenced for as long as the job exists, follows the
    /// source's data on every reconcile, and is released only when the job is gone.
    #[test]
    fn a_never_jobs_copy_lives_as_long_as_the_job_and_follows_its_source() {
        use k8s_openapi::ByteString;
        use std::collections::BTreeMap;
        let mut src = secret("team", "creds");
        src.metadata.labels = Some(BTreeMap::from([("team".into(), "a".into())]));
        src.data = Some(BTreeMap::from([(
            ".dockerconfigjson".into(),
            ByteString(b"v1".to_vec()),
        )]));
        let c1 = copy_for(&src, "team/never", None, "agents");
        let ann = c1.metadata.annotations.clone().unwrap();
        assert_eq!(ann[IMAGEPULLJOB_SOURCE_KEY], "team/creds");
        assert_eq!(ann[IMAGEPULLJOB_REFERENCES], "team/never");
        assert_eq!(ann[MODE_ANNOTATION], MODE_BATCH);
        let labels = c1.metadata.labels.clone().unwrap();
        assert_eq!(labels["team"], "a", "the source's labels are copied");
        assert_eq!(labels[COPIED_SECRET_LABEL], "true");

        let running = BTreeSet::from(["team/never".to_string()]);
        assert!(
            sweep(std::slice::from_ref(&c1), &running).is_empty(),
            "a running Never job keeps its copy"
        );

        src.data = Some(BTreeMap::from([(
            ".dockerconfigjson".into(),
            ByteString(b"v2".to_vec()),
        )]));
        let c2 = copy_for(&src, "team/never", Some(&c1), "agents");
        assert_eq!(c2.data, src.data, "the copy follows a rotated source");
        assert_eq!(references(&c2), references(&c1));

        assert_eq!(
            sweep(&[c2], &BTreeSet::new()),
            vec![SweepAction::Delete("team.creds".into())],
            "the copy goes with the job"
        );
    }

    #[test]
    fn only_copies_are_referenced_in_batch_mode() {
        assert_eq!(reference_mode("team", "agents"), Some(MODE_BATCH.into()));
        assert_eq!(reference_mode("agents", "agents"), None);
    }
}
