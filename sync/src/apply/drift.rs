//! The drift check: does a server-side dry-run apply of the desired object change the live
//! object? Pure, so it is tested without a cluster.
//!
//! The dry-run result is what the object would be after the apply (defaults, admission and the
//! other managers' fields included), so comparing it with the live object sees a change in
//! Git and an edit by someone else alike, with no client-side defaulting.

use serde_json::Value;

/// Fields that change on every write or are written by controllers, never by the sync.
const IGNORED_METADATA: &[&str] = &["managedFields", "resourceVersion", "generation"];

/// `obj` without the fields the comparison ignores: `status`, `metadata.managedFields`,
/// `metadata.resourceVersion` and `metadata.generation`.
pub fn comparable(obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(map) = o.as_object_mut() {
        map.remove("status");
        if let Some(meta) = map.get_mut("metadata").and_then(Value::as_object_mut) {
            for f in IGNORED_METADATA {
                meta.remove(*f);
            }
        }
    }
    o
}

/// Whether applying would change the live object: the dry-run result differs from it, or
/// `manager` has not applied it yet (an object created by someone else is adopted by one
/// apply, so that the fields of the commit become owned and later edits are seen as drift).
pub fn needs_apply(dry_run: &Value, live: &Value, manager: &str) -> bool {
    comparable(dry_run) != comparable(live) || !applied_by(live, manager)
}

/// Whether `manager` has an `Apply` entry in the object's `metadata.managedFields`.
pub fn applied_by(obj: &Value, manager: &str) -> bool {
    obj.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .is_some_and(|entries| {
            entries.iter().any(|e| {
                e.get("manager").and_then(Value::as_str) == Some(manager)
                    && e.get("operation").and_then(Value::as_str) == Some("Apply")
            })
        })
}

/// Field managers whose changes the sync reverts by default, as Flux does: `kubectl edit`,
/// `patch`, `label`, `scale`, client-side `apply` (all `kubectl` or `kubectl-*`) and
/// `before-first-apply` (the server's name for fields set before managed fields existed).
/// Controllers (the HPA, the kube-controller-manager) are left alone.
pub fn is_override_manager(manager: &str, extra: &[String]) -> bool {
    manager == "kubectl"
        || manager.starts_with("kubectl-")
        || manager == "before-first-apply"
        || extra.iter().any(|m| m == manager)
}

/// The managers of `obj` (other than `manager`) whose changes to the object itself (not its
/// `status` or other subresources) the sync takes over and reverts: [`is_override_manager`].
pub fn foreign_editors(obj: &Value, manager: &str, extra: &[String]) -> Vec<String> {
    let mut editors: Vec<String> = managed_fields(obj)
        .filter(|e| is_main_resource(e))
        .filter_map(|e| e.get("manager").and_then(Value::as_str))
        .filter(|m| *m != manager && is_override_manager(m, extra))
        .map(str::to_string)
        .collect();
    editors.sort();
    editors.dedup();
    editors
}

/// The `metadata.managedFields` of `obj` with every field owned by `editors` moved into
/// `manager`'s `Apply` entry (created when missing) and the editors' entries removed. Written
/// back before the apply, it makes graft the only owner of what they changed, so the apply
/// removes the fields the commit does not set and restores the ones it does.
pub fn take_over(obj: &Value, manager: &str, editors: &[String]) -> Value {
    let entries: Vec<Value> = managed_fields(obj).cloned().collect();
    let is_editor = |e: &Value| {
        is_main_resource(e)
            && e.get("manager")
                .and_then(Value::as_str)
                .is_some_and(|m| editors.iter().any(|x| x == m))
    };
    let mut taken = Value::Object(Default::default());
    for e in entries.iter().filter(|e| is_editor(e)) {
        if let Some(fields) = e.get("fieldsV1") {
            merge_fields(&mut taken, fields);
        }
    }
    let mut out: Vec<Value> = entries.into_iter().filter(|e| !is_editor(e)).collect();
    let ours = out.iter_mut().find(|e| {
        e.get("manager").and_then(Value::as_str) == Some(manager)
            && e.get("operation").and_then(Value::as_str) == Some("Apply")
            && is_main_resource(e)
    });
    match ours {
        Some(e) => merge_fields(
            e.as_object_mut()
                .expect("a managedFields entry is an object")
                .entry("fieldsV1")
                .or_insert_with(|| Value::Object(Default::default())),
            &taken,
        ),
        None => out.push(serde_json::json!({
            "manager": manager,
            "operation": "Apply",
            "apiVersion": obj.get("apiVersion").cloned().unwrap_or(Value::Null),
            "fieldsType": "FieldsV1",
            "fieldsV1": taken,
        })),
    }
    Value::Array(out)
}

fn managed_fields(obj: &Value) -> impl Iterator<Item = &Value> {
    obj.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

fn is_main_resource(entry: &Value) -> bool {
    entry
        .get("subresource")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
}

/// Union of two `fieldsV1` trees (sets of field paths written as nested objects).
fn merge_fields(into: &mut Value, from: &Value) {
    let (Some(into), Some(from)) = (into.as_object_mut(), from.as_object()) else {
        return;
    };
    for (k, v) in from {
        match into.get_mut(k) {
            Some(existing) => merge_fields(existing, v),
            None => {
                into.insert(k.clone(), v.clone());
            }
        }
    }
}

/// Whether a CustomResourceDefinition has the condition `Established=True`.
pub fn established(crd: &Value) -> bool {
    crd.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                c.get("type").and_then(Value::as_str) == Some("Established")
                    && c.get("status").and_then(Value::as_str) == Some("True")
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn live(replicas: i64, managers: &[(&str, &str)]) -> Value {
        let mf: Vec<Value> = managers
            .iter()
            .map(|(m, op)| json!({"manager": m, "operation": op, "time": "2025-01-01T00:00:00Z"}))
            .collect();
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "demo", "resourceVersion": "7", "generation": 2,
                         "uid": "u1", "labels": {"graft.dev/gitsync": "team.apps"}, "managedFields": mf},
            "spec": {"replicas": replicas},
            "status": {"replicas": 1, "observedGeneration": 2}
        })
    }

    #[test]
    fn same_object_with_other_bookkeeping_needs_no_apply() {
        let l = live(
            1,
            &[("graft", "Apply"), ("kube-controller-manager", "Update")],
        );
        let mut dry = l.clone();
        dry["metadata"]["resourceVersion"] = json!("8");
        dry["metadata"]["generation"] = json!(3);
        dry["metadata"]["managedFields"][0]["time"] = json!("2025-02-02T00:00:00Z");
        dry["status"] = json!({"replicas": 0});
        assert!(!needs_apply(&dry, &l, "graft"));
    }

    #[test]
    fn a_changed_field_needs_apply() {
        let l = live(5, &[("graft", "Apply"), ("kubectl-edit", "Update")]);
        let mut dry = l.clone();
        dry["spec"]["replicas"] = json!(1);
        assert!(needs_apply(&dry, &l, "graft"));
    }

    #[test]
    fn an_object_graft_never_applied_is_adopted() {
        let l = live(1, &[("kubectl-create", "Update")]);
        assert!(needs_apply(&l, &l, "graft"));
        // an Update by a manager of the same name is not an apply
        let l = live(1, &[("graft", "Update")]);
        assert!(needs_apply(&l, &l, "graft"));
    }

    fn edited(entries: Value) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "web", "managedFields": entries}})
    }

    #[test]
    fn kubectl_edits_are_foreign_but_controllers_and_status_are_not() {
        let obj = edited(json!([
            {"manager": "graft", "operation": "Apply", "fieldsV1": {"f:spec": {"f:replicas": {}}}},
            {"manager": "kubectl-edit", "operation": "Update", "fieldsV1": {"f:metadata": {"f:labels": {"f:x": {}}}}},
            {"manager": "kubectl-client-side-apply", "operation": "Update", "fieldsV1": {}},
            {"manager": "kubectl", "operation": "Update", "subresource": "scale", "fieldsV1": {}},
            {"manager": "kube-controller-manager", "operation": "Update", "subresource": "status", "fieldsV1": {}},
            {"manager": "hpa", "operation": "Update", "fieldsV1": {"f:spec": {"f:replicas": {}}}},
        ]));
        assert_eq!(
            foreign_editors(&obj, "graft", &[]),
            vec!["kubectl-client-side-apply", "kubectl-edit"]
        );
        assert_eq!(
            foreign_editors(&obj, "graft", &["hpa".to_string()]),
            vec!["hpa", "kubectl-client-side-apply", "kubectl-edit"]
        );
        assert!(foreign_editors(&edited(json!([])), "graft", &[]).is_empty());
    }

    #[test]
    fn take_over_moves_the_editors_fields_into_our_apply_entry() {
        let obj = edited(json!([
            {"manager": "graft", "operation": "Apply", "apiVersion": "apps/v1",
             "fieldsV1": {"f:metadata": {"f:labels": {"f:app": {}}}, "f:spec": {"f:replicas": {}}}},
            {"manager": "kubectl-edit", "operation": "Update",
             "fieldsV1": {"f:metadata": {"f:labels": {"f:debug": {}}}, "f:spec": {"f:paused": {}}}},
            {"manager": "kube-controller-manager", "operation": "Update", "subresource": "status",
             "fieldsV1": {"f:status": {}}},
        ]));
        let fields = take_over(&obj, "graft", &["kubectl-edit".to_string()]);
        assert_eq!(
            fields,
            json!([
                {"manager": "graft", "operation": "Apply", "apiVersion": "apps/v1",
                 "fieldsV1": {"f:metadata": {"f:labels": {"f:app": {}, "f:debug": {}}},
                              "f:spec": {"f:replicas": {}, "f:paused": {}}}},
                {"manager": "kube-controller-manager", "operation": "Update", "subresource": "status",
                 "fieldsV1": {"f:status": {}}},
            ])
        );
    }

    #[test]
    fn take_over_creates_our_entry_when_we_have_none() {
        let obj = edited(json!([
            {"manager": "before-first-apply", "operation": "Update",
             "fieldsV1": {"f:data": {"f:a": {}}}},
        ]));
        let fields = take_over(&obj, "graft", &["before-first-apply".to_string()]);
        assert_eq!(
            fields,
            json!([{"manager": "graft", "operation": "Apply", "apiVersion": "apps/v1",
                    "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:a": {}}}}])
        );
    }

    #[test]
    fn established_reads_the_condition() {
        let crd = |status: &str| {
            json!({"status": {"conditions": [
                {"type": "NamesAccepted", "status": "True"},
                {"type": "Established", "status": status}]}})
        };
        assert!(established(&crd("True")));
        assert!(!established(&crd("False")));
        assert!(!established(&json!({"metadata": {"name": "x"}})));
    }
}
