//! graft installed the way a user installs it: graft's image built from this test run's binary
//! and pushed to the local registry, the Helm chart installed into a test namespace (scoped to
//! it: `manager.watchNamespace`, with the NodeImage manager, the agent's CRR executor limited to
//! it), a GitSync following a repository served to the pods over smart HTTP with basic auth
//! (`git http-backend`): the first commit applied and Healthy; an image bump announced by a
//! webhook to the standby, during whose rollout the leader is killed and the standby finishes
//! without ever violating maxUnavailable; an image bump with `BeforeRollout` whose ImagePullJob
//! completes before any pod starts its in-place update; a bad commit that changes nothing and
//! its fix; `helm uninstall` leaves the CRDs and the user's CloneSet in place.
#![cfg(feature = "cluster-tests")]

mod support;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use graft_api::apps::v1alpha1::CloneSet;
use graft_api::graft::gitsync::{CommitPhase, GitSync};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::rbac::v1::ClusterRole;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use serde_json::json;
use support::{
    GitRepo, PodState, PodWatcher, TestNamespace, client, host_ip, image, install_crds, registry,
    wait_for,
};

const REPLICAS: usize = 4;
const WEBHOOK_SECRET: &str = "e2e-webhook-secret";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
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

fn helm() -> PathBuf {
    PathBuf::from(run(&mut Command::new(root().join("deploy/helm/build-helm.sh"))).trim())
}

/// Builds graft's image from this test run's binary (stripped) and returns its tag.
fn build_image() -> String {
    let dir = std::env::temp_dir().join(format!("graft-e2e-image-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("image dir");
    let bin = dir.join("graft");
    run(Command::new("strip")
        .arg("-o")
        .arg(&bin)
        .arg(env!("CARGO_BIN_EXE_graft")));
    let sum = run(Command::new("sha256sum").arg(&bin));
    let tag = format!("e2e-{}", &sum[..12]);
    run(Command::new(root().join("deploy/local/images"))
        .args(["graft"])
        .arg(&bin)
        .arg(&tag));
    let _ = std::fs::remove_dir_all(&dir);
    tag
}

/// The installed release; uninstalled when dropped (also when the test fails, so its
/// cluster-scoped RBAC never outlives the test), after printing the managers' logs on failure.
struct Release {
    helm: PathBuf,
    name: String,
    namespace: String,
    uninstalled: bool,
}

impl Release {
    fn uninstall(&mut self) {
        self.uninstalled = true;
        run(Command::new(&self.helm)
            .args([
                "uninstall",
                &self.name,
                "--namespace",
                &self.namespace,
                "--wait",
            ])
            .args(["--timeout", "60s"]));
    }
}

impl Drop for Release {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for c in ["manager", "nodeagent"] {
                let out = Command::new("kubectl")
                    .args(["logs", "-n", &self.namespace, "--tail=60", "--prefix"])
                    .arg(format!("-lapp.kubernetes.io/component={c}"))
                    .output();
                if let Ok(o) = out {
                    eprintln!("--- {c} logs ---\n{}", String::from_utf8_lossy(&o.stdout));
                }
            }
        }
        if !self.uninstalled {
            let _ = Command::new(&self.helm)
                .args([
                    "uninstall",
                    &self.name,
                    "--namespace",
                    &self.namespace,
                    "--wait",
                ])
                .output();
        }
    }
}

fn cloneset(tag: &str) -> String {
    format!(
        "apiVersion: apps.kruise.io/v1alpha1
kind: CloneSet
metadata:
  name: web
spec:
  replicas: {REPLICAS}
  minReadySeconds: 3
  selector:
    matchLabels: {{app: web}}
  updateStrategy: {{type: InPlaceIfPossible, maxUnavailable: 1}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: app
        image: {}
        imagePullPolicy: IfNotPresent
        readinessProbe:
          httpGet: {{path: /readyz, port: 8080}}
          periodSeconds: 1
",
        image(&format!("app:{tag}"))
    )
}

fn phase(gs: &GitSync, sha: &str) -> Option<CommitPhase> {
    gs.status
        .as_ref()?
        .history
        .as_ref()?
        .iter()
        .find(|h| h.sha == sha)
        .map(|h| h.phase)
}

/// Most pods unavailable at once over the recorded history (judged once all were seen).
fn worst_unavailable(history: &[PodState]) -> usize {
    let mut current: BTreeMap<String, PodState> = BTreeMap::new();
    let (mut worst, mut listed) = (0, false);
    for s in history {
        if s.deleted {
            current.remove(&s.uid);
        } else {
            current.insert(s.uid.clone(), s.clone());
        }
        listed |= current.len() >= REPLICAS;
        if listed {
            let available = current.values().filter(|p| p.ready && !p.deleting).count();
            worst = worst.max(REPLICAS.saturating_sub(available));
        }
    }
    worst
}

/// GET `path` on a pod's front port through the API server's pod proxy.
fn pod_get(ns: &str, pod: &str, path: &str) -> Result<String, String> {
    let out = Command::new("kubectl")
        .args(["get", "--raw"])
        .arg(format!(
            "/api/v1/namespaces/{ns}/pods/{pod}:8090/proxy{path}"
        ))
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// The pod of a holder identity (`<pod>_<process tag>`).
fn pod_of(identity: &str) -> &str {
    identity.rsplit_once('_').map_or(identity, |(pod, _)| pod)
}

/// SIGKILL the `graft run` process of `pod` (found by its POD_NAME in /proc on this node): a
/// crash, so the Lease is not released. Returns the killed pid.
fn crash(pod: &str) -> u32 {
    let needle = format!("POD_NAME={pod}\0");
    for entry in std::fs::read_dir("/proc").expect("/proc") {
        let Ok(entry) = entry else { continue };
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if cmdline.starts_with(b"/usr/local/bin/graft\0run\0")
            && String::from_utf8_lossy(&environ).contains(&needle)
        {
            run(Command::new("kill").args(["-KILL", &pid.to_string()]));
            return pid;
        }
    }
    panic!("no `graft run` process of pod {pod} on this node");
}

/// POST a signed generic push webhook for `url`'s `main` to a manager's front port at
/// `pod_ip` (the host is on the pod network); returns the status line and body.
fn post_webhook(pod_ip: &str, url: &str, commit: &str, secret: &str) -> String {
    use std::io::{Read, Write};
    let addr = format!("{pod_ip}:8090");
    let body = json!({"url": url, "ref": "refs/heads/main", "commit": commit}).to_string();
    let signature = graft_sync::webhook::sign(body.as_bytes(), secret.as_bytes());
    let mut stream = std::net::TcpStream::connect(&addr).expect("connect to the port-forward");
    write!(
        stream,
        "POST /hook HTTP/1.0\r\nHost: graft\r\nContent-Type: application/json\r\n\
         X-Graft-Signature: sha256={signature}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("send the webhook");
    // A reset right after the answer (HTTP/1.0 close) keeps what came.
    let mut raw = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&chunk[..n]),
            Err(e) if !raw.is_empty() => {
                eprintln!("webhook connection ended with {e} after the answer");
                break;
            }
            Err(e) => panic!("reading the webhook answer: {e}"),
        }
    }
    let answer = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    format!("{} {}", head.lines().next().unwrap_or(""), body.trim())
}

async fn holder(leases: &Api<Lease>, name: &str) -> Option<String> {
    leases
        .get_opt(name)
        .await
        .ok()
        .flatten()?
        .spec?
        .holder_identity
        .filter(|h| !h.is_empty())
}

#[tokio::test]
async fn installed_by_the_chart_graft_syncs_survives_its_leader_and_uninstalls_cleanly() {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "e2e-install").await;
    // The installed agent pulls for the real node's NodeImage and the chart runs the NodeImage
    // manager: take turns with the other tests that do (tests/support/imagepull.rs).
    let _lock = support::imagepull::ClusterLock::acquire();
    let helm = helm();
    let tag = build_image();

    // Install, scoped to the test namespace; the release name (and so every cluster-scoped
    // name) is the namespace's, unique per run.
    let mut release = Release {
        helm: helm.clone(),
        name: ns.name.clone(),
        namespace: ns.name.clone(),
        uninstalled: false,
    };
    let cri = std::env::var("GRAFT_CRI_SOCKET")
        .unwrap_or_else(|_| "/run/graft-local/containerd/containerd.sock".into());
    let started = Instant::now();
    run(Command::new(&helm)
        .args(["install", &release.name])
        .arg(root().join("deploy/helm/graft"))
        .args(["--namespace", &ns.name, "--wait", "--timeout", "150s"])
        .args([
            "--set",
            &format!("image.repository={}/graft/graft", registry()),
        ])
        .args(["--set", &format!("image.tag={tag}")])
        .args(["--set", &format!("manager.watchNamespace={}", ns.name)])
        .args(["--set", "manager.leaseDurationSeconds=8"])
        .args(["--set", "manager.leaseGraceSeconds=3"])
        .args(["--set", "manager.logFormat=text"])
        .args(["--set", &format!("nodeagent.criSocket={cri}")])
        .args(["--set", &format!("nodeagent.crrNamespace={}", ns.name)])
        .args(["--set", "manager.nodeImageManager=true"])
        .args(["--set", &format!("webhook.secret={WEBHOOK_SECRET}")]));
    eprintln!("helm install --wait took {:?}", started.elapsed());
    let full = format!("{}-graft", ns.name);
    let deployments: Api<Deployment> = ns.api();
    let dep = deployments
        .get(&format!("{full}-manager"))
        .await
        .expect("manager Deployment");
    let ready = dep.status.as_ref().and_then(|s| s.ready_replicas);
    assert_eq!(
        ready,
        Some(2),
        "both manager replicas ready: {:?}",
        dep.status
    );
    let daemonsets: Api<DaemonSet> = ns.api();
    let ds = daemonsets
        .get(&format!("{full}-nodeagent"))
        .await
        .expect("agent DaemonSet");
    let st = ds.status.expect("DaemonSet status");
    assert!(
        st.desired_number_scheduled >= 1 && st.number_ready == st.desired_number_scheduled,
        "agent DaemonSet ready on every node: {st:?}"
    );

    // One replica leads, the other stands by; both serve the dashboard.
    let pods: Api<Pod> = ns.api();
    let leases: Api<Lease> = ns.api();
    let lease = format!("{full}-manager");
    let managers: Vec<String> = pods
        .list(&kube::api::ListParams::default().labels("app.kubernetes.io/component=manager"))
        .await
        .expect("manager pods")
        .items
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect();
    assert_eq!(managers.len(), 2, "{managers:?}");
    let leader = support::eventually("a lease holder", Duration::from_secs(30), || async {
        holder(&leases, &lease)
            .await
            .ok_or("no holder yet".to_string())
    })
    .await;
    assert!(
        managers.iter().any(|m| m == pod_of(&leader)),
        "holder {leader} is one of {managers:?}"
    );
    let standby = managers
        .iter()
        .find(|m| *m != pod_of(&leader))
        .expect("a standby")
        .clone();
    let mut roles = Vec::new();
    for m in &managers {
        let readyz = pod_get(&ns.name, m, "/readyz").expect("readyz");
        roles.push(readyz.trim().to_string());
        let page = pod_get(&ns.name, m, "/").expect("dashboard page");
        assert!(
            page.contains("<html"),
            "{m} serves the dashboard: {page:.200}"
        );
    }
    roles.sort();
    assert_eq!(
        roles,
        ["ok: leader", "ok: standby"],
        "one leader, one standby"
    );

    // A GitSync following a repository the pods fetch over git://.
    let repo = GitRepo::new(&ns.name);
    let c1 = repo.commit("web v1", &[("web.yaml", cloneset("v1"))]);
    // Served over smart HTTP (git http-backend) with basic auth, on the host address pods reach.
    let server = support::git_http::GitHttpServer::start_on(
        &host_ip(),
        repo.dir.parent().expect("repo parent"),
        "graft",
        "e2e-git-password",
    );
    let repo_url = server.url_of(&repo.dir.file_name().expect("repo name").to_string_lossy());
    let secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "git-auth"},
        "stringData": {"username": "graft", "password": "e2e-git-password"}
    }))
    .expect("Secret literal");
    ns.api::<k8s_openapi::api::core::v1::Secret>()
        .create(&PostParams::default(), &secret)
        .await
        .expect("create the Git Secret");
    let gitsyncs: Api<GitSync> = ns.api();
    let gs: GitSync = serde_json::from_value(json!({
        "apiVersion": "graft.dev/v1alpha1", "kind": "GitSync",
        "metadata": {"name": "app"},
        "spec": {"url": repo_url, "ref": {"branch": "main"}, "path": "deploy", "interval": "1h",
                 "secretRef": {"name": "git-auth"},
                 "prePull": {"mode": "Off"}}
    }))
    .expect("GitSync literal");
    gitsyncs
        .create(&PostParams::default(), &gs)
        .await
        .expect("create GitSync");
    wait_for(
        &gitsyncs,
        "app",
        "the first commit Healthy (applied by the in-cluster manager)",
        Duration::from_secs(90),
        |g| phase(g, &c1) == Some(CommitPhase::Healthy),
    )
    .await;
    // Both replicas show the commit's manifest diff: the leader from its sync's cache, the
    // standby (whose sync never ran) by fetching the commit itself with the GitSync's Secret.
    for m in &managers {
        let path = format!("/api/gitsyncs/{}/app/commits/{c1}", ns.name);
        support::eventually(
            &format!("{m} shows the diff of the first commit (the CloneSet added)"),
            Duration::from_secs(60),
            || async {
                let page = pod_get(&ns.name, m, &path)?;
                let v: serde_json::Value =
                    serde_json::from_str(&page).map_err(|e| format!("{e}: {page:.300}"))?;
                let objects = v["diff"]["objects"].as_array().cloned().unwrap_or_default();
                objects
                    .iter()
                    .any(|o| {
                        o["change"] == "added"
                            && o["id"].as_str().is_some_and(|id| id.contains("CloneSet"))
                    })
                    .then_some(())
                    .ok_or_else(|| format!("diff: {}", v["diff"]))
            },
        )
        .await;
    }
    let clonesets: Api<CloneSet> = ns.api();

    // Bump the image and announce it with a push webhook sent to the standby: the GitSync
    // polls only hourly, so only the webhook (stamped on the GitSync, seen by the leader's
    // watch) can start this sync.
    let watcher = PodWatcher::start(&client, &ns.name, "app=web");
    let c2 = repo.commit("web v2", &[("web.yaml", cloneset("v2"))]);
    let standby_ip = pods
        .get(&standby)
        .await
        .expect("standby pod")
        .status
        .and_then(|s| s.pod_ip)
        .expect("standby pod IP");
    let answer = post_webhook(&standby_ip, &repo_url, &c2, WEBHOOK_SECRET);
    assert!(
        answer.contains(" 202 ") && answer.contains("1 GitSync(s) to sync"),
        "the standby accepts the webhook: {answer}"
    );
    let v2 = image("app:v2");
    wait_for(
        &clonesets,
        "web",
        "the v2 rollout under way (one pod updated, not all)",
        Duration::from_secs(60),
        |cs| {
            let updated = cs.status.as_ref().map_or(0, |s| s.updated_replicas);
            let spec_v2 = serde_json::to_string(&cs.spec.template).is_ok_and(|t| t.contains(&v2));
            spec_v2 && updated >= 1 && (updated as usize) < REPLICAS
        },
    )
    .await;

    // Crash the leader mid-rollout (SIGKILL: the Lease is not released). Its container
    // restarts under a new identity; whichever replica takes the Lease once it expires
    // finishes the rollout.
    let leader = holder(&leases, &lease)
        .await
        .expect("a leader during the rollout");
    let killed_at = Instant::now();
    crash(pod_of(&leader));
    let new_leader = support::eventually(
        "another process takes the lease after the crash",
        Duration::from_secs(60),
        || async {
            match holder(&leases, &lease).await {
                Some(h) if h != leader => Ok(h),
                other => Err(format!("holder {other:?}")),
            }
        },
    )
    .await;
    eprintln!(
        "leader {leader} crashed (SIGKILL); {new_leader} took over after {:?} (lease duration 8s)",
        killed_at.elapsed()
    );
    wait_for(
        &gitsyncs,
        "app",
        "the v2 commit Healthy, finished by the new leader",
        Duration::from_secs(120),
        |g| phase(g, &c2) == Some(CommitPhase::Healthy),
    )
    .await;
    let cs = clonesets.get("web").await.expect("CloneSet");
    let status = cs.status.expect("CloneSet status");
    assert_eq!(
        status.updated_ready_replicas as usize, REPLICAS,
        "{status:?}"
    );
    let worst = worst_unavailable(&watcher.history());
    assert!(
        worst <= 1,
        "maxUnavailable 1 was violated across the leader change: {worst} pods unavailable at once\n{:#?}",
        watcher.history()
    );
    assert!(
        watcher.history().iter().all(|s| !s.deleted),
        "every pod updated in place, none deleted"
    );
    // Least privilege that is still enough: nothing the manager or the agent did was refused.
    for component in ["manager", "nodeagent"] {
        let logs = run(Command::new("kubectl")
            .args(["logs", "-n", &ns.name, "--tail=-1", "--prefix"])
            .arg(format!("-lapp.kubernetes.io/component={component}")));
        let refused: Vec<&str> = logs
            .lines()
            .filter(|l| l.contains("forbidden") || l.contains("Forbidden"))
            .collect();
        assert!(
            refused.is_empty(),
            "the {component}'s RBAC refused requests:\n{}",
            refused.join("\n")
        );
    }
    let web_pods = pods
        .list(&kube::api::ListParams::default().labels("app=web"))
        .await
        .expect("web pods");
    for p in &web_pods.items {
        let img = &p.spec.as_ref().expect("spec").containers[0].image;
        assert_eq!(img.as_deref(), Some(v2.as_str()), "every pod on v2");
    }

    // A leader that is shut down (pod deleted: SIGTERM) releases the Lease; the other replica
    // takes over at once.
    let leader = holder(&leases, &lease).await.expect("a leader");
    let deleted_at = Instant::now();
    pods.delete(pod_of(&leader), &DeleteParams::default())
        .await
        .expect("delete the leader pod");
    let next = support::eventually(
        "another replica takes the released lease",
        Duration::from_secs(30),
        || async {
            match holder(&leases, &lease).await {
                Some(h) if pod_of(&h) != pod_of(&leader) => Ok(h),
                other => Err(format!("holder {other:?}")),
            }
        },
    )
    .await;
    eprintln!(
        "leader pod {} deleted; {next} took over after {:?}",
        pod_of(&leader),
        deleted_at.elapsed()
    );

    // An image bump with BeforeRollout pre-pull: the ImagePullJob completes on the node before
    // any pod starts its in-place update, and every pod is updated in place.
    gitsyncs
        .patch(
            "app",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"spec": {"interval": "2s",
                "prePull": {"mode": "BeforeRollout", "timeoutSeconds": 120}}})),
        )
        .await
        .expect("turn pre-pull on");
    let v3 = image("app:v3");
    let runtime = support::imagepull::cri().await;
    let _ = runtime.remove_image(&v3).await;
    let before: Vec<String> = pods
        .list(&kube::api::ListParams::default().labels("app=web"))
        .await
        .expect("web pods")
        .items
        .into_iter()
        .filter_map(|p| p.metadata.uid)
        .collect();
    let c3 = repo.commit("web v3", &[("web.yaml", cloneset("v3"))]);
    let jobs: Api<graft_api::apps::v1alpha1::ImagePullJob> = ns.api();
    let job = support::eventually(
        "the v3 commit's ImagePullJob completed",
        Duration::from_secs(120),
        || async {
            let list = jobs
                .list(&Default::default())
                .await
                .map_err(|e| e.to_string())?;
            match list.items.into_iter().find(|j| {
                j.metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(graft_api::labels::GRAFT_COMMIT))
                    == Some(&c3)
            }) {
                Some(j)
                    if j.status
                        .as_ref()
                        .is_some_and(|s| s.completion_time.is_some()) =>
                {
                    Ok(j)
                }
                other => Err(format!("job {:?}", other.map(|j| j.status))),
            }
        },
    )
    .await;
    let job_status = job.status.expect("job status");
    assert_eq!(
        job_status.succeeded, 1,
        "pulled on the node: {job_status:?}"
    );
    let completed = job_status.completion_time.expect("completion").0;
    wait_for(
        &gitsyncs,
        "app",
        "the v3 commit Healthy",
        Duration::from_secs(120),
        |g| phase(g, &c3) == Some(CommitPhase::Healthy),
    )
    .await;
    let web_pods = pods
        .list(&kube::api::ListParams::default().labels("app=web"))
        .await
        .expect("web pods");
    let mut after: Vec<String> = Vec::new();
    for p in &web_pods.items {
        after.extend(p.metadata.uid.clone());
        let img = &p.spec.as_ref().expect("spec").containers[0].image;
        assert_eq!(img.as_deref(), Some(v3.as_str()), "every pod on v3");
        let state: serde_json::Value = p
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(graft_api::labels::INPLACE_UPDATE_STATE))
            .and_then(|s| serde_json::from_str(s).ok())
            .expect("in-place update state");
        let started: k8s_openapi::jiff::Timestamp = state["updateTimestamp"]
            .as_str()
            .and_then(|t| t.parse().ok())
            .expect("updateTimestamp");
        assert!(
            completed <= started,
            "the pre-pull completed ({completed}) before pod {:?} started updating ({started})",
            p.metadata.name
        );
    }
    let (mut b, mut a) = (before.clone(), after);
    b.sort();
    a.sort();
    assert_eq!(a, b, "updated in place: the same pods");

    // A bad commit changes nothing and says why; the fix commit applies.
    let c4 = repo.commit(
        "broken",
        &[(
            "web.yaml",
            cloneset("v1").replace("replicas:", "replicas: [\n  oops:"),
        )],
    );
    let g = wait_for(
        &gitsyncs,
        "app",
        "the bad commit Failed",
        Duration::from_secs(60),
        |g| phase(g, &c4) == Some(CommitPhase::Failed),
    )
    .await;
    let entry = g
        .status
        .as_ref()
        .and_then(|s| s.history.as_ref())
        .and_then(|h| h.iter().find(|e| e.sha == c4))
        .expect("history entry");
    assert_eq!(
        entry.reason.as_deref(),
        Some("ValidationFailed"),
        "{entry:?}"
    );
    assert!(
        entry
            .status_message
            .as_deref()
            .is_some_and(|m| m.contains("web.yaml")),
        "names the file: {entry:?}"
    );
    let spec = serde_json::to_string(&clonesets.get("web").await.expect("web").spec.template)
        .expect("template");
    assert!(spec.contains(&v3), "the bad commit changed nothing");
    let c5 = repo.commit(
        "fixed",
        &[(
            "web.yaml",
            cloneset("v3").replace("minReadySeconds: 3", "minReadySeconds: 2"),
        )],
    );
    wait_for(
        &gitsyncs,
        "app",
        "the fix commit Healthy",
        Duration::from_secs(90),
        |g| phase(g, &c5) == Some(CommitPhase::Healthy),
    )
    .await;

    // Uninstall: the release's own objects go, the CRDs and the user's CloneSet stay.
    release.uninstall();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in ["clonesets.apps.kruise.io", "gitsyncs.graft.dev"] {
        assert!(
            crds.get_opt(crd).await.expect("read CRD").is_some(),
            "helm uninstall must not delete CRD {crd}"
        );
    }
    let cs = clonesets.get_opt("web").await.expect("read CloneSet");
    assert!(cs.is_some(), "the user's CloneSet survives helm uninstall");
    assert!(
        gitsyncs
            .get_opt("app")
            .await
            .expect("read GitSync")
            .is_some(),
        "the user's GitSync survives helm uninstall"
    );
    let roles: Api<ClusterRole> = Api::all(client.clone());
    assert!(
        roles
            .get_opt(&format!("{full}-manager"))
            .await
            .expect("read ClusterRole")
            .is_none(),
        "the release's ClusterRole is removed"
    );
}
