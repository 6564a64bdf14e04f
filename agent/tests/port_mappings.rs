//! Port mappings through the portmap CNI plugin: a pod's httpd on container
//! port 80 is reached from the machine at host IP:host_port; StopPodSandbox
//! (also after an agent restart) removes the NAT rules and nothing leaks.

mod common;

use common::leaks::assert_no_leaks;
use common::pods::*;
use kprov_agent::api;
use std::process::Command;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `iptables -t nat -S`.
fn nat_rules() -> String {
    let out = Command::new("iptables")
        .args(["-t", "nat", "-S"])
        .output()
        .expect("iptables (Debian package iptables)");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// NAT rules that mention the pod or the host port.
fn rules_for(pod: &str, host_port: u16) -> Vec<String> {
    let dport = format!("--dport {host_port} ");
    nat_rules()
        .lines()
        .filter(|l| l.contains(pod) || l.contains(&dport))
        .map(str::to_string)
        .collect()
}

/// The machine's own address on its default route, or else its first global
/// IPv4 address outside the test bridges (never loopback).
fn host_ip() -> String {
    let run = |args: &[&str]| {
        let out = Command::new("ip").args(args).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let route = run(&["-4", "-o", "route", "get", "192.0.2.200"]);
    let mut words = route.split_whitespace();
    while let Some(w) = words.next() {
        if w == "src" {
            return words.next().unwrap().to_string();
        }
    }
    run(&["-4", "-o", "addr", "show", "scope", "global"])
        .lines()
        .filter(|l| !l.contains(" kpt"))
        .find_map(|l| {
            let cidr = l.split_whitespace().skip_while(|w| *w != "inet").nth(1)?;
            Some(cidr.split('/').next()?.to_string())
        })
        .expect("a global IPv4 address on the machine")
}

/// A TCP port nothing listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One HTTP GET of `/` at `addr`; the whole response.
async fn http_get(addr: &str) -> std::io::Result<String> {
    let mut s = tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(addr))
        .await
        .map_err(|_| std::io::Error::other("connect timed out"))??;
    s.write_all(b"GET / HTTP/1.0\r\nHost: test\r\n\r\n").await?;
    let mut out = String::new();
    tokio::time::timeout(Duration::from_secs(2), s.read_to_string(&mut out))
        .await
        .map_err(|_| std::io::Error::other("read timed out"))??;
    Ok(out)
}

#[tokio::test]
async fn host_port_reaches_the_pod_until_it_stops() {
    let (_reg, mut a, image) = setup(13).await;
    let mut rt = a.runtime().await;
    let host_port = free_port();
    let ip = host_ip();
    let mut cfg = sandbox_config(&a, "web");
    cfg.port_mappings = vec![api::PortMapping {
        protocol: api::Protocol::Tcp as i32,
        container_port: 80,
        host_port: host_port as i32,
        host_ip: String::new(),
    }];
    let pod = run_pod(&mut rt, &cfg).await;
    let rules = rules_for(&pod, host_port);
    assert!(
        rules
            .iter()
            .any(|r| r.contains(&format!("--dport {host_port} ")) && r.contains("DNAT")),
        "no DNAT rule for host port {host_port}: {rules:#?}"
    );
    let pod_ip = pod_ip(&mut rt, &pod).await;
    assert!(
        rules
            .iter()
            .any(|r| r.contains(&format!("--to-destination {pod_ip}:80"))),
        "DNAT does not point at the pod {pod_ip}:80: {rules:#?}"
    );
    start_container(
        &mut rt,
        &pod,
        &cfg,
        container_config(&image, "httpd", &["httpd", "-f", "-p", "80", "-h", "/www"]),
    )
    .await;

    // From the machine, at its own address and the host port.
    let addr = format!("{ip}:{host_port}");
    let deadline = Instant::now() + Duration::from_secs(10);
    let body = loop {
        match http_get(&addr).await {
            Ok(r) if r.contains("pong") => break r,
            r => {
                assert!(Instant::now() < deadline, "{addr} never answered: {r:?}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    assert!(body.starts_with("HTTP/1."), "{body}");

    // The mappings are part of the pod's record: after an agent crash and
    // restart, StopPodSandbox still knows what to remove.
    drop(rt);
    a.restart(true);
    let mut rt = a.runtime().await;
    assert!(http_get(&addr).await.unwrap().contains("pong"));

    rt.stop_pod_sandbox(api::StopPodSandboxRequest {
        pod_sandbox_id: pod.clone(),
    })
    .await
    .unwrap();
    let left = rules_for(&pod, host_port);
    assert!(left.is_empty(), "NAT rules left after stop: {left:#?}");
    assert!(
        !nat_rules().contains(&format!("{pod_ip}:80")),
        "a rule still points at the pod"
    );
    assert!(
        http_get(&addr).await.is_err(),
        "{addr} still answers after StopPodSandbox"
    );
    // Stop again is a no-op, then remove; nothing is left behind.
    rt.stop_pod_sandbox(api::StopPodSandboxRequest {
        pod_sandbox_id: pod.clone(),
    })
    .await
    .unwrap();
    rt.remove_pod_sandbox(api::RemovePodSandboxRequest {
        pod_sandbox_id: pod.clone(),
    })
    .await
    .unwrap();
    assert!(rules_for(&pod, host_port).is_empty());
    assert_no_leaks(&a);
}
