//! The container rootfs: overlayfs over the image's snapshot directories.

use std::path::{Path, PathBuf};

/// Mounts overlayfs at `bundle/rootfs` with `lowers` (top first) and a writable
/// layer in `bundle/upper`.
pub fn mount_rootfs(bundle: &Path, lowers: &[PathBuf]) -> std::io::Result<PathBuf> {
    let rootfs = bundle.join("rootfs");
    let upper = bundle.join("upper");
    let work = bundle.join("work");
    for d in [&rootfs, &upper, &work] {
        std::fs::create_dir_all(d)?;
    }
    let lower = if lowers.is_empty() {
        // overlayfs needs a lower layer; an empty image gets an empty one.
        let empty = bundle.join("empty");
        std::fs::create_dir_all(&empty)?;
        empty.display().to_string()
    } else {
        lowers
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(":")
    };
    let data = format!(
        "lowerdir={lower},upperdir={},workdir={}",
        upper.display(),
        work.display()
    );
    nix::mount::mount(
        Some("overlay"),
        &rootfs,
        Some("overlay"),
        nix::mount::MsFlags::empty(),
        Some(data.as_str()),
    )
    .map_err(|e| {
        let mut msg = format!("mount overlay on {}: {e}", rootfs.display());
        if on_overlayfs(&upper) {
            msg.push_str(&format!(
                ": {} is itself on overlayfs, which cannot hold an overlay's upper dir (nested containers, lab hosts); put the agent's root_dir on a disk filesystem (ext4, xfs) or tmpfs",
                bundle.display()
            ));
        }
        std::io::Error::other(msg)
    })?;
    Ok(rootfs)
}

/// Whether `path` lives on an overlayfs mount.
fn on_overlayfs(path: &Path) -> bool {
    nix::sys::statfs::statfs(path)
        .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::OVERLAYFS_SUPER_MAGIC)
}

/// Unmounts `bundle/rootfs` if mounted (missing or unmounted is fine).
pub fn unmount_rootfs(bundle: &Path) -> std::io::Result<()> {
    let rootfs = bundle.join("rootfs");
    match nix::mount::umount2(&rootfs, nix::mount::MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => Ok(()),
        Err(e) => Err(std::io::Error::other(format!(
            "umount {}: {e}",
            rootfs.display()
        ))),
    }
}
