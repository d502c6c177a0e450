//! The pull worker against the in-process fake CRI runtime: retries, backoff, deadline, reported
//! phases, the IfNotPresent shortcut, credentials and the per-node pull limit.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use graft_api::apps::v1alpha1::imagepulljob::ImagePullPolicy;
use graft_api::apps::v1alpha1::nodeimage::{ImagePullPhase, ImageTagStatus};
use tokio::sync::Semaphore;

use super::plan::TagJob;
use super::worker::{Backoff, PullContext, pull};
use crate::cri::fake::{FakeCri, PullOutcome};
use crate::cri::{CriClient, Timeouts, proto};

const IMAGE: &str = "reg.example/graft/app";

fn job(tag: &str) -> TagJob {
    TagJob {
        image: IMAGE.into(),
        tag: tag.into(),
        version: 3,
        timeout_seconds: 5,
        backoff_limit: 2,
        active_deadline_seconds: None,
        image_pull_policy: ImagePullPolicy::IfNotPresent,
        pull_secrets: vec![],
        sandbox_config: None,
    }
}

async fn ctx(fake: &FakeCri, limit: Option<usize>) -> PullContext {
    PullContext {
        cri: CriClient::connect(fake.socket().to_str().unwrap(), Timeouts::default())
            .await
            .unwrap(),
        limiter: limit.map(|n| Arc::new(Semaphore::new(n))),
        backoff: Backoff {
            initial: Duration::from_millis(10),
            max: Duration::from_millis(40),
        },
    }
}

/// Runs a pull and returns every reported status and the final one.
async fn run(
    job: &TagJob,
    creds: Vec<proto::AuthConfig>,
    ctx: &PullContext,
) -> (Vec<ImageTagStatus>, ImageTagStatus) {
    let seen = Mutex::new(Vec::new());
    let report = |s: ImageTagStatus| seen.lock().unwrap().push(s);
    let last = pull(job, creds, ctx, &report).await;
    (seen.into_inner().unwrap(), last)
}

fn phases(seen: &[ImageTagStatus]) -> Vec<ImagePullPhase> {
    let mut out: Vec<ImagePullPhase> = Vec::new();
    for s in seen {
        if out.last() != Some(&s.phase) {
            out.push(s.phase);
        }
    }
    out
}

#[tokio::test]
async fn a_pull_reports_waiting_pulling_succeeded_with_the_image_id() {
    let fake = FakeCri::start().await.unwrap();
    let ctx = ctx(&fake, None).await;
    let (seen, last) = run(&job("v1"), vec![], &ctx).await;
    use ImagePullPhase::*;
    assert_eq!(phases(&seen), vec![Waiting, Pulling, Succeeded]);
    assert_eq!(last.progress, Some(100));
    assert_eq!(last.version, Some(3));
    let id = last.image_id.unwrap();
    assert!(id.starts_with(&format!("{IMAGE}@sha256:")), "{id}");
    assert!(last.start_time.is_some() && last.completion_time.is_some());
    assert_eq!(seen[0].progress, Some(0));
    // The pull sandbox is marked as the agent's.
    assert_eq!(fake.calls("PullImage").len(), 1);
}

#[tokio::test]
async fn transient_failures_are_retried_until_success() {
    let fake = FakeCri::start().await.unwrap();
    fake.script_pulls(
        &format!("{IMAGE}:v1"),
        [
            PullOutcome::Fail(tonic::Code::Unavailable, "connection reset".into()),
            PullOutcome::Fail(tonic::Code::Unavailable, "connection reset".into()),
        ],
    );
    let ctx = ctx(&fake, None).await;
    let (seen, last) = run(&job("v1"), vec![], &ctx).await;
    assert_eq!(last.phase, ImagePullPhase::Succeeded);
    assert_eq!(fake.calls("PullImage").len(), 3);
    let attempts: Vec<String> = seen
        .iter()
        .filter(|s| s.phase == ImagePullPhase::Pulling)
        .filter_map(|s| s.message.clone())
        .collect();
    assert_eq!(
        attempts,
        vec![
            "pulling, attempt 1/3",
            "pulling, attempt 2/3",
            "pulling, attempt 3/3"
        ]
    );
}

#[tokio::test]
async fn a_pull_fails_after_the_backoff_limit_with_the_runtime_message() {
    let fake = FakeCri::start().await.unwrap();
    let msg = "failed to resolve reference: not found";
    fake.script_pulls(
        &format!("{IMAGE}:nope"),
        std::iter::repeat_n(PullOutcome::Fail(tonic::Code::NotFound, msg.into()), 5),
    );
    let ctx = ctx(&fake, None).await;
    let (_, last) = run(&job("nope"), vec![], &ctx).await;
    assert_eq!(last.phase, ImagePullPhase::Failed);
    assert_eq!(last.message.as_deref(), Some(msg));
    // backoffLimit 2 = 3 attempts.
    assert_eq!(fake.calls("PullImage").len(), 3);
    assert!(last.image_id.is_none());
}

#[tokio::test]
async fn the_active_deadline_stops_retries() {
    let fake = FakeCri::start().await.unwrap();
    fake.state().pull_delay = Duration::from_secs(30);
    let mut j = job("slow");
    j.active_deadline_seconds = Some(1);
    let ctx = ctx(&fake, None).await;
    let started = std::time::Instant::now();
    let (_, last) = run(&j, vec![], &ctx).await;
    assert_eq!(last.phase, ImagePullPhase::Failed);
    let msg = last.message.unwrap();
    assert!(msg.contains("activeDeadlineSeconds"), "{msg}");
    assert!(msg.contains("no answer within"), "{msg}");
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[tokio::test]
async fn each_attempt_is_bounded_by_the_timeout() {
    let fake = FakeCri::start().await.unwrap();
    fake.state().pull_delay = Duration::from_secs(30);
    let mut j = job("slow");
    j.timeout_seconds = 1;
    j.backoff_limit = 1;
    let ctx = ctx(&fake, None).await;
    let (_, last) = run(&j, vec![], &ctx).await;
    assert_eq!(last.phase, ImagePullPhase::Failed);
    assert_eq!(fake.calls("PullImage").len(), 2);
    assert!(last.message.unwrap().contains("no answer within 1s"));
}

#[tokio::test]
async fn if_not_present_skips_a_present_image_and_always_pulls_it() {
    let fake = FakeCri::start().await.unwrap();
    fake.add_image(&format!("{IMAGE}:v1"), "sha256:aaaa");
    let ctx = ctx(&fake, None).await;
    let (_, last) = run(&job("v1"), vec![], &ctx).await;
    assert_eq!(last.phase, ImagePullPhase::Succeeded);
    assert_eq!(
        last.image_id.as_deref(),
        Some(format!("{IMAGE}@sha256:aaaa").as_str())
    );
    assert!(fake.calls("PullImage").is_empty());

    let mut always = job("v1");
    always.image_pull_policy = ImagePullPolicy::Always;
    let (_, last) = run(&always, vec![], &ctx).await;
    assert_eq!(last.phase, ImagePullPhase::Succeeded);
    assert_eq!(fake.calls("PullImage").len(), 1);
}

#[tokio::test]
async fn credentials_are_tried_in_turn() {
    let fake = FakeCri::start().await.unwrap();
    fake.state()
        .registry_auth
        .insert("reg.example".into(), ("right".into(), "pw".into()));
    let ctx = ctx(&fake, None).await;
    let cred = |u: &str| proto::AuthConfig {
        username: u.into(),
        password: "pw".into(),
        ..Default::default()
    };
    let mut j = job("v1");
    j.backoff_limit = 0;
    let (_, last) = run(&j, vec![cred("wrong"), cred("right")], &ctx).await;
    assert_eq!(last.phase, ImagePullPhase::Succeeded);
    let users: Vec<String> = fake
        .calls("PullImage")
        .into_iter()
        .map(|c| c.detail)
        .collect();
    assert_eq!(users, vec!["wrong", "right"]);

    let (_, last) = run(&job("v2"), vec![cred("wrong")], &ctx).await;
    assert_eq!(last.phase, ImagePullPhase::Failed);
    assert!(last.message.unwrap().contains("authorization failed"));
}

#[tokio::test]
async fn the_node_pull_limit_holds_and_waiting_pulls_stay_waiting() {
    let fake = FakeCri::start().await.unwrap();
    fake.state().pull_delay = Duration::from_millis(300);
    let ctx = ctx(&fake, Some(2)).await;
    let seen = Arc::new(Mutex::new(Vec::<(String, ImagePullPhase)>::new()));
    let mut handles = Vec::new();
    for i in 0..5 {
        let ctx = ctx.clone();
        let seen = seen.clone();
        handles.push(tokio::spawn(async move {
            let j = job(&format!("v{i}"));
            let report = |s: ImageTagStatus| seen.lock().unwrap().push((s.tag.clone(), s.phase));
            pull(&j, vec![], &ctx, &report).await
        }));
    }
    for h in handles {
        assert_eq!(h.await.unwrap().phase, ImagePullPhase::Succeeded);
    }
    assert_eq!(fake.state().max_pulls_in_flight, 2);
    // Replay the reports: never more than 2 tags in Pulling at once.
    let mut pulling = std::collections::BTreeSet::new();
    for (tag, phase) in seen.lock().unwrap().iter() {
        if *phase == ImagePullPhase::Pulling {
            pulling.insert(tag.clone());
        } else {
            pulling.remove(tag);
        }
        assert!(pulling.len() <= 2, "pulling at once: {pulling:?}");
    }
}
