//! resolv.conf, hostname and hosts files shared by a pod's containers.

use crate::util::write_atomic;
use std::path::Path;

/// DNS settings for the pod's resolv.conf.
#[derive(Debug, Clone, Default)]
pub struct Dns<'a> {
    pub servers: &'a [String],
    pub searches: &'a [String],
    pub options: &'a [String],
}

/// Writes `resolv.conf` (from `dns`, or copied from `host_resolv` when it names
/// no server) and `hostname` into `dir`.
pub fn write_pod_files(
    dir: &Path,
    hostname: &str,
    dns: Dns<'_>,
    host_resolv: &Path,
) -> std::io::Result<()> {
    let resolv = if dns.servers.is_empty() {
        std::fs::read_to_string(host_resolv).unwrap_or_default()
    } else {
        let mut s = String::new();
        if !dns.searches.is_empty() {
            s.push_str(&format!("search {}\n", dns.searches.join(" ")));
        }
        for ns in dns.servers {
            s.push_str(&format!("nameserver {ns}\n"));
        }
        if !dns.options.is_empty() {
            s.push_str(&format!("options {}\n", dns.options.join(" ")));
        }
        s
    };
    write_atomic(&dir.join("resolv.conf"), resolv.as_bytes())?;
    write_atomic(&dir.join("hostname"), format!("{hostname}\n").as_bytes())?;
    write_hosts(dir, hostname, "")
}

/// Writes the pod's `hosts` file, with `ip hostname` when the IP is known.
pub fn write_hosts(dir: &Path, hostname: &str, ip: &str) -> std::io::Result<()> {
    let mut s = String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    if !ip.is_empty() && !hostname.is_empty() {
        s.push_str(&format!("{ip}\t{hostname}\n"));
    }
    write_atomic(&dir.join("hosts"), s.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_from_dns_config() {
        let d = tempfile::tempdir().unwrap();
        let servers = vec!["10.96.0.10".to_string()];
        let searches = vec!["default.svc.cluster.local".to_string()];
        let options = vec!["ndots:5".to_string()];
        write_pod_files(
            d.path(),
            "pod-a",
            Dns {
                servers: &servers,
                searches: &searches,
                options: &options,
            },
            Path::new("/nonexistent"),
        )
        .unwrap();
        let r = std::fs::read_to_string(d.path().join("resolv.conf")).unwrap();
        assert_eq!(
            r,
            "search default.svc.cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n"
        );
        write_hosts(d.path(), "pod-a", "10.99.0.3").unwrap();
        assert!(std::fs::read_to_string(d.path().join("hosts"))
            .unwrap()
            .contains("10.99.0.3\tpod-a"));
    }
}
