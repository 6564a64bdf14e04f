//! RuntimeService handlers.

use super::convert::{
    container_metadata, container_status, container_summary, sandbox_status, sandbox_summary,
};
use super::{CRI_VERSION, RUNTIME_NAME};
use crate::api::{self, runtime_service_server::RuntimeService};
use crate::config::CgroupDriver;
use crate::container::read_cgroup_stats;
use crate::service::Agent;
use crate::state::{ContainerRecord, ContainerState, SandboxState};
use crate::stream::{Pending, StdioOpts, StreamServer};
use crate::util::{labels_match, now_nanos};
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// Serves `runtime.v1.RuntimeService`; the unimplemented RPC (checkpointing)
/// answers UNIMPLEMENTED.
pub struct RuntimeHandler {
    agent: Arc<Agent>,
    streams: Arc<StreamServer>,
}

impl RuntimeHandler {
    pub fn new(agent: Arc<Agent>, streams: Arc<StreamServer>) -> Self {
        Self { agent, streams }
    }
}

fn required(id: &str, what: &str) -> Result<(), Status> {
    if id.is_empty() {
        Err(Status::invalid_argument(format!("{what} is required")))
    } else {
        Ok(())
    }
}

fn u64v(value: u64) -> Option<api::UInt64Value> {
    Some(api::UInt64Value { value })
}

fn container_stats(c: &ContainerRecord) -> api::ContainerStats {
    let pid = if c.state == ContainerState::Running {
        c.pid
    } else {
        0
    };
    let s = read_cgroup_stats(pid, &c.cgroups_path);
    let ts = now_nanos();
    api::ContainerStats {
        attributes: Some(api::ContainerAttributes {
            id: c.id.clone(),
            metadata: Some(container_metadata(c)),
            labels: c.labels.clone(),
            annotations: c.annotations.clone(),
        }),
        cpu: Some(api::CpuUsage {
            timestamp: ts,
            usage_core_nano_seconds: u64v(s.cpu_usage_ns),
            usage_nano_cores: None,
        }),
        memory: Some(api::MemoryUsage {
            timestamp: ts,
            working_set_bytes: u64v(s.working_set),
            available_bytes: (s.memory_limit > 0 && s.memory_limit < u64::MAX / 2).then(|| {
                api::UInt64Value {
                    value: s.memory_limit.saturating_sub(s.working_set),
                }
            }),
            usage_bytes: u64v(s.memory_usage),
            rss_bytes: u64v(s.rss),
            page_faults: u64v(s.page_faults),
            major_page_faults: u64v(s.major_page_faults),
        }),
        writable_layer: Some(api::FilesystemUsage {
            timestamp: ts,
            fs_id: Some(api::FilesystemIdentifier {
                mountpoint: c.bundle.join("upper").display().to_string(),
            }),
            used_bytes: u64v(0),
            inodes_used: u64v(0),
        }),
        swap: None,
    }
}

/// rx/tx bytes and errors of `eth0` as seen by process `pid` (its network namespace).
fn pod_network(pid: i32) -> Option<api::NetworkUsage> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/net/dev")).ok()?;
    let line = text.lines().find(|l| l.trim_start().starts_with("eth0:"))?;
    let f: Vec<u64> = line
        .split_once(':')?
        .1
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    let iface = api::NetworkInterfaceUsage {
        name: "eth0".into(),
        rx_bytes: u64v(*f.first()?),
        rx_errors: u64v(*f.get(2)?),
        tx_bytes: u64v(*f.get(8)?),
        tx_errors: u64v(*f.get(10)?),
    };
    Some(api::NetworkUsage {
        timestamp: now_nanos(),
        default_interface: Some(iface.clone()),
        interfaces: vec![iface],
    })
}

/// Pod stats: the sum of its running containers' cgroup stats, plus eth0 traffic.
fn pod_stats(
    s: &crate::state::SandboxRecord,
    containers: &[ContainerRecord],
) -> api::PodSandboxStats {
    let ts = now_nanos();
    let stats: Vec<api::ContainerStats> = containers.iter().map(container_stats).collect();
    let sum = |f: &dyn Fn(&api::ContainerStats) -> u64| stats.iter().map(f).sum::<u64>();
    let cpu = sum(&|c| {
        c.cpu
            .as_ref()
            .and_then(|x| x.usage_core_nano_seconds.as_ref())
            .map(|v| v.value)
            .unwrap_or(0)
    });
    let ws = sum(&|c| {
        c.memory
            .as_ref()
            .and_then(|x| x.working_set_bytes.as_ref())
            .map(|v| v.value)
            .unwrap_or(0)
    });
    let usage = sum(&|c| {
        c.memory
            .as_ref()
            .and_then(|x| x.usage_bytes.as_ref())
            .map(|v| v.value)
            .unwrap_or(0)
    });
    let rss = sum(&|c| {
        c.memory
            .as_ref()
            .and_then(|x| x.rss_bytes.as_ref())
            .map(|v| v.value)
            .unwrap_or(0)
    });
    let network = if s.host_network {
        None
    } else {
        containers.iter().find_map(|c| pod_network(c.pid))
    };
    api::PodSandboxStats {
        attributes: Some(api::PodSandboxAttributes {
            id: s.id.clone(),
            metadata: Some(super::convert::sandbox_metadata(s)),
            labels: s.labels.clone(),
            annotations: s.annotations.clone(),
        }),
        linux: Some(api::LinuxPodSandboxStats {
            cpu: Some(api::CpuUsage {
                timestamp: ts,
                usage_core_nano_seconds: u64v(cpu),
                usage_nano_cores: None,
            }),
            memory: Some(api::MemoryUsage {
                timestamp: ts,
                working_set_bytes: u64v(ws),
                usage_bytes: u64v(usage),
                rss_bytes: u64v(rss),
                ..Default::default()
            }),
            network,
            process: Some(api::ProcessUsage {
                timestamp: ts,
                process_count: u64v(containers.len() as u64),
            }),
            containers: stats,
        }),
        windows: None,
    }
}

impl RuntimeHandler {
    /// Checks an Exec/Attach request: a running container and a sane stdio choice.
    fn stream_target(&self, id: &str, o: StdioOpts) -> Result<(), Status> {
        required(id, "container_id")?;
        if !(o.stdin || o.stdout || o.stderr) {
            return Err(Status::invalid_argument(
                "one of stdin, stdout, or stderr must be set",
            ));
        }
        if o.tty && o.stderr {
            return Err(Status::invalid_argument(
                "tty and stderr cannot both be true",
            ));
        }
        self.agent
            .stream_exec_target(id)
            .map(|_| ())
            .map_err(Status::from)
    }

    fn running_in(&self, sandbox_id: &str) -> Vec<ContainerRecord> {
        self.agent
            .container_list()
            .into_iter()
            .filter(|c| c.sandbox_id == sandbox_id && c.state == ContainerState::Running)
            .collect()
    }
}

#[tonic::async_trait]
impl RuntimeService for RuntimeHandler {
    async fn pod_sandbox_stats(
        &self,
        r: Request<api::PodSandboxStatsRequest>,
    ) -> Result<Response<api::PodSandboxStatsResponse>, Status> {
        let id = r.into_inner().pod_sandbox_id;
        let s = self
            .agent
            .sandbox(&id)
            .filter(|s| s.state != SandboxState::Creating)
            .ok_or_else(|| Status::not_found(format!("sandbox {id:?} not found")))?;
        let containers = self.running_in(&s.id);
        let stats = tokio::task::spawn_blocking(move || pod_stats(&s, &containers))
            .await
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(api::PodSandboxStatsResponse {
            stats: Some(stats),
        }))
    }

    async fn list_pod_sandbox_stats(
        &self,
        r: Request<api::ListPodSandboxStatsRequest>,
    ) -> Result<Response<api::ListPodSandboxStatsResponse>, Status> {
        let f = r.into_inner().filter.unwrap_or_default();
        let pods: Vec<_> = self
            .agent
            .sandbox_list()
            .into_iter()
            .filter(|s| s.state == SandboxState::Ready)
            .filter(|s| f.id.is_empty() || s.id.starts_with(&f.id))
            .filter(|s| labels_match(&f.label_selector, &s.labels))
            .map(|s| {
                let c = self.running_in(&s.id);
                (s, c)
            })
            .collect();
        let stats = tokio::task::spawn_blocking(move || {
            pods.iter().map(|(s, c)| pod_stats(s, c)).collect()
        })
        .await
        .map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(api::ListPodSandboxStatsResponse { stats }))
    }

    async fn version(
        &self,
        _r: Request<api::VersionRequest>,
    ) -> Result<Response<api::VersionResponse>, Status> {
        Ok(Response::new(api::VersionResponse {
            version: CRI_VERSION.into(),
            runtime_name: RUNTIME_NAME.into(),
            runtime_version: env!("CARGO_PKG_VERSION").into(),
            runtime_api_version: "v1".into(),
        }))
    }

    async fn status(
        &self,
        _r: Request<api::StatusRequest>,
    ) -> Result<Response<api::StatusResponse>, Status> {
        let net = self.agent.network_ready();
        Ok(Response::new(api::StatusResponse {
            status: Some(api::RuntimeStatus {
                conditions: vec![
                    api::RuntimeCondition {
                        r#type: "RuntimeReady".into(),
                        status: true,
                        reason: String::new(),
                        message: String::new(),
                    },
                    api::RuntimeCondition {
                        r#type: "NetworkReady".into(),
                        status: net,
                        reason: if net {
                            String::new()
                        } else {
                            "NetworkPluginNotReady".into()
                        },
                        message: if net {
                            String::new()
                        } else {
                            "cni plugin not initialized".into()
                        },
                    },
                ],
            }),
            info: Default::default(),
            runtime_handlers: vec![api::RuntimeHandler {
                name: String::new(),
                features: Some(api::RuntimeHandlerFeatures {
                    recursive_read_only_mounts: false,
                    user_namespaces: false,
                }),
            }],
            features: Some(api::RuntimeFeatures {
                supplemental_groups_policy: false,
            }),
        }))
    }

    async fn runtime_config(
        &self,
        _r: Request<api::RuntimeConfigRequest>,
    ) -> Result<Response<api::RuntimeConfigResponse>, Status> {
        let driver = match self.agent.cgroup_driver() {
            CgroupDriver::Systemd => api::CgroupDriver::Systemd,
            CgroupDriver::Cgroupfs => api::CgroupDriver::Cgroupfs,
        };
        Ok(Response::new(api::RuntimeConfigResponse {
            linux: Some(api::LinuxRuntimeConfiguration {
                cgroup_driver: driver as i32,
            }),
        }))
    }

    async fn update_runtime_config(
        &self,
        r: Request<api::UpdateRuntimeConfigRequest>,
    ) -> Result<Response<api::UpdateRuntimeConfigResponse>, Status> {
        let cidr = r
            .into_inner()
            .runtime_config
            .and_then(|c| c.network_config)
            .map(|n| n.pod_cidr)
            .unwrap_or_default();
        self.agent.set_pod_cidr(&cidr);
        Ok(Response::new(api::UpdateRuntimeConfigResponse {}))
    }

    async fn run_pod_sandbox(
        &self,
        r: Request<api::RunPodSandboxRequest>,
    ) -> Result<Response<api::RunPodSandboxResponse>, Status> {
        let r = r.into_inner();
        let config = r
            .config
            .ok_or_else(|| Status::invalid_argument("config is required"))?;
        let id = self.agent.run_sandbox(config, r.runtime_handler).await?;
        Ok(Response::new(api::RunPodSandboxResponse {
            pod_sandbox_id: id,
        }))
    }

    async fn stop_pod_sandbox(
        &self,
        r: Request<api::StopPodSandboxRequest>,
    ) -> Result<Response<api::StopPodSandboxResponse>, Status> {
        let id = r.into_inner().pod_sandbox_id;
        required(&id, "pod_sandbox_id")?;
        self.agent.stop_sandbox(&id).await?;
        Ok(Response::new(api::StopPodSandboxResponse {}))
    }

    async fn remove_pod_sandbox(
        &self,
        r: Request<api::RemovePodSandboxRequest>,
    ) -> Result<Response<api::RemovePodSandboxResponse>, Status> {
        let id = r.into_inner().pod_sandbox_id;
        required(&id, "pod_sandbox_id")?;
        self.agent.remove_sandbox(&id).await?;
        Ok(Response::new(api::RemovePodSandboxResponse {}))
    }

    async fn pod_sandbox_status(
        &self,
        r: Request<api::PodSandboxStatusRequest>,
    ) -> Result<Response<api::PodSandboxStatusResponse>, Status> {
        let r = r.into_inner();
        let s = self
            .agent
            .sandbox(&r.pod_sandbox_id)
            .filter(|s| s.state != SandboxState::Creating)
            .ok_or_else(|| {
                Status::not_found(format!("sandbox {:?} not found", r.pod_sandbox_id))
            })?;
        let mut info = std::collections::HashMap::new();
        if r.verbose {
            info.insert(
                "info".to_string(),
                serde_json::json!({"netns": s.netns, "ip": s.ip, "cgroupParent": s.cgroup_parent})
                    .to_string(),
            );
        }
        Ok(Response::new(api::PodSandboxStatusResponse {
            status: Some(sandbox_status(&s)),
            info,
            containers_statuses: vec![],
            timestamp: now_nanos(),
        }))
    }

    async fn list_pod_sandbox(
        &self,
        r: Request<api::ListPodSandboxRequest>,
    ) -> Result<Response<api::ListPodSandboxResponse>, Status> {
        let f = r.into_inner().filter.unwrap_or_default();
        let items = self
            .agent
            .sandbox_list()
            .iter()
            .filter(|s| s.state != SandboxState::Creating)
            .filter(|s| f.id.is_empty() || s.id.starts_with(&f.id))
            .filter(|s| {
                f.state
                    .as_ref()
                    .map(|st| st.state == super::convert::sandbox_state(s.state) as i32)
                    .unwrap_or(true)
            })
            .filter(|s| labels_match(&f.label_selector, &s.labels))
            .map(sandbox_summary)
            .collect();
        Ok(Response::new(api::ListPodSandboxResponse { items }))
    }

    async fn create_container(
        &self,
        r: Request<api::CreateContainerRequest>,
    ) -> Result<Response<api::CreateContainerResponse>, Status> {
        let r = r.into_inner();
        required(&r.pod_sandbox_id, "pod_sandbox_id")?;
        let config = r
            .config
            .ok_or_else(|| Status::invalid_argument("config is required"))?;
        let id = self
            .agent
            .create_container(r.pod_sandbox_id, config)
            .await?;
        Ok(Response::new(api::CreateContainerResponse {
            container_id: id,
        }))
    }

    async fn start_container(
        &self,
        r: Request<api::StartContainerRequest>,
    ) -> Result<Response<api::StartContainerResponse>, Status> {
        let id = r.into_inner().container_id;
        required(&id, "container_id")?;
        self.agent.start_container(&id).await?;
        Ok(Response::new(api::StartContainerResponse {}))
    }

    async fn stop_container(
        &self,
        r: Request<api::StopContainerRequest>,
    ) -> Result<Response<api::StopContainerResponse>, Status> {
        let r = r.into_inner();
        required(&r.container_id, "container_id")?;
        self.agent
            .stop_container(&r.container_id, r.timeout)
            .await?;
        Ok(Response::new(api::StopContainerResponse {}))
    }

    async fn remove_container(
        &self,
        r: Request<api::RemoveContainerRequest>,
    ) -> Result<Response<api::RemoveContainerResponse>, Status> {
        let id = r.into_inner().container_id;
        required(&id, "container_id")?;
        self.agent.remove_container(&id).await?;
        Ok(Response::new(api::RemoveContainerResponse {}))
    }

    async fn list_containers(
        &self,
        r: Request<api::ListContainersRequest>,
    ) -> Result<Response<api::ListContainersResponse>, Status> {
        let f = r.into_inner().filter.unwrap_or_default();
        let containers = self
            .agent
            .container_list()
            .iter()
            .filter(|c| c.state != ContainerState::Creating)
            .filter(|c| f.id.is_empty() || c.id.starts_with(&f.id))
            .filter(|c| f.pod_sandbox_id.is_empty() || c.sandbox_id.starts_with(&f.pod_sandbox_id))
            .filter(|c| {
                f.state
                    .as_ref()
                    .map(|st| st.state == super::convert::container_state(c.state) as i32)
                    .unwrap_or(true)
            })
            .filter(|c| labels_match(&f.label_selector, &c.labels))
            .map(container_summary)
            .collect();
        Ok(Response::new(api::ListContainersResponse { containers }))
    }

    async fn container_status(
        &self,
        r: Request<api::ContainerStatusRequest>,
    ) -> Result<Response<api::ContainerStatusResponse>, Status> {
        let r = r.into_inner();
        let c = self
            .agent
            .container(&r.container_id)
            .filter(|c| c.state != ContainerState::Creating)
            .ok_or_else(|| {
                Status::not_found(format!("container {:?} not found", r.container_id))
            })?;
        let mut info = std::collections::HashMap::new();
        if r.verbose {
            info.insert(
                "info".to_string(),
                serde_json::json!({"pid": c.pid, "monitorPid": c.monitor_pid, "bundle": c.bundle, "cgroupsPath": c.cgroups_path}).to_string(),
            );
        }
        Ok(Response::new(api::ContainerStatusResponse {
            status: Some(container_status(&c)),
            info,
        }))
    }

    async fn update_container_resources(
        &self,
        r: Request<api::UpdateContainerResourcesRequest>,
    ) -> Result<Response<api::UpdateContainerResourcesResponse>, Status> {
        let r = r.into_inner();
        required(&r.container_id, "container_id")?;
        let linux = r
            .linux
            .ok_or_else(|| Status::invalid_argument("linux resources are required"))?;
        self.agent.update_resources(&r.container_id, linux).await?;
        Ok(Response::new(api::UpdateContainerResourcesResponse {}))
    }

    async fn reopen_container_log(
        &self,
        r: Request<api::ReopenContainerLogRequest>,
    ) -> Result<Response<api::ReopenContainerLogResponse>, Status> {
        let id = r.into_inner().container_id;
        required(&id, "container_id")?;
        self.agent.reopen_log(&id).await?;
        Ok(Response::new(api::ReopenContainerLogResponse {}))
    }

    async fn exec_sync(
        &self,
        r: Request<api::ExecSyncRequest>,
    ) -> Result<Response<api::ExecSyncResponse>, Status> {
        let r = r.into_inner();
        required(&r.container_id, "container_id")?;
        let out = self
            .agent
            .exec_sync(&r.container_id, r.cmd, r.timeout)
            .await?;
        Ok(Response::new(api::ExecSyncResponse {
            stdout: out.stdout,
            stderr: out.stderr,
            exit_code: out.exit_code,
        }))
    }

    async fn container_stats(
        &self,
        r: Request<api::ContainerStatsRequest>,
    ) -> Result<Response<api::ContainerStatsResponse>, Status> {
        let id = r.into_inner().container_id;
        let c = self
            .agent
            .container(&id)
            .filter(|c| c.state != ContainerState::Creating)
            .ok_or_else(|| Status::not_found(format!("container {id:?} not found")))?;
        let stats = tokio::task::spawn_blocking(move || container_stats(&c))
            .await
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(api::ContainerStatsResponse {
            stats: Some(stats),
        }))
    }

    async fn list_container_stats(
        &self,
        r: Request<api::ListContainerStatsRequest>,
    ) -> Result<Response<api::ListContainerStatsResponse>, Status> {
        let f = r.into_inner().filter.unwrap_or_default();
        let list: Vec<ContainerRecord> = self
            .agent
            .container_list()
            .into_iter()
            .filter(|c| c.state == ContainerState::Running)
            .filter(|c| f.id.is_empty() || c.id.starts_with(&f.id))
            .filter(|c| f.pod_sandbox_id.is_empty() || c.sandbox_id.starts_with(&f.pod_sandbox_id))
            .filter(|c| labels_match(&f.label_selector, &c.labels))
            .collect();
        let stats = tokio::task::spawn_blocking(move || list.iter().map(container_stats).collect())
            .await
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(api::ListContainerStatsResponse { stats }))
    }
    async fn exec(
        &self,
        r: Request<api::ExecRequest>,
    ) -> Result<Response<api::ExecResponse>, Status> {
        let r = r.into_inner();
        let opts = StdioOpts {
            stdin: r.stdin,
            stdout: r.stdout,
            stderr: r.stderr,
            tty: r.tty,
        };
        self.stream_target(&r.container_id, opts)?;
        if r.cmd.is_empty() {
            return Err(Status::invalid_argument("cmd is required"));
        }
        let url = self.streams.url_for(Pending::Exec {
            container_id: r.container_id,
            cmd: r.cmd,
            opts,
        });
        Ok(Response::new(api::ExecResponse { url }))
    }

    async fn attach(
        &self,
        r: Request<api::AttachRequest>,
    ) -> Result<Response<api::AttachResponse>, Status> {
        let r = r.into_inner();
        let opts = StdioOpts {
            stdin: r.stdin,
            stdout: r.stdout,
            stderr: r.stderr,
            tty: r.tty,
        };
        self.stream_target(&r.container_id, opts)?;
        // As containerd: the container's own tty setting decides; a tty=false
        // attach to a tty container gets the terminal's output on stdout. A
        // terminal asked of a container without one is refused.
        let target = self
            .agent
            .stream_attach_target(&r.container_id)
            .map_err(Status::from)?;
        if opts.tty && !target.tty {
            return Err(Status::failed_precondition(crate::stream::NO_TTY));
        }
        let url = self.streams.url_for(Pending::Attach {
            container_id: r.container_id,
            opts,
        });
        Ok(Response::new(api::AttachResponse { url }))
    }

    async fn get_container_events(
        &self,
        _r: Request<api::GetEventsRequest>,
    ) -> Result<Response<tonic::codegen::BoxStream<api::ContainerEventResponse>>, Status> {
        Ok(Response::new(super::events::stream(&self.agent)))
    }

    /// No metrics are described: kubelet then keeps to the stats calls.
    async fn list_metric_descriptors(
        &self,
        _r: Request<api::ListMetricDescriptorsRequest>,
    ) -> Result<Response<api::ListMetricDescriptorsResponse>, Status> {
        Ok(Response::new(api::ListMetricDescriptorsResponse::default()))
    }

    /// Empty, as the descriptors are.
    async fn list_pod_sandbox_metrics(
        &self,
        _r: Request<api::ListPodSandboxMetricsRequest>,
    ) -> Result<Response<api::ListPodSandboxMetricsResponse>, Status> {
        Ok(Response::new(api::ListPodSandboxMetricsResponse::default()))
    }

    async fn port_forward(
        &self,
        r: Request<api::PortForwardRequest>,
    ) -> Result<Response<api::PortForwardResponse>, Status> {
        let r = r.into_inner();
        required(&r.pod_sandbox_id, "pod_sandbox_id")?;
        if let Some(p) = r.port.iter().find(|p| !(1..=65535).contains(*p)) {
            return Err(Status::invalid_argument(format!("invalid port {p}")));
        }
        self.agent
            .stream_netns(&r.pod_sandbox_id)
            .map_err(Status::from)?;
        let url = self.streams.url_for(Pending::PortForward {
            sandbox_id: r.pod_sandbox_id,
        });
        Ok(Response::new(api::PortForwardResponse { url }))
    }
}
