//! The real OpenKruise (kruise-manager 1.9.1 of `deploy/kruise/build.sh`) on the local cluster for
//! one test: [`Kruise::up`] runs `deploy/kruise/kruise up` in the test's turn on the cluster, and
//! `deploy/kruise/kruise down` runs when the guard is dropped, also while a failed test unwinds.
//!
//! While it is installed its webhooks apply to every namespace and its controllers act on every
//! CloneSet and Advanced StatefulSet, so `up` first waits until no other cluster test run, benchmark
//! or OpenKruise install is using the cluster (the rule of `bench/lib/exclusive.sh`, widened).

use std::path::PathBuf;
use std::time::{Duration, Instant};

/// What other cluster test runs look like to `pgrep -f` (wider than the pattern
/// `bench/lib/exclusive.sh` waits on, `cargo test --features cluster-tests`, which this test's own
/// run matches, so benchmarks wait for it).
const CLUSTER_TESTS: &str = "cargo test .*cluster-tests";
/// Present while a benchmark has its turn on the cluster (`bench/lib/exclusive.sh`).
const BENCH_MARKER: &str = "/tmp/bench-running";
/// Benchmark scripts, which use the cluster without a marker (`pgrep -f`).
const BENCHMARKS: &str = "bench/[a-z_]+\\.sh";
/// How long `up` waits for its turn before failing.
const TURN_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// How long the cluster must have been free of other users before `up` installs.
const QUIET: Duration = Duration::from_secs(5);

/// OpenKruise installed by `deploy/kruise/kruise up`; removed again (`down`) when dropped.
pub struct Kruise {
    installed: bool,
}

impl Kruise {
    /// Waits for the cluster to be free of other users, then installs OpenKruise and waits until
    /// its webhooks answer. Panics (after removing whatever was installed) if that fails.
    pub async fn up() -> Kruise {
        wait_for_turn().await;
        if std::path::Path::new(&state_dir())
            .join("installed")
            .exists()
        {
            panic!(
                "OpenKruise is already installed by someone else (state in {}); not touching it",
                state_dir()
            );
        }
        // From here on a failure must remove what `up` installed.
        let guard = Kruise { installed: true };
        if let Err(e) = run("up").await {
            panic!("deploy/kruise/kruise up: {e}");
        }
        guard
    }

    /// Removes OpenKruise (`deploy/kruise/kruise down`: webhooks first, graft's CRDs restored and
    /// checked). Panics if the cluster is not as it was before.
    pub async fn down(mut self) {
        self.installed = false;
        if let Err(e) = down().await {
            panic!("deploy/kruise/kruise down: {e}");
        }
    }
}

impl Drop for Kruise {
    fn drop(&mut self) {
        if !self.installed {
            return;
        }
        // Drop cannot await: down from a helper thread with its own runtime, as TestNamespace
        // does, so this also runs while a failed test unwinds.
        let done = std::thread::spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
                .and_then(|rt| rt.block_on(down()))
        })
        .join();
        match done {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("deploy/kruise/kruise down (while unwinding): {e}"),
            Err(_) => eprintln!("deploy/kruise/kruise down (while unwinding) panicked"),
        }
    }
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("deploy/kruise/kruise")
}

fn state_dir() -> String {
    std::env::var("KRUISE_STATE").unwrap_or_else(|_| "/run/graft-kruise".to_string())
}

fn kruise_marker() -> String {
    std::env::var("KRUISE_MARKER").unwrap_or_else(|_| "/tmp/kruise-installed".to_string())
}

/// `deploy/kruise/kruise down`, up to three times: it resumes from its state, and its storage
/// migration (`kubectl replace` of every object of graft's kinds) fails on a conflict when another
/// controller writes one of them meanwhile.
async fn down() -> Result<(), String> {
    let mut failures = Vec::new();
    for _ in 0..3 {
        match run("down").await {
            Ok(()) => return Ok(()),
            Err(e) => {
                eprintln!("deploy/kruise/kruise down failed ({e}); running it again");
                failures.push(e);
            }
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    Err(format!("failed 3 times: {}", failures.join("; ")))
}

/// Runs `deploy/kruise/kruise <command>`, its progress on this process's stderr.
async fn run(command: &str) -> Result<(), String> {
    let status = tokio::process::Command::new(script())
        .arg(command)
        .stdin(std::process::Stdio::null())
        .status()
        .await
        .map_err(|e| format!("running {}: {e}", script().display()))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "{status} (kruise-manager's log: /var/log/graft-kruise/kruise-manager.log)"
        ))
    }
}

/// Waits until, for [`QUIET`] in a row, no other user is on the cluster: no other `cargo test
/// --features cluster-tests` (this run's own processes excepted), no benchmark in its turn, no
/// other OpenKruise install.
async fn wait_for_turn() {
    let start = Instant::now();
    let mut quiet_since: Option<Instant> = None;
    let mut last_said: Option<Instant> = None;
    loop {
        let others = other_users();
        if others.is_empty() {
            let since = *quiet_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= QUIET {
                return;
            }
        } else {
            quiet_since = None;
            if last_said.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
                eprintln!(
                    "kruise test: waiting for the cluster to be free before installing OpenKruise: {}",
                    others.join("; ")
                );
                last_said = Some(Instant::now());
            }
            if start.elapsed() > TURN_TIMEOUT {
                panic!(
                    "the cluster was not free for OpenKruise after {TURN_TIMEOUT:?}: {}",
                    others.join("; ")
                );
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Who else uses the cluster now, one description each.
fn other_users() -> Vec<String> {
    let mut others = Vec::new();
    for marker in [BENCH_MARKER.to_string(), kruise_marker()] {
        if std::path::Path::new(&marker).exists() {
            others.push(format!("{marker} exists"));
        }
    }
    let ours = ancestors();
    for (what, pattern) in [
        ("other cluster test runs", CLUSTER_TESTS),
        ("benchmarks", BENCHMARKS),
    ] {
        let Ok(out) = std::process::Command::new("pgrep")
            .args(["-f", pattern])
            .output()
        else {
            continue;
        };
        let pids = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|p| p.parse::<u32>().ok())
            .filter(|p| !ours.contains(p))
            .collect::<Vec<_>>();
        if !pids.is_empty() {
            others.push(format!("{what} (pgrep -f '{pattern}': {pids:?})"));
        }
    }
    others
}

/// This process and its ancestors (the cargo, shell and make that started it).
fn ancestors() -> Vec<u32> {
    let mut pids = vec![std::process::id()];
    let mut pid = std::os::unix::process::parent_id();
    while pid > 1 && !pids.contains(&pid) {
        pids.push(pid);
        pid = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            // `pid (comm) state ppid …`: comm may hold spaces and parentheses.
            .and_then(|s| {
                s.rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse().ok())
            })
            .unwrap_or(0);
    }
    pids
}
