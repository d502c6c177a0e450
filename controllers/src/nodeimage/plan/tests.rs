//! Table tests for the NodeImage manager, one rule of kruise-api.md §6.2 each.

use super::*;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use pretty_assertions::assert_eq;
use serde_json::json;

const NOW: i64 = 1_800_000_000;

fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(secs).unwrap()
}

fn node(name: &str, ready_for: Option<i64>) -> NodeView {
    NodeView {
        name: name.into(),
        labels: [("zone".to_string(), "a".to_string())].into(),
        ready_since: ready_for.map(|s| at(NOW - s)),
    }
}

fn ni(v: serde_json::Value) -> NodeImage {
    serde_json::from_value(v).unwrap()
}

fn snapshot(nodes: Vec<NodeView>, node_images: Vec<NodeImage>) -> Snapshot {
    Snapshot {
        nodes,
        node_images,
        live_jobs: ["job-live".to_string()].into(),
        now: at(NOW),
        creation_delay: Duration::from_secs(30),
        response_timeout: Duration::from_secs(600),
    }
}

fn ts(secs_ago: i64) -> String {
    at(NOW - secs_ago).to_string()
}

fn ni_with_tag(tag: serde_json::Value, status: Option<serde_json::Value>) -> NodeImage {
    let mut v = json!({
        "apiVersion": "apps.kruise.io/v1alpha1", "kind": "NodeImage",
        "metadata": {"name": "n1", "labels": {"zone": "a"}},
        "spec": {"images": {"reg/app": {"tags": [tag]}}}
    });
    if let Some(s) = status {
        v["status"] = json!({"imageStatuses": {"reg/app": {"tags": [s]}}});
    }
    ni(v)
}

#[test]
fn ready_nodes_get_a_node_image_after_the_delay() {
    let p = plan(&snapshot(
        vec![
            node("ready", Some(60)),
            node("young", Some(10)),
            node("notready", None),
        ],
        vec![],
    ));
    assert_eq!(
        p,
        vec![Action::Create {
            name: "ready".into(),
            labels: [("zone".to_string(), "a".to_string())].into()
        }]
    );
}

#[test]
fn node_images_follow_their_nodes_labels_and_lives() {
    let gone = ni(json!({"metadata": {"name": "gone"}, "spec": {}}));
    let fake =
        ni(json!({"metadata": {"name": "fake", "labels": {FAKE_NODEIMAGE: "true"}}, "spec": {}}));
    let stale = ni(json!({"metadata": {"name": "n1", "labels": {"zone": "b"}}, "spec": {}}));
    let p = plan(&snapshot(
        vec![node("n1", Some(600))],
        vec![gone, fake, stale],
    ));
    assert_eq!(
        p,
        vec![
            Action::Delete("gone".into()),
            Action::SetLabels {
                name: "n1".into(),
                labels: [("zone".to_string(), "a".to_string())].into()
            },
        ]
    );
}

#[test]
fn tags_are_collected_when_their_jobs_are_gone_or_their_ttl_passed() {
    let cases = [
        (
            "owner gone",
            json!({"tag": "v1", "ownerReferences": [{"uid": "job-dead"}]}),
            None,
            true,
        ),
        (
            "owner alive",
            json!({"tag": "v1", "ownerReferences": [{"uid": "job-live"}, {"uid": "job-dead"}]}),
            None,
            false,
        ),
        (
            "ttl passed",
            json!({"tag": "v1", "version": 1, "pullPolicy": {"ttlSecondsAfterFinished": 60}}),
            Some(
                json!({"tag": "v1", "version": 1, "phase": "Succeeded", "completionTime": ts(61)}),
            ),
            true,
        ),
        (
            "ttl not yet",
            json!({"tag": "v1", "version": 1, "pullPolicy": {"ttlSecondsAfterFinished": 60}}),
            Some(json!({"tag": "v1", "version": 1, "phase": "Failed", "completionTime": ts(30)})),
            false,
        ),
        (
            "ttl of an older round does not count",
            json!({"tag": "v1", "version": 2, "pullPolicy": {"ttlSecondsAfterFinished": 60}}),
            Some(
                json!({"tag": "v1", "version": 1, "phase": "Succeeded", "completionTime": ts(600)}),
            ),
            false,
        ),
    ];
    for (name, tag, status, collected) in cases {
        let p = plan(&snapshot(
            vec![node("n1", Some(600))],
            vec![ni_with_tag(tag, status)],
        ));
        let removed = p.iter().find_map(|a| match a {
            Action::RemoveTags { tags, .. } => Some(tags.clone()),
            _ => None,
        });
        assert_eq!(removed.is_some(), collected, "{name}: {p:?}");
        if let Some(tags) = removed {
            assert_eq!(
                (tags[0].0.as_str(), tags[0].1.as_str()),
                ("reg/app", "v1"),
                "{name}"
            );
        }
    }
}

#[test]
fn unanswered_tags_are_marked_failed() {
    let cases = [
        (
            "no answer for 11 min",
            json!({"tag": "v1", "createdAt": ts(660)}),
            None,
            Some(NOT_RESPONDED),
        ),
        (
            "no answer for 5 min",
            json!({"tag": "v1", "createdAt": ts(300)}),
            None,
            None,
        ),
        (
            "answered",
            json!({"tag": "v1", "createdAt": ts(660)}),
            Some(json!({"tag": "v1", "phase": "Pulling"})),
            None,
        ),
        (
            "pulling past the deadline",
            json!({"tag": "v1", "createdAt": ts(1000), "pullPolicy": {"activeDeadlineSeconds": 900}}),
            Some(json!({"tag": "v1", "phase": "Pulling"})),
            Some(DEADLINE_EXCEEDED),
        ),
        (
            "only an older round answered",
            json!({"tag": "v1", "version": 3, "createdAt": ts(700)}),
            Some(json!({"tag": "v1", "version": 2, "phase": "Succeeded"})),
            Some(NOT_RESPONDED),
        ),
    ];
    for (name, tag, status, want) in cases {
        let p = plan(&snapshot(
            vec![node("n1", Some(600))],
            vec![ni_with_tag(tag, status)],
        ));
        let got = p.iter().find_map(|a| match a {
            Action::MarkFailed { tags, .. } => tags[0].1.message.clone(),
            _ => None,
        });
        assert_eq!(got.as_deref(), want, "{name}");
    }
    let _ = Time(at(0));
}
