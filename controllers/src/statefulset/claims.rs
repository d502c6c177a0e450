//! The PVCs of an Advanced StatefulSet: what the planner knows of them ([`ClaimInfo`]) and the
//! `persistentVolumeClaimRetentionPolicy` decisions (upstream `claimOwnerMatchesSetAndPod`,
//! `updateClaimOwnerRefForSetAndPod`, `PodClaimIsStale`; kruise follows them exactly).
//!
//! Like upstream, the controller never deletes a PVC itself: `Delete` policies make the set or
//! the pod an owner of the PVC and the garbage collector deletes it with its owner. `whenScaled:
//! Delete` gives a condemned pod's PVCs the pod as owner (they go when the pod goes);
//! `whenDeleted: Delete` gives the replicas' PVCs the set as owner (they go with the set).

use std::collections::BTreeMap;

use graft_api::apps::v1beta1::statefulset::{
    PersistentVolumeClaimRetentionPolicyType as Policy, StatefulSet, StatefulSetSpec,
};
use graft_api::quantity;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, PersistentVolumeClaimSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::Resource;

/// One PVC named like a claim of the set (`<vct>-<set>-<ordinal>`), as the executor observed it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClaimInfo {
    /// PVC name.
    pub name: String,
    /// Its owner references.
    pub owner_references: Vec<OwnerReference>,
    /// `metadata.deletionTimestamp` is set.
    pub deleting: bool,
    /// Storage class and access modes match the template and the requested size is at least the
    /// template's (kruise `IsPVCCompatibleAndReady`, first result; see [`compatibility`]).
    pub compatible: bool,
    /// The capacity reached the requested size (`IsPVCCompatibleAndReady`, second result).
    pub ready: bool,
    /// What `volumeClaimUpdateStrategy: OnPodRollingUpdate` needs to know ([`Resize`]).
    pub resize: Resize,
}

/// A PVC against its template, for the `OnPodRollingUpdate` expansion (kruise
/// `statefulset_resize_pvc.go` and `pkg/util/pvc`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Resize {
    /// Storage class and access modes match the template (`IsClaimCompatibleWithoutSize`); a
    /// claim that differs in anything but size is never patched.
    pub same_shape: bool,
    /// The requested size is below the template's (`IsPVCNeedExpand`).
    pub needs_expand: bool,
    /// The `FileSystemResizePending` condition is `True`: the volume is resized and the file
    /// system grows when a pod mounts it (`IsPatchPVCCompleted` counts it as done).
    pub file_system_pending: bool,
    /// `spec.storageClassName`, if set (only classes that allow expansion are resized).
    pub storage_class: Option<String>,
}

impl ClaimInfo {
    /// kruise `IsClaimsCompatible` for one claim: the shape matches and no expansion is due.
    pub fn matches_template(&self) -> bool {
        self.resize.same_shape && !self.resize.needs_expand
    }

    /// kruise `IsPatchPVCCompleted`: compatible and either ready or waiting only for the file
    /// system to grow.
    pub fn patch_completed(&self) -> bool {
        self.compatible && (self.ready || self.resize.file_system_pending)
    }
}

/// `persistentVolumeClaimRetentionPolicy` with its defaults (Retain / Retain).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// `whenDeleted`.
    pub when_deleted: Policy,
    /// `whenScaled`.
    pub when_scaled: Policy,
}

impl RetentionPolicy {
    /// The policy of `spec`.
    pub fn of(spec: &StatefulSetSpec) -> Self {
        let p = spec.persistent_volume_claim_retention_policy.as_ref();
        Self {
            when_deleted: p.and_then(|p| p.when_deleted).unwrap_or_default(),
            when_scaled: p.and_then(|p| p.when_scaled).unwrap_or_default(),
        }
    }
}

/// An owner a claim may be given: the set or one of its pods.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    /// `apps.kruise.io/v1beta1` or `v1`.
    pub api_version: String,
    /// `StatefulSet` or `Pod`.
    pub kind: String,
    /// Its name.
    pub name: String,
    /// Its uid.
    pub uid: String,
}

impl Owner {
    /// The set as an owner.
    pub fn set(set: &StatefulSet) -> Self {
        Self {
            api_version: StatefulSet::api_version(&()).to_string(),
            kind: StatefulSet::kind(&()).to_string(),
            name: set.metadata.name.clone().unwrap_or_default(),
            uid: set.metadata.uid.clone().unwrap_or_default(),
        }
    }

    /// A pod as an owner.
    pub fn pod(name: &str, uid: &str) -> Self {
        Self {
            api_version: "v1".into(),
            kind: "Pod".into(),
            name: name.into(),
            uid: uid.into(),
        }
    }

    fn reference(&self) -> OwnerReference {
        OwnerReference {
            api_version: self.api_version.clone(),
            kind: self.kind.clone(),
            name: self.name.clone(),
            uid: self.uid.clone(),
            controller: None,
            block_owner_deletion: None,
        }
    }
}

fn has_ref(refs: &[OwnerReference], uid: &str) -> bool {
    refs.iter().any(|r| r.uid == uid)
}

/// Which owners the claim of a pod must have: (the set, the pod). `scaled_down`: the pod is
/// condemned (out of the replica range or reserved).
pub fn wanted_owners(policy: RetentionPolicy, scaled_down: bool) -> (bool, bool) {
    match (policy.when_scaled, policy.when_deleted) {
        (Policy::Retain, Policy::Retain) => (false, false),
        (Policy::Retain, Policy::Delete) => (true, false),
        (Policy::Delete, Policy::Retain) => (false, scaled_down),
        (Policy::Delete, Policy::Delete) => (!scaled_down, scaled_down),
    }
}

/// Upstream `claimOwnerMatchesSetAndPod`: the claim's owner references agree with the policy.
pub fn owners_match(
    policy: RetentionPolicy,
    refs: &[OwnerReference],
    set: &Owner,
    pod: &Owner,
    scaled_down: bool,
) -> bool {
    let (want_set, want_pod) = wanted_owners(policy, scaled_down);
    has_ref(refs, &set.uid) == want_set && has_ref(refs, &pod.uid) == want_pod
}

/// Upstream `updateClaimOwnerRefForSetAndPod`: the owner references to write so the claim
/// agrees with the policy (others kept in order, new ones appended), or `None` when nothing
/// changes.
pub fn updated_owners(
    policy: RetentionPolicy,
    refs: &[OwnerReference],
    set: &Owner,
    pod: &Owner,
    scaled_down: bool,
) -> Option<Vec<OwnerReference>> {
    let (want_set, want_pod) = wanted_owners(policy, scaled_down);
    let mut out = refs.to_vec();
    let mut changed = false;
    for (owner, want) in [(set, want_set), (pod, want_pod)] {
        let has = has_ref(&out, &owner.uid);
        if want && !has {
            out.push(owner.reference());
            changed = true;
        } else if !want && has {
            out.retain(|r| r.uid != owner.uid);
            changed = true;
        }
    }
    changed.then_some(out)
}

/// Upstream `PodClaimIsStale`: with `whenScaled: Delete`, a claim owned by an earlier pod of the
/// same name (same name, another uid; for a pod not created yet, any uid) is about to be
/// garbage-collected, so the pod must not be created on it yet.
pub fn is_stale(
    policy: RetentionPolicy,
    refs: &[OwnerReference],
    pod_name: &str,
    pod_uid: &str,
) -> bool {
    policy.when_scaled == Policy::Delete
        && refs.iter().any(|r| r.name == pod_name && r.uid != pod_uid)
}

/// kruise `IsPVCCompatibleAndReady` of a PVC against its template: (compatible, ready).
/// Compatible: storage class equal when both are set, access modes equal in order, and the
/// requested storage at least the template's; ready: also the capacity at least the request.
pub fn compatibility(
    claim: &PersistentVolumeClaim,
    template: &PersistentVolumeClaim,
) -> (bool, bool) {
    let (cs, ts) = (
        claim.spec.clone().unwrap_or_default(),
        template.spec.clone().unwrap_or_default(),
    );
    if !same_shape(&cs, &ts) {
        return (false, false);
    }
    let request = storage(cs.resources.as_ref().and_then(|r| r.requests.as_ref()));
    let wanted = storage(ts.resources.as_ref().and_then(|r| r.requests.as_ref()));
    let capacity = storage(claim.status.as_ref().and_then(|s| s.capacity.as_ref()));
    let compatible = matches!((request, wanted), (Some(r), Some(w)) if r >= w);
    let ready = matches!((capacity, request), (Some(c), Some(r)) if c >= r);
    (compatible, ready)
}

/// kruise `IsClaimCompatibleWithoutSize`: storage class equal when both are set, access modes
/// equal in order.
fn same_shape(claim: &PersistentVolumeClaimSpec, template: &PersistentVolumeClaimSpec) -> bool {
    let class_ok = match (&claim.storage_class_name, &template.storage_class_name) {
        (Some(a), Some(b)) => a == b,
        _ => true,
    };
    class_ok
        && claim.access_modes.as_deref().unwrap_or_default()
            == template.access_modes.as_deref().unwrap_or_default()
}

/// The [`Resize`] facts of a PVC against its template.
pub fn resize_facts(claim: &PersistentVolumeClaim, template: &PersistentVolumeClaim) -> Resize {
    let (cs, ts) = (
        claim.spec.clone().unwrap_or_default(),
        template.spec.clone().unwrap_or_default(),
    );
    let same_shape = same_shape(&cs, &ts);
    let request = storage(cs.resources.as_ref().and_then(|r| r.requests.as_ref()));
    let wanted = storage(ts.resources.as_ref().and_then(|r| r.requests.as_ref()));
    let file_system_pending = claim
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c.type_ == "FileSystemResizePending" && c.status == "True")
        });
    Resize {
        same_shape,
        needs_expand: matches!((request, wanted), (Some(r), Some(w)) if r < w),
        file_system_pending,
        storage_class: cs.storage_class_name,
    }
}

/// The `storage` entry of a resource list, in nano units.
fn storage(list: Option<&BTreeMap<String, Quantity>>) -> Option<i128> {
    let q = list?.get("storage")?;
    quantity::parse(&q.0).map(|p| p.nanos)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use serde_json::json;

    const RETAIN: Policy = Policy::Retain;
    const DELETE: Policy = Policy::Delete;

    fn owners() -> (Owner, Owner) {
        (
            Owner {
                api_version: "apps.kruise.io/v1beta1".into(),
                kind: "StatefulSet".into(),
                name: "web".into(),
                uid: "set".into(),
            },
            Owner::pod("web-1", "pod"),
        )
    }

    fn refs(uids: &[&str]) -> Vec<OwnerReference> {
        uids.iter()
            .map(|u| OwnerReference {
                uid: (*u).into(),
                name: if *u == "set" { "web" } else { "web-1" }.into(),
                ..Default::default()
            })
            .collect()
    }

    fn uids(r: &[OwnerReference]) -> Vec<&str> {
        r.iter().map(|r| r.uid.as_str()).collect()
    }

    #[test]
    fn retention_decisions_table() {
        /// (whenScaled, whenDeleted, pod scaled down, owners before, owners after)
        type Case = (Policy, Policy, bool, Vec<&'static str>, Vec<&'static str>);
        let cases: Vec<Case> = vec![
            (RETAIN, RETAIN, false, vec![], vec![]),
            (RETAIN, RETAIN, true, vec!["set", "pod"], vec![]),
            (RETAIN, DELETE, false, vec![], vec!["set"]),
            (RETAIN, DELETE, true, vec!["pod"], vec!["set"]),
            (DELETE, RETAIN, false, vec!["set", "pod"], vec![]),
            (DELETE, RETAIN, true, vec![], vec!["pod"]),
            (DELETE, RETAIN, true, vec!["set"], vec!["pod"]),
            (DELETE, DELETE, false, vec!["pod"], vec!["set"]),
            (DELETE, DELETE, true, vec!["set"], vec!["pod"]),
            (
                DELETE,
                DELETE,
                true,
                vec!["other", "set"],
                vec!["other", "pod"],
            ),
        ];
        let (set, pod) = owners();
        for (when_scaled, when_deleted, down, before, after) in cases {
            let policy = RetentionPolicy {
                when_deleted,
                when_scaled,
            };
            let before = refs(&before);
            let got = updated_owners(policy, &before, &set, &pod, down);
            let matched = owners_match(policy, &before, &set, &pod, down);
            let label = format!(
                "{when_scaled:?}/{when_deleted:?} down={down} {:?}",
                uids(&before)
            );
            match got {
                None => {
                    assert!(matched, "{label}: no change but does not match");
                    assert_eq!(uids(&before), after, "{label}");
                }
                Some(new) => {
                    assert!(!matched, "{label}: changed but matched");
                    assert_eq!(uids(&new), after, "{label}");
                    assert!(owners_match(policy, &new, &set, &pod, down), "{label}");
                }
            }
        }
    }

    #[test]
    fn new_owner_references_name_the_owner() {
        let (set, pod) = owners();
        let policy = RetentionPolicy {
            when_deleted: DELETE,
            when_scaled: DELETE,
        };
        let got = updated_owners(policy, &[], &set, &pod, true).unwrap();
        assert_eq!(
            serde_json::to_value(&got).unwrap(),
            json!([{"apiVersion": "v1", "kind": "Pod", "name": "web-1", "uid": "pod"}])
        );
    }

    #[test]
    fn stale_claims_block_only_with_when_scaled_delete() {
        let delete = RetentionPolicy {
            when_deleted: RETAIN,
            when_scaled: DELETE,
        };
        let old = refs(&["old-pod"]);
        assert!(is_stale(delete, &old, "web-1", ""));
        assert!(is_stale(delete, &old, "web-1", "pod"));
        assert!(!is_stale(delete, &refs(&["pod"]), "web-1", "pod"));
        assert!(!is_stale(delete, &refs(&["set"]), "web-1", ""));
        assert!(!is_stale(RetentionPolicy::default(), &old, "web-1", ""));
    }

    #[test]
    fn compatibility_table() {
        let pvc = |class: Option<&str>, modes: &[&str], request: &str, capacity: Option<&str>| {
            let mut v = json!({"spec": {"accessModes": modes,
                "resources": {"requests": {"storage": request}}}});
            if let Some(c) = class {
                v["spec"]["storageClassName"] = json!(c);
            }
            if let Some(c) = capacity {
                v["status"] = json!({"capacity": {"storage": c}});
            }
            serde_json::from_value::<PersistentVolumeClaim>(v).unwrap()
        };
        let template = pvc(Some("fast"), &["ReadWriteOnce"], "1Gi", None);
        let cases = [
            (
                pvc(Some("fast"), &["ReadWriteOnce"], "1Gi", Some("1Gi")),
                (true, true),
            ),
            (
                pvc(None, &["ReadWriteOnce"], "2Gi", Some("1Gi")),
                (true, false),
            ),
            (
                pvc(Some("fast"), &["ReadWriteOnce"], "1024Mi", Some("2Gi")),
                (true, true),
            ),
            (
                pvc(Some("fast"), &["ReadWriteOnce"], "512Mi", Some("1Gi")),
                (false, true),
            ),
            (
                pvc(Some("slow"), &["ReadWriteOnce"], "1Gi", Some("1Gi")),
                (false, false),
            ),
            (
                pvc(Some("fast"), &["ReadWriteMany"], "1Gi", Some("1Gi")),
                (false, false),
            ),
        ];
        for (i, (claim, want)) in cases.into_iter().enumerate() {
            assert_eq!(compatibility(&claim, &template), want, "case {i}");
        }
    }

    #[test]
    fn resize_facts_table() {
        let pvc = |class: Option<&str>, modes: &[&str], request: &str, pending: bool| {
            let mut v = json!({"spec": {"accessModes": modes,
                "resources": {"requests": {"storage": request}}}});
            if let Some(c) = class {
                v["spec"]["storageClassName"] = json!(c);
            }
            if pending {
                v["status"] = json!({"conditions": [
                    {"type": "FileSystemResizePending", "status": "True"}]});
            }
            serde_json::from_value::<PersistentVolumeClaim>(v).unwrap()
        };
        let template = pvc(Some("fast"), &["ReadWriteOnce"], "2Gi", false);
        let no_class = pvc(None, &["ReadWriteOnce"], "2Gi", false);
        let facts = |same_shape, needs_expand, file_system_pending, class: Option<&str>| Resize {
            same_shape,
            needs_expand,
            file_system_pending,
            storage_class: class.map(String::from),
        };
        let cases = [
            (
                pvc(Some("fast"), &["ReadWriteOnce"], "1Gi", false),
                &template,
                facts(true, true, false, Some("fast")),
            ),
            (
                pvc(Some("fast"), &["ReadWriteOnce"], "2Gi", true),
                &template,
                facts(true, false, true, Some("fast")),
            ),
            (
                pvc(Some("fast"), &["ReadWriteOnce"], "3Gi", false),
                &template,
                facts(true, false, false, Some("fast")),
            ),
            (
                pvc(Some("slow"), &["ReadWriteOnce"], "1Gi", false),
                &template,
                facts(false, true, false, Some("slow")),
            ),
            (
                pvc(Some("fast"), &["ReadWriteMany"], "1Gi", false),
                &template,
                facts(false, true, false, Some("fast")),
            ),
            (
                pvc(Some("default"), &["ReadWriteOnce"], "1Gi", false),
                &no_class,
                facts(true, true, false, Some("default")),
            ),
        ];
        for (i, (claim, template, want)) in cases.into_iter().enumerate() {
            assert_eq!(resize_facts(&claim, template), want, "case {i}");
        }
    }
}
