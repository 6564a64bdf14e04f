//! The cluster spec (`cluster.yaml`): what cluster to build. Defaults follow the manual kubeadm
//! procedure (pod 10.244.0.0/16, service 10.96.0.0/12, cluster.local, registry.k8s.io,
//! pause 3.9, systemd cgroups, port 6443).

mod checks;
pub mod cni;
pub mod extra;
pub mod os;
pub mod packages;
pub mod runtime;
pub mod values;

use std::net::IpAddr;
use std::path::Path;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use cni::{Cni, CniPlugin};
pub use extra::merge_extra;
pub use os::OsPreparation;
pub use packages::{KubernetesPackages, PackageFormat, Packages};
pub use runtime::{CgroupDriver, Runtime, RuntimeKind};
pub use values::{Cidr, KubernetesVersion, Secret};

use crate::diagnostic::Diagnostics;
use crate::inventory::Inventory;
use crate::validate::{self, SourceMap};

/// Default pause image tag.
pub const PAUSE_TAG: &str = "3.9";

/// A cluster spec (`cluster.yaml`).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClusterSpec {
    /// Kubernetes version to install, quoted, e.g. "1.28.2" (1.28 to 1.31 are supported).
    pub kubernetes_version: KubernetesVersion,
    /// API server endpoint, advertise address, port and certificate names.
    #[serde(default)]
    pub control_plane: ControlPlane,
    /// Pod and service networks and the cluster DNS domain.
    #[serde(default)]
    pub networking: Networking,
    /// Registry (and path) of the control-plane images: kube-apiserver, etcd, coredns, pause.
    #[serde(default = "default_image_repository")]
    pub image_repository: String,
    /// Container runtime.
    #[serde(default)]
    pub runtime: Runtime,
    /// Package sources: distribution mirrors, Kubernetes repository, offline repository.
    #[serde(default)]
    pub packages: Packages,
    /// Pod network plugin.
    #[serde(default)]
    pub cni: Cni,
    /// Operating system preparation.
    #[serde(default)]
    pub os: OsPreparation,
    /// Where each value came from (for diagnostics).
    #[serde(skip)]
    #[schemars(skip)]
    source: SourceMap,
}

/// The control-plane endpoint settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ControlPlane {
    /// Stable address clients use for the API server (`host` or `host:port`, e.g. a load
    /// balancer). Default: the advertise address and bind port.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// IP address the API server advertises; must be the address of a host in `masters`.
    /// Default: the first master's address.
    #[serde(default)]
    #[schemars(schema_with = "crate::validate::patterns::optional_ip")]
    pub advertise_address: Option<IpAddr>,
    /// Port the API server listens on.
    #[serde(default = "default_bind_port")]
    #[schemars(range(min = 1))]
    pub bind_port: u16,
    /// Extra subject alternative names (DNS names or IP addresses) for the API server
    /// certificate.
    #[serde(default)]
    pub cert_sans: Vec<String>,
    /// Let ordinary workloads run on the masters: no
    /// `node-role.kubernetes.io/control-plane:NoSchedule` taint (single-host clusters).
    #[serde(default)]
    pub schedulable: bool,
}

impl Default for ControlPlane {
    fn default() -> Self {
        ControlPlane {
            endpoint: None,
            advertise_address: None,
            bind_port: default_bind_port(),
            cert_sans: Vec::new(),
            schedulable: false,
        }
    }
}

/// Cluster networks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Networking {
    /// Network pods get their addresses from.
    #[serde(default = "default_pod_cidr")]
    pub pod_cidr: Cidr,
    /// Network of Service cluster IPs (the first address is the `kubernetes` Service, the
    /// tenth the DNS Service).
    #[serde(default = "default_service_cidr")]
    pub service_cidr: Cidr,
    /// Cluster DNS domain.
    #[serde(default = "default_dns_domain")]
    #[schemars(schema_with = "crate::validate::patterns::dns_name")]
    pub dns_domain: String,
    /// kube-proxy mode: `iptables` (default) or `ipvs`.
    #[serde(default)]
    pub kube_proxy_mode: KubeProxyMode,
}

impl Default for Networking {
    fn default() -> Self {
        Networking {
            pod_cidr: default_pod_cidr(),
            service_cidr: default_service_cidr(),
            dns_domain: default_dns_domain(),
            kube_proxy_mode: KubeProxyMode::default(),
        }
    }
}

impl Networking {
    /// The `n`th address of the service network (1: the `kubernetes` Service, 10: DNS).
    pub fn service_ip(&self, n: u32) -> IpAddr {
        match self.service_cidr.0.network() {
            IpAddr::V4(base) => IpAddr::V4((u32::from(base).wrapping_add(n)).into()),
            IpAddr::V6(base) => IpAddr::V6((u128::from(base).wrapping_add(u128::from(n))).into()),
        }
    }

    /// The `kubernetes` Service's cluster IP (first address of the service network).
    pub fn kubernetes_service_ip(&self) -> IpAddr {
        self.service_ip(1)
    }

    /// The cluster DNS Service's IP (tenth address of the service network).
    pub fn dns_service_ip(&self) -> IpAddr {
        self.service_ip(10)
    }
}

/// kube-proxy modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum KubeProxyMode {
    /// iptables rules.
    #[default]
    Iptables,
    /// IPVS (hosts need `ipvsadm` and `ipset`).
    Ipvs,
}

fn default_image_repository() -> String {
    "registry.k8s.io".into()
}

fn default_bind_port() -> u16 {
    6443
}

fn default_pod_cidr() -> Cidr {
    Cidr(ipnet::IpNet::V4(ipnet::Ipv4Net::new_assert(
        [10, 244, 0, 0].into(),
        16,
    )))
}

fn default_service_cidr() -> Cidr {
    Cidr(ipnet::IpNet::V4(ipnet::Ipv4Net::new_assert(
        [10, 96, 0, 0].into(),
        12,
    )))
}

fn default_dns_domain() -> String {
    "cluster.local".into()
}

/// Two specs are equal when they ask for the same cluster, wherever they were written.
impl PartialEq for ClusterSpec {
    fn eq(&self, other: &Self) -> bool {
        self.kubernetes_version == other.kubernetes_version
            && self.control_plane == other.control_plane
            && self.networking == other.networking
            && self.image_repository == other.image_repository
            && self.runtime == other.runtime
            && self.packages == other.packages
            && self.cni == other.cni
            && self.os == other.os
    }
}

impl ClusterSpec {
    /// The pause image: `runtime.sandbox_image`, else `<image_repository>/pause:3.9`.
    pub fn sandbox_image(&self) -> String {
        self.runtime
            .sandbox_image
            .clone()
            .unwrap_or_else(|| format!("{}/pause:{PAUSE_TAG}", self.image_repository))
    }

    /// The spec as template variables: every key (defaults filled in) plus the computed
    /// `kubernetes_packages`: `version` and, per host OS family (`debian`, `rhel`), the
    /// Kubernetes repository, its key and the pinned package names
    /// ([`Packages::kubernetes_packages`]).
    pub fn template_vars(
        &self,
    ) -> Result<serde_json::Map<String, serde_json::Value>, serde_json::Error> {
        let mut vars = match serde_json::to_value(self)? {
            serde_json::Value::Object(m) => m,
            _ => serde_json::Map::new(),
        };
        let version = self.kubernetes_version;
        let mut packages = serde_json::Map::new();
        packages.insert("version".into(), version.to_string().into());
        for (family, format) in [("debian", PackageFormat::Deb), ("rhel", PackageFormat::Rpm)] {
            packages.insert(
                family.into(),
                serde_json::to_value(self.packages.kubernetes_packages(version, format))?,
            );
        }
        vars.insert("kubernetes_packages".into(), packages.into());
        Ok(vars)
    }

    /// Makes the registries' relative certificate paths relative to the spec's directory.
    fn resolve_paths(&mut self) {
        let Some(dir) = self.source.file().parent().map(Path::to_path_buf) else {
            return;
        };
        for registry in self.runtime.registries.values_mut() {
            for path in [
                &mut registry.ca_file,
                &mut registry.cert_file,
                &mut registry.key_file,
            ]
            .into_iter()
            .flatten()
            {
                if path.is_relative() && !path.starts_with("~") {
                    *path = dir.join(&*path);
                }
            }
        }
    }

    /// The API server's advertise address: `control_plane.advertise_address`, else the
    /// first master's address when it is an IP. `None` when the first master is known by a
    /// DNS name only (then the host's facts decide).
    pub fn advertise_address(&self, inventory: &Inventory) -> Option<IpAddr> {
        self.control_plane.advertise_address.or_else(|| {
            inventory
                .masters()
                .first()
                .and_then(|m| m.address.parse().ok())
        })
    }

    /// The control-plane endpoint: `control_plane.endpoint`, else the advertise address
    /// and bind port (`10.0.0.10:6443`, `[fd00::10]:6443`).
    pub fn control_plane_endpoint(&self, inventory: &Inventory) -> Option<String> {
        if let Some(endpoint) = &self.control_plane.endpoint {
            return Some(endpoint.clone());
        }
        let port = self.control_plane.bind_port;
        self.advertise_address(inventory).map(|ip| match ip {
            IpAddr::V4(v4) => format!("{v4}:{port}"),
            IpAddr::V6(v6) => format!("[{v6}]:{port}"),
        })
    }

    /// Where each value of the spec came from; use it to point diagnostics (e.g. from host
    /// facts) at `cluster.yaml`: `spec.source().at_value("/control_plane/advertise_address", …)`.
    pub fn source(&self) -> &SourceMap {
        &self.source
    }
}

/// Loads and validates `cluster.yaml`, reporting every problem in the file at once.
pub fn load(path: &Path) -> Result<ClusterSpec, Diagnostics> {
    from_str(path, &validate::read(path)?)
}

/// Parses a spec from text (for tests and tools); `path` only names it in diagnostics.
pub fn from_str(path: &Path, text: &str) -> Result<ClusterSpec, Diagnostics> {
    let (document, duplicates) = validate::yaml::parse(path, text)?;
    let top = &document.value;
    let looks_like_inventory = top.get("kubernetes_version").is_none()
        && ["hosts", "groups", "all", "lab", "ssh"]
            .iter()
            .any(|key| top.get(key).is_some());
    if looks_like_inventory {
        return Err(document
            .map
            .at_value(
                "",
                "this file is an inventory, not a cluster spec",
                Some("pass the cluster spec (with `kubernetes_version:`) as the spec and this file with `-i`".into()),
            )
            .into());
    }
    let schema = crate::schema::spec_schema();
    let loaded = validate::check_document(document, duplicates, &schema);
    let mut diagnostics = loaded.diagnostics;
    if diagnostics.is_empty() {
        return match validate::typed::<ClusterSpec>(&loaded.value, &loaded.map) {
            Ok(mut spec) => {
                spec.source = loaded.map;
                spec.resolve_paths();
                diagnostics.0.extend(checks::check(&spec));
                diagnostics.into_result(spec)
            }
            Err(error) => Err(error.into()),
        };
    }
    // Structural problems: still run the semantic checks on what is left, so one run
    // reports everything. A rejected version is replaced by a supported placeholder.
    let mut rest = loaded.pruned;
    if let Some(object) = rest.as_object_mut() {
        object
            .entry("kubernetes_version")
            .or_insert_with(|| serde_json::Value::String("1.28.0".into()));
    }
    if let Ok(mut spec) = validate::typed::<ClusterSpec>(&rest, &loaded.map) {
        spec.source = loaded.map;
        diagnostics.0.extend(checks::check(&spec));
    }
    Err(diagnostics.sorted())
}
