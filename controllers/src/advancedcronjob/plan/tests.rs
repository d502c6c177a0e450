use super::*;
use pretty_assertions::assert_eq;
use serde_json::json;

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

/// An AdvancedCronJob created at `created` with these spec fields over a Job template.
fn cron(created: &str, spec: serde_json::Value) -> AdvancedCronJob {
    let mut s = json!({
        "schedule": "*/1 * * * *",
        "template": {"jobTemplate": {
            "metadata": {"labels": {"app": "tick"}, "annotations": {"note": "x"}},
            "spec": {"template": {"spec": {"restartPolicy": "Never",
                "containers": [{"name": "c", "image": "busybox"}]}}}}}
    });
    if let (Some(m), Some(e)) = (s.as_object_mut(), spec.as_object()) {
        m.extend(e.clone());
    }
    serde_json::from_value(json!({
        "apiVersion": "apps.kruise.io/v1beta1", "kind": "AdvancedCronJob",
        "metadata": {"name": "tick", "namespace": "ns", "uid": "u-1", "creationTimestamp": created},
        "spec": s}))
    .unwrap()
}

/// A run of `tick` scheduled at `at` (`None`: no annotation), with this outcome.
fn run(at: &str, finished: Option<Finished>) -> Run {
    let t = ts(at);
    Run {
        reference: ObjectReference {
            api_version: Some("batch/v1".into()),
            kind: Some("Job".into()),
            name: Some(run_name("tick", t)),
            namespace: Some("ns".into()),
            uid: Some(format!("uid-{}", t.as_second())),
            resource_version: Some("1".into()),
            ..Default::default()
        },
        scheduled_at: Some(t),
        start_time: Some(t),
        finished,
    }
}

fn plan_at(cron: &AdvancedCronJob, runs: &[Run], now: &str) -> Plan {
    plan(&Snapshot {
        cron,
        runs,
        now: ts(now),
    })
}

fn created(p: &Plan) -> Option<String> {
    p.create.as_ref().and_then(|c| c.metadata().name.clone())
}

#[test]
fn nothing_due_requeues_until_the_next_minute() {
    let c = cron("2026-12-03T20:00:10Z", json!({}));
    let p = plan_at(&c, &[], "2026-12-03T20:00:40Z");
    assert_eq!(p.create, None);
    assert_eq!(p.skipped, Some(Skipped::NotDue));
    assert_eq!(p.requeue_after, Some(Duration::from_secs(20)));
    assert_eq!(p.status.type_, Some(TemplateKind::Job));
    assert!(p.status_changed, "the first status is written");
}

#[test]
fn a_due_time_creates_the_run_kruise_builds() {
    let c = cron("2026-12-03T20:00:10Z", json!({}));
    let p = plan_at(&c, &[], "2026-12-03T20:01:00.2Z");
    let Some(NewRun::Job(job)) = &p.create else {
        panic!("expected a Job, got {:?}", p.create)
    };
    let got = serde_json::to_value(&job.metadata).unwrap();
    assert_eq!(
        got,
        json!({
            "name": "tick-1796328060",
            "namespace": "ns",
            "labels": {"app": "tick"},
            "annotations": {"note": "x", "apps.kruise.io/scheduled-at": "2026-12-03T20:01:00Z"},
            "ownerReferences": [{"apiVersion": "apps.kruise.io/v1beta1", "kind": "AdvancedCronJob",
                "name": "tick", "uid": "u-1", "controller": true, "blockOwnerDeletion": true}]
        })
    );
    assert_eq!(
        job.spec,
        c.spec.template.job_template.as_ref().unwrap().spec
    );
    assert_eq!(p.skipped, None);
    assert_eq!(p.requeue_after, Some(Duration::from_millis(59_800)));
}

#[test]
fn a_broadcast_job_template_creates_a_broadcast_job() {
    let c = cron(
        "2026-12-03T20:00:10Z",
        json!({"template": {"broadcastJobTemplate": {"metadata": {"labels": {"k": "v"}},
            "spec": {"template": {"spec": {"restartPolicy": "Never",
                "containers": [{"name": "c", "image": "busybox"}]}}}}}}),
    );
    let p = plan_at(&c, &[], "2026-12-03T20:01:30Z");
    let Some(NewRun::BroadcastJob(b)) = &p.create else {
        panic!("expected a BroadcastJob, got {:?}", p.create)
    };
    assert_eq!(b.metadata.name.as_deref(), Some("tick-1796328060"));
    assert_eq!(
        b.metadata.labels,
        Some(BTreeMap::from([("k".to_string(), "v".to_string())]))
    );
    let v = serde_json::to_value(b.as_ref()).unwrap();
    assert_eq!(v["apiVersion"], json!("apps.kruise.io/v1beta1"));
    assert_eq!(v["kind"], json!("BroadcastJob"));
    assert_eq!(p.status.type_, Some(TemplateKind::BroadcastJob));
}

#[test]
fn status_comes_from_the_runs() {
    let c = cron(
        "2026-12-03T19:00:00Z",
        json!({"concurrencyPolicy": "Allow"}),
    );
    let runs = [
        run("2026-12-03T20:01:00Z", None),
        run("2026-12-03T20:00:00Z", Some(Finished::Complete)),
    ];
    let p = plan_at(&c, &runs, "2026-12-03T20:01:30Z");
    assert_eq!(
        p.status,
        AdvancedCronJobStatus {
            type_: Some(TemplateKind::Job),
            active: Some(vec![runs[0].reference.clone()]),
            last_schedule_time: Some(Time(ts("2026-12-03T20:01:00Z"))),
        }
    );
    assert_eq!(p.create, None, "20:01 already ran");
    // unchanged status: no write
    let mut c2 = c.clone();
    c2.status = Some(p.status.clone());
    assert!(!plan_at(&c2, &runs, "2026-12-03T20:01:30Z").status_changed);
}

/// (policy, expected new run, expected deletions, expected skip)
#[test]
fn concurrency_policies() {
    let runs = [run("2026-12-03T20:00:00Z", None)];
    let now = "2026-12-03T20:01:05Z";
    let cases = [
        ("Allow", Some("tick-1796328060"), vec![], None),
        (
            "Forbid",
            None,
            vec![],
            Some(Skipped::Forbidden {
                scheduled: ts("2026-12-03T20:01:00Z"),
                active: 1,
            }),
        ),
        (
            "Replace",
            Some("tick-1796328060"),
            vec![("tick-1796328000".to_string(), DeleteReason::Replaced)],
            None,
        ),
    ];
    for (policy, create, delete, skipped) in cases {
        let c = cron("2026-12-03T19:00:00Z", json!({"concurrencyPolicy": policy}));
        let p = plan_at(&c, &runs, now);
        assert_eq!(created(&p).as_deref(), create, "{policy}");
        assert_eq!(p.delete, delete, "{policy}");
        assert_eq!(p.skipped, skipped, "{policy}");
        assert_eq!(p.requeue_after, Some(Duration::from_secs(55)), "{policy}");
    }
    // Forbid with nothing active runs
    let c = cron(
        "2026-12-03T19:00:00Z",
        json!({"concurrencyPolicy": "Forbid"}),
    );
    let done = [run("2026-12-03T20:00:00Z", Some(Finished::Failed))];
    assert_eq!(
        created(&plan_at(&c, &done, now)).as_deref(),
        Some("tick-1796328060")
    );
}

#[test]
fn missed_times_run_only_the_most_recent() {
    // one missed
    let c = cron("2026-12-03T19:00:00Z", json!({}));
    let last = [run("2026-12-03T20:00:00Z", Some(Finished::Complete))];
    let p = plan_at(&c, &last, "2026-12-03T20:01:10Z");
    assert_eq!(created(&p).as_deref(), Some("tick-1796328060"));
    assert_eq!(p.missed, 1);
    // graft was down 30 minutes: only 20:30 runs, once
    let p = plan_at(&c, &last, "2026-12-03T20:30:10Z");
    assert_eq!(
        created(&p),
        Some(run_name("tick", ts("2026-12-03T20:30:00Z")))
    );
    assert_eq!(p.missed, 30);
    // down for five hours (more than 100 missed): Kubernetes still runs the latest
    let p = plan_at(&c, &last, "2026-12-03T23:59:30Z");
    assert_eq!(
        created(&p),
        Some(run_name("tick", ts("2026-12-03T23:59:00Z")))
    );
    assert!(p.missed > MAX_MISSED);
    // a created job not yet in the cache is no reason to run an older time
    let p = plan_at(&c, &last, "2026-12-03T20:00:30Z");
    assert_eq!(p.create, None);
}

#[test]
fn starting_deadline_seconds() {
    let c = cron(
        "2026-12-03T19:00:00Z",
        json!({"schedule": "0 * * * *", "startingDeadlineSeconds": 60}),
    );
    let last = [run("2026-12-03T19:00:00Z", Some(Finished::Complete))];
    // 20:00 missed by 30 s: still within the deadline
    let p = plan_at(&c, &last, "2026-12-03T20:00:30Z");
    assert_eq!(
        created(&p),
        Some(run_name("tick", ts("2026-12-03T20:00:00Z")))
    );
    // missed by 5 minutes: skipped, wait for 21:00
    let p = plan_at(&c, &last, "2026-12-03T20:05:00Z");
    assert_eq!(p.create, None);
    assert_eq!(
        p.skipped,
        Some(Skipped::NotDue),
        "the window starts after 20:00"
    );
    assert_eq!(p.requeue_after, Some(Duration::from_secs(55 * 60)));
    // a longer deadline still covers 20:00 at 20:59:59
    let c = cron(
        "2026-12-03T19:00:00Z",
        json!({"schedule": "0 * * * *", "startingDeadlineSeconds": 3600}),
    );
    let p = plan_at(&c, &last, "2026-12-03T20:59:59Z");
    assert_eq!(
        created(&p),
        Some(run_name("tick", ts("2026-12-03T20:00:00Z")))
    );
}

#[test]
fn paused_cleans_history_but_starts_nothing() {
    let c = cron(
        "2026-12-03T19:00:00Z",
        json!({"paused": true, "successfulJobsHistoryLimit": 1}),
    );
    let runs = [
        run("2026-12-03T20:00:00Z", Some(Finished::Complete)),
        run("2026-12-03T20:01:00Z", Some(Finished::Complete)),
    ];
    let p = plan_at(&c, &runs, "2026-12-03T20:05:10Z");
    assert_eq!(p.create, None);
    assert_eq!(p.skipped, Some(Skipped::Paused));
    assert_eq!(p.requeue_after, None, "paused waits for a change");
    assert_eq!(
        p.delete,
        vec![(
            "tick-1796328000".to_string(),
            DeleteReason::SuccessfulHistory
        )]
    );
}

#[test]
fn history_limits_delete_the_oldest_started_first() {
    let c = cron("2026-12-03T19:00:00Z", json!({}));
    let mut runs = vec![
        run("2026-12-03T20:03:00Z", Some(Finished::Complete)),
        run("2026-12-03T20:00:00Z", Some(Finished::Complete)),
        run("2026-12-03T20:02:00Z", Some(Finished::Failed)),
        run("2026-12-03T20:01:00Z", Some(Finished::Complete)),
        run("2026-12-03T20:04:00Z", Some(Finished::Complete)),
        run("2026-12-03T20:05:00Z", Some(Finished::Failed)),
        run("2026-12-03T20:06:00Z", None),
    ];
    // a run that never started is the oldest
    runs[4].start_time = None;
    let p = plan_at(&c, &runs, "2026-12-03T20:06:10Z");
    assert_eq!(
        p.delete,
        vec![
            ("tick-1796328120".to_string(), DeleteReason::FailedHistory),
            (
                "tick-1796328240".to_string(),
                DeleteReason::SuccessfulHistory
            ),
        ]
    );
    // limits of zero delete every finished run
    let c = cron(
        "2026-12-03T19:00:00Z",
        json!({"successfulJobsHistoryLimit": 0, "failedJobsHistoryLimit": 0}),
    );
    assert_eq!(plan_at(&c, &runs, "2026-12-03T20:06:10Z").delete.len(), 6);
}

#[test]
fn time_zones_schedule_in_local_time() {
    // 09:00 in Shanghai is 01:00 UTC
    let c = cron(
        "2026-12-03T00:00:00Z",
        json!({"schedule": "0 9 * * *", "timeZone": "Asia/Shanghai"}),
    );
    let p = plan_at(&c, &[], "2026-12-03T01:00:05Z");
    assert_eq!(
        created(&p),
        Some(run_name("tick", ts("2026-12-03T01:00:00Z")))
    );
    assert_eq!(
        p.create.unwrap().metadata().annotations.as_ref().unwrap()[SCHEDULED_AT],
        "2026-12-03T01:00:00Z"
    );
}

#[test]
fn an_unparsable_schedule_waits_for_a_change() {
    let c = cron("2026-12-03T00:00:00Z", json!({"schedule": "61 * * * *"}));
    let p = plan_at(&c, &[], "2026-12-03T01:00:05Z");
    assert_eq!(p.create, None);
    assert_eq!(p.requeue_after, None);
    assert!(matches!(p.skipped, Some(Skipped::UnparsableSchedule(_))));
    assert!(p.status_changed, "the status is still written");
}

#[test]
fn runs_belong_to_their_cron_job_by_controller_owner() {
    let meta = |api: &str, kind: &str, name: &str, controller: bool| ObjectMeta {
        owner_references: Some(vec![OwnerReference {
            api_version: api.into(),
            kind: kind.into(),
            name: name.into(),
            uid: "x".into(),
            controller: Some(controller),
            block_owner_deletion: None,
        }]),
        ..Default::default()
    };
    let v1b = "apps.kruise.io/v1beta1";
    let v1a = "apps.kruise.io/v1alpha1";
    assert!(owned_by(
        &meta(v1b, "AdvancedCronJob", "tick", true),
        "tick",
        TemplateKind::Job
    ));
    assert!(owned_by(
        &meta(v1a, "AdvancedCronJob", "tick", true),
        "tick",
        TemplateKind::Job
    ));
    assert!(!owned_by(
        &meta(v1a, "AdvancedCronJob", "tick", true),
        "tick",
        TemplateKind::BroadcastJob
    ));
    assert!(!owned_by(
        &meta(v1b, "AdvancedCronJob", "tick", false),
        "tick",
        TemplateKind::Job
    ));
    assert!(!owned_by(
        &meta(v1b, "AdvancedCronJob", "other", true),
        "tick",
        TemplateKind::Job
    ));
    assert!(!owned_by(
        &meta(v1b, "CronJob", "tick", true),
        "tick",
        TemplateKind::Job
    ));
}

#[test]
fn job_and_broadcast_job_outcomes() {
    let job: Job = serde_json::from_value(json!({"metadata": {"name": "tick-1",
        "annotations": {SCHEDULED_AT: "2026-12-03T20:00:00Z"}},
        "status": {"startTime": "2026-12-03T20:00:01Z",
            "conditions": [{"type": "Complete", "status": "True"}]}}))
    .unwrap();
    let r = Run::from_job(&job);
    assert_eq!(r.finished, Some(Finished::Complete));
    assert_eq!(r.scheduled_at, Some(ts("2026-12-03T20:00:00Z")));
    assert_eq!(r.reference.kind.as_deref(), Some("Job"));
    let bj: BroadcastJob = serde_json::from_value(json!({"apiVersion": "apps.kruise.io/v1beta1",
        "kind": "BroadcastJob", "metadata": {"name": "tick-1",
        "annotations": {SCHEDULED_AT: "garbage"}},
        "spec": {"template": {}},
        "status": {"conditions": [{"type": "Failed", "status": "True"}],
            "active": 0, "succeeded": 0, "failed": 1, "desired": 1}}))
    .unwrap();
    let r = Run::from_broadcast_job(&bj);
    assert_eq!(r.finished, Some(Finished::Failed));
    assert_eq!(r.scheduled_at, None, "an unparsable annotation is ignored");
    let mut running = bj.clone();
    running.status = None;
    assert_eq!(Run::from_broadcast_job(&running).finished, None);
}
