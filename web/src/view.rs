//! The data of each page, computed purely from a [`Snapshot`]. The JSON API serves these
//! structures as they are; the HTML templates render the same ones.

use std::collections::BTreeMap;

use graft_api::graft::gitsync::{CommitRecord, GitSync, PhaseTimes, WorkloadProgress};
use graft_api::labels;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use serde::Serialize;

use crate::diff::Diff;
use crate::format;
use crate::pods::{self, PodRow, UpdateCounts};
use crate::snapshot::{LiveWorkload, Snapshot};
use crate::waiting;
use crate::workload::WorkloadInfo;

/// Phases in the order they happen, for phases entered within the same second. Phases not
/// listed here (added later) still show, after the known ones of the same instant.
const PHASE_ORDER: [&str; 8] = [
    "detected",
    "validated",
    "prePulling",
    "applying",
    "rollingOut",
    "healthy",
    "failed",
    "superseded",
];

/// A state for colour and its text label (colour is never the only signal).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct State {
    /// `ok`, `progress`, `fail` or `muted`.
    pub state: String,
    /// What it says.
    pub label: String,
}

impl State {
    fn new(state: &str, label: impl Into<String>) -> Self {
        State {
            state: state.into(),
            label: label.into(),
        }
    }
}

/// Percent-encodes a path segment (Kubernetes names need none, but nothing is trusted).
pub fn seg(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

// ---- overview ---------------------------------------------------------------------------------

/// The overview page: every GitSync and every workload graft manages.
#[derive(Clone, Debug, Serialize)]
pub struct Overview {
    /// GitSyncs, by namespace and name.
    pub gitsyncs: Vec<GitSyncRow>,
    /// Workloads carrying graft's owner label, by namespace, kind and name.
    pub workloads: Vec<WorkloadRow>,
}

/// A GitSync at a glance.
#[derive(Clone, Debug, Serialize)]
pub struct GitSyncRow {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Link to its timeline.
    pub href: String,
    /// Repository URL without credentials.
    pub url: String,
    /// What it follows: `branch main`, `tag v1`, `commit …`, `default branch`.
    pub git_ref: String,
    /// Path in the repository.
    pub path: String,
    /// The commit it runs (last applied).
    pub commit: Option<String>,
    /// Its first 8 characters.
    pub commit_short: String,
    /// Health and its label.
    pub health: State,
    /// The last sync's result (the Ready condition's reason and message).
    pub last_sync: String,
    /// When the Ready condition last changed.
    pub last_sync_age: String,
    /// The same in seconds (pages tick it on).
    pub last_sync_seconds: Option<f64>,
    /// The newest commit seen.
    pub head: Option<CommitRow>,
    /// Syncing is suspended.
    pub suspended: bool,
}

/// A workload at a glance.
#[derive(Clone, Debug, Serialize)]
pub struct WorkloadRow {
    /// Link to its page.
    pub href: String,
    /// Everything read from the live object.
    #[serde(flatten)]
    pub info: WorkloadInfo,
    /// Counters and percentages for the progress bar.
    pub progress: Progress,
    /// Rollout state.
    pub status: State,
    /// Why it waits, if it does.
    pub waiting: Vec<String>,
    /// What is wrong even when the rollout is done (a SidecarSet's pods created without its
    /// sidecars while graft's webhook did not answer).
    pub warnings: Vec<String>,
}

/// Counters of a rollout, with percentages for the bars.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Progress {
    /// Desired pods.
    pub replicas: i32,
    /// Updated pods.
    pub updated: i32,
    /// Ready pods.
    pub ready: i32,
    /// Available pods.
    pub available: i32,
    /// `updated` in percent of `replicas`.
    pub updated_pct: u32,
    /// `ready` in percent.
    pub ready_pct: u32,
    /// `available` in percent.
    pub available_pct: u32,
    /// A job: `replicas` nodes, `available` succeeded, `active` running, `failed` failed.
    pub job: bool,
    /// Jobs: pods running.
    pub active: i32,
    /// Jobs: pods failed.
    pub failed: i32,
}

impl Progress {
    fn new(replicas: i32, updated: i32, ready: i32, available: i32) -> Self {
        Progress {
            replicas,
            updated,
            ready,
            available,
            updated_pct: format::percent(updated, replicas),
            ready_pct: format::percent(ready, replicas),
            available_pct: format::percent(available, replicas),
            job: false,
            active: 0,
            failed: 0,
        }
    }

    /// A job's counters: `updated` is succeeded plus active, `available` succeeded.
    fn job(mut self, failed: i32) -> Self {
        self.job = true;
        self.active = (self.updated - self.available).max(0);
        self.failed = failed;
        self
    }

    fn of_record(w: &WorkloadProgress) -> Self {
        let p = Self::new(w.replicas, w.updated, w.ready, w.available);
        match graft_api::workload::WorkloadKind::find(&w.group, &w.kind) {
            Some(k) if k.counters == graft_api::workload::CounterShape::Job => p.job(w.failed),
            _ => p,
        }
    }
}

fn git_ref(gs: &GitSync) -> String {
    match &gs.spec.git_ref {
        Some(r) => match (&r.branch, &r.tag, &r.commit) {
            (Some(b), _, _) => format!("branch {b}"),
            (_, Some(t), _) => format!("tag {t}"),
            (_, _, Some(c)) => format!("commit {}", format::short_sha(c)),
            _ => "default branch".into(),
        },
        None => "default branch".into(),
    }
}

fn gitsync_href(ns: &str, name: &str) -> String {
    format!("/gitsyncs/{}/{}", seg(ns), seg(name))
}

/// A GitSync's overview row.
pub fn gitsync_row(gs: &GitSync, now: Timestamp) -> GitSyncRow {
    let ns = gs.namespace().unwrap_or_default();
    let name = gs.name_any();
    let status = gs.status.clone().unwrap_or_default();
    let ready = status
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == graft_api::graft::gitsync::CONDITION_READY);
    let history = status.history.clone().unwrap_or_default();
    let head = history
        .first()
        .map(|h| commit_row(&ns, &name, h, None, now));
    let suspended = gs.spec.suspend == Some(true);
    let health = match (ready, &head) {
        _ if suspended => State::new("muted", "Suspended"),
        (Some(c), _) if c.status == "False" => State::new("fail", "Sync failing"),
        (_, Some(h)) if h.phase == "Healthy" => State::new("ok", "Healthy"),
        (_, Some(h)) if h.phase == "Failed" => State::new("fail", "Failed"),
        (_, Some(h)) => State::new("progress", format!("{} …", h.phase_label)),
        _ => State::new("muted", "Not synced yet"),
    };
    let commit = status.last_applied_commit.clone();
    GitSyncRow {
        href: gitsync_href(&ns, &name),
        url: format::redacted_url(&gs.spec.url),
        git_ref: git_ref(gs),
        path: gs.spec.path.clone().unwrap_or_else(|| ".".into()),
        commit_short: commit.as_deref().map(format::short_sha).unwrap_or_default(),
        commit,
        health,
        last_sync: ready
            .map(|c| format::shorten_shas(&format!("{}: {}", c.reason, c.message)))
            .unwrap_or_else(|| "no sync yet".into()),
        last_sync_age: ready
            .map(|c| format::age(c.last_transition_time.0, now))
            .unwrap_or_default(),
        last_sync_seconds: ready
            .map(|c| format::seconds_between(c.last_transition_time.0, now).floor()),
        head,
        suspended,
        namespace: ns,
        name,
    }
}

/// The namespace segment of a cluster-scoped workload's address (no namespace is named `-`).
const NO_NAMESPACE: &str = "-";

fn workload_href(w: &WorkloadInfo) -> String {
    let ns = if w.cluster_scoped {
        NO_NAMESPACE
    } else {
        &w.namespace
    };
    format!(
        "/workloads/{}/{}/{}/{}",
        seg(&w.group),
        seg(&w.kind),
        seg(ns),
        seg(&w.name)
    )
}

/// The pods of a workload (same namespace, or any for a cluster-scoped kind, selected by its
/// selector).
pub fn pods_of<'a>(snap: &'a Snapshot, w: &WorkloadInfo) -> Vec<&'a Pod> {
    let mut v: Vec<&Pod> = snap
        .pods
        .iter()
        .map(|p| p.as_ref())
        .filter(|p| {
            w.cluster_scoped || p.metadata.namespace.as_deref() == Some(w.namespace.as_str())
        })
        .filter(|p| w.selects(p.metadata.labels.as_ref()))
        .collect();
    v.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    v
}

/// A workload's overview row.
pub fn workload_row(snap: &Snapshot, live: &LiveWorkload) -> WorkloadRow {
    let info = WorkloadInfo::of(live);
    let pods = pods_of(snap, &info);
    let waiting = waiting::reasons(&info, &pods);
    let warnings = missed_sidecars(live, &pods);
    let status = if !warnings.is_empty() {
        State::new("fail", "Sidecars missing")
    } else if info.job && info.failed > 0 {
        State::new("fail", "Failed")
    } else if info.job && info.is_done() {
        State::new("ok", "Completed")
    } else if info.job && !info.paused {
        State::new("progress", "Running")
    } else if info.is_done() {
        State::new("ok", "Up to date")
    } else if info.paused {
        State::new("muted", "Paused")
    } else if waiting
        .iter()
        .any(|w| !w.starts_with("maxUnavailable") && !w.starts_with("partition"))
    {
        State::new("fail", "Blocked")
    } else if info.partition.is_some()
        && info.updated >= info.replicas - info.partition.unwrap_or(0)
    {
        State::new("muted", "Held by partition")
    } else {
        State::new("progress", "Rolling out")
    };
    WorkloadRow {
        href: workload_href(&info),
        progress: {
            let p = Progress::new(info.replicas, info.updated, info.ready, info.available);
            if info.job { p.job(info.failed) } else { p }
        },
        status,
        waiting,
        warnings,
        info,
    }
}

/// Pods shown at most by name in a warning.
const NAMED_PODS: usize = 5;

/// For a SidecarSet, the warning naming the selected pods created after it without its sidecars
/// ([`graft_api::apps::v1beta1::sidecarset::missed_injection`]); nothing for other kinds.
fn missed_sidecars(live: &LiveWorkload, pods: &[&Pod]) -> Vec<String> {
    if live.kind != graft_api::workload::WorkloadKind::SIDECARSET {
        return Vec::new();
    }
    let missed: Vec<&str> = pods
        .iter()
        .filter(|p| {
            graft_api::apps::v1beta1::sidecarset::missed_injection(&live.object.metadata, p)
        })
        .filter_map(|p| p.metadata.name.as_deref())
        .collect();
    if missed.is_empty() {
        return Vec::new();
    }
    let mut names = missed[..missed.len().min(NAMED_PODS)].join(", ");
    if missed.len() > NAMED_PODS {
        names.push_str(&format!(" and {} more", missed.len() - NAMED_PODS));
    }
    vec![format!(
        "{} pod(s) created without this SidecarSet's sidecars (graft's pod webhook did not \
         answer): {names}; annotate the SidecarSet {}: \"true\" to have them recreated",
        missed.len(),
        graft_api::labels::RECREATE_NOT_INJECTED
    )]
}

/// The overview page.
pub fn overview(snap: &Snapshot) -> Overview {
    let mut gitsyncs: Vec<GitSyncRow> = snap
        .gitsyncs
        .iter()
        .map(|g| gitsync_row(g, snap.now))
        .collect();
    gitsyncs.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    let mut workloads: Vec<WorkloadRow> = snap
        .workloads
        .iter()
        .map(|w| workload_row(snap, w))
        .collect();
    workloads.sort_by(|a, b| {
        (&a.info.namespace, &a.info.kind, &a.info.name).cmp(&(
            &b.info.namespace,
            &b.info.kind,
            &b.info.name,
        ))
    });
    Overview {
        gitsyncs,
        workloads,
    }
}

// ---- timeline ---------------------------------------------------------------------------------

/// A commit in the timeline.
#[derive(Clone, Debug, Serialize)]
pub struct CommitRow {
    /// Full SHA.
    pub sha: String,
    /// First 8 characters.
    pub short: String,
    /// First line of the message.
    pub message: String,
    /// Author.
    pub author: String,
    /// Commit time (RFC 3339).
    pub time: Option<String>,
    /// Age of the commit.
    pub age: String,
    /// The same in seconds (pages tick it on).
    pub age_seconds: Option<f64>,
    /// Current phase as the API names it (`RollingOut`).
    pub phase: String,
    /// The phase in words (`rolling out`).
    pub phase_label: String,
    /// Colour state of the phase.
    pub state: String,
    /// The phases it went through, in order, with their durations.
    pub phases: Vec<PhaseStep>,
    /// From the first phase to the last (or to now while it runs).
    pub total: String,
    /// Machine-readable reason (e.g. `ValidationFailed`).
    pub reason: Option<String>,
    /// Detail (file and line for a bad manifest; the health summary otherwise).
    pub status_message: Option<String>,
    /// Number of workloads it changed.
    pub workloads: usize,
    /// Link to the commit's page.
    pub href: String,
}

/// One phase of a commit.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PhaseStep {
    /// The phase's key in `phaseTimes` (`rollingOut`).
    pub key: String,
    /// In words.
    pub label: String,
    /// When it was entered (RFC 3339).
    pub at: String,
    /// How long it lasted (until the next phase, or until now for the current one); empty for
    /// a final phase.
    pub duration: String,
    /// Seconds it lasted (0 for a final phase), for drawing.
    pub seconds: f64,
    /// Colour state.
    pub state: String,
    /// This is the commit's current phase.
    pub current: bool,
}

/// The entered phases of a commit in order: every key of `phaseTimes` that has a time, so a
/// phase added to the API shows without changes here.
pub fn phase_steps(times: &PhaseTimes, current: &str, now: Timestamp) -> Vec<PhaseStep> {
    let map = serde_json::to_value(times)
        .ok()
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default();
    let mut entered: Vec<(Timestamp, usize, String)> = map
        .iter()
        .filter_map(|(k, v)| {
            let t: Timestamp = v.as_str()?.parse().ok()?;
            let order = PHASE_ORDER
                .iter()
                .position(|p| p == k)
                .unwrap_or(PHASE_ORDER.len());
            Some((t, order, k.clone()))
        })
        .collect();
    entered.sort();
    let current_key = {
        let mut c = current.chars();
        c.next()
            .map(|f| f.to_lowercase().collect::<String>() + c.as_str())
            .unwrap_or_default()
    };
    let n = entered.len();
    entered
        .iter()
        .enumerate()
        .map(|(i, (t, _, k))| {
            let is_current = i + 1 == n && *k == current_key;
            let is_final = matches!(k.as_str(), "healthy" | "failed" | "superseded");
            let end = entered
                .get(i + 1)
                .map(|e| e.0)
                .or(if is_final { None } else { Some(now) });
            let seconds = end.map(|e| format::seconds_between(*t, e)).unwrap_or(0.0);
            PhaseStep {
                label: format::phase_label(k),
                at: t.to_string(),
                duration: end.map(|_| format::duration(seconds)).unwrap_or_default(),
                seconds,
                state: if is_current || is_final {
                    format::phase_state(k).into()
                } else {
                    "done".into()
                },
                current: is_current,
                key: k.clone(),
            }
        })
        .collect()
}

fn phase_name(record: &CommitRecord) -> String {
    serde_json::to_value(record.phase)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn commit_href(ns: &str, name: &str, sha: &str) -> String {
    format!("{}/commits/{}", gitsync_href(ns, name), seg(sha))
}

/// A commit row (`newer`: the commit after it, whose arrival ends this one's window).
pub fn commit_row(
    ns: &str,
    name: &str,
    h: &CommitRecord,
    _newer: Option<&CommitRecord>,
    now: Timestamp,
) -> CommitRow {
    let phase = phase_name(h);
    let phases = phase_steps(&h.phase_times, &phase, now);
    let total = match (phases.first(), phases.last()) {
        (Some(f), Some(l)) => {
            let start: Timestamp = f.at.parse().unwrap_or(now);
            let end: Timestamp = if h.phase.is_final() {
                l.at.parse().unwrap_or(now)
            } else {
                now
            };
            format::duration(format::seconds_between(start, end))
        }
        _ => String::new(),
    };
    CommitRow {
        short: format::short_sha(&h.sha),
        message: h.message.clone().unwrap_or_default(),
        author: h.author.clone().unwrap_or_default(),
        time: h.time.as_ref().map(|t| t.0.to_string()),
        age: h
            .time
            .as_ref()
            .map(|t| format::age(t.0, now))
            .unwrap_or_default(),
        age_seconds: h
            .time
            .as_ref()
            .map(|t| format::seconds_between(t.0, now).floor()),
        phase_label: format::phase_label(&phase),
        state: format::phase_state(&phase).into(),
        phase,
        phases,
        total,
        reason: h.reason.as_deref().map(str::to_string),
        status_message: h.status_message.clone().filter(|m| !m.is_empty()),
        workloads: h.workloads.as_ref().map_or(0, Vec::len),
        href: commit_href(ns, name, &h.sha),
        sha: h.sha.clone(),
    }
}

/// The timeline page of one GitSync.
#[derive(Clone, Debug, Serialize)]
pub struct Timeline {
    /// The GitSync.
    pub gitsync: GitSyncRow,
    /// Its commits, newest first.
    pub commits: Vec<CommitRow>,
}

/// The GitSync `ns/name`.
pub fn find_gitsync<'a>(snap: &'a Snapshot, ns: &str, name: &str) -> Option<&'a GitSync> {
    snap.gitsyncs
        .iter()
        .map(|g| g.as_ref())
        .find(|g| g.namespace().as_deref() == Some(ns) && g.name_any() == name)
}

fn history(gs: &GitSync) -> Vec<CommitRecord> {
    gs.status
        .as_ref()
        .and_then(|s| s.history.clone())
        .unwrap_or_default()
}

/// The timeline of `ns/name`, or `None` if there is no such GitSync.
pub fn timeline(snap: &Snapshot, ns: &str, name: &str) -> Option<Timeline> {
    let gs = find_gitsync(snap, ns, name)?;
    let h = history(gs);
    let commits = h
        .iter()
        .enumerate()
        .map(|(i, c)| commit_row(ns, name, c, i.checked_sub(1).map(|j| &h[j]), snap.now))
        .collect();
    Some(Timeline {
        gitsync: gitsync_row(gs, snap.now),
        commits,
    })
}

// ---- commit detail ----------------------------------------------------------------------------

/// The commit page.
#[derive(Clone, Debug, Serialize)]
pub struct CommitDetail {
    /// The GitSync.
    pub gitsync: GitSyncRow,
    /// The commit.
    pub commit: CommitRow,
    /// The previous commit in the history (what the diff compares against).
    pub previous: Option<String>,
    /// Its first 8 characters (empty without one).
    pub previous_short: String,
    /// The workloads it changed.
    pub workloads: Vec<CommitWorkload>,
    /// Pre-pull jobs of the commit.
    pub pre_pulls: Vec<PrePull>,
    /// Rendered manifests against the previous commit (filled by the server from Git).
    pub diff: Option<Diff>,
}

/// A workload a commit changed.
#[derive(Clone, Debug, Serialize)]
pub struct CommitWorkload {
    /// Group.
    pub group: String,
    /// Kind.
    pub kind: String,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Link to the workload's page (when it still exists).
    pub href: Option<String>,
    /// Live progress (or as last recorded in the history when the workload is gone).
    pub progress: Progress,
    /// Whether `progress` is live.
    pub live: bool,
    /// Rollout state.
    pub status: State,
    /// Pods updated in place, recreated, untouched (over the live pods).
    pub counts: UpdateCounts,
    /// Live pods.
    pub pods: usize,
    /// `status.updateRevision`.
    pub update_revision: Option<String>,
    /// Partition, if set.
    pub partition: Option<i32>,
    /// Paused.
    pub paused: bool,
    /// Why it waits.
    pub waiting: Vec<String>,
    /// What is wrong even when done ([`WorkloadRow::warnings`]).
    pub warnings: Vec<String>,
}

/// A pre-pull job of a commit.
#[derive(Clone, Debug, Serialize)]
pub struct PrePull {
    /// ImagePullJob name.
    pub name: String,
    /// Image.
    pub image: String,
    /// Nodes wanted / pulled / failed / pulling.
    pub desired: i32,
    /// Nodes done.
    pub succeeded: i32,
    /// Nodes failed.
    pub failed: i32,
    /// Nodes pulling.
    pub active: i32,
    /// Percentage done.
    pub pct: u32,
    /// Per node.
    pub nodes: Vec<NodePull>,
}

/// The pull of one image on one node.
#[derive(Clone, Debug, Serialize)]
pub struct NodePull {
    /// Node.
    pub node: String,
    /// `Waiting`, `Pulling`, `Succeeded`, `Failed`.
    pub phase: String,
    /// Colour state.
    pub state: String,
    /// Progress 0..100.
    pub progress: u32,
    /// Message (error).
    pub message: String,
}

fn time_of(t: &Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>) -> Option<Timestamp> {
    t.as_ref().map(|t| t.0)
}

/// Where the commit's rollout window starts: when it was applied (or detected).
fn window_start(h: &CommitRecord) -> Option<Timestamp> {
    let t = &h.phase_times;
    time_of(&t.applying)
        .or(time_of(&t.validated))
        .or(time_of(&t.detected))
}

fn find_workload<'a>(snap: &'a Snapshot, w: &WorkloadProgress) -> Option<&'a LiveWorkload> {
    snap.workloads.iter().find(|l| {
        l.kind.group == w.group
            && l.kind.kind == w.kind
            && l.object.metadata.name.as_deref() == Some(w.name.as_str())
            && l.object.metadata.namespace == w.namespace
    })
}

fn pre_pulls(snap: &Snapshot, owner: &str, sha: &str) -> Vec<PrePull> {
    let mut jobs: Vec<PrePull> = snap
        .image_pull_jobs
        .iter()
        .filter(|j| j.labels().get(labels::GRAFT_SYNC).map(String::as_str) == Some(owner))
        .filter(|j| {
            j.annotations()
                .get(labels::GRAFT_COMMIT)
                .map(String::as_str)
                == Some(sha)
        })
        .map(|j| {
            let st = j.status.clone().unwrap_or_default();
            let uid = j.uid().unwrap_or_default();
            let jname = j.name_any();
            let mut nodes: Vec<NodePull> = Vec::new();
            for ni in &snap.node_images {
                let node = ni.name_any();
                for (image, spec) in ni.spec.images.iter().flatten() {
                    for tag in &spec.tags {
                        let owned = tag.owner_references.iter().flatten().any(|o| {
                            o.uid.as_deref() == Some(uid.as_str())
                                || (o.name.as_deref() == Some(jname.as_str())
                                    && o.namespace == j.namespace())
                        });
                        if !owned {
                            continue;
                        }
                        let ts = ni
                            .status
                            .as_ref()
                            .and_then(|s| s.image_statuses.as_ref())
                            .and_then(|m| m.get(image))
                            .and_then(|s| s.tags.iter().find(|t| t.tag == tag.tag));
                        let phase = ts
                            .map(|t| format!("{:?}", t.phase))
                            .unwrap_or_else(|| "Waiting".into());
                        let state = match phase.as_str() {
                            "Succeeded" => "ok",
                            "Failed" => "fail",
                            "Pulling" => "progress",
                            _ => "muted",
                        };
                        nodes.push(NodePull {
                            node: node.clone(),
                            progress: ts
                                .and_then(|t| t.progress)
                                .map(|p| p.clamp(0, 100) as u32)
                                .unwrap_or(if phase == "Succeeded" { 100 } else { 0 }),
                            message: ts.and_then(|t| t.message.clone()).unwrap_or_default(),
                            phase,
                            state: state.into(),
                        });
                    }
                }
            }
            nodes.sort_by(|a, b| a.node.cmp(&b.node));
            PrePull {
                name: jname.clone(),
                image: j.spec.image.clone(),
                desired: st.desired,
                succeeded: st.succeeded,
                failed: st.failed,
                active: st.active,
                pct: format::percent(st.succeeded + st.failed, st.desired),
                nodes,
            }
        })
        .collect();
    jobs.sort_by(|a, b| a.name.cmp(&b.name));
    jobs
}

/// The commit `sha` of GitSync `ns/name` (the diff is left empty), or `None`.
pub fn commit_detail(snap: &Snapshot, ns: &str, name: &str, sha: &str) -> Option<CommitDetail> {
    let gs = find_gitsync(snap, ns, name)?;
    let h = history(gs);
    let i = h.iter().position(|c| c.sha == sha)?;
    let record = &h[i];
    let newer = i.checked_sub(1).map(|j| &h[j]);
    let from = window_start(record);
    let until = newer.and_then(window_start);
    let workloads = record
        .workloads
        .iter()
        .flatten()
        .map(|wp| match find_workload(snap, wp) {
            Some(live) => {
                let row = workload_row(snap, live);
                let pods = pods_of(snap, &row.info);
                let counts = from
                    .map(|f| pods::update_counts(pods.iter().copied(), f, until))
                    .unwrap_or_default();
                CommitWorkload {
                    group: wp.group.clone(),
                    kind: wp.kind.clone(),
                    namespace: wp.namespace.clone().unwrap_or_default(),
                    name: wp.name.clone(),
                    href: Some(row.href.clone()),
                    progress: row.progress.clone(),
                    live: true,
                    status: row.status.clone(),
                    counts,
                    pods: pods.len(),
                    update_revision: row.info.update_revision.clone(),
                    partition: row.info.partition,
                    paused: row.info.paused,
                    waiting: row.waiting.clone(),
                    warnings: row.warnings.clone(),
                }
            }
            None => CommitWorkload {
                group: wp.group.clone(),
                kind: wp.kind.clone(),
                namespace: wp.namespace.clone().unwrap_or_default(),
                name: wp.name.clone(),
                href: None,
                progress: Progress::of_record(wp),
                live: false,
                status: State::new("muted", "Gone"),
                counts: UpdateCounts::default(),
                pods: 0,
                update_revision: None,
                partition: None,
                paused: false,
                waiting: Vec::new(),
                warnings: Vec::new(),
            },
        })
        .collect();
    Some(CommitDetail {
        gitsync: gitsync_row(gs, snap.now),
        commit: commit_row(ns, name, record, newer, snap.now),
        previous: h.get(i + 1).map(|p| p.sha.clone()),
        previous_short: h
            .get(i + 1)
            .map(|p| format::short_sha(&p.sha))
            .unwrap_or_default(),
        workloads,
        pre_pulls: pre_pulls(snap, &format!("{ns}.{name}"), sha),
        diff: None,
    })
}

// ---- workload detail --------------------------------------------------------------------------

/// The workload page.
#[derive(Clone, Debug, Serialize)]
pub struct WorkloadDetail {
    /// The workload.
    pub workload: WorkloadRow,
    /// Its pods.
    pub pods: Vec<PodRow>,
    /// Recent events of the workload and its pods, newest first.
    pub events: Vec<EventRow>,
}

/// An event.
#[derive(Clone, Debug, Serialize)]
pub struct EventRow {
    /// Age of the last occurrence.
    pub age: String,
    /// `Normal` or `Warning`.
    #[serde(rename = "type")]
    pub type_: String,
    /// Reason.
    pub reason: String,
    /// `Kind/name` of the object.
    pub object: String,
    /// Message.
    pub message: String,
    /// Occurrences.
    pub count: i32,
}

/// Most events shown on a workload page.
pub const MAX_EVENTS: usize = 30;

/// The workload `group/kind ns/name`, or `None`.
pub fn workload_detail(
    snap: &Snapshot,
    group: &str,
    kind: &str,
    ns: &str,
    name: &str,
) -> Option<WorkloadDetail> {
    let cluster_scoped = ns == NO_NAMESPACE;
    let live = snap.workloads.iter().find(|l| {
        l.kind.group == group
            && l.kind.kind == kind
            && (cluster_scoped || l.object.metadata.namespace.as_deref() == Some(ns))
            && l.object.metadata.name.as_deref() == Some(name)
    })?;
    let row = workload_row(snap, live);
    let pods = pods_of(snap, &row.info);
    let pod_names: BTreeMap<&str, ()> = pods
        .iter()
        .filter_map(|p| p.metadata.name.as_deref())
        .map(|n| (n, ()))
        .collect();
    let mut events: Vec<(Timestamp, EventRow)> = snap
        .events
        .iter()
        .filter(|e| cluster_scoped || e.metadata.namespace.as_deref() == Some(ns))
        .filter(|e| {
            let o = &e.involved_object;
            let n = o.name.as_deref().unwrap_or_default();
            match o.kind.as_deref() {
                Some("Pod") => pod_names.contains_key(n),
                Some(k) => k == kind && n == name,
                None => false,
            }
        })
        .map(|e| {
            let t = e
                .last_timestamp
                .as_ref()
                .map(|t| t.0)
                .or(e.event_time.as_ref().map(|t| t.0))
                .or(e.metadata.creation_timestamp.as_ref().map(|t| t.0))
                .unwrap_or(snap.now);
            (
                t,
                EventRow {
                    age: format::age(t, snap.now),
                    type_: e.type_.clone().unwrap_or_default(),
                    reason: e.reason.clone().unwrap_or_default(),
                    object: format!(
                        "{}/{}",
                        e.involved_object.kind.clone().unwrap_or_default(),
                        e.involved_object.name.clone().unwrap_or_default()
                    ),
                    message: e.message.clone().unwrap_or_default(),
                    count: e.count.unwrap_or(1),
                },
            )
        })
        .collect();
    events.sort_by_key(|e| std::cmp::Reverse(e.0));
    events.truncate(MAX_EVENTS);
    let rev = row.info.update_revision.clone();
    Some(WorkloadDetail {
        pods: pods
            .iter()
            .map(|p| pods::row(p, rev.as_deref(), snap.now))
            .collect(),
        events: events.into_iter().map(|(_, e)| e).collect(),
        workload: row,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;
    use serde_json::json;

    fn t(s: &str) -> Timestamp {
        s.parse().expect("time")
    }

    #[test]
    fn phases_in_time_order_with_known_order_for_ties_and_the_current_one_running() {
        let times: PhaseTimes = serde_json::from_value(json!({
            "applying": "2026-01-01T00:00:00Z",
            "detected": "2026-01-01T00:00:00Z",
            "validated": "2026-01-01T00:00:00Z",
            "rollingOut": "2026-01-01T00:00:05Z",
        }))
        .expect("times");
        let steps = phase_steps(&times, "RollingOut", t("2026-01-01T00:01:05Z"));
        let keys: Vec<&str> = steps.iter().map(|s| s.key.as_str()).collect();
        assert_eq!(keys, ["detected", "validated", "applying", "rollingOut"]);
        assert_eq!(steps[2].duration, "5.0s");
        assert!(steps[3].current);
        assert_eq!(
            steps[3].duration, "1m 00s",
            "the running phase lasts until now"
        );
        assert_eq!(steps[3].state, "progress");
        assert_eq!(steps[0].state, "done");
    }

    #[test]
    fn final_phases_have_no_duration_and_their_own_state() {
        let times: PhaseTimes = serde_json::from_value(json!({
            "detected": "2026-01-01T00:00:00Z",
            "superseded": "2026-01-01T00:00:09Z",
        }))
        .expect("times");
        let steps = phase_steps(&times, "Superseded", t("2026-01-02T00:00:00Z"));
        assert_eq!(steps[0].duration, "9.0s");
        assert_eq!(steps[1].duration, "");
        assert_eq!(steps[1].state, "muted");
        assert_eq!(steps[1].label, "superseded");
    }

    #[test]
    fn gitsync_health_reads_ready_suspend_and_the_newest_commit() {
        let now = t("2026-01-01T01:00:00Z");
        let base = t("2026-01-01T00:00:00Z");
        let healthy = fixtures::commit("a", "m", "Healthy", base, 0, "ns");
        let rolling = fixtures::commit("b", "m", "RollingOut", base, 10, "ns");
        let row =
            |history, ready| gitsync_row(&fixtures::gitsync("ns", "app", history, ready), now);
        assert_eq!(row(vec![healthy.clone()], true).health.label, "Healthy");
        assert_eq!(
            row(vec![rolling.clone(), healthy.clone()], true)
                .health
                .label,
            "rolling out …"
        );
        assert_eq!(row(vec![rolling], false).health.label, "Sync failing");
        assert_eq!(row(vec![], true).health.state, "muted");
        let mut gs = (*fixtures::gitsync("ns", "app", vec![healthy], true)).clone();
        gs.spec.suspend = Some(true);
        assert_eq!(gitsync_row(&gs, now).health.label, "Suspended");
    }

    /// SidecarSets are cluster-scoped: their address has `-` for a namespace, and their pods
    /// are found in every namespace.
    #[test]
    fn a_sidecarset_selects_pods_in_every_namespace() {
        let now = t("2026-03-01T12:00:00Z");
        let mut snap = Snapshot::empty(now);
        snap.workloads.push(LiveWorkload {
            kind: graft_api::workload::WorkloadKind::SIDECARSET,
            object: std::sync::Arc::new(
                serde_json::from_value(json!({
                    "apiVersion": "apps.kruise.io/v1alpha1", "kind": "SidecarSet",
                    "metadata": {"name": "log", "labels": {"graft.dev/gitsync": "team.app"}},
                    "spec": {"selector": {"matchLabels": {"app": "web"}}},
                    "status": {"matchedPods": 2, "updatedPods": 2, "readyPods": 2,
                               "updatedReadyPods": 2}
                }))
                .expect("SidecarSet"),
            ),
        });
        for (ns, name, app) in [
            ("a", "web-1", "web"),
            ("b", "web-2", "web"),
            ("a", "db-1", "db"),
        ] {
            snap.pods.push(fixtures::pod(
                ns,
                name,
                app,
                "r1",
                "2026-03-01T11:00:00Z",
                None,
            ));
        }
        let row = workload_row(&snap, &snap.workloads[0]);
        assert_eq!(row.href, "/workloads/apps.kruise.io/SidecarSet/-/log");
        assert_eq!(row.status.label, "Up to date");
        let d = workload_detail(&snap, "apps.kruise.io", "SidecarSet", "-", "log").expect("detail");
        let pods: Vec<&str> = d.pods.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(pods, ["web-1", "web-2"]);
    }

    /// A pod created after the SidecarSet without it in its injected list (graft's webhook did
    /// not answer) is named on the SidecarSet's row, which says so even with the rollout done;
    /// injected pods, pods older than the SidecarSet and opted-out pods are not.
    #[test]
    fn a_sidecarset_row_names_the_pods_created_without_its_sidecars() {
        let now = t("2026-03-01T12:00:00Z");
        let mut snap = Snapshot::empty(now);
        snap.workloads.push(LiveWorkload {
            kind: graft_api::workload::WorkloadKind::SIDECARSET,
            object: std::sync::Arc::new(
                serde_json::from_value(json!({
                    "apiVersion": "apps.kruise.io/v1beta1", "kind": "SidecarSet",
                    "metadata": {"name": "log", "creationTimestamp": "2026-03-01T10:00:00Z"},
                    "spec": {"selector": {"matchLabels": {"app": "web"}}},
                    "status": {"matchedPods": 1, "updatedPods": 1, "readyPods": 1,
                               "updatedReadyPods": 1}
                }))
                .expect("SidecarSet"),
            ),
        });
        let with = |name: &str, created: &str, f: &dyn Fn(&mut Pod)| {
            let mut p = (*fixtures::pod("a", name, "web", "r1", created, None)).clone();
            f(&mut p);
            std::sync::Arc::new(p)
        };
        let annotate = |p: &mut Pod| {
            p.metadata.annotations.get_or_insert_default().insert(
                "kruise.io/sidecarset-injected-list".into(),
                "other,log".into(),
            );
        };
        snap.pods = vec![
            with("injected", "2026-03-01T11:00:00Z", &annotate),
            with("older", "2026-03-01T09:00:00Z", &|_| {}),
            with("missed", "2026-03-01T11:00:00Z", &|_| {}),
            with("opted-out", "2026-03-01T11:00:00Z", &|p| {
                p.metadata
                    .labels
                    .get_or_insert_default()
                    .insert("graft.dev/admission".into(), "disabled".into());
            }),
        ];
        let row = workload_row(&snap, &snap.workloads[0]);
        assert_eq!(row.status.label, "Sidecars missing");
        assert_eq!(row.warnings.len(), 1, "{:?}", row.warnings);
        assert!(
            row.warnings[0].starts_with("1 pod(s) created without this SidecarSet's sidecars")
                && row.warnings[0].contains(": missed;")
                && row.warnings[0].contains("graft.dev/recreate-not-injected"),
            "{}",
            row.warnings[0]
        );
        snap.pods
            .retain(|p| p.metadata.name.as_deref() != Some("missed"));
        let row = workload_row(&snap, &snap.workloads[0]);
        assert!(row.warnings.is_empty(), "{:?}", row.warnings);
        assert_eq!(row.status.label, "Up to date");
    }

    #[test]
    fn hrefs_percent_encode_names() {
        assert_eq!(seg("a b/<c>"), "a%20b%2F%3Cc%3E");
        assert_eq!(seg("web-1.x_y"), "web-1.x_y");
    }
}
