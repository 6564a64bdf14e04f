//! Checks across cluster.yaml and hosts.yaml: errors point into the file that must change.

mod common;

use common::{assert_diagnostics, fixture, Expected};

fn check(case: &str, expected: &[Expected<'_>]) {
    let spec_path = fixture(&format!("cross/{case}/cluster.yaml"));
    let spec = kprov_engine::spec::load(&spec_path).unwrap_or_else(|e| panic!("{e}"));
    let inv = kprov_engine::inventory::load(&fixture(&format!("cross/{case}/hosts.yaml")))
        .unwrap_or_else(|e| panic!("{e}"));
    let diagnostics = kprov_engine::validate::check(&spec, &inv).expect_err("must be rejected");
    assert_diagnostics(&diagnostics, &spec_path, expected);
}

#[test]
fn advertise_address_of_a_worker_is_rejected() {
    check(
        "advertise_not_master",
        &[(
            3,
            22,
            "control_plane.advertise_address",
            "advertise address 10.0.0.11 belongs to host `node1`, which is not in `masters`",
            Some("use the address of a master, e.g. 10.0.0.10, or remove the key to use the first master's"),
        )],
    );
}

#[test]
fn advertise_address_of_no_host_is_rejected() {
    check(
        "advertise_unknown",
        &[(
            3,
            22,
            "control_plane.advertise_address",
            "advertise address 10.0.0.99 is not the address of a host in `masters` (master = 10.0.0.10)",
            Some("use the address of a master, e.g. 10.0.0.10, or remove the key to use the first master's"),
        )],
    );
}

#[test]
fn several_masters_without_endpoint_are_rejected() {
    check(
        "masters_without_endpoint",
        &[(
            2,
            1,
            "control_plane.endpoint",
            "2 masters (m1, m2) need control_plane.endpoint",
            Some("set control_plane.endpoint to a load balancer or DNS name in front of the masters' API servers, e.g. `endpoint: k8s-api.example.com:6443` (`10.0.0.10:6443` works but makes m1 a single point of failure)"),
        )],
    );
}

#[test]
fn service_cidr_containing_host_addresses_is_rejected() {
    check(
        "network_contains_hosts",
        &[(
            4,
            17,
            "networking.service_cidr",
            "service_cidr 10.0.0.0/12 contains host addresses: master (10.0.0.10), node1 (10.0.0.11)",
            Some("choose a network no host uses, e.g. service_cidr: 10.96.0.0/12"),
        )],
    );
}

#[test]
fn lab_inventory_without_hosts_passes_cross_checks() {
    let spec = kprov_engine::spec::load(&fixture("cross/advertise_unknown/cluster.yaml"))
        .unwrap_or_else(|e| panic!("{e}"));
    let inv = kprov_engine::inventory::load(&fixture("valid/lab-defaults.yaml"))
        .unwrap_or_else(|e| panic!("{e}"));
    kprov_engine::validate::check(&spec, &inv).unwrap_or_else(|e| panic!("{e}"));
}
