//! `containerd_config`: structured edit of containerd's config.toml with `toml_edit`, keeping
//! everything else (comments, order, other plugins) as it is: the CRI plugin enabled,
//! `SystemdCgroup`, `sandbox_image`, registry mirrors, per-registry TLS and auth,
//! `oom_score`. The current file is gathered; the new text is computed here.

use std::collections::BTreeMap;

use regex::Regex;
use schemars::JsonSchema;
use serde::Deserialize;
use toml_edit::{Array, DocumentMut, Item, Table, TableLike, Value};

use crate::args;
use crate::edit::{self};
use crate::managed::fold;
use crate::{Diff, Module, ModuleError, State};

/// TLS and credentials for one registry host.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Registry {
    insecure_skip_verify: Option<bool>,
    /// Plain HTTP: containerd reaches it through an `http://` mirror endpoint (unless a
    /// mirror for it is given).
    plain_http: Option<bool>,
    ca_file: Option<String>,
    cert_file: Option<String>,
    key_file: Option<String>,
    username: Option<String>,
    /// Secret: masked in diffs; the file is written 0600.
    password: Option<String>,
    /// The same credentials nested, as the cluster spec writes them.
    auth: Option<Auth>,
}

/// Registry credentials (`auth: {username, password}`).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Auth {
    username: Option<String>,
    /// Secret: masked in diffs.
    password: Option<String>,
}

/// Arguments of `containerd_config`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Args {
    #[serde(default = "default_path")]
    path: String,
    /// Make sure the CRI plugin is not in disabled_plugins (default true).
    #[serde(default = "yes")]
    cri_enabled: bool,
    /// runc's SystemdCgroup (must match the kubelet's cgroupDriver).
    systemd_cgroup: Option<bool>,
    /// Pause image, e.g. registry.k8s.io/pause:3.9 or a mirror.
    sandbox_image: Option<String>,
    /// Registry host → mirror endpoints, e.g. {docker.io: [https://mirror.example]}.
    #[serde(default)]
    mirrors: BTreeMap<String, Vec<String>>,
    /// Registry host (host:port) → TLS and auth settings.
    #[serde(default)]
    registries: BTreeMap<String, Registry>,
    /// containerd daemon's OOM score adjustment, e.g. -999.
    oom_score: Option<i64>,
}

fn default_path() -> String {
    "/etc/containerd/config.toml".to_string()
}
fn yes() -> bool {
    true
}

/// A built `containerd_config` task.
#[derive(Debug)]
pub(crate) struct ContainerdConfig {
    a: Args,
    secret: bool,
}

const NAME: &str = "containerd_config";
const CRI_V2: &str = "io.containerd.grpc.v1.cri";
const CRI_V3_RUNTIME: &str = "io.containerd.cri.v1.runtime";
const CRI_V3_IMAGES: &str = "io.containerd.cri.v1.images";

fn conflict(message: impl Into<String>) -> ModuleError {
    ModuleError::conflict(NAME, message)
}

/// The child table `key` of `parent`, created (implicit) when missing.
fn child<'a>(
    parent: &'a mut dyn TableLike,
    key: &str,
    path: &str,
) -> Result<&'a mut dyn TableLike, ModuleError> {
    if parent.get(key).is_none() {
        let mut t = Table::new();
        t.set_implicit(true);
        parent.insert(key, Item::Table(t));
    }
    parent
        .get_mut(key)
        .and_then(Item::as_table_like_mut)
        .ok_or_else(|| conflict(format!("{path}.{key} is not a table; fix or remove it")))
}

/// Walks/creates `keys` below the document root.
fn tables<'a>(
    doc: &'a mut DocumentMut,
    keys: &[&str],
) -> Result<&'a mut dyn TableLike, ModuleError> {
    let mut cur: &mut dyn TableLike = doc.as_table_mut();
    let mut path = String::new();
    for key in keys {
        cur = child(cur, key, &path)?;
        path = if path.is_empty() {
            (*key).to_string()
        } else {
            format!("{path}.{key}")
        };
    }
    Ok(cur)
}

/// Sets `key` to `new` unless it already has that value (keeps comments around it).
fn set(table: &mut dyn TableLike, key: &str, new: Value) {
    if let Some(Item::Value(old)) = table.get_mut(key) {
        if old.to_string().trim() == new.to_string().trim() {
            return;
        }
        let decor = old.decor().clone();
        *old = new;
        *old.decor_mut() = decor;
        return;
    }
    table.insert(key, Item::Value(new));
}

fn strings(items: &[String]) -> Value {
    Value::Array(items.iter().map(String::as_str).collect::<Array>())
}

impl ContainerdConfig {
    pub fn build(args: serde_json::Value) -> Result<ContainerdConfig, ModuleError> {
        let a: Args = args::parse(NAME, args)?;
        args::path(NAME, "path", &a.path)?;
        for (host, endpoints) in &a.mirrors {
            if host.is_empty() || endpoints.is_empty() {
                return Err(ModuleError::args(
                    NAME,
                    format!("mirrors.{host}: give at least one endpoint"),
                ));
            }
        }
        let mut a = a;
        for (host, r) in a.registries.iter_mut() {
            if let Some(auth) = r.auth.take() {
                if r.username.is_some() || r.password.is_some() {
                    return Err(ModuleError::args(
                        NAME,
                        format!("registries.{host}: give username/password or auth, not both"),
                    ));
                }
                r.username = auth.username;
                r.password = auth.password;
            }
        }
        let secret = a.registries.values().any(|r| r.password.is_some());
        Ok(ContainerdConfig { a, secret })
    }

    /// The new config text for the current one.
    fn edit(&self, current: Option<&[u8]>) -> Result<Option<Vec<u8>>, ModuleError> {
        let path = &self.a.path;
        let text = match current {
            None => "version = 2\n".to_string(),
            Some(bytes) => String::from_utf8(bytes.to_vec())
                .map_err(|_| conflict(format!("{path} is not UTF-8 text")))?,
        };
        let mut doc: DocumentMut = text
            .parse()
            .map_err(|e| conflict(format!("{path} is not valid TOML: {e}")))?;
        let version = match doc.get("version").map(|v| v.as_integer()) {
            Some(Some(v)) => v,
            Some(None) => return Err(conflict(format!("{path}: version is not an integer"))),
            None if doc.get("plugins").is_some_and(|p| p.get("cri").is_some()) => {
                return Err(conflict(format!(
                    "{path} is a version 1 config; convert it with `containerd config migrate` or \
                     replace it with `containerd config default`"
                )))
            }
            None => {
                doc.insert("version", toml_edit::value(2));
                2
            }
        };
        let (disabled, runtime, images): (&[&str], &[&str], &[&str]) = match version {
            2 => (&["cri", CRI_V2], &["plugins", CRI_V2], &["plugins", CRI_V2]),
            3 => (
                &["cri", CRI_V2, CRI_V3_RUNTIME, CRI_V3_IMAGES],
                &["plugins", CRI_V3_RUNTIME],
                &["plugins", CRI_V3_IMAGES],
            ),
            v => {
                return Err(conflict(format!(
                    "{path}: config version {v} is not supported (2 or 3)"
                )))
            }
        };

        if self.a.cri_enabled {
            if let Some(item) = doc.get_mut("disabled_plugins") {
                let array = item
                    .as_array_mut()
                    .ok_or_else(|| conflict(format!("{path}: disabled_plugins is not a list")))?;
                let before = array.len();
                array.retain(|v| !v.as_str().is_some_and(|s| disabled.contains(&s)));
                if array.len() != before {
                    array.fmt();
                }
            }
        }
        if let Some(score) = self.a.oom_score {
            set(doc.as_table_mut(), "oom_score", Value::from(score));
        }
        if let Some(systemd) = self.a.systemd_cgroup {
            let runc = {
                let mut keys = runtime.to_vec();
                keys.extend(["containerd", "runtimes", "runc"]);
                tables(&mut doc, &keys)?
            };
            if runc.get("runtime_type").is_none() {
                runc.insert("runtime_type", toml_edit::value("io.containerd.runc.v2"));
            }
            let options = child(runc, "options", "runc")?;
            set(options, "SystemdCgroup", Value::from(systemd));
        }
        if let Some(image) = &self.a.sandbox_image {
            if version == 2 {
                set(
                    tables(&mut doc, images)?,
                    "sandbox_image",
                    Value::from(image.as_str()),
                );
            } else {
                let mut keys = images.to_vec();
                keys.push("pinned_images");
                set(
                    tables(&mut doc, &keys)?,
                    "sandbox",
                    Value::from(image.as_str()),
                );
            }
        }
        if !self.a.mirrors.is_empty() || !self.a.registries.is_empty() {
            if version != 2 {
                return Err(conflict(format!(
                    "{path}: containerd 2 (config version 3) reads registry mirrors and auth from \
                     hosts.toml files under config_path; kprov sets mirrors/registries only in version 2 configs"
                )));
            }
            let mut keys = images.to_vec();
            keys.push("registry");
            let registry = tables(&mut doc, &keys)?;
            let config_path = registry
                .get("config_path")
                .and_then(Item::as_str)
                .unwrap_or("");
            if !config_path.is_empty() {
                return Err(conflict(format!(
                    "{path}: registry.config_path is set ({config_path}); containerd then ignores \
                     mirrors and configs. Set config_path = \"\" or manage hosts.toml there"
                )));
            }
            let mut all_mirrors = self.a.mirrors.clone();
            for (host, r) in &self.a.registries {
                if r.plain_http == Some(true) {
                    all_mirrors
                        .entry(host.clone())
                        .or_insert_with(|| vec![format!("http://{host}")]);
                }
            }
            if !all_mirrors.is_empty() {
                let mirrors = child(registry, "mirrors", "registry")?;
                for (host, endpoints) in &all_mirrors {
                    let m = child(mirrors, host, "registry.mirrors")?;
                    set(m, "endpoint", strings(endpoints));
                }
            }
            if !self.a.registries.is_empty() {
                let configs = child(registry, "configs", "registry")?;
                for (host, r) in &self.a.registries {
                    let c = child(configs, host, "registry.configs")?;
                    let has_tls = r.insecure_skip_verify.is_some()
                        || r.ca_file.is_some()
                        || r.cert_file.is_some()
                        || r.key_file.is_some();
                    if has_tls {
                        let tls = child(c, "tls", host)?;
                        if let Some(v) = r.insecure_skip_verify {
                            set(tls, "insecure_skip_verify", Value::from(v));
                        }
                        for (k, v) in [
                            ("ca_file", &r.ca_file),
                            ("cert_file", &r.cert_file),
                            ("key_file", &r.key_file),
                        ] {
                            if let Some(v) = v {
                                set(tls, k, Value::from(v.as_str()));
                            }
                        }
                    }
                    if r.username.is_some() || r.password.is_some() {
                        let auth = child(c, "auth", host)?;
                        if let Some(u) = &r.username {
                            set(auth, "username", Value::from(u.as_str()));
                        }
                        if let Some(p) = &r.password {
                            set(auth, "password", Value::from(p.as_str()));
                        }
                    }
                }
            }
        }
        let new = doc.to_string();
        if current.is_some_and(|c| c == new.as_bytes()) {
            return Ok(current.map(<[u8]>::to_vec));
        }
        Ok(Some(new.into_bytes()))
    }
}

/// Replaces password/auth/token values with stars.
fn mask(text: Option<String>) -> Option<String> {
    let re = Regex::new(r#"(?m)^(\s*(?:password|auth|identitytoken)\s*=\s*).*$"#).ok()?;
    text.map(|t| re.replace_all(&t, "${1}\"********\"").into_owned())
}

impl Module for ContainerdConfig {
    fn name(&self) -> &'static str {
        NAME
    }

    fn edited_file(&self) -> Option<(&str, &'static str)> {
        Some((&self.a.path, ""))
    }

    fn gather(&self) -> String {
        edit::gather("", &self.a.path)
    }

    fn diff(&self, state: &State) -> Result<Diff, ModuleError> {
        let change = edit::change(NAME, state, "", &self.a.path, &|c| self.edit(c))?;
        Ok(match fold(change.into_iter().collect(), Vec::new()) {
            Diff::Change {
                summary,
                before,
                after,
            } => Diff::Change {
                summary,
                before: mask(before),
                after: mask(after),
            },
            other => other,
        })
    }

    fn apply(&self, state: &State) -> String {
        let mode = self.secret.then_some("600");
        edit::apply_with_mode(NAME, state, "", &self.a.path, &|c| self.edit(c), mode)
    }

    fn sensitive(&self) -> bool {
        self.secret
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::run_cycle;
    use serde_json::json;

    const DEBIAN_LIKE: &str = r#"# containerd config, edited by an admin
version = 2
disabled_plugins = ["cri", "io.containerd.internal.v1.opt"]
oom_score = 0

[plugins]
  # keep this comment
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "registry.k8s.io/pause:3.6"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
    [plugins."io.containerd.grpc.v1.cri".registry]
      config_path = ""
"#;

    fn full() -> ContainerdConfig {
        ContainerdConfig::build(json!({
            "systemd_cgroup": true,
            "sandbox_image": "harbor.lab:5000/pause:3.9",
            "mirrors": {"docker.io": ["https://mirror.lab", "https://registry-1.docker.io"]},
            "registries": {"harbor.lab:5000": {"insecure_skip_verify": true, "username": "admin", "password": "s3cr'et\"$(x)"}},
            "oom_score": -999,
        }))
        .unwrap()
    }

    fn edited(m: &ContainerdConfig, text: Option<&str>) -> String {
        String::from_utf8(m.edit(text.map(str::as_bytes)).unwrap().unwrap()).unwrap()
    }

    #[test]
    fn edits_keep_the_rest_and_are_stable() {
        let m = full();
        let new = edited(&m, Some(DEBIAN_LIKE));
        assert!(new.starts_with("# containerd config, edited by an admin\nversion = 2\n"));
        assert!(new.contains("# keep this comment"));
        assert!(
            new.contains(r#"disabled_plugins = ["io.containerd.internal.v1.opt"]"#),
            "{new}"
        );
        assert!(new.contains("oom_score = -999"));
        assert!(new.contains("SystemdCgroup = true"));
        assert!(new.contains(r#"sandbox_image = "harbor.lab:5000/pause:3.9""#));
        let doc: DocumentMut = new.parse().unwrap();
        let cri = &doc["plugins"][CRI_V2];
        assert_eq!(
            cri["registry"]["mirrors"]["docker.io"]["endpoint"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        assert_eq!(
            cri["registry"]["configs"]["harbor.lab:5000"]["auth"]["password"].as_str(),
            Some("s3cr'et\"$(x)")
        );
        assert_eq!(
            cri["registry"]["configs"]["harbor.lab:5000"]["tls"]["insecure_skip_verify"].as_bool(),
            Some(true)
        );
        // Idempotent: editing the result changes nothing.
        assert_eq!(edited(&m, Some(&new)), new);
    }

    #[test]
    fn new_file_and_unsupported_inputs() {
        let m = ContainerdConfig::build(json!({"systemd_cgroup": true})).unwrap();
        let new = edited(&m, None);
        assert!(new.starts_with("version = 2\n"));
        assert!(new.contains("runtime_type = \"io.containerd.runc.v2\""));
        let v1 = "[plugins.cri]\nsandbox_image = \"x\"\n";
        assert!(m
            .edit(Some(v1.as_bytes()))
            .unwrap_err()
            .to_string()
            .contains("migrate"));
        assert!(m.edit(Some(b"plugins = 5\n")).is_err());
        assert!(m
            .edit(Some(b"version = 2\n[broken"))
            .unwrap_err()
            .to_string()
            .contains("not valid TOML"));
        let with_path = "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".registry]\nconfig_path = \"/etc/containerd/certs.d\"\n";
        let e = full().edit(Some(with_path.as_bytes())).unwrap_err();
        assert!(e.to_string().contains("config_path"), "{e}");
    }

    #[test]
    fn version_3_sets_runtime_and_images_plugins() {
        let m = ContainerdConfig::build(json!({"systemd_cgroup": true, "sandbox_image": "p:3.10"}))
            .unwrap();
        let new = edited(
            &m,
            Some("version = 3\ndisabled_plugins = [\"io.containerd.cri.v1.images\"]\n"),
        );
        let doc: DocumentMut = new.parse().unwrap();
        assert_eq!(doc["disabled_plugins"].as_array().unwrap().len(), 0);
        assert_eq!(
            doc["plugins"][CRI_V3_RUNTIME]["containerd"]["runtimes"]["runc"]["options"]
                ["SystemdCgroup"]
                .as_bool(),
            Some(true)
        );
        assert_eq!(
            doc["plugins"][CRI_V3_IMAGES]["pinned_images"]["sandbox"].as_str(),
            Some("p:3.10")
        );
    }

    #[test]
    fn plain_http_registries_get_an_http_endpoint() {
        let m = ContainerdConfig::build(json!({
            "mirrors": {"lab:5000": ["http://10.0.0.1:5000"]},
            "registries": {
                "local:5000": {"plain_http": true},
                "lab:5000": {"plain_http": true},
            },
        }))
        .unwrap();
        let doc: DocumentMut = edited(&m, None).parse().unwrap();
        let mirrors = &doc["plugins"][CRI_V2]["registry"]["mirrors"];
        let endpoint = |host: &str| {
            mirrors[host]["endpoint"]
                .as_array()
                .unwrap()
                .get(0)
                .and_then(|v| v.as_str())
                .map(String::from)
        };
        assert_eq!(endpoint("local:5000").as_deref(), Some("http://local:5000"));
        assert_eq!(
            endpoint("lab:5000").as_deref(),
            Some("http://10.0.0.1:5000"),
            "a given mirror wins"
        );
    }

    #[test]
    fn nested_auth_as_in_the_cluster_spec() {
        let m = ContainerdConfig::build(json!({
            "registries": {"harbor:443": {"insecure_skip_verify": false, "auth": {"username": "u", "password": "p"}}},
        }))
        .unwrap();
        assert!(m.sensitive());
        let doc: DocumentMut = edited(&m, None).parse().unwrap();
        let auth = &doc["plugins"][CRI_V2]["registry"]["configs"]["harbor:443"]["auth"];
        assert_eq!(auth["password"].as_str(), Some("p"));
        let both = json!({"registries": {"h": {"username": "u", "auth": {"username": "u"}}}});
        assert!(ContainerdConfig::build(both).is_err());
    }

    #[test]
    fn passwords_are_masked_in_diffs() {
        let m = full();
        assert!(m.sensitive());
        let state = crate::testutil::fields(&[("stat", "absent")]);
        let Diff::Change { after, .. } = m.diff(&state).unwrap() else {
            panic!()
        };
        let after = after.unwrap();
        assert!(
            !after.contains("s3cr") && after.contains("password = \"********\""),
            "{after}"
        );
    }

    #[test]
    fn real_cycle_on_a_temp_config() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, DEBIAN_LIKE).unwrap();
        let mut m = full();
        m.a.path = path.to_string_lossy().into_owned();
        run_cycle(&m);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("SystemdCgroup = true") && text.contains("# keep this comment"));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "a config with passwords is written 0600");
    }
}
