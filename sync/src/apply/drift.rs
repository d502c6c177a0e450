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
