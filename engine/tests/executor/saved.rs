//! Saved plans on local hosts: what a plan records, that apply runs the recorded script
//! while the state is the planned one, and drift between a saved and a fresh plan.

use std::sync::Arc;

use kprov_engine::events::Mode;
use kprov_engine::run::saved::{drift, PlanBook};
use kprov_engine::run::Plans;

use crate::harness::{Hosts, Opts};

const BOOK: &str = r#"
- name: saved
  hosts: all
  tasks:
    - name: a file
      copy: { path: "{{ root }}/etc/app.conf", content: "name={{ inventory_hostname }}\n" }
    - name: a secret
      copy: { path: "{{ root }}/etc/secret", content: "s3cr3t-value\n", sensitive: true }
"#;

async fn record(hosts: &Hosts) -> Arc<PlanBook> {
    let book = Arc::new(PlanBook::default());
    let opts = Opts {
        plans: Plans::Record(book.clone()),
        ..Opts::default()
    };
    let ran = hosts.run_with(Mode::Plan, BOOK, opts).await;
    assert_eq!(ran.summary.failed, 0, "{}", ran.dump());
    book
}

#[tokio::test]
async fn a_plan_records_every_task_and_keeps_no_secret() {
    let hosts = Hosts::new(&["h1", "h2"]);
    let book = record(&hosts).await;
    let recorded = book.hosts();
    assert_eq!(recorded.len(), 2);
    for tasks in recorded.values() {
        assert_eq!(tasks.len(), 2, "{tasks:?}");
        assert!(tasks[0]
            .script
            .as_deref()
            .is_some_and(|s| s.contains("app.conf")));
        assert_eq!(
            tasks[0].summary.as_deref().map(|s| s.starts_with("create")),
            Some(true)
        );
        assert_eq!(
            tasks[1].script, None,
            "a sensitive task's script is not kept"
        );
    }
    let text = serde_json::to_string(&*book).unwrap();
    assert!(!text.contains("s3cr3t-value"), "{text}");
    // The same inputs give the same keys.
    let again = record(&hosts).await.hosts();
    let keys =
        |b: &std::collections::BTreeMap<String, Vec<kprov_engine::run::saved::PlannedTask>>| {
            b.values()
                .flatten()
                .map(|t| t.key.clone())
                .collect::<Vec<_>>()
        };
    assert_eq!(keys(&recorded), keys(&again));
}

#[tokio::test]
async fn apply_runs_the_saved_script_while_the_state_is_the_planned_one() {
    let hosts = Hosts::new(&["h1", "h2", "h3"]);
    let mut recorded = record(&hosts).await.hosts();
    // What apply runs comes from the book, not from planning again: a marked script
    // proves it.
    for tasks in recorded.values_mut() {
        let script = tasks[0].script.take().unwrap();
        tasks[0].script = Some(script.replace("name=", "from-the-book name="));
    }
    // h2 and h3 change after the plan (as if between the CLI's drift check and the
    // apply). h2 is still in the book: refused, untouched. h3 is not (what
    // `--allow-drift` does): planned afresh.
    hosts.write("h2", "etc/app.conf", "hand edit\n");
    hosts.write("h3", "etc/app.conf", "hand edit\n");
    recorded.remove("h3");
    let opts = Opts {
        plans: Plans::Follow(Arc::new(PlanBook::from_hosts(recorded))),
        ..Opts::default()
    };
    let ran = hosts.run_with(Mode::Apply, BOOK, opts).await;
    assert_eq!(ran.summary.failed, 1, "{}", ran.dump());
    assert_eq!(
        hosts.read("h1", "etc/app.conf").as_deref(),
        Some("from-the-book name=h1\n")
    );
    assert_eq!(
        hosts.read("h1", "etc/secret").as_deref(),
        Some("s3cr3t-value\n")
    );
    assert_eq!(ran.status("h2", "a file").as_deref(), Some("failed"));
    let refused = ran.tasks("h2");
    let message = refused[0]["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("changed between the plan's drift check and its apply")
            && message.contains("gathered"),
        "{}",
        ran.dump()
    );
    assert_eq!(
        hosts.read("h2", "etc/app.conf").as_deref(),
        Some("hand edit\n")
    );
    assert_eq!(hosts.read("h2", "etc/secret"), None, "nothing after it ran");
    assert_eq!(
        hosts.read("h3", "etc/app.conf").as_deref(),
        Some("name=h3\n")
    );
}

#[tokio::test]
async fn drift_names_only_the_host_that_changed() {
    let hosts = Hosts::new(&["h1", "h2", "h3"]);
    let saved = record(&hosts).await;
    assert!(drift(&saved, &*record(&hosts).await).is_empty());
    hosts.write("h3", "etc/app.conf", "hand edit\n");
    let found = drift(&saved, &*record(&hosts).await);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].host, "h3");
    assert_eq!(found[0].task, "a file");
    assert!(
        found[0].what.contains("the plan was to create"),
        "{}",
        found[0].what
    );
}
