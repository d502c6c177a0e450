//! Table tests of the SidecarSet conversion, ported from kruise's `TestSidecarSet_ConvertTo` /
//! `TestSidecarSet_ConvertFrom` (`apis/apps/v1alpha1/conversion_test.go`) plus round trips. Every
//! row runs through both the typed functions and the JSON [`convert`], which must agree.

use super::*;
use pretty_assertions::assert_eq;
use serde_json::json;

const CV: &str = "apps.kruise.io/sidecarset-custom-version";

/// Metadata with every field a stored object carries.
fn metadata(labels: Value) -> Value {
    let mut m = json!({
        "name": "log",
        "uid": "0b6c5b8e-4b0e-4a36-9d37-2a3c3f7f0a11",
        "resourceVersion": "4711",
        "generation": 3,
        "creationTimestamp": "2026-01-02T03:04:05Z",
        "annotations": {"kruise.io/sidecarset-hash": "abc", "kruise.io/sidecarset-hash-without-image": "def"},
        "finalizers": ["example.com/keep"],
        "managedFields": [{"manager": "kubectl", "operation": "Apply", "apiVersion": "apps.kruise.io/v1alpha1",
            "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {}}, "time": "2026-01-02T03:04:05Z"}]
    });
    if !labels.is_null() {
        m["labels"] = labels;
    }
    m
}

/// Every spec field both versions share, each set.
fn shared_spec() -> Value {
    json!({
        "selector": {"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a"]}]},
        "initContainers": [{
            "name": "init", "image": "busybox:1", "restartPolicy": "Always",
            "podInjectPolicy": "AfterAppContainer",
            "upgradeStrategy": {"upgradeType": "ColdUpgrade"},
            "shareVolumePolicy": {"type": "enabled"},
            "transferEnv": [{"sourceContainerName": "app", "envName": "TZ"}],
            "resourcesPolicy": {"targetContainersMode": "max", "targetContainersNameRegex": ".*",
                "resourcesExpr": {"limits": {"cpu": "cpu*50%", "memory": "memory*50%"}}}
        }],
        "containers": [{
            "name": "log", "image": "fluent:1", "imagePullPolicy": "IfNotPresent",
            "command": ["fluent-bit"], "args": ["-c", "/etc/fb.conf"],
            "env": [{"name": "A", "value": "1"}, {"name": "POD", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}}],
            "volumeMounts": [{"name": "logs", "mountPath": "/var/log"}],
            "lifecycle": {"preStop": {"exec": {"command": ["sleep", "5"]}}},
            "podInjectPolicy": "BeforeAppContainer",
            "upgradeStrategy": {"upgradeType": "HotUpgrade", "hotUpgradeEmptyImage": "empty:1"},
            "shareVolumePolicy": {"type": "disabled"},
            "shareVolumeDevicePolicy": {"type": "enabled"},
            "transferEnv": [
                {"sourceContainerName": "app", "envName": "TZ"},
                {"sourceContainerNameFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.labels['main']"}},
                 "envNames": ["A", "B"]}
            ],
            "resourcesPolicy": {"targetContainersMode": "sum", "targetContainersNameRegex": "^app$",
                "resourcesExpr": {"limits": {"cpu": "cpu*50%"}, "requests": {"memory": "max(memory*50%, 50Mi)"}}}
        }],
        "volumes": [{"name": "logs", "emptyDir": {}}, {"name": "conf", "configMap": {"name": "fb", "defaultMode": 420}}],
        "updateStrategy": {"type": "RollingUpdate", "paused": true, "partition": "20%", "maxUnavailable": 2,
            "selector": {"matchLabels": {"canary": "true"}},
            "priorityStrategy": {"weightPriority": [{"weight": 50, "matchSelector": {"matchLabels": {"a": "b"}}}]},
            "scatterStrategy": [{"key": "zone", "value": "*"}]},
        "injectionStrategy": {"paused": true, "revision": {"customVersion": "v1", "revisionName": "log-abc", "policy": "Partial"}},
        "imagePullSecrets": [{"name": "reg"}],
        "revisionHistoryLimit": 5,
        "patchPodMetadata": [{"annotations": {"a": "b"}, "patchPolicy": "MergePatchJson"}]
    })
}

fn status() -> Value {
    json!({"observedGeneration": 3, "matchedPods": 4, "updatedPods": 2, "readyPods": 3,
        "updatedReadyPods": 1, "latestRevision": "log-abc", "collisionCount": 1})
}

/// A whole object: shared spec plus `extra` spec fields.
fn object(api_version: &str, labels: Value, extra: Value) -> Value {
    let mut spec = shared_spec();
    for (k, v) in extra.as_object().unwrap() {
        spec[k] = v.clone();
    }
    json!({"apiVersion": api_version, "kind": "SidecarSet", "metadata": metadata(labels),
        "spec": spec, "status": status()})
}

fn minimal(api_version: &str, labels: Value, spec: Value) -> Value {
    let mut o = json!({"apiVersion": api_version, "kind": "SidecarSet", "metadata": {"name": "log"}, "spec": spec});
    if !labels.is_null() {
        o["metadata"]["labels"] = labels;
    }
    o
}

fn ns_selector(ns: &str) -> Value {
    json!({"matchLabels": {"kubernetes.io/metadata.name": ns}})
}

/// The conversion through the typed functions, as JSON.
fn typed_to_v1beta1(v: &Value) -> Value {
    let a: alpha::SidecarSet = serde_json::from_value(v.clone()).unwrap();
    serde_json::to_value(to_v1beta1(a)).unwrap()
}

fn typed_to_v1alpha1(v: &Value) -> Value {
    let b: beta::SidecarSet = serde_json::from_value(v.clone()).unwrap();
    serde_json::to_value(to_v1alpha1(b)).unwrap()
}

struct AlphaRow {
    name: &'static str,
    v1alpha1: Value,
    want_v1beta1: Value,
    /// v1alpha1 → v1beta1 → v1alpha1; `None`: the input itself (lossless).
    want_back: Option<Value>,
}

#[test]
fn v1alpha1_to_v1beta1_and_back() {
    let rows = vec![
        AlphaRow {
            name: "every field; namespace wins over namespaceSelector; label moves to customVersion",
            v1alpha1: object(
                V1ALPHA1,
                json!({CV: "v2", "k": "v"}),
                json!({"namespace": "prod", "namespaceSelector": {"matchLabels": {"team": "x"}}}),
            ),
            want_v1beta1: object(
                V1BETA1,
                json!({"k": "v"}),
                json!({"namespaceSelector": ns_selector("prod"), "customVersion": "v2"}),
            ),
            want_back: Some(object(
                V1ALPHA1,
                json!({CV: "v2", "k": "v"}),
                json!({"namespaceSelector": ns_selector("prod")}),
            )),
        },
        AlphaRow {
            name: "every field with namespaceSelector only: lossless",
            v1alpha1: object(
                V1ALPHA1,
                json!({CV: "v2", "k": "v"}),
                json!({"namespaceSelector": {"matchLabels": {"team": "x"}}}),
            ),
            want_v1beta1: object(
                V1BETA1,
                json!({"k": "v"}),
                json!({"namespaceSelector": {"matchLabels": {"team": "x"}}, "customVersion": "v2"}),
            ),
            want_back: None,
        },
        AlphaRow {
            name: "namespace only",
            v1alpha1: minimal(V1ALPHA1, Value::Null, json!({"namespace": "test-ns"})),
            want_v1beta1: minimal(
                V1BETA1,
                Value::Null,
                json!({"namespaceSelector": ns_selector("test-ns")}),
            ),
            want_back: Some(minimal(
                V1ALPHA1,
                Value::Null,
                json!({"namespaceSelector": ns_selector("test-ns")}),
            )),
        },
        AlphaRow {
            name: "empty namespace: the namespaceSelector is kept",
            v1alpha1: minimal(
                V1ALPHA1,
                Value::Null,
                json!({"namespace": "", "namespaceSelector": {"matchLabels": {"env": "dev"}}}),
            ),
            want_v1beta1: minimal(
                V1BETA1,
                Value::Null,
                json!({"namespaceSelector": {"matchLabels": {"env": "dev"}}}),
            ),
            want_back: Some(minimal(
                V1ALPHA1,
                Value::Null,
                json!({"namespaceSelector": {"matchLabels": {"env": "dev"}}}),
            )),
        },
        AlphaRow {
            name: "the custom-version label alone: labels disappear",
            v1alpha1: minimal(V1ALPHA1, json!({CV: "v1.0"}), json!({})),
            want_v1beta1: minimal(V1BETA1, Value::Null, json!({"customVersion": "v1.0"})),
            want_back: None,
        },
        AlphaRow {
            name: "an empty custom-version label is dropped",
            v1alpha1: minimal(V1ALPHA1, json!({CV: "", "k": "v"}), json!({})),
            want_v1beta1: minimal(V1BETA1, json!({"k": "v"}), json!({})),
            want_back: Some(minimal(V1ALPHA1, json!({"k": "v"}), json!({}))),
        },
        AlphaRow {
            name: "minimal: lossless",
            v1alpha1: minimal(
                V1ALPHA1,
                Value::Null,
                json!({"selector": {"matchLabels": {"app": "test"}}, "containers": [{"name": "c", "image": "i"}]}),
            ),
            want_v1beta1: minimal(
                V1BETA1,
                Value::Null,
                json!({"selector": {"matchLabels": {"app": "test"}}, "containers": [{"name": "c", "image": "i"}]}),
            ),
            want_back: None,
        },
    ];
    for row in rows {
        let name = row.name;
        let beta_json = convert(row.v1alpha1.clone(), V1BETA1).unwrap();
        assert_eq!(
            beta_json, row.want_v1beta1,
            "{name}: JSON v1alpha1 → v1beta1"
        );
        assert_eq!(
            typed_to_v1beta1(&row.v1alpha1),
            row.want_v1beta1,
            "{name}: typed v1alpha1 → v1beta1"
        );
        let want_back = row.want_back.unwrap_or_else(|| row.v1alpha1.clone());
        assert_eq!(
            convert(beta_json.clone(), V1ALPHA1).unwrap(),
            want_back,
            "{name}: JSON round trip"
        );
        assert_eq!(
            typed_to_v1alpha1(&beta_json),
            want_back,
            "{name}: typed round trip"
        );
    }
}

struct BetaRow {
    name: &'static str,
    v1beta1: Value,
    want_v1alpha1: Value,
    /// v1beta1 → v1alpha1 → v1beta1; `None`: the input itself (lossless).
    want_back: Option<Value>,
}

#[test]
fn v1beta1_to_v1alpha1_and_back() {
    let rows = vec![
        BetaRow {
            name: "every field; customVersion becomes the label; the selector stays a selector",
            v1beta1: object(
                V1BETA1,
                json!({"k": "v"}),
                json!({"namespaceSelector": ns_selector("prod"), "customVersion": "v3"}),
            ),
            want_v1alpha1: object(
                V1ALPHA1,
                json!({"k": "v", CV: "v3"}),
                json!({"namespaceSelector": ns_selector("prod")}),
            ),
            want_back: None,
        },
        BetaRow {
            name: "every field without labels: the label map is created",
            v1beta1: object(
                V1BETA1,
                Value::Null,
                json!({"namespaceSelector": {"matchLabels": {"env": "prod"}}, "customVersion": "v3"}),
            ),
            want_v1alpha1: object(
                V1ALPHA1,
                json!({CV: "v3"}),
                json!({"namespaceSelector": {"matchLabels": {"env": "prod"}}}),
            ),
            want_back: None,
        },
        BetaRow {
            name: "customVersion overwrites a stale label (kruise loses the stale value)",
            v1beta1: minimal(V1BETA1, json!({CV: "old"}), json!({"customVersion": "new"})),
            want_v1alpha1: minimal(V1ALPHA1, json!({CV: "new"}), json!({})),
            want_back: Some(minimal(
                V1BETA1,
                Value::Null,
                json!({"customVersion": "new"}),
            )),
        },
        BetaRow {
            name: "a label without customVersion becomes customVersion on the way back",
            v1beta1: minimal(V1BETA1, json!({CV: "lbl"}), json!({})),
            want_v1alpha1: minimal(V1ALPHA1, json!({CV: "lbl"}), json!({})),
            want_back: Some(minimal(
                V1BETA1,
                Value::Null,
                json!({"customVersion": "lbl"}),
            )),
        },
        BetaRow {
            name: "nil namespaceSelector, no customVersion: lossless",
            v1beta1: minimal(
                V1BETA1,
                Value::Null,
                json!({"containers": [{"name": "c", "image": "i"}]}),
            ),
            want_v1alpha1: minimal(
                V1ALPHA1,
                Value::Null,
                json!({"containers": [{"name": "c", "image": "i"}]}),
            ),
            want_back: None,
        },
    ];
    for row in rows {
        let name = row.name;
        let alpha_json = convert(row.v1beta1.clone(), V1ALPHA1).unwrap();
        assert_eq!(
            alpha_json, row.want_v1alpha1,
            "{name}: JSON v1beta1 → v1alpha1"
        );
        assert_eq!(
            typed_to_v1alpha1(&row.v1beta1),
            row.want_v1alpha1,
            "{name}: typed v1beta1 → v1alpha1"
        );
        let want_back = row.want_back.unwrap_or_else(|| row.v1beta1.clone());
        assert_eq!(
            convert(alpha_json.clone(), V1BETA1).unwrap(),
            want_back,
            "{name}: JSON round trip"
        );
        assert_eq!(
            typed_to_v1beta1(&alpha_json),
            want_back,
            "{name}: typed round trip"
        );
    }
}

#[test]
fn the_json_conversion_keeps_fields_the_types_do_not_know() {
    let mut a = minimal(
        V1ALPHA1,
        Value::Null,
        json!({"containers": [{"name": "c", "image": "i", "futureField": {"x": 1}}]}),
    );
    a["spec"]["containers"][0]["resources"] = json!({"requests": {"cpu": "100m"}});
    let b = convert(a.clone(), V1BETA1).unwrap();
    assert_eq!(b["spec"]["containers"], a["spec"]["containers"]);
    assert_eq!(convert(b, V1ALPHA1).unwrap(), a);
}

#[test]
fn the_other_versions_field_is_not_carried() {
    // Neither Go type has the other version's field, so kruise's conversion drops it.
    let a = minimal(
        V1ALPHA1,
        json!({CV: "lbl"}),
        json!({"customVersion": "stray"}),
    );
    assert_eq!(
        convert(a, V1BETA1).unwrap(),
        minimal(V1BETA1, Value::Null, json!({"customVersion": "lbl"}))
    );
    let b = minimal(V1BETA1, Value::Null, json!({"namespace": "stray"}));
    assert_eq!(
        convert(b, V1ALPHA1).unwrap(),
        minimal(V1ALPHA1, Value::Null, json!({}))
    );
}

#[test]
fn same_version_is_unchanged_and_bad_shapes_are_errors() {
    let a = minimal(V1ALPHA1, json!({CV: "x"}), json!({"namespace": "prod"}));
    assert_eq!(convert(a.clone(), V1ALPHA1).unwrap(), a);
    let bad = minimal(V1ALPHA1, Value::Null, json!({"namespace": 7}));
    assert_eq!(
        convert(bad, V1BETA1).unwrap_err().to_string(),
        "cannot convert SidecarSet log: spec.namespace is not a string: 7"
    );
    let bad = json!({"apiVersion": V1BETA1, "kind": "SidecarSet", "metadata": {"name": "log"}, "spec": []});
    assert!(matches!(
        convert(bad, V1ALPHA1),
        Err(ConversionError::Invalid { .. })
    ));
}

#[test]
fn a_v1alpha1_object_read_at_v1beta1_is_converted_as_kruise_would() {
    // Stored under `conversion: None` by a v1alpha1 client: `spec.namespace` and the label.
    let stored: beta::SidecarSet = serde_json::from_value(serde_json::json!({
        "apiVersion": "apps.kruise.io/v1beta1", "kind": "SidecarSet",
        "metadata": {"name": "log", "labels": {"apps.kruise.io/sidecarset-custom-version": "v7"}},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "namespace": "shop"}
    }))
    .unwrap();
    let c = stored.converted();
    assert_eq!(c.spec.namespace, None);
    assert_eq!(c.spec.namespace_selector, Some(namespace_selector("shop")));
    assert_eq!(c.spec.custom_version.as_deref(), Some("v7"));
    // A v1beta1 object is left as it is.
    let native: beta::SidecarSet = serde_json::from_value(serde_json::json!({
        "apiVersion": "apps.kruise.io/v1beta1", "kind": "SidecarSet",
        "metadata": {"name": "log"},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "customVersion": "v1"}
    }))
    .unwrap();
    assert_eq!(native.converted(), native);
}
