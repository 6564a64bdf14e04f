//! The lab's persisted state (`state.json` in its state directory) and subnet allocation.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::cmd::Cmd;
use crate::error::LabError;
use crate::fsutil::write_atomic;
use crate::layout::{lock_dir, Layout, STATE_ROOT, SUBNET_PREFIX};
use crate::lock::LockGuard;

/// What a lab remembers between commands.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct LabState {
    pub name: String,
    /// Third octet of the lab's 172.30.<subnet>.0/24.
    pub subnet: u8,
    /// Number of hosts the lab was last brought up with.
    pub hosts: usize,
    /// Pid of the apt repository's HTTP server.
    pub repo_pid: Option<u32>,
    /// Per host name: pids of its launcher and of its systemd.
    pub pids: BTreeMap<String, HostPids>,
}

/// Pids of one running lab host, as seen from the machine.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub(crate) struct HostPids {
    /// The `unshare` process that waits for the host's PID 1.
    pub launcher: u32,
    /// The host's systemd (PID 1 inside the host).
    pub init: u32,
}

impl LabState {
    pub fn layout(&self) -> Layout {
        Layout {
            name: self.name.clone(),
            subnet: self.subnet,
        }
    }

    /// Reads a lab's state; `None` when the lab has none.
    pub fn load(name: &str) -> Result<Option<LabState>, LabError> {
        let path = Layout::dir(name).join("state.json");
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(LabError::io("read", &path)(e)),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| LabError::CorruptState {
                path,
                detail: e.to_string(),
            })
    }

    /// Writes the state atomically.
    pub fn save(&self) -> Result<(), LabError> {
        let text = serde_json::to_vec_pretty(self).map_err(|e| LabError::CorruptState {
            path: self.layout().state_file(),
            detail: e.to_string(),
        })?;
        write_atomic(&self.layout().state_file(), &text, 0o600)
    }

    /// Loads the lab's state or creates it with a newly allocated subnet. Allocation runs
    /// under a machine-wide lock so labs brought up in parallel never share a subnet.
    pub fn load_or_create(name: &str, hosts: usize) -> Result<LabState, LabError> {
        if let Some(state) = Self::load(name)? {
            return Ok(state);
        }
        let _lock = LockGuard::acquire(&lock_dir().join("subnets.lock"))?;
        if let Some(state) = Self::load(name)? {
            return Ok(state);
        }
        let subnet = free_subnet()?;
        let state = LabState {
            name: name.to_string(),
            subnet,
            hosts,
            repo_pid: None,
            pids: BTreeMap::new(),
        };
        crate::fsutil::create_dir_mode(&state.layout().state_dir(), 0o700)?;
        state.save()?;
        Ok(state)
    }
}

/// Names of all labs that have state on this machine.
pub(crate) fn lab_names() -> Result<Vec<String>, LabError> {
    let root = Path::new(STATE_ROOT);
    let entries = match std::fs::read_dir(root) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(LabError::io("read", root)(e)),
    };
    let mut names: Vec<String> = entries
        .flatten()
        .filter(|e| e.path().join("state.json").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    Ok(names)
}

/// Lowest /24 of 172.30.0.0/16 used neither by another lab nor by anything on the machine.
fn free_subnet() -> Result<u8, LabError> {
    let mut used = [false; 256];
    for name in lab_names()? {
        if let Ok(Some(state)) = LabState::load(&name) {
            used[usize::from(state.subnet)] = true;
        }
    }
    let prefix = format!("{}.{}.", SUBNET_PREFIX[0], SUBNET_PREFIX[1]);
    let routes = Cmd::new(["ip", "-4", "-o", "route", "show", "table", "all"])
        .run()
        .unwrap_or_default();
    let addrs = Cmd::new(["ip", "-4", "-o", "addr", "show"])
        .run()
        .unwrap_or_default();
    for word in routes.split_whitespace().chain(addrs.split_whitespace()) {
        if let Some(rest) = word.strip_prefix(&prefix) {
            if let Some(third) = rest.split('.').next().and_then(|o| o.parse::<u8>().ok()) {
                used[usize::from(third)] = true;
            }
        }
    }
    (1..=254u8)
        .find(|k| !used[usize::from(*k)])
        .ok_or(LabError::SubnetsExhausted)
}
