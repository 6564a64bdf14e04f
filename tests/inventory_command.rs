//! `kprov inventory` shows an inventory the way kprov resolved it, shaped like
//! `ansible-inventory`: a directory like kubespray's (INI file, `group_vars/all/`,
//! `host_vars/`), with Ansible's precedence, kubespray's group names beside kprov's, the
//! cluster address from `ip`, and passwords never shown.

mod common;

use common::kprov;
use serde_json::Value;

fn kubespray_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("group_vars/all")).unwrap();
    std::fs::create_dir_all(root.join("host_vars")).unwrap();
    std::fs::write(
        root.join("inventory.ini"),
        "[all]\ncp1 ansible_host=192.0.2.11 ip=10.3.0.1\nwk1 ansible_host=192.0.2.12 ip=10.3.0.2\n\
         wk[2:3] ansible_user=admin\n\n\
         [kube_control_plane]\ncp1\n\n[etcd:children]\nkube_control_plane\n\n\
         [kube_node]\nwk1\nwk[2:3]\n\n[k8s_cluster:children]\nkube_control_plane\nkube_node\n",
    )
    .unwrap();
    std::fs::write(
        root.join("group_vars/all/all.yml"),
        "ansible_user: ubuntu\nansible_become_pass: do-not-print-me\n",
    )
    .unwrap();
    std::fs::write(root.join("host_vars/wk2.yml"), "ansible_port: \"2200\"\n").unwrap();
    dir
}

fn json(args: &[&str]) -> Value {
    let out = kprov(args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
    assert!(!stdout.contains("do-not-print-me") && !stderr.contains("do-not-print-me"));
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

#[test]
fn list_host_and_graph_show_the_resolved_inventory() {
    let dir = kubespray_dir();
    let inv = dir.path().to_str().unwrap();
    let list = json(&["inventory", "-i", inv, "--list"]);
    assert_eq!(list["masters"]["hosts"], serde_json::json!(["cp1"]));
    assert_eq!(
        list["kube_control_plane"]["hosts"],
        serde_json::json!(["cp1"])
    );
    assert_eq!(
        list["kube_node"]["hosts"],
        serde_json::json!(["wk1", "wk2", "wk3"])
    );
    assert_eq!(list["etcd"]["hosts"], serde_json::json!(["cp1"]));
    let cp1 = &list["_meta"]["hostvars"]["cp1"];
    assert_eq!(cp1["ansible_host"], "192.0.2.11");
    assert_eq!(cp1["ansible_user"], "ubuntu", "group_vars/all");
    assert_eq!(
        cp1["kprov"]["cluster_address"], "10.3.0.1",
        "kubespray's ip"
    );
    assert_eq!(cp1["ansible_become_pass"], "(hidden)");
    // The inline host variable beats group_vars/all; host_vars beats both.
    let wk2 = json(&["inventory", "-i", inv, "--host", "wk2"]);
    assert_eq!(wk2["ansible_user"], "admin");
    assert_eq!(wk2["ansible_port"], 2200);
    assert_eq!(json(&["inventory", "-i", inv])["_meta"], list["_meta"]);

    let out = kprov(&["inventory", "-i", inv, "--graph"]);
    let graph = String::from_utf8_lossy(&out.stdout);
    assert!(graph.starts_with("@all:\n"), "{graph}");
    assert!(
        graph.contains("  |--@kube_node:\n  |  |--wk1\n  |  |--wk2\n  |  |--wk3\n"),
        "{graph}"
    );

    let out = kprov(&["inventory", "-i", inv, "--host", "nope"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no host `nope`"));
    let out = kprov(&["inventory", "-i", inv, "--graph", "--host", "cp1"]);
    assert_eq!(out.status.code(), Some(64), "--graph and --host together");
}
