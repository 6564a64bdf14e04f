//! Every module a task may name, in one listing: the host modules of
//! [`kprov_modules::catalog`] and the two the engine runs itself (`template`, rendered
//! into a `copy`; `kube_apply`, run on the control machine). Task validation, its "did you
//! mean" hints and `kprov modules` all read [`all`].

mod arguments;
mod template;

use std::sync::OnceLock;

pub use arguments::{arguments, Argument};
pub use kprov_modules::catalog::Entry;

/// The modules the engine runs itself, sorted by name.
static ENGINE: &[Entry] = &[
    Entry {
        name: crate::actions::kube_apply::MODULE,
        doc: "server-side applies manifests from the control machine against a host's API \
              server, and labels, annotates and taints the nodes as kubeadm does",
        schema: || schemars::schema_for!(crate::actions::kube_apply::Args),
        build: None,
    },
    Entry {
        name: "template",
        doc: "renders the role's `templates/SRC` (Jinja2, with the host's variables) into a \
              `copy` to `dest`",
        schema: template::schema,
        build: None,
    },
];

/// Every module, host and engine ones, sorted by name.
pub fn all() -> &'static [Entry] {
    static ALL: OnceLock<Vec<Entry>> = OnceLock::new();
    ALL.get_or_init(|| {
        let mut all: Vec<Entry> = kprov_modules::catalog::ENTRIES
            .iter()
            .chain(ENGINE)
            .copied()
            .collect();
        all.sort_by_key(|e| e.name);
        all
    })
}

/// The module a task names, if there is one.
pub fn find(name: &str) -> Option<&'static Entry> {
    all().iter().find(|e| e.name == name)
}

/// Every module name, sorted.
pub fn names() -> Vec<&'static str> {
    all().iter().map(|e| e.name).collect()
}

/// ` (did you mean `x`?)` when a module name is close to `name`, else empty.
pub fn suggest(name: &str) -> String {
    kprov_modules::suggest(name, &names())
}

/// The JSON schema of a module's arguments, with standard `format`s only (as `kprov
/// schema` prints its schemas).
pub fn schema(entry: &Entry) -> serde_json::Value {
    crate::schema::to_value((entry.schema)())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_listing_of_host_and_engine_modules() {
        let names = names();
        assert!(names.windows(2).all(|w| w[0] < w[1]), "{names:?}");
        for name in ["file", "copy", "command", "shell", "template", "kube_apply"] {
            assert!(find(name).is_some(), "{name}");
        }
        assert!(find("template").unwrap().build.is_none());
        assert!(find("file").unwrap().build.is_some());
        assert_eq!(names.len(), kprov_modules::names().len() + ENGINE.len());
        assert_eq!(suggest("templat"), " (did you mean `template`?)");
        assert_eq!(suggest("zzzz"), "");
    }

    #[test]
    fn engine_docs_fit_one_table_cell() {
        for e in ENGINE {
            assert!(
                !e.doc.contains(['|', '\n']) && !e.doc.contains("  "),
                "{}",
                e.doc
            );
            assert!(schema(e).is_object());
        }
    }
}
