//! One connected host from start to end: run lock (apply), facts, steps.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::host::{HostResult, HostRun};
use super::{lock, RunCtx};
use crate::events::{Event, Failure, Mode, Status};
use crate::facts::{Facts, FactsError};
use crate::transport::{Connector, Held, TransportErrorKind};

/// How a host's part of the run ended.
pub(super) struct Finished {
    pub host: usize,
    pub result: HostResult,
    /// The host's own time, from its first round trip to its last.
    pub elapsed: Duration,
    /// The run lock, released once every host is done.
    pub lock: Option<Held>,
}

/// When the run stops early (fail-fast, max_fail_percentage).
pub(super) struct Stops {
    pub fail_fast: bool,
    pub max_fail: Option<u8>,
    pub total_hosts: usize,
}

/// Runs everything for the host of `conn`; `None` when it is not part of the run.
pub(super) async fn run_host(
    ctx: Arc<RunCtx>,
    conn: Arc<dyn Connector>,
    stops: Arc<Stops>,
) -> Option<Finished> {
    let started = Instant::now();
    let h = ctx
        .schedule
        .hosts
        .iter()
        .position(|n| *n == conn.target().name)?;
    let done = |result: HostResult, lock: Option<Held>| {
        Some(Finished {
            host: h,
            result,
            elapsed: started.elapsed(),
            lock,
        })
    };
    let lock = if ctx.mode == Mode::Apply {
        match lock::acquire(&conn, ctx.lock_wait, &ctx.run_id).await {
            Ok(held) => Some(held),
            Err(failure) => {
                ctx.shared.stop(h);
                fail(&ctx, h, "run lock", Status::Failed, failure);
                let mut result = failed_result(1);
                result.locked = true;
                return done(result, None);
            }
        }
    } else {
        None
    };
    let round_trips = usize::from(lock.is_some());
    let facts = match Facts::gather(&*conn).await {
        Ok(f) => f,
        Err(e) => {
            ctx.shared.stop(h);
            let lost =
                matches!(&e, FactsError::Transport(t) if t.kind == TransportErrorKind::Unreachable);
            let status = if lost {
                Status::Unreachable
            } else {
                Status::Failed
            };
            let failure = Failure {
                message: e.to_string(),
                ..Failure::default()
            };
            fail(&ctx, h, "gather facts", status, failure);
            let mut result = failed_result(round_trips + 1);
            result.counts = [(status, 1)].into_iter().collect();
            return done(result, lock);
        }
    };
    let module_ctx = kprov_modules::HostContext {
        os_family: serde_json::to_value(facts.os_family)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        package_manager: facts.package_manager.clone(),
        init: facts.init.clone(),
    };
    let facts_value = serde_json::to_value(&facts).unwrap_or(Value::Null);
    let mut result = HostRun::new(&ctx, h, conn.clone(), facts_value, module_ctx)
        .run()
        .await;
    result.round_trips += round_trips;
    if result.failed {
        ctx.shared.stop(h);
        let failed_now = ctx.shared.failed_hosts.fetch_add(1, Ordering::SeqCst) + 1;
        let over_limit = stops
            .max_fail
            .is_some_and(|pct| failed_now * 100 > usize::from(pct) * stops.total_hosts);
        if stops.fail_fast || over_limit {
            ctx.shared.abort.store(true, Ordering::SeqCst);
        }
    }
    done(result, lock)
}

/// A host that ended with one failure after `round_trips` round trips.
fn failed_result(round_trips: usize) -> HostResult {
    HostResult {
        failed: true,
        round_trips,
        counts: [(Status::Failed, 1)].into_iter().collect(),
        ..HostResult::default()
    }
}

/// Reports `task` of host `h` as failed (or unreachable) with `failure`.
fn fail(ctx: &RunCtx, h: usize, task: &str, status: Status, failure: Failure) {
    let _ = ctx.sink.send(Event::Task {
        run_id: ctx.run_id.clone(),
        host: ctx.schedule.hosts[h].clone(),
        task: task.into(),
        origin: String::new(),
        status,
        duration_ms: 0,
        summary: None,
        diff: None,
        error: Some(Box::new(failure)),
        warnings: Vec::new(),
        pending: false,
    });
}
