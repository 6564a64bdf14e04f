//! The per-container monitor: a small single-threaded process (the agent's own
//! binary run as `kprov-agent __monitor <json>`) that runs `runc create`, holds
//! the container's stdout/stderr pipes and writes them as CRI logs, reaps the
//! container as child subreaper, and writes the exit status to a file. It
//! outlives agent restarts, so running containers keep logging. It also serves
//! attach clients on a socket in the bundle (see [`attach`]).

pub mod attach;
pub mod console;

use crate::logs::{CriLogWriter, Stream};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, ForkResult, Pid};
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The argv[1] that selects monitor mode.
pub const MONITOR_ARG: &str = "__monitor";

/// What the monitor needs to know.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MonitorArgs {
    pub id: String,
    pub bundle: PathBuf,
    pub runc: PathBuf,
    pub runc_global_args: Vec<String>,
    pub log_path: PathBuf,
    pub exit_file: PathBuf,
    pub max_line: usize,
    /// The container reads a stdin pipe the monitor keeps (else /dev/null).
    #[serde(default)]
    pub stdin: bool,
    /// Close the container's stdin when the first attach client that used it leaves.
    #[serde(default)]
    pub stdin_once: bool,
    /// The container runs on a pty (its `process.terminal`): the monitor gets
    /// the master from runc and all output is stdout.
    #[serde(default)]
    pub tty: bool,
}

/// Written by the monitor when the container exits.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExitRecord {
    pub exit_code: i32,
    pub finished_at: i64,
}

/// Runs the monitor; never returns. Must be called before any thread starts.
pub fn run(json: &str) -> ! {
    let args: MonitorArgs = match serde_json::from_str(json) {
        Ok(a) => a,
        Err(e) => report_and_exit(&format!("err bad monitor arguments: {e}"), 2),
    };
    // SAFETY: the process is single-threaded here (called first thing in main).
    match unsafe { fork() } {
        Ok(ForkResult::Parent { .. }) => std::process::exit(0),
        Ok(ForkResult::Child) => {}
        Err(e) => report_and_exit(&format!("err fork: {e}"), 1),
    }
    let _ = nix::unistd::setsid();
    // SAFETY: plain prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    let mut mask = SigSet::empty();
    for s in [
        Signal::SIGCHLD,
        Signal::SIGUSR1,
        Signal::SIGTERM,
        Signal::SIGHUP,
    ] {
        mask.add(s);
    }
    if let Err(e) = mask.thread_block() {
        report_and_exit(&format!("err sigmask: {e}"), 1);
    }
    let sfd = match SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK) {
        Ok(s) => s,
        Err(e) => report_and_exit(&format!("err signalfd: {e}"), 1),
    };
    let code = match supervise(&args, &sfd) {
        Ok(()) => 0,
        Err(msg) => report_and_exit(&format!("err {msg}"), 1),
    };
    std::process::exit(code)
}

/// Writes `line` to the agent (our stdout) and exits.
fn report_and_exit(line: &str, code: i32) -> ! {
    let _ = writeln!(std::io::stdout(), "{}", line.replace('\n', " "));
    let _ = std::io::stdout().flush();
    std::process::exit(code)
}

fn pipe() -> Result<(OwnedFd, OwnedFd), String> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))
}

fn supervise(a: &MonitorArgs, sfd: &SignalFd) -> Result<(), String> {
    let mut log = CriLogWriter::open(&a.log_path, a.max_line)
        .map_err(|e| format!("open log {}: {e}", a.log_path.display()))?;
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let (stdin_cfg, stdin_w) = if a.stdin && !a.tty {
        let (r, w) = pipe()?;
        (Stdio::from(r), Some(w))
    } else {
        (Stdio::null(), None)
    };
    // Bound before the container exists: a failure leaves nothing to undo.
    let mut attach =
        attach::AttachServer::bind(&a.bundle.join(attach::SOCKET_NAME), stdin_w, a.stdin_once)?;
    let console = if a.tty {
        Some(
            console::ConsoleSocket::bind(&std::env::temp_dir(), &a.id)
                .map_err(|e| e.to_string())?,
        )
    } else {
        None
    };
    let pid_file = a.bundle.join("init.pid");
    let runc_log = a.bundle.join("runc.log");
    let _ = std::fs::remove_file(&runc_log);
    let mut cmd = Command::new(&a.runc);
    cmd.args(&a.runc_global_args)
        .arg("--log")
        .arg(&runc_log)
        .args(["create", "--bundle"])
        .arg(&a.bundle)
        .arg("--pid-file")
        .arg(&pid_file);
    if let Some(c) = &console {
        cmd.arg("--console-socket").arg(c.path());
    }
    let mut child = cmd
        .arg(&a.id)
        .stdin(stdin_cfg)
        .stdout(Stdio::from(out_w))
        .stderr(Stdio::from(err_w))
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", a.runc.display()))?;
    drop(cmd);
    let master = match &console {
        Some(c) => {
            let got = c.receive(Duration::from_secs(60), || {
                matches!(child.try_wait(), Ok(None))
            });
            match got {
                Ok(m) => m,
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(e.to_string());
                }
            }
        }
        None => None,
    };
    drop(console);
    let status = child
        .wait()
        .map_err(|e| format!("waiting for {}: {e}", a.runc.display()))?;
    if !status.success() || (a.tty && master.is_none()) {
        let mut msg = String::new();
        let mut f = std::fs::File::from(err_r);
        let _ = nix::fcntl::fcntl(
            &f,
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        );
        let _ = f.read_to_string(&mut msg);
        let logged = std::fs::read_to_string(&runc_log).unwrap_or_default();
        let detail: Vec<String> = logged
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["level"] == "error")
            .filter_map(|v| v["msg"].as_str().map(str::to_string))
            .collect();
        return Err(format!(
            "runc create failed: {} {}",
            msg.trim(),
            detail.join("; ")
        ));
    }
    // With a tty the container's output is the master; stdin goes there too.
    let (pipes, attach_console) = match master {
        Some(m) => {
            let dup = |m: &OwnedFd| m.try_clone().map_err(|e| format!("dup console: {e}"));
            let for_stdin = if a.stdin { Some(dup(&m)?) } else { None };
            let for_size = dup(&m)?;
            drop((out_r, err_r));
            (
                [Some(std::fs::File::from(m)), None],
                Some((for_stdin, for_size)),
            )
        }
        None => (
            [
                Some(std::fs::File::from(out_r)),
                Some(std::fs::File::from(err_r)),
            ],
            None,
        ),
    };
    if let Some((stdin, size)) = attach_console {
        attach.set_console(stdin, size)?;
    }
    let cpid: i32 = std::fs::read_to_string(&pid_file)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| "runc create wrote no pid".to_string())?;
    // Tell the agent, then let go of its pipe.
    println!("ok {} {}", std::process::id(), cpid);
    let _ = std::io::stdout().flush();
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        let _ = nix::unistd::dup2_stdout(null.as_fd());
        let _ = nix::unistd::dup2_stderr(null.as_fd());
    }
    let mut pipes = pipes;
    let mut exit: Option<i32> = None;
    let mut drain_deadline: Option<Instant> = None;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        if exit.is_some() {
            let deadline =
                *drain_deadline.get_or_insert_with(|| Instant::now() + Duration::from_secs(1));
            if pipes.iter().all(Option::is_none) || Instant::now() >= deadline {
                break;
            }
        }
        let mut fds = vec![PollFd::new(sfd.as_fd(), PollFlags::POLLIN)];
        let mut which = Vec::new();
        for (i, p) in pipes.iter().enumerate() {
            if let Some(f) = p {
                fds.push(PollFd::new(f.as_fd(), PollFlags::POLLIN));
                which.push(i);
            }
        }
        let attach_fds = attach.poll_fds();
        let slots: Vec<attach::Slot> = attach_fds.iter().map(|(s, _)| *s).collect();
        let first_attach = fds.len();
        fds.extend(attach_fds.into_iter().map(|(_, f)| f));
        let timeout = if exit.is_some() { 200u16 } else { 5000u16 };
        match poll(&mut fds, PollTimeout::from(timeout)) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(format!("poll: {e}")),
        }
        let sig_ready = fds[0]
            .revents()
            .map(|r| r.intersects(PollFlags::POLLIN))
            .unwrap_or(false);
        let attach_ready: Vec<(attach::Slot, PollFlags)> = slots
            .into_iter()
            .zip(
                fds[first_attach..]
                    .iter()
                    .map(|f| f.revents().unwrap_or(PollFlags::empty())),
            )
            .collect();
        let ready: Vec<usize> = fds[1..first_attach]
            .iter()
            .zip(&which)
            .filter(|(fd, _)| {
                fd.revents()
                    .map(|r| {
                        r.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR)
                    })
                    .unwrap_or(false)
            })
            .map(|(_, i)| *i)
            .collect();
        drop(fds);
        attach.handle(&attach_ready);
        if attach.take_hangup() {
            // stdin_once on a tty: the console closes (containerd's shim does
            // the same), the container sees a hangup.
            pipes[0] = None;
            log.finish(Stream::Stdout);
        }
        for i in ready {
            let stream = if i == 0 {
                Stream::Stdout
            } else {
                Stream::Stderr
            };
            let n = match pipes[i].as_mut().map(|f| f.read(&mut buf)) {
                Some(Ok(n)) => n,
                Some(Err(e))
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::Interrupted | std::io::ErrorKind::WouldBlock
                    ) =>
                {
                    continue
                }
                _ => 0,
            };
            if n == 0 {
                log.finish(stream);
                pipes[i] = None;
            } else {
                log.feed(stream, &buf[..n]);
                let id = match stream {
                    Stream::Stdout => attach::STDOUT,
                    Stream::Stderr => attach::STDERR,
                };
                attach.broadcast(id, &buf[..n]);
            }
        }
        if sig_ready {
            while let Ok(Some(info)) = sfd.read_signal() {
                match Signal::try_from(info.ssi_signo as i32) {
                    Ok(Signal::SIGUSR1) => {
                        let _ = log.reopen();
                    }
                    Ok(Signal::SIGCHLD) => loop {
                        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                            Ok(WaitStatus::Exited(p, c)) if p.as_raw() == cpid => exit = Some(c),
                            Ok(WaitStatus::Signaled(p, s, _)) if p.as_raw() == cpid => {
                                exit = Some(128 + s as i32)
                            }
                            Ok(WaitStatus::StillAlive) | Err(_) => break,
                            Ok(_) => {}
                        }
                    },
                    _ => {}
                }
            }
        }
    }
    log.finish(Stream::Stdout);
    log.finish(Stream::Stderr);
    let rec = ExitRecord {
        exit_code: exit.unwrap_or(255),
        finished_at: crate::util::now_nanos(),
    };
    let data = serde_json::to_vec(&rec).map_err(|e| e.to_string())?;
    crate::util::write_atomic(&a.exit_file, &data).map_err(|e| format!("exit file: {e}"))?;
    attach.finish(rec.exit_code);
    Ok(())
}
