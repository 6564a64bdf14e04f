//! Fault injection on `playbooks/cluster.yaml` (a master and a node on a real lab): kprov
//! is killed (SIGKILL as a laptop lid or a CI timeout does) at every round-trip boundary
//! (the `batch_done` events of its NDJSON stream) and while the control-plane files are
//! being committed, stopped by SIGTERM as a CI runner does, and the PKI directory runs
//! out of space. After each fault, from the host's
//! real state: the next apply converges with nothing failed, the one after changes
//! nothing, the PKI verifies with openssl (keys match certificates, the node trusts the
//! master's CA), containerd runs with its current configuration (started after its
//! config files last changed), no notification is left pending and no staged or
//! temporary file is left behind. Reset between faults (and containerd's config removed),
//! so each starts from hosts that are prepared but hold no cluster. On a lab of its own, a
//! host killed mid-run. A blackholed host is `tests/silent_host.rs`.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Instant;

use common::{events, kprov, sh, Lab};
use serde_json::Value;

const SPEC: &str = "tests/fixtures/cluster-lab.yaml";
const PKI: &str = "/etc/kubernetes/pki";

fn args<'a>(inv: &'a str, playbook: &'a str) -> Vec<&'a str> {
    common::cluster_args("apply", playbook, inv, SPEC)
}

/// A whole apply: exit code, events, stderr.
fn apply(inv: &str, playbook: &str) -> (Option<i32>, Vec<Value>, String) {
    let out = kprov(&args(inv, playbook));
    (
        out.status.code(),
        events(&out.stdout),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn run_done(events: &[Value]) -> Value {
    events
        .iter()
        .find(|e| e["event"] == "run_done")
        .cloned()
        .unwrap_or(Value::Null)
}

/// How a trial's run is stopped.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// Signal (`KILL`, `TERM`) kprov after this many task events.
    After(usize, &'static str),
    /// SIGKILL kprov after this many `batch_done` events: the end of an apply round trip.
    AfterBatches(usize),
    /// SIGKILL kprov when the n-th apply script has started: the end of a check round
    /// trip (the first `task_started` of phase `apply` after a `batch_started`).
    AfterChecks(usize),
    /// SIGKILL kprov as soon as the master holds a staged control-plane file.
    WhileCommitting,
}

/// Picks the first `task_started` of phase `apply` of each host's batch.
fn first_apply_start() -> impl FnMut(&Value) -> bool {
    let mut in_apply = std::collections::BTreeSet::new();
    move |e: &Value| {
        let host = e["host"].to_string();
        match e["event"].as_str() {
            Some("batch_started") => {
                in_apply.remove(&host);
                false
            }
            Some("task_started") if e["phase"] == "apply" => in_apply.insert(host),
            _ => false,
        }
    }
}

/// Counts the events of `stdout` that `counts` picks until the `n`-th, then calls
/// `stop`. Returns how many were seen and the last one's description.
fn stop_after(
    stdout: impl std::io::Read,
    n: usize,
    mut counts: impl FnMut(&Value) -> bool,
    stop: impl FnOnce(),
) -> (usize, String) {
    let mut seen = 0;
    let mut last = String::new();
    let mut stop = Some(stop);
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        let Ok(event) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if stop.is_some() && counts(&event) {
            seen += 1;
            last = format!("{} {} on {}", event["event"], event["task"], event["host"]);
            if seen == n {
                if let Some(stop) = stop.take() {
                    stop();
                }
            }
        }
    }
    (seen, last)
}

/// The cluster apply, started with its NDJSON events on a pipe.
fn spawn_apply(lab: &Lab) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_kprov"))
        .args(args(lab.inventory_str(), "playbooks/cluster.yaml"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("kprov starts")
}

/// Starts the cluster apply and stops it as `fault` says. Returns what happened, for
/// the failure messages.
fn interrupted_apply(lab: &Lab, fault: Fault) -> String {
    let mut child = spawn_apply(lab);
    let pid = child.id();
    let signal = |name: &str| {
        let sent = Command::new("kill")
            .args(["-s", name, &pid.to_string()])
            .status();
        assert!(sent.is_ok_and(|s| s.success()), "kill -s {name} {pid}");
    };
    let stdout = child.stdout.take().expect("stdout");
    let what = match fault {
        Fault::After(n, name) => {
            let (seen, last) = stop_after(
                stdout,
                n,
                |e| e["event"] == "task" && e["status"] != "skipped",
                || signal(name),
            );
            format!("SIG{name} after task event {seen} ({last})")
        }
        Fault::AfterBatches(n) => {
            let (seen, last) =
                stop_after(stdout, n, |e| e["event"] == "batch_done", || signal("KILL"));
            format!("SIGKILL after apply round trip {seen} ({last})")
        }
        Fault::AfterChecks(n) => {
            let (seen, last) = stop_after(stdout, n, first_apply_start(), || signal("KILL"));
            format!("SIGKILL as apply script {seen} starts ({last})")
        }
        Fault::WhileCommitting => {
            let drain = std::thread::spawn(move || for _ in BufReader::new(stdout).lines() {});
            // One remote loop watches for the staged files; it answers the moment they exist.
            let watch = lab.ssh(
                "master",
                &format!(
                    "for i in $(seq 1 6000); do \
                       ls -d {PKI}/*.kprov-new /etc/kubernetes/*.kprov-new /etc/kubernetes/kprov/commit-* \
                          2>/dev/null | grep -q . && {{ echo staged; exit 0; }}; sleep 0.01; done; echo never"
                ),
            );
            signal("KILL");
            let _ = drain.join();
            assert_eq!(
                String::from_utf8_lossy(&watch.stdout).trim(),
                "staged",
                "the kill was to land while the master's files were staged"
            );
            format!(
                "SIGKILL when the master's files were {}",
                String::from_utf8_lossy(&watch.stdout).trim()
            )
        }
    };
    let status = child.wait().expect("kprov ends");
    format!("{what}, kprov {status}")
}

/// Seconds since the epoch of a systemd timestamp property of `unit`.
fn unit_started(lab: &Lab, host: &str, unit: &str) -> i64 {
    sh(
        lab,
        host,
        &format!("date -d \"$(systemctl show -p ActiveEnterTimestamp --value {unit})\" +%s"),
    )
    .trim()
    .parse()
    .unwrap_or_else(|e| panic!("{host}: {unit} start time: {e}"))
}

/// What must hold after a converged apply, read from the hosts.
fn assert_converged(lab: &Lab, what: &str) {
    // The PKI verifies, each key belongs to its certificate.
    for (ca, leaf) in [
        ("ca", "apiserver"),
        ("ca", "apiserver-kubelet-client"),
        ("front-proxy-ca", "front-proxy-client"),
        ("etcd/ca", "etcd/server"),
        ("etcd/ca", "apiserver-etcd-client"),
    ] {
        sh(
            lab,
            "master",
            &format!("openssl verify -CAfile {PKI}/{ca}.crt {PKI}/{leaf}.crt"),
        );
        for pair in [ca, leaf] {
            let cert = sh(
                lab,
                "master",
                &format!("openssl x509 -in {PKI}/{pair}.crt -noout -pubkey"),
            );
            let key = sh(
                lab,
                "master",
                &format!("openssl pkey -in {PKI}/{pair}.key -pubout"),
            );
            assert_eq!(cert, key, "{what}: {pair}.key does not match {pair}.crt");
        }
    }
    let master_ca = sh(lab, "master", &format!("cat {PKI}/ca.crt"));
    assert_eq!(
        sh(lab, "node1", &format!("cat {PKI}/ca.crt")),
        master_ca,
        "{what}: the node trusts another CA"
    );
    for host in ["master", "node1"] {
        // containerd runs with what its files say now.
        let changed: i64 = sh(
            lab,
            host,
            "stat -c %Y /etc/containerd/config.toml /etc/systemd/system/containerd.service.d/*.conf 2>/dev/null | sort -n | tail -1",
        )
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("{what}: {host}: config mtime: {e}"));
        let started = unit_started(lab, host, "containerd");
        assert!(
            started >= changed,
            "{what}: {host}: containerd started at {started}, its config changed at {changed}"
        );
        let pending = sh(
            lab,
            host,
            "ls -A /var/lib/kprov/handlers 2>/dev/null || true",
        );
        assert_eq!(pending.trim(), "", "{what}: {host}: pending notifications");
        let left = sh(
            lab,
            host,
            "find /etc /var/lib/kubelet /tmp \\( -name '*.kprov-new' -o -name '.kprov.*' \
             -o -name 'kprov.*' -o -name 'commit-*' \\) -print 2>/dev/null || true",
        );
        assert_eq!(left.trim(), "", "{what}: {host}: left behind");
    }
}

/// The next apply fixes everything, the one after changes nothing.
fn assert_recovers(lab: &Lab, what: &str) {
    let inv = lab.inventory_str();
    let (code, ev, err) = apply(inv, "playbooks/cluster.yaml");
    let done = run_done(&ev);
    assert_eq!(code, Some(0), "{what}: the rerun failed ({done}):\n{err}");
    assert_eq!(done["failed"], 0, "{what}: {done}");
    let (code, ev, err) = apply(inv, "playbooks/cluster.yaml");
    let done = run_done(&ev);
    let changed: Vec<String> = ev
        .iter()
        .filter(|e| e["event"] == "task" && e["status"] == "changed")
        .map(|e| format!("{} on {}", e["task"], e["host"]))
        .collect();
    assert_eq!(code, Some(0), "{what}: the third run failed:\n{err}");
    assert_eq!(done["changed"], 0, "{what}: not converged: {changed:?}");
    assert_converged(lab, what);
}

fn reset(lab: &Lab) {
    let (code, _, err) = apply(lab.inventory_str(), "playbooks/reset.yaml");
    assert_eq!(code, Some(0), "reset failed:\n{err}");
}

/// The tests of this file take turns: each runs a cluster on a lab of its own.
static ONE_LAB_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn killed_and_starved_cluster_applies_converge() {
    let _turn = ONE_LAB_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let lab = Lab::up("kt-faults", 2);
    let inv = lab.inventory_str();
    // A clean run first: how many task events a cluster apply has, and prepared hosts.
    let (code, ev, err) = apply(inv, "playbooks/cluster.yaml");
    assert_eq!(code, Some(0), "first apply:\n{err}");
    assert_converged(&lab, "a clean apply");
    reset(&lab);
    let total = ev
        .iter()
        .filter(|e| e["event"] == "task" && e["status"] != "skipped")
        .count();
    assert!(total > 20, "{total} task events");

    let batches = ev.iter().filter(|e| e["event"] == "batch_done").count();
    let mut pick = first_apply_start();
    let applies = ev.iter().filter(|e| pick(e)).count();
    assert!(
        batches > 5 && applies > 5,
        "{batches} batches, {applies} apply scripts"
    );

    let mut table = Vec::new();
    // Every round-trip boundary of the run: each check round trip's end (as its apply
    // script starts) and each apply round trip's end (the last one is the run's end);
    // SIGTERM mid-run, and SIGKILL while the control-plane files are being committed.
    let mut trials: Vec<Fault> = (1..=applies).map(Fault::AfterChecks).collect();
    trials.extend((1..batches).map(Fault::AfterBatches));
    trials.push(Fault::After(total * 2 / 5, "TERM"));
    trials.push(Fault::WhileCommitting);
    for fault in trials {
        let started = Instant::now();
        // containerd's config must be written again, so that every trial can lose the
        // notification of its restart.
        for host in ["master", "node1"] {
            sh(&lab, host, "rm -f /etc/containerd/config.toml");
        }
        let what = interrupted_apply(&lab, fault);
        assert_recovers(&lab, &what);
        eprintln!("fault: {what}: converged in {:?}", started.elapsed());
        table.push(what);
        reset(&lab);
    }

    // The PKI directory fills up (a 4 KiB tmpfs: one file fits): the apply fails, nothing
    // of the new set is in place, nothing staged is left; with space back it converges.
    sh(
        &lab,
        "master",
        &format!("mkdir -p {PKI} && mount -t tmpfs -o size=4k tmpfs {PKI}"),
    );
    let (code, ev, _) = apply(inv, "playbooks/cluster.yaml");
    let failed: Vec<&Value> = ev
        .iter()
        .filter(|e| e["event"] == "task" && e["status"] == "failed")
        .collect();
    assert_eq!(code, Some(1), "a full PKI directory must fail the apply");
    assert!(
        failed.iter().any(|e| e["error"]["command"]
            .as_str()
            .is_some_and(|c| c.starts_with("kube_init "))
            && e["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("/etc/kubernetes/pki/"))),
        "{failed:?}"
    );
    let inside = sh(&lab, "master", &format!("ls -A {PKI}"));
    assert_eq!(inside.trim(), "", "a partial PKI is in place: {inside}");
    sh(&lab, "master", &format!("umount {PKI}"));
    assert_recovers(&lab, "ENOSPC on the PKI directory");
    table.push("ENOSPC on the PKI directory".into());
    // Not a timed test: the durations are for the reader.
    eprintln!("faults survived:\n  {}", table.join("\n  "));
}

/// The node dies mid-run (its systemd and every process in it SIGKILLed, as a power cut
/// does to a VM) while the master writes the control plane and the node's join is still
/// to come: the node is reported unreachable (exit 4), the master finishes; once the node
/// is back, the next apply converges.
#[test]
fn host_killed_mid_run_is_unreachable_and_recovers() {
    let _turn = ONE_LAB_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let lab = &Lab::up("kt-hostkill", 2);
    let node_pid = lab.status()["hosts"]
        .as_array()
        .and_then(|hosts| hosts.iter().find(|h| h["name"] == "node1"))
        .and_then(|h| h["pid"].as_u64())
        .expect("node1's pid");
    let stderr = tempfile_in_target("host-killed.stderr");
    let mut child = Command::new(env!("CARGO_BIN_EXE_kprov"))
        .args(args(lab.inventory_str(), "playbooks/cluster.yaml"))
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr).expect("stderr file"))
        .spawn()
        .expect("kprov starts");
    let mut killed_at = None;
    let mut events = Vec::new();
    let stdout = child.stdout.take().expect("stdout");
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        let Ok(event) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if killed_at.is_none()
            && event["event"] == "task_started"
            && event["host"] == "master"
            && event["task"]
                .as_str()
                .is_some_and(|t| t.starts_with("Control-plane certificates"))
        {
            let killed = Command::new("kill")
                .args(["-9", &node_pid.to_string()])
                .status();
            assert!(killed.is_ok_and(|s| s.success()), "kill -9 {node_pid}");
            killed_at = Some(format!("{} on {}", event["task"], event["host"]));
        }
        events.push(event);
    }
    let status = child.wait().expect("kprov ends");
    let err = std::fs::read_to_string(&stderr).unwrap_or_default();
    let killed_at = killed_at.unwrap_or_else(|| {
        panic!("the master's kube_init never started: node1 was not killed\n{err}")
    });
    let host_done = |host: &str| {
        events
            .iter()
            .find(|e| e["event"] == "host_done" && e["host"] == host)
            .cloned()
            .unwrap_or(Value::Null)
    };
    let context = format!(
        "node1 killed as {killed_at}; kprov {status}\nnode1: {}\nmaster: {}\nstderr:\n{err}",
        host_done("node1"),
        host_done("master")
    );
    assert_eq!(
        status.code(),
        Some(4),
        "a dead host is unreachable: {context}"
    );
    assert!(
        host_done("node1")["counts"]["unreachable"].as_u64() > Some(0),
        "{context}"
    );
    assert_eq!(
        host_done("master")["counts"]["failed"]
            .as_u64()
            .unwrap_or(0),
        0,
        "{context}"
    );
    let why: Vec<&Value> = events
        .iter()
        .filter(|e| e["host"] == "node1" && e["status"] == "unreachable")
        .collect();
    assert!(
        why.iter().any(|e| e["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("closed the SSH connection mid-run"))),
        "node1's unreachable task says why: {why:?}\n{context}"
    );
    common::kprov_ok(&["lab", "up", "--name", &lab.name, "--hosts", "2"]);
    assert_recovers(lab, "node1 killed mid-run");
    eprintln!("fault survived: node1's systemd SIGKILLed as {killed_at}, kprov {status}");
}

/// A path for a test's scratch file under the target directory.
fn tempfile_in_target(name: &str) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    dir.join(name)
}
