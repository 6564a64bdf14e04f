//! containerd's registries through `config_path` on a lab host: node-prep with
//! `runtime.kind: containerd` writes `config_path` and one `certs.d/<host>/hosts.toml` per
//! registry, copies a TLS registry's CA from the control machine (a task with `loop:`), and
//! containerd's CRI (PullImage over its socket, forwarded over SSH) pulls
//! - through a mirror (an unresolvable registry name whose mirror is the plain registry),
//! - from a plain-HTTP registry (Debian's docker-registry on the lab bridge),
//! - from a TLS registry whose CA exists only on the control machine (docker-registry with
//!   a certificate signed by a CA the test makes, as a pull-through cache of the plain one),
//!
//! with no deprecation warning in containerd's journal. Another CA in place of the copied
//! one makes the TLS pull fail certificate verification; the next apply puts it back.
//! Then the same registries with `runtime.kind: kprov-agent`: the CA lands in
//! /etc/kprov/registries/<host>/ca.crt, agent.toml points there, and the agent pulls the
//! three images over its own CRI socket.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::agent_lab::{
    agent_binaries_beside_kprov, push_busybox, BridgeRegistry, SocketForward, WAIT_FOR_SOCKET,
};
use common::{events, kprov, sh, Lab};
use kprov_agent::api;

const LAB: &str = "registries";
const MIRRORED: &str = "registry.kprov.test";

/// docker-registry serving HTTPS on `ip` with `cert`/`key`, as a pull-through cache of
/// `upstream` (an `http://` registry); stopped on drop.
struct TlsRegistry {
    host: String,
    child: Child,
    _dir: tempfile::TempDir,
}

impl TlsRegistry {
    fn start(ip: &str, cert: &Path, key: &Path, upstream: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind(format!("{ip}:0"))
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cfg = dir.path().join("config.yml");
        std::fs::write(
            &cfg,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
                 http:\n  addr: {ip}:{port}\n  tls:\n    certificate: {}\n    key: {}\n\
                 proxy:\n  remoteurl: http://{upstream}\n",
                dir.path().join("data").display(),
                cert.display(),
                key.display()
            ),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry (Debian package docker-registry)");
        let host = format!("{ip}:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(&host).is_err() {
            assert!(Instant::now() < deadline, "TLS registry did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        TlsRegistry {
            host,
            child,
            _dir: dir,
        }
    }
}

impl Drop for TlsRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl (Debian package openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A self-signed CA: `NAME.pem` and `NAME.key` in `dir`.
fn make_ca(dir: &Path, name: &str) {
    let (key, pem) = (format!("{name}.key"), format!("{name}.pem"));
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &pem,
            "-days",
            "2",
            "-subj",
            "/CN=kprov test registry CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
}

/// A CA (`ca.pem`), a server certificate for `ip` signed by it (`srv.pem`, `srv.key`) and
/// an unrelated CA (`other.pem`).
fn make_certificates(dir: &Path, ip: &str) {
    make_ca(dir, "ca");
    make_ca(dir, "other");
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "srv.key",
            "-out",
            "srv.csr",
            "-subj",
            "/CN=registry",
        ],
    );
    std::fs::write(
        dir.join("ext.cnf"),
        format!(
            "subjectAltName=IP:{ip}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n"
        ),
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "srv.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "srv.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    );
}

fn apply(lab: &Lab, spec: &Path) -> Vec<serde_json::Value> {
    let out = kprov(&[
        "apply",
        "playbooks/node-prep.yaml",
        "-i",
        lab.inventory_str(),
        "--spec",
        spec.to_str().unwrap(),
        "--output",
        "json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "node-prep: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    events(&out.stdout)
}

fn changed(events: &[serde_json::Value]) -> Vec<String> {
    events
        .iter()
        .filter(|e| e["event"] == "task" && e["status"] == "changed")
        .map(|e| e["task"].as_str().unwrap_or_default().to_string())
        .collect()
}

async fn pull(
    im: &mut common::agent_lab::Im,
    image: &str,
) -> Result<String, kprov_agent::tonic::Status> {
    im.pull_image(api::PullImageRequest {
        image: Some(api::ImageSpec {
            image: image.to_string(),
            ..Default::default()
        }),
        ..Default::default()
    })
    .await
    .map(|r| r.into_inner().image_ref)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containerd_pulls_through_config_path() {
    agent_binaries_beside_kprov();
    let lab = Lab::up(LAB, 1);
    let status = lab.status();
    let host = status["hosts"][0]["name"].as_str().unwrap().to_string();
    let address = lab.address(&host);
    let gateway = status["gateway"].as_str().unwrap().to_string();

    let plain = BridgeRegistry::start(&gateway);
    let image_id = push_busybox(&plain.host).await;
    let certs = tempfile::tempdir().unwrap();
    make_certificates(certs.path(), &gateway);
    let tls = TlsRegistry::start(
        &gateway,
        &certs.path().join("srv.pem"),
        &certs.path().join("srv.key"),
        &plain.host,
    );

    // ca_file relative to the spec file: it exists only on this machine.
    let spec = certs.path().join("cluster.yaml");
    std::fs::write(
        &spec,
        format!(
            "kubernetes_version: \"1.28.2\"\nruntime:\n  kind: containerd\n  registry_mirrors:\n    \
             {MIRRORED}: [\"http://{plain}\"]\n  registries:\n    \"{plain}\": {{ plain_http: true }}\n    \
             \"{tls}\": {{ ca_file: ca.pem }}\n",
            plain = plain.host,
            tls = tls.host
        ),
    )
    .unwrap();

    let first = apply(&lab, &spec);
    let ca_task = format!("Registry CA certificate for containerd ({})", tls.host);
    let changed_first = changed(&first);
    assert!(
        changed_first.contains(&ca_task),
        "the looped CA copy is reported per item: {changed_first:?}"
    );

    // config.toml: config_path, no deprecated tables.
    let config = sh(&lab, &host, "cat /etc/containerd/config.toml");
    assert!(
        config.contains("config_path = \"/etc/containerd/certs.d\""),
        "{config}"
    );
    for deprecated in ["registry.mirrors", "registry.configs", "endpoint ="] {
        assert!(!config.contains(deprecated), "{deprecated}: {config}");
    }
    // hosts.toml per registry; the CA copied byte for byte where hosts.toml points.
    let mirrored = sh(
        &lab,
        &host,
        &format!("cat /etc/containerd/certs.d/{MIRRORED}/hosts.toml"),
    );
    assert!(
        mirrored.contains(&format!("[host.\"http://{}\"]", plain.host)),
        "{mirrored}"
    );
    let plain_toml = sh(
        &lab,
        &host,
        &format!("cat '/etc/containerd/certs.d/{}/hosts.toml'", plain.host),
    );
    assert!(
        plain_toml.contains(&format!("server = \"http://{}\"", plain.host)),
        "{plain_toml}"
    );
    let ca_path = format!("/etc/containerd/certs.d/{}/ca.crt", tls.host);
    let tls_toml = sh(
        &lab,
        &host,
        &format!("cat '/etc/containerd/certs.d/{}/hosts.toml'", tls.host),
    );
    assert!(
        tls_toml.contains(&format!("server = \"https://{}\"", tls.host))
            && tls_toml.contains(&format!("ca = \"{ca_path}\"")),
        "{tls_toml}"
    );
    let local_ca = std::fs::read_to_string(certs.path().join("ca.pem")).unwrap();
    assert_eq!(sh(&lab, &host, &format!("cat '{ca_path}'")), local_ca);

    // Pulls through containerd's CRI image service.
    let fwd = SocketForward::open_path(&lab, &address, "/run/containerd/containerd.sock");
    let mut im = kprov_agent::client::images(&fwd.local)
        .await
        .expect("CRI image client on containerd's forwarded socket");
    for image in [
        format!("{MIRRORED}/test/busybox:1"),
        format!("{}/test/busybox:1", plain.host),
        format!("{}/test/busybox:1", tls.host),
    ] {
        let got = pull(&mut im, &image)
            .await
            .unwrap_or_else(|e| panic!("pull {image}: {e}"));
        assert_eq!(got, image_id, "{image}");
    }
    let journal = sh(&lab, &host, "journalctl -u containerd --no-pager -o cat");
    assert!(
        journal.contains("successfully booted"),
        "containerd's journal is readable: {journal}"
    );
    let warnings: Vec<&str> = journal
        .lines()
        .filter(|l| l.to_lowercase().contains("deprecat"))
        .collect();
    assert!(warnings.is_empty(), "containerd warns: {warnings:?}");

    // Idempotent.
    let second = apply(&lab, &spec);
    assert_eq!(changed(&second), Vec::<String>::new());

    // With another CA in place of the copied one the TLS pull fails verification (so the
    // copied CA is what made it pass); apply puts the right one back.
    let other = std::fs::read_to_string(certs.path().join("other.pem")).unwrap();
    sh(&lab, &host, &format!("printf '%s' '{other}' > '{ca_path}'"));
    let err = pull(&mut im, &format!("{}/test/busybox:1", tls.host))
        .await
        .expect_err("a TLS pull checked against the wrong CA must fail");
    assert!(
        err.message().contains("x509") || err.message().contains("certificate"),
        "{err}"
    );
    let third = apply(&lab, &spec);
    assert_eq!(changed(&third), vec![ca_task]);
    pull(&mut im, &format!("{}/test/busybox:1", tls.host))
        .await
        .expect("TLS pull with the CA back");

    drop(im);
    drop(fwd);

    // The same registries for kprov-agent.
    let agent_spec = certs.path().join("agent.yaml");
    let text = std::fs::read_to_string(&spec)
        .unwrap()
        .replace("kind: containerd", "kind: kprov-agent");
    std::fs::write(&agent_spec, text).unwrap();
    let events = apply(&lab, &agent_spec);
    let agent_ca_task = format!("Registry CA certificate for kprov-agent ({})", tls.host);
    assert!(
        changed(&events).contains(&agent_ca_task),
        "{:?}",
        changed(&events)
    );
    let agent_ca = format!("/etc/kprov/registries/{}/ca.crt", tls.host);
    assert_eq!(sh(&lab, &host, &format!("cat '{agent_ca}'")), local_ca);
    let config = sh(&lab, &host, "cat /etc/kprov/agent.toml");
    let cfg = kprov_agent::config::Config::parse(&config, "agent.toml").unwrap();
    assert_eq!(
        cfg.registry.hosts[&tls.host].ca_file.as_deref(),
        Some(Path::new(&agent_ca)),
        "{config}"
    );
    assert_eq!(
        cfg.registry.mirrors[MIRRORED],
        std::slice::from_ref(&plain.host)
    );
    sh(&lab, &host, WAIT_FOR_SOCKET);
    let fwd = SocketForward::open(&lab, &address);
    let (_, mut im) = fwd.clients().await;
    for image in [
        format!("{MIRRORED}/test/busybox:1"),
        format!("{}/test/busybox:1", plain.host),
        format!("{}/test/busybox:1", tls.host),
    ] {
        let got = pull(&mut im, &image)
            .await
            .unwrap_or_else(|e| panic!("kprov-agent pull {image}: {e}"));
        assert_eq!(got, image_id, "{image}");
    }
}
