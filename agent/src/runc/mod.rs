//! Driving the `runc` binary: start, kill, delete, state, exec, update.
//! (`runc create` is run by the per-container monitor, see `crate::monitor`.)

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

/// Most output ExecSync returns per stream (CRI caps it at 16 MiB).
pub const EXEC_OUTPUT_CAP: u64 = 16 * 1024 * 1024;

/// A failed runc invocation.
#[derive(Debug, thiserror::Error)]
#[error("runc {op}: {message}")]
pub struct RuncError {
    pub op: String,
    pub message: String,
}

/// The output of a finished `runc exec`.
#[derive(Debug, Default)]
pub struct ExecOutput {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub exit_code: i32,
    pub timed_out: bool,
}

/// A runc binary with its state root and cgroup manager choice.
#[derive(Debug, Clone)]
pub struct Runc {
    pub bin: PathBuf,
    pub root: PathBuf,
    pub systemd_cgroup: bool,
}

impl Runc {
    /// The global arguments every invocation starts with.
    pub fn global_args(&self) -> Vec<String> {
        let mut v = vec!["--root".to_string(), self.root.display().to_string()];
        if self.systemd_cgroup {
            v.push("--systemd-cgroup".into());
        }
        v
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new(&self.bin);
        c.args(self.global_args());
        c.stdin(Stdio::null());
        c.kill_on_drop(false);
        c
    }

    async fn run(&self, op: &str, args: &[&str]) -> Result<String, RuncError> {
        let out = self
            .cmd()
            .args(args)
            .output()
            .await
            .map_err(|e| RuncError {
                op: op.into(),
                message: format!("cannot run {}: {e}", self.bin.display()),
            })?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(RuncError {
                op: op.into(),
                message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            })
        }
    }

    /// `runc start ID`.
    pub async fn start(&self, id: &str) -> Result<(), RuncError> {
        self.run("start", &["start", id]).await.map(|_| ())
    }

    /// `runc kill [--all] ID SIG`; a container that is gone or stopped is not an error.
    pub async fn kill(&self, id: &str, signal: &str, all: bool) -> Result<(), RuncError> {
        let mut args = vec!["kill"];
        if all {
            args.push("--all");
        }
        args.extend([id, signal]);
        match self.run("kill", &args).await {
            Err(e) if is_gone(&e.message) => Ok(()),
            r => r.map(|_| ()),
        }
    }

    /// `runc delete --force ID`; a missing container is not an error.
    pub async fn delete(&self, id: &str) -> Result<(), RuncError> {
        match self.run("delete", &["delete", "--force", id]).await {
            Err(e) if is_gone(&e.message) => Ok(()),
            r => r.map(|_| ()),
        }
    }

    /// `runc state ID` → (status, pid); `None` when runc does not know it.
    pub async fn state(&self, id: &str) -> Result<Option<(String, i32)>, RuncError> {
        match self.run("state", &["state", id]).await {
            Ok(out) => {
                let v: serde_json::Value = serde_json::from_str(&out).map_err(|e| RuncError {
                    op: "state".into(),
                    message: e.to_string(),
                })?;
                Ok(Some((
                    v["status"].as_str().unwrap_or_default().to_string(),
                    v["pid"].as_i64().unwrap_or(0) as i32,
                )))
            }
            Err(e) if is_gone(&e.message) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `runc update -r - ID` with the OCI LinuxResources JSON on stdin.
    pub async fn update(&self, id: &str, resources: &serde_json::Value) -> Result<(), RuncError> {
        let err = |message: String| RuncError {
            op: "update".into(),
            message,
        };
        let mut child = self
            .cmd()
            .args(["update", "-r", "-", id])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| err(e.to_string()))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(resources.to_string().as_bytes())
                .await
                .map_err(|e| err(e.to_string()))?;
        }
        let out = child
            .wait_with_output()
            .await
            .map_err(|e| err(e.to_string()))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(err(String::from_utf8_lossy(&out.stderr).trim().to_string()))
        }
    }

    /// Runs `cmd` in the container, capturing output; kills it after `timeout`.
    pub async fn exec(
        &self,
        id: &str,
        cmd: &[String],
        timeout: Option<Duration>,
        pid_file: &Path,
    ) -> Result<ExecOutput, RuncError> {
        let err = |message: String| RuncError {
            op: "exec".into(),
            message,
        };
        let _ = std::fs::remove_file(pid_file);
        let mut child = self
            .cmd()
            .arg("exec")
            .arg("--pid-file")
            .arg(pid_file)
            .arg(id)
            .args(cmd)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| err(e.to_string()))?;
        let mut so = child.stdout.take().ok_or_else(|| err("no stdout".into()))?;
        let mut se = child.stderr.take().ok_or_else(|| err("no stderr".into()))?;
        let read_out = async move {
            let mut v = Vec::new();
            let _ = (&mut so).take(EXEC_OUTPUT_CAP).read_to_end(&mut v).await;
            // Keep draining past the cap so the process never blocks on a full pipe.
            let _ = tokio::io::copy(&mut so, &mut tokio::io::sink()).await;
            v
        };
        let read_err = async move {
            let mut v = Vec::new();
            let _ = (&mut se).take(EXEC_OUTPUT_CAP).read_to_end(&mut v).await;
            let _ = tokio::io::copy(&mut se, &mut tokio::io::sink()).await;
            v
        };
        let all = async {
            let (o, e, st) = tokio::join!(read_out, read_err, child.wait());
            (o, e, st)
        };
        let (stdout, stderr, status, timed_out) = match timeout {
            Some(t) => match tokio::time::timeout(t, all).await {
                Ok((o, e, st)) => (o, e, st, false),
                Err(_) => {
                    // Kill the exec'd process, not runc: runc must stay to reap it,
                    // or the orphan (re-parented to the agent) would keep the
                    // container's PID namespace from ever ending.
                    let killed = std::fs::read_to_string(pid_file)
                        .ok()
                        .and_then(|p| p.trim().parse::<i32>().ok())
                        .map(|pid| {
                            nix::sys::signal::kill(
                                nix::unistd::Pid::from_raw(pid),
                                nix::sys::signal::Signal::SIGKILL,
                            )
                            .is_ok()
                        })
                        .unwrap_or(false);
                    if !killed {
                        let _ = child.start_kill();
                    }
                    let st = match tokio::time::timeout(Duration::from_secs(10), child.wait()).await
                    {
                        Ok(st) => st,
                        Err(_) => {
                            let _ = child.start_kill();
                            child.wait().await
                        }
                    };
                    (Vec::new(), Vec::new(), st, true)
                }
            },
            None => {
                let (o, e, st) = all.await;
                (o, e, st, false)
            }
        };
        let _ = std::fs::remove_file(pid_file);
        let status = status.map_err(|e| err(e.to_string()))?;
        Ok(ExecOutput {
            stdout,
            stderr,
            exit_code: status.code().unwrap_or(137),
            timed_out,
        })
    }
}

fn is_gone(msg: &str) -> bool {
    msg.contains("does not exist")
        || msg.contains("not running")
        || msg.contains("container not running")
}
