//! The lab's local apt repository: `.deb`s fetched on the machine (with the dependencies the
//! base lacks), indexed with apt-ftparchive and served over the lab bridge by busybox httpd.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use crate::cmd::{spawn_detached, Cmd};
use crate::error::LabError;
use crate::fsutil::{remove_tree, write_atomic};
use crate::layout::{lock_dir, repo_dir, CACHE_ROOT, REPO_PORT};
use crate::lock::LockGuard;

/// Packages (plus dependencies missing from the base) that lab hosts can install offline.
pub(crate) const PACKAGES: &[&str] = &[
    "containerd",
    "runc",
    "etcd-server",
    "etcd-client",
    "containernetworking-plugins",
    "conntrack",
    "socat",
    "iptables",
    "ipset",
    "ipvsadm",
    "ebtables",
    "ethtool",
    // Static busybox: a one-file userland for test containers inside lab hosts.
    "busybox-static",
];

const MARKER: &str = ".kprov-packages";

/// Returns the repository directory, fetching and indexing it first when needed.
pub(crate) fn ensure(base: &Path, mirror: Option<&str>) -> Result<PathBuf, LabError> {
    let repo = repo_dir();
    let wanted = PACKAGES.join("\n") + "\n";
    if is_current(&repo, &wanted) {
        return Ok(repo);
    }
    let _lock = LockGuard::acquire(&lock_dir().join("repo.lock"))?;
    if is_current(&repo, &wanted) {
        return Ok(repo);
    }
    build(base, &repo, &wanted, mirror)?;
    Ok(repo)
}

fn is_current(repo: &Path, wanted: &str) -> bool {
    repo.join("Release").exists()
        && std::fs::read_to_string(repo.join(MARKER)).is_ok_and(|have| have == wanted)
}

fn build(base: &Path, repo: &Path, marker: &str, mirror: Option<&str>) -> Result<(), LabError> {
    let started = std::time::Instant::now();
    let mirror = crate::mirror::resolve(mirror, crate::base::SUITE, Path::new("/etc/apt"))?;
    let cache = Path::new(CACHE_ROOT);
    let apt_state = cache.join("apt-state");
    let tmp = cache.join("apt-repo.partial");
    remove_tree(&tmp)?;
    for dir in [
        apt_state.join("lists/partial"),
        apt_state.join("cache"),
        apt_state.join("preferences.d"),
        tmp.join("partial"),
    ] {
        std::fs::create_dir_all(&dir).map_err(LabError::io("create directory", &dir))?;
    }
    let sources = mirror.sources_list();
    let sources_file = apt_state.join("sources.list");
    write_atomic(&sources_file, sources.as_bytes(), 0o644)?;
    let log = cache.join("apt-repo-build.log");
    let _ = std::fs::remove_file(&log);
    // apt runs against the base's package database, so it fetches exactly what the base lacks.
    let options = [
        format!("Dir::Etc::sourcelist={}", sources_file.display()),
        "Dir::Etc::sourceparts=-".to_string(),
        format!(
            "Dir::Etc::preferences={}",
            apt_state.join("preferences").display()
        ),
        format!(
            "Dir::Etc::preferencesparts={}",
            apt_state.join("preferences.d").display()
        ),
        format!("Dir::State::lists={}", apt_state.join("lists").display()),
        format!("Dir::Cache={}", apt_state.join("cache").display()),
        format!(
            "Dir::State::status={}",
            base.join("var/lib/dpkg/status").display()
        ),
        format!("Dir::Cache::archives={}", tmp.display()),
        "Debug::NoLocking=true".to_string(),
        "APT::Install-Recommends=false".to_string(),
        "APT::Get::Assume-Yes=true".to_string(),
    ];
    let apt = |args: &[&str]| {
        let mut argv = vec!["apt-get".to_string()];
        for option in &options {
            argv.push("-o".to_string());
            argv.push(option.clone());
        }
        argv.extend(args.iter().map(|s| s.to_string()));
        Cmd::new(argv)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .hint(format!(
                "could not fetch the lab's apt packages; check that {} is reachable, or pass \
                 another Debian mirror with --mirror / {}",
                mirror.main,
                crate::mirror::MIRROR_ENV
            ))
    };
    crate::base::step(
        started,
        &format!(
            "fetching packages for the lab's apt repository from {} (once; log: {})",
            mirror.main,
            log.display()
        ),
    );
    apt(&["update"]).run_logged(&log)?;
    let mut install = vec!["install", "--download-only"];
    install.extend(PACKAGES);
    apt(&install).run_logged(&log)?;
    remove_tree(&tmp.join("partial"))?;
    let _ = std::fs::remove_file(tmp.join("lock"));
    index(&tmp)?;
    write_atomic(&tmp.join(MARKER), marker.as_bytes(), 0o644)?;
    // Swap the new repository in; a running server keeps serving by path.
    let old = cache.join("apt-repo.old");
    remove_tree(&old)?;
    if repo.exists() {
        std::fs::rename(repo, &old).map_err(LabError::io("rename", repo))?;
    }
    std::fs::rename(&tmp, repo).map_err(LabError::io("rename into place", repo))?;
    crate::base::step(started, "lab apt repository ready");
    remove_tree(&old)
}

/// Writes Packages, Packages.gz and Release for a flat repository (`deb URL ./`).
fn index(dir: &Path) -> Result<(), LabError> {
    let hint = "apt-ftparchive could not index the lab repository";
    let packages = Cmd::new(["apt-ftparchive", "packages", "."])
        .hint(hint)
        .run_in(dir)?;
    write_atomic(&dir.join("Packages"), packages.as_bytes(), 0o644)?;
    Cmd::new(["gzip", "-9kf", "Packages"])
        .hint(hint)
        .run_in(dir)?;
    let release = Cmd::new([
        "apt-ftparchive",
        "-o",
        "APT::FTPArchive::Release::Origin=kprov-lab",
        "-o",
        "APT::FTPArchive::Release::Label=kprov-lab",
        "release",
        ".",
    ])
    .hint(hint)
    .run_in(dir)?;
    write_atomic(&dir.join("Release"), release.as_bytes(), 0o644)
}

/// The apt source line lab hosts get.
pub(crate) fn source_line(url: &str) -> String {
    format!("# Written by kprov lab: the lab's local repository.\ndeb [trusted=yes] {url} ./\n")
}

/// Starts busybox httpd serving `repo` on the bridge address; returns its pid.
pub(crate) fn serve(repo: &Path, address: Ipv4Addr, log: &Path) -> Result<u32, LabError> {
    let argv = [
        "busybox".to_string(),
        "httpd".to_string(),
        "-f".to_string(),
        "-p".to_string(),
        format!("{address}:{REPO_PORT}"),
        "-h".to_string(),
        repo.display().to_string(),
    ];
    spawn_detached(&argv, log)
}

/// Waits until the server started by [`serve`] accepts connections.
pub(crate) fn wait_serving(pid: u32, address: Ipv4Addr, log: &Path) -> Result<(), LabError> {
    let target = std::net::SocketAddr::from((address, REPO_PORT));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let timeout = std::time::Duration::from_millis(200);
        if std::net::TcpStream::connect_timeout(&target, timeout).is_ok() {
            return Ok(());
        }
        if !is_server(pid, address) || std::time::Instant::now() > deadline {
            return Err(LabError::Command {
                command: format!("busybox httpd -p {target}"),
                status: "not serving".to_string(),
                stderr: std::fs::read_to_string(log).unwrap_or_default(),
                hint: format!(
                    "the lab's apt repository server did not start; is port {REPO_PORT} on {address} taken? (log: {})",
                    log.display()
                ),
            });
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Whether `pid` is the repository server of the lab with bridge address `address`.
pub(crate) fn is_server(pid: u32, address: Ipv4Addr) -> bool {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    text.contains("httpd") && text.contains(&format!("{address}:{REPO_PORT}"))
}
