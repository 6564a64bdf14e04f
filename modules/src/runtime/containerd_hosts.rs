//! `containerd_hosts`: one registry's `hosts.toml` under containerd's `config_path`
//! (`/etc/containerd/certs.d/<host>/hosts.toml`): the server (plain HTTP or TLS with a CA,
//! `skip_verify`, a client certificate) and its mirrors, tried first, for pull and resolve.
//! The file is written whole by a serializer (toml_edit); every value is escaped by it.

use schemars::JsonSchema;
use serde::Deserialize;
use toml_edit::{Array, DocumentMut, Item, Table, Value};

use crate::runtime::registry_name::{check_endpoint, check_host};
use crate::util::args;
use crate::util::managed::ManagedFile;
use crate::{Module, ModuleError, Plan, State};

/// Arguments of `containerd_hosts`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Args {
    /// containerd's `config_path` (default /etc/containerd/certs.d).
    #[serde(default = "default_dir")]
    dir: String,
    /// The registry, `host[:port]` as image references name it.
    host: String,
    /// Mirror endpoints tried in order before the registry itself, e.g.
    /// `https://mirror.example:5000` (`http://` for plain-HTTP mirrors).
    #[serde(default)]
    mirrors: Vec<String>,
    /// The registry itself speaks plain HTTP.
    #[serde(default)]
    plain_http: bool,
    /// Accept any TLS certificate of the registry.
    #[serde(default)]
    skip_verify: bool,
    /// CA certificate (PEM) on the host that the registry's certificate is checked against.
    ca: Option<String>,
    /// Client certificate and key (PEM) on the host, for mutual TLS.
    client_cert: Option<String>,
    client_key: Option<String>,
}

fn default_dir() -> String {
    "/etc/containerd/certs.d".to_string()
}

/// A built `containerd_hosts` task.
#[derive(Debug)]
pub(crate) struct ContainerdHosts {
    file: ManagedFile,
}

const NAME: &str = "containerd_hosts";

fn bad(message: impl Into<String>) -> ModuleError {
    ModuleError::args(NAME, message.into())
}

fn strings(items: &[&str]) -> Value {
    Value::Array(items.iter().copied().collect::<Array>())
}

impl ContainerdHosts {
    pub fn build(args: serde_json::Value) -> Result<ContainerdHosts, ModuleError> {
        let a: Args = args::parse(NAME, args)?;
        args::path(NAME, "dir", &a.dir)?;
        check_host(&a.host).map_err(|e| bad(format!("host `{}`: {e}", a.host)))?;
        for m in &a.mirrors {
            check_endpoint(m).map_err(|e| bad(format!("mirror `{m}`: {e}")))?;
        }
        for (field, path) in [
            ("ca", &a.ca),
            ("client_cert", &a.client_cert),
            ("client_key", &a.client_key),
        ] {
            if let Some(p) = path {
                args::path(NAME, field, p)?;
            }
        }
        let tls = a.skip_verify || a.ca.is_some() || a.client_cert.is_some();
        if a.plain_http && tls {
            return Err(bad(format!(
                "{}: plain_http leaves no TLS to configure; drop skip_verify/ca/client_* or plain_http",
                a.host
            )));
        }
        if a.client_cert.is_some() != a.client_key.is_some() {
            return Err(bad(format!(
                "{}: give client_cert and client_key together",
                a.host
            )));
        }
        let text = render(&a);
        let path = format!("{}/{}/hosts.toml", a.dir.trim_end_matches('/'), a.host);
        let mut file = ManagedFile::new(path, text);
        file.mode = Some("644".to_string());
        Ok(ContainerdHosts { file })
    }
}

/// hosts.toml for `a`: `server`, one `[host."<mirror>"]` table per mirror in order (pull
/// and resolve), then, when the registry has settings, a `[host."<server>"]` table with
/// them: containerd 1.6 takes the scheme (plain HTTP) and TLS settings of the server only
/// from such a table, not from the top-level `server` alone.
fn render(a: &Args) -> String {
    let mut doc = DocumentMut::new();
    let scheme = if a.plain_http { "http" } else { "https" };
    let server = format!("{scheme}://{}", a.host);
    doc.insert("server", toml_edit::value(server.as_str()));
    let mut hosts = Table::new();
    hosts.set_implicit(true);
    for mirror in &a.mirrors {
        let mut t = Table::new();
        t.insert(
            "capabilities",
            toml_edit::value(strings(&["pull", "resolve"])),
        );
        hosts.insert(mirror, Item::Table(t));
    }
    let settings = a.plain_http || a.skip_verify || a.ca.is_some() || a.client_cert.is_some();
    if settings && !hosts.contains_key(&server) {
        let mut t = Table::new();
        t.insert(
            "capabilities",
            toml_edit::value(strings(&["pull", "resolve", "push"])),
        );
        if a.skip_verify {
            t.insert("skip_verify", toml_edit::value(true));
        }
        if let Some(ca) = &a.ca {
            t.insert("ca", toml_edit::value(ca.as_str()));
        }
        if let (Some(cert), Some(key)) = (&a.client_cert, &a.client_key) {
            let pair = strings(&[cert, key]);
            t.insert(
                "client",
                toml_edit::value(Value::Array(std::iter::once(pair).collect())),
            );
        }
        hosts.insert(&server, Item::Table(t));
    }
    if !hosts.is_empty() {
        doc.insert("host", Item::Table(hosts));
    }
    format!(
        "# Managed by kprov (containerd_hosts): registry {}.\n{doc}",
        a.host
    )
}

impl Module for ContainerdHosts {
    fn name(&self) -> &'static str {
        NAME
    }

    fn gather(&self) -> String {
        self.file.gather("")
    }

    fn plan(&self, state: &State) -> Result<Plan, ModuleError> {
        self.file.plan(NAME, state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::testutil::run_cycle;
    use serde_json::json;

    fn text(args: serde_json::Value) -> (String, DocumentMut) {
        let m = ContainerdHosts::build(args).unwrap();
        let text = String::from_utf8(m.file.content.clone()).unwrap();
        let doc = text.parse().unwrap();
        (text, doc)
    }

    #[test]
    fn mirrors_in_order_then_the_server() {
        let (t, doc) = text(json!({
            "host": "docker.io",
            "mirrors": ["https://m1.lab:5000", "http://10.0.0.1:5000/cache"],
        }));
        assert_eq!(doc["server"].as_str(), Some("https://docker.io"), "{t}");
        let hosts: Vec<&str> = doc["host"]
            .as_table()
            .unwrap()
            .iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(hosts, ["https://m1.lab:5000", "http://10.0.0.1:5000/cache"]);
        assert_eq!(
            doc["host"]["https://m1.lab:5000"]["capabilities"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        assert!(t.contains("[host.\"https://m1.lab:5000\"]"), "{t}");
    }

    #[test]
    fn plain_http_tls_and_client_certificates() {
        let (t, doc) = text(json!({"host": "10.0.0.1:5000", "plain_http": true}));
        assert_eq!(doc["server"].as_str(), Some("http://10.0.0.1:5000"));
        let server = doc["host"]["http://10.0.0.1:5000"].as_table().unwrap();
        assert_eq!(server["capabilities"].as_array().unwrap().len(), 3, "{t}");
        assert!(server.get("ca").is_none());
        let (_, doc) = text(json!({
            "host": "harbor:443", "skip_verify": true, "ca": "/etc/containerd/certs.d/harbor:443/ca.crt",
            "client_cert": "/c.pem", "client_key": "/k.pem",
        }));
        assert_eq!(doc["server"].as_str(), Some("https://harbor:443"));
        let server = &doc["host"]["https://harbor:443"];
        assert_eq!(server["skip_verify"].as_bool(), Some(true));
        assert_eq!(
            server["ca"].as_str(),
            Some("/etc/containerd/certs.d/harbor:443/ca.crt")
        );
        assert_eq!(server["client"][0][1].as_str(), Some("/k.pem"));
        let (_, doc) = text(json!({"host": "docker.io", "mirrors": ["https://m.lab"]}));
        assert!(
            doc["host"].get("https://docker.io").is_none(),
            "no settings, no table"
        );
        for bad in [
            json!({"host": "h", "plain_http": true, "ca": "/ca"}),
            json!({"host": "h", "client_cert": "/c"}),
            json!({"host": "h", "ca": "relative.pem"}),
        ] {
            assert!(ContainerdHosts::build(bad.clone()).is_err(), "{bad}");
        }
    }

    /// Hostile strings never reach the file: the host and mirrors are checked against the
    /// registry grammar; paths (which may hold quotes) are escaped by the serializer and
    /// parse back to exactly the given value, with exactly the intended keys.
    #[test]
    fn hostile_strings_are_refused_or_escaped() {
        for hostile in ["a\"b", "x\"]\n[evil]", "h:1\nk=v", "h]", "h#c", "h=1"] {
            assert!(ContainerdHosts::build(json!({"host": hostile})).is_err());
            let mirror = format!("https://m/{hostile}");
            assert!(
                ContainerdHosts::build(json!({"host": "h", "mirrors": [mirror]})).is_err(),
                "{mirror:?}"
            );
        }
        let path = "/etc/x\"] [evil] k = \"v#'''\\";
        let (t, doc) = text(json!({"host": "h:5000", "ca": path}));
        let keys: Vec<&str> = doc.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["server", "host"], "{t}");
        let server = doc["host"]["https://h:5000"].as_table().unwrap();
        let keys: Vec<&str> = server.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["capabilities", "ca"], "{t}");
        assert_eq!(server["ca"].as_str(), Some(path), "{t}");
    }

    #[test]
    fn real_cycle() {
        let dir = tempfile::tempdir().unwrap();
        let m = ContainerdHosts::build(json!({
            "dir": dir.path(), "host": "r.lab:5000", "mirrors": ["http://10.0.0.1:5000"],
        }))
        .unwrap();
        run_cycle(&m);
        let text = std::fs::read_to_string(dir.path().join("r.lab:5000/hosts.toml")).unwrap();
        assert!(text.contains("[host.\"http://10.0.0.1:5000\"]"), "{text}");
    }
}
