//! Argument helpers shared by modules: parsing, modes, paths, names.

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::ModuleError;

/// Deserializes a module's arguments; `null` counts as `{}`.
pub(crate) fn parse<T: DeserializeOwned>(
    module: &str,
    args: serde_json::Value,
) -> Result<T, ModuleError> {
    let args = if args.is_null() {
        serde_json::Value::Object(Default::default())
    } else {
        args
    };
    serde_json::from_value(args).map_err(|e| ModuleError::args(module, e.to_string()))
}

/// ` (did you mean `x`?)` when a known name is close to `name`.
pub fn suggest(name: &str, known: &[&str]) -> String {
    known
        .iter()
        .map(|k| (strsim::jaro_winkler(name, k), *k))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| format!(" (did you mean `{k}`?)"))
        .unwrap_or_default()
}

/// `present` (default) or `absent`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Presence {
    #[default]
    Present,
    Absent,
}

/// A file mode as written in YAML: `"0644"` or `644` (octal digits either way).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub(crate) enum ModeArg {
    Text(String),
    Number(u64),
}

/// Parses a mode into its octal digits without leading zeros, as `stat -c %a` prints it.
pub(crate) fn mode(module: &str, mode: Option<&ModeArg>) -> Result<Option<String>, ModuleError> {
    let Some(mode) = mode else { return Ok(None) };
    let digits = match mode {
        ModeArg::Text(s) => s.trim().to_string(),
        ModeArg::Number(n) => n.to_string(),
    };
    let digits = digits.strip_prefix("0o").unwrap_or(&digits);
    match u32::from_str_radix(digits, 8) {
        Ok(value) if value <= 0o7777 && !digits.is_empty() => Ok(Some(format!("{value:o}"))),
        _ => Err(ModuleError::args(
            module,
            format!("mode `{digits}` is not an octal file mode; write it like mode: \"0644\""),
        )),
    }
}

/// Checks that `path` is absolute, clean and not `/`.
pub(crate) fn path(module: &str, field: &str, path: &str) -> Result<(), ModuleError> {
    let fail = |why: &str| Err(ModuleError::args(module, format!("{field} `{path}` {why}")));
    if !path.starts_with('/') {
        return fail("must be an absolute path (start with /)");
    }
    if path.trim_end_matches('/').is_empty() {
        return fail("must not be the root directory");
    }
    if path.contains('\0') || path.contains('\n') {
        return fail("must not contain NUL or newline characters");
    }
    if path.split('/').any(|part| part == "..") {
        return fail("must not contain `..`");
    }
    Ok(())
}

/// Checks a name that becomes part of a file name (repository, unit, module file).
pub(crate) fn file_name(module: &str, field: &str, name: &str) -> Result<(), ModuleError> {
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && !name.starts_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@' | ':' | '+'));
    if ok {
        Ok(())
    } else {
        Err(ModuleError::args(
            module,
            format!(
                "{field} `{name}` may contain only letters, digits and . _ - @ : + \
                 (it becomes part of a file name)"
            ),
        ))
    }
}

/// Text for a diff side: the bytes when they are UTF-8, else `None`.
pub(crate) fn text(bytes: &[u8]) -> Option<String> {
    String::from_utf8(bytes.to_vec()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes() {
        let m = |a: ModeArg| mode("t", Some(&a));
        assert_eq!(m(ModeArg::Text("0644".into())).unwrap().unwrap(), "644");
        assert_eq!(m(ModeArg::Number(600)).unwrap().unwrap(), "600");
        assert_eq!(m(ModeArg::Text("4755".into())).unwrap().unwrap(), "4755");
        assert!(m(ModeArg::Text("0999".into())).is_err());
        assert!(m(ModeArg::Text("rw-r--r--".into())).is_err());
        assert!(m(ModeArg::Number(17777)).is_err());
    }

    #[test]
    fn paths_and_names() {
        assert!(path("t", "path", "/etc/x").is_ok());
        assert!(path("t", "path", "etc/x").is_err());
        assert!(path("t", "path", "/").is_err());
        assert!(path("t", "path", "/etc/../x").is_err());
        assert!(file_name("t", "name", "kubernetes").is_ok());
        assert!(file_name("t", "name", "../x").is_err());
        assert!(file_name("t", "name", "a b").is_err());
    }

    #[test]
    fn suggestions() {
        assert_eq!(
            suggest("sysctll", &["sysctl", "swap"]),
            " (did you mean `sysctl`?)"
        );
        assert_eq!(suggest("zzz", &["sysctl"]), "");
    }
}
