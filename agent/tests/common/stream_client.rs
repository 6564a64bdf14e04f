//! A minimal SPDY/3.1 stream client of our own (on the agent's frame codec),
//! for the edge cases the third-party clients cannot provoke: reused and
//! expired tokens, dropped connections, many streams at once.

use kprov_agent::stream::spdy::frame::{self, Frame, HeaderDecoder, HeaderEncoder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What a finished remote command sent back.
#[derive(Debug, Default)]
pub struct Result {
    /// The HTTP status line of the upgrade answer.
    pub http: String,
    pub stdout: String,
    pub stderr: String,
    pub error: String,
}

/// An upgraded connection with exec streams open.
pub struct Exec {
    sock: TcpStream,
    enc: HeaderEncoder,
    pub http: String,
}

/// Sends the upgrade request; returns the socket and the answer's status line.
pub async fn upgrade(url: &str, protocol: &str) -> (TcpStream, String) {
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, path) = rest.split_once('/').unwrap();
    let mut sock = TcpStream::connect(host)
        .await
        .expect("connect to stream server");
    let req = format!(
        "POST /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: {protocol}\r\n\r\n"
    );
    sock.write_all(req.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if sock.read(&mut b).await.unwrap_or(0) == 0 {
            break;
        }
        head.push(b[0]);
    }
    let text = String::from_utf8_lossy(&head).to_string();
    (sock, text.lines().next().unwrap_or("").to_string())
}

impl Exec {
    /// Upgrades and opens error, stdout and stderr (and stdin when `stdin`).
    pub async fn open(url: &str, stdin: bool) -> Self {
        let (sock, http) = upgrade(url, "v4.channel.k8s.io").await;
        let mut e = Self {
            sock,
            enc: HeaderEncoder::default(),
            http,
        };
        if !e.http.contains(" 101 ") {
            return e;
        }
        let mut kinds = vec![(1, "error"), (3, "stdout"), (5, "stderr")];
        if stdin {
            kinds.push((7, "stdin"));
        }
        for (id, kind) in kinds {
            let f = Frame::SynStream {
                id,
                flags: 0,
                headers: vec![("streamtype".into(), kind.into())],
            };
            let bytes = frame::encode(&f, &mut e.enc);
            e.sock.write_all(&bytes).await.unwrap();
        }
        e
    }

    /// Sends `data` on stdin and closes it.
    pub async fn send_stdin(&mut self, data: &[u8]) {
        let f = Frame::Data {
            id: 7,
            flags: frame::FLAG_FIN,
            data: data.to_vec(),
        };
        let bytes = frame::encode(&f, &mut self.enc);
        self.sock.write_all(&bytes).await.unwrap();
    }

    /// Reads until the server ends the session.
    pub async fn finish(mut self) -> Result {
        let mut r = Result {
            http: self.http.clone(),
            ..Default::default()
        };
        if !r.http.contains(" 101 ") {
            return r;
        }
        let mut dec = HeaderDecoder::default();
        while let Ok(Some(f)) = frame::read_frame(&mut self.sock, &mut dec).await {
            match f {
                Frame::Data { id, data, .. } => {
                    let s = String::from_utf8_lossy(&data);
                    match id {
                        1 => r.error.push_str(&s),
                        3 => r.stdout.push_str(&s),
                        5 => r.stderr.push_str(&s),
                        _ => {}
                    }
                }
                Frame::GoAway { .. } => break,
                _ => {}
            }
        }
        r
    }
}
