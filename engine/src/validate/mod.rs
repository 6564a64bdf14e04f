//! Validation of `cluster.yaml` and `hosts.yaml`: YAML with positions, the JSON Schema check
//! (every violation, with friendly messages), and the cross-file checks in [`check`].

mod cross;
pub(crate) mod formats;
pub(crate) mod net;
pub mod source_map;
mod structural;
mod suggest;
pub(crate) mod yaml;

use std::path::Path;

use serde::de::DeserializeOwned;
use serde_json::Value;

pub use cross::check;
pub use source_map::{Position, SourceMap};
pub(crate) use suggest::closest;

use crate::diagnostic::{Diagnostic, Diagnostics};

/// A parsed file with its schema violations (possibly none).
pub(crate) struct Loaded {
    pub(crate) value: Value,
    pub(crate) map: SourceMap,
    pub(crate) diagnostics: Diagnostics,
}

/// Reads a file, or a diagnostic saying why it cannot be read.
pub(crate) fn read(path: &Path) -> Result<String, Diagnostics> {
    std::fs::read_to_string(path).map_err(|error| {
        Diagnostics::from(Diagnostic {
            file: path.to_path_buf(),
            line: 1,
            column: 1,
            key: String::new(),
            message: format!("cannot read the file: {error}"),
            hint: None,
        })
    })
}

/// Parses YAML `text` and checks it against `schema`. Syntax errors are fatal; everything
/// else is collected in [`Loaded::diagnostics`].
pub(crate) fn load_text(path: &Path, text: &str, schema: &Value) -> Result<Loaded, Diagnostics> {
    let (document, mut diagnostics) = yaml::parse(path, text)?;
    diagnostics
        .0
        .extend(structural::check(schema, &document.value, &document.map));
    Ok(Loaded {
        value: document.value,
        map: document.map,
        diagnostics,
    })
}

/// Deserializes a schema-checked value into its typed model.
pub(crate) fn typed<T: DeserializeOwned>(value: &Value, map: &SourceMap) -> Result<T, Diagnostic> {
    T::deserialize(value).map_err(|error| map.at_value("", error.to_string(), None))
}
