//! Running a controller-side task ([`crate::actions`], `kube_apply`) for a host: its
//! arguments rendered here, its outcome reported like any task's.

use std::collections::{BTreeMap, HashSet};
use std::time::Instant;

use serde_json::Value;

use super::host::HostRun;
use super::outcome::Outcome;
use super::prepare::Prepared;
use crate::actions::kube_apply::{self, Args};
use crate::events::{Failure, Mode, Status};
use crate::playbook::Task;

/// True for tasks the executor runs on the control machine.
pub(super) fn is_local(task: &Task) -> bool {
    task.module == kube_apply::MODULE
}

impl HostRun<'_> {
    /// Runs one control-machine task; false when it failed.
    pub(super) async fn run_local(&mut self, play: usize, task: &Task) -> bool {
        let started = Instant::now();
        let vars = self.vars(play);
        let unknown = self.ctx.shared.unknown();
        let args = match self.render(&vars, &unknown, task) {
            Ok(args) => args,
            Err(not_ready) => return self.not_ready(task, started, not_ready),
        };
        let args = match Args::parse(args) {
            Ok(a) => a,
            Err(message) => return self.local_failed(task, started, message),
        };
        self.result.round_trips += 1;
        let plan = self.ctx.mode == Mode::Plan;
        let outcome = match kube_apply::run(&*self.conn, &args, plan).await {
            Ok(outcome) => outcome,
            Err(message) => return self.local_failed(task, started, message),
        };
        let changed = outcome.status == Status::Changed && self.ctx.mode == Mode::Apply;
        if outcome.status == Status::Changed && self.ctx.mode == Mode::Plan {
            if let Some(r) = &task.register {
                self.mark_unknown(r);
            }
        } else {
            let skipped = outcome.status == Status::Skipped;
            self.register(task, changed, false, skipped, &BTreeMap::new());
        }
        self.emit(task, started, outcome);
        true
    }

    /// Reports a task that does not run (`when`, unknown input) or cannot (bad template).
    pub(super) fn not_ready(&mut self, task: &Task, started: Instant, why: Prepared) -> bool {
        match why {
            Prepared::Skip(why) => {
                self.register(task, false, false, true, &BTreeMap::new());
                self.emit(task, started, Outcome::simple(Status::Skipped, Some(why)));
                true
            }
            Prepared::Unknown(why) => {
                if let Some(r) = &task.register {
                    self.mark_unknown(r);
                }
                self.emit(task, started, Outcome::simple(Status::Unknown, Some(why)));
                true
            }
            Prepared::Fail(f) => self.local_failed(task, started, f.message),
            Prepared::Ready(_) => self.local_failed(task, started, "not a local task".into()),
        }
    }

    pub(super) fn local_failed(&mut self, task: &Task, started: Instant, message: String) -> bool {
        let failure = Failure {
            command: Some(format!("{} at {}", task.module, task.origin)),
            hint: super::hints::for_texts(std::iter::once(message.as_str())),
            message,
            ..Failure::default()
        };
        self.register(task, false, true, false, &BTreeMap::new());
        self.emit(task, started, Outcome::failed(failure));
        false
    }

    /// Renders a task's arguments for this host (no module is built).
    pub(super) fn render(
        &self,
        vars: &Value,
        unknown: &HashSet<String>,
        task: &Task,
    ) -> Result<Value, Prepared> {
        super::prepare::render(task, &self.inputs(vars, unknown))
    }
}
