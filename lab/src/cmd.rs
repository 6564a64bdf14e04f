//! Running external tools (`ip`, `debootstrap`, `ssh-keygen` …) with errors that say what failed.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use crate::error::LabError;

/// A command line ready to run, with the hint shown when it fails.
pub(crate) struct Cmd {
    argv: Vec<String>,
    envs: Vec<(String, String)>,
    dir: Option<std::path::PathBuf>,
    hint: String,
}

impl Cmd {
    /// `program` with its arguments.
    pub(crate) fn new<I, S>(argv: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Cmd {
            argv: argv.into_iter().map(Into::into).collect(),
            envs: Vec::new(),
            dir: None,
            hint: "check the message above and the machine's state".to_string(),
        }
    }

    /// What to tell the user when the command fails.
    pub(crate) fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = hint.into();
        self
    }

    /// Adds an environment variable.
    pub(crate) fn env(mut self, key: &str, value: &str) -> Self {
        self.envs.push((key.to_string(), value.to_string()));
        self
    }

    fn command(&self) -> Command {
        let mut command = Command::new(&self.argv[0]);
        command.args(&self.argv[1..]);
        for (k, v) in &self.envs {
            command.env(k, v);
        }
        if let Some(dir) = &self.dir {
            command.current_dir(dir);
        }
        command
    }

    fn display(&self) -> String {
        shell_words::join(&self.argv)
    }

    fn output(&self) -> Result<Output, LabError> {
        tracing::debug!(command = %self.display(), "run");
        self.command()
            .stdin(Stdio::null())
            .output()
            .map_err(|e| LabError::Command {
                command: self.display(),
                status: format!("could not start: {e}"),
                stderr: String::new(),
                hint: self.hint.clone(),
            })
    }

    /// Runs to completion; fails unless the exit status is 0. Returns stdout.
    pub(crate) fn run(&self) -> Result<String, LabError> {
        let out = self.output()?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(LabError::Command {
                command: self.display(),
                status: out.status.to_string(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
                hint: self.hint.clone(),
            })
        }
    }

    /// Like [`Cmd::run`] with `dir` as working directory.
    pub(crate) fn run_in(mut self, dir: &Path) -> Result<String, LabError> {
        self.dir = Some(dir.to_path_buf());
        self.run()
    }

    /// Runs to completion with stdout and stderr appended to `log`; fails unless status is 0.
    pub(crate) fn run_logged(&self, log: &Path) -> Result<(), LabError> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(LabError::io("open log file", log))?;
        let err = file
            .try_clone()
            .map_err(LabError::io("open log file", log))?;
        tracing::debug!(command = %self.display(), log = %log.display(), "run");
        let status = self
            .command()
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(err)
            .status()
            .map_err(|e| LabError::Command {
                command: self.display(),
                status: format!("could not start: {e}"),
                stderr: String::new(),
                hint: self.hint.clone(),
            })?;
        if status.success() {
            Ok(())
        } else {
            let tail = std::fs::read_to_string(log).unwrap_or_default();
            Err(LabError::Command {
                command: self.display(),
                status: status.to_string(),
                stderr: tail,
                hint: format!("{} (full log: {})", self.hint, log.display()),
            })
        }
    }
}

/// Starts `argv` detached from us (own session, re-parented to init) with its output
/// appended to `log`, and returns its pid.
pub(crate) fn spawn_detached(argv: &[String], log: &Path) -> Result<u32, LabError> {
    // A short-lived `sh` starts the program in the background and prints its pid; once `sh`
    // exits the program is an orphan, so no process of ours has to reap it later.
    let mut full = vec![
        "setsid".to_string(),
        "sh".to_string(),
        "-c".to_string(),
        "log=$1; shift; \"$@\" >>\"$log\" 2>&1 </dev/null & echo $!".to_string(),
        "kprov-lab-spawn".to_string(),
        log.display().to_string(),
    ];
    full.extend(argv.iter().cloned());
    let out = Cmd::new(full).hint("could not start a lab process").run()?;
    out.trim().parse::<u32>().map_err(|e| LabError::Command {
        command: shell_words::join(argv),
        status: format!("no pid reported ({e})"),
        stderr: out.clone(),
        hint: "could not start a lab process".to_string(),
    })
}

/// Whether an executable named `name` is on PATH.
pub(crate) fn have_tool(name: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path).any(|dir| {
        let candidate = dir.join(name);
        candidate.is_file()
    })
}
