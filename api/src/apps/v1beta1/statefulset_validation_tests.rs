//! Table tests of the Advanced StatefulSet validation, after kruise's
//! `pkg/webhook/statefulset/validating/statefulset_validation_test.go`: each row is a spec (or an
//! old/new pair) and exactly the errors kruise reports, as (field, kind, detail).

use super::*;
use crate::field::FieldErrorKind::{self, Forbidden, Invalid, NotSupported, Required};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

fn spec(extra: Value) -> StatefulSetSpec {
    let mut v = json!({
        "selector": {"matchLabels": {"app": "db"}},
        "serviceName": "db",
        "template": {"metadata": {"labels": {"app": "db"}},
            "spec": {"containers": [{"name": "db", "image": "redis:7"}]}}
    });
    merge(&mut v, &extra);
    serde_json::from_value(v).unwrap()
}

/// Deep merge of `extra` into `v` (`null` removes).
fn merge(v: &mut Value, extra: &Value) {
    for (k, e) in extra.as_object().unwrap() {
        match (v.get_mut(k), e) {
            (_, Value::Null) => {
                v.as_object_mut().unwrap().remove(k);
            }
            (Some(t @ Value::Object(_)), Value::Object(_)) => merge(t, e),
            _ => {
                v[k] = e.clone();
            }
        }
    }
}

fn errors(errs: FieldErrors) -> Vec<Want> {
    errs.into_iter()
        .map(|e| (e.field, e.kind, e.detail))
        .collect()
}

fn e(field: &str, kind: FieldErrorKind, detail: &str) -> Want {
    (field.to_string(), kind, detail.to_string())
}

/// One expected error: (field, kind, detail).
type Want = (String, FieldErrorKind, String);

const RU: &str = "spec.updateStrategy.rollingUpdate";

/// apimachinery's messages, spelled out once (`IsQualifiedName`, `IsValidLabelValue`).
const NAME_PART: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const LABEL_VALUE: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

#[test]
fn create_table() {
    let mu = format!("{RU}.maxUnavailable");
    let parallel = "can only work with Parallel PodManagementPolicyType";
    let cases: Vec<(&str, Value, Vec<Want>)> = vec![
        ("defaults are valid", json!({}), vec![]),
        (
            "maxUnavailable 2 needs Parallel",
            json!({"updateStrategy": {"rollingUpdate": {"maxUnavailable": 2}}}),
            vec![e(&mu, Invalid, parallel)],
        ),
        (
            "maxUnavailable 2 with Parallel",
            json!({"podManagementPolicy": "Parallel", "updateStrategy": {"rollingUpdate": {"maxUnavailable": 2}}}),
            vec![],
        ),
        (
            "maxUnavailable \"50%\" with Parallel (1 of one replica, rounded up)",
            json!({"podManagementPolicy": "Parallel", "updateStrategy": {"rollingUpdate": {"maxUnavailable": "50%"}}}),
            vec![],
        ),
        (
            "maxUnavailable \"150%\" is accepted (no upper bound)",
            json!({"podManagementPolicy": "Parallel", "updateStrategy": {"rollingUpdate": {"maxUnavailable": "150%"}}}),
            vec![],
        ),
        (
            "maxUnavailable 0",
            json!({"podManagementPolicy": "Parallel", "updateStrategy": {"rollingUpdate": {"maxUnavailable": 0}}}),
            vec![e(&mu, Invalid, "should not be less than 1")],
        ),
        (
            "maxUnavailable -1 without Parallel",
            json!({"updateStrategy": {"rollingUpdate": {"maxUnavailable": -1}}}),
            vec![
                e(&mu, Invalid, "must be greater than or equal to 0"),
                e(&mu, Invalid, "should not be less than 1"),
                e(&mu, Invalid, parallel),
            ],
        ),
        (
            "maxUnavailable \"0%\"",
            json!({"podManagementPolicy": "Parallel", "updateStrategy": {"rollingUpdate": {"maxUnavailable": "0%"}}}),
            vec![e(&mu, Invalid, "should not be less than 1")],
        ),
        (
            "a numeric string is not a percent",
            json!({"podManagementPolicy": "Parallel", "updateStrategy": {"rollingUpdate": {"maxUnavailable": "1"}}}),
            vec![e(&mu, Invalid, PERCENT_MSG)],
        ),
        (
            "garbage",
            json!({"podManagementPolicy": "Parallel", "updateStrategy": {"rollingUpdate": {"maxUnavailable": "abc"}}}),
            vec![
                e(&mu, Invalid, PERCENT_MSG),
                e(
                    &mu,
                    Invalid,
                    "getValueFromIntOrPercent error: invalid value for IntOrString: invalid value \"abc\": strconv.Atoi: parsing \"abc\": invalid syntax",
                ),
            ],
        ),
        (
            "scaleStrategy.maxUnavailable 1 is fine without Parallel",
            json!({"scaleStrategy": {"maxUnavailable": 1}}),
            vec![],
        ),
        (
            "scaleStrategy.maxUnavailable 2 needs Parallel",
            json!({"scaleStrategy": {"maxUnavailable": 2}}),
            vec![e("spec.scaleStrategy.maxUnavailable", Invalid, parallel)],
        ),
        (
            "in place needs the readiness gate",
            json!({"updateStrategy": {"rollingUpdate": {"podUpdatePolicy": "InPlaceIfPossible"}}}),
            vec![e(
                "spec.template.spec.readinessGates",
                Invalid,
                "must contains InPlaceUpdateReady when podUpdatePolicy is InPlaceIfPossible",
            )],
        ),
        (
            "InPlaceOnly too",
            json!({"updateStrategy": {"rollingUpdate": {"podUpdatePolicy": "InPlaceOnly"}},
                "template": {"spec": {"readinessGates": [{"conditionType": "Other"}]}}}),
            vec![e(
                "spec.template.spec.readinessGates",
                Invalid,
                "must contains InPlaceUpdateReady when podUpdatePolicy is InPlaceOnly",
            )],
        ),
        (
            "in place with the gate",
            json!({"updateStrategy": {"rollingUpdate": {"podUpdatePolicy": "InPlaceOnly"}},
                "template": {"spec": {"readinessGates": [{"conditionType": "InPlaceUpdateReady"}]}}}),
            vec![],
        ),
        (
            "minReadySeconds 301",
            json!({"updateStrategy": {"rollingUpdate": {"minReadySeconds": 301}}}),
            vec![e(
                &format!("{RU}.minReadySeconds"),
                Invalid,
                "must be no more than 300 seconds",
            )],
        ),
        (
            "minReadySeconds 300",
            json!({"updateStrategy": {"rollingUpdate": {"minReadySeconds": 300}}}),
            vec![],
        ),
        (
            "minReadySeconds -1",
            json!({"updateStrategy": {"rollingUpdate": {"minReadySeconds": -1}}}),
            vec![e(
                &format!("{RU}.minReadySeconds"),
                Invalid,
                "must be greater than or equal to 0",
            )],
        ),
        (
            "partition -1",
            json!({"updateStrategy": {"rollingUpdate": {"partition": -1}}}),
            vec![e(
                &format!("{RU}.partition"),
                Invalid,
                "must be greater than or equal to 0",
            )],
        ),
        (
            "unorderedUpdate needs Parallel",
            json!({"updateStrategy": {"rollingUpdate": {"unorderedUpdate": {}}}}),
            vec![e(
                &format!("{RU}.unorderedUpdate"),
                Required,
                "unorderedUpdate can only work with Parallel PodManagementPolicyType",
            )],
        ),
        (
            "unorderedUpdate priorities: not both kinds",
            json!({"podManagementPolicy": "Parallel", "updateStrategy": {"rollingUpdate": {"unorderedUpdate":
                {"priorityStrategy": {"weightPriority": [{"weight": 5, "matchSelector": {"matchLabels": {"a": "b"}}}],
                    "orderPriority": [{"orderedKey": "k"}]}}}}}),
            vec![e(
                &format!("{RU}.unorderedUpdate.priorityStrategy"),
                Required,
                "only one of weightPriority and orderPriority can be used",
            )],
        ),
        (
            "unorderedUpdate priorities: a weight needs a selector",
            json!({"podManagementPolicy": "Parallel", "updateStrategy": {"rollingUpdate": {"unorderedUpdate":
                {"priorityStrategy": {"weightPriority": [{"weight": 5, "matchSelector": {}}]}}}}}),
            vec![e(
                &format!("{RU}.unorderedUpdate.priorityStrategy"),
                Required,
                "selector can not be empty",
            )],
        ),
        (
            "OnDelete with rollingUpdate",
            json!({"updateStrategy": {"type": "OnDelete", "rollingUpdate": {"partition": 1}}}),
            vec![e(
                RU,
                Invalid,
                "only allowed for updateStrategy 'RollingUpdate'",
            )],
        ),
        (
            "OnDelete",
            json!({"updateStrategy": {"type": "OnDelete"}}),
            vec![],
        ),
        (
            "replicas -1",
            json!({"replicas": -1}),
            vec![e(
                "spec.replicas",
                Invalid,
                "must be greater than or equal to 0",
            )],
        ),
        (
            "selector must match the template labels",
            json!({"template": {"metadata": {"labels": {"app": "web"}}}}),
            vec![e(
                "spec.template.metadata.labels",
                Invalid,
                "`selector` does not match template `labels`",
            )],
        ),
        (
            "empty selector",
            json!({"selector": {"matchLabels": null}}),
            vec![e(
                "spec.selector",
                Invalid,
                "empty selector is invalid for statefulset",
            )],
        ),
        (
            "a bad operator: the selector does not convert, the template is not checked",
            json!({"selector": {"matchExpressions": [{"key": "app", "operator": "Has"}]},
                "template": {"metadata": {"labels": {"x": "y"}}}}),
            vec![
                e(
                    "spec.selector.matchExpressions[0].operator",
                    Invalid,
                    "not a valid selector operator",
                ),
                e("spec.selector", Invalid, ""),
            ],
        ),
        (
            "In without values",
            json!({"selector": {"matchExpressions": [{"key": "app", "operator": "In"}]}}),
            vec![
                e(
                    "spec.selector.matchExpressions[0].values",
                    Required,
                    "must be specified when `operator` is 'In' or 'NotIn'",
                ),
                e("spec.selector", Invalid, ""),
            ],
        ),
        (
            "selector keys may have a DNS prefix",
            json!({"selector": {"matchLabels": {"apps.kruise.io/app": "db"}},
                "template": {"metadata": {"labels": {"apps.kruise.io/app": "db"}}}}),
            vec![],
        ),
        (
            "a selector key that is no qualified name: the selector does not convert",
            json!({"selector": {"matchLabels": {"a b": "db"}},
                "template": {"metadata": {"labels": {"x y": "1"}}}}),
            vec![
                e("spec.selector.matchLabels", Invalid, NAME_PART),
                e("spec.selector", Invalid, ""),
            ],
        ),
        (
            "a selector value that is no label value",
            json!({"selector": {"matchLabels": {"app": "d b"}}}),
            vec![
                e("spec.selector.matchLabels", Invalid, LABEL_VALUE),
                e("spec.selector", Invalid, ""),
            ],
        ),
        (
            "matchExpressions with good keys and values",
            json!({"selector": {"matchLabels": null, "matchExpressions": [
                {"key": "app", "operator": "In", "values": ["db", "db-2"]}]}}),
            vec![],
        ),
        (
            "a matchExpressions key that is no qualified name",
            json!({"selector": {"matchExpressions": [{"key": "a/b/c", "operator": "Exists"}]}}),
            vec![
                e(
                    "spec.selector.matchExpressions[0].key",
                    Invalid,
                    &format!(
                        "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                        &NAME_PART["name part ".len()..]
                    ),
                ),
                e("spec.selector", Invalid, ""),
            ],
        ),
        (
            "a matchExpressions value that is no label value",
            json!({"selector": {"matchExpressions": [
                {"key": "app", "operator": "In", "values": ["db", "d b"]}]}}),
            vec![
                e(
                    "spec.selector.matchExpressions[0].values[1]",
                    Invalid,
                    LABEL_VALUE,
                ),
                e("spec.selector", Invalid, ""),
            ],
        ),
        (
            "template labels: prefixed keys, empty values",
            json!({"template": {"metadata": {"labels": {"app": "db", "example.com/tier": ""}}}}),
            vec![],
        ),
        (
            "template labels: a bad key and a bad value, named without `metadata` as upstream does",
            json!({"template": {"metadata": {"labels": {"app": "db", "x y": "1", "v": "-1"}}}}),
            vec![
                e("spec.template.labels", Invalid, LABEL_VALUE),
                e("spec.template.labels", Invalid, NAME_PART),
            ],
        ),
        (
            "template annotations: keys in any case, values free",
            json!({"template": {"metadata": {"annotations": {"Example.COM/Note": "any text at all"}}}}),
            vec![],
        ),
        (
            "template annotations: a bad key",
            json!({"template": {"metadata": {"annotations": {"a b": "x"}}}}),
            vec![e("spec.template.annotations", Invalid, NAME_PART)],
        ),
        (
            "template annotations: more than 256 KiB",
            json!({"template": {"metadata": {"annotations": {"k": "x".repeat(256 * 1024)}}}}),
            vec![e(
                "spec.template.annotations",
                FieldErrorKind::TooLong,
                "may not be more than 262144 bytes",
            )],
        ),
        (
            "a mirror-pod annotation with a node",
            json!({"template": {"metadata": {"annotations": {"kubernetes.io/config.mirror": "x"}},
                "spec": {"nodeName": "n1"}}}),
            vec![],
        ),
        (
            "a mirror-pod annotation without a node",
            json!({"template": {"metadata": {"annotations": {"kubernetes.io/config.mirror": "x"}}}}),
            vec![e(
                "spec.template.annotations[kubernetes.io/config.mirror]",
                Invalid,
                "must set spec.nodeName if mirror pod annotation is set",
            )],
        ),
        (
            "seccomp annotations naming valid profiles",
            json!({"template": {"metadata": {"annotations": {
                "seccomp.security.alpha.kubernetes.io/pod": "runtime/default",
                "container.seccomp.security.alpha.kubernetes.io/db": "localhost/profiles/db.json"}}}}),
            vec![],
        ),
        (
            "seccomp annotations naming invalid profiles",
            json!({"template": {"metadata": {"annotations": {
                "seccomp.security.alpha.kubernetes.io/pod": "strict",
                "container.seccomp.security.alpha.kubernetes.io/a": "localhost//abs",
                "container.seccomp.security.alpha.kubernetes.io/b": "localhost/x/../y"}}}}),
            vec![
                e(
                    "spec.template.annotations.seccomp.security.alpha.kubernetes.io/pod",
                    Invalid,
                    "must be a valid seccomp profile",
                ),
                e(
                    "spec.template.annotations.container.seccomp.security.alpha.kubernetes.io/a",
                    Invalid,
                    "must be a relative path",
                ),
                e(
                    "spec.template.annotations.container.seccomp.security.alpha.kubernetes.io/b",
                    Invalid,
                    "must not contain '..'",
                ),
            ],
        ),
        (
            "an AppArmor annotation for a container of the pod",
            json!({"template": {"metadata": {"annotations": {
                "container.apparmor.security.beta.kubernetes.io/db": "localhost/db"}}}}),
            vec![],
        ),
        (
            "an AppArmor annotation for no container, with a bad profile",
            json!({"template": {"metadata": {"annotations": {
                "container.apparmor.security.beta.kubernetes.io/web": "strict"}}}}),
            vec![
                e(
                    "spec.template.annotations[container.apparmor.security.beta.kubernetes.io/web]",
                    Invalid,
                    "container not found",
                ),
                e(
                    "spec.template.annotations[container.apparmor.security.beta.kubernetes.io/web]",
                    Invalid,
                    "invalid AppArmor profile name: \"strict\"",
                ),
            ],
        ),
        (
            "restartPolicy must be Always",
            json!({"template": {"spec": {"restartPolicy": "OnFailure"}}}),
            vec![e(
                "spec.template.spec.restartPolicy",
                NotSupported,
                "supported values: \"Always\"",
            )],
        ),
        (
            "no activeDeadlineSeconds",
            json!({"template": {"spec": {"activeDeadlineSeconds": 5}}}),
            vec![e(
                "spec.template.spec.activeDeadlineSeconds",
                Forbidden,
                "activeDeadlineSeconds in StatefulSet is not Supported",
            )],
        ),
        (
            "the pod spec itself is not validated (kruise does not)",
            json!({"template": {"spec": {"containers": []}}}),
            vec![],
        ),
        (
            "reserveOrdinals: ints and ranges",
            json!({"reserveOrdinals": [1, "3-5", "7-7"]}),
            vec![],
        ),
        (
            "reserveOrdinals: a negative int",
            json!({"reserveOrdinals": [1, -2]}),
            vec![e("spec", Invalid, "1 th reserve ordinal is negative: -2")],
        ),
        (
            "reserveOrdinals: a reversed range",
            json!({"reserveOrdinals": ["5-3"]}),
            vec![e(
                "spec",
                Invalid,
                "0 th reserve ordinal is invalid: 5-3, err = invalid range 5-3",
            )],
        ),
        (
            "reserveOrdinals: not a range",
            json!({"reserveOrdinals": ["a-3"]}),
            vec![
                e(
                    "spec",
                    Invalid,
                    "0 th reserve ordinal is not a valid range: a-3",
                ),
                e(
                    "spec",
                    Invalid,
                    "0 th reserve ordinal is invalid: a-3, err = strconv.Atoi: parsing \"a\": invalid syntax",
                ),
            ],
        ),
        (
            "reserveOrdinals: a single number as a string",
            json!({"reserveOrdinals": ["4"]}),
            vec![
                e(
                    "spec",
                    Invalid,
                    "0 th reserve ordinal is not a valid range: 4",
                ),
                e(
                    "spec",
                    Invalid,
                    "0 th reserve ordinal is invalid: 4, err = invalid range 4",
                ),
            ],
        ),
        (
            "lifecycle is not validated by kruise's StatefulSet webhook",
            json!({"lifecycle": {"preDelete": {"labelsHandler": {"a": "true"}}}}),
            vec![],
        ),
    ];
    for (rule, extra, want) in cases {
        assert_eq!(errors(spec(extra).validate()), want, "{rule}");
    }
}

#[test]
fn missing_required_fields_are_reported_without_defaults() {
    let s = spec(json!({"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {}}}));
    assert_eq!(
        errors(s.validate_defaulted()),
        vec![
            e("spec.podManagementPolicy", Required, ""),
            e(&format!("{RU}.maxUnavailable"), Required, ""),
            e(&format!("{RU}.podUpdatePolicy"), Required, ""),
        ]
    );
    let s = spec(json!({}));
    assert_eq!(
        errors(s.validate_defaulted()),
        vec![
            e("spec.podManagementPolicy", Required, ""),
            e("spec.updateStrategy", Required, ""),
        ]
    );
}

/// (rule, name, generateName, errors)
type NameCase<'a> = (&'a str, Option<&'a str>, Option<&'a str>, Vec<Want>);

#[test]
fn names_must_be_dns_labels() {
    let named = |name: Option<&str>, generate: Option<&str>| StatefulSet {
        metadata: ObjectMeta {
            name: name.map(Into::into),
            generate_name: generate.map(Into::into),
            ..Default::default()
        },
        spec: spec(json!({})),
        status: None,
    };
    let long = "a".repeat(64);
    let cases: Vec<NameCase> = vec![
        ("a DNS label", Some("web-0"), None, vec![]),
        (
            "dots: a subdomain but no label",
            Some("web.v1"),
            None,
            vec![e("metadata.name", Invalid, "must not contain dots")],
        ),
        (
            "64 characters",
            Some(&long),
            None,
            vec![e(
                "metadata.name",
                Invalid,
                "must be no more than 63 characters",
            )],
        ),
        (
            "not even a subdomain: the API server's to refuse, in its words",
            Some("Web"),
            None,
            vec![],
        ),
        (
            "a generateName ending in a dash, before the name is generated",
            None,
            Some("web-"),
            vec![],
        ),
        (
            "a generateName with dots",
            None,
            Some("web.v1-"),
            vec![e("metadata.generateName", Invalid, "must not contain dots")],
        ),
    ];
    for (rule, name, generate, want) in cases {
        assert_eq!(errors(named(name, generate).validate()), want, "{rule}");
    }
    // The name comes first, then the spec, as in kruise's `validateStatefulSet`.
    let mut both = named(Some("web.v1"), None);
    both.spec.replicas = Some(-1);
    assert_eq!(
        errors(both.validate()),
        vec![
            e("metadata.name", Invalid, "must not contain dots"),
            e(
                "spec.replicas",
                Invalid,
                "must be greater than or equal to 0"
            ),
        ]
    );
}

fn sts(extra: Value) -> StatefulSet {
    StatefulSet {
        metadata: Default::default(),
        spec: spec(extra).defaulted(),
        status: None,
    }
}

#[test]
fn update_table() {
    let forbidden = vec![e("spec", Forbidden, FORBIDDEN_UPDATE)];
    // (rule, old spec fields, new spec fields, errors)
    let cases: Vec<(&str, Value, Value, Vec<Want>)> = vec![
        (
            "every mutable field may change",
            json!({}),
            json!({
                "replicas": 7, "ordinals": {"start": 2}, "reserveOrdinals": [1],
                "lifecycle": {"preDelete": {"finalizersHandler": ["x/y"]}}, "revisionHistoryLimit": 3,
                "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Delete", "whenScaled": "Delete"},
                "volumeClaimTemplates": [{"metadata": {"name": "data"}}],
                "volumeClaimUpdateStrategy": {"type": "OnPodRollingUpdate"},
                "scaleStrategy": {"maxUnavailable": 1},
                "updateStrategy": {"type": "OnDelete", "rollingUpdate": null},
                "template": {"metadata": {"labels": {"app": "db", "v": "2"}}, "spec": {"containers": [{"name": "db", "image": "redis:8"}]}}
            }),
            vec![],
        ),
        (
            "selector",
            json!({}),
            json!({"selector": {"matchLabels": {"app": "db", "x": "y"}},
                "template": {"metadata": {"labels": {"x": "y"}}}}),
            forbidden.clone(),
        ),
        (
            "serviceName",
            json!({}),
            json!({"serviceName": "other"}),
            forbidden.clone(),
        ),
        (
            "serviceName unset and empty are the same",
            json!({"serviceName": ""}),
            json!({"serviceName": null}),
            vec![],
        ),
        (
            "an empty selector list is no list",
            json!({"selector": {"matchLabels": {"app": "db"}, "matchExpressions": []}}),
            json!({}),
            vec![],
        ),
        (
            "podManagementPolicy",
            json!({}),
            json!({"podManagementPolicy": "Parallel"}),
            forbidden.clone(),
        ),
        (
            "replicas -1",
            json!({}),
            json!({"replicas": -1}),
            vec![e(
                "spec.replicas",
                Invalid,
                "must be greater than or equal to 0",
            )],
        ),
    ];
    for (rule, old, new, want) in cases {
        assert_eq!(errors(sts(new).validate_update(&sts(old))), want, "{rule}");
    }
}

fn template(spec: Value) -> PodTemplateSpec {
    serde_json::from_value(json!({"metadata": {"labels": {"app": "db"}}, "spec": spec})).unwrap()
}

#[test]
fn in_place_only_allows_image_changes_only() {
    let old = template(
        json!({"containers": [{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}]}),
    );
    // (rule, new pod spec, result)
    let cases: Vec<(&str, Value, Result<(), String>)> = vec![
        (
            "images",
            json!({"containers": [{"name": "a", "image": "a:2"}, {"name": "b", "image": "b:2"}]}),
            Ok(()),
        ),
        (
            "no change",
            json!({"containers": [{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}]}),
            Ok(()),
        ),
        (
            "env added",
            json!({"containers": [{"name": "a", "image": "a:1", "env": [{"name": "X", "value": "1"}]}, {"name": "b", "image": "b:1"}]}),
            Err("add /containers/0/env".into()),
        ),
        (
            "a container removed",
            json!({"containers": [{"name": "a", "image": "a:1"}]}),
            Err("remove /containers/1".into()),
        ),
        (
            "imagePullPolicy matches the unanchored pattern, as upstream",
            json!({"containers": [{"name": "a", "image": "a:1", "imagePullPolicy": "Always"}, {"name": "b", "image": "b:1"}]}),
            Err("add /containers/0/imagePullPolicy".into()),
        ),
    ];
    for (rule, new, want) in cases {
        assert_eq!(
            validate_template_in_place_only(&old, &template(new)),
            want,
            "{rule}"
        );
    }
    let old = template(
        json!({"containers": [{"name": "a", "image": "a:1", "imagePullPolicy": "IfNotPresent"}]}),
    );
    let new = template(
        json!({"containers": [{"name": "a", "image": "a:1", "imagePullPolicy": "Always"}]}),
    );
    assert_eq!(validate_template_in_place_only(&old, &new), Ok(()));
    assert_eq!(
        in_place_only_message("add /containers/0/env"),
        "invalid template modified with InPlaceOnly strategy: add /containers/0/env, currently only image update is allowed for InPlaceOnly"
    );
}

fn vct(name: &str, size: &str, class: Option<&str>) -> Value {
    let mut v = json!({"metadata": {"name": name},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}}});
    if let Some(c) = class {
        v["spec"]["storageClassName"] = json!(c);
    }
    v
}

#[test]
fn volume_claim_templates_on_rolling_update() {
    let lookup = |c: Option<&str>| match c {
        None => StorageClassLookup::Found {
            name: "standard".into(),
            allow_volume_expansion: None,
        },
        Some("fixed") => StorageClassLookup::Found {
            name: "fixed".into(),
            allow_volume_expansion: Some(false),
        },
        Some("grow") => StorageClassLookup::Found {
            name: "grow".into(),
            allow_volume_expansion: Some(true),
        },
        Some(_) => StorageClassLookup::Missing,
    };
    let with = |templates: Value, strategy: &str| {
        spec(json!({"volumeClaimTemplates": templates,
            "volumeClaimUpdateStrategy": {"type": strategy}}))
    };
    let old = with(
        json!([vct("data", "1Gi", Some("fixed")), vct("logs", "1Gi", None)]),
        "OnPodRollingUpdate",
    );
    let f = "spec.volumeClaimTemplates";
    let mut gone = vct("logs", "3Gi", None);
    gone["spec"]["storageClassName"] = json!("gone");
    // (rule, new templates, strategy, errors)
    let cases: Vec<(&str, Value, &str, Vec<Want>)> = vec![
        (
            "OnDelete: anything goes",
            json!([vct("other", "5Gi", None)]),
            "OnDelete",
            vec![],
        ),
        (
            "unchanged",
            json!([
                vct("data", "1Gi", Some("fixed")),
                vct("logs", "1024Mi", None)
            ]),
            "OnPodRollingUpdate",
            vec![],
        ),
        (
            "grow on the default class (expansion unset allows)",
            json!([vct("data", "1Gi", Some("fixed")), vct("logs", "2Gi", None)]),
            "OnPodRollingUpdate",
            vec![],
        ),
        (
            "grow on a class that forbids it",
            json!([vct("data", "2Gi", Some("fixed")), vct("logs", "1Gi", None)]),
            "OnPodRollingUpdate",
            vec![e(
                &format!("{f}[data].spec.resources.requests.storage"),
                Forbidden,
                "storage class fixed does not support volume expansion",
            )],
        ),
        (
            "added",
            json!([vct("data", "1Gi", Some("fixed"))]),
            "OnPodRollingUpdate",
            vec![e(
                f,
                Invalid,
                "volumeClaimTemplate can not be added or deleted when OnRollingUpdate",
            )],
        ),
        (
            "renamed",
            json!([vct("data", "1Gi", Some("fixed")), vct("log", "1Gi", None)]),
            "OnPodRollingUpdate",
            vec![e(
                &format!("{f}[log].name"),
                Forbidden,
                "volumeClaimTemplate name can not be modified",
            )],
        ),
        (
            "another class",
            json!([vct("data", "1Gi", Some("grow")), vct("logs", "1Gi", None)]),
            "OnPodRollingUpdate",
            vec![e(
                &format!("{f}[data]"),
                Invalid,
                "volumeClaimTemplate can not be modified when OnRollingUpdate",
            )],
        ),
        (
            "a missing class",
            json!([vct("data", "1Gi", Some("fixed")), gone]),
            "OnPodRollingUpdate",
            vec![e(
                &format!("{f}[logs].spec.storageClassName"),
                Invalid,
                "can not get sc",
            )],
        ),
    ];
    for (rule, templates, strategy, want) in cases {
        assert_eq!(
            errors(validate_volume_claim_template_update(
                &with(templates, strategy),
                &old,
                &lookup
            )),
            want,
            "{rule}"
        );
    }
}

#[test]
fn ranges_and_numbers_parse_as_go_does() {
    assert_eq!(parse_range("3-5"), Ok((3, 5)));
    assert_eq!(parse_range("3-5-7"), Err("invalid range 3-5-7".into()));
    assert_eq!(
        parse_range("-5"),
        Err("strconv.Atoi: parsing \"\": invalid syntax".into())
    );
    assert_eq!(
        atoi("99999999999999999999"),
        Err("strconv.Atoi: parsing \"99999999999999999999\": value out of range".into())
    );
    assert!(is_range("10-20") && !is_range("1-") && !is_range("a-1"));
    assert!(is_container_image_path("/containers/12/image"));
    assert!(!is_container_image_path("/initContainers/0/image"));
    assert!(!is_container_image_path("/containers/x/image"));
}
