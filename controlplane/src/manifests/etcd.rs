//! Local etcd static pod (kubeadm's stacked etcd).

use super::{
    add_volume, flags, loopback_for, probe, static_pod, Volumes, LIVENESS, READINESS, STARTUP,
};
use crate::params::host_port;
use crate::{ClusterParams, NodeParams};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// `peers`: the etcd members a joining control-plane node joins (empty on init).
pub(super) fn pod(
    p: &ClusterParams,
    node: &NodeParams,
    peers: &[NodeParams],
) -> (&'static str, Value) {
    let pki = "/etc/kubernetes/pki/etcd";
    let ip = p.advertise_address;
    let lo = loopback_for(ip);
    let lo_ip = lo.parse().unwrap_or(ip);
    let client_url = format!("https://{}", host_port(ip, 2379));
    let peer_url = format!("https://{}", host_port(ip, 2380));
    let mut args = BTreeMap::from([
        ("advertise-client-urls", client_url.clone()),
        ("cert-file", format!("{pki}/server.crt")),
        ("client-cert-auth", "true".into()),
        ("data-dir", "/var/lib/etcd".into()),
        ("experimental-initial-corrupt-check", "true".into()),
        ("experimental-watch-progress-notify-interval", "5s".into()),
        ("initial-advertise-peer-urls", peer_url.clone()),
        ("initial-cluster", format!("{}={peer_url}", node.name)),
        ("key-file", format!("{pki}/server.key")),
        (
            "listen-client-urls",
            format!("https://{},{client_url}", host_port(lo_ip, 2379)),
        ),
        (
            "listen-metrics-urls",
            format!("http://{}", host_port(lo_ip, 2381)),
        ),
        ("listen-peer-urls", peer_url),
        ("name", node.name.clone()),
        ("peer-cert-file", format!("{pki}/peer.crt")),
        ("peer-client-cert-auth", "true".into()),
        ("peer-key-file", format!("{pki}/peer.key")),
        ("peer-trusted-ca-file", format!("{pki}/ca.crt")),
        ("snapshot-count", "10000".into()),
        ("trusted-ca-file", format!("{pki}/ca.crt")),
    ]);
    if !peers.is_empty() {
        let cluster: Vec<String> = peers
            .iter()
            .filter(|m| m.name != node.name)
            .map(|m| format!("{}=https://{}", m.name, host_port(m.address, 2380)))
            .chain([format!(
                "{}={}",
                node.name, args["initial-advertise-peer-urls"]
            )])
            .collect();
        args.insert("initial-cluster", cluster.join(","));
        args.insert("initial-cluster-state", "existing".into());
    }
    let mut volumes = Volumes::new();
    add_volume(&mut volumes, "etcd-certs", pki, "DirectoryOrCreate", false);
    add_volume(
        &mut volumes,
        "etcd-data",
        "/var/lib/etcd",
        "DirectoryOrCreate",
        false,
    );
    let mut container = json!({
        "command": flags("etcd", args),
        "image": p.etcd_image(),
        "resources": {"requests": {"cpu": "100m", "memory": "100Mi"}},
    });
    if p.kubernetes_version.is_131_or_later() {
        container["livenessProbe"] = probe(lo, 2381, "/livez", "HTTP", LIVENESS);
        container["readinessProbe"] = probe(lo, 2381, "/readyz", "HTTP", READINESS);
        container["startupProbe"] = probe(lo, 2381, "/readyz", "HTTP", STARTUP);
    } else {
        container["livenessProbe"] = probe(
            lo,
            2381,
            "/health?exclude=NOSPACE&serializable=true",
            "HTTP",
            LIVENESS,
        );
        container["startupProbe"] = probe(lo, 2381, "/health?serializable=false", "HTTP", STARTUP);
    }
    let annotation = (
        "kubeadm.kubernetes.io/etcd.advertise-client-urls",
        client_url,
    );
    (
        "etcd",
        static_pod(
            "etcd",
            Some(annotation),
            &Default::default(),
            container,
            &volumes,
        ),
    )
}
