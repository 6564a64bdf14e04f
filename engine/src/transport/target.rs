//! Where and how to connect to one host.

use std::path::PathBuf;
use std::time::Duration;

/// How the remote host's key is checked against the known-hosts file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HostKeyPolicy {
    /// The key must already be known (`StrictHostKeyChecking=yes`). Default.
    #[default]
    Strict,
    /// Unknown hosts are added, changed keys are refused (`accept-new`); for lab hosts.
    AcceptNew,
    /// No checking at all (`StrictHostKeyChecking=no`); only on explicit request.
    Off,
}

/// Connection settings for one host.
#[derive(Debug, Clone)]
pub struct Target {
    /// Inventory name, used in every message about this host.
    pub name: String,
    /// IP address or DNS name.
    pub address: String,
    pub port: u16,
    pub user: String,
    /// Private key to use exclusively; `None` lets ssh config and the agent decide.
    pub identity_file: Option<PathBuf>,
    /// Run scripts through `sudo -n`.
    pub become_root: bool,
    pub host_key_policy: HostKeyPolicy,
    /// Known-hosts file to use instead of the user's own.
    pub known_hosts_file: Option<PathBuf>,
    pub connect_timeout: Duration,
}

impl Target {
    /// A target with kprov's defaults: root on port 22, strict host keys, 10 s timeout.
    pub fn new(name: impl Into<String>, address: impl Into<String>) -> Self {
        Target {
            name: name.into(),
            address: address.into(),
            port: 22,
            user: "root".into(),
            identity_file: None,
            become_root: false,
            host_key_policy: HostKeyPolicy::Strict,
            known_hosts_file: None,
            connect_timeout: Duration::from_secs(10),
        }
    }
}

impl Target {
    /// The connection settings of an inventory host.
    pub fn for_host(host: &crate::inventory::Host) -> Self {
        use crate::inventory::HostKeyChecking;
        Target {
            name: host.name.clone(),
            address: host.address.clone(),
            port: host.port,
            user: host.user.clone(),
            identity_file: host.identity_file.clone(),
            become_root: host.become_,
            host_key_policy: match host.host_key_checking {
                HostKeyChecking::Strict => HostKeyPolicy::Strict,
                HostKeyChecking::AcceptNew => HostKeyPolicy::AcceptNew,
                HostKeyChecking::Off => HostKeyPolicy::Off,
            },
            known_hosts_file: host.known_hosts_file.clone(),
            connect_timeout: host.connect_timeout,
        }
    }
}
