//! Files kprov edits in Rust (a line, a block, a TOML table…): gather returns the current
//! content, the new content is computed locally, apply writes it only if the file still has
//! the gathered sha256 (else `kp_stale`).

use crate::facts::file::{FileFact, Read};
use crate::facts::Fact;
use crate::script::{b64, quote, sha256_hex};
use crate::util::args::text;
use crate::util::managed::{fold, FileChange};
use crate::{ModuleError, Plan, State};

/// Computes a file's new content from its current content (`None` = the file is absent).
/// Returns `None` to leave an absent file absent.
pub(crate) type Edit<'a> = &'a dyn Fn(Option<&[u8]>) -> Result<Option<Vec<u8>>, ModuleError>;

/// The fact an edit of `path` gathers: its stat and content, under `prefix`.
fn fact(prefix: &str, path: &str) -> FileFact {
    FileFact::new(prefix, path, Read::Content)
}

/// Gather fragment line: stat and content of `path` under `prefix`.
pub(crate) fn gather(prefix: &str, path: &str) -> String {
    fact(prefix, path).gather()
}

/// The gathered content (`None` when the file is absent).
pub(crate) fn current(
    module: &str,
    state: &State,
    prefix: &str,
    path: &str,
) -> Result<Option<Vec<u8>>, ModuleError> {
    let file = fact(prefix, path).parse(module, state)?;
    match file.stat {
        None => Ok(None),
        Some(stat) if !stat.is_file() => Err(ModuleError::conflict(
            module,
            format!("{path} is a {}, expected a regular file", stat.kind),
        )),
        Some(_) => match file.content {
            Some(content) => Ok(Some(content)),
            None => Err(ModuleError::conflict(
                module,
                format!("{path} is larger than 1 MiB; kprov does not edit files that large"),
            )),
        },
    }
}

/// A file edit planned once: what changes (for the diff), the script that writes it and
/// the content it writes (`None` when the edit changes nothing).
pub(crate) struct Edited {
    pub change: Option<FileChange>,
    pub script: String,
    pub content: Option<Vec<u8>>,
}

impl Edited {
    /// The plan of this edit, with `extra` changes (summaries) that `tail` makes after it.
    pub(crate) fn into_plan(self, extra: Vec<String>, tail: &str) -> Plan {
        Plan::new(
            fold(self.change.into_iter().collect(), extra),
            self.script + tail,
        )
        .writing(self.content)
    }
}

/// Plans the edit of `path` from its gathered content; the script writes the new content
/// (with `mode`, when given) only if the file still is as gathered, else `kp_stale`.
pub(crate) fn plan(
    module: &str,
    state: &State,
    prefix: &str,
    path: &str,
    edit: Edit,
    mode: Option<&str>,
) -> Result<Edited, ModuleError> {
    let old = current(module, state, prefix, path)?;
    let new = match edit(old.as_deref())? {
        Some(new) if Some(&new) != old.as_ref() => new,
        _ => {
            return Ok(Edited {
                change: None,
                script: String::new(),
                content: None,
            })
        }
    };
    let verb = if old.is_none() { "create" } else { "update" };
    let old_sha = old
        .as_deref()
        .map(sha256_hex)
        .unwrap_or_else(|| "absent".to_string());
    let (content, encoding) = match std::str::from_utf8(&new) {
        Ok(text) if !text.contains('\0') => (quote(text), ""),
        _ => (quote(&b64(&new)), " b64"),
    };
    let script = format!(
        "kp_put_if {} {} {} {} {}{encoding} || return\n",
        quote(path),
        quote(&old_sha),
        content,
        quote(&sha256_hex(&new)),
        quote(mode.unwrap_or(""))
    );
    Ok(Edited {
        change: Some(FileChange {
            path: path.to_string(),
            summary: format!("{verb} {path}"),
            texts: Some((
                Some(old.as_deref().and_then(text).unwrap_or_default()),
                text(&new),
            )),
        }),
        script,
        content: Some(new),
    })
}

/// Splits UTF-8 content into lines (a missing final newline is added back by [`join`]).
pub(crate) fn lines(
    module: &str,
    path: &str,
    content: Option<&[u8]>,
) -> Result<Vec<String>, ModuleError> {
    let Some(content) = content else {
        return Ok(Vec::new());
    };
    let text = std::str::from_utf8(content).map_err(|_| {
        ModuleError::conflict(
            module,
            format!("{path} is not UTF-8 text; kprov edits only text"),
        )
    })?;
    let mut lines: Vec<String> = text.split('\n').map(str::to_string).collect();
    if lines.last().is_some_and(String::is_empty) {
        lines.pop();
    }
    Ok(lines)
}

/// Joins lines with a trailing newline (empty when there are none).
/// [`join`] for an edit of `current`: a file that lacked only its final newline stays as
/// it was when the edit changed nothing else (no diff for a newline nobody asked for).
pub(crate) fn rejoin(lines: &[String], current: Option<&[u8]>) -> Vec<u8> {
    let new = join(lines);
    match current {
        Some(cur) if !cur.ends_with(b"\n") && new.strip_suffix(b"\n") == Some(cur) => cur.to_vec(),
        _ => new,
    }
}

pub(crate) fn join(lines: &[String]) -> Vec<u8> {
    let mut out = String::new();
    for line in lines {
        out.push_str(line);
        out.push('\n');
    }
    out.into_bytes()
}

#[cfg(test)]
mod chain_tests {
    use crate::predict_file;
    use crate::{build, Diff, HostContext, State};

    /// Two `line` edits of one absent file: the second, computed from the first's
    /// predicted result, keeps both lines.
    #[test]
    fn a_second_edit_builds_on_the_first() {
        let ctx = HostContext::default();
        let a = build(
            "line",
            serde_json::json!({"path": "/x", "line": "a = 1", "create": true}),
            &ctx,
        )
        .unwrap();
        let b = build(
            "line",
            serde_json::json!({"path": "/x", "line": "b = 2", "create": true}),
            &ctx,
        )
        .unwrap();
        let mut absent = State::default();
        absent.fields.insert("stat".into(), b"absent".to_vec());
        let first = a
            .plan(&absent)
            .unwrap()
            .writes
            .expect("the first edit creates the file");
        let (path, prefix) = b.edited_file().unwrap();
        assert_eq!(path, "/x");
        let predicted = predict_file(&absent, prefix, &first);
        let second = b.plan(&predicted).unwrap();
        assert_eq!(second.writes.as_deref(), Some(&b"a = 1\nb = 2\n"[..]));
        let Diff::Change { after, .. } = second.diff else {
            panic!("the second edit changes the predicted file");
        };
        assert_eq!(after.as_deref(), Some("a = 1\nb = 2\n"));
        // Applying a on top of the predicted result of a changes nothing.
        assert_eq!(
            a.plan(&predict_file(&absent, prefix, &first)).unwrap().diff,
            Diff::Unchanged
        );
    }
}
