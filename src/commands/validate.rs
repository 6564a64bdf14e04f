//! `kprov validate SPEC -i INVENTORY`: every problem of both files, nothing touched.

use crate::exit::Exit;

use kprov_engine::{diagnostic::Diagnostics, spec, validate};

use crate::cli::{GlobalArgs, OutputFormat, RunArgs};

pub async fn run(args: &RunArgs, global: &GlobalArgs) -> anyhow::Result<Exit> {
    // Both files are checked even when the first has errors: one run shows everything.
    let spec = spec::load(&args.spec);
    let inventory = kprov_engine::inventory::load(&args.inventory.inventory);
    if let Ok(inv) = &inventory {
        crate::hosts::warn(inv);
    }
    let mut problems = Diagnostics::default();
    match (&spec, &inventory) {
        (Ok(spec), Ok(inv)) => {
            if let Err(d) = validate::check(spec, inv) {
                problems.0.extend(d.0);
            }
            if let Err(d) = inv.select(global.limit.as_deref()) {
                problems.0.extend(d.0);
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
            args.spec.display(),
            args.inventory.inventory.display()
        );
    }
    Ok(Exit::OK)
}
