//! Helpers modules are written with: argument checks, managed and edited files, test harness.

pub(crate) mod args;
pub(crate) mod edit;
pub(crate) mod managed;
#[cfg(test)]
pub(crate) mod testutil;
