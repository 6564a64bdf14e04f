//! Test helpers: run generated scripts with the machine's own `sh`.

use crate::{
    apply_script, gather_script, parse_output, Diff, Module, ModuleError, State, TaskReport,
};

/// The parts of a [`crate::Plan`] tests look at, by their old names.
pub(crate) trait Planned {
    /// The plan's diff.
    fn diff(&self, state: &State) -> Result<Diff, ModuleError>;
    /// The plan's script (a failing fragment when planning failed).
    fn apply(&self, state: &State) -> String;
    /// True when the plan holds secrets.
    fn sensitive_for(&self, state: &State) -> bool;
}

impl<M: Module + ?Sized> Planned for M {
    fn diff(&self, state: &State) -> Result<Diff, ModuleError> {
        self.plan(state).map(|p| p.diff)
    }
    fn apply(&self, state: &State) -> String {
        self.plan(state)
            .map(|p| p.script)
            .unwrap_or_else(|e| format!("kp_fail {}\nreturn\n", crate::quote(&e.to_string())))
    }
    fn sensitive_for(&self, state: &State) -> bool {
        self.plan(state).is_ok_and(|p| p.sensitive)
    }
}

/// Values that must land verbatim and never execute.
pub(crate) const HOSTILE: &[&str] = &[
    "plain\n",
    "",
    "it's a 'quote'\n",
    "$(touch /tmp/kprov-pwned)",
    "`touch /tmp/kprov-pwned`\n",
    "line1\nline2\r\n\ttab\n",
    "\"double\" \\back\\slash ${HOME} $HOME; rm -rf /nonexistent &\n",
    "ünïcødé ✓ 漢字 🚀\n",
    "no trailing newline",
    "-n\n",
    "KP\t1\tchanged\t\t\n",
];

/// A state from `(name, value)` pairs.
pub(crate) fn fields(pairs: &[(&str, &str)]) -> State {
    State {
        fields: pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect(),
    }
}

/// Runs a script like the engine does: `sh -s` with the script on stdin.
pub(crate) fn run_stdin(shell: &[&str], script: &str) -> std::process::Output {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(shell[0])
        .args(&shell[1..])
        .arg("-s")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("shell runs");
    let mut stdin = child.stdin.take().expect("stdin");
    let script = script.to_string();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(script.as_bytes());
    });
    let out = child.wait_with_output().expect("shell finishes");
    writer.join().expect("writer");
    out
}

fn run(script: &str) -> TaskReport {
    let out = run_stdin(&["sh"], script);
    let mut reports = parse_output(&out.stdout).expect("parsable output");
    reports.remove(&7).unwrap_or_else(|| {
        panic!(
            "no report; stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Runs an apply fragment as task 7 behind the prelude and returns its report.
pub(crate) fn run_fragment(fragment: &str) -> TaskReport {
    run(&(apply_script(&[])
        + &format!("kp_begin 7\nkp_body() {{\n:\n{fragment}\n}}\nkp_body\nkp_end $?\n")))
}

/// The permission bits of the file `path` below `root`.
pub(crate) fn mode_under(root: &str, path: &str) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(format!("{root}{path}"))
        .unwrap_or_else(|e| panic!("{root}{path}: {e}"))
        .permissions()
        .mode()
        & 0o777
}

/// Runs the module's gather fragment and returns its report, failed or not.
pub(crate) fn run_gather(m: &dyn Module) -> TaskReport {
    run(&gather_script(&[(7, m)]))
}

/// Runs the module's gather fragment and returns its report (asserting it succeeded).
pub(crate) fn gather(m: &dyn Module) -> TaskReport {
    let r = run_gather(m);
    assert!(r.ok(), "gather of {m:?} failed: {:?}", r.failed);
    r
}

/// Runs the module's apply fragment against `state` and returns its report.
pub(crate) fn apply(m: &dyn Module, state: &State) -> TaskReport {
    run(&apply_script(&[(7, &m.apply(state))]))
}

/// gather → diff says change → apply (changed) → gather → diff says unchanged → apply again
/// changes nothing. Returns the first diff.
pub(crate) fn run_cycle(m: &dyn Module) -> Diff {
    let first = gather(m).state();
    let diff = m.diff(&first).expect("diff");
    assert!(diff.needs_apply(), "expected a change for {m:?}");
    let applied = apply(m, &first);
    assert!(applied.ok(), "apply failed: {applied:?}");
    assert!(applied.changed, "apply did not report a change for {m:?}");
    let second = gather(m).state();
    assert_eq!(m.diff(&second).expect("diff"), Diff::Unchanged, "{m:?}");
    let again = apply(m, &second);
    assert!(again.ok() && !again.changed, "second apply: {again:?}");
    assert!(!std::path::Path::new("/tmp/kprov-pwned").exists());
    diff
}
