//! Network arithmetic for the checks: overlaps and host bits.

use std::net::IpAddr;

use ipnet::IpNet;

/// True when the two networks share any address.
pub(crate) fn overlaps(a: IpNet, b: IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// When `net` has host bits set (`10.244.1.0/16`), a hint naming the network meant.
pub(crate) fn host_bits_hint(net: IpNet) -> Option<String> {
    (net.addr() != net.network()).then(|| format!("did you mean {}?", net.trunc()))
}

/// True when `net` contains `address` (a textual IP; DNS names never match).
pub(crate) fn contains_address(net: IpNet, address: &str) -> bool {
    address.parse::<IpAddr>().is_ok_and(|ip| net.contains(&ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn overlap_is_symmetric() {
        assert!(overlaps(net("10.0.0.0/8"), net("10.96.0.0/12")));
        assert!(overlaps(net("10.96.0.0/12"), net("10.0.0.0/8")));
        assert!(!overlaps(net("10.244.0.0/16"), net("10.96.0.0/12")));
    }

    #[test]
    fn host_bits() {
        assert_eq!(
            host_bits_hint(net("10.244.1.0/16")).as_deref(),
            Some("did you mean 10.244.0.0/16?")
        );
        assert_eq!(host_bits_hint(net("10.244.0.0/16")), None);
    }

    #[test]
    fn addresses() {
        assert!(contains_address(net("10.0.0.0/8"), "10.1.2.3"));
        assert!(!contains_address(net("10.0.0.0/8"), "node1.example.com"));
    }
}
