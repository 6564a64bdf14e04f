//! The content store (`content/sha256/<hex>`), snapshot directories
//! (`snapshots/<hex>`, one per layer) and the image index (`images.json`).

use super::ImageError;
use crate::util::write_atomic;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

/// What a container needs from the image config.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct ImageRuntimeConfig {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: String,
    pub user: String,
}

/// One stored image.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImageRecord {
    /// Config digest, `sha256:<hex>`.
    pub id: String,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    pub size: u64,
    /// Layer digests, bottom layer first.
    pub layers: Vec<String>,
    pub config: ImageRuntimeConfig,
}

/// Content, snapshots and the image index under one root directory.
pub struct ImageStore {
    root: PathBuf,
    images: RwLock<Vec<ImageRecord>>,
}

impl ImageStore {
    /// Opens the store at `root`, loading the index.
    pub fn open(root: &Path) -> Result<Self, ImageError> {
        for d in ["content/sha256", "snapshots", "tmp"] {
            std::fs::create_dir_all(root.join(d))?;
        }
        let images = match std::fs::read(root.join("images.json")) {
            Ok(b) => serde_json::from_slice(&b).map_err(std::io::Error::other)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        Ok(Self {
            root: root.to_path_buf(),
            images: RwLock::new(images),
        })
    }

    /// Root directory of the store.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob with `digest` lives.
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        self.root.join("content/sha256").join(hex_of(digest))
    }

    /// Where the unpacked layer with `digest` lives.
    pub fn snapshot_path(&self, digest: &str) -> PathBuf {
        self.root.join("snapshots").join(hex_of(digest))
    }

    /// A scratch directory on the same filesystem (for temp files before rename).
    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// All images.
    pub fn list(&self) -> Vec<ImageRecord> {
        self.images.read().map(|g| g.clone()).unwrap_or_default()
    }

    /// Finds an image by id (with or without `sha256:`, or a unique hex prefix),
    /// by tag or by repo digest.
    pub fn resolve(&self, image: &str) -> Option<ImageRecord> {
        let g = self.images.read().ok()?;
        find(&g, image).map(|i| g[i].clone())
    }

    /// Adds an image; its tags move away from any other image that had them.
    pub fn insert(&self, rec: ImageRecord) -> Result<(), ImageError> {
        let mut g = self.images.write().map_err(|_| poisoned())?;
        for other in g.iter_mut() {
            other.repo_tags.retain(|t| !rec.repo_tags.contains(t));
        }
        if let Some(existing) = g.iter_mut().find(|i| i.id == rec.id) {
            for t in rec.repo_tags {
                if !existing.repo_tags.contains(&t) {
                    existing.repo_tags.push(t);
                }
            }
            for d in rec.repo_digests {
                if !existing.repo_digests.contains(&d) {
                    existing.repo_digests.push(d);
                }
            }
        } else {
            g.push(rec);
        }
        self.persist(&g)
    }

    /// Removes the image `image` names (all its tags); `None` when absent.
    pub fn remove(&self, image: &str) -> Result<Option<ImageRecord>, ImageError> {
        let mut g = self.images.write().map_err(|_| poisoned())?;
        let Some(i) = find(&g, image) else {
            return Ok(None);
        };
        let rec = g.remove(i);
        self.persist(&g)?;
        Ok(Some(rec))
    }

    /// Deletes blobs and snapshots no image references and no path in `in_use` names.
    pub fn gc(&self, in_use: &HashSet<PathBuf>) -> Result<(), ImageError> {
        let keep: HashSet<String> = self
            .list()
            .iter()
            .flat_map(|i| i.layers.iter().map(|l| hex_of(l).to_string()))
            .collect();
        let keep_cfg: HashSet<String> = self
            .list()
            .iter()
            .map(|i| hex_of(&i.id).to_string())
            .collect();
        for (dir, is_snapshot) in [("snapshots", true), ("content/sha256", false)] {
            for e in std::fs::read_dir(self.root.join(dir))?.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if keep.contains(&name) || (!is_snapshot && keep_cfg.contains(&name)) {
                    continue;
                }
                if in_use.contains(&e.path()) {
                    continue;
                }
                let p = e.path();
                let r = if is_snapshot {
                    std::fs::remove_dir_all(&p)
                } else {
                    std::fs::remove_file(&p)
                };
                if let Err(err) = r {
                    tracing::warn!(path = %p.display(), error = %err, "gc failed");
                }
            }
        }
        Ok(())
    }

    /// Bytes and inodes used under the store root.
    pub fn usage(&self) -> (u64, u64) {
        fn walk(p: &Path, bytes: &mut u64, inodes: &mut u64) {
            let Ok(rd) = std::fs::read_dir(p) else { return };
            for e in rd.flatten() {
                let Ok(md) = e.path().symlink_metadata() else {
                    continue;
                };
                *inodes += 1;
                if md.is_dir() {
                    walk(&e.path(), bytes, inodes);
                } else {
                    *bytes += md.len();
                }
            }
        }
        let (mut b, mut i) = (0, 0);
        walk(&self.root.join("content"), &mut b, &mut i);
        walk(&self.root.join("snapshots"), &mut b, &mut i);
        (b, i)
    }

    fn persist(&self, images: &[ImageRecord]) -> Result<(), ImageError> {
        let data = serde_json::to_vec_pretty(images).map_err(std::io::Error::other)?;
        write_atomic(&self.root.join("images.json"), &data)?;
        Ok(())
    }
}

fn poisoned() -> ImageError {
    ImageError::Io(std::io::Error::other("image index lock poisoned"))
}

/// The hex part of `sha256:<hex>`.
pub fn hex_of(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap_or(digest)
}

fn find(images: &[ImageRecord], image: &str) -> Option<usize> {
    if let Some(i) = images.iter().position(|i| i.id == image) {
        return Some(i);
    }
    if let Ok(r) = super::normalize(image) {
        let whole = r.whole();
        if let Some(i) = images
            .iter()
            .position(|i| i.repo_tags.contains(&whole) || i.repo_digests.contains(&whole))
        {
            return Some(i);
        }
    }
    let hex = hex_of(image);
    if hex.len() >= 12 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
        let hits: Vec<usize> = images
            .iter()
            .enumerate()
            .filter(|(_, i)| hex_of(&i.id).starts_with(hex))
            .map(|(n, _)| n)
            .collect();
        if hits.len() == 1 {
            return Some(hits[0]);
        }
    }
    None
}
