//! One file per command; [`run`] dispatches.

mod facts;
mod lab;
mod schema;
mod validate;

use std::process::ExitCode;

use clap::CommandFactory;

use crate::cli::{Cli, Command};

/// Runs the command the user asked for and returns the process exit code.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let global = cli.global;
    match cli.command {
        Command::Facts(args) => facts::run(&args, &global).await,
        Command::Validate(args) => validate::run(&args, &global).await,
        Command::Schema { kind } => schema::run(kind),
        Command::Lab(command) => lab::run(command, &global).await,
        Command::Apply(_) | Command::Plan(_) => anyhow::bail!(
            "`apply` and `plan` need the task engine, which is not built yet (issue 3); \
             `kprov validate` and `kprov facts` work today"
        ),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "kprov", &mut std::io::stdout());
            Ok(crate::exit::OK)
        }
    }
}
