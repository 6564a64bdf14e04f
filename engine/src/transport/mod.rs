//! Transport: how kprov reaches hosts ([`Connector`]). Over SSH, one multiplexed master
//! connection per host, reused by every command; local hosts use this machine's `sh`.
//!
//! Built on the `openssh` crate, which drives the system `ssh`: the user's
//! `~/.ssh/config`, agent, `ProxyJump` and known-hosts files apply as they do
//! for a plain `ssh` command. Scripts travel on the remote shell's stdin
//! (`sh -s`), so nothing but a POSIX shell is needed on the target and no
//! value is ever spliced into a remote command line.

mod connector;
mod error;
mod forward;
mod held;
pub mod keepalive;
pub mod live;
mod local;
mod persist;
mod pool;
mod quote;
mod stream;
mod target;

pub use connector::{BoxFuture, Connector};
pub use error::{TransportError, TransportErrorKind};
pub use held::Held;
pub use local::LocalConnection;
pub use pool::{Connection, Forward, Output, Pool, PoolOptions};
pub use quote::quote;
pub use stream::LineWatcher;
pub use target::{ConnectionKind, Target};
