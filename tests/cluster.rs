//! `playbooks/cluster.yaml` and `playbooks/reset.yaml` on a real 3-host lab: the first
//! master's PKI verified with openssl on the host, nodes joined with the master's CA and
//! token, a real etcd started with the generated certificates and the manifest's flags,
//! idempotence, plan accuracy, reset and apply again.

mod common;

use common::{events, kprov, sh, Lab};
use serde_json::Value;

const LAB: &str = "kt-cluster";
const SPEC: &str = "tests/fixtures/cluster-lab.yaml";
const PKI: &str = "/etc/kubernetes/pki";

fn run(args: &[&str]) -> (Option<i32>, Vec<Value>, String) {
    let out = kprov(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code(), events(&out.stdout), stderr)
}

fn run_done(events: &[Value]) -> &Value {
    events
        .iter()
        .find(|e| e["event"] == "run_done")
        .expect("run_done event")
}

fn apply(inv: &str, playbook: &str) -> Vec<Value> {
    apply_with(inv, playbook, &[])
}

fn apply_with(inv: &str, playbook: &str, extra: &[&str]) -> Vec<Value> {
    let mut args = common::cluster_args("apply", playbook, inv, SPEC);
    args.extend_from_slice(extra);
    let (code, ev, err) = run(&args);
    assert_eq!(code, Some(0), "apply {playbook} failed:\n{err}");
    ev
}

/// Every leaf certificate (files and kubeconfig client certificates) verifies against
/// its CA; a leaf checked against the wrong CA fails.
fn verify_pki(lab: &Lab) {
    let pairs = [
        ("ca.crt", "apiserver.crt"),
        ("ca.crt", "apiserver-kubelet-client.crt"),
        ("front-proxy-ca.crt", "front-proxy-client.crt"),
        ("etcd/ca.crt", "etcd/server.crt"),
        ("etcd/ca.crt", "etcd/peer.crt"),
        ("etcd/ca.crt", "etcd/healthcheck-client.crt"),
        ("etcd/ca.crt", "apiserver-etcd-client.crt"),
    ];
    for (ca, leaf) in pairs {
        let out = sh(
            lab,
            "master",
            &format!("openssl verify -CAfile {PKI}/{ca} {PKI}/{leaf}"),
        );
        assert!(out.contains(": OK"), "{leaf}: {out}");
    }
    for conf in [
        "admin",
        "super-admin",
        "kubelet",
        "controller-manager",
        "scheduler",
    ] {
        let out = sh(
            lab,
            "master",
            &format!(
                "f=$(mktemp) && sed -n 's/^ *client-certificate-data: *//p' /etc/kubernetes/{conf}.conf | base64 -d >\"$f\" \
                 && openssl verify -CAfile {PKI}/ca.crt \"$f\"; rc=$?; rm -f \"$f\"; exit $rc"
            ),
        );
        assert!(out.contains(": OK"), "{conf}.conf: {out}");
    }
    let wrong = lab.ssh(
        "master",
        &format!("openssl verify -CAfile {PKI}/etcd/ca.crt {PKI}/apiserver.crt"),
    );
    assert!(
        !wrong.status.success(),
        "a leaf must not verify against another CA"
    );
    let sans = sh(
        lab,
        "master",
        &format!("openssl x509 -in {PKI}/apiserver.crt -noout -ext subjectAltName"),
    );
    assert!(
        sans.contains("k8s-api.lab.example") && sans.contains("10.99.0.1"),
        "cert_sans from the spec: {sans}"
    );
    let modes = sh(
        lab,
        "master",
        &format!("stat -c '%a %n' {PKI}/ca.key {PKI}/ca.crt /etc/kubernetes/admin.conf /etc/kubernetes/kprov/bootstrap-token"),
    );
    assert_eq!(
        modes.split_whitespace().step_by(2).collect::<Vec<_>>(),
        ["600", "644", "600", "600"],
        "{modes}"
    );
}

/// The CA pin a node's join task reported, from a first apply's events.
fn pinned_hash(events: &[Value], host: &str) -> String {
    events
        .iter()
        .filter(|e| e["event"] == "task" && e["host"] == host)
        .filter_map(|e| e["summary"].as_str())
        .find_map(|s| s.split("CA pinned by ").nth(1))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| panic!("no join summary with the CA pin for {host}"))
}

/// Starts Debian's etcd on the master with the flags of the generated manifest (as a
/// transient unit) and checks `endpoint health` with the apiserver-etcd-client cert.
fn etcd_runs_with_the_generated_certificates(lab: &Lab) {
    sh(
        lab,
        "master",
        "export DEBIAN_FRONTEND=noninteractive; command -v etcd >/dev/null || { \
         apt-get install -y -qq etcd-server etcd-client >/dev/null 2>&1 || \
         { apt-get update -qq && apt-get install -y -qq etcd-server etcd-client; }; }; \
         systemctl disable --now etcd >/dev/null 2>&1; rm -rf /var/lib/etcd/*; true",
    );
    let manifest = sh(lab, "master", "cat /etc/kubernetes/manifests/etcd.yaml");
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
    let quoted: Vec<String> = flags.iter().map(|f| format!("'{f}'")).collect();
    sh(
        lab,
        "master",
        &format!(
            "systemctl stop kprov-test-etcd 2>/dev/null; systemctl reset-failed kprov-test-etcd 2>/dev/null; \
             systemd-run --unit=kprov-test-etcd /usr/bin/etcd {}",
            quoted.join(" ")
        ),
    );
    let health = format!(
        "ETCDCTL_API=3 etcdctl --endpoints=https://127.0.0.1:2379 --cacert={PKI}/etcd/ca.crt \
         --cert={PKI}/apiserver-etcd-client.crt --key={PKI}/apiserver-etcd-client.key \
         --dial-timeout=3s --command-timeout=3s endpoint health"
    );
    let mut last = String::new();
    for _ in 0..40 {
        let out = lab.ssh("master", &health);
        last = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if out.status.success() {
            assert!(last.contains("is healthy"), "{last}");
            // A client certificate of another CA is refused.
            let wrong = lab.ssh(
                "master",
                &health.replace("apiserver-etcd-client", "apiserver-kubelet-client"),
            );
            assert!(
                !wrong.status.success(),
                "etcd accepted a certificate of another CA"
            );
            sh(lab, "master", "systemctl stop kprov-test-etcd");
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    let log = lab.ssh(
        "master",
        "journalctl -u kprov-test-etcd --no-pager | tail -20",
    );
    panic!(
        "etcd never became healthy: {last}\n{}",
        String::from_utf8_lossy(&log.stdout)
    );
}

#[test]
fn cluster_playbook_on_a_three_host_lab() {
    let lab = Lab::up(LAB, 3);
    let inv = lab.inventory_str();

    // Without a package source for kubelet the run stops with one clear message.
    let (code, _, err) = run(&["apply", "playbooks/cluster.yaml", "-i", inv, "--spec", SPEC]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("packages.kubernetes_repository") && err.contains("kubelet_install=false"),
        "{err}"
    );
    let none = lab.ssh("master", "test -e /etc/kubernetes/pki/ca.crt");
    assert!(
        !none.status.success(),
        "nothing written after the package check failed"
    );

    // Plan on hosts without a cluster: the join waits for values known after apply.
    let mut args = common::cluster_args("plan", "playbooks/cluster.yaml", inv, SPEC);
    args.push("--detailed-exitcode");
    let (code, plan, err) = run(&args);
    assert_eq!(code, Some(2), "{err}");
    let unknown: Vec<(&str, &str)> = plan
        .iter()
        .filter(|e| e["event"] == "task" && e["status"] == "unknown")
        .map(|e| {
            (
                e["host"].as_str().unwrap_or_default(),
                e["task"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    let joins = unknown
        .iter()
        .filter(|(_, task)| task.starts_with("Join files"))
        .count();
    assert_eq!(joins, 2, "the two joins are known after apply: {unknown:?}");
    assert!(!err.contains("PRIVATE KEY"));

    // First apply: control-plane files on the master, join files on the nodes.
    let first = apply(inv, "playbooks/cluster.yaml");
    verify_pki(&lab);
    let ca = sh(&lab, "master", &format!("cat {PKI}/ca.crt"));
    let token = sh(
        &lab,
        "master",
        "head -n1 /etc/kubernetes/kprov/bootstrap-token",
    );
    let token = token.trim();
    let printed = serde_json::to_string(&first).unwrap_or_default();
    assert!(
        !printed.contains(token) && !printed.contains("PRIVATE KEY"),
        "events must never carry keys or the token"
    );
    for node in ["node1", "node2"] {
        assert_eq!(
            sh(&lab, node, &format!("cat {PKI}/ca.crt")),
            ca,
            "{node} CA"
        );
        let openssl = sh(
            &lab,
            node,
            &format!("openssl x509 -pubkey -noout -in {PKI}/ca.crt | openssl pkey -pubin -outform der | sha256sum"),
        );
        let hash = format!("sha256:{}", openssl.split_whitespace().next().unwrap_or(""));
        assert_eq!(pinned_hash(&first, node), hash, "{node} discovery hash");
        // The bootstrap kubeconfig carries the master's token (compared on the host, so
        // the token never reaches the test output).
        sh(
            &lab,
            node,
            &format!("grep -q 'token: {token}$' /etc/kubernetes/bootstrap-kubelet.conf"),
        );
        let modes = sh(
            &lab,
            node,
            "stat -c '%a' /etc/kubernetes/bootstrap-kubelet.conf /var/lib/kubelet/config.yaml \
             /etc/systemd/system/kubelet.service.d/10-kubeadm.conf /etc/systemd/system/kubelet.service",
        );
        assert_eq!(
            modes.split_whitespace().collect::<Vec<_>>(),
            ["600", "644", "644", "644"],
            "join files, and the kubelet unit since no package installs it"
        );
        let absent = lab.ssh(node, &format!("test -e {PKI}/ca.key"));
        assert!(!absent.status.success(), "{node} must not get the CA key");
    }
    let flags = sh(&lab, "node1", "cat /var/lib/kubelet/kubeadm-flags.env");
    assert!(
        flags.contains("unix:///run/containerd/containerd.sock"),
        "{flags}"
    );
    let hash_file = sh(&lab, "master", "cat /etc/kubernetes/kprov/discovery-hash");
    assert_eq!(hash_file.trim(), pinned_hash(&first, "node1"));

    // Second apply changes nothing; plan agrees.
    let second = apply(inv, "playbooks/cluster.yaml");
    assert_eq!(
        run_done(&second)["changed"],
        0,
        "second apply changed something"
    );
    let (code, _, err) = run(&[
        "plan",
        "playbooks/cluster.yaml",
        "-i",
        inv,
        "--spec",
        SPEC,
        "-e",
        "kubelet_install=false",
        "--detailed-exitcode",
    ]);
    assert_eq!(
        code,
        Some(0),
        "plan after apply must show nothing to change:\n{err}"
    );
    assert_eq!(
        sh(
            &lab,
            "master",
            "head -n1 /etc/kubernetes/kprov/bootstrap-token"
        )
        .trim(),
        token,
        "the token stays stable across runs"
    );

    etcd_runs_with_the_generated_certificates(&lab);

    // Partial states: a pod volume still mounted on node1, a half-removed master.
    sh(
        &lab,
        "node1",
        "mkdir -p /var/lib/kubelet/pods/p1/volumes && mount -t tmpfs tmpfs /var/lib/kubelet/pods/p1/volumes \
         && touch /var/lib/kubelet/pods/p1/volumes/data",
    );
    sh(&lab, "master", "rm /etc/kubernetes/admin.conf");
    // node1 alone first (--limit), then everything, then again (idempotent).
    let one = apply_with(inv, "playbooks/reset.yaml", &["--limit", "node1"]);
    // kubeadm's reset and kprov's pod network (bridge conflist, routes, rules).
    assert_eq!(run_done(&one)["changed"], 2);
    sh(
        &lab,
        "node1",
        "test ! -e /etc/cni/net.d/10-kprov-bridge.conflist",
    );
    let mounts = sh(
        &lab,
        "node1",
        "grep -c ' /var/lib/kubelet' /proc/self/mounts || true",
    );
    assert_eq!(mounts.trim(), "0", "mounts under /var/lib/kubelet are gone");
    sh(&lab, "master", &format!("test -e {PKI}/ca.key"));
    let reset = apply(inv, "playbooks/reset.yaml");
    assert_eq!(
        run_done(&reset)["changed"],
        4,
        "master and node2, two tasks each"
    );
    let left = sh(
        &lab,
        "master",
        &format!("find {PKI} /etc/kubernetes/manifests /var/lib/etcd -mindepth 1"),
    );
    assert_eq!(left.trim(), "", "reset left files behind");
    sh(
        &lab,
        "master",
        "test ! -e /etc/kubernetes/admin.conf && test -d /etc/kubernetes/pki",
    );
    sh(
        &lab,
        "node1",
        "test ! -e /etc/kubernetes/bootstrap-kubelet.conf && test -z \"$(ls -A /var/lib/kubelet)\"",
    );
    let again = apply(inv, "playbooks/reset.yaml");
    assert_eq!(
        run_done(&again)["changed"],
        0,
        "second reset changed something"
    );

    let third = apply(inv, "playbooks/cluster.yaml");
    assert!(run_done(&third)["changed"].as_u64().unwrap_or(0) > 0);
    verify_pki(&lab);
    let new_ca = sh(&lab, "master", &format!("cat {PKI}/ca.crt"));
    assert_ne!(new_ca, ca, "reset then apply makes a new CA");
    assert_eq!(sh(&lab, "node2", &format!("cat {PKI}/ca.crt")), new_ca);
}
