//! The lab's generated inventory (kprov's own hosts.yaml shape).

use std::path::Path;

use crate::error::LabError;
use crate::fsutil::write_atomic;
use crate::layout::{HostLayout, Layout};

/// Writes `inventory.yaml` for the lab's hosts.
pub(crate) fn write(layout: &Layout, hosts: &[HostLayout]) -> Result<(), LabError> {
    write_atomic(&layout.inventory(), render(layout, hosts).as_bytes(), 0o644)
}

/// YAML text of the inventory. Host keys are checked strictly against the lab's
/// `known_hosts`, which holds every host's key before it first boots. Strings are emitted
/// as JSON strings, which YAML reads as double-quoted scalars, so paths and names never
/// need hand-quoting.
fn render(layout: &Layout, hosts: &[HostLayout]) -> String {
    let q = |s: &str| serde_json::Value::String(s.to_string()).to_string();
    let p = |path: &Path| q(&path.display().to_string());
    let mut out = format!(
        "# Written by `kprov lab up` for lab {name}; regenerated on every up.\n\
         ssh:\n  user: root\n  identity_file: {key}\n  known_hosts_file: {known}\nhosts:\n",
        name = layout.name,
        key = p(&layout.key()),
        known = p(&layout.known_hosts()),
    );
    for host in hosts {
        out.push_str(&format!(
            "  {}:\n    address: {}\n",
            q(&host.name),
            q(&host.address.to_string())
        ));
    }
    let names: Vec<String> = hosts.iter().map(|h| q(&h.name)).collect();
    let (masters, nodes) = names.split_at(names.len().min(1));
    out.push_str(&format!(
        "groups:\n  masters:\n    hosts: [{}]\n  nodes:\n    hosts: [{}]\n",
        masters.join(", "),
        nodes.join(", ")
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_hosts_and_groups() {
        let layout = Layout {
            name: "t".into(),
            subnet: 7,
        };
        let hosts: Vec<HostLayout> = (0..3).map(|i| layout.host(i)).collect();
        let text = render(&layout, &hosts);
        assert!(text.contains("  \"node2\":\n    address: \"172.30.7.12\"\n"));
        assert!(text.contains("masters:\n    hosts: [\"master\"]"));
        assert!(text.contains("nodes:\n    hosts: [\"node1\", \"node2\"]"));
        assert!(text.contains("identity_file: \"/var/lib/kprov/lab/t/key\""));
        assert!(text.contains("known_hosts_file: \"/var/lib/kprov/lab/t/known_hosts\""));
        assert!(!text.contains("host_key_checking"), "{text}");
    }
}
