//! The JSON Schema `pattern`s that stand for kprov's string formats, so that any standard
//! validator (an editor's, Python's `jsonschema`) refuses what `kprov validate` refuses.
//!
//! The schema carries no custom `format`: a validator that does not know one lets every
//! string through. The patterns use only what ECMA-262, Python's `re` and Rust's regex
//! engines all read the same way (no `\d`, no look-around).

use std::sync::LazyLock;

use schemars::{json_schema, Schema, SchemaGenerator};

use super::formats;
use crate::spec::values::{MAX_MINOR, MIN_MINOR};

/// One IPv4 octet, 0–255 without leading zeros.
const OCTET: &str = "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])";
const HEX: &str = "[0-9a-fA-F]{1,4}";

fn ipv4() -> String {
    format!("{OCTET}(\\.{OCTET}){{3}}")
}

/// Every spelling of an IPv6 address Rust's parser takes (RFC 4291 section 2.2, with an
/// embedded IPv4 address in the last 32 bits), no zone index.
fn ipv6() -> String {
    let v4 = ipv4();
    // n groups, then `::`, then m groups, with n + m ≤ 7 (or the full 8 without `::`);
    // the last two groups may be an IPv4 address.
    let mut forms = vec![format!("({HEX}:){{7}}{HEX}"), format!("({HEX}:){{6}}{v4}")];
    for before in 0..=7usize {
        let head = match before {
            0 => String::new(),
            n => format!("({HEX}:){{{n}}}"),
        };
        let after_max = 7 - before;
        // Groups after `::` (up to after_max), ending in hex.
        let tail_hex = match after_max {
            0 => String::new(),
            m => format!("(({HEX}:){{0,{}}}{HEX})?", m - 1),
        };
        forms.push(format!(
            "{head}:{}{tail_hex}",
            if before == 0 { ":" } else { "" }
        ));
        // Ending in an IPv4 address, which takes two groups' room.
        if after_max >= 2 {
            let tail_v4 = match after_max - 2 {
                0 => v4.clone(),
                m => format!("({HEX}:){{0,{m}}}{v4}"),
            };
            forms.push(format!(
                "{head}:{}{tail_v4}",
                if before == 0 { ":" } else { "" }
            ));
        }
    }
    format!("({})", forms.join("|"))
}

/// `formats::IP`.
static IP: LazyLock<String> = LazyLock::new(|| format!("^({}|{})$", ipv4(), ipv6()));
/// `formats::CIDR`: IPv4 with a prefix of 0–32, IPv6 with 0–128.
static CIDR: LazyLock<String> = LazyLock::new(|| {
    format!(
        "^({}/(3[0-2]|[12]?[0-9])|{}/(12[0-8]|1[01][0-9]|[1-9]?[0-9]))$",
        ipv4(),
        ipv6()
    )
});
/// `formats::DNS_LABEL`.
const DNS_LABEL: &str = "^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$";
/// `formats::DNS_NAME` (with `maxLength` 253).
const DNS_NAME: &str =
    "^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$";
/// `formats::ADDRESS`: an IP address, or a DNS name (any case) with a letter or `-` in one
/// of its labels. (Labels holding one are not held to 63 characters here.)
static ADDRESS: LazyLock<String> = LazyLock::new(|| {
    let label = "[a-zA-Z0-9]([-a-zA-Z0-9]{0,61}[a-zA-Z0-9])?";
    let with_letter = "([a-zA-Z]([-a-zA-Z0-9]{0,61}[a-zA-Z0-9])?\
                       |[a-zA-Z0-9][-a-zA-Z0-9]{0,61}[a-zA-Z]\
                       |[a-zA-Z0-9][-a-zA-Z0-9]*[-a-zA-Z][-a-zA-Z0-9]*[a-zA-Z0-9])";
    format!(
        "^({}|{}|({label}\\.)*{with_letter}(\\.{label})*)$",
        ipv4(),
        ipv6()
    )
});
/// `formats::KUBERNETES_VERSION`: a full version of a supported minor release.
static KUBERNETES_VERSION: LazyLock<String> = LazyLock::new(|| {
    let minors: Vec<String> = (MIN_MINOR..=MAX_MINOR).map(|m| m.to_string()).collect();
    format!("^v?1\\.({})\\.(0|[1-9][0-9]*)$", minors.join("|"))
});
/// `formats::REPOSITORY_URL`: the characters RFC 3986 allows, a host for the network
/// schemes, an absolute path for `file`; brackets only around an IPv6 host.
static REPOSITORY_URL: LazyLock<String> = LazyLock::new(|| {
    let chars = "[-A-Za-z0-9._~:/?#@!$&'()*+,;=%]";
    let first = "[-A-Za-z0-9._~@!$&'()*+,;=%]";
    format!(
        "^((https?|ftp)://({first}|\\[{}\\]){chars}*|file:///{chars}+)$",
        ipv6()
    )
});

/// The pattern standing for `format` (one of the `formats` names).
pub(crate) fn of(format: &str) -> Option<&'static str> {
    Some(match format {
        formats::IP => IP.as_str(),
        formats::ADDRESS => ADDRESS.as_str(),
        formats::CIDR => CIDR.as_str(),
        formats::DNS_LABEL => DNS_LABEL,
        formats::DNS_NAME => DNS_NAME,
        formats::KUBERNETES_VERSION => KUBERNETES_VERSION.as_str(),
        formats::REPOSITORY_URL => REPOSITORY_URL.as_str(),
        _ => return None,
    })
}

/// The format a pattern of [`of`] stands for, to describe a mismatch by its name.
pub(crate) fn format_of(pattern: &str) -> Option<&'static str> {
    [
        formats::IP,
        formats::ADDRESS,
        formats::CIDR,
        formats::DNS_LABEL,
        formats::DNS_NAME,
        formats::KUBERNETES_VERSION,
        formats::REPOSITORY_URL,
    ]
    .into_iter()
    .find(|f| of(f) == Some(pattern))
}

/// A string schema for `format`.
pub(crate) fn string(format: &str) -> Schema {
    let mut schema = json_schema!({ "type": "string" });
    if let Some(pattern) = of(format) {
        schema.insert("pattern".into(), pattern.into());
    }
    if format == formats::DNS_NAME {
        schema.insert("maxLength".into(), 253.into());
    }
    schema
}

/// `schema_with` for an IP address field.
pub(crate) fn ip(_: &mut SchemaGenerator) -> Schema {
    string(formats::IP)
}

/// `schema_with` for an optional IP address field (`null` allowed).
pub(crate) fn optional_ip(generator: &mut SchemaGenerator) -> Schema {
    let mut schema = ip(generator);
    schema.insert("type".into(), serde_json::json!(["string", "null"]));
    schema
}

/// `schema_with` for an address field (IP address or DNS name).
pub(crate) fn address(_: &mut SchemaGenerator) -> Schema {
    string(formats::ADDRESS)
}

/// `schema_with` for an optional address field (`null` allowed).
pub(crate) fn optional_address(generator: &mut SchemaGenerator) -> Schema {
    let mut schema = address(generator);
    schema.insert("type".into(), serde_json::json!(["string", "null"]));
    schema
}

/// `schema_with` for a DNS name field.
pub(crate) fn dns_name(_: &mut SchemaGenerator) -> Schema {
    string(formats::DNS_NAME)
}

/// `schema_with` for a DNS label field.
pub(crate) fn dns_label(_: &mut SchemaGenerator) -> Schema {
    string(formats::DNS_LABEL)
}

/// `schema_with` for an optional repository URL field (`null` allowed).
pub(crate) fn optional_repository_url(_: &mut SchemaGenerator) -> Schema {
    let mut schema = string(formats::REPOSITORY_URL);
    schema.insert("type".into(), serde_json::json!(["string", "null"]));
    schema
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `text` matches the pattern of `format`, as the schema validator sees it.
    fn matches(format: &str, text: &str) -> bool {
        let schema = serde_json::json!({ "pattern": of(format).unwrap() });
        jsonschema::is_valid(&schema, &serde_json::json!(text))
    }

    /// The pattern agrees with kprov's own check on `samples`.
    fn agree(format: &str, check: fn(&str) -> bool, samples: &[&str]) {
        for s in samples {
            assert_eq!(matches(format, s), check(s), "{format}: {s:?}");
        }
    }

    #[test]
    fn ip_pattern_is_the_ip_parser() {
        agree(
            formats::IP,
            formats::is_ip,
            &[
                "192.168.1.10",
                "0.0.0.0",
                "255.255.255.255",
                "300.1.1.1",
                "1.2.3",
                "1.2.3.4.5",
                "01.2.3.4",
                "::",
                "::1",
                "fd00::1",
                "2001:db8::8a2e:370:7334",
                "1:2:3:4:5:6:7:8",
                "1:2:3:4:5:6:7:8:9",
                "1::2::3",
                "::ffff:10.0.0.1",
                "1:2:3:4:5:6:1.2.3.4",
                "1::1.2.3.4",
                "fe80::",
                "1:2:3:4:5:6:7::",
                "::2:3:4:5:6:7:8",
                "12345::",
                "g::1",
                "fe80::1%eth0",
                "",
                " 1.2.3.4",
                "1.2.3.4 ",
                "latest",
            ],
        );
    }

    #[test]
    fn address_pattern_is_the_inventory_check() {
        let valid = |s: &str| {
            let numeric = s.bytes().all(|b| b.is_ascii_digit() || b == b'.');
            formats::is_ip(s) || (!numeric && formats::is_dns_name(&s.to_lowercase()))
        };
        agree(
            formats::ADDRESS,
            valid,
            &[
                "192.168.1.10",
                "300.1.1.1",
                "10.0.0",
                "fd00::1",
                "fd00::1::2",
                "node1",
                "Node1.Example.COM",
                "a",
                "1",
                "1a",
                "a1",
                "1-2",
                "123.456",
                "-a",
                "a-",
                "a..b",
                "a_b",
                "node 1",
                "1.2.3.4.example",
                "",
                "k8s-1.lab",
            ],
        );
    }

    #[test]
    fn cidr_pattern_is_the_cidr_parser() {
        agree(
            formats::CIDR,
            formats::is_cidr,
            &[
                "10.244.0.0/16",
                "0.0.0.0/0",
                "10.0.0.0/32",
                "10.0.0.0/33",
                "10.0.0.0",
                "300.0.0.0/8",
                "fd00::/8",
                "fd00::/128",
                "fd00::/129",
                "::/0",
                "10.0.0.0/",
                "10.0.0.0/-1",
                "fd00:10:244::/56",
            ],
        );
    }

    #[test]
    fn dns_patterns_are_the_dns_checks() {
        let samples = [
            "node-1",
            "Node1",
            "-a",
            "a-",
            "a_b",
            "a",
            "cluster.local",
            "a..b",
            ".a",
            "",
        ];
        agree(formats::DNS_LABEL, formats::is_dns_label, &samples);
        agree(formats::DNS_NAME, formats::is_dns_name, &samples);
        assert!(!matches(formats::DNS_LABEL, &"a".repeat(64)));
    }

    #[test]
    fn version_pattern_takes_supported_full_versions_only() {
        for ok in ["1.28.0", "1.31.12", "v1.30.2"] {
            assert!(matches(formats::KUBERNETES_VERSION, ok), "{ok}");
        }
        for bad in [
            "latest", "1.28", "1.27.9", "1.32.0", "2.28.0", "1.28.x", "1.28.2.1", "stable",
        ] {
            assert!(!matches(formats::KUBERNETES_VERSION, bad), "{bad}");
        }
    }

    #[test]
    fn url_pattern_is_the_url_check() {
        agree(
            formats::REPOSITORY_URL,
            formats::is_repository_url,
            &[
                "http://mirror/debian",
                "file:///srv/repo",
                "mirror/debian",
                "https://pkgs.example/core:/stable:/v1.31/deb/",
                "http://[fd00::1]:8080/deb/",
                "http://",
                "http:///path",
                "file://relative",
                "http://x y",
                "http://x/\"q\"",
                "http://x/`id`",
                "http://x/a\\b",
                "http://x/\nnext",
                "http://[not-v6]/",
                "http://x/{a}|b",
                "ftp://m/x",
            ],
        );
    }

    #[test]
    fn formats_are_found_back_from_their_patterns() {
        for f in [formats::IP, formats::CIDR, formats::KUBERNETES_VERSION] {
            assert_eq!(format_of(of(f).unwrap()), Some(f));
        }
        assert_eq!(format_of("^x$"), None);
    }
}
