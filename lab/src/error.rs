//! Errors of the lab library: each says what failed and how to fix it.

use std::path::PathBuf;

/// Everything that can go wrong while managing a lab.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// The lab needs root (namespaces, mounts, bridges).
    #[error("kprov lab must run as root (it creates namespaces, mounts and network bridges); rerun with sudo")]
    NotRoot,

    /// A lab name that cannot be used in paths and interface names.
    #[error("invalid lab name {name:?}: {reason}; use 1-32 characters from a-z, 0-9 and '-', starting with a letter or digit")]
    InvalidName { name: String, reason: String },

    /// A host count outside what one /24 can address.
    #[error("invalid host count {hosts}: a lab has between 1 and {max} hosts")]
    InvalidHostCount { hosts: usize, max: usize },

    /// No state for the named lab.
    #[error("lab {name:?} does not exist; start it with `kprov lab up --name {name}`")]
    UnknownLab { name: String },

    /// A host name that the lab does not have.
    #[error("lab {lab:?} has no host {host:?}; its hosts are: {known}")]
    UnknownHost {
        lab: String,
        host: String,
        known: String,
    },

    /// The machine lacks tools and they could not be installed.
    #[error("missing tools on this machine: {tools}; install the packages {packages} (e.g. `apt-get install -y {packages}`)")]
    MissingTools { tools: String, packages: String },

    /// An external command failed.
    #[error("`{command}` failed ({status}){stderr_part}; {hint}", stderr_part = stderr_suffix(.stderr))]
    Command {
        command: String,
        status: String,
        stderr: String,
        hint: String,
    },

    /// A file system operation failed.
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A state file that cannot be read back.
    #[error("corrupt lab state {path}: {detail}; remove the lab with `kprov lab down` and bring it up again")]
    CorruptState { path: PathBuf, detail: String },

    /// All /24 subnets of 172.30.0.0/16 are taken.
    #[error("no free /24 left in 172.30.0.0/16 for a new lab; take labs down with `kprov lab down --name NAME`")]
    SubnetsExhausted,

    /// A host did not boot or its sshd did not answer in time.
    #[error("lab {lab:?} host {host:?} ({address}) did not {what} within {seconds}s; see its console log {log} or enter it with `nsenter -t <pid> -a -r -w`")]
    HostNotReady {
        lab: String,
        host: String,
        address: String,
        what: &'static str,
        seconds: u64,
        log: PathBuf,
    },

    /// The machine lacks something a lab needs and that kprov cannot set up.
    #[error("this machine cannot run lab hosts: {0}")]
    Unsupported(String),

    /// Processes or cgroups that would not go away during `down`.
    #[error("could not clean up {what}: {detail}; rerun `kprov lab down` or remove it by hand")]
    Cleanup { what: String, detail: String },
}

fn stderr_suffix(stderr: &str) -> String {
    let trimmed = stderr.trim();
    if trimmed.is_empty() {
        String::new()
    } else {
        // Keep the tail: the last lines usually say what went wrong.
        let tail: Vec<&str> = trimmed.lines().rev().take(8).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        format!(": {}", tail.join(" | "))
    }
}

impl LabError {
    /// Wraps an I/O error with the action and path it concerns.
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| LabError::Io {
            action,
            path,
            source,
        }
    }
}
