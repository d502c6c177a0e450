//! Pod template defaulting and normalisation.
//!
//! kruise-manager's mutating webhook fills pod-spec defaults into a CloneSet's template
//! (`apis/apps/defaults/pod.go SetDefaultPodSpec`) before the template is written into a
//! ControllerRevision, and Go's encoder always writes some empty fields. graft has no such webhook,
//! so the same template arrives from Git without them. [`kruise_defaults`] adds them (used to write
//! revision data the way kruise does); [`normalize_pod_template`] goes further and removes every
//! difference that does not change the pod (empty values, quantity spelling), so two templates are
//! equal exactly when kruise would run the same pods for them.

use serde_json::{Map, Value};

/// Fills in the defaults kruise-manager's webhook writes into a pod template, plus the fields Go's
/// encoder always emits (`metadata.creationTimestamp: null`, container `resources: {}`).
pub fn kruise_defaults(template: &mut Value) {
    let Some(t) = template.as_object_mut() else {
        return;
    };
    let meta = object_entry(t, "metadata");
    meta.entry("creationTimestamp").or_insert(Value::Null);
    let spec = object_entry(t, "spec");
    set_if_empty(spec, "dnsPolicy", "ClusterFirst".into());
    set_if_empty(spec, "restartPolicy", "Always".into());
    set_if_null(spec, "securityContext", Value::Object(Map::new()));
    set_if_null(spec, "terminationGracePeriodSeconds", 30.into());
    set_if_empty(spec, "schedulerName", "default-scheduler".into());
    for (key, kind) in [
        ("initContainers", ContainerKind::Init),
        ("containers", ContainerKind::App),
        ("ephemeralContainers", ContainerKind::Ephemeral),
    ] {
        if let Some(Value::Array(containers)) = spec.get_mut(key) {
            for c in containers.iter_mut().filter_map(Value::as_object_mut) {
                default_container(c, kind);
            }
        }
    }
    if let Some(Value::Array(volumes)) = spec.get_mut("volumes") {
        for v in volumes.iter_mut().filter_map(Value::as_object_mut) {
            default_volume(v);
        }
    }
}

/// Returns the template in the form used to compare revisions: kruise defaults filled in, Pod-level
/// API defaults filled in, empty and zero values that mean "unset" removed, quantities spelled
/// canonically, `$patch` and `creationTimestamp` dropped.
pub fn normalize_pod_template(template: &Value) -> Value {
    let mut t = template.clone();
    kruise_defaults(&mut t);
    if let Some(obj) = t.as_object_mut() {
        obj.remove("$patch");
        object_entry(obj, "metadata").remove("creationTimestamp");
        // Set by the API server on pods (SetDefaults_Pod), not by kruise on templates.
        set_if_null(
            object_entry(obj, "spec"),
            "enableServiceLinks",
            Value::Bool(true),
        );
    }
    prune(&mut t, None);
    t
}

#[derive(Clone, Copy, PartialEq)]
enum ContainerKind {
    Init,
    App,
    Ephemeral,
}

fn default_container(c: &mut Map<String, Value>, kind: ContainerKind) {
    match kind {
        // kruise defaults app containers to Always "for in-place update".
        ContainerKind::App => set_if_empty(c, "imagePullPolicy", "Always".into()),
        ContainerKind::Init => {
            let image = c.get("image").and_then(Value::as_str).unwrap_or_default();
            let policy = if image_tag_is_latest(image) {
                "Always"
            } else {
                "IfNotPresent"
            };
            set_if_empty(c, "imagePullPolicy", policy.into());
        }
        ContainerKind::Ephemeral => {}
    }
    if kind != ContainerKind::Ephemeral {
        set_if_empty(c, "terminationMessagePath", "/dev/termination-log".into());
        set_if_empty(c, "terminationMessagePolicy", "File".into());
    }
    set_if_null(c, "resources", Value::Object(Map::new()));
    if let Some(Value::Array(ports)) = c.get_mut("ports") {
        for p in ports.iter_mut().filter_map(Value::as_object_mut) {
            set_if_empty(p, "protocol", "TCP".into());
        }
    }
    if let Some(Value::Array(env)) = c.get_mut("env") {
        for e in env.iter_mut().filter_map(Value::as_object_mut) {
            if let Some(Value::Object(field_ref)) = e
                .get_mut("valueFrom")
                .and_then(Value::as_object_mut)
                .and_then(|vf| vf.get_mut("fieldRef"))
            {
                set_if_empty(field_ref, "apiVersion", "v1".into());
            }
        }
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(Value::Object(p)) = c.get_mut(probe) {
            for (key, value) in [
                ("timeoutSeconds", 1),
                ("periodSeconds", 10),
                ("successThreshold", 1),
                ("failureThreshold", 3),
            ] {
                set_if_empty(p, key, value.into());
            }
            default_http_get(p);
        }
    }
    if let Some(Value::Object(lifecycle)) = c.get_mut("lifecycle") {
        for hook in ["postStart", "preStop"] {
            if let Some(Value::Object(h)) = lifecycle.get_mut(hook) {
                default_http_get(h);
            }
        }
    }
}

fn default_http_get(handler: &mut Map<String, Value>) {
    if let Some(Value::Object(get)) = handler.get_mut("httpGet") {
        set_if_empty(get, "path", "/".into());
        set_if_empty(get, "scheme", "HTTP".into());
    }
}

fn default_volume(v: &mut Map<String, Value>) {
    if v.keys().all(|k| k == "name") {
        v.insert("emptyDir".into(), Value::Object(Map::new()));
    }
    if let Some(Value::Object(host_path)) = v.get_mut("hostPath") {
        set_if_null(host_path, "type", "".into());
    }
    for source in ["secret", "configMap", "downwardAPI", "projected"] {
        if let Some(Value::Object(s)) = v.get_mut(source) {
            set_if_null(s, "defaultMode", 420.into());
        }
    }
    if let Some(Value::Object(d)) = v.get_mut("downwardAPI") {
        default_downward_items(d);
    }
    if let Some(Value::Array(sources)) = v
        .get_mut("projected")
        .and_then(Value::as_object_mut)
        .and_then(|p| p.get_mut("sources"))
    {
        for s in sources.iter_mut().filter_map(Value::as_object_mut) {
            if let Some(Value::Object(d)) = s.get_mut("downwardAPI") {
                default_downward_items(d);
            }
            if let Some(Value::Object(token)) = s.get_mut("serviceAccountToken") {
                set_if_null(token, "expirationSeconds", 3600.into());
            }
        }
    }
}

fn default_downward_items(d: &mut Map<String, Value>) {
    if let Some(Value::Array(items)) = d.get_mut("items") {
        for item in items.iter_mut().filter_map(Value::as_object_mut) {
            if let Some(Value::Object(field_ref)) = item.get_mut("fieldRef") {
                set_if_empty(field_ref, "apiVersion", "v1".into());
            }
        }
    }
}

/// Kubernetes' `SetDefaults_Container` rule: no tag and no digest means `latest`.
fn image_tag_is_latest(image: &str) -> bool {
    let (name, has_digest) = match image.split_once('@') {
        Some((n, _)) => (n, true),
        None => (image, false),
    };
    let last = name.rsplit('/').next().unwrap_or(name);
    match last.split_once(':') {
        Some((_, tag)) => tag == "latest",
        None => !has_digest,
    }
}

fn object_entry<'a>(obj: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let entry = obj
        .entry(key.to_string())
        .or_insert_with(|| Value::Object(Map::new()));
    if !entry.is_object() {
        *entry = Value::Object(Map::new());
    }
    match entry {
        Value::Object(m) => m,
        // Unreachable: replaced by an object just above.
        _ => unreachable!("entry was made an object"),
    }
}

fn set_if_null(obj: &mut Map<String, Value>, key: &str, value: Value) {
    if obj.get(key).is_none_or(Value::is_null) {
        obj.insert(key.to_string(), value);
    }
}

/// Sets a default where Go sees the zero value of a non-pointer field (absent, null, "" or 0).
fn set_if_empty(obj: &mut Map<String, Value>, key: &str, value: Value) {
    let empty = match obj.get(key) {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        Some(Value::Number(n)) => n.as_f64() == Some(0.0),
        _ => false,
    };
    if empty {
        obj.insert(key.to_string(), value);
    }
}

/// Keys whose value is a map of user strings: an empty string there is data, not "unset".
const STRING_MAPS: &[&str] = &[
    "labels",
    "annotations",
    "nodeSelector",
    "matchLabels",
    "volumeAttributes",
    "options",
];
/// Keys holding resource lists (name → quantity).
const RESOURCE_LISTS: &[&str] = &["limits", "requests", "overhead"];
/// Non-pointer Go fields with `omitempty` where 0 / false means unset.
const OMITEMPTY_ZERO: &[&str] = &["initialDelaySeconds", "hostPort"];
const OMITEMPTY_FALSE: &[&str] = &[
    "stdin",
    "stdinOnce",
    "tty",
    "hostNetwork",
    "hostPID",
    "hostIPC",
    "readOnly",
];

/// Removes values that mean "unset" and canonicalises quantities; `parent` is the key holding
/// `value`.
fn prune(value: &mut Value, parent: Option<&str>) {
    match value {
        Value::Object(map) => {
            let string_map = parent.is_some_and(|p| STRING_MAPS.contains(&p));
            let resource_list = parent.is_some_and(|p| RESOURCE_LISTS.contains(&p));
            for (key, v) in map.iter_mut() {
                if (resource_list || key == "sizeLimit")
                    && let Value::String(q) = v
                {
                    *q = canonical_quantity(q);
                }
                prune(v, Some(key));
            }
            map.retain(|key, v| {
                !(is_unset(v)
                    || (!string_map && v.as_str() == Some(""))
                    || (OMITEMPTY_ZERO.contains(&key.as_str()) && v.as_i64() == Some(0))
                    || (OMITEMPTY_FALSE.contains(&key.as_str()) && v.as_bool() == Some(false)))
            });
        }
        Value::Array(items) => {
            for item in items.iter_mut() {
                prune(item, None);
            }
        }
        _ => {}
    }
}

fn is_unset(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// A quantity written as its exact value in nano units (`"1Gi"` and `"1024Mi"` both become
/// `"1073741824000000000n"`); a string that does not parse is kept as written.
pub fn canonical_quantity(q: &str) -> String {
    quantity_nanos(q).map_or_else(|| q.to_string(), |n| format!("{n}n"))
}

fn quantity_nanos(q: &str) -> Option<i128> {
    let q = q.trim();
    let (sign, q) = match q.strip_prefix('-') {
        Some(rest) => (-1, rest),
        None => (1, q.strip_prefix('+').unwrap_or(q)),
    };
    let number_end = q
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(q.len());
    let (number, suffix) = q.split_at(number_end);
    if number.is_empty() || number == "." {
        return None;
    }
    let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
    let digits = format!("{int_part}{frac_part}");
    let mut mantissa: i128 = digits.parse().ok()?;
    let mut exp10: i32 = 9 - i32::try_from(frac_part.len()).ok()?;
    let mut factor: i128 = 1;
    match suffix {
        "" => {}
        "n" => exp10 -= 9,
        "u" => exp10 -= 6,
        "m" => exp10 -= 3,
        "k" => exp10 += 3,
        "M" => exp10 += 6,
        "G" => exp10 += 9,
        "T" => exp10 += 12,
        "P" => exp10 += 15,
        "E" => exp10 += 18,
        "Ki" => factor = 1 << 10,
        "Mi" => factor = 1 << 20,
        "Gi" => factor = 1 << 30,
        "Ti" => factor = 1 << 40,
        "Pi" => factor = 1 << 50,
        "Ei" => factor = 1 << 60,
        s => {
            let e = s.strip_prefix('e').or_else(|| s.strip_prefix('E'))?;
            exp10 += e.parse::<i32>().ok()?;
        }
    }
    mantissa = mantissa.checked_mul(factor)?;
    while exp10 > 0 {
        mantissa = mantissa.checked_mul(10)?;
        exp10 -= 1;
    }
    while exp10 < 0 {
        if mantissa % 10 != 0 {
            // Finer than a nano unit; Kubernetes rounds these, keep the written form instead.
            return None;
        }
        mantissa /= 10;
        exp10 += 1;
    }
    Some(sign * mantissa)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use serde_json::json;

    #[test]
    fn quantities_compare_by_value() {
        let cases = [
            ("1Gi", "1024Mi", true),
            ("0.5", "500m", true),
            ("1", "1000m", true),
            ("1k", "1000", true),
            ("1e3", "1k", true),
            ("100m", "0.1", true),
            ("1G", "1Gi", false),
            ("2", "1", false),
        ];
        for (a, b, equal) in cases {
            assert_eq!(
                canonical_quantity(a) == canonical_quantity(b),
                equal,
                "{a} vs {b}"
            );
        }
        assert_eq!(canonical_quantity("garbage"), "garbage");
    }

    #[test]
    fn latest_tag_rule() {
        let cases = [
            ("nginx", true),
            ("nginx:latest", true),
            ("nginx:1.25", false),
            ("localhost:5000/app", true),
            ("localhost:5000/app:v1", false),
            ("nginx@sha256:abc", false),
        ];
        for (image, latest) in cases {
            assert_eq!(image_tag_is_latest(image), latest, "{image}");
        }
    }

    #[test]
    fn defaults_match_kruise_webhook() {
        let mut t = json!({
            "metadata": {"labels": {"app": "demo"}},
            "spec": {
                "initContainers": [{"name": "init", "image": "busybox"}],
                "containers": [{
                    "name": "main", "image": "nginx:1",
                    "ports": [{"containerPort": 80}],
                    "readinessProbe": {"httpGet": {"port": 80}},
                    "env": [{"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}]
                }],
                "volumes": [{"name": "cfg", "configMap": {"name": "c"}}, {"name": "scratch"}]
            }
        });
        kruise_defaults(&mut t);
        assert_eq!(
            t,
            json!({
                "metadata": {"creationTimestamp": null, "labels": {"app": "demo"}},
                "spec": {
                    "dnsPolicy": "ClusterFirst",
                    "restartPolicy": "Always",
                    "schedulerName": "default-scheduler",
                    "securityContext": {},
                    "terminationGracePeriodSeconds": 30,
                    "initContainers": [{
                        "name": "init", "image": "busybox", "imagePullPolicy": "Always",
                        "resources": {}, "terminationMessagePath": "/dev/termination-log",
                        "terminationMessagePolicy": "File"
                    }],
                    "containers": [{
                        "name": "main", "image": "nginx:1", "imagePullPolicy": "Always",
                        "ports": [{"containerPort": 80, "protocol": "TCP"}],
                        "readinessProbe": {
                            "httpGet": {"port": 80, "path": "/", "scheme": "HTTP"},
                            "timeoutSeconds": 1, "periodSeconds": 10,
                            "successThreshold": 1, "failureThreshold": 3
                        },
                        "env": [{"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName", "apiVersion": "v1"}}}],
                        "resources": {}, "terminationMessagePath": "/dev/termination-log",
                        "terminationMessagePolicy": "File"
                    }],
                    "volumes": [
                        {"name": "cfg", "configMap": {"name": "c", "defaultMode": 420}},
                        {"name": "scratch", "emptyDir": {}}
                    ]
                }
            })
        );
    }

    #[test]
    fn normalisation_equates_defaulted_and_plain_templates() {
        let plain = json!({
            "metadata": {"labels": {"app": "demo", "empty": ""}},
            "spec": {"containers": [{
                "name": "main", "image": "nginx:1",
                "resources": {"limits": {"memory": "1024Mi", "cpu": "0.5"}},
                "ports": [{"containerPort": 80, "hostPort": 0}],
                "env": [{"name": "A", "value": ""}]
            }]}
        });
        let kruise = json!({
            "$patch": "replace",
            "metadata": {"creationTimestamp": null, "labels": {"app": "demo", "empty": ""}},
            "spec": {
                "containers": [{
                    "name": "main", "image": "nginx:1", "imagePullPolicy": "Always",
                    "resources": {"limits": {"memory": "1Gi", "cpu": "500m"}},
                    "ports": [{"containerPort": 80, "protocol": "TCP"}],
                    "env": [{"name": "A"}],
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File"
                }],
                "dnsPolicy": "ClusterFirst", "restartPolicy": "Always",
                "schedulerName": "default-scheduler", "securityContext": {},
                "terminationGracePeriodSeconds": 30
            }
        });
        assert_eq!(
            normalize_pod_template(&plain),
            normalize_pod_template(&kruise)
        );
        // The empty label value is data: dropping it is a change.
        let mut other = plain.clone();
        other["metadata"]["labels"]
            .as_object_mut()
            .unwrap()
            .remove("empty");
        assert_ne!(
            normalize_pod_template(&plain),
            normalize_pod_template(&other)
        );
        // An explicit non-default pull policy is a change.
        let mut other = plain.clone();
        other["spec"]["containers"][0]["imagePullPolicy"] = json!("IfNotPresent");
        assert_ne!(
            normalize_pod_template(&plain),
            normalize_pod_template(&other)
        );
    }
}
