//! `kprov validate SPEC -i INVENTORY`: every problem of both files, of `-e` and of the
//! playbook's tasks rendered with them; nothing touched.

use std::path::PathBuf;

use crate::exit::Exit;

use kprov_engine::run::TagFilter;
use kprov_engine::{diagnostic::Diagnostics, playbook, spec};

use crate::cli::{GlobalArgs, OutputFormat, ValidateArgs};

pub async fn run(args: &ValidateArgs, global: &GlobalArgs) -> anyhow::Result<Exit> {
    // Both files are checked even when the first has errors: one run shows everything.
    let spec = spec::load(&args.run.spec);
    let mut inventory = kprov_engine::inventory::load(&args.run.inventory.inventory);
    if let Ok(inv) = &mut inventory {
        crate::hosts::warn(inv);
        crate::hosts::resolve(inv);
    }
    let mut problems = Diagnostics::default();
    match (&spec, &inventory) {
        (Ok(spec), Ok(inv)) => {
            if let Err(d) = inv.select(global.limit.as_deref()) {
                problems.0.extend(d.0);
            }
            let playbook = match playbook_path(args) {
                Some(path) => match playbook::load(&path) {
                    Ok(p) => Some(p),
                    Err(d) => {
                        problems.0.extend(d.0);
                        None
                    }
                },
                None => None,
            };
            let input = super::input::Input {
                playbook: playbook.as_ref(),
                inventory: inv,
                spec: Some(spec),
                extra: &args.extra_vars,
                limit: global.limit.as_deref(),
                tags: &TagFilter::default(),
            };
            if let Err(e) = super::input::check(&input) {
                match e.downcast::<Diagnostics>() {
                    Ok(d) => problems.0.extend(d.0),
                    Err(other) => return Err(other),
                }
            }
        }
        _ => {
            for d in [spec.err(), inventory.as_ref().err().cloned()]
                .into_iter()
                .flatten()
            {
                problems.0.extend(d.0);
            }
        }
    }
    if global.output == OutputFormat::Json {
        let body = serde_json::json!({
            "valid": problems.is_empty(),
            "errors": problems.0,
        });
        println!("{body}");
        return Ok(if problems.is_empty() {
            Exit::OK
        } else {
            Exit::INVALID
        });
    }
    if !problems.is_empty() {
        return Err(problems.into());
    }
    if !global.quiet {
        println!(
            "{} and {} are valid.",
            args.run.spec.display(),
            args.run.inventory.inventory.display()
        );
    }
    Ok(Exit::OK)
}

/// `--playbook`, else kprov's own cluster playbook when it can be found.
fn playbook_path(args: &ValidateArgs) -> Option<PathBuf> {
    args.playbook
        .clone()
        .or_else(|| crate::content::find("playbooks/cluster.yaml").ok())
}
