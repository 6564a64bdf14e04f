//! Per-host cgroups in every hierarchy of the machine's cgroup v1 + v2 hybrid layout.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::error::LabError;

/// cgroup v1 controllers delegated to lab hosts (for nested containers).
const DELEGATED: &[&str] = &[
    "cpu", "cpuacct", "memory", "pids", "devices", "freezer", "blkio", "cpuset",
];

/// One mounted cgroup hierarchy on the machine.
#[derive(Debug, Clone)]
pub(crate) struct Hierarchy {
    /// Mount point, e.g. /sys/fs/cgroup/memory.
    pub mount: PathBuf,
    /// Controllers to mount inside a host (`cpu,cpuacct` for a joint hierarchy); `None` for
    /// the name=systemd and cgroup2 hierarchies, which the launcher mounts itself.
    pub controllers: Option<String>,
}

/// The machine's hierarchies that lab hosts get a cgroup in.
pub(crate) fn hierarchies() -> Result<Vec<Hierarchy>, LabError> {
    let mounts = std::fs::read_to_string("/proc/self/mounts")
        .map_err(LabError::io("read", "/proc/self/mounts"))?;
    let mut found = Vec::new();
    let mut have_systemd = false;
    let mut have_unified = false;
    for line in mounts.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(fstype), Some(mount), Some(options)) =
            (fields.get(2), fields.get(1), fields.get(3))
        else {
            continue;
        };
        match *fstype {
            "cgroup2" if *mount == "/sys/fs/cgroup/unified" => {
                have_unified = true;
                found.push(Hierarchy {
                    mount: PathBuf::from(mount),
                    controllers: None,
                });
            }
            "cgroup" => {
                let opts: Vec<&str> = options.split(',').collect();
                if opts.contains(&"name=systemd") {
                    have_systemd = true;
                    found.push(Hierarchy {
                        mount: PathBuf::from(mount),
                        controllers: None,
                    });
                    continue;
                }
                let controllers: Vec<&str> = opts
                    .iter()
                    .copied()
                    .filter(|o| DELEGATED.contains(o))
                    .collect();
                if !controllers.is_empty() {
                    found.push(Hierarchy {
                        mount: PathBuf::from(mount),
                        controllers: Some(controllers.join(",")),
                    });
                }
            }
            _ => {}
        }
    }
    if !(have_systemd && have_unified) {
        return Err(LabError::Unsupported(
            "lab hosts need the cgroup v1 + v2 hybrid layout (name=systemd at /sys/fs/cgroup/systemd and cgroup2 at /sys/fs/cgroup/unified); boot the machine with systemd.unified_cgroup_hierarchy=0 or use a machine with that layout".to_string(),
        ));
    }
    Ok(found)
}

/// Creates `rel` in every hierarchy and returns the `cgroup.procs` files to join.
pub(crate) fn create(hierarchies: &[Hierarchy], rel: &str) -> Result<Vec<PathBuf>, LabError> {
    let mut procs = Vec::new();
    for h in hierarchies {
        let mut dir = h.mount.clone();
        for part in rel.split('/') {
            dir.push(part);
            if !dir.exists() {
                std::fs::create_dir(&dir).map_err(LabError::io("create cgroup", &dir))?;
            }
            if h.controllers
                .as_deref()
                .is_some_and(|c| c.contains("cpuset"))
            {
                inherit_cpuset(&dir)?;
            }
        }
        procs.push(dir.join("cgroup.procs"));
    }
    Ok(procs)
}

/// A new v1 cpuset cgroup has no cpus or mems; copy them from its parent.
fn inherit_cpuset(dir: &Path) -> Result<(), LabError> {
    let Some(parent) = dir.parent() else {
        return Ok(());
    };
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let own = std::fs::read_to_string(dir.join(file)).unwrap_or_default();
        if own.trim().is_empty() {
            let value = std::fs::read_to_string(parent.join(file))
                .map_err(LabError::io("read", parent.join(file)))?;
            std::fs::write(dir.join(file), value.trim())
                .map_err(LabError::io("write", dir.join(file)))?;
        }
    }
    Ok(())
}

/// Kills every process in `rel` (all hierarchies, all descendants) and removes the cgroups.
pub(crate) fn destroy(hierarchies: &[Hierarchy], rel: &str) -> Result<(), LabError> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let pids = processes(hierarchies, rel);
        if pids.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            return Err(LabError::Cleanup {
                what: format!("cgroup {rel}"),
                detail: format!("processes {pids:?} survive SIGKILL"),
            });
        }
        for pid in &pids {
            if let Ok(raw) = i32::try_from(*pid) {
                let _ = kill(Pid::from_raw(raw), Signal::SIGKILL);
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    for h in hierarchies {
        let root = h.mount.join(rel);
        remove_tree_cgroups(&root, deadline)?;
    }
    Ok(())
}

/// Pids in `rel` and below, across all hierarchies.
pub(crate) fn processes(hierarchies: &[Hierarchy], rel: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    for h in hierarchies {
        collect_pids(&h.mount.join(rel), &mut pids);
    }
    pids.sort_unstable();
    pids.dedup();
    pids
}

fn collect_pids(dir: &Path, pids: &mut Vec<u32>) {
    if let Ok(text) = std::fs::read_to_string(dir.join("cgroup.procs")) {
        pids.extend(text.lines().filter_map(|l| l.trim().parse::<u32>().ok()));
    }
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                collect_pids(&entry.path(), pids);
            }
        }
    }
}

/// Removes a cgroup directory and its children, deepest first (cgroups need rmdir).
fn remove_tree_cgroups(dir: &Path, deadline: Instant) -> Result<(), LabError> {
    if !dir.exists() {
        return Ok(());
    }
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree_cgroups(&entry.path(), deadline)?;
            }
        }
    }
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if Instant::now() < deadline => {
                tracing::debug!(dir = %dir.display(), error = %e, "cgroup busy, retrying");
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => {
                return Err(LabError::Cleanup {
                    what: format!("cgroup {}", dir.display()),
                    detail: e.to_string(),
                })
            }
        }
    }
}

/// Removes `rel` (e.g. kprov-lab/<lab>) from every hierarchy once it has no children left.
pub(crate) fn remove_empty(hierarchies: &[Hierarchy], rel: &str) {
    for h in hierarchies {
        let _ = std::fs::remove_dir(h.mount.join(rel));
    }
}

/// Whether `pid` lives in cgroup `rel` (or below) of the name=systemd hierarchy.
pub(crate) fn pid_in(pid: u32, rel: &str) -> bool {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/cgroup")) else {
        return false;
    };
    let wanted = format!("/{rel}");
    text.lines().any(|line| {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next(), parts.next(), parts.next());
        controllers == Some("name=systemd")
            && path.is_some_and(|p| p == wanted || p.starts_with(&format!("{wanted}/")))
    })
}
