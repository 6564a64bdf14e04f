//! `--persist` on a real lab: a master kept by one run is reused by the next, but never
//! once the host's key changed, and never across runs with different trust settings.

mod common;

use common::{kprov, sh, Lab};

#[test]
fn a_changed_host_key_is_refused_even_with_a_persisted_master() {
    let lab = Lab::up("kt-persist", 1);
    let dir = tempfile::tempdir().unwrap();
    let playbook = dir.path().join("probe.yaml");
    std::fs::write(
        &playbook,
        "- name: probe\n  hosts: all\n  tasks:\n    - name: probe file\n      copy: { path: /root/kprov-persist-probe, content: \"x\\n\" }\n",
    )
    .unwrap();
    let apply = || {
        kprov(&[
            "apply",
            playbook.to_str().unwrap(),
            "-i",
            lab.inventory_str(),
            "--persist",
            "60",
        ])
    };
    let first = apply();
    assert_eq!(first.status.code(), Some(0), "{first:?}");
    let again = apply();
    assert_eq!(again.status.code(), Some(0), "{again:?}");

    // New host keys; the persisted master's session survives sshd's restart.
    sh(
        &lab,
        "master",
        "rm -f /etc/ssh/ssh_host_* && ssh-keygen -A >/dev/null && systemctl restart ssh",
    );
    let changed = apply();
    let stderr = String::from_utf8_lossy(&changed.stderr);
    let stdout = String::from_utf8_lossy(&changed.stdout);
    assert_eq!(changed.status.code(), Some(4), "{stdout}\n{stderr}");
    assert!(
        format!("{stdout}{stderr}").contains("host key"),
        "names the host key:\n{stdout}\n{stderr}"
    );
}
