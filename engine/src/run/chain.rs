//! Several edits of one file in one apply round trip.

use std::collections::HashMap;

use kprov_modules::{Module, Plan, State};

/// Several edits of one file in one apply: each later edit is planned from the content
/// the earlier one writes ([`Plan::writes`]), so the whole chain applies in one round trip
/// instead of going stale edit by edit. Sensitive plans are left to the stale path.
pub(super) fn chain_file_edits(modules: &[&dyn Module], plans: &mut [(Plan, State)]) {
    let mut written: HashMap<String, Vec<u8>> = HashMap::new();
    for (module, (plan, state)) in modules.iter().zip(plans.iter_mut()) {
        let Some((path, prefix)) = module.edited_file() else {
            continue;
        };
        if plan.sensitive {
            written.remove(path);
            continue;
        }
        if let Some(content) = written.get(path) {
            let predicted = kprov_modules::predict_file(state, prefix, content);
            if let Ok(p) = module.plan(&predicted) {
                *state = predicted;
                *plan = p;
            }
        }
        match &plan.writes {
            Some(content) => {
                written.insert(path.to_string(), content.clone());
            }
            None if !plan.diff.needs_apply() => {}
            None => {
                written.remove(path);
            }
        }
    }
}
