//! Table tests of the CloneSet validation, after kruise's
//! `pkg/webhook/cloneset/validating/validation_test.go`: each row is a spec (or an old/new
//! pair), defaulted as the mutating webhook does, and exactly the errors kruise reports, as
//! (field, kind, detail).

use super::*;
use crate::field::FieldErrorKind::{self, Duplicate, Forbidden, Invalid, NotSupported, Required};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

/// The spec of a valid CloneSet with `extra` deep-merged in (`null` removes a field).
fn spec(extra: Value) -> CloneSetSpec {
    let mut v = json!({
        "selector": {"matchLabels": {"app": "demo"}},
        "template": {"metadata": {"labels": {"app": "demo"}},
            "spec": {"containers": [{"name": "main", "image": "nginx:1.27"}]}}
    });
    merge(&mut v, &extra);
    serde_json::from_value(v).unwrap()
}

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

fn cloneset(extra: Value) -> CloneSet {
    CloneSet::new("demo", spec(extra).defaulted())
}

fn template(spec: Value) -> Value {
    json!({"metadata": {"labels": {"app": "demo"}}, "spec": spec})
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

const US: &str = "spec.updateStrategy";
const MU: &str = "spec.updateStrategy.maxUnavailable";
const MS: &str = "spec.updateStrategy.maxSurge";
const PARTITION: &str = "spec.updateStrategy.partition";
const NOT_PERCENT: &str = "invalid type: string is not a percentage";
const MISMATCH: &str = "`selector` does not match template `labels`";

/// apimachinery's messages, spelled out once (`IsQualifiedName`, `IsDNS1123Label`).
const NAME_PART: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const DNS_LABEL: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

#[test]
fn create_table() {
    let ty = format!("{US}.type");
    let cases: Vec<(&str, Value, Vec<Want>)> = vec![
        ("defaults are valid", json!({}), vec![]),
        (
            "negative replicas",
            json!({"replicas": -1}),
            vec![e("spec.replicas", Invalid, NONNEGATIVE)],
        ),
        (
            "an empty selector",
            json!({"selector": {"matchLabels": null}}),
            vec![e(
                "spec.selector",
                Invalid,
                "empty selector is invalid for cloneset",
            )],
        ),
        (
            "a selector not matching the template labels",
            json!({"selector": {"matchLabels": {"app": "other"}}}),
            vec![e("spec.template.metadata.labels", Invalid, MISMATCH)],
        ),
        (
            "a selector asking for more labels than the template has (kruise's invalid-selector)",
            json!({"selector": {"matchLabels": {"app": "demo", "c": "d"}}}),
            vec![e("spec.template.metadata.labels", Invalid, MISMATCH)],
        ),
        (
            "a selector that does not convert: reported, the template is not checked",
            json!({"selector": {"matchExpressions": [{"key": "app", "operator": "Foo"}]},
                "template": {"spec": {"containers": []}}}),
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
            "a template label key that is no qualified name (kruise's invalid-template)",
            json!({"template": {"metadata": {"labels": {"NoUppercaseOrSpecialCharsLike=Equals": "b"}}}}),
            vec![e("spec.template.labels", Invalid, NAME_PART)],
        ),
        (
            "no containers",
            json!({"template": template(json!({"containers": []}))}),
            vec![e("spec.template.spec.containers", Required, "")],
        ),
        (
            "container names are DNS labels and images are required",
            json!({"template": template(json!({"containers": [{"name": "Main"}]}))}),
            vec![
                e("spec.template.spec.containers[0].name", Invalid, DNS_LABEL),
                e("spec.template.spec.containers[0].image", Required, ""),
            ],
        ),
        (
            "container names are unique, init containers included",
            json!({"template": template(json!({
                "containers": [{"name": "a", "image": "i"}, {"name": "a", "image": "i"}],
                "initContainers": [{"name": "a", "image": "i"}, {"name": "", "image": "i"}]}))}),
            vec![
                e("spec.template.spec.containers[1].name", Duplicate, ""),
                e("spec.template.spec.initContainers[0].name", Duplicate, ""),
                e("spec.template.spec.initContainers[1].name", Required, ""),
            ],
        ),
        (
            "a PVC template counts as a volume of the pod",
            json!({"volumeClaimTemplates": [{"metadata": {"name": "data"}}],
                "template": template(json!({"containers": [{"name": "main", "image": "i"}],
                    "volumes": [{"name": "data", "emptyDir": {}}]}))}),
            vec![e("spec.template.spec.volumes[1].name", Duplicate, "")],
        ),
        (
            "restartPolicy other than Always",
            json!({"template": template(json!({"restartPolicy": "Never",
                "containers": [{"name": "main", "image": "i"}]}))}),
            vec![e(
                "spec.template.spec.restartPolicy",
                NotSupported,
                "supported values: \"Always\"",
            )],
        ),
        (
            "an unknown restartPolicy: the pod rule and kruise's",
            json!({"template": template(json!({"restartPolicy": "Sometimes",
                "containers": [{"name": "main", "image": "i"}]}))}),
            vec![
                e(
                    "spec.template.spec.restartPolicy",
                    NotSupported,
                    "supported values: \"Always\", \"OnFailure\", \"Never\"",
                ),
                e(
                    "spec.template.spec.restartPolicy",
                    NotSupported,
                    "supported values: \"Always\"",
                ),
            ],
        ),
        (
            "no activeDeadlineSeconds",
            json!({"template": template(json!({"activeDeadlineSeconds": 5,
                "containers": [{"name": "main", "image": "i"}]}))}),
            vec![e(
                "spec.template.spec.activeDeadlineSeconds",
                Forbidden,
                "activeDeadlineSeconds in cloneset is not Supported",
            )],
        ),
        (
            "no ephemeral containers in a template",
            json!({"template": template(json!({"containers": [{"name": "main", "image": "i"}],
                "ephemeralContainers": [{"name": "debug", "image": "busybox"}]}))}),
            vec![e(
                "spec.template.spec.ephemeralContainers",
                Forbidden,
                "ephemeral containers not allowed in pod template",
            )],
        ),
        (
            "podsToDelete twice the same pod",
            json!({"scaleStrategy": {"podsToDelete": ["p0", "p0"]}}),
            vec![e(
                "spec.scaleStrategy.podsToDelete",
                Invalid,
                "duplicated items [p0]",
            )],
        ),
        (
            "every repeat is listed, as often as it repeats",
            json!({"scaleStrategy": {"podsToDelete": ["a", "b", "a", "b", "a"]}}),
            vec![e(
                "spec.scaleStrategy.podsToDelete",
                Invalid,
                "duplicated items [a b a]",
            )],
        ),
        (
            "OnDelete is not a v1alpha1 type for kruise v1.9",
            json!({"updateStrategy": {"type": "OnDelete"}}),
            vec![e(
                &ty,
                Invalid,
                "must be 'ReCreate', InPlaceIfPossible or 'InPlaceOnly'",
            )],
        ),
        (
            "negative partition",
            json!({"updateStrategy": {"partition": -1}}),
            vec![e(PARTITION, Invalid, NONNEGATIVE)],
        ),
        (
            "a partition string that is no percent",
            json!({"updateStrategy": {"partition": "2"}}),
            vec![e(
                PARTITION,
                Invalid,
                &format!("failed GetScaledValueFromIntOrPercent for partition: {NOT_PERCENT}"),
            )],
        ),
        (
            "a partition percent that is no number",
            json!({"updateStrategy": {"partition": "abc%"}}),
            vec![e(
                PARTITION,
                Invalid,
                "failed GetScaledValueFromIntOrPercent for partition: strconv.ParseFloat: parsing \"abc\": invalid syntax",
            )],
        ),
        (
            "a partition above the replicas is accepted",
            json!({"updateStrategy": {"partition": 2}}),
            vec![],
        ),
        (
            "priorityStrategy with both kinds",
            json!({"updateStrategy": {"priorityStrategy": {
                "weightPriority": [{"weight": 20, "matchSelector": {"matchLabels": {"k": "v"}}}],
                "orderPriority": [{"orderedKey": "k"}]}}}),
            vec![e(
                &format!("{US}.priorityStrategy"),
                Required,
                "only one of weightPriority and orderPriority can be used",
            )],
        ),
        (
            "a valid weight priority",
            json!({"updateStrategy": {"priorityStrategy": {
                "weightPriority": [{"weight": 20, "matchSelector": {"matchLabels": {"key": "foo"}}}]}}}),
            vec![],
        ),
        (
            "a scatter term without key",
            json!({"updateStrategy": {"scatterStrategy": [{"key": "", "value": "x"}]}}),
            vec![e(
                &format!("{US}.scatterStrategy"),
                Required,
                "key should not be empty",
            )],
        ),
        (
            "a scatter term twice",
            json!({"updateStrategy": {"scatterStrategy": [{"key": "a", "value": "1"}, {"key": "a", "value": "1"}]}}),
            vec![e(
                &format!("{US}.scatterStrategy"),
                Required,
                "duplicated key=a value=1",
            )],
        ),
        (
            "maxUnavailable 0 with the default maxSurge 0 (kruise's invalid-maxUnavailable)",
            json!({"updateStrategy": {"maxUnavailable": 0}}),
            vec![e(MU, Invalid, BOTH_LESS_THAN_ONE)],
        ),
        (
            "maxUnavailable 0 and maxSurge 0 (kruise's invalid-maxSurge)",
            json!({"updateStrategy": {"maxUnavailable": 0, "maxSurge": 0}}),
            vec![e(MU, Invalid, BOTH_LESS_THAN_ONE)],
        ),
        (
            "0% and 0%",
            json!({"replicas": 10, "updateStrategy": {"maxUnavailable": "0%", "maxSurge": "0%"}}),
            vec![e(MU, Invalid, BOTH_LESS_THAN_ONE)],
        ),
        (
            "maxUnavailable 0 with maxSurge 1",
            json!({"updateStrategy": {"maxUnavailable": 0, "maxSurge": 1}}),
            vec![],
        ),
        (
            "both 0 with no replicas",
            json!({"replicas": 0, "updateStrategy": {"maxUnavailable": 0, "maxSurge": 0}}),
            vec![],
        ),
        (
            "1% of one replica rounds up to 1",
            json!({"updateStrategy": {"maxUnavailable": "1%"}}),
            vec![],
        ),
        (
            "maxUnavailable 120% is accepted",
            json!({"updateStrategy": {"maxUnavailable": "120%"}}),
            vec![],
        ),
        (
            "a maxSurge string that is no percent (kruise's invalid-cloneset-maxSurge-create)",
            json!({"updateStrategy": {"maxSurge": "5", "maxUnavailable": 2}}),
            vec![e(
                MS,
                Invalid,
                &format!("failed GetScaledValueFromIntOrPercent for maxSurge: {NOT_PERCENT}"),
            )],
        ),
        (
            "a maxUnavailable string that is no percent, maxSurge 2",
            json!({"updateStrategy": {"maxSurge": 2, "maxUnavailable": "5"}}),
            vec![e(
                MU,
                Invalid,
                &format!("failed GetScaledValueFromIntOrPercent for maxUnavailable: {NOT_PERCENT}"),
            )],
        ),
        (
            "a maxUnavailable that is no percent and no surge: both rules",
            json!({"updateStrategy": {"maxUnavailable": "5"}}),
            vec![
                e(
                    MU,
                    Invalid,
                    &format!(
                        "failed GetScaledValueFromIntOrPercent for maxUnavailable: {NOT_PERCENT}"
                    ),
                ),
                e(MU, Invalid, BOTH_LESS_THAN_ONE),
            ],
        ),
        (
            "maxSurge with InPlaceOnly",
            json!({"updateStrategy": {"type": "InPlaceOnly", "maxSurge": 1}}),
            vec![e(MS, Invalid, NO_SURGE_IN_PLACE_ONLY)],
        ),
        (
            "maxSurge 10% of one replica is 1 with InPlaceOnly",
            json!({"updateStrategy": {"type": "InPlaceOnly", "maxSurge": "10%"}}),
            vec![e(MS, Invalid, NO_SURGE_IN_PLACE_ONLY)],
        ),
        (
            "maxSurge with InPlaceIfPossible",
            json!({"updateStrategy": {"type": "InPlaceIfPossible", "maxSurge": "50%", "partition": "99%"}}),
            vec![],
        ),
        (
            "negative progressDeadlineSeconds: both rules",
            json!({"progressDeadlineSeconds": -1}),
            vec![
                e("spec.progressDeadlineSeconds", Invalid, NONNEGATIVE),
                e(
                    "spec.progressDeadlineSeconds",
                    Invalid,
                    "must be greater than minReadySeconds",
                ),
            ],
        ),
        (
            "progressDeadlineSeconds equal to minReadySeconds",
            json!({"progressDeadlineSeconds": 10, "minReadySeconds": 10}),
            vec![e(
                "spec.progressDeadlineSeconds",
                Invalid,
                "must be greater than minReadySeconds",
            )],
        ),
        (
            "progressDeadlineSeconds less than minReadySeconds",
            json!({"progressDeadlineSeconds": 10, "minReadySeconds": 15}),
            vec![e(
                "spec.progressDeadlineSeconds",
                Invalid,
                "must be greater than minReadySeconds",
            )],
        ),
        (
            "progressDeadlineSeconds 0 without minReadySeconds",
            json!({"progressDeadlineSeconds": 0}),
            vec![e(
                "spec.progressDeadlineSeconds",
                Invalid,
                "must be greater than minReadySeconds",
            )],
        ),
        (
            "progressDeadlineSeconds MaxInt32 means no deadline",
            json!({"progressDeadlineSeconds": 2147483647, "minReadySeconds": 2147483647}),
            vec![],
        ),
        (
            "several errors, in kruise's order",
            json!({"replicas": -1, "progressDeadlineSeconds": 1, "minReadySeconds": 5,
                "selector": {"matchLabels": {"app": "other"}},
                "updateStrategy": {"type": "OnDelete"},
                "scaleStrategy": {"podsToDelete": ["p", "p"]}}),
            vec![
                e("spec.replicas", Invalid, NONNEGATIVE),
                e("spec.template.metadata.labels", Invalid, MISMATCH),
                e(
                    "spec.scaleStrategy.podsToDelete",
                    Invalid,
                    "duplicated items [p]",
                ),
                e(
                    &ty,
                    Invalid,
                    "must be 'ReCreate', InPlaceIfPossible or 'InPlaceOnly'",
                ),
                e(
                    "spec.progressDeadlineSeconds",
                    Invalid,
                    "must be greater than minReadySeconds",
                ),
            ],
        ),
    ];
    for (rule, extra, want) in cases {
        assert_eq!(errors(cloneset(extra).validate_defaulted()), want, "{rule}");
    }
}

#[test]
fn errors_read_as_kruise_writes_them() {
    let errs = cloneset(json!({"updateStrategy": {"maxUnavailable": 0, "maxSurge": 0}}))
        .validate_defaulted();
    assert_eq!(
        errs.to_string(),
        "[spec.updateStrategy.maxUnavailable: Invalid value: \"0\": maxUnavailable and maxSurge should not both be less than 1]"
    );
    let errs =
        cloneset(json!({"progressDeadlineSeconds": 5, "minReadySeconds": 10})).validate_defaulted();
    assert_eq!(
        errs.to_string(),
        "[spec.progressDeadlineSeconds: Invalid value: \"5\": must be greater than minReadySeconds]"
    );
}

#[test]
fn update_table() {
    let in_place_only = json!({"updateStrategy": {"type": "InPlaceOnly"}});
    let with_container = |c: Value| json!({"updateStrategy": {"type": "InPlaceOnly"}, "template": template(json!({"containers": [c]}))});
    let cases: Vec<(&str, Value, Value, Vec<Want>)> = vec![
        ("no change", json!({}), json!({}), vec![]),
        (
            "every mutable field changes (kruise's success case)",
            json!({"replicas": 2, "revisionHistoryLimit": 2, "minReadySeconds": 5,
                "progressDeadlineSeconds": 10,
                "scaleStrategy": {"podsToDelete": ["p1"]},
                "volumeClaimTemplates": [{"metadata": {"name": "foo"},
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "60Gi"}}}}],
                "updateStrategy": {"type": "ReCreate", "partition": 2, "maxUnavailable": 1},
                "template": template(json!({"containers": [{"name": "main", "image": "image1"}]}))}),
            json!({"replicas": 1, "revisionHistoryLimit": 1, "minReadySeconds": 0,
                "progressDeadlineSeconds": 600,
                "scaleStrategy": {"podsToDelete": ["p0"]},
                "lifecycle": {"preDelete": {"labelsHandler": {"hold": "true"}}},
                "volumeClaimTemplates": [{"metadata": {"name": "foo"},
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "30Gi"}}}}],
                "updateStrategy": {"type": "InPlaceOnly", "partition": 2, "maxUnavailable": 1},
                "template": template(json!({"containers": [{"name": "main", "image": "image"}]}))}),
            vec![],
        ),
        (
            "the selector is immutable (kruise's disallowed-field-modification)",
            json!({}),
            json!({"selector": {"matchLabels": null,
                "matchExpressions": [{"key": "app", "operator": "In", "values": ["demo"]}]}}),
            vec![e("spec", Forbidden, FORBIDDEN_UPDATE)],
        ),
        (
            "an empty and an absent matchExpressions are the same selector",
            json!({}),
            json!({"selector": {"matchExpressions": []}}),
            vec![],
        ),
        (
            "InPlaceOnly: an image change is fine",
            with_container(json!({"name": "main", "image": "nginx:1.27"})),
            with_container(json!({"name": "main", "image": "nginx:1.28"})),
            vec![],
        ),
        (
            "InPlaceOnly: another change is refused (kruise's invalid-cloneset-update-1)",
            with_container(json!({"name": "main", "image": "image2", "imagePullPolicy": "Always"})),
            with_container(
                json!({"name": "main", "image": "image", "imagePullPolicy": "IfNotPresent"}),
            ),
            vec![e(
                "spec",
                Forbidden,
                "only allowed to update images in spec for InPlaceOnly, but found replace /containers/0/imagePullPolicy",
            )],
        ),
        (
            "InPlaceOnly: an added field",
            in_place_only.clone(),
            with_container(json!({"name": "main", "image": "nginx:1.27", "args": ["-x"]})),
            vec![e(
                "spec",
                Forbidden,
                "only allowed to update images in spec for InPlaceOnly, but found add /containers/0/args",
            )],
        ),
        (
            "InPlaceOnly: an init container's image is not a container image (the pattern is anchored)",
            json!({"updateStrategy": {"type": "InPlaceOnly"}, "template": template(json!({
                "containers": [{"name": "main", "image": "i"}],
                "initContainers": [{"name": "init", "image": "a"}]}))}),
            json!({"updateStrategy": {"type": "InPlaceOnly"}, "template": template(json!({
                "containers": [{"name": "main", "image": "i"}],
                "initContainers": [{"name": "init", "image": "b"}]}))}),
            vec![e(
                "spec",
                Forbidden,
                "only allowed to update images in spec for InPlaceOnly, but found replace /initContainers/0/image",
            )],
        ),
        (
            "InPlaceIfPossible: any template change",
            json!({}),
            json!({"updateStrategy": {"type": "InPlaceIfPossible"},
                "template": template(json!({"containers": [{"name": "main", "image": "i", "args": ["-x"]}]}))}),
            vec![],
        ),
        (
            "the CREATE rules come after the update rules",
            json!({}),
            json!({"replicas": -1, "selector": {"matchLabels": {"app": "other"}},
                "template": {"metadata": {"labels": {"app": "other"}}}}),
            vec![
                e("spec", Forbidden, FORBIDDEN_UPDATE),
                e("spec.replicas", Invalid, NONNEGATIVE),
            ],
        ),
        (
            "a stored object that breaks a CREATE rule does not excuse the new one",
            json!({"updateStrategy": {"maxUnavailable": 0}}),
            json!({"updateStrategy": {"maxUnavailable": 0}}),
            vec![e(MU, Invalid, BOTH_LESS_THAN_ONE)],
        ),
    ];
    for (rule, old, new, want) in cases {
        let (old, new) = (cloneset(old), cloneset(new));
        assert_eq!(errors(new.validate_update(&old)), want, "{rule}");
    }
}

#[test]
fn scaled_values_as_kruise_reads_them() {
    let s = |v: &str| IntOrString::String(v.into());
    assert_eq!(scaled(Some(&IntOrString::Int(-3)), 10), Ok(-3));
    assert_eq!(scaled(Some(&s("25%")), 10), Ok(3), "rounds up");
    assert_eq!(scaled(Some(&s("1.5%")), 200), Ok(3), "a float percent");
    assert_eq!(scaled(Some(&s("0%")), 10), Ok(0));
    assert_eq!(scaled(Some(&s("3")), 10), Err(NOT_PERCENT.to_string()));
    assert_eq!(
        scaled(Some(&s("%")), 10),
        Err("strconv.ParseFloat: parsing \"\": invalid syntax".to_string())
    );
    assert_eq!(
        scaled(None, 10),
        Err("nil value for IntOrString".to_string())
    );
    assert_eq!(shown(None), "<nil>");
}

#[test]
fn the_in_place_pattern_is_anchored() {
    assert!(is_container_image("/containers/0/image"));
    assert!(is_container_image("/containers/12/image"));
    assert!(!is_container_image("/containers//image"));
    assert!(!is_container_image("/containers/0/imagePullPolicy"));
    assert!(!is_container_image("/initContainers/0/image"));
    assert!(!is_container_image("/x/containers/0/image"));
}
