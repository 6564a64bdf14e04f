//! Where the lab's Debian packages come from: `--mirror URL` / `KPROV_LAB_MIRROR`, else this
//! machine's own apt sources (`/etc/apt/sources.list`, `sources.list.d/*.list` and deb822
//! `*.sources`). No mirror is written into kprov.

use std::path::Path;

use crate::error::LabError;

/// Environment variable naming the Debian mirror (overridden by `--mirror`).
pub const MIRROR_ENV: &str = "KPROV_LAB_MIRROR";

/// Debian codenames and aliases: an entry for any of them names a Debian archive.
const DEBIAN_SUITES: [&str; 12] = [
    "bookworm",
    "bullseye",
    "buster",
    "trixie",
    "forky",
    "sid",
    "stable",
    "oldstable",
    "testing",
    "unstable",
    "experimental",
    "oldoldstable",
];

/// One `deb` source: archive URI and suite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Source {
    pub(crate) uri: String,
    pub(crate) suite: String,
}

/// The Debian archives the lab uses for `suite`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mirror {
    /// The main archive (debootstrap's mirror).
    pub(crate) main: String,
    /// `deb` lines (URI suite) for the lab's apt repository: the suite, its updates and,
    /// when the machine has one, its security archive.
    pub(crate) lines: Vec<Source>,
}

impl Mirror {
    /// sources.list text of `lines`, component `main`.
    pub(crate) fn sources_list(&self) -> String {
        self.lines
            .iter()
            .map(|s| format!("deb {} {} main\n", s.uri, s.suite))
            .collect()
    }
}

/// The mirror for `suite`: `explicit` (the flag), else the environment, else this
/// machine's apt configuration under `apt_dir` (normally `/etc/apt`).
pub(crate) fn resolve(
    explicit: Option<&str>,
    suite: &str,
    apt_dir: &Path,
) -> Result<Mirror, LabError> {
    let chosen = explicit
        .map(str::to_string)
        .or_else(|| std::env::var(MIRROR_ENV).ok())
        .filter(|m| !m.trim().is_empty());
    let machine = machine_sources(apt_dir);
    if let Some(url) = chosen {
        let url = url.trim().trim_end_matches('/').to_string();
        if !(url.starts_with("http://") || url.starts_with("https://") || url.starts_with("file:/"))
        {
            return Err(LabError::Unsupported(format!(
                "Debian mirror `{url}` is not an http://, https:// or file:/ URL (from --mirror or {MIRROR_ENV})"
            )));
        }
        let mut lines = vec![
            Source {
                uri: url.clone(),
                suite: suite.to_string(),
            },
            Source {
                uri: url.clone(),
                suite: format!("{suite}-updates"),
            },
        ];
        lines.extend(security(&machine, suite));
        return Ok(Mirror { main: url, lines });
    }
    let main = machine
        .iter()
        .find(|s| s.suite == suite)
        .or_else(|| {
            machine
                .iter()
                .find(|s| DEBIAN_SUITES.contains(&s.suite.as_str()))
        })
        .map(|s| s.uri.clone())
        .ok_or_else(|| {
            LabError::Unsupported(format!(
                "this machine's apt sources ({}) name no Debian archive to build the lab's \
                 {suite} base from; pass `kprov lab up --mirror URL` or set {MIRROR_ENV}=URL \
                 (a Debian mirror)",
                apt_dir.display()
            ))
        })?;
    let mut lines = vec![
        Source {
            uri: main.clone(),
            suite: suite.to_string(),
        },
        Source {
            uri: main.clone(),
            suite: format!("{suite}-updates"),
        },
    ];
    lines.extend(security(&machine, suite));
    Ok(Mirror { main, lines })
}

/// The machine's security archive for `suite`, if it has one configured.
fn security(machine: &[Source], suite: &str) -> Option<Source> {
    let wanted = format!("{suite}-security");
    machine.iter().find(|s| s.suite == wanted).cloned()
}

/// Every enabled `deb` source of the apt configuration under `apt_dir`, in apt's order.
pub(crate) fn machine_sources(apt_dir: &Path) -> Vec<Source> {
    let mut out = Vec::new();
    if let Ok(text) = std::fs::read_to_string(apt_dir.join("sources.list")) {
        out.extend(one_line(&text));
    }
    let parts = apt_dir.join("sources.list.d");
    let mut files: Vec<_> = std::fs::read_dir(&parts)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    for file in files {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        match file.extension().and_then(|e| e.to_str()) {
            Some("list") => out.extend(one_line(&text)),
            Some("sources") => out.extend(deb822(&text)),
            _ => {}
        }
    }
    out
}

/// `deb [options] URI suite components…` lines.
fn one_line(text: &str) -> Vec<Source> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or_default().trim();
        let Some(rest) = line
            .strip_prefix("deb ")
            .or_else(|| line.strip_prefix("deb\t"))
        else {
            continue;
        };
        let mut rest = rest.trim_start();
        if rest.starts_with('[') {
            match rest.find(']') {
                Some(end) => rest = rest[end + 1..].trim_start(),
                None => continue,
            }
        }
        let mut words = rest.split_whitespace();
        if let (Some(uri), Some(suite)) = (words.next(), words.next()) {
            out.push(Source {
                uri: uri.trim_end_matches('/').to_string(),
                suite: suite.to_string(),
            });
        }
    }
    out
}

/// deb822 stanzas (`Types:`, `URIs:`, `Suites:`, `Enabled:`).
fn deb822(text: &str) -> Vec<Source> {
    let mut out = Vec::new();
    for stanza in text.split("\n\n") {
        let field = |name: &str| -> Option<String> {
            let mut value: Option<String> = None;
            for line in stanza.lines() {
                if line.trim_start().starts_with('#') {
                    continue;
                }
                if let Some((key, v)) = line.split_once(':') {
                    if !line.starts_with(char::is_whitespace)
                        && key.trim().eq_ignore_ascii_case(name)
                    {
                        value = Some(v.trim().to_string());
                    }
                }
            }
            value
        };
        let types = field("Types").unwrap_or_default();
        if !types.split_whitespace().any(|t| t == "deb") {
            continue;
        }
        if field("Enabled").is_some_and(|e| e.eq_ignore_ascii_case("no")) {
            continue;
        }
        let uris = field("URIs").unwrap_or_default();
        let suites = field("Suites").unwrap_or_default();
        for uri in uris.split_whitespace() {
            for suite in suites.split_whitespace() {
                out.push(Source {
                    uri: uri.trim_end_matches('/').to_string(),
                    suite: suite.to_string(),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_one_line_and_deb822_sources() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("sources.list"),
            "# comment\ndeb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian/ bookworm main contrib\ndeb-src http://mirror.example/debian bookworm main\n",
        )
        .unwrap();
        std::fs::create_dir(dir.path().join("sources.list.d")).unwrap();
        std::fs::write(
            dir.path().join("sources.list.d/debian.sources"),
            "Types: deb\n# a comment\nURIs: http://sec.example/debian-security\nSuites: bookworm-security\nComponents: main\n\nTypes: deb\nURIs: http://off.example/x\nSuites: bookworm\nEnabled: no\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("sources.list.d/other.list.disabled"),
            "deb http://no.example/ x main\n",
        )
        .unwrap();
        let sources = machine_sources(dir.path());
        assert_eq!(
            sources,
            [
                Source {
                    uri: "http://mirror.example/debian".into(),
                    suite: "bookworm".into()
                },
                Source {
                    uri: "http://sec.example/debian-security".into(),
                    suite: "bookworm-security".into()
                },
            ]
        );
        let mirror = resolve(None, "bookworm", dir.path()).unwrap();
        assert_eq!(mirror.main, "http://mirror.example/debian");
        assert_eq!(
            mirror.sources_list(),
            "deb http://mirror.example/debian bookworm main\ndeb http://mirror.example/debian bookworm-updates main\ndeb http://sec.example/debian-security bookworm-security main\n"
        );
        let explicit =
            resolve(Some("http://flag.example/debian/"), "bookworm", dir.path()).unwrap();
        assert_eq!(explicit.main, "http://flag.example/debian");
        assert!(resolve(Some("ftp.example"), "bookworm", dir.path()).is_err());
    }

    #[test]
    fn a_machine_without_a_debian_archive_asks_for_a_mirror() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("sources.list"),
            "deb http://archive.example/ubuntu noble main\n",
        )
        .unwrap();
        let err = resolve(None, "bookworm", dir.path())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--mirror URL") && err.contains(MIRROR_ENV),
            "{err}"
        );
    }
}
