//! Controller-side actions: tasks, or parts of tasks, whose work happens on the control
//! machine rather than in the host's shell.
//!
//! - [`template`]: `template:` and `copy: {src}` read (and render) their source file here;
//!   the host receives a `copy` with the content.
//! - [`kube_apply`]: server-side apply of manifests through the host's API server, reached
//!   over the host's SSH connection.

pub mod kube_apply;
pub(crate) mod template;
