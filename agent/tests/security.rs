//! Security contexts through the CRI with real runc: privileged containers and
//! `ALL` capabilities get exactly the capabilities the agent holds — the agent
//! runs under `setpriv --bounding-set -sys_time` (and the test machines lack
//! CAP_SYS_RESOURCE too), so runc would fail if the agent asked for more; host
//! devices and a writable /sys for privileged containers; added and dropped
//! capabilities; and the RuntimeDefault seccomp allow-list (EPERM outside it,
//! capability-unlocked calls, Unconfined and Localhost as asked, ignored when
//! privileged).

mod common;

use common::leaks::assert_no_leaks;
use common::pods::*;
use common::security::*;
use kprov_agent::api;
use kprov_agent::api::security_profile::ProfileType;

const BLOCK_SETHOSTNAME: &str = r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["sethostname"],"action":"SCMP_ACT_ERRNO"}]}"#;
const BLOCK_CHMOD: &str = r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["chmod","fchmodat","fchmodat2"],"action":"SCMP_ACT_ERRNO"}]}"#;

/// add_key(2) is outside the allow-list but needs no capability: it tells seccomp apart.
const ADD_KEY: &str = r#"
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
int main(void) {
    long r = syscall(SYS_add_key, "user", "kprov-probe", "v", 1, -2 /* process keyring */);
    if (r < 0) { printf("%s\n", errno == EPERM ? "EPERM" : strerror(errno)); return 1; }
    printf("key %ld\n", r);
    return 0;
}
"#;

fn named(image: &str, name: &str, cmd: &[&str]) -> api::ContainerConfig {
    container_config(image, name, cmd)
}

fn caps(add: &[&str], drop: &[&str]) -> Option<api::Capability> {
    Some(api::Capability {
        add_capabilities: add.iter().map(|s| s.to_string()).collect(),
        drop_capabilities: drop.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    })
}

async fn status_field(rt: &mut Rt, id: &str, field: &str) -> u64 {
    let (out, _, code) = exec_full(rt, id, &["cat", "/proc/self/status"]).await;
    assert_eq!(code, 0);
    cap_mask(&out, field)
}

#[tokio::test]
async fn privileged_and_all_capabilities_are_what_the_runtime_holds() {
    let (_reg, a, image) = setup_wrapped(30, &["setpriv", "--bounding-set", "-sys_time"]).await;
    let agent_status = std::fs::read_to_string(format!("/proc/{}/status", a.pid())).unwrap();
    let held = cap_mask(&agent_status, "CapBnd") & cap_mask(&agent_status, "CapEff");
    assert_eq!(
        held & (1 << CAP_SYS_TIME),
        0,
        "the agent runs without CAP_SYS_TIME"
    );
    let mut rt = a.runtime().await;
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("block-sethostname.json");
    std::fs::write(&profile, BLOCK_SETHOSTNAME).unwrap();

    let mut pod_cfg = sandbox_config(&a, "priv");
    pod_sc(&mut pod_cfg).privileged = true;
    let pod = run_pod(&mut rt, &pod_cfg).await;

    // Privileged, with a Localhost profile that blocks sethostname: the profile is ignored.
    let mut cfg = named(&image, "privileged", &["sleep", "3600"]);
    sc(&mut cfg).privileged = true;
    sc(&mut cfg).seccomp = Some(seccomp(
        ProfileType::Localhost,
        &profile.display().to_string(),
    ));
    let p = start_container(&mut rt, &pod, &pod_cfg, cfg).await;
    assert_eq!(status_field(&mut rt, &p, "CapEff").await, held);
    assert_eq!(status_field(&mut rt, &p, "CapBnd").await, held);
    assert_eq!(
        status_field(&mut rt, &p, "Seccomp").await,
        0,
        "no seccomp when privileged"
    );
    let (_, err, code) = exec_full(&mut rt, &p, &["hostname", "renamed-by-priv"]).await;
    assert_eq!(code, 0, "sethostname allowed despite the profile: {err}");
    // Every host device, and /sys writable.
    assert!(std::path::Path::new("/dev/loop-control").exists());
    assert_eq!(
        exec_full(&mut rt, &p, &["test", "-c", "/dev/loop-control"])
            .await
            .2,
        0
    );
    let (mounts, _, _) = exec_full(&mut rt, &p, &["cat", "/proc/mounts"]).await;
    let sys = mounts
        .lines()
        .find(|l| l.split(' ').nth(1) == Some("/sys"))
        .unwrap();
    assert!(sys.split(' ').nth(3).unwrap().starts_with("rw"), "{sys}");
    // Network management (what the conformance suite checks for privileged).
    let (_, err, code) = exec_full(
        &mut rt,
        &p,
        &["ip", "link", "add", "kpt-priv0", "type", "bridge"],
    )
    .await;
    assert_eq!(code, 0, "privileged may add a link: {err}");

    // ALL, not privileged: every held capability, seccomp and read-only /sys stay.
    let mut cfg = named(&image, "all", &["sleep", "3600"]);
    sc(&mut cfg).capabilities = caps(&["ALL"], &[]);
    let all = start_container(&mut rt, &pod, &pod_cfg, cfg).await;
    assert_eq!(status_field(&mut rt, &all, "CapEff").await, held);
    assert_eq!(status_field(&mut rt, &all, "Seccomp").await, 2);
    assert_eq!(
        exec_full(&mut rt, &all, &["test", "-c", "/dev/loop-control"])
            .await
            .2,
        1
    );

    // ALL minus one.
    let mut cfg = named(&image, "all-but-chown", &["sleep", "3600"]);
    sc(&mut cfg).capabilities = caps(&["ALL"], &["CHOWN"]);
    let c = start_container(&mut rt, &pod, &pod_cfg, cfg).await;
    assert_eq!(
        status_field(&mut rt, &c, "CapEff").await,
        held & !(1 << CAP_CHOWN)
    );

    // The default set; NET_ADMIN added; everything dropped.
    let d = start_container(
        &mut rt,
        &pod,
        &pod_cfg,
        named(&image, "default", &["sleep", "3600"]),
    )
    .await;
    let eff = status_field(&mut rt, &d, "CapEff").await;
    assert_ne!(eff & (1 << CAP_CHOWN), 0);
    assert_eq!(
        eff & ((1 << CAP_NET_ADMIN) | (1 << CAP_SYS_ADMIN)),
        0,
        "{eff:x}"
    );
    let (_, _, code) = exec_full(
        &mut rt,
        &d,
        &["ip", "link", "add", "kpt-def0", "type", "bridge"],
    )
    .await;
    assert_ne!(code, 0, "no NET_ADMIN by default");
    let mut cfg = named(&image, "net-admin", &["sleep", "3600"]);
    sc(&mut cfg).capabilities = caps(&["NET_ADMIN"], &[]);
    let n = start_container(&mut rt, &pod, &pod_cfg, cfg).await;
    let (_, err, code) = exec_full(
        &mut rt,
        &n,
        &["ip", "link", "add", "kpt-net0", "type", "bridge"],
    )
    .await;
    assert_eq!(code, 0, "NET_ADMIN added: {err}");
    let mut cfg = named(&image, "none", &["sleep", "3600"]);
    sc(&mut cfg).capabilities = caps(&[], &["ALL"]);
    let none = start_container(&mut rt, &pod, &pod_cfg, cfg).await;
    assert_eq!(status_field(&mut rt, &none, "CapEff").await, 0);
    assert_eq!(status_field(&mut rt, &none, "CapBnd").await, 0);
    let mut cfg = named(&image, "no-net-raw", &["sleep", "3600"]);
    sc(&mut cfg).capabilities = caps(&[], &["NET_RAW"]);
    let r = start_container(&mut rt, &pod, &pod_cfg, cfg).await;
    let (_, err, code) = exec_full(&mut rt, &r, &["ping", "-c", "1", "127.0.0.1"]).await;
    assert!(
        code != 0 && err.contains("permission denied"),
        "ping without NET_RAW: {err}"
    );
    let (_, err, code) = exec_full(&mut rt, &d, &["ping", "-c", "1", "127.0.0.1"]).await;
    assert_eq!(code, 0, "ping with the default set: {err}");

    // A capability the runtime lacks, asked for by name: a clear error, not runc's.
    let mut cfg = named(&image, "sys-time", &["sleep", "3600"]);
    sc(&mut cfg).capabilities = caps(&["SYS_TIME"], &[]);
    let e = rt
        .create_container(api::CreateContainerRequest {
            pod_sandbox_id: pod.clone(),
            config: Some(cfg),
            sandbox_config: Some(pod_cfg.clone()),
        })
        .await
        .unwrap_err();
    assert!(e.message().contains("CAP_SYS_TIME"), "{e:?}");

    rt.stop_pod_sandbox(api::StopPodSandboxRequest {
        pod_sandbox_id: pod.clone(),
    })
    .await
    .unwrap();
    rt.remove_pod_sandbox(api::RemovePodSandboxRequest {
        pod_sandbox_id: pod,
    })
    .await
    .unwrap();
    assert_no_leaks(&a);
}

#[tokio::test]
async fn runtime_default_seccomp_is_an_allow_list() {
    let (_reg, a, image) = setup(31).await;
    let mut rt = a.runtime().await;
    let dir = tempfile::tempdir().unwrap();
    let probe = static_probe(dir.path(), "add_key", ADD_KEY);
    let chmod_profile = dir.path().join("block-chmod.json");
    std::fs::write(&chmod_profile, BLOCK_CHMOD).unwrap();
    let pod_cfg = sandbox_config(&a, "seccomp");
    let pod = run_pod(&mut rt, &pod_cfg).await;
    let with = |name: &str, profile: api::SecurityProfile, add: &[&str]| {
        let mut cfg = named(&image, name, &["sleep", "3600"]);
        cfg.mounts.push(ro_mount(&probe, "/add_key"));
        sc(&mut cfg).seccomp = Some(profile);
        sc(&mut cfg).capabilities = caps(add, &[]);
        cfg
    };

    // RuntimeDefault: filtered; outside the list → EPERM; ordinary work runs.
    let d = start_container(
        &mut rt,
        &pod,
        &pod_cfg,
        with("default", seccomp(ProfileType::RuntimeDefault, ""), &[]),
    )
    .await;
    assert_eq!(status_field(&mut rt, &d, "Seccomp").await, 2);
    let (out, _, code) = exec_full(&mut rt, &d, &["/add_key"]).await;
    assert_eq!((out.trim(), code), ("EPERM", 1));
    let (_, err, code) = exec_full(&mut rt, &d, &["unshare", "-U", "true"]).await;
    assert_ne!(code, 0);
    assert!(err.contains("Operation not permitted"), "{err}");
    let (_, err, code) = exec_full(&mut rt, &d, &["hostname", "not-allowed"]).await;
    assert_ne!(code, 0, "sethostname without SYS_ADMIN: {err}");
    let (out, _, code) = exec_full(
        &mut rt,
        &d,
        &["sh", "-c", "mkdir -p /tmp/w && cd /tmp/w && echo data > f && cp f g && tar cf t.tar f g && sha256sum t.tar | wc -c && ps | wc -l >/dev/null && date >/dev/null && echo done"],
    )
    .await;
    assert_eq!((out.lines().last(), code), (Some("done"), 0), "{out}");

    // RuntimeDefault with SYS_ADMIN: the calls it unlocks are allowed.
    let s = start_container(
        &mut rt,
        &pod,
        &pod_cfg,
        with(
            "sys-admin",
            seccomp(ProfileType::RuntimeDefault, ""),
            &["SYS_ADMIN"],
        ),
    )
    .await;
    let (_, err, code) = exec_full(&mut rt, &s, &["hostname", "set-with-sys-admin"]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        exec_full(&mut rt, &s, &["unshare", "-U", "true"]).await.2,
        0
    );

    // Unconfined: the same calls succeed, so the profile is what refused them.
    let u = start_container(
        &mut rt,
        &pod,
        &pod_cfg,
        with("unconfined", seccomp(ProfileType::Unconfined, ""), &[]),
    )
    .await;
    assert_eq!(status_field(&mut rt, &u, "Seccomp").await, 0);
    let (out, _, code) = exec_full(&mut rt, &u, &["/add_key"]).await;
    assert!(out.starts_with("key ") && code == 0, "{out}");
    assert_eq!(
        exec_full(&mut rt, &u, &["unshare", "-U", "true"]).await.2,
        0
    );

    // No profile at all: unconfined (the CRI's nil profile).
    let mut cfg = named(&image, "nil-profile", &["sleep", "3600"]);
    sc(&mut cfg).seccomp = None;
    let n = start_container(&mut rt, &pod, &pod_cfg, cfg).await;
    assert_eq!(status_field(&mut rt, &n, "Seccomp").await, 0);
    // Unconfined with SYS_ADMIN may set the hostname; a Localhost profile blocking
    // sethostname stops it despite SYS_ADMIN.
    let us = start_container(
        &mut rt,
        &pod,
        &pod_cfg,
        with(
            "unconfined-admin",
            seccomp(ProfileType::Unconfined, ""),
            &["SYS_ADMIN"],
        ),
    )
    .await;
    assert_eq!(
        exec_full(&mut rt, &us, &["hostname", "unconfined-admin"])
            .await
            .2,
        0
    );
    let block = dir.path().join("block-sethostname.json");
    std::fs::write(&block, BLOCK_SETHOSTNAME).unwrap();
    let bs = start_container(
        &mut rt,
        &pod,
        &pod_cfg,
        with(
            "blocked-admin",
            seccomp(ProfileType::Localhost, &block.display().to_string()),
            &["SYS_ADMIN"],
        ),
    )
    .await;
    let (_, err, code) = exec_full(&mut rt, &bs, &["hostname", "blocked-admin"]).await;
    assert!(
        code != 0 && err.contains("Operation not permitted"),
        "{err}"
    );

    // Localhost: the file's profile.
    let l = start_container(
        &mut rt,
        &pod,
        &pod_cfg,
        with(
            "localhost",
            seccomp(ProfileType::Localhost, &chmod_profile.display().to_string()),
            &[],
        ),
    )
    .await;
    let (_, err, code) = exec_full(&mut rt, &l, &["chmod", "400", "/tmp"]).await;
    assert_ne!(code, 0);
    assert!(err.contains("Operation not permitted"), "{err}");
    assert_eq!(
        exec_full(&mut rt, &l, &["/add_key"]).await.2,
        0,
        "only chmod is blocked"
    );

    rt.stop_pod_sandbox(api::StopPodSandboxRequest {
        pod_sandbox_id: pod.clone(),
    })
    .await
    .unwrap();
    rt.remove_pod_sandbox(api::RemovePodSandboxRequest {
        pod_sandbox_id: pod,
    })
    .await
    .unwrap();
    assert_no_leaks(&a);
}
