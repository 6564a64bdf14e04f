//! An agent whose root_dir is on overlayfs (a nested container, a lab host)
//! cannot mount container rootfs overlays there: CreateContainer fails with an
//! error that names the cause and the fix, and nothing is left behind.

mod common;

use common::leaks::assert_no_leaks;
use common::pods::*;
use kprov_agent::api;

#[tokio::test]
async fn root_dir_on_overlayfs_is_named_in_the_error() {
    let (_reg, mut a, image) = setup(14).await;
    // Put root_dir on an overlay mount, as in a lab host whose / is an overlay.
    let d = a.path().to_path_buf();
    for sub in ["ovl-lower", "ovl-upper", "ovl-work"] {
        std::fs::create_dir_all(d.join(sub)).unwrap();
    }
    a.stop(false);
    nix::mount::mount(
        Some("overlay"),
        &d.join("root"),
        Some("overlay"),
        nix::mount::MsFlags::empty(),
        Some(
            format!(
                "lowerdir={},upperdir={},workdir={}",
                d.join("ovl-lower").display(),
                d.join("ovl-upper").display(),
                d.join("ovl-work").display()
            )
            .as_str(),
        ),
    )
    .expect("overlay mount for root_dir");
    a.restart(false);
    pull(&a, &image).await;
    let mut rt = a.runtime().await;
    let cfg = sandbox_config(&a, "nested");
    let pod = run_pod(&mut rt, &cfg).await;
    let e = rt
        .create_container(api::CreateContainerRequest {
            pod_sandbox_id: pod.clone(),
            config: Some(container_config(&image, "c", &["sleep", "60"])),
            sandbox_config: Some(cfg.clone()),
        })
        .await
        .unwrap_err();
    for want in ["is itself on overlayfs", "root_dir", "ext4"] {
        assert!(e.message().contains(want), "{want}: {}", e.message());
    }
    let list = rt
        .list_containers(api::ListContainersRequest::default())
        .await
        .unwrap()
        .into_inner()
        .containers;
    assert!(
        list.is_empty(),
        "a failed create leaves no container: {list:?}"
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
    drop(rt);
    a.stop(false);
    nix::mount::umount2(&d.join("root"), nix::mount::MntFlags::MNT_DETACH).unwrap();
    assert_no_leaks(&a);
}
