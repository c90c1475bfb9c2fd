//! `rregistry fsck`: clean on a sound store; on a broken one it lists each
//! broken promise and exits 1; `--repair` puts them right, after which the
//! registry serves no wrong bytes and fsck is clean again.

use e2e::{http_client, sha256, RegistryOptions, RegistryProcess};
use std::path::Path;
use std::time::{Duration, SystemTime};

fn blob_path(root: &Path, digest: &str) -> std::path::PathBuf {
    let hex = digest.trim_start_matches("sha256:");
    root.join("blobs/sha256").join(&hex[..2]).join(hex)
}

#[tokio::test]
async fn fsck_finds_and_repairs_every_broken_promise() {
    let registry = RegistryProcess::start(RegistryOptions::default());
    let client = http_client();
    let base = registry.url();
    let (manifest, _) = e2e::api::push_image(
        &client,
        &base,
        "fsck/app",
        "v1",
        "amd64",
        &[b"layer one".to_vec()],
    )
    .await;
    let loose = e2e::api::push_blob(&client, &base, "fsck/app", b"a loose blob").await;
    let (code, out) = registry.fsck(false);
    assert_eq!(code, 0, "a sound store: {out}");

    let root = registry.root().to_path_buf();
    // A blob whose bytes no longer match its name.
    std::fs::write(blob_path(&root, &loose), b"tampered").expect("tamper");
    // A tag naming a manifest the repository does not hold.
    let stray = sha256(b"no such manifest");
    std::fs::write(root.join("repositories/fsck/app/_tags/ghost"), &stray).expect("tag");
    // A layer link naming a blob that is not there.
    let missing = sha256(b"no such blob");
    let link = root
        .join("repositories/fsck/app/_layers/sha256")
        .join(missing.trim_start_matches("sha256:"));
    std::fs::write(&link, b"").expect("link");
    // An upload untouched for longer than the purge age (168h by default).
    let upload = root.join("uploads/0b3c9f56-8a0e-4a7e-9d55-1f0b8a2d6c11/log");
    std::fs::create_dir_all(&upload).expect("upload dir");
    let entry = upload.join(format!("{:020}", 0));
    std::fs::write(
        &entry,
        br#"{"repository":"fsck/app","started":0,"offset":0,"sha256":""}"#,
    )
    .expect("entry");
    let old = SystemTime::now() - Duration::from_secs(200 * 3600);
    std::fs::File::options()
        .write(true)
        .open(&entry)
        .and_then(|f| f.set_modified(old))
        .expect("age the upload");
    // A repository missing from the catalog.
    std::fs::remove_dir_all(root.join("catalog-v2")).expect("drop the catalog");

    let (code, out) = registry.fsck(false);
    assert_eq!(code, 1, "a broken store: {out}");
    for kind in [
        "CorruptBlob",
        "DanglingTag",
        "DanglingLayerLink",
        "StaleUpload",
        "MissingCatalogEntry",
    ] {
        assert!(out.contains(kind), "{kind} not reported:\n{out}");
    }
    assert_eq!(out.lines().count(), 5, "exactly the five problems:\n{out}");

    let (code, out) = registry.fsck(true);
    assert_eq!(code, 1, "repair reports what it found: {out}");
    let (code, out) = registry.fsck(false);
    assert_eq!(code, 0, "clean after repair: {out}");

    // The tampered blob is no longer served under its digest; the image is intact.
    let r = client
        .get(format!("{base}/v2/fsck/app/blobs/{loose}"))
        .send()
        .await
        .expect("GET");
    assert_eq!(r.status(), 404);
    let r = client
        .get(format!("{base}/v2/fsck/app/manifests/v1"))
        .header("accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .await
        .expect("GET tag");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["docker-content-digest"], manifest.as_str());
    let catalog: serde_json::Value = client
        .get(format!("{base}/v2/_catalog"))
        .send()
        .await
        .expect("catalog")
        .json()
        .await
        .expect("catalog json");
    assert_eq!(catalog["repositories"], serde_json::json!(["fsck/app"]));
}
