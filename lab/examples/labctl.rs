//! Manual driver for the lab library: `labctl up|down|status|list|ssh NAME [HOSTS|HOST CMD…]`.

use std::time::Instant;

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let name = args
        .get(1)
        .cloned()
        .unwrap_or_else(|| kprov_lab::DEFAULT_NAME.into());
    let start = Instant::now();
    let result = match args.first().map(String::as_str) {
        Some("up") => {
            let hosts = args
                .get(2)
                .and_then(|h| h.parse().ok())
                .unwrap_or(kprov_lab::DEFAULT_HOSTS);
            kprov_lab::up(&kprov_lab::UpOptions {
                name,
                hosts,
                mirror: None,
            })
            .map(|s| serde_json::to_string_pretty(&s).unwrap_or_default())
        }
        Some("down") => kprov_lab::down(&name).map(|()| "down".to_string()),
        Some("status") => {
            kprov_lab::status(&name).map(|s| serde_json::to_string_pretty(&s).unwrap_or_default())
        }
        Some("list") => kprov_lab::list().map(|l| l.join("\n")),
        Some("ssh") => kprov_lab::ssh_argv(
            &name,
            args.get(2).map(String::as_str).unwrap_or("master"),
            args.get(3..).unwrap_or_default(),
        )
        .map(shell_words::join),
        _ => {
            eprintln!("usage: labctl up|down|status|list|ssh NAME [HOSTS | HOST CMD…]");
            std::process::exit(2);
        }
    };
    match result {
        Ok(out) => {
            println!("{out}");
            eprintln!("took {:.1}s", start.elapsed().as_secs_f64());
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
