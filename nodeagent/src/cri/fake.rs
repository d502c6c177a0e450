//! An in-process fake CRI runtime on a temporary unix socket, built from the generated server
//! traits. For unit tests only (here and, with the `fake-cri` feature, in other crates): it keeps
//! images and containers in memory, can be told to fail or slow down pulls, and records every call.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::net::UnixListener;
use tokio::sync::oneshot;
use tokio_stream::wrappers::UnixListenerStream;
use tonic::{Request, Response, Status};

use super::proto::{
    self, image_service_server::ImageService, image_service_server::ImageServiceServer,
    runtime_service_server::RuntimeService, runtime_service_server::RuntimeServiceServer,
};
use super::{image_matches, normalize_reference};

/// One recorded CRI call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeCall {
    /// gRPC method name, e.g. `PullImage`.
    pub method: &'static str,
    /// Image or container ID the call was about (empty when none).
    pub target: String,
    /// For `PullImage`: the username of the credentials sent, if any. For `ExecSync`: the command.
    pub detail: String,
}

/// What the next `PullImage` of an image does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PullOutcome {
    /// Fail with this gRPC status code and message.
    Fail(tonic::Code, String),
    /// Succeed.
    Succeed,
}

/// The fake runtime's state; change it through [`FakeCri::state`].
#[derive(Debug, Default)]
pub struct FakeState {
    /// Images present.
    pub images: Vec<proto::Image>,
    /// Containers, with their status.
    pub containers: Vec<(proto::Container, proto::ContainerStatus)>,
    /// Scripted outcomes per normalised image reference, consumed one per pull; when empty a pull
    /// succeeds (unless [`FakeState::unknown_images_fail`] and the image is not in `known_images`).
    pub pull_outcomes: HashMap<String, VecDeque<PullOutcome>>,
    /// How long each pull takes.
    pub pull_delay: Duration,
    /// Required (username, password) per registry host; pulls from it without them fail.
    pub registry_auth: HashMap<String, (String, String)>,
    /// Exit code, stdout and stderr per container ID for `ExecSync` (default: 0, empty).
    pub exec_results: HashMap<String, proto::ExecSyncResponse>,
    /// Every call, in order.
    pub calls: Vec<FakeCall>,
    /// Pulls running now.
    pub pulls_in_flight: usize,
    /// Most pulls ever running at once.
    pub max_pulls_in_flight: usize,
}

/// Handle on a running fake runtime; the server stops when this is dropped.
#[derive(Debug)]
pub struct FakeCri {
    state: Arc<Mutex<FakeState>>,
    socket: PathBuf,
    _shutdown: oneshot::Sender<()>,
}

static NEXT_SOCKET: AtomicU64 = AtomicU64::new(0);

impl FakeCri {
    /// Starts a fake runtime on a fresh unix socket in the temp directory.
    pub async fn start() -> std::io::Result<FakeCri> {
        let socket = std::env::temp_dir().join(format!(
            "graft-fake-cri-{}-{}.sock",
            std::process::id(),
            NEXT_SOCKET.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_file(&socket);
        let listener = UnixListener::bind(&socket)?;
        let state = Arc::new(Mutex::new(FakeState::default()));
        let service = FakeService {
            state: state.clone(),
        };
        let (tx, rx) = oneshot::channel::<()>();
        let path = socket.clone();
        tokio::spawn(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(RuntimeServiceServer::new(service.clone()))
                .add_service(ImageServiceServer::new(service))
                .serve_with_incoming_shutdown(UnixListenerStream::new(listener), async {
                    let _ = rx.await;
                })
                .await;
            let _ = std::fs::remove_file(path);
        });
        Ok(FakeCri {
            state,
            socket,
            _shutdown: tx,
        })
    }

    /// The socket path to give to [`super::CriClient::connect`].
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The runtime's state, to set up a test or to check what happened.
    pub fn state(&self) -> MutexGuard<'_, FakeState> {
        lock(&self.state)
    }

    /// Adds an image with these tags and ID.
    pub fn add_image(&self, reference: &str, id: &str) {
        self.state().images.push(fake_image(reference, id));
    }

    /// Scripts the next pulls of `reference`.
    pub fn script_pulls(&self, reference: &str, outcomes: impl IntoIterator<Item = PullOutcome>) {
        self.state()
            .pull_outcomes
            .entry(normalize_reference(reference))
            .or_default()
            .extend(outcomes);
    }

    /// Calls of `method` so far.
    pub fn calls(&self, method: &str) -> Vec<FakeCall> {
        self.state()
            .calls
            .iter()
            .filter(|c| c.method == method)
            .cloned()
            .collect()
    }
}

/// An image as the fake (and containerd) reports it: the reference as tag, plus a digest reference.
pub fn fake_image(reference: &str, id: &str) -> proto::Image {
    let (name, _) = super::split_reference(reference);
    proto::Image {
        id: id.to_string(),
        repo_tags: vec![reference.to_string()],
        repo_digests: vec![format!("{name}@{id}")],
        size: 1024,
        ..Default::default()
    }
}

fn lock(state: &Mutex<FakeState>) -> MutexGuard<'_, FakeState> {
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[derive(Clone)]
struct FakeService {
    state: Arc<Mutex<FakeState>>,
}

impl FakeService {
    fn record(&self, method: &'static str, target: &str, detail: String) {
        lock(&self.state).calls.push(FakeCall {
            method,
            target: target.to_string(),
            detail,
        });
    }
}

fn registry_host(reference: &str) -> String {
    normalize_reference(reference)
        .split('/')
        .next()
        .unwrap_or_default()
        .to_string()
}

#[tonic::async_trait]
impl ImageService for FakeService {
    async fn list_images(
        &self,
        _request: Request<proto::ListImagesRequest>,
    ) -> Result<Response<proto::ListImagesResponse>, Status> {
        self.record("ListImages", "", String::new());
        let images = lock(&self.state).images.clone();
        Ok(Response::new(proto::ListImagesResponse { images }))
    }

    async fn image_status(
        &self,
        request: Request<proto::ImageStatusRequest>,
    ) -> Result<Response<proto::ImageStatusResponse>, Status> {
        let image = request.into_inner().image.unwrap_or_default().image;
        self.record("ImageStatus", &image, String::new());
        let found = lock(&self.state)
            .images
            .iter()
            .find(|i| image_matches(i, &image))
            .cloned();
        Ok(Response::new(proto::ImageStatusResponse {
            image: found,
            info: HashMap::new(),
        }))
    }

    async fn pull_image(
        &self,
        request: Request<proto::PullImageRequest>,
    ) -> Result<Response<proto::PullImageResponse>, Status> {
        let req = request.into_inner();
        let image = req.image.unwrap_or_default().image;
        let auth = req.auth.unwrap_or_default();
        self.record("PullImage", &image, auth.username.clone());
        let delay = {
            let mut s = lock(&self.state);
            s.pulls_in_flight += 1;
            s.max_pulls_in_flight = s.max_pulls_in_flight.max(s.pulls_in_flight);
            s.pull_delay
        };
        // Decrement the in-flight count even when the client gives up and drops this future.
        struct InFlight(Arc<Mutex<FakeState>>);
        impl Drop for InFlight {
            fn drop(&mut self) {
                lock(&self.0).pulls_in_flight -= 1;
            }
        }
        let _guard = InFlight(self.state.clone());
        tokio::time::sleep(delay).await;
        let mut s = lock(&self.state);
        let key = normalize_reference(&image);
        if let Some((user, password)) = s.registry_auth.get(&registry_host(&image))
            && (&auth.username != user || &auth.password != password)
        {
            return Err(Status::unknown(format!(
                "failed to pull and unpack image \"{key}\": failed to resolve reference \"{key}\": \
                 pull access denied, repository does not exist or may require authorization: \
                 authorization failed: no basic auth credentials"
            )));
        }
        let outcome = s
            .pull_outcomes
            .get_mut(&key)
            .and_then(|q| q.pop_front())
            .unwrap_or(PullOutcome::Succeed);
        match outcome {
            PullOutcome::Fail(code, message) => Err(Status::new(code, message)),
            PullOutcome::Succeed => {
                let id = format!("sha256:{:064x}", s.images.len() + 1);
                if let Some(existing) = s.images.iter().find(|i| image_matches(i, &image)) {
                    let id = existing.id.clone();
                    return Ok(Response::new(proto::PullImageResponse { image_ref: id }));
                }
                s.images.push(fake_image(&image, &id));
                Ok(Response::new(proto::PullImageResponse { image_ref: id }))
            }
        }
    }

    async fn remove_image(
        &self,
        request: Request<proto::RemoveImageRequest>,
    ) -> Result<Response<proto::RemoveImageResponse>, Status> {
        let image = request.into_inner().image.unwrap_or_default().image;
        self.record("RemoveImage", &image, String::new());
        lock(&self.state)
            .images
            .retain(|i| !image_matches(i, &image));
        Ok(Response::new(proto::RemoveImageResponse {}))
    }
}

#[tonic::async_trait]
impl RuntimeService for FakeService {
    async fn version(
        &self,
        _request: Request<proto::VersionRequest>,
    ) -> Result<Response<proto::VersionResponse>, Status> {
        self.record("Version", "", String::new());
        Ok(Response::new(proto::VersionResponse {
            version: "0.1.0".into(),
            runtime_name: "fake-cri".into(),
            runtime_version: "v0.0.1".into(),
            runtime_api_version: "v1".into(),
        }))
    }

    async fn list_containers(
        &self,
        request: Request<proto::ListContainersRequest>,
    ) -> Result<Response<proto::ListContainersResponse>, Status> {
        let filter = request.into_inner().filter.unwrap_or_default();
        self.record("ListContainers", &filter.id, String::new());
        let containers = lock(&self.state)
            .containers
            .iter()
            .map(|(c, _)| c)
            .filter(|c| filter.id.is_empty() || c.id == filter.id)
            .filter(|c| {
                filter.pod_sandbox_id.is_empty() || c.pod_sandbox_id == filter.pod_sandbox_id
            })
            .filter(|c| filter.state.as_ref().is_none_or(|s| s.state == c.state))
            .filter(|c| {
                filter
                    .label_selector
                    .iter()
                    .all(|(k, v)| c.labels.get(k) == Some(v))
            })
            .cloned()
            .collect();
        Ok(Response::new(proto::ListContainersResponse { containers }))
    }

    async fn container_status(
        &self,
        request: Request<proto::ContainerStatusRequest>,
    ) -> Result<Response<proto::ContainerStatusResponse>, Status> {
        let id = request.into_inner().container_id;
        self.record("ContainerStatus", &id, String::new());
        let status = lock(&self.state)
            .containers
            .iter()
            .find(|(c, _)| c.id == id)
            .map(|(_, s)| s.clone())
            .ok_or_else(|| Status::not_found(format!("container \"{id}\" not found")))?;
        Ok(Response::new(proto::ContainerStatusResponse {
            status: Some(status),
            ..Default::default()
        }))
    }

    async fn exec_sync(
        &self,
        request: Request<proto::ExecSyncRequest>,
    ) -> Result<Response<proto::ExecSyncResponse>, Status> {
        let req = request.into_inner();
        self.record("ExecSync", &req.container_id, req.cmd.join(" "));
        let s = lock(&self.state);
        if !s.containers.iter().any(|(c, _)| c.id == req.container_id) {
            return Err(Status::not_found(format!(
                "container \"{}\" not found",
                req.container_id
            )));
        }
        Ok(Response::new(
            s.exec_results
                .get(&req.container_id)
                .cloned()
                .unwrap_or_default(),
        ))
    }

    async fn stop_container(
        &self,
        request: Request<proto::StopContainerRequest>,
    ) -> Result<Response<proto::StopContainerResponse>, Status> {
        let req = request.into_inner();
        self.record("StopContainer", &req.container_id, req.timeout.to_string());
        let mut s = lock(&self.state);
        let Some((container, status)) = s
            .containers
            .iter_mut()
            .find(|(c, _)| c.id == req.container_id)
        else {
            return Err(Status::not_found(format!(
                "container \"{}\" not found",
                req.container_id
            )));
        };
        container.state = proto::ContainerState::ContainerExited as i32;
        status.state = proto::ContainerState::ContainerExited as i32;
        Ok(Response::new(proto::StopContainerResponse {}))
    }
}
