//! Transport errors, classified from what ssh reports, each with a hint.

use std::fmt;
use std::time::Duration;

use super::pool::Output;
use super::target::{Spelling, Target};

/// What went wrong talking to a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TransportErrorKind {
    /// No route, connection refused, name does not resolve.
    Unreachable,
    /// The host answered but refused our credentials.
    Authentication,
    /// The host presented a key different from the known one.
    HostKeyMismatch,
    /// Strict checking and the host's key is not known yet.
    HostKeyUnknown,
    /// Connecting or a command took longer than allowed.
    Timeout,
    /// `become` asked for sudo, and sudo is missing or wants a password.
    Become,
    /// The run was interrupted (Ctrl-C, SIGTERM) before this command started.
    Interrupted,
    /// The connection broke, or a local problem (spawning ssh, I/O).
    Connection,
}

impl fmt::Display for TransportErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TransportErrorKind::Unreachable => "unreachable",
            TransportErrorKind::Authentication => "authentication failed",
            TransportErrorKind::HostKeyMismatch => "host key mismatch",
            TransportErrorKind::HostKeyUnknown => "unknown host key",
            TransportErrorKind::Timeout => "timed out",
            TransportErrorKind::Become => "cannot become root",
            TransportErrorKind::Interrupted => "interrupted",
            TransportErrorKind::Connection => "connection error",
        })
    }
}

/// An error talking to one host: which host, what kind, ssh's own words and a hint.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{host}: {kind}: {detail}\n  hint: {hint}")]
pub struct TransportError {
    pub host: String,
    pub kind: TransportErrorKind,
    /// What ssh said (trimmed), or what we observed.
    pub detail: String,
    pub hint: String,
}

impl TransportError {
    /// The sudo failure `output` shows for a `become` host, if it shows one.
    pub(crate) fn from_sudo(target: &Target, output: &Output) -> Option<Self> {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let first = stderr.lines().next().unwrap_or_default().trim().to_string();
        let missing = output.exit_code == Some(127)
            && first.contains("sudo")
            && (first.contains("not found") || first.contains("No such file"));
        let password =
            output.exit_code == Some(1) && first.starts_with("sudo:") && first.contains("password");
        let (user, become_) = match target.spelling {
            Spelling::Kprov => ("user", "become"),
            Spelling::Ansible => ("ansible_user", "ansible_become"),
        };
        let hint = if missing {
            format!(
                "sudo is not installed on this host: install it, or connect as root \
                 (`{user}: root`) and drop `{become_}`"
            )
        } else if password {
            format!(
                "sudo asks {} for a password; kprov needs passwordless sudo (a NOPASSWD rule \
                 in /etc/sudoers.d/), or connect as root and drop `{become_}`",
                target.user
            )
        } else {
            return None;
        };
        Some(TransportError {
            host: target.name.clone(),
            kind: TransportErrorKind::Become,
            detail: first,
            hint,
        })
    }

    /// Classifies ssh's error text for `target`, with hints in the inventory's spelling.
    pub(crate) fn from_ssh(target: &Target, ssh_text: &str) -> Self {
        let detail = clean(ssh_text);
        let kind = classify(&detail);
        let destination = target.destination();
        let (user, key, known, timeout) = match target.spelling {
            Spelling::Kprov => (
                "user",
                "identity_file",
                "`known_hosts_file` (default ~/.ssh/known_hosts)",
                "connect_timeout",
            ),
            Spelling::Ansible => (
                "ansible_user",
                "ansible_ssh_private_key_file",
                "~/.ssh/known_hosts (or the file `-o UserKnownHostsFile=…` names in \
                 ansible_ssh_common_args)",
                "ansible_ssh_timeout",
            ),
        };
        let scan = target.keyscan_destination();
        let hint = match kind {
            TransportErrorKind::Unreachable => format!(
                "check the host's address and port in the inventory, that sshd runs on it and \
                 that no firewall blocks port 22 (try: ssh {destination})"
            ),
            TransportErrorKind::Authentication => format!(
                "check `{user}` and `{key}` for this host in the inventory; the public key \
                 must be in the user's ~/.ssh/authorized_keys on the host, or the key loaded in \
                 your ssh-agent (try: ssh {destination})"
            ),
            TransportErrorKind::HostKeyMismatch => {
                "the host's key differs from the one recorded in known_hosts: either the host \
                 was reinstalled or someone is intercepting the connection. Only if you know it \
                 was reinstalled: ssh-keygen -R <address> (with -f <file> for the inventory's \
                 known_hosts_file), then run again"
                    .to_string()
            }
            TransportErrorKind::HostKeyUnknown => format!(
                "kprov connects only to hosts whose key is already known: get the key with \
                 `ssh-keyscan -t ed25519 {scan}`, check that its fingerprint (`ssh-keygen -lf \
                 -`) is the one the host itself shows (`ssh-keygen -lf \
                 /etc/ssh/ssh_host_ed25519_key.pub` on its console), then add the line to \
                 {known}; or connect once with `ssh {destination}` and compare the fingerprint \
                 it asks about"
            ),
            TransportErrorKind::Timeout => format!(
                "the host did not answer in time: check its address and the network path, or \
                 raise `{timeout}` in the inventory"
            ),
            TransportErrorKind::Become | TransportErrorKind::Interrupted => String::new(),
            TransportErrorKind::Connection => {
                "the ssh connection failed; run with -v for ssh's full output".to_string()
            }
        };
        TransportError {
            host: target.name.clone(),
            kind,
            detail,
            hint,
        }
    }

    /// A command that did not finish within `limit`.
    pub(crate) fn command_timeout(host: &str, limit: Duration) -> Self {
        TransportError {
            host: host.to_string(),
            kind: TransportErrorKind::Timeout,
            detail: format!("command did not finish within {} s", limit.as_secs_f32()),
            hint: "the remote command may hang (waiting for input or a lock); raise the \
                   task's `timeout` if it is only slow"
                .to_string(),
        }
    }

    /// A command not started because the run was interrupted.
    pub(crate) fn interrupted(host: &str) -> Self {
        TransportError {
            host: host.to_string(),
            kind: TransportErrorKind::Interrupted,
            detail: "the run was interrupted before this command started".into(),
            hint: "run again to finish; what ran is idempotent".into(),
        }
    }

    /// A local or mid-session failure (the master connection died, spawning ssh failed).
    pub(crate) fn connection(host: &str, detail: impl fmt::Display) -> Self {
        TransportError {
            host: host.to_string(),
            kind: TransportErrorKind::Connection,
            detail: detail.to_string(),
            hint: "the ssh connection to this host broke; check that the host is up and run \
                   again (-v shows ssh's log)"
                .to_string(),
        }
    }
}

/// Drops ssh's noise lines ("Warning: Permanently added ...") and joins the rest.
fn clean(text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("Warning: Permanently added"))
        .collect();
    let joined = lines.join(" ");
    joined.strip_prefix("ssh: ").unwrap_or(&joined).to_string()
}

fn classify(text: &str) -> TransportErrorKind {
    let t = text.to_ascii_lowercase();
    if t.contains("remote host identification has changed")
        || t.contains("host key for") && t.contains("has changed")
    {
        TransportErrorKind::HostKeyMismatch
    } else if t.contains("host key verification failed")
        || t.contains("no ") && t.contains("host key is known")
    {
        TransportErrorKind::HostKeyUnknown
    } else if t.contains("permission denied") || t.contains("too many authentication failures") {
        TransportErrorKind::Authentication
    } else if t.contains("timed out") || t.contains("timeout") {
        TransportErrorKind::Timeout
    } else if t.contains("connection refused")
        || t.contains("no route to host")
        || t.contains("could not resolve")
        || t.contains("network is unreachable")
        || t.contains("name or service not known")
        || t.contains("connection closed by")
        || t.contains("connection reset")
    {
        TransportErrorKind::Unreachable
    } else {
        TransportErrorKind::Connection
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_what_openssh_prints() {
        let cases = [
            ("ssh: connect to host 10.0.0.9 port 22: Connection refused", TransportErrorKind::Unreachable),
            ("ssh: connect to host 10.0.0.9 port 22: No route to host", TransportErrorKind::Unreachable),
            ("ssh: Could not resolve hostname nope: Name or service not known", TransportErrorKind::Unreachable),
            ("ssh: connect to host 10.0.0.9 port 22: Connection timed out", TransportErrorKind::Timeout),
            ("Warning: Permanently added '10.0.0.9' (ED25519) to the list of known hosts.\nroot@10.0.0.9: Permission denied (publickey).", TransportErrorKind::Authentication),
            ("@@@@@@@\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\nHost key verification failed.", TransportErrorKind::HostKeyMismatch),
            ("No ED25519 host key is known for 10.0.0.9 and you have requested strict checking.\nHost key verification failed.", TransportErrorKind::HostKeyUnknown),
        ];
        for (text, kind) in cases {
            let err = TransportError::from_ssh(&Target::new("node1", "10.0.0.9"), text);
            assert_eq!(err.kind, kind, "for {text:?}");
            assert!(err.to_string().starts_with("node1: "), "{err}");
            assert!(!err.detail.contains("Permanently added"));
        }
        let text =
            "No ED25519 host key is known for 10.0.0.9 and you have requested strict checking.";
        let mut target = Target::new("n", "10.0.0.9");
        (target.port, target.user) = (2222, "core".into());
        let err = TransportError::from_ssh(&target, text);
        assert!(
            err.hint
                .contains("`ssh-keyscan -t ed25519 -p 2222 10.0.0.9`")
                && err.hint.contains("`known_hosts_file`")
                && err.hint.contains("`ssh -p 2222 core@10.0.0.9`")
                && !err.hint.contains("accept-new"),
            "{err}"
        );
    }
}
