//! Streaming exec: `runc exec` in the container, wired to a session's streams.
//! Without a tty the process gets pipes; with one, runc runs on a pty of ours
//! (its controlling terminal: runc proxies it to the container's own console
//! and follows its size on SIGWINCH, which resizing our pty sends). The exec'd
//! process is killed when the client goes away or the session idles out.

use super::remotecommand::{Io, Outcome, TermSize};
use crate::runc::Runc;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

/// Copies `r` to `out` until EOF (or the client is gone).
async fn pump<R: AsyncRead + Unpin>(mut r: R, out: Option<super::remotecommand::Out>) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if let Some(o) = &out {
                    if !o.write(buf[..n].to_vec()).await {
                        break;
                    }
                }
            }
        }
    }
}

fn set_winsize(fd: &impl AsRawFd, s: TermSize) {
    let ws = libc::winsize {
        ws_row: s.height,
        ws_col: s.width,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize from the pointer.
    unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
}

/// The exec'd process' pid, from runc's pid file.
fn read_pid(pid_file: &Path) -> Option<i32> {
    std::fs::read_to_string(pid_file)
        .ok()
        .and_then(|p| p.trim().parse().ok())
        .filter(|p| *p > 0)
}

fn kill_exec(pid_file: &Path) {
    if let Some(pid) = read_pid(pid_file) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// A pty master, readable and writable without blocking the runtime.
struct Pty(AsyncFd<OwnedFd>);

impl Pty {
    fn new(master: OwnedFd) -> std::io::Result<Self> {
        let fl = nix::fcntl::fcntl(&master, nix::fcntl::FcntlArg::F_GETFL)?;
        let fl = nix::fcntl::OFlag::from_bits_truncate(fl) | nix::fcntl::OFlag::O_NONBLOCK;
        nix::fcntl::fcntl(&master, nix::fcntl::FcntlArg::F_SETFL(fl))?;
        // SAFETY: an OwnedFd keeps its descriptor open and unchanged while owned.
        let fd = unsafe { AsyncFd::register(master) }.map_err(std::io::Error::from)?;
        Ok(Self(fd))
    }

    async fn read(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let mut g = self.0.readable().await?;
            match g.try_io(|fd| nix::unistd::read(fd.get_ref(), buf).map_err(Into::into)) {
                Ok(Err(e)) if e.raw_os_error() == Some(libc::EIO) => return Ok(0),
                Ok(r) => return r,
                Err(_) => continue,
            }
        }
    }

    async fn write_all(&self, mut data: &[u8]) -> std::io::Result<()> {
        while !data.is_empty() {
            let mut g = self.0.writable().await?;
            match g.try_io(|fd| nix::unistd::write(fd.get_ref(), data).map_err(Into::into)) {
                Ok(Ok(n)) => data = &data[n..],
                Ok(Err(e)) => return Err(e),
                Err(_) => continue,
            }
        }
        Ok(())
    }
}

/// Runs `cmd` in container `id` with the session's streams; returns its outcome.
pub async fn run(
    runc: &Runc,
    id: &str,
    cmd: &[String],
    tty: bool,
    pid_file: &Path,
    mut io: Io,
) -> (Outcome, Io) {
    let _ = std::fs::remove_file(pid_file);
    let mut c = tokio::process::Command::new(&runc.bin);
    c.args(runc.global_args()).arg("exec");
    if tty {
        c.arg("--tty");
    }
    c.arg("--pid-file").arg(pid_file).arg(id).args(cmd);
    c.kill_on_drop(false);
    let outcome = if tty {
        run_tty(c, &mut io, pid_file).await
    } else {
        run_pipes(c, &mut io, pid_file).await
    };
    let _ = std::fs::remove_file(pid_file);
    (outcome, io)
}

fn exited(st: std::io::Result<std::process::ExitStatus>) -> Outcome {
    use std::os::unix::process::ExitStatusExt;
    match st {
        Ok(s) => Outcome::Exited(s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(9))),
        Err(e) => Outcome::Failed(format!("waiting for runc exec: {e}")),
    }
}

async fn run_pipes(mut c: tokio::process::Command, io: &mut Io, pid_file: &Path) -> Outcome {
    c.stdin(if io.stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = match c.spawn() {
        Ok(ch) => ch,
        Err(e) => return Outcome::Failed(format!("cannot run runc exec: {e}")),
    };
    let stdin_task = match (child.stdin.take(), io.stdin.take()) {
        (Some(mut w), Some(mut rx)) => Some(tokio::spawn(async move {
            while let Some(data) = rx.recv().await {
                if w.write_all(&data).await.is_err() {
                    break;
                }
            }
            // Dropping `w` closes the process' stdin.
        })),
        _ => None,
    };
    let so = child.stdout.take();
    let se = child.stderr.take();
    let out = io.stdout.clone();
    let err = io.stderr.clone();
    let copy = async move {
        let a = async {
            if let Some(s) = so {
                pump(s, out).await
            }
        };
        let b = async {
            if let Some(s) = se {
                pump(s, err).await
            }
        };
        tokio::join!(a, b);
    };
    let mut closed = io.closed.clone();
    let done = async {
        let (_, st) = tokio::join!(copy, child.wait());
        st
    };
    tokio::pin!(done);
    let st = tokio::select! {
        st = &mut done => st,
        _ = super::until_closed(&mut closed) => {
            kill_exec(pid_file);
            done.await
        }
    };
    if let Some(t) = stdin_task {
        t.abort();
    }
    exited(st)
}

async fn run_tty(mut c: tokio::process::Command, io: &mut Io, pid_file: &Path) -> Outcome {
    let pty = match nix::pty::openpty(None, None) {
        Ok(p) => p,
        Err(e) => return Outcome::Failed(format!("openpty: {e}")),
    };
    // Start at the client's first size (clients send it right away): runc
    // copies our size to the container's console when it starts.
    if let Some(rx) = io.resize.as_mut() {
        if let Ok(Some(s)) = tokio::time::timeout(Duration::from_millis(300), rx.recv()).await {
            set_winsize(&pty.master, s);
        }
    }
    // Raw from the start: input that arrives before runc sets our terminal raw
    // must not be echoed or translated by it (the container's console does that).
    if let Ok(mut t) = nix::sys::termios::tcgetattr(&pty.slave) {
        nix::sys::termios::cfmakeraw(&mut t);
        let _ = nix::sys::termios::tcsetattr(&pty.slave, nix::sys::termios::SetArg::TCSANOW, &t);
    }
    let slave = pty.slave;
    let (s1, s2) = match (slave.try_clone(), slave.try_clone()) {
        (Ok(a), Ok(b)) => (a, b),
        _ => return Outcome::Failed("duplicating the pty".into()),
    };
    c.stdin(Stdio::from(slave))
        .stdout(Stdio::from(s1))
        .stderr(Stdio::from(s2));
    // SAFETY: only async-signal-safe calls (setsid, ioctl) between fork and exec.
    unsafe {
        c.pre_exec(|| {
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = match c.spawn() {
        Ok(ch) => ch,
        Err(e) => return Outcome::Failed(format!("cannot run runc exec: {e}")),
    };
    // The Command held the slave copies; the spawn dropped ours with it.
    drop(c);
    tracing::debug!(pid = child.id(), "runc exec --tty started");
    let master = match Pty::new(pty.master) {
        Ok(m) => std::sync::Arc::new(m),
        Err(e) => {
            let _ = child.start_kill();
            return Outcome::Failed(format!("pty: {e}"));
        }
    };
    let stdin_task = io.stdin.take().map(|mut rx| {
        let m = master.clone();
        tokio::spawn(async move {
            while let Some(data) = rx.recv().await {
                if m.write_all(&data).await.is_err() {
                    break;
                }
            }
        })
    });
    let resize_task = io.resize.take().map(|mut rx: mpsc::Receiver<TermSize>| {
        let m = master.clone();
        tokio::spawn(async move {
            while let Some(s) = rx.recv().await {
                set_winsize(m.0.get_ref(), s);
            }
        })
    });
    let out = io.stdout.clone();
    let m = master.clone();
    let copy = async move {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match m.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if let Some(o) = &out {
                        if !o.write(buf[..n].to_vec()).await {
                            break;
                        }
                    }
                }
            }
        }
    };
    let mut closed = io.closed.clone();
    let done = async {
        let (_, st) = tokio::join!(copy, child.wait());
        st
    };
    tokio::pin!(done);
    let st = tokio::select! {
        st = &mut done => st,
        _ = super::until_closed(&mut closed) => {
            kill_exec(pid_file);
            done.await
        }
    };
    for t in [stdin_task, resize_task].into_iter().flatten() {
        t.abort();
    }
    exited(st)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_process_on_our_pty_sees_its_size_and_input() {
        let pty = nix::pty::openpty(None, None).unwrap();
        set_winsize(
            &pty.master,
            TermSize {
                width: 123,
                height: 45,
            },
        );
        let mut c = tokio::process::Command::new("sh");
        c.args(["-c", "stty size; read x; echo got:$x"]);
        let slave = pty.slave;
        c.stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave));
        // SAFETY: async-signal-safe calls only.
        unsafe {
            c.pre_exec(|| {
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = c.spawn().unwrap();
        drop(c);
        let m = Pty::new(pty.master).unwrap();
        m.write_all(b"abc\n").await.unwrap();
        let mut out = Vec::new();
        let mut buf = [0u8; 1024];
        loop {
            let n = tokio::time::timeout(std::time::Duration::from_secs(5), m.read(&mut buf))
                .await
                .expect("pty read timed out")
                .unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8_lossy(&out);
        assert!(
            text.contains("45 123") && text.contains("got:abc"),
            "{text:?}"
        );
        assert!(child.wait().await.unwrap().success());
    }
}
