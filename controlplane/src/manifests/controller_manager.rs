//! kube-controller-manager static pod.

use super::{add_volume, ca_volumes, flags, probe, static_pod, LIVENESS, STARTUP};
use crate::{ClusterParams, NodeParams};
use serde_json::{json, Value};
use std::collections::BTreeMap;

pub(super) fn pod(
    p: &ClusterParams,
    node: &NodeParams,
    external_ca: bool,
) -> (&'static str, Value) {
    let pki = "/etc/kubernetes/pki";
    let kubeconfig = "/etc/kubernetes/controller-manager.conf";
    let mut args = BTreeMap::from([
        ("authentication-kubeconfig", kubeconfig.to_string()),
        ("authorization-kubeconfig", kubeconfig.into()),
        ("bind-address", "127.0.0.1".into()),
        ("client-ca-file", format!("{pki}/ca.crt")),
        ("cluster-name", p.cluster_name.clone()),
        ("cluster-signing-cert-file", format!("{pki}/ca.crt")),
        ("cluster-signing-key-file", format!("{pki}/ca.key")),
        ("controllers", "*,bootstrapsigner,tokencleaner".into()),
        ("kubeconfig", kubeconfig.into()),
        ("leader-elect", "true".into()),
        (
            "requestheader-client-ca-file",
            format!("{pki}/front-proxy-ca.crt"),
        ),
        ("root-ca-file", format!("{pki}/ca.crt")),
        ("service-account-private-key-file", format!("{pki}/sa.key")),
        ("use-service-account-credentials", "true".into()),
    ]);
    if external_ca {
        args.insert("cluster-signing-cert-file", String::new());
        args.insert("cluster-signing-key-file", String::new());
    }
    if let Some(pod_cidr) = &p.pod_cidr {
        args.insert("allocate-node-cidrs", "true".into());
        args.insert("cluster-cidr", pod_cidr.to_string());
        args.insert("service-cluster-ip-range", p.service_cidr.to_string());
    }
    let mut volumes = ca_volumes(p, node);
    add_volume(&mut volumes, "k8s-certs", pki, "DirectoryOrCreate", true);
    add_volume(&mut volumes, "kubeconfig", kubeconfig, "FileOrCreate", true);
    add_volume(
        &mut volumes,
        "flexvolume-dir",
        "/usr/libexec/kubernetes/kubelet-plugins/volume/exec",
        "DirectoryOrCreate",
        false,
    );
    let container = json!({
        "command": flags("kube-controller-manager", args),
        "image": p.component_image("kube-controller-manager"),
        "livenessProbe": probe("127.0.0.1", 10257, "/healthz", "HTTPS", LIVENESS),
        "startupProbe": probe("127.0.0.1", 10257, "/healthz", "HTTPS", STARTUP),
        "resources": {"requests": {"cpu": "200m"}},
    });
    (
        "kube-controller-manager",
        static_pod(
            "kube-controller-manager",
            None,
            &p.proxy_env,
            container,
            &volumes,
        ),
    )
}
