//! One host's run: its steps in order, batched into as few round trips as possible.
//!
//! A batch is a run of consecutive tasks that need nothing from each other's results.
//! It costs one gather round trip and, in apply mode, at most one apply round trip
//! (plus a re-gather for a task that reports the host changed under it).

//!
//! The parts live beside this file: [`super::plan`] (prepare and plan a batch),
//! [`super::apply`] (run the planned scripts), [`super::handlers`], [`super::retry`],
//! [`super::report`] (round trips and events), [`super::vars`] and [`super::local`]
//! (controller-side tasks).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use kprov_modules::Module;
use serde_json::Value;

use super::graph::Step;
use super::{handlers, local, RunCtx};
use crate::events::{Event, Status};
use crate::playbook::Task;
use crate::transport::Connector;

/// The per-host counters the recap shows.
#[derive(Debug, Default, Clone)]
pub struct HostResult {
    pub counts: BTreeMap<Status, usize>,
    pub round_trips: usize,
    pub failed: bool,
    /// Tasks skipped until something outside the run is ready.
    pub pending: usize,
    /// Another run held the host's lock: nothing was done on it.
    pub locked: bool,
}

/// One task of a batch (or one item of a looped task), ready to run.
pub(super) struct Item<'a> {
    /// Its id in the batch's scripts (unique within one `run_items`).
    pub(super) id: usize,
    pub(super) task: &'a Task,
    /// The name events show: the task's, with the loop item when it has one.
    pub(super) name: String,
    pub(super) module: Box<dyn Module>,
    pub(super) started: Instant,
    /// A handler of the current flush (its successful run clears its marker).
    pub(super) handler: bool,
    /// Its key in saved plans (`origin|name#n`).
    pub(super) key: String,
}

/// State of one host while it runs.
pub struct HostRun<'a> {
    pub ctx: &'a RunCtx,
    pub host: usize,
    pub conn: Arc<dyn Connector>,
    pub facts: Value,
    pub module_ctx: kprov_modules::HostContext,
    pub result: HostResult,
    /// Handlers notified per play.
    pub(super) notified: BTreeMap<usize, BTreeSet<String>>,
    /// Handlers of the current flush that ran no script (unchanged or skipped by
    /// `when`): their markers are removed in one extra round trip.
    pub(super) settled_handlers: Vec<String>,
    /// The last lines of stderr of the latest round trip (for failure reports).
    pub(super) last_stderr: Vec<String>,
    /// The same, per task of the latest round trip.
    pub(super) task_stderr: BTreeMap<usize, Vec<String>>,
    /// While retrying, events are held back and only the last attempt's are sent.
    pub(super) held: Option<Vec<Event>>,
    /// The host stopped answering: its failure is reported as unreachable.
    pub(super) lost: bool,
    /// How often each `origin|name` was prepared on this host (saved-plan keys).
    pub(super) keys_seen: HashMap<String, usize>,
}

impl<'a> HostRun<'a> {
    pub fn new(
        ctx: &'a RunCtx,
        host: usize,
        conn: Arc<dyn Connector>,
        facts: Value,
        module_ctx: kprov_modules::HostContext,
    ) -> Self {
        let notified = handlers::pending_notifications(ctx, &facts);
        HostRun {
            ctx,
            host,
            conn,
            facts,
            module_ctx,
            result: HostResult {
                round_trips: 1, // facts
                ..HostResult::default()
            },
            notified,
            settled_handlers: Vec::new(),
            last_stderr: Vec::new(),
            task_stderr: BTreeMap::new(),
            held: None,
            lost: false,
            keys_seen: HashMap::new(),
        }
    }

    /// The saved-plan key of the next item of `task` named `name`.
    pub(super) fn plan_key(&mut self, task: &Task, name: &str) -> String {
        let base = format!("{}|{name}", task.origin);
        let n = self.keys_seen.entry(base.clone()).or_insert(0);
        *n += 1;
        format!("{base}#{n}")
    }

    pub(super) fn name(&self) -> &str {
        &self.ctx.schedule.hosts[self.host]
    }

    /// Runs every step of this host.
    pub async fn run(mut self) -> HostResult {
        let steps = self.ctx.schedule.steps[self.host].clone();
        let mut cursor = 0;
        while cursor < steps.len() {
            if self.ctx.shared.abort.load(Ordering::SeqCst) {
                self.skip_rest(
                    &steps[cursor..],
                    "the run was aborted (fail-fast or max_fail_percentage)",
                );
                break;
            }
            if let Step::Flush { play } = steps[cursor] {
                if !self.flush_handlers(play).await {
                    self.stop();
                    return self.result;
                }
                self.ctx.shared.complete(self.host, cursor + 1);
                cursor += 1;
                continue;
            }
            if let Err(producer) = self
                .ctx
                .shared
                .wait_for(&self.ctx.schedule.waits[self.host][cursor])
                .await
            {
                let why = format!(
                    "needs a value from {}, which failed",
                    self.ctx.schedule.hosts[producer]
                );
                self.skip_rest(&steps[cursor..], &why);
                self.result.failed = true;
                self.stop();
                return self.result;
            }
            let end = self.batch_end(&steps, cursor);
            let tasks: Vec<(usize, &Task)> = (cursor..end)
                .filter_map(|s| match steps[s] {
                    Step::Task { play, task } => {
                        Some((s, &self.ctx.playbook.plays[play].tasks[task]))
                    }
                    Step::Flush { .. } => None,
                })
                .collect();
            let ok = match tasks.as_slice() {
                [(step, task)] if local::is_local(task) => {
                    let play = match steps[*step] {
                        Step::Task { play, .. } | Step::Flush { play } => play,
                    };
                    self.run_local(play, task).await
                }
                [(step, task)] if task.retries > 0 || task.until.is_some() => {
                    self.run_with_retries(*step, task, &steps).await
                }
                _ => self.run_batch(&tasks, &steps).await,
            };
            if !ok {
                self.result.failed = true;
                self.stop();
                return self.result;
            }
            self.ctx.shared.complete(self.host, end);
            cursor = end;
        }
        self.ctx.shared.complete(self.host, steps.len());
        self.result
    }

    /// Marks this host as stopped so that waiters on other hosts give up.
    pub(super) fn stop(&self) {
        self.ctx.shared.stop(self.host);
    }

    /// The batch starting at `start` ends before the first step that needs a result of
    /// an earlier step of the batch, waits for another host, retries, or flushes handlers.
    fn batch_end(&self, steps: &[Step], start: usize) -> usize {
        let task_at = |s: usize| match steps[s] {
            Step::Task { play, task } => Some(&self.ctx.playbook.plays[play].tasks[task]),
            Step::Flush { .. } => None,
        };
        let Some(first) = task_at(start) else {
            return start + 1;
        };
        if first.until.is_some() || first.retries > 0 || local::is_local(first) {
            return start + 1;
        }
        let mut registered: HashSet<&str> = first.register.as_deref().into_iter().collect();
        let mut end = start + 1;
        while end < steps.len() {
            let Some(task) = task_at(end) else { break };
            if task.until.is_some()
                || task.retries > 0
                || local::is_local(task)
                || !self.ctx.schedule.waits[self.host][end].is_empty()
                || self.ctx.uses_any(task, &registered)
            {
                break;
            }
            registered.extend(task.register.as_deref());
            end += 1;
        }
        end
    }
}
