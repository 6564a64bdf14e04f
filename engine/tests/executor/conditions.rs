//! `when`, `register`, loops.

use kprov_engine::events::Mode;

use crate::harness::Hosts;

#[tokio::test]
async fn when_false_skips_and_when_true_runs() {
    let hosts = Hosts::with_inventory(&["h1", "h2"], |h| format!("big: {}", h == "h2"));
    let ran = hosts
        .run(
            Mode::Apply,
            r#"
- name: when
  hosts: all
  tasks:
    - name: only big
      copy: { path: "{{ root }}/big", content: "yes\n" }
      when: big
    - name: only small
      copy: { path: "{{ root }}/small", content: "yes\n" }
      when: not big
"#,
        )
        .await;
    assert_eq!(ran.summary.failed, 0, "{}", ran.dump());
    assert_eq!(ran.status("h1", "only big").as_deref(), Some("skipped"));
    assert_eq!(ran.status("h2", "only big").as_deref(), Some("changed"));
    assert!(hosts.path("h2", "big").exists() && !hosts.path("h1", "big").exists());
    assert!(hosts.path("h1", "small").exists() && !hosts.path("h2", "small").exists());
}

#[tokio::test]
async fn registered_output_feeds_a_later_task() {
    let hosts = Hosts::new(&["h1", "h2"]);
    let ran = hosts
        .run(
            Mode::Apply,
            r#"
- name: register
  hosts: all
  tasks:
    - name: produce
      shell: "printf 'value-%s' {{ inventory_hostname }}"
      register: out
    - name: consume
      copy: { path: "{{ root }}/got", content: "{{ out.stdout }} rc={{ out.rc }}\n" }
"#,
        )
        .await;
    assert_eq!(ran.summary.failed, 0, "{}", ran.dump());
    assert_eq!(hosts.read("h1", "got").as_deref(), Some("value-h1 rc=0\n"));
    assert_eq!(hosts.read("h2", "got").as_deref(), Some("value-h2 rc=0\n"));
}

#[tokio::test]
async fn a_registered_result_decides_a_when() {
    let hosts = Hosts::new(&["h1", "h2"]);
    hosts.write("h2", "flag", "on");
    let ran = hosts
        .run(
            Mode::Apply,
            r#"
- name: register when
  hosts: all
  tasks:
    - name: probe
      shell: "cat {{ root }}/flag 2>/dev/null || echo off"
      register: flag
    - name: flagged
      copy: { path: "{{ root }}/flagged", content: "yes\n" }
      when: flag.stdout == "on"
"#,
        )
        .await;
    assert_eq!(ran.summary.failed, 0, "{}", ran.dump());
    assert_eq!(ran.status("h1", "flagged").as_deref(), Some("skipped"));
    assert_eq!(ran.status("h2", "flagged").as_deref(), Some("changed"));
    assert!(!hosts.path("h1", "flagged").exists());
}

#[tokio::test]
async fn loops_run_once_per_item() {
    let hosts = Hosts::new(&["h1"]);
    let ran = hosts
        .run(
            Mode::Apply,
            r#"
- name: loop
  hosts: all
  tasks:
    - name: files
      copy: { path: "{{ root }}/loop-{{ item }}", content: "{{ item }}\n" }
      loop: [a, b, c]
    - name: legacy
      copy: { path: "{{ root }}/items-{{ item }}", content: "{{ item }}\n" }
      with_items: [x, y]
"#,
        )
        .await;
    assert_eq!(ran.summary.failed, 0, "{}", ran.dump());
    for i in ["a", "b", "c"] {
        assert_eq!(
            hosts.read("h1", &format!("loop-{i}")),
            Some(format!("{i}\n"))
        );
    }
    for i in ["x", "y"] {
        assert_eq!(
            hosts.read("h1", &format!("items-{i}")),
            Some(format!("{i}\n"))
        );
    }
    assert_eq!(ran.summary.changed, 5, "{}", ran.dump());
}

#[tokio::test]
async fn plan_shows_tasks_that_need_an_unapplied_result_as_unknown() {
    let hosts = Hosts::new(&["h1"]);
    let ran = hosts
        .run(
            Mode::Plan,
            r#"
- name: unknown
  hosts: all
  tasks:
    - name: produce
      shell: "echo made"
      register: out
    - name: consume
      copy: { path: "{{ root }}/got", content: "{{ out.stdout }}\n" }
"#,
        )
        .await;
    assert_eq!(
        ran.status("h1", "consume").as_deref(),
        Some("unknown"),
        "{}",
        ran.dump()
    );
    assert!(!hosts.path("h1", "got").exists());
    assert_eq!(ran.summary.unknown, 1);
}

#[tokio::test]
async fn inventory_variables_differ_per_host() {
    let hosts = Hosts::with_inventory(&["h1", "h2", "h3"], |h| {
        format!("weight: {}", h.len() + h.as_bytes()[1] as usize)
    });
    let ran = hosts
        .run(
            Mode::Apply,
            r#"
- name: per host
  hosts: all
  tasks:
    - name: weight
      copy: { path: "{{ root }}/w", content: "{{ weight }}\n" }
"#,
        )
        .await;
    assert_eq!(ran.summary.changed, 3, "{}", ran.dump());
    assert_eq!(
        hosts.read("h1", "w").as_deref(),
        Some(&*format!("{}\n", 2 + b'1' as usize))
    );
    assert_eq!(
        hosts.read("h3", "w").as_deref(),
        Some(&*format!("{}\n", 2 + b'3' as usize))
    );
}
