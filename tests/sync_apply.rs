//! The sync's apply engine against the real API server: render in-memory manifests with
//! `graft_sync::render`, plan them, validate with a server-side dry-run, apply in waves with
//! server-side apply (field manager `graft`), detect and revert drift, and prune.
#![cfg(feature = "cluster-tests")]

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use graft_api::graft::gitsync::InventoryEntry;
use graft_sync::ObjectRef;
use graft_sync::apply::{Action, Applier, ApplyReport, Error as ApplyError};
use graft_sync::plan::{self, ApplyPlan, Owner, PruneDecision};
use graft_sync::render::{self, Directory, SourceFile};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::{Api, Client};
use serde_json::{Value, json};
use support::{TestNamespace, client, eventually, image, install_crds};

const OWNER_LABEL: &str = "graft.dev/gitsync";

fn owner(ns: &str) -> Owner {
    Owner {
        namespace: ns.to_string(),
        name: "apps".to_string(),
    }
}

fn files(list: &[(&str, String)]) -> Vec<SourceFile> {
    list.iter()
        .map(|(path, content)| SourceFile {
            path: path.to_string(),
            content: content.as_bytes().to_vec(),
        })
        .collect()
}

/// Render, discover and plan `files` for the GitSync `apps` of `ns`, objects defaulting to `ns`.
async fn plan_of(applier: &Applier, ns: &str, files: &[SourceFile]) -> ApplyPlan {
    let objects = render::render(&Directory, files).unwrap_or_else(|e| panic!("render: {e}"));
    let scopes = applier
        .discover()
        .await
        .unwrap_or_else(|e| panic!("discover: {e}"));
    plan::plan(&objects, &scopes, &owner(ns), ns).unwrap_or_else(|e| panic!("plan: {e}"))
}

async fn apply(applier: &Applier, plan: &ApplyPlan) -> ApplyReport {
    applier
        .apply(plan)
        .await
        .unwrap_or_else(|e| panic!("apply: {e}"))
}

fn actions(report: &ApplyReport) -> BTreeMap<String, Action> {
    report
        .objects
        .iter()
        .map(|o| (o.reference.to_string(), o.action))
        .collect()
}

fn config_map(name: &str, data: &str) -> String {
    format!(
        "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  value: \"{data}\"\n"
    )
}

fn deployment(name: &str, replicas: u32) -> String {
    format!(
        r#"---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
      - name: app
        image: {image}
        imagePullPolicy: IfNotPresent
"#,
        image = image("app:v1")
    )
}

fn clone_set(name: &str, replicas: &str) -> String {
    format!(
        r#"---
apiVersion: apps.kruise.io/v1alpha1
kind: CloneSet
metadata:
  name: {name}
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
      - name: app
        image: {image}
"#,
        image = image("app:v1")
    )
}

fn clone_set_api(client: &Client, ns: &str) -> Api<DynamicObject> {
    let ar = ApiResource::from_gvk(&GroupVersionKind::gvk(
        "apps.kruise.io",
        "v1alpha1",
        "CloneSet",
    ));
    Api::namespaced_with(client.clone(), ns, &ar)
}

/// Whether `managedFields` has an `Apply` entry of the `graft` manager.
fn applied_by_graft<T: serde::Serialize>(obj: &T) -> bool {
    let v = serde_json::to_value(obj).unwrap_or(Value::Null);
    graft_sync::apply::applied_by(&v, "graft")
}

/// Cluster-scoped objects a test creates outside its TestNamespace, deleted when dropped
/// (also when the test panics).
struct ClusterCleanup {
    namespaces: Vec<String>,
    crds: Vec<String>,
}

impl Drop for ClusterCleanup {
    fn drop(&mut self) {
        let (namespaces, crds) = (self.namespaces.clone(), self.crds.clone());
        let handle = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                let client = client().await;
                let nss: Api<Namespace> = Api::all(client.clone());
                for n in namespaces {
                    let _ = nss.delete(&n, &DeleteParams::background()).await;
                }
                let c: Api<CustomResourceDefinition> = Api::all(client);
                for n in crds {
                    let _ = c.delete(&n, &DeleteParams::background()).await;
                }
            });
        });
        let _ = handle.join();
    }
}

#[tokio::test]
async fn applies_in_waves_then_only_what_changed() {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "sync-apply").await;
    let extra = format!("{}-extra", ns.name);
    let _cleanup = ClusterCleanup {
        namespaces: vec![extra.clone()],
        crds: vec![],
    };
    let applier = Applier::new(client.clone());
    let manifests = |settings: &str| {
        files(&[
            (
                "deploy/namespace.yaml",
                format!(
                    "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {extra}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: in-extra\n  namespace: {extra}\ndata:\n  a: b\n"
                ),
            ),
            ("deploy/config.yaml", config_map("settings", settings)),
            (
                "deploy/workloads.yaml",
                deployment("web", 1) + &clone_set("cs", "1"),
            ),
        ])
    };

    // First apply: everything is created, in waves, labelled and owned by `graft`.
    let p = plan_of(&applier, &ns.name, &manifests("one")).await;
    applier
        .validate(&p)
        .await
        .unwrap_or_else(|e| panic!("validate: {e:?}"));
    let report = apply(&applier, &p).await;
    let expected: BTreeMap<String, Action> = [
        format!("Namespace {extra}"),
        format!("ConfigMap {extra}/in-extra"),
        format!("ConfigMap {}/settings", ns.name),
        format!("Deployment.apps {}/web", ns.name),
        format!("CloneSet.apps.kruise.io {}/cs", ns.name),
    ]
    .into_iter()
    .map(|k| (k, Action::Created))
    .collect();
    assert_eq!(actions(&report), expected, "first apply: {report:?}");
    assert_eq!(report.writes, 5);
    let first_wave: Vec<String> = report.objects[..1]
        .iter()
        .map(|o| o.reference.kind.clone())
        .collect();
    assert_eq!(first_wave, ["Namespace"], "the Namespace goes first");

    let owner_label = owner(&ns.name).label_value();
    let cm: ConfigMap = ns
        .api::<ConfigMap>()
        .get("settings")
        .await
        .unwrap_or_else(|e| panic!("get settings: {e}"));
    assert_eq!(
        cm.metadata
            .labels
            .clone()
            .unwrap_or_default()
            .get(OWNER_LABEL),
        Some(&owner_label)
    );
    assert!(
        applied_by_graft(&cm),
        "settings not applied by graft: {cm:?}"
    );
    let dep: Deployment = ns
        .api::<Deployment>()
        .get("web")
        .await
        .unwrap_or_else(|e| panic!("get web: {e}"));
    assert_eq!(
        dep.metadata
            .labels
            .clone()
            .unwrap_or_default()
            .get(OWNER_LABEL),
        Some(&owner_label)
    );
    assert!(applied_by_graft(&dep));
    let cs = clone_set_api(&client, &ns.name)
        .get("cs")
        .await
        .unwrap_or_else(|e| panic!("get cs: {e}"));
    assert_eq!(
        cs.metadata
            .labels
            .clone()
            .unwrap_or_default()
            .get(OWNER_LABEL),
        Some(&owner_label)
    );
    assert!(applied_by_graft(&cs));
    let nss: Api<Namespace> = Api::all(client.clone());
    let extra_ns = nss
        .get(&extra)
        .await
        .unwrap_or_else(|e| panic!("get {extra}: {e}"));
    assert!(applied_by_graft(&extra_ns));

    // Same commit again: nothing to write (even though controllers updated the Deployment).
    let again = apply(&applier, &p).await;
    assert!(
        again.objects.iter().all(|o| o.action == Action::Unchanged),
        "second apply: {again:?}"
    );
    assert_eq!(again.writes, 0, "no write for an unchanged commit");
    assert_eq!(again.objects.len(), 5);

    // One object changes in Git: only it is written.
    let p2 = plan_of(&applier, &ns.name, &manifests("two")).await;
    applier
        .validate(&p2)
        .await
        .unwrap_or_else(|e| panic!("validate: {e:?}"));
    let third = apply(&applier, &p2).await;
    let changed: Vec<String> = third.changed().map(|o| o.reference.to_string()).collect();
    assert_eq!(changed, [format!("ConfigMap {}/settings", ns.name)]);
    assert_eq!(third.count(Action::Configured), 1);
    assert_eq!(third.writes, 1);
    let cm = ns
        .api::<ConfigMap>()
        .get("settings")
        .await
        .unwrap_or_else(|e| panic!("get settings: {e}"));
    assert_eq!(
        cm.data.unwrap_or_default().get("value").map(String::as_str),
        Some("two")
    );
}

#[tokio::test]
async fn drift_by_another_manager_is_reverted() {
    let client = client().await;
    let ns = TestNamespace::new(&client, "sync-drift").await;
    let applier = Applier::new(client.clone());
    let p = plan_of(
        &applier,
        &ns.name,
        &files(&[
            ("app/web.yaml", deployment("web", 1)),
            ("app/cm.yaml", config_map("settings", "git")),
        ]),
    )
    .await;
    apply(&applier, &p).await;

    // `kubectl edit`-style changes: another field manager, an Update (merge patch).
    let edit = PatchParams {
        field_manager: Some("kubectl-edit".into()),
        ..Default::default()
    };
    ns.api::<Deployment>()
        .patch(
            "web",
            &edit,
            &Patch::Merge(json!({
                "metadata": {"labels": {"debug": "on"}},
                "spec": {"replicas": 3},
            })),
        )
        .await
        .unwrap_or_else(|e| panic!("edit web: {e}"));
    // A field another controller owns (not a kubectl manager) is left alone.
    ns.api::<Deployment>()
        .patch(
            "web",
            &PatchParams {
                field_manager: Some("autoscaler".into()),
                ..Default::default()
            },
            &Patch::Merge(json!({"metadata": {"annotations": {"autoscaler/seen": "yes"}}})),
        )
        .await
        .unwrap_or_else(|e| panic!("annotate web: {e}"));
    ns.api::<ConfigMap>()
        .patch(
            "settings",
            &edit,
            &Patch::Merge(json!({"data": {"value": "edited", "extra": "added"}})),
        )
        .await
        .unwrap_or_else(|e| panic!("edit settings: {e}"));

    let report = apply(&applier, &p).await;
    assert_eq!(
        actions(&report),
        BTreeMap::from([
            (
                format!("ConfigMap {}/settings", ns.name),
                Action::Configured
            ),
            (
                format!("Deployment.apps {}/web", ns.name),
                Action::Configured
            ),
        ]),
        "{report:?}"
    );
    let dep = ns
        .api::<Deployment>()
        .get("web")
        .await
        .unwrap_or_else(|e| panic!("get web: {e}"));
    assert_eq!(
        dep.spec.as_ref().and_then(|s| s.replicas),
        Some(1),
        "replicas reverted"
    );
    assert_eq!(
        dep.metadata.labels.as_ref().and_then(|l| l.get("debug")),
        None,
        "a label graft never set, added by kubectl edit, is removed"
    );
    assert_eq!(
        dep.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("autoscaler/seen"))
            .map(String::as_str),
        Some("yes"),
        "another controller's field stays"
    );
    let managers: Vec<String> = dep
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter_map(|m| m.manager.clone())
        .collect();
    assert!(
        !managers.iter().any(|m| m == "kubectl-edit"),
        "graft took over kubectl-edit's fields: {managers:?}"
    );
    let reverted: Vec<_> = report
        .objects
        .iter()
        .filter(|o| o.reverted == ["kubectl-edit"])
        .map(|o| o.reference.name.as_str())
        .collect();
    assert_eq!(reverted, ["settings", "web"], "{report:?}");
    let cm = ns
        .api::<ConfigMap>()
        .get("settings")
        .await
        .unwrap_or_else(|e| panic!("get settings: {e}"));
    let data = cm.data.unwrap_or_default();
    assert_eq!(
        data.get("value").map(String::as_str),
        Some("git"),
        "data reverted"
    );
    assert_eq!(data.get("extra"), None, "added data key removed");

    // Reverted and owned again: the next interval has nothing to do.
    let next = apply(&applier, &p).await;
    assert_eq!(next.writes, 0, "{next:?}");
}

#[tokio::test]
async fn invalid_objects_are_reported_with_their_file_and_nothing_is_applied() {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "sync-invalid").await;
    let applier = Applier::new(client.clone());
    let p = plan_of(
        &applier,
        &ns.name,
        &files(&[
            ("deploy/good.yaml", config_map("good", "x")),
            (
                "deploy/wrong-type.yaml",
                deployment("web", 1).replace("replicas: 1", "replicas: \"three\""),
            ),
            (
                "deploy/wrong-type-cloneset.yaml",
                clone_set("cs", "\"many\""),
            ),
            (
                "deploy/unknown-field.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: extra}\ndataa: {a: b}\n"
                    .to_string(),
            ),
            (
                "deploy/unknown-version.yaml",
                deployment("old", 1).replace("apps/v1", "apps/v9"),
            ),
        ]),
    )
    .await;

    let errors = applier
        .validate(&p)
        .await
        .expect_err("validate must refuse the commit");
    let by_file: BTreeMap<&str, &str> = errors
        .iter()
        .map(|e| (e.location.file.as_str(), e.reason.as_str()))
        .collect();
    let files: Vec<&str> = by_file.keys().copied().collect();
    assert_eq!(
        files,
        [
            "deploy/unknown-field.yaml",
            "deploy/unknown-version.yaml",
            "deploy/wrong-type-cloneset.yaml",
            "deploy/wrong-type.yaml",
        ],
        "{errors:#?}"
    );
    assert!(
        by_file["deploy/wrong-type.yaml"].contains("replicas"),
        "{errors:#?}"
    );
    assert!(
        by_file["deploy/wrong-type-cloneset.yaml"].contains("replicas"),
        "{errors:#?}"
    );
    assert!(
        by_file["deploy/unknown-field.yaml"].contains("dataa"),
        "{errors:#?}"
    );
    assert!(
        by_file["deploy/unknown-version.yaml"].contains("unknown kind Deployment in apps/v9"),
        "{errors:#?}"
    );
    for e in &errors {
        let shown = e.to_string();
        assert!(
            shown.starts_with(&format!("{}, document 0", e.location.file)),
            "{shown}"
        );
    }

    // Nothing was created by the validation, and an apply of the same plan writes nothing
    // of the refused wave either.
    assert!(
        ns.api::<ConfigMap>()
            .get_opt("good")
            .await
            .ok()
            .flatten()
            .is_none()
    );
    match applier.apply(&p).await {
        Err(ApplyError::Rejected {
            applied, errors, ..
        }) => {
            assert_eq!(applied.writes, 0, "{applied:?}");
            assert!(!errors.is_empty());
        }
        other => panic!("expected the apply to be rejected, got {other:?}"),
    }
    assert!(
        ns.api::<ConfigMap>()
            .get_opt("good")
            .await
            .ok()
            .flatten()
            .is_none()
    );
    assert!(
        ns.api::<Deployment>()
            .get_opt("web")
            .await
            .ok()
            .flatten()
            .is_none()
    );
}

#[tokio::test]
async fn prune_deletes_only_owned_unprotected_objects() {
    let client = client().await;
    let ns = TestNamespace::new(&client, "sync-prune").await;
    let applier = Applier::new(client.clone());
    let protected = config_map("protected", "p").replace(
        "  name: protected\n",
        "  name: protected\n  annotations:\n    graft.dev/prune: disabled\n",
    );
    let first = plan_of(
        &applier,
        &ns.name,
        &files(&[
            ("a.yaml", config_map("kept", "k")),
            ("b.yaml", config_map("gone", "g")),
            ("c.yaml", protected),
            ("d.yaml", deployment("web", 0)),
        ]),
    )
    .await;
    apply(&applier, &first).await;

    // Objects graft did not create, but that an (old or tampered) inventory names: one without
    // the owner label, one with another GitSync's label.
    let cms = ns.api::<ConfigMap>();
    for (name, labels) in [
        ("foreign", json!({})),
        (
            "other-owner",
            json!({OWNER_LABEL: format!("{}.other", ns.name)}),
        ),
    ] {
        cms.patch(
            name,
            &PatchParams::apply("someone-else"),
            &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": name, "labels": labels}, "data": {"x": "y"}})),
        )
        .await
        .unwrap_or_else(|e| panic!("create {name}: {e}"));
    }
    let mut inventory = first.inventory();
    for name in ["foreign", "other-owner", "never-existed"] {
        inventory.push(InventoryEntry {
            group: String::new(),
            version: "v1".into(),
            kind: "ConfigMap".into(),
            namespace: Some(ns.name.clone()),
            name: name.into(),
        });
    }

    // The next commit keeps only `kept`.
    let second = plan_of(
        &applier,
        &ns.name,
        &files(&[("a.yaml", config_map("kept", "k"))]),
    )
    .await;
    let live = applier
        .live_meta(&inventory)
        .await
        .unwrap_or_else(|e| panic!("live meta: {e}"));
    let prune = plan::prune_set(
        &inventory,
        second.objects().map(|o| &o.reference),
        &live,
        &owner(&ns.name),
    );
    let to_delete: Vec<String> = prune
        .delete
        .iter()
        .flatten()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        to_delete,
        [
            format!("Deployment.apps {}/web", ns.name),
            format!("ConfigMap {}/gone", ns.name),
        ],
        "workloads first: {prune:?}"
    );
    let kept: BTreeMap<String, PruneDecision> = prune
        .kept
        .iter()
        .map(|(r, d)| (r.name.clone(), d.clone()))
        .collect();
    assert_eq!(kept["protected"], PruneDecision::Disabled);
    assert_eq!(kept["foreign"], PruneDecision::NotOwned { owner: None });
    assert_eq!(
        kept["other-owner"],
        PruneDecision::NotOwned {
            owner: Some(format!("{}.other", ns.name))
        }
    );
    assert_eq!(kept["never-existed"], PruneDecision::Gone);

    let report = applier.prune(&prune).await;
    assert!(report.failed.is_empty(), "{report:?}");
    assert_eq!(report.deleted.len(), 2, "{report:?}");
    eventually(
        "the pruned objects to disappear",
        Duration::from_secs(30),
        || async {
            let cm = cms.get_opt("gone").await.map_err(|e| e.to_string())?;
            let dep = ns
                .api::<Deployment>()
                .get_opt("web")
                .await
                .map_err(|e| e.to_string())?;
            match (cm, dep) {
                (None, None) => Ok(()),
                (cm, dep) => Err(format!(
                    "still there: configmap {:?}, deployment {:?}",
                    cm.is_some(),
                    dep.is_some()
                )),
            }
        },
    )
    .await;
    for name in ["kept", "protected", "foreign", "other-owner"] {
        assert!(
            cms.get_opt(name).await.ok().flatten().is_some(),
            "{name} must survive the prune"
        );
    }

    // Pruning again tolerates what is already gone.
    let again = applier.prune(&prune).await;
    assert!(
        again.failed.is_empty() && again.deleted.is_empty(),
        "{again:?}"
    );
    assert_eq!(again.gone.len(), 2);
    let missing = ObjectRef {
        group: "apps".into(),
        version: "v1".into(),
        kind: "Deployment".into(),
        namespace: Some(ns.name.clone()),
        name: "never".into(),
    };
    let gone = applier
        .prune(&plan::PrunePlan {
            delete: vec![vec![missing.clone()]],
            kept: vec![],
        })
        .await;
    assert_eq!(gone.gone, [missing]);
}

#[tokio::test]
async fn a_crd_and_its_objects_in_one_commit() {
    let client = client().await;
    let ns = TestNamespace::new(&client, "sync-crd").await;
    let group = format!("{}.test.graft.dev", ns.name);
    let crd_name = format!("widgets.{group}");
    let _cleanup = ClusterCleanup {
        namespaces: vec![],
        crds: vec![crd_name.clone()],
    };
    let crd = format!(
        r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: {crd_name}
spec:
  group: {group}
  scope: Namespaced
  names: {{plural: widgets, singular: widget, kind: Widget, listKind: WidgetList}}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {{type: integer}}
"#
    );
    let widget = |size: &str| {
        format!(
            "apiVersion: {group}/v1\nkind: Widget\nmetadata:\n  name: w\nspec:\n  size: {size}\n"
        )
    };
    let applier = Applier::new(client.clone());
    let p = plan_of(
        &applier,
        &ns.name,
        &files(&[("crd.yaml", crd.clone()), ("widget.yaml", widget("3"))]),
    )
    .await;
    // The Widget cannot be checked before its CRD exists: validation checks the CRD only.
    applier
        .validate(&p)
        .await
        .unwrap_or_else(|e| panic!("validate: {e:?}"));
    let report = apply(&applier, &p).await;
    assert_eq!(report.count(Action::Created), 2, "{report:?}");
    let ar = ApiResource::from_gvk(&GroupVersionKind::gvk(&group, "v1", "Widget"));
    let widgets: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns.name, &ar);
    let w = widgets
        .get("w")
        .await
        .unwrap_or_else(|e| panic!("get widget: {e}"));
    assert_eq!(w.data["spec"]["size"], json!(3));

    // Now that the CRD is served, a wrong type in a Widget is caught by validation.
    let bad = plan_of(
        &applier,
        &ns.name,
        &files(&[("crd.yaml", crd), ("widget.yaml", widget("\"big\""))]),
    )
    .await;
    let errors = applier
        .validate(&bad)
        .await
        .expect_err("a string size is refused");
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0].location.file, "widget.yaml");
}
