//! Mount propagation of CRI mounts with real runc, as the CRI conformance suite
//! checks it: a privileged container with a host directory (itself a bind mount,
//! made rshared or rprivate on the host) mounted `rprivate`, `rslave` or
//! `rshared`. A mount made on the host afterwards shows in the container for
//! rslave and rshared only; a mount made in the container shows on the host for
//! rshared only. ContainerStatus reports the propagation. A source that is not
//! shared is refused for rshared with the command that fixes it.

mod common;

use common::leaks::assert_no_leaks;
use common::pods::*;
use common::security::*;
use kprov_agent::api;
use kprov_agent::api::MountPropagation as P;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use std::path::Path;

fn bind(src: &Path, dst: &Path, flags: MsFlags) {
    mount(
        Some(src),
        dst,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .unwrap();
    if !flags.is_empty() {
        mount(
            None::<&str>,
            dst,
            None::<&str>,
            flags | MsFlags::MS_REC,
            None::<&str>,
        )
        .unwrap();
    }
}

async fn check(rt: &mut Rt, image: &str, pod: &str, pod_cfg: &api::PodSandboxConfig, prop: P) {
    let host = tempfile::tempdir().unwrap();
    let src = host.path().join("mnt");
    let host_mnt = src.join("propagationMnt");
    let flag_dir = host.path().join("propagationSrcDir");
    std::fs::create_dir_all(&host_mnt).unwrap();
    std::fs::create_dir_all(&flag_dir).unwrap();
    std::fs::write(flag_dir.join("flagFile"), b"").unwrap();
    let shared = prop != P::PropagationPrivate;
    bind(
        &src,
        &src,
        if shared {
            MsFlags::MS_SHARED
        } else {
            MsFlags::MS_PRIVATE
        },
    );

    let name = format!("prop-{}", prop as i32);
    let mut cfg = container_config(image, &name, &["sleep", "3600"]);
    sc(&mut cfg).privileged = true;
    let src_s = src.display().to_string();
    cfg.mounts.push(api::Mount {
        container_path: src_s.clone(),
        host_path: src_s.clone(),
        propagation: prop as i32,
        ..Default::default()
    });
    let id = start_container(rt, pod, pod_cfg, cfg).await;
    let st = status(rt, &id).await.status.unwrap();
    assert_eq!(st.mounts.len(), 1);
    assert_eq!(
        (st.mounts[0].host_path.as_str(), st.mounts[0].propagation),
        (src_s.as_str(), prop as i32)
    );

    // Host → container.
    bind(&flag_dir, &host_mnt, MsFlags::empty());
    let (out, _, _) = exec_full(rt, &id, &["ls", "-A", &host_mnt.display().to_string()]).await;
    assert_eq!(
        out.trim().is_empty(),
        prop == P::PropagationPrivate,
        "{prop:?} host→container: {out:?}"
    );

    // Container → host.
    let in_container = src.join("containerMntPoint");
    let c = in_container.display().to_string();
    let (_, err, code) = exec_full(
        rt,
        &id,
        &[
            "sh",
            "-c",
            &format!("mkdir -p {c} && mount --bind /etc {c}"),
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let seen = std::fs::read_dir(&in_container).unwrap().count() > 0;
    assert_eq!(
        seen,
        prop == P::PropagationBidirectional,
        "{prop:?} container→host"
    );

    rt.remove_container(api::RemoveContainerRequest { container_id: id })
        .await
        .unwrap();
    for m in [&in_container, &host_mnt, &src] {
        let _ = umount2(m.as_path(), MntFlags::MNT_DETACH);
    }
}

#[tokio::test]
async fn rprivate_rslave_and_rshared_propagate_as_the_cri_says() {
    let (_reg, a, image) = setup_wrapped(32, &[]).await;
    let mut rt = a.runtime().await;
    let mut pod_cfg = sandbox_config(&a, "propagation");
    pod_sc(&mut pod_cfg).privileged = true;
    let pod = run_pod(&mut rt, &pod_cfg).await;
    for prop in [
        P::PropagationPrivate,
        P::PropagationHostToContainer,
        P::PropagationBidirectional,
    ] {
        check(&mut rt, &image, &pod, &pod_cfg, prop).await;
    }

    // rshared from a private mount: refused, naming the fix.
    let host = tempfile::tempdir().unwrap();
    bind(host.path(), host.path(), MsFlags::MS_PRIVATE);
    let mut cfg = container_config(&image, "not-shared", &["sleep", "3600"]);
    cfg.mounts.push(api::Mount {
        container_path: "/vol".into(),
        host_path: host.path().display().to_string(),
        propagation: P::PropagationBidirectional as i32,
        ..Default::default()
    });
    let e = rt
        .create_container(api::CreateContainerRequest {
            pod_sandbox_id: pod.clone(),
            config: Some(cfg),
            sandbox_config: Some(pod_cfg.clone()),
        })
        .await
        .unwrap_err();
    assert!(
        e.message().contains("not a shared mount") && e.message().contains("mount --make-rshared"),
        "{e:?}"
    );
    let _ = umount2(host.path(), MntFlags::MNT_DETACH);

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
