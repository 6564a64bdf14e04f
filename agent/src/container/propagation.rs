//! Mount propagation of CRI mounts. A container sees mounts made later on the host
//! (`rslave`) only when the host side is a shared or slave mount, and the host sees
//! the container's (`rshared`) only when it is shared: as containerd and CRI-O do,
//! the source is checked in /proc/self/mountinfo and a wrong one is refused with the
//! command that fixes it, rather than silently not propagating.

use crate::api::MountPropagation;
use std::path::{Path, PathBuf};

/// The mount holding a path: its mount point and its propagation fields
/// (`shared:N`, `master:N`, ...).
#[derive(Debug, PartialEq, Eq)]
pub struct SourceMount {
    pub mount_point: PathBuf,
    pub optional: Vec<String>,
}

/// Finds the mount of `path` (already canonical) in a mountinfo text: the one with
/// the longest mount point that is a prefix; the last such line wins (stacked mounts).
pub fn source_mount(mountinfo: &str, path: &Path) -> Option<SourceMount> {
    let mut best: Option<SourceMount> = None;
    for line in mountinfo.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(sep) = fields.iter().position(|f| *f == "-") else {
            continue;
        };
        if sep < 6 {
            continue;
        }
        let mount_point = PathBuf::from(unescape(fields[4]));
        if !path.starts_with(&mount_point) {
            continue;
        }
        let longer = best
            .as_ref()
            .is_none_or(|b| mount_point.as_os_str().len() >= b.mount_point.as_os_str().len());
        if longer {
            best = Some(SourceMount {
                mount_point,
                optional: fields[6..sep].iter().map(|s| s.to_string()).collect(),
            });
        }
    }
    best
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// The OCI bind option for `propagation`, after checking that the host side of
/// `host_path` allows it; also the rootfs propagation the container then needs.
pub fn bind_propagation(
    host_path: &str,
    propagation: MountPropagation,
) -> Result<(&'static str, Option<&'static str>), String> {
    let (want_shared, opt, rootfs) = match propagation {
        MountPropagation::PropagationBidirectional => (true, "rshared", "rshared"),
        MountPropagation::PropagationHostToContainer => (false, "rslave", "rslave"),
        MountPropagation::PropagationPrivate => return Ok(("rprivate", None)),
    };
    let canonical =
        std::fs::canonicalize(host_path).map_err(|e| format!("mount source {host_path:?}: {e}"))?;
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| format!("reading /proc/self/mountinfo: {e}"))?;
    let m = source_mount(&mountinfo, &canonical)
        .ok_or_else(|| format!("mount source {host_path:?}: no mount holds it"))?;
    let shared = m.optional.iter().any(|o| o.starts_with("shared:"));
    let slave = m.optional.iter().any(|o| o.starts_with("master:"));
    if shared || (!want_shared && slave) {
        return Ok((opt, Some(rootfs)));
    }
    let what = if want_shared {
        "a shared mount"
    } else {
        "a shared or slave mount"
    };
    Err(format!(
        "mount propagation {opt} for {host_path:?}: it is on the mount {} that is not {what} \
         (make it one on the host: `mount --make-rshared {}`)",
        m.mount_point.display(),
        m.mount_point.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n\
        90 27 0:50 / /tmp/vol rw,relatime shared:7 - tmpfs tmpfs rw\n\
        91 90 0:51 / /tmp/vol/sub rw,relatime master:7 - tmpfs tmpfs rw\n\
        92 27 0:52 / /tmp/with\\040space rw - tmpfs tmpfs rw\n";

    #[test]
    fn the_longest_mount_point_holds_the_path() {
        let m = source_mount(INFO, Path::new("/tmp/vol/a/b")).unwrap();
        assert_eq!(m.mount_point, Path::new("/tmp/vol"));
        assert_eq!(m.optional, ["shared:7"]);
        let m = source_mount(INFO, Path::new("/tmp/vol/sub/x")).unwrap();
        assert_eq!(m.optional, ["master:7"]);
        let m = source_mount(INFO, Path::new("/tmp/volume")).unwrap();
        assert_eq!(m.mount_point, Path::new("/"));
        assert!(m.optional.is_empty());
        let m = source_mount(INFO, Path::new("/tmp/with space/f")).unwrap();
        assert_eq!(m.mount_point, Path::new("/tmp/with space"));
    }

    #[test]
    fn private_needs_no_check() {
        assert_eq!(
            bind_propagation("/nonexistent", MountPropagation::PropagationPrivate).unwrap(),
            ("rprivate", None)
        );
    }
}
