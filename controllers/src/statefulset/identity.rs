//! The stable identity of an Advanced StatefulSet's pods (kruise `newStatefulSetPod`,
//! `initIdentity`, `updateIdentity`, `updateStorage`, `getPersistentVolumeClaims`, as upstream
//! Kubernetes): name `<set>-<ordinal>`, hostname, subdomain, the pod-name / pod-index /
//! revision labels, and one PVC per volume claim template wired into the pod's volumes.
//! Pure functions producing the objects the executor sends.

use std::collections::BTreeMap;

use graft_api::apps::common::LifecycleState;
use graft_api::apps::v1beta1::StatefulSet;
use graft_api::labels;
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, Pod, PodReadinessGate,
    PodTemplateSpec, Volume,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::jiff::Timestamp;
use kube::Resource;

use super::ordinals::{claim_name, ordinal_of, pod_name};

/// The controller owner reference every pod of `set` carries.
pub fn owner_reference(set: &StatefulSet) -> OwnerReference {
    OwnerReference {
        api_version: StatefulSet::api_version(&()).to_string(),
        kind: StatefulSet::kind(&()).to_string(),
        name: set.metadata.name.clone().unwrap_or_default(),
        uid: set.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

fn set_name(set: &StatefulSet) -> String {
    set.metadata.name.clone().unwrap_or_default()
}

/// The lifecycle state a new pod is created in: `Normal`, unless a preNormal hook is configured
/// and the template does not already carry all of its labels/finalizers (`PreparingNormal`).
pub fn initial_lifecycle_state(set: &StatefulSet, template: &PodTemplateSpec) -> LifecycleState {
    let Some(hook) = set
        .spec
        .lifecycle
        .as_ref()
        .and_then(|l| l.pre_normal.as_ref())
    else {
        return LifecycleState::Normal;
    };
    let meta = template.metadata.clone().unwrap_or_default();
    if hook.is_all_hooked(
        &meta.labels.unwrap_or_default(),
        &meta.finalizers.unwrap_or_default(),
    ) {
        LifecycleState::Normal
    } else {
        LifecycleState::PreparingNormal
    }
}

/// The new pod of `set` at `ordinal`, built from `template` (the template of revision
/// `revision`, a full revision name): template labels/annotations/finalizers and spec, owner
/// reference, name, namespace, hostname = name, subdomain = `serviceName`, labels
/// `statefulset.kubernetes.io/pod-name`, `apps.kubernetes.io/pod-index`,
/// `controller-revision-hash`, the lifecycle state ([`initial_lifecycle_state`]) with its
/// timestamp, and one volume per volume claim template naming the pod's PVC
/// (`<vct>-<set>-<ordinal>`), replacing a template volume of the same name.
///
/// The `KruisePodReady` readiness gate is added when a lifecycle hook asks for `markPodNotReady`
/// (kruise's pod webhook injects it; graft creates the pod, so it adds it here). No
/// `InPlaceUpdateReady` gate is injected: unlike CloneSet, kruise's StatefulSet leaves that to the
/// template (the webhook requires it for in-place policies).
pub fn new_pod(
    set: &StatefulSet,
    ordinal: i64,
    revision: &str,
    template: &PodTemplateSpec,
    now: Timestamp,
) -> Pod {
    let name = pod_name(&set_name(set), ordinal);
    let tmeta = template.metadata.clone().unwrap_or_default();
    let mut pod_labels = tmeta.labels.unwrap_or_default();
    pod_labels.insert(labels::CONTROLLER_REVISION_HASH.into(), revision.into());
    pod_labels.insert(
        labels::LIFECYCLE_STATE.into(),
        initial_lifecycle_state(set, template).as_str().into(),
    );
    let mut annotations = tmeta.annotations.unwrap_or_default();
    annotations.insert(labels::LIFECYCLE_TIMESTAMP.into(), now.to_string());
    let mut spec = template.spec.clone().unwrap_or_default();
    spec.hostname = Some(name.clone());
    spec.subdomain = set.spec.service_name.clone().filter(|s| !s.is_empty());
    if needs_pod_ready_gate(set) {
        let gates = spec.readiness_gates.get_or_insert_with(Vec::new);
        if !gates
            .iter()
            .any(|g| g.condition_type == labels::KRUISE_POD_READY)
        {
            gates.push(PodReadinessGate {
                condition_type: labels::KRUISE_POD_READY.into(),
            });
        }
    }
    let mut pod = Pod {
        metadata: ObjectMeta {
            generate_name: Some(format!("{}-", set_name(set))),
            name: Some(name),
            namespace: set.metadata.namespace.clone(),
            labels: Some(pod_labels),
            annotations: Some(annotations),
            finalizers: tmeta.finalizers,
            owner_references: Some(vec![owner_reference(set)]),
            ..Default::default()
        },
        spec: Some(spec),
        status: None,
    };
    repair(set, ordinal, &mut pod);
    pod
}

/// Whether a lifecycle hook of `set` asks for `markPodNotReady` (only preDelete and
/// inPlaceUpdate may), so its pods need the `KruisePodReady` readiness gate.
pub fn needs_pod_ready_gate(set: &StatefulSet) -> bool {
    set.spec.lifecycle.as_ref().is_some_and(|l| {
        [&l.pre_delete, &l.in_place_update]
            .into_iter()
            .flatten()
            .any(|h| h.mark_pod_not_ready == Some(true))
    })
}

/// The PVCs of the pod at `ordinal`, one per volume claim template, in template order: named
/// `<vct>-<set>-<ordinal>`, in the set's namespace, labelled with the template's labels plus the
/// selector's matchLabels. They carry no owner reference: the retention policy sets those
/// ([`super::claims`]).
pub fn new_claims(set: &StatefulSet, ordinal: i64) -> Vec<PersistentVolumeClaim> {
    let name = set_name(set);
    let selector = set.spec.selector.match_labels.clone().unwrap_or_default();
    set.spec
        .volume_claim_templates
        .iter()
        .flatten()
        .map(|vct| {
            let mut claim = vct.clone();
            let vct_name = vct.metadata.name.clone().unwrap_or_default();
            claim.metadata.name = Some(claim_name(&vct_name, &name, ordinal));
            claim.metadata.namespace = set.metadata.namespace.clone();
            let mut l: BTreeMap<String, String> = claim.metadata.labels.unwrap_or_default();
            l.extend(selector.clone());
            claim.metadata.labels = Some(l);
            claim.status = None;
            claim
        })
        .collect()
}

/// The PVC names the pod at `ordinal` mounts, in template order, with their template names.
pub fn claim_names(set: &StatefulSet, ordinal: i64) -> Vec<(String, String)> {
    let name = set_name(set);
    set.spec
        .volume_claim_templates
        .iter()
        .flatten()
        .map(|vct| {
            let vct_name = vct.metadata.name.clone().unwrap_or_default();
            let claim = claim_name(&vct_name, &name, ordinal);
            (vct_name, claim)
        })
        .collect()
}

/// kruise `identityMatches`: the pod is named `<set>-<ordinal>` in the set's namespace and
/// labelled `statefulset.kubernetes.io/pod-name` with its name.
pub fn identity_matches(set: &StatefulSet, pod: &Pod) -> bool {
    let name = pod.metadata.name.as_deref().unwrap_or("");
    let set_name = set_name(set);
    let Some(ordinal) = ordinal_of(&set_name, name) else {
        return false;
    };
    name == pod_name(&set_name, ordinal)
        && pod.metadata.namespace == set.metadata.namespace
        && pod
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(labels::STATEFULSET_POD_NAME))
            .is_some_and(|v| v == name)
}

/// kruise `storageMatches`: every volume claim template has a pod volume of its name that mounts
/// the pod's PVC.
pub fn storage_matches(set: &StatefulSet, pod: &Pod) -> bool {
    let name = pod.metadata.name.as_deref().unwrap_or("");
    let Some(ordinal) = ordinal_of(&set_name(set), name) else {
        return false;
    };
    let volumes = pod
        .spec
        .as_ref()
        .and_then(|s| s.volumes.as_deref())
        .unwrap_or_default();
    claim_names(set, ordinal).iter().all(|(vct, claim)| {
        volumes.iter().any(|v| {
            &v.name == vct
                && v.persistent_volume_claim
                    .as_ref()
                    .is_some_and(|c| &c.claim_name == claim)
        })
    })
}

/// kruise `updateIdentity` + `updateStorage`: name, namespace, the pod-name and pod-index labels,
/// and the claim volumes (first, in template order; other volumes keep their order). What the
/// executor applies for [`super::plan::Action::RepairPod`] before updating the pod.
pub fn repair(set: &StatefulSet, ordinal: i64, pod: &mut Pod) {
    let name = pod_name(&set_name(set), ordinal);
    pod.metadata.name = Some(name.clone());
    pod.metadata.namespace = set.metadata.namespace.clone();
    let l = pod.metadata.labels.get_or_insert_with(BTreeMap::new);
    l.insert(labels::STATEFULSET_POD_NAME.into(), name);
    l.insert(labels::POD_INDEX.into(), ordinal.to_string());
    let claims = claim_names(set, ordinal);
    if claims.is_empty() {
        return;
    }
    let spec = pod.spec.get_or_insert_with(Default::default);
    let old = spec.volumes.take().unwrap_or_default();
    let mut volumes: Vec<Volume> = claims
        .iter()
        .map(|(vct, claim)| Volume {
            name: vct.clone(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: claim.clone(),
                read_only: Some(false),
            }),
            ..Default::default()
        })
        .collect();
    volumes.extend(
        old.into_iter()
            .filter(|v| !claims.iter().any(|(vct, _)| vct == &v.name)),
    );
    spec.volumes = Some(volumes);
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use serde_json::json;

    fn set() -> StatefulSet {
        serde_json::from_value(json!({
            "apiVersion": "apps.kruise.io/v1beta1",
            "kind": "StatefulSet",
            "metadata": {"name": "web", "namespace": "ns", "uid": "set-uid"},
            "spec": {
                "replicas": 3,
                "serviceName": "web-svc",
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}, "annotations": {"a": "b"}},
                    "spec": {
                        "containers": [{"name": "c", "image": "nginx:1"}],
                        "volumes": [
                            {"name": "data", "emptyDir": {}},
                            {"name": "config", "configMap": {"name": "cfg"}}
                        ]
                    }
                },
                "volumeClaimTemplates": [{
                    "metadata": {"name": "data", "labels": {"tier": "db"}},
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
                }]
            }
        }))
        .unwrap()
    }

    #[test]
    fn new_pod_has_the_stable_identity() {
        let s = set();
        let now: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let pod = new_pod(&s, 2, "web-abc", &s.spec.template, now);
        let v = serde_json::to_value(&pod).unwrap();
        assert_eq!(v["metadata"]["name"], json!("web-2"));
        assert_eq!(v["metadata"]["namespace"], json!("ns"));
        assert_eq!(
            v["metadata"]["labels"],
            json!({
                "app": "web",
                "controller-revision-hash": "web-abc",
                "statefulset.kubernetes.io/pod-name": "web-2",
                "apps.kubernetes.io/pod-index": "2",
                "lifecycle.apps.kruise.io/state": "Normal"
            })
        );
        assert_eq!(
            v["metadata"]["annotations"],
            json!({"a": "b", "lifecycle.apps.kruise.io/timestamp": "2026-01-01T00:00:00Z"})
        );
        assert_eq!(
            v["metadata"]["ownerReferences"],
            json!([{"apiVersion": "apps.kruise.io/v1beta1", "kind": "StatefulSet", "name": "web",
                "uid": "set-uid", "controller": true, "blockOwnerDeletion": true}])
        );
        assert_eq!(v["spec"]["hostname"], json!("web-2"));
        assert_eq!(v["spec"]["subdomain"], json!("web-svc"));
        // The claim replaces the template volume of the same name; the others follow.
        assert_eq!(
            v["spec"]["volumes"],
            json!([
                {"name": "data", "persistentVolumeClaim": {"claimName": "data-web-2", "readOnly": false}},
                {"name": "config", "configMap": {"name": "cfg"}}
            ])
        );
        assert!(v["spec"].get("readinessGates").is_none());
        assert!(identity_matches(&s, &pod));
        assert!(storage_matches(&s, &pod));
    }

    #[test]
    fn pre_normal_hook_starts_pods_preparing_normal() {
        let mut s = set();
        s.spec.lifecycle = Some(
            serde_json::from_value(json!({"preNormal": {"labelsHandler": {"ok": "true"}}}))
                .unwrap(),
        );
        assert_eq!(
            initial_lifecycle_state(&s, &s.spec.template),
            LifecycleState::PreparingNormal
        );
        let mut t = s.spec.template.clone();
        t.metadata
            .get_or_insert_with(Default::default)
            .labels
            .get_or_insert_with(Default::default)
            .insert("ok".into(), "true".into());
        assert_eq!(initial_lifecycle_state(&s, &t), LifecycleState::Normal);
    }

    #[test]
    fn claims_are_named_and_labelled() {
        let s = set();
        let claims = new_claims(&s, 1);
        assert_eq!(claims.len(), 1);
        let v = serde_json::to_value(&claims[0]).unwrap();
        assert_eq!(v["metadata"]["name"], json!("data-web-1"));
        assert_eq!(v["metadata"]["namespace"], json!("ns"));
        assert_eq!(v["metadata"]["labels"], json!({"tier": "db", "app": "web"}));
        assert!(v["metadata"].get("ownerReferences").is_none());
    }

    #[test]
    fn repair_fixes_labels_and_volumes() {
        let s = set();
        let mut pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "web-1", "namespace": "ns", "labels": {"app": "web"}},
            "spec": {"containers": [], "volumes": [{"name": "data", "emptyDir": {}}]}
        }))
        .unwrap();
        assert!(!identity_matches(&s, &pod));
        assert!(!storage_matches(&s, &pod));
        repair(&s, 1, &mut pod);
        assert!(identity_matches(&s, &pod));
        assert!(storage_matches(&s, &pod));
        let other: Pod = serde_json::from_value(json!({
            "metadata": {"name": "db-1", "namespace": "ns",
                "labels": {"statefulset.kubernetes.io/pod-name": "db-1"}}
        }))
        .unwrap();
        assert!(!identity_matches(&s, &other));
    }
}
