//! Semantic checks of a cluster spec that the JSON Schema cannot express.

use super::cni::CniPlugin;
use super::os::REQUIRED_SYSCTLS;
use super::runtime::RuntimeKind;
use super::values::{Cidr, MAX_MINOR, MIN_MINOR};
use super::ClusterSpec;
use crate::diagnostic::Diagnostic;
use crate::validate::formats;
use crate::validate::net::{host_bits_hint, overlaps};

/// Every semantic problem of `spec`.
pub(super) fn check(spec: &ClusterSpec) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    version(spec, &mut out);
    networks(spec, &mut out);
    control_plane(spec, &mut out);
    cni(spec, &mut out);
    runtime(spec, &mut out);
    packages(spec, &mut out);
    sysctls(spec, &mut out);
    out
}

fn version(spec: &ClusterSpec, out: &mut Vec<Diagnostic>) {
    let version = spec.kubernetes_version;
    if !version.is_supported() {
        out.push(spec.source.at_value(
            "/kubernetes_version",
            format!("Kubernetes {version} is not supported (kprov supports 1.{MIN_MINOR} to 1.{MAX_MINOR})"),
            Some(format!("use a release from 1.{MIN_MINOR}.0 to 1.{MAX_MINOR}.x, e.g. \"1.{MAX_MINOR}.0\"")),
        ));
    }
}

fn cidr_host_bits(spec: &ClusterSpec, pointer: &str, cidr: Cidr, out: &mut Vec<Diagnostic>) {
    if let Some(hint) = host_bits_hint(cidr.0) {
        out.push(spec.source.at_value(
            pointer,
            format!("`{cidr}` has host bits set; a network address is expected"),
            Some(hint),
        ));
    }
}

fn networks(spec: &ClusterSpec, out: &mut Vec<Diagnostic>) {
    let net = &spec.networking;
    cidr_host_bits(spec, "/networking/pod_cidr", net.pod_cidr, out);
    cidr_host_bits(spec, "/networking/service_cidr", net.service_cidr, out);
    if overlaps(net.pod_cidr.0, net.service_cidr.0) {
        // Point at whichever of the two the user wrote (the service CIDR when both).
        let pointer = if spec.source.contains("/networking/service_cidr") {
            "/networking/service_cidr"
        } else {
            "/networking/pod_cidr"
        };
        out.push(spec.source.at_value(
            pointer,
            format!(
                "pod_cidr {} and service_cidr {} overlap",
                net.pod_cidr, net.service_cidr
            ),
            Some("choose two separate networks, e.g. pod_cidr 10.244.0.0/16 and service_cidr 10.96.0.0/12".into()),
        ));
    }
    let service = net.service_cidr.0;
    if service.max_prefix_len() - service.prefix_len() < 4 {
        out.push(spec.source.at_value(
            "/networking/service_cidr",
            format!("service_cidr {service} is too small: the DNS Service needs the 10th address"),
            Some("use a network with at least 16 addresses, e.g. 10.96.0.0/12".into()),
        ));
    }
    if net.pod_cidr.0.addr().is_ipv4() != net.service_cidr.0.addr().is_ipv4() {
        out.push(spec.source.at_value(
            "/networking/service_cidr",
            "pod_cidr and service_cidr must both be IPv4 or both be IPv6",
            None,
        ));
    }
}

fn is_host_name_or_ip(s: &str) -> bool {
    formats::is_ip(s) || formats::is_dns_name(s.strip_prefix("*.").unwrap_or(s))
}

fn control_plane(spec: &ClusterSpec, out: &mut Vec<Diagnostic>) {
    let cp = &spec.control_plane;
    for (i, san) in cp.cert_sans.iter().enumerate() {
        if !is_host_name_or_ip(san) {
            out.push(spec.source.at_value(
                &format!("/control_plane/cert_sans/{i}"),
                format!("`{san}` is neither an IP address nor a DNS name"),
                Some("use names like api.example.com or addresses like 192.168.1.10".into()),
            ));
        }
    }
    if let Some(endpoint) = &cp.endpoint {
        if !valid_endpoint(endpoint) {
            out.push(spec.source.at_value(
                "/control_plane/endpoint",
                format!("`{endpoint}` is not a valid endpoint"),
                Some("write `host` or `host:port`, e.g. api.example.com:6443 or 192.168.1.10:6443 ([v6]:port for IPv6)".into()),
            ));
        }
    }
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`.
fn valid_endpoint(endpoint: &str) -> bool {
    if let Ok(socket) = endpoint.parse::<std::net::SocketAddr>() {
        return socket.port() != 0;
    }
    if let Some(inner) = endpoint.strip_prefix('[').and_then(|e| e.strip_suffix(']')) {
        return inner.parse::<std::net::Ipv6Addr>().is_ok();
    }
    let (host, port) = match endpoint.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (endpoint, None),
    };
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|p| p != 0));
    port_ok && is_host_name_or_ip(host) && !host.starts_with("*.")
}

fn cni(spec: &ClusterSpec, out: &mut Vec<Diagnostic>) {
    let selected = spec.cni.plugin;
    for plugin in [CniPlugin::Flannel, CniPlugin::Calico, CniPlugin::Bridge] {
        let pointer = format!("/cni/{}", plugin.key());
        if plugin != selected && spec.source.contains(&pointer) {
            out.push(spec.source.at_key(
                &pointer,
                format!(
                    "options for `{}` are given but cni.plugin is `{}`",
                    plugin.key(),
                    selected.key()
                ),
                Some(format!(
                    "set `plugin: {}` or remove the `{}:` section",
                    plugin.key(),
                    plugin.key()
                )),
            ));
        }
    }
    if selected == CniPlugin::Calico {
        calico_manifest(spec, out);
    }
    let bridge = &spec.cni.bridge;
    if selected == CniPlugin::Bridge {
        let pod = spec.networking.pod_cidr.0;
        if bridge.node_cidr_mask <= pod.prefix_len() || bridge.node_cidr_mask > pod.max_prefix_len()
        {
            out.push(spec.source.at_value(
                "/cni/bridge/node_cidr_mask",
                format!(
                    "node_cidr_mask /{} does not split pod_cidr {pod} into per-host networks",
                    bridge.node_cidr_mask
                ),
                Some(format!(
                    "use a prefix longer than /{}, e.g. /24",
                    pod.prefix_len()
                )),
            ));
        }
        for (i, route) in bridge.routes.iter().enumerate() {
            cidr_host_bits(
                spec,
                &format!("/cni/bridge/routes/{i}/destination"),
                route.destination,
                out,
            );
        }
    }
}

/// `plugin: calico` needs the operator's `calico.yaml`, readable from here.
fn calico_manifest(spec: &ClusterSpec, out: &mut Vec<Diagnostic>) {
    let Some(path) = spec.cni.calico.manifest.as_deref() else {
        if spec.source.contains("/cni/calico/manifest") {
            return; // given but not a string: the structural check already said so
        }
        let hint = "download calico.yaml for your Calico version and set \
                    `cni: {calico: {manifest: /path/to/calico.yaml}}`";
        out.push(spec.source.at_value(
            "/cni/plugin",
            "cni.plugin is `calico` but cni.calico.manifest is not set",
            Some(hint.into()),
        ));
        return;
    };
    if let Err(e) = std::fs::metadata(path).and_then(|m| {
        if m.is_file() {
            Ok(())
        } else {
            Err(std::io::Error::other("not a regular file"))
        }
    }) {
        let hint = "give the path of calico.yaml on this machine (relative paths start \
                    where kprov runs)";
        out.push(spec.source.at_value(
            "/cni/calico/manifest",
            format!("cannot read the calico manifest `{path}`: {e}"),
            Some(hint.into()),
        ));
    }
}

/// Image references carry no URL scheme: `registry.k8s.io`, `harbor.local:443/k8s`.
fn image_reference(spec: &ClusterSpec, pointer: &str, value: &str, out: &mut Vec<Diagnostic>) {
    let Some((scheme, rest)) = value.split_once("://") else {
        // Image references reach the kubelet's flags file, manifests and runtime configs:
        // only the characters of the reference grammar (no quotes, `#`, `=`, brackets).
        let grammar = |c: char| c.is_ascii_alphanumeric() || "._-/:@".contains(c);
        if value.is_empty() || !value.chars().all(grammar) {
            out.push(
                spec.source.at_value(
                    pointer,
                    format!("`{}` is not an image reference", value.escape_debug()),
                    Some(
                        "write it like registry.k8s.io or harbor.example.com/k8s (letters, digits \
                     and . _ - / : @)"
                            .into(),
                    ),
                ),
            );
        }
        return;
    };
    out.push(spec.source.at_value(
        pointer,
        format!("`{value}` has a URL scheme (`{scheme}://`); image references have none"),
        Some(format!("write `{}`", rest.trim_end_matches('/'))),
    ));
}

fn runtime(spec: &ClusterSpec, out: &mut Vec<Diagnostic>) {
    image_reference(spec, "/image_repository", &spec.image_repository, out);
    if let Some(image) = &spec.runtime.sandbox_image {
        image_reference(spec, "/runtime/sandbox_image", image, out);
    }
    for (registry, endpoints) in &spec.runtime.registry_mirrors {
        let base = crate::validate::source_map::pointer_join("/runtime/registry_mirrors", registry);
        registry_host(spec, &base, registry, out);
        for (i, endpoint) in endpoints.iter().enumerate() {
            mirror_endpoint(spec, &format!("{base}/{i}"), endpoint, out);
        }
    }
    for (registry, config) in &spec.runtime.registries {
        let base = crate::validate::source_map::pointer_join("/runtime/registries", registry);
        registry_host(spec, &base, registry, out);
        if config.cert_file.is_some() != config.key_file.is_some() {
            let (given, missing) = if config.cert_file.is_some() {
                ("cert_file", "key_file")
            } else {
                ("key_file", "cert_file")
            };
            out.push(spec.source.at_key(
                &format!("{base}/{given}"),
                format!("`{given}` is set without `{missing}`"),
                Some("mutual TLS needs both the client certificate and its key".into()),
            ));
        } else if config.plain_http
            && (config.insecure_skip_verify
                || config.ca_file.is_some()
                || config.cert_file.is_some())
        {
            out.push(spec.source.at_key(
                &format!("{base}/plain_http"),
                "`plain_http` cannot be combined with TLS settings",
                Some(
                    "a plain-HTTP registry has no TLS: remove insecure_skip_verify, ca_file and \
                     cert_file/key_file, or remove plain_http"
                        .into(),
                ),
            ));
        } else if config.cert_file.is_some() && spec.runtime.kind == RuntimeKind::KprovAgent {
            out.push(
                spec.source.at_key(
                    &format!("{base}/cert_file"),
                    "kprov-agent cannot present client certificates to registries yet",
                    Some(
                        "use `runtime.kind: containerd` for registries that need mutual TLS, or \
                     registry credentials (`auth`) instead"
                            .into(),
                    ),
                ),
            );
        }
    }
}

/// Registry names become TOML keys and directory names on the hosts: `host[:port]` only.
fn registry_host(spec: &ClusterSpec, pointer: &str, name: &str, out: &mut Vec<Diagnostic>) {
    if let Err(why) = kprov_modules::registry_name::check_host(name) {
        out.push(spec.source.at_key(
            pointer,
            format!(
                "registry `{}` is not host[:port]: {}",
                name.escape_debug(),
                why.escape_debug()
            ),
            Some("name the registry as image references do, e.g. harbor.example.com:5000".into()),
        ));
    }
}

fn mirror_endpoint(spec: &ClusterSpec, pointer: &str, endpoint: &str, out: &mut Vec<Diagnostic>) {
    if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
        out.push(spec.source.at_value(
            pointer,
            format!("mirror endpoint `{endpoint}` is not an http:// or https:// URL"),
            Some(format!("write it as https://{endpoint}")),
        ));
        return;
    }
    match kprov_modules::registry_name::check_endpoint(endpoint) {
        Err(why) => out.push(spec.source.at_value(
            pointer,
            format!(
                "mirror endpoint `{}` is not a URL kprov can write: {}",
                endpoint.escape_debug(),
                why.escape_debug()
            ),
            Some("write it like https://mirror.example.com:5000 (an optional /path)".into()),
        )),
        Ok((_, _, path))
            if !path.trim_matches('/').is_empty()
                && spec.runtime.kind == RuntimeKind::KprovAgent =>
        {
            out.push(spec.source.at_value(
                pointer,
                format!("kprov-agent takes mirrors as host[:port]; `{endpoint}` has a path"),
                Some("drop the path, or use `runtime.kind: containerd`".into()),
            ))
        }
        Ok(_) => {}
    }
}

fn packages(spec: &ClusterSpec, out: &mut Vec<Diagnostic>) {
    let p = &spec.packages;
    if p.kubernetes_repository_key.is_some() && p.kubernetes_repository.is_none() {
        out.push(spec.source.at_key(
            "/packages/kubernetes_repository_key",
            "`kubernetes_repository_key` is the key of `kubernetes_repository`, which is not set"
                .to_string(),
            Some(
                "set packages.kubernetes_repository to the repository this key signs, or remove the key"
                    .into(),
            ),
        ));
    }
    if p.offline_repository.is_some() {
        for (key, set) in [
            ("apt_mirror", p.apt_mirror.is_some()),
            ("yum_mirror", p.yum_mirror.is_some()),
            ("kubernetes_repository", p.kubernetes_repository.is_some()),
        ] {
            if set {
                out.push(spec.source.at_key(
                    &format!("/packages/{key}"),
                    format!("`{key}` cannot be combined with `offline_repository`"),
                    Some(
                        "the offline repository serves every package; remove one of the two".into(),
                    ),
                ));
            }
        }
    }
}

fn sysctls(spec: &ClusterSpec, out: &mut Vec<Diagnostic>) {
    for key in REQUIRED_SYSCTLS {
        if let Some(value) = spec.os.sysctls.get(key) {
            if value.to_string() != "1" {
                out.push(spec.source.at_value(
                    &crate::validate::source_map::pointer_join("/os/sysctls", key),
                    format!("`{key}` must be 1 for Kubernetes networking, not {value}"),
                    Some(format!(
                        "remove `{key}` (kprov sets it to 1) or set it to 1"
                    )),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert!(valid_endpoint("api.example.com"));
        assert!(valid_endpoint("api.example.com:6443"));
        assert!(valid_endpoint("10.0.0.1:6443"));
        assert!(valid_endpoint("[fd00::1]:6443"));
        assert!(valid_endpoint("[fd00::1]"));
        assert!(!valid_endpoint("api.example.com:0"));
        assert!(!valid_endpoint("api example"));
        assert!(!valid_endpoint("https://api:6443"));
    }
}
