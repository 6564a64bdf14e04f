//! Preparing a batch and planning it: each task rendered into a module for this host,
//! one gather round trip for the batch, one [`Plan`] per task computed from its gathered
//! state. In plan mode that is the end: each plan is reported.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Instant;

use kprov_modules::{Plan, State, TaskReport};
use serde_json::Value;

use super::graph::Step;
use super::host::{HostRun, Item};
use super::outcome::Outcome;
use super::prepare::{self, Prepared};
use super::saved::Followed;
use super::Plans;
use crate::events::{Failure, Mode, Phase, Status};
use crate::playbook::Task;

impl HostRun<'_> {
    /// Runs one batch; false when a task failed (the host stops there).
    pub(super) async fn run_batch(&mut self, tasks: &[(usize, &Task)], steps: &[Step]) -> bool {
        let mut items = Vec::new();
        let mut failure = None;
        // No task of a batch reads another's result (see `batch_end`), so the variables of a
        // play are built once per batch, not once per task.
        let unknown = self.ctx.shared.unknown();
        let play_of = |step: usize| match steps[step] {
            Step::Task { play, .. } | Step::Flush { play } => play,
        };
        let mut vars_of_play: HashMap<usize, Value> = HashMap::new();
        for &(step, _) in tasks {
            let play = play_of(step);
            vars_of_play.entry(play).or_insert_with(|| self.vars(play));
        }
        for &(step, task) in tasks {
            let vars = &vars_of_play[&play_of(step)];
            if let Some(f) = self.collect(task, vars, &unknown, &mut items) {
                failure = Some(f);
                break;
            }
        }
        let ok = self.run_items(items).await;
        if let Some((task, name, started, f)) = failure {
            if ok {
                self.emit_as(task, &name, started, Outcome::failed(f));
            }
            return false;
        }
        ok
    }

    /// Prepares `task` (each item of its loop) and queues what is ready in `items`;
    /// skipped and unknown ones are reported here. The first failure is returned (the
    /// caller reports it after the ready items ran).
    pub(super) fn collect<'t>(
        &mut self,
        task: &'t Task,
        vars: &Value,
        unknown: &HashSet<String>,
        items: &mut Vec<Item<'t>>,
    ) -> Option<(&'t Task, String, Instant, Failure)> {
        let started = Instant::now();
        for (name, prepared) in prepare::prepare_all(task, &self.inputs(vars, unknown)) {
            match prepared {
                Prepared::Ready(module) => {
                    let key = self.plan_key(task, &name);
                    items.push(Item {
                        id: items.len(),
                        task,
                        name,
                        module,
                        started,
                        handler: false,
                        key,
                    })
                }
                Prepared::Skip(why) => {
                    self.register(task, false, false, true, &BTreeMap::new());
                    let outcome = Outcome::simple(Status::Skipped, Some(why));
                    self.emit_as(task, &name, started, outcome);
                }
                Prepared::Unknown(why) => {
                    if let Some(r) = &task.register {
                        self.mark_unknown(r);
                    }
                    let outcome = Outcome::simple(Status::Unknown, Some(why));
                    self.emit_as(task, &name, started, outcome);
                }
                Prepared::Fail(f) => return Some((task, name, started, f)),
            }
        }
        None
    }

    pub(super) fn register(
        &self,
        task: &Task,
        changed: bool,
        failed: bool,
        skipped: bool,
        fields: &BTreeMap<String, Vec<u8>>,
    ) {
        let Some(name) = &task.register else { return };
        let value = prepare::registered(changed, failed, skipped, fields);
        if let Ok(mut reg) = self.ctx.shared.registered.lock() {
            if let Some(own) = reg.get_mut(self.host) {
                own.insert(name.clone(), value);
            }
        }
    }

    /// Plan: `name`, registered on this host, is known only after apply.
    pub(super) fn mark_unknown(&self, name: &str) {
        if let Ok(mut sets) = self.ctx.shared.unknown.lock() {
            if let Some(own) = sets.get_mut(self.host) {
                own.insert(name.to_string());
            }
        }
    }

    /// Gathers `items` in one round trip and plans each from its gathered state (recording
    /// it in, or following, a saved plan); `None` when a task failed (already reported).
    pub(super) async fn plan_items(&mut self, items: &[Item<'_>]) -> Option<Vec<(Plan, State)>> {
        let gather = kprov_modules::gather_script(
            &items
                .iter()
                .map(|i| (i.id, i.module.as_ref()))
                .collect::<Vec<_>>(),
        );
        let reports = match self.round_trip(&gather, items, Phase::Check).await {
            Ok(r) => r,
            Err(f) => {
                self.emit_as(
                    items[0].task,
                    &items[0].name,
                    items[0].started,
                    Outcome::failed(f),
                );
                return None;
            }
        };
        // Plan every task; the first gather failure ends the batch there.
        let mut plans = Vec::new();
        for item in items {
            // A task without a report means the script died before it (e.g. `set -u`).
            let report = reports
                .get(&item.id)
                .cloned()
                .unwrap_or_else(|| TaskReport {
                    failed: Some("the gather script ended before this task".into()),
                    ..TaskReport::default()
                });
            if let Some(message) = &report.failed {
                let f = self.failure(item, message, "gather");
                self.finish_before_failure(items, &plans, &item.name);
                self.emit_as(item.task, &item.name, item.started, Outcome::failed(f));
                return None;
            }
            let state = report.state();
            match item.module.plan(&state) {
                Ok(mut p) => {
                    match &self.ctx.plans {
                        Plans::Record(book) if self.ctx.mode == Mode::Plan => {
                            book.record(self.name(), &item.key, &item.name, &state, &p)
                        }
                        Plans::Follow(book) => match book.follow(self.name(), &item.key, &state) {
                            Followed::Planned(Some(script)) => p.script = script,
                            Followed::Planned(None) | Followed::NotPlanned => {}
                            // Before this run changed anything here, a different state is
                            // drift since the check: refused. After a change of the run,
                            // the plan could not know the state and it is planned now.
                            Followed::Drifted(what) if !self.changed_here() => {
                                let message = format!(
                                    "the host changed between the plan's drift check and its apply: {what}; \
                                     nothing more is done on this host; make a new plan"
                                );
                                let f = self.failure(item, &message, "saved plan");
                                self.finish_before_failure(items, &plans, &item.name);
                                self.emit_as(
                                    item.task,
                                    &item.name,
                                    item.started,
                                    Outcome::failed(f),
                                );
                                return None;
                            }
                            Followed::Drifted(_) => {}
                        },
                        _ => {}
                    }
                    plans.push((p, state))
                }
                Err(e) => {
                    let f = self.failure(item, &e.to_string(), "diff");
                    self.finish_before_failure(items, &plans, &item.name);
                    self.emit_as(item.task, &item.name, item.started, Outcome::failed(f));
                    return None;
                }
            }
        }
        Some(plans)
    }

    /// Plan mode: reports what each task would do; what apply would notify or register,
    /// plan counts the same way.
    pub(super) fn report_plans(&mut self, items: &[Item<'_>], plans: &[(Plan, State)]) {
        for (item, (plan, state)) in items.iter().zip(plans) {
            let outcome =
                Outcome::from_diff(&plan.diff, plan.sensitive).with_warnings(plan.warnings.clone());
            if outcome.status == Status::Changed {
                if let Some(r) = &item.task.register {
                    self.mark_unknown(r);
                }
                // What apply would notify, plan shows too: both count the same.
                self.queue_notified(item);
            } else {
                self.register(item.task, false, false, false, &state.fields);
            }
            self.emit_as(item.task, &item.name, item.started, outcome);
        }
    }

    /// True once a task of this run changed something on this host.
    fn changed_here(&self) -> bool {
        self.result
            .counts
            .get(&Status::Changed)
            .is_some_and(|n| *n > 0)
    }
}
