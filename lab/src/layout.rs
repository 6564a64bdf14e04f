//! Where a lab keeps its things and how its interfaces, namespaces and cgroups are named.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use crate::error::LabError;

/// Root of all lab state.
pub(crate) const STATE_ROOT: &str = "/var/lib/kprov/lab";
/// Root of the caches shared by all labs (base file system, apt repository).
pub(crate) const CACHE_ROOT: &str = "/var/cache/kprov/lab";
/// Name of the cgroup (in every hierarchy) under which all lab hosts live.
pub(crate) const CGROUP_PARENT: &str = "kprov-lab";
/// The /16 that lab subnets are carved from: lab `k` gets 172.30.k.0/24.
pub(crate) const SUBNET_PREFIX: [u8; 2] = [172, 30];
/// TCP port of the lab's apt repository on the bridge address.
pub(crate) const REPO_PORT: u16 = 80;
/// Most hosts in one lab: addresses .10 … .254.
pub(crate) const MAX_HOSTS: usize = 245;

/// Checks that a lab name is usable in paths, cgroup and interface names.
pub(crate) fn validate_name(name: &str) -> Result<(), LabError> {
    let bad = |reason: &str| {
        Err(LabError::InvalidName {
            name: name.to_string(),
            reason: reason.to_string(),
        })
    };
    if name.is_empty() {
        return bad("it is empty");
    }
    if name.len() > 32 {
        return bad("it is longer than 32 characters");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return bad("it contains a character other than a-z, 0-9 and '-'");
    }
    if name.starts_with('-') {
        return bad("it starts with '-'");
    }
    Ok(())
}

/// Name of host `index` in a lab: `master`, `node1`, `node2`, ….
pub(crate) fn host_name(index: usize) -> String {
    if index == 0 {
        "master".to_string()
    } else {
        format!("node{index}")
    }
}

/// Paths and names of one lab, derived from its name and subnet number.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    pub name: String,
    /// Third octet of the lab's subnet (172.30.<subnet>.0/24).
    pub subnet: u8,
}

impl Layout {
    pub fn dir(name: &str) -> PathBuf {
        Path::new(STATE_ROOT).join(name)
    }

    pub fn state_dir(&self) -> PathBuf {
        Self::dir(&self.name)
    }

    pub fn state_file(&self) -> PathBuf {
        self.state_dir().join("state.json")
    }

    pub fn inventory(&self) -> PathBuf {
        self.state_dir().join("inventory.yaml")
    }

    pub fn key(&self) -> PathBuf {
        self.state_dir().join("key")
    }

    pub fn known_hosts(&self) -> PathBuf {
        self.state_dir().join("known_hosts")
    }

    pub fn launcher(&self) -> PathBuf {
        self.state_dir().join("launch.sh")
    }

    pub fn repo_log(&self) -> PathBuf {
        self.state_dir().join("repo-http.log")
    }

    /// Bridge on the machine: `kp-<name>` when it fits in 15 bytes, else `kpbr<subnet>`.
    pub fn bridge(&self) -> String {
        let wanted = format!("kp-{}", self.name);
        if wanted.len() <= 15 {
            wanted
        } else {
            format!("kpbr{}", self.subnet)
        }
    }

    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::new(SUBNET_PREFIX[0], SUBNET_PREFIX[1], self.subnet, 1)
    }

    pub fn host_address(&self, index: usize) -> Ipv4Addr {
        // index < MAX_HOSTS is checked by `up`, so 10 + index <= 254.
        let last = u8::try_from(10 + index).unwrap_or(254);
        Ipv4Addr::new(SUBNET_PREFIX[0], SUBNET_PREFIX[1], self.subnet, last)
    }

    pub fn repo_url(&self) -> String {
        format!("http://{}:{}/", self.gateway(), REPO_PORT)
    }

    pub fn host(&self, index: usize) -> HostLayout {
        let name = host_name(index);
        let dir = self.state_dir().join("hosts").join(&name);
        HostLayout {
            netns: format!("kprov-{}-{}", self.name, name),
            veth: format!("kpv{}-{}", self.subnet, index),
            cgroup: format!("{}/{}/{}", CGROUP_PARENT, self.name, name),
            address: self.host_address(index),
            name,
            dir,
        }
    }
}

/// Paths and names of one lab host.
#[derive(Debug, Clone)]
pub(crate) struct HostLayout {
    pub name: String,
    pub address: Ipv4Addr,
    pub dir: PathBuf,
    /// Network namespace name (`ip netns`), file /run/netns/<netns>.
    pub netns: String,
    /// Machine side of the host's veth pair.
    pub veth: String,
    /// Cgroup path relative to each hierarchy's root.
    pub cgroup: String,
}

impl HostLayout {
    pub fn upper(&self) -> PathBuf {
        self.dir.join("upper")
    }
    pub fn work(&self) -> PathBuf {
        self.dir.join("work")
    }
    pub fn merged(&self) -> PathBuf {
        self.dir.join("merged")
    }
    pub fn console_log(&self) -> PathBuf {
        self.dir.join("console.log")
    }
    pub fn netns_path(&self) -> PathBuf {
        Path::new("/run/netns").join(&self.netns)
    }
}

/// Cgroup of a whole lab, relative to each hierarchy's root.
pub(crate) fn lab_cgroup(name: &str) -> String {
    format!("{CGROUP_PARENT}/{name}")
}

/// Directory of the cached Debian base file system.
pub(crate) fn base_dir() -> PathBuf {
    Path::new(CACHE_ROOT).join("base-bookworm")
}

/// Directory of the cached local apt repository.
pub(crate) fn repo_dir() -> PathBuf {
    Path::new(CACHE_ROOT).join("apt-repo")
}

/// Directory of lock files (kept outside lab state dirs so `down` can delete those).
pub(crate) fn lock_dir() -> PathBuf {
    Path::new(STATE_ROOT).join(".locks")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_linux_interface_limit() {
        let layout = Layout {
            name: "a-very-long-lab-name-for-tests".into(),
            subnet: 254,
        };
        assert!(layout.bridge().len() <= 15);
        assert!(layout.host(244).veth.len() <= 15);
        assert_eq!(layout.host(244).address.octets()[3], 254);
        let short = Layout {
            name: "kprov".into(),
            subnet: 3,
        };
        assert_eq!(short.bridge(), "kp-kprov");
        assert_eq!(short.host(1).name, "node1");
        assert_eq!(short.host(0).address, Ipv4Addr::new(172, 30, 3, 10));
    }

    #[test]
    fn rejects_bad_names() {
        assert!(validate_name("kprov").is_ok());
        assert!(validate_name("t-1").is_ok());
        for bad in ["", "-x", "A", "a/b", "a b", &"x".repeat(33)] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
    }
}
