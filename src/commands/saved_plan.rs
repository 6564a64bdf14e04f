//! Plan files: `kprov plan … --out FILE` writes one, `kprov apply FILE` applies exactly
//! it. The file records kprov's version, what the run was (playbook, inventory, spec,
//! limit, tags: paths and names only), digests of every input, and per host each task's
//! gathered-state fingerprint and planned script. It never holds a secret: `-e` values
//! are only digested (give them again at apply), and tasks whose plans hold keys, tokens
//! or passwords keep only their fingerprint.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use kprov_engine::run::saved::{PlanBook, PlannedTask};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Marks a JSON file as a kprov plan, with its layout's version.
const FORMAT: &str = "kprov-plan/1";
/// Plan files are small; anything larger is not one.
const MAX_BYTES: u64 = 64 * 1024 * 1024;

/// The run a plan file was made for: paths and names, no values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunInputs {
    pub playbook: PathBuf,
    pub inventory: PathBuf,
    pub spec: Option<PathBuf>,
    pub limit: Option<String>,
    pub tags: Vec<String>,
    pub skip_tags: Vec<String>,
}

/// A plan file.
#[derive(Debug, Serialize, Deserialize)]
pub struct PlanFile {
    pub format: String,
    pub kprov_version: String,
    pub run: RunInputs,
    /// sha256 per input: `playbook`, `roles`, `inventory`, `spec`, `extra_vars`, and of
    /// the kprov binary itself (`kprov`).
    pub digests: BTreeMap<String, String>,
    pub hosts: BTreeMap<String, Vec<PlannedTask>>,
}

impl PlanFile {
    /// A plan file of `book`, planned from `run` whose inputs digest to `digests`.
    pub fn new(run: RunInputs, digests: BTreeMap<String, String>, book: &PlanBook) -> PlanFile {
        PlanFile {
            format: FORMAT.to_string(),
            kprov_version: env!("CARGO_PKG_VERSION").to_string(),
            run,
            digests,
            hosts: book.hosts(),
        }
    }

    /// Writes the file atomically, mode 0600 from the start.
    pub fn write(&self, path: &Path) -> anyhow::Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        let text = serde_json::to_string_pretty(self)?;
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = path
            .file_name()
            .context("the plan file needs a file name")?;
        let temp = dir.join(format!(".{}.kprov-new", name.to_string_lossy()));
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temp)
            .with_context(|| format!("cannot write the plan file {}", temp.display()))?;
        file.write_all(text.as_bytes())?;
        file.write_all(b"\n")?;
        file.sync_all()?;
        std::fs::rename(&temp, path)
            .with_context(|| format!("cannot write the plan file {}", path.display()))?;
        Ok(())
    }

    /// The plan file at `path`, or `None` when it is not one (a playbook).
    pub fn read_if_plan(path: &Path) -> anyhow::Result<Option<PlanFile>> {
        let Ok(meta) = std::fs::metadata(path) else {
            return Ok(None);
        };
        if !meta.is_file() || meta.len() > MAX_BYTES {
            return Ok(None);
        }
        let text = std::fs::read(path)?;
        if text.first() != Some(&b'{') {
            return Ok(None);
        }
        let Ok(value) = serde_json::from_slice::<serde_json::Value>(&text) else {
            return Ok(None);
        };
        match value.get("format").and_then(|f| f.as_str()) {
            Some(FORMAT) => {}
            Some(other) if other.starts_with("kprov-plan/") => {
                return Err(crate::exit::Invalid(format!(
                    "{} is a plan file of another layout ({other}); make the plan again with this kprov",
                    path.display()
                ))
                .into())
            }
            _ => return Ok(None),
        }
        let plan: PlanFile = serde_json::from_value(value)
            .with_context(|| format!("{} is not a valid plan file", path.display()))?;
        Ok(Some(plan))
    }

    /// Why this plan cannot be applied with inputs digesting to `now`, if it cannot.
    pub fn stale_because(&self, now: &BTreeMap<String, String>) -> Option<String> {
        let version = env!("CARGO_PKG_VERSION");
        if self.kprov_version != version {
            return Some(format!(
                "it was made by kprov {}, this is kprov {version}",
                self.kprov_version
            ));
        }
        let changed: Vec<&str> = self
            .digests
            .iter()
            .filter(|(k, v)| now.get(*k) != Some(v))
            .map(|(k, _)| k.as_str())
            .collect();
        (!changed.is_empty()).then(|| {
            let what: Vec<String> = changed.iter().map(|k| self.describe(k)).collect();
            format!("{} changed since the plan was made", what.join(", "))
        })
    }

    fn describe(&self, input: &str) -> String {
        match input {
            "playbook" => format!("the playbook {}", self.run.playbook.display()),
            "roles" => "its roles (tasks, templates or files)".to_string(),
            "inventory" => format!("the inventory {}", self.run.inventory.display()),
            "spec" => match &self.run.spec {
                Some(s) => format!("the spec {}", s.display()),
                None => "the spec".to_string(),
            },
            "extra_vars" => "the -e values (give the plan's -e values again)".to_string(),
            "kprov" => "kprov itself (this binary is not the build that made the plan)".to_string(),
            other => other.to_string(),
        }
    }
}

/// Digests of every input of a run: the playbook file, the files of the role, template
/// and file directories beside it, the inventory (file or directory), the spec and the
/// `-e` values (as merged).
pub fn digests(run: &RunInputs, extra: &[String]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    out.insert(
        "playbook".into(),
        digest_paths(std::slice::from_ref(&run.playbook)),
    );
    let base = run
        .playbook
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let around: Vec<PathBuf> = ["roles", "../roles", "files", "templates"]
        .iter()
        .map(|d| base.join(d))
        .collect();
    out.insert("roles".into(), digest_paths(&around));
    out.insert(
        "inventory".into(),
        digest_paths(std::slice::from_ref(&run.inventory)),
    );
    out.insert(
        "spec".into(),
        digest_paths(&run.spec.iter().cloned().collect::<Vec<_>>()),
    );
    let mut h = Sha256::new();
    for value in extra {
        h.update((value.len() as u64).to_le_bytes());
        h.update(value.as_bytes());
    }
    out.insert("extra_vars".into(), hex(&h.finalize()));
    out.insert("kprov".into(), this_kprov().to_string());
    out
}

/// sha256 of the running kprov binary, read once: a rebuilt kprov (other module code,
/// other scripts) keeps its version number but not this digest.
fn this_kprov() -> &'static str {
    static DIGEST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DIGEST.get_or_init(|| {
        let mut h = Sha256::new();
        let read = std::env::current_exe()
            .and_then(std::fs::File::open)
            .and_then(|mut f| std::io::copy(&mut f, &mut h));
        match read {
            Ok(_) => hex(&h.finalize()),
            // Unreadable: a digest no other run can match, so such a plan is never applied.
            Err(err) => format!("unreadable ({err}) {}", std::process::id()),
        }
    })
}

/// sha256 over the regular files at or below `paths` (relative names and contents, in
/// name order; absent paths count as empty).
fn digest_paths(paths: &[PathBuf]) -> String {
    let mut files = Vec::new();
    for root in paths {
        collect(root, root, &mut files, 0);
    }
    files.sort();
    let mut h = Sha256::new();
    for (name, path) in files {
        h.update(name.as_bytes());
        h.update([0]);
        let content = std::fs::read(&path).unwrap_or_default();
        h.update((content.len() as u64).to_le_bytes());
        h.update(&content);
    }
    hex(&h.finalize())
}

fn collect(root: &Path, path: &Path, out: &mut Vec<(String, PathBuf)>, depth: usize) {
    let Ok(meta) = std::fs::metadata(path) else {
        return;
    };
    let name = format!(
        "{}/{}",
        root.display(),
        path.strip_prefix(root).unwrap_or(path).display()
    );
    if meta.is_file() {
        out.push((name, path.to_path_buf()));
    } else if meta.is_dir() && depth < 16 && out.len() < 100_000 {
        if let Ok(entries) = std::fs::read_dir(path) {
            for entry in entries.flatten() {
                collect(root, &entry.path(), out, depth + 1);
            }
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_in(dir: &Path) -> RunInputs {
        std::fs::create_dir_all(dir.join("playbooks")).unwrap();
        std::fs::create_dir_all(dir.join("roles/r")).unwrap();
        std::fs::write(dir.join("playbooks/p.yaml"), "- hosts: all\n").unwrap();
        std::fs::write(dir.join("roles/r/tasks.yaml"), "[]\n").unwrap();
        std::fs::write(dir.join("hosts.yaml"), "masters: {}\n").unwrap();
        RunInputs {
            playbook: dir.join("playbooks/p.yaml"),
            inventory: dir.join("hosts.yaml"),
            spec: None,
            limit: None,
            tags: Vec::new(),
            skip_tags: Vec::new(),
        }
    }

    #[test]
    fn a_changed_role_or_extra_value_makes_the_plan_stale() {
        let dir = tempfile::tempdir().unwrap();
        let run = run_in(dir.path());
        let extra: Vec<String> = Vec::new();
        let plan = PlanFile::new(run.clone(), digests(&run, &extra), &PlanBook::default());
        assert_eq!(plan.stale_because(&digests(&run, &extra)), None);
        std::fs::write(dir.path().join("roles/r/tasks.yaml"), "[{}]\n").unwrap();
        let why = plan.stale_because(&digests(&run, &extra)).unwrap();
        assert!(why.contains("roles"), "{why}");
        let other = vec!["x=1".to_string()];
        let plan = PlanFile::new(run.clone(), digests(&run, &extra), &PlanBook::default());
        let why = plan.stale_because(&digests(&run, &other)).unwrap();
        assert!(why.contains("-e values"), "{why}");
        // Another build of kprov with the same version number.
        let mut rebuilt = digests(&run, &extra);
        assert_eq!(plan.stale_because(&rebuilt), None);
        rebuilt.insert("kprov".into(), "another build".into());
        let why = plan.stale_because(&rebuilt).unwrap();
        assert!(why.contains("kprov itself"), "{why}");
    }

    #[test]
    fn plan_files_are_private_and_recognised() {
        let dir = tempfile::tempdir().unwrap();
        let run = run_in(dir.path());
        let path = dir.path().join("plan.json");
        let digests = digests(&run, &[]);
        PlanFile::new(run.clone(), digests, &PlanBook::default())
            .write(&path)
            .unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(PlanFile::read_if_plan(&path).unwrap().is_some());
        assert!(PlanFile::read_if_plan(&run.playbook).unwrap().is_none());
    }
}
