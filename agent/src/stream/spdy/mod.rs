//! SPDY/3.1 as kubelet's stream servers speak it after an HTTP upgrade
//! (`Upgrade: SPDY/3.1`): framing, header compression, and a session.

mod dictionary;
pub mod frame;
pub mod session;

pub use session::{IncomingStream, Session, Writer};
