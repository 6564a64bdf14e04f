//! Bounded reads of input files (specs, inventories, variable files, playbooks): regular
//! files only and at most [`MAX_INPUT_BYTES`], so `/dev/zero` cannot exhaust memory and a
//! FIFO cannot hang the run.

use std::io::Read;
use std::path::Path;

use crate::diagnostic::{Diagnostic, Diagnostics};

/// The largest input file kprov reads (16 MiB; real specs and inventories are kilobytes).
pub const MAX_INPUT_BYTES: u64 = 16 * 1024 * 1024;

/// Reads `path` as UTF-8 text, or a diagnostic naming the path and why it cannot be read.
pub(crate) fn read(path: &Path) -> Result<String, Diagnostics> {
    read_limited(path, MAX_INPUT_BYTES)
}

fn read_limited(path: &Path, limit: u64) -> Result<String, Diagnostics> {
    let fail = |message: String, hint: Option<&str>| {
        Diagnostics::from(Diagnostic {
            file: path.to_path_buf(),
            line: 1,
            column: 1,
            key: String::new(),
            message,
            hint: hint.map(str::to_string),
        })
    };
    let not_regular = |kind: &str| {
        fail(
            format!(
                "cannot read the file: {} is {kind}, not a regular file",
                path.display()
            ),
            Some("pass the path of a YAML (or INI) file"),
        )
    };
    // Decided before opening: opening a FIFO for reading waits for a writer.
    let meta =
        std::fs::metadata(path).map_err(|e| fail(format!("cannot read the file: {e}"), None))?;
    if !meta.is_file() {
        return Err(not_regular(kind_of(&meta)));
    }
    let too_big = || {
        fail(
            format!(
                "cannot read the file: {} is larger than {} MiB",
                path.display(),
                limit / (1024 * 1024)
            ),
            Some("kprov's input files are small text files; check the path"),
        )
    };
    if meta.len() > limit {
        return Err(too_big());
    }
    let file =
        std::fs::File::open(path).map_err(|e| fail(format!("cannot read the file: {e}"), None))?;
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| fail(format!("cannot read the file: {e}"), None))?;
    if bytes.len() as u64 > limit {
        return Err(too_big());
    }
    String::from_utf8(bytes)
        .map_err(|_| fail("cannot read the file: it is not UTF-8 text".into(), None))
}

fn kind_of(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "a special file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_fifos_and_big_files_are_refused_with_the_path() {
        let err = read(Path::new("/dev/zero")).unwrap_err().to_string();
        assert!(
            err.contains("/dev/zero") && err.contains("character device"),
            "{err}"
        );
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.is_ok_and(|s| s.success()));
        let err = read(&fifo).unwrap_err().to_string();
        assert!(err.contains("pipe") && err.contains("FIFO"), "{err}");
        let big = dir.path().join("big.yaml");
        std::fs::write(&big, vec![b'#'; 2048]).unwrap();
        let err = read_limited(&big, 1024).unwrap_err().to_string();
        assert!(err.contains("big.yaml") && err.contains("larger"), "{err}");
        std::fs::write(&big, "a: 1\n").unwrap();
        assert_eq!(read_limited(&big, 1024).unwrap(), "a: 1\n");
        let err = read(dir.path()).unwrap_err().to_string();
        assert!(err.contains("directory"), "{err}");
    }
}
