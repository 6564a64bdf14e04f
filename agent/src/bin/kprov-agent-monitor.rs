//! `kprov-agent-monitor __monitor <json>`: the per-container monitor as its own
//! small binary (a few hundred KiB of private memory per container, instead of
//! the full agent's). The agent falls back to `kprov-agent __monitor` without it.
//! Run as `__pod-init` it starts a pod's init (see `kprov_agent::sandbox::pod_init`).

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(kprov_agent::sandbox::pod_init::POD_INIT_ARG) {
        kprov_agent::sandbox::pod_init::run();
    }
    if args.get(1).map(String::as_str) != Some(kprov_agent::monitor::MONITOR_ARG) {
        eprintln!("kprov-agent-monitor is started by kprov-agent, not by hand");
        std::process::exit(2);
    }
    kprov_agent::monitor::run(args.get(2).map(String::as_str).unwrap_or(""));
}
