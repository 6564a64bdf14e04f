//! Test harness: a real registry on loopback (plain, basic auth, token auth, TLS),
//! images built from busybox-static, the agent binary started with its own
//! config, CRI clients, and leak checks.
#![allow(dead_code)]

pub mod agent;
pub mod clients;
pub mod images;
pub mod leaks;
pub mod pods;
pub mod registry;
pub mod security;
pub mod stream_client;
pub mod tls;
pub mod token_server;

/// Unique small number per test (bridge names, subnets, cgroup parents).
pub fn unique(n: u8) -> String {
    format!("{}{}", std::process::id() % 1000, n)
}
