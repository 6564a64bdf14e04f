//! What the cluster spec and the inventory decide: cluster-wide and per-node parameters.

use crate::Error;
use ipnet::IpNet;
use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::time::Duration;

/// A Kubernetes release `major.minor.patch`; only 1.28–1.31 are supported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    /// Always 1.
    pub major: u32,
    /// 28..=31.
    pub minor: u32,
    /// Patch release.
    pub patch: u32,
}

impl FromStr for Version {
    type Err = Error;

    /// Parses `1.30.2` or `v1.30.2`.
    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = |why: &str| Error::param("kubernetes_version", s, why);
        let digits = s.strip_prefix('v').unwrap_or(s);
        let parts: Vec<&str> = digits.split('.').collect();
        let [major, minor, patch] = parts.as_slice() else {
            return Err(bad("expected major.minor.patch, e.g. 1.31.2"));
        };
        let num = |p: &str| {
            p.parse::<u32>()
                .map_err(|_| bad("expected major.minor.patch, e.g. 1.31.2"))
        };
        let v = Version {
            major: num(major)?,
            minor: num(minor)?,
            patch: num(patch)?,
        };
        if v.major != 1 || !(28..=31).contains(&v.minor) {
            return Err(bad("supported releases are 1.28 to 1.31"));
        }
        Ok(v)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}.{}.{}", self.major, self.minor, self.patch)
    }
}

impl Version {
    /// 1.29 and later: admin.conf in `kubeadm:cluster-admins`, super-admin.conf exists.
    pub fn has_super_admin(&self) -> bool {
        self.minor >= 29
    }

    /// 1.31 and later: `/livez` and `/readyz` etcd probes, split CA-trust mounts,
    /// v1beta4 config, leaf NotBefore = now − 5 min.
    pub fn is_131_or_later(&self) -> bool {
        self.minor >= 31
    }

    /// The kubeadm config API version stored in `kubeadm-config`.
    pub fn kubeadm_api(&self) -> &'static str {
        if self.is_131_or_later() {
            "kubeadm.k8s.io/v1beta4"
        } else {
            "kubeadm.k8s.io/v1beta3"
        }
    }

    /// Image tags kubeadm of this release uses by default: (etcd, pause, coredns).
    pub fn default_image_tags(&self) -> (&'static str, &'static str, &'static str) {
        match self.minor {
            28 => ("3.5.9-0", "3.9", "v1.10.1"),
            29 => ("3.5.10-0", "3.9", "v1.11.1"),
            30 => ("3.5.12-0", "3.9", "v1.11.1"),
            _ => ("3.5.15-0", "3.10", "v1.11.3"),
        }
    }
}

/// Private key algorithm for every certificate and `sa.key`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeyAlgorithm {
    /// RSA 2048, PKCS#1 PEM (kubeadm's default).
    #[default]
    Rsa2048,
    /// ECDSA P-256, SEC1 PEM (`encryptionAlgorithm: ECDSA-P256`).
    EcdsaP256,
}

/// The kubelet's cgroup driver; must match the container runtime's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CgroupDriver {
    /// kubeadm's default.
    #[default]
    Systemd,
    /// Plain cgroupfs.
    Cgroupfs,
}

impl CgroupDriver {
    /// Name as written in KubeletConfiguration.
    pub fn as_str(&self) -> &'static str {
        match self {
            CgroupDriver::Systemd => "systemd",
            CgroupDriver::Cgroupfs => "cgroupfs",
        }
    }
}

/// kube-proxy's mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProxyMode {
    /// iptables (kube-proxy's default; written as an empty mode, as kubeadm does).
    #[default]
    Iptables,
    /// IPVS.
    Ipvs,
    /// nftables (alpha in 1.29–1.30, beta in 1.31).
    Nftables,
}

impl ProxyMode {
    /// Value of `mode` in KubeProxyConfiguration.
    pub fn as_str(&self) -> &'static str {
        match self {
            ProxyMode::Iptables => "",
            ProxyMode::Ipvs => "ipvs",
            ProxyMode::Nftables => "nftables",
        }
    }
}

/// Cluster-wide parameters (kubeadm's ClusterConfiguration + InitConfiguration).
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterParams {
    /// Release; selects the differences between minors (docs/controlplane.md).
    pub kubernetes_version: Version,
    /// `clusterName`, default `kubernetes`.
    pub cluster_name: String,
    /// `controlPlaneEndpoint` as `host:port` (load balancer or DNS name); `None` uses
    /// the first master's advertise address and bind port.
    pub control_plane_endpoint: Option<String>,
    /// The first master's API server advertise address.
    pub advertise_address: IpAddr,
    /// API server secure port, default 6443.
    pub bind_port: u16,
    /// Pod network; `None` leaves node CIDR allocation off.
    pub pod_cidr: Option<IpNet>,
    /// Service network, default 10.96.0.0/12.
    pub service_cidr: IpNet,
    /// DNS domain, default `cluster.local`.
    pub dns_domain: String,
    /// Registry prefix for control-plane images, default `registry.k8s.io`.
    pub image_repository: String,
    /// Extra API server certificate SANs (IPs become IP SANs, the rest DNS).
    pub cert_sans: Vec<String>,
    /// Extra SANs for etcd's server certificate.
    pub etcd_server_cert_sans: Vec<String>,
    /// Extra SANs for etcd's peer certificate.
    pub etcd_peer_cert_sans: Vec<String>,
    /// Key algorithm for every certificate.
    pub key_algorithm: KeyAlgorithm,
    /// CRI endpoint, e.g. `unix:///run/containerd/containerd.sock`.
    pub cri_socket: String,
    /// kubelet cgroup driver.
    pub cgroup_driver: CgroupDriver,
    /// kube-proxy mode.
    pub kube_proxy_mode: ProxyMode,
    /// Existing certificates expiring within this window are renewed (default 30 days).
    pub renew_window: Duration,
    /// etcd image tag, default per release.
    pub etcd_image_tag: String,
    /// pause image tag, default per release.
    pub pause_image_tag: String,
    /// CoreDNS image tag, default per release.
    pub coredns_image_tag: String,
    /// kubelet `resolvConf` (kubeadm sets `/run/systemd/resolve/resolv.conf` when
    /// systemd-resolved is active on the init node).
    pub resolv_conf: Option<String>,
    /// Lifetime of new bootstrap tokens (kubeadm: 24h).
    pub token_ttl: Duration,
    /// Proxy variables (`HTTP_PROXY`, `HTTPS_PROXY`, `NO_PROXY`, lower-case forms)
    /// kubeadm copies from its environment into the API server, controller-manager
    /// and scheduler pods.
    pub proxy_env: BTreeMap<String, String>,
}

/// The default image registry.
pub const DEFAULT_IMAGE_REPOSITORY: &str = "registry.k8s.io";

impl ClusterParams {
    /// kubeadm's defaults for `version` with the first master at `advertise_address`.
    pub fn new(kubernetes_version: Version, advertise_address: IpAddr) -> Self {
        let (etcd, pause, coredns) = kubernetes_version.default_image_tags();
        ClusterParams {
            kubernetes_version,
            cluster_name: "kubernetes".into(),
            control_plane_endpoint: None,
            advertise_address,
            bind_port: 6443,
            pod_cidr: None,
            service_cidr: IpNet::from_str("10.96.0.0/12").unwrap_or_default(),
            dns_domain: "cluster.local".into(),
            image_repository: DEFAULT_IMAGE_REPOSITORY.into(),
            cert_sans: Vec::new(),
            etcd_server_cert_sans: Vec::new(),
            etcd_peer_cert_sans: Vec::new(),
            key_algorithm: KeyAlgorithm::Rsa2048,
            cri_socket: "unix:///run/containerd/containerd.sock".into(),
            cgroup_driver: CgroupDriver::Systemd,
            kube_proxy_mode: ProxyMode::Iptables,
            renew_window: Duration::from_secs(30 * 24 * 3600),
            etcd_image_tag: etcd.into(),
            pause_image_tag: pause.into(),
            coredns_image_tag: coredns.into(),
            resolv_conf: None,
            token_ttl: Duration::from_secs(24 * 3600),
            proxy_env: BTreeMap::new(),
        }
    }

    /// Checks values that the artifacts embed; errors name the field and the fix.
    pub fn validate(&self) -> Result<(), Error> {
        if !is_dns1123_label(&self.cluster_name) {
            return Err(Error::param(
                "cluster_name",
                &self.cluster_name,
                "use lower-case letters, digits and '-'",
            ));
        }
        if self.dns_domain.is_empty() || !self.dns_domain.split('.').all(is_dns1123_label) {
            return Err(Error::param(
                "dns_domain",
                &self.dns_domain,
                "use a DNS domain such as cluster.local",
            ));
        }
        if let Some(ep) = &self.control_plane_endpoint {
            split_host_port(ep)?;
        }
        if self.image_repository.is_empty()
            || self.image_repository.contains("://")
            || self.image_repository.ends_with('/')
        {
            return Err(Error::param(
                "image_repository",
                &self.image_repository,
                "write a registry prefix without scheme or trailing '/', e.g. registry.k8s.io",
            ));
        }
        if !self.cri_socket.starts_with("unix://") && !self.cri_socket.starts_with('/') {
            return Err(Error::param(
                "cri_socket",
                &self.cri_socket,
                "use unix:///path/to/runtime.sock",
            ));
        }
        if self.bind_port == 0 {
            return Err(Error::param(
                "bind_port",
                "0",
                "use a TCP port such as 6443",
            ));
        }
        if self.service_cidr.hosts().nth(10).is_none() {
            return Err(Error::param(
                "service_cidr",
                self.service_cidr.to_string(),
                "needs at least 10 addresses",
            ));
        }
        if let Some(pod) = &self.pod_cidr {
            if pod.contains(&self.service_cidr.network())
                || self.service_cidr.contains(&pod.network())
            {
                return Err(Error::param(
                    "pod_cidr",
                    pod.to_string(),
                    "must not overlap service_cidr",
                ));
            }
        }
        Ok(())
    }

    /// The `kubernetes` Service VIP (first address of the service CIDR).
    pub fn api_service_ip(&self) -> IpAddr {
        nth_ip(&self.service_cidr, 1)
    }

    /// The cluster DNS address (10th address of the service CIDR).
    pub fn dns_service_ip(&self) -> IpAddr {
        nth_ip(&self.service_cidr, 10)
    }

    /// `https://host:port` clients use: controlPlaneEndpoint, else advertise:port.
    pub fn server_url(&self) -> String {
        match &self.control_plane_endpoint {
            Some(ep) => format!("https://{ep}"),
            None => local_url(self.advertise_address, self.bind_port),
        }
    }

    /// The first master's own API server URL (controller-manager, scheduler).
    pub fn local_server_url(&self) -> String {
        local_url(self.advertise_address, self.bind_port)
    }

    /// Full image reference of a control-plane component (`kube-apiserver`, …).
    pub fn component_image(&self, component: &str) -> String {
        format!(
            "{}/{}:{}",
            self.image_repository, component, self.kubernetes_version
        )
    }

    /// etcd image reference.
    pub fn etcd_image(&self) -> String {
        format!("{}/etcd:{}", self.image_repository, self.etcd_image_tag)
    }

    /// pause (sandbox) image reference.
    pub fn pause_image(&self) -> String {
        format!("{}/pause:{}", self.image_repository, self.pause_image_tag)
    }

    /// CoreDNS image: `coredns/coredns` on registry.k8s.io, plain `coredns` on mirrors.
    pub fn coredns_image(&self) -> String {
        if self.image_repository == DEFAULT_IMAGE_REPOSITORY {
            format!(
                "{}/coredns/coredns:{}",
                self.image_repository, self.coredns_image_tag
            )
        } else {
            format!(
                "{}/coredns:{}",
                self.image_repository, self.coredns_image_tag
            )
        }
    }

    /// Every image kubeadm's `config images list` names for this cluster, for
    /// pre-pulling and mirroring.
    pub fn images(&self) -> Vec<String> {
        vec![
            self.component_image("kube-apiserver"),
            self.component_image("kube-controller-manager"),
            self.component_image("kube-scheduler"),
            self.component_image("kube-proxy"),
            self.coredns_image(),
            self.pause_image(),
            self.etcd_image(),
        ]
    }
}

/// One host of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeParams {
    /// Node name (lower-case DNS-1123 subdomain).
    pub name: String,
    /// The node's primary address.
    pub address: IpAddr,
    /// CA-trust directories present on the host (gathered facts); kubeadm mounts
    /// those of `/etc/ca-certificates`, `/usr/share/ca-certificates`,
    /// `/usr/local/share/ca-certificates`, `/etc/pki` (1.28–1.30) or
    /// `/etc/pki/ca-trust` and `/etc/pki/tls/certs` (1.31) that exist.
    pub ca_trust_dirs: Vec<String>,
    /// The host's own hostname, when known; the kubelet gets
    /// `--hostname-override` if it differs from `name`.
    pub hostname: Option<String>,
    /// Extra kubelet flags for this node (`node-ip` → `--node-ip=…`), written to
    /// `kubeadm-flags.env` like kubeadm's `kubeletExtraArgs`.
    pub kubelet_extra_args: BTreeMap<String, String>,
    /// Taints the kubelet registers the node with (`--register-with-taints`), as
    /// kubeadm's `nodeRegistration.taints`: the control-plane taint on masters.
    pub register_taints: Vec<crate::Taint>,
}

impl NodeParams {
    /// A node with the CA-trust directories of a Debian/Ubuntu host.
    pub fn new(name: impl Into<String>, address: IpAddr) -> Self {
        NodeParams {
            name: name.into(),
            address,
            ca_trust_dirs: [
                "/etc/ca-certificates",
                "/usr/share/ca-certificates",
                "/usr/local/share/ca-certificates",
            ]
            .map(String::from)
            .to_vec(),
            hostname: None,
            kubelet_extra_args: BTreeMap::new(),
            register_taints: Vec::new(),
        }
    }

    /// Checks the node name.
    pub fn validate(&self) -> Result<(), Error> {
        if self.name.len() > 253
            || self.name.is_empty()
            || !self.name.split('.').all(is_dns1123_label)
        {
            return Err(Error::param(
                "node name",
                &self.name,
                "node names must be lower-case DNS-1123 names (letters, digits, '-', '.')",
            ));
        }
        for (flag, value) in &self.kubelet_extra_args {
            let plain = |s: &str| {
                !s.is_empty() && !s.contains(|c: char| c.is_whitespace() || "\"'\\$`".contains(c))
            };
            if !plain(flag) || flag.starts_with('-') || !(value.is_empty() || plain(value)) {
                return Err(Error::param(
                    "kubelet_extra_args",
                    format!("{flag}={value}"),
                    "write flag names without leading '--' and values without spaces, quotes, '\\', '$' or '`'",
                ));
            }
        }
        Ok(())
    }
}

/// `https://ip:port`, with brackets for IPv6.
fn local_url(ip: IpAddr, port: u16) -> String {
    format!("https://{}", host_port(ip, port))
}

/// `ip:port`, with brackets for IPv6.
pub(crate) fn host_port(ip: IpAddr, port: u16) -> String {
    match ip {
        IpAddr::V4(v4) => format!("{v4}:{port}"),
        IpAddr::V6(v6) => format!("[{v6}]:{port}"),
    }
}

fn nth_ip(net: &IpNet, n: u128) -> IpAddr {
    match net.network() {
        IpAddr::V4(v4) => IpAddr::V4((u32::from(v4).wrapping_add(n as u32)).into()),
        IpAddr::V6(v6) => IpAddr::V6((u128::from(v6).wrapping_add(n)).into()),
    }
}

/// Splits `host:port` (`[v6]:port` for IPv6).
pub(crate) fn split_host_port(endpoint: &str) -> Result<(String, u16), Error> {
    let bad = || {
        Error::param(
            "control_plane_endpoint",
            endpoint,
            "write host:port, e.g. lb.example.com:6443 or [fd00::1]:6443",
        )
    };
    let (host, port) = if let Some(rest) = endpoint.strip_prefix('[') {
        let (h, p) = rest.split_once("]:").ok_or_else(bad)?;
        (h, p)
    } else {
        endpoint.rsplit_once(':').ok_or_else(bad)?
    };
    if host.is_empty() || host.contains(':') && !endpoint.starts_with('[') {
        return Err(bad());
    }
    let port: u16 = port.parse().map_err(|_| bad())?;
    if port == 0 {
        return Err(bad());
    }
    Ok((host.to_string(), port))
}

fn is_dns1123_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_and_reject() {
        assert_eq!(
            "v1.31.2".parse::<Version>().ok(),
            Some(Version {
                major: 1,
                minor: 31,
                patch: 2
            })
        );
        assert!("1.27.0".parse::<Version>().is_err());
        assert!("1.30".parse::<Version>().is_err());
    }

    #[test]
    fn service_ips_and_endpoint() {
        let p = ClusterParams::new("1.30.0".parse().unwrap(), "192.0.2.10".parse().unwrap());
        assert_eq!(p.api_service_ip().to_string(), "10.96.0.1");
        assert_eq!(p.dns_service_ip().to_string(), "10.96.0.10");
        assert_eq!(p.server_url(), "https://192.0.2.10:6443");
        assert_eq!(
            split_host_port("[fd00::1]:6443").unwrap(),
            ("fd00::1".into(), 6443)
        );
        assert!(split_host_port("lb.example.com").is_err());
        assert_eq!(p.coredns_image(), "registry.k8s.io/coredns/coredns:v1.11.1");
    }
}
