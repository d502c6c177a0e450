//! Killing a container against the in-process fake CRI runtime: preStop first (exec, httpGet,
//! sleep), then StopContainer with the rest of the grace period; failures and their messages.

use std::collections::HashMap;
use std::time::Duration;

use pretty_assertions::assert_eq;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;
use crate::cri::Timeouts;
use crate::cri::fake::FakeCri;
use crate::events::PodRef;

async fn connect(fake: &FakeCri) -> CriClient {
    CriClient::connect(fake.socket().to_str().unwrap(), Timeouts::default())
        .await
        .expect("connect to the fake runtime")
}

fn add_container(fake: &FakeCri, pod_uid: &str, name: &str, id: &str, attempt: u32) {
    let labels = HashMap::from([("io.kubernetes.pod.uid".to_string(), pod_uid.to_string())]);
    let meta = proto::ContainerMetadata {
        name: name.to_string(),
        attempt,
    };
    fake.state().containers.push((
        proto::Container {
            id: id.to_string(),
            metadata: Some(meta.clone()),
            state: proto::ContainerState::ContainerRunning as i32,
            created_at: i64::from(attempt),
            labels: labels.clone(),
            ..Default::default()
        },
        proto::ContainerStatus {
            id: id.to_string(),
            metadata: Some(meta),
            state: proto::ContainerState::ContainerRunning as i32,
            labels,
            ..Default::default()
        },
    ));
}

fn kill_spec(id: &str, pre_stop: serde_json::Value, grace: u64) -> Kill {
    Kill {
        container: "app".into(),
        container_id: id.into(),
        pre_stop: serde_json::from_value(pre_stop).unwrap(),
        ports: serde_json::from_value(json!([{"name": "admin", "containerPort": 1}])).unwrap(),
        pod_ip: Some("127.0.0.1".into()),
        grace: Duration::from_secs(grace),
        states_after: vec![],
        pod: PodRef {
            namespace: "ns".into(),
            name: "p".into(),
            uid: "u1".into(),
        },
        message: "Stopping container app by ContainerRecreateRequest r".to_string(),
    }
}

fn methods(fake: &FakeCri) -> Vec<(&'static str, String, String)> {
    fake.state()
        .calls
        .iter()
        .filter(|c| c.method != "Version")
        .map(|c| (c.method, c.target.clone(), c.detail.clone()))
        .collect()
}

#[tokio::test]
async fn the_pods_containers_are_listed_by_pod_uid_with_name_attempt_and_state() {
    let fake = FakeCri::start().await.unwrap();
    add_container(&fake, "u1", "app", "c1", 0);
    add_container(&fake, "u1", "sidecar", "c2", 3);
    add_container(&fake, "u2", "app", "other", 0);
    fake.state().containers[0].0.state = proto::ContainerState::ContainerExited as i32;
    let cri = connect(&fake).await;
    let mut got = runtime_containers(&cri, "u1").await.unwrap();
    got.sort_by(|a, b| a.id.cmp(&b.id));
    assert_eq!(
        got,
        vec![
            RuntimeContainer {
                name: "app".into(),
                id: "c1".into(),
                attempt: 0,
                state: RuntimeState::Exited,
                created_at: 0
            },
            RuntimeContainer {
                name: "sidecar".into(),
                id: "c2".into(),
                attempt: 3,
                state: RuntimeState::Running,
                created_at: 3
            },
        ]
    );
}

#[tokio::test]
async fn an_exec_prestop_runs_in_the_container_before_it_is_stopped_with_the_grace_left() {
    let fake = FakeCri::start().await.unwrap();
    add_container(&fake, "u1", "app", "c1", 0);
    let cri = connect(&fake).await;
    let k = kill_spec(
        "c1",
        json!({"exec": {"command": ["sh", "-c", "echo bye"]}}),
        10,
    );
    let report = kill(&cri, &k, None).await.unwrap();
    assert_eq!(report.pre_stop_error, None);
    assert!(report.pre_stop_ran);
    let calls = methods(&fake);
    assert_eq!(
        calls[0],
        ("ExecSync", "c1".to_string(), "sh -c echo bye".to_string())
    );
    assert_eq!(calls[1].0, "StopContainer");
    assert_eq!(calls[1].1, "c1");
    // The fake answers at once: all of the grace (rounded down to seconds) is left.
    assert!(["9", "10"].contains(&calls[1].2.as_str()), "{calls:?}");
    assert_eq!(
        fake.state().containers[0].1.state,
        proto::ContainerState::ContainerExited as i32
    );
}

#[tokio::test]
async fn a_failing_prestop_is_reported_and_the_container_is_stopped_anyway() {
    let fake = FakeCri::start().await.unwrap();
    add_container(&fake, "u1", "app", "c1", 0);
    fake.state().exec_results.insert(
        "c1".into(),
        proto::ExecSyncResponse {
            exit_code: 3,
            stderr: b"no such file\n".to_vec(),
            ..Default::default()
        },
    );
    let cri = connect(&fake).await;
    let report = kill(
        &cri,
        &kill_spec("c1", json!({"exec": {"command": ["false"]}}), 5),
        None,
    )
    .await
    .unwrap();
    assert_eq!(
        report.pre_stop_error.as_deref(),
        Some("exec exited with code 3: no such file")
    );
    assert_eq!(fake.calls("StopContainer").len(), 1);
}

#[tokio::test]
async fn stopping_a_container_the_runtime_does_not_know_is_an_error_naming_it() {
    let fake = FakeCri::start().await.unwrap();
    let cri = connect(&fake).await;
    let err = kill(&cri, &kill_spec("gone", json!(null), 5), None)
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
    assert!(err.to_string().contains("gone"), "{err}");
    // No handler: nothing runs before the stop.
    assert!(fake.calls("ExecSync").is_empty());
}

/// A one-shot HTTP server answering `code`; returns its port and the request it got.
async fn http_server(code: u16) -> (u16, tokio::task::JoinHandle<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 2048];
        let n = s.read(&mut buf).await.unwrap();
        let answer = format!("HTTP/1.1 {code} X\r\nContent-Length: 0\r\n\r\n");
        s.write_all(answer.as_bytes()).await.unwrap();
        String::from_utf8_lossy(&buf[..n]).to_string()
    });
    (port, task)
}

#[tokio::test]
async fn an_http_prestop_gets_the_path_on_the_pod_ip_through_a_named_port() {
    let fake = FakeCri::start().await.unwrap();
    add_container(&fake, "u1", "app", "c1", 0);
    let cri = connect(&fake).await;
    let (port, server) = http_server(200).await;
    let mut k = kill_spec(
        "c1",
        json!({"httpGet": {"path": "/quit", "port": "admin", "httpHeaders": [{"name": "X-Why", "value": "crr"}]}}),
        5,
    );
    k.ports = serde_json::from_value(json!([{"name": "admin", "containerPort": port}])).unwrap();
    let report = kill(&cri, &k, None).await.unwrap();
    assert_eq!(report.pre_stop_error, None);
    let request = server.await.unwrap();
    assert!(request.starts_with("GET /quit HTTP/1.1\r\n"), "{request}");
    assert!(request.contains("X-Why: crr\r\n"), "{request}");
    assert_eq!(fake.calls("StopContainer").len(), 1);

    let (port, _server) = http_server(500).await;
    let k = kill_spec("c1", json!({"httpGet": {"path": "/quit", "port": port}}), 5);
    let report = kill(&cri, &k, None).await.unwrap();
    assert_eq!(
        report.pre_stop_error,
        Some(format!("httpGet 127.0.0.1:{port}/quit: HTTP 500"))
    );
    let k = kill_spec("c1", json!({"httpGet": {"port": "nope"}}), 5);
    let report = kill(&cri, &k, None).await.unwrap();
    assert_eq!(
        report.pre_stop_error.as_deref(),
        Some("httpGet: no container port named nope")
    );
}

#[tokio::test]
async fn the_stop_gets_what_the_prestop_left_of_the_grace_but_at_least_two_seconds() {
    let fake = FakeCri::start().await.unwrap();
    add_container(&fake, "u1", "app", "c1", 0);
    let cri = connect(&fake).await;
    let report = kill(
        &cri,
        &kill_spec("c1", json!({"sleep": {"seconds": 1}}), 2),
        None,
    )
    .await
    .unwrap();
    assert_eq!(report.stop_grace, MIN_STOP_GRACE);
    assert_eq!(fake.calls("StopContainer")[0].detail, "2");
    // A handler that outlives the grace period is cut off and reported.
    let report = kill(
        &cri,
        &kill_spec("c1", json!({"sleep": {"seconds": 30}}), 1),
        None,
    )
    .await
    .unwrap();
    assert_eq!(
        report.pre_stop_error.as_deref(),
        Some("did not finish within the grace period of 1s")
    );
}

#[tokio::test]
async fn a_zero_grace_skips_the_prestop_hook_as_the_kubelet_does() {
    let fake = FakeCri::start().await.unwrap();
    add_container(&fake, "u1", "app", "c1", 0);
    let cri = connect(&fake).await;
    let report = kill(
        &cri,
        &kill_spec("c1", json!({"exec": {"command": ["true"]}}), 0),
        None,
    )
    .await
    .unwrap();
    assert!(!report.pre_stop_ran);
    assert!(fake.calls("ExecSync").is_empty());
    assert_eq!(report.stop_grace, MIN_STOP_GRACE);
}

#[test]
fn a_failed_hook_is_reported_in_the_kubelets_words() {
    let k = kill_spec(
        "c1",
        json!({"exec": {"command": ["sh", "-c", "exit 3"]}}),
        5,
    );
    let handler = k.pre_stop.clone().unwrap();
    assert_eq!(
        hook_failure_message(&k, &handler, "exec exited with code 3: "),
        "Exec lifecycle hook ([sh -c exit 3]) for Container \"app\" in Pod \"p_ns(u1)\" failed - error: exec exited with code 3: "
    );
    let k = kill_spec("c1", json!({"httpGet": {"path": "/stop", "port": 80}}), 5);
    let handler = k.pre_stop.clone().unwrap();
    assert_eq!(
        hook_failure_message(&k, &handler, "refused"),
        "HTTP lifecycle hook (/stop) for Container \"app\" in Pod \"p_ns(u1)\" failed - error: refused"
    );
}
