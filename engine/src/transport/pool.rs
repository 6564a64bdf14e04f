//! Connections to many hosts, opened and used with bounded concurrency.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use openssh::{ForwardType, KnownHosts, Session, SessionBuilder, Stdio};
use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::error::{TransportError, TransportErrorKind};
pub use super::forward::Forward;
use super::forward::{connect, listen};
use super::persist;
use super::target::Target;

/// How the pool connects and runs.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    /// Hosts worked on at once; `None` means all of them.
    pub concurrency: Option<usize>,
    /// Where ssh's control sockets live; default `$XDG_RUNTIME_DIR/kprov` or `/tmp/kprov-<uid>`.
    pub control_dir: Option<PathBuf>,
    /// Ceiling for one remote command unless the caller gives its own.
    pub command_timeout: Duration,
    /// Keep master connections this many seconds after the run, for the next run to
    /// reuse (like ssh's ControlPersist); 0 closes them at the end.
    pub persist_secs: u64,
}

impl Default for PoolOptions {
    fn default() -> Self {
        PoolOptions {
            concurrency: None,
            control_dir: None,
            command_timeout: Duration::from_secs(300),
            persist_secs: 0,
        }
    }
}

/// What a remote script produced.
#[derive(Debug, Clone)]
pub struct Output {
    /// Exit code; `None` when the remote process was killed by a signal.
    pub exit_code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Output {
    /// True when the script exited with status 0.
    pub fn success(&self) -> bool {
        self.exit_code == Some(0)
    }
}

/// One host's master connection; every command is a new channel over it.
#[derive(Debug)]
pub struct Connection {
    target: Target,
    session: Session,
    default_timeout: Duration,
    /// Where to record the master for the next run, when connections persist.
    persist_record: Option<PathBuf>,
}

impl Connection {
    /// Opens the master connection to `target`, with control sockets under `control_dir`.
    pub async fn open(
        target: Target,
        control_dir: &Path,
        default_timeout: Duration,
        persist_secs: u64,
    ) -> Result<Self, TransportError> {
        // Always a config of our own: it fixes ServerAliveCountMax (no flag sets it), so a
        // silent host is given up after a known time.
        let config = write_config(&target, control_dir)
            .map_err(|e| TransportError::connection(&target.name, e))?;
        let persist_record =
            (persist_secs > 0).then(|| control_dir.join(persist::record_name(&target)));
        if let Some(record) = &persist_record {
            if let Some(session) = persist::resume(record, &target, Some(&config)).await {
                tracing::debug!(host = %target.name, "reusing persisted ssh master");
                super::live::register(
                    session.control_socket(),
                    &target.name,
                    target.become_root,
                    true,
                );
                return Ok(Connection {
                    target,
                    session,
                    default_timeout,
                    persist_record,
                });
            }
        }
        let idle = if persist_secs > 0 { persist_secs } else { 300 };
        let mut builder = SessionBuilder::default();
        builder
            .user(target.user.clone())
            .port(target.port)
            .connect_timeout(target.connect_timeout)
            .server_alive_interval(super::keepalive::INTERVAL)
            .control_directory(control_dir)
            // A crashed kprov leaves no master behind for long.
            .control_persist(openssh::ControlPersist::IdleFor(
                usize::try_from(idle)
                    .ok()
                    .and_then(std::num::NonZeroUsize::new)
                    .unwrap_or(std::num::NonZeroUsize::MIN),
            ))
            .known_hosts_check(KnownHosts::Strict);
        if let Some(key) = &target.identity_file {
            builder.keyfile(key);
        }
        if let Some(file) = &target.known_hosts_file {
            builder.user_known_hosts_file(file);
        }
        builder.config_file(&config);
        let connect = builder.connect_mux(&target.address);
        // ssh's ConnectTimeout covers the TCP connect only; bound the whole handshake too.
        let limit = target.connect_timeout + Duration::from_secs(5);
        let session = match tokio::time::timeout(limit, connect).await {
            Err(_) => {
                return Err(TransportError::from_ssh(
                    &target,
                    &format!("connection timed out after {} s", limit.as_secs()),
                ))
            }
            Ok(Err(err)) => return Err(TransportError::from_ssh(&target, &error_text(&err))),
            Ok(Ok(session)) => session,
        };
        tracing::debug!(host = %target.name, "ssh master connected");
        super::live::register(
            session.control_socket(),
            &target.name,
            target.become_root,
            persist_record.is_some(),
        );
        Ok(Connection {
            target,
            session,
            default_timeout,
            persist_record,
        })
    }

    /// The host this connection reaches.
    pub fn target(&self) -> &Target {
        &self.target
    }

    pub(super) fn session(&self) -> &Session {
        &self.session
    }

    /// Runs `script` with the remote POSIX shell (`sh -s`, through `sudo -n` when the
    /// host says `become`), feeding the script on stdin. `timeout` defaults to the pool's.
    pub async fn run(
        &self,
        script: &str,
        timeout: Option<Duration>,
    ) -> Result<Output, TransportError> {
        self.run_watching(script, timeout, &|_| {}).await
    }

    /// [`Connection::run`], showing `on_line` each line of stdout as it arrives (the
    /// records a script writes as it goes, e.g. that a task starts).
    pub async fn run_watching(
        &self,
        script: &str,
        timeout: Option<Duration>,
        on_line: super::LineWatcher<'_>,
    ) -> Result<Output, TransportError> {
        let limit = timeout.unwrap_or(self.default_timeout);
        let host = &self.target.name;
        if super::live::interrupted() {
            return Err(TransportError::interrupted(host));
        }
        let _running = super::live::InFlight::start();
        let work = async {
            let mut command = if self.target.become_root {
                let mut c = self.session.command("sudo");
                c.args(["-n", "--", "sh", "-s"]);
                c
            } else {
                let mut c = self.session.command("sh");
                c.arg("-s");
                c
            };
            let mut child = command
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .await
                .map_err(|e| TransportError::connection(host, error_text(&e)))?;
            // A remote side that exits at once (no `sudo` there) closes stdin early: what it
            // said is more telling than the broken pipe, so the write error waits.
            let mut written = Ok(());
            if let Some(mut stdin) = child.stdin().take() {
                written = stdin.write_all(script.as_bytes()).await;
                if written.is_ok() {
                    written = stdin.shutdown().await;
                }
            }
            let out = super::stream::collect(child, on_line)
                .await
                .map_err(|e| TransportError::connection(host, error_text(&e)))?;
            let output = Output {
                exit_code: out.status.code(),
                stdout: out.stdout,
                stderr: out.stderr,
            };
            if self.target.become_root {
                if let Some(err) = TransportError::from_sudo(&self.target, &output) {
                    return Err(err);
                }
            }
            written.map_err(|e| TransportError::connection(host, e))?;
            Ok(output)
        };
        match tokio::time::timeout(limit, work).await {
            Ok(Err(err)) if err.kind == TransportErrorKind::Connection => {
                if let Some(silent) = self.silent() {
                    return Err(silent);
                }
                // The master itself is gone: the host dropped the connection (it died,
                // rebooted, its sshd was killed), so the host is unreachable.
                // The master notices a moment after its sessions end: ask for up to 1 s.
                for _ in 0..10 {
                    if self.session.check().await.is_err() {
                        return Err(super::keepalive::dropped(host));
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(err)
            }
            Ok(result) => result,
            Err(_) => Err(TransportError::command_timeout(host, limit)),
        }
    }

    /// The error for a host whose master gave up on it for not answering keepalives.
    pub fn silent(&self) -> Option<TransportError> {
        super::keepalive::silent(&self.target.name, self.session.control_socket())
    }

    /// Forwards a free local TCP port on 127.0.0.1 through this connection to
    /// `host:port` as the remote machine sees it (`ssh -L`). Returns the forward;
    /// [`Forward::close`] ends it (the master connection ends it too).
    pub async fn forward_tcp(&self, host: &str, port: u16) -> Result<Forward<'_>, TransportError> {
        let name = &self.target.name;
        // A port the kernel just handed out and released; ssh binds it at once.
        let local = std::net::TcpListener::bind(("127.0.0.1", 0))
            .and_then(|l| l.local_addr())
            .map_err(|e| TransportError::connection(name, e))?
            .port();
        let remote = (host.to_string(), port);
        self.session
            .request_port_forward(ForwardType::Local, listen(local), connect(&remote))
            .await
            .map_err(|e| {
                TransportError::connection(name, format!("forwarding to {host}:{port}: {e}"))
            })?;
        Ok(Forward::ssh(local, &self.session, remote))
    }

    /// Closes the master connection, or leaves it running for the next run when
    /// connections persist.
    pub async fn close(self) {
        super::live::unregister(self.session.control_socket());
        if let Some(record) = self.persist_record {
            let (ctl, _log) = self.session.detach();
            if let Err(err) = std::fs::write(&record, ctl.as_os_str().as_encoded_bytes()) {
                tracing::debug!(host = %self.target.name, %err, "recording persisted ssh master");
            }
            return;
        }
        if let Err(err) = self.session.close().await {
            tracing::debug!(host = %self.target.name, %err, "closing ssh master");
        }
    }
}

impl super::Connector for Connection {
    fn target(&self) -> &Target {
        &self.target
    }

    fn run_watching<'a>(
        &'a self,
        script: &'a str,
        timeout: Option<Duration>,
        on_line: super::LineWatcher<'a>,
    ) -> super::BoxFuture<'a, Result<Output, TransportError>> {
        Box::pin(Connection::run_watching(self, script, timeout, on_line))
    }

    fn hold<'a>(
        self: Arc<Self>,
        script: &'a str,
        args: &'a [&'a str],
    ) -> super::BoxFuture<'a, Result<super::Held, TransportError>> {
        Box::pin(async move { super::Held::start(&self, script, args).await })
    }

    fn forward_tcp<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> super::BoxFuture<'a, Result<Forward<'a>, TransportError>> {
        Box::pin(Connection::forward_tcp(self, host, port))
    }

    fn close(self: Arc<Self>) -> super::BoxFuture<'static, ()> {
        Box::pin(async move {
            if let Ok(conn) = Arc::try_unwrap(self) {
                Connection::close(conn).await;
            }
        })
    }
}

/// Open connections to a set of hosts, in inventory order.
#[derive(Debug)]
pub struct Pool {
    connections: Vec<Arc<dyn super::Connector>>,
    limit: Arc<Semaphore>,
}

impl Pool {
    /// Connects to every target at once (bounded by `options.concurrency`).
    /// Returns the pool of hosts that answered and the errors of those that did not.
    pub async fn connect(
        targets: Vec<Target>,
        options: &PoolOptions,
    ) -> (Pool, Vec<TransportError>) {
        // Only ssh needs the control directory: a run of local hosts writes nothing there.
        let any_ssh = targets.iter().any(|t| t.kind == super::ConnectionKind::Ssh);
        let control_dir = match any_ssh.then(|| control_dir(options.control_dir.as_deref())) {
            Some(Ok(dir)) => dir,
            None => PathBuf::new(),
            Some(Err(err)) => {
                let errors = targets
                    .iter()
                    .map(|t| TransportError::connection(&t.name, &err))
                    .collect();
                return (Pool::empty(options), errors);
            }
        };
        let limit = Arc::new(Semaphore::new(permits(options.concurrency, targets.len())));
        let mut set = JoinSet::new();
        for (index, target) in targets.into_iter().enumerate() {
            let limit = limit.clone();
            let control_dir = control_dir.clone();
            let timeout = options.command_timeout;
            let persist = options.persist_secs;
            set.spawn(async move {
                let _permit = limit.acquire_owned().await;
                let conn: Result<Arc<dyn super::Connector>, _> = match target.kind {
                    super::ConnectionKind::Local => {
                        super::LocalConnection::open(target, timeout).map(|c| Arc::new(c) as _)
                    }
                    super::ConnectionKind::Ssh => {
                        Connection::open(target, &control_dir, timeout, persist)
                            .await
                            .map(|c| Arc::new(c) as _)
                    }
                };
                (index, conn)
            });
        }
        let mut opened = Vec::new();
        let mut errors = Vec::new();
        while let Some(joined) = set.join_next().await {
            match joined {
                Ok((index, Ok(conn))) => opened.push((index, conn)),
                Ok((index, Err(err))) => errors.push((index, err)),
                Err(join) => tracing::error!(%join, "connection task panicked"),
            }
        }
        opened.sort_by_key(|(i, _)| *i);
        errors.sort_by_key(|(i, _)| *i);
        let pool = Pool {
            connections: opened.into_iter().map(|(_, c)| c).collect(),
            limit: Arc::new(Semaphore::new(permits(options.concurrency, usize::MAX))),
        };
        (pool, errors.into_iter().map(|(_, e)| e).collect())
    }

    fn empty(options: &PoolOptions) -> Pool {
        Pool {
            connections: Vec::new(),
            limit: Arc::new(Semaphore::new(permits(options.concurrency, 1))),
        }
    }

    /// The connected hosts, in inventory order.
    pub fn connections(&self) -> &[Arc<dyn super::Connector>] {
        &self.connections
    }

    /// Runs `work` for every connected host with bounded concurrency; results come back
    /// in inventory order, labelled with the host name.
    pub async fn for_each<F, Fut, T>(&self, work: F) -> Vec<(String, T)>
    where
        F: Fn(Arc<dyn super::Connector>) -> Fut,
        Fut: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let mut set = JoinSet::new();
        for (index, conn) in self.connections.iter().enumerate() {
            let name = conn.target().name.clone();
            let limit = self.limit.clone();
            let fut = work(conn.clone());
            set.spawn(async move {
                let _permit = limit.acquire_owned().await;
                (index, name, fut.await)
            });
        }
        let mut results = Vec::with_capacity(self.connections.len());
        while let Some(joined) = set.join_next().await {
            match joined {
                Ok(done) => results.push(done),
                Err(join) => tracing::error!(%join, "host task panicked"),
            }
        }
        results.sort_by_key(|(i, _, _)| *i);
        results.into_iter().map(|(_, n, t)| (n, t)).collect()
    }

    /// Closes every master connection.
    pub async fn close(self) {
        let mut set = JoinSet::new();
        for conn in self.connections {
            set.spawn(conn.close());
        }
        while set.join_next().await.is_some() {}
    }
}

fn permits(concurrency: Option<usize>, hosts: usize) -> usize {
    concurrency
        .unwrap_or(hosts)
        .clamp(1, Semaphore::MAX_PERMITS)
}

/// The whole chain of an openssh error as one line (ssh's own words are in the source).
fn error_text(err: &openssh::Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Writes the ssh config for a target with its own options: those options for its address
/// only (so a jump host reached with `-F` does not loop through itself), then the user's and
/// the system's config as usual. Returns the file's path (mode 0600, in the 0700 control dir).
fn write_config(target: &Target, control_dir: &Path) -> std::io::Result<PathBuf> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut text = format!("Host {}\n", target.address);
    text.push_str(&super::keepalive::config_line());
    for (key, value) in &target.ssh_options {
        if key.contains(char::is_whitespace) || value.contains('\n') {
            continue;
        }
        text.push_str(&format!("  {key} {value}\n"));
    }
    text.push_str("Match all\nInclude ~/.ssh/config\nInclude /etc/ssh/ssh_config\n");
    let name = format!("config-{}", persist::record_name(target));
    let path = control_dir.join(&name);
    // A temporary name of its own per call: with `with_extension` the hosts of one subnet
    // (addresses contain dots) shared one file and raced.
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let temp = control_dir.join(format!("{name}.tmp-{}-{n}", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temp)?;
    file.write_all(text.as_bytes())?;
    std::fs::rename(&temp, &path)?;
    Ok(path)
}

/// Creates (mode 0700) and returns the directory for ssh control sockets.
fn control_dir(configured: Option<&Path>) -> Result<PathBuf, String> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let dir = match configured {
        Some(dir) => dir.to_path_buf(),
        None => match std::env::var_os("XDG_RUNTIME_DIR") {
            Some(run) => PathBuf::from(run).join("kprov"),
            None => PathBuf::from(format!("/tmp/kprov-{}", current_uid())),
        },
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|e| format!("cannot create control directory {}: {e}", dir.display()))?;
    let meta = std::fs::metadata(&dir)
        .map_err(|e| format!("cannot read control directory {}: {e}", dir.display()))?;
    if meta.permissions().mode() & 0o077 != 0 {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| format!("cannot restrict {}: {e}", dir.display()))?;
    }
    Ok(dir)
}

pub(super) fn current_uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    // The owner of /proc/self is our real uid; avoids a libc dependency for one call.
    std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_of_one_subnet_written_at_once_do_not_race() {
        let dir = tempfile::tempdir().unwrap();
        let targets: Vec<Target> = (10..16)
            .map(|i| {
                let mut t = Target::new(format!("h{i}"), format!("172.30.1.{i}"));
                t.ssh_options = vec![("ProxyJump".into(), "root@172.30.1.9".into())];
                t
            })
            .collect();
        std::thread::scope(|scope| {
            for _ in 0..4 {
                for t in &targets {
                    let dir = dir.path();
                    scope.spawn(move || write_config(t, dir).unwrap());
                }
            }
        });
        for t in &targets {
            let text = std::fs::read_to_string(write_config(t, dir.path()).unwrap()).unwrap();
            assert!(text.starts_with(&format!("Host {}\n", t.address)), "{text}");
        }
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".tmp"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
}
