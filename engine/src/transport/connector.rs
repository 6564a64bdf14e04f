//! What the executor needs from a way of reaching a host, whatever that way is: run a
//! script on a POSIX shell (stdin, a timeout, a line watcher), hold a command open for
//! as long as kprov lives (the run lock), reach a TCP address as the host sees it, close.
//!
//! Two connectors implement it: [`Connection`](super::Connection) (an ssh master per
//! host) and [`LocalConnection`](super::LocalConnection) (the control machine's own
//! `sh`, Ansible's and pyinfra's `local` connection).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use super::error::TransportError;
use super::held::Held;
use super::pool::{Forward, Output};
use super::stream::LineWatcher;
use super::target::Target;

/// A future a connector returns (boxed: the executor holds connectors as trait objects).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One host's way in. Every method is safe to call from many tasks at once.
pub trait Connector: Send + Sync + std::fmt::Debug {
    /// The host this connector reaches, with its settings.
    fn target(&self) -> &Target;

    /// Runs `script` on the host's POSIX shell (`sh -s`, through `sudo -n` when the host
    /// says `become`), feeding the script on stdin and showing `on_line` each stdout line
    /// as it arrives. `timeout` defaults to the connector's; past it the script and
    /// everything it started are ended and the call fails as timed out.
    fn run_watching<'a>(
        &'a self,
        script: &'a str,
        timeout: Option<Duration>,
        on_line: LineWatcher<'a>,
    ) -> BoxFuture<'a, Result<Output, TransportError>>;

    /// Starts `sh -c script kprov args…` and keeps it running while kprov keeps its
    /// stdin open (see [`Held`]).
    fn hold<'a>(
        self: Arc<Self>,
        script: &'a str,
        args: &'a [&'a str],
    ) -> BoxFuture<'a, Result<Held, TransportError>>;

    /// A port on 127.0.0.1 that reaches `host:port` as the host sees it.
    fn forward_tcp<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> BoxFuture<'a, Result<Forward<'a>, TransportError>>;

    /// Ends the connection once this is its last holder (a no-op otherwise).
    fn close(self: Arc<Self>) -> BoxFuture<'static, ()>;
}

impl dyn Connector + '_ {
    /// [`Connector::run_watching`] without a watcher.
    pub async fn run(
        &self,
        script: &str,
        timeout: Option<Duration>,
    ) -> Result<Output, TransportError> {
        self.run_watching(script, timeout, &|_| {}).await
    }
}
