//! Checks of what each host is given: a key file that exists, and one role per host
//! (a master is never also in `nodes`).

use std::path::{Path, PathBuf};

use super::resolve::Draft;
use super::{Inventory, MASTERS, NODES};
use crate::diagnostic::Diagnostic;

/// Every host's `identity_file` exists on this machine (ssh runs with
/// `IdentitiesOnly=yes`, so a missing key always fails to log in). Checked by the
/// commands that connect or promise they will (`validate`, `plan`, `apply`), not when
/// loading: an inventory may be written on another machine.
pub(super) fn identity_files(inventory: &Inventory, out: &mut Vec<Diagnostic>) {
    for host in &inventory.hosts {
        let Some(path) = &host.identity_file else {
            continue;
        };
        if expand_home(path).exists() {
            continue;
        }
        let pointer = inventory
            .origins
            .get(&host.name)
            .map_or("", |o| o.entry.as_str());
        let mut d = inventory.source.at_key(
            pointer,
            format!(
                "host `{}`: identity file {} does not exist",
                host.name,
                path.display()
            ),
            Some(format!(
                "create the key (`ssh-keygen -t ed25519 -f {}`) or correct the identity file \
                 setting (relative paths are relative to the inventory file)",
                path.display()
            )),
        );
        d.key = format!("{}.identity_file", d.key);
        out.push(d);
    }
}

/// `~/…` as ssh reads it.
fn expand_home(path: &Path) -> PathBuf {
    match (path.strip_prefix("~"), std::env::var_os("HOME")) {
        (Ok(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => path.to_path_buf(),
    }
}

/// A host in both `masters` and `nodes` is an error: the workers' play would join a
/// control-plane host as a worker, writing worker kubelet files over its own.
pub(super) fn masters_in_nodes(draft: &Draft, inventory: &Inventory, out: &mut Vec<Diagnostic>) {
    let Some(nodes) = draft.groups.iter().find(|g| g.name == NODES) else {
        return;
    };
    let written = draft.written_name(NODES);
    for host in inventory
        .hosts
        .iter()
        .filter(|h| h.in_group(MASTERS) && h.in_group(NODES))
    {
        let pointer = nodes
            .members
            .iter()
            .find(|(name, _)| *name == host.name)
            .map_or(nodes.pointer.as_str(), |(_, p)| p.as_str());
        out.push(inventory.source.at_key(
            pointer,
            format!(
                "host `{}` is in both `{}` and `{written}`",
                host.name,
                draft.written_name(MASTERS)
            ),
            Some(format!(
                "remove `{}` from `{written}`: a master is a node already; to run ordinary \
                 workloads on the masters set `control_plane.schedulable: true` in the cluster spec",
                host.name
            )),
        ));
    }
}
