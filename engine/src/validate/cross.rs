//! Checks that need both files: the advertise address against the masters, the cluster
//! networks against the host addresses.

use std::net::IpAddr;

use ipnet::IpNet;

use super::net::{contains_address, overlaps};
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::inventory::{Inventory, MASTERS};
use crate::spec::ClusterSpec;

/// Cross-file checks of `spec` against `inventory` (an inventory without hosts, i.e. a lab
/// not brought up yet, passes).
pub fn check(spec: &ClusterSpec, inventory: &Inventory) -> Result<(), Diagnostics> {
    let mut out = Vec::new();
    if !inventory.hosts.is_empty() {
        advertise_address(spec, inventory, &mut out);
        several_masters(spec, inventory, &mut out);
        networks(spec, inventory, &mut out);
        super::slices::check(spec, inventory, &mut out);
    }
    Diagnostics(out).into_result(())
}

fn same_ip(address: &str, ip: IpAddr) -> bool {
    address.parse::<IpAddr>().is_ok_and(|a| a == ip)
}

fn advertise_address(spec: &ClusterSpec, inventory: &Inventory, out: &mut Vec<Diagnostic>) {
    let Some(ip) = spec.control_plane.advertise_address else {
        return;
    };
    let masters = inventory.masters();
    if masters.iter().any(|m| same_ip(&m.address, ip)) {
        return;
    }
    let pointer = "/control_plane/advertise_address";
    let listed: Vec<String> = masters
        .iter()
        .map(|m| format!("{} = {}", m.name, m.address))
        .collect();
    let hint = match masters.first() {
        Some(first) => Some(format!(
            "use the address of a master, e.g. {}, or remove the key to use the first master's",
            first.address
        )),
        None => Some(format!(
            "add the host with this address to the `{MASTERS}` group"
        )),
    };
    if let Some(other) = inventory.hosts.iter().find(|h| same_ip(&h.address, ip)) {
        out.push(spec.source().at_value(
            pointer,
            format!(
                "advertise address {ip} belongs to host `{}`, which is not in `{MASTERS}`",
                other.name
            ),
            hint,
        ));
    } else if masters.iter().all(|m| m.address.parse::<IpAddr>().is_ok()) {
        // With DNS names for masters this can only be decided from the hosts' facts.
        out.push(spec.source().at_value(
            pointer,
            format!(
                "advertise address {ip} is not the address of a host in `{MASTERS}` ({})",
                listed.join(", ")
            ),
            hint,
        ));
    }
}

/// More than one master needs a stable API endpoint in front of them: every
/// kubeconfig, the kubelets and the joining masters use it.
fn several_masters(spec: &ClusterSpec, inventory: &Inventory, out: &mut Vec<Diagnostic>) {
    let masters = inventory.masters();
    if masters.len() < 2 || spec.control_plane.endpoint.is_some() {
        return;
    }
    let names: Vec<&str> = masters.iter().map(|m| m.name.as_str()).collect();
    out.push(spec.source().at_key(
        "/control_plane/endpoint",
        format!(
            "{} masters ({}) need control_plane.endpoint",
            masters.len(),
            names.join(", ")
        ),
        Some(format!(
            "set control_plane.endpoint to a load balancer or DNS name in front of the masters' \
             API servers, e.g. `endpoint: k8s-api.example.com:6443` (`{}:6443` works but makes \
             {} a single point of failure)",
            masters[0].address, masters[0].name
        )),
    ));
}

/// Private networks offered when a default CIDR collides with the hosts.
const ALTERNATIVES: [&str; 4] = [
    "10.244.0.0/16",
    "10.96.0.0/12",
    "172.16.0.0/16",
    "192.168.0.0/16",
];

fn networks(spec: &ClusterSpec, inventory: &Inventory, out: &mut Vec<Diagnostic>) {
    let net = &spec.networking;
    for (name, pointer, cidr, other) in [
        (
            "pod_cidr",
            "/networking/pod_cidr",
            net.pod_cidr.0,
            net.service_cidr.0,
        ),
        (
            "service_cidr",
            "/networking/service_cidr",
            net.service_cidr.0,
            net.pod_cidr.0,
        ),
    ] {
        let inside: Vec<String> = inventory
            .hosts
            .iter()
            .filter(|h| contains_address(cidr, &h.address))
            .map(|h| format!("{} ({})", h.name, h.address))
            .collect();
        if inside.is_empty() {
            continue;
        }
        let free = ALTERNATIVES
            .iter()
            .filter_map(|a| a.parse::<IpNet>().ok())
            .find(|a| {
                !overlaps(*a, other)
                    && !inventory
                        .hosts
                        .iter()
                        .any(|h| contains_address(*a, &h.address))
            });
        out.push(spec.source().at_value(
            pointer,
            format!(
                "{name} {cidr} contains host addresses: {}",
                inside.join(", ")
            ),
            Some(match free {
                Some(free) => format!("choose a network no host uses, e.g. {name}: {free}"),
                None => "choose a network no host uses".into(),
            }),
        ));
    }
}
