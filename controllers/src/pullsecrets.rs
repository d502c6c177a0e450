//! Pull secrets of ImagePullJobs, copied into the one namespace the node agents may read
//! (kruise copies them into `kruise-daemon-config`) by the ImagePullJob controller, and released
//! by the NodeImage manager when no live job needs them: a rule both share, so it sits below both.

use std::collections::BTreeSet;

use graft_api::labels::{IMAGEPULLJOB_REFERENCES, IMAGEPULLJOB_SOURCE_KEY};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// Annotation kruise 1.9 puts on the copies it makes (`imagepulljobs.kruise.io/mode`).
pub const MODE_ANNOTATION: &str = "imagepulljobs.kruise.io/mode";
/// The mode of copies made by a job (kruise's `ReferenceObjectModeBatch`).
pub const MODE_BATCH: &str = "batch";
/// The finalizer an ImagePullJob carries while it runs, so that its copies are released before
/// it goes (kruise's `ProtectionFinalizer`).
pub const PROTECTION_FINALIZER: &str = "apps.kruise.io/deletion-protection";

/// The `mode` of a NodeImage reference, written by a job of `job_namespace`, to a secret in
/// `secret_namespace`: `batch` for a copy, none for a job's own secret in the agents' namespace
/// (which kruise does not copy either).
pub fn reference_mode(job_namespace: &str, secret_namespace: &str) -> Option<String> {
    (job_namespace != secret_namespace).then(|| MODE_BATCH.to_string())
}

/// Name of a new copy of secret `name`: `<name>-<suffix>`, the suffix six random hex digits
/// ([`random_suffix`]), as kruise names them.
pub fn copy_name(name: &str, suffix: &str) -> String {
    format!("{name}-{suffix}")
}

/// Six random hex digits (kruise's `defaultGenerateRandomString`).
pub fn random_suffix() -> String {
    format!("{:06x}", rand::random::<u32>() & 0x00ff_ffff)
}

/// The source (`namespace/name`) a secret is a copy of, if it is one.
pub fn source_of(secret: &Secret) -> Option<&str> {
    secret
        .metadata
        .annotations
        .as_ref()?
        .get(IMAGEPULLJOB_SOURCE_KEY)
        .map(String::as_str)
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

/// The copy of `source_key` (`namespace/name`) job `job_key` uses, among the secrets of the
/// agents' namespace, as kruise picks it: by name order the first copy of that source, unless a
/// later one already serves this job. Copies being deleted are skipped.
pub fn find_copy<'a>(copies: &'a [Secret], source_key: &str, job_key: &str) -> Option<&'a Secret> {
    let mut sorted: Vec<&Secret> = copies
        .iter()
        .filter(|c| c.metadata.deletion_timestamp.is_none() && source_of(c) == Some(source_key))
        .collect();
    sorted.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    sorted
        .iter()
        .find(|c| references(c).contains(job_key))
        .or(sorted.first())
        .copied()
}

/// The copy of `source` for job `job_key`. A new one (`existing` is `None`) is named `name` in
/// `target_namespace` and carries, as kruise's, the source's data, type, labels and annotations
/// plus `source-key`, `references` and `mode: batch`. An existing one keeps its metadata, takes
/// the source's data and adds the job to its `references` (sorted, comma-separated).
pub fn copy_for(
    source: &Secret,
    job_key: &str,
    existing: Option<&Secret>,
    target_namespace: &str,
    name: &str,
) -> Secret {
    if let Some(e) = existing {
        let mut copy = e.clone();
        copy.data = source.data.clone();
        copy.string_data = source.string_data.clone();
        let mut refs = references(e);
        refs.insert(job_key.to_string());
        copy.metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert(
                IMAGEPULLJOB_REFERENCES.to_string(),
                refs.into_iter().collect::<Vec<_>>().join(","),
            );
        return copy;
    }
    let src_ns = source.metadata.namespace.clone().unwrap_or_default();
    let src_name = source.metadata.name.clone().unwrap_or_default();
    let mut annotations = source.metadata.annotations.clone().unwrap_or_default();
    annotations.insert(IMAGEPULLJOB_REFERENCES.to_string(), job_key.to_string());
    annotations.insert(
        IMAGEPULLJOB_SOURCE_KEY.to_string(),
        format!("{src_ns}/{src_name}"),
    );
    annotations.insert(MODE_ANNOTATION.to_string(), MODE_BATCH.to_string());
    Secret {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(target_namespace.to_string()),
            labels: source.metadata.labels.clone(),
            annotations: Some(annotations),
            ..Default::default()
        },
        type_: source.type_.clone(),
        data: source.data.clone(),
        string_data: source.string_data.clone(),
        immutable: source.immutable,
    }
}

/// What a finished or deleted job `job_key` does to the copies it used (kruise's
/// `releaseImagePullJobSecrets`): drops itself from their references, deleting a copy nobody
/// references any more.
pub fn release(copies: &[Secret], job_key: &str) -> Vec<SweepAction> {
    let mut out = Vec::new();
    for c in copies
        .iter()
        .filter(|c| c.metadata.deletion_timestamp.is_none())
    {
        let refs = references(c);
        if !refs.contains(job_key) {
            continue;
        }
        let name = c.metadata.name.clone().unwrap_or_default();
        let kept: Vec<String> = refs.into_iter().filter(|r| r != job_key).collect();
        if kept.is_empty() {
            out.push(SweepAction::Delete(name));
        } else {
            out.push(SweepAction::SetReferences(name, kept.join(",")));
        }
    }
    out
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
/// that still run): graft's safety net for jobs that went without their finalizer's release
/// (kruise leaves those copies behind). Secrets that are no copies are left alone.
pub fn sweep(copies: &[Secret], live: &BTreeSet<String>) -> Vec<SweepAction> {
    let mut out = Vec::new();
    for c in copies.iter().filter(|c| source_of(c).is_some()) {
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
        let a = copy_for(&src, "team/job-a", None, "agents", "creds-0a1b2c");
        let ab = copy_for(&src, "team/job-b", Some(&a), "agents", "ignored");
        assert_eq!(ab.metadata.name.as_deref(), Some("creds-0a1b2c"));
        assert_eq!(ab.metadata.namespace.as_deref(), Some("agents"));
        assert_eq!(
            references(&ab),
            BTreeSet::from(["team/job-a".to_string(), "team/job-b".to_string()])
        );
        let live = BTreeSet::from(["team/job-b".to_string()]);
        assert_eq!(
            sweep(std::slice::from_ref(&ab), &live),
            vec![SweepAction::SetReferences(
                "creds-0a1b2c".into(),
                "team/job-b".into()
            )]
        );
        assert_eq!(
            sweep(std::slice::from_ref(&ab), &BTreeSet::new()),
            vec![SweepAction::Delete("creds-0a1b2c".into())]
        );
        // The sweep never touches a secret that is no copy.
        assert!(sweep(&[secret("agents", "own")], &BTreeSet::new()).is_empty());
    }

    #[test]
    fn a_finished_job_releases_only_its_own_references() {
        let src = secret("team", "creds");
        let a = copy_for(&src, "team/job-a", None, "agents", "creds-000001");
        let ab = copy_for(&src, "team/job-b", Some(&a), "agents", "");
        let other = copy_for(
            &secret("team", "x"),
            "team/job-c",
            None,
            "agents",
            "x-000002",
        );
        assert_eq!(
            release(&[ab.clone(), other.clone()], "team/job-a"),
            vec![SweepAction::SetReferences(
                "creds-000001".into(),
                "team/job-b".into()
            )]
        );
        assert_eq!(
            release(&[a, other], "team/job-a"),
            vec![SweepAction::Delete("creds-000001".into())]
        );
    }

    #[test]
    fn copies_are_named_and_found_as_kruise_does() {
        let suffix = random_suffix();
        assert_eq!(suffix.len(), 6);
        assert!(suffix.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(copy_name("creds", "0a1b2c"), "creds-0a1b2c");
        let src = secret("team", "creds");
        let first = copy_for(&src, "team/other", None, "agents", "creds-aaaaaa");
        let mine = copy_for(&src, "team/me", None, "agents", "creds-bbbbbb");
        let foreign = copy_for(&secret("x", "creds"), "x/j", None, "agents", "creds-000000");
        let copies = [mine.clone(), foreign, first.clone()];
        // The copy already serving the job wins; otherwise the first by name.
        assert_eq!(find_copy(&copies, "team/creds", "team/me"), Some(&mine));
        assert_eq!(find_copy(&copies, "team/creds", "team/new"), Some(&first));
        assert_eq!(find_copy(&copies, "team/none", "team/me"), None);
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
        src.metadata.annotations = Some(BTreeMap::from([("note".into(), "kept".into())]));
        src.data = Some(BTreeMap::from([(
            ".dockerconfigjson".into(),
            ByteString(b"v1".to_vec()),
        )]));
        let c1 = copy_for(&src, "team/never", None, "agents", "creds-abcdef");
        let ann = c1.metadata.annotations.clone().unwrap();
        assert_eq!(ann[IMAGEPULLJOB_SOURCE_KEY], "team/creds");
        assert_eq!(ann[IMAGEPULLJOB_REFERENCES], "team/never");
        assert_eq!(ann[MODE_ANNOTATION], MODE_BATCH);
        assert_eq!(ann["note"], "kept", "the source's annotations are copied");
        assert_eq!(
            c1.metadata.labels, src.metadata.labels,
            "the source's labels, nothing else"
        );

        let running = BTreeSet::from(["team/never".to_string()]);
        assert!(
            sweep(std::slice::from_ref(&c1), &running).is_empty(),
            "a running Never job keeps its copy"
        );

        src.data = Some(BTreeMap::from([(
            ".dockerconfigjson".into(),
            ByteString(b"v2".to_vec()),
        )]));
        let c2 = copy_for(&src, "team/never", Some(&c1), "agents", "");
        assert_eq!(c2.data, src.data, "the copy follows a rotated source");
        assert_eq!(references(&c2), references(&c1));

        assert_eq!(
            release(&[c2], "team/never"),
            vec![SweepAction::Delete("creds-abcdef".into())],
            "the copy goes with the job"
        );
    }

    #[test]
    fn only_copies_are_referenced_in_batch_mode() {
        assert_eq!(reference_mode("team", "agents"), Some(MODE_BATCH.into()));
        assert_eq!(reference_mode("agents", "agents"), None);
    }
}
