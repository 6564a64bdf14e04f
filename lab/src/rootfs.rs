//! A host's own layer of its overlay root file system: identity, access and apt source,
//! written into the upper directory before the host boots.

use std::io::Read;
use std::path::Path;

use crate::cmd::Cmd;
use crate::error::LabError;
use crate::fsutil::{create_dir_mode, remove_tree, write_atomic};
use crate::layout::HostLayout;

/// resolv.conf of lab hosts: no name server (glibc then tries 127.0.0.1, which refuses).
pub(crate) const RESOLV_CONF: &str =
    "# Written by kprov lab: lab hosts have no DNS server; names come from /etc/hosts.\noptions timeout:1 attempts:1\n";

/// Prepares the host's upper, work and merged directories. Keeps an existing upper
/// directory (the host's disk survives a restart) but refreshes what kprov owns in it.
/// Returns the host's public ed25519 host key (`ssh-ed25519 AAAA…`).
pub(crate) fn prepare(
    host: &HostLayout,
    authorized_key: &str,
    apt_source: &str,
) -> Result<String, LabError> {
    create_dir_mode(&host.dir, 0o700)?;
    remove_tree(&host.work())?;
    create_dir_mode(&host.work(), 0o700)?;
    create_dir_mode(&host.merged(), 0o755)?;
    let upper = host.upper();
    create_dir_mode(&upper, 0o755)?;
    for (dir, mode) in [
        ("etc", 0o755),
        ("etc/ssh", 0o755),
        ("etc/apt", 0o755),
        ("etc/apt/sources.list.d", 0o755),
        ("root", 0o700),
        ("root/.ssh", 0o700),
    ] {
        create_dir_mode(&upper.join(dir), mode)?;
    }
    write_atomic(
        &upper.join("etc/hostname"),
        format!("{}\n", host.name).as_bytes(),
        0o644,
    )?;
    let hosts = format!(
        "127.0.0.1\tlocalhost\n{}\t{}\n::1\tlocalhost ip6-localhost ip6-loopback\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
        host.address, host.name
    );
    write_atomic(&upper.join("etc/hosts"), hosts.as_bytes(), 0o644)?;
    // No DNS server is reachable from the lab: fail lookups at once instead of waiting
    // for the machine's resolver (copied in by debootstrap) to time out.
    write_atomic(
        &upper.join("etc/resolv.conf"),
        RESOLV_CONF.as_bytes(),
        0o644,
    )?;
    let machine_id = upper.join("etc/machine-id");
    if !machine_id.exists() {
        write_atomic(
            &machine_id,
            format!("{}\n", random_hex(16)?).as_bytes(),
            0o444,
        )?;
    }
    write_atomic(
        &upper.join("root/.ssh/authorized_keys"),
        format!("{}\n", authorized_key.trim()).as_bytes(),
        0o600,
    )?;
    write_atomic(
        &upper.join("etc/apt/sources.list.d/kprov-lab.list"),
        apt_source.as_bytes(),
        0o644,
    )?;
    host_key(&upper.join("etc/ssh/ssh_host_ed25519_key"), &host.name)
}

/// Generates the host's ed25519 host key once; returns its public half.
fn host_key(path: &Path, host: &str) -> Result<String, LabError> {
    let public = path.with_extension("pub");
    if !path.exists() || !public.exists() {
        let _ = std::fs::remove_file(path);
        let _ = std::fs::remove_file(&public);
        Cmd::new([
            "ssh-keygen",
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            &format!("root@{host}"),
            "-f",
            &path.display().to_string(),
        ])
        .hint("ssh-keygen could not create the lab host's key")
        .run()?;
    }
    let text = std::fs::read_to_string(&public).map_err(LabError::io("read", &public))?;
    let mut words = text.split_whitespace();
    match (words.next(), words.next()) {
        (Some(kind), Some(key)) => Ok(format!("{kind} {key}")),
        _ => Err(LabError::CorruptState {
            path: public,
            detail: "not an ssh public key".to_string(),
        }),
    }
}

/// `bytes` random bytes as lowercase hex.
fn random_hex(bytes: usize) -> Result<String, LabError> {
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .map_err(LabError::io("read", "/dev/urandom"))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}
