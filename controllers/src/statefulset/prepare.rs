//! The pure step between the caches and the planner (kruise `Reconcile` up to
//! `updateStatefulSet`): which pods and revisions are the set's (`adoptOrphanRevisions`,
//! `ClaimPods`), the update and current revisions (`getStatefulSetRevisions`), the
//! [`Snapshot`] for [`plan::plan`], and the history to prune (`truncateHistory`). The executor
//! sends the [`Setup`] writes before the plan's actions; nothing here talks to the API server.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use graft_api::apps::v1beta1::StatefulSet;
use graft_api::{labels, selector};
use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::jiff::Timestamp;
use kube::Resource;

use super::facts::{self, Claim};
use super::identity::owner_reference;
use super::plan::{self, Snapshot};
use crate::predownload::PreDownload;
use crate::revision::{self, RevisionAction, RevisionError, RevisionOwner};

/// A write that must go through before the plan's actions (ownership and history). When one
/// fails because the object changed, the reconcile starts over.
#[derive(Clone, Debug, PartialEq)]
// Built once per reconcile and matched right away; boxing the revision buys nothing.
#[allow(clippy::large_enum_variant)]
pub enum Setup {
    /// Adopt an orphan pod: write these owner references (the set's controller reference
    /// appended), with the pod's uid as precondition.
    AdoptPod {
        /// Pod name.
        name: String,
        /// The uid observed.
        uid: Option<String>,
        /// The owner references to write.
        owner_references: Vec<OwnerReference>,
    },
    /// Release a pod that no longer matches: write its owner references without the set's.
    ReleasePod {
        /// Pod name.
        name: String,
        /// The uid observed.
        uid: Option<String>,
        /// The owner references to write.
        owner_references: Vec<OwnerReference>,
    },
    /// Adopt an orphan ControllerRevision matching the selector (a native StatefulSet deleted
    /// with `--cascade=orphan` leaves its history so): same precondition and shape as pods.
    AdoptRevision {
        /// Revision name.
        name: String,
        /// The uid observed.
        uid: Option<String>,
        /// The owner references to write.
        owner_references: Vec<OwnerReference>,
    },
    /// Create the update revision. On AlreadyExists by a revision that is not ours with this
    /// template, write `collisionCount` = `collision_count_on_conflict` and start over.
    CreateRevision {
        /// The revision to create.
        revision: ControllerRevision,
        /// The collision count to write when the name is taken.
        collision_count_on_conflict: i32,
    },
    /// A pod with the `KruisePodReady` readiness gate and no such condition yet: give it the
    /// condition, `True` (kruise's `podreadiness` controller does it for every pod with the gate;
    /// without it the kubelet never reports the pod Ready).
    InitKruisePodReady {
        /// Pod name.
        name: String,
    },
    /// Rollback to an earlier template: move its revision to the top (`.revision`).
    BumpRevision {
        /// Revision name.
        name: String,
        /// The new `.revision`.
        revision: i64,
    },
}

impl Setup {
    /// Whether the write adopts something (kruise re-reads the set first, to make sure it is not
    /// being deleted and is the same object).
    pub fn adopts(&self) -> bool {
        matches!(self, Self::AdoptPod { .. } | Self::AdoptRevision { .. })
    }
}

/// What one reconcile works from.
#[derive(Clone, Debug, PartialEq)]
pub struct Prepared {
    /// Ownership and history writes, in order, before the plan's actions.
    pub setup: Vec<Setup>,
    /// The planner's input.
    pub snapshot: Snapshot,
    /// The pod templates by revision name, the update revision's being the set's own template.
    pub templates: HashMap<String, PodTemplateSpec>,
    /// Revisions to delete after the plan ran (`revisionHistoryLimit`).
    pub delete_revisions: Vec<String>,
    /// Image pre-download for the update revision's in-place update.
    pub pre_download: PreDownload,
}

/// The set's selector in query syntax (also `status.labelSelector`), or why the set is refused:
/// kruise's validation (which its webhook runs and graft's controller repeats, as nothing
/// guarantees a webhook ran) and a selector that cannot select.
pub fn admit(set: &StatefulSet) -> Result<String, String> {
    let errors = set.validate();
    if !errors.is_empty() {
        return Err(errors.to_string());
    }
    if selector::is_empty(&set.spec.selector) {
        return Err("spec.selector: empty selector is not valid".into());
    }
    selector::to_query(&set.spec.selector).map_err(|e| format!("spec.selector: {e}"))
}

/// The revision owner fields of `set`.
fn revision_owner(set: &StatefulSet) -> RevisionOwner {
    RevisionOwner {
        api_version: StatefulSet::api_version(&()).to_string(),
        kind: StatefulSet::kind(&()).to_string(),
        name: set.metadata.name.clone().unwrap_or_default(),
        namespace: set.metadata.namespace.clone(),
        uid: set.metadata.uid.clone().unwrap_or_default(),
    }
}

fn controller_uid(meta: &ObjectMeta) -> Option<&str> {
    meta.owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
        .map(|o| o.uid.as_str())
}

fn adopted(set: &StatefulSet, meta: &ObjectMeta) -> Vec<OwnerReference> {
    let mut refs = meta.owner_references.clone().unwrap_or_default();
    refs.push(owner_reference(set));
    refs
}

/// Decides ownership, revisions and the snapshot. `pods`, `revisions` and `claims` are the
/// namespace's (from the shared caches); `label_selector` is [`admit`]'s answer.
pub fn prepare(
    set: &StatefulSet,
    pods: &[Arc<Pod>],
    revisions: &[Arc<ControllerRevision>],
    claims: &[Arc<PersistentVolumeClaim>],
    owned_jobs: &[String],
    label_selector: &str,
    now: Timestamp,
) -> Result<Prepared, RevisionError> {
    let uid = set.metadata.uid.as_deref().unwrap_or_default();
    let deleting = set.metadata.deletion_timestamp.is_some();
    let mut setup = Vec::new();

    // History: ours, and orphans the selector matches (ListControllerRevisions).
    let mut history: Vec<ControllerRevision> = Vec::new();
    for r in revisions {
        match controller_uid(&r.metadata) {
            Some(owner) if owner == uid => history.push(ControllerRevision::clone(r)),
            None if !deleting
                && selector::matches_labels(&set.spec.selector, r.metadata.labels.as_ref()) =>
            {
                setup.push(Setup::AdoptRevision {
                    name: r.metadata.name.clone().unwrap_or_default(),
                    uid: r.metadata.uid.clone(),
                    owner_references: adopted(set, &r.metadata),
                });
                history.push(ControllerRevision::clone(r));
            }
            _ => {}
        }
    }

    let data = revision::template_revision_data(&set.spec.template)?;
    let status = set.status.clone().unwrap_or_default();
    let template_labels: BTreeMap<String, String> = set
        .spec
        .template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let active = revision::resolve_revisions(
        &history,
        &revision_owner(set),
        &template_labels,
        &set.metadata.annotations.clone().unwrap_or_default(),
        data,
        status.current_revision.as_deref(),
        status.collision_count.unwrap_or(0),
    );
    let pre_download = if deleting {
        PreDownload::None
    } else {
        super::predownload::decide(set, &active.current, &active.update, owned_jobs)
    };
    let update_revision = active.update.metadata.name.clone().unwrap_or_default();
    let current_revision = active.current.metadata.name.clone().unwrap_or_default();
    match active.action {
        RevisionAction::None => {}
        RevisionAction::Create(revision) => setup.push(Setup::CreateRevision {
            revision,
            collision_count_on_conflict: active.collision_count.saturating_add(1),
        }),
        RevisionAction::BumpRevision { name, revision } => {
            setup.push(Setup::BumpRevision { name, revision })
        }
    }

    let mut templates: HashMap<String, PodTemplateSpec> = history
        .iter()
        .filter_map(|r| {
            let t = revision::template_from_revision(r).ok()?;
            Some((r.metadata.name.clone()?, t))
        })
        .collect();
    templates.insert(update_revision.clone(), set.spec.template.clone());

    // Pods: ClaimPods with kruise's isMemberOf filter.
    let grace = set
        .spec
        .update_strategy
        .as_ref()
        .and_then(|u| u.rolling_update.as_ref())
        .and_then(|r| r.in_place_update_strategy.as_ref())
        .and_then(|s| s.grace_period_seconds)
        .unwrap_or(0);
    let mut owned: Vec<&Pod> = Vec::new();
    for pod in pods {
        match facts::claim(set, pod) {
            Claim::Keep => owned.push(pod),
            Claim::Adopt => {
                setup.push(Setup::AdoptPod {
                    name: pod.metadata.name.clone().unwrap_or_default(),
                    uid: pod.metadata.uid.clone(),
                    owner_references: adopted(set, &pod.metadata),
                });
                owned.push(pod);
            }
            Claim::Release => setup.push(Setup::ReleasePod {
                name: pod.metadata.name.clone().unwrap_or_default(),
                uid: pod.metadata.uid.clone(),
                owner_references: pod
                    .metadata
                    .owner_references
                    .iter()
                    .flatten()
                    .filter(|o| o.uid != uid)
                    .cloned()
                    .collect(),
            }),
            Claim::Ignore => {}
        }
    }
    // The cache's order is arbitrary; a stable order keeps plans reproducible in the logs.
    owned.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    for pod in &owned {
        let gated = pod
            .spec
            .as_ref()
            .and_then(|s| s.readiness_gates.as_ref())
            .is_some_and(|g| {
                g.iter()
                    .any(|g| g.condition_type == labels::KRUISE_POD_READY)
            });
        if gated
            && pod.metadata.deletion_timestamp.is_none()
            && crate::inplace::pod_condition(pod, labels::KRUISE_POD_READY).is_none()
        {
            setup.push(Setup::InitKruisePodReady {
                name: pod.metadata.name.clone().unwrap_or_default(),
            });
        }
    }
    let pod_infos: Vec<plan::PodInfo> = owned
        .iter()
        .map(|p| facts::pod_info(set, p, &templates, &set.spec.template, grace, now))
        .collect();
    let mut claim_infos: Vec<plan::ClaimInfo> = claims
        .iter()
        .filter_map(|c| facts::claim_info(set, c))
        .collect();
    claim_infos.sort_by(|a, b| a.name.cmp(&b.name));

    let pod_revisions: Vec<&str> = owned
        .iter()
        .filter_map(|p| {
            p.metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(labels::CONTROLLER_REVISION_HASH))
                .map(String::as_str)
        })
        .collect();
    let delete_revisions = revision::revisions_to_delete(
        &history,
        set.spec.defaulted().revision_history_limit.unwrap_or(10),
        &current_revision,
        &update_revision,
        &pod_revisions,
    );

    Ok(Prepared {
        setup,
        snapshot: Snapshot {
            set: set.clone(),
            pods: pod_infos,
            claims: claim_infos,
            update_revision,
            current_revision,
            collision_count: Some(active.collision_count),
            label_selector: label_selector.to_string(),
            storage_classes: BTreeMap::new(),
            now,
        },
        templates,
        delete_revisions,
        pre_download,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use serde_json::json;

    fn set() -> StatefulSet {
        serde_json::from_value(json!({
            "apiVersion": "apps.kruise.io/v1beta1", "kind": "StatefulSet",
            "metadata": {"name": "web", "namespace": "ns", "uid": "set-uid", "generation": 2},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "c", "image": "nginx:1"}]}}
            }
        }))
        .unwrap()
    }

    fn now() -> Timestamp {
        "2026-01-01T00:00:00Z".parse().unwrap()
    }

    fn pod(name: &str, owner: Option<&str>, revision: &str) -> Arc<Pod> {
        let mut v = json!({"metadata": {"name": name, "namespace": "ns", "uid": format!("{name}-uid"),
            "labels": {"app": "web", "controller-revision-hash": revision,
                "statefulset.kubernetes.io/pod-name": name}},
            "spec": {"containers": [{"name": "c", "image": "nginx:1"}]},
            "status": {"phase": "Running"}});
        if let Some(uid) = owner {
            v["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps.kruise.io/v1beta1",
                "kind": "StatefulSet", "name": "web", "uid": uid, "controller": true}]);
        }
        Arc::new(serde_json::from_value(v).unwrap())
    }

    /// The revision of `s`'s template as the controller mints it, owned by `owner` (or orphan).
    fn revision_of(s: &StatefulSet, owner: Option<&str>, number: i64) -> ControllerRevision {
        let mut r = match prepare(s, &[], &[], &[], &[], "app=web", now())
            .unwrap()
            .setup
            .into_iter()
            .find_map(|a| match a {
                Setup::CreateRevision { revision, .. } => Some(revision),
                _ => None,
            }) {
            Some(r) => r,
            None => panic!("no revision minted"),
        };
        r.revision = number;
        r.metadata.uid = Some(format!("rev-{number}"));
        r.metadata.owner_references = owner.map(|uid| {
            let mut o = owner_reference(s);
            o.uid = uid.into();
            vec![o]
        });
        r
    }

    #[test]
    fn pods_with_the_kruise_pod_ready_gate_get_the_condition_once() {
        let s = set();
        let gated = |name: &str, condition: bool| {
            let mut p = (*pod(name, Some("set-uid"), "web-x")).clone();
            let spec = p.spec.get_or_insert_default();
            spec.readiness_gates = Some(vec![k8s_openapi::api::core::v1::PodReadinessGate {
                condition_type: labels::KRUISE_POD_READY.into(),
            }]);
            if condition {
                p.status.get_or_insert_default().conditions =
                    Some(vec![k8s_openapi::api::core::v1::PodCondition {
                        type_: labels::KRUISE_POD_READY.into(),
                        status: "True".into(),
                        ..Default::default()
                    }]);
            }
            Arc::new(p)
        };
        let pods = [
            gated("web-0", false),
            gated("web-1", true),
            pod("web-2", Some("set-uid"), "web-x"),
        ];
        let setup = prepare(&s, &pods, &[], &[], &[], "app=web", now())
            .unwrap()
            .setup;
        let inits: Vec<&Setup> = setup
            .iter()
            .filter(|a| matches!(a, Setup::InitKruisePodReady { .. }))
            .collect();
        assert_eq!(
            inits,
            vec![&Setup::InitKruisePodReady {
                name: "web-0".into()
            }]
        );
    }

    #[test]
    fn a_new_set_mints_its_revision_and_adopts_and_releases_pods() {
        let s = set();
        let pods = [
            pod("web-0", Some("set-uid"), "web-x"),
            pod("web-1", None, "web-x"),
            pod("other-0", None, "web-x"),
            pod("web-2", Some("another"), "web-x"),
        ];
        let mut released = (*pod("web-3", Some("set-uid"), "web-x")).clone();
        released
            .metadata
            .labels
            .as_mut()
            .unwrap()
            .insert("app".into(), "db".into());
        let pods: Vec<Arc<Pod>> = pods.into_iter().chain([Arc::new(released)]).collect();
        let p = prepare(&s, &pods, &[], &[], &[], "app=web", now()).unwrap();
        let kinds: Vec<String> = p
            .setup
            .iter()
            .map(|a| match a {
                Setup::CreateRevision {
                    revision,
                    collision_count_on_conflict,
                } => format!(
                    "create {} (conflict {collision_count_on_conflict})",
                    revision.metadata.name.clone().unwrap_or_default()
                ),
                Setup::AdoptPod { name, .. } => format!("adopt {name}"),
                Setup::ReleasePod {
                    name,
                    owner_references,
                    ..
                } => format!("release {name} ({} refs)", owner_references.len()),
                other => format!("{other:?}"),
            })
            .collect();
        let rev = p.snapshot.update_revision.clone();
        assert!(rev.starts_with("web-"), "{rev}");
        assert_eq!(
            kinds,
            vec![
                format!("create {rev} (conflict 1)"),
                "adopt web-1".to_string(),
                "release web-3 (0 refs)".to_string(),
            ]
        );
        assert_eq!(p.snapshot.current_revision, rev);
        assert_eq!(p.snapshot.collision_count, Some(0));
        let names: Vec<&str> = p.snapshot.pods.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["web-0", "web-1"]);
        assert_eq!(p.templates.get(&rev), Some(&s.spec.template));
    }

    #[test]
    fn an_orphan_revision_of_the_same_template_is_adopted_and_reused() {
        // What a native StatefulSet deleted with --cascade=orphan leaves behind.
        let s = set();
        let orphan = revision_of(&s, None, 1);
        let name = orphan.metadata.name.clone().unwrap();
        let p = prepare(&s, &[], &[Arc::new(orphan)], &[], &[], "app=web", now()).unwrap();
        assert_eq!(p.setup.len(), 1, "{:?}", p.setup);
        assert!(
            matches!(&p.setup[0], Setup::AdoptRevision { name: n, owner_references, .. }
                if *n == name && owner_references.iter().any(|o| o.uid == "set-uid" && o.controller == Some(true)))
        );
        assert_eq!(p.snapshot.update_revision, name);

        // Another controller's revision is not ours.
        let theirs = revision_of(&s, Some("native-uid"), 1);
        let p = prepare(&s, &[], &[Arc::new(theirs)], &[], &[], "app=web", now()).unwrap();
        assert!(matches!(p.setup[0], Setup::CreateRevision { .. }));
    }

    #[test]
    fn the_history_keeps_the_limit_besides_live_revisions() {
        let mut s = set();
        s.spec.revision_history_limit = Some(1);
        let mut history = Vec::new();
        for (i, image) in ["nginx:1", "nginx:2", "nginx:3", "nginx:4"]
            .iter()
            .enumerate()
        {
            let mut t = s.clone();
            t.spec.template.spec.as_mut().unwrap().containers[0].image = Some((*image).into());
            history.push(Arc::new(revision_of(&t, Some("set-uid"), i as i64 + 1)));
        }
        let names: Vec<String> = history
            .iter()
            .map(|r| r.metadata.name.clone().unwrap())
            .collect();
        // The set is at nginx:4, one pod still runs nginx:1's revision.
        s.spec.template.spec.as_mut().unwrap().containers[0].image = Some("nginx:4".into());
        let pods = [pod("web-0", Some("set-uid"), &names[0])];
        let p = prepare(&s, &pods, &history, &[], &[], "app=web", now()).unwrap();
        assert!(p.setup.is_empty(), "{:?}", p.setup);
        assert_eq!(p.snapshot.update_revision, names[3]);
        assert_eq!(p.delete_revisions, vec![names[1].clone()]);
    }

    #[test]
    fn admit_refuses_what_kruise_validation_refuses() {
        let s = set();
        assert_eq!(admit(&s), Ok("app=web".to_string()));
        let mut bad = s.clone();
        bad.spec.reserve_ordinals = Some(vec![
            k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(-1),
        ]);
        assert!(admit(&bad).is_err());
    }
}

#[cfg(test)]
mod native_tests {
    use super::*;
    use serde_json::json;

    /// A native apps/v1 StatefulSet's revision holds the template as the API server defaulted
    /// it; the same template in an Advanced StatefulSet gives the very same data (so the same
    /// name), which is what lets a takeover keep the pods.
    #[test]
    fn a_native_statefulset_revision_holds_the_same_data() {
        let ours: PodTemplateSpec = serde_json::from_value(json!({
            "metadata": {"labels": {"app": "web"}},
            "spec": {"terminationGracePeriodSeconds": 3, "containers": [
                {"name": "app", "image": "x/app:v1", "imagePullPolicy": "IfNotPresent",
                 "readinessProbe": {"httpGet": {"path": "/readyz", "port": 8080}, "periodSeconds": 1}},
                {"name": "sidecar", "image": "x/sidecar:v1", "imagePullPolicy": "IfNotPresent"}]}
        }))
        .unwrap();
        // What kube-controller-manager wrote for that template.
        let native = r#"{"spec":{"template":{"$patch":"replace","metadata":{"creationTimestamp":null,"labels":{"app":"web"}},"spec":{"containers":[{"image":"x/app:v1","imagePullPolicy":"IfNotPresent","name":"app","readinessProbe":{"failureThreshold":3,"httpGet":{"path":"/readyz","port":8080,"scheme":"HTTP"},"periodSeconds":1,"successThreshold":1,"timeoutSeconds":1},"resources":{},"terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File"},{"image":"x/sidecar:v1","imagePullPolicy":"IfNotPresent","name":"sidecar","resources":{},"terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File"}],"dnsPolicy":"ClusterFirst","restartPolicy":"Always","schedulerName":"default-scheduler","securityContext":{},"terminationGracePeriodSeconds":3}}}}"#;
        let data = revision::template_revision_data(&ours).unwrap();
        assert_eq!(revision::to_go_json(&data), native);
    }
}
