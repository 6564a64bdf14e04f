//! `kprov lab up`: bring a lab to its wanted state, idempotently.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::cgroup;
use crate::error::LabError;
use crate::fsutil::create_dir_mode;
use crate::layout::{lock_dir, HostLayout, Layout, MAX_HOSTS};
use crate::lock::LockGuard;
use crate::state::LabState;
use crate::status::{collect, host_running, LabStatus};
use crate::{base, boot, down, inventory, network, prereq, repo, rootfs, ssh, UpOptions};

/// How long hosts get to boot until their sshd answers.
const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// Which hosts `up` waits for until their sshd answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ready {
    /// Every host; one that does not answer in time fails `up`.
    All,
    /// The hosts started by this call; one that does not answer is only warned about.
    Started,
}

pub(crate) fn up(opts: &UpOptions, ready: Ready) -> Result<LabStatus, LabError> {
    crate::layout::validate_name(&opts.name)?;
    if opts.hosts == 0 || opts.hosts > MAX_HOSTS {
        return Err(LabError::InvalidHostCount {
            hosts: opts.hosts,
            max: MAX_HOSTS,
        });
    }
    crate::require_root()?;
    prereq::ensure()?;
    raise_inotify_limits(opts.hosts);
    let cgroups = cgroup::detect()?;
    let hierarchies = &cgroups.hierarchies;
    let _lock = LockGuard::acquire(&lock_dir().join(format!("{}.lock", opts.name)))?;
    let base = base::ensure(opts.mirror.as_deref())?;
    let repo_dir = repo::ensure(&base, opts.mirror.as_deref())?;
    let mut state = LabState::load_or_create(&opts.name, opts.hosts)?;
    let layout = state.layout();
    create_dir_mode(&layout.state_dir(), 0o700)?;
    let login_key = ssh::ensure_key(&layout.key(), &layout.name)?;
    network::ensure_bridge(&layout)?;

    let gateway = layout.gateway();
    if !state
        .repo_pid
        .is_some_and(|pid| repo::is_server(pid, gateway))
    {
        let pid = repo::serve(&repo_dir, gateway, &layout.repo_log())?;
        state.repo_pid = Some(pid);
        state.save()?;
        repo::wait_serving(pid, gateway, &layout.repo_log())?;
    }

    // Fewer hosts than last time: the extra ones go.
    for index in opts.hosts..state.hosts.max(opts.hosts) {
        let host = layout.host(index);
        down::stop_host(hierarchies, &state, &host)?;
        crate::fsutil::remove_tree(&host.dir)?;
        state.pids.remove(&host.name);
    }
    state.hosts = opts.hosts;
    state.save()?;

    let hosts: Vec<HostLayout> = (0..opts.hosts).map(|i| layout.host(i)).collect();
    let source = repo::source_line(&layout.repo_url());
    let mut known = Vec::new();
    let mut started = Vec::new();
    for host in &hosts {
        let host_key = if host_running(state.pids.get(&host.name), host) {
            tracing::debug!(host = %host.name, "already running");
            read_host_key(host)?
        } else {
            tracing::info!(lab = %layout.name, host = %host.name, address = %host.address, "starting lab host");
            down::stop_host(hierarchies, &state, host)?;
            state.pids.remove(&host.name);
            let host_key = rootfs::prepare(host, &login_key, &source)?;
            network::create_host(&layout, host)?;
            let procs = {
                let _cg = LockGuard::acquire(&lock_dir().join("cgroups.lock"))?;
                cgroup::create(&cgroups, &host.cgroup)?
            };
            let pids = boot::start(&layout, host, &base, &cgroups, &procs)?;
            state.pids.insert(host.name.clone(), pids);
            state.save()?;
            started.push(host.clone());
            host_key
        };
        known.push((IpAddr::V4(host.address), host_key));
    }
    ssh::write_known_hosts(&layout.known_hosts(), &known)?;
    inventory::write(&layout, &hosts)?;
    match ready {
        Ready::All => wait_ready(&layout, &state, &hosts)?,
        Ready::Started => {
            if let Err(err) = wait_ready(&layout, &state, &started) {
                tracing::warn!("{err}; the run reports that host unreachable");
            }
        }
    }
    Ok(collect(&state))
}

/// The public half of a running host's ed25519 host key.
fn read_host_key(host: &HostLayout) -> Result<String, LabError> {
    let path = host.upper().join("etc/ssh/ssh_host_ed25519_key.pub");
    let text = std::fs::read_to_string(&path).map_err(LabError::io("read", &path))?;
    let words: Vec<&str> = text.split_whitespace().take(2).collect();
    Ok(words.join(" "))
}

/// Waits until every host's sshd answers; fails early when a host's systemd is gone.
fn wait_ready(layout: &Layout, state: &LabState, hosts: &[HostLayout]) -> Result<(), LabError> {
    let start = Instant::now();
    let mut pending: Vec<&HostLayout> = hosts.iter().collect();
    while !pending.is_empty() {
        let mut still = Vec::new();
        for host in pending {
            if !host_running(state.pids.get(&host.name), host) {
                return Err(not_ready(
                    layout,
                    host,
                    "keep running (its systemd exited)",
                    start,
                ));
            }
            if !ssh::answers(IpAddr::V4(host.address), Duration::from_millis(500)) {
                still.push(host);
            }
        }
        pending = still;
        if let Some(host) = pending.first() {
            if start.elapsed() > READY_TIMEOUT {
                return Err(not_ready(layout, host, "answer over SSH", start));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    tracing::info!(lab = %layout.name, seconds = start.elapsed().as_secs_f32(), "all lab hosts answer over SSH");
    Ok(())
}

fn not_ready(layout: &Layout, host: &HostLayout, what: &'static str, start: Instant) -> LabError {
    LabError::HostNotReady {
        lab: layout.name.clone(),
        host: host.name.clone(),
        address: host.address.to_string(),
        what,
        seconds: start.elapsed().as_secs(),
        log: host.console_log(),
    }
}

/// Every host's systemd takes several inotify instances, all counted against root: the
/// kernel default of 128 stops a lab at about 20 hosts (systemd exits at boot). Raise the
/// machine's limits when they are lower than the lab needs, as kind and similar tools advise.
fn raise_inotify_limits(hosts: usize) {
    let wanted = [
        (
            "/proc/sys/fs/inotify/max_user_instances",
            64 * hosts.max(8) + 128,
        ),
        (
            "/proc/sys/fs/inotify/max_user_watches",
            8192 * hosts.max(8) + 65536,
        ),
    ];
    for (path, want) in wanted {
        let current = std::fs::read_to_string(path)
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok())
            .unwrap_or(0);
        if current < want {
            match std::fs::write(path, want.to_string()) {
                Ok(()) => tracing::info!(
                    path,
                    from = current,
                    to = want,
                    "raised inotify limit for the lab"
                ),
                Err(err) => {
                    tracing::warn!(path, %err, "cannot raise inotify limit; big labs may fail to boot")
                }
            }
        }
    }
}
