//! The runtime service core: sandbox and container stores (in memory, persisted
//! as records), name reservations, and recovery after an agent restart.

mod containers;
mod error;
pub mod events;
mod exits;
mod sandboxes;
mod streaming;

pub use containers::ExecResult;
pub use streaming::{AttachTarget, ExecTarget};

use crate::image::{pull_in_child, ImageRecord, PullAuth, PullRequest};
pub use error::{AgentError, AgentResult};

use crate::cni::Cni;
use crate::config::{CgroupDriver, Config};
use crate::image::ImageStore;
use crate::runc::Runc;
use crate::state::{ContainerRecord, RecordStore, SandboxRecord};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

type AsyncLock = Arc<tokio::sync::Mutex<()>>;

/// The agent: everything the CRI handlers call into.
pub struct Agent {
    pub cfg: Config,
    pub images: Arc<ImageStore>,
    records: RecordStore,
    runc: Runc,
    cni: Cni,
    sandboxes: RwLock<HashMap<String, SandboxRecord>>,
    containers: RwLock<HashMap<String, ContainerRecord>>,
    /// One lock per object name (creates) and per id (start/stop/remove).
    locks: Mutex<HashMap<String, AsyncLock>>,
    network_ready: AtomicBool,
    pod_cidr: RwLock<String>,
    own_oom_score_adj: i64,
    /// The capabilities this process holds: what privileged and `ALL` give containers.
    held_caps: Vec<String>,
    /// The monitor binary (`kprov-agent-monitor` beside us, else ourselves).
    monitor_exe: PathBuf,
    /// This binary (run again as `__pull`).
    self_exe: PathBuf,
    /// Container lifecycle events (see [`events`]).
    events: tokio::sync::broadcast::Sender<events::ContainerEvent>,
}

/// `kprov-agent-monitor` next to the running binary, or the running binary itself.
fn monitor_exe() -> std::io::Result<PathBuf> {
    let me = std::env::current_exe()?;
    let small = me.with_file_name("kprov-agent-monitor");
    Ok(if small.is_file() { small } else { me })
}

impl Agent {
    /// Opens the stores and recovers sandboxes and containers from their records.
    pub async fn start(cfg: Config) -> anyhow::Result<Arc<Self>> {
        for d in [&cfg.state_dir, &cfg.root_dir, &cfg.run_dir] {
            // New directories only: an existing one keeps the mode its owner chose.
            std::os::unix::fs::DirBuilderExt::mode(
                std::fs::DirBuilder::new().recursive(true),
                0o711,
            )
            .create(d)?;
        }
        let images = Arc::new(ImageStore::open(&cfg.root_dir.join("images"))?);
        let own_oom_score_adj = std::fs::read_to_string("/proc/self/oom_score_adj")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        let held_caps = crate::container::held_capabilities();
        tracing::info!(
            count = held_caps.len(),
            "capabilities held (privileged containers and ALL get these)"
        );
        // Monitors re-parent to us, so we can reap them (PID 1 may not).
        // SAFETY: plain prctl with integer arguments.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        let agent = Arc::new(Self {
            images,
            records: RecordStore::open(&cfg.state_dir)?,
            runc: Runc {
                bin: cfg.runtime.path.clone(),
                root: cfg.run_dir.join("runc"),
                systemd_cgroup: cfg.cgroup_driver == CgroupDriver::Systemd,
            },
            cni: Cni {
                bin_dirs: cfg.cni.bin_dirs.clone(),
                conf_dir: cfg.cni.conf_dir.clone(),
            },
            sandboxes: RwLock::new(HashMap::new()),
            containers: RwLock::new(HashMap::new()),
            locks: Mutex::new(HashMap::new()),
            network_ready: AtomicBool::new(false),
            pod_cidr: RwLock::new(String::new()),
            own_oom_score_adj,
            held_caps,
            monitor_exe: monitor_exe()?,
            self_exe: std::env::current_exe()?,
            events: events::channel(),
            cfg,
        });
        agent
            .network_ready
            .store(agent.cni.ready(), Ordering::Relaxed);
        agent.recover().await;
        let watcher = Arc::downgrade(&agent);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                let Some(a) = watcher.upgrade() else { break };
                let cni = a.cni.clone();
                let ready = tokio::task::spawn_blocking(move || cni.ready())
                    .await
                    .unwrap_or(false);
                a.network_ready.store(ready, Ordering::Relaxed);
            }
        });
        Ok(agent)
    }

    /// Pulls `image` in a child process and adds it to the image index.
    pub async fn pull_image(&self, image: &str, auth: PullAuth) -> AgentResult<ImageRecord> {
        crate::image::normalize(image)?;
        let req = PullRequest {
            image: image.to_string(),
            auth,
            registry: self.cfg.registry.clone(),
            store: self.images.root().to_path_buf(),
        };
        let rec = pull_in_child(&self.self_exe, &req).await;
        // SAFETY: malloc_trim has no preconditions. (Spawning the child leaves
        // freed memory behind that glibc would otherwise keep.)
        unsafe { libc::malloc_trim(0) };
        let rec = rec?;
        self.images.insert(rec.clone())?;
        Ok(rec)
    }

    /// NetworkReady, as last observed (served from memory).
    pub fn network_ready(&self) -> bool {
        self.network_ready.load(Ordering::Relaxed)
    }

    /// Records the pod CIDR kubelet sent with UpdateRuntimeConfig.
    pub fn set_pod_cidr(&self, cidr: &str) {
        if let Ok(mut g) = self.pod_cidr.write() {
            *g = cidr.to_string();
        }
    }

    /// The cgroup driver (for RuntimeConfig).
    pub fn cgroup_driver(&self) -> CgroupDriver {
        self.cfg.cgroup_driver
    }

    fn lock_for(&self, key: &str) -> AsyncLock {
        let mut g = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        g.entry(key.to_string()).or_default().clone()
    }

    fn forget_lock(&self, key: &str) {
        let mut g = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(l) = g.get(key) {
            if Arc::strong_count(l) == 1 {
                g.remove(key);
            }
        }
    }

    /// Snapshot of all sandbox records.
    pub fn sandbox_list(&self) -> Vec<SandboxRecord> {
        self.sandboxes
            .read()
            .map(|g| g.values().cloned().collect())
            .unwrap_or_default()
    }

    /// One sandbox record.
    pub fn sandbox(&self, id: &str) -> Option<SandboxRecord> {
        self.sandboxes.read().ok()?.get(id).cloned()
    }

    /// Snapshot of all container records.
    pub fn container_list(&self) -> Vec<ContainerRecord> {
        self.containers
            .read()
            .map(|g| g.values().cloned().collect())
            .unwrap_or_default()
    }

    /// One container record.
    pub fn container(&self, id: &str) -> Option<ContainerRecord> {
        self.containers.read().ok()?.get(id).cloned()
    }

    /// The record of container `id`, which must be running (NotFound / FailedPrecondition).
    pub(crate) fn running_container(&self, id: &str) -> AgentResult<ContainerRecord> {
        let c = self
            .container(id)
            .ok_or_else(|| AgentError::NotFound(format!("container {id} not found")))?;
        if c.state != crate::state::ContainerState::Running {
            return Err(AgentError::FailedPrecondition(format!(
                "container {id} is not running"
            )));
        }
        Ok(c)
    }

    fn put_sandbox(&self, r: &SandboxRecord) -> AgentResult<()> {
        self.records
            .save_sandbox(r)
            .map_err(|e| AgentError::internal("saving sandbox record", e))?;
        let old = self
            .sandboxes
            .write()
            .ok()
            .and_then(|mut g| g.insert(r.id.clone(), r.clone()))
            .map(|o| o.state);
        self.emit_sandbox_change(old, r);
        Ok(())
    }

    fn drop_sandbox(&self, id: &str) {
        if let Err(e) = self.records.delete_sandbox(id) {
            tracing::warn!(id, error = %e, "deleting sandbox record");
        }
        let gone = self.sandboxes.write().ok().and_then(|mut g| g.remove(id));
        if let Some(r) = gone.filter(|r| r.state != crate::state::SandboxState::Creating) {
            self.emit_sandbox(events::EventKind::Deleted, &r);
        }
    }

    fn put_container(&self, r: &ContainerRecord) -> AgentResult<()> {
        self.records
            .save_container(r)
            .map_err(|e| AgentError::internal("saving container record", e))?;
        let old = self
            .containers
            .write()
            .ok()
            .and_then(|mut g| g.insert(r.id.clone(), r.clone()))
            .map(|o| o.state);
        self.emit_change(old, r);
        Ok(())
    }

    /// Applies `f` to the stored container and persists it; `None` if it is gone.
    fn update_container(
        &self,
        id: &str,
        f: impl FnOnce(&mut ContainerRecord),
    ) -> Option<ContainerRecord> {
        let (old, rec) = {
            let mut g = self.containers.write().ok()?;
            let r = g.get_mut(id)?;
            let old = r.state;
            f(r);
            (old, r.clone())
        };
        self.emit_change(Some(old), &rec);
        if let Err(e) = self.records.save_container(&rec) {
            tracing::warn!(id, error = %e, "saving container record");
        }
        Some(rec)
    }

    fn drop_container(&self, id: &str) {
        if let Err(e) = self.records.delete_container(id) {
            tracing::warn!(id, error = %e, "deleting container record");
        }
        let gone = self.containers.write().ok().and_then(|mut g| g.remove(id));
        // A create that never finished was never announced.
        if let Some(r) = gone.filter(|r| r.state != crate::state::ContainerState::Creating) {
            self.emit(events::EventKind::Deleted, &r.id, &r.sandbox_id);
        }
    }

    /// Loads records; finishes or undoes what a previous run left half-way.
    async fn recover(self: &Arc<Self>) {
        for s in self.records.load_sandboxes() {
            if s.state == crate::state::SandboxState::Creating {
                tracing::info!(id = %s.id, "undoing a sandbox create that did not finish");
                self.discard_sandbox(&s).await;
                continue;
            }
            if let Ok(mut g) = self.sandboxes.write() {
                g.insert(s.id.clone(), s);
            }
        }
        for c in self.records.load_containers() {
            match c.state {
                crate::state::ContainerState::Creating => {
                    tracing::info!(id = %c.id, "undoing a container create that did not finish");
                    self.cleanup_container_files(&c).await;
                    self.drop_container(&c.id);
                }
                crate::state::ContainerState::Created
                | crate::state::ContainerState::Running
                | crate::state::ContainerState::Unknown => {
                    if let Ok(mut g) = self.containers.write() {
                        g.insert(c.id.clone(), c.clone());
                    }
                    self.watch_exit(c.id.clone(), c.monitor_pid);
                }
                crate::state::ContainerState::Exited => {
                    if let Ok(mut g) = self.containers.write() {
                        g.insert(c.id.clone(), c);
                    }
                }
            }
        }
        tracing::info!(
            sandboxes = self.sandbox_list().len(),
            containers = self.container_list().len(),
            "recovered state"
        );
    }
}
