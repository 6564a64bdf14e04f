//! The engine's view of the contract: several tasks in one gather script and one apply
//! script, run by real shells (dash as `sh`, and busybox ash), against a temp directory.

use std::path::Path;

use kprov_modules::{
    apply_script, build, gather_script, names, parse_output, Diff, HostContext, Module, Plan,
    State, TaskReport,
};
use serde_json::json;

const SHELLS: &[&[&str]] = &[&["sh"], &["busybox", "sh"]];

/// Runs a script like the engine does: `sh -s` with the script on stdin.
fn run(shell: &[&str], script: &str) -> std::collections::BTreeMap<usize, TaskReport> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(shell[0])
        .args(&shell[1..])
        .arg("-s")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{shell:?} must be installed (.ci/packages.txt): {e}"));
    let mut stdin = child.stdin.take().unwrap();
    let script = script.to_string();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(script.as_bytes());
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    parse_output(&out.stdout).expect("framed output")
}

/// A node-prep-like batch: directory, file, line, block, sysctl (fake /proc/sys), crictl.
fn batch(root: &Path) -> Vec<Box<dyn Module>> {
    let ctx = HostContext::default();
    let p = |rel: &str| root.join(rel).to_string_lossy().into_owned();
    std::fs::create_dir_all(root.join("proc/net/ipv4")).unwrap();
    std::fs::write(root.join("proc/net/ipv4/ip_forward"), "0\n").unwrap();
    std::fs::write(root.join("fstab"), "/dev/sda2 none swap sw 0 0\n").unwrap();
    let specs = [
        (
            "directory",
            json!({"path": p("etc/containerd"), "mode": "0755"}),
        ),
        (
            "copy",
            json!({"path": p("etc/containerd/note"), "content": "it's $(not run) `x`\n"}),
        ),
        (
            "line",
            json!({"path": p("etc/environment"), "line": "A='1'", "create": true}),
        ),
        (
            "block",
            json!({"path": p("etc/environment"), "name": "b", "block": "B=2\n"}),
        ),
        (
            "sysctl",
            json!({"settings": {"net.ipv4.ip_forward": 1}, "file": p("etc/sysctl.d/k8s.conf"), "proc_sys": p("proc")}),
        ),
        (
            "swap",
            json!({"fstab": p("fstab"), "proc_swaps": p("no-swaps")}),
        ),
        (
            "crictl_config",
            json!({"runtime_endpoint": "unix:///run/kprov/agent.sock", "path": p("etc/crictl.yaml")}),
        ),
    ];
    specs
        .into_iter()
        .map(|(name, args)| build(name, args, &ctx).unwrap())
        .collect()
}

/// Each task's plan from its state.
fn plan_all(tasks: &[Box<dyn Module>], states: &[State]) -> Vec<Plan> {
    tasks
        .iter()
        .zip(states)
        .map(|(m, s)| m.plan(s).unwrap_or_else(|e| panic!("{m:?}: {e}")))
        .collect()
}

/// The apply script of `ids` (indexes into `plans`).
fn apply_of(plans: &[Plan], ids: impl IntoIterator<Item = usize>) -> String {
    let scripts: Vec<(usize, &str)> = ids
        .into_iter()
        .map(|i| (i, plans[i].script.as_str()))
        .collect();
    apply_script(&scripts)
}

fn gather_all(shell: &[&str], tasks: &[Box<dyn Module>]) -> Vec<State> {
    let refs: Vec<(usize, &dyn Module)> = tasks
        .iter()
        .enumerate()
        .map(|(i, m)| (i, m.as_ref()))
        .collect();
    let reports = run(shell, &gather_script(&refs));
    assert_eq!(reports.len(), tasks.len());
    reports
        .values()
        .map(|r| {
            assert!(r.ok(), "{r:?}");
            r.state()
        })
        .collect()
}

#[test]
fn one_gather_and_one_apply_per_batch_then_idempotent() {
    for shell in SHELLS {
        let dir = tempfile::tempdir().unwrap();
        let tasks = batch(dir.path());
        let states = gather_all(shell, &tasks);
        let diffs: Vec<Diff> = plan_all(&tasks, &states)
            .into_iter()
            .map(|p| p.diff)
            .collect();
        assert!(diffs.iter().all(Diff::needs_apply), "{diffs:?}");

        // line then block edit the same file: the block's state is stale after the line
        // changed it. The engine re-gathers and retries from the stale task.
        let mut pending: Vec<usize> = (0..tasks.len()).collect();
        let mut states = states;
        let mut rounds = 0;
        while !pending.is_empty() {
            rounds += 1;
            assert!(rounds <= 3, "too many rounds");
            let reports = run(
                shell,
                &apply_of(&plan_all(&tasks, &states), pending.iter().copied()),
            );
            let stale = reports
                .iter()
                .find(|(_, r)| r.stale.is_some())
                .map(|(id, _)| *id);
            for (id, r) in &reports {
                assert!(r.failed.is_none(), "task {id}: {r:?}");
                if r.ok() {
                    assert!(r.changed, "task {id} should have changed something");
                }
            }
            match stale {
                Some(id) => {
                    pending.retain(|&i| i >= id);
                    let refs: Vec<(usize, &dyn Module)> =
                        pending.iter().map(|&i| (i, tasks[i].as_ref())).collect();
                    for (i, r) in run(shell, &gather_script(&refs)) {
                        states[i] = r.state();
                    }
                }
                None => pending.clear(),
            }
        }
        assert_eq!(
            rounds, 2,
            "exactly one stale retry (block after line on one file)"
        );

        let again = gather_all(shell, &tasks);
        for (m, p) in tasks.iter().zip(plan_all(&tasks, &again)) {
            assert_eq!(p.diff, Diff::Unchanged, "{m:?}");
        }
        let env = std::fs::read_to_string(dir.path().join("etc/environment")).unwrap();
        assert_eq!(
            env,
            "A='1'\n# BEGIN KPROV MANAGED BLOCK b\nB=2\n# END KPROV MANAGED BLOCK b\n"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("etc/containerd/note")).unwrap(),
            "it's $(not run) `x`\n"
        );
    }
}

#[test]
fn apply_stops_at_the_first_failure_and_gather_does_not() {
    let ctx = HostContext::default();
    let dir = tempfile::tempdir().unwrap();
    let ok = build(
        "copy",
        json!({"path": dir.path().join("a"), "content": "a"}),
        &ctx,
    )
    .unwrap();
    let bad = build(
        "shell",
        json!({"script": "echo 'KP\t0\tchanged\t\t'; echo boom >&2; exit 4"}),
        &ctx,
    )
    .unwrap();
    let later = build(
        "copy",
        json!({"path": dir.path().join("c"), "content": "c"}),
        &ctx,
    )
    .unwrap();
    let tasks = [ok, bad, later];
    for shell in SHELLS {
        let plans = plan_all(&tasks, &gather_all(shell, &tasks));
        let reports = run(shell, &apply_of(&plans, 0..3));
        assert!(reports[&0].ok());
        assert_eq!(
            reports[&1].failed.as_deref(),
            Some("shell failed (exit 4): boom")
        );
        assert!(
            !reports.contains_key(&2),
            "a task after a failure must not run"
        );
        assert!(!dir.path().join("c").exists());
        // Output printed by a command cannot forge records.
        assert_eq!(reports[&1].fields["stdout"], b"KP\t0\tchanged\t\t\n");

        // A failing gather (unreadable content: a directory where a file should be, and
        // a module that fails in gather) is reported for that task only.
        let pm = build("package", json!({"names": ["x"]}), &ctx).unwrap();
        let reports = run(
            shell,
            &gather_script(&[(0, pm.as_ref()), (1, tasks[0].as_ref())]),
        );
        assert!(reports[&0]
            .failed
            .as_deref()
            .unwrap()
            .contains("no supported package manager"));
        assert!(reports[&1].ok());
    }
}

#[test]
fn every_module_has_a_schema_and_rejects_unknown_fields() {
    for name in names() {
        let schema = kprov_modules::arg_schema(name).unwrap_or_else(|| panic!("schema for {name}"));
        assert!(schema.as_value().is_object());
        let err = build(name, json!({"no_such_field": 1}), &HostContext::default()).unwrap_err();
        let text = err.to_string();
        assert!(text.contains(name), "{name}: {text}");
    }
    let err = build("sysctll", json!({}), &HostContext::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown module `sysctll` (did you mean `sysctl`?)"
    );
}

/// Scripts of modules that cannot run here (packages, systemd, firewalls) still parse in
/// both shells.
#[test]
fn every_script_parses_in_both_shells() {
    let apt = HostContext {
        package_manager: "apt-get".into(),
        ..Default::default()
    };
    let dnf = HostContext {
        package_manager: "dnf".into(),
        ..Default::default()
    };
    let cases = [
        (
            "package",
            json!({"names": ["containerd=1.6.20~ds1-1+b1", "kubelet=1.28.2*"], "hold": true, "update_cache": true}),
            &apt,
        ),
        (
            "package",
            json!({"names": ["kubelet=1.28.2"], "hold": false}),
            &dnf,
        ),
        (
            "package",
            json!({"names": ["docker.io"], "state": "absent"}),
            &apt,
        ),
        (
            "service",
            json!({"name": "containerd", "enabled": true, "state": "started", "unit": "[Unit]\n", "dropins": {"10-x": "[Service]\n"}}),
            &apt,
        ),
        (
            "service",
            json!({"name": "kubelet", "enabled": false, "state": "stopped"}),
            &apt,
        ),
        (
            "service",
            json!({"name": "containerd", "state": "restarted"}),
            &apt,
        ),
        (
            "service",
            json!({"name": "containerd", "state": "reloaded"}),
            &apt,
        ),
        ("firewall", json!({}), &apt),
        ("kernel_module", json!({"names": ["br_netfilter"]}), &apt),
        ("swap", json!({}), &apt),
        ("selinux", json!({}), &apt),
        (
            "apt_repo",
            json!({"name": "k8s", "url": "https://packages.example/core/stable/v1.28/deb/", "suite": "/"}),
            &apt,
        ),
        (
            "yum_repo",
            json!({"name": "k8s", "baseurl": "https://x/", "gpgkey": "https://x/key"}),
            &dnf,
        ),
        (
            "command",
            json!({"argv": ["kubeadm", "init"], "creates": "/etc/kubernetes/admin.conf", "stdin": "x"}),
            &apt,
        ),
    ];
    for (name, args, ctx) in cases {
        let tasks = [build(name, args.clone(), ctx).unwrap()];
        for shell in SHELLS {
            // Planned from what this machine's gather says (gather changes nothing).
            let plans = plan_all(&tasks, &gather_all(shell, &tasks));
            for script in [
                gather_script(&[(0, tasks[0].as_ref())]),
                apply_of(&plans, [0]),
            ] {
                let out = std::process::Command::new(shell[0])
                    .args(&shell[1..])
                    .args(["-n", "-c", &script])
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "{name} {args} under {shell:?}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
    }
}

const PWNED: &str = "/tmp/kprov-pwned-batch";

/// Hostile values in every free-text argument land verbatim and never execute.
#[test]
fn hostile_values_land_verbatim_and_never_execute() {
    let hostile =
        format!("it's \"$(touch {PWNED})\" `touch {PWNED}` ${{HOME}} \\ ✓ 漢字\n\tnext line; &");
    let one_line = hostile.replace(['\n', '\t'], " ");
    let ctx = HostContext::default();
    for shell in SHELLS {
        let dir = tempfile::tempdir().unwrap();
        let p = |rel: &str| dir.path().join(rel).to_string_lossy().into_owned();
        std::fs::create_dir_all(dir.path().join("proc/kernel")).unwrap();
        std::fs::write(dir.path().join("proc/kernel/hostile"), "x\n").unwrap();
        let specs = [
            (
                "service",
                json!({"name": "x", "systemd_dir": p("sd"), "unit": hostile, "dropins": {"10-h": hostile}}),
            ),
            (
                "sysctl",
                json!({"settings": {"kernel.hostile": one_line}, "file": p("sysctl.conf"), "proc_sys": p("proc")}),
            ),
            (
                "containerd_config",
                json!({"path": p("config.toml"), "sandbox_image": hostile, "registries": {"h:5000": {"username": hostile, "password": hostile}}}),
            ),
            (
                "line",
                json!({"path": p("l"), "line": one_line, "create": true}),
            ),
            (
                "shell",
                json!({"script": "printf '%s' \"$H\" > \"$OUT\"", "env": {"H": hostile, "OUT": p("env-out")}}),
            ),
        ];
        let tasks: Vec<Box<dyn Module>> = specs
            .into_iter()
            .map(|(n, a)| build(n, a, &ctx).unwrap())
            .collect();
        let states = gather_all(shell, &tasks);
        for (id, r) in run(shell, &apply_of(&plan_all(&tasks, &states), 0..tasks.len())) {
            assert!(r.ok() && r.changed, "task {id}: {r:?}");
        }
        assert!(!Path::new(PWNED).exists(), "a hostile value was executed");
        let read = |rel: &str| std::fs::read_to_string(dir.path().join(rel)).unwrap();
        assert_eq!(read("sd/x.service"), hostile);
        assert_eq!(read("sd/x.service.d/10-h.conf"), hostile);
        let normalized = one_line.split_whitespace().collect::<Vec<_>>().join(" ");
        assert_eq!(read("proc/kernel/hostile"), format!("{normalized}\n"));
        assert_eq!(read("l"), format!("{one_line}\n"));
        assert_eq!(read("env-out"), hostile);
        let doc: toml_edit::DocumentMut = read("config.toml").parse().unwrap();
        let cri = &doc["plugins"]["io.containerd.grpc.v1.cri"];
        assert_eq!(cri["sandbox_image"].as_str(), Some(hostile.as_str()));
        assert_eq!(
            cri["registry"]["configs"]["h:5000"]["auth"]["password"].as_str(),
            Some(hostile.as_str())
        );
    }
}

/// Every file under `root` with its mode, size, mtime and content.
fn snapshot(root: &Path) -> Vec<(String, u32, u64, std::time::SystemTime, Vec<u8>)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let content = if meta.is_file() {
                std::fs::read(&path).unwrap()
            } else {
                Vec::new()
            };
            if meta.is_dir() {
                stack.push(path.clone());
            }
            out.push((
                path.to_string_lossy().into_owned(),
                meta.permissions().mode(),
                meta.len(),
                meta.modified().unwrap(),
                content,
            ));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// `kprov plan` runs only gather scripts: they change nothing, even when every task would.
#[test]
fn gather_changes_nothing() {
    for shell in SHELLS {
        let dir = tempfile::tempdir().unwrap();
        let tasks = batch(dir.path());
        let before = snapshot(dir.path());
        let states = gather_all(shell, &tasks);
        assert!(plan_all(&tasks, &states)
            .iter()
            .all(|p| p.diff.needs_apply()));
        assert_eq!(
            snapshot(dir.path()),
            before,
            "gather under {shell:?} changed files"
        );
    }
}
