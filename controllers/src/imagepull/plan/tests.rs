//! Table tests for the ImagePullJob planner, one rule of kruise-api.md §6.1 each.

use super::*;
use pretty_assertions::assert_eq;
use serde_json::json;

const NOW: i64 = 1_800_000_000;

fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(secs).unwrap()
}

fn job(spec: serde_json::Value) -> Job {
    let spec: ImagePullJobSpec = serde_json::from_value(spec).unwrap();
    Job {
        namespace: "ns".into(),
        name: "job".into(),
        uid: "uid-1".into(),
        spec: spec.defaulted(),
        status: ImagePullJobStatus::default(),
    }
}

fn node(name: &str) -> NodeTag {
    NodeTag {
        node: name.into(),
        labels: [("pool".to_string(), "a".to_string())].into(),
        ..Default::default()
    }
}

fn ours(mut n: NodeTag, version: i64, phase: Option<ImagePullPhase>) -> NodeTag {
    n.spec = Some((version, true));
    n.status = phase.map(|p| (p, version, Some("msg".into())));
    n
}

fn snapshot(job: Job, nodes: Vec<NodeTag>) -> Snapshot {
    Snapshot {
        job,
        nodes,
        pod_nodes: None,
        synced_secrets: vec![],
        now: at(NOW),
    }
}

fn written(p: &Plan) -> Vec<&str> {
    p.writes.iter().map(|w| w.node.as_str()).collect()
}

#[test]
fn images_split_into_name_and_tag() {
    let cases = [
        ("reg:5000/app:v1", ("reg:5000/app", "v1")),
        ("reg:5000/app", ("reg:5000/app", "latest")),
        ("nginx", ("nginx", "latest")),
        ("a/b@sha256:00", ("a/b", "sha256:00")),
        ("docker.io/library/nginx:1.27", ("nginx", "1.27")),
        (
            "reg/app:v1@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            (
                "reg/app",
                "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            ),
        ),
    ];
    for (image, (n, t)) in cases {
        assert_eq!(
            split_image(image),
            (n.to_string(), t.to_string()),
            "{image}"
        );
    }
}

#[test]
fn parallelism_limits_how_many_nodes_pull_at_once() {
    use ImagePullPhase::*;
    let cases: Vec<(&str, i32, Vec<NodeTag>, Vec<&str>)> = vec![
        (
            "parallelism 1 starts one",
            1,
            vec![node("a"), node("b"), node("c")],
            vec!["a"],
        ),
        (
            "parallelism 2 starts two",
            2,
            vec![node("a"), node("b"), node("c")],
            vec!["a", "b"],
        ),
        (
            "an active node uses a slot",
            2,
            vec![ours(node("a"), 0, Some(Pulling)), node("b"), node("c")],
            vec!["b"],
        ),
        (
            "finished nodes free their slot",
            1,
            vec![ours(node("a"), 0, Some(Succeeded)), node("b")],
            vec!["b"],
        ),
        (
            "failed nodes free their slot",
            1,
            vec![ours(node("a"), 0, Some(Failed)), node("b")],
            vec!["b"],
        ),
        (
            "a status of an older version is still active",
            1,
            vec![
                {
                    let mut n = ours(node("a"), 1, None);
                    n.status = Some((Succeeded, 0, None));
                    n
                },
                node("b"),
            ],
            vec![],
        ),
        ("parallelism 0 pauses", 0, vec![node("a")], vec![]),
    ];
    for (name, parallelism, nodes, want) in cases {
        let p = plan(&snapshot(
            job(json!({"image": "reg/app:v1", "parallelism": parallelism})),
            nodes,
        ));
        assert_eq!(written(&p), want, "{name}");
    }
}

#[test]
fn a_string_parallelism_holding_an_integer_counts_as_that_integer() {
    let p = plan(&snapshot(
        job(json!({"image": "reg/app:v1", "parallelism": "2"})),
        vec![node("a"), node("b"), node("c")],
    ));
    assert_eq!(written(&p).len(), 2, "{:?}", written(&p));
}

#[test]
fn selectors_choose_the_target_nodes() {
    let mut other = node("c");
    other.labels = [("pool".to_string(), "b".to_string())].into();
    let nodes = vec![node("a"), node("b"), other];
    let cases = [
        (json!({}), 3),
        (json!({"selector": {"names": ["a", "c"]}}), 2),
        (json!({"selector": {"matchLabels": {"pool": "b"}}}), 1),
        (
            json!({"selector": {"matchExpressions": [{"key": "pool", "operator": "In", "values": ["a"]}]}}),
            2,
        ),
        (
            json!({"selector": {"matchExpressions": [{"key": "pool", "operator": "DoesNotExist"}]}}),
            0,
        ),
    ];
    for (extra, desired) in cases {
        let mut spec = json!({"image": "reg/app:v1", "parallelism": 10});
        spec.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let p = plan(&snapshot(job(spec.clone()), nodes.clone()));
        assert_eq!(p.status.desired, desired, "{spec}");
        assert_eq!(p.writes.len(), desired as usize, "{spec}");
    }
    let mut s = snapshot(
        job(
            json!({"image": "reg/app:v1", "parallelism": 10, "podSelector": {"matchLabels": {"app": "x"}}}),
        ),
        nodes,
    );
    s.pod_nodes = Some(["b".to_string()].into());
    let p = plan(&s);
    assert_eq!((p.status.desired, written(&p)), (1, vec!["b"]));
}

#[test]
fn selectors_the_api_server_would_refuse_are_invalid_input() {
    let spec = |extra: serde_json::Value| -> ImagePullJobSpec {
        let mut spec = json!({"image": "reg/app:v1"});
        spec.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        serde_json::from_value(spec).unwrap()
    };
    let cases = [
        (json!({}), vec![]),
        (
            json!({"selector": {"matchExpressions": [{"key": "pool", "operator": "In", "values": ["a"]}]}}),
            vec![],
        ),
        (
            json!({"selector": {"matchExpressions": [{"key": "pool", "operator": "Near"}]}}),
            vec!["spec.selector.matchExpressions"],
        ),
        (
            json!({"podSelector": {"matchExpressions": [{"key": "app", "operator": "Like", "values": ["x"]}]}}),
            vec!["spec.podSelector.matchExpressions"],
        ),
        (
            json!({"podSelector": {"matchExpressions": [{"key": "app", "operator": "In"}]}}),
            vec!["spec.podSelector.matchExpressions"],
        ),
    ];
    for (extra, want) in cases {
        let errs = selector_errors(&spec(extra.clone()));
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, want, "{extra}");
    }
    let errs = selector_errors(&spec(
        json!({"selector": {"matchExpressions": [{"key": "pool", "operator": "Near"}]}}),
    ));
    let message = errs
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    assert!(
        message.contains("\"pool\"") && message.contains("Near"),
        "{message}"
    );
}

#[test]
fn counters_and_message_match_kruise() {
    use ImagePullPhase::*;
    let nodes = vec![
        ours(node("a"), 0, Some(Succeeded)),
        ours(node("b"), 0, Some(Pulling)),
        ours(node("c"), 0, Some(Failed)),
    ];
    let p = plan(&snapshot(job(json!({"image": "reg/app:v1"})), nodes));
    let s = &p.status;
    assert_eq!((s.desired, s.active, s.succeeded, s.failed), (3, 1, 1, 1));
    assert_eq!(s.failed_nodes, Some(vec!["c".to_string()]));
    assert_eq!(s.message.as_deref(), Some("job is running, progress 66.7%"));
    assert!(s.completion_time.is_none());
    assert_eq!(p.events[0].reason, "PullImageFailed");
    assert!(
        p.events[0].note.contains("on node c: msg"),
        "{}",
        p.events[0].note
    );

    // kruise: only a Never job runs with no node; an Always job with none completes at once.
    let p = plan(&snapshot(
        job(json!({"image": "reg/app:v1", "completionPolicy": {"type": "Never"}})),
        vec![],
    ));
    assert_eq!(
        p.status.message.as_deref(),
        Some("job is running, no progress")
    );
    let p = plan(&snapshot(job(json!({"image": "reg/app:v1"})), vec![]));
    assert_eq!(p.status.message.as_deref(), Some("job has completed"));
    assert!(p.status.completion_time.is_some());
}

#[test]
fn empty_names_target_no_node() {
    let p = plan(&snapshot(
        job(json!({"image": "reg/app:v1", "selector": {"names": []}})),
        vec![node("a")],
    ));
    assert_eq!(p.status.desired, 0);
    assert!(written(&p).is_empty());
}

#[test]
fn an_always_job_completes_when_every_node_is_done() {
    use ImagePullPhase::*;
    let nodes = vec![
        ours(node("a"), 0, Some(Succeeded)),
        ours(node("b"), 0, Some(Failed)),
    ];
    let p = plan(&snapshot(
        job(json!({"image": "reg/app:v1"})),
        nodes.clone(),
    ));
    assert_eq!(p.status.completion_time, Some(Time(at(NOW))));
    assert_eq!(p.status.message.as_deref(), Some("job has completed"));
    assert_eq!(p.events.last().unwrap().reason, "Completed");

    // A Never job does not complete.
    let p = plan(&snapshot(
        job(json!({"image": "reg/app:v1", "completionPolicy": {"type": "Never"}})),
        nodes,
    ));
    assert!(p.status.completion_time.is_none());
    assert_eq!(
        p.status.message.as_deref(),
        Some("job is running, progress 100.0%")
    );
}

#[test]
fn the_active_deadline_completes_the_job_and_fails_pending_nodes() {
    use ImagePullPhase::*;
    let mut j = job(
        json!({"image": "reg/app:v1", "parallelism": 5, "completionPolicy": {"activeDeadlineSeconds": 900}}),
    );
    j.status.start_time = Some(Time(at(NOW - 901)));
    let nodes = vec![
        ours(node("a"), 0, Some(Succeeded)),
        ours(node("b"), 0, Some(Pulling)),
        node("c"),
    ];
    let p = plan(&snapshot(j, nodes));
    assert_eq!(
        p.status.message.as_deref(),
        Some("job exceeds activeDeadlineSeconds")
    );
    assert_eq!(
        (p.status.succeeded, p.status.failed, p.status.active),
        (1, 2, 0)
    );
    assert!(p.writes.is_empty());
    assert_eq!(p.events.last().unwrap().reason, "DeadlineExceeded");
    // kruise lists the failed, then the pulling, then the not started nodes.
    assert_eq!(
        p.status.failed_nodes,
        Some(vec!["b".to_string(), "c".to_string()])
    );
}

#[test]
fn a_job_done_when_its_deadline_passes_completes_normally() {
    use ImagePullPhase::*;
    let mut j =
        job(json!({"image": "reg/app:v1", "completionPolicy": {"activeDeadlineSeconds": 900}}));
    j.status.start_time = Some(Time(at(NOW - 901)));
    let p = plan(&snapshot(j, vec![ours(node("a"), 0, Some(Succeeded))]));
    assert_eq!(p.status.message.as_deref(), Some("job has completed"));
    assert_eq!((p.status.succeeded, p.status.failed), (1, 0));
}

#[test]
fn ttl_deletes_a_finished_job() {
    let mut j =
        job(json!({"image": "reg/app:v1", "completionPolicy": {"ttlSecondsAfterFinished": 60}}));
    j.status.completion_time = Some(Time(at(NOW - 30)));
    j.status.message = Some("job has completed".into());
    let p = plan(&snapshot(j.clone(), vec![node("a")]));
    assert!(!p.delete_job);
    assert_eq!(p.requeue_after, Some(Duration::from_secs(30)));
    assert!(p.writes.is_empty(), "a finished job writes nothing");
    assert_eq!(p.status.message.as_deref(), Some("job has completed"));
    j.status.completion_time = Some(Time(at(NOW - 60)));
    assert!(plan(&snapshot(j, vec![])).delete_job);
}

#[test]
fn versions_start_new_rounds_and_join_other_jobs_tags() {
    use ImagePullPhase::*;
    let mut old_status = node("a");
    old_status.status = Some((Succeeded, 4, None));
    let mut other_running = node("b");
    other_running.spec = Some((2, false));
    other_running.status = Some((Pulling, 2, None));
    let mut other_done = node("c");
    other_done.spec = Some((1, false));
    other_done.status = Some((Succeeded, 1, None));
    let nodes = vec![node("z"), old_status, other_running, other_done];
    let p = plan(&snapshot(
        job(json!({"image": "reg/app:v1", "parallelism": 10})),
        nodes.clone(),
    ));
    let versions: Vec<(&str, Option<i64>)> = p
        .writes
        .iter()
        .map(|w| (w.node.as_str(), w.version))
        .collect();
    assert_eq!(
        versions,
        vec![("z", Some(0)), ("a", Some(5)), ("b", None), ("c", None)]
    );
    let p = plan(&snapshot(
        job(json!({"image": "reg/app:v1", "parallelism": 10, "imagePullPolicy": "Always"})),
        nodes,
    ));
    assert_eq!(
        p.writes[3].version,
        Some(2),
        "Always re-pulls a finished tag of another job"
    );
}

#[test]
fn node_ttls_follow_the_completion_policy() {
    let spec = |v| job(v).spec;
    let always = node_pull_policy(&spec(
        json!({"image": "a", "completionPolicy": {"ttlSecondsAfterFinished": 60}}),
    ));
    assert_eq!(always.ttl_seconds_after_finished, Some(360));
    let deadline = node_pull_policy(&spec(
        json!({"image": "a", "completionPolicy": {"activeDeadlineSeconds": 1200}}),
    ));
    assert_eq!(
        (
            deadline.ttl_seconds_after_finished,
            deadline.active_deadline_seconds
        ),
        (Some(1500), Some(1200))
    );
    let plain = node_pull_policy(&spec(
        json!({"image": "a", "pullPolicy": {"timeoutSeconds": 10, "backoffLimit": 2}}),
    ));
    assert_eq!(plain.ttl_seconds_after_finished, Some(330));
    let never = node_pull_policy(&spec(
        json!({"image": "a", "completionPolicy": {"type": "Never"}}),
    ));
    assert_eq!(
        (
            never.ttl_seconds_after_finished,
            never.active_deadline_seconds
        ),
        (Some(86400), Some(1800))
    );
}
