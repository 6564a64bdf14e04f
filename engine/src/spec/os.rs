//! Operating system preparation (`os:`).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Kernel parameters every Kubernetes host needs, always applied.
pub const REQUIRED_SYSCTLS: [&str; 3] = [
    "net.bridge.bridge-nf-call-iptables",
    "net.bridge.bridge-nf-call-ip6tables",
    "net.ipv4.ip_forward",
];

/// Kernel modules every Kubernetes host needs, always loaded.
pub const REQUIRED_MODULES: [&str; 2] = ["overlay", "br_netfilter"];

/// How kprov prepares each host's operating system.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OsPreparation {
    /// Turn swap off now and at boot (the kubelet refuses to start with swap on).
    #[serde(default = "yes")]
    pub disable_swap: bool,
    /// Stop and disable firewalld / ufw.
    #[serde(default = "yes")]
    pub disable_firewall: bool,
    /// SELinux mode on RHEL-family hosts.
    #[serde(default)]
    pub selinux: SelinuxMode,
    /// Kernel modules loaded now and at boot (`overlay` and `br_netfilter` are always added).
    #[serde(default = "default_modules")]
    pub kernel_modules: Vec<String>,
    /// Kernel parameters written to `/etc/sysctl.d` and applied; the three bridge/forwarding
    /// parameters are always set to 1.
    #[serde(default = "default_sysctls")]
    pub sysctls: BTreeMap<String, SysctlValue>,
}

impl Default for OsPreparation {
    fn default() -> Self {
        OsPreparation {
            disable_swap: true,
            disable_firewall: true,
            selinux: SelinuxMode::default(),
            kernel_modules: default_modules(),
            sysctls: default_sysctls(),
        }
    }
}

impl OsPreparation {
    /// The modules to load: the required ones, then the user's, without repeats.
    pub fn effective_kernel_modules(&self) -> Vec<String> {
        let mut modules: Vec<String> = REQUIRED_MODULES.iter().map(|m| m.to_string()).collect();
        for module in &self.kernel_modules {
            if !modules.contains(module) {
                modules.push(module.clone());
            }
        }
        modules
    }

    /// The kernel parameters to apply: the required ones (1) overlaid by the user's.
    pub fn effective_sysctls(&self) -> BTreeMap<String, String> {
        let mut sysctls: BTreeMap<String, String> = default_sysctls()
            .into_iter()
            .map(|(k, v)| (k, v.to_string()))
            .collect();
        for (key, value) in &self.sysctls {
            sysctls.insert(key.clone(), value.to_string());
        }
        sysctls
    }
}

fn yes() -> bool {
    true
}

fn default_modules() -> Vec<String> {
    REQUIRED_MODULES.iter().map(|m| m.to_string()).collect()
}

fn default_sysctls() -> BTreeMap<String, SysctlValue> {
    REQUIRED_SYSCTLS
        .iter()
        .map(|k| (k.to_string(), SysctlValue::Integer(1)))
        .collect()
}

/// SELinux modes kprov can set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SelinuxMode {
    /// Log but do not enforce (default; what the kubeadm guides use).
    #[default]
    Permissive,
    /// Enforce the policy.
    Enforcing,
    /// Leave SELinux as it is on each host.
    Unchanged,
}

/// A sysctl value: a number or a string.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum SysctlValue {
    /// A number such as `1` or `131072`.
    Integer(i64),
    /// Any other value, e.g. `"1024 65000"`.
    Text(String),
}

impl std::fmt::Display for SysctlValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SysctlValue::Integer(i) => write!(f, "{i}"),
            SysctlValue::Text(s) => f.write_str(s),
        }
    }
}
