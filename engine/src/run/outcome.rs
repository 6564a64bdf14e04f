//! A task's outcome before it becomes an event: status, summary, diff, error.

use std::collections::BTreeMap;

use kprov_modules::Diff;

use crate::events::{Failure, Status};

/// The outcome of one task, before it becomes an event.
pub(crate) struct Outcome {
    pub status: Status,
    pub summary: Option<String>,
    pub diff: Option<String>,
    pub error: Option<Failure>,
    pub warnings: Vec<String>,
    /// Skipped until something outside the run is ready.
    pub pending: bool,
}

impl Outcome {
    pub fn simple(status: Status, summary: Option<String>) -> Outcome {
        Outcome {
            status,
            summary,
            diff: None,
            error: None,
            warnings: Vec::new(),
            pending: false,
        }
    }

    pub fn failed(f: Failure) -> Outcome {
        Outcome {
            status: Status::Failed,
            summary: None,
            diff: None,
            error: Some(f),
            warnings: Vec::new(),
            pending: false,
        }
    }

    /// A skip that a later run resolves: `why` says what it waits for.
    pub fn pending(why: String) -> Outcome {
        let mut outcome = Outcome::simple(Status::Skipped, Some(why));
        outcome.pending = true;
        outcome
    }

    /// Adds the module's warnings about the state it gathered.
    pub fn with_warnings(mut self, warnings: Vec<String>) -> Outcome {
        self.warnings = warnings;
        self
    }

    pub fn from_diff(diff: &Diff, sensitive: bool) -> Outcome {
        match diff {
            Diff::Unchanged => Outcome::simple(Status::Ok, None),
            Diff::Run { summary } => Outcome::simple(Status::Ok, Some(summary.clone())),
            Diff::Change {
                summary,
                before,
                after,
            } => Outcome {
                status: Status::Changed,
                summary: Some(summary.clone()),
                diff: unified(before.as_deref(), after.as_deref(), sensitive),
                error: None,
                warnings: Vec::new(),
                pending: false,
            },
        }
    }
}

/// Unified diff of file texts; masked when the module holds secrets.
fn unified(before: Option<&str>, after: Option<&str>, sensitive: bool) -> Option<String> {
    if before.is_none() && after.is_none() {
        return None;
    }
    if sensitive {
        return Some("(content holds secrets: diff masked)\n".to_string());
    }
    let old = before.unwrap_or("");
    let new = after.unwrap_or("");
    let text = similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(
            if before.is_some() {
                "current"
            } else {
                "/dev/null"
            },
            "desired",
        )
        .to_string();
    Some(text)
}

/// A round trip's stderr: the last lines of all of it, and the last lines of each task's
/// part (the prelude's `kp_begin` marks where a task starts).
pub(super) fn split_stderr(
    text: &str,
    lines: usize,
) -> (Vec<String>, BTreeMap<usize, Vec<String>>) {
    let mut all = String::new();
    let mut per_task: BTreeMap<usize, String> = BTreeMap::new();
    let mut current = None;
    for line in text.lines() {
        if let Some(id) = line.strip_prefix("\u{1e}KP ") {
            current = id.trim().parse::<usize>().ok();
            continue;
        }
        all.push_str(line);
        all.push('\n');
        if let Some(id) = current {
            let own = per_task.entry(id).or_default();
            own.push_str(line);
            own.push('\n');
        }
    }
    let per_task = per_task
        .into_iter()
        .map(|(id, text)| (id, tail(&text, lines)))
        .filter(|(_, lines)| !lines.is_empty())
        .collect();
    (tail(&all, lines), per_task)
}

pub(super) fn tail(text: &str, lines: usize) -> Vec<String> {
    let all: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    all[all.len().saturating_sub(lines)..]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stderr_is_split_by_task_markers() {
        let text = "prelude noise\n\u{1e}KP 3\nfirst\n\u{1e}KP 7\napt: E: no package\n\nlast\n";
        let (all, per_task) = split_stderr(text, 10);
        assert_eq!(
            all,
            ["prelude noise", "first", "apt: E: no package", "last"]
        );
        assert_eq!(per_task[&3], ["first"]);
        assert_eq!(per_task[&7], ["apt: E: no package", "last"]);
        let (_, per_task) = split_stderr("\u{1e}KP 1\n\u{1e}KP 2\nx\n", 10);
        assert!(!per_task.contains_key(&1));
    }

    /// The prelude's real `kp_begin` marks each task's part of stderr.
    #[test]
    fn the_prelude_marks_each_task() {
        let script = format!(
            "{}kp_begin 4\necho noise >&2\nkp_end 0\nkp_begin 5\necho 'E: broken' >&2\nkp_end 1\n",
            kprov_modules::PRELUDE
        );
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .output()
            .unwrap();
        let (all, per_task) = split_stderr(&String::from_utf8_lossy(&out.stderr), 10);
        assert_eq!(per_task[&4], ["noise"]);
        assert_eq!(per_task[&5], ["E: broken"]);
        assert_eq!(all, ["noise", "E: broken"]);
    }
}
