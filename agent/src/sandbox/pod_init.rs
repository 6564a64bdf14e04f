//! The pod's PID namespace (pid mode POD) without a pause image: a tiny init,
//! the monitor binary run as `__pod-init`, is PID 1 of a new PID namespace. It
//! only reaps what is re-parented to it and ignores every signal but SIGKILL, as
//! a pause process does. Containers join the namespace through a bind-mounted pin;
//! when the sandbox stops, the init is killed (which ends what is left in it).

use nix::sched::CloneFlags;
use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, ForkResult, Pid};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// The argv[1] that selects pod-init mode (argv[2] names the sandbox, for `ps`).
pub const POD_INIT_ARG: &str = "__pod-init";

/// Pod-init mode: unshares a PID namespace, forks its init, reports
/// `ok <init pid>` on stdout and exits. Must be called before any thread starts.
pub fn run() -> ! {
    let report = |line: &str, code: i32| -> ! {
        let _ = writeln!(std::io::stdout(), "{line}");
        let _ = std::io::stdout().flush();
        std::process::exit(code)
    };
    if let Err(e) = nix::sched::unshare(CloneFlags::CLONE_NEWPID) {
        report(&format!("err unshare(CLONE_NEWPID): {e}"), 1);
    }
    // SAFETY: single-threaded here (called first thing in main).
    match unsafe { fork() } {
        Ok(ForkResult::Parent { child }) => report(&format!("ok {child}"), 0),
        Ok(ForkResult::Child) => init(),
        Err(e) => report(&format!("err fork: {e}"), 1),
    }
}

/// PID 1 of the pod: detached from the agent's session and pipes, reaping forever.
fn init() -> ! {
    let _ = nix::unistd::setsid();
    let _ = std::env::set_current_dir("/");
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        use std::os::fd::AsFd;
        let _ = nix::unistd::dup2_stdin(null.as_fd());
        let _ = nix::unistd::dup2_stdout(null.as_fd());
        let _ = nix::unistd::dup2_stderr(null.as_fd());
    }
    // Every signal blocked: SIGKILL from outside is the only way to end it.
    let all = SigSet::all();
    let _ = all.thread_block();
    let mut chld = SigSet::empty();
    chld.add(Signal::SIGCHLD);
    loop {
        let _ = chld.wait();
        loop {
            match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }
}

/// Starts a pod init with `exe` (`kprov-agent-monitor` or the agent) and pins its
/// PID namespace at `pin`; returns the init's PID.
pub fn start(exe: &Path, sandbox_dir: &Path, pin: &Path) -> std::io::Result<i32> {
    let out = std::process::Command::new(exe)
        .arg(POD_INIT_ARG)
        .arg(sandbox_dir)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()?;
    let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let pid: i32 = line
        .strip_prefix("ok ")
        .and_then(|p| p.parse().ok())
        .filter(|p| *p > 0)
        .ok_or_else(|| {
            std::io::Error::other(format!(
                "pod init: {}",
                line.strip_prefix("err ").unwrap_or("no report")
            ))
        })?;
    let pinned = (|| {
        std::fs::File::create(pin)?;
        nix::mount::mount(
            Some(format!("/proc/{pid}/ns/pid").as_str()),
            pin,
            None::<&str>,
            nix::mount::MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| std::io::Error::other(format!("pin pid namespace: {e}")))
    })();
    if let Err(e) = pinned {
        kill(pid, None);
        let _ = std::fs::remove_file(pin);
        return Err(e);
    }
    Ok(pid)
}

/// True when `pid` is PID 1 of the namespace pinned at `pin` (guards against PID
/// reuse after an agent restart).
fn holds(pid: i32, pin: &Path) -> bool {
    let ns = std::fs::metadata(format!("/proc/{pid}/ns/pid"));
    let pinned = std::fs::metadata(pin);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    // NSpid: <pid here> 1 — PID 1 inside its own namespace.
    let is_init = status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .is_some_and(|v| v.split_whitespace().last() == Some("1"));
    match (ns, pinned) {
        (Ok(a), Ok(b)) => is_init && a.ino() == b.ino() && a.dev() == b.dev(),
        _ => false,
    }
}

/// Kills the init `pid` (ending everything left in its namespace) and reaps it when
/// it is our child.
fn kill(pid: i32, pin: Option<&Path>) {
    if pin.is_some_and(|p| !holds(pid, p)) {
        return;
    }
    let target = Pid::from_raw(pid);
    let _ = nix::sys::signal::kill(target, Signal::SIGKILL);
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        match waitpid(target, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => std::thread::sleep(Duration::from_millis(5)),
            // Reaped, or not our child (started by an earlier agent run).
            _ => break,
        }
    }
}

/// Ends the pod's init and releases its pin; both may already be gone.
pub fn stop(pid: i32, pin: &Path) {
    if pid > 0 {
        kill(pid, Some(pin));
    }
    let _ = nix::mount::umount2(pin, nix::mount::MntFlags::MNT_DETACH);
    let _ = std::fs::remove_file(pin);
}
