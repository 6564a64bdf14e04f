//! Port-forward: TCP connections to `localhost:<port>` inside the pod's network
//! namespace, made from a short-lived thread that enters the namespace (the
//! socket keeps the namespace it was created in; the runtime's own threads never
//! change namespace), or in the host's for host-network pods.
//!
//! SPDY (`portforward.k8s.io`): the client opens an `error` and a `data` stream
//! per connection, paired by their `requestID` header, each with a `port`.
//! WebSocket: the ports come from the query; channel 2i carries port i's data,
//! 2i+1 its errors, and each channel's first server message is the port
//! (16 bits, little endian).

use super::spdy::{self, IncomingStream};
use super::ws;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

/// The SPDY subprotocol.
pub const SPDY_PROTOCOL: &str = "portforward.k8s.io";

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

fn connect_here(port: u16) -> std::io::Result<std::net::TcpStream> {
    let v4 = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    match std::net::TcpStream::connect_timeout(&v4, CONNECT_TIMEOUT) {
        Ok(s) => Ok(s),
        Err(e4) => {
            let v6 = std::net::SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port));
            std::net::TcpStream::connect_timeout(&v6, CONNECT_TIMEOUT).map_err(|_| e4)
        }
    }
}

/// Connects to `localhost:port` in network namespace `netns` (the host's if `None`).
pub async fn connect(netns: Option<&Path>, port: u16) -> std::io::Result<TcpStream> {
    let netns: Option<PathBuf> = netns.map(Path::to_path_buf);
    let (tx, rx) = oneshot::channel();
    std::thread::Builder::new()
        .name("kprov-portfwd".into())
        .spawn(move || {
            let r = (|| -> std::io::Result<std::net::TcpStream> {
                if let Some(ns) = &netns {
                    let f = std::fs::File::open(ns)?;
                    nix::sched::setns(&f, nix::sched::CloneFlags::CLONE_NEWNET)?;
                }
                let s = connect_here(port)?;
                s.set_nonblocking(true)?;
                Ok(s)
            })();
            let _ = tx.send(r);
        })?;
    let s = rx
        .await
        .map_err(|_| std::io::Error::other("port-forward thread died"))??;
    TcpStream::from_std(s)
}

fn parse_port(p: &str) -> Result<u16, String> {
    match p.parse::<u16>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("invalid port {p:?}")),
    }
}

/// Copies between the client (`input` in, `send` out) and the socket.
async fn splice<F, Fut>(sock: TcpStream, mut input: mpsc::Receiver<Vec<u8>>, send: F)
where
    F: Fn(Vec<u8>) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let (mut r, mut w) = sock.into_split();
    let up = async move {
        while let Some(d) = input.recv().await {
            if w.write_all(&d).await.is_err() {
                return;
            }
        }
        let _ = w.shutdown().await;
    };
    let down = async {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match r.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if !send(buf[..n].to_vec()).await {
                        break;
                    }
                }
            }
        }
    };
    // The connection is done when the pod side closes; the client may keep
    // its side open.
    tokio::select! {
        _ = down => {}
        _ = async { up.await; std::future::pending::<()>().await } => {}
    }
}

/// One forwarded connection on SPDY: connects, copies, reports errors.
async fn spdy_pair(
    w: spdy::Writer,
    netns: Option<PathBuf>,
    error: IncomingStream,
    data: IncomingStream,
) {
    let port = match data.header("port").map(parse_port) {
        Some(Ok(p)) => p,
        Some(Err(e)) => {
            let _ = w.data(error.id, e.into_bytes()).await;
            w.fin(error.id).await;
            w.reset(data.id, spdy::frame::RST_CANCEL).await;
            return;
        }
        None => {
            let _ = w.data(error.id, b"port header missing".to_vec()).await;
            w.fin(error.id).await;
            return;
        }
    };
    match connect(netns.as_deref(), port).await {
        Ok(sock) => {
            let id = data.id;
            splice(sock, data.data, |d| w.data(id, d)).await;
            w.fin(id).await;
        }
        Err(e) => {
            let msg = format!("error forwarding port {port} to pod: {e}");
            let _ = w.data(error.id, msg.into_bytes()).await;
            w.reset(data.id, spdy::frame::RST_CANCEL).await;
        }
    }
    w.fin(error.id).await;
}

/// Serves a SPDY port-forward session until the client goes away.
pub async fn serve_spdy(mut session: spdy::Session, netns: Option<PathBuf>) {
    let mut waiting: HashMap<String, (Option<IncomingStream>, Option<IncomingStream>)> =
        HashMap::new();
    let mut closed = session.closed.clone();
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        let s = tokio::select! {
            s = session.streams.recv() => match s { Some(s) => s, None => break },
            _ = super::until_closed(&mut closed) => break,
        };
        let kind = s.header("streamtype").unwrap_or("").to_ascii_lowercase();
        // Old clients send no requestID: error and data streams then come in
        // order, the data stream two ids after its error stream.
        let req = match s.header("requestid") {
            Some(r) => r.to_string(),
            None if kind == "data" => s.id.saturating_sub(2).to_string(),
            None => s.id.to_string(),
        };
        let slot = waiting.entry(req.clone()).or_default();
        match kind.as_str() {
            "error" => slot.0 = Some(s),
            "data" => slot.1 = Some(s),
            _ => {
                session
                    .writer
                    .reset(s.id, spdy::frame::RST_PROTOCOL_ERROR)
                    .await;
                continue;
            }
        }
        if let (Some(_), Some(_)) = (&slot.0, &slot.1) {
            if let Some((Some(e), Some(d))) = waiting.remove(&req) {
                tasks.spawn(spdy_pair(session.writer.clone(), netns.clone(), e, d));
            }
        }
        while tasks.try_join_next().is_some() {}
    }
    tasks.abort_all();
    session.writer.finish().await;
}

/// Serves a WebSocket port-forward session for `ports`.
pub async fn serve_ws(
    session: ws::Session,
    inputs: Vec<mpsc::Receiver<Vec<u8>>>,
    ports: Vec<u16>,
    netns: Option<PathBuf>,
) {
    let w = session.writer.clone();
    let mut closed = session.closed.clone();
    let mut conns = Vec::new();
    for (i, (port, input)) in ports.iter().copied().zip(inputs).enumerate() {
        let (data_ch, err_ch) = ((2 * i) as u8, (2 * i + 1) as u8);
        let w = w.clone();
        let netns = netns.clone();
        conns.push(async move {
            w.data(data_ch, port.to_le_bytes().to_vec()).await;
            w.data(err_ch, port.to_le_bytes().to_vec()).await;
            match connect(netns.as_deref(), port).await {
                Ok(sock) => splice(sock, input, |d| w.data(data_ch, d)).await,
                Err(e) => {
                    let msg = format!("error forwarding port {port} to pod: {e}");
                    w.data(err_ch, msg.into_bytes()).await;
                }
            }
        });
    }
    tokio::select! {
        _ = futures_util::future::join_all(conns) => {}
        _ = super::until_closed(&mut closed) => {}
    }
    w.finish().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn connects_in_the_hosts_namespace_without_one() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let (a, b) = tokio::join!(connect(None, port), l.accept());
        a.unwrap();
        b.unwrap();
        assert!(parse_port("0").is_err() && parse_port("x").is_err());
        assert_eq!(parse_port("8080"), Ok(8080));
    }
}
