//! `apt_repo`: an apt source with its signing key in /etc/apt/keyrings (`signed-by`);
//! `apt-get update` of that source only when the source or key changed.

use schemars::JsonSchema;
use serde::Deserialize;

use crate::args;
use crate::managed::{fold, ManagedFile};
use crate::script::{quote, unb64};
use crate::{Diff, Module, ModuleError, State};

/// Arguments of `apt_repo`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Args {
    /// Names the files: sources.list.d/<name>.list, keyrings/<name>.asc|.gpg.
    name: String,
    /// A full source line (`deb [options] url suite components`) instead of url/suite.
    deb: Option<String>,
    /// Repository URL, e.g. https://pkgs.k8s.io/core:/stable:/v1.28/deb/
    url: Option<String>,
    /// Suite, e.g. bookworm, or `/` for flat repositories.
    suite: Option<String>,
    /// Components, e.g. [main] (none for flat repositories).
    #[serde(default)]
    components: Vec<String>,
    /// Restrict to architectures, e.g. [amd64].
    #[serde(default)]
    architectures: Vec<String>,
    /// ASCII-armored signing key.
    key: Option<String>,
    /// Binary (dearmored) signing key, base64-encoded.
    key_base64: Option<String>,
    /// Trust the repository without a key (`[trusted=yes]`; local lab repositories).
    #[serde(default)]
    trusted: bool,
    /// Run `apt-get update` for this source when it changed (default true).
    #[serde(default = "yes")]
    update: bool,
    #[serde(default = "default_keyrings")]
    keyrings_dir: String,
    #[serde(default = "default_sources")]
    sources_dir: String,
}

fn yes() -> bool {
    true
}
fn default_keyrings() -> String {
    "/etc/apt/keyrings".to_string()
}
fn default_sources() -> String {
    "/etc/apt/sources.list.d".to_string()
}

/// A built `apt_repo` task.
#[derive(Debug)]
pub(crate) struct AptRepo {
    key: Option<ManagedFile>,
    source: ManagedFile,
    update: bool,
}

const NAME: &str = "apt_repo";

fn word(field: &str, value: &str) -> Result<(), ModuleError> {
    if value.is_empty()
        || value
            .chars()
            .any(|c| c.is_whitespace() || c == ']' || c == '[')
    {
        return Err(ModuleError::args(
            NAME,
            format!("{field} `{value}` must be one word without spaces or brackets"),
        ));
    }
    Ok(())
}

impl AptRepo {
    pub fn build(args: serde_json::Value) -> Result<AptRepo, ModuleError> {
        let a: Args = args::parse(NAME, args)?;
        args::file_name(NAME, "name", &a.name)?;
        args::path(NAME, "keyrings_dir", &a.keyrings_dir)?;
        args::path(NAME, "sources_dir", &a.sources_dir)?;
        let key = match (a.key, a.key_base64) {
            (Some(_), Some(_)) => {
                return Err(ModuleError::args(NAME, "give key or key_base64, not both"))
            }
            (Some(text), None) => {
                if !text.contains("-----BEGIN PGP PUBLIC KEY BLOCK-----") {
                    return Err(ModuleError::args(
                        NAME,
                        "key is not an ASCII-armored PGP key (-----BEGIN PGP PUBLIC KEY BLOCK-----); \
                         pass a binary key as key_base64",
                    ));
                }
                Some((format!("{}.asc", a.name), text.into_bytes()))
            }
            (None, Some(b64)) => {
                let bytes = unb64(b64.trim()).map_err(|e| {
                    ModuleError::args(NAME, format!("key_base64 is not base64: {e}"))
                })?;
                Some((format!("{}.gpg", a.name), bytes))
            }
            (None, None) => None,
        };
        if key.is_some() && a.trusted {
            return Err(ModuleError::args(
                NAME,
                "give a key or trusted: true, not both",
            ));
        }
        let key_path = key
            .as_ref()
            .map(|(file, _)| format!("{}/{file}", a.keyrings_dir.trim_end_matches('/')));
        let mut options = Vec::new();
        if let Some(path) = &key_path {
            options.push(format!("signed-by={path}"));
        }
        if a.trusted {
            options.push("trusted=yes".to_string());
        }
        for arch in &a.architectures {
            word("architectures", arch)?;
        }
        if !a.architectures.is_empty() {
            options.push(format!("arch={}", a.architectures.join(",")));
        }
        let line = match (a.deb, a.url, a.suite) {
            (Some(deb), None, None) => {
                if deb.contains('\n') || !(deb.starts_with("deb ") || deb.starts_with("deb-src ")) {
                    return Err(ModuleError::args(
                        NAME,
                        "deb must be one line starting with `deb `",
                    ));
                }
                if !options.is_empty() {
                    if deb.contains('[') {
                        return Err(ModuleError::args(
                            NAME,
                            "deb already has [options]; put signed-by/trusted/arch there yourself",
                        ));
                    }
                    deb.replacen(' ', &format!(" [{}] ", options.join(" ")), 1)
                } else {
                    deb
                }
            }
            (None, Some(url), Some(suite)) => {
                word("url", &url)?;
                word("suite", &suite)?;
                for c in &a.components {
                    word("components", c)?;
                }
                let opts = if options.is_empty() {
                    String::new()
                } else {
                    format!("[{}] ", options.join(" "))
                };
                let mut line = format!("deb {opts}{url} {suite}");
                for c in &a.components {
                    line.push(' ');
                    line.push_str(c);
                }
                line
            }
            _ => {
                return Err(ModuleError::args(
                    NAME,
                    "give either deb (a full source line) or url and suite",
                ))
            }
        };
        let source_path = format!("{}/{}.list", a.sources_dir.trim_end_matches('/'), a.name);
        let key = key.zip(key_path).map(|((_, bytes), path)| {
            let mut f = ManagedFile::new(path, bytes);
            f.mode = Some("644".to_string());
            f
        });
        let mut source = ManagedFile::new(source_path, format!("# Managed by kprov\n{line}\n"));
        source.mode = Some("644".to_string());
        Ok(AptRepo {
            key,
            source,
            update: a.update,
        })
    }
}

impl Module for AptRepo {
    fn name(&self) -> &'static str {
        NAME
    }

    fn gather(&self) -> String {
        let mut out = self.source.gather("s.");
        if let Some(key) = &self.key {
            out.push_str(&key.gather("k."));
        }
        out
    }

    fn diff(&self, state: &State) -> Result<Diff, ModuleError> {
        let mut changes = Vec::new();
        if let Some(key) = &self.key {
            changes.extend(key.change(NAME, state, "k.")?);
        }
        changes.extend(self.source.change(NAME, state, "s.")?);
        let update = (self.update && !changes.is_empty()).then(|| "apt-get update".to_string());
        Ok(fold(changes, update.into_iter().collect()))
    }

    fn apply(&self, _state: &State) -> String {
        let mut out = String::new();
        if let Some(key) = &self.key {
            out.push_str(&key.apply());
        }
        out.push_str(&self.source.apply());
        if self.update {
            let list = quote(&self.source.path);
            out.push_str(&format!(
                "if [ \"$kp_did\" = 1 ]; then\n  \
                 export DEBIAN_FRONTEND=noninteractive\n  kp_run 'apt-get update for '{list} apt-get update -q \
                 -o Dir::Etc::sourcelist={list} -o Dir::Etc::sourceparts=- -o APT::Get::List-Cleanup=0 \
                 || {{ rm -f {list}; return 1; }}\nfi\n"
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::run_cycle;
    use serde_json::json;

    const KEY: &str =
        "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQINBGx\n-----END PGP PUBLIC KEY BLOCK-----\n";

    #[test]
    fn source_lines() {
        let m = AptRepo::build(json!({
            "name": "kubernetes", "url": "https://pkgs.k8s.io/core:/stable:/v1.28/deb/", "suite": "/",
            "key": KEY,
        }))
        .unwrap();
        assert_eq!(
            String::from_utf8(m.source.content.clone()).unwrap(),
            "# Managed by kprov\ndeb [signed-by=/etc/apt/keyrings/kubernetes.asc] https://pkgs.k8s.io/core:/stable:/v1.28/deb/ /\n"
        );
        let m = AptRepo::build(
            json!({"name": "lab", "deb": "deb http://10.0.0.1/repo ./", "trusted": true}),
        )
        .unwrap();
        assert!(String::from_utf8(m.source.content.clone())
            .unwrap()
            .contains("deb [trusted=yes] http://10.0.0.1/repo ./"));
        let m = AptRepo::build(json!({"name": "b", "url": "http://x", "suite": "s", "components": ["main"], "key_base64": "AAEC"})).unwrap();
        assert_eq!(m.key.as_ref().unwrap().content, vec![0, 1, 2]);
        assert_eq!(m.key.as_ref().unwrap().path, "/etc/apt/keyrings/b.gpg");
    }

    #[test]
    fn rejects_bad_input() {
        for bad in [
            json!({"name": "../x", "url": "http://x", "suite": "s"}),
            json!({"name": "x", "url": "http://x $(id)", "suite": "s"}),
            json!({"name": "x", "url": "http://x"}),
            json!({"name": "x", "url": "http://x", "suite": "s", "key": "not a key"}),
            json!({"name": "x", "deb": "deb [arch=amd64] http://x s", "trusted": true}),
        ] {
            assert!(AptRepo::build(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn real_cycle_files_only() {
        let dir = tempfile::tempdir().unwrap();
        let m = AptRepo::build(json!({
            "name": "kubernetes", "url": "https://pkgs.k8s.io/core:/stable:/v1.28/deb/", "suite": "/",
            "key": KEY, "update": false,
            "keyrings_dir": dir.path().join("keyrings"), "sources_dir": dir.path().join("sources"),
        }))
        .unwrap();
        run_cycle(&m);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("keyrings/kubernetes.asc")).unwrap(),
            KEY
        );
        assert!(dir.path().join("sources/kubernetes.list").exists());
    }
}
