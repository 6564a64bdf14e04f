//! CreateContainer, StartContainer, StopContainer, RemoveContainer, ExecSync,
//! ReopenContainerLog, UpdateContainerResources.

use super::{Agent, AgentError, AgentResult};
use crate::api;
use crate::container::{build_spec, linux_resources_json, mount_rootfs, unmount_rootfs, SpecInput};
use crate::monitor::{MonitorArgs, MONITOR_ARG};
use crate::state::{ContainerRecord, ContainerState, SandboxState};
use crate::util::{new_id, now_nanos};
use prost::Message;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// Output of ExecSync.
pub struct ExecResult {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub exit_code: i32,
}

impl Agent {
    /// Creates a container; a retry with the same name gets the one a timed-out call made.
    pub async fn create_container(
        self: &Arc<Self>,
        sandbox_id: String,
        config: api::ContainerConfig,
    ) -> AgentResult<String> {
        let md = config.metadata.clone().ok_or_else(|| {
            AgentError::InvalidArgument("container config has no metadata".into())
        })?;
        if md.name.is_empty() {
            return Err(AgentError::InvalidArgument(
                "container metadata has no name".into(),
            ));
        }
        let sandbox = self
            .sandbox(&sandbox_id)
            .ok_or_else(|| AgentError::NotFound(format!("sandbox {sandbox_id} not found")))?;
        if sandbox.state != SandboxState::Ready {
            return Err(AgentError::FailedPrecondition(format!(
                "sandbox {sandbox_id} is not ready"
            )));
        }
        let key = format!("container:{sandbox_id}/{}_{}", md.name, md.attempt);
        let this = self.clone();
        tokio::spawn(async move {
            let lock = this.lock_for(&key);
            let _held = lock.lock().await;
            let existing = this.container_list().into_iter().find(|c| {
                c.sandbox_id == sandbox_id && c.name == md.name && c.attempt == md.attempt
            });
            if let Some(c) = existing {
                return Ok(c.id);
            }
            this.do_create_container(sandbox, config, md).await
        })
        .await
        .map_err(|e| AgentError::internal("container task", e))?
    }

    async fn do_create_container(
        self: &Arc<Self>,
        sandbox: crate::state::SandboxRecord,
        config: api::ContainerConfig,
        md: api::ContainerMetadata,
    ) -> AgentResult<String> {
        let image_name = config
            .image
            .as_ref()
            .map(|i| i.image.clone())
            .unwrap_or_default();
        let image = self.images.resolve(&image_name).ok_or_else(|| {
            AgentError::NotFound(format!(
                "image {image_name:?} is not present: pull it first"
            ))
        })?;
        let id = new_id();
        let bundle = self.cfg.root_dir.join("containers").join(&id);
        let log_path = if config.log_path.is_empty() || sandbox.log_directory.is_empty() {
            String::new()
        } else {
            PathBuf::from(&sandbox.log_directory)
                .join(&config.log_path)
                .display()
                .to_string()
        };
        let resources = config
            .linux
            .as_ref()
            .and_then(|l| l.resources.clone())
            .unwrap_or_default();
        let mut rec = ContainerRecord {
            id: id.clone(),
            sandbox_id: sandbox.id.clone(),
            name: md.name.clone(),
            attempt: md.attempt,
            created_at: now_nanos(),
            started_at: 0,
            state: ContainerState::Creating,
            exit: None,
            labels: config.labels.clone(),
            annotations: config.annotations.clone(),
            image: image_name,
            image_id: image.id.clone(),
            image_ref: image
                .repo_digests
                .first()
                .cloned()
                .unwrap_or_else(|| image.id.clone()),
            log_path,
            bundle: bundle.clone(),
            lowers: image
                .layers
                .iter()
                .rev()
                .map(|l| self.images.snapshot_path(l))
                .collect(),
            rootfs_mounted: false,
            cgroups_path: String::new(),
            monitor_pid: 0,
            pid: 0,
            mounts: config
                .mounts
                .iter()
                .map(|m| (m.container_path.clone(), m.host_path.clone(), m.readonly))
                .collect(),
            mount_propagation: config.mounts.iter().map(|m| m.propagation).collect(),
            uid: 0,
            gid: 0,
            resources: resources.encode_to_vec(),
            notes: String::new(),
            shared_pid: config
                .linux
                .as_ref()
                .and_then(|l| l.security_context.as_ref())
                .and_then(|s| s.namespace_options.as_ref())
                .map(|n| n.pid != api::NamespaceMode::Container as i32)
                .unwrap_or(false),
            tty: config.tty,
        };
        self.put_container(&rec)?;
        match self
            .setup_container(&mut rec, &sandbox, &config, &image.config)
            .await
        {
            Ok(()) => {
                self.watch_exit(id.clone(), rec.monitor_pid);
                Ok(id)
            }
            Err(e) => {
                tracing::warn!(id, error = %e, "container create failed; undoing");
                self.cleanup_container_files(&rec).await;
                self.drop_container(&id);
                Err(e)
            }
        }
    }

    async fn setup_container(
        &self,
        rec: &mut ContainerRecord,
        sandbox: &crate::state::SandboxRecord,
        config: &api::ContainerConfig,
        image: &crate::image::ImageRuntimeConfig,
    ) -> AgentResult<()> {
        std::fs::create_dir_all(&rec.bundle)?;
        // config.json carries the container's environment: owner only.
        std::fs::set_permissions(
            &rec.bundle,
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )?;
        rec.rootfs_mounted = true;
        self.put_container(rec)?;
        let rootfs = mount_rootfs(&rec.bundle, &rec.lowers)
            .map_err(|e| AgentError::internal("container rootfs", e))?;
        let target_pid = config
            .linux
            .as_ref()
            .and_then(|l| l.security_context.as_ref())
            .and_then(|s| s.namespace_options.as_ref())
            .filter(|n| n.pid == api::NamespaceMode::Target as i32)
            .and_then(|n| self.container(&n.target_id))
            .map(|c| c.pid)
            .filter(|p| *p > 0);
        let built = build_spec(&SpecInput {
            id: &rec.id,
            config,
            sandbox,
            image,
            rootfs: &rootfs,
            cgroup_driver: self.cfg.cgroup_driver,
            min_oom_score_adj: self
                .cfg
                .sandbox
                .restrict_oom_score_adj
                .then_some(self.own_oom_score_adj),
            target_pid,
            held_caps: &self.held_caps,
        })
        .map_err(AgentError::InvalidArgument)?;
        rec.uid = built.uid as i64;
        rec.gid = built.gid as i64;
        rec.notes = built.notes;
        rec.cgroups_path = built.cgroups_path;
        crate::util::write_atomic(
            &rec.bundle.join("config.json"),
            built.spec.to_string().as_bytes(),
        )?;
        self.put_container(rec)?;
        let (monitor_pid, pid) = self
            .spawn_monitor(rec, config.stdin, config.stdin_once, config.tty)
            .await?;
        rec.monitor_pid = monitor_pid;
        rec.pid = pid;
        rec.state = ContainerState::Created;
        self.put_container(rec)
    }

    /// Starts the monitor (which runs `runc create`, with a stdin pipe of its
    /// own when `stdin`, on a pty when `tty`); returns (monitor pid, container pid).
    async fn spawn_monitor(
        &self,
        rec: &ContainerRecord,
        stdin: bool,
        stdin_once: bool,
        tty: bool,
    ) -> AgentResult<(i32, i32)> {
        let log_path = if rec.log_path.is_empty() {
            rec.bundle.join("container.log")
        } else {
            PathBuf::from(&rec.log_path)
        };
        let args = MonitorArgs {
            id: rec.id.clone(),
            bundle: rec.bundle.clone(),
            runc: self.cfg.runtime.path.clone(),
            runc_global_args: self.runc.global_args(),
            log_path,
            exit_file: rec.bundle.join("exit.json"),
            max_line: self.cfg.logs.max_line_bytes,
            stdin,
            stdin_once,
            tty,
        };
        let json =
            serde_json::to_string(&args).map_err(|e| AgentError::internal("monitor args", e))?;
        let mut child = tokio::process::Command::new(&self.monitor_exe)
            .arg(MONITOR_ARG)
            .arg(json)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| AgentError::internal("starting monitor", e))?;
        let mut out = String::new();
        if let Some(mut so) = child.stdout.take() {
            let _ = so.read_to_string(&mut out).await;
        }
        let _ = child.wait().await;
        let line = out.trim();
        if let Some(rest) = line.strip_prefix("ok ") {
            let mut it = rest
                .split_whitespace()
                .map(|x| x.parse::<i32>().unwrap_or(0));
            let (m, p) = (it.next().unwrap_or(0), it.next().unwrap_or(0));
            if m > 0 && p > 0 {
                return Ok((m, p));
            }
        }
        let msg = line.strip_prefix("err ").unwrap_or(line);
        Err(AgentError::Internal(format!(
            "creating container: {}",
            if msg.is_empty() {
                "monitor exited without a report"
            } else {
                msg
            }
        )))
    }

    /// Starts a created container.
    pub async fn start_container(self: &Arc<Self>, id: &str) -> AgentResult<()> {
        let lock = self.lock_for(id);
        let _held = lock.lock().await;
        let c = self
            .container(id)
            .ok_or_else(|| AgentError::NotFound(format!("container {id} not found")))?;
        if c.state != ContainerState::Created {
            return Err(AgentError::FailedPrecondition(format!(
                "container {id} is {:?}, not created",
                c.state
            )));
        }
        let started = now_nanos();
        self.update_container(id, |r| r.started_at = started);
        if let Err(e) = self.runc.start(id).await {
            return Err(AgentError::internal("starting container", e));
        }
        self.update_container(id, |r| {
            if r.state == ContainerState::Created {
                r.state = ContainerState::Running;
            }
        });
        Ok(())
    }

    /// Stops a container: SIGTERM, then SIGKILL after `timeout` seconds. Idempotent.
    pub async fn stop_container(self: &Arc<Self>, id: &str, timeout: i64) -> AgentResult<()> {
        let lock = self.lock_for(id);
        let _held = lock.lock().await;
        self.stop_container_inner(id, timeout).await
    }

    pub(super) async fn stop_container_inner(&self, id: &str, timeout: i64) -> AgentResult<()> {
        let Some(c) = self.container(id) else {
            return Ok(());
        };
        if !matches!(
            c.state,
            ContainerState::Running | ContainerState::Created | ContainerState::Unknown
        ) {
            return Ok(());
        }
        if timeout > 0 {
            self.runc
                .kill(id, "TERM", false)
                .await
                .map_err(|e| AgentError::internal("stopping container", e))?;
            if self
                .wait_exited(id, Duration::from_secs(timeout as u64))
                .await
            {
                return Ok(());
            }
        }
        // Killing the init of a private PID namespace ends everything in it; only
        // a shared namespace needs runc's --all (which freezes the cgroup).
        self.runc
            .kill(id, "KILL", c.shared_pid)
            .await
            .map_err(|e| AgentError::internal("killing container", e))?;
        if !self.wait_exited(id, Duration::from_secs(10)).await {
            return Err(AgentError::Internal(format!(
                "container {id} did not exit after SIGKILL"
            )));
        }
        Ok(())
    }

    async fn wait_exited(&self, id: &str, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            match self.container(id) {
                None => return true,
                Some(c) if c.state == ContainerState::Exited => return true,
                _ => {}
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Removes a container (killing it if running). Idempotent.
    pub async fn remove_container(self: &Arc<Self>, id: &str) -> AgentResult<()> {
        let lock = self.lock_for(id);
        let _held = lock.lock().await;
        self.remove_container_inner(id).await?;
        drop(_held);
        self.forget_lock(id);
        Ok(())
    }

    pub(super) async fn remove_container_inner(&self, id: &str) -> AgentResult<()> {
        let Some(c) = self.container(id) else {
            return Ok(());
        };
        self.stop_container_inner(id, 0).await?;
        self.cleanup_container_files(&c).await;
        self.drop_container(id);
        Ok(())
    }

    /// runc delete, rootfs unmount and bundle removal; each tolerates absence.
    pub(super) async fn cleanup_container_files(&self, c: &ContainerRecord) {
        if let Err(e) = self.runc.delete(&c.id).await {
            tracing::warn!(id = %c.id, error = %e, "runc delete");
        }
        if let Err(e) = unmount_rootfs(&c.bundle) {
            tracing::warn!(id = %c.id, error = %e, "unmounting rootfs");
        }
        if let Err(e) = std::fs::remove_dir_all(&c.bundle) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(id = %c.id, error = %e, "removing bundle");
            }
        }
    }

    /// Runs a command in a running container and returns its output.
    pub async fn exec_sync(
        &self,
        id: &str,
        cmd: Vec<String>,
        timeout: i64,
    ) -> AgentResult<ExecResult> {
        let c = self.running_container(id)?;
        if cmd.is_empty() {
            return Err(AgentError::InvalidArgument("exec needs a command".into()));
        }
        let pid_file = c.bundle.join(format!("exec-{}.pid", &new_id()[..12]));
        let limit = (timeout > 0).then(|| Duration::from_secs(timeout as u64));
        let out = self
            .runc
            .exec(id, &cmd, limit, &pid_file)
            .await
            .map_err(|e| AgentError::internal("exec", e))?;
        if out.timed_out {
            return Err(AgentError::DeadlineExceeded(format!(
                "command {cmd:?} timed out after {timeout}s"
            )));
        }
        Ok(ExecResult {
            stdout: out.stdout,
            stderr: out.stderr,
            exit_code: out.exit_code,
        })
    }

    /// Asks the container's monitor to reopen its log file.
    pub async fn reopen_log(&self, id: &str) -> AgentResult<()> {
        let c = self.running_container(id)?;
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(c.monitor_pid),
            nix::sys::signal::Signal::SIGUSR1,
        )
        .map_err(|e| AgentError::internal("signalling the log monitor", e))?;
        let path = PathBuf::from(&c.log_path);
        for _ in 0..200 {
            if path.exists() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Err(AgentError::Internal(format!(
            "log {} was not reopened",
            c.log_path
        )))
    }

    /// Applies new CPU/memory limits to a running container.
    pub async fn update_resources(
        &self,
        id: &str,
        r: api::LinuxContainerResources,
    ) -> AgentResult<()> {
        let c = self
            .container(id)
            .ok_or_else(|| AgentError::NotFound(format!("container {id} not found")))?;
        if matches!(c.state, ContainerState::Running | ContainerState::Created) {
            self.runc
                .update(id, &linux_resources_json(&r))
                .await
                .map_err(|e| AgentError::internal("updating resources", e))?;
        }
        self.update_container(id, |rec| rec.resources = r.encode_to_vec());
        Ok(())
    }
}
