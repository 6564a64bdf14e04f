//! Building the OCI runtime `config.json` from a CRI CreateContainer request.
//! The spec is assembled as JSON and checked by parsing it into `oci_spec`'s `Spec`.

use super::{caps, devices, propagation, resolve_user, seccomp};
use crate::api;
use crate::config::CgroupDriver;
use crate::image::ImageRuntimeConfig;
use crate::state::SandboxRecord;
use serde_json::{json, Value};
use std::path::Path;

const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Everything the spec depends on.
pub struct SpecInput<'a> {
    pub id: &'a str,
    pub config: &'a api::ContainerConfig,
    pub sandbox: &'a SandboxRecord,
    pub image: &'a ImageRuntimeConfig,
    pub rootfs: &'a Path,
    pub cgroup_driver: CgroupDriver,
    /// The lowest oom_score_adj the agent may ask for (its own), when restricted.
    pub min_oom_score_adj: Option<i64>,
    /// PID of the target container for a TARGET pid namespace.
    pub target_pid: Option<i32>,
    /// The capabilities the agent holds: what privileged and `ALL` give.
    pub held_caps: &'a [String],
}

/// The built spec plus facts the caller records.
pub struct BuiltSpec {
    pub spec: Value,
    pub uid: u32,
    pub gid: u32,
    pub notes: String,
    pub cgroups_path: String,
}

/// The cgroups path for container `id` under `parent` for the given driver.
pub fn cgroups_path(driver: CgroupDriver, parent: &str, id: &str) -> String {
    match driver {
        CgroupDriver::Cgroupfs if parent.is_empty() => format!("/kprov/{id}"),
        CgroupDriver::Cgroupfs => format!("{}/kprov-{id}", parent.trim_end_matches('/')),
        CgroupDriver::Systemd if parent.is_empty() => format!("system.slice:kprov:{id}"),
        CgroupDriver::Systemd => format!("{}:kprov:{id}", parent.trim_start_matches('/')),
    }
}

/// OCI `linux.resources` (cpu, memory, unified) from CRI resources.
pub fn linux_resources_json(r: &api::LinuxContainerResources) -> Value {
    let mut cpu = serde_json::Map::new();
    if r.cpu_shares > 0 {
        cpu.insert("shares".into(), json!(r.cpu_shares));
    }
    if r.cpu_quota != 0 {
        cpu.insert("quota".into(), json!(r.cpu_quota));
    }
    if r.cpu_period > 0 {
        cpu.insert("period".into(), json!(r.cpu_period));
    }
    if !r.cpuset_cpus.is_empty() {
        cpu.insert("cpus".into(), json!(r.cpuset_cpus));
    }
    if !r.cpuset_mems.is_empty() {
        cpu.insert("mems".into(), json!(r.cpuset_mems));
    }
    let mut memory = serde_json::Map::new();
    if r.memory_limit_in_bytes > 0 {
        memory.insert("limit".into(), json!(r.memory_limit_in_bytes));
    }
    if r.memory_swap_limit_in_bytes > 0 {
        memory.insert("swap".into(), json!(r.memory_swap_limit_in_bytes));
    }
    let mut v = json!({"cpu": cpu, "memory": memory});
    if !r.unified.is_empty() {
        v["unified"] = json!(r.unified);
    }
    v
}

/// Builds the runtime spec for a container.
pub fn build_spec(i: &SpecInput<'_>) -> Result<BuiltSpec, String> {
    let c = i.config;
    let linux = c.linux.clone().unwrap_or_default();
    let sc = linux.security_context.clone().unwrap_or_default();
    let res = linux.resources.clone().unwrap_or_default();
    let mut notes = Vec::new();

    // Command: CRI command replaces the entrypoint; CRI args replace Cmd.
    let mut args: Vec<String> = if c.command.is_empty() {
        i.image.entrypoint.clone()
    } else {
        c.command.clone()
    };
    if !c.args.is_empty() {
        args.extend(c.args.iter().cloned());
    } else if c.command.is_empty() {
        args.extend(i.image.cmd.iter().cloned());
    }
    if args.is_empty() {
        return Err("no command: the request and the image give none".into());
    }

    let mut env: Vec<String> = i.image.env.clone();
    for kv in &c.envs {
        env.retain(|e| e.split_once('=').map(|(k, _)| k) != Some(kv.key.as_str()));
        env.push(format!("{}={}", kv.key, kv.value));
    }
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, DEFAULT_PATH.into());
    }
    if !env.iter().any(|e| e.starts_with("HOSTNAME=")) && !i.sandbox.hostname.is_empty() {
        env.push(format!("HOSTNAME={}", i.sandbox.hostname));
    }

    let (mut uid, mut gid) = resolve_user(i.rootfs, &i.image.user)?;
    if !sc.run_as_username.is_empty() {
        (uid, gid) = resolve_user(i.rootfs, &sc.run_as_username)?;
    }
    if let Some(u) = &sc.run_as_user {
        uid = u32::try_from(u.value)
            .map_err(|_| format!("run_as_user {} is out of range", u.value))?;
        gid = resolve_user(i.rootfs, &uid.to_string())
            .map(|x| x.1)
            .unwrap_or(0);
    }
    if let Some(g) = &sc.run_as_group {
        if sc.run_as_user.is_none() && sc.run_as_username.is_empty() {
            return Err("run_as_group is set without run_as_user or run_as_username".into());
        }
        gid = u32::try_from(g.value)
            .map_err(|_| format!("run_as_group {} is out of range", g.value))?;
    }
    let additional: Vec<i64> = sc.supplemental_groups.clone();

    let caps = caps::container_caps(sc.privileged, sc.capabilities.as_ref(), i.held_caps)?;

    let mut oom = res.oom_score_adj;
    if let Some(min) = i.min_oom_score_adj {
        if oom < min {
            notes.push(format!("oom_score_adj {oom} clamped to {min}"));
            tracing::info!(
                container = i.id,
                requested = oom,
                applied = min,
                "clamped oom_score_adj"
            );
            oom = min;
        }
    }

    let cwd = if !c.working_dir.is_empty() {
        c.working_dir.clone()
    } else if !i.image.working_dir.is_empty() {
        i.image.working_dir.clone()
    } else {
        "/".into()
    };

    let mut process = json!({
        "terminal": c.tty,
        "user": {"uid": uid, "gid": gid, "additionalGids": additional},
        "args": args,
        "env": env,
        "cwd": cwd,
        "capabilities": {
            "bounding": caps, "effective": caps, "permitted": caps,
        },
        "noNewPrivileges": sc.no_new_privs,
        "oomScoreAdj": oom,
    });
    if sc.privileged {
        process["noNewPrivileges"] = json!(false);
    }

    // Namespaces.
    let ns_opts = sc.namespace_options.clone().unwrap_or_default();
    let mut namespaces = vec![json!({"type": "mount"})];
    match api::NamespaceMode::try_from(ns_opts.pid).unwrap_or(api::NamespaceMode::Container) {
        api::NamespaceMode::Node => {}
        api::NamespaceMode::Target => {
            let pid = i
                .target_pid
                .ok_or("pid namespace TARGET: target container is not running")?;
            namespaces.push(json!({"type": "pid", "path": format!("/proc/{pid}/ns/pid")}));
        }
        api::NamespaceMode::Pod => {
            let pin = i.sandbox.pidns.as_ref().ok_or_else(|| {
                format!(
                    "pid namespace POD: sandbox {} has no pod PID namespace (it was created \
                     with its own pid mode CONTAINER or NODE; give the container the same mode)",
                    i.sandbox.id
                )
            })?;
            namespaces.push(json!({"type": "pid", "path": pin}));
        }
        api::NamespaceMode::Container => namespaces.push(json!({"type": "pid"})),
    }
    for (kind, pin) in [
        ("network", &i.sandbox.netns),
        ("ipc", &i.sandbox.ipcns),
        ("uts", &i.sandbox.utsns),
    ] {
        if let Some(p) = pin {
            namespaces.push(json!({"type": kind, "path": p}));
        }
    }
    if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        namespaces.push(json!({"type": "cgroup"}));
    }

    // Mounts.
    let sb = &i.sandbox.dir;
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", if sc.privileged { "rw" } else { "ro" }]}),
        json!({"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", if sc.privileged { "rw" } else { "ro" }]}),
    ];
    let shm = sb.join("shm");
    if i.sandbox.host_ipc || !shm.exists() {
        mounts.push(json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}));
    } else {
        mounts.push(json!({"destination": "/dev/shm", "type": "bind", "source": shm, "options": ["rbind", "rprivate", "rw"]}));
    }
    let user_dests: Vec<&str> = c.mounts.iter().map(|m| m.container_path.as_str()).collect();
    for f in ["hostname", "resolv.conf", "hosts"] {
        let dest = format!("/etc/{f}");
        if !user_dests.contains(&dest.as_str()) && sb.join(f).exists() {
            let ro = if sc.readonly_rootfs { "ro" } else { "rw" };
            mounts.push(json!({"destination": dest, "type": "bind", "source": sb.join(f), "options": ["rbind", "rprivate", ro]}));
        }
    }
    let mut rootfs_propagation: Option<&str> = None;
    for m in &c.mounts {
        if m.image
            .as_ref()
            .map(|s| !s.image.is_empty())
            .unwrap_or(false)
        {
            return Err(format!(
                "mount {}: image volumes are not supported",
                m.container_path
            ));
        }
        if !Path::new(&m.host_path).exists() {
            return Err(format!(
                "mount {}: host path {:?} does not exist",
                m.container_path, m.host_path
            ));
        }
        let (prop, rootfs_prop) = propagation::bind_propagation(
            &m.host_path,
            api::MountPropagation::try_from(m.propagation)
                .unwrap_or(api::MountPropagation::PropagationPrivate),
        )?;
        // rshared wins over rslave: the container's own mounts must reach the host.
        if rootfs_prop == Some("rshared") || (rootfs_prop.is_some() && rootfs_propagation.is_none())
        {
            rootfs_propagation = rootfs_prop;
        }
        let mut opts = vec!["rbind", prop, if m.readonly { "ro" } else { "rw" }];
        if m.recursive_read_only {
            opts.push("rro");
        }
        mounts.push(json!({"destination": m.container_path, "type": "bind", "source": m.host_path, "options": opts}));
    }

    // Devices: a privileged container gets every host device and may use any.
    let mut devices = if sc.privileged {
        devices::host_devices(Path::new("/dev"))
    } else {
        Vec::new()
    };
    let mut dev_rules = vec![json!({"allow": sc.privileged, "access": "rwm"})];
    for d in &c.devices {
        let node = devices::device_node(Path::new(&d.host_path))?;
        let (kind, major, minor, _) = node;
        let perms = if d.permissions.is_empty() {
            "rwm".to_string()
        } else {
            d.permissions.clone()
        };
        devices.retain(|x| x["path"] != d.container_path.as_str());
        devices.push(devices::device_json(&d.container_path, node));
        dev_rules.push(
            json!({"allow": true, "type": kind, "major": major, "minor": minor, "access": perms}),
        );
    }

    let mut resources = linux_resources_json(&res);
    resources["devices"] = json!(dev_rules);

    let cgroups_path = cgroups_path(i.cgroup_driver, &i.sandbox.cgroup_parent, i.id);
    let mut linux_v = json!({
        "namespaces": namespaces,
        "resources": resources,
        "cgroupsPath": cgroups_path,
        "devices": devices,
        "sysctl": {},
    });
    if let Some(p) = rootfs_propagation {
        linux_v["rootfsPropagation"] = json!(p);
    }
    if !sc.privileged {
        let masked: Vec<String> = if sc.masked_paths.is_empty() {
            MASKED_PATHS.iter().map(|s| s.to_string()).collect()
        } else {
            sc.masked_paths.clone()
        };
        let ro: Vec<String> = if sc.readonly_paths.is_empty() {
            READONLY_PATHS.iter().map(|s| s.to_string()).collect()
        } else {
            sc.readonly_paths.clone()
        };
        linux_v["maskedPaths"] = json!(masked);
        linux_v["readonlyPaths"] = json!(ro);
        let profile = sc.seccomp.clone().unwrap_or_default();
        match api::security_profile::ProfileType::try_from(profile.profile_type) {
            Ok(api::security_profile::ProfileType::Unconfined) => {}
            Ok(api::security_profile::ProfileType::Localhost) => {
                let text = std::fs::read_to_string(&profile.localhost_ref)
                    .map_err(|e| format!("seccomp profile {}: {e}", profile.localhost_ref))?;
                let v: Value = serde_json::from_str(&text)
                    .map_err(|e| format!("seccomp profile {}: {e}", profile.localhost_ref))?;
                linux_v["seccomp"] = v;
            }
            _ => {
                // RuntimeDefault, unless the deprecated path field says unconfined.
                #[allow(deprecated)]
                let legacy_default = sc.seccomp_profile_path == "runtime/default";
                if sc.seccomp.is_some() || legacy_default {
                    linux_v["seccomp"] = seccomp::runtime_default(&caps);
                }
            }
        }
    }
    linux_v["sysctl"] = json!(i.sandbox.sysctls);

    let spec = json!({
        "ociVersion": "1.0.2",
        "process": process,
        "root": {"path": "rootfs", "readonly": sc.readonly_rootfs},
        "mounts": mounts,
        "annotations": {"io.kubernetes.cri.container-type": "container", "io.kubernetes.cri.sandbox-id": i.sandbox.id},
        "linux": linux_v,
    });
    // Type-check against the OCI runtime spec.
    serde_json::from_value::<oci_spec::runtime::Spec>(spec.clone())
        .map_err(|e| format!("generated an invalid OCI spec: {e}"))?;
    Ok(BuiltSpec {
        spec,
        uid,
        gid,
        notes: notes.join("; "),
        cgroups_path,
    })
}
