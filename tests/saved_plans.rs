//! Saved plans on a real 2-host lab: `kprov plan --out FILE` then `kprov apply FILE`
//! makes exactly the planned changes; a host edited by hand in between is refused (exit
//! 6, nothing done on it) while the other is applied, and `--allow-drift` plans it again;
//! changed inputs (a playbook edited, other `-e` values) refuse the whole file; a plan of
//! `playbooks/cluster.yaml` made on fresh hosts and applied later gives the same cluster
//! as a direct apply, and the file holds none of its keys or tokens.

mod common;

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;

use common::{events, kprov, sh, Lab};
use serde_json::Value;

const SPEC: &str = "tests/fixtures/cluster-lab.yaml";

/// Exit code, events, stderr.
fn run(args: &[&str]) -> (Option<i32>, Vec<Value>, String) {
    let out = kprov(args);
    (
        out.status.code(),
        events(&out.stdout),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn plan_to(inv: &str, playbook: &str, file: &str, extra: &[&str]) -> Vec<Value> {
    let mut args = vec![
        "plan", playbook, "-i", inv, "--spec", SPEC, "--out", file, "--output", "json",
    ];
    args.extend_from_slice(extra);
    let (code, ev, err) = run(&args);
    assert_eq!(code, Some(0), "plan {playbook}:\n{err}");
    ev
}

/// (host, task) of every task event with `status`.
fn with_status(events: &[Value], status: &str) -> BTreeSet<(String, String)> {
    events
        .iter()
        .filter(|e| e["event"] == "task" && e["status"] == status)
        .map(|e| {
            (
                e["host"].as_str().unwrap_or_default().to_string(),
                e["task"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn changed_count(events: &[Value]) -> u64 {
    events
        .iter()
        .find(|e| e["event"] == "run_done")
        .and_then(|e| e["changed"].as_u64())
        .unwrap_or(u64::MAX)
}

#[test]
fn saved_plans_apply_exactly_what_was_planned() {
    let lab = Lab::up("kt-saved", 2);
    let inv = lab.inventory_str();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("prep.plan");
    let file = file.to_str().unwrap();

    // plan → apply: exactly the planned changes.
    let planned = plan_to(inv, "playbooks/node-prep.yaml", file, &[]);
    let mode = std::fs::metadata(file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "plan files are private");
    let to_change = with_status(&planned, "changed");
    assert!(to_change.len() > 10, "{to_change:?}");
    let (code, applied, err) = run(&["apply", file, "--output", "json"]);
    assert_eq!(code, Some(0), "apply of the plan:\n{err}");
    let made = with_status(&applied, "changed");
    assert!(
        made.is_subset(&to_change),
        "apply made changes the plan did not show: {:?}",
        made.difference(&to_change).collect::<Vec<_>>()
    );
    // A planned change an earlier task made moot (installing containerd creates its
    // configuration directory) is found done; nothing else may differ.
    let moot: BTreeSet<_> = to_change.difference(&made).cloned().collect();
    assert!(
        moot.is_subset(&with_status(&applied, "ok")) && moot.len() <= 2,
        "planned but not made: {moot:?}"
    );
    // Applied, the plan no longer matches the hosts: refused as a whole.
    let (code, _, err) = run(&["apply", file]);
    assert_eq!(code, Some(6), "an applied plan is refused:\n{err}");
    assert!(
        err.contains("master: refused") && err.contains("node1: refused"),
        "{err}"
    );

    // A converged plan, then a hand edit on node1: node1 is refused and untouched, the
    // master applied; --allow-drift plans node1 again.
    plan_to(inv, "playbooks/node-prep.yaml", file, &[]);
    let modules = "/etc/modules-load.d/k8s.conf";
    sh(&lab, "node1", &format!("echo edited-by-hand >>{modules}"));
    let (code, ev, err) = run(&["apply", file, "--output", "json"]);
    assert_eq!(code, Some(6), "drift on node1:\n{err}");
    assert!(
        err.contains("node1: refused") && err.contains(file) && !err.contains("master: refused"),
        "{err}"
    );
    assert!(
        err.contains("Kernel modules"),
        "the drifted task is named: {err}"
    );
    assert!(
        ev.iter()
            .all(|e| e["host"] != "node1" || e["event"] == "run_started"),
        "nothing ran on node1"
    );
    assert!(
        ev.iter()
            .any(|e| e["event"] == "host_done" && e["host"] == "master"),
        "the master was applied"
    );
    assert!(sh(&lab, "node1", &format!("cat {modules}")).contains("edited-by-hand"));
    let (code, ev, err) = run(&["apply", file, "--allow-drift", "--output", "json"]);
    assert_eq!(code, Some(0), "--allow-drift:\n{err}");
    assert!(err.contains("node1: planned again"), "{err}");
    assert!(with_status(&ev, "changed")
        .iter()
        .any(|(h, _)| h == "node1"));
    assert!(!sh(&lab, "node1", &format!("cat {modules}")).contains("edited-by-hand"));

    // Changed inputs refuse the file before any host is touched.
    plan_to(inv, "playbooks/node-prep.yaml", file, &["-e", "marker=1"]);
    let (code, _, err) = run(&["apply", file, "-e", "marker=2"]);
    assert_eq!(code, Some(6), "{err}");
    assert!(
        err.contains("-e values") && err.contains("nothing was changed"),
        "{err}"
    );
    let book = dir.path().join("own.yaml");
    std::fs::write(
        &book,
        "- hosts: all\n  tasks:\n    - name: A marker file\n      file: {path: /etc/kprov-saved-marker, content: \"one\\n\"}\n",
    )
    .unwrap();
    plan_to(inv, book.to_str().unwrap(), file, &[]);
    std::fs::write(
        &book,
        "- hosts: all\n  tasks:\n    - name: A marker file\n      file: {path: /etc/kprov-saved-marker, content: \"two\\n\"}\n",
    )
    .unwrap();
    let (code, _, err) = run(&["apply", file]);
    assert_eq!(code, Some(6), "{err}");
    assert!(
        err.contains("the playbook") && err.contains("own.yaml"),
        "{err}"
    );
    assert_eq!(
        sh(
            &lab,
            "master",
            "test -e /etc/kprov-saved-marker && echo yes || echo no"
        )
        .trim(),
        "no"
    );
    let (code, _, err) = run(&["apply", file, "-i", inv]);
    assert_eq!(code, Some(64), "-i with a plan file: {err}");

    // The cluster, planned on hosts without one and applied later.
    let cluster = dir.path().join("cluster.plan");
    let cluster = cluster.to_str().unwrap();
    plan_to(
        inv,
        "playbooks/cluster.yaml",
        cluster,
        &["-e", "kubelet_install=false"],
    );
    let (code, _, err) = run(&["apply", cluster, "-e", "kubelet_install=false"]);
    assert_eq!(code, Some(0), "apply of the cluster plan:\n{err}");
    let ca = sh(&lab, "master", "cat /etc/kubernetes/pki/ca.crt");
    assert_eq!(
        sh(&lab, "node1", "cat /etc/kubernetes/pki/ca.crt"),
        ca,
        "the node trusts the master's CA"
    );
    let (code, ev, err) = run(&common::cluster_args(
        "apply",
        "playbooks/cluster.yaml",
        inv,
        SPEC,
    ));
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(changed_count(&ev), 0, "{:?}", with_status(&ev, "changed"));
    // No key, token or password of the cluster is in either plan file.
    let text = std::fs::read_to_string(cluster).unwrap() + &std::fs::read_to_string(file).unwrap();
    assert!(!text.contains("PRIVATE KEY"), "a key in the plan file");
    let token = sh(
        &lab,
        "master",
        "head -n 1 /etc/kubernetes/kprov/bootstrap-token",
    );
    let secret = token.trim().split('.').nth(1).unwrap_or("");
    assert!(secret.len() >= 16, "token secret {token:?}");
    assert!(
        !text.contains(secret),
        "the bootstrap token is in the plan file"
    );
    for key in ["ca.key", "sa.key", "front-proxy-ca.key", "etcd/ca.key"] {
        let body = sh(
            &lab,
            "master",
            &format!("sed -n 2p /etc/kubernetes/pki/{key}"),
        );
        assert!(
            body.trim().len() > 20 && !text.contains(body.trim()),
            "{key} is in the plan file"
        );
    }
}
