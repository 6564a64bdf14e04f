//! Apply progress as text: on a terminal each host's live line shows the task running
//! there now (with its elapsed time, drawn by the progress bar); elsewhere one line per
//! host when a batch starts and when it finishes, never a redraw.

use kprov_engine::events::{Event, Phase};

/// How many task names a batch line lists before "…".
const LISTED: usize = 3;

/// What a host's live line says for `event` (a task just started there, so its elapsed
/// time restarts): (host, message). `None` for events that do not change a live line.
pub fn live(event: &Event) -> Option<(&str, String)> {
    match event {
        Event::TaskStarted {
            host, task, phase, ..
        } => Some((
            host,
            match phase {
                Phase::Apply => task.clone(),
                Phase::Check => format!("{task} (checking)"),
            },
        )),
        _ => None,
    }
}

/// The line printed for `event` when the output is not a terminal: one when a host starts
/// a batch and one when it finishes it.
pub fn line(event: &Event) -> Option<String> {
    match event {
        Event::BatchStarted { host, tasks, .. } => {
            let mut names = tasks
                .iter()
                .take(LISTED)
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(", ");
            if tasks.len() > LISTED {
                names.push_str(", …");
            }
            Some(format!("{host}: started {}: {names}", count(tasks.len())))
        }
        Event::BatchDone {
            host,
            tasks,
            ok,
            duration_ms,
            ..
        } => {
            let secs = *duration_ms as f64 / 1000.0;
            Some(if *ok {
                format!("{host}: finished {} in {secs:.1}s", count(*tasks))
            } else {
                format!("{host}: stopped after {secs:.1}s: a task failed")
            })
        }
        _ => None,
    }
}

fn count(n: usize) -> String {
    if n == 1 {
        "1 task".into()
    } else {
        format!("{n} tasks")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn started(host: &str, tasks: &[&str]) -> Event {
        Event::BatchStarted {
            run_id: "r".into(),
            host: host.into(),
            tasks: tasks.iter().map(|t| t.to_string()).collect(),
        }
    }

    fn task_started(host: &str, task: &str, phase: Phase) -> Event {
        Event::TaskStarted {
            run_id: "r".into(),
            host: host.into(),
            task: task.into(),
            origin: "roles/x.yaml:3".into(),
            phase,
        }
    }

    fn done(host: &str, tasks: usize, ok: bool, ms: u64) -> Event {
        Event::BatchDone {
            run_id: "r".into(),
            host: host.into(),
            tasks,
            ok,
            duration_ms: ms,
        }
    }

    #[test]
    fn non_terminal_output_is_one_line_per_batch_start_and_end() {
        let events = [
            started(
                "master",
                &["Hostname", "Install containerd", "Swap off", "Sysctl"],
            ),
            task_started("master", "Hostname", Phase::Check),
            task_started("master", "Install containerd", Phase::Apply),
            started("node1", &["Hostname"]),
            done("node1", 1, true, 300),
            done("master", 4, true, 18_340),
            started("node1", &["Join"]),
            done("node1", 1, false, 1_000),
        ];
        let lines: Vec<String> = events.iter().filter_map(line).collect();
        assert_eq!(
            lines,
            [
                "master: started 4 tasks: Hostname, Install containerd, Swap off, …",
                "node1: started 1 task: Hostname",
                "node1: finished 1 task in 0.3s",
                "master: finished 4 tasks in 18.3s",
                "node1: started 1 task: Join",
                "node1: stopped after 1.0s: a task failed",
            ]
        );
        assert!(lines.iter().all(|l| !l.contains('\r')));
    }

    #[test]
    fn the_live_line_follows_the_running_task() {
        let apply = task_started("master", "Install containerd", Phase::Apply);
        assert_eq!(
            live(&apply),
            Some(("master", "Install containerd".to_string()))
        );
        let check = task_started("node1", "Hostname", Phase::Check);
        assert_eq!(
            live(&check),
            Some(("node1", "Hostname (checking)".to_string()))
        );
        assert_eq!(live(&started("master", &["Hostname"])), None);
    }
}
