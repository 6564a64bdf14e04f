//! Starting a lab host: systemd as PID 1 in its own namespaces, via the launcher script.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::cgroup::{self, Cgroups};
use crate::cmd::spawn_detached;
use crate::error::LabError;
use crate::fsutil::write_atomic;
use crate::layout::{HostLayout, Layout};
use crate::state::HostPids;

/// The launcher: joins the host's cgroups, unshares the namespaces, sets up the mounts
/// systemd 252 needs and execs it.
const LAUNCHER: &str = include_str!("launch.sh");

/// Value of `$container` in the host, for systemd's container detection.
const CONTAINER: &str = "kprov-lab";

/// Boots the host (its network namespace must exist) and returns its pids.
pub(crate) fn start(
    layout: &Layout,
    host: &HostLayout,
    base: &Path,
    cgroups: &Cgroups,
    procs: &[std::path::PathBuf],
) -> Result<HostPids, LabError> {
    let script = layout.launcher();
    write_atomic(&script, LAUNCHER.as_bytes(), 0o700)?;
    let procs: Vec<String> = procs.iter().map(|p| p.display().to_string()).collect();
    let controllers: Vec<&str> = cgroups
        .hierarchies
        .iter()
        .filter_map(|h| h.controllers.as_deref())
        .collect();
    let argv = vec![
        "nsenter".to_string(),
        format!("--net={}", host.netns_path().display()),
        "sh".to_string(),
        script.display().to_string(),
        "outer".to_string(),
        procs.join(" "),
        base.display().to_string(),
        host.upper().display().to_string(),
        host.work().display().to_string(),
        host.merged().display().to_string(),
        host.name.clone(),
        controllers.join(" "),
        CONTAINER.to_string(),
        cgroups.mode.as_str().to_string(),
    ];
    let log = host.console_log();
    let _ = std::fs::remove_file(&log);
    let launcher = spawn_detached(&argv, &log)?;
    // The launcher (`unshare --fork`) has exactly one child: the host's PID 1.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(init) = child_of(launcher) {
            // The host's PID 1 waits for its cgroup to hold nothing but its own processes.
            cgroup::move_launcher(&cgroups.hierarchies, &host.cgroup, launcher)?;
            return Ok(HostPids { launcher, init });
        }
        if !Path::new(&format!("/proc/{launcher}")).exists() || Instant::now() > deadline {
            return Err(LabError::HostNotReady {
                lab: layout.name.clone(),
                host: host.name.clone(),
                address: host.address.to_string(),
                what: "start",
                seconds: 10,
                log,
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn child_of(pid: u32) -> Option<u32> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).ok()?;
    text.split_whitespace().next()?.parse().ok()
}
