//! Prints the artifacts `init_files` computes for a sample cluster (secrets hidden)
//! and how long it took: `cargo run -p kprov-controlplane --example dump [version]`.

use kprov_controlplane::{init_files, ClusterParams, Existing, NodeParams};
use std::time::{Instant, SystemTime};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let version = std::env::args().nth(1).unwrap_or_else(|| "1.31.2".into());
    let p = ClusterParams::new(version.parse()?, "192.0.2.10".parse()?);
    let node = NodeParams::new("master-1", "192.0.2.10".parse()?);
    let start = Instant::now();
    let artifacts = init_files(&p, &node, &Existing::empty(), SystemTime::now())?;
    let took = start.elapsed();
    for a in &artifacts {
        if a.secret {
            println!(
                "# {} ({:o}, {} secret bytes)",
                a.path,
                a.mode,
                a.content.len()
            );
        } else {
            println!(
                "# {} ({:o})\n{}",
                a.path,
                a.mode,
                String::from_utf8_lossy(&a.content)
            );
        }
    }
    eprintln!("{} artifacts in {took:?}", artifacts.len());
    Ok(())
}
