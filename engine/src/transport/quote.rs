//! Quoting of values that reach a remote POSIX shell.

/// Quotes `value` as one word for a POSIX shell: single quotes around everything (an
/// embedded `'` becomes `'\''`), so `$(...)`, backticks, globs and newlines arrive
/// verbatim; NUL bytes cannot reach a shell and are dropped. One implementation for the
/// whole project: the modules' scripts use the same function.
pub use kprov_modules::quote;

#[cfg(test)]
mod tests {
    use super::quote;
    use std::process::Command;

    /// Round-trips hostile strings through a real `sh` and checks they come back verbatim.
    #[test]
    fn hostile_values_survive_a_real_shell() {
        let hostile = [
            "plain",
            "",
            "it's",
            "$(touch /tmp/kprov-pwned)",
            "`id`",
            "a\nb\r\nc",
            "semi; rm -rf /",
            "\"double\" and 'single'",
            "ünïcødé ✓ 漢字",
            "*?[glob]",
            "back\\slash",
            "-n",
            "${HOME}",
            "trailing space ",
        ];
        for value in hostile {
            let script = format!("printf '%s' {}", quote(value));
            let out = Command::new("sh").arg("-c").arg(&script).output().unwrap();
            assert!(out.status.success(), "script failed: {script}");
            assert_eq!(String::from_utf8_lossy(&out.stdout), value, "for {value:?}");
        }
        assert!(!std::path::Path::new("/tmp/kprov-pwned").exists());
    }
}
