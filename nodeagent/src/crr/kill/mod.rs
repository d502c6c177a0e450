//! The CRI side of recreating a container, kruise-daemon's `KillContainer` (a copy of the
//! kubelet's): an Event `Killing` on the pod's container, the preStop handler (exec through CRI
//! `ExecSync`, HTTP GET from the node, or sleep) within the grace period (a failure is an Event
//! `FailedPreStopHook`), then `StopContainer` with what is left of it (at least 2 s). The kubelet
//! then starts a new container per the pod's restart policy. Used by the ContainerRecreateRequest
//! executor and by the container-meta restarter ([`crate::containermeta`]).

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ContainerPort, LifecycleHandler};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::plan::{Kill, RuntimeContainer, RuntimeState};
use crate::cri::{CriClient, CriError, proto};
use crate::events::Recorder;

/// The kubelet's floor for the time a container gets to stop after its preStop hook.
pub const MIN_STOP_GRACE: Duration = Duration::from_secs(2);

/// What happened when a container was killed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KillReport {
    /// The preStop handler ran and failed with this message (the container is stopped anyway,
    /// as the kubelet does).
    pub pre_stop_error: Option<String>,
    /// The preStop handler ran (successfully or not).
    pub pre_stop_ran: bool,
    /// The grace period passed to `StopContainer`.
    pub stop_grace: Duration,
}

/// The pod's containers as the runtime lists them (label `io.kubernetes.pod.uid`).
pub async fn runtime_containers(
    cri: &CriClient,
    pod_uid: &str,
) -> Result<Vec<RuntimeContainer>, CriError> {
    Ok(cri
        .list_pod_containers(pod_uid)
        .await?
        .into_iter()
        .map(|c| {
            let meta = c.metadata.unwrap_or_default();
            RuntimeContainer {
                name: meta.name,
                id: c.id,
                attempt: meta.attempt,
                state: match proto::ContainerState::try_from(c.state) {
                    Ok(proto::ContainerState::ContainerCreated) => RuntimeState::Created,
                    Ok(proto::ContainerState::ContainerRunning) => RuntimeState::Running,
                    Ok(proto::ContainerState::ContainerExited) => RuntimeState::Exited,
                    _ => RuntimeState::Unknown,
                },
                created_at: c.created_at,
            }
        })
        .collect())
}

/// Kills a container as kruise-daemon does: the `Killing` Event (when `recorder` is given), the
/// preStop handler within the grace period (skipped when the grace is 0; a failure is published as
/// `FailedPreStopHook`), then `StopContainer` with the rest of it (at least [`MIN_STOP_GRACE`]).
/// `Err` only when `StopContainer` failed.
pub async fn kill(
    cri: &CriClient,
    k: &Kill,
    recorder: Option<&Recorder>,
) -> Result<KillReport, CriError> {
    if let Some(r) = recorder {
        let note = if k.message.is_empty() {
            format!("Stopping container {}", k.container)
        } else {
            k.message.replace(&k.container_id, &k.container)
        };
        r.publish(
            k.pod.container_ref(&k.container),
            "Normal",
            "Killing",
            &note,
        )
        .await;
    }
    let started = Instant::now();
    let mut report = KillReport::default();
    if let Some(handler) = k.pre_stop.as_ref().filter(|_| !k.grace.is_zero()) {
        report.pre_stop_ran = true;
        let run = run_pre_stop(cri, k, handler);
        report.pre_stop_error = match tokio::time::timeout(k.grace, run).await {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e),
            Err(_) => Some(format!(
                "did not finish within the grace period of {}s",
                k.grace.as_secs()
            )),
        };
        if let (Some(r), Some(e)) = (recorder, &report.pre_stop_error) {
            r.publish(
                k.pod.container_ref(&k.container),
                "Warning",
                "FailedPreStopHook",
                &hook_failure_message(k, handler, e),
            )
            .await;
        }
    }
    // The kubelet takes whole seconds off the grace period.
    let spent = Duration::from_secs(started.elapsed().as_secs());
    report.stop_grace = k.grace.saturating_sub(spent).max(MIN_STOP_GRACE);
    cri.stop_container(&k.container_id, report.stop_grace)
        .await?;
    Ok(report)
}

/// The message of a failed hook, in the words of the kubelet's handler runner.
pub fn hook_failure_message(k: &Kill, handler: &LifecycleHandler, error: &str) -> String {
    let pod = format!("{}_{}({})", k.pod.name, k.pod.namespace, k.pod.uid);
    if let Some(exec) = &handler.exec {
        let cmd = exec.command.clone().unwrap_or_default().join(" ");
        return format!(
            "Exec lifecycle hook ([{cmd}]) for Container {:?} in Pod {pod:?} failed - error: {error}",
            k.container
        );
    }
    if let Some(http) = &handler.http_get {
        return format!(
            "HTTP lifecycle hook ({}) for Container {:?} in Pod {pod:?} failed - error: {error}",
            http.path.as_deref().unwrap_or_default(),
            k.container
        );
    }
    format!(
        "PreStop hook for Container {:?} in Pod {pod:?} failed - error: {error}",
        k.container
    )
}

async fn run_pre_stop(cri: &CriClient, k: &Kill, handler: &LifecycleHandler) -> Result<(), String> {
    if let Some(exec) = &handler.exec {
        let cmd = exec.command.clone().unwrap_or_default();
        if cmd.is_empty() {
            return Err("exec handler has no command".to_string());
        }
        let resp = cri
            .exec_sync(&k.container_id, cmd, k.grace)
            .await
            .map_err(|e| e.to_string())?;
        if resp.exit_code != 0 {
            return Err(format!(
                "exec exited with code {}: {}",
                resp.exit_code,
                String::from_utf8_lossy(&resp.stderr).trim()
            ));
        }
        return Ok(());
    }
    if let Some(http) = &handler.http_get {
        if http
            .scheme
            .as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case("https"))
        {
            return Err("httpGet with scheme HTTPS is not supported by graft's node agent".into());
        }
        let host = http
            .host
            .clone()
            .filter(|h| !h.is_empty())
            .or_else(|| k.pod_ip.clone())
            .ok_or("httpGet: the pod has no IP and the handler names no host")?;
        let port = resolve_port(&http.port, &k.ports)?;
        let path = http
            .path
            .clone()
            .filter(|p| !p.is_empty())
            .unwrap_or("/".into());
        let headers: Vec<(String, String)> = http
            .http_headers
            .iter()
            .flatten()
            .map(|h| (h.name.clone(), h.value.clone()))
            .collect();
        return http_get(&host, port, &path, &headers).await;
    }
    if let Some(sleep) = &handler.sleep {
        tokio::time::sleep(Duration::from_secs(sleep.seconds.max(0) as u64)).await;
        return Ok(());
    }
    // tcpSocket preStop handlers are accepted by the API but do nothing in the kubelet either.
    Ok(())
}

fn resolve_port(port: &IntOrString, ports: &[ContainerPort]) -> Result<u16, String> {
    let n = match port {
        IntOrString::Int(n) => *n,
        IntOrString::String(name) => match name.parse::<i32>() {
            Ok(n) => n,
            Err(_) => ports
                .iter()
                .find(|p| p.name.as_deref() == Some(name.as_str()))
                .map(|p| p.container_port)
                .ok_or_else(|| format!("httpGet: no container port named {name}"))?,
        },
    };
    u16::try_from(n)
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| format!("httpGet: invalid port {n}"))
}

/// A plain HTTP/1.1 GET; any 2xx or 3xx answer counts as success (as the kubelet's hook).
async fn http_get(
    host: &str,
    port: u16,
    path: &str,
    headers: &[(String, String)],
) -> Result<(), String> {
    let addr = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let mut stream = tokio::net::TcpStream::connect(&addr)
        .await
        .map_err(|e| format!("httpGet {addr}{path}: {e}"))?;
    let mut req = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: graft-nodeagent\r\nConnection: close\r\n"
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    stream
        .write_all(req.as_bytes())
        .await
        .map_err(|e| format!("httpGet {addr}{path}: {e}"))?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 512];
    while !buf.windows(2).any(|w| w == b"\r\n") {
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|e| format!("httpGet {addr}{path}: {e}"))?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let line = String::from_utf8_lossy(&buf);
    let code: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("httpGet {addr}{path}: no HTTP status in the answer"))?;
    if (200..400).contains(&code) {
        Ok(())
    } else {
        Err(format!("httpGet {addr}{path}: HTTP {code}"))
    }
}

#[cfg(test)]
mod tests;
