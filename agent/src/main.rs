//! `kprov-agent [--config PATH]`: the CRI runtime daemon.

use anyhow::Context;
use kprov_agent::config::{Config, DEFAULT_CONFIG_PATH};
use kprov_agent::monitor;
use std::path::PathBuf;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    // Monitor mode must run before any thread exists (it forks).
    if args.get(1).map(String::as_str) == Some(monitor::MONITOR_ARG) {
        monitor::run(args.get(2).map(String::as_str).unwrap_or(""));
    }
    if args.get(1).map(String::as_str) == Some(kprov_agent::sandbox::pod_init::POD_INIT_ARG) {
        kprov_agent::sandbox::pod_init::run();
    }
    if args.get(1).map(String::as_str) == Some(kprov_agent::image::PULL_ARG) {
        std::process::exit(kprov_agent::image::run_pull_process());
    }
    let mut config_path = None;
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--config" | "-c" => {
                config_path = Some(PathBuf::from(it.next().context("--config needs a path")?))
            }
            "--version" | "-V" => {
                println!("kprov-agent {}", env!("CARGO_PKG_VERSION"));
                return Ok(());
            }
            "--help" | "-h" => {
                println!("usage: kprov-agent [--config PATH]   (default {DEFAULT_CONFIG_PATH})");
                return Ok(());
            }
            other => {
                anyhow::bail!("unknown argument {other:?}; usage: kprov-agent [--config PATH]")
            }
        }
    }
    let required = config_path.is_some();
    let path = config_path.unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH));
    let cfg = Config::load(&path, required)?;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&cfg.logs.level)),
        )
        .with_writer(std::io::stderr)
        .init();
    if let Some(warning) = cfg.secrets_exposure(&path) {
        tracing::warn!("{warning}");
    }
    // Few malloc arenas: the agent is mostly idle, and per-thread arenas keep
    // freed pull/unpack buffers resident.
    // SAFETY: mallopt with integer arguments, before any thread starts.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(16)
        .thread_keep_alive(std::time::Duration::from_secs(5))
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let agent = kprov_agent::service::Agent::start(cfg).await?;
        let socket = agent.cfg.socket_path();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(kprov_agent::cri::serve(agent, async {
            let _ = stop_rx.await;
        }));
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
            r = server => return r?,
        }
        tracing::info!("shutting down; containers keep running");
        let _ = stop_tx.send(());
        // Clients that keep connections open must not hold the shutdown up.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let _ = std::fs::remove_file(socket);
        Ok(())
    })
}
