//! Keepalives: how long a host may stay silent before its master gives up, and telling a
//! host that stopped answering from other broken connections.

use std::path::Path;
use std::time::Duration;

use super::error::{TransportError, TransportErrorKind};

/// The master asks for a reply after this long without traffic (`ServerAliveInterval`).
pub const INTERVAL: Duration = Duration::from_secs(10);
/// Unanswered requests before the master gives up (`ServerAliveCountMax`).
pub const COUNT_MAX: u32 = 3;

/// How long a host may stay silent before its connection is declared dead.
pub fn window() -> Duration {
    INTERVAL * COUNT_MAX
}

/// The ssh config line that fixes the count (ssh has no flag for it).
pub(super) fn config_line() -> String {
    format!("  ServerAliveCountMax {COUNT_MAX}\n")
}

/// Why a host that went away mid-run is unreachable, and what to do.
const GONE_HINT: &str = "the host or the network to it went away mid-run (powered off, \
                         rebooted, frozen, firewalled, cable): check it, then run again; \
                         what ran is idempotent";

/// When the master of `ctl` ended because the host stopped answering keepalives (ssh logs
/// `Timeout, server … not responding.`), the error that says so.
pub(super) fn silent(host: &str, ctl: &Path) -> Option<TransportError> {
    let log = std::fs::read_to_string(ctl.parent()?.join("log")).ok()?;
    log.lines()
        .any(|l| l.contains("Timeout, server") && l.contains("not responding"))
        .then(|| TransportError {
            host: host.to_string(),
            kind: TransportErrorKind::Unreachable,
            detail: format!(
                "host stopped answering (no keepalive reply for {} s)",
                window().as_secs()
            ),
            hint: GONE_HINT.into(),
        })
}

/// The error for a host whose master connection ended under a running command: the host
/// closed it (died, rebooted, its sshd was killed).
pub(super) fn dropped(host: &str) -> TransportError {
    TransportError {
        host: host.to_string(),
        kind: TransportErrorKind::Unreachable,
        detail: "the host closed the SSH connection mid-run".into(),
        hint: GONE_HINT.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_keepalive_timeout_in_the_master_log_is_a_silent_host() {
        let dir = tempfile::tempdir().unwrap();
        let ctl = dir.path().join("master");
        assert!(silent("n1", &ctl).is_none(), "no log, no verdict");
        std::fs::write(dir.path().join("log"), "Connection reset by peer\n").unwrap();
        assert!(silent("n1", &ctl).is_none());
        std::fs::write(
            dir.path().join("log"),
            "Timeout, server 172.30.1.11 not responding.\r\n",
        )
        .unwrap();
        let err = silent("n1", &ctl).unwrap();
        assert_eq!(err.kind, TransportErrorKind::Unreachable);
        assert_eq!(
            err.detail,
            "host stopped answering (no keepalive reply for 30 s)"
        );
    }
}
