//! The engine on a real 3-host lab: node-prep applied, idempotence, plan accuracy,
//! drift repair, handlers, partial failure and hostile values.

mod common;

use std::collections::BTreeMap;

use common::{kprov, Lab};
use serde_json::Value;

const LAB: &str = "kt-engine";
/// node-prep runs with containerd selected (the default runtime, kprov-agent, is checked
/// separately on one host).
const SPEC: &str = "tests/fixtures/spec-containerd.yaml";

/// Events of a `--output json` run.
fn events(stdout: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect()
}

fn run_done(events: &[Value]) -> &Value {
    events
        .iter()
        .find(|e| e["event"] == "run_done")
        .expect("run_done event")
}

/// host -> (status -> count) from host_done events.
fn per_host(events: &[Value]) -> BTreeMap<String, BTreeMap<String, u64>> {
    events
        .iter()
        .filter(|e| e["event"] == "host_done")
        .map(|e| {
            let counts = e["counts"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
                .collect();
            (e["host"].as_str().unwrap().to_string(), counts)
        })
        .collect()
}

fn run(args: &[&str]) -> (Option<i32>, Vec<Value>, String) {
    let out = kprov(args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code(), events(&out.stdout), stderr)
}

/// `kprov COMMAND PLAYBOOK -i INV --output json EXTRA…`.
fn kprov_json(
    command: &str,
    playbook: &str,
    inv: &str,
    extra: &[&str],
) -> (Option<i32>, Vec<Value>, String) {
    let mut args = vec![command, playbook, "-i", inv, "--output", "json"];
    args.extend_from_slice(extra);
    run(&args)
}

/// node-prep with the containerd spec.
fn node_prep(command: &str, inv: &str, extra: &[&str]) -> (Option<i32>, Vec<Value>, String) {
    let mut args = vec!["--spec", SPEC];
    args.extend_from_slice(extra);
    kprov_json(command, "playbooks/node-prep.yaml", inv, &args)
}

fn sh(lab: &Lab, host: &str, cmd: &str) -> String {
    let out = lab.ssh(host, cmd);
    assert!(
        out.status.success(),
        "{host}: `{cmd}` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn engine_on_a_three_host_lab() {
    let lab = Lab::up(LAB, 3);
    let inv = lab.inventory_str();
    let hosts = ["master", "node1", "node2"];

    // plan on fresh hosts changes nothing: the files it would create stay absent.
    sh(&lab, "master", "touch /tmp/kprov-plan-marker");
    let (code, ev, err) = node_prep("plan", inv, &["--detailed-exitcode"]);
    assert_eq!(code, Some(2), "plan with changes exits 2: {err}");
    assert!(run_done(&ev)["changed"].as_u64().unwrap() > 0);
    let touched = sh(&lab, "master", "find /etc /usr /var/lib -xdev -newer /tmp/kprov-plan-marker -not -path '/var/lib/systemd/*' | head");
    assert_eq!(touched.trim(), "", "plan changed files on the host");

    // First apply changes every host.
    let (code, ev, err) = node_prep("apply", inv, &[]);
    assert_eq!(code, Some(0), "first apply failed:\n{err}");
    for (host, counts) in per_host(&ev) {
        assert!(
            counts.get("changed").copied().unwrap_or(0) > 0,
            "{host} unchanged: {counts:?}"
        );
        assert_eq!(counts.get("failed"), None, "{host}: {counts:?}");
    }
    for host in hosts {
        let sysctl = sh(&lab, host, "cat /etc/sysctl.d/99-kubernetes-cri.conf");
        assert!(sysctl.contains("net.ipv4.ip_forward = 1"), "{sysctl}");
        assert_eq!(
            sh(&lab, host, "cat /proc/sys/net/ipv4/ip_forward").trim(),
            "1"
        );
        let etc_hosts = sh(&lab, host, "cat /etc/hosts");
        for other in hosts {
            assert!(
                etc_hosts
                    .lines()
                    .any(|l| l.split_whitespace().nth(1) == Some(other)),
                "{host}: {etc_hosts}"
            );
        }
        assert!(sh(&lab, host, "cat /etc/crictl.yaml")
            .contains("unix:///run/containerd/containerd.sock"));
        assert_eq!(
            sh(&lab, host, "systemctl is-active containerd").trim(),
            "active"
        );
        assert_eq!(
            sh(&lab, host, "systemctl show -p KillMode --value containerd").trim(),
            "process"
        );
        assert!(sh(&lab, host, "cat /etc/containerd/config.toml").contains("SystemdCgroup = true"));
        sh(&lab, host, "dpkg -s socat conntrack >/dev/null");
    }

    // Second apply changes nothing; plan agrees.
    let (code, ev, err) = node_prep("apply", inv, &[]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        run_done(&ev)["changed"],
        0,
        "second apply changed something:\n{err}"
    );
    let (code, ev, _) = node_prep("plan", inv, &["--detailed-exitcode"]);
    assert_eq!(code, Some(0));
    assert_eq!(run_done(&ev)["changed"], 0);

    // A hand edit on one host is exactly one diff on exactly that host; apply repairs it.
    sh(
        &lab,
        "node1",
        "echo 'vm.swappiness = 99' >> /etc/sysctl.d/99-kubernetes-cri.conf",
    );
    let (code, ev, _) = node_prep("plan", inv, &["--detailed-exitcode"]);
    assert_eq!(code, Some(2));
    let changed: Vec<&Value> = ev
        .iter()
        .filter(|e| e["event"] == "task" && e["status"] == "changed")
        .collect();
    assert_eq!(changed.len(), 1, "{changed:?}");
    assert_eq!(changed[0]["host"], "node1");
    let diff = changed[0]["diff"].as_str().unwrap();
    assert!(diff.contains("-vm.swappiness = 99"), "{diff}");
    let (code, ev, _) = node_prep("apply", inv, &[]);
    assert_eq!(code, Some(0));
    assert_eq!(run_done(&ev)["changed"], 1);
    assert!(!sh(&lab, "node1", "cat /etc/sysctl.d/99-kubernetes-cri.conf").contains("swappiness"));

    handlers_run_once_when_notified(&lab);
    a_failure_stops_only_its_host(&lab);
    hostile_values_land_verbatim(&lab);
    values_cross_hosts_through_the_graph(&lab);
    retries_and_until(&lab);
    cycles_are_refused_by_name(&lab);
    tags_select_tasks(&lab);
    fail_fast_stops_every_host(&lab);
    kprov_agent_is_the_default_runtime(&lab);
    reset_shows_then_removes(&lab);
    registry_secrets_stay_secret(&lab);
}

/// A registry password from the spec lands in the runtime's config (0600: containerd's,
/// then kprov-agent's) and in no event, diff or human output, in plan or apply.
fn registry_secrets_stay_secret(lab: &Lab) {
    secrets_reach_only_the_runtime_config(lab, "tests/fixtures/spec-registry-auth.yaml");
    let config = sh(lab, "node2", "cat /etc/containerd/config.toml");
    assert!(
        config.contains("password = \"s3cr3t-pw-$(id)\"")
            && config.contains("config_path = \"/etc/containerd/certs.d\""),
        "{config}"
    );
    let hosts = sh(
        lab,
        "node2",
        "cat /etc/containerd/certs.d/registry.lab:5000/hosts.toml",
    );
    assert!(
        hosts.contains("server = \"http://registry.lab:5000\""),
        "{hosts}"
    );
    assert_eq!(
        sh(lab, "node2", "stat -c %a /etc/containerd/config.toml").trim(),
        "600"
    );
    secrets_reach_only_the_runtime_config(lab, "tests/fixtures/spec-registry-auth-agent.yaml");
    let config = sh(lab, "node2", "cat /etc/kprov/agent.toml");
    assert!(
        config.contains("[registry.hosts.\"harbor.example.com:443\"]")
            && config.contains("insecure_skip_verify = true")
            && config.contains("username = \"robot\"")
            && config.contains("password = \"s3cr3t-pw-$(id)\"")
            && config
                .split("[registry.hosts.\"registry.lab:5000\"]")
                .nth(1)
                .is_some_and(|rest| rest
                    .split('[')
                    .next()
                    .unwrap_or("")
                    .contains("plain_http = true")),
        "{config}"
    );
    assert_eq!(
        sh(lab, "node2", "stat -c %a /etc/kprov/agent.toml").trim(),
        "600"
    );
    // The agent accepts the configuration it was given.
    assert_eq!(
        sh(lab, "node2", "systemctl is-active kprov-agent").trim(),
        "active"
    );
}

fn secrets_reach_only_the_runtime_config(lab: &Lab, spec: &str) {
    let inv = lab.inventory_str();
    let secret = "s3cr3t-pw";
    for command in ["plan", "apply"] {
        for output in ["json", "human"] {
            let out = kprov(&[
                command,
                "playbooks/node-prep.yaml",
                "-i",
                inv,
                "--spec",
                spec,
                "--limit",
                "node2",
                "--output",
                output,
            ]);
            let all = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                out.status.code().is_some_and(|c| c == 0 || c == 2),
                "{command}: {all}"
            );
            assert!(
                !all.contains(secret),
                "{command} --output {output} with {spec} printed the password"
            );
        }
    }
}

/// `kprov reset` is a plan until `--yes`; then the kubeadm-made files are gone.
fn reset_shows_then_removes(lab: &Lab) {
    let inv = lab.inventory_str();
    sh(
        lab,
        "node1",
        "mkdir -p /etc/kubernetes/manifests && echo x > /etc/kubernetes/manifests/etcd.yaml",
    );
    let out = kprov(&["reset", "-i", inv, "--limit", "node1"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    sh(lab, "node1", "test -e /etc/kubernetes/manifests/etcd.yaml");
    let out = kprov(&["reset", "-i", inv, "--limit", "node1", "--yes"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let gone = lab.ssh("node1", "test -e /etc/kubernetes/manifests/etcd.yaml");
    assert!(!gone.status.success(), "reset left the manifest");
}

/// Without a spec, node-prep installs kprov's own CRI runtime: binaries pushed from the
/// control machine, config, unit, crictl pointed at its socket; a second run changes nothing.
fn kprov_agent_is_the_default_runtime(lab: &Lab) {
    let inv = lab.inventory_str();
    let args = [
        "apply",
        "playbooks/node-prep.yaml",
        "-i",
        inv,
        "--output",
        "json",
        "--limit",
        "node2",
    ];
    let (code, _, err) = run(&args);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        sh(lab, "node2", "systemctl is-active kprov-agent").trim(),
        "active"
    );
    sh(lab, "node2", "test -S /run/kprov/agent.sock");
    assert!(sh(lab, "node2", "cat /etc/crictl.yaml").contains("unix:///run/kprov/agent.sock"));
    assert_eq!(
        sh(
            lab,
            "node2",
            "systemctl show -p KillMode --value kprov-agent"
        )
        .trim(),
        "process"
    );
    let local = std::fs::read(format!(
        "{}/kprov-agent",
        env!("CARGO_BIN_EXE_kprov").rsplit_once('/').unwrap().0
    ))
    .unwrap();
    let remote = sh(lab, "node2", "sha256sum /usr/local/bin/kprov-agent");
    use sha2::Digest as _;
    assert!(
        remote.starts_with(&hex(&sha2::Sha256::digest(&local))),
        "pushed binary differs"
    );
    let (code, ev, _) = run(&args);
    assert_eq!(code, Some(0));
    assert_eq!(run_done(&ev)["changed"], 0);
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn fail_fast_stops_every_host(lab: &Lab) {
    let inv = lab.inventory_str();
    for host in ["master", "node1", "node2"] {
        sh(lab, host, "rm -f /etc/kprov-test/fail-fast");
    }
    let (code, ev, _) = kprov_json(
        "apply",
        "tests/fixtures/fail-fast.yaml",
        inv,
        &["--fail-fast"],
    );
    assert_eq!(code, Some(1));
    for host in ["master", "node2"] {
        let absent = lab.ssh(host, "test -e /etc/kprov-test/fail-fast");
        assert!(
            !absent.status.success(),
            "{host} went on after node1 failed"
        );
        let skipped = ev.iter().any(|e| {
            e["host"] == host && e["task"] == "only without fail-fast" && e["status"] == "skipped"
        });
        assert!(skipped, "{host}: {ev:?}");
    }
    // Without --fail-fast the others finish.
    let (code, _, _) = kprov_json("apply", "tests/fixtures/fail-fast.yaml", inv, &[]);
    assert_eq!(code, Some(1));
    for host in ["master", "node2"] {
        assert_eq!(sh(lab, host, "cat /etc/kprov-test/fail-fast").trim(), "ran");
    }
}

fn values_cross_hosts_through_the_graph(lab: &Lab) {
    let inv = lab.inventory_str();
    // plan: the nodes' task depends on an unapplied change on the master.
    let (_, ev, _) = kprov_json("plan", "tests/fixtures/cross-host.yaml", inv, &[]);
    let node_task = ev
        .iter()
        .find(|e| e["event"] == "task" && e["host"] == "node1")
        .unwrap();
    assert_eq!(node_task["status"], "unknown", "{node_task}");
    let (code, _, err) = kprov_json("apply", "tests/fixtures/cross-host.yaml", inv, &[]);
    assert_eq!(code, Some(0), "{err}");
    for node in ["node1", "node2"] {
        assert_eq!(sh(lab, node, "cat /etc/kprov-test/token"), "tok-master\n");
    }
}

fn retries_and_until(lab: &Lab) {
    let inv = lab.inventory_str();
    sh(lab, "master", "rm -f /root/kprov-tries /root/kprov-count");
    let (code, ev, err) = kprov_json("apply", "tests/fixtures/retries.yaml", inv, &[]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(sh(lab, "master", "cat /root/kprov-tries").trim(), "3");
    assert_eq!(sh(lab, "master", "cat /root/kprov-count").trim(), "5");
    // One event per task, not one per attempt.
    let tasks = ev.iter().filter(|e| e["event"] == "task").count();
    assert_eq!(tasks, 2, "{ev:?}");
    // Out of retries: three attempts, then one failure event.
    sh(lab, "master", "rm -f /root/kprov-fails");
    let (code, ev, _) = kprov_json("apply", "tests/fixtures/retries-exhausted.yaml", inv, &[]);
    assert_eq!(code, Some(1));
    assert_eq!(sh(lab, "master", "cat /root/kprov-fails").trim(), "3");
    let tasks: Vec<&Value> = ev.iter().filter(|e| e["event"] == "task").collect();
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    assert_eq!(tasks[0]["status"], "failed");
}

fn cycles_are_refused_by_name(lab: &Lab) {
    let (code, _, err) = run(&[
        "apply",
        "tests/fixtures/cycle.yaml",
        "-i",
        lab.inventory_str(),
    ]);
    assert_eq!(code, Some(3), "a cycle is invalid input: {err}");
    assert!(err.contains("cycle"), "{err}");
    for name in ["master: first", "node1: second"] {
        assert!(err.contains(name), "the cycle names `{name}`:\n{err}");
    }
    // Refused before anything ran: the tasks would have left this file on every host.
    for host in ["master", "node1", "node2"] {
        let absent = lab.ssh(host, "test -e /root/kprov-cycle");
        assert!(
            !absent.status.success(),
            "{host} ran a task of a cyclic playbook"
        );
    }
}

/// Names of the tasks a run reported.
fn task_names(ev: &[Value]) -> Vec<&str> {
    ev.iter()
        .filter(|e| e["event"] == "task")
        .filter_map(|e| e["task"].as_str())
        .collect()
}

fn tags_select_tasks(lab: &Lab) {
    let inv = lab.inventory_str();
    let (_, ev, _) = node_prep("plan", inv, &["--tags", "kernel"]);
    let names = task_names(&ev);
    assert!(!names.is_empty());
    assert!(names.iter().all(|n| n.starts_with("Kernel")), "{names:?}");
    let (_, ev, _) = node_prep("plan", inv, &["--skip-tags", "kernel,runtime"]);
    let names = task_names(&ev);
    assert!(
        names
            .iter()
            .all(|n| !n.starts_with("Kernel") && !n.contains("containerd")),
        "{names:?}"
    );
}

fn handlers_run_once_when_notified(lab: &Lab) {
    let inv = lab.inventory_str();
    let count = |host: &str| {
        sh(
            lab,
            host,
            "cat /var/log/kprov-test-restarts 2>/dev/null | wc -l",
        )
        .trim()
        .to_string()
    };
    let (code, _, err) = kprov_json("apply", "tests/fixtures/handlers.yaml", inv, &[]);
    assert_eq!(code, Some(0), "{err}");
    for host in ["master", "node1", "node2"] {
        assert_eq!(
            count(host),
            "1",
            "{host}: two notifications, one handler run"
        );
    }
    let (code, _, _) = kprov_json("apply", "tests/fixtures/handlers.yaml", inv, &[]);
    assert_eq!(code, Some(0));
    for host in ["master", "node1", "node2"] {
        assert_eq!(
            count(host),
            "1",
            "{host}: nothing changed, the handler must not run"
        );
    }
    sh(lab, "node2", "echo drift > /etc/kprov-test/two.conf");
    let (code, _, _) = kprov_json("apply", "tests/fixtures/handlers.yaml", inv, &[]);
    assert_eq!(code, Some(0));
    assert_eq!(count("node2"), "2");
    assert_eq!(count("master"), "1");
    assert_eq!(count("node1"), "1");
}

fn a_failure_stops_only_its_host(lab: &Lab) {
    let inv = lab.inventory_str();
    let (code, ev, err) = kprov_json("apply", "tests/fixtures/partial-failure.yaml", inv, &[]);
    assert_eq!(code, Some(1), "a failed task must fail the run");
    let per = per_host(&ev);
    assert_eq!(per["node1"].get("failed"), Some(&1), "{per:?}");
    assert_eq!(run_done(&ev)["failed"], 1);
    for host in ["master", "node2"] {
        assert_eq!(per[host].get("failed"), None, "{host}: {per:?}");
        assert_eq!(
            sh(lab, host, "cat /etc/kprov-test/after-failure").trim(),
            "done"
        );
    }
    let absent = lab.ssh("node1", "test -e /etc/kprov-test/after-failure");
    assert!(!absent.status.success(), "node1 ran past its failure");
    let failed = ev.iter().find(|e| e["status"] == "failed").unwrap();
    assert_eq!(failed["host"], "node1");
    assert!(failed["task"].as_str().unwrap().contains("refuse on node1"));
    assert!(
        err.contains("node1") && err.contains("refuse on node1"),
        "human output names host and task:\n{err}"
    );
}

fn hostile_values_land_verbatim(lab: &Lab) {
    let inv = lab.inventory_str();
    let hostile = "it's \"quoted\" $(touch /tmp/kprov-pwned) `touch /tmp/kprov-pwned` ${HOME}\nnext line ünïcødé ✓\n";
    let hostile_line = "$(touch /tmp/kprov-pwned) 'q' `id`";
    let vars = serde_json::json!({
        "hostile": hostile,
        "hostile_line": hostile_line,
        "hostile_name": "we ird'$(touch /tmp/kprov-pwned)'name",
    })
    .to_string();
    let (code, _, err) = kprov_json("apply", "tests/fixtures/hostile.yaml", inv, &["-e", &vars]);
    assert_eq!(code, Some(0), "{err}");
    for host in ["master", "node1", "node2"] {
        let content = sh(
            lab,
            host,
            "cat \"/etc/kprov-test/we ird'\\$(touch /tmp/kprov-pwned)'name\"",
        );
        assert_eq!(content, hostile, "{host}");
        let lines = sh(lab, host, "cat /etc/kprov-test/lines");
        assert_eq!(lines, format!("value={hostile_line}\n"));
        let pwned = lab.ssh(host, "test -e /tmp/kprov-pwned");
        assert!(!pwned.status.success(), "{host}: a hostile value executed");
    }
}
