//! Malformed cluster specs: every problem is reported with file:line:column, the key, the
//! message and the hint (one test per fixture under `fixtures/spec/`).

mod common;

use common::{assert_diagnostics, fixture};

macro_rules! spec_error {
    ($name:ident, [$($expected:expr),+ $(,)?]) => {
        #[test]
        fn $name() {
            let path = fixture(concat!("spec/", stringify!($name), ".yaml"));
            let diagnostics = kprov_engine::spec::load(&path).expect_err("the spec must be rejected");
            assert_diagnostics(&diagnostics, &path, &[$($expected),+]);
        }
    };
}

spec_error!(
    bad_advertise_address,
    [(
        3,
        22,
        "control_plane.advertise_address",
        "`192.168.1.300` is not an IP address such as 192.168.1.10",
        None
    ),]
);

spec_error!(
    agent_client_certificate,
    [(
        5,
        7,
        "runtime.registries.\"harbor.example.com\".cert_file",
        "kprov-agent cannot present client certificates to registries yet",
        Some("use `runtime.kind: containerd` for registries that need mutual TLS, or registry credentials (`auth`) instead")
    ),]
);

spec_error!(
    plain_http_with_tls,
    [(
        5,
        7,
        "runtime.registries.\"registry.lab:5000\".plain_http",
        "`plain_http` cannot be combined with TLS settings",
        Some("a plain-HTTP registry has no TLS: remove insecure_skip_verify, ca_file and cert_file/key_file, or remove plain_http")
    ),]
);

spec_error!(
    bad_cert_san,
    [(
        5,
        7,
        "control_plane.cert_sans[1]",
        "`not a name` is neither an IP address nor a DNS name",
        Some("use names like api.example.com or addresses like 192.168.1.10")
    ),]
);

spec_error!(
    bad_cgroup_driver,
    [(
        3,
        18,
        "runtime.cgroup_driver",
        "`cgroup` is not a valid value; expected one of `systemd`, `cgroupfs`",
        Some("did you mean `cgroupfs`?")
    ),]
);

spec_error!(
    bad_cidr,
    [(
        3,
        13,
        "networking.pod_cidr",
        "`10.244.0.0/33` is not a CIDR such as 10.244.0.0/16",
        Some("write the network address and prefix length, e.g. 10.244.0.0/16")
    ),]
);

spec_error!(bad_dns_domain, [
    (3, 15, "networking.dns_domain", "`Cluster_Local` is not a DNS name such as cluster.local (lowercase letters, digits, '-' and '.')", None),
]);

spec_error!(
    bad_port,
    [(
        3,
        14,
        "control_plane.bind_port",
        "the number `70000` is too large (the maximum is 65535)",
        Some("a TCP port is a number from 1 to 65535")
    ),]
);

spec_error!(
    bad_runtime_kind,
    [(
        3,
        9,
        "runtime.kind",
        "`cri` is not a valid value; expected one of `kprov-agent`, `containerd`, `cri-o`",
        Some("did you mean `cri-o`?")
    ),]
);

spec_error!(
    bool_as_string,
    [(
        3,
        17,
        "os.disable_swap",
        "expected true or false, found the string `no`",
        Some("write true or false, without quotes")
    ),]
);

spec_error!(
    bridge_mask_too_short,
    [(
        5,
        21,
        "cni.bridge.node_cidr_mask",
        "node_cidr_mask /16 does not split pod_cidr 10.244.0.0/16 into per-host networks",
        Some("use a prefix longer than /16, e.g. /24")
    ),]
);

spec_error!(
    cert_sans_not_list,
    [(
        3,
        14,
        "control_plane.cert_sans",
        "expected a list, found the string `api.example.com`",
        Some("write a list: `[a, b]` or one `- item` per line")
    ),]
);

spec_error!(
    cidr_host_bits,
    [(
        3,
        13,
        "networking.pod_cidr",
        "`10.244.1.0/16` has host bits set; a network address is expected",
        Some("did you mean 10.244.0.0/16?")
    ),]
);

spec_error!(
    cni_options_mismatch,
    [(
        4,
        3,
        "cni.calico",
        "options for `calico` are given but cni.plugin is `flannel`",
        Some("set `plugin: calico` or remove the `calico:` section")
    ),]
);

spec_error!(
    duplicate_key,
    [(
        5,
        3,
        "networking.pod_cidr",
        "duplicate key `pod_cidr` (first defined at line 3, column 3)",
        Some("keep one of them; a later duplicate is ignored")
    ),]
);

spec_error!(
    empty,
    [(
        1,
        1,
        "",
        "the file is empty",
        Some("see the example files shipped with kprov for the expected layout")
    ),]
);

spec_error!(image_repository_with_scheme, [
    (2, 19, "image_repository", "`https://harbor.example.com/k8s/` has a URL scheme (`https://`); image references have none", Some("write `harbor.example.com/k8s`")),
]);

spec_error!(inventory_given, [
    (2, 1, "", "this file is an inventory, not a cluster spec", Some("pass the cluster spec (with `kubernetes_version:`) as the spec and this file with `-i`")),
]);

spec_error!(
    list_instead_of_mapping,
    [(
        4,
        5,
        "runtime.registry_mirrors",
        "expected a mapping, found a list",
        Some("write `name: value` entries (a mapping), not `- item` lines")
    ),]
);

spec_error!(
    mirror_not_url,
    [(
        5,
        9,
        "runtime.registry_mirrors.\"docker.io\"[0]",
        "mirror endpoint `mirror.example.com` is not an http:// or https:// URL",
        Some("write it as https://mirror.example.com")
    ),]
);

spec_error!(
    missing_version,
    [(
        1,
        1,
        "kubernetes_version",
        "missing required key `kubernetes_version`",
        Some("add `kubernetes_version: \"1.28.2\"`")
    ),]
);

spec_error!(
    offline_with_mirror,
    [(
        3,
        3,
        "packages.apt_mirror",
        "`apt_mirror` cannot be combined with `offline_repository`",
        Some("the offline repository serves every package; remove one of the two")
    ),]
);

spec_error!(overlapping_cidrs, [
    (4, 17, "networking.service_cidr", "pod_cidr 10.96.0.0/16 and service_cidr 10.96.0.0/12 overlap", Some("choose two separate networks, e.g. pod_cidr 10.244.0.0/16 and service_cidr 10.96.0.0/12")),
]);

spec_error!(
    port_not_number,
    [(
        3,
        14,
        "control_plane.bind_port",
        "expected a whole number, found the string `https`",
        None
    ),]
);

spec_error!(
    registry_auth_as_string,
    [(
        5,
        13,
        "runtime.registries.\"harbor.local\".auth",
        "expected a mapping, found a hidden value",
        None
    ),]
);

spec_error!(
    registry_auth_missing_password,
    [(
        5,
        7,
        "runtime.registries.\"harbor.local\".auth.password",
        "missing required key `password`",
        Some("add `password:` here")
    ),]
);

spec_error!(
    repository_not_url,
    [(
        3,
        15,
        "packages.apt_mirror",
        "`mirror.example.com/debian` is not an http://, https://, ftp:// or file:/// URL",
        None
    ),]
);

spec_error!(
    kubernetes_repository_hostile,
    [
        (
            3,
            26,
            "packages.kubernetes_repository",
            "`http://repo.example/`reboot`/deb/` is not an http://, https://, ftp:// or file:/// URL",
            None
        ),
        (
            4,
            30,
            "packages.kubernetes_repository_key",
            "`http://repo.example/key asc` is not an http://, https://, ftp:// or file:/// URL",
            None
        ),
    ]
);

spec_error!(
    repository_key_without_repository,
    [(
        3,
        3,
        "packages.kubernetes_repository_key",
        "`kubernetes_repository_key` is the key of `kubernetes_repository`, which is not set",
        Some("set packages.kubernetes_repository to the repository this key signs, or remove the key")
    ),]
);

spec_error!(
    secret_not_repeated,
    [(
        7,
        19,
        "runtime.registries.\"harbor.local\".auth.password",
        "expected a string, found a hidden value",
        Some("put the value in quotes")
    ),]
);

spec_error!(
    section_not_mapping,
    [(
        2,
        10,
        "runtime",
        "expected a mapping, found the string `containerd`",
        None
    ),]
);

spec_error!(several_errors, [
    (1, 21, "kubernetes_version", "expected a string, found the number `1.30`", Some("quote the version and give all three parts: kubernetes_version: \"1.30.0\"")),
    (3, 9, "runtime.kind", "`docker` is not a valid value; expected one of `kprov-agent`, `containerd`, `cri-o`", None),
    (4, 3, "runtime.sandbox_imag", "unknown key `sandbox_imag` — did you mean `sandbox_image`?", Some("allowed keys here: cgroup_driver, kind, registries, registry_mirrors, sandbox_image")),
    (7, 17, "networking.service_cidr", "`10.244.0.0/12` has host bits set; a network address is expected", Some("did you mean 10.240.0.0/12?")),
    (7, 17, "networking.service_cidr", "pod_cidr 10.244.0.0/16 and service_cidr 10.244.0.0/12 overlap", Some("choose two separate networks, e.g. pod_cidr 10.244.0.0/16 and service_cidr 10.96.0.0/12")),
    (9, 11, "cni.plugin", "`weave` is not a valid value; expected one of `flannel`, `calico`, `bridge`", None),
]);

spec_error!(
    syntax_error,
    [(
        4,
        15,
        "",
        "invalid YAML: illegal placement of ':' indicator",
        Some("check the indentation and quoting on this line and the one before")
    ),]
);

spec_error!(
    sysctl_forwarding_off,
    [(
        4,
        26,
        "os.sysctls.\"net.ipv4.ip_forward\"",
        "`net.ipv4.ip_forward` must be 1 for Kubernetes networking, not 0",
        Some("remove `net.ipv4.ip_forward` (kprov sets it to 1) or set it to 1")
    ),]
);

spec_error!(
    two_documents,
    [(
        3,
        1,
        "",
        "more than one YAML document in this file",
        Some("keep a single document (remove the `---` separator and what follows)")
    ),]
);

spec_error!(
    unknown_key_typo,
    [(
        4,
        3,
        "runtime.sandbox_imag",
        "unknown key `sandbox_imag` — did you mean `sandbox_image`?",
        Some("allowed keys here: cgroup_driver, kind, registries, registry_mirrors, sandbox_image")
    ),]
);

spec_error!(unknown_top_key, [
    (2, 1, "controlplane", "unknown key `controlplane` — did you mean `control_plane`?", Some("allowed keys here: cni, control_plane, image_repository, kubernetes_version, networking, os, packages, runtime")),
]);

spec_error!(
    version_incomplete,
    [(
        1,
        21,
        "kubernetes_version",
        "`1.28` is not a full Kubernetes version such as \"1.28.2\"",
        Some("write kubernetes_version: \"1.28.0\"")
    ),]
);

spec_error!(
    version_number,
    [(
        2,
        21,
        "kubernetes_version",
        "expected a string, found the number `1.28`",
        Some("quote the version and give all three parts: kubernetes_version: \"1.28.0\"")
    ),]
);

spec_error!(
    version_unsupported,
    [(
        1,
        21,
        "kubernetes_version",
        "Kubernetes 1.27.3 is not supported (kprov supports 1.28 to 1.31)",
        Some("use a release from 1.28.0 to 1.31.x, e.g. \"1.31.0\"")
    ),]
);

spec_error!(
    registry_names_hostile,
    [
        (
            4,
            5,
            "runtime.registry_mirrors.\"docker.io\\\"]\n[evil]\"",
            "registry `docker.io\\\"]\\n[evil]` is not host[:port]: `io\\\"]\\n[evil]` is not a host name label (letters, digits and `-`, not at either end)",
            Some("name the registry as image references do, e.g. harbor.example.com:5000")
        ),
        (
            5,
            17,
            "runtime.registry_mirrors.\"docker.io\"[0]",
            "mirror endpoint `https://m\\\"]#x` is not a URL kprov can write: `m\\\"]#x` is not a host name label (letters, digits and `-`, not at either end)",
            Some("write it like https://mirror.example.com:5000 (an optional /path)")
        ),
        (
            5,
            35,
            "runtime.registry_mirrors.\"docker.io\"[1]",
            "kprov-agent takes mirrors as host[:port]; `https://ok.lab/v2/path` has a path",
            Some("drop the path, or use `runtime.kind: containerd`")
        ),
        (
            7,
            5,
            "runtime.registries.\"harbor lab:5000\"",
            "registry `harbor lab:5000` is not host[:port]: `harbor lab` is not a host name label (letters, digits and `-`, not at either end)",
            Some("name the registry as image references do, e.g. harbor.example.com:5000")
        ),
        (
            9,
            5,
            "runtime.registries.\"harbor.lab:99999\"",
            "registry `harbor.lab:99999` is not host[:port]: `99999` is not a port (1-65535)",
            Some("name the registry as image references do, e.g. harbor.example.com:5000")
        ),
    ]
);

spec_error!(
    image_reference_hostile,
    [(
        3,
        18,
        "runtime.sandbox_image",
        "`pause:3.9\\\" --evil=1` is not an image reference",
        Some("write it like registry.k8s.io or harbor.example.com/k8s (letters, digits and . _ - / : @)")
    ),]
);
