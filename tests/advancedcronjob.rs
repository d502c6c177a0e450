//! AdvancedCronJob on the real cluster: `graft controllers --namespace NS` schedules the runs;
//! the real kube-controller-manager runs the Jobs, graft's BroadcastJob controller the
//! BroadcastJobs. Each test takes two to three minutes of wall time (runs start on minute
//! boundaries): run them in parallel (`--test-threads=4`).
#![cfg(feature = "cluster-tests")]

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use graft_api::apps::v1beta1::{AdvancedCronJob, BroadcastJob};
use k8s_openapi::api::batch::v1::Job;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use kube::{Api, Resource, ResourceExt};
use serde_json::{Value, json};
use support::{GraftControllers, TestNamespace, client, eventually, image, install_crds};

const SCHEDULED_AT: &str = "apps.kruise.io/scheduled-at";

struct Env {
    ns: TestNamespace,
    crons: Api<AdvancedCronJob>,
    _controllers: GraftControllers,
}

async fn env(prefix: &str) -> Env {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, prefix).await;
    let controllers = GraftControllers::start(&ns.name);
    Env {
        crons: ns.api(),
        ns,
        _controllers: controllers,
    }
}

/// A pod spec that sleeps `secs` and exits 0.
fn pod(secs: u32) -> Value {
    json!({"metadata": {"labels": {"app": "tick"}}, "spec": {
        "restartPolicy": "Never",
        "terminationGracePeriodSeconds": 1,
        "containers": [{"name": "main", "image": image("app:v1"), "imagePullPolicy": "IfNotPresent",
            "command": ["sh", "-c", format!("sleep {secs}")]}]}})
}

fn job_template(secs: u32) -> Value {
    json!({"jobTemplate": {
        "metadata": {"labels": {"run-of": "tick"}, "annotations": {"note": "from-template"}},
        "spec": {"backoffLimit": 0, "template": pod(secs)}}})
}

async fn create(e: &Env, name: &str, spec: Value) -> AdvancedCronJob {
    let obj: AdvancedCronJob = serde_json::from_value(json!({
        "apiVersion": "apps.kruise.io/v1beta1", "kind": "AdvancedCronJob",
        "metadata": {"name": name}, "spec": spec}))
    .unwrap();
    e.crons
        .create(&PostParams::default(), &obj)
        .await
        .unwrap_or_else(|err| panic!("creating AdvancedCronJob {name}: {err}"))
}

/// Every state of every run seen by a watch, and the invariant checked on each event.
struct RunWatcher {
    /// (seconds since start, name, active) per event; deletions are recorded as inactive.
    history: Arc<Mutex<Vec<(f64, String, bool)>>>,
    /// The first moment two runs were active together, if ever.
    overlap: Arc<Mutex<Option<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl RunWatcher {
    fn start<K>(api: Api<K>, active: fn(&K) -> bool) -> RunWatcher
    where
        K: Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + Sync + 'static,
        K::DynamicType: Default,
    {
        let history = Arc::new(Mutex::new(Vec::new()));
        let overlap = Arc::new(Mutex::new(None));
        let (h, o) = (history.clone(), overlap.clone());
        let task = tokio::spawn(async move {
            let started = Instant::now();
            let mut current: BTreeMap<String, bool> = BTreeMap::new();
            let mut stream = watcher(api, watcher::Config::default()).boxed();
            while let Some(ev) = stream.next().await {
                let (obj, gone) = match ev {
                    Ok(watcher::Event::Apply(o)) | Ok(watcher::Event::InitApply(o)) => (o, false),
                    Ok(watcher::Event::Delete(o)) => (o, true),
                    _ => continue,
                };
                let name = obj.name_any();
                let is_active = !gone && active(&obj);
                current.insert(name.clone(), is_active);
                h.lock()
                    .unwrap()
                    .push((started.elapsed().as_secs_f64(), name.clone(), is_active));
                let running: Vec<&String> = current
                    .iter()
                    .filter(|(_, a)| **a)
                    .map(|(n, _)| n)
                    .collect();
                if running.len() > 1 {
                    o.lock()
                        .unwrap()
                        .get_or_insert_with(|| format!("{running:?} active at once"));
                }
            }
        });
        RunWatcher {
            history,
            overlap,
            task,
        }
    }

    fn names(&self) -> Vec<String> {
        let mut n: Vec<String> = self
            .history
            .lock()
            .unwrap()
            .iter()
            .map(|(_, n, _)| n.clone())
            .collect();
        n.sort();
        n.dedup();
        n
    }
}

impl Drop for RunWatcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn job_active(j: &Job) -> bool {
    !j.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
        })
}

fn broadcast_job_active(j: &BroadcastJob) -> bool {
    !j.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
        })
}

/// The unix second a run's name ends with.
fn second_of(run: &str) -> i64 {
    run.rsplit('-')
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{run} does not end with a unix second"))
}

/// `*/1` with Forbid and runs of 75 s: one run per minute at most, never two at once, and the
/// minute after a run starts is skipped.
async fn forbid_case<K>(e: &Env, template: Value, active: fn(&K) -> bool, min_gap: i64)
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
    K::DynamicType: Default,
{
    let watch = RunWatcher::start::<K>(e.ns.api(), active);
    let cron = create(
        e,
        "tick",
        json!({"schedule": "*/1 * * * *", "concurrencyPolicy": "Forbid", "template": template}),
    )
    .await;
    let uid = cron.uid().unwrap_or_default();
    // The second run comes two minutes after the first (the minute between is skipped).
    let runs = eventually("two runs of tick", Duration::from_secs(200), || async {
        let n = watch.names();
        if n.len() >= 2 {
            Ok(n)
        } else {
            Err(format!("runs so far: {n:?}"))
        }
    })
    .await;
    assert_eq!(
        *watch.overlap.lock().unwrap(),
        None,
        "history: {:?}",
        watch.history.lock().unwrap()
    );
    let gap = second_of(&runs[1]) - second_of(&runs[0]);
    assert!(
        gap >= min_gap && gap % 60 == 0,
        "the run after {} must come at least {min_gap} s later: {runs:?}",
        runs[0]
    );

    // The run kruise builds: name, labels, annotations, owner.
    let first: K = e.ns.api().get(&runs[0]).await.unwrap();
    let meta = first.meta();
    assert_eq!(
        meta.labels
            .as_ref()
            .and_then(|l| l.get("run-of"))
            .map(String::as_str),
        Some("tick")
    );
    let ann = meta.annotations.clone().unwrap_or_default();
    let at: k8s_openapi::jiff::Timestamp = ann[SCHEDULED_AT].parse().unwrap();
    assert_eq!(at.as_second(), second_of(&runs[0]));
    assert!(ann[SCHEDULED_AT].ends_with(":00Z"), "{ann:?}");
    let owner = &meta.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        serde_json::to_value(owner).unwrap(),
        json!({"apiVersion": "apps.kruise.io/v1beta1", "kind": "AdvancedCronJob", "name": "tick",
            "uid": uid, "controller": true, "blockOwnerDeletion": true})
    );
    // status: the active run and the last scheduled time
    let status = eventually(
        "status shows the second run",
        Duration::from_secs(20),
        || async {
            let c = e.crons.get("tick").await.map_err(|e| e.to_string())?;
            let s = serde_json::to_value(&c.status).unwrap_or_default();
            let last = s["lastScheduleTime"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let want: k8s_openapi::jiff::Timestamp =
                k8s_openapi::jiff::Timestamp::from_second(second_of(&runs[1])).unwrap();
            if last == want.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
                && s["active"]
                    .as_array()
                    .is_some_and(|a| a.len() == 1 && a[0]["name"] == runs[1].as_str())
            {
                Ok(s)
            } else {
                Err(s.to_string())
            }
        },
    )
    .await;
    assert_eq!(
        status["type"],
        json!(K::kind(&Default::default()).to_string()),
        "{status}"
    );
}

#[tokio::test]
async fn forbid_with_a_job_template_runs_one_job_at_a_time() {
    let e = env("acj-forbid-job").await;
    // kruise's Job watch never wakes the cron job when a Job finishes: the blocked minute is
    // skipped, the next run comes two minutes after the first.
    forbid_case::<Job>(&e, job_template(75), job_active, 120).await;
}

#[tokio::test]
async fn forbid_with_a_broadcast_job_template_runs_one_broadcast_job_at_a_time() {
    let e = env("acj-forbid-bcj").await;
    let template = json!({"broadcastJobTemplate": {
        "metadata": {"labels": {"run-of": "tick"}},
        "spec": {"template": pod(75)}}});
    // A finished BroadcastJob wakes the cron job (in kruise too): the blocked minute's run starts
    // late, once the first has finished (never while it runs).
    forbid_case::<BroadcastJob>(&e, template, broadcast_job_active, 60).await;
}

#[tokio::test]
async fn paused_starts_no_new_run() {
    let e = env("acj-paused").await;
    let jobs: Api<Job> = e.ns.api();
    create(
        &e,
        "tick",
        json!({"schedule": "*/1 * * * *", "template": job_template(1)}),
    )
    .await;
    eventually("a first run", Duration::from_secs(75), || async {
        let l = jobs
            .list(&ListParams::default())
            .await
            .map_err(|e| e.to_string())?;
        if l.items.is_empty() {
            Err("no run yet".to_string())
        } else {
            Ok(())
        }
    })
    .await;
    e.crons
        .patch(
            "tick",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"paused": true}})),
        )
        .await
        .unwrap();
    let before: Vec<String> = jobs
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|j| j.name_any())
        .collect();
    // Past the next minute boundary, with room for a late run.
    let now = k8s_openapi::jiff::Timestamp::now().as_second();
    let wait = (60 - now.rem_euclid(60)) + 20;
    tokio::time::sleep(Duration::from_secs(wait as u64)).await;
    let after: Vec<String> = jobs
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|j| j.name_any())
        .collect();
    assert_eq!(after, before, "a paused AdvancedCronJob started a run");
}

#[tokio::test]
async fn history_limits_delete_the_oldest_finished_runs() {
    let e = env("acj-history").await;
    let jobs: Api<Job> = e.ns.api();
    let watch = RunWatcher::start::<Job>(e.ns.api(), job_active);
    create(
        &e,
        "tick",
        json!({"schedule": "*/1 * * * *", "successfulJobsHistoryLimit": 1, "template": job_template(0)}),
    )
    .await;
    // kruise cleans up when it reconciles, at the scheduled times: at the third run the first
    // (finished) one goes, the second (finished) one stays.
    let (seen, left) = eventually(
        "the first finished run deleted, the second kept",
        Duration::from_secs(230),
        || async {
            let names = watch.names();
            let l = jobs
                .list(&ListParams::default())
                .await
                .map_err(|e| e.to_string())?;
            let left: Vec<String> = l.items.iter().map(|j| j.name_any()).collect();
            if names.len() >= 3 && !left.contains(&names[0]) && left.contains(&names[1]) {
                Ok((names, left))
            } else {
                Err(format!("seen {names:?}, left {left:?}"))
            }
        },
    )
    .await;
    let second: Job = jobs.get(&seen[1]).await.unwrap();
    assert!(
        !job_active(&second),
        "the kept run had finished: {second:?}"
    );
    assert!(
        left.iter().all(|n| second_of(n) > second_of(&seen[0])),
        "only newer runs are left: {left:?}"
    );
}

#[tokio::test]
async fn the_webhook_defaults_the_policies_and_refuses_what_kruise_refuses() {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "acj-admission").await;
    let port = support::free_host_port();
    let _graft = GraftControllers::start_admitting(&ns.name, port, "acj");
    let crons: Api<AdvancedCronJob> = ns.api();
    let dry = PostParams {
        dry_run: true,
        ..Default::default()
    };
    let probe: AdvancedCronJob = serde_json::from_value(json!({
        "apiVersion": "apps.kruise.io/v1beta1", "kind": "AdvancedCronJob",
        "metadata": {"name": "probe"},
        "spec": {"schedule": "@daily", "template": job_template(1)}}))
    .unwrap();
    // The CRD's schema defaults none of these: only the webhook writes them.
    eventually(
        "a dry-run create defaulted by graft's webhook",
        Duration::from_secs(60),
        || {
            let (crons, probe, dry) = (crons.clone(), probe.clone(), dry.clone());
            async move {
                let got = crons
                    .create(&dry, &probe)
                    .await
                    .map_err(|e| e.to_string())?;
                let v = serde_json::to_value(&got.spec).map_err(|e| e.to_string())?;
                if v["concurrencyPolicy"] == json!("Allow")
                    && v["paused"] == json!(false)
                    && v["successfulJobsHistoryLimit"] == json!(3)
                    && v["failedJobsHistoryLimit"] == json!(1)
                {
                    Ok(())
                } else {
                    Err(format!("not defaulted yet: {v}"))
                }
            }
        },
    )
    .await;
    let mut bad = probe.clone();
    bad.spec.schedule = "*/5 * * *".into();
    bad.spec.time_zone = Some("Mars/Olympus".into());
    let err = crons
        .create(&PostParams::default(), &bad)
        .await
        .expect_err("a four-field schedule and an unknown zone must be refused");
    assert!(
        err.to_string().contains(
            "[spec.schedule: Invalid value: \"*/5 * * *\": expected exactly 5 fields, found 4: [*/5 * * *], spec.timeZone: Invalid value: \"Mars/Olympus\": unknown time zone Mars/Olympus]"
        ),
        "{err}"
    );
    // Only the schedule and policies may change.
    crons.create(&PostParams::default(), &probe).await.unwrap();
    crons
        .patch(
            "probe",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"schedule": "@hourly", "paused": true}})),
        )
        .await
        .unwrap_or_else(|e| panic!("changing the schedule is allowed: {e}"));
    let err = crons
        .patch(
            "probe",
            &PatchParams::default(),
            &Patch::Merge(&json!({"spec": {"template": {"jobTemplate": {"metadata": {"labels": {"x": "y"}}}}}})),
        )
        .await
        .expect_err("changing the template must be refused");
    assert!(
        err.to_string()
            .contains("spec: Forbidden: updates to advancedcronjob spec for fields other than"),
        "{err}"
    );
}
