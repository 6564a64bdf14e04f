//! A kubespray-shaped directory inventory (INI + group_vars) driving a real SSH run on a lab,
//! with the cluster hosts reachable only through the bastion: their sshd refuses this
//! machine and lets in only the bastion host, as behind a real jump host. Host keys are
//! checked on both hops against the lab's known-hosts file, named the Ansible way
//! (`-o UserKnownHostsFile=` in `ansible_ssh_common_args`).

mod common;

use std::path::Path;

use common::{kprov, sh, Lab};

const LAB: &str = "inv";

#[test]
fn directory_inventory_through_a_bastion() {
    let lab = Lab::up(LAB, 3);
    let (bastion, cp, worker) = (
        lab.address("master"),
        lab.address("node1"),
        lab.address("node2"),
    );
    for host in ["node1", "node2"] {
        sh(
            &lab,
            host,
            &format!(
                "echo 'AllowUsers root@{bastion}' >> /etc/ssh/sshd_config && \
                 (systemctl reload ssh || systemctl reload sshd)"
            ),
        );
    }
    // This machine is refused now: only the bastion gets in.
    let direct = kprov(&["facts", "-i", lab.inventory_str(), "--limit", "node1"]);
    assert_eq!(
        direct.status.code(),
        Some(4),
        "node1 must refuse this machine"
    );

    let state = Path::new("/var/lib/kprov/lab").join(&lab.name);
    let (key, known_hosts) = (state.join("key"), state.join("known_hosts"));
    let dir = tempfile::tempdir().unwrap();
    let inv = dir.path().join("mycluster");
    std::fs::create_dir_all(inv.join("group_vars")).unwrap();
    std::fs::write(
        inv.join("inventory.ini"),
        format!(
            "[all]\ngateway ansible_host={bastion}\ncp ansible_host={cp}\n\
             worker ansible_host={worker} ip={worker}\n\n[bastion]\ngateway\n\n\
             [kube_control_plane]\ncp\n\n[etcd:children]\nkube_control_plane\n\n\
             [kube_node]\nworker\n\n[k8s_cluster:children]\nkube_control_plane\nkube_node\n"
        ),
    )
    .unwrap();
    std::fs::write(
        inv.join("group_vars/all.yml"),
        format!(
            "ansible_user: root\nansible_ssh_private_key_file: {}\nansible_port: \"22\"\n\
             ansible_ssh_common_args: \"-o UserKnownHostsFile={}\"\n",
            key.display(),
            known_hosts.display()
        ),
    )
    .unwrap();
    std::fs::write(
        inv.join("group_vars/k8s_cluster.yml"),
        "probe_word: from-group-vars\n",
    )
    .unwrap();
    let playbook = dir.path().join("probe.yaml");
    std::fs::write(
        &playbook,
        "- name: probe\n  hosts: all\n  tasks:\n    - name: probe file\n      copy: { path: /root/kprov-bastion-probe, content: \"{{ probe_word }} {{ inventory_hostname }}\\n\" }\n",
    )
    .unwrap();
    let inv_arg = inv.to_str().unwrap();
    let probe = |host: &str| {
        std::fs::read_to_string(
            Path::new("/var/lib/kprov/lab")
                .join(&lab.name)
                .join("hosts")
                .join(host)
                .join("upper/root/kprov-bastion-probe"),
        )
        .ok()
    };

    // kubespray's habit of turning host-key checking off is refused before any host is
    // touched, at its line in the group_vars file.
    let host_vars = inv.join("host_vars");
    std::fs::create_dir_all(&host_vars).unwrap();
    std::fs::write(
        host_vars.join("worker.yml"),
        "ansible_host_key_checking: false\n",
    )
    .unwrap();
    let out = kprov(&["apply", playbook.to_str().unwrap(), "-i", inv_arg]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("host_vars/worker.yml:1:28")
            && stderr.contains("without verifying host keys")
            && stderr.contains("ssh-keyscan"),
        "{stderr}"
    );
    assert_eq!(
        probe("node1"),
        None,
        "validation failed: nothing may change"
    );
    std::fs::remove_file(host_vars.join("worker.yml")).unwrap();

    let out = kprov(&["apply", playbook.to_str().unwrap(), "-i", inv_arg]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");

    assert_eq!(probe("node1").as_deref(), Some("from-group-vars cp\n"));
    assert_eq!(probe("node2").as_deref(), Some("from-group-vars worker\n"));
    assert_eq!(probe("master"), None, "the bastion gets no cluster task");

    // --limit with kubespray's group name, through the bastion again: nothing to change.
    let out = kprov(&[
        "plan",
        playbook.to_str().unwrap(),
        "-i",
        inv_arg,
        "--limit",
        "kube_node",
        "--detailed-exitcode",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("worker") && !stdout.contains("cp "),
        "{stdout}"
    );
}
