//! The pure NodeImage manager planner: Nodes, NodeImages, the live ImagePullJobs and the clock in;
//! creations, deletions, label copies, tag removals and tags to mark failed out.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use graft_api::apps::v1alpha1::nodeimage::{
    ImagePullPhase, ImageTagSpec, ImageTagStatus, NodeImage,
};
use graft_api::labels::FAKE_NODEIMAGE;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::ResourceExt;

/// Message of a tag the agent never reported on.
pub const NOT_RESPONDED: &str = "node has not responded for a long time";
/// Message of a tag still pulling past its deadline.
pub const DEADLINE_EXCEEDED: &str = "pulling exceeds the activeDeadlineSeconds";
/// Slack after a tag's activeDeadlineSeconds before the manager gives up on it (the agent fails
/// it itself at the deadline; this is for an agent that went away).
pub const DEADLINE_GRACE: Duration = Duration::from_secs(60);

/// A Node as the manager sees it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NodeView {
    /// Name.
    pub name: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Since when the Node is Ready (`None`: not Ready).
    pub ready_since: Option<Timestamp>,
}

/// Everything the planner looks at.
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// Every Node.
    pub nodes: Vec<NodeView>,
    /// Every NodeImage.
    pub node_images: Vec<NodeImage>,
    /// UIDs of the ImagePullJobs that exist.
    pub live_jobs: BTreeSet<String>,
    /// The clock.
    pub now: Timestamp,
    /// How long a Node must be Ready before it gets a NodeImage.
    pub creation_delay: Duration,
    /// How long the agent has to report on a new tag.
    pub response_timeout: Duration,
}

/// One change.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Create the NodeImage of a Ready Node with its labels.
    Create {
        /// Node name.
        name: String,
        /// Node labels.
        labels: BTreeMap<String, String>,
    },
    /// Delete a NodeImage whose Node is gone.
    Delete(String),
    /// Copy the Node's labels.
    SetLabels {
        /// NodeImage name.
        name: String,
        /// New labels.
        labels: BTreeMap<String, String>,
    },
    /// Remove garbage tags from the spec.
    RemoveTags {
        /// NodeImage name.
        name: String,
        /// (image, tag, why).
        tags: Vec<(String, String, String)>,
    },
    /// Mark tags failed in the status.
    MarkFailed {
        /// NodeImage name.
        name: String,
        /// (image, tag status) pairs to write.
        tags: Vec<(String, ImageTagStatus)>,
    },
}

fn secs(d: Duration) -> SignedDuration {
    SignedDuration::from_secs(i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn tag_status<'a>(
    ni: &'a NodeImage,
    image: &str,
    tag: &ImageTagSpec,
) -> Option<&'a ImageTagStatus> {
    ni.status
        .as_ref()?
        .image_statuses
        .as_ref()?
        .get(image)?
        .tags
        .iter()
        .find(|t| t.tag == tag.tag && t.version.unwrap_or(0) == tag.version.unwrap_or(0))
}

/// Why a tag should go, if it should.
fn gc_reason(ni: &NodeImage, image: &str, tag: &ImageTagSpec, s: &Snapshot) -> Option<String> {
    let owners: Vec<_> = tag.owner_references.iter().flatten().collect();
    if !owners.is_empty()
        && owners
            .iter()
            .all(|o| o.uid.as_ref().is_none_or(|u| !s.live_jobs.contains(u)))
    {
        return Some("its ImagePullJobs are gone".to_string());
    }
    let ttl = tag.pull_policy.as_ref()?.ttl_seconds_after_finished?;
    let st = tag_status(ni, image, tag)?;
    let done = st.completion_time.as_ref()?;
    if matches!(st.phase, ImagePullPhase::Succeeded | ImagePullPhase::Failed)
        && done.0 + SignedDuration::from_secs(i64::from(ttl)) <= s.now
    {
        return Some("ttlSecondsAfterFinished passed".to_string());
    }
    None
}

/// Plans one pass of the manager.
pub fn plan(s: &Snapshot) -> Vec<Action> {
    let mut actions = Vec::new();
    let existing: BTreeMap<String, &NodeImage> =
        s.node_images.iter().map(|n| (n.name_any(), n)).collect();
    let nodes: BTreeMap<&str, &NodeView> = s.nodes.iter().map(|n| (n.name.as_str(), n)).collect();

    for node in &s.nodes {
        if existing.contains_key(&node.name) {
            continue;
        }
        if node
            .ready_since
            .is_some_and(|since| since + secs(s.creation_delay) <= s.now)
        {
            actions.push(Action::Create {
                name: node.name.clone(),
                labels: node.labels.clone(),
            });
        }
    }

    for (name, ni) in &existing {
        let fake = ni.labels().get(FAKE_NODEIMAGE).is_some_and(|v| v == "true");
        let Some(node) = nodes.get(name.as_str()) else {
            if !fake {
                actions.push(Action::Delete(name.clone()));
            }
            continue;
        };
        let mut labels = node.labels.clone();
        if fake {
            labels.insert(FAKE_NODEIMAGE.to_string(), "true".to_string());
        }
        if ni.labels() != &labels {
            actions.push(Action::SetLabels {
                name: name.clone(),
                labels,
            });
        }

        // Garbage-collect tags.
        let mut removed = Vec::new();
        for (image, image_spec) in ni.spec.images.iter().flatten() {
            for t in &image_spec.tags {
                if let Some(why) = gc_reason(ni, image, t, s) {
                    removed.push((image.clone(), t.tag.clone(), why));
                }
            }
        }
        if !removed.is_empty() {
            actions.push(Action::RemoveTags {
                name: name.clone(),
                tags: removed,
            });
        }

        // Tags the agent never answered, or still pulling long past their deadline.
        let mut failed = Vec::new();
        for (image, image_spec) in ni.spec.images.iter().flatten() {
            for t in &image_spec.tags {
                let Some(created) = t.created_at.as_ref().map(|c| c.0) else {
                    continue;
                };
                let st = tag_status(ni, image, t);
                let message = match st.map(|x| x.phase) {
                    None if created + secs(s.response_timeout) <= s.now => NOT_RESPONDED,
                    Some(ImagePullPhase::Pulling | ImagePullPhase::Waiting) => {
                        match t
                            .pull_policy
                            .as_ref()
                            .and_then(|p| p.active_deadline_seconds)
                        {
                            Some(d)
                                if created
                                    + SignedDuration::from_secs(d)
                                    + secs(DEADLINE_GRACE)
                                    <= s.now =>
                            {
                                DEADLINE_EXCEEDED
                            }
                            _ => continue,
                        }
                    }
                    _ => continue,
                };
                failed.push((
                    image.clone(),
                    ImageTagStatus {
                        tag: t.tag.clone(),
                        phase: ImagePullPhase::Failed,
                        version: Some(t.version.unwrap_or(0)),
                        start_time: st.and_then(|x| x.start_time.clone()),
                        completion_time: Some(
                            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(s.now),
                        ),
                        message: Some(message.to_string()),
                        ..Default::default()
                    },
                ));
            }
        }
        if !failed.is_empty() {
            actions.push(Action::MarkFailed {
                name: name.clone(),
                tags: failed,
            });
        }
    }
    actions
}

#[cfg(test)]
mod tests;
