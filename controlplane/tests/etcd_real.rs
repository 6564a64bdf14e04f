//! A real etcd (Debian's etcd-server) runs with the generated certificates and
//! the manifests' own flags (ports and paths moved into temporary roots):
//! `etcdctl endpoint health` succeeds with the apiserver-etcd-client and
//! healthcheck-client certificates, fails with a certificate from another CA, the
//! liveness probe path answers, and a second control-plane node's etcd joins
//! the first over TLS with its peer certificate.

mod common;

use common::*;
use kprov_controlplane::{
    control_plane_join_files, init_files, new_token, Artifact, ClusterParams, Existing, NodeParams,
};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Kills etcd when the test ends, even on panic.
struct Etcd {
    child: Child,
    log: PathBuf,
}

impl Etcd {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Free ports standing in for etcd's fixed ones: one set per `host:port` seen in
/// the flags; the loopback ones are per node (`lo` differs by node).
struct Ports(BTreeMap<String, u16>);

impl Ports {
    fn rewrite(&mut self, flag: &str, lo: &str) -> String {
        let mut out = flag.to_string();
        for ip in ["127.0.0.1", "127.0.0.2", "127.0.0.3"] {
            for port in [2379, 2380, 2381] {
                let needle = format!("{ip}:{port}");
                if out.contains(&needle) {
                    let key = if ip == "127.0.0.1" {
                        format!("{lo}:{port}")
                    } else {
                        needle.clone()
                    };
                    let free = *self.0.entry(key).or_insert_with(free_port);
                    out = out.replace(&needle, &format!("{ip}:{free}"));
                }
            }
        }
        out
    }
}

/// Starts etcd with the command of `artifacts`' etcd manifest, rooted at `root`.
fn start_etcd(
    artifacts: &[Artifact],
    root: &Path,
    ports: &mut Ports,
    lo: &str,
) -> (Etcd, u16, u16) {
    let manifest = yaml_to_json(&text(artifacts, "/etc/kubernetes/manifests/etcd.yaml"));
    let command: Vec<String> = manifest["spec"]["containers"][0]["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(command[0], "etcd");
    let root_str = root.to_str().unwrap();
    let args: Vec<String> = command[1..]
        .iter()
        .map(|flag| {
            let flag = flag
                .replace("/etc/kubernetes/", &format!("{root_str}/etc/kubernetes/"))
                .replace("/var/lib/etcd", &format!("{root_str}/var/lib/etcd"));
            ports.rewrite(&flag, lo)
        })
        .collect();
    let log = root.join("etcd.log");
    let file = std::fs::File::create(&log).unwrap();
    let child = Command::new("etcd")
        .args(&args)
        .stdout(Stdio::from(file.try_clone().unwrap()))
        .stderr(Stdio::from(file))
        .spawn()
        .expect("etcd (Debian package etcd-server) must be installed");
    let client = ports.0[&format!("{lo}:2379")];
    let metrics = ports.0[&format!("{lo}:2381")];
    (Etcd { child, log }, client, metrics)
}

fn etcdctl(endpoint: &str, pki: &Path, cert: &Path, key: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .args([
            &format!("--endpoints={endpoint}"),
            &format!("--cacert={}", pki.join("etcd/ca.crt").display()),
            &format!("--cert={}", cert.display()),
            &format!("--key={}", key.display()),
            "--command-timeout=3s",
            "--dial-timeout=3s",
        ])
        .args(args)
        .output()
        .expect("etcdctl (Debian package etcd-client) must be installed");
    let mut text = String::from_utf8_lossy(&out.stdout).to_string();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// Retries `endpoint health` for up to 30 s.
fn wait_healthy(
    endpoint: &str,
    pki: &Path,
    cert: &Path,
    key: &Path,
    extra: &[&str],
    etcd: &Etcd,
) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut args = vec!["endpoint", "health"];
        args.extend_from_slice(extra);
        let (ok, out) = etcdctl(endpoint, pki, cert, key, &args);
        if ok {
            return out;
        }
        assert!(
            Instant::now() < deadline,
            "etcd not healthy: {out}\netcd log:\n{}",
            etcd.log()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn http_get(port: u16, path: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    body
}

fn loopback_params() -> ClusterParams {
    // Advertise addresses are extra loopback addresses so etcd can bind them.
    let mut p = ClusterParams::new("1.30.4".parse().unwrap(), "127.0.0.2".parse().unwrap());
    p.pod_cidr = Some("10.244.0.0/16".parse().unwrap());
    p.control_plane_endpoint = Some("127.0.0.2:6443".into());
    p
}

#[test]
fn real_etcd_accepts_the_apiserver_client_and_rejects_another_ca() {
    let p = loopback_params();
    let node = NodeParams::new("master-1", "127.0.0.2".parse().unwrap());
    let artifacts = init_files(&p, &node, &Existing::empty(), now()).unwrap();
    let other = init_files(&p, &node, &Existing::empty(), now()).unwrap();
    let root = tempfile::tempdir().unwrap();
    write_all(root.path(), &artifacts);
    let foreign = tempfile::tempdir().unwrap();
    write_all(foreign.path(), &other);
    let pki = under(root.path(), "/etc/kubernetes/pki");
    let foreign_pki = under(foreign.path(), "/etc/kubernetes/pki");

    let mut ports = Ports(BTreeMap::new());
    let (etcd, client, metrics) = start_etcd(&artifacts, root.path(), &mut ports, "m1");
    let endpoint = format!("https://127.0.0.1:{client}");
    let client_cert = pki.join("apiserver-etcd-client.crt");
    let client_key = pki.join("apiserver-etcd-client.key");
    let out = wait_healthy(&endpoint, &pki, &client_cert, &client_key, &[], &etcd);
    assert!(out.contains("is healthy"), "{out}");

    // The advertised client URL (server certificate SAN = advertise address).
    let advertised = format!("https://127.0.0.2:{}", ports.0["127.0.0.2:2379"]);
    let (ok, out) = etcdctl(
        &advertised,
        &pki,
        &client_cert,
        &client_key,
        &["endpoint", "health"],
    );
    assert!(ok, "advertise-client-urls endpoint: {out}");

    // The healthcheck client works too.
    let (ok, out) = etcdctl(
        &endpoint,
        &pki,
        &pki.join("etcd/healthcheck-client.crt"),
        &pki.join("etcd/healthcheck-client.key"),
        &["endpoint", "health"],
    );
    assert!(ok, "healthcheck-client: {out}");

    // A certificate from another cluster's etcd CA is rejected by etcd.
    let (ok, out) = etcdctl(
        &endpoint,
        &pki,
        &foreign_pki.join("apiserver-etcd-client.crt"),
        &foreign_pki.join("apiserver-etcd-client.key"),
        &["endpoint", "health"],
    );
    assert!(
        !ok && out.contains("unhealthy"),
        "foreign client certificate must be refused: {out}"
    );
    assert!(
        etcd.log().contains("rejected connection"),
        "etcd must reject the TLS client:\n{}",
        etcd.log()
    );
    // And a client trusting another CA refuses our server.
    let (ok, out) = etcdctl(
        &endpoint,
        &foreign_pki,
        &client_cert,
        &client_key,
        &["endpoint", "health"],
    );
    assert!(
        !ok,
        "server certificate must not verify against another CA: {out}"
    );

    // The liveness probe of the 1.30 manifest answers on the metrics port.
    let manifest = yaml_to_json(&text(&artifacts, "/etc/kubernetes/manifests/etcd.yaml"));
    let probe = manifest["spec"]["containers"][0]["livenessProbe"]["httpGet"]["path"]
        .as_str()
        .unwrap()
        .to_string();
    let answer = http_get(metrics, &probe);
    assert!(
        answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200"),
        "{probe}: {answer}"
    );
    assert!(answer.contains("\"health\":\"true\""), "{answer}");
}

#[test]
fn a_joining_control_plane_node_etcd_joins_over_tls() {
    let p = loopback_params();
    let m1 = NodeParams::new("master-1", "127.0.0.2".parse().unwrap());
    let m2 = NodeParams::new("master-2", "127.0.0.3".parse().unwrap());
    let first = init_files(&p, &m1, &Existing::empty(), now()).unwrap();
    let shared = Existing::from_artifacts(&first);
    let token = new_token(&p, now());
    let second = control_plane_join_files(
        &p,
        &m2,
        &shared,
        std::slice::from_ref(&m1),
        &token,
        &Existing::empty(),
        now(),
    )
    .unwrap();

    let (root1, root2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write_all(root1.path(), &first);
    write_all(root2.path(), &second);
    let pki1 = under(root1.path(), "/etc/kubernetes/pki");
    let pki2 = under(root2.path(), "/etc/kubernetes/pki");
    let health = (
        pki1.join("etcd/healthcheck-client.crt"),
        pki1.join("etcd/healthcheck-client.key"),
    );

    let mut ports = Ports(BTreeMap::new());
    let (etcd1, client1, _) = start_etcd(&first, root1.path(), &mut ports, "m1");
    let endpoint1 = format!("https://127.0.0.1:{client1}");
    wait_healthy(&endpoint1, &pki1, &health.0, &health.1, &[], &etcd1);

    // What the engine does before starting the new member: add it (kubeadm 1.28 adds
    // a voting member; 1.29+ adds a learner and promotes it once it caught up).
    let peer2 = ports.rewrite("https://127.0.0.3:2380", "m2");
    let (ok, out) = etcdctl(
        &endpoint1,
        &pki1,
        &health.0,
        &health.1,
        &["member", "add", "master-2", &format!("--peer-urls={peer2}")],
    );
    assert!(ok, "member add: {out}");

    let (etcd2, client2, _) = start_etcd(&second, root2.path(), &mut ports, "m2");
    // The new node's own apiserver-etcd-client certificate works against its local etcd,
    // and both members report healthy through the cluster view.
    let endpoint2 = format!("https://127.0.0.1:{client2}");
    let out = wait_healthy(
        &endpoint2,
        &pki2,
        &pki2.join("apiserver-etcd-client.crt"),
        &pki2.join("apiserver-etcd-client.key"),
        &["--cluster"],
        &etcd2,
    );
    assert_eq!(
        out.matches("is healthy").count(),
        2,
        "{out}\netcd1:\n{}\netcd2:\n{}",
        etcd1.log(),
        etcd2.log()
    );
    let (ok, out) = etcdctl(&endpoint2, &pki2, &health.0, &health.1, &["member", "list"]);
    assert!(ok && out.matches(", started, ").count() == 2, "{out}");
    // Data written on one member is read on the other.
    let (ok, out) = etcdctl(
        &endpoint1,
        &pki1,
        &health.0,
        &health.1,
        &["put", "kprov", "joined"],
    );
    assert!(ok, "{out}");
    let (ok, out) = etcdctl(
        &endpoint2,
        &pki2,
        &health.0,
        &health.1,
        &["get", "kprov", "--print-value-only"],
    );
    assert!(ok && out.trim() == "joined", "{out}");
}
