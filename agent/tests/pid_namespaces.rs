//! PID namespaces with real runc, as the CRI describes them: POD — every container
//! of the pod shares one namespace whose PID 1 is the pod's init (not a
//! container's process, as with a pause container), and each sees the others'
//! processes; CONTAINER — the container's own process is PID 1 and sees nothing
//! else; TARGET — joins the target container's namespace; NODE — the host's. The
//! pod init ends with the sandbox and nothing is left behind.

mod common;

use common::leaks::assert_no_leaks;
use common::pods::*;
use common::security::*;
use kprov_agent::api;
use kprov_agent::api::NamespaceMode as M;

fn with_pid(image: &str, name: &str, cmd: &[&str], mode: M, target: &str) -> api::ContainerConfig {
    let mut cfg = container_config(image, name, cmd);
    sc(&mut cfg).namespace_options = Some(api::NamespaceOption {
        pid: mode as i32,
        target_id: target.into(),
        ..Default::default()
    });
    cfg
}

fn pod_with_pid(a: &common::agent::TestAgent, name: &str, mode: M) -> api::PodSandboxConfig {
    let mut cfg = sandbox_config(a, name);
    pod_sc(&mut cfg).namespace_options = Some(api::NamespaceOption {
        pid: mode as i32,
        ..Default::default()
    });
    cfg
}

async fn pid1(rt: &mut Rt, id: &str) -> String {
    let (out, _, code) = exec_full(rt, id, &["cat", "/proc/1/cmdline"]).await;
    assert_eq!(code, 0);
    out.replace('\0', " ").trim().to_string()
}

async fn ps(rt: &mut Rt, id: &str) -> String {
    let (out, err, code) = exec_full(rt, id, &["ps", "-o", "pid,args"]).await;
    assert_eq!(code, 0, "{err}");
    out
}

async fn remove_pod(rt: &mut Rt, pod: &str) {
    rt.stop_pod_sandbox(api::StopPodSandboxRequest {
        pod_sandbox_id: pod.into(),
    })
    .await
    .unwrap();
    rt.remove_pod_sandbox(api::RemovePodSandboxRequest {
        pod_sandbox_id: pod.into(),
    })
    .await
    .unwrap();
}

/// The host PIDs of processes whose command line contains `needle`.
fn host_pids(needle: &str) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| {
                    String::from_utf8_lossy(&c)
                        .replace('\0', " ")
                        .contains(needle)
                })
                .unwrap_or(false)
        })
        .collect()
}

#[tokio::test]
async fn pod_pid_namespace_is_shared_by_the_pod_s_containers() {
    let (_reg, a, image) = setup_wrapped(33, &[]).await;
    let mut rt = a.runtime().await;
    let pod_cfg = pod_with_pid(&a, "share-pid", M::Pod);
    let pod = run_pod(&mut rt, &pod_cfg).await;
    let sandbox_dir = a.path().join("run/sandboxes").join(&pod);
    let init = host_pids(&format!("__pod-init {}", sandbox_dir.display()));
    assert_eq!(init.len(), 1, "one pod init: {init:?}");

    let one = start_container(
        &mut rt,
        &pod,
        &pod_cfg,
        with_pid(&image, "one", &["sleep", "3001"], M::Pod, ""),
    )
    .await;
    let two = start_container(
        &mut rt,
        &pod,
        &pod_cfg,
        with_pid(&image, "two", &["sleep", "3002"], M::Pod, ""),
    )
    .await;
    for id in [&one, &two] {
        let p1 = pid1(&mut rt, id).await;
        assert!(
            p1.contains("__pod-init") && !p1.contains("sleep"),
            "PID 1 is the pod's init: {p1}"
        );
        let list = ps(&mut rt, id).await;
        assert!(
            list.contains("sleep 3001") && list.contains("sleep 3002"),
            "{list}"
        );
    }
    // Killing one container's process leaves the other running in the namespace.
    rt.stop_container(api::StopContainerRequest {
        container_id: one.clone(),
        timeout: 0,
    })
    .await
    .unwrap();
    let list = ps(&mut rt, &two).await;
    assert!(
        !list.contains("sleep 3001") && list.contains("sleep 3002"),
        "{list}"
    );

    remove_pod(&mut rt, &pod).await;
    assert!(
        !std::path::Path::new(&format!("/proc/{}", init[0])).exists()
            || std::fs::read_to_string(format!("/proc/{}/status", init[0]))
                .unwrap_or_default()
                .contains("zombie"),
        "the pod init ended with the sandbox"
    );
    assert_no_leaks(&a);
}

#[tokio::test]
async fn container_target_and_node_pid_namespaces() {
    let (_reg, a, image) = setup_wrapped(34, &[]).await;
    let mut rt = a.runtime().await;

    // CONTAINER: its own namespace, its process is PID 1; no pod init.
    let pod_cfg = pod_with_pid(&a, "own-pid", M::Container);
    let pod = run_pod(&mut rt, &pod_cfg).await;
    let sandbox_dir = a.path().join("run/sandboxes").join(&pod);
    assert!(host_pids(&format!("__pod-init {}", sandbox_dir.display())).is_empty());
    let own = start_container(
        &mut rt,
        &pod,
        &pod_cfg,
        with_pid(&image, "own", &["sleep", "3003"], M::Container, ""),
    )
    .await;
    let other = start_container(
        &mut rt,
        &pod,
        &pod_cfg,
        with_pid(&image, "other", &["sleep", "3004"], M::Container, ""),
    )
    .await;
    assert_eq!(pid1(&mut rt, &own).await, "sleep 3003");
    let list = ps(&mut rt, &own).await;
    assert!(!list.contains("sleep 3004"), "{list}");

    // TARGET: joins `own`'s namespace (as an ephemeral debug container does).
    let dbg = start_container(
        &mut rt,
        &pod,
        &pod_cfg,
        with_pid(&image, "debug", &["sleep", "3005"], M::Target, &own),
    )
    .await;
    assert_eq!(pid1(&mut rt, &dbg).await, "sleep 3003");
    let list = ps(&mut rt, &dbg).await;
    assert!(
        list.contains("sleep 3003") && list.contains("sleep 3005") && !list.contains("sleep 3004"),
        "{list}"
    );
    let list = ps(&mut rt, &own).await;
    assert!(
        list.contains("sleep 3005"),
        "the target sees the joiner: {list}"
    );

    // POD in a sandbox without a pod namespace: refused with the reason.
    let e = rt
        .create_container(api::CreateContainerRequest {
            pod_sandbox_id: pod.clone(),
            config: Some(with_pid(&image, "wants-pod", &["sleep", "1"], M::Pod, "")),
            sandbox_config: Some(pod_cfg.clone()),
        })
        .await
        .unwrap_err();
    assert!(e.message().contains("no pod PID namespace"), "{e:?}");
    let _ = other;
    remove_pod(&mut rt, &pod).await;

    // NODE: the host's namespace: the agent's own process is visible.
    let pod_cfg = pod_with_pid(&a, "host-pid", M::Node);
    let pod = run_pod(&mut rt, &pod_cfg).await;
    let h = start_container(
        &mut rt,
        &pod,
        &pod_cfg,
        with_pid(&image, "host", &["sleep", "3006"], M::Node, ""),
    )
    .await;
    let (out, _, code) =
        exec_full(&mut rt, &h, &["cat", &format!("/proc/{}/cmdline", a.pid())]).await;
    assert_eq!(code, 0);
    assert!(out.contains("kprov-agent"), "{out:?}");
    assert_ne!(pid1(&mut rt, &h).await, "sleep 3006");
    remove_pod(&mut rt, &pod).await;
    assert_no_leaks(&a);
}
