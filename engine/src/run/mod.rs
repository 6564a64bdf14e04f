//! Running a playbook: plan (gather + diff) or apply (gather + diff + apply) on every
//! host at once, each host's tasks batched into few round trips, cross-host values
//! awaited through the task graph.

mod apply;
mod chain;
mod each;
mod graph;
mod handlers;
mod hints;
mod host;
mod local;
mod lock;
mod notify;
mod outcome;
mod plan;
pub(crate) mod prepare;
mod progress;
mod refs;
mod report;
mod retry;
pub mod saved;
mod vars;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use tokio::sync::watch;

pub use graph::{GraphError, TagFilter};
pub use lock::{DEFAULT_WAIT as DEFAULT_LOCK_WAIT, LOCK_PATH};
pub(crate) use outcome::Outcome;

use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::events::{Event, Failure, Mode, Sink, Status};
use crate::inventory::Inventory;
use crate::playbook::{Playbook, Task};
use crate::template::Renderer;
use crate::transport::{Pool, PoolOptions, Target};

/// Everything a run needs.
pub struct RunRequest {
    pub mode: Mode,
    pub playbook: Playbook,
    /// The inventory (a lab inventory already brought up).
    pub inventory: Inventory,
    /// `--limit`.
    pub limit: Option<String>,
    /// The cluster spec as variables (its top-level keys).
    pub spec: Map<String, Value>,
    /// `-e` variables.
    pub extra: Map<String, Value>,
    pub tags: TagFilter,
    /// Stop every host at the first failure anywhere.
    pub fail_fast: bool,
    pub pool: PoolOptions,
    /// Apply: how long to wait for another run's lock on a host (plan takes no lock).
    pub lock_wait: Duration,
    pub sink: Sink,
    pub run_id: String,
    /// Saved plans: a plan run records every task it planned here; an apply run given the
    /// book of a saved plan runs its scripts where the host's state is still the planned
    /// one. See [`saved`].
    pub plans: Plans,
}

/// What a run does with saved plans.
#[derive(Debug, Clone, Default)]
pub enum Plans {
    /// Nothing.
    #[default]
    None,
    /// Plan: record each task's plan.
    Record(Arc<saved::PlanBook>),
    /// Apply: run the saved scripts where the state is the planned one.
    Follow(Arc<saved::PlanBook>),
}

/// Totals of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunSummary {
    pub changed: usize,
    pub unchanged: usize,
    pub unknown: usize,
    pub failed: usize,
    pub unreachable: usize,
    /// Tasks waiting for something outside the run (a later run does them).
    pub pending: usize,
    /// Hosts not worked on because another run held their lock (counted in `failed` too).
    pub locked: usize,
}

/// The run could not start (nothing was changed).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Graph(#[from] GraphError),
    #[error(transparent)]
    Input(#[from] Diagnostics),
}

/// Run-wide state shared by the host tasks.
pub(crate) struct Shared {
    /// Registered values per host.
    pub registered: Mutex<Vec<Map<String, Value>>>,
    /// Plan: registered names per host whose values are known only after apply.
    pub unknown: Mutex<Vec<HashSet<String>>>,
    /// Steps completed per host.
    done: Vec<AtomicUsize>,
    /// Hosts that stopped early (failure, unreachable).
    stopped: Vec<AtomicBool>,
    tick: watch::Sender<u64>,
    pub abort: AtomicBool,
    /// Hosts that failed so far (for `max_fail_percentage`).
    failed_hosts: AtomicUsize,
}

impl Shared {
    fn new(hosts: usize) -> Self {
        Shared {
            registered: Mutex::new(vec![Map::new(); hosts]),
            unknown: Mutex::new(vec![HashSet::new(); hosts]),
            done: (0..hosts).map(|_| AtomicUsize::new(0)).collect(),
            stopped: (0..hosts).map(|_| AtomicBool::new(false)).collect(),
            tick: watch::channel(0).0,
            abort: AtomicBool::new(false),
            failed_hosts: AtomicUsize::new(0),
        }
    }

    /// Every name known only after apply, on any host. A task mentioning one of them
    /// (directly, or through `hostvars`) is shown as unknown in a plan.
    pub fn unknown(&self) -> HashSet<String> {
        self.unknown
            .lock()
            .map(|sets| sets.iter().flatten().cloned().collect())
            .unwrap_or_default()
    }

    /// `host` finished its first `steps` steps.
    pub fn complete(&self, host: usize, steps: usize) {
        self.done[host].fetch_max(steps, Ordering::SeqCst);
        self.tick.send_modify(|t| *t += 1);
    }

    /// `host` will not finish its steps.
    pub fn stop(&self, host: usize) {
        self.stopped[host].store(true, Ordering::SeqCst);
        self.tick.send_modify(|t| *t += 1);
    }

    /// Waits until every producer finished; `Err(host index)` when one never will.
    pub async fn wait_for(&self, waits: &[graph::Wait]) -> Result<(), usize> {
        let mut rx = self.tick.subscribe();
        loop {
            let mut pending = false;
            for w in waits {
                if self.done[w.host].load(Ordering::SeqCst) > w.step {
                    continue;
                }
                if self.stopped[w.host].load(Ordering::SeqCst) {
                    return Err(w.host);
                }
                pending = true;
            }
            if !pending {
                return Ok(());
            }
            if rx.changed().await.is_err() {
                // The sender lives as long as the run; treat its loss as the producer's.
                return Err(waits.first().map_or(0, |w| w.host));
            }
        }
    }
}

/// Read-only run context shared by the host tasks.
pub(crate) struct RunCtx {
    pub mode: Mode,
    pub playbook: Playbook,
    pub playbook_dir: PathBuf,
    pub schedule: graph::Schedule,
    pub renderer: Renderer,
    pub sink: Sink,
    pub run_id: String,
    pub shared: Shared,
    lock_wait: Duration,
    /// Per host: merged inventory variables.
    host_vars: Vec<Map<String, Value>>,
    /// Group name → member names.
    groups: Value,
    /// `/etc/hosts` entries of every inventory host: `[{address, names: [name]}]`.
    host_entries: Value,
    /// Directory of the running kprov binary (companion binaries such as kprov-agent).
    kprov_dir: Value,
    spec: Map<String, Value>,
    extra: Map<String, Value>,
    pub plans: Plans,
}

impl RunCtx {
    /// Inventory variables of `host`.
    pub fn inventory_vars(&self, host: usize) -> &Map<String, Value> {
        &self.host_vars[host]
    }

    /// The fixed variable layers of `host` in `play`.
    pub fn base_vars(&self, play: usize, host: usize) -> Map<String, Value> {
        let p = &self.playbook.plays[play];
        let mut vars = crate::vars::Layers {
            role_defaults: Some(&p.defaults),
            inventory: Some(&self.host_vars[host]),
            play: Some(&p.vars),
            spec: Some(&self.spec),
            extra: Some(&self.extra),
        }
        .merge();
        vars.insert(
            "inventory_hostname".into(),
            Value::String(self.schedule.hosts[host].clone()),
        );
        vars.insert("groups".into(), self.groups.clone());
        vars.insert("inventory_host_entries".into(), self.host_entries.clone());
        vars.insert("kprov_dir".into(), self.kprov_dir.clone());
        vars
    }

    /// Whether `task` mentions any of `names` (registered variables).
    pub fn uses_any(&self, task: &Task, names: &HashSet<&str>) -> bool {
        if names.is_empty() {
            return false;
        }
        task.texts().into_iter().any(|t| {
            names.iter().any(|n| {
                t.match_indices(n).any(|(i, _)| {
                    let before = t[..i].chars().last();
                    let after = t[i + n.len()..].chars().next();
                    let word =
                        |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
                    !word(before) && !word(after)
                })
            })
        })
    }

    /// The play a task belongs to.
    pub fn play_of(&self, task: &Task) -> Option<usize> {
        self.playbook.plays.iter().position(|p| {
            p.tasks.iter().any(|t| std::ptr::eq(t, task))
                || p.handlers.iter().any(|t| std::ptr::eq(t, task))
        })
    }
}

/// Runs the playbook. Returns the totals; every task outcome went to `sink` as it happened.
pub async fn run(req: RunRequest) -> Result<RunSummary, RunError> {
    let started = Instant::now();
    let selected: HashSet<String> = req
        .inventory
        .select(req.limit.as_deref())?
        .into_iter()
        .map(|h| h.name.clone())
        .collect();
    // Hosts of any play, in inventory order.
    let mut play_members = Vec::new();
    let mut unknown = Vec::new();
    for play in &req.playbook.plays {
        let members = match req.inventory.select_pattern(&play.hosts) {
            Ok(m) => m,
            Err(names) => {
                unknown.extend(names.into_iter().map(|u| Diagnostic {
                    column: play.hosts_at.column + u.column.saturating_sub(1),
                    key: format!("{}.hosts", play.name),
                    message: format!("no host or group `{}` in the inventory", u.name),
                    hint: u.suggestion.map(|s| format!("did you mean `{s}`?")),
                    ..play.hosts_at.clone()
                }));
                continue;
            }
        };
        let names: HashSet<String> = members
            .into_iter()
            .map(|h| h.name.clone())
            .filter(|n| selected.contains(n))
            .collect();
        play_members.push(names);
    }
    if !unknown.is_empty() {
        return Err(Diagnostics(unknown).into());
    }
    let hosts: Vec<&crate::inventory::Host> = req
        .inventory
        .hosts
        .iter()
        .filter(|h| play_members.iter().any(|m| m.contains(&h.name)))
        .collect();
    let names: Vec<String> = hosts.iter().map(|h| h.name.clone()).collect();
    let play_hosts: Vec<Vec<usize>> = play_members
        .iter()
        .map(|m| {
            (0..names.len())
                .filter(|i| m.contains(&names[*i]))
                .collect()
        })
        .collect();
    let schedule = graph::build(&req.playbook, &names, &play_hosts, &req.tags)?;
    let groups: Map<String, Value> = req
        .inventory
        .groups
        .iter()
        .map(|(g, members)| (g.clone(), Value::from(members.clone())))
        .collect();
    let ctx = Arc::new(RunCtx {
        mode: req.mode,
        playbook_dir: req
            .playbook
            .path
            .parent()
            .map(|p| p.to_path_buf())
            .unwrap_or_else(|| PathBuf::from(".")),
        playbook: req.playbook,
        host_vars: hosts.iter().map(|h| h.vars.clone()).collect(),
        groups: Value::Object(groups),
        kprov_dir: Value::String(
            std::env::current_exe()
                .ok()
                .and_then(|p| p.parent().map(|d| d.display().to_string()))
                .unwrap_or_default(),
        ),
        host_entries: crate::inventory::host_entries(&req.inventory),
        schedule,
        renderer: Renderer::new(),
        sink: req.sink.clone(),
        run_id: req.run_id.clone(),
        shared: Shared::new(names.len()),
        lock_wait: req.lock_wait,
        spec: req.spec,
        extra: req.extra,
        plans: req.plans.clone(),
    });
    let _ = req.sink.send(Event::RunStarted {
        run_id: req.run_id.clone(),
        mode: req.mode,
        hosts: names.clone(),
    });

    let targets: Vec<Target> = hosts.iter().map(|h| Target::for_host(h)).collect();
    let (pool, unreachable) = Pool::connect(targets, &req.pool).await;
    let mut summary = RunSummary::default();
    for err in &unreachable {
        if let Some(h) = names.iter().position(|n| *n == err.host) {
            ctx.shared.stop(h);
        }
        summary.unreachable += 1;
        let _ = req.sink.send(Event::Task {
            run_id: req.run_id.clone(),
            host: err.host.clone(),
            task: "connect".into(),
            origin: String::new(),
            status: Status::Unreachable,
            duration_ms: 0,
            summary: None,
            diff: None,
            error: Some(Box::new(Failure {
                message: format!("{}: {}", err.kind, err.detail),
                hint: Some(err.hint.clone()),
                ..Failure::default()
            })),
            warnings: Vec::new(),
            pending: false,
        });
        let _ = req.sink.send(Event::HostDone {
            run_id: req.run_id.clone(),
            host: err.host.clone(),
            counts: [(Status::Unreachable, 1)].into_iter().collect(),
            duration_ms: 0,
            round_trips: 0,
        });
    }
    let stops = Arc::new(each::Stops {
        fail_fast: req.fail_fast,
        max_fail: ctx
            .playbook
            .plays
            .iter()
            .filter_map(|p| p.max_fail_percentage)
            .min(),
        total_hosts: names.len(),
    });
    let results = pool
        .for_each(|conn| each::run_host(ctx.clone(), conn, stops.clone()))
        .await;
    let mut locks = Vec::new();
    for (_, done) in results {
        let Some(done) = done else {
            continue;
        };
        let result = &done.result;
        let count = |s: Status| result.counts.get(&s).copied().unwrap_or(0);
        summary.changed += count(Status::Changed);
        summary.unchanged += count(Status::Ok);
        summary.unknown += count(Status::Unknown);
        summary.failed += count(Status::Failed);
        summary.unreachable += count(Status::Unreachable);
        summary.pending += result.pending;
        summary.locked += usize::from(result.locked);
        let _ = req.sink.send(Event::HostDone {
            run_id: req.run_id.clone(),
            host: names[done.host].clone(),
            counts: result.counts.clone(),
            duration_ms: u64::try_from(done.elapsed.as_millis()).unwrap_or(u64::MAX),
            round_trips: result.round_trips,
        });
        locks.extend(done.lock);
    }
    // Every host is done: the locks go (each waits until its holder ended on the host),
    // then the connections they ran on.
    let mut releases = tokio::task::JoinSet::new();
    for lock in locks {
        releases.spawn(lock.release());
    }
    while releases.join_next().await.is_some() {}
    pool.close().await;
    let _ = req.sink.send(Event::RunDone {
        run_id: req.run_id,
        mode: req.mode,
        changed: summary.changed,
        unchanged: summary.unchanged,
        unknown: summary.unknown,
        failed: summary.failed,
        unreachable: summary.unreachable,
        pending: summary.pending,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    });
    Ok(summary)
}
