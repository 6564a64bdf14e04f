//! Records → CRI messages.

use crate::api;
use crate::state::{ContainerRecord, ContainerState, SandboxRecord, SandboxState};
use prost::Message;

pub fn sandbox_state(s: SandboxState) -> api::PodSandboxState {
    match s {
        SandboxState::Ready => api::PodSandboxState::SandboxReady,
        _ => api::PodSandboxState::SandboxNotready,
    }
}

pub fn container_state(s: ContainerState) -> api::ContainerState {
    match s {
        ContainerState::Created | ContainerState::Creating => api::ContainerState::ContainerCreated,
        ContainerState::Running => api::ContainerState::ContainerRunning,
        ContainerState::Exited => api::ContainerState::ContainerExited,
        ContainerState::Unknown => api::ContainerState::ContainerUnknown,
    }
}

pub fn sandbox_metadata(s: &SandboxRecord) -> api::PodSandboxMetadata {
    api::PodSandboxMetadata {
        name: s.name.clone(),
        uid: s.uid.clone(),
        namespace: s.namespace.clone(),
        attempt: s.attempt,
    }
}

pub fn sandbox_summary(s: &SandboxRecord) -> api::PodSandbox {
    api::PodSandbox {
        id: s.id.clone(),
        metadata: Some(sandbox_metadata(s)),
        state: sandbox_state(s.state) as i32,
        created_at: s.created_at,
        labels: s.labels.clone(),
        annotations: s.annotations.clone(),
        runtime_handler: s.runtime_handler.clone(),
    }
}

pub fn sandbox_status(s: &SandboxRecord) -> api::PodSandboxStatus {
    let mode = |host: bool| {
        if host {
            api::NamespaceMode::Node as i32
        } else {
            api::NamespaceMode::Pod as i32
        }
    };
    api::PodSandboxStatus {
        id: s.id.clone(),
        metadata: Some(sandbox_metadata(s)),
        state: sandbox_state(s.state) as i32,
        created_at: s.created_at,
        network: Some(api::PodSandboxNetworkStatus {
            ip: s.ip.clone(),
            additional_ips: vec![],
        }),
        linux: Some(api::LinuxPodSandboxStatus {
            namespaces: Some(api::Namespace {
                options: Some(api::NamespaceOption {
                    network: mode(s.host_network),
                    pid: api::NamespaceMode::Container as i32,
                    ipc: mode(s.host_ipc),
                    target_id: String::new(),
                    userns_options: None,
                }),
            }),
        }),
        labels: s.labels.clone(),
        annotations: s.annotations.clone(),
        runtime_handler: s.runtime_handler.clone(),
    }
}

fn image_spec(c: &ContainerRecord) -> api::ImageSpec {
    api::ImageSpec {
        image: c.image.clone(),
        ..Default::default()
    }
}

pub fn container_metadata(c: &ContainerRecord) -> api::ContainerMetadata {
    api::ContainerMetadata {
        name: c.name.clone(),
        attempt: c.attempt,
    }
}

pub fn container_summary(c: &ContainerRecord) -> api::Container {
    api::Container {
        id: c.id.clone(),
        pod_sandbox_id: c.sandbox_id.clone(),
        metadata: Some(container_metadata(c)),
        image: Some(image_spec(c)),
        image_ref: c.image_ref.clone(),
        state: container_state(c.state) as i32,
        created_at: c.created_at,
        labels: c.labels.clone(),
        annotations: c.annotations.clone(),
        image_id: c.image_id.clone(),
    }
}

pub fn container_status(c: &ContainerRecord) -> api::ContainerStatus {
    let exit = c.exit.clone().unwrap_or_default();
    let mut message = exit.message.clone();
    if !c.notes.is_empty() {
        if !message.is_empty() {
            message.push_str("; ");
        }
        message.push_str(&c.notes);
    }
    api::ContainerStatus {
        id: c.id.clone(),
        metadata: Some(container_metadata(c)),
        state: container_state(c.state) as i32,
        created_at: c.created_at,
        started_at: c.started_at,
        finished_at: exit.finished_at,
        exit_code: exit.exit_code,
        image: Some(image_spec(c)),
        image_ref: c.image_ref.clone(),
        reason: exit.reason.clone(),
        message,
        labels: c.labels.clone(),
        annotations: c.annotations.clone(),
        mounts: c
            .mounts
            .iter()
            .enumerate()
            .map(|(i, (dst, src, ro))| api::Mount {
                container_path: dst.clone(),
                host_path: src.clone(),
                readonly: *ro,
                propagation: c.mount_propagation.get(i).copied().unwrap_or(0),
                ..Default::default()
            })
            .collect(),
        log_path: c.log_path.clone(),
        resources: Some(api::ContainerResources {
            linux: api::LinuxContainerResources::decode(c.resources.as_slice()).ok(),
            windows: None,
        }),
        image_id: c.image_id.clone(),
        user: Some(api::ContainerUser {
            linux: Some(api::LinuxContainerUser {
                uid: c.uid,
                gid: c.gid,
                supplemental_groups: vec![],
            }),
        }),
        image_source: String::new(),
    }
}
