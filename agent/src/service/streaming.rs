//! What the streaming server asks of the agent: exec and attach targets and pod network
//! namespaces, checked when the client connects (the container may have exited
//! since the Exec call).

use super::{Agent, AgentError, AgentResult};
use crate::runc::Runc;
use crate::state::SandboxState;
use std::path::PathBuf;

/// Where a streaming exec runs.
pub struct ExecTarget {
    pub runc: Runc,
    /// runc's pid file for the exec'd process (to kill it on disconnect).
    pub pid_file: PathBuf,
}

/// What a streaming attach connects to.
pub struct AttachTarget {
    /// The container monitor's attach socket.
    pub socket: PathBuf,
    /// The monitor's exit record (read if the socket closes without an exit code).
    pub exit_file: PathBuf,
    /// The container runs on a pty (resizes apply; all output is stdout).
    pub tty: bool,
}

impl Agent {
    /// The monitor's attach socket for running container `id`.
    pub fn stream_attach_target(&self, id: &str) -> AgentResult<AttachTarget> {
        let c = self.running_container(id)?;
        Ok(AttachTarget {
            socket: c.bundle.join(crate::monitor::attach::SOCKET_NAME),
            exit_file: c.bundle.join("exit.json"),
            tty: c.tty,
        })
    }

    /// The runc and pid file for an exec in running container `id`.
    pub fn stream_exec_target(&self, id: &str) -> AgentResult<ExecTarget> {
        let c = self.running_container(id)?;
        Ok(ExecTarget {
            runc: self.runc.clone(),
            pid_file: c
                .bundle
                .join(format!("exec-{}.pid", &crate::util::new_id()[..12])),
        })
    }

    /// The network namespace of ready sandbox `id` (`None`: the host's).
    pub fn stream_netns(&self, id: &str) -> AgentResult<Option<PathBuf>> {
        let s = self
            .sandbox(id)
            .ok_or_else(|| AgentError::NotFound(format!("sandbox {id} not found")))?;
        if s.state != SandboxState::Ready {
            return Err(AgentError::FailedPrecondition(format!(
                "sandbox {id} is not ready"
            )));
        }
        Ok(if s.host_network { None } else { s.netns })
    }
}
