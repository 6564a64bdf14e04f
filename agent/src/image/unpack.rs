//! Unpacks one layer tarball (plain, gzip or zstd) into a snapshot directory in
//! the overlayfs format: whiteouts become 0/0 character devices and opaque
//! directories get `trusted.overlay.opaque=y`.

use super::ImageError;
use std::ffi::CString;
use std::io::{BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";

/// Unpacks the layer blob at `blob` into `dest` (created). Streams; never holds the layer in memory.
pub fn unpack_layer(blob: &Path, dest: &Path, digest: &str) -> Result<(), ImageError> {
    let err = |message: String| ImageError::Unpack {
        digest: digest.to_string(),
        message,
    };
    std::fs::create_dir_all(dest)?;
    let mut f = std::fs::File::open(blob)?;
    let mut magic = [0u8; 4];
    let n = read_up_to(&mut f, &mut magic)?;
    let head = std::io::Cursor::new(magic[..n].to_vec());
    let raw = BufReader::with_capacity(256 * 1024, head.chain(f));
    let reader: Box<dyn Read> = if n >= 2 && magic[..2] == [0x1f, 0x8b] {
        Box::new(flate2::read::GzDecoder::new(raw))
    } else if n == 4 && magic == [0x28, 0xb5, 0x2f, 0xfd] {
        Box::new(zstd::stream::read::Decoder::with_buffer(raw).map_err(|e| err(e.to_string()))?)
    } else {
        Box::new(raw)
    };
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(true);
    archive.set_preserve_mtime(true);
    archive.set_unpack_xattrs(true);
    archive.set_overwrite(true);
    for entry in archive.entries().map_err(|e| err(e.to_string()))? {
        let mut entry = entry.map_err(|e| err(e.to_string()))?;
        let path = entry.path().map_err(|e| err(e.to_string()))?.into_owned();
        let rel = clean_relative(&path).ok_or_else(|| err(format!("unsafe path {path:?}")))?;
        let name = rel
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let parent = dest.join(rel.parent().unwrap_or(Path::new("")));
        if name == OPAQUE_MARKER {
            std::fs::create_dir_all(&parent)?;
            set_xattr(&parent, "trusted.overlay.opaque", b"y")?;
        } else if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX) {
            std::fs::create_dir_all(&parent)?;
            let target = parent.join(hidden);
            let _ = std::fs::remove_file(&target);
            let _ = std::fs::remove_dir_all(&target);
            nix::sys::stat::mknod(
                &target,
                nix::sys::stat::SFlag::S_IFCHR,
                nix::sys::stat::Mode::empty(),
                nix::sys::stat::makedev(0, 0),
            )
            .map_err(|e| err(format!("whiteout {}: {e}", target.display())))?;
        } else {
            entry
                .unpack_in(dest)
                .map_err(|e| err(format!("{}: {}", rel.display(), error_chain(&e))))?;
        }
    }
    Ok(())
}

/// `e` and its sources, joined (tar's messages hide the underlying cause).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

fn read_up_to(f: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// The path without a leading `/` or `./`; `None` if it climbs out with `..`.
fn clean_relative(p: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(x) => out.push(x),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

fn set_xattr(path: &Path, name: &str, value: &[u8]) -> std::io::Result<()> {
    let p = CString::new(path.as_os_str().as_bytes()).map_err(std::io::Error::other)?;
    let n = CString::new(name).map_err(std::io::Error::other)?;
    // SAFETY: valid NUL-terminated strings and a live buffer for the call.
    let rc = unsafe {
        libc::lsetxattr(
            p.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};

    fn header(kind: tar::EntryType, mode: u32, uid: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(uid);
        h.set_gid(uid);
        h.set_mtime(1_700_000_000);
        h.set_size(0);
        h
    }

    fn add_file(b: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8], mode: u32, uid: u64) {
        let mut h = header(tar::EntryType::Regular, mode, uid);
        h.set_size(data.len() as u64);
        b.append_data(&mut h, path, data).unwrap();
    }

    fn sample_tar() -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut d = header(tar::EntryType::Directory, 0o755, 0);
        b.append_data(&mut d, "etc/", std::io::empty()).unwrap();
        add_file(
            &mut b,
            "etc/passwd",
            b"root:x:0:0::/:/bin/sh\n",
            0o640,
            1234,
        );
        add_file(&mut b, "etc/.wh.gone", b"", 0o644, 0);
        add_file(&mut b, "var/.wh..wh..opq", b"", 0o644, 0);
        let mut l = header(tar::EntryType::Link, 0o644, 0);
        b.append_link(&mut l, "etc/passwd-link", "etc/passwd")
            .unwrap();
        let mut s = header(tar::EntryType::Symlink, 0o777, 0);
        b.append_link(&mut s, "etc/sym", "passwd").unwrap();
        b.into_inner().unwrap()
    }

    fn check(dest: &Path) {
        let p = dest.join("etc/passwd");
        let md = std::fs::metadata(&p).unwrap();
        assert_eq!(md.permissions().mode() & 0o777, 0o640);
        assert_eq!(md.uid(), 1234);
        let link = std::fs::metadata(dest.join("etc/passwd-link")).unwrap();
        assert_eq!(link.ino(), md.ino(), "hard link shares the inode");
        assert_eq!(
            std::fs::read_link(dest.join("etc/sym")).unwrap(),
            Path::new("passwd")
        );
        let wh = std::fs::symlink_metadata(dest.join("etc/gone")).unwrap();
        assert!(wh.file_type().is_char_device());
        assert_eq!(wh.rdev(), 0);
        assert!(!dest.join("etc/.wh.gone").exists());
        let mut buf = [0u8; 4];
        let p = CString::new(dest.join("var").as_os_str().as_bytes()).unwrap();
        let n = CString::new("trusted.overlay.opaque").unwrap();
        // SAFETY: valid strings and buffer.
        let len = unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), 4) };
        assert_eq!(len, 1);
        assert_eq!(buf[0], b'y');
    }

    #[test]
    fn gzip_and_zstd_layers_unpack_with_whiteouts_links_and_owners() {
        let raw = sample_tar();
        let tmp = tempfile::tempdir().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &raw).unwrap();
        let gz = gz.finish().unwrap();
        let zs = zstd::encode_all(&raw[..], 3).unwrap();
        for (name, data) in [("plain", raw.clone()), ("gz", gz), ("zst", zs)] {
            let blob = tmp.path().join(format!("{name}.blob"));
            std::fs::write(&blob, data).unwrap();
            let dest = tmp.path().join(name);
            unpack_layer(&blob, &dest, "sha256:x").unwrap();
            check(&dest);
        }
    }

    #[test]
    fn escaping_paths_are_refused() {
        assert!(clean_relative(Path::new("../etc/passwd")).is_none());
        assert_eq!(
            clean_relative(Path::new("/./a/b")).unwrap(),
            PathBuf::from("a/b")
        );
    }
}
