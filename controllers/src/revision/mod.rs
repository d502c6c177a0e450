//! ControllerRevisions: hashing, equality on the decoded template, history truncation
//! (kruise-api.md §1.6, §2.4 step 3 and 6).
//!
//! Revision names are `<owner>-<hash>` exactly as Kubernetes' `history.NewControllerRevision`
//! computes them (FNV-1 32 over the revision data plus the decimal collision count, then
//! `SafeEncodeString`). The data is written the way OpenKruise writes it
//! (`{"spec":{"template":{…,"$patch":"replace"}}}`, template defaulted, keys sorted, Go escaping),
//! so simple templates get the very name kruise-manager would give them. Equality, however, is
//! decided on the *decoded, normalised* template ([`normalize_revision_data`]) so that a revision
//! written by kruise-manager (defaults filled in, quantities canonical) is recognised as equal to
//! the same template written in Git, and taking over a cluster never starts a rollout.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use serde_json::Value;

/// Everything that can go wrong building or reading a revision.
#[derive(Debug, thiserror::Error)]
pub enum RevisionError {
    /// The revision's `data` has no `spec.template` object.
    #[error("revision {name}: data has no spec.template")]
    NoTemplate {
        /// Name of the ControllerRevision.
        name: String,
    },
    /// The template in the revision's `data` does not decode as a PodTemplateSpec.
    #[error("revision {name}: decode template: {message}")]
    DecodeTemplate {
        /// Name of the ControllerRevision.
        name: String,
        /// What serde reported.
        message: String,
    },
    /// A template could not be turned into JSON.
    #[error("encode template: {0}")]
    EncodeTemplate(String),
}

/// The object a ControllerRevision belongs to (its controller owner reference).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RevisionOwner {
    /// `apiVersion` of the owner, e.g. `apps.kruise.io/v1alpha1`.
    pub api_version: String,
    /// `kind` of the owner, e.g. `CloneSet`.
    pub kind: String,
    /// Name of the owner; the revision name is `<name (≤223 chars)>-<hash>`.
    pub name: String,
    /// Namespace of the owner (revisions live next to it).
    pub namespace: Option<String>,
    /// UID of the owner.
    pub uid: String,
}

/// Maximum length of the owner-name prefix of a revision name (Kubernetes `history`).
pub const MAX_PREFIX_LEN: usize = 223;

mod template;

pub use graft_api::gojson::to_go_json;
pub use template::{canonical_quantity, kruise_defaults, normalize_pod_template};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;

/// Characters of Kubernetes' `rand.SafeEncodeString` (no vowels, no ambiguous characters).
const SAFE_ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// Builds the revision `data` of a CloneSet (and Advanced StatefulSet) template the way
/// OpenKruise does: `{"spec":{"template":{…,"$patch":"replace"}}}` with kruise's webhook defaults
/// filled in.
pub fn template_revision_data(template: &PodTemplateSpec) -> Result<Value, RevisionError> {
    let mut t =
        serde_json::to_value(template).map_err(|e| RevisionError::EncodeTemplate(e.to_string()))?;
    kruise_defaults(&mut t);
    if let Value::Object(map) = &mut t {
        map.insert("$patch".into(), Value::String("replace".into()));
    }
    Ok(serde_json::json!({ "spec": { "template": t } }))
}

/// Kubernetes' `history.HashControllerRevision`: FNV-1 (not 1a) 32-bit over the data bytes (Go
/// JSON, see [`to_go_json`]) followed by the decimal collision count, printed in decimal and
/// passed through `SafeEncodeString`. CloneSet always passes a count (0 when unset).
pub fn hash_revision_data(data: &Value, collision_count: Option<i32>) -> String {
    let mut bytes = to_go_json(data).into_bytes();
    if let Some(count) = collision_count {
        bytes.extend_from_slice(count.to_string().as_bytes());
    }
    safe_encode(&fnv1_32(&bytes).to_string())
}

/// FNV-1 (multiply, then xor) 32-bit, Go's `hash/fnv.New32`.
fn fnv1_32(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5_u32, |hash, b| {
        hash.wrapping_mul(0x0100_0193) ^ u32::from(*b)
    })
}

/// Kubernetes' `rand.SafeEncodeString`.
fn safe_encode(s: &str) -> String {
    s.bytes()
        .map(|b| char::from(SAFE_ALPHANUMS[usize::from(b) % SAFE_ALPHANUMS.len()]))
        .collect()
}

/// `<prefix>-<hash>` with the prefix cut to [`MAX_PREFIX_LEN`] characters.
pub fn revision_name(owner_name: &str, hash: &str) -> String {
    let prefix: String = owner_name.chars().take(MAX_PREFIX_LEN).collect();
    format!("{prefix}-{hash}")
}

/// The short hash of a revision name (the part after the last `-`), written to the
/// `pod-template-hash` label.
pub fn short_hash(revision_name: &str) -> &str {
    revision_name.rsplit('-').next().unwrap_or(revision_name)
}

/// Whether a pod's `controller-revision-hash` label names `revision_name`: equal, or equal short
/// hashes (kruise's `EqualToRevisionHash`, so pods labelled with only the short hash match too).
pub fn revision_label_matches(pod_label: &str, revision_name: &str) -> bool {
    pod_label == revision_name || short_hash(pod_label) == short_hash(revision_name)
}

/// Builds a new ControllerRevision (Kubernetes' `history.NewControllerRevision`): named
/// `<owner>-<hash>`, labelled with `template_labels` plus `controller.kubernetes.io/hash`,
/// annotated with `annotations` (CloneSet copies its own annotations), owned by `owner`.
pub fn new_revision(
    owner: &RevisionOwner,
    template_labels: &BTreeMap<String, String>,
    annotations: &BTreeMap<String, String>,
    data: Value,
    revision: i64,
    collision_count: Option<i32>,
) -> ControllerRevision {
    let hash = hash_revision_data(&data, collision_count);
    let mut labels = template_labels.clone();
    labels.insert(graft_api::labels::CONTROLLER_HASH.to_string(), hash.clone());
    ControllerRevision {
        metadata: ObjectMeta {
            name: Some(revision_name(&owner.name, &hash)),
            namespace: owner.namespace.clone(),
            labels: Some(labels),
            annotations: (!annotations.is_empty()).then(|| annotations.clone()),
            owner_references: Some(vec![OwnerReference {
                api_version: owner.api_version.clone(),
                kind: owner.kind.clone(),
                name: owner.name.clone(),
                uid: owner.uid.clone(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]),
            ..Default::default()
        },
        data: Some(RawExtension(data)),
        revision,
    }
}

/// The data of a revision in the form used for equality: `$patch` dropped and, where the data holds
/// a pod template at `spec.template`, the template normalised with [`normalize_pod_template`].
pub fn normalize_revision_data(data: &Value) -> Value {
    let mut d = data.clone();
    if let Some(spec) = d.get_mut("spec").and_then(Value::as_object_mut) {
        spec.remove("$patch");
        if let Some(t) = spec.get_mut("template") {
            *t = normalize_pod_template(t);
        }
    }
    d
}

fn revision_data(r: &ControllerRevision) -> &Value {
    static NULL: Value = Value::Null;
    r.data.as_ref().map_or(&NULL, |d| &d.0)
}

/// Whether two revisions hold the same template (compared decoded and normalised, never as bytes).
pub fn revisions_equal(a: &ControllerRevision, b: &ControllerRevision) -> bool {
    normalize_revision_data(revision_data(a)) == normalize_revision_data(revision_data(b))
}

/// Whether `revision` holds `data` (compared decoded and normalised).
pub fn revision_has_data(revision: &ControllerRevision, data: &Value) -> bool {
    normalize_revision_data(revision_data(revision)) == normalize_revision_data(data)
}

/// Sorts revisions the way Kubernetes' `history.SortControllerRevisions` does: by `.revision`,
/// then creation time, then name.
pub fn sort_revisions(revisions: &mut [ControllerRevision]) {
    revisions.sort_by(|a, b| {
        a.revision
            .cmp(&b.revision)
            .then_with(|| {
                a.metadata
                    .creation_timestamp
                    .cmp(&b.metadata.creation_timestamp)
            })
            .then_with(|| a.metadata.name.cmp(&b.metadata.name))
    });
}

/// The `.revision` number for a new revision: one more than the highest existing, 1 if none.
pub fn next_revision_number(revisions: &[ControllerRevision]) -> i64 {
    revisions
        .iter()
        .map(|r| r.revision)
        .max()
        .map_or(1, |m| m + 1)
}

/// Revisions (in the given order) that hold the same template as `data`.
pub fn find_equal_revisions<'a>(
    revisions: &'a [ControllerRevision],
    data: &Value,
) -> Vec<&'a ControllerRevision> {
    let want = normalize_revision_data(data);
    revisions
        .iter()
        .filter(|r| normalize_revision_data(revision_data(r)) == want)
        .collect()
}

/// Reads the pod template stored in a revision's `data.spec.template`.
pub fn template_from_revision(
    revision: &ControllerRevision,
) -> Result<PodTemplateSpec, RevisionError> {
    let name = revision.metadata.name.clone().unwrap_or_default();
    let mut t = revision_data(revision)
        .get("spec")
        .and_then(|s| s.get("template"))
        .cloned()
        .ok_or_else(|| RevisionError::NoTemplate { name: name.clone() })?;
    if let Value::Object(map) = &mut t {
        map.remove("$patch");
        if let Some(Value::Object(meta)) = map.get_mut("metadata") {
            // Go writes `creationTimestamp: null`, which k8s-openapi's Time does not accept.
            meta.retain(|_, v| !v.is_null());
        }
    }
    serde_json::from_value(t).map_err(|e| RevisionError::DecodeTemplate {
        name,
        message: e.to_string(),
    })
}

/// What the executor must do so the history holds the update revision.
#[derive(Clone, Debug, PartialEq)]
// Built once per reconcile and matched right away; boxing the revision buys nothing.
#[allow(clippy::large_enum_variant)]
pub enum RevisionAction {
    /// Nothing: the newest revision already holds the template.
    None,
    /// Create this revision. If the API server answers AlreadyExists (a name taken by a revision
    /// not in the list), write `collisionCount + 1` to the owner's status and reconcile again.
    Create(ControllerRevision),
    /// Rollback to an earlier template: set `.revision` of the named revision to the given number.
    BumpRevision {
        /// Name of the existing revision that holds the template.
        name: String,
        /// Its new `.revision`.
        revision: i64,
    },
}

/// The current and update revisions of an owner (kruise's `getActiveRevisions`).
#[derive(Clone, Debug, PartialEq)]
pub struct ActiveRevisions {
    /// The revision named by `status.currentRevision`, else the update revision.
    pub current: ControllerRevision,
    /// The revision of the owner's template as it is now (after [`ActiveRevisions::action`]).
    pub update: ControllerRevision,
    /// The collision count to write to the owner's status.
    pub collision_count: i32,
    /// What the executor must write to the API server first.
    pub action: RevisionAction,
}

/// Decides the current and update revisions from the existing history, the owner's template data
/// (e.g. [`template_revision_data`]), `status.currentRevision` and `status.collisionCount`.
///
/// An existing revision whose template equals the current one is reused (no new name, so pods that
/// carry it are up to date); if it is not the newest, it is moved to the top by bumping its
/// `.revision` (rollback). Otherwise a new revision is minted, stepping the collision count past
/// names already taken by revisions with other data.
pub fn resolve_revisions(
    existing: &[ControllerRevision],
    owner: &RevisionOwner,
    template_labels: &BTreeMap<String, String>,
    annotations: &BTreeMap<String, String>,
    data: Value,
    current_revision: Option<&str>,
    collision_count: i32,
) -> ActiveRevisions {
    let mut sorted = existing.to_vec();
    sort_revisions(&mut sorted);
    let next = next_revision_number(&sorted);
    let equal = find_equal_revisions(&sorted, &data);
    let mut collision_count = collision_count;
    let (update, action) = match (equal.last(), sorted.last()) {
        (Some(eq), Some(newest)) if eq.metadata.name == newest.metadata.name => {
            ((*eq).clone(), RevisionAction::None)
        }
        (Some(eq), _) => {
            let mut bumped = (*eq).clone();
            bumped.revision = next;
            let action = RevisionAction::BumpRevision {
                name: bumped.metadata.name.clone().unwrap_or_default(),
                revision: next,
            };
            (bumped, action)
        }
        (None, _) => {
            let taken: BTreeSet<&str> = sorted
                .iter()
                .filter_map(|r| r.metadata.name.as_deref())
                .collect();
            let mut candidate;
            loop {
                candidate = new_revision(
                    owner,
                    template_labels,
                    annotations,
                    data.clone(),
                    next,
                    Some(collision_count),
                );
                let name = candidate.metadata.name.as_deref().unwrap_or_default();
                if !taken.contains(name) {
                    break;
                }
                collision_count = collision_count.saturating_add(1);
            }
            (candidate.clone(), RevisionAction::Create(candidate))
        }
    };
    let current = current_revision
        .and_then(|name| {
            sorted
                .iter()
                .find(|r| r.metadata.name.as_deref() == Some(name))
        })
        .cloned()
        .unwrap_or_else(|| update.clone());
    ActiveRevisions {
        current,
        update,
        collision_count,
        action,
    }
}

/// Names of revisions to delete so that at most `history_limit` revisions remain besides the live
/// ones (kruise's `truncateHistory`). Live = `current`, `update`, and every revision named by a
/// live pod's `controller-revision-hash` label (`pod_revisions`; short hashes match too). The
/// oldest non-live revisions go first.
pub fn revisions_to_delete(
    revisions: &[ControllerRevision],
    history_limit: i32,
    current: &str,
    update: &str,
    pod_revisions: &[&str],
) -> Vec<String> {
    let mut sorted = revisions.to_vec();
    sort_revisions(&mut sorted);
    let live = |name: &str| {
        name == current
            || name == update
            || pod_revisions
                .iter()
                .any(|p| revision_label_matches(p, name))
    };
    let history: Vec<String> = sorted
        .iter()
        .filter_map(|r| r.metadata.name.clone())
        .filter(|name| !live(name))
        .collect();
    let limit = usize::try_from(history_limit.max(0)).unwrap_or(0);
    let excess = history.len().saturating_sub(limit);
    history.into_iter().take(excess).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use serde_json::json;

    /// A real revision from Kubernetes' StatefulSet tests (name, hash label and raw data as the Go
    /// controller wrote them; collision count 0).
    const K8S_GOLDEN_RAW: &str = r#"{"spec":{"template":{"$patch":"replace","metadata":{"annotations":{"test":"value"},"creationTimestamp":null,"labels":{"app":"foo"}},"spec":{"containers":[{"image":"test","imagePullPolicy":"Always","name":"test","resources":{},"terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File"}],"dnsPolicy":"ClusterFirst","restartPolicy":"Always","schedulerName":"default-scheduler","securityContext":{},"terminationGracePeriodSeconds":30}}}}"#;
    const K8S_GOLDEN_HASH: &str = "c77f6d978";

    fn template(image: &str) -> PodTemplateSpec {
        serde_json::from_value(json!({
            "metadata": {"labels": {"app": "foo"}, "annotations": {"test": "value"}},
            "spec": {"containers": [{"name": "test", "image": image}]}
        }))
        .unwrap()
    }

    fn owner() -> RevisionOwner {
        RevisionOwner {
            api_version: "apps.kruise.io/v1alpha1".into(),
            kind: "CloneSet".into(),
            name: "test".into(),
            namespace: Some("ns".into()),
            uid: "uid-1".into(),
        }
    }

    fn labels() -> BTreeMap<String, String> {
        BTreeMap::from([("app".to_string(), "foo".to_string())])
    }

    fn rev(name: &str, revision: i64, image: &str) -> ControllerRevision {
        let data = template_revision_data(&template(image)).unwrap();
        let mut r = new_revision(
            &owner(),
            &labels(),
            &BTreeMap::new(),
            data,
            revision,
            Some(0),
        );
        r.metadata.name = Some(name.into());
        r
    }

    #[test]
    fn fnv1_32_and_safe_encoding() {
        // FNV-1 (not 1a) test vectors.
        assert_eq!(fnv1_32(b""), 0x811c_9dc5);
        assert_eq!(fnv1_32(b"a"), 0x050c_5d7e);
        assert_eq!(fnv1_32(b"foobar"), 0x31f0_b262);
        assert_eq!(safe_encode("0123456789"), "456789bcdf");
        assert_eq!(revision_name(&"x".repeat(300), "abc").len(), 223 + 4);
        assert_eq!(short_hash("web-7b5c9d"), "7b5c9d");
        assert!(revision_label_matches("web-7b5c9d", "web-7b5c9d"));
        assert!(revision_label_matches("7b5c9d", "web-7b5c9d"));
        assert!(!revision_label_matches("web-aaaa", "web-7b5c9d"));
    }

    #[test]
    fn hash_matches_kubernetes_golden() {
        let raw: Value = serde_json::from_str(K8S_GOLDEN_RAW).unwrap();
        assert_eq!(to_go_json(&raw), K8S_GOLDEN_RAW);
        assert_eq!(hash_revision_data(&raw, Some(0)), K8S_GOLDEN_HASH);
        // The collision count is part of the hash.
        assert_ne!(hash_revision_data(&raw, Some(1)), K8S_GOLDEN_HASH);
        assert_ne!(hash_revision_data(&raw, None), K8S_GOLDEN_HASH);
    }

    #[test]
    fn template_data_is_written_like_kruise() {
        // The same template from Git (no defaults) gets the byte-identical data and so the same
        // name kruise-manager gave it.
        let data = template_revision_data(&template("test")).unwrap();
        assert_eq!(to_go_json(&data), K8S_GOLDEN_RAW);
        let r = new_revision(&owner(), &labels(), &BTreeMap::new(), data, 1, Some(0));
        assert_eq!(r.metadata.name.as_deref(), Some("test-c77f6d978"));
        let l = r.metadata.labels.clone().unwrap();
        assert_eq!(l["controller.kubernetes.io/hash"], "c77f6d978");
        assert_eq!(l["app"], "foo");
        let o = &r.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (o.controller, o.block_owner_deletion),
            (Some(true), Some(true))
        );
        assert_eq!(r.revision, 1);
        assert_eq!(
            template_from_revision(&r).unwrap().spec.unwrap().containers[0]
                .image
                .as_deref(),
            Some("test")
        );
    }

    #[test]
    fn equality_is_semantic() {
        let kruise: Value = serde_json::from_str(K8S_GOLDEN_RAW).unwrap();
        let cases = [
            (
                "same template from git",
                json!({"spec": {"template": {
                "metadata": {"labels": {"app": "foo"}, "annotations": {"test": "value"}},
                "spec": {"containers": [{"name": "test", "image": "test"}]}}}}),
                true,
            ),
            (
                "explicit defaults, other key order",
                json!({"spec": {"template": {
                "spec": {"terminationGracePeriodSeconds": 30, "containers": [{"image": "test", "name": "test", "imagePullPolicy": "Always"}]},
                "metadata": {"annotations": {"test": "value"}, "labels": {"app": "foo"}}}}}),
                true,
            ),
            (
                "other image",
                json!({"spec": {"template": {
                "metadata": {"labels": {"app": "foo"}, "annotations": {"test": "value"}},
                "spec": {"containers": [{"name": "test", "image": "test:2"}]}}}}),
                false,
            ),
            (
                "other grace period",
                json!({"spec": {"template": {
                "metadata": {"labels": {"app": "foo"}, "annotations": {"test": "value"}},
                "spec": {"terminationGracePeriodSeconds": 5, "containers": [{"name": "test", "image": "test"}]}}}}),
                false,
            ),
            (
                "annotation dropped",
                json!({"spec": {"template": {
                "metadata": {"labels": {"app": "foo"}},
                "spec": {"containers": [{"name": "test", "image": "test"}]}}}}),
                false,
            ),
        ];
        for (name, data, equal) in cases {
            assert_eq!(
                normalize_revision_data(&kruise) == normalize_revision_data(&data),
                equal,
                "{name}"
            );
        }
    }

    #[test]
    fn next_revision_number_table() {
        let cases: [(&[i64], i64); 3] = [(&[], 1), (&[1, 2, 3], 4), (&[7, 2], 8)];
        for (numbers, want) in cases {
            let revs: Vec<_> = numbers
                .iter()
                .map(|n| rev(&format!("r{n}"), *n, &format!("img:{n}")))
                .collect();
            assert_eq!(next_revision_number(&revs), want, "{numbers:?}");
        }
    }

    #[test]
    fn resolve_revisions_table() {
        let v1 = rev("test-v1", 1, "app:1");
        let v2 = rev("test-v2", 2, "app:2");
        let data = |image: &str| template_revision_data(&template(image)).unwrap();

        // Unchanged template: the newest revision is reused, nothing to write.
        let got = resolve_revisions(
            &[v1.clone(), v2.clone()],
            &owner(),
            &labels(),
            &BTreeMap::new(),
            data("app:2"),
            Some("test-v1"),
            0,
        );
        assert_eq!(got.action, RevisionAction::None);
        assert_eq!(got.update.metadata.name.as_deref(), Some("test-v2"));
        assert_eq!(got.current.metadata.name.as_deref(), Some("test-v1"));

        // Rollback to the v1 template: v1 is reused with .revision bumped to 3.
        let got = resolve_revisions(
            &[v1.clone(), v2.clone()],
            &owner(),
            &labels(),
            &BTreeMap::new(),
            data("app:1"),
            Some("test-v2"),
            0,
        );
        assert_eq!(
            got.action,
            RevisionAction::BumpRevision {
                name: "test-v1".into(),
                revision: 3
            }
        );
        assert_eq!(got.update.revision, 3);
        assert_eq!(got.update.metadata.name.as_deref(), Some("test-v1"));

        // New template: a new revision numbered 3; current defaults to the update revision.
        let got = resolve_revisions(
            &[v1.clone(), v2.clone()],
            &owner(),
            &labels(),
            &BTreeMap::new(),
            data("app:3"),
            None,
            0,
        );
        let RevisionAction::Create(created) = &got.action else {
            panic!("{:?}", got.action)
        };
        assert_eq!(created.revision, 3);
        assert_eq!(created, &got.update);
        assert_eq!(got.current, got.update);
        assert_eq!(got.collision_count, 0);

        // A revision with other data already holds the name: the collision count steps on.
        let mut squatter = rev("x", 1, "other");
        squatter.metadata.name = created.metadata.name.clone();
        let got = resolve_revisions(
            &[squatter],
            &owner(),
            &labels(),
            &BTreeMap::new(),
            data("app:3"),
            None,
            0,
        );
        assert_eq!(got.collision_count, 1);
        assert_ne!(got.update.metadata.name, created.metadata.name);
        assert_eq!(
            got.update.metadata.name.as_deref().map(short_hash),
            Some(hash_revision_data(&data("app:3"), Some(1)).as_str())
        );

        // Takeover: kruise's defaulted revision is recognised as equal to the plain template.
        let mut kruise = rev("test-c77f6d978", 4, "x");
        kruise.data = Some(RawExtension(serde_json::from_str(K8S_GOLDEN_RAW).unwrap()));
        let got = resolve_revisions(
            &[kruise],
            &owner(),
            &labels(),
            &BTreeMap::new(),
            data("test"),
            Some("test-c77f6d978"),
            0,
        );
        assert_eq!(got.action, RevisionAction::None);
        assert_eq!(got.update.metadata.name.as_deref(), Some("test-c77f6d978"));
    }

    #[test]
    fn truncation_table() {
        let revs: Vec<_> = (1..=6)
            .map(|n| rev(&format!("test-r{n}"), n, &format!("img:{n}")))
            .collect();
        struct Case {
            name: &'static str,
            limit: i32,
            current: &'static str,
            update: &'static str,
            pods: &'static [&'static str],
            want: &'static [&'static str],
        }
        let cases = [
            Case {
                name: "under the limit",
                limit: 10,
                current: "test-r6",
                update: "test-r6",
                pods: &[],
                want: &[],
            },
            Case {
                name: "oldest go first",
                limit: 2,
                current: "test-r6",
                update: "test-r6",
                pods: &[],
                want: &["test-r1", "test-r2", "test-r3"],
            },
            Case {
                name: "current and update are kept",
                limit: 0,
                current: "test-r1",
                update: "test-r6",
                pods: &[],
                want: &["test-r2", "test-r3", "test-r4", "test-r5"],
            },
            Case {
                name: "revisions of live pods are kept (short hash too)",
                limit: 1,
                current: "test-r6",
                update: "test-r6",
                pods: &["test-r2", "r3"],
                want: &["test-r1", "test-r4"],
            },
            Case {
                name: "negative limit keeps only live",
                limit: -1,
                current: "test-r5",
                update: "test-r6",
                pods: &[],
                want: &["test-r1", "test-r2", "test-r3", "test-r4"],
            },
        ];
        for c in cases {
            assert_eq!(
                revisions_to_delete(&revs, c.limit, c.current, c.update, c.pods),
                c.want,
                "{}",
                c.name
            );
        }
    }

    #[test]
    fn template_from_revision_errors() {
        let mut r = rev("bad", 1, "x");
        r.data = Some(RawExtension(json!({"spec": {}})));
        assert!(matches!(
            template_from_revision(&r),
            Err(RevisionError::NoTemplate { .. })
        ));
        r.data = Some(RawExtension(
            json!({"spec": {"template": {"spec": {"containers": "nope"}}}}),
        ));
        assert!(matches!(
            template_from_revision(&r),
            Err(RevisionError::DecodeTemplate { .. })
        ));
    }
}
