//! Small helpers shared by the agent's modules: atomic writes, ids, clocks.

use std::io::Write;
use std::path::Path;

/// Writes `data` to `path` atomically: a temp file in the same directory, then rename.
///
/// No fsync: records must survive an agent crash (the page cache does), and after
/// a power loss no namespace, mount or container they describe exists anyway;
/// recovery then clears the records. Syncing would add milliseconds to every
/// pod and container start.
pub fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(data)?;
    }
    std::fs::rename(&tmp, path)
}

/// A new random 64-hex-digit identifier, as containerd and CRI-O use.
pub fn new_id() -> String {
    let mut buf = [0u8; 32];
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = f.read_exact(&mut buf);
    }
    hex::encode(buf)
}

/// Nanoseconds since the Unix epoch.
pub fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// True when every `selector` pair is present in `labels`.
pub fn labels_match<'a>(
    selector: impl IntoIterator<Item = (&'a String, &'a String)>,
    labels: &std::collections::HashMap<String, String>,
) -> bool {
    selector
        .into_iter()
        .all(|(k, v)| labels.get(k).map(|x| x == v).unwrap_or(false))
}
