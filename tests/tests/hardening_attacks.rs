//! What an attacker review of the issue 13 fixes found, each kept from
//! coming back: a manifest delete cut short by a client that hangs up (or
//! by kill -9) must not leave tags that a later push of the same bytes
//! brings back; a hang-up must not leave temp files behind; an upload
//! takes a bounded number of chunks; a manifest push a bounded number of
//! `?tag=`; and a referrer's huge annotations stay out of the listing.

use e2e::api::push_blob;
use e2e::process::wait_until;
use e2e::{http_client, sha256, RegistryOptions, RegistryProcess};
use serde_json::{json, Value};
use std::io::Write;
use std::path::Path;
use std::time::Duration;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// Pushes a small image manifest to `repo` by digest; returns (digest, bytes).
async fn manifest(client: &reqwest::Client, base: &str, repo: &str) -> (String, Vec<u8>) {
    let config = br#"{"architecture":"amd64","os":"linux"}"#;
    let config_digest = push_blob(client, base, repo, config).await;
    let bytes = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config.len()},
        "layers": [],
    }))
    .unwrap();
    let digest = sha256(&bytes);
    put_by_digest(client, base, repo, &digest, &bytes, &[]).await;
    (digest, bytes)
}

async fn put_by_digest(
    client: &reqwest::Client,
    base: &str,
    repo: &str,
    digest: &str,
    bytes: &[u8],
    tags: &[String],
) -> reqwest::Response {
    let query: Vec<String> = tags.iter().map(|t| format!("tag={t}")).collect();
    client
        .put(format!(
            "{base}/v2/{repo}/manifests/{digest}?{}",
            query.join("&")
        ))
        .header("content-type", OCI_MANIFEST)
        .body(bytes.to_vec())
        .send()
        .await
        .unwrap()
}

async fn tags_of(client: &reqwest::Client, base: &str, repo: &str) -> Vec<String> {
    let body: Value = client
        .get(format!("{base}/v2/{repo}/tags/list"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["tags"]
        .as_array()
        .map(|t| t.iter().map(|t| t.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

fn tag_files(root: &Path, repo: &str) -> usize {
    std::fs::read_dir(root.join("repositories").join(repo).join("_tags"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Gives the manifest `count` tags, 50 per push (the most one takes).
async fn tag_many(
    client: &reqwest::Client,
    base: &str,
    repo: &str,
    digest: &str,
    bytes: &[u8],
    count: usize,
) {
    for batch in 0..count.div_ceil(50) {
        let tags: Vec<String> = (batch * 50..((batch + 1) * 50).min(count))
            .map(|i| format!("t{i:05}"))
            .collect();
        let r = put_by_digest(client, base, repo, digest, bytes, &tags).await;
        assert_eq!(r.status(), 201);
    }
}

/// Sends a DELETE on a raw connection; dropping it hangs up without
/// reading the answer.
fn send_delete(registry: &RegistryProcess, path: &str) -> std::net::TcpStream {
    let mut stream = std::net::TcpStream::connect(registry.host()).unwrap();
    write!(
        stream,
        "DELETE {path} HTTP/1.1\r\nHost: {}\r\nContent-Length: 0\r\n\r\n",
        registry.host()
    )
    .unwrap();
    stream.flush().unwrap();
    stream
}

#[tokio::test(flavor = "multi_thread")]
async fn a_delete_whose_client_hangs_up_still_removes_every_tag() {
    let registry = RegistryProcess::start(RegistryOptions::default());
    let client = http_client();
    let base = registry.url();
    let repo = "attack/hangup";
    let (digest, bytes) = manifest(&client, &base, repo).await;
    tag_many(&client, &base, repo, &digest, &bytes, 1500).await;
    assert_eq!(tag_files(registry.root(), repo), 1500);

    let stream = send_delete(&registry, &format!("/v2/{repo}/manifests/{digest}"));
    assert!(
        wait_until(Duration::from_secs(60), || tag_files(registry.root(), repo)
            < 1500),
        "the delete never started"
    );
    drop(stream); // the client hangs up while the delete sweeps the tags
    assert!(
        wait_until(Duration::from_secs(60), || tag_files(registry.root(), repo)
            == 0),
        "{} tags left after a delete whose client hung up",
        tag_files(registry.root(), repo)
    );
    // The same bytes pushed again come back with no tag.
    assert_eq!(
        put_by_digest(&client, &base, repo, &digest, &bytes, &[])
            .await
            .status(),
        201
    );
    assert_eq!(tags_of(&client, &base, repo).await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_delete_killed_part_way_leaves_no_tag_to_bring_back() {
    let mut registry = RegistryProcess::start(RegistryOptions::default());
    let client = http_client();
    let base = registry.url();
    let repo = "attack/killed";
    let (digest, bytes) = manifest(&client, &base, repo).await;
    tag_many(&client, &base, repo, &digest, &bytes, 1500).await;

    let _stream = send_delete(&registry, &format!("/v2/{repo}/manifests/{digest}"));
    // Kill it while the delete is sweeping.
    assert!(
        wait_until(Duration::from_secs(60), || tag_files(registry.root(), repo)
            < 1500),
        "the delete never started"
    );
    registry.kill9();
    registry.restart();
    let (code, out) = registry.fsck(false);
    assert_eq!(code, 0, "fsck after a delete killed part way:\n{out}");
    let linked = client
        .head(format!("{base}/v2/{repo}/manifests/{digest}"))
        .header("accept", OCI_MANIFEST)
        .send()
        .await
        .unwrap()
        .status();
    if linked == 404 {
        // The delete got past the link: a push of the same bytes brings no tag back.
        assert_eq!(
            put_by_digest(&client, &base, repo, &digest, &bytes, &[])
                .await
                .status(),
            201
        );
        assert_eq!(tags_of(&client, &base, repo).await, Vec::<String>::new());
    } else {
        // Cut short before the link went: a manifest with fewer tags, and
        // a second delete finishes the job.
        let r = client
            .delete(format!("{base}/v2/{repo}/manifests/{digest}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
        assert_eq!(tag_files(registry.root(), repo), 0);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn clients_that_hang_up_leave_no_temp_files() {
    let registry = RegistryProcess::start(RegistryOptions::default());
    let data = vec![7u8; 8 * 1024 * 1024];
    let digest = sha256(&data);
    for _ in 0..6 {
        let mut stream = std::net::TcpStream::connect(registry.host()).unwrap();
        write!(
            stream,
            "POST /v2/attack/leak/blobs/uploads/?digest={digest} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n\r\n",
            registry.host(),
            data.len()
        )
        .unwrap();
        stream.write_all(&data).unwrap();
        drop(stream);
    }
    assert!(
        wait_until(Duration::from_secs(60), || registry.temp_files() == (0, 0)),
        "temp files left behind: {:?}",
        registry.temp_files()
    );
}

#[tokio::test]
async fn an_upload_takes_a_bounded_number_of_chunks() {
    let registry = RegistryProcess::start(RegistryOptions::default());
    let client = http_client();
    let base = registry.url();
    let r = client
        .post(format!("{base}/v2/attack/chunks/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let id = location.rsplit('/').next().unwrap().to_string();
    // The log as 10,000 one-byte chunks would leave it (written directly:
    // 10,000 requests would take the test minutes).
    let log = registry.root().join("uploads").join(&id).join("log");
    let first = std::fs::read_to_string(log.join(format!("{:020}", 0))).unwrap();
    for seq in 1..=10_000u64 {
        std::fs::write(log.join(format!("{seq:020}")), &first).unwrap();
    }
    let r = client
        .patch(format!("{base}{location}"))
        .body(vec![1u8])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "BLOB_UPLOAD_INVALID");
}

#[tokio::test]
async fn a_manifest_push_takes_a_bounded_number_of_tags() {
    let registry = RegistryProcess::start(RegistryOptions::default());
    let client = http_client();
    let base = registry.url();
    let repo = "attack/tags";
    let (digest, bytes) = manifest(&client, &base, repo).await;
    let tags: Vec<String> = (0..51).map(|i| format!("t{i}")).collect();
    let r = put_by_digest(&client, &base, repo, &digest, &bytes, &tags).await;
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "TAG_INVALID");
    assert!(tags_of(&client, &base, repo).await.is_empty());
    let r = put_by_digest(&client, &base, repo, &digest, &bytes, &tags[..50]).await;
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers().get_all("oci-tag").iter().count(), 50);
}

#[tokio::test]
async fn huge_referrer_annotations_stay_out_of_the_listing() {
    let registry = RegistryProcess::start(RegistryOptions::default());
    let client = http_client();
    let base = registry.url();
    let repo = "attack/refs";
    let (subject, _) = manifest(&client, &base, repo).await;
    let config = br#"{}"#;
    let config_digest = push_blob(&client, &base, repo, config).await;
    for (note, size) in [("small", 10usize), ("huge", 64 * 1024)] {
        let bytes = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": "application/vnd.example.sbom",
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": config_digest, "size": config.len()},
            "layers": [],
            "subject": {"mediaType": OCI_MANIFEST, "digest": subject, "size": 1},
            "annotations": {"note": note, "filler": "x".repeat(size)},
        }))
        .unwrap();
        let r = put_by_digest(&client, &base, repo, &sha256(&bytes), &bytes, &[]).await;
        assert_eq!(r.status(), 201, "{:?}", r.text().await);
    }
    let listing: Value = client
        .get(format!("{base}/v2/{repo}/referrers/{subject}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entries = listing["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    for entry in entries {
        assert_eq!(entry["artifactType"], "application/vnd.example.sbom");
        match entry["annotations"]["note"].as_str() {
            Some("small") => {}
            Some(other) => panic!("annotations of {other} listed"),
            None => assert!(entry.get("annotations").is_none()),
        }
    }
}
