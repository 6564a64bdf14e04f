//! Small test images built from Debian's busybox-static, pushed with oci-client.

use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
use oci_client::manifest::{ImageIndexEntry, OciImageIndex, OciImageManifest, Platform};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use sha2::{Digest, Sha256};
use std::io::Write;

pub const GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

/// A layer: uncompressed tar and its compressed form.
pub struct Layer {
    pub tar: Vec<u8>,
    pub blob: Vec<u8>,
    pub media_type: &'static str,
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_700_000_000);
    h.set_size(size);
    h
}

pub fn add_dir(b: &mut tar::Builder<Vec<u8>>, path: &str, mode: u32) {
    let mut h = header(tar::EntryType::Directory, mode, 0);
    b.append_data(&mut h, path, std::io::empty()).unwrap();
}

pub fn add_file(b: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8], mode: u32) {
    let mut h = header(tar::EntryType::Regular, mode, data.len() as u64);
    b.append_data(&mut h, path, data).unwrap();
}

fn add_hardlink(b: &mut tar::Builder<Vec<u8>>, path: &str, target: &str) {
    let mut h = header(tar::EntryType::Link, 0o755, 0);
    b.append_link(&mut h, path, target).unwrap();
}

/// The base layer: busybox with every applet as a hard link in /bin, /etc files, /var/old.
pub fn busybox_tar() -> Vec<u8> {
    let busybox = std::fs::read("/bin/busybox")
        .expect("/bin/busybox must exist (Debian package busybox-static)");
    let list = std::process::Command::new("/bin/busybox")
        .arg("--list")
        .output()
        .expect("busybox --list");
    let mut b = tar::Builder::new(Vec::new());
    for (d, m) in [
        ("bin", 0o755),
        ("etc", 0o755),
        ("tmp", 0o1777),
        ("proc", 0o555),
        ("sys", 0o555),
        ("dev", 0o755),
        ("root", 0o700),
        ("var", 0o755),
        ("www", 0o755),
    ] {
        add_dir(&mut b, d, m);
    }
    add_file(&mut b, "bin/busybox", &busybox, 0o755);
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" && !applet.is_empty() {
            add_hardlink(&mut b, &format!("bin/{applet}"), "bin/busybox");
        }
    }
    add_file(
        &mut b,
        "etc/passwd",
        b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n",
        0o644,
    );
    add_file(&mut b, "etc/group", b"root:x:0:\nnogroup:x:65534:\n", 0o644);
    add_file(&mut b, "var/old", b"old\n", 0o644);
    add_file(&mut b, "www/index.html", b"pong\n", 0o644);
    b.into_inner().unwrap()
}

/// An upper layer: deletes /etc/group (whiteout), makes /var opaque with /var/new, adds /etc/marker.
pub fn whiteout_tar(marker: &str) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    add_dir(&mut b, "etc", 0o755);
    add_file(&mut b, "etc/.wh.group", b"", 0o644);
    add_file(&mut b, "etc/marker", marker.as_bytes(), 0o644);
    add_dir(&mut b, "var", 0o755);
    add_file(&mut b, "var/.wh..wh..opq", b"", 0o644);
    add_file(&mut b, "var/new", b"new\n", 0o644);
    b.into_inner().unwrap()
}

pub fn gzip(tar: Vec<u8>) -> Layer {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(&tar).unwrap();
    Layer {
        blob: e.finish().unwrap(),
        tar,
        media_type: GZIP,
    }
}

pub fn zstd(tar: Vec<u8>) -> Layer {
    Layer {
        blob: zstd::encode_all(&tar[..], 3).unwrap(),
        tar,
        media_type: ZSTD,
    }
}

pub fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

fn client() -> Client {
    kprov_agent::image::install_crypto_provider();
    Client::new(ClientConfig {
        protocol: ClientProtocol::Http,
        ..Default::default()
    })
}

/// Pushes an image; returns (manifest digest, config digest = image id).
pub async fn push(
    registry: &str,
    repo_tag: &str,
    layers: &[Layer],
    cmd: &[&str],
    arch: &str,
) -> (String, String) {
    push_as(
        registry,
        repo_tag,
        layers,
        cmd,
        arch,
        &RegistryAuth::Anonymous,
    )
    .await
}

/// A client that talks HTTPS and trusts the CA in `ca_pem` (for TLS registries).
pub fn tls_client(ca_pem: &std::path::Path) -> Client {
    kprov_agent::image::install_crypto_provider();
    Client::new(ClientConfig {
        protocol: ClientProtocol::Https,
        extra_root_certificates: vec![oci_client::client::Certificate {
            encoding: oci_client::client::CertificateEncoding::Pem,
            data: std::fs::read(ca_pem).unwrap(),
        }],
        ..Default::default()
    })
}

/// [`push`] with credentials.
pub async fn push_as(
    registry: &str,
    repo_tag: &str,
    layers: &[Layer],
    cmd: &[&str],
    arch: &str,
    auth: &RegistryAuth,
) -> (String, String) {
    push_with(&client(), registry, repo_tag, layers, cmd, arch, auth).await
}

/// [`push_as`] through a given client.
pub async fn push_with(
    c: &Client,
    registry: &str,
    repo_tag: &str,
    layers: &[Layer],
    cmd: &[&str],
    arch: &str,
    auth: &RegistryAuth,
) -> (String, String) {
    let diff_ids: Vec<String> = layers.iter().map(|l| sha256(&l.tar)).collect();
    let config = serde_json::json!({
        "architecture": arch,
        "os": "linux",
        "config": {"Cmd": cmd, "Env": ["PATH=/bin"], "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    })
    .to_string()
    .into_bytes();
    let config_digest = sha256(&config);
    let image_layers: Vec<ImageLayer> = layers
        .iter()
        .map(|l| ImageLayer::new(l.blob.clone(), l.media_type.to_string(), None))
        .collect();
    let config = Config::new(
        config,
        "application/vnd.oci.image.config.v1+json".into(),
        None,
    );
    let manifest = OciImageManifest::build(&image_layers, &config, None);
    let reference: Reference = format!("{registry}/{repo_tag}").parse().unwrap();
    c.push(&reference, &image_layers, config, auth, Some(manifest))
        .await
        .expect("push image");
    let digest = c
        .fetch_manifest_digest(&reference, auth)
        .await
        .expect("manifest digest");
    (digest, config_digest)
}

/// Pushes an index for linux/amd64 and linux/arm64 manifests already pushed.
pub async fn push_index(registry: &str, repo_tag: &str, entries: &[(&str, String)]) {
    let reference: Reference = format!("{registry}/{repo_tag}").parse().unwrap();
    let c = client();
    let mut manifests = Vec::new();
    for (arch, digest) in entries {
        let r: Reference = format!("{registry}/{}@{digest}", reference.repository())
            .parse()
            .unwrap();
        let (raw, _) = c
            .pull_manifest_raw(
                &r,
                &RegistryAuth::Anonymous,
                &["application/vnd.oci.image.manifest.v1+json"],
            )
            .await
            .expect("raw manifest");
        manifests.push(ImageIndexEntry {
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            digest: digest.clone(),
            size: raw.len() as i64,
            platform: Some(Platform {
                architecture: arch.to_string().as_str().into(),
                os: "linux".into(),
                os_version: None,
                os_features: None,
                variant: None,
                features: None,
            }),
            annotations: None,
            artifact_type: None,
        });
    }
    let index = OciImageIndex {
        schema_version: 2,
        media_type: Some("application/vnd.oci.image.index.v1+json".into()),
        manifests,
        artifact_type: None,
        annotations: None,
    };
    c.push_manifest_list(&reference, &RegistryAuth::Anonymous, index)
        .await
        .expect("push index");
}

/// Pushes the standard test images to `registry`:
/// `test/busybox:1` (one gzip layer), `test/layered:1` (gzip + zstd whiteout layer),
/// `test/multi:1` (index: amd64 → marker "amd64", arm64 → marker "arm64").
/// Returns the config digests (busybox, layered, multi-amd64).
pub async fn push_standard(registry: &str) -> (String, String, String) {
    let base = gzip(busybox_tar());
    let (_, busybox) = push(
        registry,
        "test/busybox:1",
        std::slice::from_ref(&base),
        &["/bin/sh"],
        "amd64",
    )
    .await;
    let (_, layered) = push(
        registry,
        "test/layered:1",
        &[gzip(busybox_tar()), zstd(whiteout_tar("layered"))],
        &["/bin/sh"],
        "amd64",
    )
    .await;
    let (amd, amd_cfg) = push(
        registry,
        "test/multi:amd64",
        &[gzip(busybox_tar()), gzip(whiteout_tar("amd64"))],
        &["/bin/sh"],
        "amd64",
    )
    .await;
    let (arm, _) = push(
        registry,
        "test/multi:arm64",
        &[gzip(busybox_tar()), gzip(whiteout_tar("arm64"))],
        &["/bin/sh"],
        "arm64",
    )
    .await;
    push_index(registry, "test/multi:1", &[("arm64", arm), ("amd64", amd)]).await;
    (busybox, layered, amd_cfg)
}
