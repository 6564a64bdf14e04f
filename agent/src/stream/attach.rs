//! Streaming attach: connects to the container monitor's attach socket and
//! pumps its output frames to the session's stdout/stderr, the client's stdin
//! to the socket, until the monitor sends the exit code (the session then ends
//! with it, as an exec does). A client that leaves only detaches: the
//! container keeps running and logging. A tty container's terminal output comes
//! as stdout and the session's resizes set its size; a terminal asked of a
//! container created without one is refused.

use super::remotecommand::{Io, Outcome};
use crate::monitor::attach::{
    frame, parse_frames, size_payload, socket_path, EXIT, RESIZE, STDERR, STDIN, STDIN_CLOSE,
    STDOUT,
};
use crate::monitor::ExitRecord;
use crate::service::AttachTarget;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

/// Why attach with a tty fails for a container created without one.
pub const NO_TTY: &str =
    "attach with a tty refused: the container was created without a terminal (its ContainerConfig.tty is false)";

async fn connect(target: &AttachTarget) -> std::io::Result<UnixStream> {
    let (path, _dir) = socket_path(&target.socket)?;
    UnixStream::connect(&path).await
}

/// How a session ends when the monitor closed the socket without an exit
/// frame: the exit code if the record is there (the monitor writes it before
/// it sends the frame), else the client was dropped or the monitor died.
fn exit_from_record(target: &AttachTarget) -> Outcome {
    match std::fs::read(&target.exit_file)
        .ok()
        .and_then(|d| serde_json::from_slice::<ExitRecord>(&d).ok())
    {
        Some(r) => Outcome::Exited(r.exit_code),
        None => Outcome::Failed(
            "the attach stream was dropped: the client fell too far behind, or the container's monitor went away".into(),
        ),
    }
}

/// Attaches the session's streams to the container; returns how it ended.
pub async fn run(target: &AttachTarget, tty: bool, io: &mut Io) -> Outcome {
    if tty && !target.tty {
        return Outcome::Failed(NO_TTY.into());
    }
    let sock = match connect(target).await {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Outcome::Failed(
                "cannot attach: the container is not running (or its monitor, from an older agent, serves no attach socket)".into(),
            )
        }
        Err(e) => return Outcome::Failed(format!("cannot attach to the container's monitor: {e}")),
    };
    let (mut r, w) = sock.into_split();
    // The writer lives as long as the session: dropping it would shut the
    // socket's write side, which the monitor takes for a detach.
    let writer = std::sync::Arc::new(tokio::sync::Mutex::new(w));
    let stdin_task = io.stdin.take().map(|mut rx| {
        let w = writer.clone();
        tokio::spawn(async move {
            while let Some(data) = rx.recv().await {
                for chunk in data.chunks(32 * 1024) {
                    if w.lock()
                        .await
                        .write_all(&frame(STDIN, chunk))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            }
            let _ = w.lock().await.write_all(&frame(STDIN_CLOSE, &[])).await;
        })
    });
    let resize_task = io.resize.take().filter(|_| target.tty).map(|mut rx| {
        let w = writer.clone();
        tokio::spawn(async move {
            while let Some(s) = rx.recv().await {
                let f = frame(RESIZE, &size_payload(s.height, s.width));
                if w.lock().await.write_all(&f).await.is_err() {
                    return;
                }
            }
        })
    });
    let mut closed = io.closed.clone();
    let pump = async {
        let mut buf = Vec::new();
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            let n = match r.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => n,
            };
            buf.extend_from_slice(&chunk[..n]);
            let frames = match parse_frames(&mut buf) {
                Ok(f) => f,
                Err(e) => return Some(Outcome::Failed(e)),
            };
            for (id, data) in frames {
                let out = match id {
                    STDOUT => &io.stdout,
                    STDERR => &io.stderr,
                    EXIT => {
                        let mut code = [0u8; 4];
                        if data.len() == 4 {
                            code.copy_from_slice(&data);
                        }
                        return Some(Outcome::Exited(i32::from_be_bytes(code)));
                    }
                    _ => continue,
                };
                if let Some(o) = out {
                    if !o.write(data).await {
                        return Some(Outcome::Failed("the client went away".into()));
                    }
                }
            }
        }
    };
    let outcome = tokio::select! {
        o = pump => match o {
            Some(o) => o,
            None => exit_from_record(target),
        },
        _ = super::until_closed(&mut closed) => Outcome::Failed("the client went away".into()),
    };
    for t in [stdin_task, resize_task].into_iter().flatten() {
        t.abort();
    }
    drop(writer);
    outcome
}
