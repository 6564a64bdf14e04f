//! Per-host times: each host's `host_done` duration is its own, not the whole run's.

mod common;

use common::{events, kprov, Lab};

#[test]
fn each_host_reports_its_own_elapsed_time() {
    let lab = Lab::up("times", 2);
    let dir = tempfile::tempdir().unwrap();
    let playbook = dir.path().join("times.yaml");
    std::fs::write(
        &playbook,
        "- name: times\n  hosts: all\n  tasks:\n    - name: master sleeps\n      when: inventory_hostname == \"master\"\n      shell: { script: \"sleep 3\" }\n",
    )
    .unwrap();
    let out = kprov(&[
        "apply",
        playbook.to_str().unwrap(),
        "-i",
        lab.inventory_str(),
        "--output",
        "json",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let evs = events(&out.stdout);
    let ms = |host: &str| {
        evs.iter()
            .find(|e| e["event"] == "host_done" && e["host"] == host)
            .and_then(|e| e["duration_ms"].as_u64())
            .unwrap_or_else(|| panic!("host_done for {host}: {evs:?}"))
    };
    let (master, node1) = (ms("master"), ms("node1"));
    eprintln!("master {master} ms, node1 {node1} ms");
    assert!(master >= 3000, "master slept 3 s: {master} ms");
    assert!(
        node1 + 2000 <= master,
        "node1 did not sleep: {node1} ms vs master {master} ms"
    );
    // The recap's TIME column shows the same per-host times.
    let recap_line = |host: &str| {
        stderr
            .lines()
            .find(|l| {
                let words: Vec<&str> = l.split_whitespace().collect();
                words.len() == 8 && words[0] == host
            })
            .unwrap_or_else(|| panic!("recap line for {host}: {stderr}"))
            .to_string()
    };
    assert!(
        recap_line("master").contains(&format!("{:.1}s", master as f64 / 1000.0)),
        "{stderr}"
    );
    assert!(
        recap_line("node1").contains(&format!("{:.1}s", node1 as f64 / 1000.0)),
        "{stderr}"
    );
}
