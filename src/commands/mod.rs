//! One file per command; [`run`] dispatches.

mod facts;
mod input;
mod inventory;
mod lab;
mod modules;
mod run;
mod saved_plan;
mod schema;
mod validate;

use crate::exit::Exit;

use clap::CommandFactory;
use kprov_engine::events::Mode;

use crate::cli::{Cli, Command};

/// Runs the command the user asked for and returns the process exit code.
pub async fn run(cli: Cli) -> anyhow::Result<Exit> {
    let global = cli.global;
    match cli.command {
        Command::Facts(args) => facts::run(&args, &global).await,
        Command::Validate(args) => validate::run(&args, &global).await,
        Command::Inventory(args) => inventory::run(&args, &global),
        Command::Schema { kind } => schema::run(kind),
        Command::Modules(args) => modules::run(&args, &global),
        Command::Lab(command) => lab::run(command, &global).await,
        Command::Apply(args) => {
            crate::companions::ensure_built()?;
            run::run(&args, Mode::Apply, false, None, &global).await
        }
        Command::Reset(args) => run::reset(&args, &global).await,
        Command::Plan(args) => {
            crate::companions::ensure_built()?;
            let out = args.out.as_deref();
            run::run(&args.run, Mode::Plan, args.detailed_exitcode, out, &global).await
        }
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "kprov", &mut std::io::stdout());
            Ok(Exit::OK)
        }
    }
}
