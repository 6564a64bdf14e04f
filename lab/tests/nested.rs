//! Nested containers: runc and CNI plugins (installed from the lab repository) work inside
//! a lab host, with delegated cgroup v1 controllers. Run as root.

mod common;

use common::{ssh_ok, ssh_with_input, unique_name, DownOnDrop};
use kprov_lab::UpOptions;

/// A minimal OCI runtime config: busybox sh with a 64 MiB memory limit.
fn container_config() -> String {
    let script = "echo hello from a nested container; \
                  cat /sys/fs/cgroup/memory/memory.limit_in_bytes; \
                  cat /sys/fs/cgroup/pids/pids.max";
    serde_json::json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": ["/bin/busybox", "sh", "-c", script],
            "env": ["PATH=/bin"],
            "cwd": "/",
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "nested",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]}
        ],
        "linux": {
            "resources": {
                "memory": {"limit": 67108864},
                "pids": {"limit": 64},
                "devices": [{"allow": false, "access": "rwm"}]
            },
            "namespaces": [
                {"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                {"type": "uts"}, {"type": "mount"}
            ]
        }
    })
    .to_string()
}

const CNI_CONFIG: &str = r#"{"cniVersion":"1.0.0","name":"kpt","type":"bridge","bridge":"kpt0","isGateway":true,"ipMasq":true,"ipam":{"type":"host-local","subnet":"10.88.7.0/24","dataDir":"/run/kpt-ipam"}}"#;

#[test]
fn runc_and_cni_work_inside_a_lab_host() {
    let name = unique_name("n");
    let _guard = DownOnDrop(name.clone());
    let status = kprov_lab::up(&UpOptions {
        name: name.clone(),
        hosts: 1,
        mirror: None,
    })
    .expect("lab up");
    assert!(status.all_ready());

    // The host sees its own delegated controller hierarchies.
    let cgroups = ssh_ok(&name, "master", &["ls", "/sys/fs/cgroup"]);
    for controller in [
        "cpu", "cpuacct", "memory", "pids", "devices", "freezer", "blkio", "cpuset", "systemd",
        "unified",
    ] {
        assert!(
            cgroups.lines().any(|l| l == controller),
            "{controller} missing: {cgroups}"
        );
    }

    ssh_ok(
        &name,
        "master",
        &["sh", "-c", "apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q runc busybox-static containernetworking-plugins iptables"],
    );

    // runc runs a busybox container with a memory and pids limit.
    ssh_ok(
        &name,
        "master",
        &[
            "sh",
            "-c",
            "mkdir -p /ctr/rootfs/bin && cp /bin/busybox /ctr/rootfs/bin/",
        ],
    );
    ssh_with_input(
        &name,
        "master",
        &["sh", "-c", "cat > /ctr/config.json"],
        container_config().as_bytes(),
    );
    let out = ssh_ok(
        &name,
        "master",
        &["sh", "-c", "cd /ctr && timeout 60 runc run kpt-nested"],
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        ["hello from a nested container", "67108864", "64"],
        "{out}"
    );
    let left = ssh_ok(&name, "master", &["runc", "list", "-q"]);
    assert_eq!(left.trim(), "", "runc left containers: {left}");

    // The CNI bridge plugin wires a network namespace inside the host, reachable by ping.
    ssh_with_input(
        &name,
        "master",
        &["sh", "-c", "cat > /tmp/kpt-cni.conf"],
        CNI_CONFIG.as_bytes(),
    );
    let cni = "export CNI_CONTAINERID=c1 CNI_NETNS=/run/netns/kpt-c1 CNI_IFNAME=eth0 CNI_PATH=/usr/lib/cni; \
               ip netns add kpt-c1 && \
               CNI_COMMAND=ADD /usr/lib/cni/bridge < /tmp/kpt-cni.conf >/dev/null && \
               ip -n kpt-c1 -4 -o addr show eth0 && \
               busybox ping -c1 -W5 10.88.7.2 >/dev/null && echo ping-ok && \
               CNI_COMMAND=DEL /usr/lib/cni/bridge < /tmp/kpt-cni.conf && ip netns del kpt-c1";
    let out = ssh_ok(&name, "master", &["sh", "-c", cni]);
    assert!(out.contains("inet 10.88.7.2/24"), "{out}");
    assert!(out.contains("ping-ok"), "{out}");

    kprov_lab::down(&name).expect("lab down");
    common::assert_gone(&status, None);
}
