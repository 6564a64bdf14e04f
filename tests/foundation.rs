//! End to end on a real 3-host lab: facts, transport isolation, hostile values, the
//! classification of SSH failures against a real sshd, and `lab down` leaving nothing.
//! Runs as root (the lab needs namespaces and mounts).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{kprov, kprov_ok, Lab};
use kprov_engine::transport::{Connection, Pool, PoolOptions, Target, TransportErrorKind};

const LAB: &str = "kt-found";

#[tokio::test(flavor = "multi_thread")]
async fn three_host_lab_end_to_end() {
    let lab = Lab::up(LAB, 3);

    // facts: each host reports its own hostname and the address the lab gave it.
    let out = kprov_ok(&["facts", "-i", lab.inventory_str(), "--output", "json"]);
    let facts: serde_json::Value = serde_json::from_str(&out).expect("facts JSON");
    assert_eq!(facts["errors"].as_array().map(Vec::len), Some(0), "{facts}");
    for host in ["master", "node1", "node2"] {
        let f = &facts["hosts"][host];
        assert_eq!(f["hostname"], host, "{f}");
        let address = lab.address(host);
        let addresses: Vec<&str> = f["addresses"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|a| a.as_str())
            .collect();
        assert!(
            addresses.contains(&address.as_str()),
            "{host}: {addresses:?} lacks {address}"
        );
        assert_eq!(f["init"], "systemd");
        assert_eq!(f["package_manager"], "apt-get");
        assert_eq!(f["os_id"], "debian");
    }
    // The table names every host too.
    let table = kprov_ok(&["facts", "-i", lab.inventory_str()]);
    for host in ["master", "node1", "node2"] {
        assert!(table.lines().any(|l| l.starts_with(host)), "{table}");
    }
    // --limit picks hosts and groups.
    let out = kprov_ok(&[
        "facts",
        "-i",
        lab.inventory_str(),
        "--output",
        "json",
        "--limit",
        "nodes",
    ]);
    let limited: serde_json::Value = serde_json::from_str(&out).unwrap();
    let mut names: Vec<&String> = limited["hosts"].as_object().unwrap().keys().collect();
    names.sort();
    assert_eq!(names, ["node1", "node2"]);

    // A file written through kprov's transport on one host exists only there,
    // with hostile content intact and nothing executed.
    let inventory = kprov_engine::inventory::load(&lab.inventory).expect("lab inventory loads");
    let targets: Vec<Target> = inventory.hosts.iter().map(Target::for_host).collect();
    let (pool, errors) = Pool::connect(targets.clone(), &PoolOptions::default()).await;
    assert!(errors.is_empty(), "{errors:?}");
    let hostile =
        "it's \"$(touch /tmp/kprov-pwned)\" `touch /tmp/kprov-pwned2` ${HOME}\nline ünïcødé ✓\n";
    let path = "/root/kprov-isolation-probe";
    let master = pool
        .connections()
        .iter()
        .find(|c| c.target().name == "master")
        .unwrap()
        .clone();
    let write = format!(
        "printf '%s' {} > {}",
        kprov_engine::transport::quote(hostile),
        kprov_engine::transport::quote(path)
    );
    let out = master.run(&write, None).await.unwrap();
    assert!(out.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let results = pool
        .for_each(move |conn| async move {
            let probe = format!(
                "if [ -e {p} ]; then cat {p}; else echo ABSENT; fi; [ -e /tmp/kprov-pwned ] || [ -e /tmp/kprov-pwned2 ] && echo PWNED; true",
                p = kprov_engine::transport::quote(path)
            );
            String::from_utf8_lossy(&conn.run(&probe, None).await.unwrap().stdout).into_owned()
        })
        .await;
    for (host, stdout) in &results {
        assert!(
            !stdout.contains("PWNED"),
            "{host}: a hostile value executed"
        );
        if host == "master" {
            assert_eq!(stdout, hostile);
        } else {
            assert_eq!(stdout.trim(), "ABSENT", "{host} sees master's file");
        }
    }
    assert!(
        !Path::new(path).exists(),
        "the machine sees a lab host's file"
    );
    pool.close().await;

    ssh_failures_are_classified(&lab, &targets).await;

    // down leaves nothing: no state, no bridge, no netns, no processes of the lab.
    let bridge = lab.status()["bridge"].as_str().unwrap().to_string();
    kprov_ok(&["lab", "down", "--name", &lab.name]);
    let status = kprov_ok(&["lab", "status", "--name", &lab.name, "--output", "json"]);
    assert_eq!(status.trim(), "null");
    let link = Command::new("ip")
        .args(["link", "show", &bridge])
        .output()
        .unwrap();
    assert!(!link.status.success(), "bridge {bridge} still exists");
    let netns = Command::new("ip").args(["netns", "list"]).output().unwrap();
    assert!(
        !String::from_utf8_lossy(&netns.stdout).contains(LAB),
        "netns left behind"
    );
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&format!("/lab/{LAB}/")),
        "mounts left behind"
    );
    assert!(!Path::new(&format!("/var/lib/kprov/lab/{LAB}")).exists());
}

/// Real sshd, real failures: each kind is told apart and names the host.
async fn ssh_failures_are_classified(lab: &Lab, targets: &[Target]) {
    let master = targets.iter().find(|t| t.name == "master").unwrap().clone();
    let dir = tempfile::tempdir().unwrap();
    let control = dir.path().join("ctl");
    std::fs::create_dir(&control).unwrap();
    let open = |t: Target| {
        let control = control.clone();
        async move { Connection::open(t, &control, Duration::from_secs(10), 0).await }
    };

    // Authentication: a key the host does not know.
    let stranger = dir.path().join("stranger");
    let ok = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&stranger)
        .status()
        .unwrap();
    assert!(ok.success());
    let mut t = master.clone();
    t.identity_file = Some(stranger.clone());
    let err = open(t).await.expect_err("a stranger's key must be refused");
    assert_eq!(err.kind, TransportErrorKind::Authentication, "{err}");
    assert!(err.to_string().starts_with("master: "), "{err}");

    // Host key mismatch: known_hosts records another key for the address.
    let fake_pub = std::fs::read_to_string(stranger.with_extension("pub")).unwrap();
    let key_part: Vec<&str> = fake_pub.split_whitespace().take(2).collect();
    let known = dir.path().join("known_hosts_wrong");
    std::fs::write(
        &known,
        format!("{} {}\n", master.address, key_part.join(" ")),
    )
    .unwrap();
    let mut t = master.clone();
    t.known_hosts_file = Some(known);
    let err = open(t)
        .await
        .expect_err("a changed host key must be refused");
    assert_eq!(err.kind, TransportErrorKind::HostKeyMismatch, "{err}");
    assert!(err.hint.contains("ssh-keygen -R"), "{err}");

    // Unknown host key under strict checking.
    let mut t = master.clone();
    t.known_hosts_file = Some(dir.path().join("known_hosts_empty"));
    let err = open(t)
        .await
        .expect_err("an unknown key must be refused in strict mode");
    assert_eq!(err.kind, TransportErrorKind::HostKeyUnknown, "{err}");

    // Unreachable: nothing listens on that port.
    let mut t = master.clone();
    t.port = 1;
    let err = open(t).await.expect_err("closed port");
    assert_eq!(err.kind, TransportErrorKind::Unreachable, "{err}");

    // Timeout: a listener that accepts but never speaks SSH.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut t = master.clone();
    t.address = "127.0.0.1".into();
    t.port = port;
    t.connect_timeout = Duration::from_secs(2);
    let err = open(t).await.expect_err("silent server");
    assert_eq!(err.kind, TransportErrorKind::Timeout, "{err}");
    drop(listener);

    // The lab's own settings still work afterwards.
    let conn = open(master).await.expect("lab settings connect");
    assert!(conn.run("true", None).await.unwrap().success());
    conn.close().await;
    let _ = lab;
}

#[test]
fn lab_ssh_runs_one_command_and_exits_with_its_status() {
    let lab = Lab::up("kt-ssh", 1);
    let out = lab.ssh("master", "hostname; exit 7");
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "master");
    // One argument is a line for the host's shell, as with `ssh host 'a; b'`.
    let line = kprov(&[
        "lab",
        "ssh",
        "--name",
        &lab.name,
        "master",
        "echo a; echo b",
    ]);
    assert_eq!(String::from_utf8_lossy(&line.stdout), "a\nb\n");
    // Several are one command with its arguments, each kept as one word.
    let words = kprov(&[
        "lab", "ssh", "--name", &lab.name, "master", "echo", "a;", "b",
    ]);
    assert_eq!(String::from_utf8_lossy(&words.stdout), "a; b\n");
    let err = kprov(&["lab", "ssh", "--name", &lab.name, "nosuch", "true"]);
    assert!(!err.status.success());
    assert!(String::from_utf8_lossy(&err.stderr).contains("nosuch"));
}

#[test]
fn an_inventory_that_asks_for_a_lab_brings_it_up() {
    let _ = kprov(&["lab", "down", "--name", "kt-demand"]);
    let out = kprov_ok(&[
        "facts",
        "-i",
        "tests/fixtures/lab-on-demand.yaml",
        "--output",
        "json",
    ]);
    let facts: serde_json::Value = serde_json::from_str(&out).unwrap();
    let mut hosts: Vec<&String> = facts["hosts"].as_object().unwrap().keys().collect();
    hosts.sort();
    assert_eq!(hosts, ["master", "node1"]);
    let status = kprov_ok(&["lab", "status", "--name", "kt-demand", "--output", "json"]);
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["hosts"].as_array().map(Vec::len), Some(2));
    kprov_ok(&["lab", "down", "--name", "kt-demand"]);
}
