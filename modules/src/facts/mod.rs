//! Facts: what gather fragments read from the host, each kind as one typed pair of the
//! POSIX sh that prints its fields (with the prelude's `kp_word`, `kp_field` and
//! `kp_stat_file`) and the parser that reads them back from the task's [`State`].
//!
//! Every fact is made with a [`Prefix`] and names its fields after it (`route.v4`,
//! `dst.v4`), so two facts of one kind in one task never share a field. The names only
//! need to agree between a module's gather and its plan, which both go through the fact.

pub(crate) mod file;
pub(crate) mod iptables;
pub(crate) mod routes;
pub(crate) mod unit;

use crate::{ModuleError, State};

/// The namespace of one fact's fields: each field is the prefix followed by its own name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Prefix(String);

impl Prefix {
    pub(crate) fn new(prefix: impl Into<String>) -> Prefix {
        Prefix(prefix.into())
    }

    /// The fact's field `name`.
    pub(crate) fn field(&self, name: &str) -> String {
        format!("{}{name}", self.0)
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

/// One thing a gather fragment reads from the host.
pub(crate) trait Fact {
    /// What the fields say, typed.
    type Value;

    /// Lines of a gather fragment that print the fact's fields. They change nothing and end
    /// with status 0 unless a `|| return` stopped the fragment.
    fn gather(&self) -> String;

    /// The fact as the fields [`Fact::gather`] printed describe it; `module` names the
    /// module in errors.
    fn parse(&self, module: &str, state: &State) -> Result<Self::Value, ModuleError>;
}
