//! Container meta, kruise-daemon's `containermeta` controller (kruise-api.md §10): for the pods of
//! this node that an `apps.kruise.io` workload owns (or a SidecarSet injected), report per
//! container `{name, containerID, restartCount, hashes{plainHash, extractedEnvFromMetadataHash}}`
//! in the pod annotation `apps.kruise.io/runtime-containers-meta` (through `pods/status`), and
//! restart (CRI `StopContainer`; the kubelet starts it again) a container whose env, read from a
//! label or annotation, no longer matches the pod while its `InPlaceUpdateReady` is False. That
//! is how an in-place update of env from metadata takes effect; the in-place engine reads the
//! hashes back to know it is done.
//!
//! The env hash of a running container is taken once per container ID from `env` run in it
//! (CRI `ExecSync`, 3 s), as kruise-daemon does.
//!
//! A restart is kruise-daemon's `KillContainer` with no pod at hand ([`crate::crr::kill`]): what
//! it needs is read back from the kubelet's annotations on the runtime container (preStop
//! handler, ports, the pod's deletion or termination grace period, else 2 s), an Event `Killing`
//! ("Stopping containerID ... by container meta restarter") goes on the pod's container, the
//! preStop hook runs, and then the container is stopped.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use graft_api::annotations::{
    RuntimeContainerHashes, RuntimeContainerMeta, RuntimeContainerMetaSet,
    current_env_from_metadata_hash, expected_env_from_metadata_hash, parse_annotation,
    to_annotation,
};
use graft_api::labels;
use k8s_openapi::api::core::v1::{ContainerPort, LifecycleHandler, Pod};
use kube::Api;
use kube::api::{Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};

use crate::cri::{CriClient, proto};
use crate::crr::kill;
use crate::crr::plan::Kill;
use crate::events::{PodRef, Recorder};

/// CRI container annotation with the kubelet's hash of the container spec (hex).
const HASH_ANNOTATION: &str = "io.kubernetes.container.hash";
/// CRI container annotation with the restart count.
const RESTART_COUNT_ANNOTATION: &str = "io.kubernetes.container.restartCount";
/// CRI container annotation with the pod's termination grace period (seconds).
const GRACE_ANNOTATION: &str = "io.kubernetes.pod.terminationGracePeriod";
/// CRI container annotation with the pod's deletion grace period (seconds), when it is deleting.
const DELETION_GRACE_ANNOTATION: &str = "io.kubernetes.pod.deletionGracePeriod";
/// CRI container annotation with the container's preStop handler (JSON).
const PRE_STOP_ANNOTATION: &str = "io.kubernetes.container.preStopHandler";
/// CRI container annotation with the container's ports (JSON).
const PORTS_ANNOTATION: &str = "io.kubernetes.container.ports";
/// The kubelet's grace period when the runtime container names none.
const MIN_GRACE: Duration = Duration::from_secs(2);

/// How long a restart waits after the stale env is seen (kruise's restarter rate-limit base).
const RESTART_DELAY: Duration = Duration::from_secs(3);

/// What the runtime shows of one container of a pod (the newest attempt of each name).
#[derive(Clone, Debug, PartialEq)]
pub struct RuntimeContainer {
    /// Container name in the pod spec.
    pub name: String,
    /// `<runtime>://<id>`, as the pod status writes it.
    pub container_id: String,
    /// The bare runtime ID.
    pub id: String,
    /// The kubelet's spec hash.
    pub plain_hash: u64,
    /// The kubelet's restart count.
    pub restart_count: i32,
    /// Running now.
    pub running: bool,
    /// Stop grace: the pod's deletion grace period, else its termination grace period, else 2 s.
    pub grace: Duration,
    /// The preStop handler the kubelet recorded on the container.
    pub pre_stop: Option<LifecycleHandler>,
    /// The container's ports the kubelet recorded (for a named httpGet port).
    pub ports: Vec<ContainerPort>,
}

/// Whether the agent keeps container meta for this pod (kruise's `eventFilter` owner check).
pub fn is_watched(pod: &Pod) -> bool {
    let owned = pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.controller == Some(true) && o.api_version.starts_with("apps.kruise.io/"));
    let injected = pod
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(labels::SIDECARSET_HASH));
    (owned || injected)
        && pod.metadata.deletion_timestamp.is_none()
        && pod
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .is_some_and(|c| !c.is_empty())
}

/// The pod's current `runtime-containers-meta`, if readable.
pub fn reported(pod: &Pod) -> Option<RuntimeContainerMetaSet> {
    let raw = pod
        .metadata
        .annotations
        .as_ref()?
        .get(labels::RUNTIME_CONTAINERS_META)?;
    parse_annotation(labels::RUNTIME_CONTAINERS_META, raw).ok()
}

/// The newest container of each name among a pod's CRI containers; `runtime` is the prefix of
/// the pod status' container IDs (`containerd`).
pub fn runtime_view(containers: &[proto::Container], runtime: &str) -> Vec<RuntimeContainer> {
    let mut newest: BTreeMap<String, &proto::Container> = BTreeMap::new();
    for c in containers {
        let Some(meta) = &c.metadata else { continue };
        let newer = newest.get(&meta.name).is_none_or(|n| {
            let (a, b) = (n.metadata.as_ref().map_or(0, |m| m.attempt), meta.attempt);
            b > a || (b == a && c.created_at > n.created_at)
        });
        if newer {
            newest.insert(meta.name.clone(), c);
        }
    }
    newest
        .into_iter()
        .map(|(name, c)| RuntimeContainer {
            name,
            container_id: format!("{runtime}://{}", c.id),
            id: c.id.clone(),
            plain_hash: c
                .annotations
                .get(HASH_ANNOTATION)
                .and_then(|h| u64::from_str_radix(h, 16).ok())
                .unwrap_or(0),
            restart_count: c
                .annotations
                .get(RESTART_COUNT_ANNOTATION)
                .and_then(|n| n.parse().ok())
                .unwrap_or(0),
            running: c.state == proto::ContainerState::ContainerRunning as i32,
            grace: [DELETION_GRACE_ANNOTATION, GRACE_ANNOTATION]
                .iter()
                .find_map(|a| c.annotations.get(*a)?.parse::<i64>().ok())
                .map_or(MIN_GRACE, |g| Duration::from_secs(g.max(0) as u64)),
            pre_stop: c
                .annotations
                .get(PRE_STOP_ANNOTATION)
                .and_then(|j| serde_json::from_str(j).ok()),
            ports: c
                .annotations
                .get(PORTS_ANNOTATION)
                .and_then(|j| serde_json::from_str(j).ok())
                .unwrap_or_default(),
        })
        .collect()
}

/// The meta set to report (kruise's `manageContainerMetaSet`): for each container in the pod
/// status that the runtime knows, the entry already reported for the same container ID, or a new
/// one with hash 0 (`need_env` lists those running containers whose env must be read).
pub fn next_meta(
    pod: &Pod,
    old: Option<&RuntimeContainerMetaSet>,
    runtime: &[RuntimeContainer],
) -> (RuntimeContainerMetaSet, Vec<String>) {
    let mut set = RuntimeContainerMetaSet::default();
    let mut need_env = Vec::new();
    let statuses = pod
        .status
        .iter()
        .flat_map(|s| s.container_statuses.iter().flatten());
    for cs in statuses {
        let Some(rc) = runtime.iter().find(|r| r.name == cs.name) else {
            continue;
        };
        let has_spec = pod
            .spec
            .iter()
            .flat_map(|s| &s.containers)
            .any(|c| c.name == cs.name);
        if !has_spec {
            continue;
        }
        let entry = old
            .and_then(|o| {
                o.containers
                    .iter()
                    .find(|m| m.container_id == rc.container_id)
            })
            .cloned()
            .unwrap_or_else(|| RuntimeContainerMeta {
                name: rc.name.clone(),
                container_id: rc.container_id.clone(),
                restart_count: rc.restart_count,
                hashes: RuntimeContainerHashes {
                    plain_hash: rc.plain_hash,
                    ..Default::default()
                },
            });
        if entry.hashes.extracted_env_from_metadata_hash == 0 && rc.running {
            need_env.push(rc.name.clone());
        }
        set.containers.push(entry);
    }
    (set, need_env)
}

/// The containers to restart: while the pod's `InPlaceUpdateReady` is False, those whose reported
/// env hash is known and differs from the one the pod's labels and annotations give.
pub fn to_restart(pod: &Pod, set: &RuntimeContainerMetaSet) -> Vec<String> {
    let updating = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == labels::INPLACE_UPDATE_READY))
        .is_some_and(|c| c.status == "False");
    if !updating {
        return Vec::new();
    }
    let empty = BTreeMap::new();
    let pod_labels = pod.metadata.labels.as_ref().unwrap_or(&empty);
    let pod_annotations = pod.metadata.annotations.as_ref().unwrap_or(&empty);
    set.containers
        .iter()
        .filter(|m| m.hashes.extracted_env_from_metadata_hash > 0)
        .filter(|m| {
            pod.spec
                .iter()
                .flat_map(|s| &s.containers)
                .find(|c| c.name == m.name)
                .is_some_and(|c| {
                    expected_env_from_metadata_hash(c, pod_labels, pod_annotations)
                        != m.hashes.extracted_env_from_metadata_hash
                })
        })
        .map(|m| m.container_id.clone())
        .collect()
}

/// Parses the output of `env`.
pub fn parse_env(stdout: &[u8]) -> BTreeMap<String, String> {
    String::from_utf8_lossy(stdout)
        .trim()
        .lines()
        .filter_map(|l| {
            let (k, v) = l.trim().split_once('=')?;
            Some((k.to_string(), v.to_string()))
        })
        .collect()
}

/// Keeps container meta for the pods on `node_name` (in `namespace` only, when set) until the
/// watch ends.
pub async fn run(
    client: kube::Client,
    cri: CriClient,
    node_name: String,
    namespace: Option<String>,
) {
    let api: Api<Pod> = match &namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let config = watcher::Config::default().fields(&format!("spec.nodeName={node_name}"));
    let recorder = Recorder::new(client.clone(), node_name.clone());
    let restarting: Arc<Mutex<HashSet<String>>> = Arc::default();
    let mut events = watcher(api.clone(), config).default_backoff().boxed();
    while let Some(event) = events.next().await {
        let pod = match event {
            Ok(watcher::Event::Apply(p) | watcher::Event::InitApply(p)) => p,
            Ok(_) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "pod watch");
                continue;
            }
        };
        if !is_watched(&pod) {
            continue;
        }
        if let Err(e) = sync(&client, &cri, &recorder, &pod, &restarting).await {
            tracing::warn!(pod = %key(&pod), error = %e, "container meta");
            // kruise-daemon retries a failed read after 3 s.
            let (client, cri, recorder, restarting) = (
                client.clone(),
                cri.clone(),
                recorder.clone(),
                restarting.clone(),
            );
            let (ns, name) = (
                pod.metadata.namespace.clone().unwrap_or_default(),
                pod.metadata.name.clone().unwrap_or_default(),
            );
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(3)).await;
                let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
                if let Ok(pod) = api.get(&name).await
                    && is_watched(&pod)
                    && let Err(e) = sync(&client, &cri, &recorder, &pod, &restarting).await
                {
                    tracing::warn!(pod = %format!("{ns}/{name}"), error = %e, "container meta retry");
                }
            });
        }
    }
}

async fn sync(
    client: &kube::Client,
    cri: &CriClient,
    recorder: &Recorder,
    pod: &Pod,
    restarting: &Arc<Mutex<HashSet<String>>>,
) -> Result<(), String> {
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let runtime_name = pod
        .status
        .iter()
        .flat_map(|s| s.container_statuses.iter().flatten())
        .find_map(|c| {
            c.container_id
                .as_deref()?
                .split_once("://")
                .map(|(r, _)| r.to_string())
        })
        .unwrap_or_else(|| "containerd".to_string());
    let containers = cri
        .list_pod_containers(&uid)
        .await
        .map_err(|e| e.to_string())?;
    let runtime = runtime_view(&containers, &runtime_name);
    let old = reported(pod);
    let (mut set, need_env) = next_meta(pod, old.as_ref(), &runtime);
    let mut failed = None;
    for name in need_env {
        let (Some(rc), Some(spec)) = (
            runtime.iter().find(|r| r.name == name),
            pod.spec
                .iter()
                .flat_map(|s| &s.containers)
                .find(|c| c.name == name),
        ) else {
            continue;
        };
        match cri
            .exec_sync(&rc.id, vec!["env".into()], Duration::from_secs(3))
            .await
        {
            Ok(out) if out.exit_code == 0 => {
                let hash = current_env_from_metadata_hash(spec, &parse_env(&out.stdout));
                if let Some(m) = set.containers.iter_mut().find(|m| m.name == name) {
                    m.hashes.extracted_env_from_metadata_hash = hash;
                }
            }
            Ok(out) => failed = Some(format!("env in {name} exited {}", out.exit_code)),
            Err(e) => failed = Some(format!("env in {name}: {e}")),
        }
    }
    for container_id in to_restart(pod, &set) {
        let Some(rc) = runtime.iter().find(|r| r.container_id == container_id) else {
            continue;
        };
        if !rc.running || !lock(restarting).insert(container_id.clone()) {
            continue;
        }
        tracing::info!(pod = %key(pod), container = %rc.name, id = %container_id,
            "restarting container: its env from metadata is stale");
        let k = restart_kill(pod, rc);
        let (cri, recorder, restarting) = (cri.clone(), recorder.clone(), restarting.clone());
        let container_id = rc.container_id.clone();
        tokio::spawn(async move {
            // kruise-daemon's restart queue delays a container's first restart by its rate
            // limiter's base (3 s); the kubelet meanwhile sees the pod's new labels, so the
            // container starts again with the new env instead of the old one.
            tokio::time::sleep(RESTART_DELAY).await;
            if let Err(e) = kill::kill(&cri, &k, Some(&recorder)).await {
                tracing::warn!(id = %container_id, error = %e, "stopping container");
            }
            lock(&restarting).remove(&container_id);
        });
    }
    if old.as_ref() != Some(&set) {
        let value = to_annotation(&set).map_err(|e| e.to_string())?;
        let patch = serde_json::json!({"metadata": {"annotations": {
            labels::RUNTIME_CONTAINERS_META: value,
        }}});
        let api: Api<Pod> = Api::namespaced(
            client.clone(),
            pod.metadata.namespace.as_deref().unwrap_or_default(),
        );
        api.patch_status(
            pod.metadata.name.as_deref().unwrap_or_default(),
            &PatchParams::default(),
            &Patch::Strategic(&patch),
        )
        .await
        .map_err(|e| format!("reporting container meta: {e}"))?;
    }
    failed.map_or(Ok(()), Err)
}

/// How the restarter kills a container whose env is stale: kruise's `KillContainer` without a
/// pod, from what the kubelet recorded on the runtime container, with its message.
pub fn restart_kill(pod: &Pod, rc: &RuntimeContainer) -> Kill {
    Kill {
        container: rc.name.clone(),
        container_id: rc.id.clone(),
        pre_stop: rc.pre_stop.clone(),
        ports: rc.ports.clone(),
        pod_ip: pod.status.as_ref().and_then(|s| s.pod_ip.clone()),
        grace: rc.grace,
        states_after: Vec::new(),
        pod: PodRef {
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            name: pod.metadata.name.clone().unwrap_or_default(),
            uid: pod.metadata.uid.clone().unwrap_or_default(),
        },
        message: format!(
            "Stopping containerID {} by container meta restarter",
            rc.container_id
        ),
    }
}

fn lock(set: &Arc<Mutex<HashSet<String>>>) -> std::sync::MutexGuard<'_, HashSet<String>> {
    set.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn key(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.name.as_deref().unwrap_or_default()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use pretty_assertions::assert_eq;
    use serde_json::json;

    fn pod(label: &str, ready: &str, meta: Option<&RuntimeContainerMetaSet>) -> Pod {
        let mut annotations = serde_json::Map::new();
        if let Some(m) = meta {
            annotations.insert(
                labels::RUNTIME_CONTAINERS_META.into(),
                json!(to_annotation(m).unwrap()),
            );
        }
        serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u1",
                "labels": {"v": label}, "annotations": annotations,
                "ownerReferences": [{"apiVersion": "apps.kruise.io/v1alpha1", "kind": "CloneSet",
                    "name": "c", "uid": "c1", "controller": true}]},
            "spec": {"containers": [
                {"name": "app", "image": "a", "env": [{"name": "V", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['v']"}}}]},
                {"name": "side", "image": "b"}
            ]},
            "status": {
                "conditions": [{"type": "InPlaceUpdateReady", "status": ready}],
                "containerStatuses": [
                    {"name": "app", "image": "a", "imageID": "a1", "ready": true, "restartCount": 0, "containerID": "containerd://c-app"},
                    {"name": "side", "image": "b", "imageID": "b1", "ready": true, "restartCount": 0, "containerID": "containerd://c-side"}
                ]
            }
        }))
        .unwrap()
    }

    fn runtime() -> Vec<RuntimeContainer> {
        ["app", "side"]
            .iter()
            .map(|n| RuntimeContainer {
                name: n.to_string(),
                container_id: format!("containerd://c-{n}"),
                id: format!("c-{n}"),
                plain_hash: 7,
                restart_count: 0,
                running: true,
                grace: Duration::from_secs(3),
                pre_stop: None,
                ports: Vec::new(),
            })
            .collect()
    }

    #[test]
    fn a_new_container_needs_its_env_read_and_a_known_one_keeps_its_entry() {
        let p = pod("1", "True", None);
        let (set, need) = next_meta(&p, None, &runtime());
        assert_eq!(need, vec!["app".to_string(), "side".to_string()]);
        assert_eq!(set.containers.len(), 2);
        assert_eq!(set.containers[0].hashes.plain_hash, 7);
        let mut known = set.clone();
        known.containers[0].hashes.extracted_env_from_metadata_hash = 42;
        known.containers[1].hashes.extracted_env_from_metadata_hash = 43;
        let (again, need) = next_meta(&p, Some(&known), &runtime());
        assert!(need.is_empty());
        assert_eq!(again, known);
    }

    #[test]
    fn only_the_container_whose_env_is_stale_restarts_and_only_while_updating() {
        let app = &pod("1", "True", None).spec.unwrap().containers;
        let env_of = |v: &str| BTreeMap::from([("V".to_string(), v.to_string())]);
        let mut set = next_meta(&pod("1", "True", None), None, &runtime()).0;
        set.containers[0].hashes.extracted_env_from_metadata_hash =
            current_env_from_metadata_hash(&app[0], &env_of("1"));
        set.containers[1].hashes.extracted_env_from_metadata_hash =
            current_env_from_metadata_hash(&app[1], &BTreeMap::new());
        // The label still has the value the container saw: nothing to do.
        assert!(to_restart(&pod("1", "False", Some(&set)), &set).is_empty());
        // The label changed and the update is under way: restart app, not side.
        assert_eq!(
            to_restart(&pod("2", "False", Some(&set)), &set),
            vec!["containerd://c-app".to_string()]
        );
        // Not updating (InPlaceUpdateReady True): never restart.
        assert!(to_restart(&pod("2", "True", Some(&set)), &set).is_empty());
    }

    #[test]
    fn env_output_and_the_newest_attempt() {
        assert_eq!(
            parse_env(b"PATH=/bin\nV=a=b\n\n"),
            BTreeMap::from([
                ("PATH".to_string(), "/bin".to_string()),
                ("V".to_string(), "a=b".to_string())
            ])
        );
        let c = |id: &str, attempt: u32, state: proto::ContainerState| proto::Container {
            id: id.into(),
            metadata: Some(proto::ContainerMetadata {
                name: "app".into(),
                attempt,
            }),
            state: state as i32,
            annotations: [(HASH_ANNOTATION.to_string(), "ff".to_string())].into(),
            ..Default::default()
        };
        let view = runtime_view(
            &[
                c("old", 0, proto::ContainerState::ContainerExited),
                c("new", 1, proto::ContainerState::ContainerRunning),
            ],
            "containerd",
        );
        assert_eq!(view.len(), 1);
        assert_eq!(view[0].container_id, "containerd://new");
        assert_eq!(view[0].plain_hash, 255);
        assert!(view[0].running);
    }

    #[test]
    fn a_restart_runs_the_prestop_the_kubelet_recorded_with_the_pods_grace() {
        let annotations = |extra: &[(&str, &str)]| {
            let mut a: std::collections::HashMap<String, String> = [
                (HASH_ANNOTATION, "ff"),
                (
                    PRE_STOP_ANNOTATION,
                    r#"{"exec":{"command":["sh","-c","echo bye"]}}"#,
                ),
                (
                    PORTS_ANNOTATION,
                    r#"[{"name":"http","containerPort":8080,"protocol":"TCP"}]"#,
                ),
                (GRACE_ANNOTATION, "45"),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
            for (k, v) in extra {
                a.insert(k.to_string(), v.to_string());
            }
            a
        };
        let c = |annotations| proto::Container {
            id: "abc".into(),
            metadata: Some(proto::ContainerMetadata {
                name: "app".into(),
                attempt: 0,
            }),
            state: proto::ContainerState::ContainerRunning as i32,
            annotations,
            ..Default::default()
        };
        let view = runtime_view(&[c(annotations(&[]))], "containerd");
        let k = restart_kill(&pod("2", "False", None), &view[0]);
        assert_eq!(
            k.pre_stop
                .as_ref()
                .and_then(|h| h.exec.as_ref())
                .and_then(|e| e.command.clone()),
            Some(vec![
                "sh".to_string(),
                "-c".to_string(),
                "echo bye".to_string()
            ])
        );
        assert_eq!(k.ports[0].container_port, 8080);
        assert_eq!(k.grace, Duration::from_secs(45));
        assert_eq!(k.container_id, "abc");
        assert_eq!(
            k.message,
            "Stopping containerID containerd://abc by container meta restarter"
        );
        assert_eq!(
            k.pod,
            PodRef {
                namespace: "ns".into(),
                name: "p".into(),
                uid: "u1".into()
            }
        );
        // A deleting pod's grace wins; no grace recorded at all gives the kubelet's 2 s.
        let view = runtime_view(
            &[c(annotations(&[(DELETION_GRACE_ANNOTATION, "5")]))],
            "containerd",
        );
        assert_eq!(view[0].grace, Duration::from_secs(5));
        let view = runtime_view(&[c(Default::default())], "containerd");
        assert_eq!(view[0].grace, MIN_GRACE);
        assert_eq!(view[0].pre_stop, None);
    }

    #[test]
    fn pods_not_owned_by_a_kruise_workload_are_left_alone() {
        let mut p = pod("1", "True", None);
        assert!(is_watched(&p));
        p.metadata.owner_references = None;
        assert!(!is_watched(&p));
    }
}
