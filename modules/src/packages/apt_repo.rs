//! `apt_repo`: an apt source with its signing key in /etc/apt/keyrings (`signed-by`);
//! `apt-get update` of that source only when the source or key changed, failing with the
//! repository and the key named when its Release does not verify against that key.
//!
//! A `key_url` is fetched by the host during gather (apt's own downloader, so apt's proxy
//! settings apply; curl or wget otherwise): the host is what must reach the repository
//! anyway, `plan` shows the real keyring diff, and apply writes exactly the bytes gathered.

use schemars::JsonSchema;
use serde::Deserialize;

use crate::facts::file::{FileFact, Read};
use crate::facts::Fact;
use crate::script::{quote, unb64};
use crate::util::args;
use crate::util::managed::{fold, ManagedFile};
use crate::{Diff, Module, ModuleError, Plan, State};

/// Arguments of `apt_repo`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Args {
    /// Names the files: sources.list.d/<name>.list, keyrings/<name>.asc|.gpg.
    name: String,
    /// A full source line (`deb [options] url suite components`) instead of url/suite.
    deb: Option<String>,
    /// Repository URL, e.g. https://repo.example.com/kubernetes/v1.28/deb/
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
    /// URL of an ASCII-armored signing key the host fetches (e.g. the repository's
    /// `Release.key`); stored as keyrings/<name>.asc.
    key_url: Option<String>,
    /// Added to failure messages (key not fetched, Release not signed by the key): what the
    /// operator should set, e.g. the spec key the URL came from.
    hint: Option<String>,
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

/// Where the signing key comes from.
#[derive(Debug)]
enum Key {
    /// No key (`trusted`, or a key apt already has).
    None,
    /// Given in the arguments.
    Inline(ManagedFile),
    /// Fetched by the host from `url` during gather, kept at `path`.
    Url { url: String, path: String },
}

/// A built `apt_repo` task.
#[derive(Debug)]
pub(crate) struct AptRepo {
    key: Key,
    source: ManagedFile,
    update: bool,
    /// The repository as messages name it (its URL, or the whole source line).
    repository: String,
    hint: String,
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

/// A URL as one word of a source line: `scheme://…`, no spaces or control characters, and
/// brackets only around an IPv6 host (`http://[fd00::1]:8080/deb/`).
fn url_word(field: &str, value: &str) -> Result<(), ModuleError> {
    let unbracketed = match value
        .split_once("://[")
        .and_then(|(_, r)| r.split_once(']'))
    {
        Some((host, rest)) if host.parse::<std::net::Ipv6Addr>().is_ok() => rest,
        _ => value,
    };
    word(field, unbracketed)?;
    if !value.contains("://") || value.chars().any(char::is_control) {
        return Err(ModuleError::args(
            NAME,
            format!("{field} `{value}` is not a URL (scheme://host/path)"),
        ));
    }
    Ok(())
}

fn key_file(path: String, bytes: Vec<u8>) -> ManagedFile {
    let mut f = ManagedFile::new(path, bytes);
    f.mode = Some("644".to_string());
    f
}

/// Largest key accepted from a `key_url` (keys are a few KiB).
const MAX_KEY_BYTES: usize = 1 << 20;
const ARMOR: &str = "-----BEGIN PGP PUBLIC KEY BLOCK-----";

impl AptRepo {
    /// The keyring file as it must be: given, or built from the key the host fetched.
    fn key_file(&self, state: &State) -> Result<Option<ManagedFile>, ModuleError> {
        match &self.key {
            Key::None => Ok(None),
            Key::Inline(f) => Ok(Some(f.clone())),
            Key::Url { url, path } => {
                let bytes = state.bytes("kf").unwrap_or_default();
                let text = std::str::from_utf8(bytes).unwrap_or_default();
                if !text.trim_start().starts_with(ARMOR) {
                    return Err(ModuleError::conflict(
                        NAME,
                        format!(
                            "{url} (signing key of {}) is not an ASCII-armored PGP public key \
                             ({ARMOR}){}",
                            self.repository, self.hint
                        ),
                    ));
                }
                Ok(Some(key_file(path.clone(), bytes.to_vec())))
            }
        }
    }

    /// Gather fragment that fetches `url` into the field `kf`.
    fn fetch(&self, url: &str) -> String {
        let u = quote(url);
        let fail = quote(&format!(
            "cannot fetch the signing key {url} of {}",
            self.repository
        ));
        let hint = quote(&self.hint);
        format!(
            "kp_kd=$(mktemp -d \"${{TMPDIR:-/tmp}}/kprov.XXXXXX\") || {{ kp_fail 'cannot create a temporary directory'; return; }}\n\
             if [ -x /usr/lib/apt/apt-helper ]; then\n  \
             /usr/lib/apt/apt-helper -o Acquire::Retries=0 -o Acquire::http::Timeout=20 -o Acquire::https::Timeout=20 \
             -o APT::Sandbox::User=root download-file {u} \"$kp_kd/key\"\n\
             elif command -v curl >/dev/null; then\n  curl -fsSL --connect-timeout 20 --max-time 120 -o \"$kp_kd/key\" -- {u}\n\
             elif command -v wget >/dev/null; then\n  wget -q -T 20 -O \"$kp_kd/key\" -- {u}\n\
             else\n  echo 'no apt-helper, curl or wget on this host' \n  false\nfi </dev/null >\"$kp_kd/log\" 2>&1 3>&-\n\
             kp_rc=$?\n\
             if [ \"$kp_rc\" -ne 0 ] || [ ! -f \"$kp_kd/key\" ]; then\n  \
             kp_msg=\"$(tail -n 3 \"$kp_kd/log\")\"\n  rm -rf \"$kp_kd\"\n  \
             kp_fail {fail}\": $kp_msg\"{hint}\n  return\nfi\n\
             if [ \"$(wc -c <\"$kp_kd/key\")\" -gt {MAX_KEY_BYTES} ]; then rm -rf \"$kp_kd\"; kp_fail {big}; return; fi\n\
             kp_field_file kf \"$kp_kd/key\"\nrm -rf \"$kp_kd\"\n",
            big = quote(&format!("{url} is larger than {MAX_KEY_BYTES} bytes: not a signing key")),
        )
    }

    /// Apply fragment: `apt-get update` of this source only; fails naming the repository
    /// and the key when apt reports a signature problem (also when it keeps older lists and
    /// only warns), and removes the source then, so later apt runs are not broken by it.
    fn update_script(&self) -> String {
        let list = quote(&self.source.path);
        let key = match &self.key {
            Key::None => "no key (signed-by not set)".to_string(),
            Key::Inline(f) => f.path.clone(),
            Key::Url { url, path } => format!("{path}, fetched from {url}"),
        };
        let bad_sig = quote(&format!(
            "the Release file of {} is not signed by its key ({key})",
            self.repository
        ));
        let failed = quote(&format!("apt-get update of {} failed", self.repository));
        let hint = quote(&self.hint);
        format!(
            "if [ \"$kp_did\" = 1 ]; then\n  \
             export DEBIAN_FRONTEND=noninteractive\n  \
             kp_o=$(mktemp \"${{TMPDIR:-/tmp}}/kprov.XXXXXX\") || {{ kp_fail 'cannot create a temporary file'; return; }}\n  \
             apt-get update -q -o Dir::Etc::sourcelist={list} -o Dir::Etc::sourceparts=- \
             -o APT::Get::List-Cleanup=0 </dev/null >\"$kp_o\" 2>&1 3>&-\n  \
             kp_rc=$?\n  kp_msg=$(grep -E '^(W|E|Err):|NO_PUBKEY|BADSIG|EXPKEYSIG' \"$kp_o\" | tail -n 6)\n  \
             cat \"$kp_o\" >&2\n  rm -f \"$kp_o\"\n  \
             case $kp_msg in\n  \
             *NO_PUBKEY* | *BADSIG* | *EXPKEYSIG* | *'GPG error'* | *'is not signed'*)\n    \
             rm -f {list}\n    kp_fail {bad_sig}\": $kp_msg\"{hint}\n    return ;;\n  esac\n  \
             if [ \"$kp_rc\" -ne 0 ]; then\n    rm -f {list}\n    \
             kp_fail {failed}\" (exit $kp_rc): $kp_msg\"{hint}\n    return\n  fi\nfi\n"
        )
    }

    pub fn build(args: serde_json::Value) -> Result<AptRepo, ModuleError> {
        let a: Args = args::parse(NAME, args)?;
        args::file_name(NAME, "name", &a.name)?;
        args::path(NAME, "keyrings_dir", &a.keyrings_dir)?;
        args::path(NAME, "sources_dir", &a.sources_dir)?;
        let key_url = match a.key_url {
            Some(url) => {
                url_word("key_url", &url)?;
                Some(url)
            }
            None => None,
        };
        let given = [a.key.is_some(), a.key_base64.is_some(), key_url.is_some()];
        if given.iter().filter(|g| **g).count() > 1 {
            return Err(ModuleError::args(
                NAME,
                "give one of key, key_base64 or key_url",
            ));
        }
        let key = match (a.key, a.key_base64) {
            (Some(_), Some(_)) => unreachable!("refused above"),
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
            (None, None) => key_url
                .as_ref()
                .map(|_| (format!("{}.asc", a.name), Vec::new())),
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
        let (line, repository) = match (a.deb, a.url, a.suite) {
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
                    let line = deb.replacen(' ', &format!(" [{}] ", options.join(" ")), 1);
                    (line, deb)
                } else {
                    (deb.clone(), deb)
                }
            }
            (None, Some(url), Some(suite)) => {
                url_word("url", &url)?;
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
                (line, url)
            }
            _ => {
                return Err(ModuleError::args(
                    NAME,
                    "give either deb (a full source line) or url and suite",
                ))
            }
        };
        let source_path = format!("{}/{}.list", a.sources_dir.trim_end_matches('/'), a.name);
        let key = match (key.zip(key_path), key_url) {
            (Some((_, path)), Some(url)) => Key::Url { url, path },
            (Some(((_, bytes), path)), None) => Key::Inline(key_file(path, bytes)),
            (None, _) => Key::None,
        };
        let hint = match a.hint {
            Some(h) if !h.trim().is_empty() => format!(". {}", h.trim()),
            _ => String::new(),
        };
        let mut source = ManagedFile::new(source_path, format!("# Managed by kprov\n{line}\n"));
        source.mode = Some("644".to_string());
        Ok(AptRepo {
            key,
            source,
            update: a.update,
            repository,
            hint,
        })
    }
}

impl Module for AptRepo {
    fn name(&self) -> &'static str {
        NAME
    }

    fn gather(&self) -> String {
        let mut out = self.source.gather("s.");
        match &self.key {
            Key::None => {}
            Key::Inline(key) => out.push_str(&key.gather("k.")),
            Key::Url { url, path } => {
                out.push_str(&self.fetch(url));
                // The wanted sha is known only after the fetch: the current keyring's
                // content comes back for the diff.
                out.push_str(&FileFact::new("k.", path, Read::ShaAndContent).gather());
            }
        }
        out
    }

    fn plan(&self, state: &State) -> Result<Plan, ModuleError> {
        Ok(Plan::new(
            self.planned_diff(state)?,
            self.planned_script(state),
        ))
    }
}

impl AptRepo {
    /// What would change.
    fn planned_diff(&self, state: &State) -> Result<Diff, ModuleError> {
        let mut changes = Vec::new();
        if let Some(key) = self.key_file(state)? {
            changes.extend(key.change(NAME, state, "k.")?);
        }
        changes.extend(self.source.change(NAME, state, "s.")?);
        let update = (self.update && !changes.is_empty()).then(|| "apt-get update".to_string());
        Ok(fold(changes, update.into_iter().collect()))
    }

    /// The script that makes it so.
    fn planned_script(&self, state: &State) -> String {
        let mut out = String::new();
        match self.key_file(state) {
            Ok(Some(key)) => out.push_str(&key.apply()),
            Ok(None) => {}
            Err(e) => return format!("kp_fail {}\nreturn\n", quote(&e.to_string())),
        }
        out.push_str(&self.source.apply());
        if self.update {
            out.push_str(&self.update_script());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::testutil::Planned as _;
    use crate::util::testutil::{gather, run_cycle};
    use serde_json::json;

    fn summary(diff: &Diff) -> &str {
        match diff {
            Diff::Change { summary, .. } | Diff::Run { summary } => summary,
            Diff::Unchanged => "",
        }
    }

    const KEY: &str =
        "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQINBGx\n-----END PGP PUBLIC KEY BLOCK-----\n";

    #[test]
    fn source_lines() {
        let m = AptRepo::build(json!({
            "name": "kubernetes", "url": "https://repo.example.com/kubernetes/v1.28/deb/", "suite": "/",
            "key": KEY,
        }))
        .unwrap();
        assert_eq!(
            String::from_utf8(m.source.content.clone()).unwrap(),
            "# Managed by kprov\ndeb [signed-by=/etc/apt/keyrings/kubernetes.asc] https://repo.example.com/kubernetes/v1.28/deb/ /\n"
        );
        let m = AptRepo::build(
            json!({"name": "lab", "deb": "deb http://10.0.0.1/repo ./", "trusted": true}),
        )
        .unwrap();
        assert!(String::from_utf8(m.source.content.clone())
            .unwrap()
            .contains("deb [trusted=yes] http://10.0.0.1/repo ./"));
        let m = AptRepo::build(json!({"name": "b", "url": "http://x", "suite": "s", "components": ["main"], "key_base64": "AAEC"})).unwrap();
        let Key::Inline(key) = &m.key else {
            panic!("inline key: {m:?}")
        };
        assert_eq!(key.content, vec![0, 1, 2]);
        assert_eq!(key.path, "/etc/apt/keyrings/b.gpg");
        assert!(AptRepo::build(
            json!({"name": "v6", "url": "http://[fd00::1]:8080/deb/", "suite": "/"})
        )
        .is_ok());
        let m = AptRepo::build(json!({"name": "k", "url": "http://r/deb/", "suite": "/", "key_url": "http://r/deb/Release.key"})).unwrap();
        assert_eq!(
            String::from_utf8(m.source.content.clone()).unwrap(),
            "# Managed by kprov\ndeb [signed-by=/etc/apt/keyrings/k.asc] http://r/deb/ /\n"
        );
    }

    /// The host fetches `key_url` during gather (here apt-helper or curl with a file://
    /// URL on this machine): the keyring gets exactly those bytes, and a second gather
    /// finds nothing to do.
    #[test]
    fn key_url_fetched_by_the_host() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("Release.key");
        std::fs::write(&key, KEY).unwrap();
        let m = AptRepo::build(json!({
            "name": "kubernetes", "url": "http://10.0.0.1/core:/stable:/v1.31/deb/", "suite": "/",
            "key_url": format!("file://{}", key.display()), "update": false,
            "keyrings_dir": dir.path().join("keyrings"), "sources_dir": dir.path().join("sources"),
        }))
        .unwrap();
        let diff = run_cycle(&m);
        assert!(summary(&diff).contains("kubernetes.asc"), "{diff:?}");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("keyrings/kubernetes.asc")).unwrap(),
            KEY
        );
        let source = std::fs::read_to_string(dir.path().join("sources/kubernetes.list")).unwrap();
        assert!(source.contains(&format!(
            "deb [signed-by={}/keyrings/kubernetes.asc] http://10.0.0.1/core:/stable:/v1.31/deb/ /",
            dir.path().display()
        )));
        // A new key at the URL is a change of the keyring, shown before apply.
        std::fs::write(&key, KEY.replace("mQINBGx", "mQINBGy")).unwrap();
        let state = gather(&m).state();
        assert!(summary(&m.diff(&state).unwrap()).contains("update"));
    }

    #[test]
    fn key_url_failures_name_the_repository_the_key_and_the_hint() {
        let dir = tempfile::tempdir().unwrap();
        let args = |url: String| {
            json!({
                "name": "kubernetes", "url": "http://10.0.0.1/deb/", "suite": "/", "key_url": url,
                "hint": "set packages.kubernetes_repository_key", "update": false,
                "keyrings_dir": dir.path().join("keyrings"), "sources_dir": dir.path().join("sources"),
            })
        };
        let missing = format!(
            "file://{}/none/$(touch${{IFS}}/tmp/kprov-pwned)`id`",
            dir.path().display()
        );
        let m = AptRepo::build(args(missing.clone())).unwrap();
        let r = crate::util::testutil::run_gather(&m);
        let failed = r.failed.clone().expect("fetch fails");
        assert!(failed.contains(&missing), "{failed}");
        assert!(failed.contains("http://10.0.0.1/deb/"), "{failed}");
        assert!(
            failed.contains("set packages.kubernetes_repository_key"),
            "{failed}"
        );
        assert!(!std::path::Path::new("/tmp/kprov-pwned").exists());
        let html = dir.path().join("index.html");
        std::fs::write(&html, "<html>not found</html>").unwrap();
        let m = AptRepo::build(args(format!("file://{}", html.display()))).unwrap();
        let err = m.diff(&gather(&m).state()).unwrap_err().to_string();
        assert!(err.contains("not an ASCII-armored PGP public key"), "{err}");
        assert!(
            err.contains("http://10.0.0.1/deb/") && err.contains("kubernetes_repository_key"),
            "{err}"
        );
    }

    #[test]
    fn rejects_bad_input() {
        for bad in [
            json!({"name": "../x", "url": "http://x", "suite": "s"}),
            json!({"name": "x", "url": "http://x $(id)", "suite": "s"}),
            json!({"name": "x", "url": "http://x"}),
            json!({"name": "x", "url": "http://x", "suite": "s", "key": "not a key"}),
            json!({"name": "x", "deb": "deb [arch=amd64] http://x s", "trusted": true}),
            json!({"name": "x", "url": "http://x", "suite": "s", "key_url": "http://k", "key": KEY}),
            json!({"name": "x", "url": "http://x", "suite": "s", "key_url": "not a url"}),
            json!({"name": "x", "url": "http://x", "suite": "s", "key_url": "http://k]"}),
            json!({"name": "x", "url": "no-scheme", "suite": "s"}),
            json!({"name": "x", "url": "http://[zz]/deb/", "suite": "/"}),
        ] {
            assert!(AptRepo::build(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn real_cycle_files_only() {
        let dir = tempfile::tempdir().unwrap();
        let m = AptRepo::build(json!({
            "name": "kubernetes", "url": "https://repo.example.com/kubernetes/v1.28/deb/", "suite": "/",
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
