//! A remote command that runs for as long as kprov keeps its stdin open.
//!
//! Its stdin is a pipe whose only writer is this process: when kprov exits or is killed,
//! the pipe closes, ssh sends EOF on the channel and the remote command reads end of
//! input, whatever happens to the master connection (it may persist). Used for the run
//! lock.

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use openssh::{Child, ChildStdout, Session, Stdio};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};

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
#[derive(Debug)]
pub struct Held {
    host: String,
    child: Child<Shared>,
    lines: Lines<BufReader<ChildStdout>>,
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
        Ok(Held {
            host,
            child,
            lines: BufReader::new(stdout).lines(),
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
        if let Some(mut stdin) = self.child.stdin().take() {
            use tokio::io::AsyncWriteExt;
            // A clean end: the command tells it from kprov dying (stdin closed unsaid).
            let _ = stdin.write_all(b"release\n").await;
            let _ = stdin.shutdown().await;
        }
        match tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await {
            Ok(Ok(status)) => status.code(),
            Ok(Err(err)) => {
                tracing::debug!(host = %self.host, %err, "waiting for a held command");
                None
            }
            Err(_) => None,
        }
    }
}
