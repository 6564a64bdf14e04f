//! Records on disk: one JSON file per object, written atomically.

use super::{ContainerRecord, SandboxRecord};
use crate::util::write_atomic;
use serde::{de::DeserializeOwned, Serialize};
use std::path::{Path, PathBuf};

/// Reads and writes records under `state_dir/{sandboxes,containers}`.
#[derive(Debug, Clone)]
pub struct RecordStore {
    sandboxes: PathBuf,
    containers: PathBuf,
}

impl RecordStore {
    /// Opens (creating) the record directories under `dir`.
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        let s = Self {
            sandboxes: dir.join("sandboxes"),
            containers: dir.join("containers"),
        };
        std::fs::create_dir_all(&s.sandboxes)?;
        std::fs::create_dir_all(&s.containers)?;
        Ok(s)
    }

    pub fn save_sandbox(&self, r: &SandboxRecord) -> std::io::Result<()> {
        save(&self.sandboxes, &r.id, r)
    }

    pub fn save_container(&self, r: &ContainerRecord) -> std::io::Result<()> {
        save(&self.containers, &r.id, r)
    }

    pub fn delete_sandbox(&self, id: &str) -> std::io::Result<()> {
        delete(&self.sandboxes, id)
    }

    pub fn delete_container(&self, id: &str) -> std::io::Result<()> {
        delete(&self.containers, id)
    }

    /// All sandbox records; unreadable files are logged and skipped.
    pub fn load_sandboxes(&self) -> Vec<SandboxRecord> {
        load_all(&self.sandboxes)
    }

    /// All container records; unreadable files are logged and skipped.
    pub fn load_containers(&self) -> Vec<ContainerRecord> {
        load_all(&self.containers)
    }
}

fn save<T: Serialize>(dir: &Path, id: &str, r: &T) -> std::io::Result<()> {
    let data = serde_json::to_vec(r).map_err(std::io::Error::other)?;
    write_atomic(&dir.join(format!("{id}.json")), &data)
}

fn delete(dir: &Path, id: &str) -> std::io::Result<()> {
    match std::fs::remove_file(dir.join(format!("{id}.json"))) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn load_all<T: DeserializeOwned>(dir: &Path) -> Vec<T> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.extension().and_then(|x| x.to_str()) != Some("json") {
            continue;
        }
        match std::fs::read(&p)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
        {
            Ok(r) => out.push(r),
            Err(e) => tracing::warn!(path = %p.display(), error = %e, "skipping unreadable record"),
        }
    }
    out
}
