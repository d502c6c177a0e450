//! Pure decisions of the image puller: which tag pulls to start or stop for a NodeImage spec, and
//! the NodeImage status to report from the pulls' states.

use std::collections::BTreeMap;

use graft_api::apps::v1alpha1::imagepulljob::{ImagePullPolicy, SandboxConfig};
use graft_api::apps::v1alpha1::nodeimage::{
    self, ImagePullPhase, ImageStatus, ImageTagStatus, NodeImageSpec, NodeImageStatus,
    ReferenceObject,
};

/// Default seconds per pull attempt (kruise's default).
pub const DEFAULT_TIMEOUT_SECONDS: i32 = 600;
/// Default retries after the first attempt.
pub const DEFAULT_BACKOFF_LIMIT: i32 = 3;

/// An image name and one of its tags: the unit of work.
pub type TagKey = (String, String);

/// One tag to pull, as the NodeImage spec asks for it.
#[derive(Clone, Debug, PartialEq)]
pub struct TagJob {
    /// Image name without tag, the key in `spec.images`.
    pub image: String,
    /// Tag or digest.
    pub tag: String,
    /// Spec version of this round.
    pub version: i64,
    /// Seconds per attempt.
    pub timeout_seconds: i32,
    /// Retries after the first attempt.
    pub backoff_limit: i32,
    /// Deadline of the whole pull in seconds from its start, if any.
    pub active_deadline_seconds: Option<i64>,
    /// Skip the pull when the image is present (`IfNotPresent`) or always pull.
    pub image_pull_policy: ImagePullPolicy,
    /// Secrets with registry credentials.
    pub pull_secrets: Vec<ReferenceObject>,
    /// Labels and annotations for the pull sandbox.
    pub sandbox_config: Option<SandboxConfig>,
}

impl TagJob {
    /// The reference to pull: `name:tag`, or `name@digest` when the tag is a digest.
    pub fn reference(&self) -> String {
        if self.tag.contains(':') {
            format!("{}@{}", self.image, self.tag)
        } else {
            format!("{}:{}", self.image, self.tag)
        }
    }

    /// The key of this job.
    pub fn key(&self) -> TagKey {
        (self.image.clone(), self.tag.clone())
    }
}

/// Which pulls to start and stop.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WorkerPlan {
    /// New pulls (a new tag or a new version of a tag).
    pub start: Vec<TagJob>,
    /// Pulls to abandon (tag removed or replaced by a new version).
    pub stop: Vec<TagKey>,
}

/// Every tag the spec asks for.
pub fn tag_jobs(spec: &NodeImageSpec) -> Vec<TagJob> {
    let mut out = Vec::new();
    for (image, image_spec) in spec.images.iter().flatten() {
        for t in &image_spec.tags {
            let policy = t.pull_policy.clone().unwrap_or_default();
            out.push(TagJob {
                image: image.clone(),
                tag: t.tag.clone(),
                version: t.version.unwrap_or(0),
                timeout_seconds: policy
                    .timeout_seconds
                    .filter(|t| *t > 0)
                    .unwrap_or(DEFAULT_TIMEOUT_SECONDS),
                backoff_limit: policy
                    .backoff_limit
                    .filter(|b| *b >= 0)
                    .unwrap_or(DEFAULT_BACKOFF_LIMIT),
                active_deadline_seconds: policy.active_deadline_seconds.filter(|d| *d > 0),
                image_pull_policy: t.image_pull_policy.clone().unwrap_or_default(),
                pull_secrets: image_spec.pull_secrets.clone().unwrap_or_default(),
                sandbox_config: image_spec.sandbox_config.clone(),
            });
        }
    }
    out
}

/// The status the NodeImage already has for a tag, if it is for `version`.
fn observed_tag<'a>(
    observed: &'a NodeImageStatus,
    image: &str,
    tag: &str,
    version: i64,
) -> Option<&'a ImageTagStatus> {
    observed
        .image_statuses
        .as_ref()?
        .get(image)?
        .tags
        .iter()
        .find(|t| t.tag == tag && t.version.unwrap_or(0) == version)
}

fn finished(phase: ImagePullPhase) -> bool {
    matches!(phase, ImagePullPhase::Succeeded | ImagePullPhase::Failed)
}

/// Pulls to start and stop so that every tag of `spec` has a pull of its current version, unless
/// the NodeImage already reports that version finished (after an agent restart, or marked failed
/// by the manager). `running` maps the tags being pulled now to the version they pull.
pub fn plan_workers(
    spec: &NodeImageSpec,
    observed: &NodeImageStatus,
    running: &BTreeMap<TagKey, i64>,
) -> WorkerPlan {
    let mut plan = WorkerPlan::default();
    let jobs = tag_jobs(spec);
    for job in &jobs {
        let key = job.key();
        match running.get(&key) {
            Some(v) if *v == job.version => continue,
            Some(_) => plan.stop.push(key.clone()),
            None => {}
        }
        let done = observed_tag(observed, &job.image, &job.tag, job.version)
            .is_some_and(|t| finished(t.phase));
        if !done {
            plan.start.push(job.clone());
        }
    }
    for key in running.keys() {
        if !jobs.iter().any(|j| j.image == key.0 && j.tag == key.1) {
            plan.stop.push(key.clone());
        }
    }
    plan
}

/// The NodeImage status for `spec`: each tag's state from its pull (`pulls`, for the current
/// version), else what the NodeImage already says for that version, else `Waiting`.
pub fn build_status(
    spec: &NodeImageSpec,
    pulls: &BTreeMap<TagKey, ImageTagStatus>,
    observed: &NodeImageStatus,
) -> NodeImageStatus {
    let mut status = NodeImageStatus {
        first_sync_status: observed.first_sync_status.clone(),
        ..Default::default()
    };
    let mut images: BTreeMap<String, ImageStatus> = BTreeMap::new();
    for job in tag_jobs(spec) {
        let tag_status = pulls
            .get(&job.key())
            .filter(|s| s.version.unwrap_or(0) == job.version)
            .or_else(|| observed_tag(observed, &job.image, &job.tag, job.version))
            .cloned()
            .unwrap_or_else(|| ImageTagStatus {
                tag: job.tag.clone(),
                phase: ImagePullPhase::Waiting,
                version: Some(job.version),
                ..Default::default()
            });
        status.desired += 1;
        match tag_status.phase {
            ImagePullPhase::Waiting => status.waiting += 1,
            ImagePullPhase::Pulling => status.pulling += 1,
            ImagePullPhase::Succeeded => status.succeeded += 1,
            ImagePullPhase::Failed => status.failed += 1,
        }
        images.entry(job.image).or_default().tags.push(tag_status);
    }
    // Stored sorted by tag, as OpenKruise's NodeImage webhook does on every write.
    for image in images.values_mut() {
        nodeimage::sort_tag_statuses(&mut image.tags);
    }
    status.image_statuses = (!images.is_empty()).then_some(images);
    status
}

#[cfg(test)]
mod tests {
    use super::*;
    use graft_api::apps::v1alpha1::nodeimage::{ImageSpec, ImageTagSpec};
    use pretty_assertions::assert_eq;

    fn spec(tags: &[(&str, &str, i64)]) -> NodeImageSpec {
        let mut images: BTreeMap<String, ImageSpec> = BTreeMap::new();
        for (image, tag, version) in tags {
            images
                .entry(image.to_string())
                .or_default()
                .tags
                .push(ImageTagSpec {
                    tag: tag.to_string(),
                    version: Some(*version),
                    ..Default::default()
                });
        }
        NodeImageSpec {
            images: Some(images),
        }
    }

    fn tag_status(tag: &str, phase: ImagePullPhase, version: i64) -> ImageTagStatus {
        ImageTagStatus {
            tag: tag.into(),
            phase,
            version: Some(version),
            ..Default::default()
        }
    }

    fn observed(entries: &[(&str, ImageTagStatus)]) -> NodeImageStatus {
        let mut images: BTreeMap<String, ImageStatus> = BTreeMap::new();
        for (image, s) in entries {
            images
                .entry(image.to_string())
                .or_default()
                .tags
                .push(s.clone());
        }
        NodeImageStatus {
            image_statuses: Some(images),
            ..Default::default()
        }
    }

    fn key(i: &str, t: &str) -> TagKey {
        (i.to_string(), t.to_string())
    }

    #[test]
    fn references_use_at_for_digests() {
        let mut j = tag_jobs(&spec(&[("reg/app", "v1", 0)])).remove(0);
        assert_eq!(j.reference(), "reg/app:v1");
        j.tag = "sha256:abc".into();
        assert_eq!(j.reference(), "reg/app@sha256:abc");
    }

    #[test]
    fn defaults_fill_a_bare_tag() {
        let j = tag_jobs(&spec(&[("reg/app", "v1", 2)])).remove(0);
        assert_eq!(j.timeout_seconds, 600);
        assert_eq!(j.backoff_limit, 3);
        assert_eq!(j.version, 2);
        assert_eq!(j.image_pull_policy, ImagePullPolicy::IfNotPresent);
    }

    #[test]
    fn worker_plan_table() {
        struct Case {
            name: &'static str,
            spec: NodeImageSpec,
            observed: NodeImageStatus,
            running: Vec<(TagKey, i64)>,
            start: Vec<TagKey>,
            stop: Vec<TagKey>,
        }
        let cases = [
            Case {
                name: "a new tag starts a pull",
                spec: spec(&[("app", "v1", 0)]),
                observed: NodeImageStatus::default(),
                running: vec![],
                start: vec![key("app", "v1")],
                stop: vec![],
            },
            Case {
                name: "a running pull of the same version is left alone",
                spec: spec(&[("app", "v1", 0)]),
                observed: NodeImageStatus::default(),
                running: vec![(key("app", "v1"), 0)],
                start: vec![],
                stop: vec![],
            },
            Case {
                name: "a version bump restarts the pull",
                spec: spec(&[("app", "v1", 1)]),
                observed: observed(&[("app", tag_status("v1", ImagePullPhase::Succeeded, 0))]),
                running: vec![(key("app", "v1"), 0)],
                start: vec![key("app", "v1")],
                stop: vec![key("app", "v1")],
            },
            Case {
                name: "a finished version on the NodeImage is not pulled again",
                spec: spec(&[("app", "v1", 0), ("app", "v2", 0)]),
                observed: observed(&[
                    ("app", tag_status("v1", ImagePullPhase::Succeeded, 0)),
                    ("app", tag_status("v2", ImagePullPhase::Failed, 0)),
                ]),
                running: vec![],
                start: vec![],
                stop: vec![],
            },
            Case {
                name: "a pull in progress before a restart is resumed",
                spec: spec(&[("app", "v1", 0)]),
                observed: observed(&[("app", tag_status("v1", ImagePullPhase::Pulling, 0))]),
                running: vec![],
                start: vec![key("app", "v1")],
                stop: vec![],
            },
            Case {
                name: "a removed tag stops its pull",
                spec: spec(&[("app", "v2", 0)]),
                observed: NodeImageStatus::default(),
                running: vec![(key("app", "v1"), 0)],
                start: vec![key("app", "v2")],
                stop: vec![key("app", "v1")],
            },
        ];
        for c in cases {
            let running: BTreeMap<TagKey, i64> = c.running.into_iter().collect();
            let plan = plan_workers(&c.spec, &c.observed, &running);
            let start: Vec<TagKey> = plan.start.iter().map(TagJob::key).collect();
            assert_eq!(start, c.start, "{}", c.name);
            assert_eq!(plan.stop, c.stop, "{}", c.name);
        }
    }

    #[test]
    fn status_counts_each_phase_and_drops_old_versions() {
        let spec = spec(&[
            ("app", "v1", 0),
            ("app", "v2", 1),
            ("other", "v1", 0),
            ("x", "1", 0),
        ]);
        let observed = observed(&[
            ("app", tag_status("v1", ImagePullPhase::Succeeded, 0)),
            // An old round's failure is not this round's.
            ("app", tag_status("v2", ImagePullPhase::Failed, 0)),
        ]);
        let pulls: BTreeMap<TagKey, ImageTagStatus> = [
            (
                key("other", "v1"),
                tag_status("v1", ImagePullPhase::Pulling, 0),
            ),
            (key("x", "1"), tag_status("1", ImagePullPhase::Failed, 0)),
        ]
        .into();
        let s = build_status(&spec, &pulls, &observed);
        assert_eq!(
            (s.desired, s.succeeded, s.failed, s.pulling, s.waiting),
            (4, 1, 1, 1, 1)
        );
        let app = &s.image_statuses.as_ref().unwrap()["app"].tags;
        assert_eq!(app[1], tag_status("v2", ImagePullPhase::Waiting, 1));
    }
}
