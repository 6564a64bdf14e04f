//! Ansible's YAML inventory shape to a [`Draft`], with kubespray's group names mapped:
//! `kube_control_plane` → `masters`, `kube_node` → `nodes`.

use serde_json::{Map, Value};
use std::collections::BTreeMap;

use super::resolve::{Defaults, Draft, DraftGroup, DraftHost, Overrides, Shape};
use super::{file, HostKeyChecking, MASTERS, NODES};
use crate::diagnostic::Diagnostic;
use crate::validate::source_map::pointer_join;
use crate::validate::SourceMap;

/// kubespray's control-plane group.
pub(super) const CONTROL_PLANE: &str = "kube_control_plane";
/// kubespray's worker group.
pub(super) const WORKERS: &str = "kube_node";

/// kprov's name for an Ansible group.
fn canonical(name: &str) -> String {
    match name {
        CONTROL_PLANE => MASTERS.to_string(),
        WORKERS => NODES.to_string(),
        other => other.to_string(),
    }
}

#[derive(Default)]
struct Walk {
    hosts: Vec<DraftHost>,
    groups: BTreeMap<String, DraftGroup>,
}

impl Walk {
    fn host(&mut self, name: &str, pointer: &str, vars: Option<&Map<String, Value>>) {
        let index = match self.hosts.iter().position(|h| h.name == name) {
            Some(index) => index,
            None => {
                self.hosts.push(DraftHost {
                    name: name.to_string(),
                    pointer: pointer.to_string(),
                    address: None,
                    overrides: Overrides::default(),
                    vars: Map::new(),
                    file_vars: Map::new(),
                });
                self.hosts.len() - 1
            }
        };
        let host = &mut self.hosts[index];
        if let Some(vars) = vars {
            if let Some(Value::String(address)) = vars.get("ansible_host") {
                host.address = Some((address.clone(), format!("{pointer}/ansible_host")));
            }
            host.vars.extend(vars.clone());
        }
    }

    /// Records the definition of group `name` at `pointer`.
    fn group(&mut self, name: &str, value: &Map<String, Value>, pointer: &str) {
        let entry = self
            .groups
            .entry(name.to_string())
            .or_insert_with(|| DraftGroup {
                name: canonical(name),
                written: name.to_string(),
                pointer: pointer.to_string(),
                members: Vec::new(),
                children: Vec::new(),
                vars: Map::new(),
                file_vars: Map::new(),
            });
        if let Some(Value::Object(vars)) = value.get("vars") {
            entry.vars.extend(vars.clone());
        }
        let mut mentioned = Vec::new();
        if let Some(Value::Object(hosts)) = value.get("hosts") {
            for (written, vars) in hosts {
                let host_pointer = pointer_join(&format!("{pointer}/hosts"), written);
                for host in expand(written) {
                    entry.members.push((host.clone(), host_pointer.clone()));
                    mentioned.push((host, host_pointer.clone(), vars.as_object().cloned()));
                }
            }
        }
        let mut kids = Vec::new();
        if let Some(Value::Object(children)) = value.get("children") {
            for (child, definition) in children {
                let child_pointer = pointer_join(&format!("{pointer}/children"), child);
                entry.children.push((child.clone(), child_pointer.clone()));
                if let Value::Object(definition) = definition {
                    kids.push((child.clone(), definition.clone(), child_pointer));
                }
            }
        }
        for (host, host_pointer, vars) in mentioned {
            self.host(&host, &host_pointer, vars.as_ref());
        }
        for (child, definition, child_pointer) in kids {
            self.group(&child, &definition, &child_pointer);
        }
    }
}

/// The draft of a schema-checked Ansible inventory.
pub(super) fn draft(value: &Value, map: &SourceMap) -> Result<Draft, Vec<Diagnostic>> {
    let Some(top) = value.as_object() else {
        return Err(vec![map.at_value(
            "",
            "expected a mapping with an `all:` group",
            None,
        )]);
    };
    let mut walk = Walk::default();
    let mut vars = Map::new();
    let empty = Map::new();
    let all = top.get("all").and_then(Value::as_object).unwrap_or(&empty);
    if let Some(Value::Object(global)) = all.get("vars") {
        vars.extend(global.clone());
    }
    if let Some(Value::Object(hosts)) = all.get("hosts") {
        for (written, host_vars) in hosts {
            for host in expand(written) {
                walk.host(
                    &host,
                    &pointer_join("/all/hosts", written),
                    host_vars.as_object(),
                );
            }
        }
    }
    if let Some(Value::Object(children)) = all.get("children") {
        for (child, definition) in children {
            if let Value::Object(definition) = definition {
                walk.group(child, definition, &pointer_join("/all/children", child));
            } else {
                walk.group(child, &empty, &pointer_join("/all/children", child));
            }
        }
    }
    for (group, definition) in top.iter().filter(|(k, _)| k.as_str() != "all") {
        let definition = definition.as_object().unwrap_or(&empty);
        walk.group(group, definition, &pointer_join("", group));
    }
    Ok(Draft {
        shape: Shape::Ansible,
        vars,
        file_vars: Map::new(),
        defaults: Defaults {
            port: file::default_port(),
            user: file::default_user(),
            identity_file: None,
            become_: false,
            host_key_checking: HostKeyChecking::default(),
            known_hosts_file: None,
            connect_timeout: file::default_timeout(),
            proxy_jump: None,
        },
        hosts: walk.hosts,
        groups: walk.groups.into_values().collect(),
        lab: None,
        hosts_pointer: map.contains("/all/hosts").then(|| "/all/hosts".to_string()),
        groups_pointer: "/all/children".into(),
        partial: false,
    })
}

/// A host name with Ansible ranges (`node[01:03]`) expanded; a malformed range stays as
/// written (the host name check reports it).
fn expand(written: &str) -> Vec<String> {
    super::ini::expand(written).unwrap_or_else(|_| vec![written.to_string()])
}
