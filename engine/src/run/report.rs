//! A host's round trips and what they report: one remote shell invocation with live
//! progress, failures with the task's own stderr and a hint, task events and the recap's
//! counts.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kprov_modules::TaskReport;

use super::graph::Step;
use super::host::{HostRun, Item};
use super::outcome::{split_stderr, Outcome};
use super::{hints, progress};
use crate::events::{Event, Failure, Phase, Status};
use crate::playbook::Task;
use crate::transport::TransportErrorKind;

/// Default ceiling for one task when it sets no `timeout`.
const DEFAULT_TASK_TIMEOUT: Duration = Duration::from_secs(600);

impl HostRun<'_> {
    /// One remote shell invocation; transport errors become a failure of the batch.
    pub(super) async fn round_trip(
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

    pub(super) fn failure(&self, item: &Item<'_>, message: &str, phase: &str) -> Failure {
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

    pub(super) fn emit(&mut self, task: &Task, started: Instant, outcome: Outcome) {
        self.emit_as(task, &task.name, started, outcome);
    }

    /// Reports `task` under `name` (a looped task's item has its own name).
    pub(super) fn emit_as(&mut self, task: &Task, name: &str, started: Instant, outcome: Outcome) {
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

    pub(super) fn send(&mut self, event: Event) {
        if let Event::Task {
            status, pending, ..
        } = &event
        {
            *self.result.counts.entry(*status).or_default() += 1;
            self.result.pending += usize::from(*pending);
        }
        let _ = self.ctx.sink.send(event);
    }

    pub(super) fn skip_rest(&mut self, steps: &[Step], why: &str) {
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
}
