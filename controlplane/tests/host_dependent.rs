//! Settings kubeadm derives from the host or from later cluster state: `resolvConf`,
//! CA-trust mounts, registration taints, kubelet-finalize, and the ClusterConfiguration
//! fields kubeadm stores per config API version.

mod common;

use common::*;
use kprov_controlplane::{
    cluster_objects, init_files, new_token, Existing, Taint, KUBELET_CLIENT_CURRENT,
};

const KUBELET_CONF: &str = "/etc/kubernetes/kubelet.conf";

#[test]
fn resolv_conf_reaches_the_kubelet_config_and_the_config_map() {
    let mut p = params("1.30.4");
    assert!(!text(&init(&p), "/var/lib/kubelet/config.yaml").contains("resolvConf"));
    p.resolv_conf = Some("/run/systemd/resolve/resolv.conf".into());
    let files = init(&p);
    let config = yaml_to_json(&text(&files, "/var/lib/kubelet/config.yaml"));
    assert_eq!(config["resolvConf"], "/run/systemd/resolve/resolv.conf");
    let ca = find(&files, "/etc/kubernetes/pki/ca.crt").content.clone();
    let objects = cluster_objects(&p, &new_token(&p, now()), &ca).unwrap();
    let kubelet_cm = objects
        .iter()
        .find(|o| o.contains("name: kubelet-config"))
        .expect("kubelet-config ConfigMap");
    assert!(kubelet_cm.contains("resolvConf: /run/systemd/resolve/resolv.conf"));
}

/// The volumes of one static pod, by name → host path.
fn volumes(files: &[kprov_controlplane::Artifact], pod: &str) -> Vec<(String, String)> {
    let pod = yaml_to_json(&text(
        files,
        &format!("/etc/kubernetes/manifests/{pod}.yaml"),
    ));
    pod["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["name"].as_str().unwrap().to_string(),
                v["hostPath"]["path"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn ca_trust_mounts_follow_the_directories_on_the_host() {
    let rhel_dirs = [
        "/etc/ssl/certs",
        "/etc/pki",
        "/etc/pki/ca-trust",
        "/etc/pki/tls/certs",
    ];
    for (version, want) in [
        ("1.30.2", vec!["/etc/pki"]),
        ("1.31.0", vec!["/etc/pki/ca-trust", "/etc/pki/tls/certs"]),
    ] {
        let p = params(version);
        let mut n = node();
        n.ca_trust_dirs = rhel_dirs.map(String::from).to_vec();
        let files = init_files(&p, &n, &Existing::empty(), now()).unwrap();
        for pod in ["kube-apiserver", "kube-controller-manager"] {
            let vols = volumes(&files, pod);
            let paths: Vec<&str> = vols.iter().map(|(_, p)| p.as_str()).collect();
            for dir in &want {
                assert!(paths.contains(dir), "{version} {pod}: {paths:?}");
            }
            assert!(paths.contains(&"/etc/ssl/certs"));
            // Debian's directories do not exist on this host: not mounted.
            assert!(!paths.contains(&"/usr/share/ca-certificates"), "{paths:?}");
            // kubeadm sorts volumes by name.
            let names: Vec<&String> = vols.iter().map(|(n, _)| n).collect();
            let mut sorted = names.clone();
            sorted.sort();
            assert_eq!(names, sorted);
        }
    }
}

#[test]
fn masters_register_with_the_control_plane_taint() {
    let p = params("1.31.0");
    let flags = |n: &kprov_controlplane::NodeParams| {
        let files = init_files(&p, n, &Existing::empty(), now()).unwrap();
        text(&files, "/var/lib/kubelet/kubeadm-flags.env")
    };
    let mut n = node();
    assert!(!flags(&n).contains("register-with-taints"));
    n.register_taints = vec![Taint::control_plane()];
    assert!(
        flags(&n)
            .contains("--register-with-taints=node-role.kubernetes.io/control-plane:NoSchedule"),
        "{}",
        flags(&n)
    );
}

#[test]
fn kubelet_finalize_points_kubelet_conf_at_the_rotated_certificate() {
    let p = params("1.31.0");
    let n = node();
    let first = init(&p);
    let embedded = yaml_to_json(&text(&first, KUBELET_CONF));
    assert!(embedded["users"][0]["user"]["client-certificate-data"].is_string());
    // The kubelet rotated its certificate: kubelet.conf now names the file.
    let mut existing = Existing::from_artifacts(&first);
    existing
        .0
        .insert(KUBELET_CLIENT_CURRENT.into(), b"rotated pem".to_vec());
    let second = init_files(&p, &n, &existing, now()).unwrap();
    let finalized = yaml_to_json(&text(&second, KUBELET_CONF));
    let user = &finalized["users"][0]["user"];
    assert_eq!(user["client-certificate"], KUBELET_CLIENT_CURRENT);
    assert_eq!(user["client-key"], KUBELET_CLIENT_CURRENT);
    assert!(user["client-certificate-data"].is_null());
    assert_eq!(
        finalized["clusters"], embedded["clusters"],
        "same CA and server"
    );
    // Fed back, nothing changes.
    let mut again = Existing::from_artifacts(&second);
    again
        .0
        .insert(KUBELET_CLIENT_CURRENT.into(), b"rotated pem".to_vec());
    assert_eq!(init_files(&p, &n, &again, now()).unwrap(), second);
}

#[test]
fn cluster_configuration_holds_kubeadms_stored_defaults() {
    for (version, api) in [("1.28.9", "v1beta3"), ("1.31.0", "v1beta4")] {
        let p = params(version);
        let files = init(&p);
        let ca = find(&files, "/etc/kubernetes/pki/ca.crt").content.clone();
        let objects = cluster_objects(&p, &new_token(&p, now()), &ca).unwrap();
        let cm = objects
            .iter()
            .map(|o| yaml_to_json(o))
            .find(|o| o["metadata"]["name"] == "kubeadm-config")
            .unwrap();
        let cc = yaml_to_json(cm["data"]["ClusterConfiguration"].as_str().unwrap());
        assert_eq!(cc["apiVersion"], format!("kubeadm.k8s.io/{api}"));
        if api == "v1beta3" {
            assert_eq!(
                cc["apiServer"]["extraArgs"]["authorization-mode"],
                "Node,RBAC"
            );
            assert_eq!(cc["apiServer"]["timeoutForControlPlane"], "4m0s");
        } else {
            assert_eq!(
                cc["apiServer"]["extraArgs"],
                serde_json::json!([{"name": "authorization-mode", "value": "Node,RBAC"}])
            );
            assert!(cc["apiServer"]["timeoutForControlPlane"].is_null());
        }
    }
}
