//! A server-side SPDY/3.1 session over an upgraded connection: a reader task
//! that turns the client's SYN_STREAMs into [`IncomingStream`]s (each replied to
//! at once, data delivered in order, FIN/RST closing it), and a writer task that
//! serialises every outgoing frame. Like kubelet's and containerd's servers,
//! outgoing data is not held to the peer's flow-control window (kubectl's
//! client never opens it); received data is acknowledged with WINDOW_UPDATE so
//! clients that do keep windows go on sending.

use super::frame::{self, Frame, HeaderDecoder, HeaderEncoder, Headers};
use crate::stream::Activity;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// A stream the client opened.
pub struct IncomingStream {
    pub id: u32,
    pub headers: Headers,
    /// The client's data, ending at its FIN or RST.
    pub data: mpsc::Receiver<Vec<u8>>,
}

impl IncomingStream {
    /// A header's value (names are compared without case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

enum Cmd {
    Frame(Frame),
    /// GOAWAY, then close the sending side.
    Finish,
}

/// Sends frames on the session (cheap to clone).
#[derive(Clone)]
pub struct Writer {
    tx: mpsc::Sender<Cmd>,
}

impl Writer {
    /// Sends `data` on stream `id`; false once the connection is gone.
    pub async fn data(&self, id: u32, data: Vec<u8>) -> bool {
        for chunk in data.chunks(32 * 1024) {
            let f = Frame::Data {
                id,
                flags: 0,
                data: chunk.to_vec(),
            };
            if self.tx.send(Cmd::Frame(f)).await.is_err() {
                return false;
            }
        }
        true
    }

    /// Half-closes stream `id` (an empty data frame with FLAG_FIN).
    pub async fn fin(&self, id: u32) {
        let f = Frame::Data {
            id,
            flags: frame::FLAG_FIN,
            data: Vec::new(),
        };
        let _ = self.tx.send(Cmd::Frame(f)).await;
    }

    /// Resets stream `id`.
    pub async fn reset(&self, id: u32, status: u32) {
        let _ = self
            .tx
            .send(Cmd::Frame(Frame::RstStream { id, status }))
            .await;
    }

    /// Ends the session: GOAWAY, flush, close the sending side.
    pub async fn finish(&self) {
        let _ = self.tx.send(Cmd::Finish).await;
    }

    async fn frame(&self, f: Frame) {
        let _ = self.tx.send(Cmd::Frame(f)).await;
    }
}

/// A running session; dropping it stops both tasks (and so closes the connection).
pub struct Session {
    /// Streams as the client opens them.
    pub streams: mpsc::Receiver<IncomingStream>,
    pub writer: Writer,
    /// Becomes true when the client is gone (EOF, error, GOAWAY).
    pub closed: watch::Receiver<bool>,
    reader: JoinHandle<()>,
    writer_task: JoinHandle<()>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.reader.abort();
        // The writer ends by itself once every Writer is gone (it flushes first).
        let _ = &self.writer_task;
    }
}

impl Session {
    /// Starts the tasks on an upgraded connection; `activity` records traffic.
    pub fn start<R, W>(
        read: R,
        write: W,
        activity: Arc<Activity>,
        closed: watch::Sender<bool>,
    ) -> Self
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let (tx, rx) = mpsc::channel::<Cmd>(64);
        let writer = Writer { tx };
        let last_id = Arc::new(AtomicU32::new(0));
        let writer_task = tokio::spawn(write_loop(write, rx, activity.clone(), last_id.clone()));
        let (stx, srx) = mpsc::channel(32);
        let closed_rx = closed.subscribe();
        let reader = tokio::spawn(read_loop(
            read,
            writer.clone(),
            stx,
            activity,
            closed,
            last_id,
        ));
        Self {
            streams: srx,
            writer,
            closed: closed_rx,
            reader,
            writer_task,
        }
    }
}

async fn write_loop<W: AsyncWrite + Unpin>(
    mut w: W,
    mut rx: mpsc::Receiver<Cmd>,
    activity: Arc<Activity>,
    last_id: Arc<AtomicU32>,
) {
    let mut enc = HeaderEncoder::default();
    while let Some(cmd) = rx.recv().await {
        match cmd {
            Cmd::Frame(f) => {
                let bytes = frame::encode(&f, &mut enc);
                if w.write_all(&bytes).await.is_err() {
                    break;
                }
                activity.touch();
            }
            Cmd::Finish => {
                let bytes = frame::encode(
                    &Frame::GoAway {
                        // Every stream the client opened was seen.
                        last_id: last_id.load(Ordering::Relaxed),
                        status: 0,
                    },
                    &mut enc,
                );
                let _ = w.write_all(&bytes).await;
                break;
            }
        }
    }
    let _ = w.flush().await;
    let _ = w.shutdown().await;
}

async fn read_loop<R: AsyncRead + Unpin>(
    mut r: R,
    writer: Writer,
    streams: mpsc::Sender<IncomingStream>,
    activity: Arc<Activity>,
    closed: watch::Sender<bool>,
    last_id: Arc<AtomicU32>,
) {
    let mut dec = HeaderDecoder::default();
    let mut open: HashMap<u32, mpsc::Sender<Vec<u8>>> = HashMap::new();
    loop {
        let f = match frame::read_frame(&mut r, &mut dec).await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                tracing::debug!(error = %e, "spdy session ended");
                break;
            }
        };
        activity.touch();
        match f {
            Frame::SynStream { id, flags, headers } => {
                last_id.fetch_max(id, Ordering::Relaxed);
                let (tx, rx) = mpsc::channel(64);
                // kubectl ignores the reply's headers; SPDY/3 clients that
                // check them need a status.
                let reply = vec![
                    (":status".to_string(), "200".to_string()),
                    (":version".to_string(), "HTTP/1.1".to_string()),
                ];
                writer
                    .frame(Frame::SynReply {
                        id,
                        flags: 0,
                        headers: reply,
                    })
                    .await;
                if flags & frame::FLAG_FIN == 0 {
                    open.insert(id, tx);
                }
                let s = IncomingStream {
                    id,
                    headers,
                    data: rx,
                };
                if streams.send(s).await.is_err() {
                    writer.reset(id, frame::RST_REFUSED_STREAM).await;
                }
            }
            Frame::Data { id, flags, data } => {
                let n = data.len() as u32;
                if let Some(tx) = open.get(&id) {
                    if !data.is_empty() && tx.send(data).await.is_err() {
                        open.remove(&id);
                    }
                }
                if flags & frame::FLAG_FIN != 0 {
                    open.remove(&id);
                }
                if n > 0 {
                    writer.frame(Frame::WindowUpdate { id, delta: n }).await;
                    writer.frame(Frame::WindowUpdate { id: 0, delta: n }).await;
                }
            }
            Frame::Headers { id, flags, .. } | Frame::SynReply { id, flags, .. } => {
                if flags & frame::FLAG_FIN != 0 {
                    open.remove(&id);
                }
            }
            Frame::RstStream { id, .. } => {
                open.remove(&id);
            }
            Frame::Ping(id) => writer.frame(Frame::Ping(id)).await,
            Frame::GoAway { .. } => break,
            Frame::Settings | Frame::WindowUpdate { .. } | Frame::Other(_) => {}
        }
    }
    open.clear();
    let _ = closed.send(true);
}
