//! Ctrl-C and SIGTERM during a run: the first stops new remote work, waits a short grace
//! period for running remote commands, ends what still runs on the hosts and closes the ssh
//! masters; a second one skips the wait. The run then exits 130 with a recap.

use std::time::Duration;

use kprov_engine::events::Event;
use kprov_engine::transport::live;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

use crate::exit::Exit;
use crate::output::Renderer;

/// How long running remote commands get to finish after the first interrupt.
pub const GRACE: Duration = Duration::from_secs(5);

/// A stream of interrupt signals (SIGINT, SIGTERM), by name.
pub fn listen() -> mpsc::UnboundedReceiver<&'static str> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            tracing::warn!("cannot listen for Ctrl-C; an interrupt will end kprov at once");
            return;
        };
        loop {
            let name = tokio::select! {
                _ = int.recv() => "SIGINT",
                _ = term.recv() => "SIGTERM",
            };
            if tx.send(name).is_err() {
                return;
            }
        }
    });
    rx
}

/// Handles an interrupt (`signal`) of a run whose events still arrive on `events`.
pub async fn handle(
    signal: &str,
    signals: &mut mpsc::UnboundedReceiver<&'static str>,
    events: &mut mpsc::UnboundedReceiver<Event>,
    renderer: &mut Renderer,
) -> Exit {
    live::interrupt();
    renderer.interrupted(signal, GRACE);
    let grace = tokio::time::sleep(GRACE);
    tokio::pin!(grace);
    loop {
        tokio::select! {
            _ = live::idle() => break,
            _ = &mut grace => break,
            Some(_) = signals.recv() => break,
            Some(event) = events.recv() => renderer.event(&event),
        }
    }
    let stuck = live::end_all().await;
    while let Ok(event) = events.try_recv() {
        renderer.event(&event);
    }
    for host in stuck {
        eprintln!("warning: {host}: could not end the remote commands; check the host");
    }
    renderer.finish();
    Exit::INTERRUPTED
}
