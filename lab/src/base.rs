//! The cached Debian bookworm base file system every lab host's overlay sits on.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::cmd::Cmd;
use crate::error::LabError;
use crate::fsutil::{remove_tree, write_atomic};
use crate::layout::{base_dir, lock_dir, CACHE_ROOT};
use crate::lock::LockGuard;

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

/// Returns the base directory, building it first when it is not cached yet, from the
/// Debian mirror `mirror` names (see [`crate::mirror::resolve`]).
pub(crate) fn ensure(mirror: Option<&str>) -> Result<PathBuf, LabError> {
    let base = base_dir();
    if is_complete(&base) {
        return Ok(base);
    }
    let _lock = LockGuard::acquire(&lock_dir().join("base.lock"))?;
    if is_complete(&base) {
        return Ok(base);
    }
    build(&base, mirror)?;
    Ok(base)
}

fn is_complete(base: &Path) -> bool {
    base.join("lib/systemd/systemd").exists()
}

/// Builds into a temporary directory and renames it into place when complete, so an
/// interrupted build never leaves a half base behind. Says what it does on stderr.
fn build(base: &Path, mirror: Option<&str>) -> Result<(), LabError> {
    let started = Instant::now();
    let mirror = crate::mirror::resolve(mirror, SUITE, Path::new("/etc/apt"))?;
    let cache = Path::new(CACHE_ROOT);
    std::fs::create_dir_all(cache).map_err(LabError::io("create directory", cache))?;
    let tmp = cache.join("base-bookworm.partial");
    remove_tree(&tmp)?;
    remove_tree(base)?;
    let log = cache.join("base-build.log");
    let _ = std::fs::remove_file(&log);
    step(
        started,
        &format!(
            "building the lab's Debian {SUITE} base with debootstrap from {} (once, a few minutes; log: {})",
            mirror.main,
            log.display()
        ),
    );
    let include = format!("--include={}", PACKAGES.join(","));
    Cmd::new([
        "debootstrap",
        "--variant=minbase",
        include.as_str(),
        SUITE,
        &tmp.display().to_string(),
        mirror.main.as_str(),
    ])
    .hint(format!(
        "debootstrap could not build the lab base; check that {} is reachable, or pass \
         another Debian mirror with --mirror / {}",
        mirror.main,
        crate::mirror::MIRROR_ENV
    ))
    .run_logged(&log)?;
    step(
        started,
        "base bootstrapped; removing host identities, writing the sshd config",
    );
    customize(&tmp)?;
    std::fs::rename(&tmp, base).map_err(LabError::io("rename into place", base))?;
    step(started, &format!("base ready in {}", base.display()));
    Ok(())
}

/// One line of progress on stderr with the time since `started` (whether or not stderr is
/// a terminal: a first `lab up` in CI must not look hung).
pub(crate) fn step(started: Instant, what: &str) {
    eprintln!("lab: [{:>4.0}s] {what}", started.elapsed().as_secs_f64());
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
