//! A host that goes silent mid-run (its network blackholed) is given up as unreachable
//! after the keepalive window, exit 4, while the other host finishes; once it answers
//! again, its run lock is free for the next apply.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{events, kprov, Lab};

const PLAYBOOK: &str = "- name: work
  hosts: all
  tasks:
    - name: long on node1
      when: inventory_hostname == \"node1\"
      timeout: 300
      shell: { script: \"touch /root/kprov-sleeping; sleep 120\" }
    - name: short on master
      when: inventory_hostname == \"master\"
      shell: { script: \"sleep 2\" }
    - name: after
      copy: { path: /root/kprov-after, content: \"x\\n\" }
";

fn ip(args: &[&str]) {
    let status = Command::new("ip").args(args).status().unwrap();
    assert!(status.success(), "ip {args:?}");
}

#[test]
fn a_blackholed_host_is_unreachable_within_the_keepalive_window_and_the_others_finish() {
    let lab = Lab::up("silent", 2);
    let dir = tempfile::tempdir().unwrap();
    let playbook = dir.path().join("work.yaml");
    std::fs::write(&playbook, PLAYBOOK).unwrap();
    // The machine side of node1's veth: kpv<subnet>-<index> for 172.30.<subnet>.<10+index>.
    let address = lab.address("node1");
    let subnet = address.split('.').nth(2).unwrap();
    let veth = format!("kpv{subnet}-1");
    let upper = std::path::Path::new("/var/lib/kprov/lab")
        .join(&lab.name)
        .join("hosts/node1/upper/root");
    let _ = std::fs::remove_file(upper.join("kprov-sleeping"));

    let child = Command::new(env!("CARGO_BIN_EXE_kprov"))
        .args([
            "apply",
            playbook.to_str().unwrap(),
            "-i",
            lab.inventory_str(),
            "--output",
            "json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !upper.join("kprov-sleeping").exists() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "node1 never slept"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    ip(&["link", "set", &veth, "down"]);
    let silent_at = Instant::now();
    let out = child.wait_with_output().unwrap();
    let took = silent_at.elapsed();
    ip(&["link", "set", &veth, "up"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("kprov ended {took:?} after node1 went silent");
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("host stopped answering (no keepalive reply for 30 s)"),
        "{stderr}"
    );
    // ServerAliveInterval 10 s × ServerAliveCountMax 3, plus at most one interval.
    assert!(
        took >= Duration::from_secs(25) && took < Duration::from_secs(50),
        "{took:?}"
    );
    let evs = events(&out.stdout);
    let done = |host: &str| {
        evs.iter()
            .find(|e| e["event"] == "host_done" && e["host"] == host)
            .unwrap_or_else(|| panic!("host_done for {host}"))
            .clone()
    };
    assert_eq!(done("node1")["counts"]["unreachable"], 1, "{evs:?}");
    assert!(done("node1")["counts"].get("failed").is_none(), "{evs:?}");
    let master = done("master");
    assert!(master["counts"].get("failed").is_none(), "{master}");
    assert!(master["counts"].get("unreachable").is_none(), "{master}");
    let run_done = evs.iter().find(|e| e["event"] == "run_done").unwrap();
    assert_eq!(run_done["unreachable"], 1, "{run_done}");
    assert_eq!(run_done["failed"], 0, "{run_done}");

    // Back on the network: node1's sshd learns that the old connection is gone (the lock
    // holder's heartbeat meets a reset), so its lock is free for the next apply.
    let quick = dir.path().join("quick.yaml");
    std::fs::write(
        &quick,
        "- name: q\n  hosts: all\n  tasks:\n    - name: t\n      copy: { path: /root/kprov-quick, content: \"x\\n\" }\n",
    )
    .unwrap();
    let asked = Instant::now();
    let next = kprov(&[
        "apply",
        quick.to_str().unwrap(),
        "-i",
        lab.inventory_str(),
        "--lock-timeout",
        "40",
    ]);
    eprintln!(
        "next apply after the network came back took {:?}",
        asked.elapsed()
    );
    assert_eq!(
        next.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&next.stderr)
    );
}
