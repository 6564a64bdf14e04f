//! A path's stat, sha256 and content, gathered by `kp_stat_file` (the prelude answers every
//! path of a gather script at its end, with one `stat` and one `sha256sum`). Fields:
//! `PREFIXstat` (`absent` or `type|mode|uid|gid|user|group|size`), `PREFIXsha` and
//! `PREFIXcontent`.

use super::{Fact, Prefix};
use crate::script::{quote, sha256_hex};
use crate::{ModuleError, State};

/// What of a regular file to gather besides its stat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Read {
    /// Its content (up to 1 MiB), without sha256: files edited from their content.
    Content,
    /// Its sha256, and its content only when the sha256 is not this one.
    ContentUnless(String),
    /// Its sha256 and its content, always.
    ShaAndContent,
    /// Its sha256 only: a secret's content never leaves the host.
    ShaOnly,
}

/// One path's stat, sha256 and content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileFact {
    prefix: Prefix,
    path: String,
    read: Read,
}

/// `stat` of a path that exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileStat {
    /// `regular file`, `regular empty file`, `directory`, …
    pub kind: String,
    pub mode: String,
    pub uid: String,
    pub gid: String,
    pub user: String,
    pub group: String,
}

/// A gathered [`FileFact`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileState {
    /// `None` when nothing exists at the path.
    pub stat: Option<FileStat>,
    /// A regular file's sha256, unless [`Read::Content`].
    pub sha: Option<String>,
    /// A regular file's content up to 1 MiB, when [`Read`] asked for it.
    pub content: Option<Vec<u8>>,
}

impl FileFact {
    pub(crate) fn new(prefix: impl Into<String>, path: impl Into<String>, read: Read) -> Self {
        FileFact {
            prefix: Prefix::new(prefix),
            path: path.into(),
            read,
        }
    }

    pub(crate) fn path(&self) -> &str {
        &self.path
    }

    /// The name of its field `name` (`stat`, `sha` or `content`).
    pub(crate) fn field(&self, name: &str) -> String {
        self.prefix.field(name)
    }
}

impl Fact for FileFact {
    type Value = FileState;

    fn gather(&self) -> String {
        // kp_stat_file's third word: empty = content only; a sha = sha, and content when
        // it differs; `x` matches no sha; a leading `-` = never content.
        let want = match &self.read {
            Read::Content => String::new(),
            Read::ContentUnless(sha) => sha.clone(),
            Read::ShaAndContent => "x".to_string(),
            Read::ShaOnly => "-".to_string(),
        };
        format!(
            "kp_stat_file {} {} {} || return\n",
            quote(self.prefix.as_str()),
            quote(&self.path),
            quote(&want)
        )
    }

    fn parse(&self, module: &str, state: &State) -> Result<FileState, ModuleError> {
        let field = self.field("stat");
        let raw = state.require(module, &field)?;
        if raw == "absent" {
            return Ok(FileState {
                stat: None,
                sha: None,
                content: None,
            });
        }
        let parts: Vec<&str> = raw.split('|').collect();
        let [kind, mode, uid, gid, user, group, _size] = parts[..] else {
            return Err(ModuleError::conflict(
                module,
                format!("unexpected stat output `{raw}`"),
            ));
        };
        Ok(FileState {
            stat: Some(FileStat {
                kind: kind.to_string(),
                mode: mode.to_string(),
                uid: uid.to_string(),
                gid: gid.to_string(),
                user: user.to_string(),
                group: group.to_string(),
            }),
            sha: state.text(&self.field("sha")),
            content: state.bytes(&self.field("content")).map(<[u8]>::to_vec),
        })
    }
}

impl FileStat {
    pub fn is_file(&self) -> bool {
        self.kind.starts_with("regular")
    }

    pub fn is_dir(&self) -> bool {
        self.kind == "directory"
    }

    /// Summary parts for attributes that differ from the wanted ones.
    pub fn attr_changes(
        &self,
        mode: Option<&str>,
        owner: Option<&str>,
        group: Option<&str>,
    ) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(mode) = mode.filter(|m| *m != self.mode) {
            out.push(format!("mode {} → {mode}", self.mode));
        }
        if let Some(owner) = owner.filter(|o| *o != self.uid && *o != self.user) {
            out.push(format!("owner {} → {owner}", self.user));
        }
        if let Some(group) = group.filter(|g| *g != self.gid && *g != self.group) {
            out.push(format!("group {} → {group}", self.group));
        }
        out
    }
}

/// The state a file-editing module would gather once an earlier task of the same apply has
/// written `content` to its file: same attributes (a new file: 644 root:root, as
/// `kp_write` creates it), the new content.
pub fn predict_file(state: &State, prefix: &str, content: &[u8]) -> State {
    let prefix = Prefix::new(prefix);
    let mut next = state.clone();
    let stat_field = prefix.field("stat");
    let stat = match state.text(&stat_field) {
        Some(raw) if raw != "absent" => {
            let mut parts: Vec<String> = raw.split('|').map(str::to_string).collect();
            if let Some(size) = parts.last_mut() {
                *size = content.len().to_string();
            }
            parts.join("|")
        }
        _ => format!("regular file|644|0|0|root|root|{}", content.len()),
    };
    next.fields.insert(stat_field, stat.into_bytes());
    next.fields
        .insert(prefix.field("content"), content.to_vec());
    next.fields
        .insert(prefix.field("sha"), sha256_hex(content).into_bytes());
    next
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::testutil::{fields, run_stdin};
    use crate::{gather_script, parse_output, Module, Plan};

    /// A module that only gathers facts.
    #[derive(Debug)]
    struct Probe(Vec<FileFact>);

    impl Module for Probe {
        fn name(&self) -> &'static str {
            "probe"
        }
        fn gather(&self) -> String {
            self.0.iter().map(Fact::gather).collect()
        }
        fn plan(&self, _: &State) -> Result<Plan, ModuleError> {
            unreachable!()
        }
    }

    #[test]
    fn parses_stat_sha_and_content_under_its_prefix() {
        let fact = FileFact::new("a.", "/x", Read::Content);
        let s = fields(&[
            ("a.stat", "regular file|640|0|4|root|adm|3"),
            ("a.content", "hi\n"),
            ("stat", "absent"),
        ]);
        let got = fact.parse("t", &s).unwrap();
        let stat = got.stat.unwrap();
        assert!(stat.is_file() && !stat.is_dir());
        assert_eq!((stat.mode.as_str(), stat.group.as_str()), ("640", "adm"));
        assert_eq!(got.content.as_deref(), Some(&b"hi\n"[..]));
        assert_eq!(got.sha, None);
        let absent = FileFact::new("", "/y", Read::ShaOnly)
            .parse("t", &s)
            .unwrap();
        assert_eq!(absent.stat, None);
        assert!(FileFact::new("b.", "/z", Read::Content)
            .parse("t", &s)
            .is_err());
        let bad = fields(&[("stat", "regular file|644")]);
        assert!(FileFact::new("", "/y", Read::Content)
            .parse("t", &bad)
            .is_err());
    }

    #[test]
    fn what_is_read_on_a_real_host() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, "content\n").unwrap();
        let path = path.to_str().unwrap();
        let sha = sha256_hex(b"content\n");
        let facts = vec![
            FileFact::new("c.", path, Read::Content),
            FileFact::new("u.", path, Read::ContentUnless(sha.clone())),
            FileFact::new("o.", path, Read::ContentUnless("0".repeat(64))),
            FileFact::new("a.", path, Read::ShaAndContent),
            FileFact::new("s.", path, Read::ShaOnly),
            FileFact::new("n.", format!("{path}.none"), Read::ShaAndContent),
        ];
        let out = run_stdin(&["sh"], &gather_script(&[(7, &Probe(facts.clone()))]));
        let state = parse_output(&out.stdout).unwrap()[&7].state();
        let read: Vec<FileState> = facts
            .iter()
            .map(|f| f.parse("t", &state).unwrap())
            .collect();
        let some = |s: &FileState| (s.sha.is_some(), s.content.is_some());
        assert_eq!(some(&read[0]), (false, true));
        assert_eq!(some(&read[1]), (true, false));
        assert_eq!(some(&read[2]), (true, true));
        assert_eq!(some(&read[3]), (true, true));
        assert_eq!(some(&read[4]), (true, false));
        assert_eq!(read[3].sha.as_deref(), Some(sha.as_str()));
        assert_eq!(read[5].stat, None);
    }

    #[test]
    fn a_predicted_file_parses_as_written() {
        let fact = FileFact::new("p.", "/x", Read::Content);
        let before = fields(&[("p.stat", "regular file|600|0|0|root|root|1")]);
        let next = predict_file(&before, "p.", b"new\n");
        let got = fact.parse("t", &next).unwrap();
        assert_eq!(got.stat.unwrap().mode, "600");
        assert_eq!(got.content.as_deref(), Some(&b"new\n"[..]));
        assert_eq!(got.sha, Some(sha256_hex(b"new\n")));
    }
}
