//! The task graph: tasks × hosts, ordered per host, joined across hosts where a task
//! consumes a value another host's task registers. Cycles are refused by name.

use std::collections::{HashMap, HashSet};

use petgraph::algo::{tarjan_scc, toposort};
use petgraph::graph::{DiGraph, NodeIndex};

use super::refs::{self, HostVarRef};
use crate::playbook::{Playbook, Task};

/// One position in a host's sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// `plays[play].tasks[task]`.
    Task { play: usize, task: usize },
    /// Run the handlers of `plays[play]` notified so far on this host.
    Flush { play: usize },
}

/// A task instance on another host that must finish first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Wait {
    pub host: usize,
    pub step: usize,
}

/// What every host runs, and what it waits for.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// Host names, in inventory order.
    pub hosts: Vec<String>,
    /// Per host: its steps in order.
    pub steps: Vec<Vec<Step>>,
    /// Per host, per step: producers on other hosts that must finish first.
    pub waits: Vec<Vec<Vec<Wait>>>,
}

/// The graph cannot be scheduled.
#[derive(Debug, Clone, thiserror::Error)]
pub enum GraphError {
    #[error("tasks wait for each other in a cycle: {}", .0.join(" → "))]
    Cycle(Vec<String>),
    #[error("play `{play}`: {message}")]
    Hosts { play: String, message: String },
}

/// Tag selection (`--tags`, `--skip-tags`); a task tagged `always` runs unless skipped.
#[derive(Debug, Clone, Default)]
pub struct TagFilter {
    pub only: Vec<String>,
    pub skip: Vec<String>,
}

impl TagFilter {
    /// Whether a task with `tags` is selected.
    pub fn selects(&self, tags: &[String]) -> bool {
        let has = |set: &[String]| tags.iter().any(|t| set.contains(t));
        if has(&self.skip) {
            return false;
        }
        self.only.is_empty() || has(&self.only) || tags.iter().any(|t| t == "always")
    }
}

/// Builds the schedule. `play_hosts[p]` lists the indices (into `hosts`) a play targets.
pub fn build(
    playbook: &Playbook,
    hosts: &[String],
    play_hosts: &[Vec<usize>],
    tags: &TagFilter,
) -> Result<Schedule, GraphError> {
    let mut steps: Vec<Vec<Step>> = vec![Vec::new(); hosts.len()];
    for (p, play) in playbook.plays.iter().enumerate() {
        for &h in &play_hosts[p] {
            for (t, task) in play.tasks.iter().enumerate() {
                if tags.selects(&task.tags) {
                    steps[h].push(Step::Task { play: p, task: t });
                }
            }
            if !play.handlers.is_empty() {
                steps[h].push(Step::Flush { play: p });
            }
        }
    }
    let task_of = |step: &Step| match step {
        Step::Task { play, task } => Some(&playbook.plays[*play].tasks[*task]),
        Step::Flush { .. } => None,
    };
    // Who registers what: var name -> [(host, step)].
    let mut producers: HashMap<&str, Vec<(usize, usize)>> = HashMap::new();
    for (h, list) in steps.iter().enumerate() {
        for (s, step) in list.iter().enumerate() {
            if let Some(reg) = task_of(step).and_then(|t| t.register.as_deref()) {
                producers.entry(reg).or_default().push((h, s));
            }
        }
    }
    let host_index: HashMap<&str, usize> = hosts
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect();
    let mut waits: Vec<Vec<Vec<Wait>>> = steps.iter().map(|l| vec![Vec::new(); l.len()]).collect();
    for (h, list) in steps.iter().enumerate() {
        for (s, step) in list.iter().enumerate() {
            let Some(task) = task_of(step) else { continue };
            let mut seen = HashSet::new();
            for r in references(task) {
                let Some(candidates) = producers.get(r.var.as_str()) else {
                    continue;
                };
                let wanted_host = r.host.as_deref().and_then(|n| host_index.get(n)).copied();
                for &(ph, ps) in candidates {
                    let matches = match (&r.host, wanted_host) {
                        (None, _) => true,
                        (Some(_), Some(w)) => w == ph,
                        (Some(_), None) => false,
                    };
                    if ph != h && matches && seen.insert((ph, ps)) {
                        waits[h][s].push(Wait { host: ph, step: ps });
                    }
                }
            }
        }
    }
    let schedule = Schedule {
        hosts: hosts.to_vec(),
        steps,
        waits,
    };
    check_acyclic(&schedule, playbook)?;
    Ok(schedule)
}

fn references(task: &Task) -> Vec<HostVarRef> {
    let mut out = Vec::new();
    for text in task.texts() {
        refs::in_text(text, &mut out);
    }
    out
}

/// Builds the petgraph DAG (per-host order + cross-host waits) and refuses cycles,
/// naming every task in the cycle.
fn check_acyclic(schedule: &Schedule, playbook: &Playbook) -> Result<(), GraphError> {
    let mut graph: DiGraph<(usize, usize), ()> = DiGraph::new();
    let nodes: Vec<Vec<NodeIndex>> = schedule
        .steps
        .iter()
        .enumerate()
        .map(|(h, list)| (0..list.len()).map(|s| graph.add_node((h, s))).collect())
        .collect();
    for (h, list) in nodes.iter().enumerate() {
        for pair in list.windows(2) {
            graph.add_edge(pair[0], pair[1], ());
        }
        for (s, ws) in schedule.waits[h].iter().enumerate() {
            for w in ws {
                graph.add_edge(nodes[w.host][w.step], list[s], ());
            }
        }
    }
    if toposort(&graph, None).is_ok() {
        return Ok(());
    }
    let cycle = tarjan_scc(&graph)
        .into_iter()
        .find(|scc| scc.len() > 1)
        .unwrap_or_default();
    let mut names: Vec<((usize, usize), String)> = cycle
        .iter()
        .map(|n| {
            let (h, s) = graph[*n];
            let label = match schedule.steps[h][s] {
                Step::Task { play, task } => {
                    let t = &playbook.plays[play].tasks[task];
                    format!("{}: {} ({})", schedule.hosts[h], t.name, t.origin)
                }
                Step::Flush { play } => format!(
                    "{}: handlers of `{}`",
                    schedule.hosts[h], playbook.plays[play].name
                ),
            };
            ((h, s), label)
        })
        .collect();
    names.sort();
    Err(GraphError::Cycle(
        names.into_iter().map(|(_, l)| l).collect(),
    ))
}
