//! Helpers shared by the configuration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use kprov_engine::diagnostic::Diagnostics;

/// A file under `engine/tests/fixtures`.
pub fn fixture(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(relative)
}

/// A file of the repository (examples, inventories).
pub fn repo_file(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}

/// One expected diagnostic: line, column, key, message, hint.
pub type Expected<'a> = (usize, usize, &'a str, &'a str, Option<&'a str>);

/// Asserts that `diagnostics` are exactly `expected`, in order, all in `file`.
pub fn assert_diagnostics(diagnostics: &Diagnostics, file: &Path, expected: &[Expected<'_>]) {
    let actual: Vec<Expected<'_>> = diagnostics
        .iter()
        .map(|d| {
            assert_eq!(d.file, file, "diagnostic in the wrong file: {d}");
            (
                d.line,
                d.column,
                d.key.as_str(),
                d.message.as_str(),
                d.hint.as_deref(),
            )
        })
        .collect();
    assert_eq!(actual, expected, "\nfull output:\n{diagnostics}");
    // The rendered form names file:line:column first.
    for (d, e) in diagnostics.iter().zip(expected) {
        let rendered = d.to_string();
        let prefix = format!("{}:{}:{}: ", file.display(), e.0, e.1);
        assert!(rendered.starts_with(&prefix), "{rendered}");
    }
}
