//! Measures how long the local `sh` takes to run a 30-task gather script (and the first
//! apply) of node-prep-like tasks against a temp directory.
//!
//! `cargo run --release -p kprov-modules --example gather_timing ['busybox sh']`

use std::time::{Duration, Instant};

use kprov_modules::{
    apply_script, build, gather_script, parse_output, HostContext, Module, Plan, State,
};
use serde_json::json;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let shell = std::env::args().nth(1).unwrap_or_else(|| "sh".to_string());
    let dir = tempfile::tempdir()?;
    let root = dir.path();
    let p = |rel: &str| root.join(rel).to_string_lossy().into_owned();
    std::fs::create_dir_all(root.join("proc/net/ipv4"))?;
    std::fs::create_dir_all(root.join("proc/net/bridge"))?;
    for key in [
        "net/ipv4/ip_forward",
        "net/bridge/bridge-nf-call-iptables",
        "net/bridge/bridge-nf-call-ip6tables",
    ] {
        std::fs::write(root.join("proc").join(key), "0\n")?;
    }
    std::fs::create_dir_all(root.join("sys/overlay"))?;
    std::fs::create_dir_all(root.join("sys/br_netfilter"))?;
    std::fs::write(
        root.join("fstab"),
        "/dev/sda1 / ext4 defaults 0 1\n/dev/sda2 none swap sw 0 0\n",
    )?;
    std::fs::write(root.join("hosts"), "127.0.0.1 localhost\n")?;
    std::fs::write(root.join("selinux"), "SELINUX=enforcing\n")?;
    std::fs::write(root.join("config.toml"), "version = 2\n")?;

    let mut specs = vec![];
    for i in 0..6 {
        specs.push((
            "directory",
            json!({"path": p(&format!("etc/d{i}")), "mode": "0755"}),
        ));
    }
    for i in 0..10 {
        specs.push(("copy", json!({"path": p(&format!("etc/d{}/f{i}.conf", i % 6)), "content": format!("setting-{i} = value\n").repeat(20), "mode": "0644"})));
    }
    for i in 0..4 {
        specs.push(("line", json!({"path": p(&format!("etc/l{i}")), "regexp": "^KEY=", "line": format!("KEY={i}"), "create": true})));
    }
    specs.push((
        "block",
        json!({"path": p("etc/profile"), "name": "k", "block": "export A=1\n"}),
    ));
    specs.push(("hosts", json!({"path": p("hosts"), "entries": [{"address": "192.168.168.141", "names": ["master"]}, {"address": "192.168.168.151", "names": ["node1"]}]})));
    specs.push(("sysctl", json!({"file": p("etc/sysctl.d/99-kubernetes-cri.conf"), "proc_sys": p("proc"), "settings": {"net.ipv4.ip_forward": 1, "net.bridge.bridge-nf-call-iptables": 1, "net.bridge.bridge-nf-call-ip6tables": 1}})));
    specs.push(("kernel_module", json!({"names": ["overlay", "br_netfilter"], "modules_load_dir": p("etc/modules-load.d"), "sys_module": p("sys")})));
    specs.push((
        "swap",
        json!({"fstab": p("fstab"), "proc_swaps": p("none")}),
    ));
    specs.push((
        "selinux",
        json!({"config": p("selinux"), "enforce": p("none")}),
    ));
    specs.push(("firewall", json!({})));
    specs.push(("containerd_config", json!({"path": p("config.toml"), "systemd_cgroup": true, "sandbox_image": "registry.k8s.io/pause:3.9", "oom_score": -999})));
    specs.push(("crictl_config", json!({"path": p("etc/crictl.yaml"), "runtime_endpoint": "unix:///run/containerd/containerd.sock"})));
    specs.push(("service", json!({"name": "containerd", "systemd_dir": p("systemd"), "dropins": {"10-kprov": "[Service]\nDelegate=yes\nKillMode=process\nOOMScoreAdjust=-999\n"}})));
    let ctx = HostContext::default();
    let tasks: Vec<Box<dyn Module>> = specs
        .into_iter()
        .map(|(n, a)| build(n, a, &ctx))
        .collect::<Result<_, _>>()?;
    let refs: Vec<(usize, &dyn Module)> = tasks
        .iter()
        .enumerate()
        .map(|(i, m)| (i, m.as_ref()))
        .collect();
    let gather = gather_script(&refs);
    let dump = std::env::var_os("KPROV_DUMP_GATHER");

    let run = |script: &str| -> Result<
        (
            Duration,
            std::collections::BTreeMap<usize, kprov_modules::TaskReport>,
        ),
        Box<dyn std::error::Error>,
    > {
        let start = Instant::now();
        let words: Vec<&str> = shell.split_whitespace().collect();
        let out = std::process::Command::new(words[0])
            .args(&words[1..])
            .arg("-c")
            .arg(script)
            .output()?;
        let took = start.elapsed();
        Ok((took, parse_output(&out.stdout)?))
    };

    let (first, reports) = run(&gather)?;
    let states: Vec<State> = reports.values().map(|r| r.state()).collect();
    let plans: Vec<(usize, Plan)> = tasks
        .iter()
        .enumerate()
        .filter_map(|(i, m)| m.plan(&states[i]).ok().map(|p| (i, p)))
        .filter(|(_, p)| p.diff.needs_apply())
        .collect();
    let changing: Vec<(usize, &str)> = plans.iter().map(|(i, p)| (*i, p.script.as_str())).collect();
    let apply = apply_script(&changing);
    let (apply_took, applied) = run(&apply)?;
    let stale = applied.values().filter(|r| r.stale.is_some()).count();
    let failed: Vec<_> = applied.values().filter_map(|r| r.failed.clone()).collect();

    let mut samples = Vec::new();
    for _ in 0..20 {
        samples.push(run(&gather)?.0);
    }
    samples.sort();
    let (_, after) = run(&gather)?;
    let unchanged = tasks
        .iter()
        .enumerate()
        .filter(|(i, m)| {
            after.get(i).is_some_and(|r| {
                m.plan(&r.state())
                    .is_ok_and(|p| p.diff == kprov_modules::Diff::Unchanged)
            })
        })
        .count();
    if let Some(path) = dump {
        // Keep the script and its directory for profiling (strace -f -c sh SCRIPT).
        std::fs::write(path, &gather)?;
        let _kept = dir.keep();
    }
    println!("shell: {shell}; tasks: {}", tasks.len());
    println!(
        "gather script: {} bytes; apply script: {} bytes",
        gather.len(),
        apply.len()
    );
    println!("first gather: {:.1} ms", first.as_secs_f64() * 1e3);
    println!(
        "first apply ({} tasks): {:.1} ms, stale {stale}, failed {failed:?}",
        changing.len(),
        apply_took.as_secs_f64() * 1e3
    );
    println!(
        "idempotent gather over 20 runs: min {:.1} ms, median {:.1} ms, max {:.1} ms; unchanged after apply: {unchanged}/{}",
        samples[0].as_secs_f64() * 1e3,
        samples[10].as_secs_f64() * 1e3,
        samples[19].as_secs_f64() * 1e3,
        tasks.len()
    );
    Ok(())
}
