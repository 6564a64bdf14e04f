//! SSH access to lab hosts: the lab key, known_hosts, readiness probes and `ssh` argv.

use std::io::Read;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use crate::cmd::Cmd;
use crate::error::LabError;
use crate::fsutil::write_atomic;

/// Creates the lab's ed25519 login key (mode 0600) unless it exists; returns the public key.
pub(crate) fn ensure_key(key: &Path, lab: &str) -> Result<String, LabError> {
    let public = key.with_extension("pub");
    if !key.exists() || !public.exists() {
        let dir = key.parent().unwrap_or_else(|| Path::new("."));
        let tmp = dir.join(format!(".key.tmp{}", std::process::id()));
        let tmp_pub = tmp.with_extension(format!("tmp{}.pub", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        let _ = std::fs::remove_file(&tmp_pub);
        Cmd::new([
            "ssh-keygen",
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            &format!("kprov-lab-{lab}"),
            "-f",
            &tmp.display().to_string(),
        ])
        .hint("ssh-keygen could not create the lab key")
        .run()?;
        // ssh-keygen creates the private key with mode 0600 already.
        std::fs::rename(&tmp_pub, &public).map_err(LabError::io("rename into place", &public))?;
        std::fs::rename(&tmp, key).map_err(LabError::io("rename into place", key))?;
    }
    std::fs::read_to_string(&public)
        .map(|s| s.trim().to_string())
        .map_err(LabError::io("read", &public))
}

/// Writes known_hosts with each host's key under its address.
pub(crate) fn write_known_hosts(path: &Path, entries: &[(IpAddr, String)]) -> Result<(), LabError> {
    let text: String = entries
        .iter()
        .map(|(address, key)| format!("{address} {key}\n"))
        .collect();
    write_atomic(path, text.as_bytes(), 0o644)
}

/// Whether an SSH server answers on `address`:22 with its version banner.
pub(crate) fn answers(address: IpAddr, timeout: Duration) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&SocketAddr::new(address, 22), timeout) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(timeout));
    let mut buf = [0u8; 4];
    stream.read_exact(&mut buf).is_ok() && &buf == b"SSH-"
}

/// argv running `ssh` as root on a lab host. With no `command` it opens an interactive
/// shell; otherwise each element is one argument of the remote command (quoted for the
/// remote shell, so `["sh", "-c", "a | b"]` runs a pipeline).
pub(crate) fn argv(
    key: &Path,
    known_hosts: &Path,
    address: IpAddr,
    command: &[String],
) -> Vec<String> {
    let mut argv: Vec<String> = vec![
        "ssh".into(),
        "-i".into(),
        key.display().to_string(),
        "-o".into(),
        "IdentitiesOnly=yes".into(),
        "-o".into(),
        format!("UserKnownHostsFile={}", known_hosts.display()),
        "-o".into(),
        "StrictHostKeyChecking=yes".into(),
        "-o".into(),
        "PasswordAuthentication=no".into(),
        "-o".into(),
        "ConnectTimeout=10".into(),
        "-o".into(),
        "LogLevel=ERROR".into(),
        format!("root@{address}"),
    ];
    match command {
        [] => {}
        // One argument is a command line for the host's shell, as with `ssh host 'a; b'`.
        [line] => argv.extend(["--".into(), line.clone()]),
        // Several are one command and its arguments, each quoted as one word.
        words => argv.extend(["--".into(), shell_words::join(words)]),
    }
    argv
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_command_is_quoted() {
        let argv = argv(
            Path::new("/k"),
            Path::new("/kh"),
            "172.30.1.10".parse().unwrap(),
            &["echo".into(), "a b; rm -rf /".into()],
        );
        assert_eq!(argv.last().unwrap(), "echo 'a b; rm -rf /'");
        assert!(argv.contains(&"root@172.30.1.10".to_string()));
    }

    #[test]
    fn one_argument_is_a_line_for_the_remote_shell() {
        let argv = argv(
            Path::new("/k"),
            Path::new("/kh"),
            "172.30.1.10".parse().unwrap(),
            &["uname; hostname".into()],
        );
        assert_eq!(argv[argv.len() - 2..], ["--", "uname; hostname"]);
    }
}
