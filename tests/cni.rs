//! The pod network of `playbooks/cluster.yaml` on a real 3-host lab. bridge mode: each
//! host's conflist holds its slice of the pod CIDR (by inventory position, or its host var
//! `pod_cidr`), routes to the other hosts' slices exist live and come back from the enabled
//! boot unit, and two "pods" made by the real CNI bridge plugin on two hosts ping each other.
//! flannel/calico: their manifest on the first master only (pod CIDR, backend, images from
//! the spec's registry), the bridge conflist gone, switching plugins removes the old one.

mod common;

use common::{events, kprov, sh, Lab};
use serde_json::Value;

const LAB: &str = "kt-cni";
const BRIDGE_SPEC: &str = "tests/fixtures/cni-bridge.yaml";
const CONFLIST: &str = "/etc/cni/net.d/10-kprov-bridge.conflist";

/// `kprov COMMAND playbooks/cluster.yaml -i INV --spec SPEC -e kubelet_install=false …`:
/// exit code, events, stderr.
fn cluster(
    command: &str,
    inv: &str,
    spec: &str,
    extra: &[&str],
) -> (Option<i32>, Vec<Value>, String) {
    let mut args = vec![
        command,
        "playbooks/cluster.yaml",
        "-i",
        inv,
        "--spec",
        spec,
        "-e",
        "kubelet_install=false",
        "--output",
        "json",
    ];
    args.extend_from_slice(extra);
    let out = kprov(&args);
    (
        out.status.code(),
        events(&out.stdout),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn changed(events: &[Value]) -> u64 {
    events
        .iter()
        .find(|e| e["event"] == "run_done")
        .and_then(|e| e["changed"].as_u64())
        .expect("run_done event with a changed count")
}

/// The lab's inventory with a host var `pod_cidr` on node2.
fn inventory_with_override(lab: &Lab, dir: &std::path::Path, cidr: &str) -> String {
    let text = std::fs::read_to_string(&lab.inventory).expect("lab inventory");
    let address = lab.address("node2");
    let host = format!("  \"node2\":\n    address: \"{address}\"\n");
    assert!(text.contains(&host), "unexpected lab inventory:\n{text}");
    let text = text.replace(
        &host,
        &format!("{host}    vars: {{ pod_cidr: \"{cidr}\" }}\n"),
    );
    let path = dir.join(format!("inventory-{}.yaml", cidr.replace('/', "_")));
    std::fs::write(&path, text).expect("write inventory");
    path.to_str().expect("utf-8 path").to_string()
}

/// A network namespace `NAME` on `host` with an `eth0` made by the real bridge plugin from
/// the host's conflist (then `loopback`, chained with the bridge's result, as a runtime
/// runs the list); returns the pod's address.
fn fake_pod(lab: &Lab, host: &str, name: &str) -> String {
    let list: Value =
        serde_json::from_str(&sh(lab, host, &format!("cat {CONFLIST}"))).expect("conflist JSON");
    let mut bridge = list["plugins"][0].clone();
    bridge["cniVersion"] = list["cniVersion"].clone();
    bridge["name"] = list["name"].clone();
    let env = format!(
        "CNI_CONTAINERID={name} CNI_NETNS=/run/netns/{name} CNI_IFNAME=eth0 CNI_PATH=/opt/cni/bin"
    );
    let result = sh(
        lab,
        host,
        &format!(
            "ip netns del {name} 2>/dev/null; ip netns add {name} && printf '%s' '{bridge}' | \
             env CNI_COMMAND=ADD {env} /opt/cni/bin/bridge"
        ),
    );
    let result: Value = serde_json::from_str(&result).expect("bridge plugin result");
    let mut lo = list["plugins"][2].clone();
    assert_eq!(lo["type"], "loopback");
    lo["cniVersion"] = list["cniVersion"].clone();
    lo["name"] = list["name"].clone();
    lo["prevResult"] = result.clone();
    sh(
        lab,
        host,
        &format!("printf '%s' '{lo}' | env CNI_COMMAND=ADD {env} /opt/cni/bin/loopback >/dev/null"),
    );
    let cidr = result["ips"][0]["address"]
        .as_str()
        .expect("an address in the result");
    cidr.split('/').next().unwrap_or(cidr).to_string()
}

fn ping(lab: &Lab, host: &str, pod: &str, to: &str) -> bool {
    lab.ssh(
        host,
        &format!("ip netns exec {pod} busybox ping -c 1 -W 2 {to} >/dev/null"),
    )
    .status
    .success()
}

#[test]
fn bridge_mode_routes_pods_between_hosts() {
    let lab = Lab::up(LAB, 3);
    let dir = tempfile::tempdir().expect("tempdir");
    let inv = inventory_with_override(&lab, dir.path(), "10.244.42.0/24");
    let slices = [
        ("master", "10.244.0.0/24", "10.244.0.1"),
        ("node1", "10.244.1.0/24", "10.244.1.1"),
        ("node2", "10.244.42.0/24", "10.244.42.1"),
    ];

    // The fixture plus an extra static route through the lab's gateway (its address
    // depends on the lab).
    let master = lab.address("master");
    let lab_gateway = format!("{}.1", &master[..master.rfind('.').expect("IPv4")]);
    let spec_path = dir.path().join("cni-bridge.yaml");
    let fixture = std::fs::read_to_string(BRIDGE_SPEC).expect("fixture");
    std::fs::write(
        &spec_path,
        format!(
            "{fixture}    routes:\n      - {{ destination: 10.250.0.0/16, via: {lab_gateway} }}\n"
        ),
    )
    .expect("write spec");
    let spec = spec_path.to_str().expect("utf-8 path");

    let (code, first, err) = cluster("apply", &inv, spec, &[]);
    assert_eq!(code, Some(0), "apply failed:\n{err}");
    assert!(changed(&first) > 0);
    for (host, subnet, gateway) in slices {
        let list: Value = serde_json::from_str(&sh(&lab, host, &format!("cat {CONFLIST}")))
            .expect("conflist JSON");
        let bridge = &list["plugins"][0];
        assert_eq!(bridge["type"], "bridge", "{host}: {list}");
        assert_eq!(bridge["bridge"], "kpbr0", "{host}: {list}");
        assert_eq!(bridge["isGateway"], true);
        assert_eq!(bridge["ipMasq"], false, "kprov's own rule masquerades");
        let nat = sh(&lab, host, "iptables -t nat -S POSTROUTING");
        let masq =
            format!("-s {subnet} ! -d 10.244.0.0/16 -m comment --comment kprov-pod-masquerade");
        assert!(nat.contains(&masq), "{host}: {nat}");
        assert_eq!(
            bridge["ipam"]["ranges"][0][0],
            serde_json::json!({"subnet": subnet, "gateway": gateway}),
            "{host}"
        );
        let routes = sh(&lab, host, "ip -o route show");
        for (other, other_subnet, _) in slices.iter().filter(|s| s.0 != host) {
            let want = format!("{other_subnet} via {} ", lab.address(other));
            assert!(routes.contains(&want), "{host}: no `{want}` in\n{routes}");
        }
        let extra = format!("10.250.0.0/16 via {lab_gateway} ");
        assert!(routes.contains(&extra), "{host}: no `{extra}` in\n{routes}");
        assert!(
            !routes.contains(&format!("{subnet} via")),
            "{host}: {routes}"
        );
        assert_eq!(
            sh(&lab, host, "systemctl is-enabled kprov-pod-routes").trim(),
            "enabled"
        );
        let fwd = sh(&lab, host, "iptables -S FORWARD");
        assert!(fwd.contains("-s 10.244.0.0/16 -j ACCEPT"), "{host}: {fwd}");
        assert!(sh(&lab, host, "readlink /opt/cni/bin/bridge").contains("/usr/lib/cni/bridge"));
    }

    // Idempotent, and plan agrees.
    let (code, second, err) = cluster("apply", &inv, spec, &[]);
    assert_eq!(code, Some(0), "second apply failed:\n{err}");
    assert_eq!(
        changed(&second),
        0,
        "second apply changed something:\n{err}"
    );
    let (code, _, err) = cluster("plan", &inv, spec, &["--detailed-exitcode"]);
    assert_eq!(code, Some(0), "plan after apply shows changes:\n{err}");

    // Real pods through the real plugins: node1's pod reaches node2's over the routes.
    for host in ["node1", "node2"] {
        sh(
            &lab,
            host,
            "command -v busybox >/dev/null || apt-get install -y -q busybox-static >/dev/null",
        );
    }
    let a = fake_pod(&lab, "node1", "kpod-a");
    let b = fake_pod(&lab, "node2", "kpod-b");
    assert!(a.starts_with("10.244.1."), "{a}");
    assert!(b.starts_with("10.244.42."), "{b}");
    assert!(
        ping(&lab, "node1", "kpod-a", &b),
        "node1 pod {a} cannot reach {b}"
    );
    assert!(
        ping(&lab, "node2", "kpod-b", &a),
        "node2 pod {b} cannot reach {a}"
    );
    // Pods see each other's own addresses (no NAT between pods), and reach beyond the pod
    // network through the host's masquerade: the lab gateway has no route to any pod.
    let seen = sh(&lab, "node2", "conntrack -L -p icmp 2>/dev/null");
    assert!(
        seen.contains(&format!("src={a} dst={b} ")),
        "node2 must see node1's pod address {a}, not node1's:\n{seen}"
    );
    assert!(
        ping(&lab, "node1", "kpod-a", &lab_gateway),
        "pod {a} cannot reach {lab_gateway} outside the pod network"
    );

    // Without node1's route the pods are cut off; the boot unit brings it back.
    sh(&lab, "node1", "ip route del 10.244.42.0/24");
    assert!(
        !ping(&lab, "node1", "kpod-a", &b),
        "reachable without a route?"
    );
    sh(&lab, "node1", "systemctl restart kprov-pod-routes");
    assert!(
        ping(&lab, "node1", "kpod-a", &b),
        "the boot unit did not restore the route"
    );

    // `kprov reset` removes kprov's pod network too; applying again brings it back.
    let out = common::kprov(&["reset", "-i", &inv, "--spec", spec, "--yes"]);
    assert!(out.status.success(), "reset failed: {out:?}");
    for host in ["master", "node1", "node2"] {
        sh(&lab, host, &format!("test ! -e {CONFLIST}"));
        sh(
            &lab,
            host,
            "test ! -e /etc/systemd/system/kprov-pod-routes.service",
        );
        let routes = sh(&lab, host, "ip -o route show");
        assert!(!routes.contains("10.244."), "{host} after reset: {routes}");
    }
    let (code, _, err) = cluster("apply", &inv, spec, &[]);
    assert_eq!(code, Some(0), "apply after reset failed:\n{err}");
    sh(&lab, "node1", &format!("test -e {CONFLIST}"));

    // Another plugin takes over: the bridge CNI's conflist, routes, unit and rules go.
    let flannel = "tests/fixtures/cni-flannel.yaml";
    let (code, _, err) = cluster("apply", &inv, flannel, &[]);
    assert_eq!(code, Some(0), "switch to flannel failed:\n{err}");
    for host in ["master", "node1", "node2"] {
        sh(&lab, host, &format!("test ! -e {CONFLIST}"));
        sh(
            &lab,
            host,
            "test ! -e /etc/systemd/system/kprov-pod-routes.service",
        );
        // The bridge goes too (flannel's would clash with its address), and with it every
        // pod route.
        let routes = sh(&lab, host, "ip -o route show");
        assert!(!routes.contains("10.244."), "{host}: {routes}");
        assert!(
            !lab.ssh(host, "ip link show kpbr0").status.success(),
            "{host}"
        );
        let fwd = sh(
            &lab,
            host,
            "iptables -S FORWARD; iptables -t nat -S POSTROUTING",
        );
        assert!(!fwd.contains("10.244.0.0/16"), "{host}: {fwd}");
    }
    let (code, again, err) = cluster("apply", &inv, flannel, &[]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        changed(&again),
        0,
        "second flannel apply changed something:\n{err}"
    );

    // An override that collides with another host's slice: one error naming both hosts.
    let clash = inventory_with_override(&lab, dir.path(), "10.244.1.0/24");
    let (code, _, err) = cluster("plan", &clash, spec, &[]);
    assert_ne!(code, Some(0), "a colliding pod_cidr must fail:\n{err}");
    assert!(
        err.contains("`node1`") && err.contains("`node2`") && err.contains("pod_cidr"),
        "{err}"
    );
}

#[test]
fn flannel_and_calico_manifests_on_the_first_master() {
    let lab = Lab::up("kt-cni-manifests", 3);
    let inv = lab.inventory_str().to_string();
    let addons = "/etc/kubernetes/addons";

    let (code, _, err) = cluster("apply", &inv, "tests/fixtures/cni-flannel.yaml", &[]);
    assert_eq!(code, Some(0), "apply failed:\n{err}");
    let text = sh(&lab, "master", &format!("cat {addons}/flannel.yaml"));
    assert!(text.contains("kind: DaemonSet") && text.contains("name: kube-flannel-ds"));
    assert!(text.contains("\"Network\": \"10.244.0.0/16\""), "{text}");
    assert!(text.contains("\"Type\": \"host-gw\""), "{text}");
    assert!(
        text.contains("harbor.lab.example/k8s/flannel/flannel:v0.26.1")
            && !text.contains("docker.io/"),
        "images moved to the spec's registry: {text}"
    );
    assert_eq!(
        sh(&lab, "master", &format!("stat -c %a {addons}/flannel.yaml")).trim(),
        "644"
    );
    for host in ["node1", "node2"] {
        sh(&lab, host, &format!("test ! -e {addons}/flannel.yaml"));
    }
    for host in ["master", "node1", "node2"] {
        sh(&lab, host, &format!("test ! -e {CONFLIST}"));
        sh(&lab, host, "test -e /opt/cni/bin/portmap");
    }
    let (code, again, err) = cluster("apply", &inv, "tests/fixtures/cni-flannel.yaml", &[]);
    assert_eq!(code, Some(0), "second apply failed:\n{err}");
    assert_eq!(changed(&again), 0, "second apply changed something:\n{err}");

    // calico: the operator's manifest, adapted; flannel's manifest goes away.
    let (code, _, err) = cluster("apply", &inv, "tests/fixtures/cni-calico.yaml", &[]);
    assert_eq!(code, Some(0), "calico apply failed:\n{err}");
    let text = sh(&lab, "master", &format!("cat {addons}/calico.yaml"));
    for want in [
        "name: CALICO_IPV4POOL_CIDR",
        "value: 10.244.0.0/16",
        "value: interface=eth0",
        "calico_backend: vxlan",
    ] {
        assert!(text.contains(want), "no `{want}` in {text}");
    }
    sh(&lab, "master", &format!("test ! -e {addons}/flannel.yaml"));
}
