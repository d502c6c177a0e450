//! A typed CRI client over a unix socket with a bound on every call.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

use super::CRI_API_VERSION;
use super::error::CriError;
use super::proto::{
    self, image_service_client::ImageServiceClient, runtime_service_client::RuntimeServiceClient,
};

/// Largest gRPC message accepted from the runtime (kruise-daemon uses the same 16 MiB).
const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// Bounds on CRI calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// Dialling the socket.
    pub connect: Duration,
    /// Any call that is not a pull or an exec (Version, ListImages, StopContainer adds its own
    /// grace period on top).
    pub call: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(5),
            call: Duration::from_secs(30),
        }
    }
}

/// The sockets probed when none is given, in order: the local cluster's (`$GRAFT_CRI_SOCKET`), then
/// containerd's and CRI-O's usual paths.
pub fn default_socket_candidates() -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(s) = std::env::var("GRAFT_CRI_SOCKET")
        && !s.is_empty()
    {
        out.push(s);
    }
    for s in [
        "/run/containerd/containerd.sock",
        "/run/crio/crio.sock",
        "/var/run/containerd/containerd.sock",
        "/var/run/crio/crio.sock",
    ] {
        if !out.iter().any(|o| o == s) {
            out.push(s.to_string());
        }
    }
    out
}

/// A connected CRI runtime (containerd, CRI-O): the runtime and image services on one channel.
#[derive(Clone, Debug)]
pub struct CriClient {
    endpoint: String,
    timeouts: Timeouts,
    runtime: RuntimeServiceClient<Channel>,
    images: ImageServiceClient<Channel>,
}

impl CriClient {
    /// Connects to `endpoint` (`unix:///path` or `/path`) and checks it answers `Version`.
    pub async fn connect(endpoint: &str, timeouts: Timeouts) -> Result<Self, CriError> {
        let path = socket_path(endpoint)?;
        let uri = format!("unix://{path}");
        let channel = Endpoint::from_shared(uri.clone())
            .map_err(|e| CriError::InvalidEndpoint {
                endpoint: endpoint.to_string(),
                reason: e.to_string(),
            })?
            .connect_timeout(timeouts.connect)
            .connect()
            .await
            .map_err(|source| CriError::Connect {
                endpoint: uri.clone(),
                source,
            })?;
        let client = CriClient {
            endpoint: uri,
            timeouts,
            runtime: RuntimeServiceClient::new(channel.clone())
                .max_decoding_message_size(MAX_MESSAGE_BYTES),
            images: ImageServiceClient::new(channel).max_decoding_message_size(MAX_MESSAGE_BYTES),
        };
        client.version().await?;
        Ok(client)
    }

    /// Connects to `explicit` if given, else to the first of [`default_socket_candidates`] that
    /// answers `Version`.
    pub async fn detect(explicit: Option<&str>, timeouts: Timeouts) -> Result<Self, CriError> {
        if let Some(endpoint) = explicit {
            return Self::connect(endpoint, timeouts).await;
        }
        let mut tried = Vec::new();
        for candidate in default_socket_candidates() {
            if !std::path::Path::new(&candidate).exists() {
                tried.push(format!("{candidate}: no such socket"));
                continue;
            }
            match Self::connect(&candidate, timeouts).await {
                Ok(client) => return Ok(client),
                Err(e) => tried.push(format!("{candidate}: {e}")),
            }
        }
        Err(CriError::NoRuntime { tried })
    }

    /// The socket this client talks to (`unix:///...`).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The runtime's name and versions.
    pub async fn version(&self) -> Result<proto::VersionResponse, CriError> {
        let mut c = self.runtime.clone();
        let req = proto::VersionRequest {
            version: CRI_API_VERSION.to_string(),
        };
        self.bounded("Version", "", self.timeouts.call, c.version(req))
            .await
    }

    /// Pulls `image` (`name:tag` or `name@digest`) with optional registry credentials and pull
    /// sandbox config, waiting at most `timeout`; returns the image reference (ID) the runtime gives.
    pub async fn pull_image(
        &self,
        image: &str,
        auth: Option<proto::AuthConfig>,
        sandbox_config: Option<proto::PodSandboxConfig>,
        timeout: Duration,
    ) -> Result<String, CriError> {
        let mut c = self.images.clone();
        let req = proto::PullImageRequest {
            image: Some(image_spec(image)),
            auth,
            sandbox_config,
        };
        let resp = self
            .bounded("PullImage", image, timeout, c.pull_image(req))
            .await?;
        Ok(resp.image_ref)
    }

    /// Every image the runtime has.
    pub async fn list_images(&self) -> Result<Vec<proto::Image>, CriError> {
        let mut c = self.images.clone();
        let req = proto::ListImagesRequest { filter: None };
        let resp = self
            .bounded("ListImages", "", self.timeouts.call, c.list_images(req))
            .await?;
        Ok(resp.images)
    }

    /// The image `image` names, or `None` when the runtime does not have it.
    pub async fn image_status(&self, image: &str) -> Result<Option<proto::Image>, CriError> {
        let mut c = self.images.clone();
        let req = proto::ImageStatusRequest {
            image: Some(image_spec(image)),
            verbose: false,
        };
        let resp = self
            .bounded(
                "ImageStatus",
                image,
                self.timeouts.call,
                c.image_status(req),
            )
            .await?;
        Ok(resp.image)
    }

    /// Removes `image` from the runtime (a no-op when it is absent).
    pub async fn remove_image(&self, image: &str) -> Result<(), CriError> {
        let mut c = self.images.clone();
        let req = proto::RemoveImageRequest {
            image: Some(image_spec(image)),
        };
        match self
            .bounded(
                "RemoveImage",
                image,
                self.timeouts.call,
                c.remove_image(req),
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Containers matching `filter` (e.g. label `io.kubernetes.pod.uid`).
    pub async fn list_containers(
        &self,
        filter: Option<proto::ContainerFilter>,
    ) -> Result<Vec<proto::Container>, CriError> {
        let mut c = self.runtime.clone();
        let req = proto::ListContainersRequest { filter };
        let resp = self
            .bounded(
                "ListContainers",
                "",
                self.timeouts.call,
                c.list_containers(req),
            )
            .await?;
        Ok(resp.containers)
    }

    /// Containers of the pod with UID `pod_uid`.
    pub async fn list_pod_containers(
        &self,
        pod_uid: &str,
    ) -> Result<Vec<proto::Container>, CriError> {
        let filter = proto::ContainerFilter {
            label_selector: HashMap::from([(
                "io.kubernetes.pod.uid".to_string(),
                pod_uid.to_string(),
            )]),
            ..Default::default()
        };
        self.list_containers(Some(filter)).await
    }

    /// Status of container `id` (bare ID, without the `containerd://` prefix).
    pub async fn container_status(&self, id: &str) -> Result<proto::ContainerStatus, CriError> {
        let mut c = self.runtime.clone();
        let req = proto::ContainerStatusRequest {
            container_id: id.to_string(),
            verbose: false,
        };
        let resp = self
            .bounded(
                "ContainerStatus",
                id,
                self.timeouts.call,
                c.container_status(req),
            )
            .await?;
        resp.status.ok_or_else(|| CriError::Call {
            method: "ContainerStatus",
            target: id.to_string(),
            endpoint: self.endpoint.clone(),
            code: tonic::Code::NotFound,
            message: "the runtime returned no status".to_string(),
        })
    }

    /// Runs `cmd` in container `id` and waits at most `timeout` (the runtime is told the same).
    pub async fn exec_sync(
        &self,
        id: &str,
        cmd: Vec<String>,
        timeout: Duration,
    ) -> Result<proto::ExecSyncResponse, CriError> {
        let mut c = self.runtime.clone();
        let req = proto::ExecSyncRequest {
            container_id: id.to_string(),
            cmd,
            timeout: i64::try_from(timeout.as_secs()).unwrap_or(i64::MAX).max(1),
        };
        // The runtime enforces `timeout`; allow a little more for the round trip.
        self.bounded(
            "ExecSync",
            id,
            timeout + self.timeouts.call,
            c.exec_sync(req),
        )
        .await
    }

    /// Stops container `id`, giving it `grace` before SIGKILL; the kubelet then restarts it.
    pub async fn stop_container(&self, id: &str, grace: Duration) -> Result<(), CriError> {
        let mut c = self.runtime.clone();
        let req = proto::StopContainerRequest {
            container_id: id.to_string(),
            timeout: i64::try_from(grace.as_secs()).unwrap_or(i64::MAX),
        };
        self.bounded(
            "StopContainer",
            id,
            grace + self.timeouts.call,
            c.stop_container(req),
        )
        .await?;
        Ok(())
    }

    async fn bounded<T>(
        &self,
        method: &'static str,
        target: &str,
        after: Duration,
        call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<T, CriError> {
        match tokio::time::timeout(after, call).await {
            Ok(Ok(resp)) => Ok(resp.into_inner()),
            Ok(Err(status)) => Err(CriError::Call {
                method,
                target: target.to_string(),
                endpoint: self.endpoint.clone(),
                code: status.code(),
                message: status.message().to_string(),
            }),
            Err(_) => Err(CriError::Timeout {
                method,
                target: target.to_string(),
                endpoint: self.endpoint.clone(),
                after,
            }),
        }
    }
}

fn image_spec(image: &str) -> proto::ImageSpec {
    proto::ImageSpec {
        image: image.to_string(),
        ..Default::default()
    }
}

fn socket_path(endpoint: &str) -> Result<String, CriError> {
    let path = endpoint
        .strip_prefix("unix://")
        .or_else(|| endpoint.strip_prefix("unix:"))
        .unwrap_or(endpoint);
    if !path.starts_with('/') {
        return Err(CriError::InvalidEndpoint {
            endpoint: endpoint.to_string(),
            reason: "expected unix:///absolute/path or /absolute/path".to_string(),
        });
    }
    Ok(path.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_accept_unix_uris_and_paths_only() {
        assert_eq!(socket_path("unix:///run/x.sock").unwrap(), "/run/x.sock");
        assert_eq!(socket_path("/run/x.sock").unwrap(), "/run/x.sock");
        let err = socket_path("tcp://1.2.3.4:1").unwrap_err().to_string();
        assert!(err.contains("tcp://1.2.3.4:1"), "{err}");
    }
}
