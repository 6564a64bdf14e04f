//! Turns either inventory shape (as a [`Draft`]) into the resolved [`Inventory`]: group
//! membership through `children`, merged variables, effective connection settings.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Map, Value};

use super::{checks, Host, HostKeyChecking, HostOrigin, Inventory, LabRequest};

/// The group whose hosts are jump hosts only (kubespray's `[bastion]`).
pub(crate) const BASTION: &str = "bastion";
use crate::diagnostic::Diagnostic;
use crate::validate::{closest, SourceMap};

/// Which file shape a draft came from (decides group names in messages and where
/// connection settings live).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    Kprov,
    Ansible,
}

/// Connection settings; `None` means "inherit".
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Overrides {
    pub(crate) port: Option<u16>,
    pub(crate) user: Option<String>,
    pub(crate) identity_file: Option<PathBuf>,
    pub(crate) become_: Option<bool>,
    pub(crate) host_key_checking: Option<HostKeyChecking>,
    pub(crate) known_hosts_file: Option<PathBuf>,
    pub(crate) connect_timeout: Option<u64>,
    /// A jump host: an inventory host's name, `[user@]host[:port]`, or `none`.
    pub(crate) proxy_jump: Option<String>,
    /// ssh options (`ProxyCommand`, …) from `ansible_ssh_common_args`.
    pub(crate) ssh_options: Vec<(String, String)>,
}

/// Effective connection defaults.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Defaults {
    pub(crate) port: u16,
    pub(crate) user: String,
    pub(crate) identity_file: Option<PathBuf>,
    pub(crate) become_: bool,
    pub(crate) host_key_checking: HostKeyChecking,
    pub(crate) known_hosts_file: Option<PathBuf>,
    pub(crate) connect_timeout: u64,
    pub(crate) proxy_jump: Option<String>,
}

/// A host as written in the file.
#[derive(Debug, Clone)]
pub(crate) struct DraftHost {
    pub(crate) name: String,
    /// Pointer to the host's entry (its first appearance).
    pub(crate) pointer: String,
    /// The address and the pointer to where it is written.
    pub(crate) address: Option<(String, String)>,
    pub(crate) overrides: Overrides,
    pub(crate) vars: Map<String, Value>,
    /// Variables from `host_vars/NAME` (above the inventory file's host variables).
    pub(crate) file_vars: Map<String, Value>,
}

/// A group as written in the file (Ansible definitions already merged by name).
#[derive(Debug, Clone)]
pub(crate) struct DraftGroup {
    /// kprov's name (`masters` for Ansible's `kube_control_plane`).
    pub(crate) name: String,
    /// The name as written in the file.
    pub(crate) written: String,
    pub(crate) pointer: String,
    /// Member host names with the pointer of each mention.
    pub(crate) members: Vec<(String, String)>,
    /// Child group names (as written) with the pointer of each mention.
    pub(crate) children: Vec<(String, String)>,
    pub(crate) vars: Map<String, Value>,
    /// Variables from `group_vars/NAME` (above every group's inventory-file variables).
    pub(crate) file_vars: Map<String, Value>,
}

/// An inventory file before resolution.
#[derive(Debug, Clone)]
pub(crate) struct Draft {
    pub(crate) shape: Shape,
    pub(crate) vars: Map<String, Value>,
    /// Variables from `group_vars/all`.
    pub(crate) file_vars: Map<String, Value>,
    pub(crate) defaults: Defaults,
    pub(crate) hosts: Vec<DraftHost>,
    pub(crate) groups: Vec<DraftGroup>,
    /// The lab request and the pointer of its `lab:` key.
    pub(crate) lab: Option<(LabRequest, String)>,
    /// Pointer of the `hosts:` section, when written.
    pub(crate) hosts_pointer: Option<String>,
    /// Pointer of the groups section (`groups` / `all.children`).
    pub(crate) groups_pointer: String,
    /// Set when the schema rejected parts of the file: what is left may lack hosts or
    /// groups only because of those errors, so whole-inventory checks are skipped.
    pub(crate) partial: bool,
}

impl Draft {
    /// The name users wrote for kprov group `name` in this shape.
    pub(crate) fn written_name(&self, name: &str) -> String {
        self.groups
            .iter()
            .find(|g| g.name == name)
            .map(|g| g.written.clone())
            .unwrap_or_else(|| match (self.shape, name) {
                (Shape::Ansible, super::MASTERS) => super::ansible::CONTROL_PLANE.to_string(),
                (Shape::Ansible, super::NODES) => super::ansible::WORKERS.to_string(),
                _ => name.to_string(),
            })
    }
}

/// Resolves `draft`; problems are returned alongside a best-effort inventory.
pub(crate) fn resolve(mut draft: Draft, source: SourceMap) -> (Inventory, Vec<Diagnostic>) {
    let mut problems = Vec::new();
    draft.hosts.sort_by_key(|h| source.key_position(&h.pointer));
    let host_names: BTreeSet<&str> = draft.hosts.iter().map(|h| h.name.as_str()).collect();
    let groups: HashMap<&str, &DraftGroup> = draft
        .groups
        .iter()
        .map(|g| (g.written.as_str(), g))
        .collect();

    // Direct members and children, checked.
    let mut direct: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut children: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for group in &draft.groups {
        let members = direct.entry(group.name.clone()).or_default();
        for (member, pointer) in &group.members {
            if host_names.contains(member.as_str()) {
                members.insert(member.clone());
            } else {
                let hint = closest(member, host_names.iter().copied())
                    .map(|best| format!("did you mean `{best}`?"))
                    .or_else(|| Some("define the host under `hosts:` first".into()));
                problems.push(source.at_value(
                    pointer,
                    format!("unknown host `{member}` in group `{}`", group.written),
                    hint,
                ));
            }
        }
        let kids = children.entry(group.name.clone()).or_default();
        for (child, pointer) in &group.children {
            match groups.get(child.as_str()) {
                Some(found) => kids.push((found.name.clone(), pointer.clone())),
                None => {
                    let hint = closest(child, groups.keys().copied())
                        .map(|best| format!("did you mean `{best}`?"))
                        .or_else(|| {
                            Some("define the group first, or remove it from `children`".into())
                        });
                    problems.push(source.at_value(
                        pointer,
                        format!(
                            "unknown group `{child}` in the children of `{}`",
                            group.written
                        ),
                        hint,
                    ));
                }
            }
        }
    }
    problems.extend(cycles(&draft, &children, &source));

    // Effective membership, through children.
    let mut members: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for name in direct.keys() {
        let mut seen = BTreeSet::new();
        let mut collected = BTreeSet::new();
        collect(name, &direct, &children, &mut seen, &mut collected);
        members.insert(name.clone(), collected);
    }
    let depth = depths(&draft, &children);

    let mut hosts = Vec::new();
    let mut origins = BTreeMap::new();
    let mut jumps = Vec::new();
    for draft_host in &draft.hosts {
        let mut groups_of: Vec<String> = members
            .iter()
            .filter(|(_, m)| m.contains(&draft_host.name))
            .map(|(g, _)| g.clone())
            .collect();
        // Ansible's precedence: all < groups (shallow first, then by name) < group_vars/all
        // < group_vars/<group> < host < host_vars/<host>.
        let mut ordered = groups_of.clone();
        ordered.sort_by_key(|g| (depth.get(g).copied().unwrap_or(1), g.clone()));
        let mut vars = draft.vars.clone();
        for group in &ordered {
            for g in draft.groups.iter().filter(|d| &d.name == group) {
                vars.extend(g.vars.clone());
            }
        }
        vars.extend(draft.file_vars.clone());
        for group in &ordered {
            for g in draft.groups.iter().filter(|d| &d.name == group) {
                vars.extend(g.file_vars.clone());
            }
        }
        vars.extend(draft_host.vars.clone());
        vars.extend(draft_host.file_vars.clone());
        let mut overrides = draft_host.overrides.clone();
        let mut address = draft_host.address.clone().map(|(a, _)| a);
        let mut address_pointer = draft_host
            .address
            .as_ref()
            .map(|(_, pointer)| pointer.clone())
            .unwrap_or_else(|| draft_host.pointer.clone());
        let mut cluster_address = None;
        if draft.shape == Shape::Ansible {
            let (from_vars, ansible_host) = super::connection::take(&mut vars);
            overrides = from_vars;
            address = ansible_host.or(address);
            // kubespray's cluster address; `access_ip` when only it is set.
            for key in ["ip", "access_ip"] {
                if let Some(Value::String(ip)) = vars.get(key) {
                    cluster_address = Some(ip.clone());
                    let pointer = format!("{}/{key}", draft_host.pointer);
                    if source.contains(&pointer) {
                        address_pointer = pointer;
                    }
                    break;
                }
            }
        }
        let ssh_address = address.unwrap_or_else(|| draft_host.name.clone());
        let (local, state_dir) = super::connection::local(&vars);
        groups_of.sort();
        let d = &draft.defaults;
        jumps.push(
            overrides
                .proxy_jump
                .clone()
                .or_else(|| d.proxy_jump.clone()),
        );
        hosts.push(Host {
            name: draft_host.name.clone(),
            address: cluster_address.unwrap_or_else(|| ssh_address.clone()),
            ssh_address,
            port: overrides.port.unwrap_or(d.port),
            user: overrides.user.clone().unwrap_or_else(|| d.user.clone()),
            identity_file: overrides
                .identity_file
                .clone()
                .or_else(|| d.identity_file.clone())
                .map(|p| relative_to_file(&source, p)),
            become_: overrides.become_.unwrap_or(d.become_),
            known_hosts_file: overrides
                .known_hosts_file
                .clone()
                .or_else(|| d.known_hosts_file.clone())
                .map(|p| relative_to_file(&source, p)),
            connect_timeout: Duration::from_secs(
                overrides.connect_timeout.unwrap_or(d.connect_timeout),
            ),
            ssh_options: overrides.ssh_options.clone(),
            spelling: match draft.shape {
                Shape::Kprov => super::Spelling::Kprov,
                Shape::Ansible => super::Spelling::Ansible,
            },
            local,
            state_dir: state_dir.map(|p| relative_to_file(&source, p)),
            groups: groups_of,
            vars,
        });
        origins.insert(
            draft_host.name.clone(),
            HostOrigin {
                entry: draft_host.pointer.clone(),
                address: address_pointer,
            },
        );
    }
    // Hosts of the `bastion` group are jump hosts only: not cluster nodes, and every other
    // host is reached through the first of them unless it says otherwise.
    let bastion_names = members.remove(BASTION).unwrap_or_default();
    let (bastions, cluster): (Vec<_>, Vec<_>) = hosts
        .into_iter()
        .zip(jumps)
        .partition(|(h, _)| bastion_names.contains(&h.name));
    let bastions: Vec<Host> = bastions.into_iter().map(|(h, _)| h).collect();
    let known: Vec<Host> = bastions
        .iter()
        .cloned()
        .chain(cluster.iter().map(|(h, _)| h.clone()))
        .collect();
    let mut hosts = Vec::new();
    for (mut host, jump) in cluster {
        let first_bastion = bastions.first();
        if let Err(problem) = super::jump::apply(&mut host, jump.as_deref(), &known, first_bastion)
        {
            problems.push(
                source.at_key(
                    &origins
                        .get(&host.name)
                        .map(|o| o.entry.clone())
                        .unwrap_or_default(),
                    problem,
                    Some(
                        "name an inventory host, or write `[user@]host[:port]` as for `ssh -J`"
                            .into(),
                    ),
                ),
            );
        }
        hosts.push(host);
    }
    for members in members.values_mut() {
        members.retain(|m| !bastion_names.contains(m));
    }

    let groups: BTreeMap<String, Vec<String>> = members
        .iter()
        .map(|(group, set)| {
            let ordered = hosts
                .iter()
                .filter(|h| set.contains(&h.name))
                .map(|h| h.name.clone())
                .collect();
            (group.clone(), ordered)
        })
        .collect();
    let aliases = draft
        .groups
        .iter()
        .filter(|g| g.written != g.name)
        .map(|g| (g.written.clone(), g.name.clone()))
        .collect();
    let inventory = Inventory {
        hosts,
        bastions,
        groups,
        aliases,
        warnings: Vec::new(),
        vars: global_vars(&draft),
        lab: draft.lab.as_ref().map(|(lab, _)| lab.clone()),
        source,
        origins,
    };
    problems.extend(checks::check(&draft, &inventory));
    (inventory, problems)
}

/// A relative path of the file resolved against the file's directory (`~/…` stays as is:
/// ssh expands it).
pub(crate) fn relative_to_file(source: &SourceMap, path: PathBuf) -> PathBuf {
    if path.is_absolute() || path.starts_with("~") {
        return path;
    }
    match source.file().parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.join(path),
        _ => path,
    }
}

/// The global variables, without Ansible's connection variables.
fn global_vars(draft: &Draft) -> Map<String, Value> {
    let mut vars = draft.vars.clone();
    if draft.shape == Shape::Ansible {
        super::connection::take(&mut vars);
    }
    vars
}

fn collect(
    group: &str,
    direct: &BTreeMap<String, BTreeSet<String>>,
    children: &BTreeMap<String, Vec<(String, String)>>,
    seen: &mut BTreeSet<String>,
    out: &mut BTreeSet<String>,
) {
    if !seen.insert(group.to_string()) {
        return;
    }
    if let Some(members) = direct.get(group) {
        out.extend(members.iter().cloned());
    }
    for (child, _) in children.get(group).into_iter().flatten() {
        collect(child, direct, children, seen, out);
    }
}

/// Depth of each group below the top (1 = not anyone's child), for the variable merge order.
fn depths(
    draft: &Draft,
    children: &BTreeMap<String, Vec<(String, String)>>,
) -> HashMap<String, usize> {
    let mut depth: HashMap<String, usize> =
        draft.groups.iter().map(|g| (g.name.clone(), 1)).collect();
    // Relax edges; bounded by the number of groups, so cycles cannot loop forever.
    for _ in 0..draft.groups.len() {
        let mut changed = false;
        for (parent, kids) in children {
            let parent_depth = depth.get(parent).copied().unwrap_or(1);
            for (kid, _) in kids {
                let entry = depth.entry(kid.clone()).or_insert(1);
                if *entry < parent_depth + 1 {
                    *entry = parent_depth + 1;
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
    depth
}

/// A diagnostic for every `children` entry that closes a cycle.
fn cycles(
    draft: &Draft,
    children: &BTreeMap<String, Vec<(String, String)>>,
    source: &SourceMap,
) -> Vec<Diagnostic> {
    let mut problems = Vec::new();
    for (parent, kids) in children {
        for (kid, pointer) in kids {
            if let Some(path) = path_between(kid, parent, children, &mut BTreeSet::new()) {
                let mut chain = vec![draft.written_name(parent)];
                chain.extend(path.iter().map(|g| draft.written_name(g)));
                problems.push(source.at_value(
                    pointer,
                    format!(
                        "group `{}` contains itself through `children` ({})",
                        draft.written_name(parent),
                        chain.join(" → ")
                    ),
                    Some(format!(
                        "remove `{}` from these children",
                        draft.written_name(kid)
                    )),
                ));
            }
        }
    }
    problems
}

/// The chain of groups from `from` to `to` through `children`, if any.
fn path_between(
    from: &str,
    to: &str,
    children: &BTreeMap<String, Vec<(String, String)>>,
    seen: &mut BTreeSet<String>,
) -> Option<Vec<String>> {
    if from == to {
        return Some(vec![from.to_string()]);
    }
    if !seen.insert(from.to_string()) {
        return None;
    }
    for (kid, _) in children.get(from).into_iter().flatten() {
        if let Some(mut rest) = path_between(kid, to, children, seen) {
            rest.insert(0, from.to_string());
            return Some(rest);
        }
    }
    None
}
