//! Where kprov's own playbooks and roles are found when a command needs them
//! (`kprov reset` runs `playbooks/reset.yaml`).

use std::path::{Path, PathBuf};

use anyhow::Context;

/// Finds `relative` (e.g. `playbooks/reset.yaml`) in, in order: `$KPROV_CONTENT`, the
/// current directory, the directories above the kprov binary (a source checkout:
/// `target/release/kprov` → the checkout), the checkout it was built from, and
/// `/usr/share/kprov`.
pub fn find(relative: &str) -> anyhow::Result<PathBuf> {
    let mut roots: Vec<PathBuf> = Vec::new();
    if let Some(dir) = std::env::var_os("KPROV_CONTENT") {
        roots.push(PathBuf::from(dir));
    }
    roots.push(PathBuf::from("."));
    if let Ok(exe) = std::env::current_exe() {
        roots.extend(exe.ancestors().skip(1).take(4).map(Path::to_path_buf));
    }
    // The checkout this binary was built from (builds with the target dir elsewhere).
    roots.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    roots.push(PathBuf::from("/usr/share/kprov"));
    roots
        .iter()
        .map(|root| root.join(relative))
        .find(|candidate| candidate.is_file())
        .with_context(|| {
            format!(
                "cannot find kprov's {relative} (looked in $KPROV_CONTENT, the current \
                 directory, above the kprov binary, its source checkout and /usr/share/kprov); set KPROV_CONTENT \
                 to the directory that holds playbooks/ and roles/"
            )
        })
}
