//! Container lifecycle events (created, started, stopped, deleted), as
//! kubelet's evented PLEG reads them from GetContainerEvents. Every change of
//! a container's stored state that is one of these is sent to the subscribers
//! of a broadcast channel; one that falls too far behind loses the oldest.

use super::Agent;
use crate::state::{ContainerRecord, ContainerState};
use tokio::sync::broadcast;

/// Events kept for a subscriber that has not read them yet.
pub const EVENT_BACKLOG: usize = 1024;

/// What happened to a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Created,
    Started,
    Stopped,
    Deleted,
}

/// One event: its kind, when (ns since the epoch), and the container's record
/// as it was then (for Deleted, the last one before it went).
#[derive(Debug, Clone)]
pub struct ContainerEvent {
    pub kind: EventKind,
    pub at: i64,
    pub container: ContainerRecord,
}

/// The event a change of state from `old` (`None`: a new record) to `new` is.
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
            self.emit(kind, rec);
        }
    }

    /// Sends `kind` for `rec` (no subscriber: nothing happens).
    pub(super) fn emit(&self, kind: EventKind, rec: &ContainerRecord) {
        let _ = self.events.send(ContainerEvent {
            kind,
            at: crate::util::now_nanos(),
            container: rec.clone(),
        });
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
}
