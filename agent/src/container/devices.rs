//! Device nodes for the OCI spec: one CRI device, or every device of the host
//! (privileged containers, as containerd and CRI-O give them).

use serde_json::{json, Value};
use std::path::Path;

/// Directories under /dev that hold no host devices to pass on (the container gets
/// its own pts, shm and mqueue) or belong to other container managers.
const SKIP_DIRS: &[&str] = &["pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"];

/// A device node at `host_path`: (kind `c`/`b`, major, minor, mode bits).
pub fn device_node(host_path: &Path) -> Result<(&'static str, i64, i64, u32), String> {
    let md = nix::sys::stat::lstat(host_path)
        .map_err(|e| format!("device {}: {e}", host_path.display()))?;
    let kind = match md.st_mode & libc::S_IFMT {
        libc::S_IFCHR => "c",
        libc::S_IFBLK => "b",
        _ => {
            return Err(format!(
                "device {} is not a device node",
                host_path.display()
            ))
        }
    };
    Ok((
        kind,
        libc::major(md.st_rdev) as i64,
        libc::minor(md.st_rdev) as i64,
        md.st_mode & 0o777,
    ))
}

/// The OCI `linux.devices` entry for a node at `container_path`.
pub fn device_json(container_path: &str, node: (&str, i64, i64, u32)) -> Value {
    let (kind, major, minor, mode) = node;
    json!({
        "path": container_path, "type": kind, "major": major, "minor": minor,
        "fileMode": mode, "uid": 0, "gid": 0,
    })
}

/// Every character and block device under `root` (normally /dev), at the same
/// path in the container; `/dev/console` is left to the runtime.
pub fn host_devices(root: &Path) -> Vec<Value> {
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort_by(|a, b| a["path"].as_str().cmp(&b["path"].as_str()));
    out
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<Value>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let Ok(ft) = e.file_type() else { continue };
        let name = e.file_name().to_string_lossy().into_owned();
        let path = e.path();
        if ft.is_dir() {
            if !(dir == root && SKIP_DIRS.contains(&name.as_str())) {
                walk(root, &path, out);
            }
            continue;
        }
        if ft.is_symlink() || (dir == root && name == "console") {
            continue;
        }
        if let Ok(node) = device_node(&path) {
            let rel = path.strip_prefix(root).unwrap_or(&path);
            out.push(device_json(&format!("/dev/{}", rel.display()), node));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_devices_lists_nodes_and_skips_pts_and_console() {
        let devs = host_devices(Path::new("/dev"));
        let paths: Vec<&str> = devs.iter().filter_map(|d| d["path"].as_str()).collect();
        assert!(paths.contains(&"/dev/null"), "{paths:?}");
        let null = devs.iter().find(|d| d["path"] == "/dev/null").unwrap();
        assert_eq!(
            (
                null["type"].as_str(),
                null["major"].as_i64(),
                null["minor"].as_i64()
            ),
            (Some("c"), Some(1), Some(3))
        );
        assert!(paths
            .iter()
            .all(|p| !p.starts_with("/dev/pts/") && *p != "/dev/console"));
    }
}
