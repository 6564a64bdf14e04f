//! Asserting that nothing is left behind: mounts, namespace pins, IPs,
//! monitor, pod init and container processes, cgroups, runc state, veths.

use super::agent::TestAgent;
use std::process::Command;

/// Panics with a list of everything the agent left behind.
pub fn assert_no_leaks(a: &TestAgent) {
    let mut leaks = Vec::new();
    let dir = a.path().display().to_string();
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    for l in mountinfo.lines().filter(|l| l.contains(&dir)) {
        leaks.push(format!("mount: {l}"));
    }
    if let Ok(rd) = std::fs::read_dir(a.ipam_dir()) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("10.") {
                leaks.push(format!("IP allocation: {name}"));
            }
        }
    }
    for p in std::fs::read_dir("/proc").unwrap().flatten() {
        let cmd = std::fs::read(p.path().join("cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if (cmd.contains("__monitor") || cmd.contains("__pod-init")) && cmd.contains(&dir) {
            leaks.push(format!(
                "monitor process {}: {cmd}",
                p.file_name().to_string_lossy()
            ));
        }
    }
    for ctrl in ["memory", "cpu", "pids"] {
        let base = format!("/sys/fs/cgroup/{ctrl}{}", a.cgroup_parent);
        if let Ok(rd) = std::fs::read_dir(&base) {
            for e in rd.flatten() {
                if e.file_name().to_string_lossy().starts_with("kprov-") && e.path().is_dir() {
                    leaks.push(format!("cgroup {}", e.path().display()));
                }
            }
        }
    }
    let runc = Command::new("runc")
        .args(["--root", &format!("{dir}/run/runc"), "list", "-q"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    if !runc.is_empty() {
        leaks.push(format!("runc containers: {runc}"));
    }
    let veths = Command::new("ip")
        .args(["-o", "link", "show", "master", &a.bridge])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    if !veths.is_empty() {
        leaks.push(format!("veths on {}: {veths}", a.bridge));
    }
    let ns_pins: Vec<_> = walk(&a.path().join("run/sandboxes"));
    if !ns_pins.is_empty() {
        leaks.push(format!("sandbox files: {ns_pins:?}"));
    }
    assert!(leaks.is_empty(), "leaks:\n{}", leaks.join("\n"));
    // Remove the empty test cgroup parents.
    for ctrl in [
        "memory", "cpu", "cpuacct", "pids", "cpuset", "blkio", "devices", "freezer", "systemd",
        "unified",
    ] {
        let _ = std::fs::remove_dir(format!("/sys/fs/cgroup/{ctrl}{}", a.cgroup_parent));
    }
}

fn walk(p: &std::path::Path) -> Vec<String> {
    let mut v = Vec::new();
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            v.push(e.path().display().to_string());
        }
    }
    v
}
