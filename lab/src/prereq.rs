//! Machine prerequisites: the tools a lab needs, installed with apt-get when missing.

use std::path::Path;

use crate::cmd::{have_tool, Cmd};
use crate::error::LabError;

/// (tool on PATH, Debian package that ships it).
const TOOLS: &[(&str, &str)] = &[
    ("debootstrap", "debootstrap"),
    ("ip", "iproute2"),
    ("unshare", "util-linux"),
    ("nsenter", "util-linux"),
    ("setsid", "util-linux"),
    ("mount", "mount"),
    ("hostname", "hostname"),
    ("ssh", "openssh-client"),
    ("ssh-keygen", "openssh-client"),
    ("apt-ftparchive", "apt-utils"),
    // busybox-static rather than busybox: it coexists with what other kprov parts need.
    ("busybox", "busybox-static"),
];

/// Makes sure every tool is present, installing missing packages on Debian/Ubuntu.
pub(crate) fn ensure() -> Result<(), LabError> {
    let missing = missing_packages();
    if missing.is_empty() {
        return Ok(());
    }
    let is_debian = Path::new("/etc/debian_version").exists() && have_tool("apt-get");
    if !is_debian {
        return Err(missing_error(&missing));
    }
    tracing::info!(packages = %missing.join(" "), "installing lab prerequisites");
    let install = |update: bool| {
        if update {
            Cmd::new(["apt-get", "-o", "DPkg::Lock::Timeout=600", "update"])
                .env("DEBIAN_FRONTEND", "noninteractive")
                .hint("apt-get update failed; check the machine's apt sources")
                .run()?;
        }
        let mut argv: Vec<String> = [
            "apt-get",
            "-o",
            "DPkg::Lock::Timeout=600",
            "install",
            "-y",
            "--no-install-recommends",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        argv.extend(missing.iter().cloned());
        Cmd::new(argv)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .hint("could not install the lab prerequisites with apt-get")
            .run()
    };
    if install(false).is_err() {
        install(true)?;
    }
    let still = missing_packages();
    if still.is_empty() {
        Ok(())
    } else {
        Err(missing_error(&still))
    }
}

fn missing_packages() -> Vec<String> {
    let mut packages: Vec<String> = TOOLS
        .iter()
        .filter(|(tool, _)| !have_tool(tool))
        .map(|(_, package)| package.to_string())
        .collect();
    packages.sort();
    packages.dedup();
    packages
}

fn missing_error(packages: &[String]) -> LabError {
    let tools: Vec<&str> = TOOLS
        .iter()
        .filter(|(tool, _)| !have_tool(tool))
        .map(|(tool, _)| *tool)
        .collect();
    LabError::MissingTools {
        tools: tools.join(", "),
        packages: packages.join(" "),
    }
}
