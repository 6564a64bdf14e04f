//! Handlers: a task that changed something queues the handlers it notifies; each play's
//! flush runs the queued ones once, in their definition order, as one batch. Markers on
//! the host ([`super::notify`]) make a notification survive an interrupted run.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::host::{HostRun, Item};
use super::outcome::Outcome;
use super::{notify, RunCtx};
use crate::events::Mode;

/// Handlers an earlier, interrupted run notified (markers listed in the facts), each
/// under the first play that defines a handler of that name.
pub(super) fn pending_notifications(
    ctx: &RunCtx,
    facts: &Value,
) -> BTreeMap<usize, BTreeSet<String>> {
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

impl HostRun<'_> {
    /// Shell to run after a task of an apply script: record the handlers a change
    /// notifies, or clear the marker of a handler that ran.
    pub(super) fn after_hooks(
        &self,
        items: &[Item<'_>],
    ) -> BTreeMap<usize, kprov_modules::AfterTask> {
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

    /// Queues the handlers a change of `item` notifies, for its play's flush.
    pub(super) fn queue_notified(&mut self, item: &Item<'_>) {
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

    /// Runs notified handlers of `play` (in their definition order) as one batch.
    pub(super) async fn flush_handlers(&mut self, play: usize) -> bool {
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
}
