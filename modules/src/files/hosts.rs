//! `hosts`: a managed block in /etc/hosts mapping every cluster host's address to its names.

use std::net::IpAddr;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::files::block::Block;
use crate::util::args::{self, Presence};
use crate::util::edit;
use crate::{Module, ModuleError, Plan, State};

/// One address and its names.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Entry {
    /// IPv4 or IPv6 address.
    address: String,
    /// Host names for the address, e.g. [node1, node1.cluster.local].
    names: Vec<String>,
}

/// Arguments of `hosts`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Args {
    #[serde(default)]
    entries: Vec<Entry>,
    /// The hosts file (default /etc/hosts).
    #[serde(default = "default_path")]
    path: String,
    /// Block name in the marker lines (default kprov).
    #[serde(default = "default_name")]
    name: String,
    #[serde(default)]
    state: Presence,
}

fn default_path() -> String {
    "/etc/hosts".to_string()
}

fn default_name() -> String {
    "kprov".to_string()
}

/// A built `hosts` task.
#[derive(Debug)]
pub(crate) struct Hosts {
    block: Block,
}

const NAME: &str = "hosts";

impl Hosts {
    pub fn build(args: serde_json::Value) -> Result<Hosts, ModuleError> {
        let a: Args = args::parse(NAME, args)?;
        args::path(NAME, "path", &a.path)?;
        let mut text = String::new();
        for entry in &a.entries {
            let address: IpAddr = entry.address.trim().parse().map_err(|_| {
                ModuleError::args(NAME, format!("`{}` is not an IP address", entry.address))
            })?;
            if entry.names.is_empty() {
                return Err(ModuleError::args(
                    NAME,
                    format!("{address}: names is empty"),
                ));
            }
            for name in &entry.names {
                let ok = !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
                if !ok {
                    return Err(ModuleError::args(
                        NAME,
                        format!("`{name}` is not a host name (letters, digits, . - _)"),
                    ));
                }
            }
            text.push_str(&format!("{address}\t{}\n", entry.names.join(" ")));
        }
        let block = Block::new(
            NAME,
            a.path,
            &text,
            &a.name,
            "# {mark} KPROV MANAGED BLOCK {name}",
            a.state,
            true,
        )?;
        Ok(Hosts { block })
    }
}

impl Module for Hosts {
    fn name(&self) -> &'static str {
        NAME
    }

    fn edited_file(&self) -> Option<(&str, &'static str)> {
        Some((self.block.path(), ""))
    }

    fn gather(&self) -> String {
        edit::gather("", self.block.path())
    }

    fn plan(&self, state: &State) -> Result<Plan, ModuleError> {
        let path = self.block.path();
        let edited = edit::plan(NAME, state, "", path, &|c| self.block.edit(NAME, c), None)?;
        Ok(edited.into_plan(Vec::new(), ""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::testutil::Planned as _;
    use crate::util::testutil::{fields, run_cycle};
    use crate::Diff;
    use serde_json::json;

    #[test]
    fn validates_entries() {
        assert!(
            Hosts::build(json!({"entries": [{"address": "10.0.0.300", "names": ["a"]}]})).is_err()
        );
        assert!(
            Hosts::build(json!({"entries": [{"address": "10.0.0.1", "names": ["a b"]}]})).is_err()
        );
        assert!(Hosts::build(json!({"entries": [{"address": "10.0.0.1", "names": []}]})).is_err());
    }

    #[test]
    fn diff_shows_the_block() {
        let m =
            Hosts::build(json!({"entries": [{"address": "192.168.168.141", "names": ["master"]}]}))
                .unwrap();
        let d = m
            .diff(&fields(&[
                ("stat", "regular file|644|0|0|root|root|10"),
                ("sha", "x"),
                ("content", "127.0.0.1 localhost\n"),
            ]))
            .unwrap();
        let Diff::Change { summary, after, .. } = d else {
            panic!()
        };
        assert_eq!(summary, "update /etc/hosts");
        assert_eq!(
            after.unwrap(),
            "127.0.0.1 localhost\n# BEGIN KPROV MANAGED BLOCK kprov\n192.168.168.141\tmaster\n# END KPROV MANAGED BLOCK kprov\n"
        );
    }

    #[test]
    fn real_cycle_on_a_temp_hosts_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hosts");
        std::fs::write(&path, "127.0.0.1\tlocalhost\n").unwrap();
        let entries = json!([
            {"address": "192.168.168.141", "names": ["master"]},
            {"address": "fd00::151", "names": ["node1", "node1.lab"]},
        ]);
        run_cycle(&Hosts::build(json!({"path": path, "entries": entries})).unwrap());
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("127.0.0.1\tlocalhost\n# BEGIN"));
        assert!(text.contains("fd00::151\tnode1 node1.lab\n"));
        // A changed inventory replaces the block in place.
        let entries = json!([{"address": "192.168.168.142", "names": ["master"]}]);
        run_cycle(&Hosts::build(json!({"path": path, "entries": entries})).unwrap());
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("fd00::151") && text.contains("192.168.168.142\tmaster"));
    }
}
