//! Handlers: once, only on change, in their order, at the end of the play.

use kprov_engine::events::Mode;

use crate::harness::Hosts;

const BOOK: &str = r#"
- name: handlers
  hosts: all
  tasks:
    - name: first notifying file
      copy: { path: "{{ root }}/one.conf", content: "one\n" }
      notify: count restarts
    - name: second notifying file
      copy: { path: "{{ root }}/two.conf", content: "two\n" }
      notify: count restarts
    - name: last task
      copy: { path: "{{ root }}/last", content: "last\n" }
  handlers:
    - name: count restarts
      shell: "echo restart >> {{ root }}/restarts"
    - name: never notified
      shell: "echo never >> {{ root }}/never"
"#;

fn restarts(hosts: &Hosts, host: &str) -> usize {
    hosts
        .read(host, "restarts")
        .unwrap_or_default()
        .lines()
        .count()
}

#[tokio::test]
async fn two_notifications_run_the_handler_once() {
    let hosts = Hosts::new(&["h1", "h2"]);
    let ran = hosts.run(Mode::Apply, BOOK).await;
    assert_eq!(ran.summary.failed, 0, "{}", ran.dump());
    for h in ["h1", "h2"] {
        assert_eq!(restarts(&hosts, h), 1, "{h}: {}", ran.dump());
        let runs = ran
            .tasks(h)
            .iter()
            .filter(|e| e["task"] == "count restarts")
            .count();
        assert_eq!(runs, 1);
    }
}

#[tokio::test]
async fn a_handler_that_nothing_notified_never_runs() {
    let hosts = Hosts::new(&["h1"]);
    let ran = hosts.run(Mode::Apply, BOOK).await;
    assert!(!hosts.path("h1", "never").exists(), "{}", ran.dump());
    assert!(ran.status("h1", "never notified").is_none());
}

#[tokio::test]
async fn without_a_change_the_handler_does_not_run() {
    let hosts = Hosts::new(&["h1", "h2"]);
    hosts.run(Mode::Apply, BOOK).await;
    let ran = hosts.run(Mode::Apply, BOOK).await;
    assert_eq!(ran.summary.changed, 0, "{}", ran.dump());
    assert_eq!(restarts(&hosts, "h1"), 1);
    assert_eq!(restarts(&hosts, "h2"), 1);
}

#[tokio::test]
async fn drift_on_one_host_runs_its_handler_only() {
    let hosts = Hosts::new(&["h1", "h2"]);
    hosts.run(Mode::Apply, BOOK).await;
    hosts.write("h2", "two.conf", "drift\n");
    let ran = hosts.run(Mode::Apply, BOOK).await;
    assert_eq!(ran.summary.failed, 0, "{}", ran.dump());
    assert_eq!(restarts(&hosts, "h1"), 1);
    assert_eq!(restarts(&hosts, "h2"), 2);
}

#[tokio::test]
async fn handlers_run_after_the_plays_tasks() {
    let hosts = Hosts::new(&["h1"]);
    let ran = hosts.run(Mode::Apply, BOOK).await;
    let names: Vec<String> = ran.statuses("h1").into_iter().map(|(t, _)| t).collect();
    assert_eq!(
        names,
        [
            "first notifying file",
            "second notifying file",
            "last task",
            "count restarts"
        ],
        "{}",
        ran.dump()
    );
}

#[tokio::test]
async fn notified_handlers_run_in_their_definition_order() {
    let hosts = Hosts::new(&["h1"]);
    let ran = hosts
        .run(
            Mode::Apply,
            r#"
- name: order
  hosts: all
  tasks:
    - name: notifies b first
      copy: { path: "{{ root }}/x", content: "x\n" }
      notify: [b, a]
  handlers:
    - name: a
      shell: "echo a >> {{ root }}/order"
    - name: b
      shell: "echo b >> {{ root }}/order"
"#,
        )
        .await;
    assert_eq!(ran.summary.failed, 0, "{}", ran.dump());
    assert_eq!(hosts.read("h1", "order").as_deref(), Some("a\nb\n"));
}

#[tokio::test]
async fn plan_runs_no_handler() {
    let hosts = Hosts::new(&["h1"]);
    let ran = hosts.run(Mode::Plan, BOOK).await;
    assert!(!hosts.path("h1", "restarts").exists(), "{}", ran.dump());
    assert!(!hosts.path("h1", "one.conf").exists());
}

#[tokio::test]
async fn notification_markers_live_in_the_hosts_state_directory() {
    let hosts = Hosts::new(&["h1"]);
    let ran = hosts.run(Mode::Apply, BOOK).await;
    assert_eq!(ran.summary.failed, 0, "{}", ran.dump());
    let markers = hosts.dir.path().join("h1.state/handlers");
    assert!(
        markers.is_dir(),
        "markers are written under kprov_state_dir"
    );
    // The handler ran, so its marker is gone again.
    let left: Vec<_> = std::fs::read_dir(&markers).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test]
async fn a_marker_left_by_an_interrupted_run_runs_the_handler_next_time() {
    let hosts = Hosts::new(&["h1"]);
    hosts.run(Mode::Apply, BOOK).await;
    assert_eq!(restarts(&hosts, "h1"), 1);
    // As if a run had died between the change and the handler: the marker is there.
    let id = {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(b"count restarts");
        digest[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    let markers = hosts.dir.path().join("h1.state/handlers");
    std::fs::write(markers.join(id), "count restarts\n").unwrap();
    let ran = hosts.run(Mode::Apply, BOOK).await;
    assert_eq!(restarts(&hosts, "h1"), 2, "{}", ran.dump());
    assert_eq!(std::fs::read_dir(&markers).unwrap().count(), 0);
}
