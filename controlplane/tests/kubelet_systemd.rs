//! The kubelet unit and kubeadm drop-in pass `systemd-analyze verify` (no unknown
//! keys, no syntax errors) in a root holding the host's systemd units; the
//! node marks kubeadm applies are as documented.

mod common;

use common::*;
use kprov_controlplane::{join_files, kubelet_unit, new_token, node_marks, NodeParams};

#[test]
fn kubelet_unit_and_drop_in_verify_with_systemd() {
    let p = params("1.31.0");
    let master = init(&p);
    let ca = find(&master, "/etc/kubernetes/pki/ca.crt").content.clone();
    let worker = NodeParams::new("worker-1", "192.0.2.11".parse().unwrap());
    let mut files = join_files(&p, &worker, &new_token(&p, now()), &ca).unwrap();
    files.push(kubelet_unit());
    let root = tempfile::tempdir().unwrap();
    write_all(root.path(), &files);
    // systemd-analyze needs the standard targets and an executable ExecStart.
    let (ok, out) = sh(&format!(
        "mkdir -p {r}/usr/lib/systemd {r}/usr/bin && cp -r /lib/systemd/system {r}/usr/lib/systemd/ && cp /bin/true {r}/usr/bin/kubelet",
        r = root.path().display()
    ));
    assert!(ok, "{out}");
    let (ok, out) = run(
        "systemd-analyze",
        &[
            "verify",
            &format!("--root={}", root.path().display()),
            "kubelet.service",
        ],
    );
    assert!(ok && out.trim().is_empty(), "systemd-analyze verify: {out}");
    // The check can fail: an unknown key is reported.
    let drop_in = under(
        root.path(),
        "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf",
    );
    let mut text = std::fs::read_to_string(&drop_in).unwrap();
    text.push_str("NoSuchKey=1\n");
    std::fs::write(&drop_in, text).unwrap();
    let (_, out) = run(
        "systemd-analyze",
        &[
            "verify",
            &format!("--root={}", root.path().display()),
            "kubelet.service",
        ],
    );
    assert!(out.contains("NoSuchKey"), "{out}");
}

#[test]
fn node_marks_follow_kubeadm() {
    let p = params("1.30.0");
    let worker = node_marks(&p.cri_socket, false, false);
    assert!(worker.labels.is_empty() && worker.taints.is_empty());
    assert_eq!(
        worker.annotations["kubeadm.alpha.kubernetes.io/cri-socket"],
        "unix:///run/containerd/containerd.sock"
    );
    let cp = node_marks(&p.cri_socket, true, false);
    assert_eq!(
        cp.labels.keys().collect::<Vec<_>>(),
        [
            "node-role.kubernetes.io/control-plane",
            "node.kubernetes.io/exclude-from-external-load-balancers"
        ]
    );
    assert_eq!(
        (cp.taints[0].key.as_str(), cp.taints[0].effect.as_str()),
        ("node-role.kubernetes.io/control-plane", "NoSchedule")
    );
    // control_plane.schedulable: the labels stay, the taint goes.
    let single = node_marks(&p.cri_socket, true, true);
    assert_eq!(single.labels, cp.labels);
    assert!(single.taints.is_empty());
}
