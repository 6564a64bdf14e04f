//! The one round trip of `kube_apply`: the kubeconfig and the manifest files, read
//! from the host as base64 lines.

use base64::Engine as _;

use super::Args;
use crate::transport::quote;

/// What the host holds for a `kube_apply` task.
pub(crate) struct Gathered {
    /// The kubeconfig's bytes (holds a private key), `None` when it does not exist yet.
    pub kubeconfig: Option<Vec<u8>>,
    /// The bootstrap kubeconfig's bytes (private key), when asked for and present.
    pub bootstrap: Option<Vec<u8>>,
    /// Manifest files found, in order: (path, content).
    pub manifests: Vec<(String, Vec<u8>)>,
    /// Manifest paths that exist neither as file nor directory.
    pub missing: Vec<String>,
}

impl std::fmt::Debug for Gathered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gathered")
            .field("kubeconfig", &self.kubeconfig.as_ref().map(|_| "(secret)"))
            .field("bootstrap", &self.bootstrap.as_ref().map(|_| "(secret)"))
            .field("manifests", &self.manifests.len())
            .field("missing", &self.missing)
            .finish()
    }
}

/// POSIX sh that prints `F<TAB>path<TAB>base64` per file read, `M<TAB>path` per
/// missing path, `K…` for the kubeconfig. Changes nothing.
pub(crate) fn gather_script(args: &Args) -> String {
    let mut s = String::from(
        "kp_read() { printf '%s\\t%s\\t' \"$1\" \"$2\"; base64 < \"$2\" | tr -d '\\n'; printf '\\n'; }\n\
         kp_path() {\n\
         \tif [ -f \"$1\" ]; then kp_read F \"$1\"\n\
         \telif [ -d \"$1\" ]; then for f in \"$1\"/*; do case \"$f\" in *.yaml|*.yml|*.json) [ -f \"$f\" ] && kp_read F \"$f\";; esac; done\n\
         \telse printf 'M\\t%s\\n' \"$1\"; fi\n\
         }\n",
    );
    let kubeconfig = quote(&args.kubeconfig);
    s.push_str(&format!(
        "if [ -f {kubeconfig} ]; then kp_read K {kubeconfig}; fi\n"
    ));
    if let Some(bootstrap) = &args.bootstrap_kubeconfig {
        let bootstrap = quote(bootstrap);
        s.push_str(&format!(
            "if [ -f {bootstrap} ]; then kp_read B {bootstrap}; fi\n"
        ));
    }
    for path in &args.manifests {
        s.push_str(&format!("kp_path {}\n", quote(path.trim_end_matches('/'))));
    }
    s.push_str("exit 0\n");
    s
}

/// Parses the script's stdout.
pub(crate) fn parse_gathered(stdout: &[u8]) -> Result<Gathered, String> {
    let mut g = Gathered {
        kubeconfig: None,
        bootstrap: None,
        manifests: Vec::new(),
        missing: Vec::new(),
    };
    let b64 = base64::engine::general_purpose::STANDARD;
    for line in String::from_utf8_lossy(stdout).lines() {
        let mut parts = line.splitn(3, '\t');
        match (parts.next(), parts.next(), parts.next()) {
            (Some("M"), Some(path), None) => g.missing.push(path.to_string()),
            (Some(kind @ ("F" | "K" | "B")), Some(path), Some(data)) => {
                let bytes = b64
                    .decode(data)
                    .map_err(|e| format!("reading {path} from the host: {e}"))?;
                match kind {
                    "K" => g.kubeconfig = Some(bytes),
                    "B" => g.bootstrap = Some(bytes),
                    _ => g.manifests.push((path.to_string(), bytes)),
                }
            }
            _ => {}
        }
    }
    Ok(g)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The script runs for real against a temporary directory, with a hostile name.
    #[test]
    fn reads_files_directories_and_reports_missing_paths() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("it's $(touch pwned) dir");
        std::fs::create_dir_all(root.join("addons")).unwrap();
        std::fs::write(root.join("addons/b.yaml"), "kind: B\n").unwrap();
        std::fs::write(root.join("addons/a.yml"), "kind: A\n").unwrap();
        std::fs::write(root.join("addons/notes.txt"), "no").unwrap();
        std::fs::write(root.join("admin.conf"), "secret").unwrap();
        std::fs::write(root.join("super-admin.conf"), "super secret").unwrap();
        let r = |p: &str| root.join(p).to_string_lossy().into_owned();
        let args = Args::parse(json!({
            "kubeconfig": r("admin.conf"),
            "bootstrap_kubeconfig": r("super-admin.conf"),
            "manifests": [r("addons/"), r("missing.yaml")],
        }))
        .unwrap();
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(gather_script(&args))
            .output()
            .unwrap();
        assert!(out.status.success());
        let g = parse_gathered(&out.stdout).unwrap();
        assert_eq!(g.kubeconfig.as_deref(), Some(&b"secret"[..]));
        assert_eq!(g.bootstrap.as_deref(), Some(&b"super secret"[..]));
        let names: Vec<&str> = g.manifests.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(names, [r("addons/a.yml"), r("addons/b.yaml")]);
        assert_eq!(g.missing, [r("missing.yaml")]);
        assert!(!format!("{g:?}").contains("secret\""));
        assert!(!std::path::Path::new("pwned").exists());
    }
}
