//! Building the remote scripts: the prelude, quoting, and one script per batch of tasks.

use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::Module;

/// Shell functions every gather/apply script starts with: `kp_field`, `kp_word`,
/// `kp_field_file`, `kp_changed`, `kp_fail`, `kp_stale`, `kp_run`, `kp_stat_file`, `kp_put`,
/// `kp_put_if`, `kp_rm`, `kp_attrs` (see the comments in `prelude.sh`).
pub const PRELUDE: &str = include_str!("prelude.sh");

/// Quotes `value` as one POSIX shell word: single quotes, `'` becomes `'\''`. NUL bytes
/// cannot reach a shell and are dropped (module arguments that must keep every byte are
/// passed base64-encoded instead).
pub fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        match c {
            '\'' => out.push_str(r"'\''"),
            '\0' => {}
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// Standard base64 of `bytes` (what `base64 -d` on the host decodes).
pub(crate) fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Decodes standard base64 (record values).
pub(crate) fn unb64(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    base64::engine::general_purpose::STANDARD.decode(text)
}

/// Lowercase hex sha256, as `sha256sum` prints it.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Wraps one task's fragment: `kp_begin`, the fragment as a function body (so `return` ends
/// it), then `kp_end` with its status, which is printed even when a command inside failed.
/// Fragments run in the script's own shell: a subshell per task would cost a fork each,
/// which dominates the run time of a batch. Apply scripts stop after a failed task.
fn task(id: usize, fragment: &str, apply: bool) -> String {
    let stop = if apply { " || exit 0" } else { "" };
    format!("kp_begin {id}\nkp_body() {{\n:\n{fragment}\n}}\nkp_body\nkp_end $?{stop}\n")
}

/// One script that gathers the state of every task in `tasks` (task id, module). Changes
/// nothing; a task whose gather fails is reported failed and the others still run. File
/// probes are answered at the end, with one `stat` and one `sha256sum` for all tasks.
pub fn gather_script(tasks: &[(usize, &dyn Module)]) -> String {
    let mut script = String::from(PRELUDE);
    for (id, module) in tasks {
        script.push_str(&task(*id, &module.gather(), false));
    }
    script.push_str("kp_flush\n");
    script
}

/// One script that applies every task in `tasks` (task id, its planned script) in order; it stops at the first task that fails or reports stale.
pub fn apply_script(tasks: &[(usize, &str)]) -> String {
    apply_script_with(tasks, &|_| AfterTask::default())
}

/// Shell the engine runs around one task's fragment, in the same round trip.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AfterTask {
    /// Runs right before the fragment (e.g. a write-ahead record a crash cannot lose).
    pub before: String,
    /// Runs when the fragment changed something (`kp_changed`), even if it then failed.
    pub on_changed: String,
    /// Runs when the fragment changed nothing (e.g. undoing `before`'s record).
    pub on_unchanged: String,
    /// Runs when the fragment returned 0.
    pub on_success: String,
}

/// [`apply_script`] with [`AfterTask`] shell per task id (e.g. recording a notification
/// on the host in the same round trip as the change that caused it).
pub fn apply_script_with(tasks: &[(usize, &str)], after: &dyn Fn(usize) -> AfterTask) -> String {
    let mut script = String::from(PRELUDE);
    for (id, fragment) in tasks {
        let hooks = after(*id);
        if hooks == AfterTask::default() {
            script.push_str(&task(*id, fragment, true));
            continue;
        }
        let mut tail = String::from("kp_st=$?\n");
        if !hooks.on_changed.is_empty() || !hooks.on_unchanged.is_empty() {
            tail.push_str(&format!(
                "if [ \"$kp_did\" = 1 ]; then\n:\n{}\nelse\n:\n{}\nfi\n",
                hooks.on_changed, hooks.on_unchanged
            ));
        }
        if !hooks.on_success.is_empty() {
            tail.push_str(&format!(
                "if [ \"$kp_st\" = 0 ]; then\n{}\nfi\n",
                hooks.on_success
            ));
        }
        script.push_str(&format!(
            "kp_begin {id}\n{}kp_body() {{\n:\n{}\n}}\nkp_body\n{tail}kp_end $kp_st || exit 0\n",
            hooks.before, fragment
        ));
    }
    script
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_escapes_single_quotes_and_drops_nul() {
        assert_eq!(quote("a'b"), r"'a'\''b'");
        assert_eq!(quote("x\0y"), "'xy'");
        assert_eq!(quote(""), "''");
    }

    #[test]
    fn quoted_hostile_values_survive_a_real_shell() {
        for value in crate::util::testutil::HOSTILE {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("printf '%s' {}", quote(value)))
                .output()
                .unwrap();
            assert_eq!(String::from_utf8_lossy(&out.stdout), *value);
        }
    }

    /// The engine feeds scripts on stdin: a command that reads stdin must not eat the rest.
    #[test]
    fn commands_cannot_swallow_a_script_read_from_stdin() {
        // Padding larger than any shell's read buffer, so the rest is still in the pipe.
        let pad = "# padding padding padding padding\n".repeat(4000);
        let script = format!(
            "{PRELUDE}kp_begin 1\nkp_run 'reader' cat\nkp_end $?\n{pad}kp_begin 2\nkp_changed\nkp_end 0\n"
        );
        let out = crate::util::testutil::run_stdin(&["sh"], &script);
        let reports = crate::parse_output(&out.stdout).unwrap();
        assert!(reports[&1].ok(), "{reports:?}");
        assert!(reports[&2].changed, "task 2 never ran: {reports:?}");
    }

    /// When the shell's own temp name is taken, kp_write falls back to mktemp and still
    /// writes the right mode and content, leaving the squatter alone.
    #[test]
    fn temp_file_fallback_keeps_mode_and_content() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let d = quote(&dir.path().to_string_lossy());
        for (mode, want) in [("640", 0o640), ("755", 0o755)] {
            let script = format!(
                "{PRELUDE}kp_begin 1\nkp_word before \"$(umask)\"\nprintf squat > {d}/.kprov.$$.$((kp_n + 1))\n\
                 kp_write {d}/f{mode} 'it'\\''s' {mode} '' '' '' || exit 0\n\
                 kp_write {d}/g{mode} 'x' {mode} '' '' '' || exit 0\nkp_word after \"$(umask)\"\nkp_end $?\n"
            );
            let out = crate::util::testutil::run_stdin(&["sh"], &script);
            let r = crate::parse_output(&out.stdout).unwrap();
            assert!(r[&1].ok() && r[&1].changed, "{r:?}");
            assert_eq!(
                r[&1].fields["before"], r[&1].fields["after"],
                "umask restored"
            );
            let g = dir.path().join(format!("g{mode}"));
            assert_eq!(
                std::fs::metadata(g).unwrap().permissions().mode() & 0o7777,
                want
            );
            let path = dir.path().join(format!("f{mode}"));
            assert_eq!(std::fs::read_to_string(&path).unwrap(), "it's");
            let m = std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
            assert_eq!(m, want);
        }
        let squatters = std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                let e = e.as_ref().unwrap();
                std::fs::read_to_string(e.path()).ok().as_deref() == Some("squat")
            })
            .count();
        assert_eq!(squatters, 2);
    }

    #[test]
    fn sha_matches_sha256sum_format() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
