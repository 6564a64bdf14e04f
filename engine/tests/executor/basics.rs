//! Files written, plan against apply, idempotence, variables.

use kprov_engine::events::Mode;

use crate::harness::Hosts;

const WRITE: &str = r#"
- name: basics
  hosts: all
  tasks:
    - name: a file
      copy: { path: "{{ root }}/etc/app.conf", content: "name={{ inventory_hostname }}\n" }
"#;

#[tokio::test]
async fn apply_writes_each_hosts_file() {
    let hosts = Hosts::new(&["h1", "h2", "h3"]);
    let ran = hosts.run(Mode::Apply, WRITE).await;
    assert_eq!(ran.summary.failed, 0, "{}", ran.dump());
    assert_eq!(ran.summary.changed, 3, "{}", ran.dump());
    for h in ["h1", "h2", "h3"] {
        assert_eq!(
            hosts.read(h, "etc/app.conf").as_deref(),
            Some(&*format!("name={h}\n"))
        );
        assert_eq!(ran.status(h, "a file").as_deref(), Some("changed"));
    }
}

#[tokio::test]
async fn plan_changes_nothing_and_says_what_would_change() {
    let hosts = Hosts::new(&["h1", "h2"]);
    let ran = hosts.run(Mode::Plan, WRITE).await;
    assert_eq!(ran.summary.changed, 2, "{}", ran.dump());
    for h in ["h1", "h2"] {
        assert_eq!(ran.status(h, "a file").as_deref(), Some("changed"));
        assert!(!hosts.path(h, "etc").exists(), "{h}: plan wrote something");
    }
    // Plan takes no lock: nothing in the state directories either.
    assert!(!hosts.dir.path().join("h1.state/apply.lock").exists());
}

#[tokio::test]
async fn a_second_apply_changes_nothing() {
    let hosts = Hosts::new(&["h1", "h2"]);
    let first = hosts.run(Mode::Apply, WRITE).await;
    assert_eq!(first.summary.changed, 2);
    let second = hosts.run(Mode::Apply, WRITE).await;
    assert_eq!(second.summary.changed, 0, "{}", second.dump());
    assert_eq!(second.summary.unchanged, 2);
    assert_eq!(second.status("h2", "a file").as_deref(), Some("ok"));
}

#[tokio::test]
async fn drift_is_put_back_on_that_host_only() {
    let hosts = Hosts::new(&["h1", "h2"]);
    hosts.run(Mode::Apply, WRITE).await;
    hosts.write("h2", "etc/app.conf", "drifted\n");
    let ran = hosts.run(Mode::Apply, WRITE).await;
    assert_eq!(ran.status("h1", "a file").as_deref(), Some("ok"));
    assert_eq!(ran.status("h2", "a file").as_deref(), Some("changed"));
    assert_eq!(
        hosts.read("h2", "etc/app.conf").as_deref(),
        Some("name=h2\n")
    );
    let diff = ran.tasks("h2")[0]["diff"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        diff.contains("-drifted") && diff.contains("+name=h2"),
        "{diff}"
    );
}

#[tokio::test]
async fn directories_and_absent_files() {
    let hosts = Hosts::new(&["h1"]);
    hosts.write("h1", "old/file", "x");
    let ran = hosts
        .run(
            Mode::Apply,
            r#"
- name: dirs
  hosts: all
  tasks:
    - name: a tree
      directory: { path: "{{ root }}/a/b/c", mode: "0750" }
    - name: no old file
      file: { path: "{{ root }}/old/file", state: absent }
"#,
        )
        .await;
    assert_eq!(ran.summary.failed, 0, "{}", ran.dump());
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(hosts.path("h1", "a/b/c")).unwrap();
    assert!(meta.is_dir());
    assert_eq!(meta.permissions().mode() & 0o777, 0o750);
    assert!(!hosts.path("h1", "old/file").exists());
    assert!(hosts.path("h1", "old").exists(), "only the file goes");
}

#[tokio::test]
async fn file_modes_are_set() {
    let hosts = Hosts::new(&["h1"]);
    let ran = hosts
        .run(
            Mode::Apply,
            r#"
- name: mode
  hosts: all
  tasks:
    - name: secret
      copy: { path: "{{ root }}/secret", content: "s\n", mode: "0600" }
"#,
        )
        .await;
    assert_eq!(ran.summary.changed, 1, "{}", ran.dump());
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(hosts.path("h1", "secret"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[tokio::test]
async fn line_replaces_the_matching_line_and_appends_otherwise() {
    let hosts = Hosts::new(&["h1"]);
    hosts.write("h1", "conf", "a=1\nmode=old\nz=9\n");
    let book = r#"
- name: lines
  hosts: all
  tasks:
    - name: mode
      line: { path: "{{ root }}/conf", regexp: "^mode=", line: "mode=new" }
    - name: extra
      line: { path: "{{ root }}/conf", regexp: "^extra=", line: "extra=yes" }
"#;
    let ran = hosts.run(Mode::Apply, book).await;
    assert_eq!(ran.summary.failed, 0, "{}", ran.dump());
    assert_eq!(
        hosts.read("h1", "conf").as_deref(),
        Some("a=1\nmode=new\nz=9\nextra=yes\n")
    );
    let again = hosts.run(Mode::Apply, book).await;
    assert_eq!(again.summary.changed, 0, "{}", again.dump());
}

#[tokio::test]
async fn block_is_managed_between_markers() {
    let hosts = Hosts::new(&["h1"]);
    hosts.write("h1", "hosts", "127.0.0.1 localhost\n");
    let ran = hosts
        .run(
            Mode::Apply,
            r#"
- name: block
  hosts: all
  tasks:
    - name: cluster block
      block: { path: "{{ root }}/hosts", name: cluster, block: "10.0.0.1 master\n10.0.0.2 node1\n" }
"#,
        )
        .await;
    assert_eq!(ran.summary.changed, 1, "{}", ran.dump());
    let text = hosts.read("h1", "hosts").unwrap();
    assert!(text.starts_with("127.0.0.1 localhost\n"), "{text}");
    assert!(text.contains("BEGIN KPROV MANAGED BLOCK cluster"), "{text}");
    assert!(text.contains("10.0.0.1 master\n10.0.0.2 node1\n"), "{text}");
    assert!(text.contains("END KPROV MANAGED BLOCK cluster"), "{text}");
}

#[tokio::test]
async fn variables_come_from_inventory_play_and_extra_vars() {
    let hosts = Hosts::with_inventory(&["h1", "h2"], |h| format!("zone: zone-{h}"));
    let mut opts = crate::harness::Opts::default();
    opts.extra.insert("release".into(), "v9".into());
    let ran = hosts
        .run_with(
            Mode::Apply,
            r#"
- name: vars
  hosts: all
  vars:
    colour: blue
  tasks:
    - name: vars file
      copy: { path: "{{ root }}/vars", content: "{{ zone }} {{ colour }} {{ release }} {{ groups.nodes | join(',') }}\n" }
"#,
            opts,
        )
        .await;
    assert_eq!(ran.summary.failed, 0, "{}", ran.dump());
    assert_eq!(
        hosts.read("h1", "vars").as_deref(),
        Some("zone-h1 blue v9 h2\n")
    );
    assert_eq!(
        hosts.read("h2", "vars").as_deref(),
        Some("zone-h2 blue v9 h2\n")
    );
}

#[tokio::test]
async fn hostile_values_land_verbatim() {
    let hosts = Hosts::new(&["h1"]);
    let hostile = "it's \"q\" $(touch pwned) `touch pwned` ${HOME}\nünï ✓\n";
    let mut opts = crate::harness::Opts::default();
    opts.extra.insert("hostile".into(), hostile.into());
    let hostile_line = "$(touch pwned) 'q' `id`";
    opts.extra
        .insert("hostile_line".into(), hostile_line.into());
    let ran = hosts
        .run_with(
            Mode::Apply,
            r#"
- name: hostile
  hosts: all
  tasks:
    - name: hostile content
      copy: { path: "{{ root }}/we ird'$(touch pwned)'name", content: "{{ hostile }}" }
    - name: hostile line
      line: { path: "{{ root }}/lines", line: "v={{ hostile_line }}", create: true }
"#,
            opts,
        )
        .await;
    assert_eq!(ran.summary.failed, 0, "{}", ran.dump());
    assert_eq!(
        hosts.read("h1", "we ird'$(touch pwned)'name").as_deref(),
        Some(hostile)
    );
    assert_eq!(
        hosts.read("h1", "lines"),
        Some(format!("v={hostile_line}\n"))
    );
    assert!(!hosts.path("h1", "pwned").exists());
    assert!(!std::path::Path::new("pwned").exists());
}

#[tokio::test]
async fn shell_creates_runs_once_and_command_takes_an_argv() {
    let hosts = Hosts::new(&["h1"]);
    let book = r#"
- name: commands
  hosts: all
  tasks:
    - name: once
      shell: { script: "echo run >> \"$ROOT/count\"; touch \"$ROOT/made\"", env: { ROOT: "{{ root }}" }, creates: "{{ root }}/made" }
    - name: argv
      command: { argv: ["sh", "-c", "printf '%s' \"$1\" > \"$2\"", "x", "a b; $(c)", "{{ root }}/argv"] }
"#;
    let ran = hosts.run(Mode::Apply, book).await;
    assert_eq!(ran.summary.failed, 0, "{}", ran.dump());
    assert_eq!(hosts.read("h1", "argv").as_deref(), Some("a b; $(c)"));
    let again = hosts.run(Mode::Apply, book).await;
    assert_eq!(
        again.status("h1", "once").as_deref(),
        Some("ok"),
        "{}",
        again.dump()
    );
    assert_eq!(hosts.read("h1", "count").as_deref(), Some("run\n"));
}
