//! The Helm chart (`deploy/helm/graft`) with a real helm (built from the Go module proxy by
//! `deploy/helm/build-helm.sh`): `helm lint`, `helm template` of what the install needs, the
//! chart's CRDs equal to `deploy/crds/`, and `deploy/manifests/graft.yaml` not stale.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn helm() -> PathBuf {
    let out = Command::new(root().join("deploy/helm/build-helm.sh"))
        .output()
        .expect("running deploy/helm/build-helm.sh");
    assert!(
        out.status.success(),
        "building helm failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `helm template` of the chart as parsed objects.
fn template(release: &str, namespace: &str, sets: &[&str]) -> Vec<Value> {
    let mut cmd = Command::new(helm());
    cmd.args(["template", release])
        .arg(root().join("deploy/helm/graft"))
        .args(["--namespace", namespace]);
    for s in sets {
        cmd.args(["--set", s]);
    }
    parse(&run(&mut cmd))
}

fn parse(yaml: &str) -> Vec<Value> {
    let docs: Vec<Option<Value>> =
        serde_saphyr::from_multiple(yaml).unwrap_or_else(|e| panic!("rendered YAML: {e}"));
    docs.into_iter()
        .flatten()
        .filter(|d| !d.is_null())
        .collect()
}

fn find<'a>(objs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objs.iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| {
            let all: Vec<String> = objs
                .iter()
                .map(|o| format!("{}/{}", o["kind"], o["metadata"]["name"]))
                .collect();
            panic!("no {kind} {name} in the rendered chart; it has {all:?}")
        })
}

fn cluster_scoped(objs: &[Value]) -> Vec<String> {
    objs.iter()
        .filter(|o| o["metadata"]["namespace"].is_null())
        .map(|o| {
            format!(
                "{}/{}",
                o["kind"],
                o["metadata"]["name"].as_str().unwrap_or("")
            )
        })
        .collect()
}

#[test]
fn helm_lint_passes() {
    let out = run(Command::new(helm())
        .args(["lint", "--strict"])
        .arg(root().join("deploy/helm/graft")));
    assert!(out.contains("0 chart(s) failed"), "helm lint:\n{out}");
}

#[test]
fn the_chart_renders_the_manager_the_agent_and_their_rbac() {
    let objs = template("graft", "graft-system", &[]);
    let dep = find(&objs, "Deployment", "graft-manager");
    assert_eq!(dep["spec"]["replicas"], 2);
    let c = &dep["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["args"][0], "run", "the manager runs `graft run`: {c}");
    let env: Vec<&str> = c["env"]
        .as_array()
        .expect("env")
        .iter()
        .filter_map(|e| e["name"].as_str())
        .collect();
    assert!(
        env.contains(&"POD_NAME") && env.contains(&"POD_NAMESPACE"),
        "{env:?}"
    );
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert!(c["resources"]["requests"]["memory"].is_string(), "{c}");
    assert_eq!(
        dep["spec"]["template"]["spec"]["serviceAccountName"],
        "graft-manager"
    );

    let ds = find(&objs, "DaemonSet", "graft-nodeagent");
    let a = &ds["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(a["args"][0], "nodeagent");
    assert_eq!(a["env"][0]["name"], "NODE_NAME");
    assert_eq!(
        a["env"][0]["valueFrom"]["fieldRef"]["fieldPath"],
        "spec.nodeName"
    );
    assert_eq!(
        ds["spec"]["template"]["spec"]["volumes"][0]["hostPath"]["path"],
        "/run/containerd"
    );
    find(&objs, "Service", "graft");

    // Least privilege: the agent reads pods and writes only statuses; the manager writes pods
    // and reads nodes (NodeImage manager on in a cluster-wide install).
    let agent = find(&objs, "ClusterRole", "graft-nodeagent");
    let agent_writes_pods = agent["rules"].as_array().expect("rules").iter().any(|r| {
        r["resources"]
            .as_array()
            .is_some_and(|v| v.iter().any(|x| x == "pods"))
            && r["verbs"]
                .as_array()
                .is_some_and(|v| v.iter().any(|x| x == "patch" || x == "delete"))
    });
    assert!(!agent_writes_pods, "the agent must not write pods: {agent}");
    let manager = find(&objs, "ClusterRole", "graft-manager");
    let rules = manager["rules"].to_string();
    assert!(
        rules.contains("\"nodes\"") && rules.contains("\"gitsyncs/status\""),
        "{rules}"
    );
    find(&objs, "Role", "graft-manager-leader");
    // CRDs are not templates: `helm uninstall` never deletes them.
    assert!(objs.iter().all(|o| o["kind"] != "CustomResourceDefinition"));
}

#[test]
fn cluster_scoped_names_derive_from_the_release() {
    let a = cluster_scoped(&template("one", "ns-a", &[]));
    let b = cluster_scoped(&template("two", "ns-b", &[]));
    assert!(!a.is_empty());
    let clash: Vec<&String> = a.iter().filter(|n| b.contains(n)).collect();
    assert!(clash.is_empty(), "two releases would share {clash:?}");
}

#[test]
fn a_namespaced_install_gets_a_role_in_its_namespace_and_no_nodeimage_writes() {
    let objs = template("t", "graft-t", &["manager.watchNamespace=apps"]);
    let role = find(&objs, "Role", "t-graft-manager");
    assert_eq!(role["metadata"]["namespace"], "apps");
    assert!(role["rules"].to_string().contains("\"pods\""));
    let cluster = find(&objs, "ClusterRole", "t-graft-manager");
    let rules = cluster["rules"].to_string();
    assert!(
        !rules.contains("\"pods\""),
        "pods only in the Role: {rules}"
    );
    assert!(
        !rules.contains("\"create\""),
        "nothing cluster-wide is written: {rules}"
    );
    let dep = find(&objs, "Deployment", "t-graft-manager");
    let args = dep["spec"]["template"]["spec"]["containers"][0]["args"].to_string();
    assert!(args.contains("--watch-namespace=apps"), "{args}");
    assert!(args.contains("--nodeimage-manager=false"), "{args}");
}

#[test]
fn the_chart_crds_are_deploy_crds() {
    let dir = |p: &str| -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = std::fs::read_dir(root().join(p))
            .unwrap_or_else(|e| panic!("{p}: {e}"))
            .map(|e| {
                let path = e.expect("dir entry").path();
                (
                    path.file_name()
                        .expect("name")
                        .to_string_lossy()
                        .into_owned(),
                    std::fs::read_to_string(&path).expect("read"),
                )
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        dir("deploy/helm/graft/crds"),
        dir("deploy/crds"),
        "the chart's CRDs are stale: run `make crds`"
    );
}

#[test]
fn the_plain_manifests_are_up_to_date() {
    let fresh = run(&mut Command::new(root().join("deploy/helm/manifests.sh")));
    let committed = std::fs::read_to_string(Path::new(&root()).join("deploy/manifests/graft.yaml"))
        .expect("reading deploy/manifests/graft.yaml");
    assert!(
        fresh == committed,
        "deploy/manifests/graft.yaml is stale: run `make manifests`"
    );
    let objs = parse(&committed);
    assert!(objs.iter().any(|o| o["kind"] == "CustomResourceDefinition"));
    assert!(objs.iter().any(|o| o["kind"] == "Namespace"));
}
