//! Hosts given by DNS name (Ansible inventories without `ansible_host` use the name):
//! SSH keeps the name, while everything that needs the host's cluster address
//! (`/etc/hosts`, the advertise address, etcd, routes, certificate names) gets an IP.

use std::net::{IpAddr, ToSocketAddrs};

use super::Inventory;

impl Inventory {
    /// Replaces every cluster address that is a DNS name by the IP address this machine
    /// resolves it to (the address SSH connects to; IPv4 preferred); `ssh_address` keeps
    /// the name. Returns one warning per name that does not resolve (left as it is: the
    /// run reports that host unreachable, or a jump host resolves it).
    pub fn resolve_addresses(&mut self) -> Vec<String> {
        let mut warnings = Vec::new();
        for host in &mut self.hosts {
            if host.address.parse::<IpAddr>().is_ok() {
                continue;
            }
            match resolve(&host.address, host.port) {
                Some(ip) => {
                    tracing::debug!(host = %host.name, name = %host.address, %ip, "resolved");
                    host.address = ip.to_string();
                }
                None => warnings.push(format!(
                    "host `{}`: `{}` does not resolve on this machine; set its `ip` \
                     (kubespray's cluster address) so /etc/hosts, etcd and the certificates \
                     get an IP address",
                    host.name, host.address
                )),
            }
        }
        warnings
    }
}

/// The first IPv4 address `name` resolves to, else the first IPv6 one.
fn resolve(name: &str, port: u16) -> Option<IpAddr> {
    let addrs: Vec<IpAddr> = (name, port)
        .to_socket_addrs()
        .ok()?
        .map(|a| a.ip())
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    #[test]
    fn names_become_ips_and_ssh_keeps_the_name() {
        // Only names /etc/hosts answers: nothing leaves the machine.
        let text = "hosts:\n  m: { address: localhost }\n  n: { address: 192.0.2.7 }\n\
                    groups:\n  masters: { hosts: [m] }\n";
        let mut inv = super::super::from_str(Path::new("h.yaml"), text).unwrap();
        let warnings = inv.resolve_addresses();
        let m = inv.host("m").unwrap();
        assert!(m.address.parse::<std::net::IpAddr>().unwrap().is_loopback());
        assert_eq!(m.ssh_address, "localhost");
        assert_eq!(inv.host("n").unwrap().address, "192.0.2.7");
        assert!(warnings.is_empty(), "{warnings:?}");
    }
}
