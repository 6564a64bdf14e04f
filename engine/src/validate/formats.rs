//! kprov's string formats, checked by the typed model; the JSON Schema carries them as
//! `pattern`s (see `patterns`).

use std::net::IpAddr;

use ipnet::IpNet;

/// `format: cidr`: an address with a prefix length (`10.244.0.0/16`).
pub(crate) const CIDR: &str = "cidr";
/// `format: ip`: an IPv4 or IPv6 address.
pub(crate) const IP: &str = "ip";
/// `format: dns-label`: a DNS-1123 label (host names).
pub(crate) const DNS_LABEL: &str = "dns-label";
/// `format: dns-name`: a DNS-1123 subdomain (`cluster.local`).
pub(crate) const DNS_NAME: &str = "dns-name";
/// `format: kubernetes-version`: `1.28.2` (an optional leading `v` is accepted).
pub(crate) const KUBERNETES_VERSION: &str = "kubernetes-version";
/// `format: repository-url`: an `http`, `https`, `ftp` or `file` URL.
pub(crate) const REPOSITORY_URL: &str = "repository-url";

/// An SSH or cluster address: an IP address, or a DNS name that is not all digits and dots
/// (`10.0.0.300` is a broken IP address, not a name). Bad ones are reported by the
/// inventory checks, which say which host has it.
pub(crate) const ADDRESS: &str = "address";

/// Pattern of a port written as a string (`"22"`, as Ansible accepts).
pub(crate) const PORT_PATTERN: &str = "^[0-9]{1,5}$";

/// What a string matching `pattern` looks like, for messages.
pub(crate) fn describe_pattern(pattern: &str) -> String {
    match pattern {
        PORT_PATTERN => "a port number such as 22".into(),
        other => format!("of the expected form (the pattern {other})"),
    }
}

/// True when kprov's own check takes `s` as a value of `format`, or when a later check
/// reports every bad value of `format` itself (addresses).
pub(crate) fn accepts(format: &str, s: &str) -> bool {
    match format {
        ADDRESS => true,
        CIDR => is_cidr(s),
        IP => is_ip(s),
        DNS_LABEL => is_dns_label(s),
        DNS_NAME => is_dns_name(s),
        KUBERNETES_VERSION => parse_version(s).is_some(),
        REPOSITORY_URL => is_repository_url(s),
        _ => false,
    }
}

/// True for a parseable CIDR.
pub(crate) fn is_cidr(s: &str) -> bool {
    s.parse::<IpNet>().is_ok()
}

/// True for an IP address.
pub(crate) fn is_ip(s: &str) -> bool {
    s.parse::<IpAddr>().is_ok()
}

/// True for a DNS-1123 label: 1–63 lowercase letters, digits or `-`, alphanumeric at both ends.
pub(crate) fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// True for a DNS-1123 subdomain: dot-separated labels, at most 253 characters.
pub(crate) fn is_dns_name(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label)
}

/// Parses `1.28.2` or `v1.28.2` into its three numbers.
pub(crate) fn parse_version(s: &str) -> Option<(u32, u32, u32)> {
    let s = s.strip_prefix('v').unwrap_or(s);
    let mut parts = s.split('.');
    let mut next = || -> Option<u32> {
        let part = parts.next()?;
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let version = (next()?, next()?, next()?);
    parts.next().is_none().then_some(version)
}

/// True for a repository URL kprov can point a package manager at: a scheme, a host (for
/// the network schemes) and only the characters RFC 3986 allows (no spaces, quotes,
/// backslashes or control characters; brackets only around an IPv6 host).
pub(crate) fn is_repository_url(s: &str) -> bool {
    let url_char = |c: char| c.is_ascii_alphanumeric() || "-._~:/?#@!$&'()*+,;=%".contains(c);
    let Some(rest) = ["http://", "https://", "ftp://", "file://"]
        .iter()
        .find_map(|scheme| s.strip_prefix(scheme))
    else {
        return false;
    };
    let file = s.starts_with("file://");
    // An IPv6 host literal is the only place for brackets.
    let rest = match rest.strip_prefix('[').and_then(|r| r.split_once(']')) {
        Some((v6, tail)) if !file && v6.parse::<std::net::Ipv6Addr>().is_ok() => tail,
        Some(_) => return false,
        None => rest,
    };
    let host_ok = if file {
        rest.starts_with('/') && rest.len() > 1
    } else {
        !rest.is_empty() && !rest.starts_with(['/', ':', '?', '#']) || s.contains("://[")
    };
    host_ok && rest.chars().all(url_char)
}

/// What a value of `format` must look like, for error messages.
pub(crate) fn describe(format: &str) -> &'static str {
    match format {
        CIDR => "a CIDR such as 10.244.0.0/16",
        IP => "an IP address such as 192.168.1.10",
        ADDRESS => "an IP address or a DNS name",
        DNS_LABEL => "a DNS-1123 label: at most 63 lowercase letters, digits or '-', starting and ending with a letter or digit",
        DNS_NAME => "a DNS name such as cluster.local (lowercase letters, digits, '-' and '.')",
        KUBERNETES_VERSION => "a full Kubernetes version such as \"1.28.2\"",
        REPOSITORY_URL => "an http://, https://, ftp:// or file:/// URL",
        _ => "a value in the documented format",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(parse_version("1.28.2"), Some((1, 28, 2)));
        assert_eq!(parse_version("v1.31.0"), Some((1, 31, 0)));
        assert_eq!(parse_version("1.28"), None);
        assert_eq!(parse_version("1.28.2.1"), None);
        assert_eq!(parse_version("1.x.2"), None);
    }

    #[test]
    fn dns_labels() {
        assert!(is_dns_label("node-1"));
        assert!(!is_dns_label("Node1"));
        assert!(!is_dns_label("-a"));
        assert!(!is_dns_label("a_b"));
        assert!(!is_dns_label(&"a".repeat(64)));
        assert!(is_dns_name("cluster.local"));
        assert!(!is_dns_name("cluster..local"));
    }

    #[test]
    fn urls() {
        assert!(is_repository_url("http://mirror/debian"));
        assert!(is_repository_url("file:///srv/repo"));
        assert!(!is_repository_url("mirror/debian"));
        assert!(is_repository_url(
            "https://pkgs.example/core:/stable:/v1.31/deb/"
        ));
        assert!(is_repository_url("http://[fd00::1]:8080/deb/"));
        for bad in [
            "http://",
            "http:///path",
            "file://relative",
            "http://x y",
            "http://x/\"q\"",
            "http://x/`id`",
            "http://x/a\\b",
            "http://x/\nnext",
            "http://x/[1]",
            "http://[not-v6]/",
            "http://x/{a}|b",
        ] {
            assert!(!is_repository_url(bad), "{bad:?}");
        }
    }
}
