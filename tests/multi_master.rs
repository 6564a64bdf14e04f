//! `playbooks/cluster.yaml` with two masters and one node on a real 3-host lab: the second
//! master gets the first master's CAs and keys (same bytes) and its own leaves, its etcd
//! joins the first master's (member added by the play once that etcd answers, both etcds
//! real and healthy as one cluster), a second apply changes nothing, and no key or token
//! reaches JSON events or `-v` output. Without `control_plane.endpoint` two masters are
//! refused by validation before anything changes.

mod common;

use common::{kprov, sh, Lab};
use serde_json::Value;

const LAB: &str = "kt-mm";
const SPEC: &str = "tests/fixtures/mm-lab.yaml";
const NO_ENDPOINT_SPEC: &str = "tests/fixtures/cluster-lab.yaml";
/// A playbook that removes the other masters' etcd members (`etcd_member: absent`).
const RESET: &str = "playbooks/reset.yaml";
const REMOVE_TASK: &str = "This master's etcd member removed (masters other than the first)";
const PKI: &str = "/etc/kubernetes/pki";
/// Host names of the lab: `master` and `node1` are the masters, `node2` the node.
const M1: &str = "master";
const M2: &str = "node1";
const NODE: &str = "node2";
/// The play's control-plane join task.
const CP_JOIN_TASK: &str = "Control-plane join files (shared CAs and keys, own certificates, kubeconfigs, static pods, kubelet files)";
/// The play's etcd member task.
const ETCD_TASK: &str = "This master's etcd member in the first master's etcd cluster";

/// What one run printed: exit code, JSON events, all of stdout and stderr.
struct Run {
    code: Option<i32>,
    events: Vec<Value>,
    text: String,
}

fn run(args: &[&str]) -> Run {
    let out = kprov(args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    Run {
        code: out.status.code(),
        events: stdout
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect(),
        text: format!("{stdout}\n{stderr}"),
    }
}

fn changed(run: &Run) -> u64 {
    run.events
        .iter()
        .find(|e| e["event"] == "run_done")
        .and_then(|e| e["changed"].as_u64())
        .unwrap_or_else(|| panic!("no run_done event:\n{}", run.text))
}

/// The summary of the task named `task` on `host`.
fn summary(run: &Run, host: &str, task: &str) -> String {
    run.events
        .iter()
        .find(|e| e["event"] == "task" && e["host"] == host && e["task"] == task)
        .and_then(|e| e["summary"].as_str())
        .unwrap_or_default()
        .to_string()
}

/// The lab's inventory with `master` and `node1` as masters and `node2` as the node,
/// and the spec with the first master's address as the control-plane endpoint.
fn write_inputs(lab: &Lab, dir: &std::path::Path) -> (String, String) {
    let text = std::fs::read_to_string(&lab.inventory).expect("lab inventory");
    let hosts = text.split("groups:").next().unwrap_or_default();
    let inventory = format!(
        "{hosts}groups:\n  masters:\n    hosts: [\"{M1}\", \"{M2}\"]\n  nodes:\n    hosts: [\"{NODE}\"]\n"
    );
    let inv = dir.join("inventory.yaml");
    std::fs::write(&inv, inventory).expect("write inventory");
    let spec = std::fs::read_to_string(SPEC)
        .expect("spec fixture")
        .replace("FIRST_MASTER", &lab.address(M1));
    let spec_path = dir.join("cluster.yaml");
    std::fs::write(&spec_path, spec).expect("write spec");
    (
        inv.to_string_lossy().into_owned(),
        spec_path.to_string_lossy().into_owned(),
    )
}

fn apply(inv: &str, spec: &str, extra: &[&str]) -> Run {
    let mut args = vec![
        "apply",
        "playbooks/cluster.yaml",
        "-i",
        inv,
        "--spec",
        spec,
        "-e",
        "kubelet_install=false",
    ];
    args.extend_from_slice(extra);
    let r = run(&args);
    assert_eq!(r.code, Some(0), "apply failed:\n{}", r.text);
    r
}

/// The flags of the etcd manifest on `host`, in order.
fn etcd_flags(lab: &Lab, host: &str) -> Vec<String> {
    let manifest = sh(lab, host, "cat /etc/kubernetes/manifests/etcd.yaml");
    let mut flags = Vec::new();
    let mut in_command = false;
    for line in manifest.lines() {
        let item = line
            .trim_start()
            .strip_prefix("- ")
            .map(|s| s.trim().trim_matches(['\'', '"']));
        match item {
            Some("etcd") => in_command = true,
            Some(flag) if in_command && flag.starts_with("--") => flags.push(flag.to_string()),
            _ if in_command && !flags.is_empty() => break,
            _ => {}
        }
    }
    assert!(
        flags.iter().any(|f| f.starts_with("--cert-file=")),
        "{manifest}"
    );
    flags
}

/// Debian's etcd on `host`, not started by the package, with an empty data dir.
fn install_etcd(lab: &Lab, host: &str) {
    sh(
        lab,
        host,
        "export DEBIAN_FRONTEND=noninteractive; command -v etcd >/dev/null && command -v etcdctl >/dev/null || { \
         apt-get install -y -qq etcd-server etcd-client >/dev/null 2>&1 || \
         { apt-get update -qq && apt-get install -y -qq etcd-server etcd-client; }; }; \
         systemctl disable --now etcd >/dev/null 2>&1; rm -rf /var/lib/etcd/*; true",
    );
}

/// Starts etcd on `host` as a transient unit with the flags of its generated manifest.
fn start_etcd(lab: &Lab, host: &str) {
    let quoted: Vec<String> = etcd_flags(lab, host)
        .iter()
        .map(|f| format!("'{f}'"))
        .collect();
    sh(
        lab,
        host,
        &format!(
            "systemctl stop kprov-test-etcd 2>/dev/null; systemctl reset-failed kprov-test-etcd 2>/dev/null; \
             systemd-run --unit=kprov-test-etcd /usr/bin/etcd {}",
            quoted.join(" ")
        ),
    );
}

/// `etcdctl` on the first master with the apiserver-etcd-client certificate.
fn etcdctl(command: &str) -> String {
    format!(
        "ETCDCTL_API=3 etcdctl --endpoints=https://127.0.0.1:2379 --cacert={PKI}/etcd/ca.crt \
         --cert={PKI}/apiserver-etcd-client.crt --key={PKI}/apiserver-etcd-client.key \
         --dial-timeout=3s --command-timeout=5s {command}"
    )
}

/// Retries `cmd` on `host` for up to 20 s until it succeeds; returns its output.
fn eventually(lab: &Lab, host: &str, cmd: &str, what: &str) -> String {
    let mut last = String::new();
    for _ in 0..40 {
        let out = lab.ssh(host, cmd);
        last = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if out.status.success() {
            return last;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    let log = lab.ssh(host, "journalctl -u kprov-test-etcd --no-pager | tail -20");
    panic!("{what}: {last}\n{}", String::from_utf8_lossy(&log.stdout));
}

/// No private key (as PEM or base64 of PEM) and no token secret in anything a run printed.
fn no_secrets(run: &Run, token_secret: &str, what: &str) {
    assert!(!run.text.contains("PRIVATE KEY"), "{what} printed a key");
    // base64 of "-----BEGIN": no PEM travels in events or logs, encoded or not.
    assert!(
        !run.text.contains("LS0tLS1CRUdJTi"),
        "{what} printed base64 PEM"
    );
    assert!(
        !run.text.contains(token_secret),
        "{what} printed the token secret"
    );
}

#[test]
fn two_masters_and_a_node_on_a_three_host_lab() {
    let lab = Lab::up(LAB, 3);
    let dir = tempfile::tempdir().expect("temp dir");
    let (inv, spec) = write_inputs(&lab, dir.path());
    let (m1_ip, m2_ip) = (lab.address(M1), lab.address(M2));

    // Two masters without control_plane.endpoint: refused before anything changes.
    let refused = run(&[
        "apply",
        "playbooks/cluster.yaml",
        "-i",
        &inv,
        "--spec",
        NO_ENDPOINT_SPEC,
        "-e",
        "kubelet_install=false",
        "--output",
        "json",
    ]);
    assert_ne!(refused.code, Some(0), "{}", refused.text);
    assert!(
        refused.text.contains("control_plane.endpoint"),
        "{}",
        refused.text
    );
    assert!(
        refused.text.contains("nothing was changed"),
        "{}",
        refused.text
    );
    assert!(
        !lab.ssh(M1, "test -e /etc/kubernetes").status.success(),
        "nothing written after the spec was refused"
    );

    // Plan on fresh hosts: master 2's join waits for master 1's keys, known after apply.
    let fresh = run(&[
        "plan",
        "playbooks/cluster.yaml",
        "-i",
        &inv,
        "--spec",
        &spec,
        "-e",
        "kubelet_install=false",
        "--output",
        "json",
        "--detailed-exitcode",
        "-vv",
    ]);
    assert_eq!(fresh.code, Some(2), "{}", fresh.text);
    let status = |host: &str, task: &str| {
        fresh
            .events
            .iter()
            .find(|e| e["event"] == "task" && e["host"] == host && e["task"] == task)
            .map(|e| e["status"].as_str().unwrap_or_default().to_string())
            .unwrap_or_default()
    };
    assert_eq!(status(M2, CP_JOIN_TASK), "unknown", "{}", fresh.text);
    assert!(
        !fresh.events.iter().any(|e| e["status"] == "failed"),
        "{}",
        fresh.text
    );

    // First apply, JSON events and -v logs captured.
    let first = apply(&inv, &spec, &["--output", "json", "-vv"]);
    let token = sh(&lab, M1, "head -n1 /etc/kubernetes/kprov/bootstrap-token");
    let secret = token
        .trim()
        .split_once('.')
        .map(|(_, s)| s.to_string())
        .expect("token id.secret");
    no_secrets(&first, &secret, "first apply (--output json -vv)");
    no_secrets(&fresh, &secret, "plan on fresh hosts (--output json -vv)");

    // The shared files are the same bytes on both masters (compared by hash on the hosts).
    let shared =
        "ca.crt ca.key front-proxy-ca.crt front-proxy-ca.key etcd/ca.crt etcd/ca.key sa.key sa.pub";
    let hashes = format!("cd {PKI} && sha256sum {shared}");
    assert_eq!(sh(&lab, M1, &hashes), sh(&lab, M2, &hashes), "shared files");
    let modes = sh(
        &lab,
        M2,
        &format!("cd {PKI} && stat -c '%a' {shared} apiserver.key /etc/kubernetes/bootstrap-kubelet.conf"),
    );
    assert_eq!(
        modes.split_whitespace().collect::<Vec<_>>(),
        ["644", "600", "644", "600", "644", "600", "600", "600", "600", "600"],
        "kubeadm's modes"
    );
    // Master 2's own leaves verify against master 1's CA (copied here to compare).
    let ca1 = sh(&lab, M1, &format!("cat {PKI}/ca.crt"));
    let etcd_ca1 = sh(&lab, M1, &format!("cat {PKI}/etcd/ca.crt"));
    let fp_ca1 = sh(&lab, M1, &format!("cat {PKI}/front-proxy-ca.crt"));
    for (name, pem) in [("ca", &ca1), ("etcd-ca", &etcd_ca1), ("fp-ca", &fp_ca1)] {
        sh(
            &lab,
            M2,
            &format!("cat > /tmp/m1-{name}.crt <<'EOF'\n{pem}EOF"),
        );
    }
    for (ca, leaf) in [
        ("ca", "apiserver.crt"),
        ("ca", "apiserver-kubelet-client.crt"),
        ("fp-ca", "front-proxy-client.crt"),
        ("etcd-ca", "etcd/server.crt"),
        ("etcd-ca", "etcd/peer.crt"),
        ("etcd-ca", "etcd/healthcheck-client.crt"),
        ("etcd-ca", "apiserver-etcd-client.crt"),
    ] {
        let out = sh(
            &lab,
            M2,
            &format!("openssl verify -CAfile /tmp/m1-{ca}.crt {PKI}/{leaf}"),
        );
        assert!(out.contains(": OK"), "{leaf}: {out}");
    }
    let leaf_hashes = format!("sha256sum {PKI}/apiserver.crt {PKI}/etcd/peer.crt");
    assert_ne!(
        sh(&lab, M1, &leaf_hashes),
        sh(&lab, M2, &leaf_hashes),
        "leaves are node-local"
    );
    let sans = sh(
        &lab,
        M2,
        &format!("openssl x509 -in {PKI}/apiserver.crt -noout -ext subjectAltName"),
    );
    assert!(
        sans.contains(&format!("IP Address:{m2_ip}"))
            && sans.contains(&format!("IP Address:{m1_ip}"))
            && sans.contains(&format!("DNS:{M2}")),
        "master 2's address and the endpoint in the SANs: {sans}"
    );
    let flags = etcd_flags(&lab, M2);
    assert!(
        flags.contains(&format!(
            "--initial-cluster={M1}=https://{m1_ip}:2380,{M2}=https://{m2_ip}:2380"
        )) && flags.contains(&"--initial-cluster-state=existing".to_string()),
        "{flags:?}"
    );
    for absent in [
        "/etc/kubernetes/super-admin.conf",
        "/etc/kubernetes/kubelet.conf",
    ] {
        assert!(
            !lab.ssh(M2, &format!("test -e {absent}")).status.success(),
            "{absent}"
        );
    }
    let admin = sh(&lab, M2, "grep 'server:' /etc/kubernetes/admin.conf");
    assert!(admin.contains(&format!("https://{m1_ip}:6443")), "{admin}");
    // The node joins through the first master's CA and token, and gets no key.
    assert_eq!(sh(&lab, NODE, &format!("cat {PKI}/ca.crt")), ca1);
    let node_token = sh(
        &lab,
        NODE,
        "sed -n 's/^ *token: //p' /etc/kubernetes/bootstrap-kubelet.conf",
    );
    if node_token.trim() != token.trim() {
        // Ids only (never the secrets), and how the tasks that carry the token ran.
        let id = |t: &str| t.trim().split('.').next().unwrap_or_default().to_string();
        let steps: Vec<String> = first
            .events
            .iter()
            .filter(|e| {
                e["event"] == "task"
                    && e["task"].as_str().is_some_and(|t| {
                        t.starts_with("Control-plane certificates")
                            || t.starts_with("CA, bootstrap token")
                            || t.starts_with("Join files")
                    })
            })
            .map(|e| {
                format!(
                    "{} {} {} {}ms",
                    e["host"], e["task"], e["status"], e["duration_ms"]
                )
            })
            .collect();
        panic!(
            "the node joined with token id {} but the first master holds {}: {steps:#?}",
            id(&node_token),
            id(&token)
        );
    }
    assert!(!lab
        .ssh(NODE, &format!("test -e {PKI}/ca.key"))
        .status
        .success());
    // The first master's etcd is not running: the member add waits, and says so.
    let waiting = summary(
        &first,
        M2,
        "This master's etcd member in the first master's etcd cluster",
    );
    assert!(waiting.contains("not added"), "{waiting}");

    // Second apply (human output, -v) changes nothing and prints no secret.
    let second = apply(&inv, &spec, &["-v"]);
    no_secrets(&second, &secret, "second apply (-v)");
    let second_json = apply(&inv, &spec, &["--output", "json"]);
    assert_eq!(changed(&second_json), 0, "second apply changed something");

    // Real etcd on both masters: the first alone, then the play adds the second member as
    // a learner, the second starts and joins, and the play promotes it.
    install_etcd(&lab, M1);
    install_etcd(&lab, M2);
    start_etcd(&lab, M1);
    eventually(&lab, M1, &etcdctl("endpoint health"), "etcd on master 1");
    let add = apply(&inv, &spec, &["--output", "json", "-v"]);
    no_secrets(&add, &secret, "apply adding the etcd member");
    assert_eq!(changed(&add), 1, "only the member add: {}", add.text);
    let members = sh(&lab, M1, &etcdctl("member list"));
    assert!(
        members.contains(&format!("unstarted, , https://{m2_ip}:2380, , true")),
        "added as a learner, not started: {members}"
    );
    let waiting = apply(&inv, &spec, &["--output", "json"]);
    assert_eq!(
        changed(&waiting),
        0,
        "a learner that does not run yet waits"
    );
    assert!(
        summary(&waiting, M2, ETCD_TASK).contains("not running yet"),
        "{}",
        waiting.text
    );
    start_etcd(&lab, M2);
    eventually(
        &lab,
        M1,
        &format!("{} | grep -q 'started, {M2},'", etcdctl("member list")),
        "the learner started",
    );
    let promote = apply(&inv, &spec, &["--output", "json"]);
    assert_eq!(changed(&promote), 1, "the promotion: {}", promote.text);
    assert!(
        summary(&promote, M2, ETCD_TASK).contains("promote"),
        "{}",
        promote.text
    );
    let health = eventually(
        &lab,
        M1,
        &etcdctl("endpoint health --cluster"),
        "both etcd members healthy",
    );
    assert!(
        health.contains(&format!("https://{m1_ip}:2379 is healthy"))
            && health.contains(&format!("https://{m2_ip}:2379 is healthy")),
        "{health}"
    );
    let again = apply(&inv, &spec, &["--output", "json"]);
    assert_eq!(changed(&again), 0, "member present: nothing to do");
    let plan = run(&[
        "plan",
        "playbooks/cluster.yaml",
        "-i",
        &inv,
        "--spec",
        &spec,
        "-e",
        "kubelet_install=false",
        "--detailed-exitcode",
        "-vv",
    ]);
    assert_eq!(plan.code, Some(0), "plan after apply:\n{}", plan.text);
    no_secrets(&plan, &secret, "plan (-vv)");
    let members = sh(&lab, M1, &etcdctl("member list"));
    assert_eq!(members.lines().count(), 2, "{members}");
    assert!(
        members.contains(&format!(
            "started, {M2}, https://{m2_ip}:2380, https://{m2_ip}:2379, false"
        )),
        "{members}"
    );

    // `kprov reset` of master 2 (reset.yaml limited to it) first removes its etcd member;
    // master 1 keeps working.
    let remove = |what: &str| {
        let r = run(&[
            "apply", RESET, "-i", &inv, "--spec", &spec, "--limit", M2, "--output", "json", "-vv",
        ]);
        assert_eq!(r.code, Some(0), "{what}:\n{}", r.text);
        no_secrets(&r, &secret, what);
        r
    };
    let status = |r: &Run| {
        r.events
            .iter()
            .find(|e| e["event"] == "task" && e["host"] == M2 && e["task"] == REMOVE_TASK)
            .map(|e| e["status"].as_str().unwrap_or_default().to_string())
            .unwrap_or_else(|| panic!("no `{REMOVE_TASK}` on {M2}:\n{}", r.text))
    };
    assert_eq!(status(&remove("reset of master 2")), "changed");
    let members = sh(&lab, M1, &etcdctl("member list"));
    assert!(
        members.lines().count() == 1 && !members.contains(&m2_ip),
        "{members}"
    );
    eventually(&lab, M1, &etcdctl("endpoint health"), "master 1 alone");
    let again = remove("second reset of master 2");
    assert_eq!(status(&again), "ok");
    assert_eq!(changed(&again), 0, "{}", again.text);
    sh(&lab, M1, "systemctl stop kprov-test-etcd");
    // A removed member's etcd stops by itself.
    let _ = lab.ssh(M2, "systemctl stop kprov-test-etcd");
}
