//! A task's outcome before it becomes an event: status, summary, diff, error.

use kprov_modules::Diff;

use crate::events::{Failure, Status};

/// The outcome of one task, before it becomes an event.
pub(super) struct Outcome {
    pub status: Status,
    pub summary: Option<String>,
    pub diff: Option<String>,
    pub error: Option<Failure>,
    pub warnings: Vec<String>,
}

impl Outcome {
    pub fn simple(status: Status, summary: Option<String>) -> Outcome {
        Outcome {
            status,
            summary,
            diff: None,
            error: None,
            warnings: Vec::new(),
        }
    }

    pub fn failed(f: Failure) -> Outcome {
        Outcome {
            status: Status::Failed,
            summary: None,
            diff: None,
            error: Some(f),
            warnings: Vec::new(),
        }
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

pub(super) fn tail(text: &str, lines: usize) -> Vec<String> {
    let all: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    all[all.len().saturating_sub(lines)..]
        .iter()
        .map(|s| s.to_string())
        .collect()
}
