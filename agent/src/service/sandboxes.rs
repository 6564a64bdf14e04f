//! RunPodSandbox, StopPodSandbox, RemovePodSandbox.

use super::{Agent, AgentError, AgentResult};
use crate::api;
use crate::cni::{result_ip, PodRef};
use crate::sandbox::{
    pin_namespaces, pod_init, unpin, write_hosts, write_pod_files, Dns, PinnedNamespaces,
};
use crate::state::{PortMap, SandboxRecord, SandboxState};
use crate::util::{new_id, now_nanos};
use serde_json::json;
use std::sync::Arc;

impl Agent {
    /// Creates a sandbox; a retry with the same name gets the sandbox a timed-out call made.
    pub async fn run_sandbox(
        self: &Arc<Self>,
        config: api::PodSandboxConfig,
        handler: String,
    ) -> AgentResult<String> {
        if !handler.is_empty() && handler != "runc" {
            return Err(AgentError::InvalidArgument(format!(
                "unknown runtime handler {handler:?} (this agent has \"runc\")"
            )));
        }
        let md = config
            .metadata
            .clone()
            .ok_or_else(|| AgentError::InvalidArgument("sandbox config has no metadata".into()))?;
        if md.name.is_empty() || md.namespace.is_empty() || md.uid.is_empty() {
            return Err(AgentError::InvalidArgument(
                "sandbox metadata needs name, namespace and uid".into(),
            ));
        }
        let key = format!(
            "sandbox:{}_{}_{}_{}",
            md.name, md.namespace, md.uid, md.attempt
        );
        let this = self.clone();
        // Run detached: a caller that gives up must not cut the create half-way.
        tokio::spawn(async move {
            let lock = this.lock_for(&key);
            let _held = lock.lock().await;
            let existing = this.sandbox_list().into_iter().find(|s| {
                s.name == md.name
                    && s.namespace == md.namespace
                    && s.uid == md.uid
                    && s.attempt == md.attempt
            });
            if let Some(s) = existing {
                return Ok(s.id);
            }
            this.create_sandbox(config, md, handler).await
        })
        .await
        .map_err(|e| AgentError::internal("sandbox task", e))?
    }

    async fn create_sandbox(
        &self,
        config: api::PodSandboxConfig,
        md: api::PodSandboxMetadata,
        handler: String,
    ) -> AgentResult<String> {
        let linux = config.linux.clone().unwrap_or_default();
        let ns = linux
            .security_context
            .as_ref()
            .and_then(|s| s.namespace_options.clone())
            .unwrap_or_default();
        let host_network = ns.network == api::NamespaceMode::Node as i32;
        let pod_pid = ns.pid == api::NamespaceMode::Pod as i32;
        let host_ipc = ns.ipc == api::NamespaceMode::Node as i32;
        if !host_network && !self.network_ready() {
            return Err(AgentError::FailedPrecondition(
                "NetworkPluginNotReady: no CNI config in the CNI config dir".into(),
            ));
        }
        let id = new_id();
        let dir = self.cfg.run_dir.join("sandboxes").join(&id);
        let mut rec = SandboxRecord {
            id: id.clone(),
            name: md.name.clone(),
            namespace: md.namespace.clone(),
            uid: md.uid.clone(),
            attempt: md.attempt,
            created_at: now_nanos(),
            state: SandboxState::Creating,
            labels: config.labels.clone(),
            annotations: config.annotations.clone(),
            runtime_handler: handler,
            hostname: config.hostname.clone(),
            log_directory: config.log_directory.clone(),
            cgroup_parent: linux.cgroup_parent.clone(),
            host_network,
            host_ipc,
            netns: None,
            ipcns: None,
            utsns: None,
            pidns: pod_pid.then(|| dir.join("ns").join("pid")),
            pod_init_pid: 0,
            dir: dir.clone(),
            port_mappings: config
                .port_mappings
                .iter()
                .map(|p| PortMap {
                    protocol: match api::Protocol::try_from(p.protocol) {
                        Ok(api::Protocol::Udp) => "udp",
                        Ok(api::Protocol::Sctp) => "sctp",
                        _ => "tcp",
                    }
                    .into(),
                    container_port: p.container_port,
                    host_port: p.host_port,
                    host_ip: p.host_ip.clone(),
                })
                .collect(),
            sysctls: linux.sysctls.clone(),
            cni_result: None,
            network_attached: false,
            ip: String::new(),
        };
        self.put_sandbox(&rec)?;
        match self.setup_sandbox(&mut rec, &config).await {
            Ok(()) => Ok(id),
            Err(e) => {
                tracing::warn!(id, error = %e, "sandbox create failed; undoing");
                self.discard_sandbox(&rec).await;
                Err(e)
            }
        }
    }

    async fn setup_sandbox(
        &self,
        rec: &mut SandboxRecord,
        config: &api::PodSandboxConfig,
    ) -> AgentResult<()> {
        std::fs::create_dir_all(&rec.dir)?;
        let (dir, hostname) = (rec.dir.clone(), rec.hostname.clone());
        let (net, ipc) = (!rec.host_network, !rec.host_ipc);
        let pins = tokio::task::spawn_blocking(move || {
            pin_namespaces(&dir.join("ns"), net, ipc, net, &hostname)
        })
        .await
        .map_err(|e| AgentError::internal("namespace task", e))?
        .map_err(|e| AgentError::internal("creating pod namespaces", e))?;
        rec.netns = pins.net;
        rec.ipcns = pins.ipc;
        rec.utsns = pins.uts;
        self.put_sandbox(rec)?;
        if let Some(pin) = rec.pidns.clone() {
            let (exe, dir) = (self.monitor_exe.clone(), rec.dir.clone());
            rec.pod_init_pid =
                tokio::task::spawn_blocking(move || pod_init::start(&exe, &dir, &pin))
                    .await
                    .map_err(|e| AgentError::internal("pod init task", e))?
                    .map_err(|e| AgentError::internal("starting the pod's init", e))?;
            self.put_sandbox(rec)?;
        }
        let dns = config.dns_config.clone().unwrap_or_default();
        write_pod_files(
            &rec.dir,
            &rec.hostname,
            Dns {
                servers: &dns.servers,
                searches: &dns.searches,
                options: &dns.options,
            },
            &self.cfg.sandbox.host_resolv_conf,
        )?;
        if !rec.host_ipc {
            let shm = rec.dir.join("shm");
            std::fs::create_dir_all(&shm)?;
            nix::mount::mount(
                Some("shm"),
                &shm,
                Some("tmpfs"),
                nix::mount::MsFlags::MS_NOSUID
                    | nix::mount::MsFlags::MS_NODEV
                    | nix::mount::MsFlags::MS_NOEXEC,
                Some("mode=1777,size=65536k"),
            )
            .map_err(|e| AgentError::internal("mounting pod shm", e))?;
        }
        if let Some(netns) = rec.netns.clone() {
            let net = self
                .cni
                .load()
                .map_err(|e| AgentError::FailedPrecondition(e.to_string()))?;
            rec.network_attached = true;
            self.put_sandbox(rec)?;
            let netns_s = netns.display().to_string();
            let pod = PodRef {
                sandbox_id: &rec.id,
                netns: &netns_s,
                name: &rec.name,
                namespace: &rec.namespace,
                uid: &rec.uid,
            };
            let result = self
                .cni
                .add(&net, &pod, &port_mappings_json(rec))
                .await
                .map_err(|e| AgentError::internal("pod network", e))?;
            rec.ip = result_ip(&result).unwrap_or_default();
            rec.cni_result = Some(result);
            write_hosts(&rec.dir, &rec.hostname, &rec.ip)?;
        }
        rec.state = SandboxState::Ready;
        self.put_sandbox(rec)
    }

    /// Undoes a sandbox create that did not finish: network, namespaces, files, record.
    pub(super) async fn discard_sandbox(&self, rec: &SandboxRecord) {
        if let Some(e) = self.teardown_sandbox(rec).await {
            tracing::warn!(id = %rec.id, error = %e, "undoing sandbox network");
        }
        if let Err(e) = std::fs::remove_dir_all(&rec.dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(id = %rec.id, error = %e, "removing sandbox dir");
            }
        }
        self.drop_sandbox(&rec.id);
    }

    /// Releases network, namespaces and mounts of a sandbox; each step tolerates
    /// what is already gone. Returns the first network error (kubelet retries).
    pub(super) async fn teardown_sandbox(&self, rec: &SandboxRecord) -> Option<AgentError> {
        let mut err = None;
        if rec.network_attached {
            let netns = rec
                .netns
                .as_ref()
                .filter(|p| crate::cni::netns_exists(p))
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            let pod = PodRef {
                sandbox_id: &rec.id,
                netns: &netns,
                name: &rec.name,
                namespace: &rec.namespace,
                uid: &rec.uid,
            };
            let res = match self.cni.load() {
                Ok(net) => {
                    self.cni
                        .del(
                            &net,
                            &pod,
                            rec.cni_result.as_ref(),
                            &port_mappings_json(rec),
                        )
                        .await
                }
                Err(e) => Err(e),
            };
            match res {
                Ok(()) => {
                    let mut r = rec.clone();
                    r.network_attached = false;
                    if self.sandbox(&rec.id).is_some() {
                        let _ = self.put_sandbox(&r);
                    }
                }
                Err(e) => {
                    tracing::warn!(id = %rec.id, error = %e, "CNI DEL failed");
                    err = Some(AgentError::internal("releasing pod network", e));
                }
            }
        }
        if let Some(pin) = &rec.pidns {
            pod_init::stop(rec.pod_init_pid, pin);
        }
        unpin(&PinnedNamespaces {
            net: rec.netns.clone(),
            ipc: rec.ipcns.clone(),
            uts: rec.utsns.clone(),
        });
        let shm = rec.dir.join("shm");
        let _ = nix::mount::umount2(&shm, nix::mount::MntFlags::MNT_DETACH);
        err
    }

    /// Stops every container of the sandbox and releases its network. Idempotent.
    pub async fn stop_sandbox(self: &Arc<Self>, id: &str) -> AgentResult<()> {
        let lock = self.lock_for(id);
        let _held = lock.lock().await;
        let Some(rec) = self.sandbox(id) else {
            return Ok(());
        };
        for c in self
            .container_list()
            .into_iter()
            .filter(|c| c.sandbox_id == id)
        {
            self.stop_container_inner(&c.id, 0).await?;
        }
        let err = self.teardown_sandbox(&rec).await;
        if let Some(mut r) = self.sandbox(id) {
            r.state = SandboxState::NotReady;
            self.put_sandbox(&r)?;
        }
        match err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Removes the sandbox, its containers and files. Idempotent.
    pub async fn remove_sandbox(self: &Arc<Self>, id: &str) -> AgentResult<()> {
        if self.sandbox(id).is_none() {
            return Ok(());
        }
        self.stop_sandbox(id).await?;
        let lock = self.lock_for(id);
        let _held = lock.lock().await;
        for c in self
            .container_list()
            .into_iter()
            .filter(|c| c.sandbox_id == id)
        {
            self.remove_container_inner(&c.id).await?;
        }
        if let Some(rec) = self.sandbox(id) {
            if let Err(e) = std::fs::remove_dir_all(&rec.dir) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    return Err(AgentError::internal("removing sandbox dir", e));
                }
            }
        }
        self.drop_sandbox(id);
        drop(_held);
        self.forget_lock(id);
        Ok(())
    }
}

fn port_mappings_json(rec: &SandboxRecord) -> Vec<serde_json::Value> {
    rec.port_mappings
        .iter()
        .filter(|p| p.host_port > 0)
        .map(|p| {
            let mut v = json!({
                "hostPort": p.host_port,
                "containerPort": p.container_port,
                "protocol": p.protocol,
            });
            if !p.host_ip.is_empty() {
                v["hostIP"] = json!(p.host_ip);
            }
            v
        })
        .collect()
}
