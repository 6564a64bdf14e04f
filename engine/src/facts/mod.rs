//! Facts: what a host is, learned in one round trip.
//!
//! One POSIX shell script ([`GATHER_SCRIPT`]) prints `key=value` lines; [`Facts::parse`]
//! turns them into typed facts. Nothing on the host changes.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::transport::{Connector, TransportError};

/// The script that gathers facts; needs only `sh` and coreutils.
pub const GATHER_SCRIPT: &str = include_str!("gather.sh");

/// What kprov knows about one host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Facts {
    /// `ID` from /etc/os-release, e.g. `debian`, `ubuntu`, `rocky`.
    pub os_id: String,
    /// `VERSION_ID`, e.g. `12`.
    pub os_version: String,
    /// `VERSION_CODENAME`, e.g. `bookworm` (empty on distributions without one).
    pub os_codename: String,
    pub os_family: OsFamily,
    /// `uname -m`, e.g. `x86_64`.
    pub arch: String,
    pub kernel: String,
    pub hostname: String,
    /// Global-scope addresses of every interface.
    pub addresses: Vec<String>,
    pub cpus: u32,
    pub memory_mib: u64,
    /// Swap is configured and active (kubelet refuses to start with it).
    pub swap_on: bool,
    pub cgroup: CgroupVersion,
    /// Name of PID 1, e.g. `systemd`.
    pub init: String,
    /// `apt-get`, `dnf`, `yum`, `zypper`, `apk`, or empty when none was found.
    pub package_manager: String,
    /// Container runtimes whose binaries are installed.
    pub runtimes: Vec<String>,
    /// CRI sockets that exist right now.
    pub runtime_sockets: Vec<String>,
    /// Path of the kubelet binary when installed.
    pub kubelet: Option<String>,
    /// The host lets processes lower their OOM score (false inside lab hosts).
    pub negative_oom_score_adj: bool,
    /// Container/virtualisation marker systemd recorded (lab hosts say so).
    pub container: Option<String>,
    /// systemd-resolved is active (the kubelet then reads its upstream resolv.conf).
    pub systemd_resolved: bool,
    /// CA-trust directories present (`/etc/ssl/certs`, `/etc/pki`, …).
    pub ca_trust_dirs: Vec<String>,
    /// Marker ids of handlers notified by an earlier run that have not run yet.
    pub pending_handlers: Vec<String>,
}

/// Distribution family, which decides package tooling and file locations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OsFamily {
    Debian,
    Rhel,
    Suse,
    Other,
}

/// cgroup layout of the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CgroupVersion {
    V1,
    Hybrid,
    V2,
}

/// Facts could not be gathered from a host.
#[derive(Debug, thiserror::Error)]
pub enum FactsError {
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("{host}: gathering facts failed (exit {code:?}): {stderr}")]
    Script {
        host: String,
        code: Option<i32>,
        stderr: String,
    },
}

impl Facts {
    /// Gathers facts over an open connection: one remote shell, one round trip.
    pub async fn gather(conn: &dyn Connector) -> Result<Facts, FactsError> {
        let out = conn.run(GATHER_SCRIPT, None).await?;
        if !out.success() {
            return Err(FactsError::Script {
                host: conn.target().name.clone(),
                code: out.exit_code,
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(Facts::parse(&String::from_utf8_lossy(&out.stdout)))
    }

    /// Parses the `key=value` output of [`GATHER_SCRIPT`]; unknown keys are ignored and
    /// missing ones take empty values, so a minimal host still yields facts.
    pub fn parse(text: &str) -> Facts {
        let kv: BTreeMap<&str, &str> = text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim(), v.trim()))
            .collect();
        let get = |k: &str| kv.get(k).copied().unwrap_or_default().to_string();
        let words = |k: &str| -> Vec<String> {
            kv.get(k)
                .map(|v| v.split_whitespace().map(str::to_string).collect())
                .unwrap_or_default()
        };
        let number = |k: &str| kv.get(k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        let non_empty = |k: &str| Some(get(k)).filter(|v| !v.is_empty());
        let os_id = get("os_id");
        let os_family = family(&os_id, &get("os_like"));
        Facts {
            os_version: get("os_version"),
            os_codename: get("os_codename"),
            os_family,
            os_id,
            arch: get("arch"),
            kernel: get("kernel"),
            hostname: get("hostname"),
            addresses: words("addresses"),
            cpus: u32::try_from(number("cpus")).unwrap_or(u32::MAX),
            memory_mib: number("memory_kib") / 1024,
            swap_on: number("swap_total_kib") > 0 && number("swap_devices") > 0,
            cgroup: match get("cgroup").as_str() {
                "v2" => CgroupVersion::V2,
                "hybrid" => CgroupVersion::Hybrid,
                _ => CgroupVersion::V1,
            },
            init: get("init"),
            package_manager: get("package_manager"),
            runtimes: words("runtimes"),
            runtime_sockets: words("runtime_sockets"),
            kubelet: non_empty("kubelet"),
            negative_oom_score_adj: get("negative_oom_score_adj") == "yes",
            container: non_empty("container"),
            systemd_resolved: get("systemd_resolved") == "yes",
            ca_trust_dirs: words("ca_trust_dirs"),
            pending_handlers: words("pending_handlers"),
        }
    }
}

fn family(id: &str, like: &str) -> OsFamily {
    let all: Vec<&str> = std::iter::once(id).chain(like.split_whitespace()).collect();
    if all.iter().any(|w| matches!(*w, "debian" | "ubuntu")) {
        OsFamily::Debian
    } else if all
        .iter()
        .any(|w| matches!(*w, "rhel" | "fedora" | "centos" | "rocky" | "almalinux"))
    {
        OsFamily::Rhel
    } else if all.iter().any(|w| w.contains("suse")) {
        OsFamily::Suse
    } else {
        OsFamily::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the real gather script with the local shell and parses its output.
    #[test]
    fn script_runs_on_this_machine() {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(GATHER_SCRIPT)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let facts = Facts::parse(&String::from_utf8_lossy(&out.stdout));
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
        assert_eq!(facts.hostname, hostname.trim());
        assert!(facts.cpus >= 1);
        assert!(facts.memory_mib > 0);
        assert_eq!(facts.arch, std::env::consts::ARCH);
        assert!(!facts.kernel.is_empty());
    }

    #[test]
    fn families() {
        assert_eq!(family("ubuntu", "debian"), OsFamily::Debian);
        assert_eq!(family("rocky", "rhel centos fedora"), OsFamily::Rhel);
        assert_eq!(family("opensuse-leap", "suse opensuse"), OsFamily::Suse);
        assert_eq!(family("arch", ""), OsFamily::Other);
    }

    #[test]
    fn parse_tolerates_missing_and_odd_lines() {
        let facts =
            Facts::parse("hostname=n1\ngarbage\ncpus=x\nswap_total_kib=1024\nswap_devices=1\n");
        assert_eq!(facts.hostname, "n1");
        assert_eq!(facts.cpus, 0);
        assert!(facts.swap_on);
        assert_eq!(facts.kubelet, None);
    }
}
