//! Everything a run reads, validated before any host is touched: the spec with the `-e`
//! overrides of its keys merged in, the cross-file checks, and every task's module
//! arguments as rendered for every host.

use anyhow::Context;
use kprov_engine::diagnostic::Diagnostics;
use kprov_engine::inventory::Inventory;
use kprov_engine::playbook::Playbook;
use kprov_engine::run::TagFilter;
use kprov_engine::spec::ClusterSpec;
use kprov_engine::{spec, validate, vars};
use serde_json::{Map, Value};

/// The variables a valid input gives the run.
pub struct Checked {
    /// The spec (with `-e` overrides merged) as variables.
    pub spec_vars: Map<String, Value>,
    /// The `-e` variables that are not spec keys.
    pub extra: Map<String, Value>,
}

/// What [`check`] reads.
pub struct Input<'a> {
    pub playbook: Option<&'a Playbook>,
    pub inventory: &'a Inventory,
    pub spec: Option<&'a ClusterSpec>,
    /// `-e` as given.
    pub extra: &'a [String],
    pub limit: Option<&'a str>,
    pub tags: &'a TagFilter,
}

/// Validates `input`; every problem found, as diagnostics (exit 3).
pub fn check(input: &Input<'_>) -> anyhow::Result<Checked> {
    let extra = vars::parse_extra(input.extra)
        .map_err(|e| anyhow::Error::from(crate::exit::Invalid(format!("-e: {e}"))))?;
    input.inventory.missing_identity_files()?;
    let given = extra.clone();
    let (merged, extra) = match input.spec {
        Some(spec) => {
            validate::check(spec, input.inventory)?;
            let (merged, rest) = spec::merge_extra(spec, &extra, Some(input.inventory))?;
            (Some(merged), rest)
        }
        None => (None, extra),
    };
    let spec_vars = match &merged {
        Some(spec) => spec
            .template_vars()
            .context("serializing the cluster spec")?,
        None => Map::new(),
    };
    if let Some(playbook) = input.playbook {
        check_tasks(
            input,
            playbook,
            merged.as_ref(),
            &spec_vars,
            (&extra, &given),
        )?;
    }
    Ok(Checked { spec_vars, extra })
}

fn check_tasks(
    input: &Input<'_>,
    playbook: &Playbook,
    spec: Option<&ClusterSpec>,
    spec_vars: &Map<String, Value>,
    (extra, given_extra): (&Map<String, Value>, &Map<String, Value>),
) -> Result<(), Diagnostics> {
    validate::check_tasks(&validate::TaskInputs {
        playbook,
        inventory: input.inventory,
        limit: input.limit,
        tags: input.tags,
        spec,
        spec_vars,
        extra,
        given_extra,
    })
}
