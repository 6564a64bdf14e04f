//! A real etcd (Debian's etcd-server) runs with the generated certificates and
//! the manifest's own flags (ports and paths moved into a temporary root):
//! `etcdctl endpoint health` succeeds with the apiserver-etcd-client and
//! healthcheck-client certificates, fails with a certificate from another CA, and
//! the manifest's liveness probe path answers on the metrics port.

mod common;

use common::*;
use kprov_controlplane::{init_files, ClusterParams, Existing, NodeParams};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Kills etcd when the test ends, even on panic.
struct Etcd(Child);

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn etcdctl(endpoint: &str, pki: &Path, cert: &Path, key: &Path) -> (bool, String) {
    let out = Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .args([
            &format!("--endpoints={endpoint}"),
            &format!("--cacert={}", pki.join("etcd/ca.crt").display()),
            &format!("--cert={}", cert.display()),
            &format!("--key={}", key.display()),
            "--command-timeout=3s",
            "--dial-timeout=3s",
            "endpoint",
            "health",
        ])
        .output()
        .expect("etcdctl (Debian package etcd-client) must be installed");
    let mut text = String::from_utf8_lossy(&out.stdout).to_string();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

fn http_get(port: u16, path: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    body
}

#[test]
fn real_etcd_accepts_the_apiserver_client_and_rejects_another_ca() {
    // The advertise address is a second loopback address so etcd can bind it.
    let advertise = "127.0.0.2".parse().unwrap();
    let mut p = ClusterParams::new("1.30.4".parse().unwrap(), advertise);
    p.pod_cidr = Some("10.244.0.0/16".parse().unwrap());
    let node = NodeParams::new("master-1", advertise);
    let artifacts = init_files(&p, &node, &Existing::empty(), now()).unwrap();
    let other = init_files(&p, &node, &Existing::empty(), now()).unwrap();

    let root = tempfile::tempdir().unwrap();
    write_all(root.path(), &artifacts);
    let foreign = tempfile::tempdir().unwrap();
    write_all(foreign.path(), &other);
    let pki = under(root.path(), "/etc/kubernetes/pki");
    let foreign_pki = under(foreign.path(), "/etc/kubernetes/pki");

    // The manifest's command, with ports and host paths moved.
    let manifest = yaml_to_json(&text(&artifacts, "/etc/kubernetes/manifests/etcd.yaml"));
    let command: Vec<String> = manifest["spec"]["containers"][0]["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(command[0], "etcd");
    let (client, peer, metrics) = (free_port(), free_port(), free_port());
    let root_str = root.path().to_str().unwrap();
    let args: Vec<String> = command[1..]
        .iter()
        .map(|flag| {
            flag.replace("/etc/kubernetes/", &format!("{root_str}/etc/kubernetes/"))
                .replace("/var/lib/etcd", &format!("{root_str}/var/lib/etcd"))
                .replace(":2379", &format!(":{client}"))
                .replace(":2380", &format!(":{peer}"))
                .replace(":2381", &format!(":{metrics}"))
        })
        .collect();
    let log = std::fs::File::create(root.path().join("etcd.log")).unwrap();
    let child = Command::new("etcd")
        .args(&args)
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .expect("etcd (Debian package etcd-server) must be installed");
    let _etcd = Etcd(child);

    let endpoint = format!("https://127.0.0.1:{client}");
    let client_cert = pki.join("apiserver-etcd-client.crt");
    let client_key = pki.join("apiserver-etcd-client.key");
    let deadline = Instant::now() + Duration::from_secs(30);
    let (mut ok, mut out) = (false, String::new());
    while Instant::now() < deadline && !ok {
        (ok, out) = etcdctl(&endpoint, &pki, &client_cert, &client_key);
        if !ok {
            std::thread::sleep(Duration::from_millis(300));
        }
    }
    let etcd_log = std::fs::read_to_string(root.path().join("etcd.log")).unwrap_or_default();
    assert!(
        ok && out.contains("is healthy"),
        "apiserver-etcd-client must be accepted: {out}\netcd log:\n{etcd_log}"
    );

    // The advertised client URL (server certificate SAN = advertise address).
    let advertised = format!("https://127.0.0.2:{client}");
    let (ok, out) = etcdctl(&advertised, &pki, &client_cert, &client_key);
    assert!(ok, "advertise-client-urls endpoint: {out}");

    // The healthcheck client works too.
    let (ok, out) = etcdctl(
        &endpoint,
        &pki,
        &pki.join("etcd/healthcheck-client.crt"),
        &pki.join("etcd/healthcheck-client.key"),
    );
    assert!(ok, "healthcheck-client: {out}");

    // A certificate from another cluster's etcd CA is rejected by etcd.
    let (ok, out) = etcdctl(
        &endpoint,
        &pki,
        &foreign_pki.join("apiserver-etcd-client.crt"),
        &foreign_pki.join("apiserver-etcd-client.key"),
    );
    assert!(
        !ok && out.contains("unhealthy"),
        "foreign client certificate must be refused: {out}"
    );
    let etcd_log = std::fs::read_to_string(root.path().join("etcd.log")).unwrap_or_default();
    assert!(
        etcd_log.contains("rejected connection"),
        "etcd must reject the TLS client:\n{etcd_log}"
    );
    // And a client trusting another CA refuses our server.
    let (ok, out) = etcdctl(&endpoint, &foreign_pki, &client_cert, &client_key);
    assert!(
        !ok,
        "server certificate must not verify against another CA: {out}"
    );

    // The liveness probe of the 1.30 manifest answers on the metrics port.
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
