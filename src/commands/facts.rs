//! `kprov facts -i INVENTORY`: one round trip per host, shown as a table or JSON.

use crate::exit::Exit;

use kprov_engine::facts::Facts;
use kprov_engine::transport::{Pool, PoolOptions, TransportError};

use crate::cli::{FactsArgs, GlobalArgs, OutputFormat};

pub async fn run(args: &FactsArgs, global: &GlobalArgs) -> anyhow::Result<Exit> {
    let inventory = crate::hosts::load(&args.inventory.inventory).await?;
    let targets = crate::hosts::targets(&inventory, global.limit.as_deref())?;
    let (pool, mut unreachable) = Pool::connect(targets, &PoolOptions::default()).await;
    let gathered = pool
        .for_each(|conn| async move { Facts::gather(&*conn).await })
        .await;
    pool.close().await;

    let mut facts = Vec::new();
    let mut failed = Vec::new();
    for (host, result) in gathered {
        match result {
            Ok(f) => facts.push((host, f)),
            Err(kprov_engine::facts::FactsError::Transport(e)) => unreachable.push(e),
            Err(other) => failed.push(other.to_string()),
        }
    }
    match global.output {
        OutputFormat::Json => print_json(&facts, &unreachable, &failed)?,
        OutputFormat::Human => {
            print_table(&facts);
            for err in &unreachable {
                eprintln!("error: {err}");
            }
            for err in &failed {
                eprintln!("error: {err}");
            }
        }
    }
    Ok(if !failed.is_empty() {
        Exit::FAILED
    } else if !unreachable.is_empty() {
        Exit::UNREACHABLE
    } else {
        Exit::OK
    })
}

fn print_json(
    facts: &[(String, Facts)],
    unreachable: &[TransportError],
    failed: &[String],
) -> anyhow::Result<()> {
    let hosts: serde_json::Map<String, serde_json::Value> = facts
        .iter()
        .map(|(h, f)| Ok((h.clone(), serde_json::to_value(f)?)))
        .collect::<Result<_, serde_json::Error>>()?;
    let errors: Vec<serde_json::Value> = unreachable
        .iter()
        .map(|e| {
            serde_json::json!({"host": e.host, "kind": e.kind, "detail": e.detail, "hint": e.hint})
        })
        .chain(failed.iter().map(|e| serde_json::json!({"kind": "facts", "detail": e})))
        .collect();
    println!(
        "{}",
        serde_json::json!({ "hosts": hosts, "errors": errors })
    );
    Ok(())
}

fn print_table(facts: &[(String, Facts)]) {
    let header = [
        "HOST",
        "HOSTNAME",
        "ADDRESSES",
        "OS",
        "ARCH",
        "KERNEL",
        "CPU",
        "MEM",
        "SWAP",
        "CGROUP",
        "INIT",
        "PKG",
        "RUNTIME",
        "KUBELET",
    ];
    let rows: Vec<Vec<String>> = facts
        .iter()
        .map(|(host, f)| {
            vec![
                host.clone(),
                f.hostname.clone(),
                f.addresses.join(","),
                format!("{} {}", f.os_id, f.os_version),
                f.arch.clone(),
                f.kernel.clone(),
                f.cpus.to_string(),
                format!("{}Mi", f.memory_mib),
                if f.swap_on { "on" } else { "off" }.to_string(),
                format!("{:?}", f.cgroup).to_lowercase(),
                f.init.clone(),
                f.package_manager.clone(),
                if f.runtimes.is_empty() {
                    "-".into()
                } else {
                    f.runtimes.join(",")
                },
                if f.kubelet.is_some() { "yes" } else { "no" }.to_string(),
            ]
        })
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].chars().count())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(header.to_vec());
    for row in &rows {
        line(row.iter().map(String::as_str).collect());
    }
}
