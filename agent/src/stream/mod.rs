//! The streaming server behind `Exec`, `Attach` and `PortForward`: the CRI
//! calls store the request under a single-use token and answer a URL on this
//! server; kubelet (or crictl) then connects there and upgrades to SPDY/3.1 or
//! WebSocket. Each connection runs on its own task, never in a gRPC handler.

mod attach;
mod exec;
mod http;
mod portforward;
mod remotecommand;
pub mod spdy;
mod tokens;
mod ws;

pub use attach::NO_TTY;
pub use tokens::{Pending, StdioOpts};
pub use ws::accept_key;

use crate::config::StreamConfig;
use crate::service::Agent;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use tokens::Tokens;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, Semaphore};

/// When a session last moved a byte.
pub struct Activity {
    start: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Self {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    /// Records traffic now.
    pub fn touch(&self) {
        let ms = self.start.elapsed().as_millis() as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn idle(&self) -> Duration {
        let now = self.start.elapsed().as_millis() as u64;
        Duration::from_millis(now.saturating_sub(self.last_ms.load(Ordering::Relaxed)))
    }
}

/// The running streaming server.
pub struct StreamServer {
    addr: SocketAddr,
    tokens: Tokens,
    streams: Arc<Semaphore>,
    cfg: StreamConfig,
    agent: Weak<Agent>,
}

impl StreamServer {
    /// Binds the configured address and starts accepting connections.
    pub async fn start(agent: &Arc<Agent>) -> anyhow::Result<Arc<Self>> {
        let cfg = agent.cfg.stream.clone();
        let listener = TcpListener::bind(&cfg.address)
            .await
            .map_err(|e| anyhow::anyhow!("binding the stream server to {}: {e}", cfg.address))?;
        let mut addr = listener.local_addr()?;
        if addr.ip().is_unspecified() {
            // kubelet runs on this node: it reaches a wildcard bind on loopback.
            addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        tracing::info!(%addr, "serving streams");
        let server = Arc::new(Self {
            addr,
            tokens: Tokens::new(Duration::from_secs(cfg.token_ttl_secs)),
            streams: Arc::new(Semaphore::new(cfg.max_concurrent)),
            cfg,
            agent: Arc::downgrade(agent),
        });
        let s = server.clone();
        tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((sock, _)) => {
                        let s = s.clone();
                        tokio::spawn(async move { s.handle(sock).await });
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "stream server accept");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        });
        Ok(server)
    }

    /// The address URLs point at.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stores `p` and returns the URL the client must connect to.
    pub fn url_for(&self, p: Pending) -> String {
        let kind = match p {
            Pending::Exec { .. } => "exec",
            Pending::Attach { .. } => "attach",
            Pending::PortForward { .. } => "portforward",
        };
        format!("http://{}/{kind}/{}", self.addr, self.tokens.insert(p))
    }

    async fn handle(self: Arc<Self>, mut sock: TcpStream) {
        let _ = sock.set_nodelay(true);
        let req = match tokio::time::timeout(Duration::from_secs(10), http::read_request(&mut sock))
            .await
        {
            Ok(Ok(r)) => r,
            _ => return,
        };
        if req.method != "GET" && req.method != "POST" {
            let _ =
                http::respond(&mut sock, 405, "Method Not Allowed", &[], "use GET or POST").await;
            return;
        }
        let mut parts = req.path.trim_start_matches('/').splitn(2, '/');
        let (kind, token) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        if !matches!(kind, "exec" | "attach" | "portforward") || token.is_empty() {
            {
                let _ = http::respond(&mut sock, 404, "Not Found", &[], "unknown path").await;
                return;
            }
        }
        let Some(pending) = self.tokens.take(token) else {
            {
                let _ = http::respond(
                    &mut sock,
                    404,
                    "Not Found",
                    &[],
                    "token not found or expired",
                )
                .await;
                return;
            }
        };
        let matches = matches!(
            (&pending, kind),
            (Pending::Exec { .. }, "exec")
                | (Pending::Attach { .. }, "attach")
                | (Pending::PortForward { .. }, "portforward")
        );
        if !matches {
            {
                let _ = http::respond(
                    &mut sock,
                    400,
                    "Bad Request",
                    &[],
                    &format!("token is not for {kind}"),
                )
                .await;
                return;
            }
        }
        let Ok(_permit) = self.streams.clone().try_acquire_owned() else {
            {
                let _ = http::respond(
                    &mut sock,
                    429,
                    "Too Many Requests",
                    &[],
                    &format!("more than {} streams at once", self.cfg.max_concurrent),
                )
                .await;
                return;
            }
        };
        let Some(agent) = self.agent.upgrade() else {
            return;
        };
        let websocket = req.upgrades_to("websocket");
        if !websocket && !req.upgrades_to("spdy/3.1") {
            {
                let _ = http::respond(
                    &mut sock,
                    400,
                    "Bad Request",
                    &[],
                    "unable to upgrade: missing upgrade headers in request",
                )
                .await;
                return;
            }
        }
        let activity = Arc::new(Activity::new());
        let (closed, _) = watch::channel(false);
        let session = Conn {
            server: &self,
            agent: &agent,
            req: &req,
            pending,
            activity: activity.clone(),
            closed: closed.clone(),
        };
        let work = session.run(sock, websocket);
        tokio::pin!(work);
        let idle = Duration::from_secs(self.cfg.idle_timeout_secs.max(1));
        tokio::select! {
            _ = &mut work => return,
            _ = watch_idle(&activity, idle) => {}
        }
        tracing::info!(kind, "stream idle for {}s: closing", idle.as_secs());
        let _ = closed.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(15), work).await;
    }
}

/// Resolves once `closed` turns true (or its sender is gone).
pub(crate) async fn until_closed(closed: &mut watch::Receiver<bool>) {
    let _ = closed.wait_for(|c| *c).await.map(|_| ());
}

/// Resolves once `a` has seen no traffic for `idle`.
async fn watch_idle(a: &Activity, idle: Duration) {
    let tick = (idle / 4).clamp(Duration::from_millis(50), Duration::from_secs(30));
    loop {
        tokio::time::sleep(tick).await;
        if a.idle() >= idle {
            return;
        }
    }
}

/// One upgraded connection.
struct Conn<'a> {
    server: &'a StreamServer,
    agent: &'a Arc<Agent>,
    req: &'a http::Request,
    pending: Pending,
    activity: Arc<Activity>,
    closed: watch::Sender<bool>,
}

/// The first of the client's protocols that the server supports.
fn negotiate(client: &[String], server: &[&str]) -> Option<String> {
    client
        .iter()
        .find(|c| server.contains(&c.as_str()))
        .cloned()
}

impl Conn<'_> {
    async fn run(self, mut sock: TcpStream, websocket: bool) {
        let server_protocols: &[&str] = match (&self.pending, websocket) {
            (Pending::PortForward { .. }, false) => &[portforward::SPDY_PROTOCOL],
            (Pending::PortForward { .. }, true) => ws::PORTFORWARD_PROTOCOLS,
            (_, false) => remotecommand::SPDY_PROTOCOLS,
            (_, true) => ws::EXEC_PROTOCOLS,
        };
        let header = if websocket {
            "sec-websocket-protocol"
        } else {
            "x-stream-protocol-version"
        };
        let client = self.req.values(header);
        let protocol = if client.is_empty() {
            // Legacy clients name no protocol: the oldest one.
            server_protocols[server_protocols.len() - 1].to_string()
        } else if let Some(p) = negotiate(&client, server_protocols) {
            p
        } else {
            let body = format!(
                "unable to upgrade: unable to negotiate protocol: client supports {client:?}, server supports {server_protocols:?}"
            );
            let accepted = (
                "X-Accepted-Stream-Protocol-Versions",
                server_protocols.join(", "),
            );
            let _ = http::respond(&mut sock, 403, "Forbidden", &[accepted], &body).await;
            return;
        };
        let upgraded = if websocket {
            let Some(key) = self.req.header("sec-websocket-key") else {
                let _ = http::respond(
                    &mut sock,
                    400,
                    "Bad Request",
                    &[],
                    "Sec-WebSocket-Key missing",
                )
                .await;
                return;
            };
            let mut h = vec![
                ("Upgrade", "websocket".to_string()),
                ("Connection", "Upgrade".to_string()),
                ("Sec-WebSocket-Accept", ws::accept_key(key)),
            ];
            if !client.is_empty() {
                h.push(("Sec-WebSocket-Protocol", protocol.clone()));
            }
            http::switching(&mut sock, &h).await
        } else {
            http::switching(
                &mut sock,
                &[
                    ("Connection", "Upgrade".to_string()),
                    ("Upgrade", "SPDY/3.1".to_string()),
                    ("X-Stream-Protocol-Version", protocol.clone()),
                ],
            )
            .await
        };
        if upgraded.is_err() {
            return;
        }
        self.activity.touch();
        if websocket {
            self.run_ws(sock, &protocol).await
        } else {
            self.run_spdy(sock, &protocol).await
        }
    }

    async fn run_spdy(self, sock: TcpStream, protocol: &str) {
        let (r, w) = sock.into_split();
        let mut session = spdy::Session::start(r, w, self.activity.clone(), self.closed.clone());
        match &self.pending {
            Pending::PortForward { sandbox_id } => match self.agent.stream_netns(sandbox_id) {
                Ok(netns) => portforward::serve_spdy(session, netns).await,
                Err(e) => {
                    tracing::info!(error = %e, "port-forward refused");
                    session.writer.finish().await;
                }
            },
            Pending::Exec { opts, .. } | Pending::Attach { opts, .. } => {
                let wait = Duration::from_secs(self.server.cfg.stream_creation_timeout_secs);
                match remotecommand::spdy_io(&mut session, protocol, *opts, wait).await {
                    Ok(io) => self.run_command(io).await,
                    Err(e) => tracing::info!(error = %e, "remote command: streams not opened"),
                }
                session.writer.finish().await;
            }
        }
    }

    async fn run_ws(self, sock: TcpStream, protocol: &str) {
        match &self.pending {
            Pending::PortForward { sandbox_id } => {
                let ports: Result<Vec<u16>, _> = self
                    .req
                    .query_values("port")
                    .iter()
                    .map(|p| p.parse::<u16>())
                    .collect();
                let mut inputs = HashMap::new();
                let mut rxs = Vec::new();
                let ports = ports.unwrap_or_default();
                for i in 0..ports.len() {
                    let (tx, rx) = mpsc::channel(64);
                    inputs.insert((2 * i) as u8, tx);
                    rxs.push(rx);
                }
                let session = ws::Session::start(
                    sock,
                    protocol,
                    inputs,
                    self.activity.clone(),
                    self.closed.clone(),
                )
                .await;
                match self.agent.stream_netns(sandbox_id) {
                    Ok(netns) if !ports.is_empty() => {
                        portforward::serve_ws(session, rxs, ports, netns).await
                    }
                    _ => session.writer.finish().await,
                }
            }
            Pending::Exec { opts, .. } | Pending::Attach { opts, .. } => {
                let opts = *opts;
                let (in_tx, in_rx) = mpsc::channel(64);
                let (rs_tx, rs_rx) = mpsc::channel(8);
                let mut inputs = HashMap::new();
                if opts.stdin {
                    inputs.insert(0u8, in_tx);
                }
                if opts.tty {
                    inputs.insert(4u8, rs_tx);
                }
                let session = ws::Session::start(
                    sock,
                    protocol,
                    inputs,
                    self.activity.clone(),
                    self.closed.clone(),
                )
                .await;
                let w = session.writer.clone();
                let out = |ch: u8| remotecommand::Out::Ws { w: w.clone(), ch };
                let io = remotecommand::Io {
                    stdin: opts.stdin.then_some(in_rx),
                    stdout: opts.stdout.then(|| out(1)),
                    stderr: (opts.stderr && !opts.tty).then(|| out(2)),
                    resize: opts.tty.then(|| remotecommand::sizes_from(rs_rx)),
                    error: out(3),
                    json_status: ws::version_of(protocol) >= 4,
                    closed: session.closed.clone(),
                };
                // Tell the client the streams are up: an empty message on the
                // lowest channel it reads.
                let first = if opts.stdout {
                    1
                } else if opts.stderr && !opts.tty {
                    2
                } else {
                    3
                };
                w.data(first, Vec::new()).await;
                self.run_command(io).await;
                w.finish().await;
                drop(session);
            }
        }
    }

    /// Runs the exec or attach on `io` and sends the outcome.
    async fn run_command(&self, io: remotecommand::Io) {
        match &self.pending {
            Pending::Exec {
                container_id,
                cmd,
                opts,
            } => {
                let target = match self.agent.stream_exec_target(container_id) {
                    Ok(t) => t,
                    Err(e) => {
                        return io
                            .finish(&remotecommand::Outcome::Failed(e.to_string()))
                            .await
                    }
                };
                let (outcome, io) = exec::run(
                    &target.runc,
                    container_id,
                    cmd,
                    opts.tty,
                    &target.pid_file,
                    io,
                )
                .await;
                io.finish(&outcome).await;
            }
            Pending::Attach { container_id, opts } => {
                let mut io = io;
                let outcome = match self.agent.stream_attach_target(container_id) {
                    Ok(t) => attach::run(&t, opts.tty, &mut io).await,
                    Err(e) => remotecommand::Outcome::Failed(e.to_string()),
                };
                io.finish(&outcome).await;
            }
            Pending::PortForward { .. } => {}
        }
    }
}
