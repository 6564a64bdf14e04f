//! Several edits of one file in one apply round trip.

use std::collections::HashMap;

use kprov_modules::{Diff, Module, State};

/// Several edits of one file in one apply: each later edit is computed from the content
/// the earlier one writes, so the whole chain applies in one round trip instead of going
/// stale edit by edit. Sensitive modules keep masked texts and are left to the stale path.
pub(super) fn chain_file_edits(modules: &[&dyn Module], diffs: &mut [(Diff, State)]) {
    let mut written: HashMap<String, Vec<u8>> = HashMap::new();
    for (module, (diff, state)) in modules.iter().zip(diffs.iter_mut()) {
        let Some((path, prefix)) = module.edited_file() else {
            continue;
        };
        if module.sensitive() {
            written.remove(path);
            continue;
        }
        if let Some(content) = written.get(path) {
            let predicted = kprov_modules::predict_file(state, prefix, content);
            if let Ok(d) = module.diff(&predicted) {
                *state = predicted;
                *diff = d;
            }
        }
        match diff {
            Diff::Change {
                after: Some(after), ..
            } => {
                written.insert(path.to_string(), after.clone().into_bytes());
            }
            Diff::Unchanged => {}
            _ => {
                written.remove(path);
            }
        }
    }
}
