//! The pod network section (`cni:`).

use std::net::IpAddr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::values::Cidr;

/// Pod network (CNI) applied as part of the cluster run.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Cni {
    /// Which plugin: `flannel` (default), `calico`, or `bridge` (static routes, small labs).
    #[serde(default)]
    pub plugin: CniPlugin,
    /// Options when `plugin: flannel`.
    #[serde(default)]
    pub flannel: FlannelOptions,
    /// Options when `plugin: calico`.
    #[serde(default)]
    pub calico: CalicoOptions,
    /// Options when `plugin: bridge`.
    #[serde(default)]
    pub bridge: BridgeOptions,
}

/// The CNI plugins kprov can apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum CniPlugin {
    /// flannel with its default VXLAN backend.
    #[default]
    Flannel,
    /// Calico.
    Calico,
    /// The reference `bridge` plugin plus static routes between hosts (no overlay).
    Bridge,
}

impl CniPlugin {
    /// The key of this plugin's options section (`flannel`, `calico`, `bridge`).
    pub fn key(self) -> &'static str {
        match self {
            CniPlugin::Flannel => "flannel",
            CniPlugin::Calico => "calico",
            CniPlugin::Bridge => "bridge",
        }
    }
}

/// flannel options.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FlannelOptions {
    /// Backend: `vxlan` (default) or `host-gw`.
    #[serde(default)]
    pub backend: FlannelBackend,
    /// Network interface flannel uses between hosts (default: the one with the default route).
    #[serde(default)]
    pub iface: Option<String>,
}

/// flannel backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum FlannelBackend {
    /// VXLAN overlay (works across subnets).
    #[default]
    Vxlan,
    /// Direct routes (all hosts on one L2 network).
    HostGw,
}

/// Calico options.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CalicoOptions {
    /// Encapsulation between hosts: `ipip` (default), `vxlan` or `none`.
    #[serde(default)]
    pub encapsulation: CalicoEncapsulation,
    /// How Calico picks each host's address, e.g. `interface=eth0` (default: first found).
    #[serde(default)]
    pub ip_autodetection_method: Option<String>,
    /// The upstream `calico.yaml` for your Calico version, a path on the machine running
    /// kprov (required with `plugin: calico`). kprov sets its pool CIDR, encapsulation,
    /// address autodetection and image registry, and writes it to the first master.
    #[serde(default)]
    pub manifest: Option<String>,
}

/// Calico encapsulation modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum CalicoEncapsulation {
    /// IP-in-IP.
    #[default]
    Ipip,
    /// VXLAN.
    Vxlan,
    /// No encapsulation (hosts route pod networks directly).
    None,
}

/// Options of the `bridge` plugin with static routes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BridgeOptions {
    /// Name of the Linux bridge on each host.
    #[serde(default = "default_bridge_name")]
    pub bridge_name: String,
    /// Prefix length of each host's slice of the pod CIDR (routes to the other hosts' slices
    /// are added automatically).
    #[serde(default = "default_node_mask")]
    #[schemars(range(min = 8, max = 30))]
    pub node_cidr_mask: u8,
    /// Extra static routes added on every host.
    #[serde(default)]
    pub routes: Vec<StaticRoute>,
}

impl Default for BridgeOptions {
    fn default() -> Self {
        BridgeOptions {
            bridge_name: default_bridge_name(),
            node_cidr_mask: default_node_mask(),
            routes: Vec::new(),
        }
    }
}

fn default_bridge_name() -> String {
    "cni0".into()
}

fn default_node_mask() -> u8 {
    24
}

/// One static route.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StaticRoute {
    /// Destination network.
    pub destination: Cidr,
    /// Next hop.
    #[schemars(schema_with = "crate::validate::patterns::ip")]
    pub via: IpAddr,
}
