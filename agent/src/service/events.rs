//! Container lifecycle events (created, started, stopped, deleted), as
//! kubelet's evented PLEG reads them from GetContainerEvents. Every change of
//! a container's or a sandbox's stored state that is one of these is sent to
//! the subscribers of a broadcast channel, with a snapshot of the pod taken
//! then; a subscriber that falls too far behind loses the oldest. As with
//! containerd, a sandbox's own events name the sandbox as the container.

use super::Agent;
use crate::state::{ContainerRecord, ContainerState, SandboxRecord, SandboxState};
use tokio::sync::broadcast;

/// Events kept for a subscriber that has not read them yet.
pub const EVENT_BACKLOG: usize = 1024;

/// What happened to a container (or sandbox).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Created,
    Started,
    Stopped,
    Deleted,
}

/// One event: its kind, when (ns since the epoch), whom it is about (a
/// container id, or a sandbox id for the sandbox's own events), and the pod
/// as it was then: its sandbox and its containers (a deleted one is gone).
#[derive(Debug, Clone)]
pub struct ContainerEvent {
    pub kind: EventKind,
    pub at: i64,
    pub id: String,
    pub sandbox: Option<SandboxRecord>,
    pub containers: Vec<ContainerRecord>,
}

/// The event a container's change from `old` (`None`: a new record) to `new` is.
pub fn transition(old: Option<ContainerState>, new: ContainerState) -> Option<EventKind> {
    if old == Some(new) {
        return None;
    }
    match new {
        ContainerState::Created => Some(EventKind::Created),
        ContainerState::Running => Some(EventKind::Started),
        ContainerState::Exited => Some(EventKind::Stopped),
        ContainerState::Creating | ContainerState::Unknown => None,
    }
}

/// The events a sandbox's change from `old` to `new` is: becoming ready is
/// created and started at once (its namespaces and init come up together).
pub fn sandbox_transition(old: Option<SandboxState>, new: SandboxState) -> &'static [EventKind] {
    match (old, new) {
        (Some(o), n) if o == n => &[],
        (None | Some(SandboxState::Creating), SandboxState::Ready) => {
            &[EventKind::Created, EventKind::Started]
        }
        (Some(SandboxState::Ready), SandboxState::NotReady) => &[EventKind::Stopped],
        _ => &[],
    }
}

/// A new event channel.
pub fn channel() -> broadcast::Sender<ContainerEvent> {
    broadcast::channel(EVENT_BACKLOG).0
}

impl Agent {
    /// Subscribes to container events from now on.
    pub fn subscribe_events(&self) -> broadcast::Receiver<ContainerEvent> {
        self.events.subscribe()
    }

    /// Sends the event that `rec`'s change from `old` is, if it is one.
    pub(super) fn emit_change(&self, old: Option<ContainerState>, rec: &ContainerRecord) {
        if let Some(kind) = transition(old, rec.state) {
            self.emit(kind, &rec.id, &rec.sandbox_id);
        }
    }

    /// Sends the events that sandbox `rec`'s change from `old` is.
    pub(super) fn emit_sandbox_change(&self, old: Option<SandboxState>, rec: &SandboxRecord) {
        for kind in sandbox_transition(old, rec.state) {
            self.emit_sandbox(*kind, rec);
        }
    }

    /// Sends `kind` about sandbox `rec` itself.
    pub(super) fn emit_sandbox(&self, kind: EventKind, rec: &SandboxRecord) {
        if self.events.receiver_count() == 0 {
            return;
        }
        let _ = self.events.send(ContainerEvent {
            kind,
            at: crate::util::now_nanos(),
            id: rec.id.clone(),
            sandbox: Some(rec.clone()),
            containers: self.containers_of(&rec.id),
        });
    }

    /// Sends `kind` about container `id` of sandbox `sandbox_id` (no
    /// subscriber: nothing is done). Call with no store lock held.
    pub(super) fn emit(&self, kind: EventKind, id: &str, sandbox_id: &str) {
        if self.events.receiver_count() == 0 {
            return;
        }
        let _ = self.events.send(ContainerEvent {
            kind,
            at: crate::util::now_nanos(),
            id: id.to_string(),
            sandbox: self.sandbox(sandbox_id),
            containers: self.containers_of(sandbox_id),
        });
    }

    fn containers_of(&self, sandbox_id: &str) -> Vec<ContainerRecord> {
        let mut v: Vec<_> = self
            .container_list()
            .into_iter()
            .filter(|c| c.sandbox_id == sandbox_id)
            .collect();
        v.sort_by_key(|c| c.created_at);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_real_changes_are_events() {
        use ContainerState::*;
        assert_eq!(transition(None, Creating), None);
        assert_eq!(
            transition(Some(Creating), Created),
            Some(EventKind::Created)
        );
        assert_eq!(transition(Some(Created), Created), None);
        assert_eq!(transition(Some(Created), Running), Some(EventKind::Started));
        assert_eq!(transition(Some(Running), Exited), Some(EventKind::Stopped));
        assert_eq!(transition(Some(Exited), Exited), None);
        assert_eq!(transition(Some(Running), Unknown), None);
        assert_eq!(transition(Some(Unknown), Exited), Some(EventKind::Stopped));
    }

    #[test]
    fn a_sandbox_becoming_ready_is_created_and_started() {
        use SandboxState::*;
        assert!(sandbox_transition(None, Creating).is_empty());
        assert_eq!(
            sandbox_transition(Some(Creating), Ready),
            &[EventKind::Created, EventKind::Started]
        );
        assert!(sandbox_transition(Some(Ready), Ready).is_empty());
        assert_eq!(
            sandbox_transition(Some(Ready), NotReady),
            &[EventKind::Stopped]
        );
        assert!(sandbox_transition(Some(NotReady), NotReady).is_empty());
    }
}
