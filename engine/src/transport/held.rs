//! A remote command that runs for as long as kprov keeps its stdin open.
//!
//! Its stdin is a pipe whose only writer is this process: when kprov exits or is killed,
//! the pipe closes, ssh sends EOF on the channel and the remote command reads end of
//! input, whatever happens to the master connection (it may persist). Used for the run
//! lock.

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use openssh::{Child, Session, Stdio};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, BufReader, Lines};

use super::error::TransportError;
use super::pool::Connection;

/// A connection shared with a command that outlives one call.
#[derive(Debug, Clone)]
pub(super) struct Shared(Arc<Connection>);

impl Deref for Shared {
    type Target = Session;
    fn deref(&self) -> &Session {
        self.0.session()
    }
}

/// A running remote command: read its stdout line by line, then [`Held::release`] it.
pub struct Held {
    host: String,
    child: Running,
    stdin: Option<Box<dyn AsyncWrite + Send + Unpin>>,
    lines: Lines<BufReader<Box<dyn AsyncRead + Send + Unpin>>>,
}

/// The process behind a [`Held`].
enum Running {
    /// A command on a host over ssh.
    Ssh(Child<Shared>),
    /// A process group of this machine (a local host).
    Local(tokio::process::Child, super::local::Group),
}

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Held").field("host", &self.host).finish()
    }
}

impl Held {
    /// Starts `sh -c script` with `args` as `$1…` (each quoted by the transport), through
    /// `sudo -n` when the host says `become`.
    pub async fn start(
        conn: &Arc<Connection>,
        script: &str,
        args: &[&str],
    ) -> Result<Held, TransportError> {
        let host = conn.target().name.clone();
        if super::live::interrupted() {
            return Err(TransportError::interrupted(&host));
        }
        let shared = Shared(conn.clone());
        let mut command = if conn.target().become_root {
            let mut c = Session::to_command(shared, "sudo");
            c.args(["-n", "--", "sh", "-c", script, "kprov"]);
            c
        } else {
            let mut c = Session::to_command(shared, "sh");
            c.args(["-c", script, "kprov"]);
            c
        };
        command.args(args);
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .await
            .map_err(|e| TransportError::connection(&host, e))?;
        let stdout = child.stdout().take().ok_or_else(|| {
            TransportError::connection(&host, "no stdout from the remote command")
        })?;
        let stdin = child
            .stdin()
            .take()
            .map(|s| Box::new(s) as Box<dyn AsyncWrite + Send + Unpin>);
        Ok(Held {
            host,
            child: Running::Ssh(child),
            stdin,
            lines: BufReader::new(Box::new(stdout) as Box<dyn AsyncRead + Send + Unpin>).lines(),
        })
    }

    /// A held local process (already spawned with piped stdin and stdout) of `group`.
    pub(super) fn local(
        host: String,
        mut child: tokio::process::Child,
        group: super::local::Group,
    ) -> Result<Held, TransportError> {
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| TransportError::connection(&host, "no stdout from the command"))?;
        let stdin = child
            .stdin
            .take()
            .map(|s| Box::new(s) as Box<dyn AsyncWrite + Send + Unpin>);
        Ok(Held {
            host,
            child: Running::Local(child, group),
            stdin,
            lines: BufReader::new(Box::new(stdout) as Box<dyn AsyncRead + Send + Unpin>).lines(),
        })
    }

    /// The next line the command printed; `None` when it ended, or printed nothing more
    /// within `limit`.
    pub async fn line(&mut self, limit: Duration) -> Option<String> {
        match tokio::time::timeout(limit, self.lines.next_line()).await {
            Ok(Ok(line)) => line,
            Ok(Err(err)) => {
                tracing::debug!(host = %self.host, %err, "reading a held command");
                None
            }
            Err(_) => None,
        }
    }

    /// Says `release` on the command's stdin, closes it and waits (up to 10 s) until it has ended on the host.
    /// Returns its exit code when it ended in time.
    pub async fn release(mut self) -> Option<i32> {
        if let Some(mut stdin) = self.stdin.take() {
            use tokio::io::AsyncWriteExt;
            // A clean end: the command tells it from kprov dying (stdin closed unsaid).
            let _ = stdin.write_all(b"release\n").await;
            let _ = stdin.shutdown().await;
        }
        let limit = Duration::from_secs(10);
        let waited: Result<Result<std::process::ExitStatus, String>, _> = match self.child {
            Running::Ssh(child) => tokio::time::timeout(limit, child.wait())
                .await
                .map(|r| r.map_err(|e| e.to_string())),
            Running::Local(mut child, _group) => tokio::time::timeout(limit, child.wait())
                .await
                .map(|r| r.map_err(|e| e.to_string())),
        };
        match waited {
            Ok(Ok(status)) => status.code(),
            Ok(Err(err)) => {
                tracing::debug!(host = %self.host, %err, "waiting for a held command");
                None
            }
            Err(_) => None,
        }
    }
}
