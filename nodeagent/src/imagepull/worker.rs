//! Pulls one tag: skip when present (`IfNotPresent`), wait for a pull slot, then try up to
//! `backoffLimit + 1` times, each attempt bounded by `timeoutSeconds` and all of them by
//! `activeDeadlineSeconds`, with a backoff between attempts. Every state change is reported.

use std::sync::Arc;
use std::time::Duration;

use graft_api::apps::v1alpha1::imagepulljob::ImagePullPolicy;
use graft_api::apps::v1alpha1::nodeimage::{ImagePullPhase, ImageTagStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::plan::TagJob;
use crate::cri::{self, CriClient, proto};

/// Annotation kruise-daemon puts on its pull sandbox config; kept for tools that look for it.
pub const PULLING_BY_ANNOTATION: &str = "apps.kruise.io/pulling-image-by";

/// Backoff between attempts: `initial`, doubling, at most `max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// Wait after the first failure.
    pub initial: Duration,
    /// Longest wait.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(30),
        }
    }
}

impl Backoff {
    /// Wait after failed attempt number `attempt` (0-based).
    pub fn after(&self, attempt: u32) -> Duration {
        self.initial
            .saturating_mul(1u32.checked_shl(attempt.min(16)).unwrap_or(u32::MAX))
            .min(self.max)
    }
}

/// What a pull needs besides its job.
#[derive(Clone, Debug)]
pub struct PullContext {
    /// The runtime.
    pub cri: CriClient,
    /// Pull slots shared by every pull on the node (`None`: unlimited).
    pub limiter: Option<Arc<Semaphore>>,
    /// Waits between attempts.
    pub backoff: Backoff,
}

fn now() -> Time {
    Time(Timestamp::now())
}

/// `<name>@<digest>` of the image as the runtime has it, for `status.imageID`.
fn image_id(job: &TagJob, image: &proto::Image) -> String {
    let name = |r: &str| cri::normalize_reference(cri::split_reference(r).0);
    let want = name(&job.image);
    image
        .repo_digests
        .iter()
        .find(|d| name(d) == want)
        .cloned()
        .unwrap_or_else(|| format!("{}@{}", job.image, image.id))
}

async fn present(
    ctx: &PullContext,
    reference: &str,
) -> Result<Option<proto::Image>, cri::CriError> {
    ctx.cri.image_status(reference).await
}

/// Pulls `job` with each of `credentials` in turn (anonymously when there are none), reporting
/// Waiting, Pulling and the final Succeeded/Failed through `report`; returns the final status.
pub async fn pull(
    job: &TagJob,
    credentials: Vec<proto::AuthConfig>,
    ctx: &PullContext,
    report: &(dyn Fn(ImageTagStatus) + Send + Sync),
) -> ImageTagStatus {
    let reference = job.reference();
    let started = Instant::now();
    let deadline = job
        .active_deadline_seconds
        .map(|s| started + Duration::from_secs(u64::try_from(s).unwrap_or(0)));
    let mut status = ImageTagStatus {
        tag: job.tag.clone(),
        phase: ImagePullPhase::Waiting,
        version: Some(job.version),
        progress: Some(0),
        ..Default::default()
    };
    report(status.clone());

    let finish = |mut s: ImageTagStatus, phase: ImagePullPhase, message: String| {
        s.phase = phase;
        s.completion_time = Some(now());
        s.message = Some(message);
        if phase == ImagePullPhase::Succeeded {
            s.progress = Some(100);
        }
        report(s.clone());
        s
    };

    if job.image_pull_policy == ImagePullPolicy::IfNotPresent
        && let Ok(Some(image)) = present(ctx, &reference).await
    {
        status.start_time = Some(now());
        status.image_id = Some(image_id(job, &image));
        return finish(
            status,
            ImagePullPhase::Succeeded,
            "image is already present".into(),
        );
    }

    // Wait for a pull slot, but not past the deadline.
    let _permit = match &ctx.limiter {
        Some(sem) => {
            let acquire = sem.clone().acquire_owned();
            let permit = match deadline {
                Some(d) => tokio::time::timeout_at(d, acquire).await.ok(),
                None => Some(acquire.await),
            };
            match permit {
                Some(Ok(p)) => Some(p),
                _ => {
                    return finish(
                        status,
                        ImagePullPhase::Failed,
                        "pulling exceeds the activeDeadlineSeconds".into(),
                    );
                }
            }
        }
        None => None,
    };

    status.phase = ImagePullPhase::Pulling;
    status.start_time = Some(now());
    let attempts = u32::try_from(job.backoff_limit)
        .unwrap_or(0)
        .saturating_add(1);
    let per_attempt = Duration::from_secs(u64::try_from(job.timeout_seconds).unwrap_or(1).max(1));
    let auths: Vec<Option<proto::AuthConfig>> = if credentials.is_empty() {
        vec![None]
    } else {
        credentials.into_iter().map(Some).collect()
    };
    let sandbox = sandbox_config(job);
    let mut last_error = String::new();
    for attempt in 0..attempts {
        status.message = Some(format!("pulling, attempt {}/{attempts}", attempt + 1));
        report(status.clone());
        for auth in &auths {
            let timeout = match deadline {
                Some(d) => per_attempt.min(d.saturating_duration_since(Instant::now())),
                None => per_attempt,
            };
            if timeout.is_zero() {
                return finish(
                    status,
                    ImagePullPhase::Failed,
                    format!("pulling exceeds the activeDeadlineSeconds; last error: {last_error}"),
                );
            }
            match ctx
                .cri
                .pull_image(&reference, auth.clone(), Some(sandbox.clone()), timeout)
                .await
            {
                Ok(image_ref) => {
                    let image =
                        present(ctx, &reference)
                            .await
                            .ok()
                            .flatten()
                            .unwrap_or(proto::Image {
                                id: image_ref,
                                ..Default::default()
                            });
                    status.image_id = Some(image_id(job, &image));
                    return finish(status, ImagePullPhase::Succeeded, "image pulled".into());
                }
                Err(e) => {
                    tracing::debug!(image = %reference, attempt, error = %e, "pull attempt failed");
                    last_error = e.runtime_message();
                }
            }
        }
        if attempt + 1 < attempts {
            let wait = ctx.backoff.after(attempt);
            if deadline.is_some_and(|d| Instant::now() + wait >= d) {
                return finish(
                    status,
                    ImagePullPhase::Failed,
                    format!("pulling exceeds the activeDeadlineSeconds; last error: {last_error}"),
                );
            }
            tokio::time::sleep(wait).await;
        }
    }
    finish(status, ImagePullPhase::Failed, last_error)
}

fn sandbox_config(job: &TagJob) -> proto::PodSandboxConfig {
    let mut config = proto::PodSandboxConfig::default();
    if let Some(s) = &job.sandbox_config {
        config.labels = s.labels.clone().unwrap_or_default().into_iter().collect();
        config.annotations = s
            .annotations
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
    }
    config.annotations.insert(
        PULLING_BY_ANNOTATION.to_string(),
        "graft-nodeagent".to_string(),
    );
    config
}
