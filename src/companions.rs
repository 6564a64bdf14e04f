//! The companion binaries kprov pushes to hosts (`kprov-agent`, `kprov-agent-monitor`)
//! live beside the `kprov` binary. `cargo build --release` builds them with kprov (the
//! workspace's default members); `cargo run` builds only the binary it runs, so a kprov
//! started by cargo builds the missing companions itself, with the same cargo, profile
//! and target directory, before a run needs them.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;

/// The binaries `roles/kprov-agent` copies from beside kprov.
pub const COMPANIONS: &[&str] = &["kprov-agent", "kprov-agent-monitor"];

/// The package that builds [`COMPANIONS`].
const PACKAGE: &str = "kprov-agent";

/// Companions missing from `dir`.
pub fn missing(dir: &Path) -> Vec<&'static str> {
    COMPANIONS
        .iter()
        .copied()
        .filter(|b| !dir.join(b).is_file())
        .collect()
}

/// How cargo built the running kprov: the cargo binary, the checkout's manifest, the
/// target directory and the profile. `None` unless cargo started this process
/// (`cargo run`/`cargo test` set `CARGO` and `CARGO_MANIFEST_DIR`).
struct CargoBuild {
    cargo: PathBuf,
    manifest: PathBuf,
    target_dir: PathBuf,
    profile: String,
}

impl CargoBuild {
    fn detect(exe: &Path) -> Option<Self> {
        let cargo = PathBuf::from(std::env::var_os("CARGO")?);
        let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR")?).join("Cargo.toml");
        if std::env::var("CARGO_PKG_NAME").ok()? != env!("CARGO_PKG_NAME") || !manifest.is_file() {
            return None;
        }
        // `<target dir>/<profile dir>/kprov`; the dev profile's directory is `debug`.
        let profile_dir = exe.parent()?;
        let target_dir = profile_dir.parent()?.to_path_buf();
        let profile = match profile_dir.file_name()?.to_str()? {
            "debug" => "dev".to_string(),
            other => other.to_string(),
        };
        Some(Self {
            cargo,
            manifest,
            target_dir,
            profile,
        })
    }

    fn command(&self) -> Command {
        let mut c = Command::new(&self.cargo);
        c.arg("build")
            .arg("--manifest-path")
            .arg(&self.manifest)
            .args(["--package", PACKAGE, "--bins", "--profile", &self.profile])
            .arg("--target-dir")
            .arg(&self.target_dir);
        c
    }
}

/// When cargo started this kprov and a companion is missing beside it, builds them
/// (cargo's progress goes to stderr). Otherwise does nothing: the task that copies a
/// missing companion fails with a message that says how to build it.
pub fn ensure_built() -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("locating the kprov binary")?;
    let Some(dir) = exe.parent() else {
        return Ok(());
    };
    let absent = missing(dir);
    if absent.is_empty() {
        return Ok(());
    }
    let Some(build) = CargoBuild::detect(&exe) else {
        return Ok(());
    };
    eprintln!(
        "kprov: building {} (pushed to hosts from {}) with cargo",
        absent.join(" and "),
        dir.display()
    );
    let status = build
        .command()
        .status()
        .with_context(|| format!("running {}", build.cargo.display()))?;
    let still = missing(dir);
    if !status.success() || !still.is_empty() {
        anyhow::bail!(
            "building {} failed ({status}); build every binary with `cargo build --release` in \
             kprov's checkout",
            absent.join(" and ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_names_each_absent_companion() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(missing(d.path()), COMPANIONS);
        std::fs::write(d.path().join("kprov-agent"), b"x").unwrap();
        assert_eq!(missing(d.path()), ["kprov-agent-monitor"]);
        std::fs::write(d.path().join("kprov-agent-monitor"), b"x").unwrap();
        assert!(missing(d.path()).is_empty());
    }

    #[test]
    fn the_build_uses_the_running_binary_s_profile_and_target_dir() {
        // Cargo runs unit tests with CARGO, CARGO_MANIFEST_DIR and CARGO_PKG_NAME set.
        let b = CargoBuild::detect(Path::new("/t/target/release/kprov")).expect("under cargo");
        assert_eq!(b.profile, "release");
        assert_eq!(b.target_dir, Path::new("/t/target"));
        let args: Vec<String> = b
            .command()
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert!(args.windows(2).any(|w| w == ["--package", "kprov-agent"]));
        assert!(args.windows(2).any(|w| w == ["--profile", "release"]));
        let dev = CargoBuild::detect(Path::new("/t/target/debug/kprov")).unwrap();
        assert_eq!(dev.profile, "dev");
    }
}
