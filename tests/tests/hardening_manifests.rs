//! Manifests, tags and the catalog under conditions that broke them
//! (issue 13): a delete racing a tag push, on one process and on two
//! sharing a root; names of up to 255 bytes; a push that fails part way;
//! descriptor sizes; `?tag=` on a manifest push; sparse indexes.

use e2e::api::push_blob;
use e2e::{http_client, sha256, RegistryOptions, RegistryProcess};
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, Instant};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";

/// An image manifest naming `config` and `layer` (already pushed), with
/// `note` as an annotation so that each note gives another digest.
fn image_manifest(config: &[u8], layer: &[u8], layer_size: usize, note: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": sha256(config), "size": config.len()},
        "layers": [{"mediaType": OCI_LAYER, "digest": sha256(layer), "size": layer_size}],
        "annotations": {"note": note},
    }))
    .unwrap()
}

/// Pushes a config and a layer to `repo` and returns a manifest naming them.
async fn pushed_image(client: &reqwest::Client, base: &str, repo: &str, note: &str) -> Vec<u8> {
    let config = format!(r#"{{"architecture":"amd64","os":"linux","note":"{note}"}}"#);
    let layer = format!("layer of {note}");
    push_blob(client, base, repo, config.as_bytes()).await;
    push_blob(client, base, repo, layer.as_bytes()).await;
    image_manifest(config.as_bytes(), layer.as_bytes(), layer.len(), note)
}

async fn put(
    client: &reqwest::Client,
    url: String,
    media_type: &str,
    body: &[u8],
) -> reqwest::Response {
    client
        .put(url)
        .header("content-type", media_type)
        .body(body.to_vec())
        .send()
        .await
        .unwrap()
}

/// The first error code of an error response.
async fn error_code(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let code = body["errors"][0]["code"].as_str().unwrap_or("").to_string();
    (status, code)
}

async fn get_status(client: &reqwest::Client, url: String) -> u16 {
    client.get(url).send().await.unwrap().status().as_u16()
}

async fn tags_of(client: &reqwest::Client, base: &str, repo: &str) -> Vec<String> {
    let r = client
        .get(format!("{base}/v2/{repo}/tags/list"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "tags/list of {repo}");
    let body: Value = r.json().await.unwrap();
    body["tags"]
        .as_array()
        .map(|tags| {
            tags.iter()
                .map(|t| t.as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Every repository of the catalog, read page by page (`n`, `last`).
async fn catalog(client: &reqwest::Client, base: &str, page: usize) -> Vec<String> {
    let mut names = Vec::new();
    let mut last: Option<String> = None;
    loop {
        let mut url = format!("{base}/v2/_catalog?n={page}");
        if let Some(last) = &last {
            url.push_str(&format!("&last={last}"));
        }
        let r = client.get(url).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let more = r.headers().contains_key("link");
        let body: Value = r.json().await.unwrap();
        let page_names: Vec<String> = body["repositories"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap().to_string())
            .collect();
        last = page_names.last().cloned();
        names.extend(page_names);
        if !more || last.is_none() {
            return names;
        }
    }
}

/// The tags stored under `repo` whose manifest link is missing, read from
/// the store itself (what `tags/list` might hide).
fn dangling_tags(root: &Path, repo: &str) -> Vec<String> {
    let dir = root.join("repositories").join(repo);
    let Ok(entries) = std::fs::read_dir(dir.join("_tags")) else {
        return Vec::new();
    };
    let mut dangling = Vec::new();
    for entry in entries {
        let entry = entry.unwrap();
        let digest = std::fs::read_to_string(entry.path()).unwrap();
        let (algorithm, hex) = digest.trim().split_once(':').unwrap();
        if !dir.join("_manifests").join(algorithm).join(hex).exists() {
            dangling.push(entry.file_name().into_string().unwrap());
        }
    }
    dangling
}

/// Tags pushed at once against each delete.
const TAGS_PER_ROUND: usize = 3;

/// Rounds of "PUT by tag" on `bases[0]` racing "DELETE by digest" on
/// `bases[1]`; then every listed tag must resolve and no stored tag may
/// point at a missing manifest. The repository also holds a few hundred
/// tags of another manifest, so that a delete spends a while on its tags,
/// as it does in a busy repository.
async fn race_tag_against_delete(bases: [&str; 2], root: &Path) {
    let client = http_client();
    let repo = "race/app";
    let manifest = pushed_image(&client, bases[0], repo, "raced").await;
    let digest = sha256(&manifest);
    let other = pushed_image(&client, bases[0], repo, "other").await;
    let r = put(
        &client,
        format!("{}/v2/{repo}/manifests/other", bases[0]),
        OCI_MANIFEST,
        &other,
    )
    .await;
    assert_eq!(r.status(), 201);
    let tags = root.join("repositories").join(repo).join("_tags");
    for i in 0..400 {
        std::fs::write(tags.join(format!("pad{i:03}")), sha256(&other)).unwrap();
    }
    let started = Instant::now();
    let mut rounds = 0;
    let mut deleted_while_tagging = 0;
    while rounds < 60 && started.elapsed() < Duration::from_secs(60) {
        let r = put(
            &client,
            format!("{}/v2/{repo}/manifests/{digest}", bases[1]),
            OCI_MANIFEST,
            &manifest,
        )
        .await;
        assert_eq!(r.status(), 201);
        let pushes = (0..TAGS_PER_ROUND).map(|k| {
            let url = format!("{}/v2/{repo}/manifests/t{rounds}-{k}", bases[0]);
            put(&client, url, OCI_MANIFEST, &manifest)
        });
        let delete_url = format!("{}/v2/{repo}/manifests/{digest}", bases[1]);
        let (tagged, deleted) = tokio::join!(
            futures_util::future::join_all(pushes),
            client.delete(delete_url).send()
        );
        let deleted = deleted.unwrap().status().as_u16();
        assert!([202, 404].contains(&deleted), "delete answered {deleted}");
        for response in tagged {
            let status = response.status().as_u16();
            assert!([201, 503].contains(&status), "tag push answered {status}");
            if deleted == 202 && status == 201 {
                deleted_while_tagging += 1;
            }
        }
        rounds += 1;
    }
    assert!(deleted_while_tagging > 0, "no round had both succeed");
    for base in bases {
        for tag in tags_of(&client, base, repo).await {
            let status = get_status(&client, format!("{base}/v2/{repo}/manifests/{tag}")).await;
            assert_eq!(status, 200, "listed tag {tag} answers {status} on {base}");
        }
    }
    assert_eq!(
        dangling_tags(root, repo),
        Vec::<String>::new(),
        "tags left pointing at a deleted manifest after {rounds} rounds"
    );
}

#[tokio::test]
async fn a_delete_racing_a_tag_push_leaves_no_dangling_tag() {
    let registry = RegistryProcess::start(RegistryOptions::default());
    let base = registry.url();
    race_tag_against_delete([&base, &base], registry.root()).await;
}

#[tokio::test]
async fn two_processes_on_one_root_leave_no_dangling_tag() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    let options = RegistryOptions {
        root: Some(root.clone()),
        ..RegistryOptions::default()
    };
    let first = RegistryProcess::start(options.clone());
    let second = RegistryProcess::start(options);
    race_tag_against_delete([&first.url(), &second.url()], &root).await;
}

#[tokio::test]
async fn tags_list_skips_tags_whose_manifest_is_gone() {
    let registry = RegistryProcess::start(RegistryOptions::default());
    let (client, base) = (http_client(), registry.url());
    let manifest = pushed_image(&client, &base, "app", "kept").await;
    let r = put(
        &client,
        format!("{base}/v2/app/manifests/kept"),
        OCI_MANIFEST,
        &manifest,
    )
    .await;
    assert_eq!(r.status(), 201);
    // A tag as a store written before the fix may hold: its manifest is gone.
    let missing = sha256(b"a manifest that was deleted");
    std::fs::write(
        registry.root().join("repositories/app/_tags/orphan"),
        &missing,
    )
    .unwrap();
    assert_eq!(tags_of(&client, &base, "app").await, ["kept"]);
    let page = client
        .get(format!("{base}/v2/app/tags/list?n=1"))
        .send()
        .await
        .unwrap();
    let body: Value = page.json().await.unwrap();
    assert_eq!(body["tags"], json!(["kept"]));
}

#[tokio::test]
async fn names_of_255_bytes_push_pull_and_list() {
    let registry = RegistryProcess::start(RegistryOptions::default());
    let (client, base) = (http_client(), registry.url());
    let flat = "a".repeat(255);
    // Four components of 63 bytes and three slashes: 255 bytes.
    let nested = ["b", "c", "d", "e"]
        .map(|c| format!("{c}{}", "0".repeat(62)))
        .join("/");
    assert_eq!(nested.len(), 255);
    let short = "z-short".to_string();
    for repo in [&flat, &nested, &short] {
        let manifest = pushed_image(&client, &base, repo, repo).await;
        let r = put(
            &client,
            format!("{base}/v2/{repo}/manifests/v1"),
            OCI_MANIFEST,
            &manifest,
        )
        .await;
        assert_eq!(r.status(), 201, "push to a {}-byte name", repo.len());
        let r = client
            .get(format!("{base}/v2/{repo}/manifests/v1"))
            .header("accept", OCI_MANIFEST)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.bytes().await.unwrap(), manifest);
        let layer = format!("layer of {repo}");
        let status = get_status(
            &client,
            format!("{base}/v2/{repo}/blobs/{}", sha256(layer.as_bytes())),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(tags_of(&client, &base, repo).await, ["v1"]);
    }
    let mut expected = vec![flat.clone(), nested.clone(), short.clone()];
    expected.sort();
    assert_eq!(catalog(&client, &base, 1).await, expected);
    assert_eq!(catalog(&client, &base, 100).await, expected);
}

#[tokio::test]
async fn a_push_that_cannot_register_its_repository_writes_nothing() {
    let registry = RegistryProcess::start(RegistryOptions::default());
    let (client, base) = (http_client(), registry.url());
    // The repository holds the image's blobs but has no catalog entry (as
    // a blob push that failed to register it left it before the fix), and
    // the catalog cannot take one: a file stands where its directory goes
    // (both layouts' directories, so the test means the same on the code
    // before the fix).
    let manifest = pushed_image(&client, &base, "second/app", "first").await;
    let root = registry.root().to_path_buf();
    let block = |on: bool| {
        for dir in ["catalog", "catalog-v2"] {
            let path = root.join(dir);
            if path.is_dir() {
                std::fs::remove_dir_all(&path).unwrap();
            } else if path.exists() {
                std::fs::remove_file(&path).unwrap();
            }
            if on {
                std::fs::write(&path, b"not a directory").unwrap();
            }
        }
    };
    block(true);
    let r = put(
        &client,
        format!("{base}/v2/second/app/manifests/v1"),
        OCI_MANIFEST,
        &manifest,
    )
    .await;
    assert_eq!(r.status(), 500);
    // No half of the push is visible: no tag, no manifest, nothing stored.
    let digest = sha256(&manifest);
    for reference in ["v1", digest.as_str()] {
        let status = get_status(
            &client,
            format!("{base}/v2/second/app/manifests/{reference}"),
        )
        .await;
        assert_eq!(status, 404, "second/app:{reference} after a failed push");
    }
    assert!(!root.join("repositories/second/app/_tags").exists());
    assert!(!root.join("repositories/second/app/_manifests").exists());
    // Once the store is whole again, the same push works and is listed.
    block(false);
    let r = put(
        &client,
        format!("{base}/v2/second/app/manifests/v1"),
        OCI_MANIFEST,
        &manifest,
    )
    .await;
    assert_eq!(r.status(), 201);
    assert_eq!(tags_of(&client, &base, "second/app").await, ["v1"]);
    assert_eq!(catalog(&client, &base, 10).await, ["second/app"]);
}

#[tokio::test]
async fn an_old_hex_catalog_is_moved_at_startup() {
    let mut registry = RegistryProcess::start(RegistryOptions::default());
    let (client, base) = (http_client(), registry.url());
    for repo in ["old/one", "old/two"] {
        let manifest = pushed_image(&client, &base, repo, repo).await;
        let r = put(
            &client,
            format!("{base}/v2/{repo}/manifests/v1"),
            OCI_MANIFEST,
            &manifest,
        )
        .await;
        assert_eq!(r.status(), 201);
    }
    registry.child.stop(Duration::from_secs(10));
    // Rewrite the catalog as the first layout had it: hex of each name.
    let root = registry.root().to_path_buf();
    std::fs::remove_dir_all(root.join("catalog-v2")).unwrap();
    std::fs::create_dir_all(root.join("catalog")).unwrap();
    for repo in ["old/one", "old/two"] {
        std::fs::write(root.join("catalog").join(hex::encode(repo)), b"").unwrap();
    }
    registry.restart();
    let client = http_client(); // the old process's connections are gone
    assert_eq!(catalog(&client, &base, 1).await, ["old/one", "old/two"]);
    assert_eq!(tags_of(&client, &base, "old/two").await, ["v1"]);
    assert_eq!(std::fs::read_dir(root.join("catalog")).unwrap().count(), 0);
}

#[tokio::test]
async fn descriptor_sizes_must_match_the_stored_blobs() {
    let registry = RegistryProcess::start(RegistryOptions::default());
    let (client, base) = (http_client(), registry.url());
    let config = br#"{"architecture":"amd64","os":"linux"}"#;
    let layer = b"9 bytes!!";
    push_blob(&client, &base, "sizes", config).await;
    push_blob(&client, &base, "sizes", layer).await;
    let wrong_layer = image_manifest(config, layer, 999_999, "wrong layer");
    let r = put(
        &client,
        format!("{base}/v2/sizes/manifests/bad"),
        OCI_MANIFEST,
        &wrong_layer,
    )
    .await;
    assert_eq!(error_code(r).await, (400, "MANIFEST_INVALID".to_string()));
    let mut wrong_config: Value =
        serde_json::from_slice(&image_manifest(config, layer, 9, "wrong config")).unwrap();
    wrong_config["config"]["size"] = json!(config.len() + 1);
    let wrong_config = serde_json::to_vec(&wrong_config).unwrap();
    let r = put(
        &client,
        format!("{base}/v2/sizes/manifests/bad"),
        OCI_MANIFEST,
        &wrong_config,
    )
    .await;
    assert_eq!(error_code(r).await, (400, "MANIFEST_INVALID".to_string()));
    assert_eq!(
        get_status(&client, format!("{base}/v2/sizes/manifests/bad")).await,
        404
    );

    let good = image_manifest(config, layer, layer.len(), "good");
    let r = put(
        &client,
        format!("{base}/v2/sizes/manifests/good"),
        OCI_MANIFEST,
        &good,
    )
    .await;
    assert_eq!(r.status(), 201);
    // An index's children too.
    let index = |size: usize| {
        serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": OCI_INDEX,
            "manifests": [{"mediaType": OCI_MANIFEST, "digest": sha256(&good), "size": size,
                           "platform": {"os": "linux", "architecture": "amd64"}}],
        }))
        .unwrap()
    };
    let r = put(
        &client,
        format!("{base}/v2/sizes/manifests/index"),
        OCI_INDEX,
        &index(good.len() + 7),
    )
    .await;
    assert_eq!(error_code(r).await, (400, "MANIFEST_INVALID".to_string()));
    let r = put(
        &client,
        format!("{base}/v2/sizes/manifests/index"),
        OCI_INDEX,
        &index(good.len()),
    )
    .await;
    assert_eq!(r.status(), 201);
}

#[tokio::test]
async fn tag_query_parameters_tag_the_pushed_manifest() {
    use sha2::Digest as _;
    let registry = RegistryProcess::start(RegistryOptions::default());
    let (client, base) = (http_client(), registry.url());
    let manifest = pushed_image(&client, &base, "tagged", "sha512").await;
    let digest = format!("sha512:{}", hex::encode(sha2::Sha512::digest(&manifest)));

    // A bad tag refuses the whole push; nothing is written.
    let r = put(
        &client,
        format!("{base}/v2/tagged/manifests/{digest}?tag=fine&tag=-bad"),
        OCI_MANIFEST,
        &manifest,
    )
    .await;
    assert_eq!(error_code(r).await, (400, "TAG_INVALID".to_string()));
    assert_eq!(
        get_status(&client, format!("{base}/v2/tagged/manifests/{digest}")).await,
        404
    );
    assert_eq!(
        get_status(&client, format!("{base}/v2/tagged/manifests/fine")).await,
        404
    );

    let r = put(
        &client,
        format!("{base}/v2/tagged/manifests/{digest}?tag=a&tag=b&tag=a"),
        OCI_MANIFEST,
        &manifest,
    )
    .await;
    assert_eq!(r.status(), 201);
    let applied: Vec<&str> = r
        .headers()
        .get_all("oci-tag")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(applied, ["a", "b"]);
    for tag in ["a", "b"] {
        let r = client
            .get(format!("{base}/v2/tagged/manifests/{tag}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["docker-content-digest"], digest.as_str());
        assert_eq!(r.bytes().await.unwrap(), manifest);
    }
    assert_eq!(tags_of(&client, &base, "tagged").await, ["a", "b"]);
}

/// A registry whose config has this `validation.manifests.indexes` body
/// (none when empty), with an amd64 image in `multi`; returns it and the
/// image's manifest.
async fn registry_with_indexes(indexes: &str) -> (RegistryProcess, Vec<u8>) {
    let extra_yaml = if indexes.is_empty() {
        String::new()
    } else {
        format!("validation:\n  manifests:\n    indexes:\n{indexes}")
    };
    let registry = RegistryProcess::start(RegistryOptions {
        extra_yaml,
        ..RegistryOptions::default()
    });
    let (client, base) = (http_client(), registry.url());
    let manifest = pushed_image(&client, &base, "multi", "amd64").await;
    let r = put(
        &client,
        format!("{base}/v2/multi/manifests/amd64"),
        OCI_MANIFEST,
        &manifest,
    )
    .await;
    assert_eq!(r.status(), 201);
    (registry, manifest)
}

/// An index of `present` (linux/amd64) and a child absent from the
/// repository for `absent_platform`.
fn sparse_index(present: &[u8], absent_platform: (&str, &str)) -> Vec<u8> {
    let absent = image_manifest(b"{}", b"never pushed", 12, "absent");
    serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": sha256(present), "size": present.len(),
             "platform": {"os": "linux", "architecture": "amd64"}},
            {"mediaType": OCI_MANIFEST, "digest": sha256(&absent), "size": absent.len(),
             "platform": {"os": absent_platform.0, "architecture": absent_platform.1}},
        ],
    }))
    .unwrap()
}

async fn push_index(registry: &RegistryProcess, index: &[u8]) -> (u16, String) {
    let r = put(
        &http_client(),
        format!("{}/v2/multi/manifests/index", registry.url()),
        OCI_INDEX,
        index,
    )
    .await;
    if r.status() == 201 {
        return (201, String::new());
    }
    error_code(r).await
}

#[tokio::test]
async fn sparse_indexes_follow_validation_manifests_indexes_platforms() {
    let unknown = (400, "MANIFEST_BLOB_UNKNOWN".to_string());
    let created = (201, String::new());

    // Default, as Distribution: every child must exist.
    let (registry, amd64) = registry_with_indexes("").await;
    assert_eq!(
        push_index(&registry, &sparse_index(&amd64, ("linux", "arm64"))).await,
        unknown
    );
    drop(registry);
    let (registry, amd64) = registry_with_indexes("      platforms: all\n").await;
    assert_eq!(
        push_index(&registry, &sparse_index(&amd64, ("linux", "arm64"))).await,
        unknown
    );
    drop(registry);

    // none: any child may be absent (a present one is still checked).
    let (registry, amd64) = registry_with_indexes("      platforms: none\n").await;
    assert_eq!(
        push_index(&registry, &sparse_index(&amd64, ("linux", "arm64"))).await,
        created
    );
    let r = http_client()
        .get(format!("{}/v2/multi/manifests/index", registry.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    drop(registry);

    // A platform list: its platforms' children must exist, others need not.
    let list = "      platforms: list\n      platformlist:\n        - os: linux\n          architecture: amd64\n        - os: linux\n          architecture: s390x\n";
    let (registry, amd64) = registry_with_indexes(list).await;
    assert_eq!(
        push_index(&registry, &sparse_index(&amd64, ("linux", "arm64"))).await,
        created
    );
    assert_eq!(
        push_index(&registry, &sparse_index(&amd64, ("linux", "s390x"))).await,
        unknown
    );
    drop(registry);
}

#[test]
fn a_bad_index_validation_value_is_refused_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{}\nvalidation:\n  manifests:\n    indexes:\n      platforms: some\n",
            dir.path().join("data").display(),
            e2e::free_port()
        ),
    )
    .unwrap();
    let output = std::process::Command::new(e2e::workspace_bin("rregistry"))
        .arg("serve")
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("validation.manifests.indexes.platforms"),
        "{stderr}"
    );
}
