//! What a run reports as it goes: one event per task and host, then a recap.
//!
//! The CLI renders events for people (progress, diffs, recap) or streams them as
//! NDJSON for CI. Secrets never enter an event: diffs of sensitive tasks are masked
//! before they are sent.

use std::collections::BTreeMap;

use serde::Serialize;

/// Whether a run previews or changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Gather and diff only; nothing changes on any host.
    Plan,
    /// Gather, diff and apply.
    Apply,
}

/// The outcome of one task on one host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Already as desired.
    Ok,
    /// Changed (apply) or would change (plan).
    Changed,
    /// Plan only: depends on an earlier change, so its outcome is known after apply.
    Unknown,
    /// `when` was false, tags excluded it, or something it needs failed.
    Skipped,
    Failed,
    /// The host could not be reached.
    Unreachable,
}

/// Which of a batch's two scripts a task runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Gathering the host's state to compare it with the task (plan and apply).
    Check,
    /// Making the change (apply only).
    Apply,
}

/// Details of a failure, enough to act on at 2 a.m.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Failure {
    pub message: String,
    /// The remote command or module that failed, when there was one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Last lines of the remote stderr.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stderr: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// The task changed the host before it failed.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub changed: bool,
}

/// One event of a run.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    RunStarted {
        run_id: String,
        mode: Mode,
        hosts: Vec<String>,
    },
    Task {
        run_id: String,
        host: String,
        task: String,
        /// `file:line` of the task.
        origin: String,
        status: Status,
        duration_ms: u64,
        /// One-line description of the change, e.g. `create /etc/modules-load.d/k8s.conf`.
        #[serde(skip_serializing_if = "Option::is_none")]
        summary: Option<String>,
        /// Unified diff of file content (masked for sensitive tasks).
        #[serde(skip_serializing_if = "Option::is_none")]
        diff: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<Box<Failure>>,
        /// What the operator should know that is not a change (e.g. certificates
        /// close to expiry).
        #[serde(skip_serializing_if = "Vec::is_empty")]
        warnings: Vec<String>,
        /// Skipped because something outside this run is not ready yet (an API server,
        /// a node registering); `summary` says what and when a later run does it.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        pending: bool,
    },
    /// A host starts a batch: tasks that run in one round trip (first their checks, then,
    /// in apply mode, the changes they need).
    BatchStarted {
        run_id: String,
        host: String,
        /// The batch's task names, in order.
        tasks: Vec<String>,
    },
    /// A task starts running on a host, as the host reports it (while the batch runs; the
    /// task's outcome follows as a `task` event).
    TaskStarted {
        run_id: String,
        host: String,
        task: String,
        /// `file:line` of the task.
        origin: String,
        phase: Phase,
    },
    /// A host finished a batch (its tasks' `task` events came before).
    BatchDone {
        run_id: String,
        host: String,
        /// Number of tasks in the batch.
        tasks: usize,
        /// False when a task of the batch failed (the host stops there).
        ok: bool,
        duration_ms: u64,
    },
    HostDone {
        run_id: String,
        host: String,
        counts: BTreeMap<Status, usize>,
        duration_ms: u64,
        /// Remote shell invocations used for this host (facts included).
        round_trips: usize,
    },
    RunDone {
        run_id: String,
        mode: Mode,
        changed: usize,
        unchanged: usize,
        unknown: usize,
        failed: usize,
        unreachable: usize,
        /// Tasks skipped until something outside the run is ready (see `Task.pending`).
        pending: usize,
        duration_ms: u64,
    },
}

/// Where events go.
pub type Sink = tokio::sync::mpsc::UnboundedSender<Event>;

/// A fresh run id (time-based, unique enough to correlate one run's events).
pub fn new_run_id() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!(
        "{:x}-{:x}",
        now.as_secs(),
        std::process::id() ^ now.subsec_nanos()
    )
}
