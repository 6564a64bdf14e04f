//! The module framework: the [`Module`] trait, the [`Plan`] it returns from the [`State`]
//! it gathered, and the [`Diff`] shown for it.

use std::collections::BTreeMap;

use crate::ModuleError;

/// Host facts a module may need; the engine fills it from its facts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostContext {
    /// `debian`, `rhel`, `suse` or `other`.
    pub os_family: String,
    /// `apt-get`, `dnf`, `yum`, … or empty when none was found.
    pub package_manager: String,
    /// Name of PID 1, e.g. `systemd`.
    pub init: String,
}

/// One task's module, built and validated from its YAML arguments.
pub trait Module: Send + Sync + std::fmt::Debug {
    /// Module name as written in YAML, e.g. `file`.
    fn name(&self) -> &'static str;
    /// POSIX sh fragment (a function body run in the script's own shell under `set -u`; it
    /// must not `exit`) that inspects the host and prints fields with the prelude's
    /// `kp_field`/`kp_word`/`kp_stat_file`. Changes nothing.
    fn gather(&self) -> String;
    /// Decides from the gathered fields, once: what would change and the script that makes
    /// it so. Pure; apply runs exactly the returned [`Plan::script`].
    fn plan(&self, state: &State) -> Result<Plan, ModuleError>;
    /// For modules that compute a file's new content from its current content (`line`,
    /// `block`, `hosts`, …): the file and the prefix of its gathered fields. The engine then
    /// chains several edits of one file in one apply, each planned from the content the
    /// previous one writes ([`Plan::writes`], [`predict_file`](crate::predict_file)), instead of a re-gather per
    /// edit.
    fn edited_file(&self) -> Option<(&str, &'static str)> {
        None
    }
}

/// What one task would do, computed once from its gathered state: the engine shows
/// [`Plan::diff`] and, in apply mode, runs [`Plan::script`] — never a second computation
/// that could disagree with what was shown (keys generated at plan time are the keys
/// written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// What would change, for display.
    pub diff: Diff,
    /// POSIX sh fragment (a function body, like gather's) that makes it so, idempotently:
    /// it calls `kp_changed` when it changed something and `kp_fail "message"; return` on
    /// failure; modules that computed a file's content from the gathered one guard against
    /// a file changed since with `kp_stale`. Runs even when `diff` is unchanged, as a
    /// re-check, when an earlier task of the batch changed something.
    pub script: String,
    /// The content of [`Module::edited_file`] once the script ran, when it writes it.
    pub writes: Option<Vec<u8>>,
    /// Things the operator should know about the gathered state that are not changes,
    /// e.g. certificates close to expiry. Shown in `plan` and `apply` output.
    pub warnings: Vec<String>,
    /// True when the plan holds secrets (keys, tokens, passwords): its diff texts are
    /// already masked, and it is never written out.
    pub sensitive: bool,
}

impl Plan {
    /// A plan of `diff` made so by `script`.
    pub fn new(diff: Diff, script: impl Into<String>) -> Plan {
        Plan {
            diff,
            script: script.into(),
            writes: None,
            warnings: Vec::new(),
            sensitive: false,
        }
    }

    /// The same plan, recording the content it writes to the edited file.
    pub fn writing(mut self, content: Option<Vec<u8>>) -> Plan {
        self.writes = content;
        self
    }

    /// The same plan with warnings.
    pub fn with_warnings(mut self, warnings: Vec<String>) -> Plan {
        self.warnings = warnings;
        self
    }

    /// The same plan, marked as holding secrets when `sensitive`.
    pub fn secret(mut self, sensitive: bool) -> Plan {
        self.sensitive = sensitive;
        self
    }
}

/// Fields gathered for one task, decoded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct State {
    pub fields: BTreeMap<String, Vec<u8>>,
}

impl State {
    /// The raw bytes of a field.
    pub fn bytes(&self, name: &str) -> Option<&[u8]> {
        self.fields.get(name).map(Vec::as_slice)
    }

    /// A field as text (lossy UTF-8).
    pub fn text(&self, name: &str) -> Option<String> {
        self.bytes(name)
            .map(|b| String::from_utf8_lossy(b).into_owned())
    }

    /// A field as text, or an error naming the missing field.
    pub fn require(&self, module: &str, name: &str) -> Result<String, ModuleError> {
        self.text(name)
            .ok_or_else(|| ModuleError::missing(module, name))
    }

    /// True when the field is present and equals `1`.
    pub fn flag(&self, name: &str) -> bool {
        self.bytes(name) == Some(b"1")
    }
}

/// What applying a task would do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Diff {
    /// Already as desired; apply is skipped.
    Unchanged,
    /// Apply would change the host. `summary` e.g. `create /etc/sysctl.d/k8s.conf`;
    /// `before`/`after` are texts for a unified diff (file content), `None` otherwise.
    Change {
        summary: String,
        before: Option<String>,
        after: Option<String>,
    },
    /// A command that runs at apply but reports no change (`changed: false`).
    Run { summary: String },
}

impl Diff {
    /// A change without file text.
    pub fn change(summary: impl Into<String>) -> Diff {
        Diff::Change {
            summary: summary.into(),
            before: None,
            after: None,
        }
    }

    /// True unless [`Diff::Unchanged`].
    pub fn needs_apply(&self) -> bool {
        !matches!(self, Diff::Unchanged)
    }
}
