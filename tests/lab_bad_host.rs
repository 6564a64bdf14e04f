//! A `lab:` inventory with one host whose sshd is down: the healthy host is worked on at
//! once and the bad one is reported unreachable (exit 4), instead of the whole run
//! waiting 120 s for the lab and then doing nothing.

mod common;

use std::time::{Duration, Instant};

use common::{events, kprov, Lab};

#[test]
fn a_lab_inventory_with_one_silent_sshd_runs_the_healthy_hosts() {
    let lab = Lab::up("badhost", 2);
    let stop = lab.ssh("node1", "systemctl stop ssh.socket ssh.service; true");
    assert!(stop.status.success(), "{stop:?}");
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("lab.yaml");
    std::fs::write(&inv, format!("lab:\n  name: {}\n  hosts: 2\n", lab.name)).unwrap();
    let playbook = dir.path().join("touch.yaml");
    std::fs::write(
        &playbook,
        "- name: t\n  hosts: all\n  tasks:\n    - name: marker\n      copy: { path: /root/kprov-bad-host, content: \"x\\n\" }\n",
    )
    .unwrap();
    let started = Instant::now();
    let out = kprov(&[
        "apply",
        playbook.to_str().unwrap(),
        "-i",
        inv.to_str().unwrap(),
        "--output",
        "json",
    ]);
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("run with one bad lab host took {took:?}");
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(took < Duration::from_secs(60), "{took:?}\n{stderr}");
    let evs = events(&out.stdout);
    let done = |host: &str| {
        evs.iter()
            .find(|e| e["event"] == "host_done" && e["host"] == host)
            .unwrap_or_else(|| panic!("host_done for {host}: {evs:?}"))
            .clone()
    };
    assert_eq!(done("node1")["counts"]["unreachable"], 1, "{evs:?}");
    assert_eq!(done("master")["counts"]["changed"], 1, "{evs:?}");
    let upper = std::path::Path::new("/var/lib/kprov/lab")
        .join(&lab.name)
        .join("hosts/master/upper/root/kprov-bad-host");
    assert!(upper.exists(), "the healthy host was worked on");
}
