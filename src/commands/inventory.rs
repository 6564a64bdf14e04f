//! `kprov inventory -i INV [--list|--graph|--host H]`: the inventory as kprov resolved it
//! (groups, effective connection settings, merged variables), shaped like
//! `ansible-inventory`'s output. Secrets (passwords, tokens) are never shown.

use serde_json::{json, Map, Value};

use kprov_engine::inventory::{Host, Inventory};

use crate::cli::{GlobalArgs, InventoryShowArgs};
use crate::exit::Exit;

pub fn run(args: &InventoryShowArgs, _global: &GlobalArgs) -> anyhow::Result<Exit> {
    let mut inv = kprov_engine::inventory::load(&args.inventory.inventory)?;
    crate::hosts::warn(&inv);
    crate::hosts::resolve(&mut inv);
    if let Some(lab) = &inv.lab {
        eprintln!(
            "note: this inventory asks for lab `{}` ({} hosts); its hosts exist once it is up \
             (`kprov lab up --name {} --hosts {}` prints their inventory)",
            lab.name, lab.hosts, lab.name, lab.hosts
        );
    }
    if let Some(name) = &args.host {
        let Some(host) = inv
            .host(name)
            .or_else(|| inv.bastions.iter().find(|b| &b.name == name))
        else {
            let known: Vec<&str> = all_hosts(&inv).map(|h| h.name.as_str()).collect();
            eprintln!(
                "error: no host `{name}` in {}; hosts: {}",
                args.inventory.inventory.display(),
                known.join(", ")
            );
            return Ok(Exit::INVALID);
        };
        show(&format!(
            "{}\n",
            serde_json::to_string_pretty(&host_vars(host))?
        ))?;
    } else if args.graph {
        show(&graph(&inv))?;
    } else {
        show(&format!("{}\n", serde_json::to_string_pretty(&list(&inv))?))?;
    }
    Ok(Exit::OK)
}

/// Writes `text` to stdout; a reader that went away (`| head`) is not an error.
pub(super) fn show(text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Cluster hosts, then jump hosts.
fn all_hosts(inv: &Inventory) -> impl Iterator<Item = &Host> {
    inv.hosts.iter().chain(&inv.bastions)
}

/// Every group under kprov's name and, where the file wrote another (kubespray's
/// `kube_control_plane`), under that name too.
fn groups(inv: &Inventory) -> Vec<(String, &Vec<String>)> {
    let mut out: Vec<(String, &Vec<String>)> = inv
        .groups
        .iter()
        .filter(|(name, _)| name.as_str() != "all")
        .map(|(name, hosts)| (name.clone(), hosts))
        .collect();
    for (written, ours) in &inv.aliases {
        if let Some(hosts) = inv.groups.get(ours) {
            out.push((written.clone(), hosts));
        }
    }
    out.sort();
    out
}

/// `--list`: `ansible-inventory --list`'s shape.
fn list(inv: &Inventory) -> Value {
    let mut out = Map::new();
    let hostvars: Map<String, Value> = all_hosts(inv)
        .map(|h| (h.name.clone(), host_vars(h)))
        .collect();
    out.insert("_meta".into(), json!({ "hostvars": hostvars }));
    let groups = groups(inv);
    let children: Vec<&str> = groups.iter().map(|(g, _)| g.as_str()).collect();
    out.insert("all".into(), json!({ "children": children }));
    for (name, hosts) in &groups {
        out.insert(name.clone(), json!({ "hosts": hosts }));
    }
    Value::Object(out)
}

/// `--graph`: `ansible-inventory --graph`'s shape (groups are shown flat, with the hosts
/// each one holds through its children).
fn graph(inv: &Inventory) -> String {
    let mut out = String::from("@all:\n");
    for (name, hosts) in groups(inv) {
        out.push_str(&format!("  |--@{name}:\n"));
        for host in hosts {
            out.push_str(&format!("  |  |--{host}\n"));
        }
    }
    out
}

/// A host's merged variables plus the connection settings kprov resolved, secrets hidden.
fn host_vars(host: &Host) -> Value {
    let mut vars: Map<String, Value> = host
        .vars
        .iter()
        .map(|(k, v)| {
            let shown = if is_secret(k) {
                Value::String("(hidden)".into())
            } else {
                v.clone()
            };
            (k.clone(), shown)
        })
        .collect();
    vars.insert("ansible_host".into(), json!(host.ssh_address));
    vars.insert("ansible_port".into(), json!(host.port));
    vars.insert("ansible_user".into(), json!(host.user));
    vars.insert("ansible_become".into(), json!(host.become_));
    if host.local {
        vars.insert("ansible_connection".into(), json!("local"));
    }
    if let Some(key) = &host.identity_file {
        vars.insert(
            "ansible_ssh_private_key_file".into(),
            json!(key.display().to_string()),
        );
    }
    let ssh_options: Vec<String> = host
        .ssh_options
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    vars.insert(
        "kprov".into(),
        json!({
            "cluster_address": host.address,
            "known_hosts_file": host.known_hosts_file.as_ref().map(|f| f.display().to_string()),
            "groups": host.groups,
            "ssh_options": ssh_options,
        }),
    );
    Value::Object(vars)
}

/// Variable names whose values are never printed.
fn is_secret(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    ["pass", "secret", "token", "vault", "private_key_content"]
        .iter()
        .any(|word| name.contains(word))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_and_tokens_are_hidden() {
        for name in [
            "ansible_password",
            "ansible_become_pass",
            "ansible_ssh_pass",
            "registry_token",
            "Vault_Id",
        ] {
            assert!(is_secret(name), "{name}");
        }
        for name in ["ansible_host", "ip", "access_ip", "ansible_user"] {
            assert!(!is_secret(name), "{name}");
        }
    }
}
