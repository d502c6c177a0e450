//! The Helm chart (`deploy/helm/graft`) with a real helm (built from the Go module proxy by
//! `deploy/helm/build-helm.sh`): `helm lint`, `helm template` of what the install needs, the
//! chart's CRDs equal to `deploy/crds/`, `deploy/manifests/graft.yaml` not stale, and (on the
//! local cluster) the RBAC of a cluster-wide install checked with `kubectl auth can-i`.
#![cfg(feature = "cluster-tests")]

mod support;

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
        !rules.contains("\"create\"") && !rules.contains("\"delete\""),
        "nothing cluster-wide is created or deleted (SidecarSets, cluster-scoped, are only patched): {rules}"
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

/// The chart's RBAC objects of one release, applied to the cluster; removed when dropped
/// (the ClusterRoles are cluster-scoped, the rest goes with the test namespace).
struct AppliedRbac {
    cluster_scoped: Vec<String>,
}

impl Drop for AppliedRbac {
    fn drop(&mut self) {
        for obj in &self.cluster_scoped {
            let _ = Command::new("kubectl")
                .args(["delete", "--ignore-not-found", obj])
                .output();
        }
    }
}

fn can_i(sa: &str, args: &[&str]) -> bool {
    let out = Command::new("kubectl")
        .args(["auth", "can-i"])
        .args(args)
        .arg(format!("--as={sa}"))
        .output()
        .expect("kubectl auth can-i");
    String::from_utf8_lossy(&out.stdout).trim() == "yes"
}

#[tokio::test]
async fn a_cluster_wide_install_grants_what_the_code_uses_and_no_more() {
    let client = support::client().await;
    let ns = support::TestNamespace::new(&client, "helm-rbac").await;
    let objs = template(&ns.name, &ns.name, &[]);
    let rbac: Vec<&Value> = objs
        .iter()
        .filter(|o| {
            [
                "ServiceAccount",
                "ClusterRole",
                "ClusterRoleBinding",
                "Role",
                "RoleBinding",
            ]
            .iter()
            .any(|k| o["kind"] == *k)
        })
        .collect();
    let _cleanup = AppliedRbac {
        cluster_scoped: rbac
            .iter()
            .filter(|o| o["metadata"]["namespace"].is_null())
            .map(|o| {
                format!(
                    "{}/{}",
                    o["kind"].as_str().unwrap_or("").to_lowercase(),
                    o["metadata"]["name"].as_str().unwrap_or("")
                )
            })
            .collect(),
    };
    let mut apply = Command::new("kubectl")
        .args(["apply", "--server-side", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("kubectl apply");
    {
        use std::io::Write;
        let mut stdin = apply.stdin.take().expect("stdin");
        for o in &rbac {
            writeln!(stdin, "---\n{o}").expect("write manifest");
        }
    }
    let out = apply.wait_with_output().expect("kubectl apply");
    assert!(
        out.status.success(),
        "applying the chart's RBAC: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let full = format!("{}-graft", ns.name);
    let manager = format!("system:serviceaccount:{}:{full}-manager", ns.name);
    let agent = format!("system:serviceaccount:{}:{full}-nodeagent", ns.name);
    let own = ns.name.as_str();
    // What the controllers, the sync and the dashboard do (any namespace, cluster-wide install).
    let allowed: &[&[&str]] = &[
        &["create", "pods", "-n", "default"],
        &["patch", "pods", "-n", "default"],
        &["delete", "pods", "-n", "default"],
        &["update", "pods", "--subresource=status", "-n", "default"],
        &["create", "persistentvolumeclaims", "-n", "default"],
        &["create", "controllerrevisions.apps", "-n", "default"],
        &[
            "update",
            "clonesets.apps.kruise.io",
            "--subresource=status",
            "-n",
            "default",
        ],
        &[
            "create",
            "containerrecreaterequests.apps.kruise.io",
            "-n",
            "default",
        ],
        &[
            "patch",
            "imagepulljobs.apps.kruise.io",
            "--subresource=status",
            "-n",
            "default",
        ],
        &["create", "nodeimages.apps.kruise.io"],
        &["list", "nodes"],
        &["list", "namespaces"],
        &["patch", "gitsyncs.graft.dev", "-n", "default"],
        &[
            "patch",
            "gitsyncs.graft.dev",
            "--subresource=status",
            "-n",
            "default",
        ],
        &["create", "events.events.k8s.io", "-n", "default"],
        &["create", "configmaps", "-n", "default"],
        &["create", "deployments.apps", "-n", "default"],
        &["watch", "statefulsets.apps.kruise.io", "-n", "default"],
        &[
            "patch",
            "statefulsets.apps.kruise.io",
            "--subresource=status",
            "-n",
            "default",
        ],
        &["watch", "persistentvolumeclaims", "-n", "default"],
        &["create", "leases.coordination.k8s.io", "-n", own],
        &["create", "secrets", "-n", own],
    ];
    let denied: &[&[&str]] = &[
        &["create", "leases.coordination.k8s.io", "-n", "default"],
        &["create", "secrets", "-n", "default"],
        &["delete", "nodes"],
        &["delete", "namespaces"],
        &["create", "clusterroles.rbac.authorization.k8s.io"],
        &["create", "customresourcedefinitions.apiextensions.k8s.io"],
    ];
    for a in allowed {
        assert!(can_i(&manager, a), "the manager must be allowed to {a:?}");
    }
    for d in denied {
        assert!(
            !can_i(&manager, d),
            "the manager must not be allowed to {d:?}"
        );
    }
    // The agent: statuses of its node's objects, reads of pods, pull secrets in its namespace.
    for a in [
        &["patch", "nodeimages.apps.kruise.io", "--subresource=status"][..],
        &["list", "pods", "-n", "default"],
        &["update", "pods", "--subresource=status", "-n", "default"],
        &[
            "patch",
            "containerrecreaterequests.apps.kruise.io",
            "--subresource=status",
            "-n",
            "default",
        ],
        &["get", "secrets", "-n", own],
    ] {
        assert!(can_i(&agent, a), "the agent must be allowed to {a:?}");
    }
    for d in [
        &["patch", "pods", "-n", "default"][..],
        &["delete", "pods", "-n", "default"],
        &["create", "nodeimages.apps.kruise.io"],
        &["get", "secrets", "-n", "default"],
        &["create", "leases.coordination.k8s.io", "-n", own],
    ] {
        assert!(!can_i(&agent, d), "the agent must not be allowed to {d:?}");
    }
}
