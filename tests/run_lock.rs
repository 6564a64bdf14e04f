//! The run lock on a real lab host: a second apply waits for the first and then gives the
//! host up naming the holder (exit 5), or runs once the first is done; a SIGKILLed kprov
//! (its ssh master persisting) frees the lock at once; nothing holds it after a run.

mod common;

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{kprov, sh, Lab};

/// A playbook whose one task sleeps `secs` seconds on every host.
fn sleeper(dir: &std::path::Path, secs: u32) -> String {
    let path = dir.join(format!("sleep{secs}.yaml"));
    std::fs::write(
        &path,
        format!(
            "- name: slow\n  hosts: all\n  tasks:\n    - name: sleeps\n      shell: {{ script: \"sleep {secs}\" }}\n"
        ),
    )
    .unwrap();
    path.to_str().unwrap().to_string()
}

fn start(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_kprov"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits until the host's lock file names `pid` as its holder.
fn wait_holder(lab: &Lab, pid: u32) {
    let started = Instant::now();
    loop {
        let text = sh(
            lab,
            "master",
            "cat /run/kprov/apply.lock 2>/dev/null || true",
        );
        if text.contains(&format!("pid={pid}\n")) {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "lock never taken: {text}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Processes on the host that have the lock file open, and whether it is free.
fn holders(lab: &Lab) -> (String, bool) {
    let open = sh(
        lab,
        "master",
        "for f in /proc/[0-9]*/fd/*; do [ \"$(readlink \"$f\" 2>/dev/null)\" = /run/kprov/apply.lock ] && echo \"${f%/fd/*}\"; done; true",
    );
    let free = lab
        .ssh("master", "flock -n /run/kprov/apply.lock true")
        .status
        .success();
    (open.trim().to_string(), free)
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn concurrent_applies_wait_fail_naming_the_holder_and_a_killed_holder_frees_the_lock() {
    let lab = Lab::up("lock", 1);
    let inv = lab.inventory_str();
    let dir = tempfile::tempdir().unwrap();
    let slow = sleeper(dir.path(), 12);
    let quick = sleeper(dir.path(), 0);
    let machine = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();

    // 1. The second apply waits 3 s, then gives the host up naming the first.
    let first = start(&["apply", &slow, "-i", inv]);
    wait_holder(&lab, first.id());
    let asked = Instant::now();
    let second = kprov(&["apply", &quick, "-i", inv, "--lock-timeout", "3"]);
    let waited = asked.elapsed();
    let report = text(&second);
    assert_eq!(second.status.code(), Some(5), "{report}");
    let holder = format!("locked by kprov pid {} on {} (", first.id(), machine.trim());
    assert!(report.contains(&holder), "{report}");
    assert!(
        report.contains("waiting up to 3 s for the run lock"),
        "{report}"
    );
    assert!(report.contains("--lock-timeout"), "{report}");
    assert!(
        waited >= Duration::from_secs(3) && waited < Duration::from_secs(10),
        "{waited:?}"
    );
    eprintln!("second apply gave up after {waited:?}");

    // 2. With time enough, it waits for the first and then runs.
    let asked = Instant::now();
    let third = kprov(&["apply", &quick, "-i", inv, "--lock-timeout", "60"]);
    assert_eq!(third.status.code(), Some(0), "{}", text(&third));
    let out = first.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    eprintln!("third apply ran after waiting {:?}", asked.elapsed());
    let (open, free) = holders(&lab);
    assert!(
        open.is_empty() && free,
        "after the runs: open by {open:?}, free {free}"
    );

    // 3. A SIGKILLed holder whose ssh master persists frees the lock at once.
    let mut killed = start(&["apply", &slow, "-i", inv, "--persist", "120"]);
    wait_holder(&lab, killed.id());
    killed.kill().unwrap();
    killed.wait().unwrap();
    let asked = Instant::now();
    let next = kprov(&["apply", &quick, "-i", inv, "--lock-timeout", "5"]);
    let took = asked.elapsed();
    assert_eq!(next.status.code(), Some(0), "{}", text(&next));
    assert!(
        !String::from_utf8_lossy(&next.stderr).contains("waiting up to"),
        "{}",
        text(&next)
    );
    eprintln!("apply after SIGKILL took {took:?}");
    let (open, free) = holders(&lab);
    assert!(
        open.is_empty() && free,
        "after SIGKILL: open by {open:?}, free {free}"
    );

    // 4. plan takes no lock: it runs while an apply holds it.
    let holding = start(&["apply", &slow, "-i", inv]);
    wait_holder(&lab, holding.id());
    let plan = kprov(&["plan", &quick, "-i", inv, "--lock-timeout", "1"]);
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
    let out = holding.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}
