//! The cached Debian bookworm base file system every lab host's overlay sits on.

use std::path::{Path, PathBuf};

use crate::cmd::Cmd;
use crate::error::LabError;
use crate::fsutil::{remove_tree, write_atomic};
use crate::layout::{base_dir, lock_dir, CACHE_ROOT};
use crate::lock::LockGuard;

/// Debian mirror the base is bootstrapped from.
pub(crate) const MIRROR: &str = "http://deb.debian.org/debian";
/// Debian release of the base.
pub(crate) const SUITE: &str = "bookworm";
/// Packages on top of debootstrap's minimal base.
const PACKAGES: &[&str] = &[
    "systemd-sysv",
    "dbus",
    "openssh-server",
    "iproute2",
    "kmod",
    "procps",
    "ca-certificates",
    "curl",
    "gnupg",
    "apt-transport-https",
];

/// sshd settings shared by all lab hosts (each host gets its own ed25519 host key).
const SSHD_CONFIG: &str = "\
# Written by kprov lab.
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PasswordAuthentication no
UseDNS no
";

/// Returns the base directory, building it first when it is not cached yet.
pub(crate) fn ensure() -> Result<PathBuf, LabError> {
    let base = base_dir();
    if is_complete(&base) {
        return Ok(base);
    }
    let _lock = LockGuard::acquire(&lock_dir().join("base.lock"))?;
    if is_complete(&base) {
        return Ok(base);
    }
    build(&base)?;
    Ok(base)
}

fn is_complete(base: &Path) -> bool {
    base.join("lib/systemd/systemd").exists()
}

/// Builds into a temporary directory and renames it into place when complete, so an
/// interrupted build never leaves a half base behind.
fn build(base: &Path) -> Result<(), LabError> {
    let cache = Path::new(CACHE_ROOT);
    std::fs::create_dir_all(cache).map_err(LabError::io("create directory", cache))?;
    let tmp = cache.join("base-bookworm.partial");
    remove_tree(&tmp)?;
    remove_tree(base)?;
    let log = cache.join("base-build.log");
    let _ = std::fs::remove_file(&log);
    tracing::info!(dir = %base.display(), log = %log.display(), "building the lab base with debootstrap (takes a few minutes, once)");
    let include = format!("--include={}", PACKAGES.join(","));
    Cmd::new([
        "debootstrap",
        "--variant=minbase",
        include.as_str(),
        SUITE,
        &tmp.display().to_string(),
        MIRROR,
    ])
    .hint(format!(
        "debootstrap could not build the lab base; check that {MIRROR} is reachable"
    ))
    .run_logged(&log)?;
    customize(&tmp)?;
    std::fs::rename(&tmp, base).map_err(LabError::io("rename into place", base))?;
    Ok(())
}

/// Settings every host shares: no shared identities, no internet apt sources, sshd config.
fn customize(root: &Path) -> Result<(), LabError> {
    // Host keys and machine ids are generated per host; never share them.
    let ssh_dir = root.join("etc/ssh");
    let entries = std::fs::read_dir(&ssh_dir).map_err(LabError::io("read", &ssh_dir))?;
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with("ssh_host_") {
            let path = entry.path();
            std::fs::remove_file(&path).map_err(LabError::io("remove", &path))?;
        }
    }
    write_atomic(
        &root.join("etc/ssh/sshd_config.d/kprov-lab.conf"),
        SSHD_CONFIG.as_bytes(),
        0o644,
    )?;
    write_atomic(&root.join("etc/machine-id"), b"", 0o444)?;
    let dbus_id = root.join("var/lib/dbus/machine-id");
    let _ = std::fs::remove_file(&dbus_id);
    std::os::unix::fs::symlink("/etc/machine-id", &dbus_id)
        .map_err(LabError::io("create symlink", &dbus_id))?;
    write_atomic(
        &root.join("etc/resolv.conf"),
        crate::rootfs::RESOLV_CONF.as_bytes(),
        0o644,
    )?;
    // Lab hosts have no internet: only the lab repository (written per host) is a source.
    let sources = root.join("etc/apt/sources.list");
    let _ = std::fs::remove_file(&sources);
    let archives = root.join("var/cache/apt/archives");
    if let Ok(entries) = std::fs::read_dir(&archives) {
        for entry in entries.flatten() {
            if entry.path().extension().is_some_and(|e| e == "deb") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    Ok(())
}
