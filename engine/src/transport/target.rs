//! Where and how to connect to one host.

use std::path::PathBuf;
use std::time::Duration;

pub use crate::inventory::Spelling;

use super::quote;

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
    /// Known-hosts file to use instead of the user's own. The host's key must be in it (or
    /// in the user's own): kprov always connects with `StrictHostKeyChecking=yes`.
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
        Target {
            name: host.name.clone(),
            address: host.ssh_address.clone(),
            port: host.port,
            user: host.user.clone(),
            identity_file: host.identity_file.clone(),
            become_root: host.become_,
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

    /// `user@address` (port when not 22), as a user would type it to try by hand.
    pub fn destination(&self) -> String {
        format!("{}{}@{}", self.port_flag(), self.user, self.address)
    }

    /// The arguments `ssh-keyscan` takes to fetch this host's key (`[-p PORT] ADDRESS`).
    pub fn keyscan_destination(&self) -> String {
        format!("{}{}", self.port_flag(), self.address)
    }

    /// `-p PORT ` when the port is not 22, else nothing.
    fn port_flag(&self) -> String {
        if self.port == 22 {
            String::new()
        } else {
            format!("-p {} ", self.port)
        }
    }

    /// An ssh `ProxyCommand` that reaches `%h:%p` through this host with its own settings
    /// (user, port, key, known-hosts file), for hosts behind it.
    pub fn proxy_command(&self) -> String {
        let mut words = vec![
            "ssh".to_string(),
            "-o".into(),
            "BatchMode=yes".into(),
            "-o".into(),
            "StrictHostKeyChecking=yes".into(),
            "-o".into(),
            format!("ConnectTimeout={}", self.connect_timeout.as_secs().max(1)),
        ];
        if let Some(file) = &self.known_hosts_file {
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
    fn the_jump_hop_checks_its_key_strictly_in_its_own_known_hosts_file() {
        let mut jump = Target::new("bastion", "10.0.0.9");
        let command = jump.proxy_command();
        assert!(
            command.contains("StrictHostKeyChecking=yes -o ConnectTimeout=10 -p 22"),
            "{command}"
        );
        jump.known_hosts_file = Some("/etc/kprov/known_hosts".into());
        assert!(jump
            .proxy_command()
            .contains("'UserKnownHostsFile=/etc/kprov/known_hosts'"));
    }
}
