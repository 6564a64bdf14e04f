//! kubelet wiring: `config.yaml`, `kubeadm-flags.env`, the systemd drop-in.

use crate::{yaml, Artifact, ClusterParams, NodeParams};
use serde_json::json;
use std::collections::BTreeMap;

/// KubeletConfiguration path.
pub const CONFIG_PATH: &str = "/var/lib/kubelet/config.yaml";
/// Node-specific kubelet flags.
pub const FLAGS_PATH: &str = "/var/lib/kubelet/kubeadm-flags.env";
/// The drop-in the kubeadm deb/rpm package ships; kprov installs it when missing.
pub const DROP_IN_PATH: &str = "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf";

/// The KubeletConfiguration kubeadm stores in the `kubelet-config` ConfigMap and
/// writes to every node (same on all nodes).
pub(crate) fn config_yaml(p: &ClusterParams) -> String {
    let mut config = json!({
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "authentication": {
            "anonymous": {"enabled": false},
            "webhook": {"enabled": true},
            "x509": {"clientCAFile": "/etc/kubernetes/pki/ca.crt"},
        },
        "authorization": {"mode": "Webhook"},
        "cgroupDriver": p.cgroup_driver.as_str(),
        "clusterDNS": [p.dns_service_ip().to_string()],
        "clusterDomain": p.dns_domain,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": 10248,
        "rotateCertificates": true,
        "staticPodPath": "/etc/kubernetes/manifests",
    });
    if let Some(resolv) = &p.resolv_conf {
        config["resolvConf"] = json!(resolv);
    }
    yaml::to_yaml(&config)
}

/// `KUBELET_KUBEADM_ARGS`: CRI endpoint, pause image and the node's registration
/// taints (`--register-with-taints`, as kubeadm writes `nodeRegistration.taints`).
pub(crate) fn flags_env(p: &ClusterParams, node: &NodeParams, hostname: Option<&str>) -> String {
    let mut args = BTreeMap::from([
        (
            "container-runtime-endpoint".to_string(),
            p.cri_socket.clone(),
        ),
        ("pod-infra-container-image".to_string(), p.pause_image()),
    ]);
    if !node.register_taints.is_empty() {
        let taints: Vec<String> = node.register_taints.iter().map(|t| t.flag()).collect();
        args.insert("register-with-taints".into(), taints.join(","));
    }
    if hostname.is_some_and(|h| h != node.name) {
        args.insert("hostname-override".into(), node.name.clone());
    }
    // User extra args win, as kubeletExtraArgs do in kubeadm; flags sorted by name.
    args.extend(node.kubelet_extra_args.clone());
    let flags: Vec<String> = args.iter().map(|(k, v)| format!("--{k}={v}")).collect();
    format!("KUBELET_KUBEADM_ARGS=\"{}\"\n", flags.join(" "))
}

/// The `10-kubeadm.conf` drop-in (as in the kubeadm package).
pub(crate) fn drop_in() -> String {
    [
        "# Installed by kprov (same content as the kubeadm package's drop-in).",
        "[Service]",
        "Environment=\"KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf\"",
        "Environment=\"KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml\"",
        "# This is a file that \"kubeadm init\" and \"kubeadm join\" generate at runtime.",
        "EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env",
        "# User overrides (KUBELET_EXTRA_ARGS).",
        "EnvironmentFile=-/etc/default/kubelet",
        "ExecStart=",
        "ExecStart=/usr/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS $KUBELET_EXTRA_ARGS",
        "",
    ]
    .join("\n")
}

/// Where kprov installs the kubelet unit when no package provides one.
pub const UNIT_PATH: &str = "/etc/systemd/system/kubelet.service";

/// The kubelet unit the Kubernetes deb/rpm packages ship, for hosts where the
/// kubelet binary was installed without a package (mode 0644). The drop-in
/// supplies the real command line.
pub fn unit() -> Artifact {
    let text = [
        "[Unit]",
        "Description=kubelet: The Kubernetes Node Agent",
        "Documentation=https://kubernetes.io/docs/",
        "Wants=network-online.target",
        "After=network-online.target",
        "",
        "[Service]",
        "ExecStart=/usr/bin/kubelet",
        "Restart=always",
        "StartLimitInterval=0",
        "RestartSec=10",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
    ]
    .join("\n");
    Artifact::public(UNIT_PATH, text, 0o644)
}

/// config.yaml, kubeadm-flags.env and the drop-in for one node.
pub(crate) fn files(p: &ClusterParams, node: &NodeParams) -> Vec<Artifact> {
    vec![
        Artifact::public(CONFIG_PATH, config_yaml(p), 0o644),
        Artifact::public(
            FLAGS_PATH,
            flags_env(p, node, node.hostname.as_deref()),
            0o644,
        ),
        Artifact::public(DROP_IN_PATH, drop_in(), 0o644),
    ]
}
