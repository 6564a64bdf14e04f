//! `kprov plan` and `kprov apply`: load and validate everything first (nothing changes
//! on any host when input is bad), then run the playbook and render its events.

use crate::exit::Exit;

use anyhow::Context;
use kprov_engine::events::Mode;
use kprov_engine::run::{RunError, RunRequest, TagFilter};
use kprov_engine::transport::PoolOptions;
use kprov_engine::{events, playbook, spec};

use crate::cli::{
    GlobalArgs, InventoryArgs, LimitArg, OutputArg, OutputFormat, PlaybookArgs, ResetArgs,
};
use crate::output::Renderer;

pub async fn run(
    args: &PlaybookArgs,
    mode: Mode,
    detailed: bool,
    global: &GlobalArgs,
) -> anyhow::Result<Exit> {
    let playbook = playbook::load(&args.playbook)?;
    let inventory = crate::hosts::load(&args.inventory.inventory).await?;
    let spec = args.spec.as_deref().map(spec::load).transpose()?;
    let tags = TagFilter {
        only: args.tags.clone(),
        skip: args.skip_tags.clone(),
    };
    let checked = super::input::check(&super::input::Input {
        playbook: Some(&playbook),
        inventory: &inventory,
        spec: spec.as_ref(),
        extra: &args.extra_vars,
        limit: global.limit.as_deref(),
        tags: &tags,
    })?;
    let (sink, mut events_rx) = tokio::sync::mpsc::unbounded_channel();
    let request = RunRequest {
        mode,
        playbook,
        inventory,
        limit: global.limit.clone(),
        spec: checked.spec_vars,
        extra: checked.extra,
        tags,
        fail_fast: args.fail_fast,
        pool: PoolOptions {
            concurrency: args.forks,
            persist_secs: args.persist,
            ..PoolOptions::default()
        },
        lock_wait: std::time::Duration::from_secs(args.lock_timeout),
        sink,
        run_id: events::new_run_id(),
    };
    let mut renderer = Renderer::new(mode, global.output == OutputFormat::Json, global.quiet);
    let mut signals = crate::interrupt::listen();
    let runner = tokio::spawn(kprov_engine::run::run(request));
    loop {
        tokio::select! {
            event = events_rx.recv() => match event {
                Some(event) => renderer.event(&event),
                None => break,
            },
            Some(signal) = signals.recv() => {
                return Ok(crate::interrupt::handle(signal, &mut signals, &mut events_rx, &mut renderer).await);
            }
        }
    }
    let summary = runner
        .await
        .context("the run task failed")?
        .map_err(|e| match e {
            RunError::Input(d) => anyhow::Error::from(d),
            RunError::Graph(g) => anyhow::Error::from(crate::exit::Invalid(g.to_string())),
        })?;
    renderer.finish();
    // A host that failed otherwise outranks one that was unreachable, which outranks one
    // that was locked (locked hosts count as failed too).
    Ok(if summary.failed > summary.locked {
        Exit::FAILED
    } else if summary.unreachable > 0 {
        Exit::UNREACHABLE
    } else if summary.locked > 0 {
        Exit::LOCKED
    } else if detailed && (summary.changed > 0 || summary.unknown > 0) {
        Exit::CHANGES
    } else {
        Exit::OK
    })
}

/// `kprov reset`: the bundled reset playbook; a plan unless `--yes`.
pub async fn reset(args: &ResetArgs, global: &GlobalArgs) -> anyhow::Result<Exit> {
    let playbook = crate::content::find("playbooks/reset.yaml")?;
    let run_args = PlaybookArgs {
        playbook,
        inventory: InventoryArgs {
            inventory: args.inventory.inventory.clone(),
        },
        limit: LimitArg {
            limit: global.limit.clone(),
        },
        output: OutputArg {
            output: global.output,
        },
        spec: args.spec.clone(),
        extra_vars: Vec::new(),
        tags: Vec::new(),
        skip_tags: Vec::new(),
        fail_fast: false,
        forks: None,
        persist: 0,
        lock_timeout: kprov_engine::run::DEFAULT_LOCK_WAIT.as_secs(),
    };
    if args.yes {
        return run(&run_args, Mode::Apply, false, global).await;
    }
    let code = run(&run_args, Mode::Plan, true, global).await?;
    if code == Exit::CHANGES && !global.quiet {
        eprintln!("This is what reset would remove. Run again with --yes to reset.");
    }
    Ok(code)
}
