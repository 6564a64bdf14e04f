//! WebSocket channel protocols (`channel.k8s.io` family): every message starts
//! with its channel number (a byte, or an ASCII digit before base64 text with
//! the `base64.` variants); `v5.channel.k8s.io` adds channel 255, whose
//! message `[255, n]` closes channel `n`.

use super::Activity;
use futures_util::{SinkExt, StreamExt};
use sha1::{Digest, Sha1};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// Exec/attach subprotocols, most preferred first.
pub const EXEC_PROTOCOLS: &[&str] = &[
    "v5.channel.k8s.io",
    "v4.channel.k8s.io",
    "v4.base64.channel.k8s.io",
    "v3.channel.k8s.io",
    "v3.base64.channel.k8s.io",
    "v2.channel.k8s.io",
    "v2.base64.channel.k8s.io",
    "channel.k8s.io",
    "base64.channel.k8s.io",
];

/// Port-forward subprotocols.
pub const PORTFORWARD_PROTOCOLS: &[&str] = &[
    "v4.channel.k8s.io",
    "v4.base64.channel.k8s.io",
    "channel.k8s.io",
    "base64.channel.k8s.io",
];

/// The channel whose messages close another channel (v5).
const CLOSE_CHANNEL: u8 = 255;

/// `Sec-WebSocket-Accept` for a client key (RFC 6455 section 4.2.2).
pub fn accept_key(key: &str) -> String {
    use base64::Engine;
    let mut h = Sha1::new();
    h.update(key.trim().as_bytes());
    h.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64::engine::general_purpose::STANDARD.encode(h.finalize())
}

/// The protocol version a subprotocol name implies (1 for the unversioned ones).
pub fn version_of(protocol: &str) -> u8 {
    protocol
        .strip_prefix('v')
        .and_then(|r| r.split('.').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(1)
}

enum Cmd {
    Data(u8, Vec<u8>),
    Close(u8),
    Finish,
}

/// Sends on the connection's channels (cheap to clone).
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Cmd>,
}

impl Writer {
    /// Sends `data` on channel `ch`; false once the connection is gone.
    pub async fn data(&self, ch: u8, data: Vec<u8>) -> bool {
        self.tx.send(Cmd::Data(ch, data)).await.is_ok()
    }

    /// Closes channel `ch` (a no-op before v5).
    pub async fn close(&self, ch: u8) {
        let _ = self.tx.send(Cmd::Close(ch)).await;
    }

    /// Sends a normal close and ends the connection.
    pub async fn finish(&self) {
        let _ = self.tx.send(Cmd::Finish).await;
    }
}

/// A running WebSocket session; dropping it stops the reader.
pub struct Session {
    pub writer: Writer,
    pub closed: watch::Receiver<bool>,
    reader: JoinHandle<()>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl Session {
    /// Starts on an upgraded socket. Messages for a channel in `inputs` go to its
    /// sender (dropped when the client closes that channel); others are ignored.
    pub async fn start(
        sock: TcpStream,
        protocol: &str,
        inputs: HashMap<u8, mpsc::Sender<Vec<u8>>>,
        activity: Arc<Activity>,
        closed: watch::Sender<bool>,
    ) -> Self {
        let ws = WebSocketStream::from_raw_socket(sock, Role::Server, None).await;
        let (sink, stream) = ws.split();
        let base64 = protocol.contains("base64");
        let v5 = version_of(protocol) >= 5;
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(write_loop(sink, rx, base64, v5, activity.clone()));
        let closed_rx = closed.subscribe();
        let reader = tokio::spawn(read_loop(stream, inputs, base64, v5, activity, closed));
        Self {
            writer: Writer { tx },
            closed: closed_rx,
            reader,
        }
    }
}

type Sink = futures_util::stream::SplitSink<WebSocketStream<TcpStream>, Message>;
type Source = futures_util::stream::SplitStream<WebSocketStream<TcpStream>>;

async fn write_loop(
    mut sink: Sink,
    mut rx: mpsc::Receiver<Cmd>,
    base64: bool,
    v5: bool,
    activity: Arc<Activity>,
) {
    use base64::Engine;
    let encode = |ch: u8, data: &[u8]| {
        if base64 {
            let mut s = String::with_capacity(1 + data.len() * 4 / 3 + 4);
            s.push((b'0' + ch) as char);
            s.push_str(&base64::engine::general_purpose::STANDARD.encode(data));
            Message::text(s)
        } else {
            let mut v = Vec::with_capacity(1 + data.len());
            v.push(ch);
            v.extend_from_slice(data);
            Message::binary(v)
        }
    };
    while let Some(cmd) = rx.recv().await {
        let msg = match cmd {
            Cmd::Data(ch, data) => encode(ch, &data),
            Cmd::Close(ch) if v5 => Message::binary(vec![CLOSE_CHANNEL, ch]),
            Cmd::Close(_) => continue,
            Cmd::Finish => {
                let _ = sink
                    .send(Message::Close(Some(CloseFrame {
                        code: tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode::Normal,
                        reason: "".into(),
                    })))
                    .await;
                break;
            }
        };
        if sink.send(msg).await.is_err() {
            break;
        }
        activity.touch();
    }
    let _ = sink.close().await;
}

async fn read_loop(
    mut stream: Source,
    mut inputs: HashMap<u8, mpsc::Sender<Vec<u8>>>,
    base64: bool,
    v5: bool,
    activity: Arc<Activity>,
    closed: watch::Sender<bool>,
) {
    use base64::Engine;
    while let Some(Ok(msg)) = stream.next().await {
        activity.touch();
        let (ch, data) = match msg {
            Message::Binary(b) if !b.is_empty() => (b[0], b[1..].to_vec()),
            Message::Text(t) if base64 && !t.is_empty() => {
                let b = t.as_bytes();
                let Ok(data) = base64::engine::general_purpose::STANDARD.decode(&b[1..]) else {
                    continue;
                };
                (b[0].wrapping_sub(b'0'), data)
            }
            Message::Close(_) => break,
            _ => continue,
        };
        if v5 && ch == CLOSE_CHANNEL {
            if let Some(target) = data.first() {
                inputs.remove(target);
            }
            continue;
        }
        if data.is_empty() {
            continue;
        }
        if let Some(tx) = inputs.get(&ch) {
            if tx.send(data).await.is_err() {
                inputs.remove(&ch);
            }
        }
    }
    inputs.clear();
    let _ = closed.send(true);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_key_matches_rfc6455_example() {
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn versions_from_names() {
        assert_eq!(version_of("v5.channel.k8s.io"), 5);
        assert_eq!(version_of("v4.base64.channel.k8s.io"), 4);
        assert_eq!(version_of("channel.k8s.io"), 1);
        assert_eq!(version_of("base64.channel.k8s.io"), 1);
    }
}
