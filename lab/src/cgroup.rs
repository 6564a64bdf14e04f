//! Per-host cgroups in every hierarchy of the machine (cgroup v1 + v2 hybrid, or v2 only).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::error::LabError;

/// cgroup v1 controllers delegated to lab hosts (for nested containers).
const DELEGATED: &[&str] = &[
    "cpu", "cpuacct", "memory", "pids", "devices", "freezer", "blkio", "cpuset",
];

/// Sub-cgroup of a host's cgroup that becomes the root of its cgroup namespace (systemd and
/// everything below it).
pub(crate) const PAYLOAD: &str = "payload";
/// Sub-cgroup of a host's cgroup that its launcher moves to once the host's PID 1 exists,
/// so that the payload cgroup holds the host's processes only (cgroup v2 allows controllers
/// below a cgroup only when the cgroup itself has no processes).
pub(crate) const LAUNCHER: &str = "launcher";

/// How the machine mounts cgroups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// v1 hierarchies (name=systemd + controllers) plus cgroup2 at /sys/fs/cgroup/unified.
    Hybrid,
    /// Only cgroup2, at /sys/fs/cgroup.
    Unified,
}

impl Mode {
    /// The word the launcher script understands.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Hybrid => "hybrid",
            Mode::Unified => "unified",
        }
    }
}

/// One mounted cgroup hierarchy on the machine.
#[derive(Debug, Clone)]
pub(crate) struct Hierarchy {
    /// Mount point, e.g. /sys/fs/cgroup/memory.
    pub mount: PathBuf,
    /// Controllers to mount inside a host (`cpu,cpuacct` for a joint hierarchy); `None` for
    /// the name=systemd and cgroup2 hierarchies, which the launcher mounts itself.
    pub controllers: Option<String>,
    /// Whether this is the cgroup2 hierarchy.
    pub v2: bool,
}

/// The machine's cgroup layout and the hierarchies lab hosts get a cgroup in.
#[derive(Debug, Clone)]
pub(crate) struct Cgroups {
    pub mode: Mode,
    pub hierarchies: Vec<Hierarchy>,
}

/// Finds the machine's cgroup layout.
pub(crate) fn detect() -> Result<Cgroups, LabError> {
    let mounts = std::fs::read_to_string("/proc/self/mounts")
        .map_err(LabError::io("read", "/proc/self/mounts"))?;
    let mut found = Vec::new();
    let mut have_systemd = false;
    let mut unified_root = None;
    for line in mounts.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(fstype), Some(mount), Some(options)) =
            (fields.get(2), fields.get(1), fields.get(3))
        else {
            continue;
        };
        match *fstype {
            "cgroup2" if *mount == "/sys/fs/cgroup" => {
                unified_root = Some(Hierarchy {
                    mount: PathBuf::from(mount),
                    controllers: None,
                    v2: true,
                });
            }
            "cgroup2" if *mount == "/sys/fs/cgroup/unified" => {
                found.push(Hierarchy {
                    mount: PathBuf::from(mount),
                    controllers: None,
                    v2: true,
                });
            }
            "cgroup" => {
                let opts: Vec<&str> = options.split(',').collect();
                if opts.contains(&"name=systemd") {
                    have_systemd = true;
                    found.push(Hierarchy {
                        mount: PathBuf::from(mount),
                        controllers: None,
                        v2: false,
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
                        v2: false,
                    });
                }
            }
            _ => {}
        }
    }
    if let Some(root) = unified_root {
        return Ok(Cgroups {
            mode: Mode::Unified,
            hierarchies: vec![root],
        });
    }
    if !(have_systemd && found.iter().any(|h| h.v2)) {
        return Err(LabError::Unsupported(
            "lab hosts need cgroup2 at /sys/fs/cgroup, or the v1 + v2 hybrid layout (name=systemd at /sys/fs/cgroup/systemd and cgroup2 at /sys/fs/cgroup/unified); mount one of them".to_string(),
        ));
    }
    Ok(Cgroups {
        mode: Mode::Hybrid,
        hierarchies: found,
    })
}

/// Creates the host cgroup `rel` with its payload and launcher children in every hierarchy
/// and returns the payload's `cgroup.procs` files (for the launcher to join).
pub(crate) fn create(cgroups: &Cgroups, rel: &str) -> Result<Vec<PathBuf>, LabError> {
    let mut procs = Vec::new();
    for h in &cgroups.hierarchies {
        let cpuset = h
            .controllers
            .as_deref()
            .is_some_and(|c| c.contains("cpuset"));
        let mut dir = h.mount.clone();
        for (depth, part) in rel.split('/').enumerate() {
            if cgroups.mode == Mode::Unified {
                enable_controllers(&dir, depth == 0)?;
            }
            dir.push(part);
            make_cgroup(&dir, cpuset)?;
        }
        if cgroups.mode == Mode::Unified {
            // Hand the controllers down to the payload; inside it the host's systemd
            // enables what it needs itself.
            enable_controllers(&dir, false)?;
        }
        make_cgroup(&dir.join(LAUNCHER), cpuset)?;
        let payload = dir.join(PAYLOAD);
        make_cgroup(&payload, cpuset)?;
        procs.push(payload.join("cgroup.procs"));
    }
    Ok(procs)
}

fn make_cgroup(dir: &Path, cpuset: bool) -> Result<(), LabError> {
    if !dir.exists() {
        std::fs::create_dir(dir).map_err(LabError::io("create cgroup", dir))?;
    }
    if cpuset {
        inherit_cpuset(dir)?;
    }
    Ok(())
}

/// Moves the launcher process out of the payload into the host's launcher cgroup.
pub(crate) fn move_launcher(
    hierarchies: &[Hierarchy],
    rel: &str,
    pid: u32,
) -> Result<(), LabError> {
    for h in hierarchies {
        let procs = h.mount.join(rel).join(LAUNCHER).join("cgroup.procs");
        std::fs::write(&procs, pid.to_string()).map_err(LabError::io("write", &procs))?;
    }
    Ok(())
}

/// Enables every controller `dir` has for its children (cgroup v2). The machine's root
/// cgroup is left alone unless a controller is missing there.
fn enable_controllers(dir: &Path, is_root: bool) -> Result<(), LabError> {
    let available = std::fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
    let enabled = std::fs::read_to_string(dir.join("cgroup.subtree_control")).unwrap_or_default();
    let enabled: Vec<&str> = enabled.split_whitespace().collect();
    for controller in available.split_whitespace() {
        if enabled.contains(&controller) {
            continue;
        }
        let file = dir.join("cgroup.subtree_control");
        if let Err(e) = std::fs::write(&file, format!("+{controller}")) {
            // The root may refuse some (e.g. when the machine's own processes hold them);
            // a host then simply lacks that controller.
            if !is_root {
                return Err(LabError::io("write", &file)(e));
            }
            tracing::debug!(controller, error = %e, "cannot enable cgroup controller");
        }
    }
    Ok(())
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

/// Whether `pid` is a live process (exists and is not a zombie) in cgroup `rel` (or below)
/// of any hierarchy.
pub(crate) fn pid_in(pid: u32, rel: &str) -> bool {
    if !alive(pid) {
        return false;
    }
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/cgroup")) else {
        return false;
    };
    let wanted = format!("/{rel}");
    let below = format!("{wanted}/");
    text.lines().any(|line| {
        line.splitn(3, ':')
            .nth(2)
            .is_some_and(|path| path == wanted || path.starts_with(&below))
    })
}

/// Whether `pid` exists and is not a zombie (cgroup v2 keeps zombies in their cgroup).
fn alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // The state follows the parenthesised command name, which may itself contain ')'.
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next())
        .is_some_and(|state| state != 'Z' && state != 'X')
}
