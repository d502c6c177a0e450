//! `deploy/local/cluster down` leaves nothing behind: no process, mount, network device, firewall
//! rule or changed kernel setting. `make test` runs this last; it takes the cluster down.
#![cfg(feature = "cluster-down-tests")]

use std::path::Path;
use std::process::Command;

const STATE: &str = "/var/lib/graft-local";
const RUN: &str = "/run/graft-local";

fn cache() -> String {
    std::env::var("GRAFT_CACHE").unwrap_or_else(|_| "/var/cache/graft".to_string())
}

fn read(path: impl AsRef<Path>) -> String {
    std::fs::read_to_string(path.as_ref()).unwrap_or_default()
}

fn processes() -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let cmdline = read(entry.path().join("cmdline")).replace('\0', " ");
        if !cmdline.is_empty() {
            out.push(cmdline);
        }
    }
    out
}

#[test]
fn down_leaves_no_process_mount_device_or_kernel_setting_behind() {
    let snapshot = read(format!("{}/host-snapshot/sysctl", cache()));
    assert!(
        !snapshot.is_empty(),
        "no host snapshot in {}/host-snapshot: the cluster is not up (run `deploy/local/cluster up`)",
        cache()
    );
    let status = Command::new("deploy/local/cluster")
        .arg("down")
        .status()
        .expect("run deploy/local/cluster down");
    assert!(status.success(), "cluster down failed: {status}");

    let mut left = Vec::new();
    for p in processes() {
        let ours = [
            "kube-apiserver",
            "kube-controller-manager",
            "kube-scheduler",
            "kubelet ",
            "kube-proxy",
        ]
        .iter()
        .any(|b| p.contains(&format!("/{b}")))
            || p.contains(STATE)
            || p.contains(RUN)
            || p.contains("/etcd --name=graft-local");
        if ours {
            left.push(format!("process: {p}"));
        }
    }
    for line in read("/proc/self/mounts").lines() {
        let target = line.split_whitespace().nth(1).unwrap_or_default();
        if target.starts_with(STATE)
            || target.starts_with(RUN)
            || target.starts_with("/run/netns/cni-")
        {
            left.push(format!("mount: {line}"));
        }
    }
    for dev in std::fs::read_dir("/sys/class/net")
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = dev.file_name().to_string_lossy().to_string();
        if name == "cni0" || name.starts_with("veth") {
            left.push(format!("network device: {name}"));
        }
    }
    for cg in ["memory", "cpu", "pids", "cpuset", "freezer"] {
        if Path::new(&format!("/sys/fs/cgroup/{cg}/kubepods")).exists() {
            left.push(format!("cgroup: /sys/fs/cgroup/{cg}/kubepods"));
        }
    }
    for dir in [STATE, RUN] {
        if Path::new(dir).exists() {
            left.push(format!("directory: {dir}"));
        }
    }
    for line in snapshot.lines() {
        let Some((key, before)) = line.split_once('=') else {
            continue;
        };
        let now = read(format!("/proc/sys/{}", key.replace('.', "/")));
        if now.trim() != before.trim() {
            left.push(format!("sysctl {key}: {} (was {before})", now.trim()));
        }
    }
    let rules = Command::new("nft")
        .args(["list", "ruleset"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
        .unwrap_or_default();
    if rules.contains("KUBE-") || rules.contains("graft-local") {
        left.push("firewall: KUBE-* or graft-local rules remain".to_string());
    }
    assert!(
        left.is_empty(),
        "cluster down left behind:\n{}",
        left.join("\n")
    );
}
