//! `kprov plan` and `kprov apply`: load and validate everything first (nothing changes
//! on any host when input is bad), then run the playbook and render its events.

use std::path::Path;
use std::sync::Arc;

use crate::exit::Exit;

use anyhow::Context;
use kprov_engine::events::Mode;
use kprov_engine::run::saved::{self, PlanBook};
use kprov_engine::run::{Plans, RunError, RunRequest, TagFilter};
use kprov_engine::transport::PoolOptions;
use kprov_engine::{events, playbook, spec};

use super::saved_plan::{self, PlanFile, RunInputs};
use crate::cli::{
    GlobalArgs, LimitArg, OutputArg, OutputFormat, PlaybookArgs, ResetArgs, RunInventoryArgs,
};
use crate::output::Renderer;

pub async fn run(
    args: &PlaybookArgs,
    mode: Mode,
    detailed: bool,
    out: Option<&Path>,
    global: &GlobalArgs,
) -> anyhow::Result<Exit> {
    if mode == Mode::Apply {
        if let Some(plan) = PlanFile::read_if_plan(&args.playbook)? {
            return apply_saved(plan, args, global).await;
        }
    }
    let Some(inventory) = args.inventory.inventory.clone() else {
        return Err(crate::exit::Usage(
            "missing -i INVENTORY (only a plan file written by `kprov plan --out` brings its own)"
                .into(),
        )
        .into());
    };
    let inputs = RunInputs {
        playbook: std::path::absolute(&args.playbook)?,
        inventory: std::path::absolute(inventory)?,
        spec: args.spec.as_deref().map(std::path::absolute).transpose()?,
        limit: global.limit.clone(),
        tags: args.tags.clone(),
        skip_tags: args.skip_tags.clone(),
    };
    let loaded = load(&inputs, args).await?;
    let book = out.map(|_| Arc::new(PlanBook::default()));
    let plans = book.clone().map(Plans::Record).unwrap_or_default();
    let request = loaded.request(mode, global.limit.clone(), plans);
    let summary = match execute(request, mode, global, true).await? {
        Ran::Done(summary) => summary,
        Ran::Interrupted(exit) => return Ok(exit),
    };
    if let (Some(path), Some(book)) = (out, book) {
        let digests = saved_plan::digests(&inputs, &args.extra_vars);
        PlanFile::new(inputs, digests, &book).write(path)?;
        if !global.quiet {
            eprintln!(
                "Plan saved to {}; apply it with: kprov apply {}",
                path.display(),
                path.display()
            );
        }
    }
    Ok(exit_of(&summary, detailed))
}

/// `kprov apply PLAN_FILE`: the plan's inputs must be unchanged; each host is planned
/// again without changing anything, and one whose state drifted since the plan was made
/// is refused (or planned afresh with `--allow-drift`); the others apply the saved scripts.
async fn apply_saved(
    plan: PlanFile,
    args: &PlaybookArgs,
    global: &GlobalArgs,
) -> anyhow::Result<Exit> {
    let given = [
        (args.inventory.inventory.is_some(), "-i"),
        (args.spec.is_some(), "--spec"),
        (global.limit.is_some(), "--limit"),
        (!args.tags.is_empty(), "--tags"),
        (!args.skip_tags.is_empty(), "--skip-tags"),
    ];
    if let Some((_, flag)) = given.iter().find(|(set, _)| *set) {
        return Err(crate::exit::Usage(format!(
            "{flag} cannot be given with a plan file: {} names the run it was made for",
            args.playbook.display()
        ))
        .into());
    }
    let file = args.playbook.display().to_string();
    let digests = saved_plan::digests(&plan.run, &args.extra_vars);
    if let Some(why) = plan.stale_because(&digests) {
        return Err(crate::exit::Stale(format!(
            "the plan {file} cannot be applied: {why}; make a new plan"
        ))
        .into());
    }
    let loaded = load(&plan.run, args).await?;
    // The hosts' state now, planned without changing anything.
    let fresh = Arc::new(PlanBook::default());
    let request = loaded.request(
        Mode::Plan,
        plan.run.limit.clone(),
        Plans::Record(fresh.clone()),
    );
    if let Ran::Interrupted(exit) = execute(request, Mode::Plan, global, false).await? {
        return Ok(exit);
    }
    let saved = PlanBook::from_hosts(plan.hosts.clone());
    let drifted = saved::drift(&saved, &fresh);
    let mut follow = plan.hosts.clone();
    let mut refused = Vec::new();
    for d in &drifted {
        if args.allow_drift {
            follow.remove(&d.host);
            if !global.quiet {
                eprintln!(
                    "{}: planned again (--allow-drift): task '{}': {}",
                    d.host, d.task, d.what
                );
            }
        } else {
            eprintln!(
                "error: {}: refused, nothing done on it: task '{}': {} (plan {file})",
                d.host, d.task, d.what
            );
            refused.push(d.host.clone());
        }
    }
    let selected: Vec<String> = loaded
        .inventory
        .select(plan.run.limit.as_deref())?
        .iter()
        .map(|h| h.name.clone())
        .filter(|n| !refused.contains(n))
        .collect();
    if selected.is_empty() {
        eprintln!(
            "every host of the plan drifted; make a new plan (or apply it with --allow-drift)"
        );
        return Ok(Exit::DRIFT);
    }
    let book = Arc::new(PlanBook::from_hosts(follow));
    let request = loaded.request(Mode::Apply, Some(selected.join(",")), Plans::Follow(book));
    let summary = match execute(request, Mode::Apply, global, true).await? {
        Ran::Done(summary) => summary,
        Ran::Interrupted(exit) => return Ok(exit),
    };
    let exit = exit_of(&summary, false);
    Ok(if exit == Exit::OK && !refused.is_empty() {
        Exit::DRIFT
    } else {
        exit
    })
}

/// Everything a run needs, loaded and validated (nothing changes on any host otherwise).
struct Loaded {
    playbook: playbook::Playbook,
    inventory: kprov_engine::inventory::Inventory,
    checked: super::input::Checked,
    tags: TagFilter,
    fail_fast: bool,
    forks: Option<usize>,
    persist: u64,
    lock_wait: std::time::Duration,
}

async fn load(inputs: &RunInputs, args: &PlaybookArgs) -> anyhow::Result<Loaded> {
    let playbook = playbook::load(&inputs.playbook)?;
    let inventory = crate::hosts::load(&inputs.inventory).await?;
    let spec = inputs.spec.as_deref().map(spec::load).transpose()?;
    let tags = TagFilter {
        only: inputs.tags.clone(),
        skip: inputs.skip_tags.clone(),
    };
    let checked = super::input::check(&super::input::Input {
        playbook: Some(&playbook),
        inventory: &inventory,
        spec: spec.as_ref(),
        extra: &args.extra_vars,
        limit: inputs.limit.as_deref(),
        tags: &tags,
    })?;
    Ok(Loaded {
        playbook,
        inventory,
        checked,
        tags,
        fail_fast: args.fail_fast,
        forks: args.forks,
        persist: args.persist,
        lock_wait: std::time::Duration::from_secs(args.lock_timeout),
    })
}

impl Loaded {
    fn request(&self, mode: Mode, limit: Option<String>, plans: Plans) -> (RunRequest, Events) {
        let (sink, events) = tokio::sync::mpsc::unbounded_channel();
        let request = RunRequest {
            mode,
            playbook: self.playbook.clone(),
            inventory: self.inventory.clone(),
            limit,
            spec: self.checked.spec_vars.clone(),
            extra: self.checked.extra.clone(),
            tags: self.tags.clone(),
            fail_fast: self.fail_fast,
            pool: PoolOptions {
                concurrency: self.forks,
                persist_secs: self.persist,
                ..PoolOptions::default()
            },
            lock_wait: self.lock_wait,
            sink,
            run_id: events::new_run_id(),
            plans,
        };
        (request, events)
    }
}

type Events = tokio::sync::mpsc::UnboundedReceiver<events::Event>;

/// How a run ended.
enum Ran {
    Done(kprov_engine::run::RunSummary),
    /// Ctrl-C or SIGTERM: the exit code to end with.
    Interrupted(Exit),
}

/// Runs `request`, showing its events when `show` (else only draining them).
async fn execute(
    (request, mut events_rx): (RunRequest, Events),
    mode: Mode,
    global: &GlobalArgs,
    show: bool,
) -> anyhow::Result<Ran> {
    let mut renderer = Renderer::new(mode, global.output == OutputFormat::Json, global.quiet);
    let mut signals = crate::interrupt::listen();
    let runner = tokio::spawn(kprov_engine::run::run(request));
    loop {
        tokio::select! {
            event = events_rx.recv() => match event {
                Some(event) if show => renderer.event(&event),
                Some(_) => {}
                None => break,
            },
            Some(signal) = signals.recv() => {
                return Ok(Ran::Interrupted(
                    crate::interrupt::handle(signal, &mut signals, &mut events_rx, &mut renderer).await,
                ));
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
    if show {
        renderer.finish();
    }
    Ok(Ran::Done(summary))
}

/// A host that failed otherwise outranks one that was unreachable, which outranks one
/// that was locked (locked hosts count as failed too).
fn exit_of(summary: &kprov_engine::run::RunSummary, detailed: bool) -> Exit {
    if summary.failed > summary.locked {
        Exit::FAILED
    } else if summary.unreachable > 0 {
        Exit::UNREACHABLE
    } else if summary.locked > 0 {
        Exit::LOCKED
    } else if detailed && (summary.changed > 0 || summary.unknown > 0) {
        Exit::CHANGES
    } else {
        Exit::OK
    }
}

/// `kprov reset`: the bundled reset playbook; a plan unless `--yes`.
pub async fn reset(args: &ResetArgs, global: &GlobalArgs) -> anyhow::Result<Exit> {
    let playbook = crate::content::find("playbooks/reset.yaml")?;
    let run_args = PlaybookArgs {
        playbook,
        inventory: RunInventoryArgs {
            inventory: Some(args.inventory.inventory.clone()),
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
        allow_drift: false,
    };
    if args.yes {
        return run(&run_args, Mode::Apply, false, None, global).await;
    }
    let code = run(&run_args, Mode::Plan, true, None, global).await?;
    if code == Exit::CHANGES && !global.quiet {
        eprintln!("This is what reset would remove. Run again with --yes to reset.");
    }
    Ok(code)
}
