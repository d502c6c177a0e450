//! The CRI client against the in-process fake runtime: every call, its errors and its bounds.

use std::time::Duration;

use super::fake::{FakeCri, PullOutcome};
use super::{CriClient, CriError, Timeouts, proto};

async fn connect(fake: &FakeCri) -> CriClient {
    CriClient::connect(fake.socket().to_str().unwrap(), Timeouts::default())
        .await
        .expect("connect to the fake runtime")
}

#[tokio::test]
async fn connect_checks_the_runtime_version() {
    let fake = FakeCri::start().await.unwrap();
    let cri = connect(&fake).await;
    let v = cri.version().await.unwrap();
    assert_eq!(v.runtime_name, "fake-cri");
    assert_eq!(v.runtime_api_version, "v1");
    // connect() itself called Version once before we did.
    assert_eq!(fake.calls("Version").len(), 2);
}

#[tokio::test]
async fn a_missing_socket_is_a_clear_connect_error() {
    let err = CriClient::connect("/nonexistent/graft-cri.sock", Timeouts::default())
        .await
        .unwrap_err();
    assert!(matches!(err, CriError::Connect { .. }), "{err:?}");
    assert!(
        err.to_string().contains("/nonexistent/graft-cri.sock"),
        "{err}"
    );
}

#[tokio::test]
async fn detect_uses_the_explicit_socket() {
    let fake = FakeCri::start().await.unwrap();
    let cri = CriClient::detect(Some(fake.socket().to_str().unwrap()), Timeouts::default())
        .await
        .unwrap();
    assert!(cri.endpoint().ends_with(".sock"));
}

#[tokio::test]
async fn pull_then_list_status_and_remove() {
    let fake = FakeCri::start().await.unwrap();
    let cri = connect(&fake).await;
    let image = "127.0.0.1:5100/graft-test/app:v1";
    assert!(cri.image_status(image).await.unwrap().is_none());
    let auth = proto::AuthConfig {
        username: "u".into(),
        password: "p".into(),
        ..Default::default()
    };
    let id = cri
        .pull_image(image, Some(auth), None, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(id.starts_with("sha256:"), "{id}");
    assert_eq!(fake.calls("PullImage")[0].detail, "u");
    let images = cri.list_images().await.unwrap();
    assert!(images.iter().any(|i| super::image_matches(i, image)));
    assert_eq!(cri.image_status(image).await.unwrap().unwrap().id, id);
    cri.remove_image(image).await.unwrap();
    assert!(cri.image_status(image).await.unwrap().is_none());
    // Removing an absent image is not an error.
    cri.remove_image(image).await.unwrap();
}

#[tokio::test]
async fn a_failed_pull_carries_the_runtime_message() {
    let fake = FakeCri::start().await.unwrap();
    let cri = connect(&fake).await;
    fake.script_pulls(
        "reg.example/nope:v1",
        [PullOutcome::Fail(
            tonic::Code::NotFound,
            "reg.example/nope:v1: not found".into(),
        )],
    );
    let err = cri
        .pull_image("reg.example/nope:v1", None, None, Duration::from_secs(5))
        .await
        .unwrap_err();
    assert_eq!(err.runtime_message(), "reg.example/nope:v1: not found");
    assert!(
        err.to_string().contains("PullImage(reg.example/nope:v1)"),
        "{err}"
    );
}

#[tokio::test]
async fn a_slow_pull_times_out() {
    let fake = FakeCri::start().await.unwrap();
    let cri = connect(&fake).await;
    fake.state().pull_delay = Duration::from_secs(30);
    let err = cri
        .pull_image(
            "reg.example/slow:v1",
            None,
            None,
            Duration::from_millis(200),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            CriError::Timeout {
                method: "PullImage",
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn containers_status_exec_and_stop() {
    let fake = FakeCri::start().await.unwrap();
    let cri = connect(&fake).await;
    let container = proto::Container {
        id: "c1".into(),
        labels: [("io.kubernetes.pod.uid".to_string(), "uid-1".to_string())].into(),
        state: proto::ContainerState::ContainerRunning as i32,
        ..Default::default()
    };
    let status = proto::ContainerStatus {
        id: "c1".into(),
        state: proto::ContainerState::ContainerRunning as i32,
        ..Default::default()
    };
    fake.state().containers.push((container, status));
    fake.state().exec_results.insert(
        "c1".into(),
        proto::ExecSyncResponse {
            stdout: b"hi\n".to_vec(),
            exit_code: 0,
            ..Default::default()
        },
    );
    assert_eq!(cri.list_pod_containers("uid-1").await.unwrap().len(), 1);
    assert!(cri.list_pod_containers("uid-2").await.unwrap().is_empty());
    let out = cri
        .exec_sync(
            "c1",
            vec!["echo".into(), "hi".into()],
            Duration::from_secs(3),
        )
        .await
        .unwrap();
    assert_eq!(out.stdout, b"hi\n");
    assert_eq!(fake.calls("ExecSync")[0].detail, "echo hi");
    cri.stop_container("c1", Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(
        cri.container_status("c1").await.unwrap().state,
        proto::ContainerState::ContainerExited as i32
    );
    let err = cri.container_status("missing").await.unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
}
