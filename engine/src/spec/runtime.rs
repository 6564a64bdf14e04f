//! The container runtime section (`runtime:`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::values::Secret;

/// Container runtime serving the CRI on every host.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Runtime {
    /// Which runtime: `kprov-agent` (kprov's own, default), `containerd` or `cri-o`.
    #[serde(default)]
    pub kind: RuntimeKind,
    /// Pause image for pod sandboxes; must be pullable from every host. Default:
    /// `<image_repository>/pause:3.9`.
    #[serde(default)]
    pub sandbox_image: Option<String>,
    /// cgroup driver of both the runtime and the kubelet (they must match).
    #[serde(default)]
    pub cgroup_driver: CgroupDriver,
    /// Mirror endpoints per registry host, tried in order, e.g.
    /// `docker.io: [https://mirror.example.com]`.
    #[serde(default)]
    pub registry_mirrors: BTreeMap<String, Vec<String>>,
    /// TLS and authentication per registry host (`host` or `host:port`).
    #[serde(default)]
    pub registries: BTreeMap<String, RegistryConfig>,
}

/// The container runtimes kprov can install.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RuntimeKind {
    /// kprov's own CRI agent (socket `unix:///run/kprov/agent.sock`).
    #[default]
    KprovAgent,
    /// containerd (socket `unix:///run/containerd/containerd.sock`).
    Containerd,
    /// CRI-O (socket `unix:///var/run/crio/crio.sock`).
    CriO,
}

impl RuntimeKind {
    /// The CRI endpoint the kubelet and crictl use.
    pub fn socket(self) -> &'static str {
        match self {
            RuntimeKind::KprovAgent => "unix:///run/kprov/agent.sock",
            RuntimeKind::Containerd => "unix:///run/containerd/containerd.sock",
            RuntimeKind::CriO => "unix:///var/run/crio/crio.sock",
        }
    }
}

/// cgroup driver shared by the runtime and the kubelet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum CgroupDriver {
    /// systemd manages the cgroups (default; what kubeadm expects).
    #[default]
    Systemd,
    /// The runtime writes cgroupfs directly (hosts without systemd).
    Cgroupfs,
}

/// TLS and authentication for one registry.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    /// Skip TLS certificate verification (self-signed lab registries).
    #[serde(default)]
    pub insecure_skip_verify: bool,
    /// The registry speaks plain HTTP, without TLS (local and lab registries only).
    #[serde(default)]
    pub plain_http: bool,
    /// CA certificate (PEM) on the machine running kprov, copied to the hosts (relative
    /// paths are relative to this file).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS.
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    /// Client key (PEM) for mutual TLS.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    /// Basic authentication.
    #[serde(default)]
    pub auth: Option<RegistryAuth>,
}

/// Username and password for a registry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegistryAuth {
    /// User name.
    pub username: String,
    /// Password or token (never printed).
    pub password: Secret,
}
