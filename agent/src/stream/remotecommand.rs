//! The remote-command protocol shared by exec and attach: which streams a
//! client opens (`streamType` headers on SPDY, channel numbers on WebSocket),
//! terminal resize messages, and the final status on the error stream
//! (`metav1.Status` JSON from v4 on, plain text before).

use super::spdy;
use super::tokens::StdioOpts;
use super::ws;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Exec/attach subprotocols over SPDY, most preferred first.
pub const SPDY_PROTOCOLS: &[&str] = &[
    "v4.channel.k8s.io",
    "v3.channel.k8s.io",
    "v2.channel.k8s.io",
    "channel.k8s.io",
];

/// A terminal size, as the resize stream carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
pub struct TermSize {
    #[serde(rename = "Width")]
    pub width: u16,
    #[serde(rename = "Height")]
    pub height: u16,
}

/// Where one of the server's output streams goes.
#[derive(Clone)]
pub enum Out {
    Spdy { w: spdy::Writer, id: u32 },
    Ws { w: ws::Writer, ch: u8 },
}

impl Out {
    /// Sends bytes; false once the client is gone.
    pub async fn write(&self, data: Vec<u8>) -> bool {
        match self {
            Out::Spdy { w, id } => w.data(*id, data).await,
            Out::Ws { w, ch } => w.data(*ch, data).await,
        }
    }

    /// Closes this stream (SPDY FIN; the v5 close channel on WebSocket).
    pub async fn close(&self) {
        match self {
            Out::Spdy { w, id } => w.fin(*id).await,
            Out::Ws { w, ch } => w.close(*ch).await,
        }
    }
}

/// The streams of one exec or attach session.
pub struct Io {
    /// The client's stdin; ends when the client closes it.
    pub stdin: Option<mpsc::Receiver<Vec<u8>>>,
    pub stdout: Option<Out>,
    pub stderr: Option<Out>,
    pub resize: Option<mpsc::Receiver<TermSize>>,
    pub error: Out,
    /// v4 and later: the error stream carries a Status object.
    pub json_status: bool,
    /// True once the client is gone or the session idled out.
    pub closed: watch::Receiver<bool>,
}

/// How a remote command ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Exited(i32),
    Failed(String),
}

/// The error stream's content for `o` (empty: nothing to send).
pub fn status_bytes(o: &Outcome, json: bool) -> Vec<u8> {
    let (code, message) = match o {
        Outcome::Exited(0) => {
            return if json {
                br#"{"metadata":{},"status":"Success"}"#.to_vec()
            } else {
                Vec::new()
            };
        }
        Outcome::Exited(code) => (
            Some(*code),
            format!("command terminated with non-zero exit code: exit status {code}"),
        ),
        Outcome::Failed(m) => (None, m.clone()),
    };
    if !json {
        return message.into_bytes();
    }
    let v = match code {
        Some(c) => serde_json::json!({
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": c.to_string()}]},
        }),
        None => serde_json::json!({
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": "InternalError",
            "details": {"causes": [{"message": message}]},
            "code": 500,
        }),
    };
    v.to_string().into_bytes()
}

impl Io {
    /// Sends the outcome on the error stream and closes every output stream.
    pub async fn finish(self, o: &Outcome) {
        let bytes = status_bytes(o, self.json_status);
        if !bytes.is_empty() {
            self.error.write(bytes).await;
        }
        for out in [&self.stdout, &self.stderr].into_iter().flatten() {
            out.close().await;
        }
        self.error.close().await;
    }
}

/// Parses consecutive JSON sizes from `data`, keeping an incomplete tail.
fn parse_sizes(buf: &mut Vec<u8>) -> Vec<TermSize> {
    let mut out = Vec::new();
    let mut it = serde_json::Deserializer::from_slice(buf).into_iter::<TermSize>();
    let mut used = 0;
    loop {
        match it.next() {
            Some(Ok(s)) => {
                out.push(s);
                used = it.byte_offset();
            }
            Some(Err(e)) if e.is_eof() => break,
            Some(Err(_)) => {
                // Not a size: drop everything seen so far.
                used = buf.len();
                break;
            }
            None => {
                used = it.byte_offset();
                break;
            }
        }
    }
    buf.drain(..used);
    out
}

/// Turns a raw resize stream into sizes.
pub(super) fn sizes_from(mut raw: mpsc::Receiver<Vec<u8>>) -> mpsc::Receiver<TermSize> {
    let (tx, rx) = mpsc::channel(8);
    tokio::spawn(async move {
        let mut buf = Vec::new();
        while let Some(chunk) = raw.recv().await {
            buf.extend_from_slice(&chunk);
            if buf.len() > 64 * 1024 {
                buf.clear();
            }
            for s in parse_sizes(&mut buf) {
                if tx.send(s).await.is_err() {
                    return;
                }
            }
        }
    });
    rx
}

/// Collects the streams a SPDY client opens for `opts` (kubelet's expected set:
/// error, plus stdin/stdout/stderr as asked, resize with a tty from v3 on).
pub async fn spdy_io(
    session: &mut spdy::Session,
    protocol: &str,
    opts: StdioOpts,
    wait: Duration,
) -> Result<Io, String> {
    let v = match protocol {
        "v4.channel.k8s.io" => 4,
        "v3.channel.k8s.io" => 3,
        "v2.channel.k8s.io" => 2,
        _ => 1,
    };
    let want_stderr = opts.stderr && !opts.tty;
    let want_resize = opts.tty && v >= 3;
    let mut expected = 1 + opts.stdin as usize + opts.stdout as usize;
    expected += want_stderr as usize + want_resize as usize;
    let w = session.writer.clone();
    let mut io = Io {
        stdin: None,
        stdout: None,
        stderr: None,
        resize: None,
        error: Out::Spdy {
            w: w.clone(),
            id: 0,
        },
        json_status: v >= 4,
        closed: session.closed.clone(),
    };
    let mut have_error = false;
    let mut got = 0;
    let deadline = tokio::time::Instant::now() + wait;
    while got < expected {
        let s = match tokio::time::timeout_at(deadline, session.streams.recv()).await {
            Ok(Some(s)) => s,
            Ok(None) => return Err("client closed the connection".into()),
            Err(_) => {
                return Err(format!(
                    "timed out waiting for {expected} streams, got {got}"
                ))
            }
        };
        let kind = s.header("streamtype").unwrap_or("").to_ascii_lowercase();
        tracing::debug!(id = s.id, kind, got, expected, "remote command stream");
        let out = Out::Spdy {
            w: w.clone(),
            id: s.id,
        };
        let counted = match kind.as_str() {
            "error" if !have_error => {
                have_error = true;
                io.error = out;
                true
            }
            "stdin" if opts.stdin && io.stdin.is_none() => {
                io.stdin = Some(s.data);
                true
            }
            "stdout" if opts.stdout && io.stdout.is_none() => {
                io.stdout = Some(out);
                true
            }
            "stderr" if want_stderr && io.stderr.is_none() => {
                io.stderr = Some(out);
                true
            }
            "resize" if want_resize && io.resize.is_none() => {
                io.resize = Some(sizes_from(s.data));
                true
            }
            _ => {
                w.reset(s.id, spdy::frame::RST_PROTOCOL_ERROR).await;
                false
            }
        };
        got += counted as usize;
    }
    Ok(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_match_kubelets() {
        assert_eq!(
            status_bytes(&Outcome::Exited(0), true),
            br#"{"metadata":{},"status":"Success"}"#
        );
        assert!(status_bytes(&Outcome::Exited(0), false).is_empty());
        let v: serde_json::Value =
            serde_json::from_slice(&status_bytes(&Outcome::Exited(3), true)).unwrap();
        assert_eq!(v["status"], "Failure");
        assert_eq!(v["reason"], "NonZeroExitCode");
        assert_eq!(v["details"]["causes"][0]["reason"], "ExitCode");
        assert_eq!(v["details"]["causes"][0]["message"], "3");
        let t = String::from_utf8(status_bytes(&Outcome::Exited(3), false)).unwrap();
        assert!(t.contains("non-zero exit code"), "{t}");
        let v: serde_json::Value =
            serde_json::from_slice(&status_bytes(&Outcome::Failed("boom".into()), true)).unwrap();
        assert_eq!(v["status"], "Failure");
        assert_eq!(v["message"], "boom");
    }

    #[test]
    fn sizes_parse_across_chunks() {
        let mut buf = br#"{"Width":80,"Height":24}{"Width":1"#.to_vec();
        assert_eq!(
            parse_sizes(&mut buf),
            vec![TermSize {
                width: 80,
                height: 24
            }]
        );
        buf.extend_from_slice(br#"00,"Height":50}"#);
        assert_eq!(
            parse_sizes(&mut buf),
            vec![TermSize {
                width: 100,
                height: 50
            }]
        );
        assert!(buf.is_empty());
        let mut junk = b"nonsense".to_vec();
        assert!(parse_sizes(&mut junk).is_empty());
        assert!(junk.is_empty());
    }
}
