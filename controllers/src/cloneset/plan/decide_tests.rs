//! Table tests of [`decide`]: refusing invalid CloneSets, claiming pods, settling revisions, and
//! the metadata an in-place update stamps.

use std::collections::BTreeMap;

use graft_api::apps::common::LifecycleState;
use graft_api::apps::v1alpha1::CloneSet;
use graft_api::labels;
use k8s_openapi::api::apps::v1::ControllerRevision;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use k8s_openapi::jiff::Timestamp;
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::*;
use crate::cloneset::pods;
use crate::revision::{self, RevisionOwner};

const UID: &str = "cs-uid";

fn now() -> Timestamp {
    Timestamp::from_second(1_800_000_000).unwrap()
}

/// A CloneSet `demo` (uid [`UID`]) selecting `app=demo`, with `image` in its template and the
/// spec fields of `spec` merged in.
fn cloneset(image: &str, spec: Value) -> CloneSet {
    let mut base = json!({
        "apiVersion": "apps.kruise.io/v1alpha1",
        "kind": "CloneSet",
        "metadata": {"name": "demo", "namespace": "ns", "uid": UID, "generation": 1},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "demo"}},
            "template": {
                "metadata": {"labels": {"app": "demo"}},
                "spec": {"containers": [{"name": "main", "image": image}]}
            }
        }
    });
    for (k, v) in spec.as_object().unwrap() {
        base["spec"][k] = v.clone();
    }
    serde_json::from_value(base).unwrap()
}

fn owner(cs: &CloneSet) -> RevisionOwner {
    RevisionOwner {
        api_version: "apps.kruise.io/v1alpha1".into(),
        kind: "CloneSet".into(),
        name: "demo".into(),
        namespace: Some("ns".into()),
        uid: cs.metadata.uid.clone().unwrap(),
    }
}

fn data(cs: &CloneSet) -> Value {
    revision::template_revision_data(&cs.spec.template).unwrap()
}

/// The revision `cs`'s template gets with `collision_count`, numbered `number`.
fn revision_of(cs: &CloneSet, number: i64, collision_count: i32) -> ControllerRevision {
    let labels = BTreeMap::from([("app".to_string(), "demo".to_string())]);
    revision::new_revision(
        &owner(cs),
        &labels,
        &revision_annotations(cs),
        data(cs),
        number,
        Some(collision_count),
    )
}

fn name_of(r: &ControllerRevision) -> String {
    r.metadata.name.clone().unwrap()
}

/// Builder for a pod of the namespace: `opod("a").owned()`. Defaults: an orphan labelled
/// `app=demo`, Running and ready, at no revision.
struct O(ObservedPod);

fn opod(name: &str) -> O {
    O(ObservedPod {
        uid: Some(format!("uid-{name}")),
        owner_references: vec![],
        kruise_pod_ready_gate: false,
        kruise_pod_ready_condition: false,
        info: PodInfo {
            name: name.into(),
            labels: BTreeMap::from([("app".to_string(), "demo".to_string())]),
            finalizers: vec![],
            phase: PodPhase::Running,
            node_name: Some("node-1".into()),
            ready: true,
            ready_since: Some(Timestamp::from_second(1_700_000_000).unwrap()),
            in_place_update_ready: None,
            deletion_timestamp: None,
            creation_timestamp: Some(Timestamp::from_second(1_700_000_000).unwrap()),
            deletion_cost: 0,
            restart_count: 0,
            failure: None,
            in_place: InPlaceFacts::default(),
        },
    })
}

fn controller_ref(kind: &str, name: &str, uid: &str) -> OwnerReference {
    OwnerReference {
        api_version: "apps/v1".into(),
        kind: kind.into(),
        name: name.into(),
        uid: uid.into(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

impl O {
    fn owned(mut self) -> Self {
        let mut r = pods::owner_reference(&cloneset("nginx:1", json!({})));
        r.uid = UID.into();
        self.0.owner_references.push(r);
        self
    }
    fn owned_by_other(mut self) -> Self {
        self.0
            .owner_references
            .push(controller_ref("ReplicaSet", "rs", "rs-uid"));
        self
    }
    fn non_controller_owner(mut self) -> Self {
        let mut r = controller_ref("ConfigMap", "cm", "cm-uid");
        r.controller = None;
        self.0.owner_references.push(r);
        self
    }
    fn label(mut self, k: &str, v: &str) -> Self {
        self.0.info.labels.insert(k.into(), v.into());
        self
    }
    fn rev(self, rev: &str) -> Self {
        self.label(labels::CONTROLLER_REVISION_HASH, rev)
            .label(labels::POD_TEMPLATE_HASH, revision::short_hash(rev))
            .label(labels::CLONESET_INSTANCE_ID, "x")
    }
    fn terminating(mut self) -> Self {
        self.0.info.deletion_timestamp = Some(now());
        self
    }
    fn gate(mut self, has_condition: bool) -> Self {
        self.0.kruise_pod_ready_gate = true;
        self.0.kruise_pod_ready_condition = has_condition;
        self
    }
}

fn observed(cs: CloneSet, pods: Vec<O>, revisions: Vec<ControllerRevision>) -> Observed {
    Observed {
        revision_data: data(&cs),
        cloneset: cs,
        pods: pods.into_iter().map(|p| p.0).collect(),
        revisions,
        pvc_instance_ids: vec![],
        fresh_instance_ids: ["id01", "id02", "id03"].map(String::from).to_vec(),
        scaling_exclude_preparing_delete: false,
        image_pull_jobs: vec![],
        now: now(),
    }
}

/// The CloneSet with `currentRevision` and `collisionCount` in its status.
fn with_status(mut cs: CloneSet, current: &str, collision_count: i32) -> CloneSet {
    cs.status = Some(graft_api::apps::v1alpha1::CloneSetStatus {
        current_revision: Some(current.into()),
        collision_count: Some(collision_count),
        ..Default::default()
    });
    cs
}

fn create(id: &str, rev: &str) -> Action {
    Action::CreatePod {
        instance_id: id.into(),
        revision: rev.into(),
        reuse_pvcs: false,
    }
}

#[test]
fn claims_table() {
    let cs = cloneset("nginx:1", json!({}));
    let cases: Vec<(&str, O, Claim)> = vec![
        ("owned and matching", opod("a").owned(), Claim::Keep),
        ("orphan matching", opod("a"), Claim::Adopt),
        (
            "orphan with a non-controller owner",
            opod("a").non_controller_owner(),
            Claim::Adopt,
        ),
        ("orphan terminating", opod("a").terminating(), Claim::Ignore),
        (
            "orphan not matching",
            opod("a").label("app", "other"),
            Claim::Ignore,
        ),
        (
            "owned, stopped matching",
            opod("a").owned().label("app", "other"),
            Claim::Release,
        ),
        (
            "owned and terminating stays ours",
            opod("a").owned().terminating(),
            Claim::Keep,
        ),
        (
            "another controller's, matching",
            opod("a").owned_by_other(),
            Claim::Ignore,
        ),
    ];
    for (what, pod, want) in cases {
        assert_eq!(claim(&cs, &pod.0), want, "{what}");
    }
}

#[test]
fn an_orphan_matching_pod_is_adopted_and_counted() {
    let cs = cloneset("nginx:1", json!({"replicas": 2}));
    let rev = revision_of(&cs, 1, 0);
    let obs = observed(cs.clone(), vec![opod("stray")], vec![rev.clone()]);
    let plan = decide(&obs).unwrap();
    let mut cs_ref = pods::owner_reference(&cs);
    cs_ref.uid = UID.into();
    assert_eq!(
        plan.actions,
        vec![
            Action::AdoptPod {
                name: "stray".into(),
                uid: Some("uid-stray".into()),
                owner_references: vec![cs_ref],
            },
            create("id01", &name_of(&rev)),
        ],
        "one pod next to the adopted one"
    );
}

#[test]
fn an_owned_pod_that_stopped_matching_is_released_and_replaced() {
    let cs = cloneset("nginx:1", json!({}));
    let rev = revision_of(&cs, 1, 0);
    let pod = opod("a")
        .non_controller_owner()
        .owned()
        .rev(&name_of(&rev))
        .label("app", "moved");
    let obs = observed(cs, vec![pod], vec![rev.clone()]);
    let plan = decide(&obs).unwrap();
    let mut kept = controller_ref("ConfigMap", "cm", "cm-uid");
    kept.controller = None;
    assert_eq!(
        plan.actions,
        vec![
            Action::ReleasePod {
                name: "a".into(),
                uid: Some("uid-a".into()),
                owner_references: vec![kept],
            },
            create("id01", &name_of(&rev)),
        ]
    );
}

#[test]
fn a_pod_of_another_controller_is_left_alone() {
    let cs = cloneset("nginx:1", json!({}));
    let rev = revision_of(&cs, 1, 0);
    let obs = observed(cs, vec![opod("theirs").owned_by_other()], vec![rev.clone()]);
    let plan = decide(&obs).unwrap();
    assert_eq!(plan.actions, vec![create("id01", &name_of(&rev))]);
    assert_eq!(plan.status.replicas, 0);
}

#[test]
fn revisions_table() {
    let v1 = cloneset("nginx:1", json!({}));
    let v2 = cloneset("nginx:2", json!({}));
    let r1 = revision_of(&v1, 1, 0);
    let r2 = revision_of(&v2, 2, 0);
    let new_r2 = revision_of(&v2, 2, 0);
    struct Case {
        what: &'static str,
        cs: CloneSet,
        existing: Vec<ControllerRevision>,
        action: Option<Action>,
        update: String,
        current: String,
    }
    let cases = vec![
        Case {
            what: "first reconcile: the template's revision is created and is current",
            cs: v1.clone(),
            existing: vec![],
            action: Some(Action::CreateRevision {
                revision: Box::new(revision_of(&v1, 1, 0)),
                collision_count_on_conflict: 1,
            }),
            update: name_of(&r1),
            current: name_of(&r1),
        },
        Case {
            what: "template unchanged: nothing to write",
            cs: with_status(v1.clone(), &name_of(&r1), 0),
            existing: vec![r1.clone()],
            action: None,
            update: name_of(&r1),
            current: name_of(&r1),
        },
        Case {
            what: "template changed: a new revision, the old one stays current",
            cs: with_status(v2.clone(), &name_of(&r1), 0),
            existing: vec![r1.clone()],
            action: Some(Action::CreateRevision {
                revision: Box::new(new_r2.clone()),
                collision_count_on_conflict: 1,
            }),
            update: name_of(&r2),
            current: name_of(&r1),
        },
        Case {
            what: "rollback to an older template: that revision moves to the top",
            cs: with_status(v1.clone(), &name_of(&r2), 0),
            existing: vec![r1.clone(), r2.clone()],
            action: Some(Action::BumpRevision {
                name: name_of(&r1),
                revision: 3,
                vct_hash: None,
            }),
            update: name_of(&r1),
            current: name_of(&r2),
        },
    ];
    for c in cases {
        let obs = observed(c.cs, vec![], c.existing);
        let plan = decide(&obs).unwrap();
        let revision_actions: Vec<&Action> = plan
            .actions
            .iter()
            .filter(|a| {
                matches!(
                    a,
                    Action::CreateRevision { .. } | Action::BumpRevision { .. }
                )
            })
            .collect();
        assert_eq!(
            revision_actions,
            c.action.iter().collect::<Vec<_>>(),
            "{}",
            c.what
        );
        assert_eq!(
            plan.status.update_revision.as_deref(),
            Some(c.update.as_str()),
            "{}",
            c.what
        );
        assert_eq!(
            plan.status.current_revision.as_deref(),
            Some(c.current.as_str()),
            "{}",
            c.what
        );
    }
}

#[test]
fn a_hash_collision_with_another_revisions_data_bumps_collision_count() {
    let v1 = cloneset("nginx:1", json!({}));
    let v2 = cloneset("nginx:2", json!({}));
    let r1 = revision_of(&v1, 1, 0);
    // A revision of ours holding other data under the name v2's template would get.
    let mut squatter = revision_of(&v1, 2, 7);
    squatter.metadata.name = Some(name_of(&revision_of(&v2, 3, 0)));
    let cs = with_status(v2.clone(), &name_of(&r1), 0);
    let plan = decide(&observed(cs, vec![], vec![r1.clone(), squatter])).unwrap();
    let minted = revision_of(&v2, 3, 1);
    assert_eq!(
        plan.actions.first(),
        Some(&Action::CreateRevision {
            revision: Box::new(minted.clone()),
            collision_count_on_conflict: 2,
        }),
        "the next collision count names the new revision; a conflict on create steps it again"
    );
    assert_eq!(plan.status.collision_count, Some(1));
    assert_eq!(plan.status.update_revision, Some(name_of(&minted)));
}

#[test]
fn pods_with_the_kruise_pod_ready_gate_get_their_first_condition() {
    let cs = cloneset("nginx:1", json!({"replicas": 3}));
    let rev = revision_of(&cs, 1, 0);
    let r = name_of(&rev);
    let pods = vec![
        opod("no-condition").owned().rev(&r).gate(false),
        opod("has-condition").owned().rev(&r).gate(true),
        opod("terminating")
            .owned()
            .rev(&r)
            .gate(false)
            .terminating(),
        opod("no-gate").owned().rev(&r),
    ];
    let obs = observed(with_status(cs, &r, 0), pods, vec![rev]);
    let plan = decide(&obs).unwrap();
    let inits: Vec<&Action> = plan
        .actions
        .iter()
        .filter(|a| matches!(a, Action::InitKruisePodReady { .. }))
        .collect();
    assert_eq!(
        inits,
        vec![&Action::InitKruisePodReady {
            name: "no-condition".into()
        }]
    );
}

#[test]
fn setup_actions_come_before_pod_operations() {
    let v1 = cloneset("nginx:1", json!({"replicas": 2}));
    let plan = decide(&observed(v1, vec![opod("stray").gate(false)], vec![])).unwrap();
    let kinds: Vec<bool> = plan.actions.iter().map(Action::is_setup).collect();
    assert_eq!(kinds, vec![true, true, true, false]);
    assert!(matches!(plan.actions[0], Action::AdoptPod { .. }));
    assert!(matches!(plan.actions[1], Action::CreateRevision { .. }));
    assert!(matches!(plan.actions[2], Action::InitKruisePodReady { .. }));
}

#[test]
fn old_revisions_beyond_the_history_limit_are_pruned() {
    let v1 = cloneset("nginx:1", json!({}));
    let v2 = cloneset("nginx:2", json!({}));
    let v3 = cloneset("nginx:3", json!({"revisionHistoryLimit": 0}));
    let (r1, r2, r3) = (
        revision_of(&v1, 1, 0),
        revision_of(&v2, 2, 0),
        revision_of(&v3, 3, 0),
    );
    let cs = with_status(v3, &name_of(&r3), 0);
    let pods = vec![opod("a").owned().rev(&name_of(&r2))];
    let plan = decide(&observed(cs, pods, vec![r1.clone(), r2, r3])).unwrap();
    assert_eq!(
        plan.delete_revisions,
        vec![name_of(&r1)],
        "a pod still runs r2; r1 is unused"
    );
}

#[test]
fn a_cloneset_with_an_empty_selector_is_refused_and_adopts_nothing() {
    // Kubernetes' empty selector matches everything; a CloneSet must not select every pod of
    // its namespace (OpenKruise's validation refuses it), so the plan refuses it.
    let cs = cloneset("nginx:1", json!({"selector": {}}));
    let refusal = admit(&cs).unwrap_err();
    assert!(refusal.message.contains("empty selector"), "{refusal:?}");
    let obs = observed(cs, vec![opod("a"), opod("b").label("x", "y")], vec![]);
    assert_eq!(decide(&obs).map(|p| p.actions), Err(refusal));
}

#[test]
fn a_selector_the_api_server_would_refuse_is_invalid_input() {
    let with = |requirement: Value| {
        cloneset(
            "nginx:1",
            json!({"selector": {
                "matchLabels": {"app": "demo"},
                "matchExpressions": [requirement]
            }}),
        )
    };
    // Matches the template's labels, so only rendering it as a query finds the fault.
    let cs = with(json!({"key": "tier", "operator": "NotIn", "values": []}));
    let refusal = admit(&cs).unwrap_err();
    assert!(
        refusal.message.starts_with("spec.selector: ") && refusal.message.contains("non-empty"),
        "{refusal:?}"
    );
    assert_eq!(
        decide(&observed(cs, vec![opod("a")], vec![])).map(|p| p.actions),
        Err(refusal)
    );
    // An unknown operator matches nothing, so validation already refuses it.
    let cs = with(json!({"key": "tier", "operator": "Gt", "values": ["1"]}));
    assert!(admit(&cs).is_err());
}

#[test]
fn a_valid_selector_is_rendered_for_list_calls_and_the_status() {
    let cs = cloneset(
        "nginx:1",
        json!({"selector": {
            "matchLabels": {"app": "demo"},
            "matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["db"]}]
        }}),
    );
    assert_eq!(admit(&cs).unwrap(), "app=demo,tier notin (db)");
    let plan = decide(&observed(cs, vec![], vec![])).unwrap();
    assert_eq!(
        plan.status.label_selector.as_deref(),
        Some("app=demo,tier notin (db)")
    );
}

#[test]
fn in_place_updates_stamp_hash_and_lifecycle_as_kruise_does() {
    let stamp = in_place_stamp("demo-6c5f8d9b7", now());
    assert_eq!(
        stamp.labels,
        BTreeMap::from([
            (
                labels::POD_TEMPLATE_HASH.to_string(),
                "6c5f8d9b7".to_string()
            ),
            (
                labels::LIFECYCLE_STATE.to_string(),
                labels::LIFECYCLE_STATE_UPDATING.to_string()
            ),
        ])
    );
    assert_eq!(
        stamp.annotations,
        BTreeMap::from([(labels::LIFECYCLE_TIMESTAMP.to_string(), now().to_string())])
    );
}

#[test]
fn lifecycle_hooks_that_hold_pods_out_of_service() {
    let cases = [
        (LifecycleState::PreparingDelete, Some("preDeleteHook")),
        (LifecycleState::PreparingUpdate, Some("preUpdateHook")),
        (LifecycleState::Normal, None),
        (LifecycleState::Updated, None),
    ];
    for (state, hook) in cases {
        assert_eq!(not_ready_hook(state), hook, "{state:?}");
    }
}

#[test]
fn each_action_names_the_pod_it_is_about_so_the_executor_keeps_its_order() {
    let cases = [
        (
            Action::CreatePod {
                instance_id: "abcde".into(),
                revision: "web-1".into(),
                reuse_pvcs: false,
            },
            "web-abcde",
        ),
        (
            Action::RemovePvcs {
                instance_id: "abcde".into(),
            },
            "web-abcde",
        ),
        (
            Action::DeletePod {
                name: "web-x".into(),
                instance_id: Some("x".into()),
            },
            "web-x",
        ),
        (
            Action::SetLifecycleState {
                name: "web-y".into(),
                state: LifecycleState::Normal,
                mark_pod_not_ready: false,
            },
            "web-y",
        ),
        (
            Action::RefreshInPlace {
                name: "web-y".into(),
            },
            "web-y",
        ),
        (
            Action::UpdateInPlace {
                name: "web-z".into(),
                revision: "web-2".into(),
            },
            "web-z",
        ),
    ];
    for (action, pod) in cases {
        assert_eq!(action.pod_name("web"), pod, "{action:?}");
    }
}

// ---- volumeClaimTemplates change recreate (RecreatePodWhenChangeVCTInCloneSetGate) -----------

fn vct(size: &str) -> Value {
    json!([{
        "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}}
    }])
}

/// A CloneSet with `image`, strategy `strategy` and one volumeClaimTemplate of `size`.
fn cloneset_with_vct(image: &str, strategy: &str, size: Option<&str>) -> CloneSet {
    let mut spec = json!({"updateStrategy": {"type": strategy}});
    if let Some(size) = size {
        spec["volumeClaimTemplates"] = vct(size);
    }
    cloneset(image, spec)
}

/// The one pod's action when `cs` (currently at `r1`) reconciles with `existing` revisions.
fn pod_actions(
    cs: &CloneSet,
    r1: &ControllerRevision,
    existing: Vec<ControllerRevision>,
) -> Vec<Action> {
    let pod = opod("a")
        .owned()
        .rev(&name_of(r1))
        .label(labels::LIFECYCLE_STATE, "Normal");
    let obs = observed(
        with_status(cs.clone(), &name_of(r1), 0),
        vec![pod],
        existing,
    );
    decide(&obs)
        .unwrap()
        .actions
        .into_iter()
        .filter(|a| !a.is_setup())
        .collect()
}

#[test]
fn revisions_carry_the_cloneset_annotations_and_the_vct_hash() {
    let mut cs = cloneset_with_vct("nginx:1", "ReCreate", Some("1Gi"));
    cs.metadata.annotations = Some(BTreeMap::from([("team".to_string(), "a".to_string())]));
    let plan = decide(&observed(cs.clone(), vec![], vec![])).unwrap();
    let Some(Action::CreateRevision { revision, .. }) = plan.actions.first() else {
        panic!("a revision is created: {:?}", plan.actions);
    };
    let want = crate::cloneset::vct::hash_annotation(cs.spec.volume_claim_templates.as_deref());
    assert_eq!(
        revision.metadata.annotations,
        Some(BTreeMap::from([
            ("team".to_string(), "a".to_string()),
            (crate::cloneset::vct::VCT_HASH_ANNOTATION.to_string(), want),
        ]))
    );
    // Without templates the annotation is there, empty (kruise's PatchVCTemplateHash).
    let plan = decide(&observed(cloneset("nginx:1", json!({})), vec![], vec![])).unwrap();
    let Some(Action::CreateRevision { revision, .. }) = plan.actions.first() else {
        panic!("a revision is created");
    };
    assert_eq!(
        revision.metadata.annotations,
        Some(BTreeMap::from([(
            crate::cloneset::vct::VCT_HASH_ANNOTATION.to_string(),
            String::new()
        )]))
    );
}

#[test]
fn a_changed_volume_claim_template_forces_recreate_instead_of_in_place() {
    struct Case {
        what: &'static str,
        strategy: &'static str,
        old_size: Option<&'static str>,
        new_size: Option<&'static str>,
        old_has_hash: bool,
        in_place: bool,
    }
    let cases = [
        Case {
            what: "same templates: in place",
            strategy: "InPlaceIfPossible",
            old_size: Some("1Gi"),
            new_size: Some("1Gi"),
            old_has_hash: true,
            in_place: true,
        },
        Case {
            what: "bigger volume: recreate",
            strategy: "InPlaceIfPossible",
            old_size: Some("1Gi"),
            new_size: Some("2Gi"),
            old_has_hash: true,
            in_place: false,
        },
        Case {
            what: "a template added: recreate",
            strategy: "InPlaceIfPossible",
            old_size: None,
            new_size: Some("1Gi"),
            old_has_hash: true,
            in_place: false,
        },
        Case {
            what: "InPlaceOnly ignores the hashes",
            strategy: "InPlaceOnly",
            old_size: Some("1Gi"),
            new_size: Some("2Gi"),
            old_has_hash: true,
            in_place: true,
        },
        Case {
            what: "an old revision without the hash never forces a recreate",
            strategy: "InPlaceIfPossible",
            old_size: Some("1Gi"),
            new_size: Some("2Gi"),
            old_has_hash: false,
            in_place: true,
        },
    ];
    for c in cases {
        let v1 = cloneset_with_vct("nginx:1", c.strategy, c.old_size);
        let mut r1 = revision_of(&v1, 1, 0);
        if !c.old_has_hash {
            r1.metadata.annotations = None;
        }
        let v2 = cloneset_with_vct("nginx:2", c.strategy, c.new_size);
        let r2 = revision_of(&v2, 2, 0);
        let want = if c.in_place {
            Action::UpdateInPlace {
                name: "a".into(),
                revision: name_of(&r2),
            }
        } else {
            Action::MarkSpecifiedDelete {
                name: "a".into(),
                revision: name_of(&r2),
            }
        };
        assert_eq!(
            pod_actions(&v2, &r1, vec![r1.clone()]),
            vec![want],
            "{}",
            c.what
        );
    }
}

#[test]
fn a_vct_only_change_makes_no_revision_and_touches_no_pod() {
    let v1 = cloneset_with_vct("nginx:1", "InPlaceIfPossible", Some("1Gi"));
    let r1 = revision_of(&v1, 1, 0);
    let bigger = cloneset_with_vct("nginx:1", "InPlaceIfPossible", Some("2Gi"));
    let obs = observed(
        with_status(bigger, &name_of(&r1), 0),
        vec![
            opod("a")
                .owned()
                .rev(&name_of(&r1))
                .label(labels::LIFECYCLE_STATE, "Normal"),
        ],
        vec![r1.clone()],
    );
    let plan = decide(&obs).unwrap();
    assert_eq!(plan.actions, vec![]);
    assert_eq!(plan.status.update_revision, Some(name_of(&r1)));
}

#[test]
fn a_rollback_brings_todays_vct_hash_to_the_older_revision() {
    let v1 = cloneset_with_vct("nginx:1", "InPlaceIfPossible", Some("1Gi"));
    let r1 = revision_of(&v1, 1, 0);
    let v2 = cloneset_with_vct("nginx:2", "InPlaceIfPossible", Some("1Gi"));
    let r2 = revision_of(&v2, 2, 0);
    // Back to nginx:1, with a bigger volume.
    let back = cloneset_with_vct("nginx:1", "InPlaceIfPossible", Some("2Gi"));
    let new_hash =
        crate::cloneset::vct::hash_annotation(back.spec.volume_claim_templates.as_deref());
    let actions = pod_actions(&back, &r2, vec![r1.clone(), r2.clone()]);
    assert_eq!(
        actions,
        vec![Action::MarkSpecifiedDelete {
            name: "a".into(),
            revision: name_of(&r1)
        }],
        "the pod at r2 is recreated"
    );
    let obs = observed(
        with_status(back, &name_of(&r2), 0),
        vec![],
        vec![r1.clone(), r2],
    );
    assert_eq!(
        decide(&obs).unwrap().actions.first(),
        Some(&Action::BumpRevision {
            name: name_of(&r1),
            revision: 3,
            vct_hash: Some(new_hash)
        })
    );
}

// ---- image pre-download for in-place updates (PreDownloadImageForInPlaceUpdate) -------------

/// Revisions r1 (`nginx:1`, sidecar `side:1`) and the CloneSet at `image`, in place, 5 replicas,
/// partition 3, currently at r1; `spec` and `annotations` merged in.
fn predownload_case(
    image: &str,
    spec: Value,
    annotations: &[(&str, &str)],
) -> (CloneSet, ControllerRevision) {
    let two = |image: &str| {
        json!({
            "metadata": {"labels": {"app": "demo", "tier": "web"}, "annotations": {"note": "x"}},
            "spec": {"containers": [{"name": "main", "image": image}, {"name": "side", "image": "side:1"}],
                     "imagePullSecrets": [{"name": "regcred"}]}
        })
    };
    let mut base = json!({
        "replicas": 5,
        "template": two("nginx:1"),
        "updateStrategy": {"type": "InPlaceIfPossible", "partition": 3}
    });
    for (k, v) in spec.as_object().unwrap() {
        base[k] = v.clone();
    }
    let v1 = cloneset("nginx:1", base.clone());
    let r1 = revision_of(&v1, 1, 0);
    base["template"] = two(image);
    let mut cs = with_status(cloneset(image, base), &name_of(&r1), 0);
    if !annotations.is_empty() {
        cs.metadata.annotations = Some(
            annotations
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
    }
    (cs, r1)
}

fn pre_download_of(cs: &CloneSet, revisions: Vec<ControllerRevision>) -> PreDownload {
    decide(&observed(cs.clone(), vec![], revisions))
        .unwrap()
        .pre_download
}

#[test]
fn pre_download_creates_the_job_openkruise_creates() {
    let (cs, r1) = predownload_case("nginx:2", json!({}), &[]);
    let r2 = revision_of(&cs, 2, 0);
    let r2_name = name_of(&r2);
    let hash = revision::short_hash(&r2_name).to_string();
    let mut owner = pods::owner_reference(&cs);
    owner.uid = UID.into();
    let want: graft_api::apps::v1alpha1::ImagePullJob = serde_json::from_value(json!({
        "apiVersion": "apps.kruise.io/v1alpha1", "kind": "ImagePullJob",
        "metadata": {
            "name": format!("{r2_name}-main"),
            "namespace": "ns",
            "labels": {"app": "demo", "tier": "web", "controller.kubernetes.io/hash": hash},
            "ownerReferences": [owner]
        },
        "spec": {
            "image": "nginx:2",
            "pullSecrets": ["regcred"],
            "podSelector": {
                "matchLabels": {"app": "demo"},
                "matchExpressions": [{"key": "controller-revision-hash", "operator": "NotIn", "values": [r2_name, hash]}]
            },
            "parallelism": 1,
            "pullPolicy": {"timeoutSeconds": 300, "backoffLimit": 1},
            "completionPolicy": {"type": "Always", "ttlSecondsAfterFinished": 600},
            "sandboxConfig": {
                "labels": {"app": "demo", "tier": "web", "controller.kubernetes.io/hash": hash},
                "annotations": {"note": "x"}
            }
        }
    }))
    .unwrap();
    assert_eq!(
        pre_download_of(&cs, vec![r1]),
        PreDownload::Create {
            revision: r2_name,
            jobs: vec![want]
        },
        "one job for the changed container only"
    );
}

#[test]
fn pre_download_reads_parallelism_and_timeout_from_annotations() {
    let cases = [
        (vec![], 1, 300),
        (
            vec![
                (labels::IMAGE_PREDOWNLOAD_PARALLELISM, "3"),
                (labels::IMAGE_PREDOWNLOAD_TIMEOUT_SECONDS, "120"),
            ],
            3,
            120,
        ),
        (
            vec![
                (labels::IMAGE_PREDOWNLOAD_PARALLELISM, "x"),
                (labels::IMAGE_PREDOWNLOAD_TIMEOUT_SECONDS, "1.5"),
            ],
            1,
            300,
        ),
    ];
    for (annotations, parallelism, timeout) in cases {
        let (cs, r1) = predownload_case("nginx:2", json!({}), &annotations);
        let PreDownload::Create { jobs, .. } = pre_download_of(&cs, vec![r1]) else {
            panic!("jobs for {annotations:?}");
        };
        let spec = &jobs[0].spec;
        assert_eq!(
            spec.parallelism,
            Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(parallelism)),
            "{annotations:?}"
        );
        assert_eq!(
            spec.pull_policy.as_ref().and_then(|p| p.timeout_seconds),
            Some(timeout),
            "{annotations:?}"
        );
    }
}

#[test]
fn pre_download_skip_conditions_table() {
    enum Want {
        Create,
        Ignore,
        Nothing,
    }
    type Case<'a> = (&'a str, Value, Vec<(&'a str, &'a str)>, Want);
    let cases: Vec<Case<'_>> = vec![
        ("in place with partition", json!({}), vec![], Want::Create),
        (
            "ReCreate",
            json!({"updateStrategy": {"type": "ReCreate", "partition": 3}}),
            vec![],
            Want::Ignore,
        ),
        (
            "3 replicas or fewer",
            json!({"replicas": 3}),
            vec![],
            Want::Ignore,
        ),
        ("4 replicas", json!({"replicas": 4}), vec![], Want::Create),
        (
            "all pods in one batch",
            json!({"updateStrategy": {"type": "InPlaceIfPossible", "maxUnavailable": "100%"}}),
            vec![],
            Want::Ignore,
        ),
        (
            "99% rounds down: not one batch",
            json!({"updateStrategy": {"type": "InPlaceIfPossible", "maxUnavailable": "99%"}}),
            vec![],
            Want::Create,
        ),
        (
            "no partition, default maxUnavailable",
            json!({"updateStrategy": {"type": "InPlaceIfPossible"}}),
            vec![],
            Want::Create,
        ),
        (
            "min updated ready pods not reached",
            json!({}),
            vec![(labels::IMAGE_PREDOWNLOAD_MIN_UPDATED_READY_PODS, "1")],
            Want::Nothing,
        ),
        (
            "min updated ready 0",
            json!({}),
            vec![(labels::IMAGE_PREDOWNLOAD_MIN_UPDATED_READY_PODS, "0")],
            Want::Create,
        ),
        (
            "min updated ready 20% of 5 rounds up to 1",
            json!({}),
            vec![(labels::IMAGE_PREDOWNLOAD_MIN_UPDATED_READY_PODS, "20%")],
            Want::Nothing,
        ),
    ];
    for (what, spec, annotations, want) in cases {
        let (cs, r1) = predownload_case("nginx:2", spec, &annotations);
        let got = pre_download_of(&cs, vec![r1]);
        match want {
            Want::Create => assert!(matches!(got, PreDownload::Create { .. }), "{what}: {got:?}"),
            Want::Ignore => assert!(matches!(got, PreDownload::Ignore { .. }), "{what}: {got:?}"),
            Want::Nothing => assert_eq!(got, PreDownload::None, "{what}"),
        }
    }
}

#[test]
fn pre_download_ignores_a_change_that_is_not_in_place() {
    let (mut cs, r1) = predownload_case("nginx:2", json!({}), &[]);
    // An env change cannot be done in place.
    cs.spec.template.spec.as_mut().unwrap().containers[0].env = Some(vec![
        serde_json::from_value(json!({"name": "A", "value": "1"})).unwrap(),
    ]);
    let got = pre_download_of(&cs, vec![r1]);
    assert!(matches!(got, PreDownload::Ignore { .. }), "{got:?}");
    // Nor a volumeClaimTemplates change, unless InPlaceOnly.
    for (strategy, created) in [("InPlaceIfPossible", false), ("InPlaceOnly", true)] {
        let (cs, _) = predownload_case(
            "nginx:1",
            json!({"updateStrategy": {"type": strategy, "partition": 3}, "volumeClaimTemplates": vct("1Gi")}),
            &[],
        );
        let r1 = revision_of(&cs, 1, 0);
        let (mut cs, _) = predownload_case(
            "nginx:2",
            json!({"updateStrategy": {"type": strategy, "partition": 3}, "volumeClaimTemplates": vct("2Gi")}),
            &[],
        );
        cs = with_status(cs, &name_of(&r1), 0);
        let got = pre_download_of(&cs, vec![r1]);
        assert_eq!(
            matches!(got, PreDownload::Create { .. }),
            created,
            "{strategy}: {got:?}"
        );
    }
}

#[test]
fn pre_download_waits_for_min_updated_ready_pods_of_this_revision() {
    let (cs, r1) = predownload_case(
        "nginx:2",
        json!({}),
        &[(labels::IMAGE_PREDOWNLOAD_MIN_UPDATED_READY_PODS, "2")],
    );
    let r2_name = name_of(&revision_of(&cs, 2, 0));
    let with_ready = |update_revision: &str, ready: i32| {
        let mut cs = cs.clone();
        let status = cs.status.as_mut().unwrap();
        status.update_revision = Some(update_revision.to_string());
        status.updated_ready_replicas = ready;
        cs
    };
    assert_eq!(
        pre_download_of(&with_ready(&r2_name, 1), vec![r1.clone()]),
        PreDownload::None
    );
    assert!(matches!(
        pre_download_of(&with_ready(&r2_name, 2), vec![r1.clone()]),
        PreDownload::Create { .. }
    ));
    // Ready pods of another update revision do not count.
    assert_eq!(
        pre_download_of(&with_ready("demo-other", 5), vec![r1]),
        PreDownload::None
    );
}

#[test]
fn pre_download_happens_once_per_revision() {
    let (cs, r1) = predownload_case("nginx:2", json!({}), &[]);
    for label in [
        labels::IMAGE_PREDOWNLOAD_CREATED,
        labels::IMAGE_PREDOWNLOAD_IGNORED,
    ] {
        let mut r2 = revision_of(&cs, 2, 0);
        r2.metadata
            .labels
            .as_mut()
            .unwrap()
            .insert(label.into(), "true".into());
        assert_eq!(
            pre_download_of(&cs, vec![r1.clone(), r2]),
            PreDownload::None,
            "{label}"
        );
    }
}

#[test]
fn pre_download_jobs_cover_changed_and_new_containers_only() {
    let old: k8s_openapi::api::core::v1::PodTemplateSpec = serde_json::from_value(json!({
        "spec": {"containers": [{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}]}
    }))
    .unwrap();
    let new: k8s_openapi::api::core::v1::PodTemplateSpec = serde_json::from_value(json!({
        "spec": {"containers": [{"name": "a", "image": "a:2"}, {"name": "b", "image": "b:1"}, {"name": "c", "image": "c:1"}]}
    }))
    .unwrap();
    assert_eq!(
        crate::predownload::changed_images(&old, &new),
        BTreeMap::from([
            ("a".to_string(), "a:2".to_string()),
            ("c".to_string(), "c:1".to_string())
        ])
    );
}

#[test]
fn pre_download_jobs_are_deleted_once_the_revisions_converge() {
    let cs = cloneset("nginx:1", json!({"replicas": 5}));
    let r1 = revision_of(&cs, 1, 0);
    let cs = with_status(cs, &name_of(&r1), 0);
    let mut obs = observed(cs, vec![], vec![r1]);
    assert_eq!(decide(&obs).unwrap().pre_download, PreDownload::None);
    obs.image_pull_jobs = vec!["demo-x-main".into(), "demo-x-side".into()];
    assert_eq!(
        decide(&obs).unwrap().pre_download,
        PreDownload::Delete {
            jobs: vec!["demo-x-main".into(), "demo-x-side".into()]
        }
    );
}
