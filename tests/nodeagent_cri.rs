//! The node agent's CRI client against the local cluster's real containerd.
#![cfg(feature = "cluster-tests")]

mod support;

use std::time::Duration;

use graft_nodeagent::cri::{CriClient, Timeouts, image_matches};

fn cri_socket() -> String {
    std::env::var("GRAFT_CRI_SOCKET").unwrap_or_else(|_| {
        panic!("GRAFT_CRI_SOCKET is not set: run `eval \"$(deploy/local/cluster env)\"` first")
    })
}

#[tokio::test]
async fn the_client_talks_to_the_real_containerd() {
    let cri = CriClient::connect(&cri_socket(), Timeouts::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let version = cri.version().await.unwrap();
    assert_eq!(version.runtime_name, "containerd", "{version:?}");
    assert_eq!(version.runtime_api_version, "v1", "{version:?}");

    // The sandbox image the kubelet uses is always there.
    let images = cri.list_images().await.unwrap();
    let pause = format!("{}/pause:3.10", support::registry());
    assert!(
        images.iter().any(|i| image_matches(i, &pause)),
        "{pause} not among {:?}",
        images.iter().map(|i| &i.repo_tags).collect::<Vec<_>>()
    );

    let app = support::image("app:v1");
    let image_ref = cri
        .pull_image(&app, None, None, Duration::from_secs(120))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(image_ref.starts_with("sha256:"), "{image_ref}");
    let status = cri
        .image_status(&app)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{app} not present after PullImage"));
    assert_eq!(status.id, image_ref);
    let images = cri.list_images().await.unwrap();
    assert!(
        images
            .iter()
            .any(|i| image_matches(i, &app) && i.id == image_ref)
    );
}

#[tokio::test]
async fn the_runtime_error_of_a_failed_pull_is_reported() {
    let cri = CriClient::connect(&cri_socket(), Timeouts::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let missing = support::image("does-not-exist:v0");
    let err = cri
        .pull_image(&missing, None, None, Duration::from_secs(60))
        .await
        .expect_err("pulling an image the registry does not have");
    let message = err.runtime_message();
    assert!(message.contains("not found"), "{message}");
    assert!(err.to_string().contains(&missing), "{err}");
}

#[tokio::test]
async fn probing_finds_the_local_runtime() {
    // GRAFT_CRI_SOCKET is the first candidate; the probe must pick it and get a Version.
    let cri = CriClient::detect(None, Timeouts::default())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        cri.endpoint().ends_with(&cri_socket()),
        "{}",
        cri.endpoint()
    );
}
