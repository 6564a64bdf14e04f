//! Creating and releasing pinned (bind-mounted) namespaces, in-process: a
//! short-lived thread unshares the pod's network, IPC and UTS namespaces, sets
//! the hostname, brings `lo` up, and bind-mounts its namespace files to the pins.

use nix::sched::CloneFlags;
use std::path::{Path, PathBuf};

/// Pin files of a pod's namespaces; `None` for a namespace shared with the host.
#[derive(Debug, Clone, Default)]
pub struct PinnedNamespaces {
    pub net: Option<PathBuf>,
    pub ipc: Option<PathBuf>,
    pub uts: Option<PathBuf>,
}

/// Creates new namespaces pinned under `dir`; the UTS one gets `hostname`,
/// the network one an `up` loopback.
pub fn pin_namespaces(
    dir: &Path,
    net: bool,
    ipc: bool,
    uts: bool,
    hostname: &str,
) -> std::io::Result<PinnedNamespaces> {
    std::fs::create_dir_all(dir)?;
    let mut pins = PinnedNamespaces::default();
    let mut flags = CloneFlags::empty();
    for (want, name, flag, slot) in [
        (net, "net", CloneFlags::CLONE_NEWNET, &mut pins.net),
        (ipc, "ipc", CloneFlags::CLONE_NEWIPC, &mut pins.ipc),
        (uts, "uts", CloneFlags::CLONE_NEWUTS, &mut pins.uts),
    ] {
        if want {
            let p = dir.join(name);
            std::fs::File::create(&p)?;
            flags |= flag;
            *slot = Some(p);
        }
    }
    if flags.is_empty() {
        return Ok(pins);
    }
    let (hostname, targets) = (hostname.to_string(), pins.clone());
    // A fresh thread: namespaces are per thread, and this one ends right after.
    let result = std::thread::spawn(move || -> std::io::Result<()> {
        nix::sched::unshare(flags).map_err(|e| std::io::Error::other(format!("unshare: {e}")))?;
        if uts && !hostname.is_empty() {
            nix::unistd::sethostname(&hostname)
                .map_err(|e| std::io::Error::other(format!("sethostname: {e}")))?;
        }
        if net {
            loopback_up()?;
        }
        let tid = nix::unistd::gettid();
        for (name, pin) in [
            ("net", &targets.net),
            ("ipc", &targets.ipc),
            ("uts", &targets.uts),
        ] {
            if let Some(pin) = pin {
                let src = format!("/proc/self/task/{tid}/ns/{name}");
                nix::mount::mount(
                    Some(src.as_str()),
                    pin.as_path(),
                    None::<&str>,
                    nix::mount::MsFlags::MS_BIND,
                    None::<&str>,
                )
                .map_err(|e| std::io::Error::other(format!("pin {name} namespace: {e}")))?;
            }
        }
        Ok(())
    })
    .join()
    .unwrap_or_else(|_| Err(std::io::Error::other("namespace thread panicked")));
    if let Err(e) = result {
        unpin(&pins);
        return Err(e);
    }
    Ok(pins)
}

/// Sets IFF_UP on `lo` in the calling thread's network namespace.
fn loopback_up() -> std::io::Result<()> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    // SAFETY: plain socket(2); the fd is owned right away.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `raw` is a new, valid descriptor.
    let sock = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: ifreq is plain old data; zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *d = *s as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write the flags member of a valid ifreq.
    unsafe {
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) < 0 {
            return Err(std::io::Error::last_os_error());
        }
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Unmounts and deletes every pin that exists; missing ones are fine.
pub fn unpin(pins: &PinnedNamespaces) {
    for p in [&pins.net, &pins.ipc, &pins.uts].into_iter().flatten() {
        let _ = nix::mount::umount2(p.as_path(), nix::mount::MntFlags::MNT_DETACH);
        let _ = std::fs::remove_file(p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinned_namespaces_hold_hostname_and_loopback() {
        let d = tempfile::tempdir().unwrap();
        let pins = pin_namespaces(d.path(), true, true, true, "pinned-pod").unwrap();
        let uts = pins.uts.clone().unwrap();
        let net = pins.net.clone().unwrap();
        let host = std::process::Command::new("nsenter")
            .arg(format!("--uts={}", uts.display()))
            .arg("hostname")
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&host.stdout).trim(), "pinned-pod");
        let lo = std::process::Command::new("nsenter")
            .arg(format!("--net={}", net.display()))
            .args(["ip", "-o", "link", "show", "lo"])
            .output()
            .unwrap();
        assert!(
            String::from_utf8_lossy(&lo.stdout).contains("UP"),
            "{:?}",
            lo
        );
        unpin(&pins);
        assert!(!net.exists() && !uts.exists());
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(!mounts.contains(&d.path().display().to_string()));
    }
}
