//! kprov-agent inside lab hosts: a registry on the lab bridge with a busybox image, the
//! agent's socket forwarded over SSH, and the agent told to pull from that registry.

pub use super::sh;
use super::Lab;
use kprov_agent::api::image_service_client::ImageServiceClient;
use kprov_agent::api::runtime_service_client::RuntimeServiceClient;
use kprov_agent::oci_client;
use kprov_agent::tonic::transport::Channel;
use sha2::Digest as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// CRI runtime client on a forwarded agent socket.
pub type Rt = RuntimeServiceClient<Channel>;
/// CRI image client on a forwarded agent socket.
pub type Im = ImageServiceClient<Channel>;

/// The `kprov-agent` binaries `roles/kprov-agent` pushes must sit beside `kprov`.
pub fn agent_binaries_beside_kprov() {
    let dir = Path::new(env!("CARGO_BIN_EXE_kprov")).parent().unwrap();
    for bin in ["kprov-agent", "kprov-agent-monitor"] {
        assert!(
            dir.join(bin).is_file(),
            "{} missing: build the agent into the same target dir first (cargo build -p kprov-agent)",
            dir.join(bin).display()
        );
    }
}

/// Debian's `docker-registry` listening on `ip` (the lab bridge), stopped on drop.
pub struct BridgeRegistry {
    /// `ip:port` the registry listens on.
    pub host: String,
    child: Child,
    _dir: tempfile::TempDir,
}

impl BridgeRegistry {
    /// Starts a plain-HTTP registry on a free port of `ip` and waits until it accepts.
    pub fn start(ip: &str) -> Self {
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
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {ip}:{port}\n",
                dir.path().join("data").display()
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
            assert!(
                Instant::now() < deadline,
                "registry did not start on {host}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            host,
            child,
            _dir: dir,
        }
    }
}

impl Drop for BridgeRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex(&sha2::Sha256::digest(data)))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Pushes `test/busybox:1`: one layer holding the machine's static busybox at
/// /bin/busybox. Returns the image id (config digest).
pub async fn push_busybox(registry: &str) -> String {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("bin")).unwrap();
    std::fs::copy("/bin/busybox", root.path().join("bin/busybox"))
        .expect("/bin/busybox (Debian package busybox-static)");
    let tar = Command::new("tar")
        .args([
            "--owner=0",
            "--group=0",
            "--numeric-owner",
            "-cf",
            "-",
            "-C",
        ])
        .arg(root.path())
        .arg("bin")
        .output()
        .unwrap();
    assert!(tar.status.success());
    let gz = {
        let mut child = Command::new("gzip")
            .arg("-c")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let data = tar.stdout.clone();
        let writer = std::thread::spawn(move || std::io::Write::write_all(&mut stdin, &data));
        let out = child.wait_with_output().unwrap();
        writer.join().unwrap().unwrap();
        out.stdout
    };
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["/bin/busybox", "sh"], "Env": ["PATH=/bin"], "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": [sha256(&tar.stdout)]},
    })
    .to_string()
    .into_bytes();
    let id = sha256(&config);
    let layers = vec![oci_client::client::ImageLayer::new(
        gz,
        "application/vnd.oci.image.layer.v1.tar+gzip".into(),
        None,
    )];
    let config = oci_client::client::Config::new(
        config,
        "application/vnd.oci.image.config.v1+json".into(),
        None,
    );
    let manifest = oci_client::manifest::OciImageManifest::build(&layers, &config, None);
    kprov_agent::image::install_crypto_provider();
    let client = oci_client::Client::new(oci_client::client::ClientConfig {
        protocol: oci_client::client::ClientProtocol::Http,
        ..Default::default()
    });
    let reference: oci_client::Reference = format!("{registry}/test/busybox:1").parse().unwrap();
    client
        .push(
            &reference,
            &layers,
            config,
            &oci_client::secrets::RegistryAuth::Anonymous,
            Some(manifest),
        )
        .await
        .expect("push test image");
    id
}

/// Restarts the agent on `host` with plain HTTP allowed for `registry` (`ip:port`),
/// appended to /etc/kprov/agent.toml as an operator would (the cluster spec has no
/// plain-HTTP setting). A lab host whose /var/lib/kprov-agent is still on the overlay
/// root (labs older than the storage bind mount) gets a tmpfs there: overlayfs cannot
/// be an overlay's upper dir. Waits until the agent's socket exists again.
pub fn agent_pulls_from(lab: &Lab, host: &str, registry: &str) {
    let fs = sh(lab, host, "stat -f -c %T /var/lib/kprov-agent");
    let storage = if fs.trim() == "overlayfs" {
        "mount -t tmpfs -o mode=0711 kprov-agent /var/lib/kprov-agent && "
    } else {
        ""
    };
    sh(
        lab,
        host,
        &format!(
            "systemctl stop kprov-agent && {storage}printf '\\n[registry.hosts.\"%s\"]\\nplain_http = true\\n' '{registry}' >> /etc/kprov/agent.toml && systemctl start kprov-agent && {}",
            WAIT_FOR_SOCKET
        ),
    );
}

/// Shell snippet: waits up to 10 s for the agent's socket, failing after that.
pub const WAIT_FOR_SOCKET: &str =
    "for i in $(seq 100); do test -S /run/kprov/agent.sock && exit 0; sleep 0.1; done; exit 1";

/// `ssh -N -L LOCAL:/run/kprov/agent.sock` to the lab host, with the lab's key.
pub struct SocketForward {
    /// The local end of the forwarded socket.
    pub local: PathBuf,
    child: Child,
    _dir: tempfile::TempDir,
}

impl SocketForward {
    /// Forwards the agent socket of the lab host at `address`; waits for the local socket.
    pub fn open(lab: &Lab, address: &str) -> Self {
        Self::open_path(lab, address, "/run/kprov/agent.sock")
    }

    /// Forwards the unix socket `remote` (e.g. containerd's) of the lab host at `address`.
    pub fn open_path(lab: &Lab, address: &str, remote: &str) -> Self {
        let inventory = std::fs::read_to_string(&lab.inventory).unwrap();
        let setting = |key: &str| -> String {
            let line = inventory
                .lines()
                .find_map(|l| l.trim().strip_prefix(&format!("{key}:")))
                .unwrap_or_else(|| panic!("{key} missing from the lab inventory"));
            serde_json::from_str(line.trim()).unwrap_or_else(|_| line.trim().to_string())
        };
        let dir = tempfile::tempdir().unwrap();
        let local = dir.path().join("agent.sock");
        let child = Command::new("ssh")
            .arg("-i")
            .arg(setting("identity_file"))
            .args(["-o", "IdentitiesOnly=yes", "-o"])
            .arg(format!(
                "UserKnownHostsFile={}",
                setting("known_hosts_file")
            ))
            .args([
                "-o",
                "StrictHostKeyChecking=yes",
                "-o",
                "ExitOnForwardFailure=yes",
                "-o",
                "LogLevel=ERROR",
                "-N",
                "-L",
            ])
            .arg(format!("{}:{remote}", local.display()))
            .arg(format!("root@{address}"))
            .stdin(Stdio::null())
            .spawn()
            .expect("ssh (Debian package openssh-client)");
        let mut f = Self {
            local,
            child,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !f.local.exists() {
            if let Ok(Some(st)) = f.child.try_wait() {
                panic!("ssh forwarding exited: {st}");
            }
            assert!(Instant::now() < deadline, "forwarded socket never appeared");
            std::thread::sleep(Duration::from_millis(50));
        }
        f
    }

    /// CRI runtime and image clients on the forwarded socket.
    pub async fn clients(&self) -> (Rt, Im) {
        let rt = kprov_agent::client::runtime(&self.local)
            .await
            .expect("runtime client on the forwarded agent socket");
        let im = kprov_agent::client::images(&self.local)
            .await
            .expect("image client on the forwarded agent socket");
        (rt, im)
    }
}

impl Drop for SocketForward {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
