//! A full disk (issue 13, finding 7): a push that runs out of space gets
//! the spec's error body naming the cause, keeps nothing of the failed
//! chunk, and a later, smaller push succeeds, also after a restart.
//! The store is a small tmpfs mounted for the test (root only).

use e2e::{bytes_under, noise, require_root, sha256, RegistryOptions, RegistryProcess};
use std::path::Path;
use std::process::Command;

const MIB: usize = 1024 * 1024;

/// A tmpfs of `mib` MiB at `dir`, unmounted on drop.
struct Tmpfs<'a>(&'a Path);

impl<'a> Tmpfs<'a> {
    fn mount(dir: &'a Path, mib: usize) -> Tmpfs<'a> {
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(dir)
            .status()
            .expect("run mount");
        assert!(status.success(), "mount tmpfs at {}", dir.display());
        Tmpfs(dir)
    }
}

impl Drop for Tmpfs<'_> {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.0).status();
    }
}

async fn chunked_push(
    client: &reqwest::Client,
    base: &str,
    repo: &str,
    data: &[u8],
) -> (u16, String) {
    let r = client
        .post(format!("{base}/v2/{repo}/blobs/uploads/"))
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), 202);
    let location = r.headers()["location"]
        .to_str()
        .expect("location")
        .to_string();
    let r = client
        .patch(format!("{base}{location}"))
        .body(data.to_vec())
        .send()
        .await
        .expect("PATCH");
    let status = r.status().as_u16();
    let body = r.text().await.unwrap_or_default();
    if status != 202 {
        return (status, body);
    }
    let r = client
        .put(format!("{base}{location}?digest={}", sha256(data)))
        .send()
        .await
        .expect("PUT");
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

#[tokio::test]
async fn a_full_disk_fails_one_push_not_every_later_one() {
    if !require_root("a_full_disk_fails_one_push_not_every_later_one") {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("data");
    std::fs::create_dir_all(&root).expect("root");
    let _tmpfs = Tmpfs::mount(&root, 16);
    let mut registry = RegistryProcess::start(RegistryOptions {
        root: Some(root.clone()),
        ..RegistryOptions::default()
    });
    // A fresh connection per request: the server closes one whose request
    // body it refused part way.
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .build()
        .expect("client");
    let base = registry.url();

    // Too big for the disk, chunked and monolithic.
    let big = noise(24 * MIB, 7);
    let (status, body) = chunked_push(&client, &base, "full/app", &big).await;
    assert_eq!(status, 507, "chunked push on a full disk: {body}");
    let error: serde_json::Value = serde_json::from_str(&body).expect("a JSON error body");
    assert_eq!(error["errors"][0]["code"], "UNKNOWN");
    let message = error["errors"][0]["message"].as_str().unwrap_or("");
    assert!(
        message.contains("no space left"),
        "message names the cause: {message}"
    );
    let r = client
        .post(format!(
            "{base}/v2/full/app/blobs/uploads/?digest={}",
            sha256(&big)
        ))
        .body(big.clone())
        .send()
        .await
        .expect("monolithic push");
    assert_eq!(r.status(), 507);

    // Nothing of the failed pushes stays on the disk.
    assert!(
        bytes_under(&root) < MIB as u64,
        "{} bytes left behind after failed pushes",
        bytes_under(&root)
    );

    // A push that fits works, before and after a restart.
    for round in 0..2u64 {
        let small = noise(MIB, 100 + round);
        let (status, body) = chunked_push(&client, &base, "full/app", &small).await;
        assert_eq!(status, 201, "a 1 MiB push after a failed one: {body}");
        let served = e2e::api::fetch_blob(&client, &base, "full/app", &sha256(&small)).await;
        assert_eq!(sha256(&served), sha256(&small));
        if round == 0 {
            registry.kill9();
            registry.restart();
        }
    }
}
