//! Every ssh master this process opened (and every local script's process group still
//! running), so an interrupt can stop new remote work, end the
//! remote commands still running (their processes on the host, not just the ssh client)
//! and close the masters (none outlives the run unless connections persist).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use openssh::{Session, Stdio};

/// One registered master connection.
#[derive(Debug, Clone)]
struct Master {
    ctl: PathBuf,
    host: String,
    become_root: bool,
    persist: bool,
}

static MASTERS: Mutex<Vec<Master>> = Mutex::new(Vec::new());
static INTERRUPTED: AtomicBool = AtomicBool::new(false);
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);
/// Process groups of local hosts' scripts still running.
static LOCAL_GROUPS: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// A local script's process group started (ended by [`end_all`] if still running).
pub(super) fn local_started(pgid: u32) {
    LOCAL_GROUPS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(pgid);
}

/// A local script's process group was ended or waited for.
pub(super) fn local_ended(pgid: u32) {
    LOCAL_GROUPS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .retain(|g| *g != pgid);
}

pub(super) fn register(ctl: &Path, host: &str, become_root: bool, persist: bool) {
    MASTERS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(Master {
            ctl: ctl.to_path_buf(),
            host: host.to_string(),
            become_root,
            persist,
        });
}

pub(super) fn unregister(ctl: &Path) {
    MASTERS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .retain(|m| m.ctl != ctl);
}

/// True once [`interrupt`] was called: no new remote command starts.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Counts a remote command while it runs.
pub(super) struct InFlight;

impl InFlight {
    pub(super) fn start() -> Self {
        IN_FLIGHT.fetch_add(1, Ordering::SeqCst);
        InFlight
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Stops starting remote commands (those asked for from now on fail as interrupted).
pub fn interrupt() {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// Waits until no remote command runs (polls; cancel it with a timeout).
pub async fn idle() {
    while IN_FLIGHT.load(Ordering::SeqCst) > 0 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Ends what still runs on every host (TERM, then KILL after a second) and closes every
/// master that does not persist. Returns the hosts whose leftovers could not be ended.
pub async fn end_all() -> Vec<String> {
    let groups = std::mem::take(&mut *LOCAL_GROUPS.lock().unwrap_or_else(PoisonError::into_inner));
    if !groups.is_empty() {
        super::local::signal_groups(&groups, "TERM");
        tokio::time::sleep(Duration::from_secs(1)).await;
        super::local::signal_groups(&groups, "KILL");
    }
    let masters = std::mem::take(&mut *MASTERS.lock().unwrap_or_else(PoisonError::into_inner));
    let mut set = tokio::task::JoinSet::new();
    for master in masters {
        set.spawn(async move {
            let session = Session::resume_mux(master.ctl.clone().into_boxed_path(), None);
            let ended = tokio::time::timeout(Duration::from_secs(5), end_remote(&session, &master))
                .await
                .is_ok_and(|r| r);
            if !master.persist {
                if let Err(err) = session.close().await {
                    tracing::debug!(host = %master.host, %err, "closing ssh master");
                }
            } else {
                let _ = session.detach();
            }
            (!ended).then_some(master.host)
        });
    }
    let mut failed = Vec::new();
    while let Some(joined) = set.join_next().await {
        if let Ok(Some(host)) = joined {
            failed.push(host);
        }
    }
    failed
}

/// Kills every process of the host's sshd connection but this command's own: the remote
/// scripts kprov started through this master, with all their children.
async fn end_remote(session: &Session, master: &Master) -> bool {
    let mut command = if master.become_root {
        let mut c = session.command("sudo");
        c.args(["-n", "--", "sh", "-c", KILL_SCRIPT]);
        c
    } else {
        let mut c = session.command("sh");
        c.args(["-c", KILL_SCRIPT]);
        c
    };
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    match command.status().await {
        Ok(status) => status.success(),
        Err(err) => {
            tracing::debug!(host = %master.host, %err, "ending remote commands");
            false
        }
    }
}

/// Finds this shell's sshd connection process (nearest `sshd*` ancestor) and signals every
/// descendant of it that is not this shell, one of its ancestors or its children.
pub(crate) const KILL_SCRIPT: &str = r#"
me=$$; chain=" $me "; p=$me; top=
while [ "$p" -gt 1 ]; do
  p=$(awk '/^PPid:/ {print $2}' /proc/$p/status 2>/dev/null) || break
  [ -n "$p" ] || break
  chain="$chain$p "
  case "$(cat /proc/$p/comm 2>/dev/null)" in sshd*) top=$p; break;; esac
done
[ -n "$top" ] || exit 1
victims() {
  for f in /proc/[0-9]*/status; do
    pid=${f#/proc/}; pid=${pid%/status}
    (while read -r k v; do [ "$k" = PPid: ] && { echo "$pid $v"; break; }; done < "$f") 2>/dev/null
  done |
  awk -v top="$top" -v chain="$chain" '
    { parent[$1] = $2 }
    END {
      for (p in parent) {
        if (index(chain, " " p " ")) continue
        q = parent[p]; ok = 0
        while (q != "" && q > 1) {
          if (q == top) { ok = 1; break }
          if (index(chain, " " q " ")) break
          q = parent[q]
        }
        if (ok) print p
      }
    }'
}
v=$(victims); [ -z "$v" ] && exit 0
kill -TERM $v 2>/dev/null
i=0; while [ $i -lt 10 ]; do v=$(victims); [ -z "$v" ] && exit 0; sleep 0.2; i=$((i + 1)); done
kill -KILL $v 2>/dev/null
exit 0
"#;
