//! A local TCP port that reaches an address as a host sees it: `ssh -L` through the
//! host's master, or, for a local host, a relay in this process that connects directly.

use openssh::{ForwardType, Session, Socket};

/// A local TCP port forwarded to a remote address through a host's connection.
#[derive(Debug)]
pub struct Forward<'a> {
    /// The port on 127.0.0.1 that reaches the remote address.
    pub local: u16,
    way: Way<'a>,
}

/// How a forward reaches its address.
#[derive(Debug)]
enum Way<'a> {
    /// `ssh -L` through the host's master.
    Ssh {
        session: &'a Session,
        remote: (String, u16),
    },
    /// A relay in this process that connects directly (a local host).
    Direct(tokio::task::JoinHandle<()>),
}

/// The remote end of a forward, as openssh names it.
pub(super) fn connect(remote: &(String, u16)) -> Socket<'_> {
    Socket::TcpSocket {
        host: remote.0.as_str().into(),
        port: remote.1,
    }
}

/// The local end of a forward, as openssh names it.
pub(super) fn listen(local: u16) -> Socket<'static> {
    Socket::TcpSocket {
        host: "127.0.0.1".into(),
        port: local,
    }
}

impl<'a> Forward<'a> {
    /// A forward `ssh -L` set up through `session`.
    pub(super) fn ssh(local: u16, session: &'a Session, remote: (String, u16)) -> Forward<'a> {
        Forward {
            local,
            way: Way::Ssh { session, remote },
        }
    }

    /// A forward relayed by `task` from 127.0.0.1:`local` (a local host's).
    pub(super) fn direct(local: u16, task: tokio::task::JoinHandle<()>) -> Forward<'static> {
        Forward {
            local,
            way: Way::Direct(task),
        }
    }

    /// Stops forwarding.
    pub async fn close(self) {
        match self.way {
            Way::Ssh { session, remote } => {
                if let Err(err) = session
                    .close_port_forward(ForwardType::Local, listen(self.local), connect(&remote))
                    .await
                {
                    tracing::debug!(%err, "closing a port forward");
                }
            }
            Way::Direct(task) => task.abort(),
        }
    }
}
