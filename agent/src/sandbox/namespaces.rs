//! Creating and releasing pinned (bind-mounted) namespaces.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Pin files of a pod's namespaces; `None` for a namespace shared with the host.
#[derive(Debug, Clone, Default)]
pub struct PinnedNamespaces {
    pub net: Option<PathBuf>,
    pub ipc: Option<PathBuf>,
    pub uts: Option<PathBuf>,
}

/// Creates new namespaces pinned under `dir` with `unshare(1)`; the UTS one gets `hostname`.
pub fn pin_namespaces(
    dir: &Path,
    net: bool,
    ipc: bool,
    uts: bool,
    hostname: &str,
) -> std::io::Result<PinnedNamespaces> {
    std::fs::create_dir_all(dir)?;
    let mut pins = PinnedNamespaces::default();
    let mut cmd = Command::new("unshare");
    for (want, name, slot) in [
        (net, "net", &mut pins.net),
        (ipc, "ipc", &mut pins.ipc),
        (uts, "uts", &mut pins.uts),
    ] {
        if want {
            let p = dir.join(name);
            std::fs::File::create(&p)?;
            cmd.arg(format!("--{name}={}", p.display()));
            *slot = Some(p);
        }
    }
    if !(net || ipc || uts) {
        return Ok(pins);
    }
    if uts && !hostname.is_empty() {
        cmd.args(["hostname", hostname]);
    } else {
        cmd.arg("true");
    }
    let out = cmd.output()?;
    if !out.status.success() {
        unpin(&pins);
        return Err(std::io::Error::other(format!(
            "unshare: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(pins)
}

/// Unmounts and deletes every pin that exists; missing ones are fine.
pub fn unpin(pins: &PinnedNamespaces) {
    for p in [&pins.net, &pins.ipc, &pins.uts].into_iter().flatten() {
        let _ = nix::mount::umount2(p.as_path(), nix::mount::MntFlags::MNT_DETACH);
        let _ = std::fs::remove_file(p);
    }
}
