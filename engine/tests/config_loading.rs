//! Valid specs and inventories: the shipped examples load, defaults are the documented
//! ones, both inventory shapes resolve to the same model, `--limit` selects hosts.

mod common;

use std::net::IpAddr;
use std::time::Duration;

use common::{fixture, repo_file};
use kprov_engine::inventory::{self, Inventory};
use kprov_engine::spec::{self, CgroupDriver, CniPlugin, RuntimeKind};
use kprov_engine::validate;

fn load_inventory(path: &std::path::Path) -> Inventory {
    inventory::load(path).unwrap_or_else(|e| panic!("{e}"))
}

fn names<'a>(hosts: impl IntoIterator<Item = &'a inventory::Host>) -> Vec<&'a str> {
    hosts.into_iter().map(|h| h.name.as_str()).collect()
}

#[test]
fn example_spec_loads_and_matches_example_inventory() {
    let spec = spec::load(&repo_file("examples/cluster.yaml")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(spec.kubernetes_version.to_string(), "1.28.2");
    assert_eq!(spec.runtime.kind, RuntimeKind::Containerd);
    assert_eq!(
        spec.runtime.registry_mirrors["docker.io"],
        ["https://mirror.example.com"]
    );
    let auth = spec.runtime.registries["harbor.example.com:443"]
        .auth
        .as_ref()
        .expect("auth");
    assert_eq!(auth.password.expose(), "change-me");
    assert!(
        !format!("{spec:?}").contains("change-me"),
        "secrets never appear in Debug"
    );
    let inv = load_inventory(&repo_file("inventories/hosts.yaml"));
    validate::check(&spec, &inv).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn example_inventories_load() {
    let kprov = load_inventory(&repo_file("inventories/hosts.yaml"));
    assert_eq!(names(&kprov.hosts), ["master", "node1", "node2"]);
    let ansible = load_inventory(&repo_file("inventories/kubespray.yaml"));
    assert_eq!(names(&ansible.hosts), ["master", "node1", "node2"]);
    assert_eq!(names(ansible.masters()), ["master"]);
    assert_eq!(ansible.groups["nodes"], ["node1", "node2"]);
    assert_eq!(ansible.groups["k8s_cluster"], ["master", "node1", "node2"]);
    let lab = load_inventory(&repo_file("inventories/lab-request.yaml"));
    assert!(lab.hosts.is_empty());
    assert_eq!(
        lab.lab.as_ref().map(|l| (l.name.as_str(), l.hosts)),
        Some(("kprov", 3))
    );
}

#[test]
fn minimal_spec_gets_the_documented_defaults() {
    let spec = spec::load(&repo_file("examples/minimal.yaml")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(spec.kubernetes_version.to_string(), "1.31.0");
    assert_eq!(spec.networking.pod_cidr.to_string(), "10.244.0.0/16");
    assert_eq!(spec.networking.service_cidr.to_string(), "10.96.0.0/12");
    assert_eq!(spec.networking.dns_domain, "cluster.local");
    assert_eq!(spec.image_repository, "registry.k8s.io");
    assert_eq!(spec.sandbox_image(), "registry.k8s.io/pause:3.9");
    assert_eq!(spec.control_plane.bind_port, 6443);
    assert_eq!(spec.control_plane.advertise_address, None);
    assert!(spec.control_plane.cert_sans.is_empty());
    assert_eq!(spec.runtime.kind, RuntimeKind::KprovAgent);
    assert_eq!(spec.runtime.kind.socket(), "unix:///run/kprov/agent.sock");
    assert_eq!(spec.runtime.cgroup_driver, CgroupDriver::Systemd);
    assert_eq!(spec.cni.plugin, CniPlugin::Flannel);
    assert!(spec.os.disable_swap);
    assert!(spec.os.disable_firewall);
    assert_eq!(spec.os.selinux, spec::os::SelinuxMode::Permissive);
    assert_eq!(
        spec.os.effective_kernel_modules(),
        ["overlay", "br_netfilter"]
    );
    let sysctls = spec.os.effective_sysctls();
    assert_eq!(
        sysctls
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>(),
        [
            "net.bridge.bridge-nf-call-ip6tables=1",
            "net.bridge.bridge-nf-call-iptables=1",
            "net.ipv4.ip_forward=1"
        ]
    );
}

#[test]
fn sandbox_image_follows_the_image_repository() {
    let path = std::path::Path::new("cluster.yaml");
    let text = "kubernetes_version: \"1.30.4\"\nimage_repository: harbor.local/k8s\n";
    let spec = spec::from_str(path, text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(spec.sandbox_image(), "harbor.local/k8s/pause:3.9");
}

/// The template variables roles see: the spec plus `kubernetes_packages` per OS family;
/// an offline repository means no Kubernetes repository is added.
#[test]
fn kubernetes_packages_template_variable() {
    let path = std::path::Path::new("cluster.yaml");
    let text = "kubernetes_version: \"1.30.4\"\npackages:\n  kubernetes_repository: http://10.0.0.1/k8s/v1.30/deb\n";
    let vars = spec::from_str(path, text)
        .unwrap_or_else(|e| panic!("{e}"))
        .template_vars()
        .unwrap();
    let k = &vars["kubernetes_packages"];
    assert_eq!(k["version"], "1.30.4");
    assert_eq!(k["debian"]["repository"], "http://10.0.0.1/k8s/v1.30/deb/");
    assert_eq!(
        k["debian"]["key"],
        "http://10.0.0.1/k8s/v1.30/deb/Release.key"
    );
    assert_eq!(
        k["debian"]["names"],
        serde_json::json!(["kubelet=1.30.4-*", "kubectl=1.30.4-*", "cri-tools=1.30.*"])
    );
    assert_eq!(k["rhel"]["names"][0], "kubelet=1.30.4");
    assert_eq!(
        vars["packages"]["kubernetes_repository"],
        "http://10.0.0.1/k8s/v1.30/deb"
    );
    let text =
        "kubernetes_version: \"1.30.4\"\npackages:\n  offline_repository: http://10.0.0.1/repo\n";
    let vars = spec::from_str(path, text)
        .unwrap_or_else(|e| panic!("{e}"))
        .template_vars()
        .unwrap();
    for family in ["debian", "rhel"] {
        assert!(vars["kubernetes_packages"][family]["repository"].is_null());
        assert!(vars["kubernetes_packages"][family]["key"].is_null());
    }
}

#[test]
fn user_sysctls_and_modules_extend_the_required_ones() {
    let path = std::path::Path::new("cluster.yaml");
    let text = "kubernetes_version: \"1.29.0\"\nos:\n  kernel_modules: [ip_vs]\n  sysctls:\n    net.netfilter.nf_conntrack_max: 131072\n";
    let spec = spec::from_str(path, text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        spec.os.effective_kernel_modules(),
        ["overlay", "br_netfilter", "ip_vs"]
    );
    let sysctls = spec.os.effective_sysctls();
    assert_eq!(sysctls["net.netfilter.nf_conntrack_max"], "131072");
    assert_eq!(sysctls["net.ipv4.ip_forward"], "1");
}

#[test]
fn inventory_defaults_and_overrides() {
    let inv = load_inventory(&repo_file("inventories/hosts.yaml"));
    let master = inv.host("master").expect("master");
    assert_eq!(master.user, "root");
    assert_eq!(master.port, 22);
    assert!(!master.become_);
    assert_eq!(master.connect_timeout, Duration::from_secs(10));
    assert_eq!(master.identity_file, None);

    let inv = load_inventory(&fixture("valid/kprov.yaml"));
    let w2 = inv.host("w2").expect("w2");
    assert_eq!(
        (w2.port, w2.user.as_str()),
        (22, "admin"),
        "per-host override wins"
    );
    let w1 = inv.host("w1").expect("w1");
    assert_eq!(
        (w1.port, w1.user.as_str()),
        (2222, "ubuntu"),
        "ssh: defaults apply"
    );
    assert!(w1.become_);
}

#[test]
fn variables_merge_all_then_groups_then_host() {
    let inv = load_inventory(&fixture("valid/kprov.yaml"));
    // A group's vars override the global ones.
    let cp1 = inv.host("cp1").expect("cp1");
    assert_eq!(cp1.vars["zone"], "cluster");
    assert_eq!(cp1.vars["tier"], "k8s");
    assert_eq!(cp1.vars["ntp_server"], "time.example.com");
    // A child group (nodes) overrides its parent (k8s_cluster); groups of the same depth
    // apply by name (edge, then k8s_cluster), like Ansible.
    let w2 = inv.host("w2").expect("w2");
    assert_eq!(w2.groups, ["edge", "k8s_cluster", "nodes"]);
    assert_eq!(w2.vars["zone"], "workers");
    assert_eq!(w2.vars["uplink"], "fast");
    // The host's own vars come last.
    let w1 = inv.host("w1").expect("w1");
    assert_eq!(w1.vars["disk"], "ssd");
}

#[test]
fn ansible_shape_resolves_to_the_same_model_as_kprov_shape() {
    let kprov = load_inventory(&fixture("valid/kprov.yaml"));
    let ansible = load_inventory(&fixture("valid/ansible.yaml"));
    assert_eq!(kprov.hosts, ansible.hosts);
    assert_eq!(kprov.groups, ansible.groups);
    assert_eq!(kprov.vars, ansible.vars);
    assert_eq!(kprov, ansible);
    assert_eq!(names(ansible.masters()), ["cp1"]);
    let cp1 = ansible.host("cp1").expect("cp1");
    assert_eq!(cp1.groups, ["etcd", "k8s_cluster", "masters"]);
    assert_eq!(
        cp1.identity_file.as_deref(),
        Some(std::path::Path::new("/home/ops/.ssh/id_ed25519"))
    );
    assert!(
        !cp1.vars.contains_key("ansible_user"),
        "connection variables are not host vars"
    );
}

#[test]
fn lab_generated_inventory_loads() {
    let inv = load_inventory(&fixture("valid/lab-generated.yaml"));
    assert_eq!(names(&inv.hosts), ["master", "node1", "node2"]);
    let node2 = inv.host("node2").expect("node2");
    assert_eq!(node2.address, "172.30.1.12");
    assert_eq!(
        node2.known_hosts_file.as_deref(),
        Some(std::path::Path::new("/var/lib/kprov/lab/kprov/known_hosts"))
    );
    assert_eq!(names(inv.masters()), ["master"]);
}

#[test]
fn lab_request_without_hosts_uses_defaults() {
    let inv = load_inventory(&fixture("valid/lab-defaults.yaml"));
    assert!(inv.hosts.is_empty());
    let lab = inv.lab.expect("lab");
    assert_eq!((lab.name.as_str(), lab.hosts), ("kprov", 3));
}

#[test]
fn select_by_hosts_and_groups() {
    let inv = load_inventory(&fixture("valid/ansible.yaml"));
    assert_eq!(names(inv.select(None).expect("all")), ["cp1", "w1", "w2"]);
    assert_eq!(
        names(inv.select(Some("all")).expect("all")),
        ["cp1", "w1", "w2"]
    );
    assert_eq!(
        names(inv.select(Some("masters")).expect("masters")),
        ["cp1"]
    );
    // Inventory order, no repeats, spaces tolerated.
    assert_eq!(
        names(inv.select(Some("w2, masters,w2")).expect("mix")),
        ["cp1", "w2"]
    );
    assert_eq!(
        names(inv.select(Some("k8s_cluster")).expect("children")),
        ["cp1", "w1", "w2"]
    );
    assert_eq!(names(inv.select(Some("edge")).expect("edge")), ["w2"]);
}

#[test]
fn select_rejects_unknown_names_with_their_position() {
    let inv = load_inventory(&fixture("valid/kprov.yaml"));
    let err = inv
        .select(Some("masters,w3,nodez"))
        .expect_err("unknown names");
    let got: Vec<(usize, &str, Option<&str>)> = err
        .iter()
        .map(|d| (d.column, d.message.as_str(), d.hint.as_deref()))
        .collect();
    assert_eq!(
        got,
        [
            (9, "unknown host or group `w3`", Some("did you mean `w1`?")),
            (
                12,
                "unknown host or group `nodez`",
                Some("did you mean `nodes`?")
            ),
        ]
    );
    assert_eq!(
        err.0[0].to_string(),
        "--limit:1:9: limit: unknown host or group `w3`\n  hint: did you mean `w1`?"
    );
}

#[test]
fn advertise_address_of_a_master_passes() {
    let path = std::path::Path::new("cluster.yaml");
    let text = "kubernetes_version: \"1.29.1\"\ncontrol_plane:\n  advertise_address: 10.10.0.10\n";
    let spec = spec::from_str(path, text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        spec.control_plane.advertise_address,
        Some("10.10.0.10".parse::<IpAddr>().expect("ip"))
    );
    let inv = load_inventory(&fixture("valid/kprov.yaml"));
    validate::check(&spec, &inv).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn diagnostics_render_with_file_line_column_and_hint() {
    let path = std::path::Path::new("cluster.yaml");
    let err = spec::from_str(path, "kubernetes_version: 1.28\n").expect_err("number");
    assert_eq!(
        err.to_string(),
        "cluster.yaml:1:21: kubernetes_version: expected a string, found the number `1.28`\n  hint: quote the version and give all three parts: kubernetes_version: \"1.28.0\""
    );
}

#[test]
fn derived_addresses_follow_the_spec_and_inventory() {
    let path = std::path::Path::new("cluster.yaml");
    let spec =
        spec::from_str(path, "kubernetes_version: \"1.30.2\"\n").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        spec.networking.kubernetes_service_ip().to_string(),
        "10.96.0.1"
    );
    assert_eq!(spec.networking.dns_service_ip().to_string(), "10.96.0.10");
    let inv = load_inventory(&fixture("valid/kprov.yaml"));
    assert_eq!(
        spec.advertise_address(&inv),
        Some("10.10.0.10".parse::<IpAddr>().expect("ip"))
    );
    assert_eq!(
        spec.control_plane_endpoint(&inv).as_deref(),
        Some("10.10.0.10:6443")
    );
    let text = "kubernetes_version: \"1.30.2\"\ncontrol_plane:\n  endpoint: api.example.com:443\n";
    let spec = spec::from_str(path, text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        spec.control_plane_endpoint(&inv).as_deref(),
        Some("api.example.com:443")
    );
}

#[test]
fn ansible_legacy_connection_names_are_understood() {
    let path = std::path::Path::new("hosts.yaml");
    let text = "all:\n  hosts:\n    m1:\n      ansible_ssh_host: 10.1.1.1\n      ansible_ssh_port: 2200\n      ansible_ssh_user: core\n      ansible_ssh_host_key_checking: true\n  children:\n    kube_control_plane:\n      hosts: { m1: }\n";
    let inv = inventory::from_str(path, text).unwrap_or_else(|e| panic!("{e}"));
    let m1 = inv.host("m1").expect("m1");
    assert_eq!(
        (m1.address.as_str(), m1.port, m1.user.as_str()),
        ("10.1.1.1", 2200, "core")
    );
    assert!(m1.vars.is_empty(), "{:?}", m1.vars);
}

#[test]
fn relative_key_and_certificate_paths_are_relative_to_their_file() {
    let dir = std::path::Path::new("/srv/cluster");
    let text = "ssh:\n  identity_file: keys/id_ed25519\n  known_hosts_file: /etc/kprov/known_hosts\nhosts:\n  m: { address: 10.0.0.1, identity_file: ~/.ssh/m }\n  n: { address: 10.0.0.2 }\ngroups:\n  masters: { hosts: [m] }\n";
    let inv = inventory::from_str(&dir.join("hosts.yaml"), text).unwrap_or_else(|e| panic!("{e}"));
    let n = inv.host("n").expect("n");
    assert_eq!(
        n.identity_file.as_deref(),
        Some(dir.join("keys/id_ed25519").as_path())
    );
    assert_eq!(
        n.known_hosts_file.as_deref(),
        Some(std::path::Path::new("/etc/kprov/known_hosts"))
    );
    let m = inv.host("m").expect("m");
    assert_eq!(
        m.identity_file.as_deref(),
        Some(std::path::Path::new("~/.ssh/m"))
    );

    let text = "kubernetes_version: \"1.28.2\"\nruntime:\n  registries:\n    harbor.local:\n      ca_file: certs/ca.pem\n";
    let spec = spec::from_str(&dir.join("cluster.yaml"), text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        spec.runtime.registries["harbor.local"].ca_file.as_deref(),
        Some(dir.join("certs/ca.pem").as_path())
    );
}

#[test]
fn version_with_leading_v_is_accepted() {
    let path = std::path::Path::new("cluster.yaml");
    let spec =
        spec::from_str(path, "kubernetes_version: v1.31.2\n").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(spec.kubernetes_version.to_string(), "1.31.2");
    assert_eq!(spec.kubernetes_version.minor, 31);
}

#[test]
fn select_pattern_reports_unknown_names_for_the_caller() {
    let inv = load_inventory(&fixture("valid/kprov.yaml"));
    assert_eq!(
        names(inv.select_pattern("nodes").expect("nodes")),
        ["w1", "w2"]
    );
    let unknown = inv.select_pattern("masters, edg").expect_err("unknown");
    assert_eq!(unknown.len(), 1);
    assert_eq!(
        (
            unknown[0].name.as_str(),
            unknown[0].column,
            unknown[0].suggestion.as_deref()
        ),
        ("edg", 10, Some("edge"))
    );
}
