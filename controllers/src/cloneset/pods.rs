//! Building the objects a CloneSet creates: its pods and their PersistentVolumeClaims.
//! Pure functions of the CloneSet, an instance id and a revision (kruise-api.md §2.3).

use std::collections::BTreeMap;

use graft_api::apps::v1alpha1::CloneSet;
use graft_api::labels;
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, Pod, PodReadinessGate,
    PodTemplateSpec, Volume,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Resource;

/// The controller owner reference every pod and PVC of `cs` carries.
pub fn owner_reference(cs: &CloneSet) -> OwnerReference {
    OwnerReference {
        api_version: CloneSet::api_version(&()).to_string(),
        kind: CloneSet::kind(&()).to_string(),
        name: cs.metadata.name.clone().unwrap_or_default(),
        uid: cs.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// The short hash of a revision name: its last `-` segment (kruise writes it as `pod-template-hash`).
pub fn short_hash(revision_name: &str) -> &str {
    revision_name.rsplit('-').next().unwrap_or(revision_name)
}

/// PVC name for a volume claim template and an instance: `<vct>-<cloneset>-<id>`.
pub fn pvc_name(vct: &str, cloneset: &str, instance_id: &str) -> String {
    format!("{vct}-{cloneset}-{instance_id}")
}

/// A new pod `<cloneset>-<instance_id>` at `revision_name`, built from that revision's template.
pub fn new_pod(
    cs: &CloneSet,
    instance_id: &str,
    revision_name: &str,
    template: &PodTemplateSpec,
) -> Pod {
    let cs_name = cs.metadata.name.clone().unwrap_or_default();
    let tmeta = template.metadata.clone().unwrap_or_default();
    let mut pod_labels = tmeta.labels.unwrap_or_default();
    pod_labels.insert(
        labels::CONTROLLER_REVISION_HASH.to_string(),
        revision_name.to_string(),
    );
    pod_labels.insert(
        labels::POD_TEMPLATE_HASH.to_string(),
        short_hash(revision_name).to_string(),
    );
    pod_labels.insert(
        labels::CLONESET_INSTANCE_ID.to_string(),
        instance_id.to_string(),
    );
    pod_labels.insert(
        labels::LIFECYCLE_STATE.to_string(),
        labels::LIFECYCLE_STATE_PREPARING_NORMAL.to_string(),
    );
    let mut spec = template.spec.clone().unwrap_or_default();
    let gates = spec.readiness_gates.get_or_insert_with(Vec::new);
    if !gates
        .iter()
        .any(|g| g.condition_type == labels::INPLACE_UPDATE_READY)
    {
        gates.push(PodReadinessGate {
            condition_type: labels::INPLACE_UPDATE_READY.to_string(),
        });
    }
    // Hooks with markPodNotReady take the pod out of service through the KruisePodReady gate
    // (kruise's pod webhook injects it; graft creates the pod, so it adds it here).
    if needs_pod_ready_gate(cs)
        && !gates
            .iter()
            .any(|g| g.condition_type == labels::KRUISE_POD_READY)
    {
        gates.push(PodReadinessGate {
            condition_type: labels::KRUISE_POD_READY.to_string(),
        });
    }
    // Each volume claim template becomes this instance's own PVC, mounted under the template's name.
    for vct in cs.spec.volume_claim_templates.iter().flatten() {
        let vct_name = vct.metadata.name.clone().unwrap_or_default();
        let volumes = spec.volumes.get_or_insert_with(Vec::new);
        volumes.retain(|v| v.name != vct_name);
        volumes.push(Volume {
            name: vct_name.clone(),
            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                claim_name: pvc_name(&vct_name, &cs_name, instance_id),
                read_only: None,
            }),
            ..Default::default()
        });
    }
    Pod {
        metadata: ObjectMeta {
            name: Some(format!("{cs_name}-{instance_id}")),
            namespace: cs.metadata.namespace.clone(),
            labels: Some(pod_labels),
            annotations: tmeta.annotations,
            finalizers: tmeta.finalizers,
            owner_references: Some(vec![owner_reference(cs)]),
            ..Default::default()
        },
        spec: Some(spec),
        status: None,
    }
}

/// Whether a lifecycle hook of `cs` asks for `markPodNotReady` (only preDelete and inPlaceUpdate
/// may), so its pods need the `KruisePodReady` readiness gate.
pub fn needs_pod_ready_gate(cs: &CloneSet) -> bool {
    cs.spec.lifecycle.as_ref().is_some_and(|l| {
        [&l.pre_delete, &l.in_place_update]
            .into_iter()
            .flatten()
            .any(|h| h.mark_pod_not_ready == Some(true))
    })
}

/// The PVCs of one instance: labelled with the selector's matchLabels and the instance id, owned by
/// the CloneSet (not the pod, so they survive the pod for reuse).
pub fn new_pvcs(cs: &CloneSet, instance_id: &str) -> Vec<PersistentVolumeClaim> {
    let cs_name = cs.metadata.name.clone().unwrap_or_default();
    let mut pvc_labels: BTreeMap<String, String> =
        cs.spec.selector.match_labels.clone().unwrap_or_default();
    pvc_labels.insert(
        labels::CLONESET_INSTANCE_ID.to_string(),
        instance_id.to_string(),
    );
    cs.spec
        .volume_claim_templates
        .iter()
        .flatten()
        .map(|vct| {
            let vct_name = vct.metadata.name.clone().unwrap_or_default();
            let mut meta = vct.metadata.clone();
            meta.name = Some(pvc_name(&vct_name, &cs_name, instance_id));
            meta.namespace = cs.metadata.namespace.clone();
            let mut l = meta.labels.take().unwrap_or_default();
            l.extend(pvc_labels.clone());
            meta.labels = Some(l);
            meta.owner_references = Some(vec![owner_reference(cs)]);
            meta.resource_version = None;
            meta.uid = None;
            PersistentVolumeClaim {
                metadata: meta,
                spec: vct.spec.clone(),
                status: None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cloneset(yaml: &str) -> CloneSet {
        let mut cs: CloneSet = serde_saphyr::from_str(yaml).expect("fixture parses");
        cs.metadata.uid = Some("uid-1".into());
        cs
    }

    const CS: &str = r#"
apiVersion: apps.kruise.io/v1alpha1
kind: CloneSet
metadata: {name: web, namespace: ns}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata:
      labels: {app: web, tier: front}
      annotations: {note: x}
    spec:
      containers: [{name: app, image: "app:v1"}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 1Gi}}
"#;

    #[test]
    fn a_new_pod_carries_the_pod_contract() {
        let cs = cloneset(CS);
        let pod = new_pod(&cs, "abcde", "web-6d4f8b7c9", &cs.spec.template);
        assert_eq!(pod.metadata.name.as_deref(), Some("web-abcde"));
        let l = pod.metadata.labels.clone().unwrap_or_default();
        assert_eq!(l["app"], "web");
        assert_eq!(l["tier"], "front");
        assert_eq!(l["controller-revision-hash"], "web-6d4f8b7c9");
        assert_eq!(l["pod-template-hash"], "6d4f8b7c9");
        assert_eq!(l["apps.kruise.io/cloneset-instance-id"], "abcde");
        assert_eq!(l["lifecycle.apps.kruise.io/state"], "PreparingNormal");
        assert_eq!(pod.metadata.annotations.unwrap_or_default()["note"], "x");
        let owner = &pod.metadata.owner_references.unwrap_or_default()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str(), owner.controller),
            ("CloneSet", "web", Some(true))
        );
        let spec = pod.spec.unwrap_or_default();
        assert_eq!(
            spec.readiness_gates.unwrap_or_default()[0].condition_type,
            "InPlaceUpdateReady"
        );
        let vol = &spec.volumes.unwrap_or_default()[0];
        assert_eq!(vol.name, "data");
        assert_eq!(
            vol.persistent_volume_claim
                .as_ref()
                .map(|c| c.claim_name.as_str()),
            Some("data-web-abcde")
        );
    }

    #[test]
    fn pvcs_are_named_per_instance_and_owned_by_the_cloneset() {
        let cs = cloneset(CS);
        let pvcs = new_pvcs(&cs, "abcde");
        assert_eq!(pvcs.len(), 1);
        let pvc = &pvcs[0];
        assert_eq!(pvc.metadata.name.as_deref(), Some("data-web-abcde"));
        let l = pvc.metadata.labels.clone().unwrap_or_default();
        assert_eq!(l["app"], "web");
        assert_eq!(l["apps.kruise.io/cloneset-instance-id"], "abcde");
        assert_eq!(
            pvc.metadata.owner_references.clone().unwrap_or_default()[0].kind,
            "CloneSet"
        );
    }

    #[test]
    fn mark_pod_not_ready_hooks_add_the_kruise_pod_ready_gate() {
        let mut cs = cloneset(CS);
        let gates = |cs: &CloneSet| {
            new_pod(cs, "abcde", "web-1", &cs.spec.template)
                .spec
                .unwrap_or_default()
                .readiness_gates
                .unwrap_or_default()
                .into_iter()
                .map(|g| g.condition_type)
                .collect::<Vec<_>>()
        };
        assert_eq!(gates(&cs), vec!["InPlaceUpdateReady"]);
        cs.spec.lifecycle = serde_json::from_value(serde_json::json!({
            "preDelete": {"labelsHandler": {"hold": "true"}, "markPodNotReady": true}
        }))
        .expect("lifecycle");
        assert_eq!(gates(&cs), vec!["InPlaceUpdateReady", "KruisePodReady"]);
        cs.spec.lifecycle = serde_json::from_value(serde_json::json!({
            "preDelete": {"labelsHandler": {"hold": "true"}}
        }))
        .expect("lifecycle");
        assert_eq!(
            gates(&cs),
            vec!["InPlaceUpdateReady"],
            "no gate without markPodNotReady"
        );
    }

    #[test]
    fn the_short_hash_is_the_last_segment() {
        assert_eq!(short_hash("my-web-6d4f8b7c9"), "6d4f8b7c9");
        assert_eq!(short_hash("6d4f8b7c9"), "6d4f8b7c9");
    }
}
