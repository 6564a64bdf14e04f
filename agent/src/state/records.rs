//! The record types kept in memory and on disk.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::PathBuf;

/// Sandbox lifecycle state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SandboxState {
    /// Record written, namespaces/network being set up.
    Creating,
    Ready,
    NotReady,
}

/// A host port mapping requested for the pod.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PortMap {
    pub protocol: String,
    pub container_port: i32,
    pub host_port: i32,
    pub host_ip: String,
}

/// One pod sandbox.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SandboxRecord {
    pub id: String,
    pub name: String,
    pub namespace: String,
    pub uid: String,
    pub attempt: u32,
    pub created_at: i64,
    pub state: SandboxState,
    pub labels: HashMap<String, String>,
    pub annotations: HashMap<String, String>,
    pub runtime_handler: String,
    pub hostname: String,
    pub log_directory: String,
    pub cgroup_parent: String,
    pub host_network: bool,
    pub host_ipc: bool,
    /// Pinned namespace files; `None` means the host's.
    pub netns: Option<PathBuf>,
    pub ipcns: Option<PathBuf>,
    pub utsns: Option<PathBuf>,
    /// The pod's PID namespace (pid mode POD), held by the pod's init process.
    #[serde(default)]
    pub pidns: Option<PathBuf>,
    /// PID of the pod's init (PID 1 of `pidns`); 0 when there is none.
    #[serde(default)]
    pub pod_init_pid: i32,
    /// Directory holding resolv.conf, hostname, hosts and the shm mount.
    pub dir: PathBuf,
    pub port_mappings: Vec<PortMap>,
    pub sysctls: HashMap<String, String>,
    /// The CNI ADD result, given back to DEL as prevResult.
    pub cni_result: Option<serde_json::Value>,
    /// Set once CNI ADD has been attempted; DEL runs while it is set.
    pub network_attached: bool,
    pub ip: String,
}

/// Container lifecycle state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ContainerState {
    /// Record written, rootfs and `runc create` in progress.
    Creating,
    Created,
    Running,
    Exited,
    Unknown,
}

/// How a container ended.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct ExitInfo {
    pub exit_code: i32,
    pub finished_at: i64,
    pub reason: String,
    pub message: String,
}

/// One container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerRecord {
    pub id: String,
    pub sandbox_id: String,
    pub name: String,
    pub attempt: u32,
    pub created_at: i64,
    pub started_at: i64,
    pub state: ContainerState,
    pub exit: Option<ExitInfo>,
    pub labels: HashMap<String, String>,
    pub annotations: HashMap<String, String>,
    /// The image as the request named it.
    pub image: String,
    /// The image id (config digest).
    pub image_id: String,
    /// Repo digest of the image, if known.
    pub image_ref: String,
    pub log_path: String,
    pub bundle: PathBuf,
    /// Snapshot directories (top first) that form the rootfs.
    pub lowers: Vec<PathBuf>,
    pub rootfs_mounted: bool,
    pub cgroups_path: String,
    pub monitor_pid: i32,
    pub pid: i32,
    /// CRI mounts, for ContainerStatus.
    pub mounts: Vec<(String, String, bool)>,
    /// The CRI propagation of each of `mounts` (`api::MountPropagation`).
    #[serde(default)]
    pub mount_propagation: Vec<i32>,
    pub uid: i64,
    pub gid: i64,
    /// Linux resources as last applied (prost-encoded LinuxContainerResources).
    pub resources: Vec<u8>,
    /// Notes for ContainerStatus' message (e.g. a clamped oom_score_adj).
    pub notes: String,
    /// The container shares a PID namespace (host or another container's), so
    /// killing its init does not end its other processes.
    #[serde(default)]
    pub shared_pid: bool,
    /// Created with a tty (CRI `ContainerConfig.tty`): it runs on a pty that
    /// its monitor holds.
    #[serde(default)]
    pub tty: bool,
}
