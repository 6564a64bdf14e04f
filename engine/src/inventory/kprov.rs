//! kprov's own inventory shape to a [`Draft`].

use super::file::KprovInventoryFile;
use super::resolve::{Defaults, Draft, DraftGroup, DraftHost, Overrides, Shape};
use super::LabRequest;
use crate::validate::source_map::pointer_join;
use crate::validate::SourceMap;

/// The draft of a schema-checked kprov inventory.
pub(super) fn draft(file: KprovInventoryFile, map: &SourceMap) -> Draft {
    let ssh = file.ssh;
    let defaults = Defaults {
        port: ssh.port,
        user: ssh.user,
        identity_file: ssh.identity_file,
        become_: ssh.become_,
        host_key_checking: ssh.host_key_checking,
        known_hosts_file: ssh.known_hosts_file,
        connect_timeout: ssh.connect_timeout,
        proxy_jump: ssh.proxy_jump,
    };
    let hosts = file
        .hosts
        .into_iter()
        .map(|(name, entry)| {
            let pointer = pointer_join("/hosts", &name);
            DraftHost {
                address: Some((entry.address, format!("{pointer}/address"))),
                overrides: Overrides {
                    port: entry.port,
                    user: entry.user,
                    identity_file: entry.identity_file,
                    become_: entry.become_,
                    host_key_checking: entry.host_key_checking,
                    known_hosts_file: entry.known_hosts_file,
                    connect_timeout: entry.connect_timeout,
                    proxy_jump: entry.proxy_jump,
                    ssh_options: Vec::new(),
                },
                vars: entry.vars,
                file_vars: serde_json::Map::new(),
                name,
                pointer,
            }
        })
        .collect();
    let groups = file
        .groups
        .into_iter()
        .map(|(name, entry)| {
            let pointer = pointer_join("/groups", &name);
            let members = entry
                .hosts
                .into_iter()
                .enumerate()
                .map(|(i, host)| (host, format!("{pointer}/hosts/{i}")))
                .collect();
            let children = entry
                .children
                .into_iter()
                .enumerate()
                .map(|(i, child)| (child, format!("{pointer}/children/{i}")))
                .collect();
            DraftGroup {
                written: name.clone(),
                name,
                pointer,
                members,
                children,
                vars: entry.vars,
                file_vars: serde_json::Map::new(),
            }
        })
        .collect();
    Draft {
        shape: Shape::Kprov,
        vars: file.vars,
        file_vars: serde_json::Map::new(),
        defaults,
        hosts,
        groups,
        lab: file.lab.map(|lab| {
            (
                LabRequest {
                    name: lab.name,
                    hosts: lab.hosts,
                },
                "/lab".to_string(),
            )
        }),
        hosts_pointer: map.contains("/hosts").then(|| "/hosts".to_string()),
        groups_pointer: "/groups".into(),
        partial: false,
    }
}
