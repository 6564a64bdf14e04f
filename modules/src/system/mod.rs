//! The host itself: name, kernel settings and modules, swap, SELinux, firewalls, units, commands.

pub(crate) mod command;
pub(crate) mod firewall;
pub(crate) mod hostname;
pub(crate) mod kernel_module;
pub(crate) mod selinux;
pub(crate) mod service;
pub(crate) mod swap;
pub(crate) mod sysctl;
