//! Throw-away lab hosts on one Linux machine (see `docs/lab.md`).
//!
//! Each host is systemd as PID 1 in its own namespaces (mount, UTS, IPC, PID, cgroup,
//! network) around an overlay root file system over a cached Debian bookworm base, joined
//! to a per-lab bridge and reached over real SSH. The lab also serves a local apt
//! repository on its bridge, so hosts install packages without the internet.

mod base;
mod boot;
mod cgroup;
mod cmd;
mod down;
mod error;
mod fsutil;
mod inventory;
mod layout;
mod lock;
pub mod mirror;
mod network;
mod prereq;
mod repo;
mod rootfs;
mod ssh;
mod state;
mod status;
mod up;

use std::net::IpAddr;

pub use error::LabError;
pub use status::{HostStatus, LabStatus};

use state::LabState;

/// Default lab name.
pub const DEFAULT_NAME: &str = "kprov";
/// Default number of hosts (`master`, `node1`, `node2`).
pub const DEFAULT_HOSTS: usize = 3;

/// What `up` should bring up.
#[derive(Debug, Clone)]
pub struct UpOptions {
    /// Lab name: 1-32 characters from a-z, 0-9 and '-'.
    pub name: String,
    /// Number of hosts: the first is `master`, the others `node1`, `node2`, ….
    pub hosts: usize,
    /// Debian mirror for building the base and the lab's apt repository; default
    /// `KPROV_LAB_MIRROR`, else this machine's apt sources.
    pub mirror: Option<String>,
}

impl Default for UpOptions {
    fn default() -> Self {
        UpOptions {
            name: DEFAULT_NAME.to_string(),
            hosts: DEFAULT_HOSTS,
            mirror: None,
        }
    }
}

/// Brings the lab up and waits until every host answers over SSH. Idempotent: running
/// hosts stay, missing or crashed ones are (re)started. The first run on a machine builds
/// the base and the apt repository (minutes); later runs take seconds.
pub fn up(opts: &UpOptions) -> Result<LabStatus, LabError> {
    up::up(opts, up::Ready::All)
}

/// [`up`] for a run on the lab: a host whose sshd does not answer does not fail the
/// others. Hosts already running are not waited for, hosts started now up to the usual
/// time; those still silent are left to the run, which reports them unreachable.
pub fn up_for_run(opts: &UpOptions) -> Result<LabStatus, LabError> {
    up::up(opts, up::Ready::Started)
}

/// Removes the lab entirely (processes, namespaces, network, cgroups, HTTP server, state);
/// the base and apt caches stay. Succeeds when the lab does not exist.
pub fn down(name: &str) -> Result<(), LabError> {
    down::down(name)
}

/// Status of the lab, `None` when it does not exist.
pub fn status(name: &str) -> Result<Option<LabStatus>, LabError> {
    layout::validate_name(name)?;
    Ok(LabState::load(name)?.map(|state| status::collect(&state)))
}

/// Names of the labs that have state on this machine.
pub fn list() -> Result<Vec<String>, LabError> {
    state::lab_names()
}

/// argv for `ssh` as root to `host` of the lab (like `vagrant ssh`): an interactive shell
/// when `command` is empty, a line for the host's shell when it is one argument (as with
/// `ssh host 'a; b'`), else a command whose arguments are each quoted as one word.
pub fn ssh_argv(name: &str, host: &str, command: &[String]) -> Result<Vec<String>, LabError> {
    layout::validate_name(name)?;
    let state = LabState::load(name)?.ok_or_else(|| LabError::UnknownLab {
        name: name.to_string(),
    })?;
    let layout = state.layout();
    let found = (0..state.hosts)
        .map(|i| layout.host(i))
        .find(|h| h.name == host);
    let Some(found) = found else {
        let known: Vec<String> = (0..state.hosts).map(layout::host_name).collect();
        return Err(LabError::UnknownHost {
            lab: name.to_string(),
            host: host.to_string(),
            known: known.join(", "),
        });
    };
    Ok(ssh::argv(
        &layout.key(),
        &layout.known_hosts(),
        IpAddr::V4(found.address),
        command,
    ))
}

fn require_root() -> Result<(), LabError> {
    if nix::unistd::geteuid().is_root() {
        Ok(())
    } else {
        Err(LabError::NotRoot)
    }
}
