//! The host inventory: kprov's own shape (`hosts.yaml`), Ansible's YAML or INI inventory
//! (with kubespray's group names), or a directory holding one of them plus `group_vars/` and
//! `host_vars/`, resolved into one model of ordered hosts with their effective connection
//! settings, groups and merged variables.

mod ansible;
mod checks;
mod connection;
pub mod file;
mod ini;
mod jump;
mod kprov;
mod names;
mod resolve;
mod roles;
mod select;
mod source;
mod var_files;
mod words;

pub use connection::UNVERIFIED_HOST_KEY_HINT;
pub use source::inventory_file;

pub use select::UnknownName;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::validate::SourceMap;

/// The control-plane group every inventory needs.
pub const MASTERS: &str = "masters";
/// The worker group.
pub const NODES: &str = "nodes";

/// A resolved inventory.
#[derive(Debug, Clone)]
pub struct Inventory {
    /// Cluster hosts in file order.
    pub hosts: Vec<Host>,
    /// Jump hosts (the `bastion` group): used to reach the others, never provisioned.
    pub bastions: Vec<Host>,
    /// Every group (children resolved) with its member host names in host order.
    pub groups: BTreeMap<String, Vec<String>>,
    /// Group names as written in the file that kprov knows by another name
    /// (`kube_control_plane` → `masters`, `kube_node` → `nodes`).
    pub aliases: BTreeMap<String, String>,
    /// Things in the inventory kprov goes on without (ignored Ansible variables), one each.
    pub warnings: Vec<Diagnostic>,
    /// Variables for all hosts (the `vars:` section, or Ansible's `all.vars`).
    pub vars: serde_json::Map<String, serde_json::Value>,
    /// Set when the inventory asks for a lab instead of listing hosts.
    pub lab: Option<LabRequest>,
    /// Where each value came from.
    source: SourceMap,
    /// JSON pointers of each host's entry and address, for diagnostics.
    origins: BTreeMap<String, HostOrigin>,
}

/// Where a host was defined, as JSON pointers into the inventory file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct HostOrigin {
    pub(crate) entry: String,
    pub(crate) address: String,
}

/// A lab kprov brings up on demand (`lab: { name, hosts }`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabRequest {
    /// Lab name (default `kprov`).
    pub name: String,
    /// Number of hosts (default 3).
    pub hosts: usize,
}

/// One host with its effective connection settings.
#[derive(Debug, Clone)]
pub struct Host {
    /// Inventory name (a DNS-1123 label; becomes the node name).
    pub name: String,
    /// The cluster address: advertise address, etcd, `/etc/hosts`, certificates (kubespray's
    /// `ip` when set, else the SSH address).
    pub address: String,
    /// IP address or DNS name SSH connects to (`address`, Ansible's `ansible_host`).
    pub ssh_address: String,
    /// SSH port.
    pub port: u16,
    /// Remote user.
    pub user: String,
    /// Private key, if one is configured.
    pub identity_file: Option<PathBuf>,
    /// Run remote commands through `sudo -n`.
    pub become_: bool,
    /// known_hosts file, if not the user's own; the host's key must be in it (or in the
    /// user's own).
    pub known_hosts_file: Option<PathBuf>,
    /// Connection timeout.
    pub connect_timeout: Duration,
    /// Further ssh options (`ProxyCommand` for a jump host, options from
    /// `ansible_ssh_common_args`), in order.
    pub ssh_options: Vec<(String, String)>,
    /// Which names the file uses for settings (for hints).
    pub spelling: Spelling,
    /// `connection: local` (`ansible_connection=local`): this machine's own shell, no ssh.
    pub local: bool,
    /// Local hosts: where kprov keeps its run lock and handler markers
    /// (`kprov_state_dir`); `None` for the defaults.
    pub state_dir: Option<PathBuf>,
    /// Groups this host belongs to (directly or through `children`), sorted.
    pub groups: Vec<String>,
    /// Merged variables: all < group < host.
    pub vars: serde_json::Map<String, serde_json::Value>,
}

/// Hosts are equal when they resolve to the same settings, whatever names the file used.
impl PartialEq for Host {
    fn eq(&self, other: &Self) -> bool {
        let mut same = other.clone();
        same.spelling = self.spelling;
        format!("{self:?}") == format!("{same:?}")
    }
}

impl Host {
    /// True when the host is in group `name`.
    pub fn in_group(&self, name: &str) -> bool {
        self.groups.iter().any(|g| g == name)
    }
}

/// Which names an inventory file gives connection settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Spelling {
    /// kprov's own (`user`, `identity_file`, `host_key_checking`).
    #[default]
    Kprov,
    /// Ansible's (`ansible_user`, `ansible_ssh_private_key_file`, …).
    Ansible,
}

/// `host_key_checking` as an inventory may write it. Only `strict` (the default) is
/// accepted: kprov connects only to hosts whose key is already known. The other values
/// are parsed so that their refusal can say what they would do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum HostKeyChecking {
    /// Refuse unknown and changed keys (default, and the only value accepted).
    #[default]
    Strict,
    /// Record unknown keys, refuse changed ones: refused.
    AcceptNew,
    /// Accept any key: refused.
    Off,
}

impl HostKeyChecking {
    /// The value as written in an inventory.
    pub fn name(self) -> &'static str {
        match self {
            HostKeyChecking::Strict => "strict",
            HostKeyChecking::AcceptNew => "accept-new",
            HostKeyChecking::Off => "off",
        }
    }
}

/// Two inventories are equal when they resolve to the same hosts, groups and variables,
/// whatever their shape or file.
impl PartialEq for Inventory {
    fn eq(&self, other: &Self) -> bool {
        self.hosts == other.hosts
            && self.bastions == other.bastions
            && self.groups == other.groups
            && self.vars == other.vars
            && self.lab == other.lab
    }
}

impl Inventory {
    /// The hosts in group `name`, in inventory order.
    pub fn group(&self, name: &str) -> Vec<&Host> {
        self.hosts.iter().filter(|h| h.in_group(name)).collect()
    }

    /// The control-plane hosts.
    pub fn masters(&self) -> Vec<&Host> {
        self.group(MASTERS)
    }

    /// The host named `name`.
    pub fn host(&self, name: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.name == name)
    }

    /// Where each value came from (for diagnostics pointing into the inventory file).
    pub fn source(&self) -> &SourceMap {
        &self.source
    }

    /// A diagnostic pointing at where host `name`'s address is written.
    pub fn at_host_address(
        &self,
        name: &str,
        message: impl Into<String>,
        hint: Option<String>,
    ) -> Diagnostic {
        let pointer = self
            .origins
            .get(name)
            .map(|o| o.address.as_str())
            .unwrap_or("");
        let mut diagnostic = self.source.at_value(pointer, message, hint);
        if !self.source.contains(pointer) {
            diagnostic.key = self.source.dotted(pointer);
        }
        diagnostic
    }

    /// Hosts whose `identity_file` does not exist on this machine, one diagnostic each
    /// (with the host and the path).
    pub fn missing_identity_files(&self) -> Result<(), Diagnostics> {
        let mut out = Vec::new();
        roles::identity_files(self, &mut out);
        Diagnostics(out).into_result(())
    }

    /// The hosts a `--limit` expression selects: comma-separated host or group names (`all`
    /// selects everything); `None` selects all hosts. Unknown names are errors.
    pub fn select(&self, limit: Option<&str>) -> Result<Vec<&Host>, Diagnostics> {
        select::select(self, limit)
    }

    /// The hosts a host pattern names (comma-separated host or group names, `all`), in
    /// inventory order; for patterns from other files (a play's `hosts:`), whose caller
    /// reports unknown names at their own position.
    pub fn select_pattern(&self, pattern: &str) -> Result<Vec<&Host>, Vec<UnknownName>> {
        select::pattern(self, pattern)
    }
}

/// `/etc/hosts` entries of every inventory host (`inventory_host_entries`):
/// `[{address, names: [name]}]`.
pub fn host_entries(inventory: &Inventory) -> serde_json::Value {
    serde_json::Value::Array(
        inventory
            .hosts
            .iter()
            .map(|h| serde_json::json!({"address": h.address, "names": [h.name]}))
            .collect(),
    )
}

/// Loads and validates an inventory: a file (YAML or INI) or a directory holding one, with
/// the `group_vars/` and `host_vars/` beside it; every problem is reported at once.
pub fn load(path: &Path) -> Result<Inventory, Diagnostics> {
    source::load(path)
}

/// Parses an inventory from text (YAML or INI); `path` only names it in diagnostics.
pub fn from_str(path: &Path, text: &str) -> Result<Inventory, Diagnostics> {
    source::from_parts(path, text, var_files::VarFiles::default())
}
