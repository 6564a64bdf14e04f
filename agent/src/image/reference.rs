//! Image reference normalization (`busybox` → `docker.io/library/busybox:latest`).
//!
//! Written here rather than using `oci_spec`'s parser in the daemon: that one
//! compiles a large regex on first use and keeps ~12 MiB resident, more than
//! the agent's whole idle footprint. (The pull process still uses it.)

use super::ImageError;

/// The default registry for names without one.
pub const DEFAULT_REGISTRY: &str = "docker.io";

/// A parsed, normalized image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    pub registry: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl ImageRef {
    /// `registry/repository[:tag][@digest]`.
    pub fn whole(&self) -> String {
        let mut s = format!("{}/{}", self.registry, self.repository);
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d);
        }
        s
    }
}

fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    !b.is_empty()
        && b.iter().all(|&x| {
            x.is_ascii_lowercase() || x.is_ascii_digit() || matches!(x, b'.' | b'_' | b'-')
        })
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|&x| x.is_ascii_alphanumeric() || matches!(x, b'.' | b'_' | b'-'))
}

fn valid_digest(d: &str) -> bool {
    match d.split_once(':') {
        Some(("sha256", h)) => {
            h.len() == 64
                && h.bytes()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        }
        Some((alg, h)) => {
            !alg.is_empty() && h.len() >= 32 && h.bytes().all(|c| c.is_ascii_hexdigit())
        }
        None => false,
    }
}

fn valid_registry(r: &str) -> bool {
    let (host, port) = match r.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || r.starts_with('[') => (h, Some(p)),
        _ => (r, None),
    };
    let host_ok = if host.starts_with('[') && host.ends_with(']') {
        host[1..host.len() - 1]
            .bytes()
            .all(|c| c.is_ascii_hexdigit() || c == b':')
    } else {
        !host.is_empty()
            && host
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b'-')
    };
    host_ok && port.is_none_or(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()))
}

/// Parses and normalizes an image reference.
pub fn normalize(image: &str) -> Result<ImageRef, ImageError> {
    let bad = |why: &str| ImageError::BadReference(image.to_string(), why.to_string());
    let (name_tag, digest) = match image.split_once('@') {
        Some((n, d)) => {
            if !valid_digest(d) {
                return Err(bad("the digest must look like sha256:<64 hex digits>"));
            }
            (n, Some(d.to_string()))
        }
        None => (image, None),
    };
    let last_slash = name_tag.rfind('/').map(|i| i + 1).unwrap_or(0);
    let (name, tag) = match name_tag[last_slash..].rfind(':') {
        Some(i) => {
            let t = &name_tag[last_slash + i + 1..];
            if !valid_tag(t) {
                return Err(bad("invalid tag"));
            }
            (&name_tag[..last_slash + i], Some(t.to_string()))
        }
        None => (name_tag, None),
    };
    let mut parts: Vec<&str> = name.split('/').collect();
    let registry = if parts.len() > 1
        && (parts[0].contains('.') || parts[0].contains(':') || parts[0] == "localhost")
    {
        let r = parts.remove(0);
        if !valid_registry(r) {
            return Err(bad("invalid registry host"));
        }
        r.to_string()
    } else {
        DEFAULT_REGISTRY.to_string()
    };
    if parts.is_empty() || !parts.iter().all(|c| valid_component(c)) {
        return Err(bad(
            "repository names are lowercase letters, digits and . _ - separated by /",
        ));
    }
    let mut repository = parts.join("/");
    if registry == DEFAULT_REGISTRY && parts.len() == 1 {
        repository = format!("library/{repository}");
    }
    let tag = match (tag, &digest) {
        (None, None) => Some("latest".to_string()),
        (t, _) => t,
    };
    Ok(ImageRef {
        registry,
        repository,
        tag,
        digest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(s: &str) -> String {
        normalize(s).unwrap().whole()
    }

    #[test]
    fn short_names_expand() {
        assert_eq!(whole("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(whole("busybox:1.36"), "docker.io/library/busybox:1.36");
        assert_eq!(whole("user/app"), "docker.io/user/app:latest");
        assert_eq!(whole("127.0.0.1:5000/x/y:1"), "127.0.0.1:5000/x/y:1");
        assert_eq!(whole("localhost/app"), "localhost/app:latest");
        assert_eq!(
            whole("registry.k8s.io/pause:3.9"),
            "registry.k8s.io/pause:3.9"
        );
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            whole(&format!("quay.io/a/b@{d}")),
            format!("quay.io/a/b@{d}")
        );
        assert_eq!(whole(&format!("a/b:1@{d}")), format!("docker.io/a/b:1@{d}"));
    }

    #[test]
    fn agrees_with_the_oci_parser() {
        for s in [
            "busybox",
            "a/b/c:v1.2-3",
            "127.0.0.1:5000/test/multi:1",
            "gcr.io/x/y",
        ] {
            let theirs: oci_client::Reference = s.parse().unwrap();
            assert_eq!(whole(s), theirs.whole(), "{s}");
        }
    }

    #[test]
    fn garbage_is_an_error() {
        for s in [
            "UPPER/Case",
            "Not A Ref!!",
            "a//b",
            "x:",
            "-a",
            "a@sha256:zz",
            "",
        ] {
            assert!(normalize(s).is_err(), "{s:?} must be refused");
        }
    }
}
