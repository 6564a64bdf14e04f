//! `retries`/`until`/`delay`: a one-task batch run again until it succeeds and its
//! condition holds, with only the last attempt's events reported.

use std::time::{Duration, Instant};

use super::graph::Step;
use super::host::HostRun;
use super::outcome::Outcome;
use crate::events::{Event, Failure, Mode};
use crate::playbook::Task;

impl HostRun<'_> {
    /// Runs a one-task batch until it succeeds and its `until` holds, at most
    /// `retries + 1` times, waiting `delay`, then twice as long each time (capped at a
    /// minute). Only the last attempt is reported.
    pub(super) async fn run_with_retries(
        &mut self,
        step: usize,
        task: &Task,
        steps: &[Step],
    ) -> bool {
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

    pub(super) fn replace_held_with_failure(&mut self, task: &Task, message: String) {
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

    pub(super) fn flush_held(&mut self) {
        for event in self.held.take().unwrap_or_default() {
            self.send(event);
        }
    }
}
