//! Exit codes (stable, for CI) and how a failed command is reported.

use std::process::ExitCode;

use kprov_engine::diagnostic::Diagnostics;

/// Everything went as asked.
pub const OK: ExitCode = ExitCode::SUCCESS;
/// A task, host or command failed.
pub const FAILED: ExitCode = ExitCode::from_u8(1);
/// `plan --detailed-exitcode`: there are changes to apply.
#[allow(dead_code)] // used by `plan` once the engine lands
pub const CHANGES: ExitCode = ExitCode::from_u8(2);
/// The spec or inventory is invalid; nothing was changed on any host.
pub const INVALID: ExitCode = ExitCode::from_u8(3);
/// At least one host could not be reached (the others were worked on).
pub const UNREACHABLE: ExitCode = ExitCode::from_u8(4);

/// Prints a command's error on stderr and chooses its exit code.
pub fn report(err: &anyhow::Error) -> ExitCode {
    if let Some(diags) = err.downcast_ref::<Diagnostics>() {
        eprintln!("{diags}");
        eprintln!(
            "{} problem{} found; nothing was changed on any host.",
            diags.len(),
            if diags.len() == 1 { "" } else { "s" }
        );
        return INVALID;
    }
    eprintln!("error: {err:#}");
    FAILED
}
