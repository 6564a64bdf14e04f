//! Inventories as kubespray users bring them (files shaped like kubespray's sample and docs,
//! written for these tests): INI, a directory with group_vars/host_vars, a bastion, the YAML
//! of the docs. Asserts the resolved addresses, connection settings, groups and warnings.

mod common;

use std::path::Path;
use std::time::Duration;

use common::fixture;
use kprov_engine::inventory;
use kprov_engine::transport::Target;

fn names(hosts: &[&inventory::Host]) -> Vec<String> {
    hosts.iter().map(|h| h.name.clone()).collect()
}

#[test]
fn directory_inventory_applies_group_vars_and_host_vars_with_ansible_precedence() {
    let dir = fixture("kubespray/mycluster");
    let inv = inventory::load(&dir).expect("kubespray-shaped directory loads");
    let host = |n: &str| inv.host(n).unwrap_or_else(|| panic!("host {n}"));
    assert_eq!(names(&inv.masters()), ["node1", "node2"]);
    assert_eq!(names(&inv.group("nodes")), ["node3", "node4"]);
    assert_eq!(
        names(&inv.group("k8s_cluster")),
        ["node1", "node2", "node3", "node4"]
    );
    assert!(
        inv.groups.contains_key("calico_rr"),
        "empty child group exists"
    );

    // ansible_host is where SSH goes; kubespray's `ip` is the cluster address.
    assert_eq!(host("node1").ssh_address, "192.0.2.11");
    assert_eq!(host("node1").address, "10.3.0.1");
    assert_eq!(Target::for_host(host("node1")).address, "192.0.2.11");

    // group_vars/all < group_vars/kube_node < inline host var < host_vars file.
    assert_eq!(host("node1").user, "ubuntu");
    assert_eq!(
        host("node3").user,
        "worker-admin",
        "group_vars/kube_node beats all and [kube_node:vars]"
    );
    assert_eq!(
        host("node4").user,
        "admin",
        "inline host variable beats group_vars"
    );
    assert_eq!(host("node1").port, 2222, "ansible_port as a string");
    assert_eq!(host("node3").port, 2200, "host_vars/node3.yml");
    assert_eq!(host("node3").vars["node_role"], "special-worker");
    assert_eq!(host("node4").vars["node_role"], "worker");
    assert_eq!(host("node4").vars["node_labels"]["tier"], "workers");
    assert_eq!(host("node1").vars["kube_proxy_mode"], "ipvs");
    assert!(
        host("node1").become_,
        "ansible_become from group_vars/k8s_cluster"
    );
    assert_eq!(
        host("node1").known_hosts_file.as_deref(),
        Some(dir.join("known_hosts").as_path()),
        "-o UserKnownHostsFile in ansible_ssh_common_args, relative to the inventory"
    );
    assert!(
        host("node1").ssh_options.is_empty(),
        "{:?}",
        host("node1").ssh_options
    );
    assert_eq!(
        host("node1").identity_file.as_deref(),
        Some(dir.join("keys/cluster_ed25519").as_path())
    );
    assert!(
        !host("node1").vars.contains_key("ansible_user"),
        "connection vars are consumed"
    );

    // Unhonoured Ansible variables: one warning each, at their file and line.
    let warned: Vec<(String, usize, String)> = inv
        .warnings
        .iter()
        .map(|w| {
            (
                w.file.file_name().unwrap().to_string_lossy().into_owned(),
                w.line,
                w.message.clone(),
            )
        })
        .collect();
    assert_eq!(
        warned,
        [(
            "all.yml".to_string(),
            7,
            "`ansible_python_interpreter` is ignored: kprov runs no Python on the hosts"
                .to_string()
        )],
        "ansible_become_user: root is what kprov does anyway"
    );

    // --limit takes the names of the file as well as kprov's.
    assert_eq!(
        names(&inv.select(Some("kube_node")).unwrap()),
        ["node3", "node4"]
    );
    assert_eq!(
        names(&inv.select(Some("kube_control_plane")).unwrap()),
        ["node1", "node2"]
    );
    assert_eq!(
        names(&inv.select(Some("nodes,node1")).unwrap()),
        ["node1", "node3", "node4"]
    );
    let typo = inv.select(Some("kube_nodes")).unwrap_err();
    assert_eq!(typo.0[0].hint.as_deref(), Some("did you mean `kube_node`?"));
}

#[test]
fn the_inventory_file_alone_reads_the_group_vars_beside_it() {
    let file = fixture("kubespray/mycluster/inventory.ini");
    let inv = inventory::load(&file).unwrap();
    assert_eq!(inv.host("node3").unwrap().user, "worker-admin");
    assert_eq!(
        inv,
        inventory::load(&fixture("kubespray/mycluster")).unwrap()
    );
}

#[test]
fn bastion_hosts_are_jump_hosts_only() {
    let inv = inventory::load(&fixture("kubespray/bastion")).unwrap();
    assert_eq!(
        names(&inv.hosts.iter().collect::<Vec<_>>()),
        ["cp1", "w1", "w2"]
    );
    assert_eq!(inv.bastions.len(), 1);
    assert!(inv
        .groups
        .values()
        .all(|m| !m.iter().any(|h| h == "bastion")));
    assert!(
        inv.select(Some("bastion")).is_err(),
        "the bastion gets no task"
    );
    let bastion = &inv.bastions[0];
    assert_eq!(
        (
            bastion.ssh_address.as_str(),
            bastion.port,
            bastion.user.as_str()
        ),
        ("198.51.100.7", 2022, "jump")
    );

    let cp1 = Target::for_host(inv.host("cp1").unwrap());
    let proxy = cp1
        .ssh_options
        .iter()
        .find(|(k, _)| k == "ProxyCommand")
        .map(|(_, v)| v.clone())
        .expect("cp1 goes through the bastion");
    for part in [
        "-p 2022",
        "-l 'jump'",
        "-W [%h]:%p",
        "'198.51.100.7'",
        "-i '/keys/id_ed25519'",
        "BatchMode=yes",
    ] {
        assert!(proxy.contains(part), "{part} in {proxy}");
    }
    // A host with its own jump keeps it.
    let w2 = inv.host("w2").unwrap();
    assert_eq!(
        w2.ssh_options,
        [("ProxyJump".to_string(), "ops@other-jump:22".to_string())]
    );
    // `ansible_connection=local` in `[all:vars]` is honoured, as Ansible does: every
    // host runs with the local shell (so no warning).
    assert!(inv.warnings.is_empty(), "{:?}", inv.warnings);
    assert!(inv.hosts.iter().all(|h| h.local), "{:?}", inv.hosts);
}

#[test]
fn yaml_inventory_of_the_docs_with_access_ip_and_proxy_command() {
    let inv = inventory::load(&fixture("kubespray/yaml/hosts.yaml")).unwrap();
    let node1 = inv.host("node1").unwrap();
    let node2 = inv.host("node2").unwrap();
    assert_eq!(
        (node1.ssh_address.as_str(), node1.address.as_str()),
        ("192.0.2.21", "10.4.0.1")
    );
    assert_eq!(node2.address, "10.4.0.2", "access_ip when ip is unset");
    assert_eq!(
        node2.ssh_options,
        [(
            "ProxyCommand".to_string(),
            "ssh -W %h:%p -q ops@192.0.2.99".to_string()
        )]
    );
    assert_eq!(node1.connect_timeout, Duration::from_secs(10));
}

#[test]
fn an_etcd_group_other_than_the_control_plane_is_refused_naming_the_hosts() {
    let text = "[kube_control_plane]\ncp1 ansible_host=10.0.0.1\n[etcd]\ncp1\ne1 ansible_host=10.0.0.9\n[kube_node]\nw1 ansible_host=10.0.0.2\n";
    let err = inventory::from_str(Path::new("inventory.ini"), text).unwrap_err();
    assert_eq!(err.len(), 1, "{err}");
    let d = &err.0[0];
    assert_eq!((d.line, d.column), (3, 2), "{d}");
    assert!(
        d.message
            .contains("stacked on the `kube_control_plane` hosts")
            && d.message.contains("e1 not in `kube_control_plane`"),
        "{d}"
    );
    // The same hosts (kubespray's `[etcd:children] kube_control_plane`) are fine.
    let same =
        "[kube_control_plane]\ncp1 ansible_host=10.0.0.1\n[etcd:children]\nkube_control_plane\n";
    inventory::from_str(Path::new("inventory.ini"), same).unwrap();
}

#[test]
fn ini_errors_point_at_line_and_column() {
    let text = "[all]\nnode1 ansible_host=10.0.0.1 ansible_port=abc\n[kube_control_plane]\nnode1\nnode2 ansible_ssh_common_args='-o ProxyCommand=\"ssh {{ bastion }}\"'\n";
    let err = inventory::from_str(Path::new("inventory.ini"), text).unwrap_err();
    let got: Vec<(usize, usize, &str)> = err
        .iter()
        .map(|d| (d.line, d.column, d.message.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (2, 42, "`abc` is not a port number such as 22"),
            (
                5,
                31,
                "templates (`{{ … }}`) are not rendered in inventories"
            ),
        ],
        "{err}"
    );
}

#[test]
fn host_ranges_and_ports_in_ini() {
    let text = "[kube_control_plane]\ncp[1:2].example.com\n[kube_node]\nworker[01:03] ansible_user=ops\ndb.example.com:2222\n";
    let inv = inventory::from_str(Path::new("hosts"), text);
    // FQDN names are not node names: the error says what to write.
    let err = inv.unwrap_err();
    assert!(
        err.iter()
            .any(|d| d.message.contains("invalid host name `cp1.example.com`")),
        "{err}"
    );
    let text = "[kube_control_plane]\ncp[1:2] ansible_host=10.0.0.1\n[kube_node]\nworker[01:03] ansible_user=ops\n";
    let err = inventory::from_str(Path::new("hosts"), text).unwrap_err();
    assert!(
        err.iter()
            .any(|d| d.message.contains("also used by host `cp1`")),
        "{err}"
    );
    let text =
        "[kube_control_plane]\ncp1\n[kube_node]\nworker[01:03] ansible_user=ops\nlast:2022\n";
    let inv = inventory::from_str(Path::new("hosts"), text).unwrap();
    assert_eq!(
        names(&inv.group("nodes")),
        ["worker01", "worker02", "worker03", "last"]
    );
    assert_eq!(inv.host("worker02").unwrap().user, "ops");
    assert_eq!(inv.host("last").unwrap().port, 2022);
}

#[test]
fn a_directory_with_two_inventories_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("inventory.ini"),
        "[kube_control_plane]\ncp1\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("hosts.yaml"), "all: {}\n").unwrap();
    std::fs::write(dir.path().join("README.md"), "ignored\n").unwrap();
    let err = inventory::load(dir.path()).unwrap_err();
    assert!(
        err.0[0].message.contains("hosts.yaml, inventory.ini"),
        "{err}"
    );
    std::fs::remove_file(dir.path().join("hosts.yaml")).unwrap();
    let inv = inventory::load(dir.path()).unwrap();
    assert_eq!(names(&inv.masters()), ["cp1"]);
}

/// kubespray users who turned host-key checking off (in the INI, a `[group:vars]` section
/// or `group_vars/`) get one error at each place, in that file, and nothing connects.
#[test]
fn settings_that_skip_host_key_checks_are_refused_in_the_file_that_has_them() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("inventory.ini"),
        "[kube_control_plane]\ncp1 ansible_host=10.0.0.1 ansible_host_key_checking=False\n\
         [kube_node]\nw1 ansible_host=10.0.0.2\n[kube_node:vars]\n\
         ansible_ssh_extra_args='-o StrictHostKeyChecking=accept-new'\n",
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("group_vars")).unwrap();
    std::fs::write(
        dir.path().join("group_vars/all.yml"),
        "ansible_user: ubuntu\nansible_host_key_checking: no\n",
    )
    .unwrap();
    let err = inventory::load(dir.path()).unwrap_err();
    let got: Vec<(String, usize, String)> = err
        .iter()
        .map(|d| {
            let file = d.file.file_name().unwrap().to_string_lossy().into_owned();
            (file, d.line, d.key.clone())
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "all.yml".to_string(),
                2,
                "ansible_host_key_checking".to_string()
            ),
            (
                "inventory.ini".to_string(),
                2,
                "all.children.kube_control_plane.hosts.cp1.ansible_host_key_checking".to_string()
            ),
            (
                "inventory.ini".to_string(),
                6,
                "all.children.kube_node.vars.ansible_ssh_extra_args".to_string()
            ),
        ],
        "{err}"
    );
    assert!(
        err.iter()
            .all(|d| d.message.contains("without verifying host keys")
                && d.hint.as_deref() == Some(inventory::UNVERIFIED_HOST_KEY_HINT)),
        "{err}"
    );
}
