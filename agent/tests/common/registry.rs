//! Debian's `docker-registry` (CNCF distribution) on a free port, optionally
//! with basic auth (htpasswd), token auth (a [`super::token_server::TokenServer`])
//! or TLS.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Registry {
    /// `ip:port` the registry listens on.
    pub host: String,
    child: Child,
    dir: tempfile::TempDir,
}

/// `auth: token:` settings of the registry.
pub struct TokenAuth {
    pub realm: String,
    pub service: String,
    pub issuer: String,
    /// PEM bundle of the certificates whose keys may sign tokens.
    pub root_cert_bundle: PathBuf,
}

/// How a registry is served.
#[derive(Default)]
pub struct RegistryOptions {
    /// Listen address (default 127.0.0.1).
    pub ip: Option<String>,
    /// HTTP basic auth with this user and password.
    pub htpasswd: Option<(String, String)>,
    /// Bearer-token auth.
    pub token: Option<TokenAuth>,
    /// TLS with this certificate and key (PEM files).
    pub tls: Option<(PathBuf, PathBuf)>,
}

impl Registry {
    pub fn start() -> Self {
        Self::start_with(RegistryOptions::default())
    }

    /// A registry that requires HTTP basic auth with `user`/`password`.
    pub fn start_with_auth(user: &str, password: &str) -> Self {
        Self::start_with(RegistryOptions {
            htpasswd: Some((user.into(), password.into())),
            ..Default::default()
        })
    }

    /// A registry with the given options.
    pub fn start_with(opts: RegistryOptions) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let ip = opts.ip.as_deref().unwrap_or("127.0.0.1");
        let port = std::net::TcpListener::bind(format!("{ip}:0"))
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let cfg = dir.path().join("config.yml");
        let mut text = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {ip}:{port}\n",
            dir.path().join("data").display()
        );
        if let Some((cert, key)) = &opts.tls {
            text.push_str(&format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                cert.display(),
                key.display()
            ));
        }
        if let Some((user, password)) = &opts.htpasswd {
            let htpasswd = dir.path().join("htpasswd");
            let hash = bcrypt::hash(password, 4).expect("bcrypt");
            std::fs::write(&htpasswd, format!("{user}:{hash}\n")).expect("htpasswd");
            text.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: kprov-test\n    path: {}\n",
                htpasswd.display()
            ));
        }
        if let Some(t) = &opts.token {
            text.push_str(&format!(
                "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
                t.realm,
                t.service,
                t.issuer,
                t.root_cert_bundle.display()
            ));
        }
        std::fs::write(&cfg, text).expect("registry config");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(dir.path().join("registry.log")).expect("registry log"),
            ))
            .spawn()
            .expect("docker-registry must be installed (Debian package docker-registry)");
        let host = format!("{ip}:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(&host).is_err() {
            assert!(
                Instant::now() < deadline,
                "registry did not start on {host}: {}",
                std::fs::read_to_string(dir.path().join("registry.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { host, child, dir }
    }

    /// The registry's own log (errors only).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
