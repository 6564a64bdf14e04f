//! Live progress of a host's batches: `batch_started`/`batch_done` around each batch, and
//! `task_started` as soon as the host's script reports a task's start (its `begin`
//! record, read while the script runs).

use std::collections::BTreeMap;

use crate::events::{Event, Phase, Sink};

/// The task id of a `KP<TAB>id<TAB>begin…` record line, if `line` is one.
pub(super) fn begin_id(line: &[u8]) -> Option<usize> {
    let line = std::str::from_utf8(line).ok()?;
    let mut fields = line.trim_end_matches('\n').split('\t');
    if fields.next()? != "KP" {
        return None;
    }
    let id = fields.next()?.parse().ok()?;
    (fields.next()? == "begin").then_some(id)
}

/// Turns the begin records of one round trip into `task_started` events.
pub(super) struct Starts {
    pub run_id: String,
    pub host: String,
    pub phase: Phase,
    /// Script id → (task name as events show it, `file:line`).
    pub tasks: BTreeMap<usize, (String, String)>,
    pub sink: Sink,
}

impl Starts {
    /// Called with each stdout line of the round trip as it arrives.
    pub fn watch(&self, line: &[u8]) {
        let Some((task, origin)) = begin_id(line).and_then(|id| self.tasks.get(&id)) else {
            return;
        };
        let _ = self.sink.send(Event::TaskStarted {
            run_id: self.run_id.clone(),
            host: self.host.clone(),
            task: task.clone(),
            origin: origin.clone(),
            phase: self.phase,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn begin_records_are_recognised() {
        assert_eq!(begin_id(b"KP\t7\tbegin\t\t\n"), Some(7));
        assert_eq!(begin_id(b"KP\t7\tend\t\t0\n"), None);
        assert_eq!(begin_id(b"KP\t-\tbegin\t\t\n"), None);
        assert_eq!(begin_id(b"hello\n"), None);
        assert_eq!(begin_id(b"KP\t3"), None);
    }

    #[test]
    fn each_begin_becomes_one_event() {
        let (sink, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let starts = Starts {
            run_id: "r".into(),
            host: "node1".into(),
            phase: Phase::Apply,
            tasks: BTreeMap::from([(1, ("Install containerd".into(), "a.yaml:3".into()))]),
            sink,
        };
        starts.watch(b"KP\t1\tbegin\t\t\n");
        starts.watch(b"KP\t1\tfield\tx\ty\n");
        starts.watch(b"KP\t2\tbegin\t\t\n");
        let Ok(Event::TaskStarted {
            host, task, phase, ..
        }) = rx.try_recv()
        else {
            panic!("no task_started event");
        };
        assert_eq!(
            (host.as_str(), task.as_str(), phase),
            ("node1", "Install containerd", Phase::Apply)
        );
        assert!(rx.try_recv().is_err(), "one event only");
    }
}
