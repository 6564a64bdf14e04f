//! `kprov`: declarative, agentless provisioning of Kubernetes clusters over SSH.

mod cli;
mod color;
mod commands;
mod companions;
mod content;
mod exit;
mod hosts;
mod interrupt;
mod output;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

use cli::Cli;

fn main() -> ExitCode {
    let cli = match parse() {
        Ok(cli) => cli,
        Err(err) => return exit::usage(&err).into(),
    };
    color::init(cli.global.color);
    init_tracing(cli.global.verbose, cli.global.quiet);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return exit::Exit::FAILED.into();
        }
    };
    let code = match runtime.block_on(commands::run(cli)) {
        Ok(code) => code,
        Err(err) => exit::report(&err),
    };
    // An interrupted run leaves its engine task behind: it is not waited for.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    code.into()
}

/// Parses the command line; clap's help and errors follow `--color` (read first) too.
fn parse() -> Result<Cli, clap::Error> {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let choice = match color::from_args(&args) {
        color::ColorChoice::Auto => clap::ColorChoice::Auto,
        color::ColorChoice::Always => clap::ColorChoice::Always,
        color::ColorChoice::Never => clap::ColorChoice::Never,
    };
    let mut command = Cli::command().color(choice);
    let mut matches = command.try_get_matches_from_mut(args)?;
    let mut cli = Cli::from_arg_matches_mut(&mut matches).map_err(|e| e.format(&mut command))?;
    cli.hoist_scope();
    Ok(cli)
}

/// Logs go to stderr; `-v` raises the level, `-q` keeps only errors, `RUST_LOG` overrides
/// (at the operator's own risk for `kube_client`, whose logs may hold object contents).
fn init_tracing(verbose: u8, quiet: bool) {
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        _ => "trace",
    };
    // The Kubernetes client logs response bodies (a Secret's data among them): never shown.
    let directives = format!("{level},kube_client=off,hyper=warn,hyper_util=warn,rustls=warn");
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(directives));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(color::enabled(color::Stream::Stderr))
        .with_target(false)
        .init();
}
