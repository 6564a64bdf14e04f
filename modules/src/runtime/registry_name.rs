//! The grammar of registry host names (`host[:port]`) and mirror endpoints
//! (`http[s]://host[:port][/path]`), shared by the modules that write them into runtime
//! configs and by `kprov validate`.

use std::net::{Ipv4Addr, Ipv6Addr};

/// Checks `s` is `host[:port]`: a DNS name, an IPv4 address or a bracketed IPv6 address,
/// with an optional port 1–65535. `Err` says what is wrong.
pub fn check_host(s: &str) -> Result<(), String> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let Some((ip, after)) = rest.split_once(']') else {
            return Err("an IPv6 address needs its closing `]`".into());
        };
        if ip.parse::<Ipv6Addr>().is_err() {
            return Err(format!("`{ip}` is not an IPv6 address"));
        }
        match after {
            "" => return Ok(()),
            _ => match after.strip_prefix(':') {
                Some(port) => (None, Some(port)),
                None => return Err("only `:PORT` may follow `]`".into()),
            },
        }
    } else {
        match s.split_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(s), None),
        }
    };
    if let Some(port) = port {
        let ok = !port.is_empty()
            && port.len() <= 5
            && port.bytes().all(|b| b.is_ascii_digit())
            && port.parse::<u32>().is_ok_and(|p| (1..=65535).contains(&p));
        if !ok {
            return Err(format!("`{port}` is not a port (1-65535)"));
        }
    }
    match host {
        Some(h) => dns_name_or_ipv4(h),
        None => Ok(()),
    }
}

fn dns_name_or_ipv4(h: &str) -> Result<(), String> {
    if h.parse::<Ipv4Addr>().is_ok() {
        return Ok(());
    }
    if h.is_empty() || h.len() > 253 {
        return Err("a host name has 1 to 253 characters".into());
    }
    for label in h.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return Err(format!(
                "`{label}` is not a host name label (letters, digits and `-`, not at either end)"
            ));
        }
    }
    Ok(())
}

/// Checks `s` is `http://` or `https://` followed by `host[:port]` and an optional path of
/// URL-safe characters. Returns (scheme, host, path).
pub fn check_endpoint(s: &str) -> Result<(&str, &str, &str), String> {
    let Some((scheme, rest)) = s.split_once("://") else {
        return Err("a mirror endpoint is an http:// or https:// URL".into());
    };
    if scheme != "http" && scheme != "https" {
        return Err(format!("`{scheme}://` is not http:// or https://"));
    }
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    check_host(host)?;
    if let Some(bad) = path
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "/-._~".contains(*c)))
    {
        return Err(format!("`{bad}` has no place in an endpoint's path"));
    }
    Ok((scheme, host, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        for ok in [
            "docker.io",
            "harbor.example.com:443",
            "10.0.0.1:5000",
            "[fd00::1]:5000",
            "[::1]",
            "localhost",
            "a-b.c",
        ] {
            assert_eq!(check_host(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "a\"b",
            "x\"]\n[evil]",
            "h:0",
            "h:65536",
            "h:",
            "h:5000:1",
            "-a.b",
            "a..b",
            "a b",
            "h#x",
            "h=1",
            "[fd00::1",
            "[nope]:1",
            "h/p",
            "]",
        ] {
            assert!(check_host(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn endpoints() {
        assert_eq!(
            check_endpoint("https://m.lab:5000/v2/x"),
            Ok(("https", "m.lab:5000", "/v2/x"))
        );
        assert_eq!(
            check_endpoint("http://10.0.0.1"),
            Ok(("http", "10.0.0.1", ""))
        );
        for bad in [
            "m.lab",
            "ftp://m",
            "https://m\"]",
            "https://m/p\"q",
            "https://m/a\nb",
            "https://",
            "https://m/#x",
        ] {
            assert!(check_endpoint(bad).is_err(), "{bad:?} accepted");
        }
    }
}
