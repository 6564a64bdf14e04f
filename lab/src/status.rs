//! What `kprov lab status` reports (serialisable so the CLI can print JSON).

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::cgroup;
use crate::layout::HostLayout;
use crate::repo;
use crate::ssh;
use crate::state::{HostPids, LabState};

/// State of one lab.
#[derive(Debug, Clone, Serialize)]
pub struct LabStatus {
    /// Lab name.
    pub name: String,
    /// Generated inventory (kprov's hosts.yaml shape).
    pub inventory: PathBuf,
    /// Private key that logs in as root on every host (mode 0600).
    pub key: PathBuf,
    /// known_hosts file with every host's key.
    pub known_hosts: PathBuf,
    /// Bridge interface on the machine.
    pub bridge: String,
    /// Bridge address: the machine as seen from the hosts.
    pub gateway: IpAddr,
    /// URL of the lab's apt repository (served on the bridge).
    pub repo_url: String,
    /// Whether the apt repository's HTTP server runs.
    pub repo_running: bool,
    /// The hosts, `master` first.
    pub hosts: Vec<HostStatus>,
}

/// State of one lab host.
#[derive(Debug, Clone, Serialize)]
pub struct HostStatus {
    /// Host name (also its hostname): `master`, `node1`, ….
    pub name: String,
    /// Address on the lab bridge.
    pub address: IpAddr,
    /// Pid (on the machine) of the host's systemd, when known.
    pub pid: Option<u32>,
    /// Whether the host's systemd runs.
    pub running: bool,
    /// Whether its sshd answers.
    pub ssh_ready: bool,
}

impl LabStatus {
    /// Whether every host runs and answers over SSH.
    pub fn all_ready(&self) -> bool {
        self.hosts.iter().all(|h| h.running && h.ssh_ready)
    }
}

/// Whether the host with these pids is still the running lab host.
pub(crate) fn host_running(pids: Option<&HostPids>, host: &HostLayout) -> bool {
    pids.is_some_and(|p| cgroup::pid_in(p.init, &host.cgroup))
}

/// Gathers the status of a lab from its state and the live system.
pub(crate) fn collect(state: &LabState) -> LabStatus {
    let layout = state.layout();
    let hosts = (0..state.hosts)
        .map(|i| {
            let host = layout.host(i);
            let pids = state.pids.get(&host.name);
            let running = host_running(pids, &host);
            HostStatus {
                ssh_ready: running
                    && ssh::answers(IpAddr::V4(host.address), Duration::from_millis(500)),
                pid: pids.map(|p| p.init),
                address: IpAddr::V4(host.address),
                name: host.name,
                running,
            }
        })
        .collect();
    LabStatus {
        name: state.name.clone(),
        inventory: layout.inventory(),
        key: layout.key(),
        known_hosts: layout.known_hosts(),
        bridge: layout.bridge(),
        gateway: IpAddr::V4(layout.gateway()),
        repo_url: layout.repo_url(),
        repo_running: state
            .repo_pid
            .is_some_and(|pid| repo::is_server(pid, layout.gateway())),
        hosts,
    }
}
