//! Semantic checks of a resolved inventory: host names, addresses, the `masters` group, lab.

use std::collections::HashMap;
use std::net::IpAddr;

use super::resolve::{Draft, Shape};
use super::{HostKeyChecking, Inventory, MASTERS};
use crate::validate::SourceMap;

/// kubespray's etcd group.
const ETCD: &str = "etcd";
use crate::diagnostic::Diagnostic;
use crate::validate::formats;

/// Every semantic problem of `inventory` (resolved from `draft`).
pub(super) fn check(draft: &Draft, inventory: &Inventory) -> Vec<Diagnostic> {
    let source = &inventory.source;
    let mut out = Vec::new();
    let hosts_key = match draft.shape {
        Shape::Kprov => "hosts:",
        Shape::Ansible => "all.hosts:",
    };
    if let Some((_, lab_pointer)) = &draft.lab {
        if !draft.hosts.is_empty() {
            out.push(source.at_key(
                lab_pointer,
                "`lab:` and `hosts:` cannot be combined",
                Some("remove `hosts:` to let kprov create lab hosts, or remove `lab:` to use your own".into()),
            ));
        }
        return out;
    }
    host_keys(draft, source, &mut out);
    if draft.partial {
        // Only per-host checks: missing hosts or masters may be the schema errors' doing.
        host_names(draft, inventory, &mut out);
        addresses(inventory, &mut out);
        return out;
    }
    if draft.hosts.is_empty() {
        out.push(source.at_key(
            draft.hosts_pointer.as_deref().unwrap_or(""),
            "the inventory lists no hosts",
            Some(format!(
                "add hosts under `{hosts_key}`, or use `lab: {{ hosts: 3 }}` for throw-away lab hosts"
            )),
        ));
        return out;
    }
    host_names(draft, inventory, &mut out);
    addresses(inventory, &mut out);
    masters(draft, inventory, &mut out);
    etcd(draft, inventory, &mut out);
    super::roles::masters_in_nodes(draft, inventory, &mut out);
    out
}

/// kprov's own shape: `host_key_checking` other than `strict`, for all hosts or one, is an
/// error where it is written (kprov verifies every host's key; the Ansible spellings are
/// checked with the other variables).
fn host_keys(draft: &Draft, source: &SourceMap, out: &mut Vec<Diagnostic>) {
    if draft.shape != Shape::Kprov {
        return;
    }
    let written = std::iter::once(("/ssh".to_string(), Some(draft.defaults.host_key_checking)))
        .chain(
            draft
                .hosts
                .iter()
                .map(|h| (h.pointer.clone(), h.overrides.host_key_checking)),
        );
    for (pointer, value) in written {
        let Some(value @ (HostKeyChecking::AcceptNew | HostKeyChecking::Off)) = value else {
            continue;
        };
        let pointer = format!("{pointer}/host_key_checking");
        if !source.contains(&pointer) {
            continue;
        }
        let what = match value {
            HostKeyChecking::Off => "connect without verifying host keys",
            _ => "trust any host key it has not seen before",
        };
        out.push(source.at_value(
            &pointer,
            format!("`host_key_checking: {}` would {what}", value.name()),
            Some(super::connection::UNVERIFIED_HOST_KEY_HINT.into()),
        ));
    }
}

/// kprov runs etcd stacked on the control-plane hosts: an `etcd` group may only repeat them.
fn etcd(draft: &Draft, inventory: &Inventory, out: &mut Vec<Diagnostic>) {
    let Some(group) = draft.groups.iter().find(|g| g.written == ETCD) else {
        return;
    };
    let members = inventory.groups.get(ETCD).cloned().unwrap_or_default();
    let masters = inventory.groups.get(MASTERS).cloned().unwrap_or_default();
    if members.is_empty() || members == masters {
        return;
    }
    let elsewhere: Vec<&str> = members
        .iter()
        .filter(|m| !masters.contains(m))
        .map(String::as_str)
        .collect();
    let missing: Vec<&str> = masters
        .iter()
        .filter(|m| !members.contains(m))
        .map(String::as_str)
        .collect();
    let written = draft.written_name(MASTERS);
    let mut message = format!(
        "kprov runs etcd stacked on the `{written}` hosts; group `{ETCD}` asks for something else:"
    );
    if !elsewhere.is_empty() {
        message.push_str(&format!(" {} not in `{written}`", elsewhere.join(", ")));
    }
    if !missing.is_empty() {
        if !elsewhere.is_empty() {
            message.push(';');
        }
        message.push_str(&format!(" {} of `{written}` missing", missing.join(", ")));
    }
    out.push(inventory.source.at_key(
        &group.pointer,
        message,
        Some(format!(
            "list the same hosts as `{written}` in `{ETCD}` (or remove the group): external etcd hosts are not supported"
        )),
    ));
}

fn host_names(draft: &Draft, inventory: &Inventory, out: &mut Vec<Diagnostic>) {
    for host in &draft.hosts {
        if formats::is_dns_label(&host.name) {
            continue;
        }
        let short = host
            .name
            .split('.')
            .next()
            .unwrap_or_default()
            .to_lowercase();
        let hint = if host.name.contains('.') && formats::is_dns_label(&short) {
            // A fully qualified name: keep it as the address, use its first label as name.
            match draft.shape {
                Shape::Kprov => format!("use a short name and keep the full one as the address: `{short}: {{ address: {} }}`", host.name),
                Shape::Ansible => format!("use a short name and keep the full one as the address: `{short}: {{ ansible_host: {} }}`", host.name),
            }
        } else {
            let fixed = host.name.to_lowercase().replace(['_', '.', ' '], "-");
            if formats::is_dns_label(&fixed) {
                format!("rename it, e.g. `{fixed}` (the name becomes the Kubernetes node name)")
            } else {
                "use lowercase letters, digits and '-' (the name becomes the Kubernetes node name)"
                    .into()
            }
        };
        out.push(inventory.source.at_key(
            &host.pointer,
            format!(
                "invalid host name `{}`: expected {}",
                host.name,
                formats::describe(formats::DNS_LABEL)
            ),
            Some(hint),
        ));
    }
}

fn valid_address(address: &str) -> bool {
    // `10.0.0.300` is a broken IP address, not a host name.
    let numeric = address.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    formats::is_ip(address) || (!numeric && formats::is_dns_name(&address.to_lowercase()))
}

/// The canonical form of an address for comparisons (IPs parsed, names lower-cased).
fn canonical_address(address: &str) -> String {
    match address.parse::<IpAddr>() {
        Ok(ip) => ip.to_string(),
        Err(_) => address.to_lowercase(),
    }
}

fn addresses(inventory: &Inventory, out: &mut Vec<Diagnostic>) {
    let mut seen: HashMap<String, &str> = HashMap::new();
    for host in inventory.hosts.iter().chain(&inventory.bastions) {
        let mut broken = false;
        let mut written = vec![&host.address];
        if host.ssh_address != host.address {
            written.push(&host.ssh_address);
        }
        for address in written {
            if !valid_address(address) {
                broken = true;
                out.push(inventory.at_host_address(
                    &host.name,
                    format!("`{address}` is neither an IP address nor a DNS name"),
                    Some(
                        "write an address such as 192.168.1.10 or a name such as node1.example.com"
                            .into(),
                    ),
                ));
            }
        }
        if broken {
            continue;
        }
        let key = canonical_address(&host.address);
        match seen.get(key.as_str()) {
            Some(first) => out.push(inventory.at_host_address(
                &host.name,
                format!("address {} is also used by host `{first}`", host.address),
                Some("every host needs its own address; fix the copy-pasted one".into()),
            )),
            None => {
                seen.insert(key, &host.name);
            }
        }
    }
}

fn masters(draft: &Draft, inventory: &Inventory, out: &mut Vec<Diagnostic>) {
    let written = draft.written_name(MASTERS);
    let first_host = inventory
        .hosts
        .first()
        .map_or("master", |h| h.name.as_str());
    let group = draft.groups.iter().find(|g| g.name == MASTERS);
    let has_members = inventory.groups.get(MASTERS).is_some_and(|m| !m.is_empty());
    match group {
        None => {
            let (message, hint) = match draft.shape {
                Shape::Kprov => (
                    "no `masters` group: at least one host must run the control plane".to_string(),
                    format!("add `masters: {{ hosts: [{first_host}] }}` under `groups:`"),
                ),
                Shape::Ansible => (
                    format!("no `{written}` group: at least one host must run the control plane"),
                    format!(
                        "add `{written}: {{ hosts: {{ {first_host}: }} }}` under `all.children:`"
                    ),
                ),
            };
            out.push(
                inventory
                    .source
                    .at_key(&draft.groups_pointer, message, Some(hint)),
            );
        }
        Some(group) if !has_members => out.push(inventory.source.at_key(
            &group.pointer,
            format!("group `{written}` has no hosts: at least one host must run the control plane"),
            Some(format!("list a host in it, e.g. `{first_host}`")),
        )),
        Some(_) => {}
    }
}
