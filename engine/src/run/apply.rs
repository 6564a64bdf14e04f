//! Applying a planned batch: from the first task that must change, the planned scripts run
//! in one round trip that stops at the first failure; a task that finds its file changed
//! since it was gathered (`stale`) is gathered and planned again, with the rest of the
//! batch after it.

use std::collections::BTreeMap;
use std::time::Instant;

use kprov_modules::{Module, Plan, State, TaskReport};

use super::chain::chain_file_edits;
use super::host::{HostRun, Item};
use super::outcome::Outcome;
use crate::events::{Event, Mode, Phase, Status};

/// Ceiling on re-gathers of one task when its file keeps changing under us.
const MAX_STALE_RETRIES: usize = 3;

impl HostRun<'_> {
    /// [`Self::apply_items`] between a `batch_started` and a `batch_done` event.
    pub(super) async fn run_items(&mut self, items: Vec<Item<'_>>) -> bool {
        if items.is_empty() {
            return true;
        }
        let started = Instant::now();
        let count = items.len();
        let _ = self.ctx.sink.send(Event::BatchStarted {
            run_id: self.ctx.run_id.clone(),
            host: self.name().to_string(),
            tasks: items.iter().map(|i| i.name.clone()).collect(),
        });
        let ok = self.apply_items(items).await;
        let _ = self.ctx.sink.send(Event::BatchDone {
            run_id: self.ctx.run_id.clone(),
            host: self.name().to_string(),
            tasks: count,
            ok,
            duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        });
        ok
    }

    /// Gathers, diffs and (in apply mode) applies `items`; false on the first failure.
    pub(super) async fn apply_items(&mut self, mut items: Vec<Item<'_>>) -> bool {
        // (step that went stale, how often in a row): an earlier task of the batch editing
        // the same file makes the next one stale once; the same task again and again means
        // something else keeps writing the file.
        let mut stale: Option<(usize, usize)> = None;
        while !items.is_empty() {
            let Some(mut plans) = self.plan_items(&items).await else {
                return false;
            };
            if self.ctx.mode == Mode::Plan {
                self.report_plans(&items, &plans);
                return true;
            }
            // Apply: from the first task that needs it, every later task re-checks itself.
            let Some(first) = plans.iter().position(|(p, _)| p.diff.needs_apply()) else {
                self.finish_ok_prefix(&items, &plans);
                return true;
            };
            self.finish_ok_prefix(&items[..first], &plans[..first]);
            let modules: Vec<&dyn Module> =
                items[first..].iter().map(|i| i.module.as_ref()).collect();
            chain_file_edits(&modules, &mut plans[first..]);
            let rest: Vec<(usize, &str)> = items[first..]
                .iter()
                .zip(&plans[first..])
                .map(|(i, (p, _))| (i.id, p.script.as_str()))
                .collect();
            let hooks = self.after_hooks(&items[first..]);
            let script = kprov_modules::apply_script_with(&rest, &|id| {
                hooks.get(&id).cloned().unwrap_or_default()
            });
            let applied = match self
                .round_trip(&script, &items[first..], Phase::Apply)
                .await
            {
                Ok(r) => r,
                Err(f) => {
                    self.emit_as(
                        items[first].task,
                        &items[first].name,
                        items[first].started,
                        Outcome::failed(f),
                    );
                    return false;
                }
            };
            let mut next = Vec::new();
            let mut stale_from = None;
            for (offset, item) in items.drain(first..).enumerate() {
                if stale_from.is_some() {
                    next.push(item);
                    continue;
                }
                let (plan, state) = &plans[first + offset];
                let report: TaskReport =
                    applied
                        .get(&item.id)
                        .cloned()
                        .unwrap_or_else(|| TaskReport {
                            failed: Some("the apply script ended before this task".into()),
                            ..TaskReport::default()
                        });
                if report.stale.is_some() {
                    stale_from = Some(offset);
                    next.push(item);
                    continue;
                }
                if let Some(message) = &report.failed {
                    let mut f = self.failure(&item, message, "apply");
                    f.changed = report.changed;
                    self.register(item.task, false, true, false, &report.fields);
                    self.emit_as(item.task, &item.name, item.started, Outcome::failed(f));
                    return false;
                }
                let mut fields = state.fields.clone();
                fields.extend(report.fields.clone());
                let mut outcome = Outcome::from_diff(&plan.diff, plan.sensitive)
                    .with_warnings(plan.warnings.clone());
                outcome.status = if report.changed {
                    Status::Changed
                } else {
                    Status::Ok
                };
                if !report.changed {
                    outcome.diff = None;
                }
                self.after_task(&item, report.changed, &fields);
                self.emit_as(item.task, &item.name, item.started, outcome);
            }
            if let (Some(_), Some(first_stale)) = (stale_from, next.first()) {
                let rounds = match stale {
                    Some((id, n)) if id == first_stale.id => n + 1,
                    _ => 1,
                };
                stale = Some((first_stale.id, rounds));
                if rounds > MAX_STALE_RETRIES {
                    let item = &next[0];
                    let f = self.failure(
                        item,
                        "the file keeps changing while kprov edits it",
                        "apply",
                    );
                    self.emit_as(item.task, &item.name, item.started, Outcome::failed(f));
                    return false;
                }
            }
            items = next;
        }
        true
    }

    /// Reports the unchanged tasks of a prefix as ok (apply mode).
    pub(super) fn finish_ok_prefix(&mut self, items: &[Item<'_>], plans: &[(Plan, State)]) {
        if self.ctx.mode == Mode::Plan {
            return;
        }
        for (item, (plan, state)) in items.iter().zip(plans) {
            if item.handler {
                self.settled_handlers.push(item.task.name.clone());
            }
            self.after_task(item, false, &state.fields);
            let outcome = Outcome::simple(Status::Ok, None).with_warnings(plan.warnings.clone());
            self.emit_as(item.task, &item.name, item.started, outcome);
        }
    }

    /// Reports the planned tasks before `failed`, a task of the same batch that could not
    /// be gathered or planned, which stops the batch before its apply. Plan mode shows
    /// their plans; in apply, those already as desired are ok and the rest (from the first
    /// that needed a change on, as an apply would have run them) were not applied.
    pub(super) fn finish_before_failure(
        &mut self,
        items: &[Item<'_>],
        plans: &[(Plan, State)],
        failed: &str,
    ) {
        if self.ctx.mode == Mode::Plan {
            self.report_plans(items, plans);
            return;
        }
        let first = plans
            .iter()
            .position(|(p, _)| p.diff.needs_apply())
            .unwrap_or(plans.len());
        self.finish_ok_prefix(&items[..first], &plans[..first]);
        let why = format!("not applied: `{failed}` failed before this batch's apply");
        for item in &items[first..plans.len()] {
            self.register(item.task, false, false, true, &BTreeMap::new());
            let outcome = Outcome::simple(Status::Skipped, Some(why.clone()));
            self.emit_as(item.task, &item.name, item.started, outcome);
        }
    }

    /// Registers the result and queues notified handlers.
    pub(super) fn after_task(
        &mut self,
        item: &Item<'_>,
        changed: bool,
        fields: &BTreeMap<String, Vec<u8>>,
    ) {
        self.register(item.task, changed, false, false, fields);
        if changed {
            self.queue_notified(item);
        }
    }
}
