//! From an inventory file to SSH targets, bringing a lab up on demand.

use std::path::Path;

use anyhow::Context;
use kprov_engine::inventory::{self, Inventory};
use kprov_engine::transport::Target;

/// Loads the inventory at `path`. An inventory that says `lab: {…}` instead of listing
/// hosts brings that lab up (idempotent) and yields the inventory the lab wrote.
pub async fn load(path: &Path) -> anyhow::Result<Inventory> {
    let mut inv = inventory::load(path)?;
    warn(&inv);
    let Some(lab) = inv.lab.clone() else {
        resolve(&mut inv);
        return Ok(inv);
    };
    tracing::info!(lab = %lab.name, hosts = lab.hosts, "inventory asks for a lab; bringing it up");
    let options = kprov_lab::UpOptions {
        name: lab.name.clone(),
        hosts: lab.hosts,
        mirror: None,
    };
    let status = tokio::task::spawn_blocking(move || kprov_lab::up_for_run(&options))
        .await
        .context("lab start-up task failed")?
        .with_context(|| format!("bringing up lab `{}` for {}", lab.name, path.display()))?;
    let mut inv = inventory::load(&status.inventory)?;
    resolve(&mut inv);
    Ok(inv)
}

/// Hosts given by DNS name get their IP as cluster address (warnings for names that do
/// not resolve).
pub fn resolve(inv: &mut Inventory) {
    for warning in inv.resolve_addresses() {
        eprintln!("warning: {warning}");
    }
}

/// Prints the inventory's warnings (ignored Ansible variables) on stderr, one line each.
pub fn warn(inv: &Inventory) {
    for warning in &inv.warnings {
        eprintln!("warning: {warning}");
    }
}

/// SSH targets for the hosts `--limit` selects (all when `None`), in inventory order.
pub fn targets(inv: &Inventory, limit: Option<&str>) -> anyhow::Result<Vec<Target>> {
    Ok(inv
        .select(limit)?
        .into_iter()
        .map(Target::for_host)
        .collect())
}
