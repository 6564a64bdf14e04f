//! Helpers shared by the lab integration tests (real hosts, real ssh).

#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

use kprov_lab::LabStatus;

/// A lab name unique to this test run and test.
pub fn unique_name(tag: &str) -> String {
    format!("t{}{tag}", std::process::id() % 100_000)
}

/// Takes the lab down when the test ends, also when it fails.
pub struct DownOnDrop(pub String);

impl Drop for DownOnDrop {
    fn drop(&mut self) {
        if let Err(e) = kprov_lab::down(&self.0) {
            eprintln!("cleanup of lab {} failed: {e}", self.0);
        }
    }
}

/// Runs `command` on `host` with the system `ssh` and the lab's key.
pub fn ssh(lab: &str, host: &str, command: &[&str]) -> Output {
    let command: Vec<String> = command.iter().map(|s| s.to_string()).collect();
    let argv = kprov_lab::ssh_argv(lab, host, &command).expect("ssh argv");
    assert_eq!(argv[0], "ssh");
    Command::new(&argv[0])
        .args(&argv[1..])
        .output()
        .expect("run ssh")
}

/// Runs `command` on `host` with `input` as its stdin; panics with stderr when it fails.
pub fn ssh_with_input(lab: &str, host: &str, command: &[&str], input: &[u8]) -> String {
    use std::io::Write;
    let command: Vec<String> = command.iter().map(|s| s.to_string()).collect();
    let argv = kprov_lab::ssh_argv(lab, host, &command).expect("ssh argv");
    let mut child = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run ssh");
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "ssh {host} {command:?} failed: {}\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `command` on `host` and returns its stdout; panics with stderr when it fails.
pub fn ssh_ok(lab: &str, host: &str, command: &[&str]) -> String {
    let out = ssh(lab, host, command);
    assert!(
        out.status.success(),
        "ssh {host} {command:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whether `pid` is a live (not zombie) process.
pub fn alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state is the first field after the parenthesised command name.
    let state = stat.rsplit_once(')').map(|(_, rest)| rest.trim_start());
    !state.is_some_and(|s| s.starts_with('Z') || s.starts_with('X'))
}

/// Asserts that nothing of the lab remains on the machine.
pub fn assert_gone(status: &LabStatus, repo_pid: Option<u32>) {
    let name = &status.name;
    let state_dir = Path::new("/var/lib/kprov/lab").join(name);
    assert!(
        !state_dir.exists(),
        "state dir {} remains",
        state_dir.display()
    );
    for host in &status.hosts {
        if let Some(pid) = host.pid {
            assert!(!alive(pid), "host {} (pid {pid}) still runs", host.name);
        }
    }
    if let Some(pid) = repo_pid {
        assert!(!alive(pid), "repo server (pid {pid}) still runs");
    }
    // No process anywhere still belongs to a cgroup of the lab.
    let marker = format!("/kprov-lab/{name}/");
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cgroups = std::fs::read_to_string(entry.path().join("cgroup")).unwrap_or_default();
        assert!(
            !cgroups.contains(&marker) || !alive(pid),
            "pid {pid} is still in a cgroup of lab {name}: {cgroups}"
        );
    }
    for hierarchy in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let dir = hierarchy.path().join("kprov-lab").join(name);
        assert!(!dir.exists(), "cgroup {} remains", dir.display());
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&state_dir.display().to_string()),
        "mounts under {} remain",
        state_dir.display()
    );
    let prefix = format!("kprov-{name}-");
    if let Ok(entries) = std::fs::read_dir("/run/netns") {
        for entry in entries.flatten() {
            let ns = entry.file_name().to_string_lossy().into_owned();
            assert!(!ns.starts_with(&prefix), "netns {ns} remains");
        }
    }
    assert!(
        !Path::new("/sys/class/net").join(&status.bridge).exists(),
        "bridge {} remains",
        status.bridge
    );
    let subnet = status.gateway.to_string();
    let third = subnet.split('.').nth(2).unwrap();
    for link in std::fs::read_dir("/sys/class/net").unwrap().flatten() {
        let link = link.file_name().to_string_lossy().into_owned();
        assert!(
            !link.starts_with(&format!("kpv{third}-")),
            "veth {link} remains"
        );
    }
    assert!(
        !forward_rule_present(&status.bridge),
        "iptables FORWARD rule for {} remains",
        status.bridge
    );
    let routes = Command::new("ip").args(["-4", "route"]).output().unwrap();
    let routes = String::from_utf8_lossy(&routes.stdout);
    let net = format!("172.30.{third}.0/24");
    assert!(!routes.contains(&net), "route to {net} remains: {routes}");
}

/// Whether the machine's iptables lets traffic pass within `bridge` (false without iptables).
pub fn forward_rule_present(bridge: &str) -> bool {
    Command::new("iptables")
        .args([
            "-w", "-C", "FORWARD", "-i", bridge, "-o", bridge, "-j", "ACCEPT",
        ])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Whether the machine has iptables.
pub fn have_iptables() -> bool {
    Command::new("iptables").arg("--version").output().is_ok()
}
