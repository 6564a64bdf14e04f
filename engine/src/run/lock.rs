//! The run lock: one apply at a time per host.
//!
//! `flock` on `/run/kprov/apply.lock`, held by a remote shell that lives until its stdin
//! closes. Only this kprov process writes that stdin, so the lock ends with the process
//! however it ends (a clean exit, Ctrl-C, SIGKILL), even while the ssh master persists:
//! a dead kprov never blocks the next run. A kprov that ends cleanly says `release`
//! first; when the stdin just closes (SIGKILL), the shell ends that run's commands still
//! running on the host before the lock is free, so no orphaned script races the next run. The holder writes who it is into the file; a
//! waiting run shows that, and names it when it gives up.

use std::sync::Arc;
use std::time::Duration;

use crate::events::Failure;
use crate::transport::{ConnectionKind, Connector, Held};

/// Where the lock lives on every ssh host (tmpfs: gone at reboot, like its holders). A
/// local host's lock is `apply.lock` in its state directory (`KPROV_RUN_DIR`, see
/// [`crate::transport::LocalConnection`]): several local hosts of one machine each have
/// their own, and a run as non-root needs no `/run`.
pub const LOCK_PATH: &str = "/run/kprov/apply.lock";

/// Default wait for another run's lock.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(60);

/// Without `release` on stdin, the stdin closed because kprov died (SIGKILL, a crash):
/// its commands still running on this connection are ended before the lock is let go,
/// so the next run never works beside them.
/// A local host's script ends its own commands' process groups instead (kprov's own
/// interrupt handling); the ssh one, run here, would look for an sshd ancestor of kprov.
fn script(kind: ConnectionKind) -> String {
    match kind {
        ConnectionKind::Ssh => format!("{SCRIPT}{}", crate::transport::live::KILL_SCRIPT),
        ConnectionKind::Local => SCRIPT.to_string(),
    }
}

/// `$1` wait in seconds, `$2`… the holder's pid, control machine, user and run id.
/// Prints `locked`, or `busy`/`timeout` with the holder's record, or `noflock`. While it
/// holds the lock, a heartbeat on stderr (discarded by kprov) makes the host's sshd notice
/// a connection whose client vanished (network gone), so that lock ends too.
const SCRIPT: &str = r#"d=${KPROV_RUN_DIR:-/run/kprov}; f=$d/apply.lock
command -v flock >/dev/null 2>&1 || { echo noflock; exit 0; }
umask 077
mkdir -p "$d" 2>/dev/null
( : >>"$f" ) 2>/dev/null || { echo noopen; exit 0; }
exec 9>>"$f"
holder() { echo "$1"; head -n 8 "$f" 2>/dev/null; echo end; }
if ! flock -n 9; then
  holder busy
  flock -w "$1" 9 || { holder timeout; exit 0; }
fi
printf 'pid=%s\nhost=%s\nuser=%s\nrun=%s\nsince=%s\n' "$2" "$3" "$4" "$5" "$(date -u '+%Y-%m-%d %H:%M:%S UTC')" >"$f"
echo locked
( exec 9>&- >&2; while sleep 10; do echo alive || exit 0; done ) &
beat=$!
while IFS= read -r line; do [ "$line" = release ] && { kill $beat 2>/dev/null; exit 0; }; done
kill $beat 2>/dev/null
"#;

/// Takes the host's run lock, waiting up to `wait` for another run to release it.
/// The lock is held until [`Held::release`] (or until this process ends).
pub(super) async fn acquire(
    conn: &Arc<dyn Connector>,
    wait: Duration,
    run_id: &str,
) -> Result<Held, Failure> {
    let host = conn.target().name.clone();
    let secs = wait.as_secs().to_string();
    let me = Me::current();
    let args = [
        secs.as_str(),
        &me.pid,
        &me.machine,
        &me.user,
        &clean(run_id),
    ];
    let kind = conn.target().kind;
    let script = script(kind);
    let path = match kind {
        ConnectionKind::Ssh => LOCK_PATH.to_string(),
        ConnectionKind::Local => "apply.lock in the host's state directory".to_string(),
    };
    let mut held = conn
        .clone()
        .hold(&script, &args)
        .await
        .map_err(|e| Failure {
            message: format!("taking the run lock: {}: {}", e.kind, e.detail),
            hint: Some(e.hint.clone()),
            ..Failure::default()
        })?;
    // Connecting is done: the first answer comes at once, the last after `wait`.
    let answer = Duration::from_secs(30);
    let mut first = true;
    loop {
        let limit = if first { answer } else { wait + answer };
        first = false;
        match held.line(limit).await.as_deref() {
            Some("locked") => return Ok(held),
            Some("busy") => {
                let holder = read_holder(&mut held).await;
                tracing::warn!(
                    "{host}: waiting up to {} s for the run lock, held by {holder}",
                    wait.as_secs()
                );
            }
            Some("timeout") => {
                let holder = read_holder(&mut held).await;
                held.release().await;
                return Err(Failure {
                    message: format!("locked by {holder}; waited {} s for {path}", wait.as_secs()),
                    hint: Some(
                        "another kprov apply is working on this host: wait for it to finish \
                         and run again, or give it longer with --lock-timeout SECONDS (a lock \
                         whose kprov has ended, even by SIGKILL, is free at once)"
                            .into(),
                    ),
                    ..Failure::default()
                });
            }
            Some("noflock") => {
                held.release().await;
                return Err(Failure {
                    message: "cannot take the run lock: `flock` is not installed".into(),
                    hint: Some("install util-linux (it provides flock) on this host".into()),
                    ..Failure::default()
                });
            }
            Some("noopen") => {
                held.release().await;
                return Err(Failure {
                    message: format!("cannot take the run lock: cannot open {path}"),
                    hint: Some(match kind {
                        ConnectionKind::Ssh => {
                            "kprov needs root on the host (connect as root or set `become`)".into()
                        }
                        ConnectionKind::Local => "set the host's `kprov_state_dir` to a \
                             directory this user may write, or run kprov as root"
                            .into(),
                    }),
                    ..Failure::default()
                });
            }
            other => {
                held.release().await;
                // A plain command says why (sudo missing or asking for a password, …).
                if let Err(e) = conn.run("true", Some(Duration::from_secs(30))).await {
                    return Err(Failure {
                        message: format!("cannot take the run lock: {}: {}", e.kind, e.detail),
                        hint: Some(e.hint.clone()),
                        ..Failure::default()
                    });
                }
                let what = match other {
                    Some(line) => format!("unexpected answer `{}`", clean(line)),
                    None => "no answer".into(),
                };
                return Err(Failure {
                    message: format!("cannot take the run lock: {what}"),
                    hint: Some("check that the host is up and run again (-v shows more)".into()),
                    ..Failure::default()
                });
            }
        }
    }
}

/// Reads a holder record up to its `end` line and describes it: `kprov pid 1234 on
/// laptop (root) since 2026-12-03 22:31:05 UTC`.
async fn read_holder(held: &mut Held) -> String {
    let mut lines = Vec::new();
    while let Some(line) = held.line(Duration::from_secs(10)).await {
        if line == "end" {
            break;
        }
        lines.push(line);
    }
    describe(&lines)
}

/// A holder record (`key=value` lines) in words.
fn describe(lines: &[String]) -> String {
    let get = |key: &str| {
        lines
            .iter()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .map(clean)
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "?".into())
    };
    if lines.is_empty() {
        return "another kprov run (it has not written its name yet)".into();
    }
    format!(
        "kprov pid {} on {} ({}) since {}",
        get("pid"),
        get("host"),
        get("user"),
        get("since")
    )
}

/// Printable text only, at most 64 characters (hostnames and user names are shorter).
fn clean(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(64).collect()
}

/// Who takes the lock: this process on this machine.
struct Me {
    pid: String,
    machine: String,
    user: String,
}

impl Me {
    fn current() -> Me {
        let machine = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .or_else(|_| std::fs::read_to_string("/etc/hostname"))
            .map(|h| h.trim().to_string())
            .unwrap_or_default();
        let user = std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .unwrap_or_else(|_| uid_name());
        Me {
            pid: std::process::id().to_string(),
            machine: clean(&machine),
            user: clean(&user),
        }
    }
}

/// The user name of this process's uid from /etc/passwd, else `uid N`.
fn uid_name() -> String {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(0);
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|text| {
            text.lines().find_map(|l| {
                let mut f = l.split(':');
                let name = f.next()?;
                (f.nth(1)? == uid.to_string()).then(|| name.to_string())
            })
        })
        .unwrap_or_else(|| format!("uid {uid}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_the_holder_in_words_and_strips_control_characters() {
        let lines: Vec<String> = [
            "pid=1234",
            "host=laptop\u{1b}[2J",
            "user=root",
            "run=x",
            "since=2026-12-03 22:31:05 UTC",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            describe(&lines),
            "kprov pid 1234 on laptop[2J (root) since 2026-12-03 22:31:05 UTC"
        );
        assert!(describe(&[]).contains("another kprov run"));
        assert_eq!(describe(&["pid=7".into()]), "kprov pid 7 on ? (?) since ?");
    }

    #[test]
    fn the_script_is_plain_posix_sh() {
        let out = std::process::Command::new("sh")
            .args(["-n", "-c", SCRIPT])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }
}
