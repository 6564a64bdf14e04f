//! `kprov validate [SPEC] [-i INVENTORY]`: every problem of the files given and, with
//! both, of `-e` and of the playbook's tasks rendered with them; nothing touched.

use std::path::PathBuf;

use crate::exit::Exit;

use kprov_engine::run::TagFilter;
use kprov_engine::{diagnostic::Diagnostics, playbook, spec};

use crate::cli::{GlobalArgs, OutputFormat, ValidateArgs};

pub async fn run(args: &ValidateArgs, global: &GlobalArgs) -> anyhow::Result<Exit> {
    // Both files are checked even when the first has errors: one run shows everything.
    let spec = args.spec.as_deref().map(spec::load);
    let mut inventory = args.inventory.as_deref().map(kprov_engine::inventory::load);
    if let Some(Ok(inv)) = &mut inventory {
        crate::hosts::warn(inv);
        crate::hosts::resolve(inv);
    }
    let mut problems = Diagnostics::default();
    for d in [
        spec.as_ref().and_then(|s| s.as_ref().err().cloned()),
        inventory.as_ref().and_then(|i| i.as_ref().err().cloned()),
    ]
    .into_iter()
    .flatten()
    {
        problems.0.extend(d.0);
    }
    if let Some(Ok(inv)) = &inventory {
        if let Err(d) = inv.select(global.limit.as_deref()) {
            problems.0.extend(d.0);
        }
    }
    // With both files: -e and the playbook's tasks rendered for every host.
    if let (Some(Ok(spec)), Some(Ok(inv))) = (&spec, &inventory) {
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
        let files: Vec<String> = [&args.spec, &args.inventory]
            .into_iter()
            .flatten()
            .map(|p| p.display().to_string())
            .collect();
        let verb = if files.len() == 1 { "is" } else { "are" };
        println!("{} {verb} valid.", files.join(" and "));
    }
    Ok(Exit::OK)
}

/// `--playbook`, else kprov's own cluster playbook when it can be found.
fn playbook_path(args: &ValidateArgs) -> Option<PathBuf> {
    args.playbook
        .clone()
        .or_else(|| crate::content::find("playbooks/cluster.yaml").ok())
}
