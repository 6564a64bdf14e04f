//! The agent's TOML configuration (`/etc/kprov/agent.toml` by default).

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Default location of the configuration file.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/kprov/agent.toml";

/// Errors while loading the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}:{line}:{column}: {message}\n  fix the value at that position (see agent/dist/agent.toml for every field)")]
    Parse {
        path: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

/// Which cgroup manager names the containers' cgroups (must match kubelet's `cgroupDriver`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum CgroupDriver {
    #[default]
    Cgroupfs,
    Systemd,
}

/// The whole agent configuration.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// gRPC endpoint, `unix:///run/kprov/agent.sock`.
    pub socket: String,
    /// Persistent state: sandbox and container records.
    pub state_dir: PathBuf,
    /// Images, content store, snapshots and container writable layers.
    pub root_dir: PathBuf,
    /// Volatile runtime files: namespace pins, runc state, exit files.
    pub run_dir: PathBuf,
    pub cgroup_driver: CgroupDriver,
    pub runtime: RuntimeConfig,
    pub cni: CniConfig,
    pub sandbox: SandboxConfig,
    pub registry: RegistryConfig,
    pub logs: LogConfig,
    pub stream: StreamConfig,
}

/// The streaming server behind Exec, Attach and PortForward.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StreamConfig {
    /// `ip:port` to listen on; port 0 picks a free one. Loopback by default:
    /// kubelet, on the same node, proxies clients to it.
    pub address: String,
    /// Seconds an unused stream URL stays valid.
    pub token_ttl_secs: u64,
    /// Seconds without traffic after which a stream is closed (kubelet: 4 h).
    pub idle_timeout_secs: u64,
    /// Seconds a client has to open its streams after the upgrade.
    pub stream_creation_timeout_secs: u64,
    /// Most stream connections served at once; more are refused (429).
    pub max_concurrent: usize,
}

impl Default for StreamConfig {
    fn default() -> Self {
        Self {
            address: "127.0.0.1:0".into(),
            token_ttl_secs: 60,
            idle_timeout_secs: 4 * 3600,
            stream_creation_timeout_secs: 30,
            max_concurrent: 128,
        }
    }
}

/// The OCI runtime binary.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeConfig {
    /// Path of the `runc`-compatible binary.
    pub path: PathBuf,
}

/// CNI plugin and configuration directories.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CniConfig {
    pub bin_dirs: Vec<PathBuf>,
    pub conf_dir: PathBuf,
}

/// Sandbox-wide settings.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SandboxConfig {
    /// Never ask for an oom_score_adj below the agent's own (it would be refused).
    pub restrict_oom_score_adj: bool,
    /// resolv.conf used when the pod asks for no DNS config.
    pub host_resolv_conf: PathBuf,
}

/// Registry access: mirrors and per-host settings.
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RegistryConfig {
    /// Registry host → mirror hosts tried first, e.g. `"docker.io" = ["mirror.local:5000"]`.
    pub mirrors: HashMap<String, Vec<String>>,
    /// Per-host TLS and auth settings, keyed by `host[:port]`.
    pub hosts: HashMap<String, RegistryHost>,
}

/// Settings for one registry host.
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RegistryHost {
    /// Talk plain HTTP to this host.
    pub plain_http: bool,
    /// Accept any TLS certificate from this host.
    pub insecure_skip_verify: bool,
    /// PEM file with the CA certificate(s) this host's TLS certificate is checked
    /// against, in addition to the system roots.
    pub ca_file: Option<PathBuf>,
    pub username: Option<String>,
    pub password: Option<String>,
    /// A bearer token used as is.
    pub token: Option<String>,
}

/// Container log settings.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// Longest log record; longer lines are split into `P` records.
    pub max_line_bytes: usize,
    /// Agent log filter (tracing `EnvFilter` syntax).
    pub level: String,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            socket: "unix:///run/kprov/agent.sock".into(),
            state_dir: "/var/lib/kprov-agent/state".into(),
            root_dir: "/var/lib/kprov-agent".into(),
            run_dir: "/run/kprov/agent".into(),
            cgroup_driver: CgroupDriver::Cgroupfs,
            runtime: RuntimeConfig::default(),
            cni: CniConfig::default(),
            sandbox: SandboxConfig::default(),
            registry: RegistryConfig::default(),
            logs: LogConfig::default(),
            stream: StreamConfig::default(),
        }
    }
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            path: "/usr/sbin/runc".into(),
        }
    }
}

impl Default for CniConfig {
    fn default() -> Self {
        Self {
            bin_dirs: vec!["/opt/cni/bin".into(), "/usr/lib/cni".into()],
            conf_dir: "/etc/cni/net.d".into(),
        }
    }
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            restrict_oom_score_adj: true,
            host_resolv_conf: "/etc/resolv.conf".into(),
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            max_line_bytes: 16 * 1024,
            level: "info".into(),
        }
    }
}

impl Config {
    /// Parses TOML text; `path` only names the source in errors.
    pub fn parse(text: &str, path: &str) -> Result<Self, ConfigError> {
        let cfg: Config = toml::from_str(text).map_err(|e| {
            let (line, column) = e.span().map(|s| line_col(text, s.start)).unwrap_or((1, 1));
            ConfigError::Parse {
                path: path.to_string(),
                line,
                column,
                message: e.message().to_string(),
            }
        })?;
        cfg.validate(path)?;
        Ok(cfg)
    }

    /// Loads the file at `path`; a missing default file yields the defaults.
    pub fn load(path: &Path, required: bool) -> Result<Self, ConfigError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text, &path.display().to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => Ok(Self::default()),
            Err(source) => Err(ConfigError::Read {
                path: path.display().to_string(),
                source,
            }),
        }
    }

    /// Whether any registry host carries a password or token.
    pub fn has_registry_secrets(&self) -> bool {
        self.registry
            .hosts
            .values()
            .any(|h| h.password.is_some() || h.token.is_some())
    }

    /// A warning when the file at `path` holds registry secrets but other users
    /// can read it (the secrets belong in a 0600 file).
    pub fn secrets_exposure(&self, path: &Path) -> Option<String> {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
        (self.has_registry_secrets() && mode & 0o077 != 0).then(|| {
            format!(
                "{} holds registry credentials but has mode {mode:04o}: run chmod 600 {}",
                path.display(),
                path.display()
            )
        })
    }

    /// The unix socket path from `socket`.
    pub fn socket_path(&self) -> PathBuf {
        PathBuf::from(self.socket.strip_prefix("unix://").unwrap_or(&self.socket))
    }

    fn validate(&self, path: &str) -> Result<(), ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            path: path.to_string(),
            message,
        };
        if !self.socket.starts_with("unix://") && !self.socket.starts_with('/') {
            return Err(invalid(format!(
                "socket = {:?}: use unix:///path/to/agent.sock",
                self.socket
            )));
        }
        for (name, dir) in [
            ("state_dir", &self.state_dir),
            ("root_dir", &self.root_dir),
            ("run_dir", &self.run_dir),
        ] {
            if !dir.is_absolute() {
                return Err(invalid(format!(
                    "{name} = {:?}: must be an absolute path",
                    dir.display()
                )));
            }
        }
        for (host, h) in &self.registry.hosts {
            if let Some(ca) = &h.ca_file {
                if !ca.is_absolute() {
                    return Err(invalid(format!(
                        "registry.hosts.\"{host}\".ca_file = {:?}: must be an absolute path",
                        ca.display()
                    )));
                }
            }
            if h.plain_http && (h.insecure_skip_verify || h.ca_file.is_some()) {
                return Err(invalid(format!(
                    "registry.hosts.\"{host}\": plain_http = true leaves no TLS to configure; drop insecure_skip_verify/ca_file or plain_http"
                )));
            }
        }
        if self.stream.address.parse::<std::net::SocketAddr>().is_err() {
            return Err(invalid(format!(
                "stream.address = {:?}: use ip:port, e.g. \"127.0.0.1:0\" (port 0: any free port)",
                self.stream.address
            )));
        }
        if self.stream.max_concurrent == 0 || self.stream.token_ttl_secs == 0 {
            return Err(invalid(
                "stream.max_concurrent and stream.token_ttl_secs must be at least 1".into(),
            ));
        }
        if self.logs.max_line_bytes < 64 {
            return Err(invalid("logs.max_line_bytes must be at least 64".into()));
        }
        Ok(())
    }
}

/// 1-based line and column of byte offset `pos` in `text`.
fn line_col(text: &str, pos: usize) -> (usize, usize) {
    let before = &text[..pos.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_when_empty() {
        let c = Config::parse("", "t.toml").unwrap();
        assert_eq!(c.socket_path(), PathBuf::from("/run/kprov/agent.sock"));
        assert_eq!(c.cgroup_driver, CgroupDriver::Cgroupfs);
    }

    #[test]
    fn full_file_parses() {
        let c = Config::parse(
            r#"
socket = "unix:///tmp/a.sock"
cgroup_driver = "systemd"
[registry.mirrors]
"docker.io" = ["127.0.0.1:5000"]
[registry.hosts."127.0.0.1:5000"]
plain_http = true
[cni]
bin_dirs = ["/usr/lib/cni"]
conf_dir = "/tmp/net.d"
"#,
            "t.toml",
        )
        .unwrap();
        assert_eq!(c.cgroup_driver, CgroupDriver::Systemd);
        assert!(c.registry.hosts["127.0.0.1:5000"].plain_http);
        assert_eq!(c.registry.mirrors["docker.io"], vec!["127.0.0.1:5000"]);
    }

    #[test]
    fn unknown_key_names_line_and_column() {
        let err = Config::parse(
            "socket = \"unix:///a\"\n\n[cni]\n  bogus = 1\n",
            "agent.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("agent.toml:4:3:"), "{err}");
        assert!(err.contains("bogus"), "{err}");
    }

    #[test]
    fn shipped_sample_parses_to_the_defaults() {
        let c = Config::parse(include_str!("../dist/agent.toml"), "dist/agent.toml").unwrap();
        let d = Config::default();
        assert_eq!(c.socket, d.socket);
        assert_eq!(c.state_dir, d.state_dir);
        assert_eq!(c.cni.bin_dirs, d.cni.bin_dirs);
        assert_eq!(c.runtime.path, d.runtime.path);
        assert_eq!(c.stream.address, d.stream.address);
        assert_eq!(c.stream.idle_timeout_secs, d.stream.idle_timeout_secs);
        assert_eq!(c.stream.max_concurrent, d.stream.max_concurrent);
    }

    #[test]
    fn stream_address_must_be_ip_and_port() {
        let err = Config::parse("[stream]\naddress = \"localhost\"\n", "a.toml")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("stream.address") && err.contains("ip:port"),
            "{err}"
        );
        let c = Config::parse("[stream]\naddress = \"0.0.0.0:10010\"\n", "a.toml").unwrap();
        assert_eq!(c.stream.address, "0.0.0.0:10010");
    }

    #[test]
    fn registry_ca_file_must_be_absolute_and_tls() {
        let err = Config::parse(
            "[registry.hosts.\"r:5000\"]\nca_file = \"ca.pem\"\n",
            "a.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("r:5000") && err.contains("ca_file"), "{err}");
        let err = Config::parse(
            "[registry.hosts.\"r:5000\"]\nca_file = \"/ca.pem\"\nplain_http = true\n",
            "a.toml",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("plain_http"), "{err}");
        let c = Config::parse(
            "[registry.hosts.\"r:5000\"]\nca_file = \"/ca.pem\"\n",
            "a.toml",
        )
        .unwrap();
        assert_eq!(
            c.registry.hosts["r:5000"].ca_file.as_deref(),
            Some(Path::new("/ca.pem"))
        );
    }

    #[test]
    fn readable_secrets_are_reported() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.toml");
        let text = "[registry.hosts.\"r:5000\"]\nusername = \"u\"\npassword = \"pw-123\"\n";
        std::fs::write(&path, text).unwrap();
        let c = Config::parse(text, "agent.toml").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let w = c
            .secrets_exposure(&path)
            .expect("0644 with a password is reported");
        assert!(w.contains("0644") && w.contains("chmod 600"), "{w}");
        assert!(!w.contains("pw-123"));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(c.secrets_exposure(&path).is_none());
        let plain = Config::parse("", "agent.toml").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(plain.secrets_exposure(&path).is_none());
    }

    #[test]
    fn relative_dir_rejected() {
        let err = Config::parse("root_dir = \"var/lib\"", "a.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("root_dir"), "{err}");
    }
}
