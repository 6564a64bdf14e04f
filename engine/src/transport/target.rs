//! Where and how to connect to one host.

use std::path::PathBuf;
use std::time::Duration;

pub use crate::inventory::Spelling;

use super::quote;

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

impl HostKeyPolicy {
    /// The value of ssh's `StrictHostKeyChecking` for this policy.
    pub fn ssh_value(self) -> &'static str {
        match self {
            HostKeyPolicy::Strict => "yes",
            HostKeyPolicy::AcceptNew => "accept-new",
            HostKeyPolicy::Off => "no",
        }
    }
}

/// How kprov reaches a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConnectionKind {
    /// Over ssh (the default).
    #[default]
    Ssh,
    /// This machine's own `sh` (`connection: local`, `ansible_connection=local`).
    Local,
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
    /// Further ssh options (`ProxyCommand`, `ProxyJump`, …) for this host only.
    pub ssh_options: Vec<(String, String)>,
    /// How the inventory names settings, so hints name what to change in that file.
    pub spelling: Spelling,
    /// Over ssh, or with the local shell.
    pub kind: ConnectionKind,
    /// Local hosts: where kprov keeps its own state (run lock, handler markers); `None`
    /// for the usual places (`/run/kprov`, `/var/lib/kprov`) as root, else `local/<name>`
    /// under `$XDG_RUNTIME_DIR/kprov` or `/tmp/kprov-<uid>`.
    pub state_dir: Option<PathBuf>,
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
            ssh_options: Vec::new(),
            spelling: Spelling::Kprov,
            kind: ConnectionKind::Ssh,
            state_dir: None,
        }
    }
}

impl Target {
    /// The connection settings of an inventory host.
    pub fn for_host(host: &crate::inventory::Host) -> Self {
        use crate::inventory::HostKeyChecking;
        Target {
            name: host.name.clone(),
            address: host.ssh_address.clone(),
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
            ssh_options: host.ssh_options.clone(),
            spelling: host.spelling,
            kind: if host.local {
                ConnectionKind::Local
            } else {
                ConnectionKind::Ssh
            },
            state_dir: host.state_dir.clone(),
        }
    }

    /// The known-hosts file ssh reads and writes for this host: the configured one, else
    /// none at all (`/dev/null`) when checking is off, so a stale key left there by an
    /// earlier host at the same address neither disables forwarding (ssh does that on a
    /// changed key even with `StrictHostKeyChecking=no`) nor gets new keys written
    /// into the user's file; `None` leaves ssh's default.
    pub fn known_hosts_path(&self) -> Option<PathBuf> {
        match (&self.known_hosts_file, self.host_key_policy) {
            (Some(file), _) => Some(file.clone()),
            (None, HostKeyPolicy::Off) => Some(PathBuf::from("/dev/null")),
            (None, _) => None,
        }
    }

    /// An ssh `ProxyCommand` that reaches `%h:%p` through this host with its own settings
    /// (user, port, key, host key policy), for hosts behind it.
    pub fn proxy_command(&self) -> String {
        let policy = self.host_key_policy.ssh_value();
        let mut words = vec![
            "ssh".to_string(),
            "-o".into(),
            "BatchMode=yes".into(),
            "-o".into(),
            format!("StrictHostKeyChecking={policy}"),
            "-o".into(),
            format!("ConnectTimeout={}", self.connect_timeout.as_secs().max(1)),
        ];
        if let Some(file) = self.known_hosts_path() {
            words.push("-o".into());
            words.push(quote(&format!("UserKnownHostsFile={}", file.display())));
        }
        if let Some(key) = &self.identity_file {
            words.extend(["-o".into(), "IdentitiesOnly=yes".into(), "-i".into()]);
            words.push(quote(&key.display().to_string()));
        }
        words.extend([
            "-p".into(),
            self.port.to_string(),
            "-l".into(),
            quote(&self.user),
            "-W".into(),
            "[%h]:%p".into(),
            quote(&self.address),
        ]);
        // ssh expands `%` tokens in ProxyCommand: a literal one is doubled.
        let mut command = words.join(" ");
        command = command.replace('%', "%%").replace("[%%h]:%%p", "[%h]:%p");
        command
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_reads_no_known_hosts_file_on_either_hop() {
        let mut jump = Target::new("bastion", "10.0.0.9");
        jump.host_key_policy = HostKeyPolicy::Off;
        assert_eq!(jump.known_hosts_path(), Some(PathBuf::from("/dev/null")));
        let command = jump.proxy_command();
        assert!(
            command.contains(
                "StrictHostKeyChecking=no -o ConnectTimeout=10 -o 'UserKnownHostsFile=/dev/null'"
            ),
            "{command}"
        );
        jump.host_key_policy = HostKeyPolicy::Strict;
        assert_eq!(jump.known_hosts_path(), None);
        assert!(!jump.proxy_command().contains("UserKnownHostsFile"));
        jump.known_hosts_file = Some("/etc/kprov/known_hosts".into());
        assert!(jump
            .proxy_command()
            .contains("'UserKnownHostsFile=/etc/kprov/known_hosts'"));
    }
}
