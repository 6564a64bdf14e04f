//! Real lab hosts: a 3-host lab boots with systemd, answers over ssh, installs from the lab
//! repository, is idempotent and leaves nothing behind. Run as root.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{alive, assert_gone, ssh, ssh_ok, unique_name, DownOnDrop};
use kprov_lab::{UpOptions, DEFAULT_HOSTS};

#[test]
fn three_host_lab_boots_serves_packages_and_goes_away() {
    let name = unique_name("a");
    let _guard = DownOnDrop(name.clone());
    let status = kprov_lab::up(&UpOptions {
        name: name.clone(),
        hosts: DEFAULT_HOSTS,
        mirror: None,
    })
    .expect("lab up");
    assert!(status.all_ready(), "{status:#?}");
    assert!(status.repo_running);
    let names: Vec<&str> = status.hosts.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["master", "node1", "node2"]);
    let key_mode = std::fs::metadata(&status.key).unwrap().permissions().mode();
    assert_eq!(key_mode & 0o777, 0o600, "lab key mode");

    // Each host: its own hostname, its own address, systemd fully up with no failed unit.
    for host in &status.hosts {
        let out = ssh_ok(
            &name,
            &host.name,
            &["sh", "-c", "hostname; hostname -I; systemctl is-system-running; systemctl --failed --no-legend | wc -l; cat /proc/1/comm"],
        );
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], host.name);
        assert_eq!(lines[1].trim(), host.address.to_string());
        assert_eq!(lines[2], "running", "failed units on {}: {out}", host.name);
        assert_eq!(lines[3], "0");
        assert_eq!(lines[4], "systemd", "PID 1 inside the host");
    }

    // systemd behaves as on a server: a unit with a negative OOM score adjustment starts
    // (the host clamps it), a drop-in plus daemon-reload changes it, enable survives.
    let unit = "[Unit]\nDescription=kprov lab test\n[Service]\nExecStart=/bin/sleep infinity\nOOMScoreAdjust=-999\n[Install]\nWantedBy=multi-user.target\n";
    let script = format!(
        "printf '{unit}' > /etc/systemd/system/kpt.service && \
         systemctl enable --now kpt.service && systemctl is-active kpt.service && \
         mkdir -p /etc/systemd/system/kpt.service.d && \
         printf '[Service]\\nEnvironment=KPT=dropin\\n' > /etc/systemd/system/kpt.service.d/10-env.conf && \
         systemctl daemon-reload && systemctl restart kpt.service && \
         systemctl show -p Environment --value kpt.service && systemctl is-enabled kpt.service"
    );
    let out = ssh_ok(&name, "master", &["sh", "-c", &script]);
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["active", "KPT=dropin", "enabled"],
        "{out}"
    );

    // Hosts reach each other over the bridge.
    let node2 = status.hosts[2].address.to_string();
    let banner = ssh_ok(
        &name,
        "master",
        &[
            "sh",
            "-c",
            &format!("timeout 5 bash -c 'exec 3<>/dev/tcp/{node2}/22; head -c 7 <&3'"),
        ],
    );
    assert_eq!(banner, "SSH-2.0");

    // Traffic within the bridge passes the machine's firewall even with a DROP policy.
    if common::have_iptables() {
        assert!(common::forward_rule_present(&status.bridge));
    }

    // Container runtimes' state is not on the overlay root (which refuses nested overlay
    // mounts) and is each host's own.
    for host in &status.hosts {
        let out = ssh_ok(
            &name,
            &host.name,
            &[
                "sh",
                "-c",
                "stat -f -c %T / /var/lib/kprov-agent /var/lib/containerd; ls /var/lib/kprov-agent",
            ],
        );
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "overlayfs", "{}: {out}", host.name);
        assert!(
            lines[1] != "overlayfs" && lines[2] != "overlayfs",
            "{}: {out}",
            host.name
        );
        assert_eq!(
            lines.len(),
            3,
            "{}: another host's files show: {out}",
            host.name
        );
        ssh_ok(&name, &host.name, &["touch", "/var/lib/kprov-agent/mine"]);
    }

    // A file written on one host is absent on the others and on the machine.
    let marker = format!("/root/kprov-lab-marker-{name}");
    ssh_ok(
        &name,
        "master",
        &[
            "sh",
            "-c",
            &format!("echo hello > {marker} && cat {marker}"),
        ],
    );
    for other in ["node1", "node2"] {
        let out = ssh(&name, other, &["test", "-e", &marker]);
        assert_eq!(out.status.code(), Some(1), "{marker} visible on {other}");
    }
    assert!(
        !Path::new(&marker).exists(),
        "{marker} visible on the machine"
    );
    assert!(!Path::new("/var/cache/kprov/lab/base-bookworm")
        .join(&marker[1..])
        .exists());

    // Packages come from the lab repository only, without the internet.
    let sources = ssh_ok(
        &name,
        "node1",
        &[
            "sh",
            "-c",
            "test ! -e /etc/apt/sources.list && cat /etc/apt/sources.list.d/*",
        ],
    );
    assert_eq!(
        sources
            .lines()
            .filter(|l| l.starts_with("deb"))
            .collect::<Vec<_>>(),
        [format!("deb [trusted=yes] {} ./", status.repo_url)]
    );
    let out = ssh_ok(
        &name,
        "node1",
        &["sh", "-c", "apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q socat && socat -V"],
    );
    assert!(
        out.contains(&status.repo_url.replace(":80/", ":80")),
        "{out}"
    );
    assert!(out.contains("socat version"), "{out}");

    // The inventory names every host with its address and the lab key.
    let inventory = std::fs::read_to_string(&status.inventory).unwrap();
    for host in &status.hosts {
        assert!(inventory.contains(&format!(
            "\"{}\":\n    address: \"{}\"",
            host.name, host.address
        )));
    }
    assert!(inventory.contains(&format!("identity_file: \"{}\"", status.key.display())));

    // A second up is idempotent and fast: the same hosts keep running.
    let start = Instant::now();
    let again = kprov_lab::up(&UpOptions {
        name: name.clone(),
        hosts: DEFAULT_HOSTS,
        mirror: None,
    })
    .expect("second up");
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "warm up took {:?}",
        start.elapsed()
    );
    let pids = |s: &kprov_lab::LabStatus| s.hosts.iter().map(|h| h.pid).collect::<Vec<_>>();
    assert_eq!(pids(&again), pids(&status));
    assert!(again.all_ready());
    assert!(kprov_lab::list().unwrap().contains(&name));

    let repo_pid = repo_pid(&name);
    kprov_lab::down(&name).expect("lab down");
    assert_gone(&status, repo_pid);
    assert!(kprov_lab::status(&name).unwrap().is_none());
    assert!(!kprov_lab::list().unwrap().contains(&name));
    // Down of an absent lab is fine.
    kprov_lab::down(&name).expect("second down");
}

#[test]
fn up_repairs_a_crashed_host_and_down_cleans_a_crashed_lab() {
    let name = unique_name("b");
    let _guard = DownOnDrop(name.clone());
    let opts = UpOptions {
        name: name.clone(),
        hosts: 2,
        mirror: None,
    };
    let status = kprov_lab::up(&opts).expect("lab up");
    assert!(status.all_ready());
    ssh_ok(&name, "node1", &["touch", "/root/survives-restart"]);

    // node1's systemd dies (as in a crash): status says so, up restarts only node1.
    let crashed = status.hosts[1].pid.unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(crashed as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    wait_until(|| !alive(crashed));
    let seen = kprov_lab::status(&name).unwrap().unwrap();
    assert!(!seen.hosts[1].running && seen.hosts[0].running, "{seen:#?}");
    let repaired = kprov_lab::up(&opts).expect("repairing up");
    assert!(repaired.all_ready());
    assert_eq!(
        repaired.hosts[0].pid, status.hosts[0].pid,
        "master kept running"
    );
    assert_ne!(
        repaired.hosts[1].pid, status.hosts[1].pid,
        "node1 restarted"
    );
    ssh_ok(&name, "node1", &["test", "-e", "/root/survives-restart"]);

    // More hosts: node2 joins, the others keep running; fewer: node2 goes again.
    let grown = kprov_lab::up(&UpOptions {
        name: name.clone(),
        hosts: 3,
        mirror: None,
    })
    .expect("growing up");
    assert!(grown.all_ready());
    assert_eq!(
        grown.hosts[..2].iter().map(|h| h.pid).collect::<Vec<_>>(),
        repaired.hosts.iter().map(|h| h.pid).collect::<Vec<_>>()
    );
    assert_eq!(ssh_ok(&name, "node2", &["hostname"]).trim(), "node2");
    let node2_pid = grown.hosts[2].pid.unwrap();
    let shrunk = kprov_lab::up(&opts).expect("shrinking up");
    assert_eq!(shrunk.hosts.len(), 2);
    assert!(!alive(node2_pid), "node2 still runs");
    let inventory = std::fs::read_to_string(&shrunk.inventory).unwrap();
    assert!(!inventory.contains("node2"), "{inventory}");

    // The whole lab crashes (every process killed, state left behind): down still cleans up.
    let repo_pid = repo_pid(&name);
    for pid in repaired.hosts.iter().filter_map(|h| h.pid).chain(repo_pid) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    kprov_lab::down(&name).expect("down after crash");
    assert_gone(&repaired, repo_pid);
}

#[test]
fn errors_name_the_problem() {
    let err = kprov_lab::up(&UpOptions {
        name: "Bad/Name".into(),
        hosts: 3,
        mirror: None,
    })
    .unwrap_err();
    assert!(err.to_string().contains("invalid lab name"), "{err}");
    let err = kprov_lab::up(&UpOptions {
        name: "ok".into(),
        hosts: 0,
        mirror: None,
    })
    .unwrap_err();
    assert!(err.to_string().contains("between 1 and"), "{err}");
    let err = kprov_lab::ssh_argv(&unique_name("none"), "master", &[]).unwrap_err();
    assert!(err.to_string().contains("kprov lab up"), "{err}");
}

/// Pid of the lab's repository server, from its state file.
fn repo_pid(name: &str) -> Option<u32> {
    let text = std::fs::read_to_string(format!("/var/lib/kprov/lab/{name}/state.json")).ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    value["repo_pid"].as_u64().map(|p| p as u32)
}

fn wait_until(mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "condition not reached in 10s");
        std::thread::sleep(Duration::from_millis(50));
    }
}
