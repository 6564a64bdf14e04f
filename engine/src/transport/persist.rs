//! Persisted ssh masters (`--persist`). A master is found again by a later run only when
//! every setting that decides whom it trusts and who it is matches (user, address, port,
//! known-hosts file, identity file, extra ssh options), and it is reused only after the
//! host's key verified again against that run's known-hosts file: a master opened before
//! the host's key changed, or with another known-hosts file, is never a way around the
//! check.

use std::path::{Path, PathBuf};
use std::time::Duration;

use openssh::Session;
use sha2::{Digest, Sha256};

use super::target::Target;

/// File (inside the control directory) that records the persisted master for `target`.
pub(super) fn record_name(target: &Target) -> String {
    let mut identity = Sha256::new();
    for part in [
        target.user.as_str(),
        target.address.as_str(),
        &target.port.to_string(),
        &path_text(target.known_hosts_file.as_deref()),
        &path_text(target.identity_file.as_deref()),
    ] {
        identity.update(part.as_bytes());
        identity.update([0]);
    }
    for (key, value) in &target.ssh_options {
        identity.update(format!("{key}={value}\0").as_bytes());
    }
    let digest: String = identity.finalize()[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let raw = format!(
        "persist-{}@{}-{}-{digest}",
        target.user, target.address, target.port
    );
    raw.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '@' | '-' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn path_text(path: Option<&Path>) -> String {
    path.map(|p| p.display().to_string()).unwrap_or_default()
}

/// Reattaches to the master recorded in `record` if it still answers and the host's key
/// verifies again (`config`: the ssh config file the target's own options need). A
/// master that fails either check is closed and forgotten; the caller connects afresh,
/// and that connection reports a changed key as ssh does.
pub(super) async fn resume(
    record: &Path,
    target: &Target,
    config: Option<&Path>,
) -> Option<Session> {
    let ctl = std::fs::read_to_string(record).ok()?;
    let ctl = PathBuf::from(ctl.trim());
    if !ctl.exists() {
        let _ = std::fs::remove_file(record);
        return None;
    }
    let session = Session::resume_mux(ctl.into_boxed_path(), None);
    let alive = matches!(
        tokio::time::timeout(Duration::from_secs(2), session.check()).await,
        Ok(Ok(()))
    );
    let verified = alive && host_key_verifies(target, config).await;
    if verified {
        return Some(session);
    }
    if alive {
        tracing::debug!(host = %target.name, "host key did not verify again: closing the persisted master");
        let _ = session.close().await;
    }
    let _ = std::fs::remove_file(record);
    None
}

/// Runs ssh's host-key check against the host once, without a master and without
/// authenticating: every authentication method is off, so a verified key ends in
/// "Permission denied" (or success on a host that lets anyone in), anything else means
/// the key did not verify (or the host did not answer).
async fn host_key_verifies(target: &Target, config: Option<&Path>) -> bool {
    let mut command = tokio::process::Command::new("ssh");
    if let Some(config) = config {
        command.arg("-F").arg(config);
    }
    command.args([
        "-o",
        "BatchMode=yes",
        "-o",
        "ControlMaster=no",
        "-o",
        "ControlPath=none",
        "-o",
        "PubkeyAuthentication=no",
        "-o",
        "PasswordAuthentication=no",
        "-o",
        "KbdInteractiveAuthentication=no",
        "-o",
        "GSSAPIAuthentication=no",
        "-o",
        "HostbasedAuthentication=no",
        "-o",
        "StrictHostKeyChecking=yes",
    ]);
    command.arg("-o").arg(format!(
        "ConnectTimeout={}",
        target.connect_timeout.as_secs().max(1)
    ));
    if let Some(file) = &target.known_hosts_file {
        command
            .arg("-o")
            .arg(format!("UserKnownHostsFile={}", file.display()));
    }
    command
        .arg("-p")
        .arg(target.port.to_string())
        .arg("-l")
        .arg(&target.user)
        .arg("--")
        .arg(&target.address)
        .arg("true")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let limit = target.connect_timeout + Duration::from_secs(5);
    match tokio::time::timeout(limit, command.output()).await {
        Ok(Ok(out)) => {
            out.status.success()
                || String::from_utf8_lossy(&out.stderr).contains("Permission denied")
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_trust_setting_names_its_own_master() {
        let base = Target::new("h", "10.0.0.5");
        let name = record_name(&base);
        assert!(name.starts_with("persist-root@10.0.0.5-22-"), "{name}");
        let mut known = base.clone();
        known.known_hosts_file = Some("/etc/kprov/known_hosts".into());
        let mut key = base.clone();
        key.identity_file = Some("/root/.ssh/other".into());
        let mut jump = base.clone();
        jump.ssh_options = vec![("ProxyJump".into(), "bastion".into())];
        let names = [&known, &key, &jump].map(record_name);
        for other in &names {
            assert_ne!(other, &name);
        }
        assert_eq!(
            record_name(&base.clone()),
            name,
            "stable for the same settings"
        );
    }
}
