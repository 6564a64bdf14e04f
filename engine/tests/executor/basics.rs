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
