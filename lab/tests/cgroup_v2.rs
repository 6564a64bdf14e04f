//! Lab hosts on a machine with cgroup2 only at /sys/fs/cgroup. This machine may mount
//! cgroups differently, so the test re-runs itself in a private mount namespace where
//! cgroup2 is mounted at /sys/fs/cgroup. Run as root.

mod common;

use std::process::Command;

use common::{assert_gone, ssh_ok, unique_name, DownOnDrop};
use kprov_lab::UpOptions;

const CHILD: &str = "lab_hosts_on_cgroup2_only_child";

#[test]
fn lab_hosts_on_cgroup2_only() {
    let exe = std::env::current_exe().expect("test binary");
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg("mount -t cgroup2 cgroup2 /sys/fs/cgroup && exec \"$@\"")
        .arg("sh")
        .arg(exe)
        .args([
            "--ignored",
            "--exact",
            CHILD,
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .output()
        .expect("run unshare");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "child test failed:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("1 passed"),
        "child test did not run:\n{stdout}\n{stderr}"
    );
}

#[test]
#[ignore = "run by lab_hosts_on_cgroup2_only in a mount namespace with cgroup2 at /sys/fs/cgroup"]
fn lab_hosts_on_cgroup2_only_child() {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    assert!(
        mounts
            .lines()
            .any(|l| l.starts_with("cgroup2 /sys/fs/cgroup ")),
        "not in a cgroup2-only mount namespace"
    );
    let name = unique_name("v");
    let _guard = DownOnDrop(name.clone());
    let status = kprov_lab::up(&UpOptions {
        name: name.clone(),
        hosts: 2,
        mirror: None,
    })
    .expect("lab up");
    assert!(status.all_ready(), "{status:#?}");
    for host in &status.hosts {
        let out = ssh_ok(
            &name,
            &host.name,
            &["sh", "-c", "hostname; systemctl is-system-running; stat -f -c %T /sys/fs/cgroup; cat /proc/1/cgroup"],
        );
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], host.name);
        assert_eq!(lines[1], "running", "{out}");
        assert_eq!(lines[2], "cgroup2fs", "{out}");
        assert!(lines.contains(&"0::/init.scope"), "{out}");
    }
    // The host's cgroup holds the launcher and the payload (systemd's namespace root).
    let host_cgroup = format!("/sys/fs/cgroup/kprov-lab/{name}/master");
    assert!(std::path::Path::new(&host_cgroup)
        .join("payload/init.scope")
        .is_dir());
    let launcher_procs =
        std::fs::read_to_string(format!("{host_cgroup}/launcher/cgroup.procs")).unwrap();
    assert_eq!(launcher_procs.lines().count(), 1, "{launcher_procs}");
    kprov_lab::down(&name).expect("lab down");
    assert_gone(&status, None);
}
