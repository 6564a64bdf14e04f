//! kube-apiserver static pod.

use super::{
    add_volume, ca_volumes, flags, loopback_for, probe, static_pod, LIVENESS, READINESS, STARTUP,
};
use crate::params::host_port;
use crate::{ClusterParams, NodeParams};
use serde_json::{json, Value};
use std::collections::BTreeMap;

pub(super) fn pod(p: &ClusterParams, node: &NodeParams) -> (&'static str, Value) {
    let pki = "/etc/kubernetes/pki";
    let ip = p.advertise_address.to_string();
    let etcd = format!(
        "https://{}",
        host_port(
            loopback_for(p.advertise_address)
                .parse()
                .unwrap_or(p.advertise_address),
            2379
        )
    );
    let args = BTreeMap::from([
        ("advertise-address", ip.clone()),
        ("allow-privileged", "true".into()),
        ("authorization-mode", "Node,RBAC".into()),
        ("client-ca-file", format!("{pki}/ca.crt")),
        ("enable-admission-plugins", "NodeRestriction".into()),
        ("enable-bootstrap-token-auth", "true".into()),
        ("etcd-cafile", format!("{pki}/etcd/ca.crt")),
        ("etcd-certfile", format!("{pki}/apiserver-etcd-client.crt")),
        ("etcd-keyfile", format!("{pki}/apiserver-etcd-client.key")),
        ("etcd-servers", etcd),
        (
            "kubelet-client-certificate",
            format!("{pki}/apiserver-kubelet-client.crt"),
        ),
        (
            "kubelet-client-key",
            format!("{pki}/apiserver-kubelet-client.key"),
        ),
        (
            "kubelet-preferred-address-types",
            "InternalIP,ExternalIP,Hostname".into(),
        ),
        (
            "proxy-client-cert-file",
            format!("{pki}/front-proxy-client.crt"),
        ),
        (
            "proxy-client-key-file",
            format!("{pki}/front-proxy-client.key"),
        ),
        ("requestheader-allowed-names", "front-proxy-client".into()),
        (
            "requestheader-client-ca-file",
            format!("{pki}/front-proxy-ca.crt"),
        ),
        (
            "requestheader-extra-headers-prefix",
            "X-Remote-Extra-".into(),
        ),
        ("requestheader-group-headers", "X-Remote-Group".into()),
        ("requestheader-username-headers", "X-Remote-User".into()),
        ("secure-port", p.bind_port.to_string()),
        (
            "service-account-issuer",
            format!("https://kubernetes.default.svc.{}", p.dns_domain),
        ),
        ("service-account-key-file", format!("{pki}/sa.pub")),
        ("service-account-signing-key-file", format!("{pki}/sa.key")),
        ("service-cluster-ip-range", p.service_cidr.to_string()),
        ("tls-cert-file", format!("{pki}/apiserver.crt")),
        ("tls-private-key-file", format!("{pki}/apiserver.key")),
    ]);
    let mut volumes = ca_volumes(p, node);
    add_volume(&mut volumes, "k8s-certs", pki, "DirectoryOrCreate", true);
    let port = p.bind_port;
    let container = json!({
        "command": flags("kube-apiserver", args),
        "image": p.component_image("kube-apiserver"),
        "livenessProbe": probe(&ip, port, "/livez", "HTTPS", LIVENESS),
        "readinessProbe": probe(&ip, port, "/readyz", "HTTPS", READINESS),
        "startupProbe": probe(&ip, port, "/livez", "HTTPS", STARTUP),
        "resources": {"requests": {"cpu": "250m"}},
    });
    let annotation = (
        "kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint",
        host_port(p.advertise_address, port),
    );
    (
        "kube-apiserver",
        static_pod(
            "kube-apiserver",
            Some(annotation),
            &p.proxy_env,
            container,
            &volumes,
        ),
    )
}
