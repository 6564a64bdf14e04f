//! Noticing container exits: each container's monitor is watched through a
//! pidfd; when it exits, its exit file gives the status. Works for monitors the
//! agent started and for those a previous agent run started.

use super::Agent;
use crate::container::read_cgroup_stats;
use crate::monitor::ExitRecord;
use crate::state::{ContainerState, ExitInfo};
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::Arc;
use tokio::io::unix::AsyncFd;

fn pidfd_open(pid: i32) -> Option<OwnedFd> {
    if pid <= 0 {
        return None;
    }
    // SAFETY: raw syscall with plain integer arguments; the result is a new fd we own.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// True when `pid` is the monitor of container `id` (guards against pid reuse).
fn is_monitor_of(pid: i32, id: &str) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).contains(id))
        .unwrap_or(false)
}

impl Agent {
    /// Watches container `id`'s monitor and records the exit when it ends.
    pub(super) fn watch_exit(self: &Arc<Self>, id: String, monitor_pid: i32) {
        let this = self.clone();
        tokio::spawn(async move {
            if is_monitor_of(monitor_pid, &id) {
                if let Some(fd) = pidfd_open(monitor_pid) {
                    // SAFETY: `fd` is an OwnedFd moved into the AsyncFd; it stays open
                    // and unchanged until the AsyncFd is dropped.
                    if let Ok(afd) = unsafe { AsyncFd::register(fd) } {
                        let _ = afd.readable().await;
                    }
                }
            }
            // Reap it if it is our child (it re-parents to us as subreaper).
            let _ = nix::sys::wait::waitpid(
                nix::unistd::Pid::from_raw(monitor_pid),
                Some(nix::sys::wait::WaitPidFlag::WNOHANG),
            );
            this.record_exit(&id).await;
        });
    }

    async fn record_exit(&self, id: &str) {
        let Some(c) = self.container(id) else { return };
        let exit: Option<ExitRecord> = std::fs::read(c.bundle.join("exit.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let info = match exit {
            Some(e) => {
                let oom = read_cgroup_stats(0, &c.cgroups_path).oom_kills > 0;
                let reason = if oom && e.exit_code != 0 {
                    "OOMKilled"
                } else if e.exit_code == 0 {
                    "Completed"
                } else {
                    "Error"
                };
                ExitInfo {
                    exit_code: e.exit_code,
                    finished_at: e.finished_at,
                    reason: reason.into(),
                    message: String::new(),
                }
            }
            None => {
                // The monitor died without an exit file: ask runc what is left.
                match self.runc.state(id).await {
                    Ok(Some((status, _))) if status == "running" || status == "created" => {
                        tracing::warn!(id, "monitor is gone but the container runs; state unknown");
                        self.update_container(id, |r| r.state = ContainerState::Unknown);
                        return;
                    }
                    _ => ExitInfo {
                        exit_code: 255,
                        finished_at: crate::util::now_nanos(),
                        reason: "Error".into(),
                        message: "the container monitor exited without an exit status".into(),
                    },
                }
            }
        };
        tracing::info!(id, code = info.exit_code, reason = %info.reason, "container exited");
        self.update_container(id, |r| {
            r.state = ContainerState::Exited;
            r.exit = Some(info);
        });
        if let Err(e) = self.runc.delete(id).await {
            tracing::warn!(id, error = %e, "runc delete after exit");
        }
    }
}
