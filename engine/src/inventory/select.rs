//! Host patterns (`--limit`, a play's `hosts:`): comma-separated host or group names.

use std::path::PathBuf;

use super::{Host, Inventory};
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::validate::closest;

/// A name in a host pattern that is neither a host nor a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownName {
    /// The name as written.
    pub name: String,
    /// 1-based column of the name within the pattern.
    pub column: usize,
    /// The closest host or group name, when one is likely meant.
    pub suggestion: Option<String>,
}

/// The hosts `pattern` names, in inventory order (see [`Inventory::select_pattern`]).
pub(super) fn pattern<'a>(
    inventory: &'a Inventory,
    pattern: &str,
) -> Result<Vec<&'a Host>, Vec<UnknownName>> {
    let mut wanted = vec![false; inventory.hosts.len()];
    let mut unknown = Vec::new();
    let mut offset = 0;
    for part in pattern.split(',') {
        let name = part.trim();
        let column = offset + (part.len() - part.trim_start().len()) + 1;
        offset += part.len() + 1;
        if name.is_empty() {
            continue;
        }
        // Group names as written in the file (`kube_node`) work as well as kprov's.
        let name = inventory
            .aliases
            .get(name)
            .map(String::as_str)
            .unwrap_or(name);
        for (i, host) in inventory.hosts.iter().enumerate() {
            if name == "all" || host.name == name || host.in_group(name) {
                wanted[i] = true;
            }
        }
        let known = name == "all"
            || inventory.groups.contains_key(name)
            || inventory.hosts.iter().any(|h| h.name == name);
        if !known {
            let candidates = inventory
                .hosts
                .iter()
                .map(|h| h.name.as_str())
                .chain(inventory.groups.keys().map(String::as_str))
                .chain(inventory.aliases.keys().map(String::as_str));
            unknown.push(UnknownName {
                name: name.to_string(),
                column,
                suggestion: closest(name, candidates).map(str::to_string),
            });
        }
    }
    if !unknown.is_empty() {
        return Err(unknown);
    }
    Ok(inventory
        .hosts
        .iter()
        .zip(wanted)
        .filter_map(|(host, wanted)| wanted.then_some(host))
        .collect())
}

/// The hosts selected by `--limit` (see [`Inventory::select`]).
pub(super) fn select<'a>(
    inventory: &'a Inventory,
    limit: Option<&str>,
) -> Result<Vec<&'a Host>, Diagnostics> {
    let Some(limit) = limit else {
        return Ok(inventory.hosts.iter().collect());
    };
    pattern(inventory, limit).map_err(|unknown| {
        Diagnostics(
            unknown
                .into_iter()
                .map(|u| Diagnostic {
                    file: PathBuf::from("--limit"),
                    line: 1,
                    column: u.column,
                    key: "limit".into(),
                    message: format!("unknown host or group `{}`", u.name),
                    hint: Some(match u.suggestion {
                        Some(best) => format!("did you mean `{best}`?"),
                        None => "name hosts or groups of the inventory, separated by commas".into(),
                    }),
                })
                .collect(),
        )
    })
}
