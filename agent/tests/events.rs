//! GetContainerEvents end to end: a subscriber sees a pod's and its
//! container's created, started, stopped and deleted events in order (the
//! sandbox's own name the sandbox as the container, as containerd's do), each
//! with its pod's status and the pod's container statuses as they then were.

mod common;

use common::pods::*;
use kprov_agent::api;
use std::time::Duration;
use tokio_stream::StreamExt;

#[tokio::test]
async fn a_containers_life_comes_as_events() {
    let (_reg, a, image) = setup(37).await;
    let mut rt = a.runtime().await;
    let pod_cfg = sandbox_config(&a, "events-pod");
    let mut events = a
        .runtime()
        .await
        .get_container_events(api::GetEventsRequest {})
        .await
        .expect("GetContainerEvents")
        .into_inner();
    // A second subscriber gets the same feed.
    let mut other = a
        .runtime()
        .await
        .get_container_events(api::GetEventsRequest {})
        .await
        .expect("GetContainerEvents")
        .into_inner();
    let pod = run_pod(&mut rt, &pod_cfg).await;
    let c = start_container(
        &mut rt,
        &pod,
        &pod_cfg,
        container_config(&image, "brief", &["sh", "-c", "sleep 0.5; exit 2"]),
    )
    .await;
    let st = wait_exited(&mut rt, &c).await;
    assert_eq!(st.exit_code, 2);
    rt.remove_container(api::RemoveContainerRequest {
        container_id: c.clone(),
    })
    .await
    .expect("RemoveContainer");

    use api::ContainerEventType::*;
    let life = [
        ContainerCreatedEvent,
        ContainerStartedEvent,
        ContainerStoppedEvent,
        ContainerDeletedEvent,
    ];
    let mut all = Vec::new();
    for _ in 0..6 {
        let ev = tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .expect("an event in time")
            .expect("the stream goes on")
            .expect("an event, not an error");
        assert_eq!(ev.pod_sandbox_status.as_ref().unwrap().id, pod, "{ev:?}");
        assert!(ev.created_at > 0);
        all.push(ev);
    }
    // The sandbox comes up first: created and started, itself the "container".
    let pod_kinds: Vec<_> = all[..2]
        .iter()
        .map(|e| (e.container_id.clone(), e.container_event_type))
        .collect();
    assert_eq!(
        pod_kinds,
        [
            (pod.clone(), ContainerCreatedEvent as i32),
            (pod.clone(), ContainerStartedEvent as i32)
        ],
        "{all:?}"
    );
    assert!(all[0].containers_statuses.is_empty());
    let got = all.split_off(2);
    assert!(got.iter().all(|e| e.container_id == c), "{got:?}");
    let kinds: Vec<_> = got.iter().map(|e| e.container_event_type).collect();
    assert_eq!(kinds, life.map(|k| k as i32), "{got:?}");
    let mine =
        |e: &api::ContainerEventResponse| e.containers_statuses.iter().find(|s| s.id == c).cloned();
    assert_eq!(
        mine(&got[1]).unwrap().state,
        api::ContainerState::ContainerRunning as i32
    );
    let stopped = mine(&got[2]).unwrap();
    assert_eq!(stopped.state, api::ContainerState::ContainerExited as i32);
    assert_eq!(stopped.exit_code, 2);
    assert!(mine(&got[3]).is_none(), "a deleted container has no status");
    // The second subscriber saw the same six.
    for (i, k) in [ContainerCreatedEvent, ContainerStartedEvent]
        .into_iter()
        .chain(life)
        .enumerate()
    {
        let ev = tokio::time::timeout(Duration::from_secs(5), other.next())
            .await
            .expect("the second subscriber's event")
            .unwrap()
            .unwrap();
        assert_eq!(ev.container_event_type, k as i32);
        assert_eq!(&ev.container_id, if i < 2 { &pod } else { &c });
    }
    // A create that fails announces nothing.
    let mut bad = container_config(&image, "bad", &["true"]);
    bad.image = Some(api::ImageSpec {
        image: "no/such:image".into(),
        ..Default::default()
    });
    assert!(rt
        .create_container(api::CreateContainerRequest {
            pod_sandbox_id: pod.clone(),
            config: Some(bad),
            sandbox_config: Some(pod_cfg.clone()),
        })
        .await
        .is_err());
    assert!(
        tokio::time::timeout(Duration::from_millis(500), events.next())
            .await
            .is_err(),
        "no event for a failed create"
    );

    // The sandbox's stop and removal.
    rt.stop_pod_sandbox(api::StopPodSandboxRequest {
        pod_sandbox_id: pod.clone(),
    })
    .await
    .expect("StopPodSandbox");
    rt.remove_pod_sandbox(api::RemovePodSandboxRequest {
        pod_sandbox_id: pod.clone(),
    })
    .await
    .expect("RemovePodSandbox");
    for (k, state) in [
        (ContainerStoppedEvent, api::PodSandboxState::SandboxNotready),
        (ContainerDeletedEvent, api::PodSandboxState::SandboxNotready),
    ] {
        let ev = tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .expect("a sandbox event in time")
            .unwrap()
            .unwrap();
        assert_eq!(ev.container_id, pod, "{ev:?}");
        assert_eq!(ev.container_event_type, k as i32, "{ev:?}");
        assert_eq!(ev.pod_sandbox_status.unwrap().state, state as i32);
    }
}
