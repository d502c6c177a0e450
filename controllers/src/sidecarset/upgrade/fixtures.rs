//! Builders for the upgrade tests: `set()` is SidecarSet `log` (selector `app=web`, sidecar
//! `log` at `log:v2`, hash `h2`, without-image hash `w1`); `pod("a")` is a Running, Ready pod in
//! `default` injected with `log:v1` (hash `h1`, same without-image hash), consistent.

use std::collections::BTreeMap;

use graft_api::apps::v1beta1::sidecarset::{SidecarSet, SidecarSetStatus};
use graft_api::labels;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

use super::{Plan, Snapshot, plan};

pub fn now() -> Timestamp {
    Timestamp::from_second(1_800_000_000).unwrap()
}

pub const NOW: &str = "2027-01-15T08:00:00Z";

pub struct SetB(pub Value);

pub fn set() -> SetB {
    SetB(json!({
        "apiVersion": "apps.kruise.io/v1beta1",
        "kind": "SidecarSet",
        "metadata": {
            "name": "log",
            "generation": 3,
            "resourceVersion": "100",
            "annotations": {
                labels::SIDECARSET_HASH: "h2",
                labels::SIDECARSET_HASH_WITHOUT_IMAGE: "w1"
            }
        },
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "containers": [{"name": "log", "image": "log:v2"}],
            "updateStrategy": {"type": "RollingUpdate", "maxUnavailable": 1, "partition": 0}
        }
    }))
}

impl SetB {
    fn strategy(&mut self) -> &mut Value {
        &mut self.0["spec"]["updateStrategy"]
    }
    pub fn partition(mut self, p: IntOrString) -> Self {
        self.strategy()["partition"] = serde_json::to_value(p).unwrap();
        self
    }
    pub fn max_unavailable(mut self, m: Option<IntOrString>) -> Self {
        match m {
            Some(m) => self.strategy()["maxUnavailable"] = serde_json::to_value(m).unwrap(),
            None => {
                self.strategy()
                    .as_object_mut()
                    .unwrap()
                    .remove("maxUnavailable");
            }
        }
        self
    }
    pub fn update_selector(mut self, key: &str, value: &str) -> Self {
        self.strategy()["selector"] = json!({"matchLabels": {key: value}});
        self
    }
    pub fn paused(mut self) -> Self {
        self.strategy()["paused"] = json!(true);
        self
    }
    pub fn not_update(mut self) -> Self {
        self.strategy()["type"] = json!("NotUpdate");
        self
    }
    pub fn strategy_field(mut self, key: &str, value: Value) -> Self {
        self.strategy()[key] = value;
        self
    }
    pub fn namespace_selector(mut self, key: &str, value: &str) -> Self {
        self.0["spec"]["namespaceSelector"] = json!({"matchLabels": {key: value}});
        self
    }
    /// Makes sidecar `log` a hot-upgrade one (empty image `empty:1`) at `image`.
    pub fn hot(mut self, image: &str) -> Self {
        self.0["spec"]["containers"] = json!([{
            "name": "log", "image": image,
            "upgradeStrategy": {"upgradeType": "HotUpgrade", "hotUpgradeEmptyImage": "empty:1"}
        }]);
        self
    }
    pub fn patch_pod_metadata(mut self, key: &str, value: &str) -> Self {
        self.0["spec"]["patchPodMetadata"] =
            json!([{"annotations": {key: value}, "patchPolicy": "Overwrite"}]);
        self
    }
    pub fn status(mut self, s: SidecarSetStatus) -> Self {
        self.0["status"] = serde_json::to_value(s).unwrap();
        self
    }
    pub fn build(self) -> SidecarSet {
        serde_json::from_value(self.0).unwrap()
    }
}

pub struct PodB(pub Value);

/// A pod of set `log` with app container `app` and sidecar `log` at `log:v1`.
pub fn pod(name: &str) -> PodB {
    PodB(json!({
        "metadata": {
            "name": name,
            "namespace": "default",
            "resourceVersion": "7",
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "labels": {"app": "web"},
            "annotations": {
                labels::SIDECARSET_INJECTED_LIST: "log",
                labels::SIDECARSET_HASH: hash_json("h1"),
                labels::SIDECARSET_HASH_WITHOUT_IMAGE: hash_json("w1")
            }
        },
        "spec": {
            "nodeName": "node-1",
            "containers": [
                {"name": "log", "image": "log:v1"},
                {"name": "app", "image": "app:v1"}
            ]
        },
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:01:00Z"}],
            "containerStatuses": [
                status("log", "log:v1", "docker.io/library/log@sha256:v1", true),
                status("app", "app:v1", "docker.io/library/app@sha256:a1", true)
            ]
        }
    }))
}

fn status(name: &str, image: &str, image_id: &str, ready: bool) -> Value {
    json!({"name": name, "image": image, "imageID": image_id, "ready": ready, "restartCount": 0})
}

/// The pod annotation value `{"log": {"hash": h, ...}}`.
pub fn hash_json(hash: &str) -> String {
    json!({"log": {"updateTimestamp": "2026-01-01T00:00:00Z", "hash": hash, "sidecarSetName": "log", "sidecarList": ["log"]}})
        .to_string()
}

impl PodB {
    fn annotations(&mut self) -> &mut serde_json::Map<String, Value> {
        self.0["metadata"]["annotations"].as_object_mut().unwrap()
    }
    pub fn label(mut self, k: &str, v: &str) -> Self {
        self.0["metadata"]["labels"][k] = json!(v);
        self
    }
    pub fn annotation(mut self, k: &str, v: &str) -> Self {
        self.annotations().insert(k.into(), json!(v));
        self
    }
    pub fn remove_annotation(mut self, k: &str) -> Self {
        self.annotations().remove(k);
        self
    }
    /// The pod's sidecars are the latest: hash `h2`, sidecar at `log:v2`.
    pub fn updated(self) -> Self {
        self.annotation(labels::SIDECARSET_HASH, &hash_json("h2"))
            .image("log", "log:v2")
            .status_of("log", "log:v2", "docker.io/library/log@sha256:v2", true)
    }
    /// Recorded without-image hash `w`.
    pub fn without_image(self, w: &str) -> Self {
        self.annotation(labels::SIDECARSET_HASH_WITHOUT_IMAGE, &hash_json(w))
    }
    pub fn not_ready(mut self) -> Self {
        self.0["status"]["conditions"][0]["status"] = json!("False");
        self
    }
    pub fn phase(mut self, p: &str) -> Self {
        self.0["status"]["phase"] = json!(p);
        self
    }
    pub fn terminating(mut self) -> Self {
        self.0["metadata"]["deletionTimestamp"] = json!("2026-06-01T00:00:00Z");
        self
    }
    pub fn created(mut self, t: &str) -> Self {
        self.0["metadata"]["creationTimestamp"] = json!(t);
        self
    }
    pub fn image(mut self, container: &str, image: &str) -> Self {
        for c in self.0["spec"]["containers"].as_array_mut().unwrap() {
            if c["name"] == container {
                c["image"] = json!(image);
            }
        }
        self
    }
    /// Sets (or adds) the status of container `name`.
    pub fn status_of(mut self, name: &str, image: &str, image_id: &str, ready: bool) -> Self {
        let list = self.0["status"]["containerStatuses"]
            .as_array_mut()
            .unwrap();
        list.retain(|c| c["name"] != name);
        list.push(status(name, image, image_id, ready));
        self
    }
    pub fn remove_container(mut self, name: &str) -> Self {
        self.0["spec"]["containers"]
            .as_array_mut()
            .unwrap()
            .retain(|c| c["name"] != name);
        self.0["status"]["containerStatuses"]
            .as_array_mut()
            .unwrap()
            .retain(|c| c["name"] != name);
        self
    }
    /// Sidecar upgraded to `log:v2` in spec, kubelet not done: the recorded imageID is still the
    /// status one.
    pub fn upgrading(self) -> Self {
        self.annotation(labels::SIDECARSET_HASH, &hash_json("h2"))
            .image("log", "log:v2")
            .annotation(
                labels::SIDECARSET_INPLACE_UPDATE_STATE,
                r#"{"log":{"revision":"h2","updateTimestamp":"2026-01-01T00:00:00Z","lastContainerStatuses":{"log":{"imageID":"docker.io/library/log@sha256:v1"}}}}"#,
            )
    }
    /// A CloneSet in-place update of `app` under way (`app:v2` in spec, status still v1).
    pub fn workload_in_place_update(self) -> Self {
        self.image("app", "app:v2").annotation(
            labels::INPLACE_UPDATE_STATE,
            r#"{"revision":"web-2","updateTimestamp":"2026-01-01T00:00:00Z","lastContainerStatuses":{"app":{"imageID":"docker.io/library/app@sha256:a1"}}}"#,
        )
    }
    /// Hot-upgrade twins `log-1` (working, `w1img`) and `log-2` (`w2img`), both ready.
    pub fn twins(self, working: &str, img1: &str, img2: &str) -> Self {
        let mut p = self.remove_container("log");
        let list = p.0["spec"]["containers"].as_array_mut().unwrap();
        list.insert(0, json!({"name": "log-2", "image": img2}));
        list.insert(0, json!({"name": "log-1", "image": img1}));
        p.status_of("log-1", img1, &format!("docker.io/library/{img1}-id"), true)
            .status_of("log-2", img2, &format!("docker.io/library/{img2}-id"), true)
            .annotation(
                labels::SIDECARSET_WORKING_HOTUPGRADE_CONTAINER,
                &json!({"log": working}).to_string(),
            )
            .annotation("version.sidecarset.kruise.io/log-1", "1")
            .annotation("versionalt.sidecarset.kruise.io/log-1", "0")
            .annotation("version.sidecarset.kruise.io/log-2", "0")
            .annotation("versionalt.sidecarset.kruise.io/log-2", "1")
    }
    pub fn build(self) -> Pod {
        serde_json::from_value(self.0).unwrap()
    }
}

pub fn snapshot(set: SidecarSet, pods: Vec<Pod>) -> Snapshot {
    Snapshot {
        sidecarset: set,
        pods,
        namespaces: BTreeMap::new(),
        latest_revision: "log-abc".into(),
        collision_count: 0,
        unobserved_pods: Vec::new(),
        now: now(),
    }
}

pub fn run(set: SidecarSet, pods: Vec<Pod>) -> Plan {
    plan(&snapshot(set, pods))
}

/// Names of the pods the plan upgrades, in order.
pub fn upgraded(p: &Plan) -> Vec<String> {
    p.actions
        .iter()
        .filter(|a| matches!(a.kind, super::PodActionKind::Upgrade { .. }))
        .map(|a| a.name.clone())
        .collect()
}

/// `n` pods `p0..` not updated.
pub fn pods(n: usize) -> Vec<Pod> {
    (0..n).map(|i| pod(&format!("p{i}")).build()).collect()
}

pub fn int(i: i32) -> IntOrString {
    IntOrString::Int(i)
}

pub fn pct(s: &str) -> IntOrString {
    IntOrString::String(s.into())
}
