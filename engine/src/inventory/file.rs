//! The two on-disk shapes of an inventory: kprov's own and Ansible's YAML inventory.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::PathBuf;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use super::HostKeyChecking;

/// An inventory file in either shape (an Ansible inventory has a top-level `all:` key).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum InventoryFile {
    /// kprov's own shape.
    Kprov(KprovInventoryFile),
    /// Ansible's YAML inventory shape (kubespray group names are understood).
    Ansible(AnsibleInventoryFile),
}

/// kprov's own inventory shape (`hosts.yaml`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KprovInventoryFile {
    /// SSH connection defaults for every host (each host may override them).
    #[serde(default)]
    pub ssh: SshDefaults,
    /// Variables for all hosts.
    #[serde(default)]
    pub vars: Map<String, Value>,
    /// The hosts, by name (a DNS-1123 label such as `node1`).
    #[serde(default)]
    pub hosts: BTreeMap<String, HostEntry>,
    /// Groups: `masters` (control plane, required), `nodes` (workers) and your own.
    #[serde(default)]
    pub groups: BTreeMap<String, GroupEntry>,
    /// Instead of `hosts:`, let kprov bring up a throw-away lab and use its hosts.
    #[serde(default)]
    pub lab: Option<LabSection>,
}

/// SSH connection defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SshDefaults {
    /// Remote user.
    #[serde(default = "default_user")]
    pub user: String,
    /// SSH port.
    #[serde(default = "default_port")]
    #[schemars(range(min = 1))]
    pub port: u16,
    /// Private key file (relative paths are relative to this file); otherwise the user's ssh
    /// config and agent decide.
    #[serde(default)]
    pub identity_file: Option<PathBuf>,
    /// Run remote commands through `sudo -n`.
    #[serde(default, rename = "become")]
    pub become_: bool,
    /// Host key checking. Only `strict` (the default) is accepted: kprov connects only to
    /// hosts whose key is known; `accept-new` and `off` are refused.
    #[serde(default)]
    pub host_key_checking: HostKeyChecking,
    /// known_hosts file (relative paths are relative to this file); default: the user's own.
    #[serde(default)]
    pub known_hosts_file: Option<PathBuf>,
    /// Connection timeout in seconds.
    #[serde(default = "default_timeout")]
    #[schemars(range(min = 1))]
    pub connect_timeout: u64,
    /// Reach the hosts through this jump host: the name of an inventory host (one in the
    /// `bastion` group, say) or `[user@]host[:port]` as for `ssh -J`.
    #[serde(default)]
    pub proxy_jump: Option<String>,
}

impl Default for SshDefaults {
    fn default() -> Self {
        SshDefaults {
            user: default_user(),
            port: default_port(),
            identity_file: None,
            become_: false,
            host_key_checking: HostKeyChecking::default(),
            known_hosts_file: None,
            connect_timeout: default_timeout(),
            proxy_jump: None,
        }
    }
}

pub(crate) fn default_user() -> String {
    "root".into()
}

pub(crate) fn default_port() -> u16 {
    22
}

pub(crate) fn default_timeout() -> u64 {
    10
}

/// One host of kprov's shape.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HostEntry {
    /// IP address or DNS name kprov connects to.
    #[schemars(example = "192.168.1.10")]
    #[schemars(schema_with = "crate::validate::patterns::address")]
    pub address: String,
    /// SSH port (overrides `ssh.port`).
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub port: Option<u16>,
    /// Remote user (overrides `ssh.user`).
    #[serde(default)]
    pub user: Option<String>,
    /// Private key file (overrides `ssh.identity_file`).
    #[serde(default)]
    pub identity_file: Option<PathBuf>,
    /// Use `sudo -n` (overrides `ssh.become`).
    #[serde(default, rename = "become")]
    pub become_: Option<bool>,
    /// Host key checking (overrides `ssh.host_key_checking`; only `strict` is accepted).
    #[serde(default)]
    pub host_key_checking: Option<HostKeyChecking>,
    /// known_hosts file (overrides `ssh.known_hosts_file`).
    #[serde(default)]
    pub known_hosts_file: Option<PathBuf>,
    /// Connection timeout in seconds (overrides `ssh.connect_timeout`).
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub connect_timeout: Option<u64>,
    /// Jump host for this host (overrides `ssh.proxy_jump`; `none` for a direct connection).
    #[serde(default)]
    pub proxy_jump: Option<String>,
    /// Variables of this host (override group and global variables).
    #[serde(default)]
    pub vars: Map<String, Value>,
}

/// One group of kprov's shape.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupEntry {
    /// Names of member hosts.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// Variables for the members (override global variables).
    #[serde(default)]
    pub vars: Map<String, Value>,
    /// Names of groups whose members also belong to this group.
    #[serde(default)]
    pub children: Vec<String>,
}

/// A lab kprov brings up on demand.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LabSection {
    /// Lab name.
    #[serde(default = "default_lab_name")]
    #[schemars(schema_with = "crate::validate::patterns::dns_label")]
    pub name: String,
    /// Number of hosts: the first is `master`, the others `node1`, `node2`, ….
    #[serde(default = "default_lab_hosts")]
    #[schemars(range(min = 1, max = 64))]
    pub hosts: usize,
}

fn default_lab_name() -> String {
    "kprov".into()
}

fn default_lab_hosts() -> usize {
    3
}

/// Ansible's YAML inventory: `all:` plus optional other top-level groups.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct AnsibleInventoryFile {
    /// The `all` group: global `vars`, `hosts` and `children` groups.
    pub all: Option<AnsibleGroup>,
    /// Other top-level groups.
    #[serde(flatten)]
    pub groups: BTreeMap<String, Option<AnsibleGroup>>,
}

/// An Ansible group.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AnsibleGroup {
    /// Member hosts with their variables (`ansible_host`, `ansible_port`, …).
    #[serde(default)]
    pub hosts: Option<BTreeMap<String, Option<AnsibleVars>>>,
    /// Variables for all members.
    #[serde(default)]
    pub vars: Option<AnsibleVars>,
    /// Child groups (defined here or elsewhere in the file).
    #[serde(default)]
    pub children: Option<BTreeMap<String, Option<AnsibleGroup>>>,
}

/// Ansible variables; the connection variables kprov understands are typed.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct AnsibleVars {
    /// Address to connect to (default: the host's name).
    #[serde(default)]
    #[schemars(schema_with = "crate::validate::patterns::optional_address")]
    pub ansible_host: Option<String>,
    /// SSH port (a number, or a string of digits as Ansible accepts).
    #[serde(default)]
    pub ansible_port: Option<AnsiblePort>,
    /// Remote user.
    #[serde(default)]
    pub ansible_user: Option<String>,
    /// Private key file (relative paths are relative to this file).
    #[serde(default)]
    pub ansible_ssh_private_key_file: Option<PathBuf>,
    /// Run commands through sudo.
    #[serde(default)]
    pub ansible_become: Option<AnsibleBool>,
    /// Check host keys: only `true` is accepted (kprov always checks them).
    #[serde(default)]
    pub ansible_host_key_checking: Option<AnsibleBool>,
    /// Connection timeout in seconds.
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub ansible_ssh_timeout: Option<u64>,
    /// Pre-2.0 name of `ansible_host`.
    #[serde(default)]
    #[schemars(schema_with = "crate::validate::patterns::optional_address")]
    pub ansible_ssh_host: Option<String>,
    /// Pre-2.0 name of `ansible_port`.
    #[serde(default)]
    pub ansible_ssh_port: Option<AnsiblePort>,
    /// Pre-2.0 name of `ansible_user`.
    #[serde(default)]
    pub ansible_ssh_user: Option<String>,
    /// Same as `ansible_host_key_checking`.
    #[serde(default)]
    pub ansible_ssh_host_key_checking: Option<AnsibleBool>,
    /// Extra ssh arguments (`-o Option=value`, `-J jump`), e.g. a bastion's ProxyCommand;
    /// `-o UserKnownHostsFile=FILE` sets the host's known-hosts file.
    #[serde(default)]
    pub ansible_ssh_common_args: Option<String>,
    /// More ssh arguments, like `ansible_ssh_common_args`.
    #[serde(default)]
    pub ansible_ssh_extra_args: Option<String>,
    /// kubespray: the cluster address (advertise address, etcd, /etc/hosts, certificates);
    /// `ansible_host` stays the SSH address.
    #[serde(default)]
    #[schemars(schema_with = "crate::validate::patterns::optional_ip")]
    pub ip: Option<String>,
    /// kubespray: the address other hosts use to reach this one (used when `ip` is unset).
    #[serde(default)]
    #[schemars(schema_with = "crate::validate::patterns::optional_ip")]
    pub access_ip: Option<String>,
    /// Any other variables.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// An SSH port as Ansible accepts it: a number or a string of digits (`"22"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct AnsiblePort(pub u16);

impl AnsiblePort {
    /// The port of a JSON value (number or digit string), if it is one.
    pub fn from_value(value: &Value) -> Option<u16> {
        match value {
            Value::Number(n) => n.as_u64().and_then(|p| u16::try_from(p).ok()),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
        .filter(|p| *p > 0)
    }
}

impl<'de> Deserialize<'de> for AnsiblePort {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        AnsiblePort::from_value(&value)
            .map(AnsiblePort)
            .ok_or_else(|| serde::de::Error::custom(format!("expected a port, found {value}")))
    }
}

impl JsonSchema for AnsiblePort {
    fn schema_name() -> Cow<'static, str> {
        "AnsiblePort".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "anyOf": [
            { "type": "integer", "minimum": 1, "maximum": 65535 },
            { "type": "string", "pattern": crate::validate::formats::PORT_PATTERN }
        ] })
    }
}

/// Ansible's booleans: `true`/`false`, or the strings `yes`/`no`/`true`/`false`/`on`/`off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct AnsibleBool(pub bool);

const TRUE_WORDS: [&str; 6] = ["yes", "true", "on", "Yes", "True", "On"];
const FALSE_WORDS: [&str; 6] = ["no", "false", "off", "No", "False", "Off"];

impl<'de> Deserialize<'de> for AnsibleBool {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Value::deserialize(deserializer)? {
            Value::Bool(b) => Ok(AnsibleBool(b)),
            Value::String(s) if TRUE_WORDS.contains(&s.as_str()) => Ok(AnsibleBool(true)),
            Value::String(s) if FALSE_WORDS.contains(&s.as_str()) => Ok(AnsibleBool(false)),
            other => Err(serde::de::Error::custom(format!(
                "expected a boolean, found {other}"
            ))),
        }
    }
}

impl JsonSchema for AnsibleBool {
    fn schema_name() -> Cow<'static, str> {
        "AnsibleBool".into()
    }
    fn inline_schema() -> bool {
        true
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let words: Vec<&str> = TRUE_WORDS
            .iter()
            .chain(FALSE_WORDS.iter())
            .copied()
            .collect();
        json_schema!({ "anyOf": [{ "type": "boolean" }, { "enum": words }] })
    }
}
