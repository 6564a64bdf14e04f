//! A second computation keeps what is valid byte for byte and replaces exactly
//! what is not: missing SANs, foreign CAs, wrong keys, expiring certificates,
//! release changes; plus external-CA mode and expiry reports.

mod common;

use common::*;
use kprov_controlplane::{expiring, init_files, Artifact, Error, Existing, KUBELET_CLIENT_CURRENT};
use std::collections::BTreeSet;
use std::time::Duration;

/// kprov's record of the CA keys it holds on the first master.
const CA_KEYS_RECORD: &str = "/etc/kubernetes/kprov/ca-keys";
const DAY: Duration = Duration::from_secs(24 * 3600);

/// Paths whose content differs between two outputs.
fn changed(a: &[Artifact], b: &[Artifact]) -> BTreeSet<String> {
    let before = Existing::from_artifacts(a);
    let mut paths: BTreeSet<String> = b
        .iter()
        .filter(|x| before.get(&x.path) != Some(&x.content[..]))
        .map(|x| x.path.clone())
        .collect();
    let after: BTreeSet<&str> = b.iter().map(|x| x.path.as_str()).collect();
    paths.extend(
        a.iter()
            .filter(|x| !after.contains(x.path.as_str()))
            .map(|x| x.path.clone()),
    );
    paths
}

fn set(paths: &[&str]) -> BTreeSet<String> {
    paths.iter().map(|p| p.to_string()).collect()
}

fn verify(artifacts: &[Artifact], ca: &str, leaf: &str) -> bool {
    let dir = tempfile::tempdir().unwrap();
    write_all(dir.path(), artifacts);
    let path = |p: &str| {
        under(dir.path(), &format!("/etc/kubernetes/pki/{p}.crt"))
            .to_str()
            .unwrap()
            .to_string()
    };
    run("openssl", &["verify", "-CAfile", &path(ca), &path(leaf)]).0
}

#[test]
fn second_run_returns_identical_artifacts() {
    for minor in [28, 29, 30, 31] {
        let p = params(&format!("1.{minor}.0"));
        let first = init(&p);
        let second = init_files(
            &p,
            &node(),
            &Existing::from_artifacts(&first),
            now() + Duration::from_secs(3600),
        )
        .unwrap();
        assert_eq!(
            first, second,
            "1.{minor}: a second apply must change nothing"
        );
        assert!(changed(&first, &second).is_empty());
    }
}

#[test]
fn a_missing_san_reissues_only_the_apiserver_certificate() {
    let mut p = params("1.30.0");
    let first = init(&p);
    p.cert_sans.push("new.example.test".into());
    let second = init_files(&p, &node(), &Existing::from_artifacts(&first), now()).unwrap();
    assert_eq!(
        changed(&first, &second),
        set(&[
            "/etc/kubernetes/pki/apiserver.crt",
            "/etc/kubernetes/pki/apiserver.key"
        ])
    );
    assert!(verify(&second, "ca", "apiserver"));
    // Removing a SAN again keeps the (still covering) certificate.
    p.cert_sans.pop();
    let third = init_files(&p, &node(), &Existing::from_artifacts(&second), now()).unwrap();
    assert!(changed(&second, &third).is_empty());
}

#[test]
fn a_certificate_from_another_ca_or_with_a_foreign_key_is_reissued() {
    let p = params("1.31.0");
    let ours = init(&p);
    let theirs = init(&p);
    let mut mixed = Existing::from_artifacts(&ours);
    for path in [
        "/etc/kubernetes/pki/apiserver-etcd-client.crt",
        "/etc/kubernetes/pki/apiserver-etcd-client.key",
    ] {
        mixed
            .0
            .insert(path.into(), find(&theirs, path).content.clone());
    }
    // A key that does not belong to its certificate.
    mixed.0.insert(
        "/etc/kubernetes/pki/front-proxy-client.key".into(),
        find(&theirs, "/etc/kubernetes/pki/front-proxy-client.key")
            .content
            .clone(),
    );
    // An admin.conf whose client certificate was signed by the other cluster's CA.
    mixed.0.insert(
        "/etc/kubernetes/admin.conf".into(),
        find(&theirs, "/etc/kubernetes/admin.conf").content.clone(),
    );
    let fixed = init_files(&p, &node(), &mixed, now()).unwrap();
    assert_eq!(
        changed(&ours, &fixed),
        set(&[
            "/etc/kubernetes/admin.conf",
            "/etc/kubernetes/pki/apiserver-etcd-client.crt",
            "/etc/kubernetes/pki/apiserver-etcd-client.key",
            "/etc/kubernetes/pki/front-proxy-client.crt",
            "/etc/kubernetes/pki/front-proxy-client.key",
        ])
    );
    for path in [
        "/etc/kubernetes/pki/apiserver-etcd-client.crt",
        "/etc/kubernetes/pki/apiserver-etcd-client.key",
        "/etc/kubernetes/admin.conf",
    ] {
        assert_ne!(
            find(&fixed, path).content,
            find(&theirs, path).content,
            "{path} replaced"
        );
    }
    assert!(verify(&fixed, "etcd/ca", "apiserver-etcd-client"));
    assert!(verify(&fixed, "front-proxy-ca", "front-proxy-client"));
}

#[test]
fn a_broken_ca_is_an_error_and_removing_it_replaces_the_whole_tree_it_signs() {
    let p = params("1.29.0");
    let first = init(&p);
    let theirs = init(&p);
    let expect_ca_error = |existing: &Existing, at, path: &str, why: &str| match init_files(
        &p,
        &node(),
        existing,
        at,
    ) {
        Err(e @ Error::Ca { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains(&format!("CA {path} cannot be used"))
                    && msg.contains(why)
                    && msg.contains("remove"),
                "{msg}"
            );
            assert!(!msg.contains("PRIVATE KEY"), "{msg}");
        }
        other => panic!("expected a CA error ({why}), got {other:?}"),
    };
    let mut garbage = Existing::from_artifacts(&first);
    garbage.0.insert(
        "/etc/kubernetes/pki/etcd/ca.crt".into(),
        b"garbage".to_vec(),
    );
    expect_ca_error(
        &garbage,
        now(),
        "/etc/kubernetes/pki/etcd/ca.crt",
        "not a readable certificate",
    );
    let mut foreign_key = Existing::from_artifacts(&first);
    foreign_key.0.insert(
        "/etc/kubernetes/pki/etcd/ca.key".into(),
        find(&theirs, "/etc/kubernetes/pki/etcd/ca.key")
            .content
            .clone(),
    );
    expect_ca_error(
        &foreign_key,
        now(),
        "/etc/kubernetes/pki/etcd/ca.crt",
        "does not belong",
    );
    // Ten years and a day later the CA itself has expired.
    expect_ca_error(
        &Existing::from_artifacts(&first),
        now() + 3660 * DAY,
        "/etc/kubernetes/pki/ca.crt",
        "expired",
    );

    // Removing the CA files (what the message says) gives a new etcd tree.
    let mut removed = Existing::from_artifacts(&first);
    removed.0.remove("/etc/kubernetes/pki/etcd/ca.crt");
    removed.0.remove("/etc/kubernetes/pki/etcd/ca.key");
    let second = init_files(&p, &node(), &removed, now()).unwrap();
    let etcd_tree: BTreeSet<String> = first
        .iter()
        .map(|a| a.path.clone())
        .filter(|p| {
            p.starts_with("/etc/kubernetes/pki/etcd/") || p.contains("apiserver-etcd-client")
        })
        .collect();
    assert_eq!(changed(&first, &second), etcd_tree);
    assert!(verify(&second, "etcd/ca", "etcd/server") && verify(&second, "etcd/ca", "etcd/peer"));
}

#[test]
fn certificates_expiring_within_the_window_are_reported_and_renewed() {
    let p = params("1.31.0");
    let first = init(&p);
    let existing = Existing::from_artifacts(&first);
    let window = Duration::from_secs(30 * 24 * 3600);
    assert!(expiring(&existing, window, now()).is_empty());
    let later = now() + 340 * DAY;
    let due = expiring(&existing, window, later);
    let due_paths: BTreeSet<String> = due.iter().map(|(p, _)| p.clone()).collect();
    // Every leaf (.crt) and every kubeconfig client certificate, no CA.
    let expected: BTreeSet<String> = first
        .iter()
        .map(|a| a.path.clone())
        .filter(|p| {
            (p.ends_with(".crt") && !p.ends_with("ca.crt"))
                || (p.ends_with(".conf")
                    && p.starts_with("/etc/kubernetes/")
                    && !p.contains("kubelet.service"))
        })
        .collect();
    assert_eq!(due_paths, expected);
    for (_, when) in &due {
        let left = when.duration_since(later).unwrap();
        assert!(left > 24 * DAY && left < 26 * DAY, "{left:?}");
    }
    // Renewal at that time: leaves and kubeconfigs are new, CAs and sa keys kept.
    let renewed = init_files(&p, &node(), &existing, later).unwrap();
    let changed = changed(&first, &renewed);
    assert!(
        changed.contains("/etc/kubernetes/pki/apiserver.crt")
            && changed.contains("/etc/kubernetes/admin.conf")
    );
    for kept in [
        "/etc/kubernetes/pki/ca.crt",
        "/etc/kubernetes/pki/ca.key",
        "/etc/kubernetes/pki/sa.key",
        "/etc/kubernetes/pki/etcd/ca.key",
    ] {
        assert!(!changed.contains(kept), "{kept} must be kept");
    }
    assert!(expiring(&Existing::from_artifacts(&renewed), window, later).is_empty());
}

#[test]
fn upgrading_128_to_129_reissues_identities_whose_group_changed() {
    let old = params("1.28.5");
    let first = init(&old);
    let new = params("1.29.0");
    let second = init_files(&new, &node(), &Existing::from_artifacts(&first), now()).unwrap();
    let changed = changed(&first, &second);
    for path in [
        "/etc/kubernetes/pki/apiserver-kubelet-client.crt",
        "/etc/kubernetes/pki/apiserver-etcd-client.crt",
        "/etc/kubernetes/pki/etcd/healthcheck-client.crt",
        "/etc/kubernetes/admin.conf",
        "/etc/kubernetes/super-admin.conf",
    ] {
        assert!(changed.contains(path), "{path} must change: {changed:?}");
    }
    for path in [
        "/etc/kubernetes/pki/apiserver.crt",
        "/etc/kubernetes/pki/ca.crt",
        "/etc/kubernetes/scheduler.conf",
        "/etc/kubernetes/kubelet.conf",
    ] {
        assert!(!changed.contains(path), "{path} must be kept");
    }
}

#[test]
fn external_ca_mode_keeps_signed_files_and_refuses_to_invent_missing_ones() {
    let p = params("1.30.0");
    let first = init(&p);
    let mut existing = Existing::from_artifacts(&first);
    // A CA handed in without its key: kprov never held it, so it is not in the record.
    existing.0.remove("/etc/kubernetes/pki/ca.key");
    existing
        .0
        .insert(CA_KEYS_RECORD.into(), b"front-proxy-ca\netcd/ca\n".to_vec());
    let second = init_files(&p, &node(), &existing, now()).unwrap();
    assert_eq!(text(&second, CA_KEYS_RECORD), "front-proxy-ca\netcd/ca\n");
    assert!(!second
        .iter()
        .any(|a| a.path == "/etc/kubernetes/pki/ca.key"));
    let kcm = yaml_to_json(&text(
        &second,
        "/etc/kubernetes/manifests/kube-controller-manager.yaml",
    ));
    let command: Vec<&str> = kcm["spec"]["containers"][0]["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        command.contains(&"--cluster-signing-cert-file=")
            && command.contains(&"--cluster-signing-key-file="),
        "{command:?}"
    );
    existing.0.remove("/etc/kubernetes/pki/apiserver.crt");
    match init_files(&p, &node(), &existing, now()) {
        Err(Error::ExternalCa { path, ca_key }) => {
            assert_eq!(
                (path.as_str(), ca_key.as_str()),
                (
                    "/etc/kubernetes/pki/apiserver.crt",
                    "/etc/kubernetes/pki/ca.key"
                )
            )
        }
        other => panic!("expected ExternalCa, got {other:?}"),
    }
}

#[test]
fn a_ca_key_kprov_created_that_disappears_is_an_error_not_external_ca() {
    let p = params("1.30.0");
    let first = init(&p);
    assert_eq!(
        text(&first, CA_KEYS_RECORD),
        "ca\nfront-proxy-ca\netcd/ca\n"
    );
    for base in ["ca", "front-proxy-ca", "etcd/ca"] {
        let key = format!("/etc/kubernetes/pki/{base}.key");
        let mut existing = Existing::from_artifacts(&first);
        existing.0.remove(&key);
        match init_files(&p, &node(), &existing, now()) {
            Err(e @ Error::CaKeyLost { .. }) => {
                let message = e.to_string();
                assert!(
                    message.contains(&key) && message.contains("Restore"),
                    "{message}"
                );
            }
            other => panic!("{base}: expected CaKeyLost, got {other:?}"),
        }
    }
}

#[test]
fn a_ca_certificate_alone_that_signed_nothing_is_an_interrupted_init_and_completed() {
    // What a crash between writing ca.crt and ca.key left behind (before kprov wrote
    // its files as one set): a CA certificate, no key, no record, no leaf.
    let p = params("1.31.0");
    let first = init(&p);
    let ca = "/etc/kubernetes/pki/ca.crt";
    let mut existing = Existing::empty();
    existing
        .0
        .insert(ca.into(), find(&first, ca).content.clone());
    let second = init_files(&p, &node(), &existing, now()).unwrap();
    assert_ne!(find(&second, ca).content, find(&first, ca).content);
    assert!(second
        .iter()
        .any(|a| a.path == "/etc/kubernetes/pki/ca.key"));
    assert!(verify(&second, "ca", "apiserver"));
    assert_eq!(
        text(&second, CA_KEYS_RECORD),
        "ca\nfront-proxy-ca\netcd/ca\n"
    );
    // Once anything it signed is there, the same certificate is an external CA.
    let mut external = Existing::from_artifacts(&first);
    external.0.remove("/etc/kubernetes/pki/ca.key");
    external.0.remove(CA_KEYS_RECORD);
    let kept = init_files(&p, &node(), &external, now()).unwrap();
    assert_eq!(find(&kept, ca).content, find(&first, ca).content);
    assert!(!kept.iter().any(|a| a.path == "/etc/kubernetes/pki/ca.key"));
}

#[test]
fn a_kubelet_conf_rotated_by_the_kubelet_is_kept() {
    let p = params("1.31.0");
    let first = init(&p);
    let ca = find(&first, "/etc/kubernetes/pki/ca.crt").content.clone();
    use base64::Engine;
    let finalized = format!(
        "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: {}\n    server: https://192.0.2.10:6443\n  name: kubernetes\n\
         contexts:\n- context:\n    cluster: kubernetes\n    user: system:node:master-1\n  name: system:node:master-1@kubernetes\n\
         current-context: system:node:master-1@kubernetes\nkind: Config\nusers:\n- name: system:node:master-1\n  user:\n\
         {i}client-certificate: {KUBELET_CLIENT_CURRENT}\n    client-key: {KUBELET_CLIENT_CURRENT}\n",
        base64::engine::general_purpose::STANDARD.encode(&ca),
        i = "    ",
    );
    let mut existing = Existing::from_artifacts(&first);
    existing.0.insert(
        "/etc/kubernetes/kubelet.conf".into(),
        finalized.clone().into_bytes(),
    );
    let second = init_files(&p, &node(), &existing, now()).unwrap();
    assert_eq!(text(&second, "/etc/kubernetes/kubelet.conf"), finalized);
}

#[test]
fn bad_parameters_are_refused_with_the_field_name() {
    let mut p = params("1.31.0");
    p.control_plane_endpoint = Some("no-port".into());
    let e = init_files(&p, &node(), &Existing::empty(), now())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("control_plane_endpoint") && e.contains("host:port"),
        "{e}"
    );
    let p = params("1.31.0");
    let mut n = node();
    n.name = "Master_1".into();
    let e = init_files(&p, &n, &Existing::empty(), now())
        .unwrap_err()
        .to_string();
    assert!(e.contains("node name") && e.contains("DNS-1123"), "{e}");
}
