//! Capabilities: the names the kernel numbers, the set the agent process holds
//! (what "privileged" and `ALL` mean, as in containerd and CRI-O: a runtime
//! cannot hand out a capability it lacks), and the set a container gets.

use crate::api;

/// Capability names by number (linux/capability.h), 0 ..= CAP_LAST_CAP known to runc.
const NAMES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// What a container gets unless it asks otherwise (the set containerd and Docker use).
const DEFAULT: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// The names of the capabilities in a `/proc/<pid>/status` hex mask.
pub fn names_of_mask(mask: u64) -> Vec<String> {
    NAMES
        .iter()
        .enumerate()
        .filter(|(bit, _)| mask & (1u64 << bit) != 0)
        .map(|(_, n)| n.to_string())
        .collect()
}

/// The mask of `field` (e.g. `CapBnd`) in a `/proc/<pid>/status` text.
pub fn status_mask(status: &str, field: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
}

/// The capabilities this process holds: in both its bounding and effective sets
/// (runc can keep neither more in the bounding set nor more in the others).
pub fn held_by_self() -> Vec<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    match (
        status_mask(&status, "CapBnd"),
        status_mask(&status, "CapEff"),
    ) {
        (Some(bnd), Some(eff)) => names_of_mask(bnd & eff),
        // No /proc: assume everything and let runc say what is missing.
        _ => NAMES.iter().map(|s| s.to_string()).collect(),
    }
}

fn normalize(s: &str) -> String {
    let u = s.to_uppercase();
    if u.starts_with("CAP_") || u == "ALL" {
        u
    } else {
        format!("CAP_{u}")
    }
}

/// The container's capability set: everything `held` when privileged; otherwise the
/// defaults the runtime holds, plus `add` (`ALL` = everything held), minus `drop`
/// (`ALL` = everything). A specific capability the runtime does not hold is an error.
pub fn container_caps(
    privileged: bool,
    requested: Option<&api::Capability>,
    held: &[String],
) -> Result<Vec<String>, String> {
    if privileged {
        return Ok(held.to_vec());
    }
    let mut caps: Vec<String> = DEFAULT
        .iter()
        .map(|s| s.to_string())
        .filter(|c| held.contains(c))
        .collect();
    let Some(req) = requested else {
        return Ok(caps);
    };
    for a in req.add_capabilities.iter().map(|s| normalize(s)) {
        if a == "ALL" {
            caps = held.to_vec();
        } else if !held.contains(&a) {
            return Err(format!(
                "capability {a} was asked for, but the runtime does not hold it \
                 (not in kprov-agent's bounding or effective set; see /proc/<agent pid>/status)"
            ));
        } else if !caps.contains(&a) {
            caps.push(a);
        }
    }
    for d in req.drop_capabilities.iter().map(|s| normalize(s)) {
        if d == "ALL" {
            caps.clear();
        } else {
            caps.retain(|x| *x != d);
        }
    }
    Ok(caps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_map_to_names() {
        let status = "Name:\tx\nCapEff:\t000001fffeffffff\nCapBnd:\t000001fffeffffff\n";
        let held = names_of_mask(status_mask(status, "CapBnd").unwrap());
        assert_eq!(held.len(), 40);
        assert!(!held.contains(&"CAP_SYS_RESOURCE".to_string()));
        assert!(held.contains(&"CAP_CHECKPOINT_RESTORE".to_string()));
        assert_eq!(names_of_mask(0b101), ["CAP_CHOWN", "CAP_DAC_READ_SEARCH"]);
    }

    #[test]
    fn privileged_and_all_mean_what_the_runtime_holds() {
        let held = names_of_mask(0x1fffeffffff);
        assert_eq!(container_caps(true, None, &held).unwrap(), held);
        let all = api::Capability {
            add_capabilities: vec!["ALL".into()],
            ..Default::default()
        };
        assert_eq!(container_caps(false, Some(&all), &held).unwrap(), held);
        let add = api::Capability {
            add_capabilities: vec!["net_admin".into()],
            drop_capabilities: vec!["CAP_KILL".into()],
            ..Default::default()
        };
        let caps = container_caps(false, Some(&add), &held).unwrap();
        assert!(caps.contains(&"CAP_NET_ADMIN".to_string()));
        assert!(!caps.contains(&"CAP_KILL".to_string()));
        let missing = api::Capability {
            add_capabilities: vec!["SYS_RESOURCE".into()],
            ..Default::default()
        };
        let e = container_caps(false, Some(&missing), &held).unwrap_err();
        assert!(e.contains("CAP_SYS_RESOURCE"), "{e}");
        let drop_all = api::Capability {
            drop_capabilities: vec!["ALL".into()],
            ..Default::default()
        };
        assert!(container_caps(false, Some(&drop_all), &held)
            .unwrap()
            .is_empty());
    }
}
