//! Shared helpers for end-to-end tests: run the real `kprov` binary, bring labs up and
//! tear them down even when a test fails.

#![allow(dead_code)] // each test binary uses its own subset

pub mod agent_lab;

use std::path::PathBuf;
use std::process::{Command, Output};

/// `VERB PLAYBOOK -i INV --spec SPEC -e kubelet_install=false --output json`: a cluster run
/// on lab hosts, where no real kubelet can run.
pub fn cluster_args<'a>(
    verb: &'a str,
    playbook: &'a str,
    inv: &'a str,
    spec: &'a str,
) -> Vec<&'a str> {
    vec![
        verb,
        playbook,
        "-i",
        inv,
        "--spec",
        spec,
        "-e",
        "kubelet_install=false",
        "--output",
        "json",
    ]
}

/// Runs `kprov` with `args`.
pub fn kprov(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kprov"))
        .args(args)
        .output()
        .expect("running the kprov binary")
}

/// Runs `kprov` and asserts it succeeded; returns stdout.
pub fn kprov_ok(args: &[&str]) -> String {
    let out = kprov(args);
    assert!(
        out.status.success(),
        "kprov {args:?} failed ({:?})\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `cmd` with `sh -c` on a lab host, asserts it succeeded, returns its stdout.
pub fn sh(lab: &Lab, host: &str, cmd: &str) -> String {
    let out = lab.ssh(host, cmd);
    assert!(
        out.status.success(),
        "{host}: `{cmd}` failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The JSON events of a `--output json` run's stdout (other lines skipped).
pub fn events(stdout: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// A lab brought up for one test and removed when dropped.
pub struct Lab {
    pub name: String,
    pub inventory: PathBuf,
}

impl Lab {
    /// `kprov lab up --name NAME --hosts N`.
    ///
    /// `KPROV_TEST_LAB_PREFIX` is prepended to the name, so that checkouts testing side by
    /// side on one machine never share a lab.
    pub fn up(name: &str, hosts: usize) -> Lab {
        let name = &format!(
            "{}{name}",
            std::env::var("KPROV_TEST_LAB_PREFIX").unwrap_or_default()
        );
        // A leftover of a crashed earlier run must not leak into this one.
        let _ = kprov(&["lab", "down", "--name", name]);
        let stdout = kprov_ok(&["lab", "up", "--name", name, "--hosts", &hosts.to_string()]);
        let inventory = PathBuf::from(
            stdout
                .lines()
                .last()
                .expect("lab up prints the inventory path")
                .trim(),
        );
        assert!(
            inventory.is_file(),
            "inventory {} missing",
            inventory.display()
        );
        Lab {
            name: name.to_string(),
            inventory,
        }
    }

    /// `kprov lab status --output json` as JSON.
    pub fn status(&self) -> serde_json::Value {
        let out = kprov_ok(&["lab", "status", "--name", &self.name, "--output", "json"]);
        serde_json::from_str(&out).expect("status is JSON")
    }

    /// Runs a command on a lab host through `kprov lab ssh`.
    pub fn ssh(&self, host: &str, command: &str) -> Output {
        kprov(&[
            "lab", "ssh", "--name", &self.name, host, "--", "sh", "-c", command,
        ])
    }

    /// Address of `host` according to the lab.
    pub fn address(&self, host: &str) -> String {
        self.status()["hosts"]
            .as_array()
            .and_then(|hosts| hosts.iter().find(|h| h["name"] == host))
            .and_then(|h| h["address"].as_str())
            .unwrap_or_else(|| panic!("no host {host} in lab {}", self.name))
            .to_string()
    }

    pub fn inventory_str(&self) -> &str {
        self.inventory.to_str().expect("utf-8 path")
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = kprov(&["lab", "down", "--name", &self.name]);
    }
}
