//! `--limit`: choose hosts by host or group names.

use std::path::PathBuf;

use super::{Host, Inventory};
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::validate::closest;

/// The hosts selected by `limit` (see [`Inventory::select`]).
pub(super) fn select<'a>(
    inventory: &'a Inventory,
    limit: Option<&str>,
) -> Result<Vec<&'a Host>, Diagnostics> {
    let Some(limit) = limit else {
        return Ok(inventory.hosts.iter().collect());
    };
    let mut wanted = vec![false; inventory.hosts.len()];
    let mut problems = Vec::new();
    let mut offset = 0;
    for part in limit.split(',') {
        let name = part.trim();
        let column = offset + (part.len() - part.trim_start().len()) + 1;
        offset += part.len() + 1;
        if name.is_empty() {
            continue;
        }
        let mut matched = false;
        for (i, host) in inventory.hosts.iter().enumerate() {
            if name == "all" || host.name == name || host.in_group(name) {
                wanted[i] = true;
                matched = true;
            }
        }
        if !matched && !inventory.groups.contains_key(name) {
            let candidates = inventory
                .hosts
                .iter()
                .map(|h| h.name.as_str())
                .chain(inventory.groups.keys().map(String::as_str));
            let hint = closest(name, candidates)
                .map(|best| format!("did you mean `{best}`?"))
                .or_else(|| {
                    Some("name hosts or groups of the inventory, separated by commas".into())
                });
            problems.push(Diagnostic {
                file: PathBuf::from("--limit"),
                line: 1,
                column,
                key: "limit".into(),
                message: format!("unknown host or group `{name}`"),
                hint,
            });
        }
    }
    if !problems.is_empty() {
        return Err(Diagnostics(problems));
    }
    Ok(inventory
        .hosts
        .iter()
        .zip(wanted)
        .filter_map(|(host, wanted)| wanted.then_some(host))
        .collect())
}
