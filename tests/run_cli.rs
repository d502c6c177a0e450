//! `graft run` as a host process (the way a single local node runs it): one process with the
//! controllers, the GitSync controller, the webhook receiver and the in-process node agent
//! (`--with-nodeagent`), and two processes electing a leader with a Lease.
#![cfg(feature = "cluster-tests")]

mod support;

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use graft_api::apps::v1alpha1::ContainerRecreateRequest;
use graft_api::apps::v1alpha1::containerrecreaterequest::ContainerRecreateRequestPhase as Phase;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::PostParams;
use serde_json::json;
use support::{TestNamespace, client, image, install_crds, node_name, wait_for};

const MINUTE: Duration = Duration::from_secs(60);

/// `graft run` for one namespace; killed (SIGKILL) when dropped.
struct Run {
    child: Child,
    addr: String,
}

impl Run {
    fn start(ns: &str, tag: &str, port: u16, extra: &[&str]) -> Run {
        let dir = std::path::Path::new("/tmp/graft-test-logs");
        let _ = std::fs::create_dir_all(dir);
        let log = std::fs::File::create(dir.join(format!("run-{ns}-{tag}.log"))).expect("log");
        let err = log.try_clone().expect("log handle");
        let addr = format!("127.0.0.1:{port}");
        let child = Command::new(env!("CARGO_BIN_EXE_graft"))
            .args(["run", "--namespace", ns, "--no-dashboard", "--addr", &addr])
            .args(["--metrics-addr", "127.0.0.1:0", "--lease-namespace", ns])
            .args([
                "--lease-duration-seconds",
                "6",
                "--lease-grace-seconds",
                "2",
            ])
            .arg("--cache-dir")
            .arg(std::env::temp_dir().join(format!("graft-run-cache-{ns}-{tag}")))
            .args(extra)
            .env("POD_NAME", tag)
            .stdout(log)
            .stderr(err)
            .spawn()
            .expect("starting graft run");
        Run { child, addr }
    }

    fn readyz(&self) -> String {
        support::http("GET", &self.addr, "/readyz", &[])
            .map(|(_, _, body)| body.trim().to_string())
            .unwrap_or_else(|e| format!("unreachable: {e}"))
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

#[tokio::test]
async fn with_nodeagent_one_process_restarts_a_container_for_a_recreate_request() {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "run-agent").await;
    let cri = std::env::var("GRAFT_CRI_SOCKET")
        .unwrap_or_else(|_| "/run/graft-local/containerd/containerd.sock".into());
    // The agent runs only its CRR executor for this namespace: other tests' agents share the node.
    let node = node_name();
    let _run = Run::start(
        &ns.name,
        "single",
        free_port(),
        &[
            "--no-leader-election",
            "--with-nodeagent",
            "--node-name",
            &node,
            "--nodeagent-only-crr",
            "--cri-socket",
            &cri,
        ],
    );
    let pods: Api<Pod> = ns.api();
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"terminationGracePeriodSeconds": 2, "containers": [
            {"name": "app", "image": image("app:v1"), "imagePullPolicy": "IfNotPresent"}]}
    }))
    .expect("pod literal");
    pods.create(&PostParams::default(), &pod)
        .await
        .expect("create pod");
    let restarts = |p: &Pod| {
        p.status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .and_then(|c| c.first())
            .map(|c| (c.restart_count, c.ready))
    };
    wait_for(&pods, "web", "the app container ready", MINUTE, |p| {
        restarts(p) == Some((0, true))
    })
    .await;
    let crrs: Api<ContainerRecreateRequest> = ns.api();
    let crr: ContainerRecreateRequest = serde_json::from_value(json!({
        "apiVersion": "apps.kruise.io/v1alpha1", "kind": "ContainerRecreateRequest",
        "metadata": {"name": "restart"},
        "spec": {"podName": "web", "containers": [{"name": "app"}]}
    }))
    .expect("CRR literal");
    crrs.create(&PostParams::default(), &crr)
        .await
        .expect("create CRR");
    let done = wait_for(
        &crrs,
        "restart",
        "the request Completed by graft run's manager and in-process agent",
        MINUTE,
        |r| r.status.as_ref().and_then(|s| s.phase) == Some(Phase::Completed),
    )
    .await;
    let states = serde_json::to_value(done.status.and_then(|s| s.container_recreate_states))
        .expect("states");
    assert_eq!(
        states,
        json!([{"name": "app", "phase": "Succeeded", "isKilled": true}])
    );
    wait_for(
        &pods,
        "web",
        "the app container restarted once",
        MINUTE,
        |p| restarts(p).is_some_and(|(n, _)| n == 1),
    )
    .await;
}

#[tokio::test]
async fn two_processes_one_leader_and_the_standby_takes_over_when_it_dies() {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "run-lease").await;
    let mut runs = vec![
        Run::start(&ns.name, "a", free_port(), &[]),
        Run::start(&ns.name, "b", free_port(), &[]),
    ];
    let leases: Api<Lease> = ns.api();
    let holder = || async {
        leases
            .get_opt("graft-manager")
            .await
            .ok()
            .flatten()
            .and_then(|l| l.spec)
            .and_then(|s| s.holder_identity)
            .filter(|h| !h.is_empty())
    };
    let first = support::eventually("a holder of the Lease", MINUTE, || async {
        holder().await.ok_or_else(|| "no holder".to_string())
    })
    .await;
    let roles = support::eventually("one leader, one standby", MINUTE, || async {
        let mut r = [runs[0].readyz(), runs[1].readyz()];
        r.sort();
        if r == ["ok: leader", "ok: standby"] {
            Ok(r)
        } else {
            Err(format!("{r:?}"))
        }
    })
    .await;
    assert_eq!(roles, ["ok: leader", "ok: standby"]);
    let leader = if first.starts_with("a_") { 0 } else { 1 };
    assert!(first.starts_with(["a_", "b_"][leader]), "holder {first}");
    assert_eq!(runs[leader].readyz(), "ok: leader");

    // SIGKILL: a crash, the Lease is not released; the standby takes it once it expires (6s).
    let mut dead = runs.remove(leader);
    dead.child.kill().expect("kill the leader");
    let _ = dead.child.wait();
    let killed = Instant::now();
    let standby = &runs[0];
    let prefix = ["b_", "a_"][leader];
    let next = support::eventually("the standby takes the Lease", MINUTE, || async {
        match holder().await {
            Some(h) if h.starts_with(prefix) => Ok(h),
            h => Err(format!("holder {h:?}")),
        }
    })
    .await;
    eprintln!(
        "leader {first} crashed; {next} took over after {:?}",
        killed.elapsed()
    );
    support::eventually("the standby reports itself leader", MINUTE, || async {
        let r = standby.readyz();
        if r == "ok: leader" { Ok(()) } else { Err(r) }
    })
    .await;
}

/// Another holder takes the Lease (as a replica whose clock says the leader's term ran out
/// would): the leader stops its controllers — a CloneSet created meanwhile gets no pod — and
/// waits as a standby in the same process; once the other holder stops renewing, it leads again
/// and the CloneSet is reconciled.
#[tokio::test]
async fn a_leader_that_loses_the_lease_stops_its_work_and_leads_again_without_exiting() {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
    use k8s_openapi::jiff::Timestamp;
    use kube::api::{ListParams, Patch, PatchParams};

    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "run-relead").await;
    let mut run = Run::start(&ns.name, "a", free_port(), &[]);
    support::eventually("graft run leads", MINUTE, || async {
        let r = run.readyz();
        if r == "ok: leader" { Ok(()) } else { Err(r) }
    })
    .await;

    let leases: Api<Lease> = ns.api();
    let take = |holder: &'static str| {
        let leases = leases.clone();
        async move {
            let now = MicroTime(Timestamp::now());
            let patch = json!({"spec": {
                "holderIdentity": holder, "acquireTime": now, "renewTime": now,
                "leaseDurationSeconds": 6
            }});
            leases
                .patch(
                    "graft-manager",
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await
                .map(|_| ())
        }
    };
    take("intruder").await.expect("take the Lease");
    support::eventually("the leader steps down to standby", MINUTE, || async {
        let r = run.readyz();
        if r == "ok: standby" { Ok(()) } else { Err(r) }
    })
    .await;

    // While the intruder keeps renewing, nothing of the leader's work runs.
    let clonesets: Api<graft_api::apps::v1alpha1::CloneSet> = ns.api();
    let cs: graft_api::apps::v1alpha1::CloneSet = serde_json::from_value(json!({
        "apiVersion": "apps.kruise.io/v1alpha1", "kind": "CloneSet",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "relead"}},
            "template": {
                "metadata": {"labels": {"app": "relead"}},
                "spec": {"terminationGracePeriodSeconds": 1, "containers": [
                    {"name": "app", "image": image("app:v1"), "imagePullPolicy": "IfNotPresent"}]}
            }
        }
    }))
    .expect("CloneSet literal");
    clonesets
        .create(&PostParams::default(), &cs)
        .await
        .expect("create CloneSet");
    let pods: Api<Pod> = ns.api();
    let quiet_until = Instant::now() + Duration::from_secs(10);
    while Instant::now() < quiet_until {
        take("intruder").await.expect("renew the intruder's Lease");
        assert!(
            run.child.try_wait().expect("wait status").is_none(),
            "graft run exited after losing the Lease"
        );
        let n = pods
            .list(&ListParams::default().labels("app=relead"))
            .await
            .expect("list pods")
            .items
            .len();
        assert_eq!(n, 0, "a standby created pods for the CloneSet");
        assert_eq!(run.readyz(), "ok: standby");
        tokio::time::sleep(Duration::from_secs(2)).await;
    }

    // The intruder stops renewing: its term expires (6 s) and the same process leads again.
    support::eventually("the same process leads again", MINUTE, || async {
        let r = run.readyz();
        if r == "ok: leader" { Ok(()) } else { Err(r) }
    })
    .await;
    assert!(run.child.try_wait().expect("wait status").is_none());
    support::eventually(
        "the CloneSet's pod created by the new term",
        MINUTE,
        || async {
            let n = pods
                .list(&ListParams::default().labels("app=relead"))
                .await
                .map_err(|e| e.to_string())?
                .items
                .len();
            if n == 1 {
                Ok(())
            } else {
                Err(format!("{n} pods"))
            }
        },
    )
    .await;
}
