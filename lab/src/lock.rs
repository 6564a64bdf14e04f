//! Exclusive file locks (flock) that serialise lab operations across processes.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use crate::error::LabError;

/// Holds an exclusive lock until dropped.
pub(crate) struct LockGuard {
    _lock: Flock<File>,
    path: PathBuf,
}

impl LockGuard {
    /// Blocks until the lock file at `path` is exclusively ours (creating it if needed).
    pub(crate) fn acquire(path: &Path) -> Result<Self, LabError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(LabError::io("create directory", parent))?;
        }
        loop {
            let file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(path)
                .map_err(LabError::io("open lock file", path))?;
            let lock =
                Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, errno)| LabError::Io {
                    action: "lock",
                    path: path.to_path_buf(),
                    source: std::io::Error::from(errno),
                })?;
            // The previous holder may have deleted the file (`down` does); then this lock
            // guards nothing and we start over with the file now at `path`.
            if same_file(&lock, path) {
                return Ok(LockGuard {
                    _lock: lock,
                    path: path.to_path_buf(),
                });
            }
        }
    }

    /// Deletes the lock file while still holding the lock (used when a lab is removed).
    pub(crate) fn remove_file(&self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Whether the open `file` is the file currently at `path`.
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(open), Ok(current)) => open.dev() == current.dev() && open.ino() == current.ino(),
        _ => false,
    }
}
