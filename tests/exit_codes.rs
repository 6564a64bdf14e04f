//! The exit codes of the README's table, one test each (1 on a local host here too; 1 and
//! 2 on ssh hosts are asserted by the lab tests `engine::a_failure_stops_only_its_host` (1) and
//! `engine::engine_on_a_three_host_lab` (2, `plan --detailed-exitcode`); 130 by
//! `interrupt::sigint_mid_apply_ends_the_remote_command_and_the_ssh_masters`; 4 mid-run by
//! `silent_host`; 5 by `run_lock`).

mod common;

use common::kprov;

mod repo {
    /// A file of the repository, as an argument.
    pub fn path(relative: &str) -> String {
        format!("{}/{relative}", env!("CARGO_MANIFEST_DIR"))
    }
}

fn code(args: &[&str]) -> (Option<i32>, String) {
    let out = kprov(args);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn exit_0_success_and_help() {
    let spec = repo::path("examples/cluster.yaml");
    let inv = repo::path("inventories/hosts.yaml");
    assert_eq!(code(&["validate", &spec, "-i", &inv]).0, Some(0));
    // Each file alone.
    for args in [&["validate", &spec][..], &["validate", "-i", &inv]] {
        let out = kprov(args);
        let said = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {said}");
        assert!(said.trim_end().ends_with(" is valid."), "{said}");
    }
    assert_eq!(code(&["--help"]).0, Some(0));
    assert_eq!(code(&["apply", "--help"]).0, Some(0));
    assert_eq!(code(&["--version"]).0, Some(0));
}

#[test]
fn exit_3_invalid_input() {
    let spec = repo::path("examples/cluster.yaml");
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("inventory.ini");
    std::fs::write(&bad, "[kube_control_plane]\ncp1 ansible_port=abc\n").unwrap();
    let (c, err) = code(&["validate", &spec, "-i", bad.to_str().unwrap()]);
    assert_eq!(c, Some(3), "{err}");
    assert!(err.contains("inventory.ini:2:"), "{err}");
    // An unknown --limit name is invalid input too, not a usage error.
    let inv = repo::path("inventories/hosts.yaml");
    let (c, err) = code(&["validate", &spec, "-i", &inv, "--limit", "nodez"]);
    assert_eq!(c, Some(3), "{err}");
    // A bad spec on its own, a bad inventory on its own.
    let bad_spec = dir.path().join("cluster.yaml");
    std::fs::write(
        &bad_spec,
        "kubernetes_version: \"1.31.2\"\nnetworking:\n  pod_cidr: 10.0.0.0/33\n",
    )
    .unwrap();
    let (c, err) = code(&["validate", bad_spec.to_str().unwrap()]);
    assert_eq!(c, Some(3), "{err}");
    assert!(err.contains("cluster.yaml:3:"), "{err}");
    let (c, err) = code(&["validate", "-i", bad.to_str().unwrap()]);
    assert_eq!(c, Some(3), "{err}");
}

#[test]
fn exit_64_usage_errors_never_2() {
    for args in [
        &["apply"][..],
        &["--bogus-flag", "validate"],
        &["plan", "x.yaml", "-i", "y", "--detailed-exit-code"],
        &["lab", "up", "--hosts", "0"],
        &[],
        // Neither file; flags where they mean nothing.
        &["validate"],
        &["lab", "status", "--limit", "node1"],
        &["schema", "spec", "--output", "json"],
        &["--limit", "node1", "facts", "-i", "x"],
        // A name that is no module.
        &["modules", "nosuch"],
    ] {
        let (c, err) = code(args);
        assert_eq!(c, Some(64), "kprov {args:?}: {err}");
        assert!(!err.is_empty(), "the usage error is explained");
    }
}

#[test]
fn exit_4_unreachable() {
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("hosts.yaml");
    // Port 1 on this machine: nothing listens, the connection is refused at once.
    std::fs::write(
        &inv,
        "ssh: { port: 1, connect_timeout: 2 }\nhosts:\n  cp1: { address: 127.0.0.1 }\ngroups:\n  masters: { hosts: [cp1] }\n",
    )
    .unwrap();
    let (c, err) = code(&["facts", "-i", inv.to_str().unwrap()]);
    assert_eq!(c, Some(4), "{err}");
}

/// Exit 1 on a host of this machine (`connection: local`), from a task that changed the
/// host before it failed: the human report and the JSON event both say it changed.
#[test]
fn exit_1_a_failed_task_that_changed_the_host_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let inventory = dir.path().join("hosts.yaml");
    std::fs::write(
        &inventory,
        format!(
            "hosts:\n  here:\n    address: 127.0.0.1\n    vars: {{ connection: local, \
             kprov_state_dir: {state} }}\ngroups:\n  masters: {{ hosts: [here] }}\n",
            state = serde_json::json!(dir.path().join("state")),
        ),
    )
    .unwrap();
    let playbook = dir.path().join("p.yaml");
    std::fs::write(
        &playbook,
        format!(
            "- name: p\n  hosts: all\n  tasks:\n    - name: made, then chown fails\n      \
             directory: {{ path: {path}, owner: nosuchuser-kprov }}\n",
            path = serde_json::json!(root.join("made")),
        ),
    )
    .unwrap();
    let (playbook, inventory) = (playbook.to_str().unwrap(), inventory.to_str().unwrap());
    let out = kprov(&["apply", playbook, "-i", inventory, "--color", "never"]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("cannot chown nosuchuser-kprov")
            && text.contains("the task changed the host before it failed"),
        "{text}"
    );
    assert!(root.join("made").is_dir());
    std::fs::remove_dir(root.join("made")).unwrap();
    let out = kprov(&["apply", playbook, "-i", inventory, "--output", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let failed: Vec<serde_json::Value> = common::events(&out.stdout)
        .into_iter()
        .filter(|e| e["status"] == "failed")
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["error"]["changed"], true, "{failed:?}");
}
