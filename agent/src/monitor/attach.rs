//! Attach clients of the monitor: a unix socket in the bundle (mode 0600) that
//! the monitor polls with the container's pipes. Every client gets a copy of
//! the container's output from the moment it connects, then the exit code;
//! clients may write to the container's stdin when it has one. Nothing here
//! blocks: a client that does not keep up (more than [`MAX_BUFFERED`] bytes
//! pending) is dropped, so log writing and the container never wait for one.
//!
//! For a tty container the "stdin pipe" is the pty master, clients may set its
//! size ([`RESIZE`]), and closing stdin (stdin_once) hangs the terminal up.
//!
//! Frames both ways: one byte stream id, a big-endian u32 length, the payload.

use nix::poll::{PollFd, PollFlags};
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

/// The socket's file name in the container's bundle.
pub const SOCKET_NAME: &str = "attach.sock";
/// Client to monitor: bytes for the container's stdin.
pub const STDIN: u8 = 0;
/// Monitor to client: the container's stdout.
pub const STDOUT: u8 = 1;
/// Monitor to client: the container's stderr.
pub const STDERR: u8 = 2;
/// Monitor to client: the container exited; payload is the exit code (i32 BE).
pub const EXIT: u8 = 3;
/// Client to monitor: the client's stdin ended.
pub const STDIN_CLOSE: u8 = 4;
/// Client to monitor: a terminal size, rows then columns (u16 BE each); only
/// a tty container has a terminal to size.
pub const RESIZE: u8 = 5;
/// Frame header size.
pub const HEADER: usize = 5;
/// Output kept for one client before it is dropped as too slow.
pub const MAX_BUFFERED: usize = 1 << 20;
/// Largest frame a client may send.
pub const MAX_FRAME: usize = 1 << 20;
/// Most clients at once (more are refused: each costs a descriptor).
const MAX_CLIENTS: usize = 64;
/// Stdin bytes held for the container before clients are read no further.
const MAX_STDIN: usize = 1 << 20;

/// Encodes one frame.
pub fn frame(id: u8, data: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(HEADER + data.len());
    f.push(id);
    f.extend_from_slice(&(data.len() as u32).to_be_bytes());
    f.extend_from_slice(data);
    f
}

/// Takes the complete frames off the front of `buf`; `Err` on an oversized one.
pub fn parse_frames(buf: &mut Vec<u8>) -> Result<Vec<(u8, Vec<u8>)>, String> {
    let mut out = Vec::new();
    let mut at = 0;
    while buf.len() - at >= HEADER {
        let mut len = [0u8; 4];
        len.copy_from_slice(&buf[at + 1..at + HEADER]);
        let len = u32::from_be_bytes(len) as usize;
        if len > MAX_FRAME {
            return Err(format!("attach frame of {len} bytes"));
        }
        if buf.len() - at - HEADER < len {
            break;
        }
        out.push((buf[at], buf[at + HEADER..at + HEADER + len].to_vec()));
        at += HEADER + len;
    }
    buf.drain(..at);
    Ok(out)
}

/// A path naming `path` that fits a unix socket address (108 bytes): `path`
/// itself when short, else `/proc/self/fd/N/name` through `dir`, an open
/// descriptor of its directory that the caller keeps until it is used.
pub fn socket_path(path: &Path) -> std::io::Result<(PathBuf, Option<std::fs::File>)> {
    if path.as_os_str().len() < 100 {
        return Ok((path.to_path_buf(), None));
    }
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other("socket path has no file name"))?;
    let d = std::fs::File::open(dir)?;
    let short = PathBuf::from(format!(
        "/proc/self/fd/{}",
        std::os::fd::AsRawFd::as_raw_fd(&d)
    ))
    .join(name);
    Ok((short, Some(d)))
}

/// What a poll slot belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    Listener,
    Stdin,
    Client(u64),
}

struct Client {
    id: u64,
    sock: UnixStream,
    out: Vec<u8>,
    input: Vec<u8>,
    sent_stdin: bool,
}

impl Client {
    /// Writes what it can of the pending output; false once the client is dead.
    fn flush(&mut self) -> bool {
        while !self.out.is_empty() {
            match self.sock.write(&self.out) {
                Ok(0) => return false,
                Ok(n) => {
                    self.out.drain(..n);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        true
    }
}

/// The attach socket and its clients.
pub struct AttachServer {
    path: PathBuf,
    listener: UnixListener,
    clients: Vec<Client>,
    next_id: u64,
    stdin: Option<std::fs::File>,
    stdin_buf: Vec<u8>,
    stdin_once: bool,
    /// The pty master, for a tty container (resizes go to it).
    console: Option<OwnedFd>,
    /// Set when a tty's stdin closed: the monitor then closes the console.
    hangup: bool,
}

/// Decodes a [`RESIZE`] payload into (rows, columns).
pub fn parse_size(data: &[u8]) -> Option<(u16, u16)> {
    if data.len() != 4 {
        return None;
    }
    Some((
        u16::from_be_bytes([data[0], data[1]]),
        u16::from_be_bytes([data[2], data[3]]),
    ))
}

/// Encodes a [`RESIZE`] payload.
pub fn size_payload(rows: u16, cols: u16) -> [u8; 4] {
    let r = rows.to_be_bytes();
    let c = cols.to_be_bytes();
    [r[0], r[1], c[0], c[1]]
}

fn set_nonblocking(fd: &impl AsFd) -> Result<(), String> {
    let fl = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFL).map_err(|e| e.to_string())?;
    let fl = nix::fcntl::OFlag::from_bits_truncate(fl) | nix::fcntl::OFlag::O_NONBLOCK;
    nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETFL(fl)).map_err(|e| e.to_string())?;
    Ok(())
}

impl AttachServer {
    /// Listens on `path` (mode 0600); `stdin` is the write end of the
    /// container's stdin pipe, if it has one.
    pub fn bind(path: &Path, stdin: Option<OwnedFd>, stdin_once: bool) -> Result<Self, String> {
        let _ = std::fs::remove_file(path);
        let (short, _dir) = socket_path(path).map_err(|e| format!("attach socket: {e}"))?;
        let listener =
            UnixListener::bind(&short).map_err(|e| format!("attach socket {short:?}: {e}"))?;
        std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .map_err(|e| format!("attach socket mode: {e}"))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| format!("attach socket: {e}"))?;
        let stdin = match stdin {
            Some(fd) => {
                set_nonblocking(&fd)?;
                Some(std::fs::File::from(fd))
            }
            None => None,
        };
        Ok(Self {
            path: path.to_path_buf(),
            listener,
            clients: Vec::new(),
            next_id: 0,
            stdin,
            stdin_buf: Vec::new(),
            stdin_once,
            console: None,
            hangup: false,
        })
    }

    /// Makes this a tty container's server: `stdin` (a copy of the pty master,
    /// when the container has stdin) takes clients' input, `size` (another
    /// copy) their resizes.
    pub fn set_console(&mut self, stdin: Option<OwnedFd>, size: OwnedFd) -> Result<(), String> {
        if let Some(fd) = stdin {
            set_nonblocking(&fd)?;
            self.stdin = Some(std::fs::File::from(fd));
        }
        self.console = Some(size);
        Ok(())
    }

    /// True once (then false) after a tty's stdin was closed: the caller
    /// closes its copy of the master too.
    pub fn take_hangup(&mut self) -> bool {
        std::mem::take(&mut self.hangup)
    }

    /// The descriptors to poll, each with its slot.
    pub fn poll_fds(&self) -> Vec<(Slot, PollFd<'_>)> {
        let mut v = vec![(
            Slot::Listener,
            PollFd::new(self.listener.as_fd(), PollFlags::POLLIN),
        )];
        if let Some(s) = &self.stdin {
            if !self.stdin_buf.is_empty() {
                v.push((Slot::Stdin, PollFd::new(s.as_fd(), PollFlags::POLLOUT)));
            }
        }
        let read = self.stdin_buf.len() < MAX_STDIN;
        for c in &self.clients {
            let mut ev = PollFlags::empty();
            if read {
                ev |= PollFlags::POLLIN;
            }
            if !c.out.is_empty() {
                ev |= PollFlags::POLLOUT;
            }
            v.push((Slot::Client(c.id), PollFd::new(c.sock.as_fd(), ev)));
        }
        v
    }

    /// Acts on what poll reported.
    pub fn handle(&mut self, ready: &[(Slot, PollFlags)]) {
        for (slot, rev) in ready {
            if rev.is_empty() {
                continue;
            }
            match slot {
                Slot::Listener => self.accept(),
                Slot::Stdin => self.flush_stdin(),
                Slot::Client(id) => {
                    let Some(i) = self.clients.iter().position(|c| c.id == *id) else {
                        continue;
                    };
                    let alive = (!rev
                        .intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR)
                        || self.read_client(i))
                        && (!rev.contains(PollFlags::POLLOUT) || self.clients[i].flush());
                    if !alive {
                        self.drop_client(i);
                    }
                }
            }
        }
        self.flush_stdin();
    }

    fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((sock, _)) => {
                    if self.clients.len() >= MAX_CLIENTS || sock.set_nonblocking(true).is_err() {
                        continue;
                    }
                    self.next_id += 1;
                    self.clients.push(Client {
                        id: self.next_id,
                        sock,
                        out: Vec::new(),
                        input: Vec::new(),
                        sent_stdin: false,
                    });
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    }

    /// Reads what client `i` sent; false once it is gone (or misbehaved).
    fn read_client(&mut self, i: usize) -> bool {
        let mut buf = [0u8; 32 * 1024];
        let c = &mut self.clients[i];
        let n = match c.sock.read(&mut buf) {
            Ok(0) => return false,
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {
                return true
            }
            Err(_) => return false,
        };
        c.input.extend_from_slice(&buf[..n]);
        let Ok(frames) = parse_frames(&mut c.input) else {
            return false;
        };
        for (id, data) in frames {
            match id {
                STDIN => {
                    self.clients[i].sent_stdin = true;
                    if self.stdin.is_some() {
                        self.stdin_buf.extend_from_slice(&data);
                    }
                }
                RESIZE => {
                    if let (Some(c), Some((rows, cols))) = (&self.console, parse_size(&data)) {
                        super::console::set_size(c, rows, cols);
                    }
                }
                STDIN_CLOSE => {
                    self.clients[i].sent_stdin = true;
                    if self.stdin_once {
                        self.close_stdin();
                    }
                }
                _ => {}
            }
        }
        true
    }

    fn drop_client(&mut self, i: usize) {
        let c = self.clients.swap_remove(i);
        if c.sent_stdin && self.stdin_once {
            self.close_stdin();
        }
    }

    /// Closes the container's stdin once what clients sent is written (or lost).
    fn close_stdin(&mut self) {
        self.flush_stdin();
        self.stdin = None;
        self.stdin_buf.clear();
        if self.console.take().is_some() {
            self.hangup = true;
        }
    }

    fn flush_stdin(&mut self) {
        let Some(s) = self.stdin.as_mut() else {
            self.stdin_buf.clear();
            return;
        };
        while !self.stdin_buf.is_empty() {
            match s.write(&self.stdin_buf) {
                Ok(0) => break,
                Ok(n) => {
                    self.stdin_buf.drain(..n);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(_) => {
                    // The container closed its stdin: nothing more goes there.
                    self.stdin = None;
                    self.stdin_buf.clear();
                    return;
                }
            }
        }
    }

    /// Copies container output (`id` is [`STDOUT`] or [`STDERR`]) to every client.
    pub fn broadcast(&mut self, id: u8, data: &[u8]) {
        if self.clients.is_empty() {
            return;
        }
        let f = frame(id, data);
        let mut i = 0;
        while i < self.clients.len() {
            let c = &mut self.clients[i];
            let ok = c.out.len() + f.len() <= MAX_BUFFERED && {
                c.out.extend_from_slice(&f);
                c.flush()
            };
            if ok {
                i += 1;
            } else {
                self.drop_client(i);
            }
        }
    }

    /// Sends every client the exit code, gives them up to a second to take
    /// their pending output, then closes them and removes the socket.
    pub fn finish(mut self, code: i32) {
        let _ = std::fs::remove_file(&self.path);
        self.broadcast(EXIT, &code.to_be_bytes());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
        while std::time::Instant::now() < deadline {
            self.clients.retain_mut(|c| c.flush() && !c.out.is_empty());
            if self.clients.is_empty() {
                break;
            }
            let mut fds: Vec<PollFd> = self
                .clients
                .iter()
                .map(|c| PollFd::new(c.sock.as_fd(), PollFlags::POLLOUT))
                .collect();
            let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(100u16));
        }
    }
}

impl Drop for AttachServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_wait_for_their_tail() {
        let mut buf = frame(STDOUT, b"hello");
        buf.extend_from_slice(&frame(EXIT, &7i32.to_be_bytes()));
        let tail = buf.split_off(buf.len() - 2);
        let got = parse_frames(&mut buf).unwrap();
        assert_eq!(got, vec![(STDOUT, b"hello".to_vec())]);
        buf.extend_from_slice(&tail);
        let got = parse_frames(&mut buf).unwrap();
        assert_eq!(got, vec![(EXIT, 7i32.to_be_bytes().to_vec())]);
        assert!(buf.is_empty());
        let mut huge = vec![STDIN, 0xff, 0xff, 0xff, 0xff];
        assert!(parse_frames(&mut huge).is_err());
    }

    #[test]
    fn clients_get_output_stdin_reaches_the_pipe_and_a_stuck_client_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        // A long directory name: the socket is bound through /proc/self/fd.
        let deep = dir.path().join("d".repeat(120));
        std::fs::create_dir(&deep).unwrap();
        let path = deep.join(SOCKET_NAME);
        let (r, w) = nix::unistd::pipe().unwrap();
        let mut srv = AttachServer::bind(&path, Some(w), false).unwrap();
        let (short, _d) = socket_path(&path).unwrap();
        let mut reader = UnixStream::connect(&short).unwrap();
        let stuck = UnixStream::connect(&short).unwrap();
        let pump = |srv: &mut AttachServer| {
            let fds = srv.poll_fds();
            let slots: Vec<Slot> = fds.iter().map(|(s, _)| *s).collect();
            let mut pfds: Vec<PollFd> = fds.into_iter().map(|(_, f)| f).collect();
            nix::poll::poll(&mut pfds, nix::poll::PollTimeout::from(100u16)).unwrap();
            let ready: Vec<(Slot, PollFlags)> = slots
                .into_iter()
                .zip(
                    pfds.iter()
                        .map(|f| f.revents().unwrap_or(PollFlags::empty())),
                )
                .collect();
            drop(pfds);
            srv.handle(&ready);
        };
        while srv.clients.len() < 2 {
            pump(&mut srv);
        }
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        reader.write_all(&frame(STDIN, b"typed\n")).unwrap();
        let mut r = std::fs::File::from(r);
        let mut got = [0u8; 6];
        pump(&mut srv);
        r.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"typed\n");
        // The stuck client never reads: it is dropped, the reader keeps up.
        reader.set_nonblocking(true).unwrap();
        let chunk = vec![b'x'; 16 * 1024];
        let mut seen = 0;
        let mut sink = vec![0u8; 64 * 1024];
        for _ in 0..(2 * MAX_BUFFERED / chunk.len() + 64) {
            srv.broadcast(STDOUT, &chunk);
            while let Ok(n) = reader.read(&mut sink) {
                if n == 0 {
                    break;
                }
                seen += n;
            }
        }
        assert_eq!(srv.clients.len(), 1, "the stuck client is gone");
        assert!(seen > 2 * MAX_BUFFERED, "{seen}");
        drop(stuck);
        srv.finish(5);
        assert!(!path.exists());
    }

    use std::os::unix::fs::PermissionsExt;
}
