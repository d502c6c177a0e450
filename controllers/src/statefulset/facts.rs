//! From API objects to the planner's facts: [`claim`] says which pods are the set's,
//! [`pod_info`] reads a `Pod` (readiness, lifecycle, identity, and what the shared in-place engine
//! says about it), [`claim_info`] a PVC. Pure, so the executor only gathers objects and calls
//! these.

use std::collections::HashMap;

use graft_api::apps::v1beta1::StatefulSet;
use graft_api::{labels, selector};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, PodTemplateSpec};
use k8s_openapi::jiff::Timestamp;

use super::identity::{identity_matches, storage_matches};
use super::plan::{ClaimInfo, InPlaceFacts, PodInfo, PodPhase, Refresh};
use super::{claims, ordinals};
use crate::inplace;

/// What to do about one pod of the namespace (Kubernetes `ClaimPods` with kruise's `isMemberOf`
/// filter): the set's pods are those it controls whose labels match its selector and whose name
/// is `<set>-<digits>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim {
    /// Controlled by the set and matching: give it to the planner.
    Keep,
    /// An orphan that matches: adopt it (add the set's controller reference, with the pod's uid
    /// as precondition, after re-reading the set to check it is not being deleted), then keep it.
    Adopt,
    /// Controlled by the set but no longer matching: release it (remove the reference).
    Release,
    /// Not ours.
    Ignore,
}

/// Decides [`Claim`] for `pod`.
pub fn claim(set: &StatefulSet, pod: &Pod) -> Claim {
    let uid = set.metadata.uid.as_deref().unwrap_or_default();
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let member = ordinals::parse_pod_name(name)
        .is_some_and(|(parent, _)| Some(parent) == set.metadata.name.as_deref());
    let matches =
        member && selector::matches_labels(&set.spec.selector, pod.metadata.labels.as_ref());
    let controller = pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true));
    let set_deleting = set.metadata.deletion_timestamp.is_some();
    match controller {
        Some(o) if o.uid == uid && matches => Claim::Keep,
        Some(o) if o.uid == uid && !set_deleting => Claim::Release,
        None if matches && !set_deleting && pod.metadata.deletion_timestamp.is_none() => {
            Claim::Adopt
        }
        _ => Claim::Ignore,
    }
}

/// The facts of `pod`, a pod of `set`. `templates` holds the pod templates of the observed
/// revisions by revision name; `target` is the update revision's template and `grace` the
/// `inPlaceUpdateStrategy.gracePeriodSeconds`: `in_place.possible` is kruise's
/// `CanUpdateInPlace(pod's revision, update revision)`.
pub fn pod_info(
    set: &StatefulSet,
    pod: &Pod,
    templates: &HashMap<String, PodTemplateSpec>,
    target: &PodTemplateSpec,
    grace: i32,
    now: Timestamp,
) -> PodInfo {
    let status = pod.status.clone().unwrap_or_default();
    let ready = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "Ready");
    let labels_ = pod.metadata.labels.clone().unwrap_or_default();
    let revision = labels_
        .get(labels::CONTROLLER_REVISION_HASH)
        .cloned()
        .unwrap_or_default();
    let possible = match templates.get(&revision) {
        Some(old) => inplace::calculate(old, target, "", grace)
            .map(|_| ())
            .map_err(|e| e.to_string()),
        None => Err(format!("the template of revision {revision} is unknown")),
    };
    let (completed, refresh) = match inplace::progress(pod, now) {
        Ok(inplace::Progress::NotUpdating) => (true, Refresh::Idle),
        Ok(inplace::Progress::WaitingGrace { remaining }) => (false, Refresh::After(remaining)),
        Ok(inplace::Progress::Apply(c)) => (false, due(&c)),
        Ok(inplace::Progress::InProgress { .. }) => (false, Refresh::Idle),
        Ok(inplace::Progress::Completed(c)) => (true, due(&c)),
        Err(e) => {
            tracing::warn!(pod = ?pod.metadata.name, error = %e, "unreadable in-place state");
            (true, Refresh::Idle)
        }
    };
    PodInfo {
        name: pod.metadata.name.clone().unwrap_or_default(),
        uid: pod.metadata.uid.clone(),
        labels: labels_,
        finalizers: pod.metadata.finalizers.clone().unwrap_or_default(),
        phase: match status.phase.as_deref() {
            Some("Running") => PodPhase::Running,
            Some("Succeeded") => PodPhase::Succeeded,
            Some("Failed") => PodPhase::Failed,
            Some("Unknown") => PodPhase::Unknown,
            _ => PodPhase::Pending,
        },
        node_name: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
        restart_count: status
            .container_statuses
            .iter()
            .flatten()
            .map(|c| c.restart_count)
            .max()
            .unwrap_or(0),
        creation_timestamp: pod.metadata.creation_timestamp.as_ref().map(|t| t.0),
        ready: ready.is_some_and(|c| c.status == "True"),
        ready_since: ready
            .and_then(|c| c.last_transition_time.as_ref())
            .map(|t| t.0),
        terminating: pod.metadata.deletion_timestamp.is_some(),
        identity_matches: identity_matches(set, pod),
        storage_matches: storage_matches(set, pod),
        in_place: InPlaceFacts {
            possible,
            completed,
            refresh,
        },
    }
}

fn due(changes: &[inplace::PodChange]) -> Refresh {
    if changes.is_empty() {
        Refresh::Idle
    } else {
        Refresh::Due
    }
}

/// The facts of a PVC of `set` (named `<vct>-<set>-<ordinal>`), compared with its template;
/// `None` when the name belongs to no template of the set.
pub fn claim_info(set: &StatefulSet, claim: &PersistentVolumeClaim) -> Option<ClaimInfo> {
    let name = claim.metadata.name.clone()?;
    let set_name = set.metadata.name.as_deref().unwrap_or("");
    let template = set.spec.volume_claim_templates.iter().flatten().find(|t| {
        let vct = t.metadata.name.as_deref().unwrap_or("");
        name.strip_prefix(vct)
            .and_then(|rest| rest.strip_prefix('-'))
            .and_then(|rest| ordinals::parse_pod_name(rest))
            .is_some_and(|(parent, ordinal)| parent == set_name && ordinal.is_some())
    })?;
    let (compatible, ready) = claims::compatibility(claim, template);
    Some(ClaimInfo {
        name,
        owner_references: claim.metadata.owner_references.clone().unwrap_or_default(),
        deleting: claim.metadata.deletion_timestamp.is_some(),
        compatible,
        ready,
        resize: claims::resize_facts(claim, template),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use serde_json::json;

    fn set() -> StatefulSet {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "ns"},
            "spec": {
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "c", "image": "nginx:2"}]}},
                "volumeClaimTemplates": [{"metadata": {"name": "data"},
                    "spec": {"accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": "1Gi"}}}}]
            }
        }))
        .unwrap()
    }

    fn template(image: &str, env: bool) -> PodTemplateSpec {
        let mut c = json!({"name": "c", "image": image});
        if env {
            c["env"] = json!([{"name": "A", "value": "1"}]);
        }
        serde_json::from_value(json!({"metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [c]}}))
        .unwrap()
    }

    #[test]
    fn pod_info_reads_readiness_identity_and_in_place_possibility() {
        let s = set();
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "web-1", "namespace": "ns", "uid": "u1",
                "labels": {"controller-revision-hash": "web-old",
                    "statefulset.kubernetes.io/pod-name": "web-1"}},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "nginx:1"}],
                "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "data-web-1"}}]},
            "status": {"phase": "Running", "conditions": [
                {"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}
        }))
        .unwrap();
        let now: Timestamp = "2026-01-01T00:10:00Z".parse().unwrap();
        let target = template("nginx:2", false);
        let images_only = HashMap::from([("web-old".to_string(), template("nginx:1", false))]);
        let info = pod_info(&s, &pod, &images_only, &target, 0, now);
        assert_eq!(info.phase, PodPhase::Running);
        assert!(info.ready);
        assert_eq!(
            info.ready_since,
            Some("2026-01-01T00:00:00Z".parse().unwrap())
        );
        assert_eq!(info.uid.as_deref(), Some("u1"));
        assert!(info.identity_matches);
        assert!(info.storage_matches);
        assert_eq!(info.in_place.possible, Ok(()));
        assert!(info.in_place.completed);

        let env_change = HashMap::from([("web-old".to_string(), template("nginx:1", true))]);
        assert!(
            pod_info(&s, &pod, &env_change, &target, 0, now)
                .in_place
                .possible
                .is_err()
        );
        assert!(
            pod_info(&s, &pod, &HashMap::new(), &target, 0, now)
                .in_place
                .possible
                .is_err()
        );
    }

    #[test]
    fn claim_table() {
        let mut s = set();
        s.metadata.uid = Some("set-uid".into());
        let pod = |name: &str, app: &str, owner: Option<&str>| -> Pod {
            let mut v = json!({"metadata": {"name": name, "labels": {"app": app}}});
            if let Some(uid) = owner {
                v["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps.kruise.io/v1beta1",
                    "kind": "StatefulSet", "name": "web", "uid": uid, "controller": true}]);
            }
            serde_json::from_value(v).unwrap()
        };
        let cases = [
            (pod("web-0", "web", Some("set-uid")), Claim::Keep),
            (pod("web-0", "other", Some("set-uid")), Claim::Release),
            (pod("web-x", "web", Some("set-uid")), Claim::Release),
            (pod("web-1", "web", None), Claim::Adopt),
            (pod("db-1", "web", None), Claim::Ignore),
            (pod("web-1", "web", Some("another")), Claim::Ignore),
        ];
        for (p, want) in cases {
            assert_eq!(claim(&s, &p), want, "{:?}", p.metadata);
        }
    }

    #[test]
    fn claim_info_matches_template_names() {
        let s = set();
        let pvc = |name: &str| -> PersistentVolumeClaim {
            serde_json::from_value(json!({"metadata": {"name": name},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "2Gi"}}},
                "status": {"capacity": {"storage": "2Gi"}}}))
            .unwrap()
        };
        let c = claim_info(&s, &pvc("data-web-3")).unwrap();
        assert_eq!(
            (c.name.as_str(), c.compatible, c.ready),
            ("data-web-3", true, true)
        );
        assert_eq!(claim_info(&s, &pvc("logs-web-3")), None);
        assert_eq!(claim_info(&s, &pvc("data-db-3")), None);
        assert_eq!(claim_info(&s, &pvc("data-web-x")), None);
    }
}
