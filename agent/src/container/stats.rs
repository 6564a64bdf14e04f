//! CPU and memory usage read from a container's cgroup (v1 or v2).

use std::path::{Path, PathBuf};

/// Usage numbers for one cgroup.
#[derive(Debug, Clone, Default)]
pub struct CgroupStats {
    pub cpu_usage_ns: u64,
    pub memory_usage: u64,
    pub working_set: u64,
    pub rss: u64,
    pub page_faults: u64,
    pub major_page_faults: u64,
    pub oom_kills: u64,
    pub memory_limit: u64,
}

fn read_u64(p: &Path) -> Option<u64> {
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
}

fn stat_field(p: &Path, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(p).ok()?;
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// The cgroup path (relative to a hierarchy root) of process `pid` for `controller`
/// (`""` selects the v2 unified entry).
fn proc_cgroup(pid: i32, controller: &str) -> Option<PathBuf> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    text.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (_, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
        let hit = if controller.is_empty() {
            ctrls.is_empty()
        } else {
            ctrls.split(',').any(|c| c == controller)
        };
        hit.then(|| PathBuf::from(path.trim_start_matches('/')))
    })
}

/// Reads stats for the cgroup of `pid` (when running) or the cgroupfs path `cgroups_path`.
pub fn read_cgroup_stats(pid: i32, cgroups_path: &str) -> CgroupStats {
    let root = Path::new("/sys/fs/cgroup");
    let fallback = PathBuf::from(cgroups_path.trim_start_matches('/'));
    let locate = |ctrl: &str| {
        (pid > 0)
            .then(|| proc_cgroup(pid, ctrl))
            .flatten()
            .unwrap_or_else(|| fallback.clone())
    };
    let mut s = CgroupStats::default();
    if root.join("cgroup.controllers").exists() {
        let dir = root.join(locate(""));
        s.cpu_usage_ns = stat_field(&dir.join("cpu.stat"), "usage_usec").unwrap_or(0) * 1000;
        s.memory_usage = read_u64(&dir.join("memory.current")).unwrap_or(0);
        let inactive = stat_field(&dir.join("memory.stat"), "inactive_file").unwrap_or(0);
        s.working_set = s.memory_usage.saturating_sub(inactive);
        s.rss = stat_field(&dir.join("memory.stat"), "anon").unwrap_or(0);
        s.page_faults = stat_field(&dir.join("memory.stat"), "pgfault").unwrap_or(0);
        s.major_page_faults = stat_field(&dir.join("memory.stat"), "pgmajfault").unwrap_or(0);
        s.oom_kills = stat_field(&dir.join("memory.events"), "oom_kill").unwrap_or(0);
        s.memory_limit = read_u64(&dir.join("memory.max")).unwrap_or(0);
    } else {
        let cpu = root.join("cpuacct").join(locate("cpuacct"));
        s.cpu_usage_ns = read_u64(&cpu.join("cpuacct.usage")).unwrap_or(0);
        let mem = root.join("memory").join(locate("memory"));
        s.memory_usage = read_u64(&mem.join("memory.usage_in_bytes")).unwrap_or(0);
        let stat = mem.join("memory.stat");
        let inactive = stat_field(&stat, "total_inactive_file").unwrap_or(0);
        s.working_set = s.memory_usage.saturating_sub(inactive);
        s.rss = stat_field(&stat, "total_rss").unwrap_or(0);
        s.page_faults = stat_field(&stat, "total_pgfault").unwrap_or(0);
        s.major_page_faults = stat_field(&stat, "total_pgmajfault").unwrap_or(0);
        s.oom_kills = stat_field(&mem.join("memory.oom_control"), "oom_kill").unwrap_or(0);
        s.memory_limit = read_u64(&mem.join("memory.limit_in_bytes")).unwrap_or(0);
    }
    s
}
