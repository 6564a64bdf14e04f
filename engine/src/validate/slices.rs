//! Host variables `pod_cidr` (a host's own slice of the pod network for the bridge CNI)
//! checked against the spec's pod network and the other hosts' slices, with the bridge
//! module's own rule.

use std::collections::BTreeMap;

use crate::diagnostic::Diagnostic;
use crate::inventory::Inventory;
use crate::spec::ClusterSpec;
use ipnet::IpNet;

const VAR: &str = "pod_cidr";

/// One diagnostic per bad host var `pod_cidr`: not a CIDR, outside the pod network, or
/// sharing addresses with another host's slice.
pub(super) fn check(spec: &ClusterSpec, inventory: &Inventory, out: &mut Vec<Diagnostic>) {
    let mut overrides = BTreeMap::new();
    for host in &inventory.hosts {
        let Some(value) = host.vars.get(VAR) else {
            continue;
        };
        match value.as_str().and_then(|s| s.parse::<IpNet>().ok()) {
            Some(net) => {
                overrides.insert(host.name.clone(), net);
            }
            None => out.push(at_host(
                inventory,
                &host.name,
                format!("host var pod_cidr {value} of `{}` is not a CIDR", host.name),
                format!(
                    "give a slice of the pod network {}, e.g. `pod_cidr: \"{}\"`",
                    spec.networking.pod_cidr,
                    example(spec)
                ),
            )),
        }
    }
    if overrides.is_empty() {
        return;
    }
    let names: Vec<String> = inventory.hosts.iter().map(|h| h.name.clone()).collect();
    let pod = spec.networking.pod_cidr.0;
    let mask = spec.cni.bridge.node_cidr_mask;
    if let Err(e) = kprov_modules::check_slices(pod, mask, &names, &overrides) {
        let message = e.to_string();
        let message = message
            .strip_prefix("module `cni_bridge`: ")
            .unwrap_or(&message)
            .to_string();
        // The host to fix: the last overridden host the message names.
        let culprit = overrides
            .keys()
            .rfind(|h| message.contains(&format!("`{h}`")))
            .cloned()
            .unwrap_or_default();
        out.push(at_host(
            inventory,
            &culprit,
            message,
            "each host's pod_cidr must lie inside networking.pod_cidr and share no address \
             with another host's slice (hosts without the var get the slice of their position)"
                .into(),
        ));
    }
}

fn example(spec: &ClusterSpec) -> String {
    let pod = spec.networking.pod_cidr.0;
    pod.subnets(spec.cni.bridge.node_cidr_mask)
        .ok()
        .and_then(|mut s| s.next())
        .map_or_else(|| pod.to_string(), |n| n.to_string())
}

fn at_host(inventory: &Inventory, host: &str, message: String, hint: String) -> Diagnostic {
    let mut d = inventory.at_host_address(host, message, Some(hint));
    d.key = format!("{host}.vars.{VAR}");
    d
}
