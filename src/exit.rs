//! Exit codes (stable, for CI) and how a failed command is reported.

use std::process::ExitCode;

use kprov_engine::diagnostic::Diagnostics;

use crate::color::{Paint, Stream};

/// A process exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit(pub u8);

impl Exit {
    /// Everything went as asked.
    pub const OK: Exit = Exit(0);
    /// A task, host or command failed.
    pub const FAILED: Exit = Exit(1);
    /// `plan --detailed-exitcode`: there are changes to apply.
    pub const CHANGES: Exit = Exit(2);
    /// The spec, inventory or playbook is invalid; nothing was changed on any host.
    pub const INVALID: Exit = Exit(3);
    /// At least one host could not be reached (the others were worked on).
    pub const UNREACHABLE: Exit = Exit(4);
    /// Another kprov apply held a host's lock until `--lock-timeout`; nothing was done on
    /// that host (the others were worked on).
    pub const LOCKED: Exit = Exit(5);
    /// A saved plan cannot be applied as made: its inputs changed, or hosts' state drifted
    /// since (those hosts were refused; the others were worked on).
    pub const DRIFT: Exit = Exit(6);
    /// The command line is wrong (unknown flag, missing argument): `EX_USAGE`.
    pub const USAGE: Exit = Exit(64);
    /// Interrupted (Ctrl-C or SIGTERM): 128 + SIGINT, as shells report it.
    pub const INTERRUPTED: Exit = Exit(130);
}

/// Prints a command-line parse error (or the help/version asked for) and chooses the exit
/// code: 0 for `--help`/`--version`, [`Exit::USAGE`] otherwise — never 2, which means
/// "changes pending" under `plan --detailed-exitcode`.
pub fn usage(err: &clap::Error) -> Exit {
    use clap::error::ErrorKind;
    let _ = err.print();
    match err.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => Exit::OK,
        _ => Exit::USAGE,
    }
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(e.0)
    }
}

/// Input that cannot run as given (a task cycle, …); nothing was changed on any host.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

/// A command line naming something that does not exist (e.g. an unknown module); the
/// message says what would be right. Exits [`Exit::USAGE`].
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Usage(pub String);

/// A saved plan that cannot be applied as made (its inputs or kprov changed); nothing was
/// changed on any host. Exits [`Exit::DRIFT`].
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Stale(pub String);

/// Prints a command's error on stderr and chooses its exit code.
pub fn report(err: &anyhow::Error) -> Exit {
    let paint = Paint::for_stream(Stream::Stderr);
    let error = paint.red("error:");
    if let Some(invalid) = err.downcast_ref::<Invalid>() {
        eprintln!("{error} {invalid}\nnothing was changed on any host.");
        return Exit::INVALID;
    }
    if let Some(stale) = err.downcast_ref::<Stale>() {
        eprintln!("{error} {stale}\nnothing was changed on any host.");
        return Exit::DRIFT;
    }
    if let Some(usage) = err.downcast_ref::<Usage>() {
        eprintln!("{error} {usage}");
        return Exit::USAGE;
    }
    if let Some(diags) = err.downcast_ref::<Diagnostics>() {
        eprintln!("{diags}");
        let summary = format!(
            "{} problem{} found",
            diags.len(),
            if diags.len() == 1 { "" } else { "s" }
        );
        eprintln!("{}; nothing was changed on any host.", paint.red(&summary));
        return Exit::INVALID;
    }
    eprintln!("{error} {err:#}");
    Exit::FAILED
}
