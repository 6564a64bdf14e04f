//! Notifications that survive an interrupted run. A task that changes something and
//! notifies a handler leaves a marker file on the host in the same apply round trip
//! (`/var/lib/kprov/handlers/<id>`); the handler's own successful run removes it. Facts
//! list the markers, so a later run that finds one runs the handler even when nothing
//! changes now: a run killed between a config change and its restart still converges.

use sha2::{Digest, Sha256};

use kprov_modules::quote;

/// Where the markers live, as the scripts name it: `/var/lib/kprov/handlers` on ssh hosts,
/// under a local host's state directory (`KPROV_STATE_DIR`) when its connector sets one.
/// Used inside double quotes; state directories contain no spaces or quotes.
const MARKER_SH: &str = "${KPROV_STATE_DIR:-/var/lib/kprov}/handlers";

/// The marker file name of a handler: a hash, so any handler name is a safe file name.
pub fn marker_id(handler: &str) -> String {
    let digest = Sha256::digest(handler.as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

fn marker_path(handler: &str) -> String {
    format!("\"{MARKER_SH}/{}\"", marker_id(handler))
}

/// Shell that records that `handlers` are due (created atomically, kept until they run).
pub fn mark(handlers: &[String]) -> String {
    if handlers.is_empty() {
        return String::new();
    }
    let mut s = format!("mkdir -p \"{MARKER_SH}\" 2>/dev/null\n");
    for h in handlers {
        // The name inside is for people looking at the host; the file name is the key.
        s.push_str(&format!(
            "printf '%s\\n' {} > {p}.tmp 2>/dev/null && mv -f {p}.tmp {p} 2>/dev/null\n",
            quote(h),
            p = marker_path(h)
        ));
    }
    s
}

/// Write-ahead: shell run before a notifying task's change, creating the markers of
/// `handlers` that are not there yet (their paths in `$kp_ahead`). A run that dies
/// between the change and [`mark`] cannot lose the notification; at worst a handler runs
/// once more than needed. [`unmark_ahead`] takes them back when the task changed nothing.
pub fn mark_ahead(handlers: &[String]) -> String {
    if handlers.is_empty() {
        return String::new();
    }
    let mut s = format!("kp_ahead=\nmkdir -p \"{MARKER_SH}\" 2>/dev/null\n");
    for h in handlers {
        let raw = format!("{MARKER_SH}/{}", marker_id(h));
        s.push_str(&format!(
            "[ -e {p} ] || {{ printf '%s\\n' {} > {p}.tmp 2>/dev/null && mv -f {p}.tmp {p} 2>/dev/null && kp_ahead=\"$kp_ahead {raw}\"; }}\n",
            quote(h),
            p = marker_path(h),
        ));
    }
    s
}

/// Shell that removes the markers [`mark_ahead`] created (the task changed nothing).
/// Marker paths are hex names in a fixed directory: safe to split on spaces.
pub fn unmark_ahead(handlers: &[String]) -> String {
    if handlers.is_empty() {
        return String::new();
    }
    "[ -z \"${kp_ahead:-}\" ] || rm -f $kp_ahead\n".into()
}

/// Shell that removes the markers of `handlers` (they ran).
pub fn clear(handlers: &[String]) -> String {
    if handlers.is_empty() {
        return String::new();
    }
    let paths: Vec<String> = handlers.iter().map(|h| marker_path(h)).collect();
    format!("rm -f {} 2>/dev/null\n", paths.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs for real in a temporary directory standing in for the marker directory.
    #[test]
    fn markers_are_written_and_cleared_with_hostile_names() {
        let dir = tempfile::tempdir().unwrap();
        let names = vec![
            "restart containerd".to_string(),
            "it's $(touch pwned); `x` \n y".to_string(),
        ];
        let run = |script: String| {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(script)
                .env("KPROV_STATE_DIR", dir.path())
                .current_dir(dir.path())
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
        };
        run(mark(&names));
        for n in &names {
            let file = dir.path().join("handlers").join(marker_id(n));
            assert_eq!(std::fs::read_to_string(&file).unwrap(), format!("{n}\n"));
        }
        assert!(!dir.path().join("pwned").exists());
        run(clear(&names[..1]));
        assert!(!dir
            .path()
            .join("handlers")
            .join(marker_id(&names[0]))
            .exists());
        assert!(dir
            .path()
            .join("handlers")
            .join(marker_id(&names[1]))
            .exists());
        assert_eq!(marker_id("a").len(), 16);
        assert_ne!(marker_id("a"), marker_id("b"));
    }

    /// Written before the change, so a death in between leaves the marker; taken back
    /// when the task changed nothing, but never a marker that was there before.
    #[test]
    fn markers_ahead_survive_a_death_and_only_their_own_are_taken_back() {
        let dir = tempfile::tempdir().unwrap();
        let names = vec!["restart containerd".to_string(), "it's `x`".to_string()];
        let run = |script: String| {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(script)
                .env("KPROV_STATE_DIR", dir.path())
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
        };
        let exists = |n: &str| dir.path().join("handlers").join(marker_id(n)).exists();
        // Killed after the change started: both markers are there.
        run(format!("{}exit 0\n", mark_ahead(&names)));
        assert!(exists(&names[0]) && exists(&names[1]));
        // A task that changed nothing takes back only what it wrote ahead.
        run(clear(&names[1..]));
        run(format!("{}{}", mark_ahead(&names), unmark_ahead(&names)));
        assert!(exists(&names[0]), "a marker from before stays");
        assert!(!exists(&names[1]), "its own ahead marker goes");
    }
}
