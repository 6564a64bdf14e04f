//! The human view: plan diffs per host, apply progress and the recap table.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use kprov_engine::events::{Event, Failure, Mode, Status};

use crate::color::{Paint, Stream};

/// One task outcome kept for the plan listing.
struct Line {
    status: Status,
    task: String,
    summary: Option<String>,
    diff: Option<String>,
    error: Option<Failure>,
    warnings: Vec<String>,
}

/// Recap row of one host.
#[derive(Default)]
struct Recap {
    counts: BTreeMap<Status, usize>,
    duration_ms: u64,
    round_trips: usize,
}

/// Human output, always on stderr when JSON goes to stdout.
pub struct Human {
    mode: Mode,
    to_stderr: bool,
    quiet: bool,
    hosts: Vec<String>,
    plan: BTreeMap<String, Vec<Line>>,
    recap: BTreeMap<String, Recap>,
    bars: Option<(MultiProgress, BTreeMap<String, ProgressBar>)>,
    totals: Option<(usize, usize, usize, usize, usize, u64)>,
    /// (task, error message) → the first host that failed with it: later hosts with the
    /// same failure get one line instead of the whole report again.
    seen_failures: BTreeMap<(String, String), String>,
    /// `host: task: what it waits for`, for tasks a later run does.
    pending: Vec<String>,
    /// Outcomes per host as tasks report, for hosts interrupted before they finished.
    so_far: BTreeMap<String, BTreeMap<Status, usize>>,
    /// Set by an interrupt: tasks refused from then on are not failures.
    interrupted: bool,
    /// Hosts still working when the interrupt came: what fails on them afterwards is the
    /// interrupt's doing, not a failure to report.
    cut: std::collections::BTreeSet<String>,
    started: std::time::Instant,
    /// Colour for the stream this view writes to.
    paint: Paint,
}

impl Human {
    pub fn new(mode: Mode, json: bool, quiet: bool) -> Self {
        Human {
            mode,
            to_stderr: json,
            quiet,
            hosts: Vec::new(),
            plan: BTreeMap::new(),
            recap: BTreeMap::new(),
            bars: None,
            totals: None,
            seen_failures: BTreeMap::new(),
            pending: Vec::new(),
            so_far: BTreeMap::new(),
            interrupted: false,
            cut: Default::default(),
            started: std::time::Instant::now(),
            paint: Paint::for_stream(if json || mode == Mode::Apply {
                Stream::Stderr
            } else {
                Stream::Stdout
            }),
        }
    }

    fn print(&self, text: &str) {
        if let Some((multi, _)) = &self.bars {
            let _ = multi.println(text);
        } else if self.to_stderr || self.mode == Mode::Apply {
            eprintln!("{text}");
        } else {
            println!("{text}");
        }
    }

    pub fn event(&mut self, event: &Event) {
        match event {
            Event::RunStarted { hosts, .. } => {
                self.hosts = hosts.clone();
                if self.mode == Mode::Apply && !self.quiet && std::io::stderr().is_terminal() {
                    self.start_bars();
                }
            }
            Event::Task {
                host,
                task,
                origin,
                status,
                summary,
                diff,
                error,
                warnings,
                pending,
                ..
            } => {
                if *pending {
                    let why = summary.as_deref().unwrap_or("waits for a later run");
                    self.pending.push(format!("{host}: {task}: {why}"));
                }
                let cut = self.cut.contains(host)
                    && matches!(status, Status::Failed | Status::Unreachable);
                if cut {
                    return;
                }
                *self
                    .so_far
                    .entry(host.clone())
                    .or_default()
                    .entry(*status)
                    .or_default() += 1;
                if let Some((_, bars)) = &self.bars {
                    if let Some(bar) = bars.get(host) {
                        bar.inc(1);
                    }
                }
                if self.mode == Mode::Plan {
                    self.plan.entry(host.clone()).or_default().push(Line {
                        status: *status,
                        task: task.clone(),
                        summary: summary.clone(),
                        diff: diff.clone(),
                        error: error.as_deref().cloned(),
                        warnings: warnings.clone(),
                    });
                    return;
                }
                for w in warnings {
                    let warning = self.paint.yellow("warning:");
                    self.print(&format!("{warning} {host}: {task}: {w}"));
                }
                match status {
                    Status::Failed | Status::Unreachable => {
                        let text =
                            self.failure_report(host, task, origin, *status, error.as_deref());
                        self.print(&text);
                    }
                    Status::Changed if !self.quiet => {
                        let what = summary.as_deref().unwrap_or(task);
                        let mark = self.paint.yellow("~");
                        self.print(&format!("{mark} {host}: {task}: {what}"));
                    }
                    _ => {}
                }
            }
            Event::TaskStarted { .. } => {
                if let (Some((_, bars)), Some((host, message))) =
                    (&self.bars, super::progress::live(event))
                {
                    if let Some(bar) = bars.get(host) {
                        bar.set_message(message);
                        bar.reset_elapsed();
                    }
                }
            }
            Event::BatchStarted { host, .. } | Event::BatchDone { host, .. } => {
                if self.bars.is_some()
                    || self.mode != Mode::Apply
                    || self.quiet
                    || self.cut.contains(host)
                {
                    return;
                }
                if let Some(line) = super::progress::line(event) {
                    self.print(&line);
                }
            }
            Event::HostDone {
                host,
                counts,
                duration_ms,
                round_trips,
                ..
            } => {
                if self.cut.contains(host) {
                    return;
                }
                if let Some((_, bars)) = &self.bars {
                    if let Some(bar) = bars.get(host) {
                        let failed = counts.get(&Status::Failed).copied().unwrap_or(0)
                            + counts.get(&Status::Unreachable).copied().unwrap_or(0);
                        bar.finish_with_message(if failed > 0 { "failed" } else { "done" });
                    }
                }
                self.recap.insert(
                    host.clone(),
                    Recap {
                        counts: counts.clone(),
                        duration_ms: *duration_ms,
                        round_trips: *round_trips,
                    },
                );
            }
            Event::RunDone {
                changed,
                unchanged,
                unknown,
                failed,
                unreachable,
                duration_ms,
                ..
            } => {
                self.totals = Some((
                    *changed,
                    *unchanged,
                    *unknown,
                    *failed,
                    *unreachable,
                    *duration_ms,
                ));
            }
        }
    }

    /// The whole report the first time a failure is seen; one line for every later host
    /// that fails the same task with the same message.
    fn failure_report(
        &mut self,
        host: &str,
        task: &str,
        origin: &str,
        status: Status,
        error: Option<&Failure>,
    ) -> String {
        let key = (
            task.to_string(),
            error.map(|e| e.message.clone()).unwrap_or_default(),
        );
        match self.seen_failures.get(&key) {
            Some(first) => format!(
                "{} {host}: {task}: failed the same way as {first}",
                self.paint.red("✗")
            ),
            None => {
                self.seen_failures.insert(key, host.to_string());
                failure_text(self.paint, host, task, origin, status, error)
            }
        }
    }

    fn start_bars(&mut self) {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template(
            "{spinner} {prefix:<12} {pos:>3} tasks {elapsed:>4}  {wide_msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
        let bars = self
            .hosts
            .iter()
            .map(|h| {
                let bar = multi.add(ProgressBar::new_spinner());
                bar.set_style(style.clone());
                bar.set_prefix(h.clone());
                bar.enable_steady_tick(Duration::from_millis(120));
                (h.clone(), bar)
            })
            .collect();
        self.bars = Some((multi, bars));
    }

    /// Says the run was interrupted, at once, whatever the output mode.
    pub fn interrupted(&mut self, signal: &str, grace: Duration) {
        self.interrupted = true;
        self.cut = self
            .hosts
            .iter()
            .filter(|h| !self.recap.contains_key(*h))
            .cloned()
            .collect();
        let text = format!(
            "interrupted ({signal}): no new task starts; waiting up to {} s for running ones \
             (again to stop them now), then ending what still runs on the hosts",
            grace.as_secs()
        );
        if let Some((multi, _)) = &self.bars {
            let _ = multi.println(&text);
        } else {
            eprintln!("{text}");
        }
    }

    pub fn finish(&mut self) {
        if let Some((multi, bars)) = self.bars.take() {
            for bar in bars.values() {
                bar.finish();
            }
            let _ = multi.clear();
        }
        match self.mode {
            Mode::Plan => self.print_plan(),
            Mode::Apply => self.print_recap(),
        }
    }

    fn print_plan(&self) {
        let mut out = String::new();
        for host in &self.hosts {
            let Some(lines) = self.plan.get(host) else {
                continue;
            };
            out.push_str(&format!("{}\n", self.paint.bold(host)));
            for line in lines {
                let (mark, label) = match line.status {
                    Status::Changed => {
                        let create = line
                            .summary
                            .as_deref()
                            .is_some_and(|s| s.starts_with("create"));
                        (
                            if create { "+" } else { "~" },
                            line.summary.clone().unwrap_or_default(),
                        )
                    }
                    Status::Ok => ("=", line.summary.clone().unwrap_or_default()),
                    Status::Unknown => ("?", "known after apply".to_string()),
                    Status::Skipped => (
                        "-",
                        line.summary.clone().unwrap_or_else(|| "skipped".into()),
                    ),
                    Status::Failed | Status::Unreachable => ("!", String::new()),
                };
                if self.quiet
                    && line.warnings.is_empty()
                    && matches!(line.status, Status::Ok | Status::Skipped)
                {
                    continue;
                }
                let label = if label.is_empty() {
                    String::new()
                } else {
                    format!(": {label}")
                };
                let mark = match mark {
                    "+" => self.paint.green(mark),
                    "~" => self.paint.yellow(mark),
                    "!" => self.paint.red(mark),
                    _ => mark.to_string(),
                };
                out.push_str(&format!("  {mark} {}{label}\n", line.task));
                if let Some(diff) = &line.diff {
                    for d in diff.lines() {
                        out.push_str(&format!("      {d}\n"));
                    }
                }
                if let Some(err) = &line.error {
                    out.push_str(&indent(&failure_body(err), 6));
                }
                for w in &line.warnings {
                    out.push_str(&format!("      {} {w}\n", self.paint.yellow("warning:")));
                }
            }
        }
        if let Some((changed, unchanged, unknown, failed, unreachable, _)) = self.totals {
            out.push_str(&format!(
                "Plan: {changed} to change, {unchanged} unchanged, {unknown} unknown"
            ));
            if failed + unreachable > 0 {
                out.push_str(&format!(", {failed} failed, {unreachable} unreachable"));
            }
            let warnings: usize = self.plan.values().flatten().map(|l| l.warnings.len()).sum();
            if warnings > 0 {
                out.push_str(&format!(", {warnings} warnings"));
            }
            out.push('\n');
        }
        if self.to_stderr {
            eprint!("{out}");
        } else {
            print!("{out}");
            let _ = std::io::stdout().flush();
        }
    }

    fn print_recap(&self) {
        if self.quiet && self.pending.is_empty() && self.totals.is_some_and(|t| t.3 + t.4 == 0) {
            return;
        }
        let mut out = String::from(if self.interrupted {
            "\nRECAP (interrupted)\n"
        } else {
            "\nRECAP\n"
        });
        out.push_str(&format!(
            "{:<14} {:>4} {:>8} {:>7} {:>8} {:>12} {:>9} {:>12}\n",
            "HOST", "OK", "CHANGED", "FAILED", "SKIPPED", "UNREACHABLE", "TIME", "ROUND TRIPS"
        ));
        for host in &self.hosts {
            let r = self.recap.get(host);
            let so_far = self.so_far.get(host);
            let n = |s: Status| {
                r.map(|r| &r.counts)
                    .or(so_far)
                    .and_then(|c| c.get(&s).copied())
                    .unwrap_or(0)
            };
            out.push_str(&format!(
                "{:<14} {:>4} {:>8} {:>7} {:>8} {:>12} {:>8.1}s {:>12}\n",
                host,
                n(Status::Ok),
                n(Status::Changed),
                n(Status::Failed),
                n(Status::Skipped) + n(Status::Unknown),
                n(Status::Unreachable),
                r.map_or(0.0, |r| r.duration_ms as f64 / 1000.0),
                r.map_or(0, |r| r.round_trips),
            ));
        }
        if !self.pending.is_empty() {
            out.push_str("Pending (a later run does these):\n");
            for line in &self.pending {
                out.push_str(&format!("  {line}\n"));
            }
        }
        if self.interrupted {
            let unfinished: Vec<&str> = self.cut.iter().map(String::as_str).collect();
            let total = |s: Status| {
                self.hosts
                    .iter()
                    .filter_map(|h| self.recap.get(h).map(|r| &r.counts).or(self.so_far.get(h)))
                    .filter_map(|c| c.get(&s))
                    .sum::<usize>()
            };
            out.push_str(&format!(
                "interrupted after {:.1}s: {} changed, {} ok, {} failed",
                self.started.elapsed().as_secs_f64(),
                total(Status::Changed),
                total(Status::Ok),
                total(Status::Failed),
            ));
            if !unfinished.is_empty() {
                out.push_str(&format!(
                    "; not finished: {} (their remaining tasks did not run)",
                    unfinished.join(", ")
                ));
            }
            out.push('\n');
            eprint!("{out}");
            return;
        }
        if let Some((changed, unchanged, _, failed, unreachable, ms)) = self.totals {
            let pending = match self.pending.len() {
                0 => String::new(),
                n => format!(", {n} pending"),
            };
            out.push_str(&format!(
                "{changed} changed, {unchanged} ok, {failed} failed, {unreachable} unreachable{pending} in {:.1}s\n",
                ms as f64 / 1000.0
            ));
        }
        eprint!("{out}");
    }
}

fn failure_text(
    paint: Paint,
    host: &str,
    task: &str,
    origin: &str,
    status: Status,
    error: Option<&Failure>,
) -> String {
    let what = if status == Status::Unreachable {
        "unreachable"
    } else {
        "failed"
    };
    let at = if origin.is_empty() {
        String::new()
    } else {
        format!(" ({origin})")
    };
    let mut text = format!(
        "{} {host}: {task}{at}: {}\n",
        paint.red("✗"),
        paint.red(what)
    );
    if let Some(err) = error {
        text.push_str(&indent(&failure_body(err), 4));
    }
    text.trim_end().to_string()
}

fn failure_body(err: &Failure) -> String {
    let mut text = format!("{}\n", err.message);
    if let Some(cmd) = &err.command {
        text.push_str(&format!("task: {cmd}\n"));
    }
    if let Some(code) = err.exit_code {
        text.push_str(&format!("exit code: {code}\n"));
    }
    if !err.stderr.is_empty() {
        text.push_str("stderr:\n");
        for l in &err.stderr {
            text.push_str(&format!("  {l}\n"));
        }
    }
    if let Some(hint) = &err.hint {
        text.push_str(&format!("hint: {hint}\n"));
    }
    if err.changed {
        text.push_str("the task changed the host before it failed\n");
    }
    text
}

fn indent(text: &str, n: usize) -> String {
    let pad = " ".repeat(n);
    text.lines().map(|l| format!("{pad}{l}\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_failures_are_reported_once() {
        let mut h = Human::new(Mode::Apply, false, false);
        let err = |m: &str| Failure {
            message: m.into(),
            stderr: vec!["E: Unable to locate package kubelet".into()],
            ..Failure::default()
        };
        let first = h.failure_report(
            "n1",
            "install",
            "a.yaml:3",
            Status::Failed,
            Some(&err("apt failed")),
        );
        assert!(
            first.contains("E: Unable to locate package kubelet"),
            "{first}"
        );
        let again = h.failure_report(
            "n2",
            "install",
            "a.yaml:3",
            Status::Failed,
            Some(&err("apt failed")),
        );
        assert_eq!(again, "✗ n2: install: failed the same way as n1");
        let other = h.failure_report(
            "n3",
            "install",
            "a.yaml:3",
            Status::Failed,
            Some(&err("disk full")),
        );
        assert!(other.contains("disk full"), "{other}");
    }
}
