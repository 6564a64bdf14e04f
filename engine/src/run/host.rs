//! One host's run: its steps in order, batched into as few round trips as possible.
//!
//! A batch is a run of consecutive tasks that need nothing from each other's results.
//! It costs one gather round trip and, in apply mode, at most one apply round trip
//! (plus a re-gather for a task that reports the host changed under it).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kprov_modules::{Module, Plan, State, TaskReport};
use serde_json::{Map, Value};

mod local;
mod progress;

use super::chain::chain_file_edits;
use super::graph::Step;
use super::outcome::{split_stderr, Outcome};
use super::prepare::{self, Inputs, Prepared};
use super::{hints, notify, Plans, RunCtx};
use crate::events::{Event, Failure, Mode, Phase, Status};
use crate::playbook::Task;
use crate::transport::{Connector, TransportErrorKind};

/// Default ceiling for one task when it sets no `timeout`.
const DEFAULT_TASK_TIMEOUT: Duration = Duration::from_secs(600);
/// Ceiling on re-gathers of one task when its file keeps changing under us.
const MAX_STALE_RETRIES: usize = 3;

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

/// Handlers an earlier, interrupted run notified (markers listed in the facts), each
/// under the first play that defines a handler of that name.
fn pending_notifications(ctx: &RunCtx, facts: &Value) -> BTreeMap<usize, BTreeSet<String>> {
    let pending: BTreeSet<&str> = facts["pending_handlers"]
        .as_array()
        .map(|ids| ids.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut out: BTreeMap<usize, BTreeSet<String>> = BTreeMap::new();
    if pending.is_empty() {
        return out;
    }
    let mut seen = BTreeSet::new();
    for (p, play) in ctx.playbook.plays.iter().enumerate() {
        for h in &play.handlers {
            if pending.contains(notify::marker_id(&h.name).as_str()) && seen.insert(h.name.clone())
            {
                out.entry(p).or_default().insert(h.name.clone());
            }
        }
    }
    out
}

/// One task of a batch (or one item of a looped task), ready to run.
struct Item<'a> {
    /// Its id in the batch's scripts (unique within one `run_items`).
    id: usize,
    task: &'a Task,
    /// The name events show: the task's, with the loop item when it has one.
    name: String,
    module: Box<dyn Module>,
    started: Instant,
    /// A handler of the current flush (its successful run clears its marker).
    handler: bool,
    /// Its key in saved plans (`origin|name#n`).
    key: String,
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
    notified: BTreeMap<usize, BTreeSet<String>>,
    /// Handlers of the current flush that ran no script (unchanged or skipped by
    /// `when`): their markers are removed in one extra round trip.
    settled_handlers: Vec<String>,
    /// The last lines of stderr of the latest round trip (for failure reports).
    last_stderr: Vec<String>,
    /// The same, per task of the latest round trip.
    task_stderr: BTreeMap<usize, Vec<String>>,
    /// While retrying, events are held back and only the last attempt's are sent.
    held: Option<Vec<Event>>,
    /// The host stopped answering: its failure is reported as unreachable.
    lost: bool,
    /// How often each `origin|name` was prepared on this host (saved-plan keys).
    keys_seen: HashMap<String, usize>,
}

impl<'a> HostRun<'a> {
    pub fn new(
        ctx: &'a RunCtx,
        host: usize,
        conn: Arc<dyn Connector>,
        facts: Value,
        module_ctx: kprov_modules::HostContext,
    ) -> Self {
        let notified = pending_notifications(ctx, &facts);
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
    fn plan_key(&mut self, task: &Task, name: &str) -> String {
        let base = format!("{}|{name}", task.origin);
        let n = self.keys_seen.entry(base.clone()).or_insert(0);
        *n += 1;
        format!("{base}#{n}")
    }

    fn name(&self) -> &str {
        &self.ctx.schedule.hosts[self.host]
    }

    /// Shell to run after a task of an apply script: record the handlers a change
    /// notifies, or clear the marker of a handler that ran.
    fn after_hooks(&self, items: &[Item<'_>]) -> BTreeMap<usize, kprov_modules::AfterTask> {
        items
            .iter()
            .map(|i| {
                let hooks = if i.handler {
                    kprov_modules::AfterTask {
                        on_success: notify::clear(std::slice::from_ref(&i.task.name)),
                        ..Default::default()
                    }
                } else {
                    kprov_modules::AfterTask {
                        before: notify::mark_ahead(&i.task.notify),
                        on_changed: notify::mark(&i.task.notify),
                        on_unchanged: notify::unmark_ahead(&i.task.notify),
                        on_success: String::new(),
                    }
                };
                (i.id, hooks)
            })
            .collect()
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
    fn stop(&self) {
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

    /// The variables this host sees for a task of `play`.
    fn vars(&self, play: usize) -> Value {
        let ctx = self.ctx;
        let mut vars = ctx.base_vars(play, self.host);
        vars.insert("facts".into(), self.facts.clone());
        let registered = ctx
            .shared
            .registered
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default();
        if let Some(own) = registered.get(self.host) {
            for (k, v) in own {
                vars.insert(k.clone(), v.clone());
            }
        }
        let mut hostvars = Map::new();
        for (h, name) in ctx.schedule.hosts.iter().enumerate() {
            let mut hv = ctx.inventory_vars(h).clone();
            if let Some(r) = registered.get(h) {
                hv.extend(r.clone());
            }
            hostvars.insert(name.clone(), Value::Object(hv));
        }
        vars.insert("hostvars".into(), Value::Object(hostvars));
        self.render_playbook_vars(play, vars)
    }

    /// Role defaults and play vars are playbook text and may refer to other variables
    /// (`agent_dir: "{{ kprov_dir }}"`); those that won the merge are rendered once against
    /// the rest. Values from inventories, specs and `-e` are data and are never rendered.
    fn render_playbook_vars(&self, play: usize, mut vars: Map<String, Value>) -> Value {
        let p = &self.ctx.playbook.plays[play];
        let templated: Vec<(String, Value)> = p
            .defaults
            .iter()
            .chain(p.vars.iter())
            .filter(|(k, v)| vars.get(*k) == Some(v) && mentions_template(v))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if templated.is_empty() {
            return Value::Object(vars);
        }
        let context = Value::Object(vars.clone());
        for (key, value) in templated {
            let origin = format!("variable `{key}` of play `{}`", p.name);
            match self.ctx.renderer.render_value(&value, &origin, &context) {
                Ok(rendered) => {
                    vars.insert(key, rendered);
                }
                Err(err) => tracing::debug!(%err, "variable left unrendered"),
            }
        }
        Value::Object(vars)
    }

    /// What rendering a task for this host reads.
    fn inputs<'v>(&'v self, vars: &'v Value, unknown: &'v HashSet<String>) -> Inputs<'v> {
        Inputs {
            renderer: &self.ctx.renderer,
            vars,
            host: &self.module_ctx,
            unknown,
            playbook_dir: &self.ctx.playbook_dir,
        }
    }

    /// Runs one batch; false when a task failed (the host stops there).
    async fn run_batch(&mut self, tasks: &[(usize, &Task)], steps: &[Step]) -> bool {
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
    fn collect<'t>(
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

    /// [`Self::apply_items`] between a `batch_started` and a `batch_done` event.
    async fn run_items(&mut self, items: Vec<Item<'_>>) -> bool {
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
    async fn apply_items(&mut self, mut items: Vec<Item<'_>>) -> bool {
        // (step that went stale, how often in a row): an earlier task of the batch editing
        // the same file makes the next one stale once; the same task again and again means
        // something else keeps writing the file.
        let mut stale: Option<(usize, usize)> = None;
        while !items.is_empty() {
            let gather = kprov_modules::gather_script(
                &items
                    .iter()
                    .map(|i| (i.id, i.module.as_ref()))
                    .collect::<Vec<_>>(),
            );
            let reports = match self.round_trip(&gather, &items, Phase::Check).await {
                Ok(r) => r,
                Err(f) => {
                    self.emit_as(
                        items[0].task,
                        &items[0].name,
                        items[0].started,
                        Outcome::failed(f),
                    );
                    return false;
                }
            };
            // Plan every task; the first gather failure ends the batch there.
            let mut plans = Vec::new();
            for item in &items {
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
                    self.finish_ok_prefix(&items, &plans);
                    self.emit_as(item.task, &item.name, item.started, Outcome::failed(f));
                    return false;
                }
                let state = report.state();
                match item.module.plan(&state) {
                    Ok(mut p) => {
                        match &self.ctx.plans {
                            Plans::Record(book) if self.ctx.mode == Mode::Plan => {
                                book.record(self.name(), &item.key, &item.name, &state, &p)
                            }
                            Plans::Follow(book) => {
                                if let Some(script) =
                                    book.script_for(self.name(), &item.key, &state)
                                {
                                    p.script = script;
                                }
                            }
                            _ => {}
                        }
                        plans.push((p, state))
                    }
                    Err(e) => {
                        let f = self.failure(item, &e.to_string(), "diff");
                        self.finish_ok_prefix(&items, &plans);
                        self.emit_as(item.task, &item.name, item.started, Outcome::failed(f));
                        return false;
                    }
                }
            }
            if self.ctx.mode == Mode::Plan {
                for (item, (plan, state)) in items.iter().zip(&plans) {
                    let outcome = Outcome::from_diff(&plan.diff, plan.sensitive)
                        .with_warnings(plan.warnings.clone());
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
    fn finish_ok_prefix(&mut self, items: &[Item<'_>], plans: &[(Plan, State)]) {
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

    /// Registers the result and queues notified handlers.
    fn after_task(&mut self, item: &Item<'_>, changed: bool, fields: &BTreeMap<String, Vec<u8>>) {
        self.register(item.task, changed, false, false, fields);
        if changed {
            self.queue_notified(item);
        }
    }

    /// Queues the handlers a change of `item` notifies, for its play's flush.
    fn queue_notified(&mut self, item: &Item<'_>) {
        if item.task.notify.is_empty() {
            return;
        }
        if let Some(play) = self.ctx.play_of(item.task) {
            self.notified
                .entry(play)
                .or_default()
                .extend(item.task.notify.iter().cloned());
        }
    }

    /// Plan: `name`, registered on this host, is known only after apply.
    fn mark_unknown(&self, name: &str) {
        if let Ok(mut sets) = self.ctx.shared.unknown.lock() {
            if let Some(own) = sets.get_mut(self.host) {
                own.insert(name.to_string());
            }
        }
    }

    fn register(
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

    /// Runs notified handlers of `play` (in their definition order) as one batch.
    async fn flush_handlers(&mut self, play: usize) -> bool {
        let Some(names) = self.notified.remove(&play) else {
            return true;
        };
        let handlers = &self.ctx.playbook.plays[play].handlers;
        let vars = self.vars(play);
        let unknown = self.ctx.shared.unknown();
        let mut items = Vec::new();
        for handler in handlers {
            if !names.contains(&handler.name) {
                continue;
            }
            let queued = items.len();
            if let Some((task, name, started, f)) =
                self.collect(handler, &vars, &unknown, &mut items)
            {
                // Handlers queued before it still run; then the failure is reported.
                let ok = self.run_items(items).await;
                if ok {
                    self.emit_as(task, &name, started, Outcome::failed(f));
                }
                return false;
            }
            if items.len() == queued {
                // Skipped (`when`): nothing is due any more, so its marker goes too.
                self.settled_handlers.push(handler.name.clone());
            }
        }
        for item in &mut items {
            item.handler = true;
        }
        if !self.run_items(items).await {
            return false;
        }
        let settled = std::mem::take(&mut self.settled_handlers);
        if !settled.is_empty() && self.ctx.mode == Mode::Apply {
            // Best effort: a marker left behind only runs its handler once more.
            self.result.round_trips += 1;
            let _ = self.conn.run(&notify::clear(&settled), None).await;
        }
        true
    }

    /// One remote shell invocation; transport errors become a failure of the batch.
    async fn round_trip(
        &mut self,
        script: &str,
        items: &[Item<'_>],
        phase: Phase,
    ) -> Result<BTreeMap<usize, TaskReport>, Failure> {
        self.result.round_trips += 1;
        let starts = progress::Starts {
            run_id: self.ctx.run_id.clone(),
            host: self.name().to_string(),
            phase,
            tasks: items
                .iter()
                .map(|i| (i.id, (i.name.clone(), i.task.origin.clone())))
                .collect(),
            sink: self.ctx.sink.clone(),
        };
        let limit: Duration = items
            .iter()
            .map(|i| i.task.timeout.unwrap_or(DEFAULT_TASK_TIMEOUT))
            .sum();
        let watch = |line: &[u8]| starts.watch(line);
        let out = self
            .conn
            .run_watching(script, Some(limit), &watch)
            .await
            .map_err(|e| {
                self.lost |= e.kind == TransportErrorKind::Unreachable;
                Failure {
                    message: format!("{}: {}", e.kind, e.detail),
                    hint: Some(e.hint.clone()),
                    ..Failure::default()
                }
            })?;
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (self.last_stderr, self.task_stderr) = split_stderr(&stderr, 10);
        kprov_modules::parse_output(&out.stdout).map_err(|e| Failure {
            message: format!("cannot read the host's answer: {e}"),
            exit_code: out.exit_code,
            stderr: self.last_stderr.clone(),
            ..Failure::default()
        })
    }

    fn failure(&self, item: &Item<'_>, message: &str, phase: &str) -> Failure {
        // The failing task's own stderr; the round trip's when the task printed none.
        let stderr = self
            .task_stderr
            .get(&item.id)
            .unwrap_or(&self.last_stderr)
            .clone();
        let hint =
            hints::for_texts(std::iter::once(message).chain(stderr.iter().map(String::as_str)));
        Failure {
            message: message.to_string(),
            command: Some(format!(
                "{} ({phase}) at {}",
                item.module.name(),
                item.task.origin
            )),
            exit_code: None,
            stderr,
            hint,
            changed: false,
        }
    }

    fn skip_rest(&mut self, steps: &[Step], why: &str) {
        for step in steps {
            if let Step::Task { play, task } = step {
                let task = &self.ctx.playbook.plays[*play].tasks[*task];
                self.emit(
                    task,
                    Instant::now(),
                    Outcome::simple(Status::Skipped, Some(why.to_string())),
                );
            }
        }
    }

    fn emit(&mut self, task: &Task, started: Instant, outcome: Outcome) {
        self.emit_as(task, &task.name, started, outcome);
    }

    /// Reports `task` under `name` (a looped task's item has its own name).
    fn emit_as(&mut self, task: &Task, name: &str, started: Instant, outcome: Outcome) {
        let event = Event::Task {
            run_id: self.ctx.run_id.clone(),
            host: self.name().to_string(),
            task: name.to_string(),
            origin: task.origin.clone(),
            status: match outcome.status {
                Status::Failed if self.lost => Status::Unreachable,
                status => status,
            },
            duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            summary: outcome.summary,
            diff: outcome.diff,
            error: outcome.error.map(Box::new),
            warnings: outcome.warnings,
            pending: outcome.pending,
        };
        match &mut self.held {
            Some(held) => held.push(event),
            None => self.send(event),
        }
    }

    fn send(&mut self, event: Event) {
        if let Event::Task {
            status, pending, ..
        } = &event
        {
            *self.result.counts.entry(*status).or_default() += 1;
            self.result.pending += usize::from(*pending);
        }
        let _ = self.ctx.sink.send(event);
    }

    /// Runs a one-task batch until it succeeds and its `until` holds, at most
    /// `retries + 1` times, waiting `delay`, then twice as long each time (capped at a
    /// minute). Only the last attempt is reported.
    async fn run_with_retries(&mut self, step: usize, task: &Task, steps: &[Step]) -> bool {
        let attempts = task.retries.saturating_add(1);
        let mut wait = task.delay;
        for attempt in 1..=attempts {
            let last = attempt == attempts;
            self.held = Some(Vec::new());
            let mut ok = self.run_batch(&[(step, task)], steps).await;
            if ok {
                if let (Some(until), Mode::Apply) = (&task.until, self.ctx.mode) {
                    let play = match steps[step] {
                        Step::Task { play, .. } | Step::Flush { play } => play,
                    };
                    let vars = self.vars(play);
                    match self.ctx.renderer.truthy(until, &task.origin, &vars) {
                        Ok(true) => {}
                        Ok(false) if last => {
                            self.replace_held_with_failure(
                                task,
                                format!("`until: {until}` still false after {attempts} attempts"),
                            );
                            ok = false;
                        }
                        Ok(false) => ok = false,
                        Err(e) => {
                            self.replace_held_with_failure(task, e.to_string());
                            self.flush_held();
                            return false;
                        }
                    }
                }
            }
            if ok || last {
                self.flush_held();
                return ok;
            }
            self.held = None;
            tracing::info!(host = %self.name(), task = %task.name, attempt, "retrying in {wait:?}");
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(60));
        }
        false
    }

    fn replace_held_with_failure(&mut self, task: &Task, message: String) {
        if let Some(held) = &mut self.held {
            held.retain(|e| !matches!(e, Event::Task { task: t, .. } if *t == task.name));
        }
        self.emit(
            task,
            Instant::now(),
            Outcome::failed(Failure {
                message,
                ..Failure::default()
            }),
        );
    }

    fn flush_held(&mut self) {
        for event in self.held.take().unwrap_or_default() {
            self.send(event);
        }
    }
}

fn mentions_template(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains("{{") || s.contains("{%"),
        Value::Array(items) => items.iter().any(mentions_template),
        Value::Object(map) => map.values().any(mentions_template),
        _ => false,
    }
}
