//! Files kprov edits in Rust (a line, a block, a TOML table…): gather returns the current
//! content, the new content is computed locally, apply writes it only if the file still has
//! the gathered sha256 (else `kp_stale`).

use crate::args::text;
use crate::managed::{FileChange, FileStat};
use crate::script::{b64, quote, sha256_hex};
use crate::{ModuleError, State};

/// Computes a file's new content from its current content (`None` = the file is absent).
/// Returns `None` to leave an absent file absent.
pub(crate) type Edit<'a> = &'a dyn Fn(Option<&[u8]>) -> Result<Option<Vec<u8>>, ModuleError>;

/// Fragment that records `kp_fail MESSAGE` (for errors found while building apply).
pub(crate) fn fail_fragment(err: &ModuleError) -> String {
    format!("kp_fail {}\nreturn\n", quote(&err.to_string()))
}

/// Gather fragment line: stat, sha and content of `path` under `prefix`.
pub(crate) fn gather(prefix: &str, path: &str) -> String {
    format!(
        "kp_stat_file {} {} '' || return\n",
        quote(prefix),
        quote(path)
    )
}

/// The gathered content (`None` when the file is absent).
pub(crate) fn current(
    module: &str,
    state: &State,
    prefix: &str,
    path: &str,
) -> Result<Option<Vec<u8>>, ModuleError> {
    match FileStat::from_state(module, state, prefix)? {
        None => Ok(None),
        Some(stat) if !stat.is_file() => Err(ModuleError::conflict(
            module,
            format!("{path} is a {}, expected a regular file", stat.kind),
        )),
        Some(_) => match state.bytes(&format!("{prefix}content")) {
            Some(content) => Ok(Some(content.to_vec())),
            None => Err(ModuleError::conflict(
                module,
                format!("{path} is larger than 1 MiB; kprov does not edit files that large"),
            )),
        },
    }
}

/// The planned change of `path`, or `None` when the edit changes nothing.
pub(crate) fn change(
    module: &str,
    state: &State,
    prefix: &str,
    path: &str,
    edit: Edit,
) -> Result<Option<FileChange>, ModuleError> {
    let old = current(module, state, prefix, path)?;
    let new = edit(old.as_deref())?;
    if new == old || new.is_none() {
        return Ok(None);
    }
    let verb = if old.is_none() { "create" } else { "update" };
    Ok(Some(FileChange {
        path: path.to_string(),
        summary: format!("{verb} {path}"),
        texts: Some((
            Some(old.as_deref().and_then(text).unwrap_or_default()),
            new.as_deref().and_then(text),
        )),
    }))
}

/// Apply fragment: writes the edited content if the file still is as gathered.
pub(crate) fn apply(module: &str, state: &State, prefix: &str, path: &str, edit: Edit) -> String {
    apply_with_mode(module, state, prefix, path, edit, None)
}

/// [`apply`] that also sets the file's mode when it writes.
pub(crate) fn apply_with_mode(
    module: &str,
    state: &State,
    prefix: &str,
    path: &str,
    edit: Edit,
    mode: Option<&str>,
) -> String {
    let result = current(module, state, prefix, path).and_then(|old| {
        let new = edit(old.as_deref())?;
        Ok((old, new))
    });
    match result {
        Err(err) => fail_fragment(&err),
        Ok((old, Some(new))) if Some(&new) != old.as_ref() => {
            let old_sha = old
                .as_deref()
                .map(sha256_hex)
                .unwrap_or_else(|| "absent".to_string());
            let (content, encoding) = match std::str::from_utf8(&new) {
                Ok(text) if !text.contains('\0') => (quote(text), ""),
                _ => (quote(&b64(&new)), " b64"),
            };
            format!(
                "kp_put_if {} {} {} {} {}{encoding} || return\n",
                quote(path),
                quote(&old_sha),
                content,
                quote(&sha256_hex(&new)),
                quote(mode.unwrap_or(""))
            )
        }
        Ok(_) => String::new(),
    }
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
pub(crate) fn join(lines: &[String]) -> Vec<u8> {
    let mut out = String::new();
    for line in lines {
        out.push_str(line);
        out.push('\n');
    }
    out.into_bytes()
}
