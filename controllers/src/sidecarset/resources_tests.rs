//! Table tests of `resourcesPolicy` against OpenKruise 1.9's
//! `pkg/webhook/pod/mutating/sidecarset_resources.go` (and `pkg/util/calculator`).

use graft_api::apps::v1beta1::sidecarset::{SidecarContainer, SidecarSet};
use k8s_openapi::api::core::v1::Pod;
use serde_json::{Value, json};

use super::{SidecarSetError, resources};

fn pod(containers: Value, init_containers: Value) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"namespace": "ns", "name": "p"},
        "spec": {"containers": containers, "initContainers": init_containers}
    }))
    .unwrap()
}

fn app(name: &str, limits: Value, requests: Value) -> Value {
    json!({"name": name, "image": "app", "resources": {"limits": limits, "requests": requests}})
}

fn sidecar(policy: Value) -> SidecarContainer {
    serde_json::from_value(json!({"name": "proxy", "image": "envoy", "resourcesPolicy": policy}))
        .unwrap()
}

fn set_with(names: &[&str]) -> SidecarSet {
    let containers: Vec<Value> = names
        .iter()
        .map(|n| json!({"name": n, "image": "x"}))
        .collect();
    serde_json::from_value(json!({
        "metadata": {"name": "mesh"},
        "spec": {"selector": {"matchLabels": {"a": "b"}}, "containers": containers}
    }))
    .unwrap()
}

fn resources_of(pod: &Pod, policy: Value) -> Result<Value, String> {
    let mut s = sidecar(policy);
    resources::apply(pod, &mut s, &[set_with(&["proxy"])], "mesh").map_err(|e| match e {
        SidecarSetError::ResourcesPolicy { message, .. } => message,
        other => panic!("unexpected error {other}"),
    })?;
    Ok(serde_json::to_value(s.container.resources).unwrap())
}

const HALF: &str = "cpu*50%";

fn two_apps() -> Pod {
    pod(
        json!([
            app(
                "app",
                json!({"cpu": "1", "memory": "1Gi"}),
                json!({"cpu": "200m", "memory": "512Mi"})
            ),
            app(
                "web",
                json!({"cpu": "500m", "memory": "1Gi"}),
                json!({"cpu": "100m", "memory": "512Mi"})
            ),
        ]),
        json!([]),
    )
}

fn full_policy(mode: &str) -> Value {
    json!({
        "targetContainersMode": mode,
        "targetContainersNameRegex": ".*",
        "resourcesExpr": {
            "limits": {"cpu": HALF, "memory": "memory*50%"},
            "requests": {"cpu": "max(cpu*50%, 50m)", "memory": "max(memory*50%, 100Mi)"}
        }
    })
}

#[test]
fn sum_and_max_modes_aggregate_limits_and_requests() {
    for (mode, want) in [
        (
            "sum",
            json!({"limits": {"cpu": "750m", "memory": "1Gi"},
                   "requests": {"cpu": "150m", "memory": "512Mi"}}),
        ),
        (
            "max",
            json!({"limits": {"cpu": "500m", "memory": "512Mi"},
                   "requests": {"cpu": "100m", "memory": "256Mi"}}),
        ),
        // Any other mode aggregates nothing: no limits, requests from zero.
        (
            "avg",
            json!({"requests": {"cpu": "50m", "memory": "100Mi"}}),
        ),
    ] {
        assert_eq!(
            resources_of(&two_apps(), full_policy(mode)),
            Ok(want),
            "{mode}"
        );
    }
}

#[test]
fn a_target_without_a_limit_leaves_the_sidecar_limit_unlimited() {
    let p = pod(
        json!([
            app("app", json!({"cpu": "1"}), json!({})),
            app(
                "web",
                json!({"cpu": "2", "memory": "1Gi"}),
                json!({"cpu": "300m"})
            ),
        ]),
        json!([]),
    );
    for mode in ["sum", "max"] {
        let got = resources_of(&p, full_policy(mode)).unwrap();
        let want_cpu = if mode == "sum" { "1500m" } else { "1" };
        assert_eq!(
            got["limits"],
            json!({"cpu": want_cpu}),
            "{mode}: memory stays unset"
        );
        // A missing request counts as zero: memory falls back to the 100Mi floor.
        assert_eq!(got["requests"]["memory"], json!("100Mi"), "{mode}");
        assert_eq!(got["requests"]["cpu"], json!("150m"), "{mode}");
    }
}

#[test]
fn targets_are_matching_containers_and_native_sidecars_but_not_kruise_sidecars() {
    let p = pod(
        json!([
            app("app-main", json!({"cpu": "1"}), json!({})),
            app("other", json!({"cpu": "8"}), json!({})),
            // A pod container named like a sidecar of a matched SidecarSet is not a target.
            app("proxy", json!({"cpu": "16"}), json!({})),
        ]),
        json!([
            {"name": "app-native", "image": "n", "restartPolicy": "Always",
             "resources": {"limits": {"cpu": "2"}}},
            {"name": "app-init", "image": "i", "resources": {"limits": {"cpu": "4"}}}
        ]),
    );
    let policy = json!({
        "targetContainersMode": "sum",
        "targetContainersNameRegex": "^app",
        "resourcesExpr": {"limits": {"cpu": "cpu"}}
    });
    assert_eq!(
        resources_of(&p, policy).unwrap(),
        json!({"limits": {"cpu": "3"}}),
        "app-main + app-native only"
    );
    // The regex is unanchored, as Go's MatchString.
    let policy = json!({
        "targetContainersMode": "max",
        "targetContainersNameRegex": "the",
        "resourcesExpr": {"limits": {"cpu": "cpu"}}
    });
    assert_eq!(
        resources_of(&p, policy).unwrap(),
        json!({"limits": {"cpu": "8"}})
    );
}

#[test]
fn plain_number_results_and_empty_expressions() {
    let policy = json!({
        "targetContainersMode": "sum",
        "targetContainersNameRegex": ".*",
        "resourcesExpr": {
            // A number is millicores for cpu; an expression that does not name `memory` reads
            // `cpu` and converts like cpu even for the memory request.
            "limits": {"cpu": "0.5", "memory": ""},
            "requests": {"cpu": "cpu - cpu", "memory": "128974848"}
        }
    });
    assert_eq!(
        resources_of(&two_apps(), policy),
        Ok(json!({"limits": {"cpu": "500m"}, "requests": {"cpu": "0", "memory": "128974848"}}))
    );
    let nothing = json!({"targetContainersMode": "sum", "resourcesExpr": {}});
    assert_eq!(
        resources_of(&two_apps(), nothing),
        Ok(json!({})),
        "resources become empty"
    );
}

#[test]
fn errors_are_kruises() {
    let p = two_apps();
    let with = |regex: &str, expr: Value| json!({"targetContainersMode": "sum", "targetContainersNameRegex": regex, "resourcesExpr": expr});
    assert_eq!(
        resources_of(&p, with("^db", json!({}))),
        Err(r#"no containers match the regex pattern "^db""#.to_string())
    );
    let invalid = resources_of(&p, with("(", json!({}))).unwrap_err();
    assert!(
        invalid.starts_with(r#"failed to get target containers: invalid regex pattern "(": "#),
        "{invalid}"
    );
    for (expr, want) in [
        (
            json!({"requests": {"cpu": "cpu - 1"}}),
            r#"failed to evaluate CPU requests expression: failed to parse expression "cpu - 1": calculation result is negative: -700m"#,
        ),
        (
            json!({"requests": {"memory": "memory / 0"}}),
            r#"failed to evaluate memory requests expression: failed to parse expression "memory / 0": division by zero"#,
        ),
        (
            json!({"limits": {"cpu": "cpu * cpu"}}),
            r#"failed to evaluate CPU limits expression: failed to parse expression "cpu * cpu": multiplication of two quantities"#,
        ),
        (
            json!({"limits": {"memory": "mem * 2"}}),
            r#"failed to evaluate memory limits expression: failed to parse expression "mem * 2": undefined variable: mem"#,
        ),
    ] {
        assert_eq!(resources_of(&p, with(".*", expr)), Err(want.to_string()));
    }
}

#[test]
fn no_policy_leaves_the_sidecar_alone() {
    let mut s: SidecarContainer =
        serde_json::from_value(json!({"name": "proxy", "resources": {"limits": {"cpu": "1"}}}))
            .unwrap();
    let before = s.clone();
    resources::apply(&two_apps(), &mut s, &[], "mesh").unwrap();
    assert_eq!(s, before);
}
