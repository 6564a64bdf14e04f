//! The `local` connector: scripts run with this machine's own `sh -s`, as Ansible's and
//! pyinfra's local connections do. Each script is the leader of a process group of its
//! own; a timeout, a dropped call or an interrupt ends the whole group (the script and
//! everything it started), as ending the remote commands does over ssh.
//!
//! kprov's own state on the host (the run lock, handler markers) goes where the scripts'
//! `KPROV_RUN_DIR` and `KPROV_STATE_DIR` say: the host's `state_dir`, else the usual
//! places (`/run/kprov`, `/var/lib/kprov`) as root, else `local/<host>` under
//! `$XDG_RUNTIME_DIR/kprov` or `/tmp/kprov-<uid>`, so a local host needs no root unless
//! its tasks do.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use super::connector::{BoxFuture, Connector};
use super::error::TransportError;
use super::held::Held;
use super::pool::{Forward, Output};
use super::stream::LineWatcher;
use super::target::Target;

/// A host that is this machine.
#[derive(Debug)]
pub struct LocalConnection {
    target: Target,
    default_timeout: Duration,
    /// Where kprov's own state goes; `None` for the usual places (root).
    state_dir: Option<PathBuf>,
}

impl LocalConnection {
    /// Prepares the local host of `target` (creates its state directory).
    pub fn open(target: Target, default_timeout: Duration) -> Result<Self, TransportError> {
        let state_dir = match &target.state_dir {
            Some(dir) => Some(dir.clone()),
            None if super::pool::current_uid() == 0 => None,
            // One per host: several local hosts of one run must not share a lock.
            None => Some(
                match std::env::var_os("XDG_RUNTIME_DIR") {
                    Some(run) => PathBuf::from(run).join("kprov"),
                    None => PathBuf::from(format!("/tmp/kprov-{}", super::pool::current_uid())),
                }
                .join("local")
                .join(&target.name),
            ),
        };
        if let Some(dir) = &state_dir {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| {
                    TransportError::connection(
                        &target.name,
                        format!("cannot create the state directory {}: {e}", dir.display()),
                    )
                })?;
        }
        Ok(LocalConnection {
            target,
            default_timeout,
            state_dir,
        })
    }

    /// `sh` (through `sudo -n` for `become` when not root) with `args`, in a process group
    /// of its own, stdin and stdout piped.
    fn command(&self, args: &[&str]) -> Command {
        let sudo = self.target.become_root && super::pool::current_uid() != 0;
        let mut command = if sudo {
            let mut c = Command::new("sudo");
            c.args(["-n", "--", "sh"]);
            c
        } else {
            Command::new("sh")
        };
        command.args(args);
        if let Some(dir) = &self.state_dir {
            command
                .env("KPROV_RUN_DIR", dir)
                .env("KPROV_STATE_DIR", dir);
        }
        command
            .process_group(0)
            .kill_on_drop(true)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped());
        command
    }

    async fn run_script(
        &self,
        script: &str,
        timeout: Option<Duration>,
        on_line: LineWatcher<'_>,
    ) -> Result<Output, TransportError> {
        let limit = timeout.unwrap_or(self.default_timeout);
        let host = &self.target.name;
        if super::live::interrupted() {
            return Err(TransportError::interrupted(host));
        }
        let _running = super::live::InFlight::start();
        let mut child = self
            .command(&["-s"])
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| TransportError::connection(host, format!("starting sh: {e}")))?;
        let group = Group::of(&child);
        let work = async {
            let mut written = Ok(());
            if let Some(mut stdin) = child.stdin.take() {
                written = stdin.write_all(script.as_bytes()).await;
                if written.is_ok() {
                    written = stdin.shutdown().await;
                }
            }
            let (stdout, stderr) =
                super::stream::read_both(child.stdout.take(), child.stderr.take(), on_line)
                    .await
                    .map_err(|e| TransportError::connection(host, e))?;
            let status = child
                .wait()
                .await
                .map_err(|e| TransportError::connection(host, e))?;
            let output = Output {
                exit_code: status.code(),
                stdout,
                stderr,
            };
            if self.target.become_root {
                if let Some(err) = TransportError::from_sudo(&self.target, &output) {
                    return Err(err);
                }
            }
            // A script that exits before reading all its input is not an error.
            if let Err(e) = written {
                if e.kind() != std::io::ErrorKind::BrokenPipe {
                    return Err(TransportError::connection(host, e));
                }
            }
            Ok(output)
        };
        match tokio::time::timeout(limit, work).await {
            Ok(result) => {
                group.finished();
                result
            }
            // Dropping the group ends everything the script started.
            Err(_) => Err(TransportError::command_timeout(host, limit)),
        }
    }
}

impl Connector for LocalConnection {
    fn target(&self) -> &Target {
        &self.target
    }

    fn run_watching<'a>(
        &'a self,
        script: &'a str,
        timeout: Option<Duration>,
        on_line: LineWatcher<'a>,
    ) -> BoxFuture<'a, Result<Output, TransportError>> {
        Box::pin(self.run_script(script, timeout, on_line))
    }

    fn hold<'a>(
        self: Arc<Self>,
        script: &'a str,
        args: &'a [&'a str],
    ) -> BoxFuture<'a, Result<Held, TransportError>> {
        Box::pin(async move {
            let host = self.target.name.clone();
            if super::live::interrupted() {
                return Err(TransportError::interrupted(&host));
            }
            let mut words = vec!["-c", script, "kprov"];
            words.extend_from_slice(args);
            let child = self
                .command(&words)
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| TransportError::connection(&host, format!("starting sh: {e}")))?;
            let group = Group::of(&child);
            Held::local(host, child, group)
        })
    }

    /// A relay on 127.0.0.1 that connects to `host:port` directly (this machine is the host).
    fn forward_tcp<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> BoxFuture<'a, Result<Forward<'a>, TransportError>> {
        Box::pin(async move {
            let name = &self.target.name;
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
                .await
                .map_err(|e| TransportError::connection(name, e))?;
            let local = listener
                .local_addr()
                .map_err(|e| TransportError::connection(name, e))?
                .port();
            let remote = (host.to_string(), port);
            let relay = tokio::spawn(async move {
                while let Ok((mut inbound, _)) = listener.accept().await {
                    let remote = remote.clone();
                    tokio::spawn(async move {
                        if let Ok(mut outbound) =
                            tokio::net::TcpStream::connect((remote.0.as_str(), remote.1)).await
                        {
                            let _ =
                                tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    });
                }
            });
            Ok(Forward::direct(local, relay))
        })
    }

    fn close(self: Arc<Self>) -> BoxFuture<'static, ()> {
        Box::pin(async {})
    }
}

/// The process group of a running local script: ended (SIGKILL) when dropped before
/// [`Group::finished`], so a timeout or a dropped call leaves nothing running.
pub(super) struct Group(Option<u32>);

impl Group {
    fn of(child: &tokio::process::Child) -> Group {
        let pgid = child.id();
        if let Some(pgid) = pgid {
            super::live::local_started(pgid);
        }
        Group(pgid)
    }

    /// The script ended by itself: what it left running in the background stays.
    fn finished(mut self) {
        if let Some(pgid) = self.0.take() {
            super::live::local_ended(pgid);
        }
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        if let Some(pgid) = self.0.take() {
            signal_groups(&[pgid], "KILL");
            super::live::local_ended(pgid);
        }
    }
}

/// Sends `signal` (`TERM`, `KILL`) to each process group (with the shell's own `kill`,
/// which every POSIX sh has; no `kill` binary or libc binding needed).
pub(super) fn signal_groups(groups: &[u32], signal: &str) {
    for pgid in groups {
        let _ = std::process::Command::new("sh")
            .arg("-c")
            .arg("kill -s \"$1\" -- \"-$2\"")
            .arg("kill")
            .arg(signal)
            .arg(pgid.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
