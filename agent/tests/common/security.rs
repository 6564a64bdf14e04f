//! Helpers for the security tests: a registry + agent (optionally under a
//! wrapper such as `setpriv`), security contexts, exec with stderr, capability
//! masks, and a static probe binary built with gcc.

use super::agent::TestAgent;
use super::pods::{pull, Rt};
use super::registry::Registry;
use kprov_agent::api;
use std::path::{Path, PathBuf};

/// A registry with busybox pushed and an agent (started under `wrapper`) that pulled it.
pub async fn setup_wrapped(net: u8, wrapper: &[&str]) -> (Registry, TestAgent, String) {
    let reg = Registry::start();
    let base = super::images::gzip(super::images::busybox_tar());
    super::images::push(&reg.host, "test/busybox:1", &[base], &["/bin/sh"], "amd64").await;
    let hosts = format!("[registry.hosts.\"{}\"]\nplain_http = true\n", reg.host);
    let a = TestAgent::start_wrapped(&hosts, net, true, wrapper);
    let image = format!("{}/test/busybox:1", reg.host);
    pull(&a, &image).await;
    (reg, a, image)
}

/// The container's security context (created when missing).
pub fn sc(cfg: &mut api::ContainerConfig) -> &mut api::LinuxContainerSecurityContext {
    cfg.linux
        .get_or_insert_with(Default::default)
        .security_context
        .get_or_insert_with(Default::default)
}

/// The sandbox's security context (created when missing).
pub fn pod_sc(cfg: &mut api::PodSandboxConfig) -> &mut api::LinuxSandboxSecurityContext {
    cfg.linux
        .get_or_insert_with(Default::default)
        .security_context
        .get_or_insert_with(Default::default)
}

/// A seccomp profile of `kind` (`localhost_ref` for Localhost).
pub fn seccomp(
    kind: api::security_profile::ProfileType,
    localhost_ref: &str,
) -> api::SecurityProfile {
    api::SecurityProfile {
        profile_type: kind as i32,
        localhost_ref: localhost_ref.into(),
    }
}

/// ExecSync: (stdout, stderr, exit code).
pub async fn exec_full(rt: &mut Rt, id: &str, cmd: &[&str]) -> (String, String, i32) {
    let r = rt
        .exec_sync(api::ExecSyncRequest {
            container_id: id.into(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            timeout: 10,
        })
        .await
        .expect("ExecSync")
        .into_inner();
    (
        String::from_utf8_lossy(&r.stdout).into_owned(),
        String::from_utf8_lossy(&r.stderr).into_owned(),
        r.exit_code,
    )
}

/// The hex mask of `field` (CapEff, CapBnd, …) in a /proc/<pid>/status text.
pub fn cap_mask(status: &str, field: &str) -> u64 {
    let v = status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in {status}"));
    u64::from_str_radix(v.trim(), 16).unwrap()
}

/// Bit numbers of some capabilities (linux/capability.h).
pub const CAP_CHOWN: u32 = 0;
pub const CAP_NET_ADMIN: u32 = 12;
pub const CAP_SYS_ADMIN: u32 = 21;
pub const CAP_SYS_RESOURCE: u32 = 24;
pub const CAP_SYS_TIME: u32 = 25;

/// Builds a static binary from C source `src` into `dir` (gcc, libc6-dev).
pub fn static_probe(dir: &Path, name: &str, src: &str) -> PathBuf {
    let c = dir.join(format!("{name}.c"));
    std::fs::write(&c, src).unwrap();
    let out = dir.join(name);
    let st = std::process::Command::new("gcc")
        .args(["-static", "-O1", "-o"])
        .arg(&out)
        .arg(&c)
        .status()
        .expect("gcc (Debian packages gcc and libc6-dev)");
    assert!(st.success(), "gcc -static {}", c.display());
    out
}

/// A read-only CRI bind mount of `host` at `container`.
pub fn ro_mount(host: &Path, container: &str) -> api::Mount {
    api::Mount {
        container_path: container.into(),
        host_path: host.display().to_string(),
        readonly: true,
        ..Default::default()
    }
}
