//! Starting the kprov-agent binary with a per-test config, and CRI clients.

use kprov_agent::api::image_service_client::ImageServiceClient;
use kprov_agent::api::runtime_service_client::RuntimeServiceClient;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tonic::transport::Channel;

pub struct TestAgent {
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    pub config: PathBuf,
    /// CNI bridge name, e.g. `kpt1234`.
    pub bridge: String,
    pub subnet: String,
    pub cgroup_parent: String,
    /// A command the agent is started under (e.g. `setpriv --bounding-set …`).
    wrapper: Vec<String>,
    child: Option<Child>,
}

impl TestAgent {
    /// Writes a config (registry `registry` as plain HTTP) and starts the agent.
    /// `net` picks the bridge/subnet (10.99.<net>.0/24); `cni` writes the CNI config now.
    pub fn start(registry: Option<&str>, net: u8, cni: bool) -> Self {
        let hosts = registry
            .map(|r| format!("[registry.hosts.\"{r}\"]\nplain_http = true\n"))
            .unwrap_or_default();
        Self::start_with(&hosts, net, cni)
    }

    /// Like [`TestAgent::start`], with `registry_toml` (e.g. `[registry.hosts."…"]`
    /// tables) appended to the config as is.
    pub fn start_with(registry_toml: &str, net: u8, cni: bool) -> Self {
        Self::start_wrapped(registry_toml, net, cni, &[])
    }

    /// Like [`TestAgent::start_with`], with the agent run as `wrapper… kprov-agent …`.
    pub fn start_wrapped(registry_toml: &str, net: u8, cni: bool, wrapper: &[&str]) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("kprov-agent-test")
            .tempdir()
            .unwrap();
        let d = dir.path();
        let socket = d.join("agent.sock");
        let tag = super::unique(net);
        let bridge = format!("kpt{tag}");
        let subnet = format!("10.99.{net}.0/24");
        let hosts = registry_toml;
        let config = d.join("agent.toml");
        std::fs::write(
            &config,
            format!(
                "socket = \"unix://{}\"\nstate_dir = \"{}\"\nroot_dir = \"{}\"\nrun_dir = \"{}\"\n[cni]\nbin_dirs = [\"/usr/lib/cni\", \"{}\"]\nconf_dir = \"{}\"\n[logs]\nlevel = \"info\"\n{hosts}",
                socket.display(),
                d.join("state").display(),
                d.join("root").display(),
                d.join("run").display(),
                d.join("cni-bin").display(),
                d.join("net.d").display(),
            ),
        )
        .unwrap();
        std::fs::create_dir_all(d.join("net.d")).unwrap();
        let mut a = Self {
            socket,
            config,
            bridge,
            subnet,
            cgroup_parent: format!("/kprov-test-{tag}"),
            wrapper: wrapper.iter().map(|s| s.to_string()).collect(),
            child: None,
            dir,
        };
        if cni {
            a.write_cni();
        }
        a.spawn();
        a
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// host-local's IP allocation directory.
    pub fn ipam_dir(&self) -> PathBuf {
        self.path().join("ipam")
    }

    /// Extra CNI plugin directory (after /usr/lib/cni) for test plugins.
    pub fn cni_bin_dir(&self) -> PathBuf {
        self.path().join("cni-bin")
    }

    pub fn write_cni(&self) {
        let conf = serde_json::json!({
            "cniVersion": "1.0.0",
            "name": format!("kpt-{}", self.bridge),
            "plugins": [
                {"type": "bridge", "bridge": self.bridge, "isGateway": true, "ipMasq": false,
                 "ipam": {"type": "host-local", "ranges": [[{"subnet": self.subnet}]],
                          "routes": [{"dst": "0.0.0.0/0"}], "dataDir": self.ipam_dir()}},
                {"type": "portmap", "capabilities": {"portMappings": true}}
            ]
        });
        std::fs::write(self.path().join("net.d/10-kpt.conflist"), conf.to_string()).unwrap();
    }

    fn spawn(&mut self) {
        let _ = std::fs::remove_file(&self.socket);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path().join("agent.log"))
            .unwrap();
        let agent = env!("CARGO_BIN_EXE_kprov-agent");
        let mut cmd = match self.wrapper.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(agent);
                c
            }
            None => Command::new(agent),
        };
        let child = cmd
            .arg("--config")
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start kprov-agent");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::os::unix::net::UnixStream::connect(&self.socket).is_err() {
            if let Some(st) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("agent exited with {st}: {}", self.log());
            }
            assert!(Instant::now() < deadline, "agent socket did not appear");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The agent's own log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.path().join("agent.log")).unwrap_or_default()
    }

    /// Stops the agent with SIGTERM (or SIGKILL when `hard`).
    pub fn stop(&mut self, hard: bool) {
        if let Some(mut c) = self.child.take() {
            let sig = if hard { libc::SIGKILL } else { libc::SIGTERM };
            // SAFETY: signalling our own child.
            unsafe { libc::kill(c.id() as i32, sig) };
            let _ = c.wait();
        }
    }

    pub fn restart(&mut self, hard: bool) {
        self.stop(hard);
        self.spawn();
    }

    /// The agent's PID.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    pub async fn channel(&self) -> Channel {
        connect(&self.socket).await
    }

    pub async fn runtime(&self) -> RuntimeServiceClient<Channel> {
        RuntimeServiceClient::new(self.channel().await)
    }

    pub async fn images(&self) -> ImageServiceClient<Channel> {
        ImageServiceClient::new(self.channel().await)
    }
}

/// A gRPC channel to the agent listening on `socket`.
async fn connect(socket: &Path) -> Channel {
    kprov_agent::client::connect(socket)
        .await
        .expect("connect to agent")
}

/// Stops and removes every pod of the agent on `socket` (best effort, from a
/// thread of its own: it runs while a failed test unwinds inside its runtime),
/// so a failing test leaves no containers, NAT rules or mounts behind.
fn remove_all_pods(socket: &Path) {
    let socket = socket.to_path_buf();
    let _ = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut rt = RuntimeServiceClient::new(connect(&socket).await);
            let Ok(pods) = rt
                .list_pod_sandbox(kprov_agent::api::ListPodSandboxRequest::default())
                .await
            else {
                return;
            };
            for p in pods.into_inner().items {
                let _ = rt
                    .stop_pod_sandbox(kprov_agent::api::StopPodSandboxRequest {
                        pod_sandbox_id: p.id.clone(),
                    })
                    .await;
                let _ = rt
                    .remove_pod_sandbox(kprov_agent::api::RemovePodSandboxRequest {
                        pod_sandbox_id: p.id,
                    })
                    .await;
            }
        });
    })
    .join();
}

impl Drop for TestAgent {
    fn drop(&mut self) {
        // Passed or failed, a test leaves no pod (monitors, pod inits, mounts) behind.
        if self.child.is_some() {
            remove_all_pods(&self.socket);
            for ctrl in ["memory", "cpu", "cpuacct", "pids", "systemd", "unified"] {
                let _ = std::fs::remove_dir(format!("/sys/fs/cgroup/{ctrl}{}", self.cgroup_parent));
            }
        }
        self.stop(false);
        // Never leave a test bridge behind, whatever the outcome.
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .output();
    }
}
