//! Hosts given by DNS name (issue 10, item 5): SSH uses the name, while `/etc/hosts` and
//! the address-consuming tasks (bridge CNI routes, advertise address, etcd) get the IP.
//! The names are answered by this machine's /etc/hosts only (added for the test and
//! removed after): nothing leaves the machine.

mod common;

use common::{events, kprov, sh, Lab};

/// Lines appended to the control machine's /etc/hosts, removed when dropped.
struct EtcHosts {
    lines: Vec<String>,
}

impl EtcHosts {
    fn add(lines: Vec<String>) -> EtcHosts {
        let mut text = std::fs::read_to_string("/etc/hosts").unwrap();
        if !text.ends_with('\n') {
            text.push('\n');
        }
        for line in &lines {
            text.push_str(line);
            text.push('\n');
        }
        std::fs::write("/etc/hosts", text).unwrap();
        EtcHosts { lines }
    }
}

impl Drop for EtcHosts {
    fn drop(&mut self) {
        if let Ok(text) = std::fs::read_to_string("/etc/hosts") {
            let kept: String = text
                .lines()
                .filter(|l| !self.lines.iter().any(|x| x == l))
                .map(|l| format!("{l}\n"))
                .collect();
            let _ = std::fs::write("/etc/hosts", kept);
        }
    }
}

fn repo(relative: &str) -> String {
    format!("{}/{relative}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn dns_name_addresses_give_ip_addresses_to_the_hosts() {
    let lab = Lab::up("kt-dns", 2);
    let hosts = ["master", "node1"];
    let ips: Vec<String> = hosts.iter().map(|h| lab.address(h)).collect();
    let names: Vec<String> = hosts
        .iter()
        .map(|h| format!("{}-{h}.kprov.test", lab.name))
        .collect();
    let _etc = EtcHosts::add(
        ips.iter()
            .zip(&names)
            .map(|(ip, name)| format!("{ip} {name}"))
            .collect(),
    );
    let mut text = std::fs::read_to_string(&lab.inventory).unwrap();
    for (ip, name) in ips.iter().zip(&names) {
        text = text.replace(&format!("\"{ip}\""), &format!("\"{name}\""));
    }
    for name in &names {
        assert!(text.contains(name.as_str()), "{text}");
    }
    // ssh checks the key under the name it connects to: the operator records each host's
    // key under its name too (here: the lab's known key of that address).
    let dir = tempfile::tempdir().unwrap();
    let lab_known = lab.inventory.with_file_name("known_hosts");
    let mut known = String::new();
    for line in std::fs::read_to_string(&lab_known).unwrap().lines() {
        let (address, key) = line.split_once(' ').expect("`address key` lines");
        if let Some(i) = ips.iter().position(|ip| ip == address) {
            known.push_str(&format!("{} {key}\n", names[i]));
        }
    }
    assert_eq!(known.lines().count(), names.len(), "{known}");
    let known_file = dir.path().join("known_hosts");
    std::fs::write(&known_file, known).unwrap();
    let lab_known = serde_json::json!(lab_known.display().to_string()).to_string();
    assert!(text.contains(&lab_known), "{text}");
    text = text.replace(
        &lab_known,
        &serde_json::json!(known_file.display().to_string()).to_string(),
    );
    let inv = dir.path().join("hosts.yaml");
    std::fs::write(&inv, &text).unwrap();
    let inv = inv.to_str().unwrap();

    let spec = repo("tests/fixtures/cni-bridge.yaml");
    let out = kprov(&["validate", &spec, "-i", inv]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let playbook = repo("playbooks/node-prep.yaml");
    let out = kprov(&[
        "apply", &playbook, "-i", inv, "--spec", &spec, "--tags", "hosts",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for host in hosts {
        let etc_hosts = sh(&lab, host, "cat /etc/hosts");
        for (other, ip) in hosts.iter().zip(&ips) {
            assert!(
                etc_hosts
                    .lines()
                    .any(|l| l.split_whitespace().collect::<Vec<_>>() == [ip.as_str(), other]),
                "{host}: no `{ip} {other}` in\n{etc_hosts}"
            );
        }
        assert!(!etc_hosts.contains("kprov.test"), "{etc_hosts}");
    }
    // The bridge CNI routes through host addresses: with names it refused to build.
    let out = kprov(&[
        "plan",
        &repo("playbooks/cluster.yaml"),
        "-i",
        inv,
        "--spec",
        &spec,
        "--tags",
        "cni",
        "--output",
        "json",
    ]);
    let ev = events(&out.stdout);
    let failed: Vec<&serde_json::Value> = ev.iter().filter(|e| e["status"] == "failed").collect();
    assert!(
        failed.is_empty(),
        "{failed:?}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
