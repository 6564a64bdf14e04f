//! `kprov lab up|down|status|ssh`: throw-away hosts on this machine.

use crate::exit::Exit;

use anyhow::Context;

use crate::cli::{GlobalArgs, LabCommand, OutputFormat};

pub async fn run(command: LabCommand, global: &GlobalArgs) -> anyhow::Result<Exit> {
    match command {
        LabCommand::Up {
            hosts,
            mirror,
            name,
            ..
        } => {
            let options = kprov_lab::UpOptions {
                name: name.name,
                hosts: usize::from(hosts),
                mirror,
            };
            let status = blocking(move || kprov_lab::up(&options)).await?;
            print_status(&status, global);
            if global.output == OutputFormat::Human {
                println!("{}", status.inventory.display());
            }
        }
        LabCommand::Down { name, .. } => {
            let lab = name.name.clone();
            blocking(move || kprov_lab::down(&lab)).await?;
            if !global.quiet && global.output == OutputFormat::Human {
                eprintln!(
                    "lab `{}` is down; nothing of it is left running.",
                    name.name
                );
            }
        }
        LabCommand::Status { name, .. } => {
            let lab = name.name.clone();
            match blocking(move || kprov_lab::status(&lab)).await? {
                Some(status) => print_status(&status, global),
                None => {
                    if global.output == OutputFormat::Json {
                        println!("null");
                    } else {
                        println!(
                            "lab `{}` is not up (start it with `kprov lab up`).",
                            name.name
                        );
                    }
                }
            }
        }
        LabCommand::Ssh {
            host,
            command,
            name,
        } => {
            let argv = kprov_lab::ssh_argv(&name.name, &host, &command)?;
            let (program, args) = argv.split_first().context("empty ssh command line")?;
            let status = tokio::process::Command::new(program)
                .args(args)
                .status()
                .await
                .with_context(|| format!("running {program}"))?;
            return Ok(Exit(
                status
                    .code()
                    .and_then(|c| u8::try_from(c).ok())
                    .unwrap_or(1),
            ));
        }
    }
    Ok(Exit::OK)
}

/// Lab operations are synchronous (they drive `ip`, `mount`, `debootstrap` …).
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, kprov_lab::LabError> + Send + 'static,
) -> anyhow::Result<T> {
    Ok(tokio::task::spawn_blocking(work)
        .await
        .context("lab task failed")??)
}

fn print_status(status: &kprov_lab::LabStatus, global: &GlobalArgs) {
    if global.output == OutputFormat::Json {
        match serde_json::to_string(status) {
            Ok(json) => println!("{json}"),
            Err(err) => eprintln!("error: {err}"),
        }
        return;
    }
    if global.quiet {
        return;
    }
    eprintln!(
        "lab `{}`: bridge {} ({}), apt repository {}",
        status.name, status.bridge, status.gateway, status.repo_url
    );
    for host in &status.hosts {
        eprintln!(
            "  {:<8} {:<15} {}",
            host.name,
            host.address,
            match (host.running, host.ssh_ready) {
                (true, true) => "running, ssh ready".to_string(),
                (true, false) => "running, ssh not answering".to_string(),
                _ => "stopped".to_string(),
            }
        );
    }
    eprintln!("  inventory: {}", status.inventory.display());
}
