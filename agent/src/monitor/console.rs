//! The container's terminal, for a container created with a tty: runc
//! (`create --console-socket`) connects to a socket of ours and hands over
//! the pty master it made inside the container (SCM_RIGHTS). The monitor keeps
//! that master for the container's life: its output is the container's
//! stdout, attach clients write to it and set its size.

use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use std::io::IoSliceMut;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Why the console could not be had.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("console socket {0}: {1}")]
    Socket(PathBuf, std::io::Error),
    #[error("receiving the console from runc: {0}")]
    Receive(String),
    #[error("runc sent no console within {0:?}")]
    Timeout(Duration),
}

/// A listening console socket in a private directory of its own (runc needs
/// a path short enough for a socket address, so not the bundle's).
pub struct ConsoleSocket {
    dir: PathBuf,
    path: PathBuf,
    listener: UnixListener,
}

impl ConsoleSocket {
    /// Listens in a fresh mode-0700 directory under `base` named for `id`.
    pub fn bind(base: &Path, id: &str) -> Result<Self, ConsoleError> {
        let short: String = id.chars().take(16).collect();
        // A random part: nobody can guess the name and plant something there.
        let dir = base.join(format!(
            "kprov-console-{short}-{}",
            &crate::util::new_id()[..12]
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let err = |e| ConsoleError::Socket(dir.clone(), e);
        std::fs::create_dir(&dir).map_err(err)?;
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .map_err(err)?;
        let path = dir.join("c.sock");
        let listener =
            UnixListener::bind(&path).map_err(|e| ConsoleError::Socket(path.clone(), e))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| ConsoleError::Socket(path.clone(), e))?;
        Ok(Self {
            dir,
            path,
            listener,
        })
    }

    /// The path to give runc's `--console-socket`.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Waits (up to `wait`) for runc to connect and send the master, while
    /// `alive()` holds (it says whether runc still runs): `Ok(None)` when runc
    /// ended without sending one.
    pub fn receive(
        &self,
        wait: Duration,
        mut alive: impl FnMut() -> bool,
    ) -> Result<Option<OwnedFd>, ConsoleError> {
        let deadline = Instant::now() + wait;
        loop {
            match self.listener.accept() {
                Ok((conn, _)) => return receive_fd(&conn).map(Some),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(ConsoleError::Receive(e.to_string())),
            }
            if !alive() {
                // runc may have connected just before it ended.
                return match self.listener.accept() {
                    Ok((conn, _)) => receive_fd(&conn).map(Some),
                    Err(_) => Ok(None),
                };
            }
            if Instant::now() >= deadline {
                return Err(ConsoleError::Timeout(wait));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Reads one message from runc and takes the descriptor it carries.
fn receive_fd(conn: &std::os::unix::net::UnixStream) -> Result<OwnedFd, ConsoleError> {
    conn.set_nonblocking(false)
        .map_err(|e| ConsoleError::Receive(e.to_string()))?;
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let mut name = [0u8; 4096];
    let mut iov = [IoSliceMut::new(&mut name)];
    let mut space = nix::cmsg_space!([std::os::fd::RawFd; 4]);
    let msg = recvmsg::<()>(
        conn.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(|e| ConsoleError::Receive(e.to_string()))?;
    let mut got: Vec<OwnedFd> = Vec::new();
    for c in msg
        .cmsgs()
        .map_err(|e| ConsoleError::Receive(e.to_string()))?
    {
        if let ControlMessageOwned::ScmRights(fds) = c {
            // SAFETY: the kernel just installed these descriptors for us.
            got.extend(
                fds.into_iter()
                    .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
            );
        }
    }
    // One master is expected; any extra descriptor is closed as it drops.
    got.into_iter()
        .next()
        .ok_or_else(|| ConsoleError::Receive("the message carried no descriptor".into()))
}

/// Sets the terminal size of pty master `fd` (the kernel tells the
/// container's foreground process group with SIGWINCH).
pub fn set_size(fd: &impl AsRawFd, rows: u16, cols: u16) {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize from the pointer.
    unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::socket::{sendmsg, ControlMessage};
    use std::io::IoSlice;

    #[test]
    fn a_sent_master_arrives_and_the_directory_goes_with_the_socket() {
        let base = tempfile::tempdir().unwrap();
        let sock = ConsoleSocket::bind(base.path(), "abcdef0123456789ffff").unwrap();
        let path = sock.path().to_path_buf();
        let pty = nix::pty::openpty(None, None).unwrap();
        let sender = std::thread::spawn(move || {
            let conn = std::os::unix::net::UnixStream::connect(&path).unwrap();
            let fds = [pty.master.as_raw_fd()];
            sendmsg::<()>(
                conn.as_raw_fd(),
                &[IoSlice::new(b"/dev/pts/0")],
                &[ControlMessage::ScmRights(&fds)],
                MsgFlags::empty(),
                None,
            )
            .unwrap();
            pty.slave
        });
        let master = sock
            .receive(Duration::from_secs(5), || true)
            .unwrap()
            .expect("a master");
        let slave = sender.join().unwrap();
        set_size(&master, 33, 101);
        let ws = nix::pty::Winsize {
            ws_row: 0,
            ws_col: 0,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let mut ws = ws;
        // SAFETY: TIOCGWINSZ writes one winsize.
        unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
        assert_eq!((ws.ws_row, ws.ws_col), (33, 101));
        let dir = sock.dir.clone();
        drop(sock);
        assert!(!dir.exists());
    }

    #[test]
    fn runc_ending_without_a_console_is_none() {
        let base = tempfile::tempdir().unwrap();
        let sock = ConsoleSocket::bind(base.path(), "x").unwrap();
        assert!(sock
            .receive(Duration::from_secs(5), || false)
            .unwrap()
            .is_none());
        assert!(matches!(
            sock.receive(Duration::from_millis(50), || true),
            Err(ConsoleError::Timeout(_))
        ));
    }
}
