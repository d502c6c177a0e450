//! Table tests of the Advanced StatefulSet conversion (kruise's `ConvertTo` / `ConvertFrom` in
//! `apis/apps/v1alpha1/statefulset_conversion.go`) plus round trips. Every row runs through both
//! the typed functions and the JSON [`convert`], which must agree.

use super::*;
use pretty_assertions::assert_eq;
use serde_json::json;

/// Metadata with every field a stored object carries.
fn metadata() -> Value {
    json!({
        "name": "db",
        "namespace": "prod",
        "uid": "0b6c5b8e-4b0e-4a36-9d37-2a3c3f7f0a11",
        "resourceVersion": "4711",
        "generation": 3,
        "creationTimestamp": "2026-01-02T03:04:05Z",
        "labels": {"app": "db"},
        "annotations": {"note": "x"},
        "finalizers": ["example.com/keep"],
        "managedFields": [{"manager": "kubectl", "operation": "Apply", "apiVersion": "apps.kruise.io/v1beta1",
            "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {}}, "time": "2026-01-02T03:04:05Z"}]
    })
}

/// Every spec field both versions share, each set.
fn shared_spec() -> Value {
    json!({
        "replicas": 5,
        "selector": {"matchLabels": {"app": "db"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a"]}]},
        "template": {
            "metadata": {"labels": {"app": "db", "tier": "a"}, "annotations": {"a": "b"}},
            "spec": {
                "readinessGates": [{"conditionType": "InPlaceUpdateReady"}],
                "containers": [{"name": "db", "image": "redis:7", "ports": [{"containerPort": 6379}],
                    "volumeMounts": [{"name": "data", "mountPath": "/data"}]}]
            }
        },
        "volumeClaimTemplates": [{"metadata": {"name": "data"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}],
        "serviceName": "db",
        "podManagementPolicy": "Parallel",
        "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {
            "partition": 2, "maxUnavailable": "50%", "podUpdatePolicy": "InPlaceIfPossible", "paused": true,
            "unorderedUpdate": {"priorityStrategy": {"weightPriority": [{"weight": 50, "matchSelector": {"matchLabels": {"a": "b"}}}]}},
            "inPlaceUpdateStrategy": {"gracePeriodSeconds": 10},
            "minReadySeconds": 30
        }},
        "revisionHistoryLimit": 4
    })
}

/// The v1beta1-only spec fields, each set.
fn v1beta1_only_spec() -> Value {
    json!({
        "reserveOrdinals": [1, "3-5"],
        "lifecycle": {"preDelete": {"finalizersHandler": ["example.com/hook"], "markPodNotReady": true}},
        "scaleStrategy": {"maxUnavailable": 2},
        "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Delete", "whenScaled": "Retain"},
        "ordinals": {"start": 1},
        "volumeClaimUpdateStrategy": {"type": "OnPodRollingUpdate"}
    })
}

fn shared_status() -> Value {
    json!({
        "observedGeneration": 3, "replicas": 5, "readyReplicas": 4, "availableReplicas": 3,
        "currentReplicas": 2, "updatedReplicas": 3,
        "currentRevision": "db-1", "updateRevision": "db-2", "collisionCount": 1,
        "conditions": [{"type": "FailedCreatePod", "status": "True", "reason": "Quota",
            "message": "exceeded", "lastTransitionTime": "2026-01-02T03:04:05Z"}],
        "labelSelector": "app=db,tier in (a)"
    })
}

fn v1beta1_only_status() -> Value {
    json!({
        "updatedReadyReplicas": 2, "updatedAvailableReplicas": 1,
        "volumeClaims": [{"volumeClaimName": "data", "compatibleReplicas": 3, "compatibleReadyReplicas": 2}]
    })
}

fn merged(a: Value, b: &Value) -> Value {
    let mut a = a;
    for (k, v) in b.as_object().unwrap() {
        a[k] = v.clone();
    }
    a
}

fn object(api_version: &str, spec: Value, status: Option<Value>) -> Value {
    let mut o = json!({"apiVersion": api_version, "kind": "StatefulSet", "metadata": metadata(), "spec": spec});
    if let Some(s) = status {
        o["status"] = s;
    }
    o
}

fn typed_to_v1beta1(v: &Value) -> Value {
    let a: alpha::StatefulSet = serde_json::from_value(v.clone()).unwrap();
    serde_json::to_value(to_v1beta1(a)).unwrap()
}

fn typed_to_v1alpha1(v: &Value) -> Value {
    let b: beta::StatefulSet = serde_json::from_value(v.clone()).unwrap();
    serde_json::to_value(to_v1alpha1(b)).unwrap()
}

/// The typed v1beta1 status writes the v1beta1 counters even when they are 0 (kruise's Go type
/// does the same for its non-omitempty counters); the JSON conversion leaves them out.
fn without_zero_beta_counters(mut v: Value) -> Value {
    if let Some(s) = v.get_mut("status").and_then(Value::as_object_mut) {
        for f in ["updatedReadyReplicas", "updatedAvailableReplicas"] {
            if s.get(f) == Some(&json!(0)) {
                s.remove(f);
            }
        }
    }
    v
}

#[test]
fn v1alpha1_to_v1beta1_carries_everything_and_back_is_the_identity() {
    let rows: Vec<(&str, Value)> = vec![
        (
            "every field",
            object(V1ALPHA1, shared_spec(), Some(shared_status())),
        ),
        (
            "OnDelete, no status",
            object(
                V1ALPHA1,
                json!({"selector": {"matchLabels": {"app": "db"}}, "template": {"metadata": {"labels": {"app": "db"}}},
                    "updateStrategy": {"type": "OnDelete"}}),
                None,
            ),
        ),
        (
            "bare",
            object(
                V1ALPHA1,
                json!({"selector": {}, "template": {}}),
                Some(json!({"replicas": 0})),
            ),
        ),
    ];
    for (name, a) in rows {
        let want_beta = {
            let mut w = a.clone();
            w["apiVersion"] = json!(V1BETA1);
            w
        };
        let via_json = convert(a.clone(), V1BETA1).unwrap();
        assert_eq!(via_json, want_beta, "{name}: JSON v1alpha1 → v1beta1");
        let typed = typed_to_v1beta1(&a);
        let typed_back = typed_to_v1alpha1(&typed);
        let b: beta::StatefulSet = serde_json::from_value(want_beta.clone()).unwrap();
        assert_eq!(
            without_zero_beta_counters(typed.clone()),
            without_zero_beta_counters(serde_json::to_value(&b).unwrap()),
            "{name}: typed v1alpha1 → v1beta1"
        );
        // v1alpha1 → v1beta1 → v1alpha1 is the identity, both ways of converting.
        let a_typed: alpha::StatefulSet = serde_json::from_value(a.clone()).unwrap();
        assert_eq!(
            to_v1alpha1(to_v1beta1(a_typed.clone())),
            a_typed,
            "{name}: typed round trip"
        );
        assert_eq!(
            typed_back,
            serde_json::to_value(&a_typed).unwrap(),
            "{name}"
        );
        assert_eq!(
            convert(via_json, V1ALPHA1).unwrap(),
            a,
            "{name}: JSON round trip"
        );
    }
}

#[test]
fn v1beta1_to_v1alpha1_drops_exactly_the_v1beta1_only_fields() {
    // (name, v1beta1-only spec fields set, v1beta1-only status fields set)
    let only_spec = v1beta1_only_spec();
    let only_status = v1beta1_only_status();
    let mut rows: Vec<(String, Value, Value)> =
        vec![("all of them".into(), only_spec.clone(), only_status.clone())];
    for f in V1BETA1_ONLY_SPEC_FIELDS {
        rows.push((format!("spec.{f}"), json!({*f: only_spec[*f]}), json!({})));
    }
    for f in V1BETA1_ONLY_STATUS_FIELDS {
        rows.push((
            format!("status.{f}"),
            json!({}),
            json!({*f: only_status[*f]}),
        ));
    }
    for (name, extra_spec, extra_status) in rows {
        let b = object(
            V1BETA1,
            merged(shared_spec(), &extra_spec),
            Some(merged(shared_status(), &extra_status)),
        );
        let want = object(V1ALPHA1, shared_spec(), Some(shared_status()));
        assert_eq!(convert(b.clone(), V1ALPHA1).unwrap(), want, "{name}: JSON");
        assert_eq!(typed_to_v1alpha1(&b), want, "{name}: typed");
        // … and back to v1beta1 the dropped fields stay unset; everything else survives.
        let back = without_zero_beta_counters(typed_to_v1beta1(&want));
        let mut want_back = b.clone();
        for f in V1BETA1_ONLY_SPEC_FIELDS {
            want_back["spec"].as_object_mut().unwrap().remove(*f);
        }
        for f in V1BETA1_ONLY_STATUS_FIELDS {
            want_back["status"].as_object_mut().unwrap().remove(*f);
        }
        assert_eq!(back, want_back, "{name}: back to v1beta1");
    }
}

#[test]
fn fields_graft_does_not_model_pass_through_the_json_conversion() {
    let mut b = object(V1BETA1, shared_spec(), None);
    b["spec"]["template"]["spec"]["futureField"] = json!({"x": 1});
    b["spec"]["reserveOrdinals"] = json!([1]);
    let a = convert(b, V1ALPHA1).unwrap();
    assert_eq!(
        a["spec"]["template"]["spec"]["futureField"],
        json!({"x": 1})
    );
    assert!(a["spec"].get("reserveOrdinals").is_none());
}

#[test]
fn same_version_is_unchanged_and_bad_input_is_refused() {
    let b = object(V1BETA1, merged(shared_spec(), &v1beta1_only_spec()), None);
    assert_eq!(convert(b.clone(), V1BETA1).unwrap(), b);
    let e = convert(b.clone(), "apps.kruise.io/v2").unwrap_err();
    assert_eq!(
        e.to_string(),
        "cannot convert StatefulSet prod/db: unsupported version \"apps.kruise.io/v2\""
    );
    let e = convert(
        json!({"apiVersion": V1BETA1, "kind": "StatefulSet", "metadata": {"name": "db"}, "spec": []}),
        V1ALPHA1,
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "cannot convert StatefulSet db: spec is not an object"
    );
    // Dispatched by the crate-wide converter.
    let out = crate::conversion::convert(
        json!({"apiVersion": V1BETA1, "kind": "StatefulSet", "metadata": {"name": "db"},
            "spec": {"ordinals": {"start": 2}}}),
        V1ALPHA1,
    )
    .unwrap();
    assert_eq!(
        out,
        json!({"apiVersion": V1ALPHA1, "kind": "StatefulSet", "metadata": {"name": "db"}, "spec": {}})
    );
}
