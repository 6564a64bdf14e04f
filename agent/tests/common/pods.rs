//! CRI helpers shared by the pod tests: sandbox and container configs, run/start,
//! status polling, exec, pod IPs, logs, and a registry + agent with busybox pulled.

use super::agent::TestAgent;
use super::registry::Registry;
use kprov_agent::api;
use kprov_agent::api::runtime_service_client::RuntimeServiceClient;
use std::collections::HashMap;
use std::time::Duration;
use tonic::transport::Channel;

pub type Rt = RuntimeServiceClient<Channel>;

pub fn sandbox_config(a: &TestAgent, name: &str) -> api::PodSandboxConfig {
    api::PodSandboxConfig {
        metadata: Some(api::PodSandboxMetadata {
            name: name.into(),
            uid: format!("uid-{name}"),
            namespace: "default".into(),
            attempt: 0,
        }),
        hostname: name.into(),
        log_directory: a.path().join("logs").join(name).display().to_string(),
        labels: HashMap::from([("app".to_string(), name.to_string())]),
        linux: Some(api::LinuxPodSandboxConfig {
            cgroup_parent: a.cgroup_parent.clone(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub fn container_config(image: &str, name: &str, cmd: &[&str]) -> api::ContainerConfig {
    api::ContainerConfig {
        metadata: Some(api::ContainerMetadata {
            name: name.into(),
            attempt: 0,
        }),
        image: Some(api::ImageSpec {
            image: image.into(),
            ..Default::default()
        }),
        command: cmd.iter().map(|s| s.to_string()).collect(),
        log_path: format!("{name}/0.log"),
        labels: HashMap::from([("container".to_string(), name.to_string())]),
        linux: Some(api::LinuxContainerConfig {
            resources: Some(api::LinuxContainerResources {
                memory_limit_in_bytes: 128 << 20,
                cpu_shares: 256,
                oom_score_adj: -998,
                ..Default::default()
            }),
            security_context: Some(api::LinuxContainerSecurityContext {
                seccomp: Some(api::SecurityProfile {
                    profile_type: 0,
                    localhost_ref: String::new(),
                }),
                namespace_options: Some(api::NamespaceOption {
                    pid: api::NamespaceMode::Container as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }),
        }),
        ..Default::default()
    }
}

pub async fn run_pod(rt: &mut Rt, cfg: &api::PodSandboxConfig) -> String {
    rt.run_pod_sandbox(api::RunPodSandboxRequest {
        config: Some(cfg.clone()),
        runtime_handler: String::new(),
    })
    .await
    .expect("RunPodSandbox")
    .into_inner()
    .pod_sandbox_id
}

pub async fn start_container(
    rt: &mut Rt,
    pod: &str,
    pod_cfg: &api::PodSandboxConfig,
    cfg: api::ContainerConfig,
) -> String {
    let id = rt
        .create_container(api::CreateContainerRequest {
            pod_sandbox_id: pod.into(),
            config: Some(cfg),
            sandbox_config: Some(pod_cfg.clone()),
        })
        .await
        .expect("CreateContainer")
        .into_inner()
        .container_id;
    rt.start_container(api::StartContainerRequest {
        container_id: id.clone(),
    })
    .await
    .expect("StartContainer");
    id
}

pub async fn status(rt: &mut Rt, id: &str) -> api::ContainerStatusResponse {
    rt.container_status(api::ContainerStatusRequest {
        container_id: id.into(),
        verbose: true,
    })
    .await
    .expect("ContainerStatus")
    .into_inner()
}

pub async fn wait_exited(rt: &mut Rt, id: &str) -> api::ContainerStatus {
    for _ in 0..200 {
        let s = status(rt, id).await.status.unwrap();
        if s.state == api::ContainerState::ContainerExited as i32 {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("container {id} did not exit");
}

pub async fn exec(rt: &mut Rt, id: &str, cmd: &[&str]) -> (String, i32) {
    let r = rt
        .exec_sync(api::ExecSyncRequest {
            container_id: id.into(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            timeout: 10,
        })
        .await
        .expect("ExecSync")
        .into_inner();
    (String::from_utf8_lossy(&r.stdout).into_owned(), r.exit_code)
}

pub async fn pod_ip(rt: &mut Rt, pod: &str) -> String {
    rt.pod_sandbox_status(api::PodSandboxStatusRequest {
        pod_sandbox_id: pod.into(),
        verbose: false,
    })
    .await
    .unwrap()
    .into_inner()
    .status
    .unwrap()
    .network
    .unwrap()
    .ip
}

pub async fn wait_log(path: &std::path::Path, needle: &str) -> String {
    for _ in 0..100 {
        let t = std::fs::read_to_string(path).unwrap_or_default();
        if t.contains(needle) {
            return t;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "{} never contained {needle:?}: {:?}",
        path.display(),
        std::fs::read_to_string(path)
    );
}

pub async fn pull(a: &TestAgent, image: &str) {
    a.images()
        .await
        .pull_image(api::PullImageRequest {
            image: Some(api::ImageSpec {
                image: image.into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect("PullImage");
}

pub async fn setup(net: u8) -> (Registry, TestAgent, String) {
    setup_with(net, "").await
}

/// [`setup`] with `extra_toml` appended to the agent's config.
pub async fn setup_with(net: u8, extra_toml: &str) -> (Registry, TestAgent, String) {
    let reg = Registry::start();
    let base = super::images::gzip(super::images::busybox_tar());
    super::images::push(&reg.host, "test/busybox:1", &[base], &["/bin/sh"], "amd64").await;
    let hosts = format!(
        "[registry.hosts.\"{}\"]\nplain_http = true\n{extra_toml}",
        reg.host
    );
    let a = TestAgent::start_with(&hosts, net, true);
    let image = format!("{}/test/busybox:1", reg.host);
    pull(&a, &image).await;
    (reg, a, image)
}
