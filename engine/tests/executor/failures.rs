//! Failures: isolation between hosts, fail-fast, max_fail_percentage, retries and until,
//! tags and limits.

use kprov_engine::events::Mode;

use crate::harness::{Hosts, Opts};

const PARTIAL: &str = r#"
- name: partial failure
  hosts: all
  tasks:
    - name: refuse on h2
      shell: "test {{ inventory_hostname }} != h2 || { echo 'no way' >&2; exit 3; }"
    - name: after the failure point
      copy: { path: "{{ root }}/after", content: "done\n" }
"#;

#[tokio::test]
async fn a_failure_stops_only_its_host() {
    let hosts = Hosts::new(&["h1", "h2", "h3"]);
    let ran = hosts.run(Mode::Apply, PARTIAL).await;
    assert_eq!(ran.summary.failed, 1, "{}", ran.dump());
    for h in ["h1", "h3"] {
        assert_eq!(hosts.read(h, "after").as_deref(), Some("done\n"), "{h}");
        assert_eq!(ran.host_done(h)["counts"].get("failed"), None);
    }
    assert!(
        !hosts.path("h2", "after").exists(),
        "h2 ran past its failure"
    );
    assert_eq!(ran.host_done("h2")["counts"]["failed"], 1);
}

#[tokio::test]
async fn a_failure_says_what_failed_with_exit_code_and_stderr() {
    let hosts = Hosts::new(&["h1", "h2"]);
    let ran = hosts.run(Mode::Apply, PARTIAL).await;
    let failed = ran
        .events
        .iter()
        .find(|e| e["status"] == "failed")
        .unwrap_or_else(|| panic!("{}", ran.dump()));
    assert_eq!(failed["host"], "h2");
    assert_eq!(failed["task"], "refuse on h2");
    let error = &failed["error"];
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("exit 3") && message.contains("no way"),
        "{error}"
    );
    assert!(
        error["command"].as_str().unwrap().starts_with("shell"),
        "{error}"
    );
    assert!(
        failed["origin"].as_str().unwrap().contains("playbook.yaml"),
        "{failed}"
    );
}

const FAIL_FAST: &str = r#"
- name: fail fast
  hosts: all
  tasks:
    - name: refuse on h2, wait elsewhere
      shell: "test {{ inventory_hostname }} != h2 && sleep 2"
      register: waited
    - name: only without fail-fast
      copy: { path: "{{ root }}/ran", content: "ran\n" }
      when: waited.rc == 0
"#;

#[tokio::test]
async fn fail_fast_stops_every_host() {
    let hosts = Hosts::new(&["h1", "h2", "h3"]);
    let opts = Opts {
        fail_fast: true,
        ..Default::default()
    };
    let ran = hosts.run_with(Mode::Apply, FAIL_FAST, opts).await;
    for h in ["h1", "h3"] {
        assert!(
            !hosts.path(h, "ran").exists(),
            "{h} went on after h2 failed"
        );
        assert_eq!(
            ran.status(h, "only without fail-fast").as_deref(),
            Some("skipped"),
            "{}",
            ran.dump()
        );
    }
}

#[tokio::test]
async fn without_fail_fast_the_others_finish() {
    let hosts = Hosts::new(&["h1", "h2", "h3"]);
    let ran = hosts.run(Mode::Apply, FAIL_FAST).await;
    assert_eq!(ran.summary.failed, 1, "{}", ran.dump());
    for h in ["h1", "h3"] {
        assert_eq!(hosts.read(h, "ran").as_deref(), Some("ran\n"));
    }
}

#[tokio::test]
async fn max_fail_percentage_stops_the_run_past_its_share() {
    let hosts = Hosts::new(&["h1", "h2", "h3", "h4"]);
    let ran = hosts
        .run(
            Mode::Apply,
            r#"
- name: share
  hosts: all
  max_fail_percentage: 20
  tasks:
    - name: refuse on h2, wait elsewhere
      shell: "test {{ inventory_hostname }} != h2 && sleep 2"
      register: waited
    - name: later
      copy: { path: "{{ root }}/ran", content: "ran\n" }
      when: waited.rc == 0
"#,
        )
        .await;
    // One host of four is 25 %: over 20 %, so the others stop at their next batch.
    for h in ["h1", "h3", "h4"] {
        assert!(!hosts.path(h, "ran").exists(), "{h}: {}", ran.dump());
    }
}

#[tokio::test]
async fn max_fail_percentage_lets_a_smaller_share_go_on() {
    let hosts = Hosts::new(&["h1", "h2", "h3", "h4"]);
    let ran = hosts
        .run(
            Mode::Apply,
            r#"
- name: share
  hosts: all
  max_fail_percentage: 30
  tasks:
    - name: refuse on h2, wait elsewhere
      shell: "test {{ inventory_hostname }} != h2 && sleep 2"
      register: waited
    - name: later
      copy: { path: "{{ root }}/ran", content: "ran\n" }
      when: waited.rc == 0
"#,
        )
        .await;
    for h in ["h1", "h3", "h4"] {
        assert_eq!(
            hosts.read(h, "ran").as_deref(),
            Some("ran\n"),
            "{h}: {}",
            ran.dump()
        );
    }
}

#[tokio::test]
async fn retries_until_the_command_succeeds() {
    let hosts = Hosts::new(&["h1"]);
    let ran = hosts
        .run(
            Mode::Apply,
            r#"
- name: retries
  hosts: all
  tasks:
    - name: succeeds on the third try
      shell: "n=$(cat {{ root }}/tries 2>/dev/null || echo 0); n=$((n+1)); echo $n > {{ root }}/tries; test $n -ge 3"
      retries: 4
      delay: 0.05
    - name: counts until five
      shell: "n=$(cat {{ root }}/count 2>/dev/null || echo 0); n=$((n+1)); echo $n > {{ root }}/count; echo $n"
      register: counter
      until: counter.stdout | trim | int >= 5
      retries: 6
      delay: 0.05
"#,
        )
        .await;
    assert_eq!(ran.summary.failed, 0, "{}", ran.dump());
    assert_eq!(hosts.read("h1", "tries").as_deref(), Some("3\n"));
    assert_eq!(hosts.read("h1", "count").as_deref(), Some("5\n"));
    // One event per task, not one per attempt.
    assert_eq!(ran.tasks("h1").len(), 2, "{}", ran.dump());
}

#[tokio::test]
async fn out_of_retries_is_one_failure() {
    let hosts = Hosts::new(&["h1"]);
    let ran = hosts
        .run(
            Mode::Apply,
            r#"
- name: exhausted
  hosts: all
  tasks:
    - name: never succeeds
      shell: "echo x >> {{ root }}/fails; exit 1"
      retries: 2
      delay: 0.05
"#,
        )
        .await;
    assert_eq!(hosts.read("h1", "fails").unwrap().lines().count(), 3);
    let tasks = ran.tasks("h1");
    assert_eq!(tasks.len(), 1, "{}", ran.dump());
    assert_eq!(tasks[0]["status"], "failed");
}

#[tokio::test]
async fn a_task_past_its_timeout_fails_and_is_ended() {
    let hosts = Hosts::new(&["h1"]);
    let started = std::time::Instant::now();
    let ran = hosts
        .run(
            Mode::Apply,
            r#"
- name: timeout
  hosts: all
  tasks:
    - name: too slow
      shell: "sleep 20; touch {{ root }}/late"
      timeout: 1
"#,
        )
        .await;
    assert!(started.elapsed().as_secs() < 15, "{:?}", started.elapsed());
    assert_eq!(
        ran.status("h1", "too slow").as_deref(),
        Some("failed"),
        "{}",
        ran.dump()
    );
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(!hosts.path("h1", "late").exists());
}

const TAGGED: &str = r#"
- name: tags
  hosts: all
  tasks:
    - { name: kernel one, copy: { path: "{{ root }}/k", content: "k\n" }, tags: [kernel] }
    - { name: runtime one, copy: { path: "{{ root }}/r", content: "r\n" }, tags: [runtime] }
    - { name: untagged, copy: { path: "{{ root }}/u", content: "u\n" } }
"#;

#[tokio::test]
async fn tags_select_tasks() {
    let hosts = Hosts::new(&["h1"]);
    let opts = Opts {
        tags: vec!["kernel".into()],
        ..Default::default()
    };
    let ran = hosts.run_with(Mode::Apply, TAGGED, opts).await;
    assert!(hosts.path("h1", "k").exists(), "{}", ran.dump());
    assert!(!hosts.path("h1", "r").exists());
    assert!(!hosts.path("h1", "u").exists());
}

#[tokio::test]
async fn skip_tags_leave_tasks_out() {
    let hosts = Hosts::new(&["h1"]);
    let opts = Opts {
        skip_tags: vec!["kernel".into()],
        ..Default::default()
    };
    let ran = hosts.run_with(Mode::Apply, TAGGED, opts).await;
    assert!(!hosts.path("h1", "k").exists(), "{}", ran.dump());
    assert!(hosts.path("h1", "r").exists());
    assert!(hosts.path("h1", "u").exists());
}

#[tokio::test]
async fn a_limit_restricts_the_hosts() {
    let hosts = Hosts::new(&["h1", "h2", "h3"]);
    let opts = Opts {
        limit: Some("h2".into()),
        ..Default::default()
    };
    let ran = hosts.run_with(Mode::Apply, TAGGED, opts).await;
    assert!(hosts.path("h2", "u").exists(), "{}", ran.dump());
    assert!(!hosts.path("h1", "u").exists() && !hosts.path("h3", "u").exists());
    assert_eq!(ran.events[0]["hosts"], serde_json::json!(["h2"]));
}

#[tokio::test]
async fn a_limit_by_group() {
    let hosts = Hosts::new(&["h1", "h2", "h3"]);
    let opts = Opts {
        limit: Some("nodes".into()),
        ..Default::default()
    };
    let ran = hosts.run_with(Mode::Apply, TAGGED, opts).await;
    assert!(!hosts.path("h1", "u").exists(), "{}", ran.dump());
    assert!(hosts.path("h2", "u").exists() && hosts.path("h3", "u").exists());
}

#[tokio::test]
async fn an_unknown_play_host_is_refused_by_name() {
    let hosts = Hosts::new(&["h1"]);
    let err = hosts
        .try_run(
            Mode::Apply,
            "- name: x\n  hosts: nosuch\n  tasks:\n    - { name: t, copy: { path: \"{{ root }}/t\", content: \"\" } }\n",
            Opts::default(),
        )
        .await
        .err()
        .expect("refused");
    assert!(err.contains("nosuch"), "{err}");
    assert!(!hosts.path("h1", "t").exists());
}

const GATHER_FAILS: &str = r#"
- name: a batch whose second task cannot be gathered
  hosts: all
  tasks:
    - name: already there
      copy: { path: "{{ root }}/there", content: "same\n" }
    - name: would change
      copy: { path: "{{ root }}/planned", content: "new\n" }
    - name: a line in a directory
      line: { path: "{{ root }}/adir", line: "x" }
"#;

/// A task that cannot be gathered or planned stops its batch before the apply: the tasks
/// before it that needed a change were not applied, and say so; the ones already as
/// desired are ok. Plan shows what the tasks before the failure would do.
#[tokio::test]
async fn tasks_before_a_failure_in_their_batch_are_reported_as_not_applied() {
    let hosts = Hosts::new(&["h1"]);
    hosts.write("h1", "there", "same\n");
    std::fs::create_dir(hosts.path("h1", "adir")).unwrap();
    let ran = hosts.run(Mode::Apply, GATHER_FAILS).await;
    assert_eq!(
        ran.batches("h1"),
        [["already there", "would change", "a line in a directory"]],
        "one batch: {}",
        ran.dump()
    );
    assert_eq!(ran.status("h1", "already there").as_deref(), Some("ok"));
    assert_eq!(ran.status("h1", "would change").as_deref(), Some("skipped"));
    assert_eq!(
        ran.status("h1", "a line in a directory").as_deref(),
        Some("failed")
    );
    let skipped = ran.tasks("h1")[1];
    let why = skipped["summary"].as_str().unwrap_or_default();
    assert!(
        why.contains("not applied") && why.contains("a line in a directory"),
        "{skipped}"
    );
    assert!(!hosts.path("h1", "planned").exists(), "{}", ran.dump());
    assert_eq!(
        ran.host_done("h1")["counts"]
            .get("ok")
            .and_then(|n| n.as_u64()),
        Some(1)
    );

    let planned = hosts.run(Mode::Plan, GATHER_FAILS).await;
    assert_eq!(planned.status("h1", "already there").as_deref(), Some("ok"));
    assert_eq!(
        planned.status("h1", "would change").as_deref(),
        Some("changed")
    );
    assert_eq!(
        planned.status("h1", "a line in a directory").as_deref(),
        Some("failed")
    );
}

/// A task that changed the host and then failed says so (`error.changed`): the directory
/// was made before its owner could not be set. One that failed before changing anything
/// does not.
#[tokio::test]
async fn a_failure_after_a_change_says_the_host_was_changed() {
    let hosts = Hosts::new(&["h1", "h2"]);
    hosts.write("h2", "made", "");
    let ran = hosts
        .run(
            Mode::Apply,
            r#"
- name: owners that do not exist
  hosts: all
  tasks:
    - name: made, then chown fails
      directory: { path: "{{ root }}/made", owner: nosuchuser-kprov }
"#,
        )
        .await;
    let failed = |host: &str| {
        ran.tasks(host)
            .into_iter()
            .find(|t| t["status"] == "failed")
            .cloned()
            .unwrap_or_else(|| panic!("{host}: no failed task\n{}", ran.dump()))
    };
    let h1 = failed("h1");
    assert_eq!(h1["error"]["changed"], true, "{h1}");
    assert!(
        hosts.path("h1", "made").is_dir(),
        "the change is on the host"
    );
    // On h2 a file stands where the directory should be: nothing changed before the failure.
    let h2 = failed("h2");
    assert!(h2["error"].get("changed").is_none(), "{h2}");
    assert!(hosts.path("h2", "made").is_file());
}
