//! Table tests of apply ordering, labelling, inventory and prune.

use std::collections::BTreeMap;

use pretty_assertions::assert_eq;
use serde_json::json;

use super::*;
use crate::render::{Directory, Renderer, SourceFile};

fn owner() -> Owner {
    Owner {
        namespace: "team".into(),
        name: "apps".into(),
    }
}

fn render(yaml: &str) -> Vec<RenderedObject> {
    Directory
        .render(&[SourceFile {
            path: "deploy/all.yaml".into(),
            content: yaml.as_bytes().to_vec(),
        }])
        .unwrap()
}

fn obj(api_version: &str, kind: &str, ns: Option<&str>, name: &str) -> String {
    let ns = ns.map(|n| format!(", namespace: {n}")).unwrap_or_default();
    format!("---\napiVersion: {api_version}\nkind: {kind}\nmetadata: {{name: {name}{ns}}}\n")
}

fn waves(p: &ApplyPlan) -> Vec<(Stage, Vec<String>)> {
    p.waves
        .iter()
        .map(|w| {
            (
                w.stage,
                w.objects.iter().map(|o| o.reference.to_string()).collect(),
            )
        })
        .collect()
}

#[test]
fn apply_waves_follow_the_stage_order() {
    let yaml = [
        obj("apps.kruise.io/v1alpha1", "CloneSet", Some("demo"), "web"),
        obj("apps/v1", "Deployment", Some("demo"), "api"),
        obj("apps.kruise.io/v1beta1", "StatefulSet", Some("demo"), "db"),
        obj("apps.kruise.io/v1alpha1", "ImagePullJob", Some("demo"), "pull-web"),
        obj("apps.kruise.io/v1alpha1", "SidecarSet", None, "log-agent"),
        obj("v1", "ConfigMap", Some("demo"), "cfg"),
        obj("v1", "Service", None, "web"),
        obj("rbac.authorization.k8s.io/v1", "ClusterRole", None, "reader"),
        obj("v1", "Namespace", None, "demo"),
        "---\napiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: widgets.example.com}\nspec: {group: example.com, scope: Namespaced, names: {kind: Widget, plural: widgets}}\n".into(),
        obj("example.com/v1", "Widget", Some("demo"), "w1"),
        obj("batch/v1", "Job", Some("demo"), "migrate"),
    ]
    .concat();
    let p = plan(&render(&yaml), &KindScopes::builtin(), &owner(), "default").unwrap();
    assert_eq!(
        waves(&p),
        vec![
            (
                Stage::Definitions,
                vec![
                    "CustomResourceDefinition.apiextensions.k8s.io widgets.example.com".into(),
                    "Namespace demo".into()
                ]
            ),
            (
                Stage::ClusterScoped,
                vec!["ClusterRole.rbac.authorization.k8s.io reader".into()]
            ),
            (
                Stage::Namespaced,
                vec![
                    "ConfigMap demo/cfg".into(),
                    "Service default/web".into(),
                    "Widget.example.com demo/w1".into()
                ]
            ),
            (
                Stage::ImagePull,
                vec!["ImagePullJob.apps.kruise.io demo/pull-web".into()]
            ),
            (
                Stage::Sidecars,
                vec!["SidecarSet.apps.kruise.io log-agent".into()]
            ),
            (
                Stage::Workloads,
                vec![
                    "CloneSet.apps.kruise.io demo/web".into(),
                    "Deployment.apps demo/api".into(),
                    "Job.batch demo/migrate".into(),
                    "StatefulSet.apps.kruise.io demo/db".into()
                ]
            ),
        ]
    );
    // Every object carries the owner label and its namespace as applied.
    for o in p.objects() {
        assert_eq!(
            o.object["metadata"]["labels"]["graft.dev/gitsync"],
            json!("team.apps")
        );
        assert_eq!(
            o.object["metadata"]
                .get("namespace")
                .and_then(|v| v.as_str()),
            o.reference.namespace.as_deref()
        );
    }
    let inv = p.inventory();
    assert_eq!(inv.len(), 12);
    assert!(inv.windows(2).all(|w| w[0] <= w[1]));
    assert!(inv.contains(&InventoryEntry {
        group: "apps.kruise.io".into(),
        version: "v1alpha1".into(),
        kind: "CloneSet".into(),
        namespace: Some("demo".into()),
        name: "web".into()
    }));
}

#[test]
fn namespaces_are_defaulted_or_removed_and_labels_kept() {
    let yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  labels: {app: x, graft.dev/gitsync: someone-else}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: ns1, namespace: ignored}\n";
    let p = plan(&render(yaml), &KindScopes::builtin(), &owner(), "apps").unwrap();
    let objs: Vec<&PlannedObject> = p.objects().collect();
    assert_eq!(
        objs[0].object["metadata"],
        json!({"name": "ns1", "labels": {"graft.dev/gitsync": "team.apps"}})
    );
    assert_eq!(
        objs[1].object["metadata"],
        json!({"name": "a", "namespace": "apps", "labels": {"app": "x", "graft.dev/gitsync": "team.apps"}})
    );
}

#[test]
fn unknown_kinds_and_duplicates_after_defaulting_are_all_reported() {
    let yaml = [
        obj("example.com/v1", "Gadget", Some("demo"), "g"),
        obj("v1", "ConfigMap", None, "a"),
        obj("v1", "ConfigMap", Some("default"), "a"),
        obj("example.com/v1", "Gizmo", None, "z"),
    ]
    .concat();
    let e = plan(&render(&yaml), &KindScopes::builtin(), &owner(), "default").unwrap_err();
    let Error::Render(errs) = e else {
        panic!("{e:?}")
    };
    let shown: Vec<String> = errs.0.iter().map(ToString::to_string).collect();
    assert_eq!(shown.len(), 3, "{shown:#?}");
    assert!(
        shown[0].starts_with(
            "deploy/all.yaml, document 0, line 2: unknown kind Gadget in example.com/v1"
        ),
        "{}",
        shown[0]
    );
    assert_eq!(
        shown[1],
        "deploy/all.yaml, document 2, line 10: ConfigMap default/a is defined twice: also in deploy/all.yaml, document 1, line 6"
    );
    assert!(shown[2].contains("unknown kind Gizmo"), "{}", shown[2]);
}

#[test]
fn owner_label_values_fit_labels() {
    assert_eq!(owner().label_value(), "team.apps");
    let long = Owner {
        namespace: "n".repeat(40),
        name: "m".repeat(40),
    };
    let v = long.label_value();
    assert!(v.len() <= 63, "{v}");
    let other = Owner {
        namespace: "n".repeat(40),
        name: "m".repeat(41),
    };
    assert_ne!(v, other.label_value());
    assert_eq!(v, long.label_value());
}

fn entry(group: &str, version: &str, kind: &str, ns: Option<&str>, name: &str) -> InventoryEntry {
    InventoryEntry {
        group: group.into(),
        version: version.into(),
        kind: kind.into(),
        namespace: ns.map(Into::into),
        name: name.into(),
    }
}

fn live(owner_label: Option<&str>, annotations: &[(&str, &str)]) -> LiveMeta {
    LiveMeta {
        labels: owner_label
            .map(|o| BTreeMap::from([("graft.dev/gitsync".to_string(), o.to_string())]))
            .unwrap_or_default(),
        annotations: annotations
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

#[test]
fn prune_deletes_only_what_this_gitsync_created_in_reverse_order() {
    let old = vec![
        entry("", "v1", "Namespace", None, "demo"),
        entry(
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
            None,
            "widgets.example.com",
        ),
        entry(
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRole",
            None,
            "reader",
        ),
        entry("", "v1", "ConfigMap", Some("demo"), "removed"),
        entry("", "v1", "ConfigMap", Some("demo"), "kept-in-git"),
        entry(
            "apps",
            "v1beta1",
            "Deployment",
            Some("demo"),
            "moved-version",
        ),
        entry(
            "apps.kruise.io",
            "v1alpha1",
            "CloneSet",
            Some("demo"),
            "web",
        ),
        entry("", "v1", "Secret", Some("demo"), "adopted"),
        entry("", "v1", "Secret", Some("demo"), "protected"),
        entry("", "v1", "Secret", Some("demo"), "already-gone"),
        entry("", "v1", "Secret", Some("demo"), "unlabelled"),
    ];
    let new = [
        ObjectRef {
            group: "".into(),
            version: "v1".into(),
            kind: "ConfigMap".into(),
            namespace: Some("demo".into()),
            name: "kept-in-git".into(),
        },
        ObjectRef {
            group: "apps".into(),
            version: "v1".into(),
            kind: "Deployment".into(),
            namespace: Some("demo".into()),
            name: "moved-version".into(),
        },
    ];
    let mine = Some("team.apps");
    let mut lives = BTreeMap::new();
    for e in &old {
        let r = ObjectRef::from(e);
        let meta = match r.name.as_str() {
            "adopted" => live(Some("other.sync"), &[]),
            "protected" => live(mine, &[(PRUNE_ANNOTATION, "disabled")]),
            "unlabelled" => live(None, &[]),
            "already-gone" => continue,
            _ => live(mine, &[]),
        };
        lives.insert(r.id(), meta);
    }
    let p = prune_set(&old, new.iter(), &lives, &owner());
    let shown: Vec<Vec<String>> = p
        .delete
        .iter()
        .map(|w| w.iter().map(ToString::to_string).collect())
        .collect();
    assert_eq!(
        shown,
        vec![
            vec!["CloneSet.apps.kruise.io demo/web".to_string()],
            vec!["ConfigMap demo/removed".to_string()],
            vec!["ClusterRole.rbac.authorization.k8s.io reader".to_string()],
            vec![
                "Namespace demo".to_string(),
                "CustomResourceDefinition.apiextensions.k8s.io widgets.example.com".to_string()
            ],
        ]
    );
    let kept: Vec<(String, PruneDecision)> = p
        .kept
        .iter()
        .map(|(r, d)| (r.name.clone(), d.clone()))
        .collect();
    assert_eq!(
        kept,
        vec![
            (
                "adopted".into(),
                PruneDecision::NotOwned {
                    owner: Some("other.sync".into())
                }
            ),
            ("protected".into(), PruneDecision::Disabled),
            ("already-gone".into(), PruneDecision::Gone),
            ("unlabelled".into(), PruneDecision::NotOwned { owner: None }),
        ]
    );
    assert!(prune_set(&old[..0], new.iter(), &lives, &owner()).is_empty());
}

#[test]
fn live_meta_reads_labels_and_annotations() {
    let m = LiveMeta::from_object(
        &json!({"metadata": {"labels": {"a": "1", "n": 2}, "annotations": {"graft.dev/prune": "disabled"}}}),
    );
    assert_eq!(
        m.labels,
        BTreeMap::from([("a".to_string(), "1".to_string())])
    );
    assert_eq!(
        prune::decide(Some(&m), &owner()),
        PruneDecision::NotOwned { owner: None }
    );
    assert_eq!(LiveMeta::from_object(&json!({})), LiveMeta::default());
}

#[test]
fn sync_waves_order_the_stages_and_default_to_zero() {
    let yaml = "---
apiVersion: apps.kruise.io/v1beta1
kind: BroadcastJob
metadata: {name: node-check, namespace: demo, annotations: {graft.dev/sync-wave: \"1\"}}
spec: {template: {spec: {restartPolicy: Never, containers: [{name: c, image: busybox}]}}}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: late, namespace: demo, annotations: {argocd.argoproj.io/sync-wave: \"1\"}}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: early, namespace: demo, annotations: {argocd.argoproj.io/sync-wave: \"-1\"}}
---
apiVersion: apps.kruise.io/v1alpha1
kind: CloneSet
metadata: {name: web, namespace: demo}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: both, namespace: demo, annotations: {graft.dev/sync-wave: \"0\", argocd.argoproj.io/sync-wave: \"5\"}}
";
    let p = plan(&render(yaml), &KindScopes::builtin(), &owner(), "default").unwrap();
    let got: Vec<(i64, Stage, Vec<String>)> = p
        .waves
        .iter()
        .map(|w| {
            (
                w.sync_wave,
                w.stage,
                w.objects.iter().map(|o| o.reference.to_string()).collect(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (-1, Stage::Namespaced, vec!["ConfigMap demo/early".into()]),
            (0, Stage::Namespaced, vec!["ConfigMap demo/both".into()]),
            (
                0,
                Stage::Workloads,
                vec!["CloneSet.apps.kruise.io demo/web".into()]
            ),
            (1, Stage::Namespaced, vec!["ConfigMap demo/late".into()]),
            (
                1,
                Stage::Workloads,
                vec!["BroadcastJob.apps.kruise.io demo/node-check".into()]
            ),
        ]
    );
    assert_eq!(p.sync_waves(), vec![-1, 0, 1]);
    assert_eq!(p.sync_wave(1).objects().count(), 2);
}

#[test]
fn a_sync_wave_that_is_not_an_integer_names_the_file() {
    let yaml = "---
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg, namespace: demo, annotations: {graft.dev/sync-wave: soon}}
";
    let err = plan(&render(yaml), &KindScopes::builtin(), &owner(), "default")
        .unwrap_err()
        .to_string();
    assert!(err.contains("deploy/all.yaml"), "{err}");
    assert!(
        err.contains("annotation graft.dev/sync-wave: \"soon\" is not an integer"),
        "{err}"
    );
}

#[test]
fn jobs_carry_the_hash_of_their_spec_unless_opted_out() {
    let job = |spec: &str, extra: &str| {
        format!(
            "---\napiVersion: batch/v1\nkind: Job\nmetadata: {{name: migrate, namespace: demo{extra}}}\nspec: {spec}\n"
        )
    };
    let hash = |yaml: &str| {
        let p = plan(&render(yaml), &KindScopes::builtin(), &owner(), "default").unwrap();
        p.objects().next().unwrap().spec_hash().map(str::to_string)
    };
    let a = hash(&job(
        "{backoffLimit: 1, template: {spec: {restartPolicy: Never}}}",
        "",
    ));
    let same = hash(&job(
        "{template: {spec: {restartPolicy: Never}}, backoffLimit: 1}",
        "",
    ));
    let changed = hash(&job(
        "{backoffLimit: 2, template: {spec: {restartPolicy: Never}}}",
        "",
    ));
    assert!(a.is_some());
    assert_eq!(a, same, "key order does not change the hash");
    assert_ne!(a, changed);
    let opted_out = hash(&job(
        "{backoffLimit: 1}",
        ", annotations: {graft.dev/replace-on-change: \"false\"}",
    ));
    assert_eq!(opted_out, None);
    let cm = "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: demo}\n";
    assert_eq!(hash(cm), None, "only jobs are replaced on change");
}
