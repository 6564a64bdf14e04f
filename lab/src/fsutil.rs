//! Small file helpers: atomic writes and modes.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::error::LabError;

/// Writes `contents` to `path` atomically (temp file in the same directory, then rename),
/// with permission bits `mode`.
pub(crate) fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<(), LabError> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    std::fs::create_dir_all(dir).map_err(LabError::io("create directory", dir))?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{file_name}.tmp{}", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.set_permissions(std::fs::Permissions::from_mode(mode))?;
        file.write_all(contents)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(LabError::io("write", path))
}

/// Creates `path` (and parents) and sets its mode.
pub(crate) fn create_dir_mode(path: &Path, mode: u32) -> Result<(), LabError> {
    std::fs::create_dir_all(path).map_err(LabError::io("create directory", path))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(LabError::io("set permissions of", path))
}

/// Removes a directory tree if it exists.
pub(crate) fn remove_tree(path: &Path) -> Result<(), LabError> {
    match std::fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(LabError::Io {
            action: "remove",
            path: path.to_path_buf(),
            source: e,
        }),
    }
}
