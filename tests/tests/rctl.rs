//! The real `rctl` against the real rregistry: pull (platform choice,
//! verification, resume after a registry crash), push, tag, images, rmi,
//! tags and catalog across pages, manifest, digest, inspect, delete.

use e2e::api::{push_image, push_index, put_manifest, tar_layer};
use e2e::rctl::Rctl;
use e2e::{http_client, sha256, RegistryOptions, RegistryProcess};
use serde_json::Value;
use std::time::Duration;

fn layer(seed: u8, len: usize) -> Vec<u8> {
    let mut state = u64::from(seed) * 0x9E37_79B9 + 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

fn blob_count(root: &std::path::Path) -> usize {
    ["sha256", "sha512"]
        .iter()
        .map(|alg| {
            std::fs::read_dir(root.join("blobs").join(alg))
                .map(|d| d.count())
                .unwrap_or(0)
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn pull_push_and_the_local_store() {
    let registry = RegistryProcess::start(RegistryOptions::default());
    let host = registry.host();
    let client = http_client();
    let base = registry.url();
    let layers: Vec<Vec<u8>> = (0..4)
        .map(|i| layer(i, 300_000 + usize::from(i) * 1000))
        .collect();
    let (amd64, _) = push_image(&client, &base, "src/app", "amd64-only", "amd64", &layers).await;
    let (arm64, _) = push_image(
        &client,
        &base,
        "src/app",
        "arm64-only",
        "arm64",
        &layers[..1],
    )
    .await;
    let (_, index_bytes) = push_index(
        &client,
        &base,
        "src/app",
        "1",
        &[(&amd64, "linux/amd64"), (&arm64, "linux/arm64/v8")],
    )
    .await;

    let rctl = Rctl::new();
    let name = format!("{host}/src/app:1");
    let out = rctl.ok(&["pull", &name]);
    assert!(
        out.contains(&format!("Digest: {}", sha256(&index_bytes))),
        "{out}"
    );
    assert!(out.contains("Status: Downloaded newer image"), "{out}");
    assert_eq!(out.lines().last(), Some(name.as_str()));
    assert_eq!(
        blob_count(rctl.root()),
        6,
        "config, 4 layers and the amd64 manifest"
    );
    // Again: nothing to download.
    let out = rctl.ok(&["pull", &name]);
    assert!(out.contains("Status: Image is up to date"), "{out}");
    // Another platform, and one the index lacks.
    let out = rctl.ok(&["pull", "--platform", "linux/arm64", &name]);
    assert!(
        out.contains("Already exists"),
        "shared layer fetched again: {out}"
    );
    let err = rctl.fails(&["pull", "--platform", "linux/s390x", &name]);
    assert!(
        err.contains("linux/amd64") && err.contains("linux/arm64/v8"),
        "{err}"
    );
    // The name now points at the arm64 image, as docker's would; back to this machine's.
    rctl.ok(&["pull", "-q", &name]);
    assert!(rctl.ok(&["inspect", &name]).contains(&amd64));

    // The store is an OCI layout skopeo-style tools read; images lists it.
    let index_json: Value =
        serde_json::from_slice(&std::fs::read(rctl.root().join("index.json")).unwrap()).unwrap();
    assert_eq!(
        index_json["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
        name
    );
    let images = rctl.ok(&["images"]);
    assert!(
        images.contains(&format!("{host}/src/app")) && images.contains(" 1 "),
        "{images}"
    );

    // Tag and push into another repository, pull into a fresh store, compare.
    let target = format!("{host}/dst/app:2");
    rctl.ok(&["tag", &name, &target]);
    let out = rctl.ok(&["push", &target]);
    assert!(out.contains(&format!("2: digest: {amd64} size:")), "{out}");
    assert!(
        out.contains("Mounted from src/app") && !out.contains("Pushed"),
        "blobs pulled from src/app were uploaded again instead of mounted: {out}"
    );
    let out = rctl.ok(&["push", &target]);
    assert!(
        out.contains("Layer already exists") && !out.contains("Pushed"),
        "{out}"
    );
    let fresh = Rctl::new();
    fresh.ok(&["pull", "-q", &target]);
    assert_eq!(fresh.ok(&["digest", &target]).trim(), amd64);
    let inspect: Value = serde_json::from_str(&fresh.ok(&["inspect", &target])).unwrap();
    assert_eq!(inspect["Source"], "local");
    assert_eq!(inspect["Digest"], amd64);
    assert_eq!(inspect["Config"]["architecture"], "amd64");
    let remote: Value =
        serde_json::from_str(&fresh.ok(&["inspect", &format!("{host}/src/app:arm64-only")]))
            .unwrap();
    assert_eq!(
        (
            remote["Source"].as_str(),
            remote["Config"]["architecture"].as_str()
        ),
        (Some("remote"), Some("arm64"))
    );
    let raw = fresh.ok(&["manifest", &name]);
    assert_eq!(raw.trim_end().as_bytes(), &index_bytes[..]);

    // rmi frees only what no other name uses.
    let manifest_blob = rctl
        .root()
        .join("blobs/sha256")
        .join(&amd64["sha256:".len()..]);
    let layer_blob = rctl
        .root()
        .join("blobs/sha256")
        .join(&sha256(&tar_layer(&layers[3]))["sha256:".len()..]);
    let out = rctl.ok(&["rmi", &target]);
    assert!(out.contains(&format!("Untagged: {target}")), "{out}");
    assert!(
        manifest_blob.exists() && layer_blob.exists(),
        "blobs still named by {name} were removed"
    );
    let out = rctl.ok(&["rmi", &name]);
    assert!(out.contains(&format!("Deleted: {amd64}")), "{out}");
    assert!(
        !manifest_blob.exists() && !layer_blob.exists(),
        "blobs of the removed image remain"
    );
    let err = rctl.fails(&["rmi", &name]);
    assert!(err.contains("no such image"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn listings_follow_pages_and_delete_is_explained() {
    let registry = RegistryProcess::start(RegistryOptions {
        delete: false,
        ..RegistryOptions::default()
    });
    let host = registry.host();
    let client = http_client();
    let (_, manifest) = push_image(
        &client,
        &registry.url(),
        "many/tags",
        "seed",
        "amd64",
        &[layer(9, 1000)],
    )
    .await;
    for i in 0..25 {
        put_manifest(
            &client,
            &registry.url(),
            "many/tags",
            &format!("t{i:02}"),
            "application/vnd.oci.image.manifest.v1+json",
            &manifest,
        )
        .await;
    }
    for i in 0..12 {
        push_image(
            &client,
            &registry.url(),
            &format!("repo{i:02}/x"),
            "1",
            "amd64",
            &[layer(i, 10)],
        )
        .await;
    }
    let rctl = Rctl::new();
    let tags = rctl.ok(&["tags", "--page-size", "10", &format!("{host}/many/tags")]);
    let tags: Vec<&str> = tags.lines().collect();
    assert_eq!(tags.len(), 26, "{tags:?}");
    assert_eq!(tags[0], "seed");
    let catalog = rctl.ok(&["catalog", "--page-size", "5", &host]);
    assert_eq!(catalog.lines().count(), 13, "{catalog}");
    let err = rctl.fails(&["delete", &format!("{host}/many/tags:t00")]);
    assert!(err.contains("does not allow deletes"), "{err}");
    let err = rctl.fails(&["pull", &format!("{host}/many/Tags")]);
    assert!(err.contains("invalid reference"), "{err}");
    let err = rctl.fails(&["pull", &format!("{host}/no/such:thing")]);
    assert!(
        err.contains("404") && err.contains("MANIFEST_UNKNOWN"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_tag_and_manifest() {
    let registry = RegistryProcess::start(RegistryOptions::default());
    let host = registry.host();
    let (digest, _) = push_image(
        &http_client(),
        &registry.url(),
        "del/me",
        "v1",
        "amd64",
        &[layer(3, 100)],
    )
    .await;
    let rctl = Rctl::new();
    rctl.ok(&["delete", &format!("{host}/del/me:v1")]);
    let err = rctl.fails(&["digest", &format!("{host}/del/me:v1")]);
    assert!(err.contains("MANIFEST_UNKNOWN"), "{err}");
    assert_eq!(
        rctl.ok(&["digest", &format!("{host}/del/me@{digest}")])
            .trim(),
        digest
    );
    rctl.ok(&["delete", &format!("{host}/del/me@{digest}")]);
    rctl.fails(&["digest", &format!("{host}/del/me@{digest}")]);
}

/// A registry serving a blob whose bytes do not match its digest: the pull
/// fails with a digest error and the store keeps nothing of it.
#[tokio::test(flavor = "multi_thread")]
async fn corrupted_blob_is_refused_and_not_kept() {
    let registry = RegistryProcess::start(RegistryOptions::default());
    let host = registry.host();
    let good = layer(5, 50_000);
    push_image(
        &http_client(),
        &registry.url(),
        "bad/blob",
        "1",
        "amd64",
        std::slice::from_ref(&good),
    )
    .await;
    let digest = sha256(&tar_layer(&good));
    let hex = &digest["sha256:".len()..];
    let path = registry
        .root()
        .join("blobs/sha256")
        .join(&hex[..2])
        .join(hex);
    let mut corrupted = tar_layer(&good);
    corrupted[1000] ^= 0xff;
    std::fs::write(&path, &corrupted).unwrap();

    let rctl = Rctl::new();
    let err = rctl.fails(&["pull", &format!("{host}/bad/blob:1")]);
    assert!(err.contains("does not match its digest"), "{err}");
    assert!(
        !rctl.root().join("blobs/sha256").join(hex).exists(),
        "the corrupt layer was kept"
    );
    assert_eq!(
        std::fs::read_dir(rctl.root().join("tmp")).unwrap().count(),
        0,
        "partial files kept"
    );
    assert!(
        !rctl.ok(&["images", "-q"]).contains(char::is_alphanumeric),
        "an image was named"
    );
}

/// The registry killed in the middle of a pull and restarted: the pull
/// retries, resumes with Range, and the result is complete and verified.
#[tokio::test(flavor = "multi_thread")]
async fn pull_resumes_after_registry_restart() {
    let mut registry = RegistryProcess::start(RegistryOptions::default());
    let host = registry.host();
    let big = layer(7, 512 * 1024 * 1024);
    push_image(
        &http_client(),
        &registry.url(),
        "big/image",
        "1",
        "amd64",
        std::slice::from_ref(&big),
    )
    .await;
    let rctl = Rctl::new();
    let child = rctl
        .command()
        .args([
            "pull",
            "--max-concurrent-downloads",
            "1",
            &format!("{host}/big/image:1"),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the layer is partly written, then crash the registry.
    let tmp = rctl.root().join("tmp");
    let started = e2e::process::wait_until(Duration::from_secs(30), || {
        std::fs::read_dir(&tmp)
            .map(|d| {
                d.filter_map(|e| e.ok()?.metadata().ok())
                    .any(|m| m.len() > 1024 * 1024)
            })
            .unwrap_or(false)
    });
    assert!(started, "the pull never started writing");
    registry.kill9();
    registry.restart();
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "pull failed after the restart:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("resuming at"),
        "the pull did not resume:\n{stdout}\n{stderr}"
    );
    let digest = sha256(&tar_layer(&big));
    let stored = std::fs::read(
        rctl.root()
            .join("blobs/sha256")
            .join(&digest["sha256:".len()..]),
    )
    .unwrap();
    assert_eq!(sha256(&stored), digest);
}

/// A chunked push (`--chunk-size`) to another registry, pulled back whole.
#[tokio::test(flavor = "multi_thread")]
async fn chunked_push_to_another_registry() {
    let source = RegistryProcess::start(RegistryOptions::default());
    let target = RegistryProcess::start(RegistryOptions::default());
    let layers = vec![layer(21, 300_000), layer(22, 10)];
    let (digest, _) = push_image(
        &http_client(),
        &source.url(),
        "chunks/app",
        "1",
        "amd64",
        &layers,
    )
    .await;
    let rctl = Rctl::new();
    let from = format!("{}/chunks/app:1", source.host());
    let to = format!("{}/chunks/app:1", target.host());
    rctl.ok(&["pull", "-q", &from]);
    rctl.ok(&["tag", &from, &to]);
    let out = rctl.run(&["-D", "push", "--chunk-size", "65536", &to]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let patches = stderr
        .lines()
        .filter(|l| l.contains("PATCH") && l.contains("202"))
        .count();
    assert!(
        patches >= 5,
        "a 300 kB layer in 64 KiB chunks took {patches} PATCH requests:\n{stderr}"
    );
    let fresh = Rctl::new();
    fresh.ok(&["pull", "-q", &to]);
    assert_eq!(fresh.ok(&["digest", &to]).trim(), digest);
}

/// A registry that answers 429 (Retry-After) and 503: rctl waits, retries,
/// says so, and completes the pull.
#[tokio::test(flavor = "multi_thread")]
async fn overloaded_registry_is_retried_and_said_so() {
    let registry = RegistryProcess::start(RegistryOptions::default());
    let (digest, _) = push_image(
        &http_client(),
        &registry.url(),
        "busy/app",
        "1",
        "amd64",
        &[layer(31, 5000)],
    )
    .await;
    let flaky = e2e::front::FlakyFront::start(&registry.url()).await;
    let rctl = Rctl::new();
    let started = std::time::Instant::now();
    let name = format!("{}/busy/app:1", flaky.host());
    let out = rctl.run(&["pull", "--max-concurrent-downloads", "1", &name]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(flaky.faults_left(), 0, "the faults were never met");
    assert!(
        stderr.contains("429") && stderr.contains("retrying in 1.0s"),
        "429 retry not shown: {stderr}"
    );
    assert!(
        stderr.contains("503") && stderr.contains("retrying"),
        "503 retry not shown: {stderr}"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After: 1 was not honoured"
    );
    let fresh = Rctl::new();
    assert_eq!(fresh.ok(&["digest", &name]).trim(), digest);
}

/// Several rctl processes pulling into one store at once: every image
/// lands, named, and the layout stays readable.
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_processes_share_one_store() {
    let registry = RegistryProcess::start(RegistryOptions::default());
    let client = http_client();
    let shared = layer(40, 200_000);
    for i in 0..6u8 {
        push_image(
            &client,
            &registry.url(),
            &format!("many/img{i}"),
            "1",
            "amd64",
            &[shared.clone(), layer(41 + i, 100_000)],
        )
        .await;
    }
    let rctl = Rctl::new();
    let children: Vec<_> = (0..6)
        .map(|i| {
            rctl.command()
                .args(["pull", "-q", &format!("{}/many/img{i}:1", registry.host())])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let index: Value =
        serde_json::from_slice(&std::fs::read(rctl.root().join("index.json")).unwrap()).unwrap();
    assert_eq!(
        index["manifests"].as_array().map(Vec::len),
        Some(6),
        "{index}"
    );
    assert_eq!(rctl.ok(&["images", "-q"]).lines().count(), 6);
    // The shared layer is stored once.
    assert!(rctl
        .root()
        .join("blobs/sha256")
        .join(&sha256(&tar_layer(&shared))["sha256:".len()..])
        .exists());
    assert_eq!(
        blob_count(rctl.root()),
        1 + 6 * 3,
        "one shared layer, and per image a layer, a config and a manifest"
    );
}
