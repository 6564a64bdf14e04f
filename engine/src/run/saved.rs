//! Saved plans: what `kprov plan --out FILE` records of each task (its gathered state's
//! fingerprint and, unless it holds secrets, the script it planned), and what
//! `kprov apply FILE` checks and runs from it.
//!
//! A task is known by its origin (`file:line`), its display name (with the loop item)
//! and how often that pair came before on the host, so a role included twice or a handler
//! flushed twice keeps distinct keys.

use std::collections::BTreeMap;
use std::sync::Mutex;

use kprov_modules::{Plan, State};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// One task of a saved plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedTask {
    /// `origin|name#n`: stable between two runs of the same inputs.
    pub key: String,
    /// The name `plan` showed.
    pub task: String,
    /// sha256 of the gathered state (see [`fingerprint`]).
    pub state: String,
    /// Per gathered field, its sha256: names what changed when the state drifted.
    pub fields: BTreeMap<String, String>,
    /// What the plan showed (`None` when the task changes nothing).
    pub summary: Option<String>,
    /// The planned script; `None` for plans holding secrets, which are recomputed at
    /// apply from the identical state.
    pub script: Option<String>,
}

/// Every planned task per host, in run order.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct PlanBook {
    hosts: Mutex<BTreeMap<String, Vec<PlannedTask>>>,
}

impl PlanBook {
    /// A book of the given hosts' tasks.
    pub fn from_hosts(hosts: BTreeMap<String, Vec<PlannedTask>>) -> PlanBook {
        PlanBook {
            hosts: Mutex::new(hosts),
        }
    }

    /// A copy of every host's tasks.
    pub fn hosts(&self) -> BTreeMap<String, Vec<PlannedTask>> {
        self.hosts.lock().map(|h| h.clone()).unwrap_or_default()
    }

    /// Records `plan` of the task `key` on `host`, planned from `state`.
    pub(crate) fn record(&self, host: &str, key: &str, task: &str, state: &State, plan: &Plan) {
        let changes = plan.diff.needs_apply();
        let entry = PlannedTask {
            key: key.to_string(),
            task: task.to_string(),
            state: fingerprint(state),
            fields: field_digests(state),
            summary: changes.then(|| summary(plan)),
            script: (!plan.sensitive).then(|| plan.script.clone()),
        };
        if let Ok(mut hosts) = self.hosts.lock() {
            hosts.entry(host.to_string()).or_default().push(entry);
        }
    }

    /// What the saved plan says of task `key` on `host`, now gathered as `state`.
    pub(crate) fn follow(&self, host: &str, key: &str, state: &State) -> Followed {
        let Ok(hosts) = self.hosts.lock() else {
            return Followed::NotPlanned;
        };
        let Some(task) = hosts
            .get(host)
            .and_then(|t| t.iter().find(|t| t.key == key))
        else {
            return Followed::NotPlanned;
        };
        if task.state == fingerprint(state) {
            return Followed::Planned(task.script.clone());
        }
        let now = PlannedTask {
            fields: field_digests(state),
            ..task.clone()
        };
        Followed::Drifted(changed_fields(task, &now))
    }

    /// The planned script of task `key` on `host` when the host's state for it is still the
    /// one it was planned from.
    #[cfg(test)]
    fn script_for(&self, host: &str, key: &str, state: &State) -> Option<String> {
        match self.follow(host, key, state) {
            Followed::Planned(script) => script,
            _ => None,
        }
    }
}

/// A task of an apply that follows a saved plan, as the plan knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Followed {
    /// Planned from this very state: its saved script (`None` for a secret plan, which is
    /// recomputed from the identical state).
    Planned(Option<String>),
    /// Planned from another state: what changed.
    Drifted(String),
    /// Not in the plan (a host planned again with `--allow-drift`, or a task the plan
    /// could not know, e.g. one that used a value known only after apply).
    NotPlanned,
}

fn field_digests(state: &State) -> BTreeMap<String, String> {
    state
        .fields
        .iter()
        .map(|(k, v)| (k.clone(), hex(&Sha256::digest(v))))
        .collect()
}

fn summary(plan: &Plan) -> String {
    match &plan.diff {
        kprov_modules::Diff::Change { summary, .. } | kprov_modules::Diff::Run { summary } => {
            summary.clone()
        }
        kprov_modules::Diff::Unchanged => String::new(),
    }
}

/// sha256 over a state's field names and values (length-prefixed, in name order).
pub fn fingerprint(state: &State) -> String {
    let mut h = Sha256::new();
    for (name, value) in &state.fields {
        h.update((name.len() as u64).to_le_bytes());
        h.update(name.as_bytes());
        h.update((value.len() as u64).to_le_bytes());
        h.update(value);
    }
    hex(&h.finalize())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A task whose host state is not what it was when the plan was made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drift {
    pub host: String,
    pub task: String,
    /// What changed, for the operator.
    pub what: String,
}

/// Compares a saved book with a fresh plan of the same inputs: every task of `saved` must
/// be planned from the same state again. Returns the first drift per host.
pub fn drift(saved: &PlanBook, fresh: &PlanBook) -> Vec<Drift> {
    let fresh = fresh.hosts();
    let mut out = Vec::new();
    for (host, tasks) in saved.hosts() {
        let now = fresh.get(&host).map(Vec::as_slice).unwrap_or(&[]);
        for task in &tasks {
            let what = match now.iter().find(|t| t.key == task.key) {
                None => Some("it is no longer planned from the host's current state".to_string()),
                Some(t) if t.state != task.state => Some(changed_fields(task, t)),
                Some(_) => None,
            };
            if let Some(what) = what {
                out.push(Drift {
                    host: host.clone(),
                    task: task.task.clone(),
                    what,
                });
                break;
            }
        }
    }
    out
}

/// "what the host holds for it changed since the plan was made (fields: …); the plan
/// was to …".
fn changed_fields(planned: &PlannedTask, now: &PlannedTask) -> String {
    let mut names: Vec<&str> = planned
        .fields
        .keys()
        .chain(now.fields.keys())
        .filter(|k| planned.fields.get(*k) != now.fields.get(*k))
        .map(String::as_str)
        .collect();
    names.sort_unstable();
    names.dedup();
    let plan = match &planned.summary {
        Some(s) => format!("; the plan was to {s}"),
        None => "; the plan was to change nothing".to_string(),
    };
    format!(
        "what the host holds for it changed since the plan was made (gathered {}){plan}",
        names.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use kprov_modules::Diff;

    fn state(pairs: &[(&str, &str)]) -> State {
        State {
            fields: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
                .collect(),
        }
    }

    #[test]
    fn fingerprints_tell_field_boundaries_apart() {
        assert_ne!(
            fingerprint(&state(&[("a", "bc")])),
            fingerprint(&state(&[("ab", "c")]))
        );
        assert_eq!(
            fingerprint(&state(&[("a", "1"), ("b", "2")])),
            fingerprint(&state(&[("b", "2"), ("a", "1")]))
        );
    }

    #[test]
    fn a_script_is_reused_only_for_the_same_state_and_never_kept_when_secret() {
        let book = PlanBook::default();
        let s = state(&[("sha", "x")]);
        let plan = Plan::new(Diff::change("update /etc/hosts"), "kp_put_if …");
        book.record("m", "k#0", "Hosts", &s, &plan);
        let keys = Plan::new(Diff::change("create ca.key"), "KEY-BYTES").secret(true);
        book.record("m", "k#1", "Keys", &s, &keys);
        assert_eq!(
            book.script_for("m", "k#0", &s).as_deref(),
            Some("kp_put_if …")
        );
        assert_eq!(book.script_for("m", "k#0", &state(&[("sha", "y")])), None);
        assert_eq!(book.script_for("m", "k#1", &s), None);
        assert!(!serde_json::to_string(&book).unwrap().contains("KEY-BYTES"));
    }

    #[test]
    fn drift_names_the_host_the_task_and_the_fields() {
        let saved = PlanBook::default();
        let fresh = PlanBook::default();
        let plan = Plan::new(Diff::change("update /etc/hosts"), "");
        saved.record(
            "m",
            "k#0",
            "Hosts",
            &state(&[("sha", "x"), ("stat", "s")]),
            &plan,
        );
        saved.record("n", "k#0", "Hosts", &state(&[("sha", "x")]), &plan);
        fresh.record(
            "m",
            "k#0",
            "Hosts",
            &state(&[("sha", "y"), ("stat", "s")]),
            &plan,
        );
        fresh.record("n", "k#0", "Hosts", &state(&[("sha", "x")]), &plan);
        let found = drift(&saved, &fresh);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].host, "m");
        assert_eq!(found[0].task, "Hosts");
        assert!(found[0].what.contains("gathered sha"), "{}", found[0].what);
        assert!(
            found[0].what.contains("update /etc/hosts"),
            "{}",
            found[0].what
        );
    }
}
