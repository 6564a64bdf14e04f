//! GetContainerEvents: the agent's container (and sandbox) events as the CRI's
//! stream, each with its pod's status and the statuses of the pod's containers
//! as they were when it happened (a deleted container is no longer among
//! them), as containerd's feed for kubelet's evented PLEG carries them.

use super::convert::{container_status, sandbox_status};
use crate::api;
use crate::service::events::{ContainerEvent, EventKind};
use crate::service::Agent;
use tokio::sync::broadcast::error::RecvError;
use tonic::codegen::BoxStream;

fn event_type(k: EventKind) -> api::ContainerEventType {
    match k {
        EventKind::Created => api::ContainerEventType::ContainerCreatedEvent,
        EventKind::Started => api::ContainerEventType::ContainerStartedEvent,
        EventKind::Stopped => api::ContainerEventType::ContainerStoppedEvent,
        EventKind::Deleted => api::ContainerEventType::ContainerDeletedEvent,
    }
}

/// The CRI message for `ev`.
pub fn response(ev: &ContainerEvent) -> api::ContainerEventResponse {
    api::ContainerEventResponse {
        container_id: ev.id.clone(),
        container_event_type: event_type(ev.kind) as i32,
        created_at: ev.at,
        pod_sandbox_status: ev.sandbox.as_ref().map(sandbox_status),
        containers_statuses: ev.containers.iter().map(container_status).collect(),
    }
}

/// The stream of events from now on; it ends when the client goes away. A
/// client that fell behind skips what it missed (kubelet relists then).
pub fn stream(agent: &Agent) -> BoxStream<api::ContainerEventResponse> {
    let rx = agent.subscribe_events();
    Box::pin(futures_util::stream::unfold(rx, |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(ev) => return Some((Ok(response(&ev)), rx)),
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "container event subscriber fell behind");
                }
                Err(RecvError::Closed) => return None,
            }
        }
    }))
}
