//! `kprov lab down`: remove everything a lab made, also after a crash or a half `up`.

use std::path::Path;
use std::time::{Duration, Instant};

use nix::mount::{umount2, MntFlags};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::cgroup::{self, Hierarchy};
use crate::error::LabError;
use crate::fsutil::remove_tree;
use crate::layout::{lock_dir, HostLayout, Layout, CGROUP_PARENT};
use crate::lock::LockGuard;
use crate::state::LabState;
use crate::{network, repo};

pub(crate) fn down(name: &str) -> Result<(), LabError> {
    crate::layout::validate_name(name)?;
    crate::require_root()?;
    let hierarchies = cgroup::detect()?.hierarchies;
    let lock = LockGuard::acquire(&lock_dir().join(format!("{name}.lock")))?;
    let dir = Layout::dir(name);
    // Every step runs even when an earlier one failed; the first error is reported.
    let mut first_error: Option<LabError> = None;
    let mut note = |result: Result<(), LabError>| {
        if let Err(e) = result {
            tracing::warn!(error = %e, "lab clean-up step failed");
            first_error.get_or_insert(e);
        }
    };
    let state = LabState::load(name);
    if let Ok(Some(state)) = &state {
        let layout = state.layout();
        for index in 0..host_count(state) {
            note(stop_host(&hierarchies, state, &layout.host(index)));
        }
        if let Some(pid) = state.repo_pid {
            if repo::is_server(pid, layout.gateway()) {
                signal(pid, Signal::SIGKILL);
            }
        }
        remove_veths(&layout);
        note(network::remove_bridge(&layout));
    }
    // Whatever the state said: nothing of this lab may remain in the cgroups or netns.
    note(cgroup::destroy(
        &hierarchies,
        &crate::layout::lab_cgroup(name),
    ));
    note(remove_netns(name));
    note(
        LockGuard::acquire(&lock_dir().join("cgroups.lock")).map(|_cg| {
            cgroup::remove_empty(&hierarchies, CGROUP_PARENT);
        }),
    );
    unmount_below(&dir);
    if let Some(e) = first_error {
        // Keep the state so a second `down` can finish the job.
        return Err(e);
    }
    state?;
    remove_tree(&dir)?;
    lock.remove_file();
    Ok(())
}

/// Hosts to clean: as many as the state says or host directories exist, whichever is more.
fn host_count(state: &LabState) -> usize {
    let dirs = std::fs::read_dir(state.layout().state_dir().join("hosts"))
        .map(|entries| entries.count())
        .unwrap_or(0);
    state.hosts.max(dirs).max(state.pids.len())
}

/// Stops one host (if it runs) and removes its processes, cgroups, namespace and veth;
/// its disk (upper directory) stays.
pub(crate) fn stop_host(
    hierarchies: &[Hierarchy],
    state: &LabState,
    host: &HostLayout,
) -> Result<(), LabError> {
    if let Some(pids) = state.pids.get(&host.name) {
        // SIGKILL to a PID namespace's init ends every process in that namespace. The
        // launcher then reaps it and exits by itself; kill it only if it lingers.
        if cgroup::pid_in(pids.init, &host.cgroup) {
            signal(pids.init, Signal::SIGKILL);
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        while cgroup::pid_in(pids.launcher, &host.cgroup) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if cgroup::pid_in(pids.launcher, &host.cgroup) {
            signal(pids.launcher, Signal::SIGKILL);
        }
    }
    cgroup::destroy(hierarchies, &host.cgroup)?;
    network::remove_host(host)
}

fn signal(pid: u32, sig: Signal) {
    if let Ok(raw) = i32::try_from(pid) {
        let _ = kill(Pid::from_raw(raw), sig);
    }
}

/// Removes leftover host veths of the lab (`kpv<subnet>-<i>`).
fn remove_veths(layout: &Layout) {
    let prefix = format!("kpv{}-", layout.subnet);
    if let Ok(entries) = std::fs::read_dir("/sys/class/net") {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(&prefix) {
                let _ = crate::cmd::Cmd::new(["ip", "link", "del", &name]).run();
            }
        }
    }
}

/// Removes the lab's network namespaces (`kprov-<lab>-<host>`).
fn remove_netns(name: &str) -> Result<(), LabError> {
    let prefix = format!("kprov-{name}-");
    let Ok(entries) = std::fs::read_dir("/run/netns") else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let ns = entry.file_name().to_string_lossy().into_owned();
        let Some(host) = ns.strip_prefix(&prefix) else {
            continue;
        };
        let is_host = host == "master"
            || host
                .strip_prefix("node")
                .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()));
        if is_host {
            crate::cmd::Cmd::new(["ip", "netns", "del", &ns])
                .hint("remove the namespace with `ip netns del`")
                .run()?;
        }
    }
    Ok(())
}

/// Detaches any mount below `dir` in the machine's mount namespace.
fn unmount_below(dir: &Path) {
    let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let mut points: Vec<String> = text
        .lines()
        .filter_map(|line| line.split_whitespace().nth(4).map(str::to_string))
        .filter(|point| Path::new(point).starts_with(dir))
        .collect();
    // Deepest first.
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for point in points {
        let _ = umount2(Path::new(&point), MntFlags::MNT_DETACH);
    }
}
