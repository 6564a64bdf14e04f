//! The task graph across hosts, and batching into round trips.

use kprov_engine::events::Mode;

use crate::harness::Hosts;

const CROSS: &str = r#"
- name: producer
  hosts: masters
  tasks:
    - name: make a token
      shell: "sleep 0.3; printf 'tok-%s' {{ inventory_hostname }}"
      register: join
- name: consumer
  hosts: nodes
  tasks:
    - name: use the token
      copy: { path: "{{ root }}/token", content: "{{ hostvars.h1.join.stdout }}\n" }
"#;

#[tokio::test]
async fn a_value_registered_on_one_host_is_awaited_by_the_others() {
    let hosts = Hosts::new(&["h1", "h2", "h3"]);
    let ran = hosts.run(Mode::Apply, CROSS).await;
    assert_eq!(ran.summary.failed, 0, "{}", ran.dump());
    for h in ["h2", "h3"] {
        assert_eq!(hosts.read(h, "token").as_deref(), Some("tok-h1\n"));
    }
    assert!(!hosts.path("h1", "token").exists());
    // The consumers' tasks are reported after the producer's.
    let index = |host: &str, task: &str| {
        ran.events
            .iter()
            .position(|e| e["event"] == "task" && e["host"] == host && e["task"] == task)
            .unwrap_or_else(|| panic!("{host} {task}: {}", ran.dump()))
    };
    let produced = index("h1", "make a token");
    assert!(index("h2", "use the token") > produced);
    assert!(index("h3", "use the token") > produced);
}

#[tokio::test]
async fn plan_shows_a_cross_host_consumer_as_unknown() {
    let hosts = Hosts::new(&["h1", "h2"]);
    let ran = hosts.run(Mode::Plan, CROSS).await;
    assert_eq!(
        ran.status("h2", "use the token").as_deref(),
        Some("unknown"),
        "{}",
        ran.dump()
    );
    assert!(!hosts.path("h2", "token").exists());
}

#[tokio::test]
async fn a_consumer_whose_producer_failed_does_not_run() {
    let hosts = Hosts::new(&["h1", "h2"]);
    let ran = hosts
        .run(Mode::Apply, &CROSS.replace("sleep 0.3;", "exit 4;"))
        .await;
    assert_eq!(ran.status("h1", "make a token").as_deref(), Some("failed"));
    assert_ne!(
        ran.status("h2", "use the token").as_deref(),
        Some("changed"),
        "{}",
        ran.dump()
    );
    assert!(!hosts.path("h2", "token").exists());
}

#[tokio::test]
async fn cycles_are_refused_before_anything_runs() {
    let hosts = Hosts::new(&["h1", "h2"]);
    let err = hosts
        .try_run(
            Mode::Apply,
            r#"
- name: one
  hosts: masters
  tasks:
    - name: first
      shell: "touch {{ root }}/ran; echo {{ hostvars.h2.b.stdout }}"
      register: a
- name: two
  hosts: nodes
  tasks:
    - name: second
      shell: "touch {{ root }}/ran; echo {{ hostvars.h1.a.stdout }}"
      register: b
"#,
            Default::default(),
        )
        .await
        .err()
        .expect("a cycle is refused");
    assert!(err.contains("cycle"), "{err}");
    assert!(err.contains("first") && err.contains("second"), "{err}");
    assert!(!hosts.path("h1", "ran").exists() && !hosts.path("h2", "ran").exists());
}

const MANY: &str = r#"
- name: many
  hosts: all
  tasks:
    - { name: one, copy: { path: "{{ root }}/1", content: "1\n" } }
    - { name: two, copy: { path: "{{ root }}/2", content: "2\n" } }
    - { name: three, directory: { path: "{{ root }}/d" } }
    - { name: four, line: { path: "{{ root }}/l", line: "x=1", create: true } }
    - { name: five, copy: { path: "{{ root }}/d/5", content: "5\n" } }
"#;

#[tokio::test]
async fn independent_tasks_share_one_batch_and_few_round_trips() {
    let hosts = Hosts::new(&["h1", "h2"]);
    let ran = hosts.run(Mode::Apply, MANY).await;
    assert_eq!(ran.summary.changed, 10, "{}", ran.dump());
    for h in ["h1", "h2"] {
        assert_eq!(ran.batches(h), [["one", "two", "three", "four", "five"]]);
        // lock + facts + one check + one apply.
        assert_eq!(ran.round_trips(h), 4, "{}", ran.dump());
        assert_eq!(hosts.read(h, "d/5").as_deref(), Some("5\n"));
    }
}

#[tokio::test]
async fn an_unchanged_batch_needs_no_apply_round_trip() {
    let hosts = Hosts::new(&["h1"]);
    hosts.run(Mode::Apply, MANY).await;
    let ran = hosts.run(Mode::Apply, MANY).await;
    assert_eq!(ran.summary.changed, 0, "{}", ran.dump());
    // lock + facts + one check, nothing to apply.
    assert_eq!(ran.round_trips("h1"), 3, "{}", ran.dump());
    let plan = hosts.run(Mode::Plan, MANY).await;
    // Plan: facts + one check (no lock).
    assert_eq!(plan.round_trips("h1"), 2, "{}", plan.dump());
}

#[tokio::test]
async fn a_task_needing_a_registered_value_starts_a_new_batch() {
    let hosts = Hosts::new(&["h1"]);
    let ran = hosts
        .run(
            Mode::Apply,
            r#"
- name: split
  hosts: all
  tasks:
    - { name: a, copy: { path: "{{ root }}/a", content: "a\n" } }
    - { name: probe, shell: "printf p", register: p }
    - { name: b, copy: { path: "{{ root }}/b", content: "{{ p.stdout }}\n" } }
"#,
        )
        .await;
    assert_eq!(ran.summary.failed, 0, "{}", ran.dump());
    let batches = ran.batches("h1");
    assert_eq!(batches.len(), 2, "{batches:?}");
    assert_eq!(batches[1], ["b"], "{batches:?}");
    assert_eq!(hosts.read("h1", "b").as_deref(), Some("p\n"));
}

#[tokio::test]
async fn batch_events_frame_their_tasks() {
    let hosts = Hosts::new(&["h1"]);
    let ran = hosts.run(Mode::Apply, MANY).await;
    let kinds: Vec<String> = ran
        .events
        .iter()
        .filter(|e| e["host"] == "h1" && e["event"] != "task_started")
        .map(|e| {
            let kind = e["event"].as_str().unwrap().to_string();
            match kind.as_str() {
                "task" => format!("task:{}", e["task"].as_str().unwrap()),
                _ => kind,
            }
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "batch_started",
            "task:one",
            "task:two",
            "task:three",
            "task:four",
            "task:five",
            "batch_done",
            "host_done"
        ],
        "{}",
        ran.dump()
    );
    let first = &ran.events[0];
    assert_eq!(first["event"], "run_started");
    assert_eq!(ran.events.last().unwrap()["event"], "run_done");
}

#[tokio::test]
async fn the_host_reports_each_task_as_it_starts() {
    let hosts = Hosts::new(&["h1"]);
    let ran = hosts.run(Mode::Apply, MANY).await;
    let started: Vec<(&str, &str)> = ran
        .events
        .iter()
        .filter(|e| e["event"] == "task_started")
        .map(|e| (e["task"].as_str().unwrap(), e["phase"].as_str().unwrap()))
        .collect();
    assert!(started.contains(&("one", "apply")), "{started:?}");
    assert!(started.contains(&("five", "apply")), "{started:?}");
}

#[tokio::test]
async fn edits_of_one_file_in_one_batch_build_on_each_other() {
    let hosts = Hosts::new(&["h1"]);
    hosts.write("h1", "conf", "base=1\n");
    let book = r#"
- name: chained
  hosts: all
  tasks:
    - { name: first line, line: { path: "{{ root }}/conf", regexp: "^x=", line: "x=1" } }
    - { name: second line, line: { path: "{{ root }}/conf", regexp: "^y=", line: "y=2" } }
    - { name: a block, block: { path: "{{ root }}/conf", name: b, block: "z=3\n" } }
"#;
    let ran = hosts.run(Mode::Apply, book).await;
    assert_eq!(ran.summary.failed, 0, "{}", ran.dump());
    let text = hosts.read("h1", "conf").unwrap();
    assert!(text.starts_with("base=1\nx=1\ny=2\n"), "{text}");
    assert!(text.contains("z=3\n"), "{text}");
    for t in ["first line", "second line", "a block"] {
        assert_eq!(
            ran.status("h1", t).as_deref(),
            Some("changed"),
            "{t}: {}",
            ran.dump()
        );
    }
    // One batch, one check, one apply.
    assert_eq!(ran.batches("h1").len(), 1);
    assert_eq!(ran.round_trips("h1"), 4, "{}", ran.dump());
    let again = hosts.run(Mode::Apply, book).await;
    assert_eq!(again.summary.changed, 0, "{}", again.dump());
}

#[tokio::test]
async fn a_file_a_command_of_the_batch_edits_is_gathered_again() {
    let hosts = Hosts::new(&["h1"]);
    hosts.write("h1", "conf", "base=1\n");
    let ran = hosts
        .run(
            Mode::Apply,
            r#"
- name: stale
  hosts: all
  tasks:
    - { name: append behind kprov's back, shell: "echo s=0 >> {{ root }}/conf" }
    - { name: the line, line: { path: "{{ root }}/conf", regexp: "^x=", line: "x=1" } }
"#,
        )
        .await;
    assert_eq!(ran.summary.failed, 0, "{}", ran.dump());
    // The line's edit was computed from the file before the shell appended: it is stale,
    // gathered again and redone, so the shell's line survives.
    assert_eq!(
        hosts.read("h1", "conf").as_deref(),
        Some("base=1\ns=0\nx=1\n")
    );
    assert_eq!(
        ran.status("h1", "the line").as_deref(),
        Some("changed"),
        "{}",
        ran.dump()
    );
    assert!(ran.round_trips("h1") > 4, "{}", ran.dump());
    assert_eq!(
        ran.tasks("h1").len(),
        2,
        "one event per task: {}",
        ran.dump()
    );
}

#[tokio::test]
async fn one_fork_still_works_on_every_host() {
    let hosts = Hosts::new(&["h1", "h2", "h3"]);
    let opts = crate::harness::Opts {
        forks: Some(1),
        ..Default::default()
    };
    let ran = hosts.run_with(Mode::Apply, MANY, opts).await;
    assert_eq!(ran.summary.changed, 15, "{}", ran.dump());
}
