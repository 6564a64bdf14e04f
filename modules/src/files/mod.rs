//! Files and their content: whole files, directories, lines, blocks, /etc/hosts.

pub(crate) mod block;
pub(crate) mod directory;
pub(crate) mod file;
pub(crate) mod hosts;
pub(crate) mod line;
