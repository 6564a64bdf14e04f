//! Pods on two lab hosts reach each other through kprov's bridge CNI: `playbooks/cluster.yaml`
//! installs kprov-agent and writes each host's bridge conflist (its slice of the pod CIDR)
//! and the routes to the other slices; kprov-agent then runs a real pod sandbox (own
//! network namespace, CNI ADD through that conflist) with a busybox container on node1 and
//! on node2. Each pod's IP lies in its host's slice, the pods ping each other and node1's
//! pod reaches node2's host address; after stop/remove nothing of the pods is left on the
//! hosts, and a second apply changes nothing.

mod common;

use common::agent_lab::{
    agent_binaries_beside_kprov, agent_pulls_from, push_busybox, sh, BridgeRegistry, Rt,
    SocketForward,
};
use common::{kprov, Lab};
use kprov_agent::api;
use serde_json::Value;
use std::net::Ipv4Addr;
use std::time::Instant;

const LAB: &str = "kt-podnet";
const SPEC: &str = "tests/fixtures/pod-network.yaml";
const CONFLIST: &str = "/etc/cni/net.d/10-kprov-bridge.conflist";
const AGENT_TOML: &str = "/etc/kprov/agent.toml";

/// `kprov apply playbooks/cluster.yaml --spec SPEC -e kubelet_install=false`: exit code,
/// changed count of the run, stderr.
fn apply_cluster(inventory: &str) -> (Option<i32>, Option<u64>, String) {
    let out = kprov(&common::cluster_args(
        "apply",
        "playbooks/cluster.yaml",
        inventory,
        SPEC,
    ));
    let changed = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|e| e["event"] == "run_done")
        .and_then(|e| e["changed"].as_u64());
    (
        out.status.code(),
        changed,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// An IPv4 network `a.b.c.d/len`.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Net {
    addr: Ipv4Addr,
    len: u32,
}

impl Net {
    fn parse(cidr: &str) -> Net {
        let (addr, len) = cidr
            .split_once('/')
            .unwrap_or_else(|| panic!("not a CIDR: {cidr}"));
        Net {
            addr: addr
                .parse()
                .unwrap_or_else(|_| panic!("not an IPv4 CIDR: {cidr}")),
            len: len.parse().unwrap_or_else(|_| panic!("bad length: {cidr}")),
        }
    }

    fn contains(&self, ip: Ipv4Addr) -> bool {
        let mask = u32::MAX.checked_shl(32 - self.len).unwrap_or(0);
        u32::from(ip) & mask == u32::from(self.addr) & mask
    }
}

/// What `roles/cni` wrote on a host: its pod slice and the bridge name.
fn conflist_slice(lab: &Lab, host: &str) -> (Net, String) {
    let list: Value = serde_json::from_str(&sh(lab, host, &format!("cat {CONFLIST}")))
        .unwrap_or_else(|e| panic!("{host}: {CONFLIST} is not JSON: {e}"));
    let bridge = &list["plugins"][0];
    assert_eq!(bridge["type"], "bridge", "{host}: {list}");
    let subnet = bridge["ipam"]["ranges"][0][0]["subnet"]
        .as_str()
        .unwrap_or_else(|| panic!("{host}: no subnet in {list}"));
    let name = bridge["bridge"]
        .as_str()
        .unwrap_or_else(|| panic!("{host}: no bridge name in {list}"));
    (Net::parse(subnet), name.to_string())
}

/// A pod with its own network namespace, named and placed in a slice the way kubelet's
/// systemd cgroup driver does it.
fn pod_config(name: &str, uid: &str) -> api::PodSandboxConfig {
    api::PodSandboxConfig {
        metadata: Some(api::PodSandboxMetadata {
            name: name.into(),
            uid: uid.into(),
            namespace: "default".into(),
            attempt: 0,
        }),
        hostname: name.into(),
        log_directory: format!("/var/log/pods/default_{name}_{uid}"),
        linux: Some(api::LinuxPodSandboxConfig {
            cgroup_parent: format!("kubepods-besteffort-pod{}.slice", uid.replace('-', "_")),
            security_context: Some(api::LinuxSandboxSecurityContext {
                namespace_options: Some(api::NamespaceOption {
                    network: api::NamespaceMode::Pod as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A running pod on one host.
#[derive(Clone)]
struct Pod {
    sandbox: String,
    container: String,
    ip: Ipv4Addr,
}

/// RunPodSandbox + a busybox `sleep 3600` container; returns it with the pod's IP.
async fn run_pod(rt: &mut Rt, name: &str, uid: &str, image: &str) -> Pod {
    let cfg = pod_config(name, uid);
    let sandbox = rt
        .run_pod_sandbox(api::RunPodSandboxRequest {
            config: Some(cfg.clone()),
            runtime_handler: String::new(),
        })
        .await
        .unwrap_or_else(|e| panic!("RunPodSandbox {name}: {e}"))
        .into_inner()
        .pod_sandbox_id;
    let container = rt
        .create_container(api::CreateContainerRequest {
            pod_sandbox_id: sandbox.clone(),
            config: Some(api::ContainerConfig {
                metadata: Some(api::ContainerMetadata {
                    name: "sleeper".into(),
                    attempt: 0,
                }),
                image: Some(api::ImageSpec {
                    image: image.into(),
                    ..Default::default()
                }),
                command: vec!["/bin/busybox".into(), "sleep".into(), "3600".into()],
                log_path: "sleeper/0.log".into(),
                ..Default::default()
            }),
            sandbox_config: Some(cfg),
        })
        .await
        .unwrap_or_else(|e| panic!("CreateContainer in {name}: {e}"))
        .into_inner()
        .container_id;
    rt.start_container(api::StartContainerRequest {
        container_id: container.clone(),
    })
    .await
    .unwrap_or_else(|e| panic!("StartContainer in {name}: {e}"));
    let status = rt
        .pod_sandbox_status(api::PodSandboxStatusRequest {
            pod_sandbox_id: sandbox.clone(),
            verbose: false,
        })
        .await
        .unwrap_or_else(|e| panic!("PodSandboxStatus {name}: {e}"))
        .into_inner()
        .status
        .expect("a sandbox status");
    assert_eq!(
        status.state,
        api::PodSandboxState::SandboxReady as i32,
        "{name}"
    );
    let ip = status.network.map(|n| n.ip).unwrap_or_default();
    let ip = ip
        .parse()
        .unwrap_or_else(|_| panic!("{name}: pod IP {ip:?} is not IPv4"));
    Pod {
        sandbox,
        container,
        ip,
    }
}

/// ExecSync `cmd` in the pod's container (timeout in seconds): (exit code, output).
async fn exec(mut rt: Rt, pod: &Pod, cmd: &[&str], timeout: i64) -> (i32, String) {
    let r = rt
        .exec_sync(api::ExecSyncRequest {
            container_id: pod.container.clone(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            timeout,
        })
        .await
        .unwrap_or_else(|e| panic!("ExecSync {cmd:?}: {e}"))
        .into_inner();
    (
        r.exit_code,
        format!(
            "{}{}",
            String::from_utf8_lossy(&r.stdout),
            String::from_utf8_lossy(&r.stderr)
        ),
    )
}

/// `ping -c 1 -W 2 TO` inside the pod's container: (exit code, output).
async fn ping(rt: &Rt, pod: &Pod, to: Ipv4Addr) -> (i32, String) {
    let to = to.to_string();
    let cmd = ["/bin/busybox", "ping", "-c", "1", "-W", "2", &to];
    exec(rt.clone(), pod, &cmd, 10).await
}

/// The TCP connections `server`'s pod sees while `client`'s pod is connected to it
/// (`netstat -tn` inside the server pod, sent back over the connection itself).
async fn connections_seen(server_rt: &Rt, server: &Pod, client_rt: &Rt, client: &Pod) -> String {
    let listener = {
        let (rt, server) = (server_rt.clone(), server.clone());
        tokio::spawn(async move {
            let cmd = [
                "/bin/busybox",
                "timeout",
                "20",
                "/bin/busybox",
                "nc",
                "-l",
                "-p",
                "7777",
                "-e",
                "/bin/busybox",
                "netstat",
                "-tn",
            ];
            exec(rt, &server, &cmd, 25).await
        })
    };
    let to = server.ip.to_string();
    let cmd = ["/bin/busybox", "nc", "-w", "3", &to, "7777"];
    let mut seen = String::new();
    for _ in 0..20 {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let (code, out) = exec(client_rt.clone(), client, &cmd, 10).await;
        seen = format!("exit {code}: {out}");
        // The server's side of the connection (ESTABLISHED, or CLOSE_WAIT once the client
        // has shut down its sending side).
        if code == 0 && out.contains(":7777 ") {
            break;
        }
    }
    let (code, out) = listener.await.expect("listener task");
    assert_eq!(code, 0, "listener in pod {}: {out}", server.ip);
    seen
}

/// StopContainer, RemoveContainer, StopPodSandbox, RemovePodSandbox.
async fn remove_pod(rt: &mut Rt, pod: &Pod) {
    rt.stop_container(api::StopContainerRequest {
        container_id: pod.container.clone(),
        timeout: 5,
    })
    .await
    .expect("StopContainer");
    rt.remove_container(api::RemoveContainerRequest {
        container_id: pod.container.clone(),
    })
    .await
    .expect("RemoveContainer");
    rt.stop_pod_sandbox(api::StopPodSandboxRequest {
        pod_sandbox_id: pod.sandbox.clone(),
    })
    .await
    .expect("StopPodSandbox");
    rt.remove_pod_sandbox(api::RemovePodSandboxRequest {
        pod_sandbox_id: pod.sandbox.clone(),
    })
    .await
    .expect("RemovePodSandbox");
}

/// What pods leave on a host, per kind (empty when nothing is there, except the network
/// namespaces held by processes, which include the host's own):
/// network namespaces (`ip netns`, the agent's namespace pins, namespaces held by
/// processes), veths on the bridge, host-local IP allocations,
/// container scopes, runc containers, sleepers.
fn pod_traces(lab: &Lab, host: &str, bridge: &str) -> Vec<(&'static str, String)> {
    let probes = [
        ("ip netns", "ip netns list".to_string()),
        (
            "agent namespace pins",
            "grep ' - nsfs ' /proc/self/mountinfo | grep /run/kprov/ || true".to_string(),
        ),
        (
            "network namespaces of processes",
            "lsns -t net -n -o NS | sort -u".to_string(),
        ),
        (
            "veths on the bridge",
            format!("ip -o link show master '{bridge}' 2>/dev/null || true"),
        ),
        (
            "host-local allocations",
            "ls /var/lib/cni/networks/kprov-bridge 2>/dev/null | grep '^10\\.' || true".to_string(),
        ),
        (
            "kprov scopes",
            "systemctl list-units --all --no-legend --plain 'kprov-*.scope' | cat".to_string(),
        ),
        (
            "runc containers",
            "runc --root /run/kprov/agent/runc list -q 2>/dev/null || true".to_string(),
        ),
        (
            "sleepers",
            "ps -eo pid,args | grep '[s]leep 3600' || true".to_string(),
        ),
    ];
    probes
        .into_iter()
        .map(|(what, cmd)| (what, sh(lab, host, &cmd).trim().to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bridge_cni_pods_on_two_hosts_reach_each_other() {
    let started = Instant::now();
    agent_binaries_beside_kprov();
    let lab = Lab::up(LAB, 3);
    let inv = lab.inventory_str().to_string();
    let gateway = lab.status()["gateway"]
        .as_str()
        .expect("lab gateway")
        .to_string();

    let (code, changed, err) = apply_cluster(&inv);
    assert_eq!(code, Some(0), "apply failed:\n{err}");
    assert!(changed.unwrap_or(0) > 0, "first apply changed nothing");
    eprintln!("first apply done after {:?}", started.elapsed());

    // Each host's slice, as roles/cni wrote it: /24s of the pod CIDR, all different.
    let pod_cidr = Net::parse("10.244.0.0/16");
    let nodes = ["node1", "node2"];
    let mut slices = Vec::new();
    for host in ["master", "node1", "node2"] {
        let (slice, bridge) = conflist_slice(&lab, host);
        assert_eq!(slice.len, 24, "{host}: {slice:?}");
        assert!(pod_cidr.contains(slice.addr), "{host}: {slice:?}");
        assert!(
            !slices.iter().any(|(_, s, _)| *s == slice),
            "{host} shares {slice:?}"
        );
        slices.push((host, slice, bridge));
    }
    let slice_of = |host: &str| {
        slices
            .iter()
            .find(|(h, _, _)| *h == host)
            .map(|(_, s, b)| (*s, b.clone()))
            .expect("a slice per host")
    };

    // The busybox image on a registry on the lab bridge; each agent may pull from it over
    // plain HTTP. The rendered agent.toml is kept to be put back before the second apply.
    let registry = BridgeRegistry::start(&gateway);
    let image_id = push_busybox(&registry.host).await;
    let image = format!("{}/test/busybox:1", registry.host);
    for host in nodes {
        sh(
            &lab,
            host,
            &format!("cp -p {AGENT_TOML} {AGENT_TOML}.rendered"),
        );
        agent_pulls_from(&lab, host, &registry.host);
    }
    let before: Vec<_> = nodes
        .iter()
        .map(|host| pod_traces(&lab, host, &slice_of(host).1))
        .collect();

    // A pod (own network namespace) with a sleeping busybox on each node.
    let forwards: Vec<SocketForward> = nodes
        .iter()
        .map(|h| SocketForward::open(&lab, &lab.address(h)))
        .collect();
    let mut rts = Vec::new();
    let mut pods = Vec::new();
    for (i, host) in nodes.iter().enumerate() {
        let (mut rt, mut im) = forwards[i].clients().await;
        let pulled = im
            .pull_image(api::PullImageRequest {
                image: Some(api::ImageSpec {
                    image: image.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .unwrap_or_else(|e| panic!("{host}: pull {image}: {e}"))
            .into_inner();
        assert_eq!(pulled.image_ref, image_id, "{host}");
        let uid = format!("7a4e6c1d-0b2f-4c3a-9e58-{:012}", i + 1);
        let pod = run_pod(&mut rt, &format!("pn-{host}"), &uid, &image).await;
        let (slice, _) = slice_of(host);
        assert!(
            slice.contains(pod.ip),
            "{host}: pod IP {} outside the host's slice {slice:?}",
            pod.ip
        );
        rts.push(rt);
        pods.push(pod);
    }
    assert_ne!(pods[0].ip, pods[1].ip);
    // The pods really are on the hosts (what the leak check looks for is there now).
    for (i, host) in nodes.iter().enumerate() {
        let (_, bridge) = slice_of(host);
        let traces = pod_traces(&lab, host, &bridge);
        for ((what, found), (_, was)) in traces.iter().zip(&before[i]) {
            if *what != "ip netns" {
                assert_ne!(found, was, "{host}: no {what} of the pod while it runs");
            }
        }
    }

    // Across the hosts, both ways, and from node1's pod to node2's host address.
    let (a, b) = (pods[0].ip, pods[1].ip);
    let (code, out) = ping(&rts[0], &pods[0], b).await;
    assert_eq!(code, 0, "node1 pod {a} → node2 pod {b}: {out}");
    let (code, out) = ping(&rts[1], &pods[1], a).await;
    assert_eq!(code, 0, "node2 pod {b} → node1 pod {a}: {out}");
    let node2: Ipv4Addr = lab.address("node2").parse().expect("IPv4 node address");
    let (code, out) = ping(&rts[0], &pods[0], node2).await;
    assert_eq!(code, 0, "node1 pod {a} → node2 host {node2}: {out}");
    // Pods see each other's own addresses (no NAT between pods, as Kubernetes requires).
    let seen = connections_seen(&rts[1], &pods[1], &rts[0], &pods[0]).await;
    assert!(
        seen.lines()
            .any(|l| l.contains(&format!("{b}:7777")) && l.contains(&format!("{a}:"))),
        "node2's pod does not see node1's pod address {a}:\n{seen}"
    );
    // A failing ping fails (an address no host has, inside node2's slice).
    let (slice2, _) = slice_of("node2");
    let nobody = Ipv4Addr::from(u32::from(slice2.addr) + 250);
    let (code, out) = ping(&rts[0], &pods[0], nobody).await;
    assert_ne!(code, 0, "ping to {nobody} (no such pod) succeeded: {out}");
    eprintln!("pods pinged after {:?}", started.elapsed());

    // Stop and remove: the hosts look as before the pods.
    for (i, host) in nodes.iter().enumerate() {
        remove_pod(&mut rts[i], &pods[i]).await;
        let (_, bridge) = slice_of(host);
        let after = pod_traces(&lab, host, &bridge);
        for ((what, found), (_, was)) in after.iter().zip(&before[i]) {
            assert_eq!(found, was, "{host}: {what} left after the pod was removed");
        }
        for (what, found) in &after {
            if *what != "network namespaces of processes" {
                assert!(found.is_empty(), "{host}: {what} left: {found}");
            }
        }
    }
    drop(forwards);

    // With the pods gone and agent.toml as rendered, kprov has nothing to change.
    for host in nodes {
        sh(
            &lab,
            host,
            &format!("mv -f {AGENT_TOML}.rendered {AGENT_TOML}"),
        );
    }
    let (code, changed, err) = apply_cluster(&inv);
    assert_eq!(code, Some(0), "second apply failed:\n{err}");
    assert_eq!(changed, Some(0), "second apply changed something:\n{err}");
    eprintln!("done after {:?}", started.elapsed());
}
