//! Ctrl-C in the middle of `kprov apply` on a real lab host: kprov says "interrupted",
//! prints the recap, exits 130, the remote command is gone from the host and no ssh master
//! is left on this machine.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Lab;

const LAB: &str = "intr";

/// Command lines of every process on this machine (lab hosts' processes included: their
/// PID namespaces are children of ours).
fn processes() -> Vec<(u32, String)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Ok(raw) = std::fs::read(entry.path().join("cmdline")) {
            let line = String::from_utf8_lossy(&raw).replace('\0', " ");
            out.push((pid, line.trim().to_string()));
        }
    }
    out
}

#[test]
fn sigint_mid_apply_ends_the_remote_command_and_the_ssh_masters() {
    let lab = Lab::up(LAB, 1);
    let address = lab.address("master");
    let dir = tempfile::tempdir().unwrap();
    let playbook = dir.path().join("sleep.yaml");
    // A duration no other process on this machine uses, to find it again.
    std::fs::write(
        &playbook,
        "- name: long\n  hosts: all\n  tasks:\n    - name: marker\n      copy: { path: /root/kprov-before, content: \"x\\n\" }\n    - name: sleeps\n      timeout: 900\n      shell: { script: \"echo $$ > /root/kprov-sleeper; exec sleep 3017\" }\n    - name: never\n      copy: { path: /root/kprov-after, content: \"x\\n\" }\n",
    )
    .unwrap();
    let upper = Path::new("/var/lib/kprov/lab")
        .join(&lab.name)
        .join("hosts/master/upper/root");
    let mut child = Command::new(env!("CARGO_BIN_EXE_kprov"))
        .args([
            "apply",
            playbook.to_str().unwrap(),
            "-i",
            lab.inventory_str(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !upper.join("kprov-sleeper").exists() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the remote command never started"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_millis(500));
    let sleeping = |p: &(u32, String)| p.1 == "sleep 3017";
    assert!(processes().iter().any(sleeping), "sleep runs on the host");

    let interrupted_at = Instant::now();
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = loop {
        if child.try_wait().unwrap().is_some() {
            break child.wait_with_output().unwrap();
        }
        assert!(
            interrupted_at.elapsed() < Duration::from_secs(30),
            "kprov did not exit after SIGINT"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted (SIGINT)"), "{stderr}");
    assert!(stderr.contains("RECAP (interrupted)"), "{stderr}");
    assert!(stderr.contains("not finished: master"), "{stderr}");
    // The grace period (5 s) plus ending the command, not the sleep's 3017 s.
    assert!(interrupted_at.elapsed() < Duration::from_secs(15));

    // Nothing of the run is left: not the remote script, not an ssh master.
    std::thread::sleep(Duration::from_millis(500));
    let left: Vec<(u32, String)> = processes()
        .into_iter()
        .filter(|p| sleeping(p) || (p.1.starts_with("ssh ") && p.1.contains(&address)))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    assert!(upper.join("kprov-before").exists());
    assert!(
        !upper.join("kprov-after").exists(),
        "no task starts after the interrupt"
    );
}
