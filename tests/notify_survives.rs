//! A run killed between a config change and its handler (SIGKILL of kprov, as a laptop
//! lid or a CI timeout does) still converges: the notification was recorded on the host
//! in the same round trip as the change, the next apply runs the handler although
//! nothing changes then, and the apply after that changes nothing. Real sshd and systemd
//! on a lab host; the service's start time shows whether the restart really happened.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{events, kprov, sh, Lab};
use serde_json::Value;

const PLAYBOOK: &str = "tests/fixtures/notify-interrupted.yaml";
const HANDLER: &str = "restart kt-notify";

fn apply(lab: &Lab, mode: &str, vars: &[&str]) -> (Option<i32>, Vec<Value>, String) {
    let mut args = vec![
        mode,
        PLAYBOOK,
        "-i",
        lab.inventory_str(),
        "--output",
        "json",
    ];
    for v in vars {
        args.extend(["-e", v]);
    }
    let out = kprov(&args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code(), events(&out.stdout), stderr)
}

fn started_at(lab: &Lab) -> String {
    sh(
        lab,
        "master",
        "systemctl show -p ActiveEnterTimestampMonotonic --value kt-notify",
    )
    .trim()
    .to_string()
}

fn status_of<'a>(events: &'a [Value], task: &str) -> Option<&'a Value> {
    events
        .iter()
        .find(|e| e["event"] == "task" && e["task"] == task)
        .map(|e| &e["status"])
}

#[test]
fn a_notification_survives_a_killed_run() {
    let lab = Lab::up("kt-notify", 1);
    // Plan and apply count the same things: the handler a change notifies is in the plan.
    let (code, planned, stderr) = apply(&lab, "plan", &["notify_value=one"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        status_of(&planned, HANDLER).unwrap(),
        "changed",
        "{planned:?}"
    );
    let (code, applied, stderr) = apply(&lab, "apply", &["notify_value=one"]);
    assert_eq!(code, Some(0), "{stderr}");
    let changed = |events: &[Value]| {
        let mut tasks: Vec<String> = events
            .iter()
            .filter(|e| e["event"] == "task" && e["status"] == "changed")
            .map(|e| e["task"].to_string())
            .collect();
        tasks.sort();
        tasks
    };
    assert_eq!(
        changed(&planned),
        changed(&applied),
        "plan and apply differ"
    );
    let done = |events: &[Value]| {
        events
            .iter()
            .find(|e| e["event"] == "run_done")
            .map(|e| e["changed"].clone())
    };
    assert_eq!(done(&planned), done(&applied));
    let before = started_at(&lab);

    // Change the config, and kill kprov once the new content is on the host, while the
    // slow task of the same play runs (before the handler batch).
    let mut child = Command::new(env!("CARGO_BIN_EXE_kprov"))
        .args([
            "apply",
            PLAYBOOK,
            "-i",
            lab.inventory_str(),
            "-e",
            "notify_value=two",
            "-e",
            "slow=30",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = lab.ssh("master", "cat /etc/kt-notify.conf");
        if String::from_utf8_lossy(&out.stdout) == "two\n" {
            break;
        }
        assert!(Instant::now() < deadline, "the config never changed");
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(started_at(&lab), before, "the handler ran before the kill");
    let markers = sh(
        &lab,
        "master",
        "cat /var/lib/kprov/handlers/* 2>/dev/null || true",
    );
    assert_eq!(markers.trim(), HANDLER, "the notification was not recorded");

    // plan shows the pending handler; nothing else changes.
    let (code, ev, stderr) = apply(&lab, "plan", &["notify_value=two"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(status_of(&ev, "service configuration").unwrap(), "ok");
    assert_eq!(status_of(&ev, HANDLER).unwrap(), "changed", "{ev:?}");

    // The next apply runs it although the config is already right.
    let (code, ev, stderr) = apply(&lab, "apply", &["notify_value=two"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(status_of(&ev, "service configuration").unwrap(), "ok");
    assert_eq!(status_of(&ev, HANDLER).unwrap(), "changed");
    assert_ne!(started_at(&lab), before, "kt-notify was not restarted");
    let left = sh(&lab, "master", "ls -A /var/lib/kprov/handlers");
    assert!(left.trim().is_empty(), "marker left: {left}");

    // Converged.
    let after = started_at(&lab);
    let (code, ev, stderr) = apply(&lab, "apply", &["notify_value=two"]);
    assert_eq!(code, Some(0), "{stderr}");
    let done = ev.iter().find(|e| e["event"] == "run_done").unwrap();
    let changed: Vec<&Value> = ev
        .iter()
        .filter(|e| e["status"] == "changed")
        .map(|e| &e["task"])
        .collect();
    assert_eq!(done["changed"], 0, "{changed:?}");
    assert!(status_of(&ev, HANDLER).is_none());
    assert_eq!(started_at(&lab), after);
}
