//! Pulling from a real registry on loopback: single and multi-layer images
//! (gzip + zstd, whiteouts, opaque dirs, hard links), a multi-arch index,
//! List/Status/Remove and ImageFsInfo.

mod common;

use common::agent::TestAgent;
use common::registry::Registry;
use kprov_agent::api;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

fn spec(image: &str) -> Option<api::ImageSpec> {
    Some(api::ImageSpec {
        image: image.into(),
        ..Default::default()
    })
}

#[tokio::test]
async fn pull_list_status_remove() {
    let reg = Registry::start();
    let (busybox_id, layered_id, multi_amd64_id) = common::images::push_standard(&reg.host).await;
    let a = TestAgent::start(Some(&reg.host), 3, false);
    let mut im = a.images().await;

    let busybox = format!("{}/test/busybox:1", reg.host);
    let r = im
        .pull_image(api::PullImageRequest {
            image: spec(&busybox),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.image_ref, busybox_id);

    let layered = format!("{}/test/layered:1", reg.host);
    let r = im
        .pull_image(api::PullImageRequest {
            image: spec(&layered),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.image_ref, layered_id);

    // The index resolves to this host's platform (amd64).
    let multi = format!("{}/test/multi:1", reg.host);
    let r = im
        .pull_image(api::PullImageRequest {
            image: spec(&multi),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        r.image_ref, multi_amd64_id,
        "index must resolve to linux/amd64"
    );

    let list = im
        .list_images(api::ListImagesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .images;
    assert_eq!(list.len(), 3);
    let st = im
        .image_status(api::ImageStatusRequest {
            image: spec(&busybox),
            verbose: false,
        })
        .await
        .unwrap()
        .into_inner();
    let img = st.image.expect("pulled image has a status");
    assert_eq!(img.id, busybox_id);
    assert_eq!(img.repo_tags, vec![busybox.clone()]);
    assert!(img.repo_digests[0].starts_with(&format!("{}/test/busybox@sha256:", reg.host)));
    assert!(img.size > 500_000, "busybox is large: {}", img.size);
    assert_eq!(img.uid.unwrap().value, 0);
    // By id too.
    let st = im
        .image_status(api::ImageStatusRequest {
            image: spec(&busybox_id),
            verbose: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(st.image.unwrap().id, busybox_id);

    // The snapshots on disk: whiteout as 0/0 char device, opaque /var, hard links kept.
    let store = a.path().join("root/images");
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(store.join("images.json")).unwrap()).unwrap();
    let layers: Vec<String> = index
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == layered_id)
        .unwrap()["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            l.as_str()
                .unwrap()
                .trim_start_matches("sha256:")
                .to_string()
        })
        .collect();
    let base = store.join("snapshots").join(&layers[0]);
    let top = store.join("snapshots").join(&layers[1]);
    let sh = std::fs::metadata(base.join("bin/sh")).unwrap();
    let bb = std::fs::metadata(base.join("bin/busybox")).unwrap();
    assert_eq!(sh.ino(), bb.ino(), "applets are hard links to busybox");
    assert!(sh.nlink() > 100);
    let wh = std::fs::symlink_metadata(top.join("etc/group")).unwrap();
    assert!(
        wh.file_type().is_char_device() && wh.rdev() == 0,
        "whiteout for /etc/group"
    );
    assert_eq!(
        std::fs::read_to_string(top.join("etc/marker")).unwrap(),
        "layered"
    );
    // Blobs are content-addressed and verified.
    for l in &layers {
        let blob = std::fs::read(store.join("content/sha256").join(l)).unwrap();
        assert_eq!(common::images::sha256(&blob), format!("sha256:{l}"));
    }

    let fs = im
        .image_fs_info(api::ImageFsInfoRequest {})
        .await
        .unwrap()
        .into_inner();
    let used = fs.image_filesystems[0].used_bytes.as_ref().unwrap().value;
    assert!(used > 1_000_000, "used {used}");

    // Remove by tag: gone from list, and its unshared layer is collected.
    im.remove_image(api::RemoveImageRequest {
        image: spec(&layered),
    })
    .await
    .unwrap();
    im.remove_image(api::RemoveImageRequest {
        image: spec(&layered),
    })
    .await
    .unwrap();
    let st = im
        .image_status(api::ImageStatusRequest {
            image: spec(&layered),
            verbose: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(st.image.is_none());
    assert!(!top.exists(), "the layered image's own layer is collected");
    assert!(base.exists(), "a layer other images use stays");
    let list = im
        .list_images(api::ListImagesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .images;
    assert_eq!(list.len(), 2);

    // A missing image is a NotFound-ish pull error, and the agent keeps serving.
    let e = im
        .pull_image(api::PullImageRequest {
            image: spec(&format!("{}/test/absent:1", reg.host)),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_ne!(e.code(), tonic::Code::Ok);

    // The index survives a restart.
    drop(im);
    let mut a = a;
    a.restart(false);
    let mut im = a.images().await;
    let list = im
        .list_images(api::ListImagesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .images;
    assert_eq!(list.len(), 2);
}

#[tokio::test]
async fn mirror_is_tried_first() {
    let reg = Registry::start();
    let (busybox_id, _, _) = common::images::push_standard(&reg.host).await;
    let a = TestAgent::start(Some(&reg.host), 4, false);
    // Point a fake upstream name at the local registry through a mirror entry.
    let cfg = std::fs::read_to_string(&a.config).unwrap();
    std::fs::write(
        &a.config,
        format!(
            "{cfg}\n[registry.mirrors]\n\"upstream.invalid\" = [\"{}\"]\n",
            reg.host
        ),
    )
    .unwrap();
    let mut a = a;
    a.restart(false);
    let mut im = a.images().await;
    let r = im
        .pull_image(api::PullImageRequest {
            image: spec("upstream.invalid/test/busybox:1"),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.image_ref, busybox_id);
    let st = im
        .image_status(api::ImageStatusRequest {
            image: spec("upstream.invalid/test/busybox:1"),
            verbose: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(st.image.is_some());
}

#[tokio::test]
async fn basic_auth_from_the_request_or_the_config() {
    let reg = Registry::start_with_auth("puller", "s3cret-pw");
    let auth = oci_client::secrets::RegistryAuth::Basic("puller".into(), "s3cret-pw".into());
    let base = common::images::gzip(common::images::busybox_tar());
    let (_, id) = common::images::push_as(
        &reg.host,
        "private/busybox:1",
        &[base],
        &["/bin/sh"],
        "amd64",
        &auth,
    )
    .await;
    let image = format!("{}/private/busybox:1", reg.host);

    let mut a = TestAgent::start(Some(&reg.host), 9, false);
    let mut im = a.images().await;
    let e = im
        .pull_image(api::PullImageRequest {
            image: spec(&image),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(!e.message().contains("s3cret-pw"));
    let r = im
        .pull_image(api::PullImageRequest {
            image: spec(&image),
            auth: Some(api::AuthConfig {
                username: "puller".into(),
                password: "s3cret-pw".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.image_ref, id);
    im.remove_image(api::RemoveImageRequest {
        image: spec(&image),
    })
    .await
    .unwrap();
    // The docker `auth` field (base64 of user:password) works too.
    let r = im
        .pull_image(api::PullImageRequest {
            image: spec(&image),
            auth: Some(api::AuthConfig {
                auth: "cHVsbGVyOnMzY3JldC1wdw==".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.image_ref, id);
    im.remove_image(api::RemoveImageRequest {
        image: spec(&image),
    })
    .await
    .unwrap();

    // Credentials from the agent config, per registry host.
    drop(im);
    let cfg = std::fs::read_to_string(&a.config).unwrap();
    std::fs::write(
        &a.config,
        cfg.replace(
            "plain_http = true\n",
            "plain_http = true\nusername = \"puller\"\npassword = \"s3cret-pw\"\n",
        ),
    )
    .unwrap();
    a.restart(false);
    let mut im = a.images().await;
    let r = im
        .pull_image(api::PullImageRequest {
            image: spec(&image),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.image_ref, id);
    assert!(
        !a.log().contains("s3cret-pw"),
        "the password never reaches the log"
    );
}
