//! Each host's slice of the pod network for the bridge CNI: the host at position `i`
//! (0-based) of the inventory's host order gets the `i`-th `/mask` subnet of the pod
//! network, unless its host var `pod_cidr` names one; slices that overlap are an error
//! naming both hosts and a free slice.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::ModuleError;

/// Errors are the module's.
const NAME: &str = "cni_bridge";

/// One host's slice of the pod network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Slice {
    pub host: String,
    pub address: IpAddr,
    pub net: IpNet,
}

/// Where a host's slice came from, for error messages.
fn origin(overridden: bool, position: usize) -> String {
    if overridden {
        "its host var pod_cidr".to_string()
    } else {
        format!("position {} in the inventory", position + 1)
    }
}

/// Every host's slice (see the module doc for the rule), in inventory order.
pub(crate) fn slices(
    pod: IpNet,
    mask: u8,
    hosts: &[(String, String)],
    overrides: &BTreeMap<String, IpNet>,
) -> Result<Vec<Slice>, ModuleError> {
    if mask <= pod.prefix_len() || mask > pod.max_prefix_len() {
        return Err(ModuleError::args(
            NAME,
            format!("node_cidr_mask /{mask} does not split pod_cidr {pod} into host slices"),
        ));
    }
    for name in overrides.keys() {
        if !hosts.iter().any(|(h, _)| h == name) {
            return Err(ModuleError::args(
                NAME,
                format!("pod_cidr override for `{name}`, which is not an inventory host"),
            ));
        }
    }
    let mut out: Vec<Slice> = Vec::new();
    let mut overridden = Vec::new();
    for (i, (host, address)) in hosts.iter().enumerate() {
        let address: IpAddr = address.parse().map_err(|_| {
            ModuleError::args(
                NAME,
                format!(
                    "host `{host}` has address `{address}`, not an IP address; the bridge \
                     CNI routes pods through host addresses: set its inventory address to its IP"
                ),
            )
        })?;
        let net = match overrides.get(host) {
            Some(net) => {
                if !pod.contains(net) {
                    return Err(ModuleError::args(
                        NAME,
                        format!(
                            "host var pod_cidr {net} of `{host}` is not inside the pod network \
                             {pod}; pick a slice of {pod}"
                        ),
                    ));
                }
                *net
            }
            None => nth_slice(pod, mask, i).ok_or_else(|| {
                ModuleError::args(
                    NAME,
                    format!(
                        "pod_cidr {pod} has too few /{mask} slices for {} hosts (`{host}` is \
                         host {}); use a larger pod_cidr or a longer node_cidr_mask",
                        hosts.len(),
                        i + 1
                    ),
                )
            })?,
        };
        overridden.push(overrides.contains_key(host));
        out.push(Slice {
            host: host.clone(),
            address,
            net,
        });
    }
    for (i, a) in out.iter().enumerate() {
        for (j, b) in out.iter().enumerate().skip(i + 1) {
            if a.net.contains(&b.net) || b.net.contains(&a.net) {
                let fix = if overridden[j] { b } else { a };
                let free = free_slice(pod, mask, &out)
                    .map(|n| format!(", e.g. {n}"))
                    .unwrap_or_default();
                return Err(ModuleError::args(
                    NAME,
                    format!(
                        "hosts `{}` ({} from {}) and `{}` ({} from {}) would share pod \
                         addresses; give `{}` a host var pod_cidr no other host uses{free}",
                        a.host,
                        a.net,
                        origin(overridden[i], i),
                        b.host,
                        b.net,
                        origin(overridden[j], j),
                        fix.host,
                    ),
                ));
            }
        }
    }
    Ok(out)
}

/// Checks the hosts' slices of `pod` (each `/mask`, by position or its `pod_cidr`
/// override) as the module does, without host addresses: the same errors it would give.
pub fn check_slices(
    pod: IpNet,
    mask: u8,
    hosts: &[String],
    overrides: &BTreeMap<String, IpNet>,
) -> Result<(), ModuleError> {
    let hosts: Vec<(String, String)> = hosts
        .iter()
        .map(|h| (h.clone(), "0.0.0.0".to_string()))
        .collect();
    slices(pod, mask, &hosts, overrides).map(|_| ())
}

fn nth_slice(pod: IpNet, mask: u8, n: usize) -> Option<IpNet> {
    pod.subnets(mask).ok()?.nth(n)
}

/// The first slice no host uses (looks at the first 4096).
fn free_slice(pod: IpNet, mask: u8, used: &[Slice]) -> Option<IpNet> {
    pod.subnets(mask)
        .ok()?
        .take(4096)
        .find(|n| !used.iter().any(|s| s.net.contains(n) || n.contains(&s.net)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(n: usize) -> Vec<(String, String)> {
        (0..n)
            .map(|i| (format!("h{i}"), format!("10.77.0.{}", 10 + i)))
            .collect()
    }

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn slices_follow_inventory_order_and_overrides() {
        let pod = net("10.244.0.0/16");
        let s = slices(pod, 24, &hosts(3), &BTreeMap::new()).unwrap();
        let nets: Vec<String> = s.iter().map(|s| s.net.to_string()).collect();
        assert_eq!(nets, ["10.244.0.0/24", "10.244.1.0/24", "10.244.2.0/24"]);
        // An override moves one host only; the others keep theirs.
        let o = BTreeMap::from([("h1".to_string(), net("10.244.200.0/24"))]);
        let s = slices(pod, 24, &hosts(3), &o).unwrap();
        let nets: Vec<String> = s.iter().map(|s| s.net.to_string()).collect();
        assert_eq!(nets, ["10.244.0.0/24", "10.244.200.0/24", "10.244.2.0/24"]);
    }

    #[test]
    fn colliding_overrides_name_both_hosts() {
        let pod = net("10.244.0.0/16");
        let o = BTreeMap::from([("h2".to_string(), net("10.244.0.0/24"))]);
        let err = slices(pod, 24, &hosts(3), &o).unwrap_err().to_string();
        assert!(
            err.contains("`h0`") && err.contains("`h2`") && err.contains("host var pod_cidr"),
            "{err}"
        );
        assert!(
            err.contains("give `h2`") && err.contains("e.g. 10.244.2.0/24"),
            "{err}"
        );
        // Outside the pod network, unknown hosts, too few slices, names as addresses.
        let o = BTreeMap::from([("h1".to_string(), net("10.9.0.0/24"))]);
        assert!(slices(pod, 24, &hosts(2), &o).is_err());
        let o = BTreeMap::from([("nope".to_string(), net("10.244.9.0/24"))]);
        assert!(slices(pod, 24, &hosts(2), &o).is_err());
        let err = slices(net("10.244.0.0/23"), 24, &hosts(3), &BTreeMap::new())
            .unwrap_err()
            .to_string();
        assert!(err.contains("too few"), "{err}");
        let named = vec![("a".to_string(), "master.lab".to_string())];
        let err = slices(pod, 24, &named, &BTreeMap::new())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("master.lab") && err.contains("not an IP"),
            "{err}"
        );
        assert!(slices(pod, 16, &hosts(1), &BTreeMap::new()).is_err());
    }
}
