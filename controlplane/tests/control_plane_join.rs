//! Files of an additional control-plane node: shared CAs copied byte for byte,
//! node-local leaves signed by them, no super-admin.conf or kubelet.conf, etcd
//! joining the existing members, idempotent, clear errors.

mod common;

use common::*;
use kprov_controlplane::{
    control_plane_join_files, init_files, new_token, Error, Existing, NodeParams,
};

fn setup() -> (
    kprov_controlplane::ClusterParams,
    Vec<kprov_controlplane::Artifact>,
    NodeParams,
) {
    let mut p = params("1.31.0");
    p.control_plane_endpoint = Some("cp.example.test:6443".into());
    let first = init_files(&p, &node(), &Existing::empty(), now()).unwrap();
    (
        p,
        first,
        NodeParams::new("master-2", "192.0.2.11".parse().unwrap()),
    )
}

#[test]
fn joining_node_gets_shared_cas_and_its_own_leaves() {
    let (p, first, m2) = setup();
    let shared = Existing::from_artifacts(&first);
    let token = new_token(&p, now());
    let files = control_plane_join_files(
        &p,
        &m2,
        &shared,
        &[node()],
        &token,
        &Existing::empty(),
        now(),
    )
    .unwrap();
    let paths: Vec<&str> = files.iter().map(|a| a.path.as_str()).collect();
    assert!(
        !paths.contains(&"/etc/kubernetes/super-admin.conf")
            && !paths.contains(&"/etc/kubernetes/kubelet.conf"),
        "{paths:?}"
    );
    for path in [
        "/etc/kubernetes/admin.conf",
        "/etc/kubernetes/controller-manager.conf",
        "/etc/kubernetes/scheduler.conf",
        "/etc/kubernetes/bootstrap-kubelet.conf",
    ] {
        assert!(paths.contains(&path), "{path} missing");
    }
    for shared_file in [
        "ca.crt",
        "ca.key",
        "front-proxy-ca.crt",
        "front-proxy-ca.key",
        "etcd/ca.crt",
        "etcd/ca.key",
        "sa.key",
        "sa.pub",
    ] {
        let path = format!("/etc/kubernetes/pki/{shared_file}");
        assert_eq!(
            find(&files, &path).content,
            find(&first, &path).content,
            "{path} copied"
        );
    }
    for leaf in [
        "apiserver.crt",
        "apiserver.key",
        "etcd/server.crt",
        "etcd/peer.crt",
        "apiserver-etcd-client.key",
    ] {
        let path = format!("/etc/kubernetes/pki/{leaf}");
        assert_ne!(
            find(&files, &path).content,
            find(&first, &path).content,
            "{path} is node-local"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    write_all(dir.path(), &files);
    let pki = |n: &str| {
        under(dir.path(), &format!("/etc/kubernetes/pki/{n}"))
            .to_str()
            .unwrap()
            .to_string()
    };
    for (ca, leaf) in [
        ("ca", "apiserver"),
        ("etcd/ca", "etcd/peer"),
        ("front-proxy-ca", "front-proxy-client"),
    ] {
        let (ok, out) = run(
            "openssl",
            &[
                "verify",
                "-CAfile",
                &pki(&format!("{ca}.crt")),
                &pki(&format!("{leaf}.crt")),
            ],
        );
        assert!(ok, "{leaf}: {out}");
    }
    let (_, sans) = run(
        "openssl",
        &[
            "x509",
            "-in",
            &pki("apiserver.crt"),
            "-noout",
            "-ext",
            "subjectAltName",
        ],
    );
    assert!(
        sans.contains("DNS:master-2")
            && sans.contains("IP Address:192.0.2.11")
            && sans.contains("DNS:cp.example.test"),
        "{sans}"
    );
    assert!(!sans.contains("192.0.2.10"), "{sans}");
    let (_, subject) = run(
        "openssl",
        &["x509", "-in", &pki("etcd/server.crt"), "-noout", "-subject"],
    );
    assert!(subject.contains("CN = master-2"), "{subject}");

    let manifest = |name: &str| {
        yaml_to_json(&text(
            &files,
            &format!("/etc/kubernetes/manifests/{name}.yaml"),
        ))
    };
    let command = |name: &str| -> Vec<String> {
        manifest(name)["spec"]["containers"][0]["command"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };
    let etcd = command("etcd");
    assert!(
        etcd.contains(
            &"--initial-cluster=master-1=https://192.0.2.10:2380,master-2=https://192.0.2.11:2380"
                .to_string()
        ),
        "{etcd:?}"
    );
    assert!(
        etcd.contains(&"--initial-cluster-state=existing".to_string()),
        "{etcd:?}"
    );
    assert!(command("kube-apiserver").contains(&"--advertise-address=192.0.2.11".to_string()));
    assert_eq!(
        manifest("kube-apiserver")["metadata"]["annotations"]
            ["kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint"],
        "192.0.2.11:6443"
    );
    let server = |file: &str| {
        yaml_to_json(&text(&files, &format!("/etc/kubernetes/{file}")))["clusters"][0]["cluster"]
            ["server"]
            .clone()
    };
    assert_eq!(server("admin.conf"), "https://cp.example.test:6443");
    assert_eq!(server("scheduler.conf"), "https://192.0.2.11:6443");
    assert_eq!(
        server("bootstrap-kubelet.conf"),
        "https://cp.example.test:6443"
    );
    assert!(text(&files, "/etc/kubernetes/bootstrap-kubelet.conf").contains(&token.expose()));

    // A second apply changes nothing.
    let again = control_plane_join_files(
        &p,
        &m2,
        &shared,
        &[node()],
        &token,
        &Existing::from_artifacts(&files),
        now(),
    )
    .unwrap();
    assert_eq!(again, files);
}

#[test]
fn joining_needs_the_shared_files_and_an_endpoint() {
    let (mut p, first, m2) = setup();
    let token = new_token(&p, now());
    let mut shared = Existing::from_artifacts(&first);
    shared.0.remove("/etc/kubernetes/pki/front-proxy-ca.key");
    match control_plane_join_files(
        &p,
        &m2,
        &shared,
        &[node()],
        &token,
        &Existing::empty(),
        now(),
    ) {
        Err(e @ Error::MissingShared { .. }) => {
            assert!(
                e.to_string()
                    .contains("/etc/kubernetes/pki/front-proxy-ca.key")
                    && e.to_string().contains("copy"),
                "{e}"
            )
        }
        other => panic!("expected MissingShared, got {other:?}"),
    }
    // An unreadable shared service-account key is refused, not replaced by a new one.
    let mut garbled = Existing::from_artifacts(&first);
    garbled
        .0
        .insert("/etc/kubernetes/pki/sa.key".into(), b"not a key".to_vec());
    match control_plane_join_files(
        &p,
        &m2,
        &garbled,
        &[node()],
        &token,
        &Existing::empty(),
        now(),
    ) {
        Err(e @ Error::UnreadableShared { .. }) => {
            assert!(e.to_string().contains("/etc/kubernetes/pki/sa.key"), "{e}")
        }
        other => panic!("expected UnreadableShared, got {other:?}"),
    }
    p.control_plane_endpoint = None;
    let e = control_plane_join_files(
        &p,
        &m2,
        &Existing::from_artifacts(&first),
        &[node()],
        &token,
        &Existing::empty(),
        now(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("control_plane_endpoint"), "{e}");
}
