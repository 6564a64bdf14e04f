//! Arguments shared by `kube_init` and `kube_join`: the cluster spec's values that
//! decide control-plane artifacts, and the node they are for.

use std::net::IpAddr;

use kprov_controlplane::{CgroupDriver, ClusterParams, NodeParams, ProxyMode, Taint};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::ModuleError;

/// Cluster-wide values (from the cluster spec) plus this node's name and address.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClusterArgs {
    /// Kubernetes release, e.g. "1.28.2" (1.28 to 1.31).
    pub kubernetes_version: String,
    /// IP address the first master's API server advertises.
    pub advertise_address: String,
    /// Stable API endpoint (`host` or `host:port`); default advertise address and port.
    pub control_plane_endpoint: Option<String>,
    /// API server port (default 6443).
    pub bind_port: Option<u16>,
    /// Pod network, e.g. 10.244.0.0/16.
    pub pod_cidr: Option<String>,
    /// Service network (default 10.96.0.0/12).
    pub service_cidr: Option<String>,
    /// Cluster DNS domain (default cluster.local).
    pub dns_domain: Option<String>,
    /// Registry of the control-plane images (default registry.k8s.io).
    pub image_repository: Option<String>,
    /// Extra API server certificate names.
    #[serde(default)]
    pub cert_sans: Vec<String>,
    /// CRI endpoint, e.g. unix:///run/containerd/containerd.sock.
    pub cri_socket: Option<String>,
    /// `systemd` (default) or `cgroupfs`.
    pub cgroup_driver: Option<String>,
    /// `iptables` (default), `ipvs` or `nftables`.
    pub kube_proxy_mode: Option<String>,
    /// This node's name (default: the inventory name, given by the role).
    pub node_name: String,
    /// This node's address.
    pub node_address: String,
    /// The host's own hostname, when it may differ from the node name.
    pub hostname: Option<String>,
    /// Also write `kubelet.service` (for kubelets not installed from a package).
    #[serde(default)]
    pub kubelet_unit: bool,
    /// kubelet `resolvConf`; empty for the kubelet's default (kubeadm sets
    /// `/run/systemd/resolve/resolv.conf` where systemd-resolved is active).
    pub resolv_conf: Option<String>,
    /// The host's CA-trust directories (facts); control-plane pods mount those kubeadm
    /// mounts. Default: Debian's.
    pub ca_trust_dirs: Option<Vec<String>>,
    /// Register the kubelet with the `node-role.kubernetes.io/control-plane:NoSchedule`
    /// taint (masters, unless `control_plane.schedulable`).
    #[serde(default)]
    pub control_plane_taint: bool,
}

impl ClusterArgs {
    /// The library's parameters; errors name the argument and the fix.
    pub fn params(&self, module: &str) -> Result<(ClusterParams, NodeParams), ModuleError> {
        let bad = |what: &str, e: &dyn std::fmt::Display| {
            ModuleError::args(module, format!("{what}: {e}"))
        };
        let version = self
            .kubernetes_version
            .parse()
            .map_err(|e| bad("kubernetes_version", &e))?;
        let advertise: IpAddr = self.advertise_address.trim().parse().map_err(|_| {
            ModuleError::args(
                module,
                format!(
                    "advertise_address `{}` is not an IP address; set control_plane.advertise_address in the cluster spec",
                    self.advertise_address
                ),
            )
        })?;
        let mut p = ClusterParams::new(version, advertise);
        if let Some(port) = self.bind_port {
            p.bind_port = port;
        }
        p.control_plane_endpoint = self
            .control_plane_endpoint
            .as_deref()
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(|e| with_port(e, p.bind_port));
        if let Some(cidr) = non_empty(&self.pod_cidr) {
            p.pod_cidr = Some(cidr.parse().map_err(|e| bad("pod_cidr", &e))?);
        }
        if let Some(cidr) = non_empty(&self.service_cidr) {
            p.service_cidr = cidr.parse().map_err(|e| bad("service_cidr", &e))?;
        }
        if let Some(domain) = non_empty(&self.dns_domain) {
            p.dns_domain = domain.to_string();
        }
        if let Some(repo) = non_empty(&self.image_repository) {
            p.image_repository = repo.to_string();
        }
        p.cert_sans = self.cert_sans.clone();
        if let Some(resolv) = non_empty(&self.resolv_conf) {
            if !resolv.starts_with('/') || resolv.contains(char::is_whitespace) {
                return Err(ModuleError::args(
                    module,
                    format!("resolv_conf `{resolv}` must be an absolute path without spaces"),
                ));
            }
            p.resolv_conf = Some(resolv.to_string());
        }
        if let Some(socket) = non_empty(&self.cri_socket) {
            p.cri_socket = socket.to_string();
        }
        p.cgroup_driver = match non_empty(&self.cgroup_driver) {
            None | Some("systemd") => CgroupDriver::Systemd,
            Some("cgroupfs") => CgroupDriver::Cgroupfs,
            Some(other) => {
                return Err(ModuleError::args(
                    module,
                    format!("cgroup_driver `{other}`: use systemd or cgroupfs"),
                ))
            }
        };
        p.kube_proxy_mode = match non_empty(&self.kube_proxy_mode) {
            None | Some("iptables") => ProxyMode::Iptables,
            Some("ipvs") => ProxyMode::Ipvs,
            Some("nftables") => ProxyMode::Nftables,
            Some(other) => {
                return Err(ModuleError::args(
                    module,
                    format!("kube_proxy_mode `{other}`: use iptables, ipvs or nftables"),
                ))
            }
        };
        p.validate()
            .map_err(|e| ModuleError::args(module, e.to_string()))?;
        let address: IpAddr = self.node_address.trim().parse().map_err(|_| {
            ModuleError::args(
                module,
                format!("node_address `{}` is not an IP address", self.node_address),
            )
        })?;
        let mut node = NodeParams::new(self.node_name.trim(), address);
        node.hostname = non_empty(&self.hostname).map(str::to_string);
        if let Some(dirs) = &self.ca_trust_dirs {
            node.ca_trust_dirs = dirs.clone();
        }
        if self.control_plane_taint {
            node.register_taints = vec![Taint::control_plane()];
        }
        node.validate()
            .map_err(|e| ModuleError::args(module, e.to_string()))?;
        Ok((p, node))
    }
}

fn non_empty(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// `host` → `host:port`; `host:port`, `[v6]:port` stay; a bare IPv6 gets brackets.
fn with_port(endpoint: &str, port: u16) -> String {
    if endpoint.starts_with('[') {
        if endpoint.contains("]:") {
            endpoint.to_string()
        } else {
            format!("{endpoint}:{port}")
        }
    } else if endpoint.parse::<std::net::Ipv6Addr>().is_ok() {
        format!("[{endpoint}]:{port}")
    } else if endpoint.contains(':') {
        endpoint.to_string()
    } else {
        format!("{endpoint}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn sample() -> serde_json::Value {
        json!({
            "kubernetes_version": "1.28.2",
            "advertise_address": "10.1.0.10",
            "control_plane_endpoint": "k8s.lab",
            "pod_cidr": "10.244.0.0/16",
            "cert_sans": ["k8s-api.example.com", "10.1.0.99"],
            "node_name": "master",
            "node_address": "10.1.0.10",
        })
    }

    #[test]
    fn params_from_spec_values() {
        let a: ClusterArgs = serde_json::from_value(sample()).unwrap();
        let (p, node) = a.params("kube_init").unwrap();
        assert_eq!(p.control_plane_endpoint.as_deref(), Some("k8s.lab:6443"));
        assert_eq!(p.cert_sans.len(), 2);
        assert_eq!(node.name, "master");
        assert_eq!(with_port("fd00::1", 6443), "[fd00::1]:6443");
        assert_eq!(with_port("lb:7443", 6443), "lb:7443");
    }

    #[test]
    fn bad_values_name_the_argument() {
        let mut v = sample();
        v["advertise_address"] = json!("not-an-ip");
        let a: ClusterArgs = serde_json::from_value(v).unwrap();
        let e = a.params("kube_init").unwrap_err().to_string();
        assert!(e.contains("advertise_address"), "{e}");
        let mut v = sample();
        v["kubernetes_version"] = json!("1.27.0");
        let a: ClusterArgs = serde_json::from_value(v).unwrap();
        let e = a.params("kube_init").unwrap_err().to_string();
        assert!(e.contains("1.28 to 1.31"), "{e}");
    }
}
