//! Third-party stream clients for the streaming tests: npm's `spdy` (its
//! protocol engine spdy-transport drives SPDY/3.1) and PyPI's `websockets`,
//! installed at pinned versions under /var/cache/kprov on first use (skipped
//! when already there), and run by the scripts in tests/clients/.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// npm's `spdy`, whose dependency spdy-transport is the SPDY/3.1 engine.
const SPDY_NPM: &str = "spdy@4.0.2";
/// PyPI's `websockets`.
const WEBSOCKETS_PIP: &str = "websockets==15.0.1";
const NPM_DIR: &str = "/var/cache/kprov/npm";
const PY_DIR: &str = "/var/cache/kprov/py";

fn run(cmd: &mut Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Installs both clients once per test binary.
pub fn ensure() {
    static READY: OnceLock<()> = OnceLock::new();
    READY.get_or_init(|| {
        // One installer at a time across test binaries.
        std::fs::create_dir_all(NPM_DIR).unwrap();
        let lock = std::fs::File::create("/var/cache/kprov/.stream-clients.lock").unwrap();
        // SAFETY: flock on an open descriptor.
        unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX) };
        let have_spdy =
            std::fs::read_to_string(format!("{NPM_DIR}/node_modules/spdy/package.json"))
                .map(|t| t.contains("\"version\": \"4.0.2\""))
                .unwrap_or(false);
        if !have_spdy {
            run(
                Command::new("npm")
                    .args(["install", "--no-audit", "--no-fund", "--prefix", NPM_DIR])
                    .arg(SPDY_NPM),
                "npm install spdy",
            );
        }
        let py = Path::new(PY_DIR).join("bin/python");
        let have_ws = Command::new(&py)
            .args([
                "-c",
                "import websockets,sys; sys.exit(websockets.__version__ != '15.0.1')",
            ])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !have_ws {
            if !py.exists() {
                run(
                    Command::new("python3").args(["-m", "venv", PY_DIR]),
                    "python3 -m venv",
                );
            }
            run(
                Command::new(Path::new(PY_DIR).join("bin/pip")).args([
                    "install",
                    "-q",
                    WEBSOCKETS_PIP,
                ]),
                "pip install websockets",
            );
        }
    });
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/clients")
        .join(name)
}

async fn json_of(mut cmd: tokio::process::Command, what: &str) -> Value {
    let out = cmd.output().await.unwrap_or_else(|e| panic!("{what}: {e}"));
    let text = String::from_utf8_lossy(&out.stdout);
    let mut v: Value = serde_json::from_str(text.trim()).unwrap_or_else(|e| {
        panic!(
            "{what}: no JSON result ({e}): {text} {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    if std::env::var_os("STREAM_CLIENT_DEBUG").is_some() {
        v["client_stderr"] = String::from_utf8_lossy(&out.stderr).into();
    }
    v
}

/// Runs the SPDY client against `url`, offering `protocols` (comma-separated).
pub async fn spdy(url: &str, protocols: &str, spec: Value) -> Value {
    ensure();
    let mut c = tokio::process::Command::new("node");
    c.arg(script("spdy_client.js"))
        .args([url, protocols, &spec.to_string()])
        .env("NODE_PATH", format!("{NPM_DIR}/node_modules"));
    json_of(c, "spdy client").await
}

/// Runs the WebSocket client against `url` with subprotocol `protocol`.
pub async fn ws(url: &str, protocol: &str, spec: Value) -> Value {
    ensure();
    let ws_url = url.replacen("http://", "ws://", 1);
    let mut c = tokio::process::Command::new(Path::new(PY_DIR).join("bin/python"));
    c.arg(script("ws_client.py"))
        .args([ws_url.as_str(), protocol, &spec.to_string()]);
    json_of(c, "websocket client").await
}
