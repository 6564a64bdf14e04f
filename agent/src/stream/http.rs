//! The HTTP/1.1 part of a streaming request: reading the request head, plain
//! error responses, and the `101 Switching Protocols` answers.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Longest request head accepted.
const MAX_HEAD: usize = 16 * 1024;

/// A parsed request head.
#[derive(Debug, Clone)]
pub struct Request {
    /// GET (WebSocket) or POST (SPDY, as kubectl sends it).
    pub method: String,
    /// The path without the query.
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
}

impl Request {
    /// Every value of header `name`, comma-separated lists split.
    pub fn values(&self, name: &str) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| v.split(','))
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .collect()
    }

    /// The first value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether `Upgrade` names `proto` (and `Connection` says upgrade).
    pub fn upgrades_to(&self, proto: &str) -> bool {
        self.values("connection")
            .iter()
            .any(|v| v.eq_ignore_ascii_case("upgrade"))
            && self
                .values("upgrade")
                .iter()
                .any(|v| v.eq_ignore_ascii_case(proto))
    }

    /// Every value of query parameter `name`.
    pub fn query_values(&self, name: &str) -> Vec<String> {
        self.query
            .split('&')
            .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
            .filter(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
            .collect()
    }
}

/// Reads the request head byte by byte up to and including the blank line, so
/// nothing after it (the client's first frames) is consumed.
pub async fn read_request<R: AsyncRead + Unpin>(r: &mut R) -> std::io::Result<Request> {
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
    let mut buf = Vec::with_capacity(1024);
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if buf.len() >= MAX_HEAD {
            return Err(bad("request head too large"));
        }
        if r.read(&mut byte).await? == 0 {
            return Err(bad("connection closed in the request head"));
        }
        buf.push(byte[0]);
    }
    let mut hdrs = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut hdrs);
    match req.parse(&buf) {
        Ok(httparse::Status::Complete(_)) => {}
        _ => return Err(bad("malformed request head")),
    }
    let target = req.path.unwrap_or("/");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    Ok(Request {
        method: req.method.unwrap_or("").to_string(),
        path: path.to_string(),
        query: query.to_string(),
        headers: req
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_string(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect(),
    })
}

/// Writes a short plain-text response and leaves the connection to be closed.
pub async fn respond<W: AsyncWrite + Unpin>(
    w: &mut W,
    code: u16,
    reason: &str,
    extra: &[(&str, String)],
    body: &str,
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len() + 1
    );
    for (k, v) in extra {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    head.push_str(body);
    head.push('\n');
    w.write_all(head.as_bytes()).await?;
    w.flush().await
}

/// Writes `101 Switching Protocols` with `headers`.
pub async fn switching<W: AsyncWrite + Unpin>(
    w: &mut W,
    headers: &[(&str, String)],
) -> std::io::Result<()> {
    let mut head = String::from("HTTP/1.1 101 Switching Protocols\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    w.write_all(head.as_bytes()).await?;
    w.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn parses_head_headers_and_query() {
        let raw = b"GET /portforward/abc?port=80&port=8080 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\nX-Stream-Protocol-Version: v3.channel.k8s.io, channel.k8s.io\r\n\r\nrest";
        let mut r = &raw[..];
        let req = read_request(&mut r).await.unwrap();
        assert_eq!(req.path, "/portforward/abc");
        assert_eq!(req.query_values("port"), vec!["80", "8080"]);
        assert!(req.upgrades_to("spdy/3.1"));
        assert!(!req.upgrades_to("websocket"));
        assert_eq!(
            req.values("x-stream-protocol-version"),
            vec!["v4.channel.k8s.io", "v3.channel.k8s.io", "channel.k8s.io"]
        );
        assert_eq!(r, b"rest");
    }

    #[tokio::test]
    async fn truncated_or_huge_heads_are_errors() {
        let mut r = &b"GET / HTTP/1.1\r\nHost: x\r\n"[..];
        assert!(read_request(&mut r).await.is_err());
        let huge = vec![b'a'; MAX_HEAD + 10];
        let mut r = &huge[..];
        assert!(read_request(&mut r).await.is_err());
    }
}
